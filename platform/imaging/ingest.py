"""Ingest a folder of DICOM (and NIfTI/NRRD) files into NIfTI images, lesion masks and a manifest.

``ingest_folder(src, out)``:

1. crawls ``src`` (headers only) and groups image files (CT/MR by default) into series;
2. checks each series is an evenly spaced stack and streams it, slice by slice, to one NIfTI image;
3. links every RTSTRUCT and DICOM SEG to the series it references (SOP instance / series /
   frame-of-reference UIDs) and turns each lesion ROI (GTV spellings, ``--roi-map``) and each
   organ at risk (TG-263 synonym table) into a mask on that series' grid;
4. names each lesion mask with its registry lesion ID (ROI ``GTV-2`` of patient ``SABR-RCC-001`` ->
   ``SABR-RCC-001-L2``) and each OAR mask with its TG-263 name;
5. also takes ``<lesion_id>_ct|_image`` + ``<lesion_id>_mask|_label`` NIfTI/NRRD pairs;
6. writes ``images.csv`` (one row per lesion, the columns of the cohort's ``images.csv`` plus
   ``study_date, series_uid, roi_name``), ``masks.csv`` (every mask, ``kind`` lesion or oar),
   ``series.csv`` (every image series, contoured or not), ``dose.csv`` (lesions with a planned
   dose: RTDOSE resampled onto the CT, :mod:`sabrkit.imaging.ingest_dose`) and ``failures.csv``
   (file or series, stage, reason).

Each problem (an unreadable or truncated file, a series with a missing slice, an RTSTRUCT
whose series is absent, an ROI without contour points ...) becomes one failure row naming the
file and the reason; everything else still completes. A state file makes a re-run skip every
unit whose inputs did not change (see :mod:`sabrkit.imaging.ingest_state`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sabrkit.errors import CaseFailure, ConfigError, SabrkitError, ValidationError, format_problem
from sabrkit.imaging.dicom_index import (
    RTSTRUCT_SOP_CLASS,
    SEG_SOP_CLASS,
    DicomFile,
    ImageSeries,
    check_series_geometry,
    crawl_dicom,
    group_series,
    write_series_nifti,
)
from sabrkit.imaging.ingest_dose import ingest_doses
from sabrkit.imaging.ingest_state import IngestState, UnitResult, fingerprint
from sabrkit.imaging.ingest_units import (
    LESION_COLUMNS,
    MASK_COLUMNS,
    SERIES_COLUMNS,
    IngestContext,
    ingest_nifti_pair,
    ingest_rtstruct,
    ingest_seg,
    nifti_pairs,
)
from sabrkit.imaging.key_table import KEY_TABLE_COLUMNS, Redactor
from sabrkit.imaging.roi_map import RoiMap
from sabrkit.io import atomic_write

__all__ = [
    "DEFAULT_LESION_PATTERN",
    "IngestConfig",
    "IngestResult",
    "ingest_folder",
    "LESION_COLUMNS",
    "MASK_COLUMNS",
    "SERIES_COLUMNS",
]

logger = logging.getLogger(__name__)

FAILURE_COLUMNS = ("case_id", "stage", "reason")


#: Default ``lesion_pattern``: the clinical and archive (TCIA) spellings of a lesion GTV:
#: ``GTV_L1``, ``GTV-L1``, ``GTV L1``, ``GTVL1``, ``GTV-1``, ``GTV_1``, ``GTV 1``, ``GTV1`` (lesion n),
#: and an unnumbered ``GTV``, ``GTVp``, ``GTV_p``, ``GTV-primary`` (lesion 1); any case.
DEFAULT_LESION_PATTERN = r"GTV(?:[ _-]?L?[ _-]?(?P<n>\d+)|[ _-]?(?:P|PRIMARY))?"


@dataclass(frozen=True)
class IngestConfig:
    """How ingest links DICOM objects to registry patients, lesions and organs at risk.

    Parameters
    ----------
    roi_pattern : str, default ``"GTV.*"``
        ROI / segment names taken as lesions (:func:`re.fullmatch`, case-insensitive).
    lesion_pattern : str, default :data:`DEFAULT_LESION_PATTERN`
        Pulls the lesion number ``n`` out of an ROI name (``fullmatch``, case-insensitive); a
        match without ``n`` (``GTVp``) is lesion 1.
    lesion_id_template : str, default ``"{study_id}-L{n}"``
        Lesion ID built from the patient's study ID and the groups of ``lesion_pattern``.
    roi_lesion_map : mapping, optional
        Explicit ``(study_id, roi_name) -> lesion_id`` (e.g. from registry ``lesions.csv``);
        checked first.
    roi_map : RoiMap, optional
        ``--roi-map`` file: ROI name -> lesion number, OAR or ``ignore`` (see
        :mod:`sabrkit.imaging.roi_map`); checked before the patterns and the OAR table.
    oars : bool, default True
        Also convert organs at risk whose ROI name is in the TG-263 synonym table
        (:mod:`sabrkit.imaging.oars`) into masks (``masks.csv`` rows with ``kind = oar``).
    modalities : tuple of str, default ("CT", "MR")
        Image series kept.
    patient_id_pattern : str, default ``"SABR-RCC-\\d{3,6}"``
        The study's pseudonym rule: a DICOM PatientID matching it is already the study ID, and
        every study ID of the key table must match it.
    patient_key : mapping, optional
        Source PatientID -> study ID, for folders that were not de-identified (the key table,
        read with :func:`sabrkit.imaging.read_key_table`). A series whose PatientID is neither
        a pseudonym nor in the key is refused.
    slice_tolerance : float, default 0.01
        Allowed relative deviation of slice gaps (see :func:`check_series_geometry`).
    nifti_modality : str, default "CT"
        Modality recorded for NIfTI/NRRD pairs (they carry none).
    """

    roi_pattern: str = r"GTV.*"
    lesion_pattern: str = DEFAULT_LESION_PATTERN
    lesion_id_template: str = "{study_id}-L{n}"
    roi_lesion_map: Mapping[tuple[str, str], str] | None = field(default=None, compare=False)
    roi_map: RoiMap | None = field(default=None, compare=False)
    oars: bool = True
    modalities: tuple[str, ...] = ("CT", "MR")
    patient_id_pattern: str = r"SABR-RCC-\d{3,6}"
    patient_key: Mapping[str, str] | None = field(default=None, compare=False, repr=False)
    slice_tolerance: float = 0.01
    nifti_modality: str = "CT"

    def __post_init__(self) -> None:
        for name in ("roi_pattern", "lesion_pattern", "patient_id_pattern"):
            try:
                re.compile(getattr(self, name))
            except re.error as exc:
                raise ConfigError(
                    format_problem(
                        f"IngestConfig {name}={getattr(self, name)!r} ({exc})",
                        "patterns are Python regular expressions",
                        "fix the expression",
                    )
                ) from exc
        if "n" not in re.compile(self.lesion_pattern).groupindex and "{n}" in self.lesion_id_template:
            raise ConfigError(
                format_problem(
                    f"lesion_pattern {self.lesion_pattern!r} has no group 'n'",
                    "lesion_id_template uses {n}, so the pattern must capture it",
                    r"write e.g. 'GTV[_-]?L(?P<n>\d+)'",
                )
            )
        if not (0 < self.slice_tolerance < 0.5):
            raise ConfigError(
                format_problem(
                    f"slice_tolerance={self.slice_tolerance!r}", "must lie in (0, 0.5)", "use 0.01"
                )
            )
        if self.patient_key:
            from sabrkit.imaging.key_table import validate_key_table

            validate_key_table(
                KEY_TABLE_COLUMNS,
                [{"hospital_number": k, "study_id": v} for k, v in self.patient_key.items()],
                source="patient_key",
                pseudonym_pattern=self.patient_id_pattern,
            )
        object.__setattr__(self, "modalities", tuple(self.modalities))

    def series_key(self) -> str:
        """Fingerprint of the settings an image series' conversion depends on."""
        return fingerprint(["series", self.modalities, self.patient_id_pattern, self.slice_tolerance])

    def structure_key(self) -> str:
        """Fingerprint of the settings that turn ROIs / segments into named masks."""
        roi_map = sorted(
            (k, (v.lesion_number, v.oar)) for k, v in (self.roi_map.entries if self.roi_map else {}).items()
        )
        return fingerprint(
            [
                "structures",
                self.roi_pattern,
                self.lesion_pattern,
                self.lesion_id_template,
                self.oars,
                self.patient_id_pattern,
                sorted((self.roi_lesion_map or {}).items()),
                roi_map,
            ]
        )

    def nifti_key(self) -> str:
        """Fingerprint of the settings a NIfTI/NRRD pair depends on."""
        return fingerprint(["nifti", self.nifti_modality, self.patient_id_pattern])

    def settings_key(self) -> str:
        """Fingerprint of every setting that changes outputs (the maps included)."""
        return fingerprint(
            [
                self.series_key(),
                self.structure_key(),
                self.nifti_key(),
                sorted((self.patient_key or {}).items()),
            ]
        )

    def resolve_study_id(self, patient_id: str) -> str | None:
        """The study ID of a DICOM PatientID, or None when it is neither a pseudonym nor in the key."""
        if re.fullmatch(self.patient_id_pattern, patient_id):
            return patient_id
        if self.patient_key and patient_id in self.patient_key:
            return str(self.patient_key[patient_id])
        return None

    def study_id_of(self, patient_id: str) -> str:
        """The pseudonymous study ID of a DICOM PatientID.

        Raises
        ------
        ValidationError
            The PatientID is neither a pseudonym nor in ``patient_key``. The message never
            repeats the PatientID (it may be a hospital number).
        """
        study_id = self.resolve_study_id(patient_id)
        if study_id is not None:
            return study_id
        raise ValidationError(
            format_problem(
                "PatientID (not shown: it may be a hospital number) is not a pseudonymous study ID",
                f"ingested images carry study IDs matching {self.patient_id_pattern!r}",
                "de-identify the folder first (sabrkit imaging deidentify) or pass the key table (--key-table)",
            )
        )

    def is_lesion_roi(self, roi_name: str) -> bool:
        """True when ``roi_name`` matches :attr:`roi_pattern` (the ROI is a lesion)."""
        return re.fullmatch(self.roi_pattern, roi_name, flags=re.IGNORECASE) is not None

    def roi_role(self, study_id: str, roi_name: str) -> tuple[str, str] | None:
        """What an ROI becomes: ``("lesion", lesion_id)``, ``("oar", TG-263 name)`` or None.

        Order: ``roi_lesion_map``, ``roi_map``, ``roi_pattern`` + ``lesion_pattern``, the OAR table.

        Raises
        ------
        ValidationError
            The ROI matches ``roi_pattern`` but not ``lesion_pattern`` (and no map names it).
        """
        if self.roi_lesion_map and (study_id, roi_name) in self.roi_lesion_map:
            return "lesion", str(self.roi_lesion_map[(study_id, roi_name)])
        target = self.roi_map.target(study_id, roi_name) if self.roi_map else None
        if target is not None:
            if target.lesion_number is not None:
                return "lesion", self.lesion_id_template.format(study_id=study_id, n=target.lesion_number)
            return ("oar", target.oar) if target.oar else None
        if self.is_lesion_roi(roi_name):
            match = re.fullmatch(self.lesion_pattern, roi_name, flags=re.IGNORECASE)
            if match is None:
                raise ValidationError(
                    format_problem(
                        f"ROI {roi_name!r} of {study_id} matches roi_pattern but not lesion_pattern "
                        f"{self.lesion_pattern!r}",
                        "every lesion ROI must map to a registry lesion ID",
                        "add the ROI to an --roi-map file (roi_name,maps_to: e.g. GTV_primary,L1 or "
                        "GTV_old,ignore), rename it, or widen --lesion-pattern",
                    )
                )
            groups = {k: (v if v is not None else "1") for k, v in match.groupdict().items()}
            return "lesion", self.lesion_id_template.format(study_id=study_id, **groups)
        if self.oars:
            from sabrkit.imaging.oars import oar_name

            name = oar_name(roi_name)
            if name is not None:
                return "oar", name
        return None

    def lesion_id_of(self, study_id: str, roi_name: str) -> str | None:
        """Registry lesion ID of an ROI, or None when the ROI is not a lesion."""
        role = self.roi_role(study_id, roi_name)
        return role[1] if role is not None and role[0] == "lesion" else None


