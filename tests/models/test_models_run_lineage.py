"""Lineage of a run (the researcher's repository, input hashes, DVC experiment) and the registry policy."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from sabrkit.models.run_lineage import (
    dvc_experiment,
    experiment_lineage,
    pipeline_registration,
    project_git,
)


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for name, text in {
        "dvc.lock": "a\n",
        "params.yaml": "x: 1\n",
        "metrics/cohort.json": "{}\n",
        "data.csv": "id,time\n1,2\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "study")
    return tmp_path


def test_dirty_ignores_what_dvc_repro_rewrites(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    assert project_git(repo) == (head, False)
    (repo / "dvc.lock").write_text("b\n")
    (repo / "metrics" / "cohort.json").write_text('{"n": 1}\n')
    (repo / "untracked.py").write_text("x = 1\n")
    assert project_git(repo) == (head, False)
    (repo / "params.yaml").write_text("x: 2\n")
    assert project_git(repo) == (head, True)
    assert project_git(repo.parent) == (None, None)  # not a git repository


def test_lineage_record_and_registration_policy(repo: Path) -> None:
    lineage = experiment_lineage(repo, {"table": repo / "data.csv"}, "weeks", environ={})
    assert lineage["input_md5"] == {"table": hashlib.md5((repo / "data.csv").read_bytes()).hexdigest()}
    assert lineage["input_files"] == {"table": "data.csv"} and lineage["time_unit"] == "weeks"
    assert lineage["git_commit"] == _git(repo, "rev-parse", "HEAD") and lineage["dvc_experiment"] is None
    assert pipeline_registration(lineage)[0] is True
    under_exp = experiment_lineage(
        repo, {}, environ={"DVC_EXP_NAME": "quick-try", "DVC_EXP_BASELINE_REV": "abc"}
    )
    assert under_exp["dvc_experiment"] == {"name": "quick-try", "baseline_rev": "abc"}
    assert pipeline_registration(under_exp) == (
        False,
        "DVC experiment 'quick-try': runs are logged, no model version is registered",
    )
    (repo / "params.yaml").write_text("x: 3\n")
    registers, reason = pipeline_registration(experiment_lineage(repo, {}, environ={}))
    assert not registers and "uncommitted changes" in reason
    assert dvc_experiment({}) is None
