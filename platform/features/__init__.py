"""Handcrafted (pyradiomics) lesion features, feature tables and patient-level aggregation."""

from __future__ import annotations

from sabrkit.features.aggregate import AGGREGATION_METHODS, aggregate_lesions
from sabrkit.features.extract import PROVENANCE_COLUMNS, ExtractionResult, extract_lesion_features
from sabrkit.features.io import feature_columns, is_feature_column, read_feature_table, write_feature_table
from sabrkit.features.params import RadiomicsParams, load_params, packaged_params

__all__ = [
    "RadiomicsParams",
    "load_params",
    "packaged_params",
    "ExtractionResult",
    "extract_lesion_features",
    "PROVENANCE_COLUMNS",
    "write_feature_table",
    "read_feature_table",
    "feature_columns",
    "is_feature_column",
    "aggregate_lesions",
    "AGGREGATION_METHODS",
]
