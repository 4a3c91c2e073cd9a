"""Package list and package data computed from the folders under ``platform/``.

The import name ``sabrkit`` is mapped onto ``platform/`` (see DESIGN.md). ``platform/`` has
no ``__init__.py`` so that it never shadows the standard library's ``platform`` module; every
sub-folder becomes ``sabrkit.<folder>``: those with an ``__init__.py`` as code packages, data
folders (templates, static files, the CTCAE term list) as data-only packages, which is how
setuptools wants folders of package data declared. ``tests/test_packaging.py`` checks the
built wheel holds every file.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent / "platform"
DATA_SUFFIXES = {".yaml", ".yml", ".json", ".csv", ".ini", ".mako", ".html", ".j2", ".css", ".js", ".typed"}


def _package_dirs() -> dict[str, Path]:
    dirs = {"sabrkit": ROOT}
    for folder in sorted(p for p in ROOT.rglob("*") if p.is_dir()):
        rel = folder.relative_to(ROOT)
        if "__pycache__" not in rel.parts and any(f.is_file() for f in folder.iterdir()):
            dirs[".".join(("sabrkit", *rel.parts))] = folder
    return dirs


def _package_data(dirs: dict[str, Path]) -> dict[str, list[str]]:
    owner_of = {path: name for name, path in dirs.items()}
    data: dict[str, list[str]] = {}
    for file in sorted(ROOT.rglob("*")):
        if not file.is_file() or file.suffix not in DATA_SUFFIXES or "__pycache__" in file.parts:
            continue
        folder = file.parent
        while folder not in owner_of:
            folder = folder.parent
        data.setdefault(owner_of[folder], []).append(file.relative_to(folder).as_posix())
    return data


PACKAGE_DIRS = _package_dirs()
setup(
    packages=list(PACKAGE_DIRS),
    package_dir={"sabrkit": "platform"},
    package_data=_package_data(PACKAGE_DIRS),
)