@dataclass
class IngestResult:
    """Outcome of :func:`ingest_folder`.

    ``units_done`` counts the work units converted now by kind (``series``, ``rtstruct``,
    ``seg``, ``nifti``); the others were reused from the state file.
    """

    lesions: pd.DataFrame
    series: pd.DataFrame
    failures: list[CaseFailure]
    n_units_done: int
    n_units_reused: int
    masks: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(MASK_COLUMNS)))
    units_done: dict[str, int] = field(default_factory=dict)


def _iso_date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else ""


def _ingest_series(item: ImageSeries, context: IngestContext) -> UnitResult:
    first = item.first
    result = UnitResult(fingerprint="")
    try:
        study_id = context.config.study_id_of(first.patient_id)
        spacing = check_series_geometry(item, context.config.slice_tolerance)
        relative = f"images/{study_id}/{first.modality}_{item.series_uid}.nii.gz"
        context.check_no_identifier(relative, "image path")
        write_series_nifti(item, context.out_dir / relative)
    except SabrkitError as exc:
        result.failures.append(
            CaseFailure(f"series {item.series_uid} ({first.path})", "series", f"{type(exc).__name__}: {exc}")
        )
        return result
    result.outputs.append(relative)
    result.series.append(
        {
            "study_id": study_id,
            "study_date": _iso_date(first.study_date),
            "modality": first.modality,
            "series_uid": item.series_uid,
            "image_path": relative,
            "n_slices": len(item.files),
            "slice_spacing_mm": round(spacing, 6),
            "scanner": f"{first.manufacturer} {first.model}".strip(),
            "frame_of_reference_uid": first.frame_of_reference_uid,
            "series_number": first.series_number,
        }
    )
    return result


