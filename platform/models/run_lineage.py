"""What an experiment run records about where it came from, and whether it may register a model.

:func:`experiment_lineage` gathers, for the MLflow run and ``metrics.json``:

* ``input_md5``: the content hash (MD5 of the bytes, DVC 3's file hash) of every input table;
* ``time_unit``: the unit of the input times (converted to months once);
* ``git_commit`` / ``git_dirty``: the *researcher's* project repository (the folder the
  experiment ran in), not sabrkit's; ``git_dirty`` ignores ``dvc.lock`` files, which
  ``dvc repro`` rewrites while it runs, nor the metrics it writes;
* ``dvc_experiment``: the DVC experiment name and baseline commit when run by ``dvc exp run``
  (DVC sets ``DVC_EXP_NAME`` and ``DVC_EXP_BASELINE_REV`` for its stages);
* ``sabrkit_version`` and ``sabrkit_git_commit`` (the installed package and, for a source
  checkout, its commit), separately.

:func:`pipeline_registration` is the registry policy of the DVC pipeline: a run registers a
model version only on a clean commit outside ``dvc exp run``; throwaway experiments log runs
but register nothing. ``sabrkit train`` registers only with ``--register``.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "PIPELINE_OUTPUT_FOLDERS",
    "dvc_experiment",
    "experiment_lineage",
    "input_hashes",
    "pipeline_registration",
    "project_git",
]

logger = logging.getLogger(__name__)

_IGNORED_FOR_DIRTY = ("dvc.lock",)
#: top-level folders of pipeline outputs that git tracks (DVC metrics, plots, reports with cache: false)
PIPELINE_OUTPUT_FOLDERS: tuple[str, ...] = ("metrics", "plots", "reports")


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None


def project_git(project: str | os.PathLike[str]) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git repository holding ``project``; ``(None, None)`` outside git.

    ``dirty`` is True when a tracked file differs from the commit, other than what ``dvc repro``
    itself rewrites while it runs: ``dvc.lock`` files and the git-tracked pipeline outputs under
    :data:`PIPELINE_OUTPUT_FOLDERS` (paths relative to the repository root).
    """
    folder = Path(project)
    done = _git(folder, "rev-parse", "HEAD")
    if done is None or done.returncode != 0 or len(done.stdout.strip()) != 40:
        return None, None
    commit = done.stdout.strip()
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    if status is None or status.returncode != 0:
        return commit, None
    changed = [
        Path(line[3:].strip().strip('"').split(" -> ")[-1])
        for line in status.stdout.splitlines()
        if line.strip()
    ]
    dirty = any(
        path.name not in _IGNORED_FOR_DIRTY and path.parts[0] not in PIPELINE_OUTPUT_FOLDERS
        for path in changed
    )
    return commit, dirty


def dvc_experiment(environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """``{"name", "baseline_rev"}`` when running under ``dvc exp run``, else None."""
    environ = os.environ if environ is None else environ
    name = environ.get("DVC_EXP_NAME")
    if not name:
        return None
    return {"name": name, "baseline_rev": environ.get("DVC_EXP_BASELINE_REV", "")}


def input_hashes(paths: Mapping[str, str | os.PathLike[str]]) -> dict[str, str]:
    """MD5 of each input file (folders: of their sorted file hashes), by input name."""
    from sabrkit.models.lineage import file_md5

    return {name: file_md5(path) for name, path in sorted(paths.items()) if Path(path).exists()}


def experiment_lineage(
    project: str | os.PathLike[str] | None,
    input_paths: Mapping[str, str | os.PathLike[str]],
    time_unit: str = "months",
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The lineage record of a run (module docstring); ``project`` None means the working directory."""
    from sabrkit.models.lineage import git_commit as sabrkit_commit
    from sabrkit.version import __version__

    folder = Path.cwd() if project is None else Path(project)
    commit, dirty = project_git(folder)
    return {
        "input_md5": input_hashes(input_paths),
        "input_files": {name: _relative(path, folder) for name, path in sorted(input_paths.items())},
        "time_unit": time_unit,
        "git_commit": commit,
        "git_dirty": dirty,
        "dvc_experiment": dvc_experiment(environ),
        "sabrkit_version": __version__,
        "sabrkit_git_commit": sabrkit_commit(),
    }


def _relative(path: str | os.PathLike[str], folder: Path) -> str:
    """``path`` relative to the project when inside it (metrics files stay the same on every machine)."""
    try:
        return Path(path).resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(path)


def pipeline_registration(lineage: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether a DVC pipeline run registers its model, and why (for the log).

    Registers only on a clean commit of the project outside ``dvc exp run``.
    """
    experiment = lineage.get("dvc_experiment")
    if experiment:
        return (
            False,
            f"DVC experiment {experiment['name']!r}: runs are logged, no model version is registered",
        )
    if lineage.get("git_commit") is None:
        return False, "the project is not a git repository: no model version is registered"
    if lineage.get("git_dirty") is not False:
        return False, "uncommitted changes in the project: commit them to register a model version"
    return True, f"clean commit {str(lineage['git_commit'])[:12]}: the model version is registered"
