"""``sabrkit imaging ...``: geometry checks and preprocessing of image/mask pairs."""

from __future__ import annotations

from pathlib import Path

import typer

from sabrkit.cli.output import console, handle_errors
from sabrkit.cli.tables import read_table

app = typer.Typer(help="Imaging: check image/mask geometry, preprocess lesions.", no_args_is_help=True)


@app.command()
@handle_errors
def check(
    image: Path = typer.Argument(..., help="Image file (NIfTI, NRRD, MHA)."),
    mask: Path = typer.Argument(..., help="Mask file on the same grid."),
    case_id: str = typer.Option("case", "--id", help="Lesion ID used in messages."),
) -> None:
    """Check that an image and its mask share one voxel grid and the mask is not empty."""
    from sabrkit.imaging import check_mask_not_empty, check_same_grid, read_image

    img = read_image(image, case_id)
    msk = read_image(mask, case_id, role="mask")
    check_same_grid(img, msk, case_id)
    n_voxels = check_mask_not_empty(msk, case_id)
    console.print(f"{case_id}: same grid, {n_voxels} mask voxels")


@app.command()
@handle_errors
def preprocess(
    manifest: Path = typer.Argument(..., help="CSV/Parquet with lesion_id, study_id, image_path, mask_path "
                                    "(paths relative to the manifest's folder)."),
    out: Path = typer.Option(..., "--out", help="Output folder (written atomically)."),
    spacing: float = typer.Option(1.0, help="Isotropic voxel spacing in mm."),
    hu_min: float = typer.Option(-1000.0, help="Lower HU clip."),
    hu_max: float = typer.Option(3000.0, help="Upper HU clip."),
    margin: float = typer.Option(10.0, help="Crop margin around the lesion, mm."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Worker processes."),
    max_failure_fraction: float = typer.Option(0.0, help="Failed lesions tolerated (fraction) before stopping."),
) -> None:
    """Resample, clip and crop every lesion of a manifest; failed lesions are listed by ID."""
    from sabrkit.imaging import PreprocessConfig, preprocess_manifest

    config = PreprocessConfig(spacing_mm=(spacing,) * 3, hu_window=(hu_min, hu_max), crop_margin_mm=margin)
    table = preprocess_manifest(read_table(manifest), out, config, n_jobs=jobs,
                                max_failure_fraction=max_failure_fraction, base_dir=manifest.parent)
    console.print(f"{len(table)} lesion(s) preprocessed -> {out}")
