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
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO_ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("sabrkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "sabrkit/" + p.relative_to(REPO_ROOT / "platform").as_posix()
        for p in (REPO_ROOT / "platform").rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.suffix in {".py", ".yaml", ".mako", ".typed", ".j2", ".html"}
    }
    missing = sorted(expected - names)
    assert not missing, f"wheel lacks {missing}"


def _lock_entries(path: Path) -> dict[str, tuple[str, int]]:
    """``name -> (version, number of hashes)`` of a pip-compile lock file."""
    import re

    entries: dict[str, tuple[str, int]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if match:
            current = match.group(1).lower().replace("_", "-").replace(".", "-")
            entries[current] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            version, n = entries[current]
            entries[current] = (version, n + 1)
    return entries


def test_locks_pin_every_package_with_hashes_and_agree_on_the_build_tools():
    main = _lock_entries(REPO_ROOT / "requirements.lock")
    build = _lock_entries(REPO_ROOT / "requirements-build.lock")
    assert len(main) > 100
    for name, (version, hashes) in {**main, **build}.items():
        assert hashes >= 1, f"{name}=={version} has no --hash (regenerate with `make lock`)"
    for name in ("numpy", "setuptools", "wheel"):
        assert name in build, name
        if name in main:
            assert main[name][0] == build[name][0], (
                f"{name}: requirements.lock and requirements-build.lock differ"
            )


def test_every_dependency_in_pyproject_is_locked():
    import re
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    locked = _lock_entries(REPO_ROOT / "requirements.lock")
    for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name = (
            re.split(r"[<>=!\[;~ ]", requirement, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")
        )
        assert name in locked, f"{requirement} is not in requirements.lock (run `make lock`)"
