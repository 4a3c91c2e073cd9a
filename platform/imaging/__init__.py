"""Imaging: DICOM/NIfTI ingest, de-identification, preprocessing, segmentation and mask QC (``sabrkit.imaging``).

The transform classes import MONAI (and torch), which takes seconds; they are re-exported
lazily so that ``import sabrkit.imaging`` (used by every feature-extraction worker) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from sabrkit.imaging.deid import DeidConfig, Deidentifier, DeidResult, deidentify_folder
from sabrkit.imaging.deid_check import PhiFinding, assert_no_phi, check_deidentified_folder, phi_findings
from sabrkit.imaging.deid_profile import profile_entries
from sabrkit.imaging.dicom_index import (
    check_series_geometry,
    crawl_dicom,
    group_series,
    read_series,
    write_series_nifti,
)
from sabrkit.imaging.dicom_seg import read_seg, seg_masks
from sabrkit.imaging.geometry import check_mask_not_empty, check_same_grid, grid_differences
from sabrkit.imaging.ingest import IngestConfig, IngestResult, ingest_folder
from sabrkit.imaging.io import read_image, sha256_file, write_image
from sabrkit.imaging.key_table import KeyTable, KeyTableError, Redactor, read_key_table
from sabrkit.imaging.mask_qc import mask_qc, qc_manifest, qc_png
from sabrkit.imaging.oars import OAR_SYNONYMS, oar_name
from sabrkit.imaging.preprocess import MANIFEST_COLUMNS, PreprocessConfig, check_manifest, preprocess_manifest
from sabrkit.imaging.roi_map import RoiMap, RoiMapError, read_roi_map
from sabrkit.imaging.rtstruct import rasterize_contours, read_rtstruct
from sabrkit.imaging.semiauto import SeedSegmentationConfig, segment_from_box, segment_from_seed
from sabrkit.imaging.transform_names import GEOMETRY_TRANSFORMS, INTENSITY_TRANSFORMS
from sabrkit.imaging.unet import UNetConfig, lesion_arrays, load_unet, save_unet, train_unet
from sabrkit.imaging.unet_infer import dice_coefficient, evaluate_unet, segment_image

if TYPE_CHECKING:
    from sabrkit.imaging.intensity import (
        N4BiasFieldCorrection,
        N4BiasFieldCorrectiond,
        PercentileNormalize,
        PercentileNormalized,
        ZScoreNormalize,
        ZScoreNormalized,
    )
    from sabrkit.imaging.transforms import (
        CheckGeometryd,
        ClipIntensity,
        ClipIntensityd,
        CropToMask,
        CropToMaskd,
        ResampleToSpacing,
        ResampleToSpacingd,
        mask_bounding_box,
        sabrkit_cause,
    )

_LAZY: dict[str, str] = {
    **dict.fromkeys(GEOMETRY_TRANSFORMS, "sabrkit.imaging.transforms"),
    **dict.fromkeys(INTENSITY_TRANSFORMS, "sabrkit.imaging.intensity"),
}

__all__ = [
    "read_image",
    "write_image",
    "sha256_file",
    "check_same_grid",
    "check_mask_not_empty",
    "grid_differences",
    "PreprocessConfig",
    "preprocess_manifest",
    "check_manifest",
    "MANIFEST_COLUMNS",
    "crawl_dicom",
    "group_series",
    "check_series_geometry",
    "read_series",
    "write_series_nifti",
    "read_rtstruct",
    "rasterize_contours",
    "read_seg",
    "seg_masks",
    "IngestConfig",
    "IngestResult",
    "ingest_folder",
    "KeyTable",
    "KeyTableError",
    "Redactor",
    "read_key_table",
    "OAR_SYNONYMS",
    "oar_name",
    "RoiMap",
    "RoiMapError",
    "read_roi_map",
    "DeidConfig",
    "Deidentifier",
    "DeidResult",
    "deidentify_folder",
    "PhiFinding",
    "phi_findings",
    "check_deidentified_folder",
    "assert_no_phi",
    "profile_entries",
    "SeedSegmentationConfig",
    "segment_from_seed",
    "segment_from_box",
    "mask_qc",
    "qc_png",
    "qc_manifest",
    "UNetConfig",
    "lesion_arrays",
    "train_unet",
    "save_unet",
    "load_unet",
    "dice_coefficient",
    "evaluate_unet",
    "segment_image",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sabrkit.imaging' has no attribute {name!r}")
