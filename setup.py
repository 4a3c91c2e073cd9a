"""Package list and package data computed from the folders under ``platform/``.

The import name ``sabrkit`` is mapped onto ``platform/`` (see DESIGN.md). ``platform/`` has
no ``__init__.py`` so that it never shadows the standard library's ``platform`` module; every
sub-folder that holds an ``__init__.py`` becomes ``sabrkit.<folder>``. Data files (params YAML,
templates, migrations' mako) in folders without an ``__init__.py`` ship with the nearest
package above them. ``tests/test_packaging.py`` checks the built wheel holds every file.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent / "platform"
DATA_SUFFIXES = {".yaml", ".yml", ".json", ".csv", ".ini", ".mako", ".html", ".j2", ".css", ".js", ".typed"}


def _package_dirs() -> dict[str, Path]:
    dirs = {"sabrkit": ROOT}
    for init in sorted(ROOT.rglob("__init__.py")):
        rel = init.parent.relative_to(ROOT)
        if "__pycache__" not in rel.parts:
            dirs[".".join(("sabrkit", *rel.parts))] = init.parent
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
