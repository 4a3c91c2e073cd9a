"""Row keys of resampled data sets: how a bootstrap copy of a row names itself and its source.

A bootstrap cohort draws patients with replacement; every copy needs its own row key (the
data sets keep unique indexes), so copy ``k`` of row ``P001`` is ``P001#b3``-style:
``<source key><COPY_MARK><k>``. Pipeline steps that look rows up in side data by key (the ComBat
batches, the ICC filter's perturbed features: both in the features room) map a copy back to its
source with :func:`source_keys`; the models room names copies with :func:`copy_key`. One
convention in one neutral module, so neither room imports the other. Hand-written because no
library defines such a convention; it is a string suffix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

__all__ = ["COPY_MARK", "copy_key", "source_keys"]

COPY_MARK = "#b"
_COPY = re.compile(re.escape(COPY_MARK) + r"\d+$")


def copy_key(key: object, copy: int) -> str:
    """The key of bootstrap copy ``copy`` of row ``key``."""
    return f"{key}{COPY_MARK}{int(copy)}"


def source_keys(index: Iterable[object]) -> pd.Index:
    """``index`` with every bootstrap-copy key mapped back to its source key (other keys unchanged)."""
    return pd.Index([_COPY.sub("", k) if isinstance(k, str) else k for k in index])
