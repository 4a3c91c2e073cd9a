"""``sabrkit features ...``: pyradiomics extraction, params, lesion -> patient aggregation."""

from __future__ import annotations

from pathlib import Path

import typer

from sabrkit.cli.output import console, handle_errors
from sabrkit.cli.tables import read_table, write_table

app = typer.Typer(help="Radiomic features: extract, show params, aggregate per patient.", no_args_is_help=True)


@app.command()
@handle_errors
def extract(
    manifest: Path = typer.Argument(..., help="CSV/Parquet with lesion_id, study_id, image_path, mask_path "
                                    "(paths relative to the manifest's folder)."),
    out: Path = typer.Option(..., "--out", help="Feature table (.parquet), written only if extraction succeeds."),
    params: str = typer.Option("ct_v1", "--params", help="Packaged params name (ct_v1) or a YAML file."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Worker processes (-1 = every core)."),
    max_failure_fraction: float = typer.Option(0.0, help="Failed lesions tolerated (fraction) before stopping."),
) -> None:
    """Extract pyradiomics features, one row per lesion, with provenance columns."""
    from sabrkit.features import extract_lesion_features, load_params, write_feature_table

    radiomics_params = load_params(params)
    result = extract_lesion_features(read_table(manifest), radiomics_params, n_jobs=jobs,
                                     max_failure_fraction=max_failure_fraction, base_dir=manifest.parent)
    write_feature_table(result.features, out)
    for failure in result.failures:
        console.print(f"[yellow]failed[/] {failure}", highlight=False)
    console.print(f"{len(result.features)} lesion(s), {len(result.failures)} failed -> {out}")


@app.command("params")
@handle_errors
def show_params(name: str = typer.Argument("ct_v1", help="Packaged params name or a YAML file.")) -> None:
    """Show a radiomics params file, its version and its hash."""
    import json

    from sabrkit.features import load_params

    p = load_params(name)
    console.print(f"version {p.version}  hash {p.params_hash}")
    console.print_json(json.dumps(p.to_pyradiomics_dict(), default=str))


@app.command()
@handle_errors
def aggregate(
    lesion_table: Path = typer.Argument(..., help="Lesion feature table (.parquet)."),
    out: Path = typer.Option(..., "--out", help="Patient table (.parquet or .csv)."),
    method: str = typer.Option("largest", help="largest | volume_weighted_mean | mean | max | min"),
) -> None:
    """Aggregate lesion features to one row per patient."""
    from sabrkit.features import aggregate_lesions, read_feature_table

    table = aggregate_lesions(read_feature_table(lesion_table), method)
    write_table(table, out)
    console.print(f"{len(table)} patient(s) -> {out}")
