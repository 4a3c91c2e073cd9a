"""docs/models.md's and README.md's inference figures equal the ones generated from the result files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "inference_docs", REPO_ROOT / "benchmarks" / "inference_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_inference_figures_in_docs_and_readme_are_generated_from_the_result_files():
    generator = _generator()
    inference, validation = generator.load()
    docs = (REPO_ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    message = "run `python benchmarks/inference_docs.py --write`"
    assert generator.block(docs, "docs") == generator.render_docs(inference, validation), message
    assert generator.block(readme, "readme") == generator.render_readme(inference, validation), message


def test_a_partial_section_says_so():
    generator = _generator()
    inference, validation = generator.load()
    inference["coverage"] = {
        **inference["coverage"],
        "partial": True,
        "n_cohorts": 7,
        "n_cohorts_planned": 100,
    }
    assert "partial: 7 of 100 cohorts" in generator.render_docs(inference, validation)
    assert "partial: 7 of 100 cohorts" in generator.render_readme(inference, validation)
