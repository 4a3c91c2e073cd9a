"""Versioned pyradiomics parameter files (``ct_v1.yaml`` ...) and their loader."""

from __future__ import annotations

from sabrkit.features.params.radiomics_params import (
    TOP_LEVEL_KEYS,
    RadiomicsParams,
    load_params,
    packaged_params,
)

__all__ = ["RadiomicsParams", "load_params", "packaged_params", "TOP_LEVEL_KEYS"]
