"""The installed sabrkit version, read from the package metadata.

``sabrkit`` itself is a namespace package (its folder ``platform/`` must not hold an
``__init__.py``, see DESIGN.md), so the version lives here: ``sabrkit.version.__version__``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sabrkit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