def _file_print(record: DicomFile) -> tuple[str, str]:
    """What a unit's result depends on: the instance and the file's content (not its path or mtime)."""
    return (record.sop_instance_uid, record.sha256)


def _redactor(config: IngestConfig, files: list[DicomFile]) -> Redactor:
    """Hospital numbers of the key table -> their study ID; other non-pseudonym PatientIDs -> a neutral text."""
    redactor = Redactor({k: str(v) for k, v in (config.patient_key or {}).items()})
    for record in files:
        if record.patient_id and config.resolve_study_id(record.patient_id) is None:
            redactor.add(record.patient_id, "[unlinked patient]")
    return redactor


def ingest_folder(
    src: str | os.PathLike[str], out_dir: str | os.PathLike[str], config: IngestConfig | None = None
) -> IngestResult:
    """Ingest every DICOM / NIfTI case under ``src`` into ``out_dir`` (see the module docstring).

    Parameters
    ----------
    src : path-like
        Folder crawled recursively (a hospital export or a de-identified copy).
    out_dir : path-like
        Output folder; ``images/``, ``masks/``, ``dose/``, ``images.csv``, ``masks.csv``,
        ``series.csv``, ``dose.csv``, ``failures.csv`` and the state file ``.ingest_state.json``.
    config : IngestConfig, optional

    Returns
    -------
    IngestResult
        Lesion manifest (paths relative to ``out_dir``), every mask (lesions and OARs), series
        table, failures, and how many work units were done now or reused from the state file.

    Raises
    ------
    ConfigError
        ``src`` is not a folder.

    Notes
    -----
    No hospital number of the key table (and no other PatientID that is not a pseudonym)
    is written to any output path, table, the state file or a log line: paths and messages
    are redacted (a hospital number becomes its study ID), and an ROI whose name holds one
    is refused without its name.
    """
    config = config or IngestConfig()
    source, out = Path(src), Path(out_dir)
    if not source.is_dir():
        raise ConfigError(
            format_problem(
                f"ingest source {str(source)!r} is not a folder",
                "ingest crawls a folder of DICOM/NIfTI files",
                "pass the export folder",
            )
        )
    out.mkdir(parents=True, exist_ok=True)
    key_print = fingerprint(["key", sorted((config.patient_key or {}).items()), config.patient_id_pattern])
    key_redactor = Redactor({k: str(v) for k, v in (config.patient_key or {}).items()})
    state = IngestState.load(out, key_print)
    files, failures, state.files = crawl_dicom(source, state.files, known_key=key_redactor)
    redact = _redactor(config, files)
    context = IngestContext(config=config, out_dir=out, redact=redact)
    units: dict[str, UnitResult] = {}
    done: dict[str, int] = {}
    reused = 0

    def run(key: str, parts: list[Any], work: Any, source: str) -> UnitResult:
        nonlocal reused
        print_ = fingerprint(parts)
        unit = state.reusable(key, print_, out)
        if unit is None:
            unit = work()
            unit.fingerprint, unit.source = print_, redact(source)
            unit.failures = [CaseFailure(redact(f.case_id), f.stage, redact(f.reason)) for f in unit.failures]
            kind = key.split(":", 1)[0]
            done[kind] = done.get(kind, 0) + 1
        else:
            reused += 1
        units[key] = unit
        return unit

    all_series = group_series(files, config.modalities)
    series_key, structure_key = config.series_key(), config.structure_key()
    for uid in sorted(all_series):
        item = all_series[uid]
        study_id = config.resolve_study_id(item.first.patient_id) or ""
        unit = run(
            f"series:{uid}",
            [series_key, study_id, [_file_print(f) for f in item.files]],
            lambda item=item: _ingest_series(item, context),
            item.first.path,
        )
        context.add_series(uid, unit, item)
    by_patient: dict[str, list[str]] = {}
    for uid, item in all_series.items():
        patient = config.resolve_study_id(item.first.patient_id) or redact(item.first.patient_id)
        by_patient.setdefault(patient, []).append(units[f"series:{uid}"].fingerprint)
    for record in sorted(files, key=lambda r: r.path):
        patient = config.resolve_study_id(record.patient_id) or redact(record.patient_id)
        related = sorted(by_patient.get(patient, []))
        if record.sop_class_uid == RTSTRUCT_SOP_CLASS:
            run(
                f"rtstruct:{record.sop_instance_uid}",
                [structure_key, _file_print(record), related],
                lambda record=record: ingest_rtstruct(record.path, context),
                record.path,
            )
        elif record.sop_class_uid == SEG_SOP_CLASS:
            run(
                f"seg:{record.sop_instance_uid}",
                [structure_key, _file_print(record), related],
                lambda record=record: ingest_seg(record.path, context),
                record.path,
            )
    nifti_key = config.nifti_key()
    for case, image_path, mask_path in nifti_pairs(source):
        stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (image_path, mask_path)]
        run(
            f"nifti:{case}",
            [nifti_key, stats],
            lambda c=case, i=image_path, m=mask_path: ingest_nifti_pair(c, i, m, context),
            str(image_path),
        )
    _remove_stale(state, units, out)
    state.units = units
    lesions, masks, series, unit_failures = _collect(units)
    failures = [CaseFailure(redact(f.case_id), f.stage, redact(f.reason)) for f in failures] + unit_failures
    doses, dose_failures = ingest_doses(
        files, lesions, series, out
    )  # RTDOSE/RTPLAN -> dose.csv (ingest_dose.py)
    failures += [CaseFailure(redact(f.case_id), f.stage, redact(f.reason)) for f in dose_failures]
    _write_tables(out, lesions, masks, series, failures, doses)
    state.save(out, key_print, redact=key_redactor, study_id_of=config.resolve_study_id)
    n_done = sum(done.values())
    logger.info(
        "ingest -> %s: %d lesion mask(s), %d OAR mask(s), %d series, %d failure(s); %d unit(s) done %s, "
        "%d reused",
        redact(str(out)),
        len(lesions),
        int((masks["kind"] == "oar").sum()),
        len(series),
        len(failures),
        n_done,
        dict(sorted(done.items())),
        reused,
    )
    return IngestResult(lesions, series, failures, n_done, reused, masks, dict(sorted(done.items())))


