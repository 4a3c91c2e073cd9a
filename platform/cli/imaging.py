"""``sabrkit imaging ...``: ingest DICOM, de-identify, check PHI, preprocess, segment, QC masks, dose constraints."""

from __future__ import annotations

from pathlib import Path

import typer

from sabrkit.cli.output import console, err_console, handle_errors
from sabrkit.cli.tables import read_table

app = typer.Typer(
    help="Imaging: DICOM ingest, de-identification, preprocessing, segmentation, mask QC.",
    no_args_is_help=True,
)

_SECRET_ENV = "SABRKIT_DEID_SECRET"


#: sabrkit.imaging.ingest.DEFAULT_LESION_PATTERN (spelled out: importing sabrkit.imaging here would slow every command)
DEFAULT_LESION_PATTERN = r"GTV(?:[ _-]?L?[ _-]?(?P<n>\d+)|[ _-]?(?:P|PRIMARY))?"

_KEY_TABLE_HELP = (
    "Key table CSV: columns hospital_number (the DICOM PatientID), study_id (the pseudonym, "
    "SABR-RCC-nnn); optional family_name, given_name, date_of_birth. See docs/imaging.md."
)


def _key_table(path: Path | None) -> dict[str, str] | None:
    """hospital_number -> study_id from a validated key table (see sabrkit.imaging.key_table)."""
    from sabrkit.imaging.key_table import read_key_table

    if path is None:
        return None
    return dict(read_key_table(path).study_id_of)


def _triple(text: str, n: int, what: str) -> tuple[int, ...]:
    from sabrkit.errors import ConfigError, format_problem

    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != n:
        raise ConfigError(
            format_problem(f"{what} {text!r}", f"{n} comma-separated voxel indices", "e.g. 64,64,32")
        )
    return values


def _show_failures(failures: list) -> None:
    for failure in failures[:20]:
        err_console.print(f"  failed: {failure}", markup=False, highlight=False)
    if len(failures) > 20:
        err_console.print(f"  ... and {len(failures) - 20} more (see failures.csv)")


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
def ingest(
    src: Path = typer.Argument(
        ..., help="Folder of DICOM files (CT/MR series, RTSTRUCT, SEG) and/or NIfTI/NRRD pairs."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Output folder: images/, masks/, images.csv, masks.csv, series.csv, failures.csv."
    ),
    roi_pattern: str = typer.Option(
        r"GTV.*", help="ROI / segment names taken as lesions (regex, full match, any case)."
    ),
    lesion_pattern: str = typer.Option(
        DEFAULT_LESION_PATTERN,
        help="Regex pulling lesion number n from an ROI name "
        "(default: GTV_L1, GTV-L1, GTV L1, GTV-1, GTV_1, GTV1; GTV/GTVp = lesion 1).",
    ),
    roi_map: Path = typer.Option(
        None,
        help="CSV roi_name,maps_to[,study_id]: maps_to = L<n> (lesion n), a TG-263 OAR "
        "name (SpinalCord, Lung_L ...) or 'ignore'. Wins over the patterns.",
    ),
    oars: bool = typer.Option(
        True,
        "--oars/--no-oars",
        help="Also write masks of organs at risk named in the TG-263 "
        "synonym table (masks.csv rows with kind=oar).",
    ),
    key_table: Path = typer.Option(
        None, help=_KEY_TABLE_HELP + " Needed for folders that were not de-identified."
    ),
) -> None:
    """Crawl, link and convert a DICOM export; re-running skips everything already converted."""
    from sabrkit.imaging import IngestConfig, ingest_folder
    from sabrkit.imaging.roi_map import read_roi_map

    config = IngestConfig(
        roi_pattern=roi_pattern,
        lesion_pattern=lesion_pattern,
        patient_key=_key_table(key_table),
        roi_map=read_roi_map(roi_map) if roi_map is not None else None,
        oars=oars,
    )
    result = ingest_folder(src, out, config)
    n_oars = int((result.masks["kind"] == "oar").sum())
    console.print(
        f"{len(result.lesions)} lesion mask(s), {n_oars} OAR mask(s), {len(result.series)} image series -> "
        f"{out} ({result.n_units_done} unit(s) converted, {result.n_units_reused} unchanged)"
    )
    if result.failures:
        _show_failures(result.failures)
        raise typer.Exit(code=1)


