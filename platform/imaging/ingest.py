"""Ingest a folder of DICOM (and NIfTI/NRRD) files into NIfTI images, lesion masks and a manifest.

``ingest_folder(src, out)``:

1. crawls ``src`` (headers only) and groups image files (CT/MR by default) into series;
2. checks each series is an evenly spaced stack and reads it with SimpleITK -> one NIfTI image;
3. links every RTSTRUCT and DICOM SEG to the series it references (SOP instance / series /
   frame-of-reference UIDs) and turns each ROI or segment whose name matches
   :attr:`IngestConfig.roi_pattern` into a mask on that series' grid;
4. names each mask with its registry lesion ID (ROI ``GTV_L2`` of patient ``SABR-RCC-001`` ->
   ``SABR-RCC-001-L2``, via :attr:`IngestConfig.lesion_pattern` or an explicit map);
5. also takes ``<lesion_id>_ct|_image`` + ``<lesion_id>_mask|_label`` NIfTI/NRRD pairs;
6. writes ``images.csv`` (one row per lesion, the columns of the cohort's ``images.csv`` plus
   ``study_date, series_uid, roi_name``), ``series.csv`` (every image series, contoured or
   not), ``dose.csv`` (lesions with a planned dose: RTDOSE resampled onto the CT,
   :mod:`sabrkit.imaging.ingest_dose`) and ``failures.csv`` (file or series, stage, reason).

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
    read_series,
)
from sabrkit.imaging.ingest_dose import ingest_doses
from sabrkit.imaging.ingest_state import IngestState, UnitResult, fingerprint
from sabrkit.imaging.ingest_units import (
    LESION_COLUMNS,
    SERIES_COLUMNS,
    IngestContext,
    ingest_nifti_pair,
    ingest_rtstruct,
    ingest_seg,
    nifti_pairs,
)

__all__ = ["IngestConfig", "IngestResult", "ingest_folder", "LESION_COLUMNS", "SERIES_COLUMNS"]

logger = logging.getLogger(__name__)

FAILURE_COLUMNS = ("case_id", "stage", "reason")


@dataclass(frozen=True)
class IngestConfig:
    """How ingest links DICOM objects to registry patients and lesions.

    Parameters
    ----------
    roi_pattern : str, default ``"GTV.*"``
        ROI / segment names taken as lesions (:func:`re.fullmatch`, case-insensitive).
    lesion_pattern : str, default ``"GTV[_-]?L(?P<n>\\d+)"``
        Pulls the lesion number ``n`` out of an ROI name (``fullmatch``, case-insensitive).
    lesion_id_template : str, default ``"{study_id}-L{n}"``
        Lesion ID built from the patient's study ID and the groups of ``lesion_pattern``.
    roi_lesion_map : mapping, optional
        Explicit ``(study_id, roi_name) -> lesion_id`` (e.g. from registry ``lesions.csv``);
        checked before ``lesion_pattern``.
    modalities : tuple of str, default ("CT", "MR")
        Image series kept.
    patient_id_pattern : str, default ``"SABR-RCC-\\d{3,}"``
        A DICOM PatientID matching it is already the pseudonymous study ID.
    patient_key : mapping, optional
        Source PatientID -> study ID, for folders that were not de-identified (the key table).
        A series whose PatientID is neither a pseudonym nor in the key is refused.
    slice_tolerance : float, default 0.01
        Allowed relative deviation of slice gaps (see :func:`check_series_geometry`).
    nifti_modality : str, default "CT"
        Modality recorded for NIfTI/NRRD pairs (they carry none).
    """

    roi_pattern: str = r"GTV.*"
    lesion_pattern: str = r"GTV[_-]?L(?P<n>\d+)"
    lesion_id_template: str = "{study_id}-L{n}"
    roi_lesion_map: Mapping[tuple[str, str], str] | None = field(default=None, compare=False)
    modalities: tuple[str, ...] = ("CT", "MR")
    patient_id_pattern: str = r"SABR-RCC-\d{3,}"
    patient_key: Mapping[str, str] | None = field(default=None, compare=False, repr=False)
    slice_tolerance: float = 0.01
    nifti_modality: str = "CT"

    def __post_init__(self) -> None:
        for name in ("roi_pattern", "lesion_pattern", "patient_id_pattern"):
            try:
                re.compile(getattr(self, name))
            except re.error as exc:
                raise ConfigError(
                    format_problem(f"IngestConfig {name}={getattr(self, name)!r} ({exc})",
                                   "patterns are Python regular expressions", "fix the expression")
                ) from exc
        if "n" not in re.compile(self.lesion_pattern).groupindex and "{n}" in self.lesion_id_template:
            raise ConfigError(
                format_problem(f"lesion_pattern {self.lesion_pattern!r} has no group 'n'",
                               "lesion_id_template uses {n}, so the pattern must capture it",
                               r"write e.g. 'GTV[_-]?L(?P<n>\d+)'")
            )
        if not (0 < self.slice_tolerance < 0.5):
            raise ConfigError(format_problem(f"slice_tolerance={self.slice_tolerance!r}",
                                             "must lie in (0, 0.5)", "use 0.01"))
        object.__setattr__(self, "modalities", tuple(self.modalities))

    def settings_key(self) -> str:
        """Fingerprint of every setting that changes outputs (the maps included)."""
        return fingerprint([
            self.roi_pattern, self.lesion_pattern, self.lesion_id_template, self.modalities,
            self.patient_id_pattern, self.slice_tolerance, self.nifti_modality,
            sorted((self.roi_lesion_map or {}).items()), sorted((self.patient_key or {}).items()),
        ])

    def study_id_of(self, patient_id: str) -> str:
        """The pseudonymous study ID of a DICOM PatientID.

        Raises
        ------
        ValidationError
            The PatientID is neither a pseudonym nor in ``patient_key``. The message never
            repeats the PatientID (it may be a hospital number).
        """
        if re.fullmatch(self.patient_id_pattern, patient_id):
            return patient_id
        if self.patient_key and patient_id in self.patient_key:
            return str(self.patient_key[patient_id])
        raise ValidationError(
            format_problem(
                "PatientID (not shown: it may be a hospital number) is not a pseudonymous study ID",
                f"ingested images carry study IDs matching {self.patient_id_pattern!r}",
                "de-identify the folder first (sabrkit imaging deidentify) or pass the key table",
            )
        )

    def is_lesion_roi(self, roi_name: str) -> bool:
        """True when ``roi_name`` matches :attr:`roi_pattern` (the ROI is a lesion)."""
        return re.fullmatch(self.roi_pattern, roi_name, flags=re.IGNORECASE) is not None

    def lesion_id_of(self, study_id: str, roi_name: str) -> str | None:
        """Registry lesion ID of an ROI, or None when the ROI is not a lesion (pattern)."""
        if not self.is_lesion_roi(roi_name):
            return None
        if self.roi_lesion_map and (study_id, roi_name) in self.roi_lesion_map:
            return str(self.roi_lesion_map[(study_id, roi_name)])
        match = re.fullmatch(self.lesion_pattern, roi_name, flags=re.IGNORECASE)
        if match is None:
            raise ValidationError(
                format_problem(
                    f"ROI {roi_name!r} of {study_id} matches roi_pattern but not lesion_pattern "
                    f"{self.lesion_pattern!r}",
                    "every lesion ROI must map to a registry lesion ID",
                    "rename the ROI (e.g. GTV_L1), widen lesion_pattern, or add it to roi_lesion_map",
                )
            )
        return self.lesion_id_template.format(study_id=study_id, **match.groupdict())


@dataclass
class IngestResult:
    """Outcome of :func:`ingest_folder`."""

    lesions: pd.DataFrame
    series: pd.DataFrame
    failures: list[CaseFailure]
    n_units_done: int
    n_units_reused: int


def _iso_date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else ""


def _ingest_series(item: ImageSeries, context: IngestContext) -> UnitResult:
    first = item.first
    result = UnitResult(fingerprint="")
    try:
        study_id = context.config.study_id_of(first.patient_id)
        spacing = check_series_geometry(item, context.config.slice_tolerance)
        image = read_series(item)
        relative = f"images/{study_id}/{first.modality}_{item.series_uid}.nii.gz"
        context.write(image, relative)
    except SabrkitError as exc:
        result.failures.append(CaseFailure(f"series {item.series_uid} ({first.path})", "series", f"{type(exc).__name__}: {exc}"))
        return result
    result.outputs.append(relative)
    result.series.append({
        "study_id": study_id, "study_date": _iso_date(first.study_date), "modality": first.modality,
        "series_uid": item.series_uid, "image_path": relative, "n_slices": len(item.files),
        "slice_spacing_mm": round(spacing, 6), "scanner": f"{first.manufacturer} {first.model}".strip(),
        "frame_of_reference_uid": first.frame_of_reference_uid,
    })
    return result


def _file_print(record: DicomFile) -> tuple[str, str]:
    """What a unit's result depends on: the instance and the file's content (not its path or mtime)."""
    return (record.sop_instance_uid, record.sha256)


def ingest_folder(
    src: str | os.PathLike[str], out_dir: str | os.PathLike[str], config: IngestConfig | None = None
) -> IngestResult:
    """Ingest every DICOM / NIfTI case under ``src`` into ``out_dir`` (see the module docstring).

    Parameters
    ----------
    src : path-like
        Folder crawled recursively (a hospital export or a de-identified copy).
    out_dir : path-like
        Output folder; ``images/``, ``masks/``, ``dose/``, ``images.csv``, ``series.csv``,
        ``dose.csv``, ``failures.csv`` and the state file ``.ingest_state.json``.
    config : IngestConfig, optional

    Returns
    -------
    IngestResult
        Lesion manifest (paths relative to ``out_dir``), series table, failures, and how
        many work units were done now or reused from the state file.

    Raises
    ------
    ConfigError
        ``src`` is not a folder.
    """
    config = config or IngestConfig()
    source, out = Path(src), Path(out_dir)
    if not source.is_dir():
        raise ConfigError(format_problem(f"ingest source {str(source)!r} is not a folder",
                                         "ingest crawls a folder of DICOM/NIfTI files", "pass the export folder"))
    out.mkdir(parents=True, exist_ok=True)
    state = IngestState.load(out)
    files, failures, state.files = crawl_dicom(source, state.files)
    context = IngestContext(config=config, out_dir=out)
    settings = config.settings_key()
    units: dict[str, UnitResult] = {}
    done = reused = 0

    def run(key: str, parts: list[Any], work: Any, source: str) -> UnitResult:
        nonlocal done, reused
        print_ = fingerprint([settings, *parts])
        unit = state.reusable(key, print_, out)
        if unit is None:
            unit = work()
            unit.fingerprint, unit.source = print_, source
            done += 1
        else:
            reused += 1
        units[key] = unit
        return unit

    all_series = group_series(files, config.modalities)
    for uid in sorted(all_series):
        item = all_series[uid]
        unit = run(f"series:{uid}", [_file_print(f) for f in item.files], lambda item=item: _ingest_series(item, context),
                   item.first.path)
        context.add_series(uid, unit, item)
    by_patient: dict[str, list[str]] = {}
    for uid, item in all_series.items():
        by_patient.setdefault(item.first.patient_id, []).append(units[f"series:{uid}"].fingerprint)
    for record in sorted(files, key=lambda r: r.path):
        related = sorted(by_patient.get(record.patient_id, []))
        if record.sop_class_uid == RTSTRUCT_SOP_CLASS:
            run(f"rtstruct:{record.sop_instance_uid}", [_file_print(record), related],
                lambda record=record: ingest_rtstruct(record.path, context), record.path)
        elif record.sop_class_uid == SEG_SOP_CLASS:
            run(f"seg:{record.sop_instance_uid}", [_file_print(record), related],
                lambda record=record: ingest_seg(record.path, context), record.path)
    for case, image_path, mask_path in nifti_pairs(source):
        stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (image_path, mask_path)]
        run(f"nifti:{case}", stats, lambda c=case, i=image_path, m=mask_path: ingest_nifti_pair(c, i, m, context),
            str(image_path))
    _remove_stale(state, units, out)
    state.units = units
    lesions, series, unit_failures = _collect(units)
    failures.extend(unit_failures)
    doses, dose_failures = ingest_doses(files, lesions, series, out)  # RTDOSE/RTPLAN -> dose.csv (ingest_dose.py)
    failures.extend(dose_failures)
    _write_tables(out, lesions, series, failures, doses)
    state.save(out)
    logger.info("ingest %s -> %s: %d lesion mask(s), %d series, %d failure(s); %d unit(s) done, %d reused",
                source, out, len(lesions), len(series), len(failures), done, reused)
    return IngestResult(lesions, series, failures, done, reused)


def _collect(units: Mapping[str, UnitResult]) -> tuple[pd.DataFrame, pd.DataFrame, list[CaseFailure]]:
    lesions: list[dict[str, Any]] = []
    failures: list[CaseFailure] = []
    seen: dict[str, str] = {}
    for key in sorted(units, key=lambda k: (not k.startswith("series:"), k)):
        unit = units[key]
        failures.extend(unit.failures)
        for row in unit.lesions:
            if row["lesion_id"] in seen:
                failures.append(CaseFailure(unit.source or key, "link", format_problem(
                    f"lesion {row['lesion_id']} (ROI {row['roi_name']!r}) already has a mask from {seen[row['lesion_id']]}",
                    "each lesion is contoured once in the ingested folder",
                    "remove the duplicate structure set or rename the ROI")))
                continue
            seen[row["lesion_id"]] = unit.source or key
            lesions.append(row)
    series = [row for unit in units.values() for row in unit.series]
    lesion_table = pd.DataFrame(lesions, columns=list(LESION_COLUMNS)).sort_values("lesion_id", kind="stable")
    series_table = pd.DataFrame(series, columns=list(SERIES_COLUMNS)).sort_values(["study_id", "study_date", "series_uid"])
    return lesion_table.reset_index(drop=True), series_table.reset_index(drop=True), failures


def _remove_stale(state: IngestState, units: Mapping[str, UnitResult], out: Path) -> None:
    keep = {rel for unit in units.values() for rel in unit.outputs}
    for key, unit in state.units.items():
        for rel in unit.outputs:
            if rel not in keep and (out / rel).is_file():
                (out / rel).unlink()
                logger.info("removed stale output %s (its source %s is gone or changed)", rel, key)


def _write_tables(out: Path, lesions: pd.DataFrame, series: pd.DataFrame, failures: list[CaseFailure],
                  doses: pd.DataFrame) -> None:
    tables = {
        "images.csv": lesions,
        "series.csv": series,
        "dose.csv": doses,
        "failures.csv": pd.DataFrame([(f.case_id, f.stage, f.reason) for f in failures], columns=list(FAILURE_COLUMNS)),
    }
    for name, frame in tables.items():
        tmp = out / f".{name}.tmp-{os.getpid()}"
        frame.to_csv(tmp, index=False, lineterminator="\n")
        os.replace(tmp, out / name)
