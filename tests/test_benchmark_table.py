"""README's benchmark table equals the one generated from benchmarks/results/*.json."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "readme_table", REPO_ROOT / "benchmarks" / "readme_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_readme_benchmark_table_is_generated_from_the_json_files():
    generator = _generator()
    results = generator.load_results(REPO_ROOT / "benchmarks" / "results")
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert generator.readme_table(readme) == generator.render(results), (
        "README.md's benchmark table differs from benchmarks/results/*.json: "
        "run `python benchmarks/readme_table.py --write`"
    )


def test_every_benchmark_json_records_the_load_average_and_the_core_count():
    for path in sorted((REPO_ROOT / "benchmarks" / "results").glob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert "load_average" in text, f"{path.name} records no load average"
        assert '"cpu_count"' in text, f"{path.name} records no core count"
        assert "nothing else running" not in text.lower(), path.name