@app.command()
@handle_errors
def deidentify(
    src: Path = typer.Argument(..., help="Folder of original DICOM files (clinical side)."),
    out: Path = typer.Option(
        ..., "--out", help="Folder for the de-identified files (<pseudonym>/<series>/<sop>.dcm)."
    ),
    key_table: Path = typer.Option(..., help=_KEY_TABLE_HELP),
    secret: str = typer.Option(
        ..., envvar=_SECRET_ENV, help=f"Key of the UID and date maps (env {_SECRET_ENV})."
    ),
    max_shift_days: int = typer.Option(365, help="Dates move back by 1..N days, one offset per patient."),
) -> None:
    """Apply the DICOM PS3.15 Basic Profile (pseudonym, shifted dates, consistent new UIDs)."""
    from sabrkit.imaging import DeidConfig, deidentify_folder

    config = DeidConfig(
        secret=secret, pseudonym_of=_key_table(key_table) or {}, max_shift_days=max_shift_days
    )
    result = deidentify_folder(src, out, config)
    console.print(
        f"{result.n_written} file(s) de-identified, {result.n_skipped} already done, "
        f"{len(result.patients)} patient(s) -> {out}"
    )
    if result.failures:
        _show_failures(result.failures)
        raise typer.Exit(code=1)


@app.command("phi-check")
@handle_errors
def phi_check(
    folder: Path = typer.Argument(..., help="De-identified DICOM folder."),
    key_table: Path = typer.Option(
        None, help=_KEY_TABLE_HELP + " Its numbers, names and birth dates are searched for."
    ),
) -> None:
    """Fail (exit 1) when any PS3.15 Table E.1-1 attribute or key-table identifier remains."""
    from sabrkit.imaging import assert_no_phi, check_deidentified_folder
    from sabrkit.imaging.key_table import read_key_table

    needles = list(read_key_table(key_table).identifiers) if key_table is not None else []
    findings = check_deidentified_folder(folder, identifiers=needles)
    assert_no_phi(findings)
    console.print(f"{folder}: no PHI attribute found")


@app.command()
@handle_errors
def constraints(
    folder: Path = typer.Argument(
        ..., help="Folder of DICOM files with RTDOSE, RTPLAN and RTSTRUCT (de-identified)."
    ),
    out: Path = typer.Option(..., "--out", help="Folder for plan_dvh.csv, constraints.csv and failures.csv."),
    table: Path = typer.Option(None, help="Constraint table YAML (default: the packaged TG-101 Table III)."),
    metrics: Path = typer.Option(
        None, help="Also write the summary as JSON here (e.g. metrics/constraints.json)."
    ),
    fail_on_violation: bool = typer.Option(False, help="Exit 1 when any constraint fails."),
    key_table: Path = typer.Option(
        None, help="identifiers.csv (hospital_number -> study_id) for folders that were not de-identified."
    ),
) -> None:
    """List, per plan, each OAR, metric, value, limit and pass/fail against a versioned constraint table."""
    import json

    import pandas as pd

    from sabrkit.dose import load_constraint_table
    from sabrkit.dose.plans import check_folder
    from sabrkit.imaging import IngestConfig

    loaded = load_constraint_table(table)
    result = check_folder(folder, loaded, IngestConfig(patient_key=_key_table(key_table)).study_id_of)
    out.mkdir(parents=True, exist_ok=True)
    result.dvh.to_csv(out / "plan_dvh.csv", index=False, lineterminator="\n")
    result.checks.to_csv(out / "constraints.csv", index=False, lineterminator="\n")
    pd.DataFrame(
        [(f.case_id, f.stage, f.reason) for f in result.failures], columns=["case_id", "stage", "reason"]
    ).to_csv(out / "failures.csv", index=False, lineterminator="\n")
    summary = {**result.summary(), "table_version": loaded.version}
    if metrics is not None:
        metrics.parent.mkdir(parents=True, exist_ok=True)
        metrics.write_text(json.dumps(summary, indent=2) + "\n")
    for row in result.checks[result.checks["status"] == "fail"].itertuples(index=False):
        console.print(
            f"  FAIL {row.study_id} {row.plan_label} {row.oar} {row.metric}: {row.value_gy:.2f} Gy "
            f">= {row.limit_gy:.2f} Gy ({row.fractions} fx)",
            markup=False,
            highlight=False,
        )
    console.print(
        f"{summary['n_plans']} plan(s) of {summary['n_patients']} patient(s): {summary['n_checks']} check(s), "
        f"{summary['n_violations']} violation(s), {summary['n_not_tabulated']} not tabulated "
        f"({loaded.version}) -> {out}"
    )
    if result.failures:
        _show_failures(result.failures)
        raise typer.Exit(code=1)
    if fail_on_violation and summary["n_violations"]:
        raise typer.Exit(code=1)


