"""Work units of :func:`sabrkit.imaging.ingest.ingest_folder`: structure sets, SEGs, NIfTI pairs.

Each unit returns a :class:`~sabrkit.imaging.ingest_state.UnitResult`; a problem with one ROI
or segment becomes one failure row and the unit's other ROIs still complete.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sabrkit.errors import CaseFailure, SabrkitError, ValidationError, format_problem
from sabrkit.imaging.ingest_state import UnitResult
from sabrkit.imaging.key_table import Redactor
from sabrkit.imaging.oars import normalise_roi_name as normalise

if TYPE_CHECKING:
    from sabrkit.imaging.dicom_index import ImageSeries
    from sabrkit.imaging.ingest import IngestConfig
    from sabrkit.imaging.rtstruct import ImageGrid, RoiContours

__all__ = [
    "LESION_COLUMNS",
    "MASK_COLUMNS",
    "SERIES_COLUMNS",
    "IngestContext",
    "ingest_rtstruct",
    "ingest_seg",
    "nifti_pairs",
    "ingest_nifti_pair",
]

logger = logging.getLogger(__name__)

#: Columns of the ingest ``images.csv``: the cohort contract's six, then the DICOM links.
LESION_COLUMNS: tuple[str, ...] = (
    "lesion_id",
    "study_id",
    "image_path",
    "mask_path",
    "modality",
    "scanner",
    "study_date",
    "series_uid",
    "roi_name",
)
#: Columns of ``masks.csv``: every mask written, lesions (``kind = lesion``, ``structure_id`` = lesion ID)
#: and organs at risk (``kind = oar``, ``structure_id`` = ``<study_id>-<TG-263 name>``, ``oar`` = TG-263 name).
MASK_COLUMNS: tuple[str, ...] = (
    "kind",
    "structure_id",
    "study_id",
    "oar",
    "roi_name",
    "image_path",
    "mask_path",
    "modality",
    "study_date",
    "series_uid",
)
#: Columns of ``series.csv`` (every image series, contoured or not).
SERIES_COLUMNS: tuple[str, ...] = (
    "study_id",
    "study_date",
    "modality",
    "series_uid",
    "image_path",
    "n_slices",
    "slice_spacing_mm",
    "scanner",
    "frame_of_reference_uid",
    "series_number",
)
_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha")
_IMAGE_ROLES = ("_ct", "_image", "_img")
_MASK_ROLES = ("_mask", "_label", "_seg")


@dataclass
class IngestContext:
    """Shared by the units of one run: settings, output folder and the series seen so far."""

    config: IngestConfig
    out_dir: Path
    redact: Redactor = field(default_factory=Redactor)
    series: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check_no_identifier(self, text: str, what: str) -> None:
        """Refuse ``text`` (a path, lesion ID or ROI name about to be written) when it holds a hospital number.

        Raises
        ------
        ValidationError
            Naming ``what`` but not the text.
        """
        if self.redact.contains_identifier(text):
            raise ValidationError(
                format_problem(
                    f"{what} (not shown) holds a hospital number or another patient ID that is not a pseudonym",
                    "no hospital number reaches an output path, table column or log line",
                    "rename the ROI in the planning system, or map it with --roi-map (roi_name,maps_to)",
                )
            )

    def write(self, image: Any, relative: str) -> None:
        from sabrkit.imaging.io import write_image

        write_image(image, self.out_dir / relative)

    def add_series(self, uid: str, unit: UnitResult, item: ImageSeries) -> None:
        self.series[uid] = {
            "row": unit.series[0] if unit.series else None,
            "failure": unit.failures[0].reason if unit.failures else None,
            "sop_uids": [f.sop_instance_uid for f in item.files],
        }

    def series_of_sop(self) -> dict[str, str]:
        return {sop: uid for uid, entry in self.series.items() for sop in entry["sop_uids"]}

    def reference_grid(self, uid: str) -> ImageGrid:
        """The voxel grid of the ingested series ``uid`` (its NIfTI header read only)."""
        import SimpleITK as sitk

        from sabrkit.imaging.rtstruct import ImageGrid

        reader = sitk.ImageFileReader()
        reader.SetFileName(str(self.out_dir / self.series[uid]["row"]["image_path"]))
        reader.ReadImageInformation()
        return ImageGrid(
            tuple(reader.GetSize()),
            tuple(reader.GetSpacing()),
            tuple(reader.GetOrigin()),
            tuple(reader.GetDirection()),
        )

    def pick_series(self, candidates: tuple[str, ...], what: str) -> str:
        """The one ingested series among ``candidates``; raise naming what is missing or failed."""
        ok = [uid for uid in candidates if uid in self.series and self.series[uid]["row"] is not None]
        if ok:
            return ok[0]
        failed = [uid for uid in candidates if uid in self.series]
        if failed:
            raise ValidationError(
                format_problem(
                    f"{what} references series {failed[0]}, which could not be ingested ({self.series[failed[0]]['failure']})",
                    "a contour is converted on the grid of its own series",
                    "fix that series (see its failure row)",
                )
            )
        shown = ", ".join(candidates) if candidates else "(no series reference at all)"
        raise ValidationError(
            format_problem(
                f"{what} references series {shown}, which is not in the ingested folder",
                "an RTSTRUCT/SEG is ingested together with the image series it was drawn on",
                "export the referenced image series into the same folder (or drop the structure set)",
            )
        )

    def lesion_row(self, lesion_id: str, uid: str, roi_name: str, mask_rel: str) -> dict[str, Any]:
        row = self.series[uid]["row"]
        return {
            "lesion_id": lesion_id,
            "study_id": row["study_id"],
            "image_path": row["image_path"],
            "mask_path": mask_rel,
            "modality": row["modality"],
            "scanner": row["scanner"],
            "study_date": row["study_date"],
            "series_uid": uid,
            "roi_name": roi_name,
        }

    def oar_row(self, oar: str, uid: str, roi_name: str, mask_rel: str) -> dict[str, Any]:
        row = self.series[uid]["row"]
        return {
            "kind": "oar",
            "structure_id": f"{row['study_id']}-{oar}",
            "study_id": row["study_id"],
            "oar": oar,
            "roi_name": roi_name,
            "image_path": row["image_path"],
            "mask_path": mask_rel,
            "modality": row["modality"],
            "study_date": row["study_date"],
            "series_uid": uid,
        }

    def place_structure(
        self, role: tuple[str, str], uid: str, roi_name: str, write: Callable[[Path], Any], result: UnitResult
    ) -> None:
        """Write one lesion or OAR mask (``write(path)``) and add its manifest row to ``result``.

        Lesion masks are ``masks/<lesion_id>_mask.nii.gz``; OAR masks
        ``masks/<study_id>-<TG-263 name>_<series_uid>_mask.nii.gz`` (an organ is contoured on each
        planning CT of a patient). Refuses (before writing) any name holding a hospital number.
        """
        kind, name = role
        study_id = self.series[uid]["row"]["study_id"]
        self.check_no_identifier(roi_name, "ROI name")
        if kind == "lesion":
            if not name.startswith(f"{study_id}-"):
                raise ValidationError(
                    format_problem(
                        f"lesion ID for study {study_id} does not start with the study ID (value not shown)",
                        "a lesion ID is <study_id>-L<n> (lesion_id_template)",
                        "fix lesion_id_template or roi_lesion_map",
                    )
                )
            self.check_no_identifier(name, "lesion ID")
            relative = f"masks/{name}_mask.nii.gz"
        else:
            relative = f"masks/{study_id}-{name}_{uid}_mask.nii.gz"
        self.check_no_identifier(relative, "mask path")
        write(self.out_dir / relative)
        result.outputs.append(relative)
        if kind == "lesion":
            result.lesions.append(self.lesion_row(name, uid, roi_name, relative))
        else:
            result.oars.append(self.oar_row(name, uid, roi_name, relative))


def ingest_rtstruct(path: str, context: IngestContext) -> UnitResult:
    """Convert every lesion and OAR ROI of one RTSTRUCT into a mask on its referenced series."""
    from sabrkit.imaging.rtstruct import read_rtstruct, roi_series_uids, write_contour_mask

    result = UnitResult(fingerprint="")
    try:
        structure_set = read_rtstruct(path)
    except SabrkitError as exc:
        result.failures.append(CaseFailure(path, "read", f"{type(exc).__name__}: {exc}"))
        return result
    series_of_sop = context.series_of_sop()
    for roi in structure_set.rois:
        shown = f"ROI {roi.number}" if context.redact.contains_identifier(roi.name) else f"ROI {roi.name}"
        what = f"RTSTRUCT {path!r} {shown}"
        try:
            uid = context.pick_series(roi_series_uids(roi, structure_set, series_of_sop), what)
            study_id = context.series[uid]["row"]["study_id"]
            role = context.config.roi_role(study_id, roi.name)
            if role is None:
                continue
            context.check_no_identifier(roi.name, f"ROI {roi.number} name")
            grid = context.reference_grid(uid)

            def write_roi(target: Path, roi: RoiContours = roi, grid: ImageGrid = grid) -> None:
                write_contour_mask(roi.contours, grid, target, roi=roi.name)

            context.place_structure(role, uid, roi.name, write_roi, result)
        except SabrkitError as exc:
            if not context.config.is_lesion_roi(roi.name) and not _named_structure(context, roi.name):
                continue  # an ROI that is neither lesion nor OAR: its series problems are not ours
            result.failures.append(
                CaseFailure(f"{path} [{shown}]", "rtstruct", f"{type(exc).__name__}: {exc}")
            )
            continue
    return result


def _named_structure(context: IngestContext, roi_name: str) -> bool:
    """True when an ROI would be converted whatever its patient (lesion pattern, map or OAR table)."""
    from sabrkit.imaging.oars import oar_name

    config = context.config
    if config.roi_map is not None and any(key[1] == normalise(roi_name) for key in config.roi_map.entries):
        return True
    return bool(config.oars and oar_name(roi_name) is not None)


def ingest_seg(path: str, context: IngestContext) -> UnitResult:
    """Convert every lesion and OAR segment of one DICOM SEG into a mask on its source series."""
    from sabrkit.imaging.dicom_seg import read_seg, segment_voxels
    from sabrkit.imaging.nifti_stream import NiftiSliceWriter

    result = UnitResult(fingerprint="")
    try:
        seg = read_seg(path)
        uid = context.pick_series(seg.referenced_series_uids, f"DICOM SEG {path!r}")
    except SabrkitError as exc:
        result.failures.append(CaseFailure(path, "seg", f"{type(exc).__name__}: {exc}"))
        return result
    study_id = context.series[uid]["row"]["study_id"]
    roles: dict[int, tuple[str, str]] = {}
    for info in seg.segments:
        try:
            role = context.config.roi_role(study_id, info.label)
            if role is not None:
                context.check_no_identifier(info.label, f"segment {info.number} label")
                roles[info.number] = role
        except SabrkitError as exc:
            result.failures.append(
                CaseFailure(f"{path} [segment {info.number}]", "seg", f"{type(exc).__name__}: {exc}")
            )
    grid = context.reference_grid(uid)
    sop_uids = context.series[uid]["sop_uids"]
    labels = {info.number: info.label for info in seg.segments}

    def write_segment(target: Path, *, number: int) -> None:
        voxels = segment_voxels(seg, sop_uids, number)
        with NiftiSliceWriter(target, grid.size, grid.spacing, grid.origin, grid.direction, np.uint8) as out:
            for plane in voxels:
                out.write(plane)

    for number, role in sorted(roles.items()):
        try:
            context.place_structure(
                role, uid, labels[number], functools.partial(write_segment, number=number), result
            )
        except SabrkitError as exc:
            result.failures.append(
                CaseFailure(f"{path} [segment {number}]", "seg", f"{type(exc).__name__}: {exc}")
            )
    return result


def _split(path: Path) -> tuple[str, str] | None:
    name = path.name
    suffix = next((s for s in _IMAGE_SUFFIXES if name.lower().endswith(s)), None)
    if suffix is None:
        return None
    stem = name[: -len(suffix)]
    for role in _IMAGE_ROLES + _MASK_ROLES:
        if stem.lower().endswith(role):
            return stem[: -len(role)], ("image" if role in _IMAGE_ROLES else "mask")
    return None


def nifti_pairs(root: Path) -> Iterator[tuple[str, Path, Path]]:
    """``(case, image, mask)`` for every ``<case>_ct|_image|_img`` + ``<case>_mask|_label|_seg`` pair."""
    found: dict[tuple[Path, str], dict[str, Path]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        split = _split(path)
        if split is not None:
            found.setdefault((path.parent, split[0]), {})[split[1]] = path
    for (_, case), roles in sorted(found.items()):
        if "image" in roles and "mask" in roles:
            yield case, roles["image"], roles["mask"]
        else:
            logger.warning(
                "NIfTI/NRRD case %s has no %s file; skipped", case, "mask" if "image" in roles else "image"
            )


def ingest_nifti_pair(case: str, image_path: Path, mask_path: Path, context: IngestContext) -> UnitResult:
    """Copy one image/mask pair named by its lesion ID into the output (mask binarised to 0/1)."""
    import SimpleITK as sitk

    from sabrkit.imaging.geometry import check_mask_not_empty, check_same_grid
    from sabrkit.imaging.io import read_image

    result = UnitResult(fingerprint="")
    try:
        match = re.fullmatch(rf"(?P<study_id>{context.config.patient_id_pattern})-L\d+", case)
        if match is None:
            raise ValidationError(
                format_problem(
                    f"NIfTI/NRRD case {case!r} ({image_path}) is not named by a lesion ID",
                    "image files are named <lesion_id>_ct.nii.gz (e.g. SABR-RCC-001-L1_ct.nii.gz)",
                    "rename the files to the registry lesion ID",
                )
            )
        study_id = context.config.study_id_of(match["study_id"])
        image = read_image(image_path, case)
        mask = read_image(mask_path, case, role="mask")
        check_same_grid(image, mask, case, tolerance=1e-4)
        mask = sitk.Cast(
            sitk.GetImageFromArray((sitk.GetArrayViewFromImage(mask) > 0).astype(np.uint8)), sitk.sitkUInt8
        )
        mask.CopyInformation(image)
        check_mask_not_empty(mask, case)
        image_rel, mask_rel = f"images/{study_id}/{case}_image.nii.gz", f"masks/{case}_mask.nii.gz"
        context.write(image, image_rel)
        context.write(mask, mask_rel)
    except SabrkitError as exc:
        result.failures.append(CaseFailure(str(image_path), "nifti", f"{type(exc).__name__}: {exc}"))
        return result
    modality = context.config.nifti_modality
    result.outputs += [image_rel, mask_rel]
    result.series.append(
        {
            "study_id": study_id,
            "study_date": "",
            "modality": modality,
            "series_uid": "",
            "image_path": image_rel,
            "n_slices": image.GetSize()[2],
            "slice_spacing_mm": round(image.GetSpacing()[2], 6),
            "scanner": "",
            "frame_of_reference_uid": "",
            "series_number": None,
        }
    )
    result.lesions.append(
        {
            "lesion_id": case,
            "study_id": study_id,
            "image_path": image_rel,
            "mask_path": mask_rel,
            "modality": modality,
            "scanner": "",
            "study_date": "",
            "series_uid": "",
            "roi_name": "",
        }
    )
    return result
