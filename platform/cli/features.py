"""``sabrkit features ...``: extraction (local, cached, Dask), IBSI check, deep features, robustness, aggregation."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from sabrkit.cli.output import console, handle_errors
from sabrkit.cli.tables import read_table, write_table

app = typer.Typer(
    help="Radiomic features: extract (cached, local or Dask), IBSI check, deep features, robustness (ICC), "
    "params, per-patient aggregation.",
    no_args_is_help=True,
)

_MANIFEST_HELP = (
    "CSV/Parquet with lesion_id, study_id, image_path, mask_path (paths relative to the manifest's folder)."
)


@app.command()
@handle_errors
def extract(
    manifest: Path = typer.Argument(..., help=_MANIFEST_HELP),
    out: Path = typer.Option(
        ..., "--out", help="Feature table (.parquet), written only if extraction succeeds."
    ),
    params: str = typer.Option(
        "ct_v1",
        "--params",
        help="Packaged params name (ct_v1, ct_v2, mr_v1, ibsi_ct_a ...; "
        "`sabrkit features params --list`) or a YAML file.",
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Local worker processes (-1 = every core)."),
    max_failure_fraction: float = typer.Option(
        0.0, help="Failed lesions tolerated (fraction) before stopping."
    ),
    cache_dir: Path = typer.Option(
        None, "--cache-dir", help="Per-lesion cache folder: unchanged lesions are not re-extracted."
    ),
    scheduler: str = typer.Option(
        None,
        "--scheduler",
        help="Dask scheduler address (tcp://host:8786) to run on a "
        "cluster instead of local processes; paths must be valid on the workers.",
    ),
    failures: Path = typer.Option(
        None, "--failures", help="Also write the failed lesions (lesion_id, stage, reason) to this CSV."
    ),
    log_sigma_mm: str = typer.Option(
        "",
        "--log-sigma",
        help="Comma-separated LoG sigmas in mm (e.g. 1,3) to add LoG images (derives a new params version).",
    ),
    wavelet: bool = typer.Option(
        False, "--wavelet", help="Add the 8 wavelet decompositions (new params version)."
    ),
) -> None:
    """Extract pyradiomics features, one row per lesion, with provenance columns."""
    from sabrkit.features import extract_lesion_features, load_params, write_feature_table

    radiomics_params = load_params(params)
    sigmas = [float(s) for s in log_sigma_mm.split(",") if s.strip()]
    radiomics_params = radiomics_params.with_image_types(log_sigma_mm=sigmas, wavelet=wavelet)
    result = extract_lesion_features(
        read_table(manifest), radiomics_params, n_jobs=jobs, max_failure_fraction=max_failure_fraction,
        base_dir=manifest.parent, cache_dir=cache_dir, scheduler=scheduler,
    )  # fmt: skip
    write_feature_table(result.features, out)
    if failures is not None:
        write_table(result.failure_table(), failures)
    for failure in result.failures:
        console.print(f"[yellow]failed[/] {failure}", highlight=False)
    console.print(
        f"{len(result.features)} lesion(s) ({result.n_from_cache} from cache, {result.n_extracted} extracted), "
        f"{result.n_failed} failed; params {radiomics_params.version} -> {out}",
        highlight=False,
    )


@app.command("params")
@handle_errors
def show_params(
    name: str = typer.Argument("ct_v1", help="Packaged params name or a YAML file."),
    list_names: bool = typer.Option(
        False, "--list", help="List the packaged profiles with their descriptions."
    ),
    pyradiomics_only: bool = typer.Option(
        False,
        "--pyradiomics",
        help="Print only the pyradiomics section as YAML "
        "(a file plain pyradiomics loads: pyradiomics img mask --param FILE).",
    ),
) -> None:
    """Show a parameter profile (sabrkit section, pyradiomics section), its version and its hash."""
    import yaml

    from sabrkit.features import load_params, packaged_params

    if list_names:
        for packaged in packaged_params():
            profile = load_params(packaged)
            chain = "IBSI chain" if profile.preprocessing is not None else "pyradiomics pipeline"
            console.print(
                f"{packaged:<14} {profile.version:<14} {chain:<20} {profile.description}", highlight=False
            )
        return
    p = load_params(name)
    if pyradiomics_only:
        typer.echo(yaml.safe_dump(p.to_pyradiomics_dict(), sort_keys=False), nl=False)
        return
    console.print(f"version {p.version}  modality {p.modality}  hash {p.params_hash}")
    console.print_json(json.dumps(p.to_profile(), default=str))


@app.command()
@handle_errors
def ibsi(
    config: str = typer.Option(
        "all", "--config", help="digital, A, B, C, D, E or all (every configuration)."
    ),
    data: Path = typer.Option(
        None,
        "--data",
        help="Folder holding ibsi_digital_phantom/ and ibsi_ct_phantom/ "
        "(default: $SABRKIT_IBSI_DATA, else ../shared/data beside the checkout).",
    ),
    reference: Path = typer.Option(
        None, "--reference", help="Folder holding the IBSI reference CSVs (default: DATA/ibsi_reference)."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        "--metrics",
        help="Write one JSON section per configuration "
        "(n_compared, n_within_tolerance, n_unexplained, mismatched tags, checkpoints).",
    ),
    docs: Path = typer.Option(
        None, "--docs", help="Write the markdown comparison page (docs/ibsi.md; all six)."
    ),
    table: Path = typer.Option(
        None, "--table", help="Write every compared feature (config, tag, ours, reference, match ...) as CSV."
    ),
) -> None:
    """Check IBSI-1 compliance: features on the IBSI phantoms vs the IBSI reference values.

    Exits with status 1 when a feature differs without a documented reason or a preprocessing
    checkpoint is off its reference.
    """
    from importlib.metadata import version

    from sabrkit.errors import ValidationError, format_problem
    from sabrkit.features.ibsi import (
        CONFIGURATIONS,
        check_configurations,
        comparison_table,
        render_ibsi_markdown,
    )

    names = {c.lower(): c for c in CONFIGURATIONS}
    if config.lower() != "all" and config.lower() not in names:
        raise ValidationError(
            format_problem(
                f"--config {config!r}", f"one of {[*CONFIGURATIONS, 'all']}", "pass e.g. --config C"
            )
        )
    configs = list(CONFIGURATIONS) if config.lower() == "all" else [names[config.lower()]]
    from sabrkit.settings import shared_data_dir

    data_dir = data or shared_data_dir()
    summaries, results = check_configurations(configs, data_dir, reference or data_dir / "ibsi_reference")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summaries, indent=2, sort_keys=True) + "\n")
    if docs is not None:
        docs.write_text(render_ibsi_markdown(results, pyradiomics_version=version("pyradiomics")))
    if table is not None:
        write_table(comparison_table(results), table)
    failed = False
    for name, (comparison, checkpoints) in results.items():
        for row in comparison.loc[~comparison["match"]].itertuples(index=False):
            failed |= not row.known_deviation
            console.print(f"[yellow]differs[/] {name} {row.ibsi_tag}: ours {row.ours:.4g}, IBSI {row.reference:.4g}; "
                          f"{row.known_deviation or 'UNEXPLAINED'}", highlight=False)  # fmt: skip
        for row in checkpoints.loc[~checkpoints["match"]].itertuples(index=False):
            failed = True
            console.print(f"[yellow]checkpoint[/] {name} {row.ibsi_tag}: ours {row.ours:.4g}, IBSI "
                          f"{row.reference:.4g} +/- {row.tolerance:.3g}", highlight=False)  # fmt: skip
        section = summaries[name]
        console.print(
            f"{name}: {section['n_within_tolerance']} of {section['n_compared']} features within tolerance "
            f"({section['n_converted']} converted exactly, {section['n_known_deviations']} known deviations, "
            f"{section['n_unexplained']} unexplained); checkpoints {section['checkpoints']['n_within_tolerance']} "
            f"of {section['checkpoints']['n_compared']}",
            highlight=False,
        )
    if failed:
        raise typer.Exit(1)


@app.command("train-encoder")
@handle_errors
def train_encoder_command(
    manifest: Path = typer.Argument(..., help=_MANIFEST_HELP),
    out: Path = typer.Option(..., "--out", help="Checkpoint file to write (.pt)."),
    seed: int = typer.Option(20240502, help="Seed of the numpy Generator the training draws from."),
    epochs: int = typer.Option(15, help="Training epochs."),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu or cuda."),
) -> None:
    """Train the self-supervised autoencoder on the lesion crops of a manifest."""
    import numpy as np

    from sabrkit.features.deep import CropConfig, EncoderConfig, load_crops, save_encoder, train_encoder

    crop = CropConfig()
    _, crops = load_crops(read_table(manifest), crop, manifest.parent)
    encoder = train_encoder(
        crops, np.random.default_rng(seed), EncoderConfig(epochs=epochs), crop, device=device
    )
    save_encoder(encoder, out)
    console.print(
        f"{len(crops)} crops, final loss {encoder.losses[-1]:.5f}, sha {encoder.sha256[:12]} -> {out}"
    )


@app.command()
@handle_errors
def deep(
    manifest: Path = typer.Argument(..., help=_MANIFEST_HELP),
    encoder: Path = typer.Option(
        ...,
        "--encoder",
        help="Checkpoint from train-encoder (or your own sabrkit checkpoint); nothing is downloaded.",
    ),
    out: Path = typer.Option(..., "--out", help="Deep feature table (.parquet)."),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu or cuda."),
) -> None:
    """Embed every lesion with a trained encoder (deep_autoencoder_f000 ... columns)."""
    from sabrkit.features import feature_columns, write_feature_table
    from sabrkit.features.deep import deep_feature_table, load_encoder

    table = deep_feature_table(
        read_table(manifest), load_encoder(encoder), base_dir=manifest.parent, device=device
    )
    write_feature_table(table, out)
    console.print(f"{len(table)} lesion(s) x {len(feature_columns(table))} deep features -> {out}")


@app.command()
@handle_errors
def perturb(
    manifest: Path = typer.Argument(..., help=_MANIFEST_HELP),
    out: Path = typer.Option(..., "--out", help="Long table lesion x perturbation (.parquet or .csv)."),
    params: str = typer.Option("ct_v1", "--params", help="Packaged params name or a YAML file."),
    n_perturbations: int = typer.Option(10, "--n-perturbations", help="Perturbed copies per lesion."),
    seed: int = typer.Option(20240503, help="Seed of the perturbations."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Local worker processes (-1 = every core)."),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler address (tcp://host:8786)."),
) -> None:
    """Re-extract every lesion after random noise / rotation / translation / volume / contour perturbations."""
    from sabrkit.features import load_params
    from sabrkit.features.robustness import PerturbationConfig, extract_perturbed_features

    table, failures = extract_perturbed_features(
        read_table(manifest), load_params(params), PerturbationConfig(n_perturbations=n_perturbations), seed,
        n_jobs=jobs, scheduler=scheduler, base_dir=manifest.parent,
    )  # fmt: skip
    write_table(table, out)
    console.print(f"{table['lesion_id'].nunique()} lesion(s) x {n_perturbations} perturbations, "
                  f"{len(failures)} failed -> {out}")  # fmt: skip


@app.command()
@handle_errors
def icc(
    perturbed: Path = typer.Argument(..., help="Output of `features perturb` (.parquet or .csv)."),
    out: Path = typer.Option(
        ..., "--out", help="ICC table (.csv or .parquet): feature, icc, ci95_low, ci95_high."
    ),
    threshold: float = typer.Option(0.75, help="ICC(1,1) a feature needs to count as robust."),
) -> None:
    """ICC(1,1) per feature across perturbations (pingouin), with 95 % confidence intervals."""
    from sabrkit.features.robustness import icc_table

    table = icc_table(read_table(perturbed), id_column="lesion_id")
    write_table(table, out)
    robust = int((table["icc"] >= threshold).sum())
    console.print(f"{robust} of {len(table)} features with ICC(1,1) >= {threshold} -> {out}")


@app.command()
@handle_errors
def aggregate(
    lesion_table: Path = typer.Argument(..., help="Lesion feature table (.parquet)."),
    out: Path = typer.Option(..., "--out", help="Patient table (.parquet or .csv)."),
    method: str = typer.Option(
        "largest",
        help="largest | volume_weighted_mean | mean | max | min (every method "
        "adds n_lesions and total_volume_mm3).",
    ),
) -> None:
    """Aggregate lesion features to one row per patient."""
    from sabrkit.features import aggregate_lesions, read_feature_table

    table = aggregate_lesions(read_feature_table(lesion_table), method)
    write_table(table, out)
    console.print(f"{len(table)} patient(s) -> {out}")