@app.command("synth-dicom")
@handle_errors
def synth_dicom(
    cohort: Path = typer.Argument(..., help="Synthetic cohort folder (sabrkit synth) with images."),
    out: Path = typer.Option(..., "--out", help="New folder for the DICOM export."),
    follow_up: bool = typer.Option(
        True, "--follow-up/--no-follow-up", help="Also write uncontoured follow-up CTs."
    ),
    dose: bool = typer.Option(
        True, "--dose/--no-dose", help="Also write PTV/OAR contours, RTPLAN and RTDOSE per lesion."
    ),
) -> None:
    """Write the cohort's CT regions as CT series + one RTSTRUCT per patient (+ plans, doses, follow-up CTs)."""
    from sabrkit.synthetic.dicom import write_cohort_dicom

    summary = write_cohort_dicom(cohort, out, follow_up=follow_up, dose=dose)
    console.print(
        f"{summary.n_patients} patient(s): {summary.n_image_series} CT series, {summary.n_rtstruct} RTSTRUCT, "
        f"{summary.n_rtplan} RTPLAN, {summary.n_rtdose} RTDOSE, "
        f"{summary.n_files} files ({summary.n_bytes / 1e6:.0f} MB) -> {out}"
    )


@app.command()
@handle_errors
def preprocess(
    manifest: Path = typer.Argument(
        ...,
        help="CSV/Parquet with lesion_id, study_id, image_path, mask_path "
        "(paths relative to the manifest's folder).",
    ),
    out: Path = typer.Option(..., "--out", help="Output folder (written atomically)."),
    spacing: float = typer.Option(1.0, help="Isotropic voxel spacing in mm."),
    hu_min: float = typer.Option(-1000.0, help="Lower HU clip."),
    hu_max: float = typer.Option(3000.0, help="Upper HU clip."),
    margin: float = typer.Option(10.0, help="Crop margin around the lesion, mm."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Worker processes."),
    max_failure_fraction: float = typer.Option(
        0.0, help="Failed lesions tolerated (fraction) before stopping."
    ),
) -> None:
    """Resample, clip and crop every lesion of a manifest; failed lesions are listed by ID."""
    from sabrkit.imaging import PreprocessConfig, preprocess_manifest

    config = PreprocessConfig(spacing_mm=(spacing,) * 3, hu_window=(hu_min, hu_max), crop_margin_mm=margin)
    table = preprocess_manifest(
        read_table(manifest),
        out,
        config,
        n_jobs=jobs,
        max_failure_fraction=max_failure_fraction,
        base_dir=manifest.parent,
    )
    console.print(f"{len(table)} lesion(s) preprocessed -> {out}")


@app.command("segment-seed")
@handle_errors
def segment_seed(
    image: Path = typer.Argument(..., help="Image file (NIfTI, NRRD, MHA)."),
    out: Path = typer.Option(..., "--out", help="Mask file to write (.nii.gz)."),
    seed: str = typer.Option(None, help="Voxel index x,y,z of a click inside the lesion."),
    box: str = typer.Option(None, help="Box x0,y0,z0,x1,y1,z1 (voxel indices, inclusive) around the lesion."),
    method: str = typer.Option(
        "threshold", help="threshold (adaptive) or confidence (SimpleITK ConfidenceConnected)."
    ),
) -> None:
    """Semi-automatic segmentation of one lesion from a click or a box."""
    from sabrkit.errors import ConfigError, format_problem
    from sabrkit.imaging import (
        SeedSegmentationConfig,
        read_image,
        segment_from_box,
        segment_from_seed,
        write_image,
    )
    from sabrkit.imaging.mask_qc import mask_qc

    config = SeedSegmentationConfig(method=method)
    img = read_image(image, image.name)
    if (seed is None) == (box is None):
        raise ConfigError(
            format_problem("seed/box", "give exactly one of --seed and --box", "e.g. --seed 64,64,32")
        )
    if seed is not None:
        mask = segment_from_seed(img, _triple(seed, 3, "seed"), config)
    else:
        corners = _triple(box, 6, "box")
        mask = segment_from_box(img, corners[:3], corners[3:], config)
    write_image(mask, out)
    qc = mask_qc(mask)
    console.print(f"{out}: {qc['volume_mm3']:.0f} mm3, {qc['n_components']} component(s)")


@app.command()
@handle_errors
def qc(
    manifest: Path = typer.Argument(
        ..., help="CSV/Parquet with lesion_id, image_path, mask_path (relative to its folder)."
    ),
    out: Path = typer.Option(..., "--out", help="Folder for qc.csv and one PNG per lesion."),
    reference_column: str = typer.Option(None, help="Column with reference mask paths (adds Dice)."),
) -> None:
    """Volume, connected components, Dice (when a reference exists) and a PNG per lesion."""
    from sabrkit.cli.tables import write_table
    from sabrkit.imaging import qc_manifest

    table = qc_manifest(
        read_table(manifest), out, base_dir=manifest.parent, reference_column=reference_column
    )
    write_table(table, out / "qc.csv")
    console.print(
        f"{len(table)} mask(s) checked -> {out / 'qc.csv'}; "
        f"{int((table['n_components'] > 1).sum())} with more than one component"
    )
    _show_failures(table.attrs.get("failures", []))
