"""Radiomic features: handcrafted (pyradiomics) and deep (MONAI) features, IBSI check, robustness,
harmonisation, lesion -> patient aggregation.

Modules that import scikit-learn, torch or MONAI (``harmonize``, ``robustness``, ``deep``,
``ibsi``) are re-exported lazily, so ``import sabrkit.features`` (done by every extraction
worker process) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from sabrkit.features.aggregate import AGGREGATION_METHODS, aggregate_lesions
from sabrkit.features.cache import LesionCache, lesion_cache_key
from sabrkit.features.extract import (
    EXTRACTION_CODE_VERSION,
    PROVENANCE_COLUMNS,
    ExtractionResult,
    code_versions,
    extract_lesion_features,
)
from sabrkit.features.ibsi_processing import IBSIProcessing, ProcessedROI, process_roi
from sabrkit.features.io import feature_columns, is_feature_column, read_feature_table, write_feature_table
from sabrkit.features.params import RadiomicsParams, load_params, packaged_params

if TYPE_CHECKING:
    from sabrkit.features.deep import (
        CropConfig,
        EncoderConfig,
        TrainedEncoder,
        deep_feature_table,
        load_encoder,
        save_encoder,
        train_encoder,
    )
    from sabrkit.features.harmonize import ComBat, combat_estimates, scanner_batches
    from sabrkit.features.ibsi import (
        check_configurations,
        compare_with_ibsi_reference,
        extract_phantom_features,
        ibsi_summary,
        run_configuration,
    )
    from sabrkit.features.robustness import (
        ICCSelector,
        PerturbationConfig,
        aggregate_perturbed,
        extract_perturbed_features,
        icc1,
        icc_table,
    )

_LAZY: dict[str, str] = {
    **dict.fromkeys(("ComBat", "combat_estimates", "scanner_batches"), "harmonize"),
    **dict.fromkeys(
        ("ICCSelector", "PerturbationConfig", "aggregate_perturbed", "extract_perturbed_features", "icc1", "icc_table"),
        "robustness",
    ),
    **dict.fromkeys(
        ("check_configurations", "compare_with_ibsi_reference", "extract_phantom_features", "ibsi_summary",
         "run_configuration"),
        "ibsi",
    ),
    **dict.fromkeys(
        ("CropConfig", "EncoderConfig", "TrainedEncoder", "deep_feature_table", "load_encoder", "save_encoder",
         "train_encoder"),
        "deep",
    ),
}  # fmt: skip

__all__ = [
    "RadiomicsParams",
    "IBSIProcessing",
    "ProcessedROI",
    "process_roi",
    "load_params",
    "packaged_params",
    "ExtractionResult",
    "extract_lesion_features",
    "PROVENANCE_COLUMNS",
    "EXTRACTION_CODE_VERSION",
    "code_versions",
    "LesionCache",
    "lesion_cache_key",
    "write_feature_table",
    "read_feature_table",
    "feature_columns",
    "is_feature_column",
    "aggregate_lesions",
    "AGGREGATION_METHODS",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"sabrkit.features.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'sabrkit.features' has no attribute {name!r}")
