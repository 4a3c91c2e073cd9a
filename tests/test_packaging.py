"""The import name `sabrkit` maps onto platform/ without shadowing the stdlib `platform`."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_no_platform_init():
    assert not (REPO_ROOT / "platform" / "__init__.py").exists(), (
        "platform/__init__.py shadows the standard library's platform module; remove it"
    )


def test_stdlib_platform_wins_from_repo_root():
    code = (
        "import platform, pandas, uuid; platform.system(); "
        "import sysconfig, pathlib; "
        "assert pathlib.Path(platform.__file__).parent == pathlib.Path(sysconfig.get_paths()['stdlib']), platform.__file__; "
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_version_from_metadata():
    from importlib.metadata import version

    from sabrkit.version import __version__

    assert __version__ == version("sabrkit")


@pytest.mark.slow
def test_wheel_contains_every_module(tmp_path: Path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO_ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("sabrkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "sabrkit/" + p.relative_to(REPO_ROOT / "platform").as_posix()
        for p in (REPO_ROOT / "platform").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in {".py", ".yaml", ".mako", ".typed", ".j2", ".html"}
    }
    missing = sorted(expected - names)
    assert not missing, f"wheel lacks {missing}"