def _collect(
    units: Mapping[str, UnitResult],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[CaseFailure]]:
    lesions: list[dict[str, Any]] = []
    oars: list[dict[str, Any]] = []
    failures: list[CaseFailure] = []
    seen: dict[str, str] = {}
    seen_oar: dict[tuple[str, str], str] = {}
    for key in sorted(units, key=lambda k: (not k.startswith("series:"), k)):
        unit = units[key]
        failures.extend(unit.failures)
        for row in unit.lesions:
            if row["lesion_id"] in seen:
                failures.append(
                    CaseFailure(
                        unit.source or key,
                        "link",
                        format_problem(
                            f"lesion {row['lesion_id']} (ROI {row['roi_name']!r}) already has a mask from {seen[row['lesion_id']]}",
                            "each lesion is contoured once in the ingested folder",
                            "remove the duplicate structure set, rename the ROI, or map it in --roi-map",
                        ),
                    )
                )
                continue
            seen[row["lesion_id"]] = unit.source or key
            lesions.append(row)
        for row in unit.oars:
            where = (row["series_uid"], row["oar"])
            if where in seen_oar:
                failures.append(
                    CaseFailure(
                        unit.source or key,
                        "link",
                        format_problem(
                            f"OAR {row['oar']} of series {row['series_uid']} (ROI {row['roi_name']!r}) already has a mask "
                            f"from {seen_oar[where]}",
                            "each organ at risk is contoured once per image series",
                            "map one of the two ROIs to 'ignore' in --roi-map",
                        ),
                    )
                )
                continue
            seen_oar[where] = unit.source or key
            oars.append(row)
    series = [row for unit in units.values() for row in unit.series]
    lesion_table = pd.DataFrame(lesions, columns=list(LESION_COLUMNS)).sort_values("lesion_id", kind="stable")
    mask_rows = [
        {**{c: row.get(c, "") for c in MASK_COLUMNS}, "kind": "lesion", "structure_id": row["lesion_id"]}
        for row in lesion_table.to_dict("records")
    ] + oars
    mask_table = pd.DataFrame(mask_rows, columns=list(MASK_COLUMNS)).sort_values(
        ["kind", "structure_id", "series_uid"], kind="stable"
    )
    series_table = pd.DataFrame(series, columns=list(SERIES_COLUMNS)).sort_values(
        ["study_id", "study_date", "series_uid"]
    )
    return (
        lesion_table.reset_index(drop=True),
        mask_table.reset_index(drop=True),
        series_table.reset_index(drop=True),
        failures,
    )


def _remove_stale(state: IngestState, units: Mapping[str, UnitResult], out: Path) -> None:
    keep = {rel for unit in units.values() for rel in unit.outputs}
    for key, unit in state.units.items():
        for rel in unit.outputs:
            if rel not in keep and (out / rel).is_file():
                (out / rel).unlink()
                logger.info("removed stale output %s (its unit %s is gone or changed)", rel, key)


def _write_tables(
    out: Path,
    lesions: pd.DataFrame,
    masks: pd.DataFrame,
    series: pd.DataFrame,
    failures: list[CaseFailure],
    doses: pd.DataFrame,
) -> None:
    tables = {
        "images.csv": lesions,
        "masks.csv": masks,
        "series.csv": series,
        "dose.csv": doses,
        "failures.csv": pd.DataFrame(
            [(f.case_id, f.stage, f.reason) for f in failures], columns=list(FAILURE_COLUMNS)
        ),
    }
    for name, frame in tables.items():
        with atomic_write(out / name) as tmp:
            frame.to_csv(tmp, index=False, lineterminator="\n")
