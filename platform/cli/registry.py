"""``sabrkit registry ...``: migrate, import, enter records, correct, delete, restore, audit, export; ``sabrkit report``.

Every write is audited (who: ``--actor``, default the operating-system user; why: ``--reason``,
required for corrections and deletions). Single-record commands run the same checks as imports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sabrkit.cli.audit import verify as audit_verify
from sabrkit.cli.context import ACTOR_OPTION, open_cli_database
from sabrkit.cli.context import DATABASE_URL_OPTION as DB_OPTION
from sabrkit.cli.output import console, handle_errors
from sabrkit.cli.tables import write_table

app = typer.Typer(
    help="Clinical registry: migrate, import and enter records, audit, export tables.", no_args_is_help=True
)
audit_app = typer.Typer(help="The audit log: verify it, list the history of a row.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

REASON_OPTION = typer.Option(None, "--reason", help="Why (audit log); required when existing data change.")
STUDY_ID = typer.Option(..., "--study-id", help="Pseudonymous study ID, e.g. SABR-RCC-001.")


def _record(
    kind: str, values: dict[str, Any], database_url: str | None, actor: str | None, reason: str | None = None
) -> None:
    from sabrkit.registry.capture import record

    with open_cli_database(database_url, actor) as db:
        summary = record(db, {kind: values}, reason=reason)
    console.print(f"recorded {kind}: " + ", ".join(f"{n} {t}" for t, n in summary.counts.items() if n))


@app.command()
@handle_errors
def migrate(database_url: str = DB_OPTION) -> None:
    """Create or upgrade the registry + biobank schema to the newest Alembic revision (the only command that does)."""
    with open_cli_database(database_url, migrate=True) as db:
        console.print(f"database at revision {db.current_revision()}")


@app.command("import")
@handle_errors
def import_records(
    source: Path = typer.Argument(
        ...,
        help="A registry folder (patients.csv, lesions.csv, ...) or a REDCap "
        "raw-data export (.csv, one row per record and event).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Validate every row and report every error; write nothing."
    ),
    redcap: bool = typer.Option(
        False, "--redcap", help="Read SOURCE as a REDCap export (default for a .csv file)."
    ),
    database_url: str = DB_OPTION,
    actor: str = ACTOR_OPTION,
    encoding: str = typer.Option(
        None, "--encoding", help="Text encoding of the CSV files (default UTF-8; e.g. latin-1, cp1252)."
    ),
    errors_out: Path = typer.Option(
        None,
        "--errors-out",
        help="Write every row error to this CSV (default: beside the input when there are more than 100).",
    ),
) -> None:
    """Import registry records: every row is checked first; all rows commit in one transaction or none."""
    from sabrkit.errors import ImportValidationError
    from sabrkit.registry.load import read_registry_folder, validate_source, write_registry
    from sabrkit.registry.redcap import read_redcap_export

    as_redcap = redcap or (source.is_file() and source.suffix.lower() == ".csv")
    read = read_redcap_export if as_redcap else read_registry_folder
    with open_cli_database(database_url, actor) as db:
        registry_source = read(source, encoding)
        try:
            parsed = validate_source(db, registry_source)
        except ImportValidationError as exc:
            exc.errors_out = errors_out  # type: ignore[attr-defined]  # read by handle_errors
            raise
        counts = ", ".join(
            f"{len(rows)} {name.removesuffix('.csv')}" for name, rows in parsed.items() if rows
        )
        if dry_run:
            console.print(f"dry run: every row is valid ({counts}); nothing written")
            return
        console.print(str(write_registry(db, parsed, registry_source.name)))
        from sabrkit.audit.checkpoint import checkpoint_if_keyed

        written = checkpoint_if_keyed(db)
        if written is not None:
            console.print(f"audit {written} signed and written outside the database", highlight=False)


@app.command()
@handle_errors
def enrol(
    study_id: str = STUDY_ID,
    mdt_date: str = typer.Option(..., help="MDT decision date (YYYY-MM-DD)."),
    enrolment_date: str = typer.Option(..., help="Enrolment date (YYYY-MM-DD)."),
    age_years: int = typer.Option(..., help="Age at enrolment (18-120)."),
    sex: str = typer.Option(..., help="F or M."),
    ecog: int = typer.Option(..., help="ECOG performance status (0-4)."),
    kps: int = typer.Option(None, help="Karnofsky performance status (0-100, steps of 10)."),
    histology: str = typer.Option(..., help="clear_cell or non_clear_cell."),
    imdc_risk: str = typer.Option(..., help="favourable, intermediate or poor."),
    prior_nephrectomy: bool = typer.Option(
        ..., "--prior-nephrectomy/--no-prior-nephrectomy", help="Prior nephrectomy."
    ),
    prior_systemic_lines: int = typer.Option(None, help="Lines of systemic therapy before enrolment."),
    disease_state: str = typer.Option(..., help="oligometastatic or oligoprogressive."),
    n_metastases: int = typer.Option(None, help="Number of metastases at enrolment."),
    systemic_therapy: str = typer.Option(..., help="Concurrent therapy: none, tki, ici or tki_ici."),
    eligibility_date: str = typer.Option(None, help="Date of the eligibility check (default: the MDT date)."),
    mdt_decision: str = typer.Option(
        "sabr_all_lesions", help="sabr_all_lesions (required to enrol) or not_for_sabr."
    ),
    criteria_met: bool = typer.Option(
        False,
        "--criteria-met",
        help="Confirm every eligibility criterion: RCC confirmed, "
        "1-5 metastases, all lesions treatable, ECOG 0-2, informed consent.",
    ),
    database_url: str = DB_OPTION,
    actor: str = ACTOR_OPTION,
) -> None:
    """Enrol a patient: baseline, eligibility and MDT decision, in one audited transaction."""
    from sabrkit.registry.capture import enrol as enrol_patient

    patient = dict(
        study_id=study_id,
        mdt_date=mdt_date,
        enrolment_date=enrolment_date,
        age_years=age_years,
        sex=sex,
        ecog=ecog,
        kps=kps,
        histology=histology,
        imdc_risk=imdc_risk,
        prior_nephrectomy=str(prior_nephrectomy).lower(),
        prior_systemic_lines=prior_systemic_lines,
        disease_state=disease_state,
        n_metastases=n_metastases,
        systemic_therapy=systemic_therapy,
        last_contact_date=enrolment_date,
    )
    flag = str(criteria_met).lower()
    eligibility = dict(
        assessed_on=eligibility_date or mdt_date,
        rcc_confirmed=flag,
        one_to_five_metastases=flag,
        all_lesions_treatable=flag,
        ecog_0_to_2=flag,
        informed_consent=flag,
        mdt_decision=mdt_decision,
    )
    with open_cli_database(database_url, actor) as db:
        enrol_patient(db, patient, eligibility)
    console.print(f"enrolled {study_id}")


@app.command()
@handle_errors
def lesion(
    study_id: str = STUDY_ID,
    lesion_number: int = typer.Option(..., help="1, 2, ... (the lesion ID is <study-id>-L<n>)."),
    site: str = typer.Option(..., help="lung, bone, lymph_node, adrenal, liver, brain or pancreas."),
    organ: str = typer.Option(None, help="Organ or sub-site in words (e.g. 'right lower lobe')."),
    longest_diameter_mm: float = typer.Option(None, help="Longest diameter (mm)."),
    series_uid: str = typer.Option(None, help="DICOM SeriesInstanceUID of the planning CT."),
    study_uid: str = typer.Option(None, help="DICOM StudyInstanceUID of the planning CT."),
    roi_name: str = typer.Option(None, help="Name of the GTV ROI in the RTSTRUCT."),
    total_dose_gy: float = typer.Option(None, help="SABR course: total dose (Gy)."),
    fractions: int = typer.Option(None, help="SABR course: number of fractions."),
    start_date: str = typer.Option(None, help="SABR course: first fraction (YYYY-MM-DD)."),
    end_date: str = typer.Option(None, help="SABR course: last fraction (YYYY-MM-DD)."),
    technique: str = typer.Option(None, help="SABR course: technique (VMAT, CyberKnife ...)."),
    alpha_beta_gy: float = typer.Option(10.0, help="alpha/beta (Gy) stored with BED and EQD2."),
    database_url: str = DB_OPTION,
    actor: str = ACTOR_OPTION,
) -> None:
    """Record a treated lesion and, when the dose is given, its SABR course (BED/EQD2 computed)."""
    from sabrkit.registry.capture import record

    lesion_id = f"{study_id}-L{lesion_number}"
    entries: dict[str, dict[str, Any]] = {
        "lesion": dict(
            lesion_id=lesion_id,
            study_id=study_id,
            lesion_number=lesion_number,
            site=site,
            organ=organ,
            longest_diameter_mm=longest_diameter_mm,
            series_uid=series_uid,
            study_uid=study_uid,
            roi_name=roi_name,
        )
    }
    if total_dose_gy is not None:
        entries["course"] = dict(
            lesion_id=lesion_id,
            study_id=study_id,
            total_dose_gy=total_dose_gy,
            fractions=fractions,
            start_date=start_date,
            end_date=end_date,
            technique=technique,
            alpha_beta_gy=alpha_beta_gy,
        )
    with open_cli_database(database_url, actor) as db:
        record(db, entries)
    console.print(
        f"recorded lesion {lesion_id}" + (" and its SABR course" if total_dose_gy is not None else "")
    )


@app.command()
@handle_errors
def therapy(
    study_id: str = STUDY_ID,
    line_number: int = typer.Option(..., help="Line number (1, 2, ...)."),
    agent: str = typer.Option(..., help="Agent(s), e.g. 'pembrolizumab + axitinib'."),
    therapy_class: str = typer.Option(..., "--class", help="tki, ici or tki_ici."),
    start_date: str = typer.Option(..., help="Start (YYYY-MM-DD)."),
    stop_date: str = typer.Option(None, help="Stop (YYYY-MM-DD), if stopped."),
    database_url: str = DB_OPTION,
    actor: str = ACTOR_OPTION,
) -> None:
    """Record a line of systemic therapy."""
    _record(
        "therapy",
        dict(
            study_id=study_id,
            line_number=line_number,
            agent=agent,
            therapy_class=therapy_class,
            start_date=start_date,
            stop_date=stop_date,
        ),
        database_url,
        actor,
    )


@app.command()
@handle_errors
def visit(
    study_id: str = STUDY_ID,
    visit_number: int = typer.Option(..., help="Month after the first fraction (0 = baseline, 1-24)."),
    visit_date: str = typer.Option(..., help="Visit date (YYYY-MM-DD); must match the visit's window."),
    vrs_pain: int = typer.Option(None, help="VRS pain 0-4 (higher = worse)."),
    tess_score: float = typer.Option(None, help="TESS 0-60 (higher = better)."),
    database_url: str = DB_OPTION,
    actor: str = ACTOR_OPTION,
    reason: str = REASON_OPTION,
) -> None:
    """Record a monthly visit with its pain (VRS) and quality-of-life (TESS) scores."""
    _record(
        "visit",
        dict(
            study_id=study_id,
            visit_number=visit_number,
            visit_date=visit_date,
            vrs_pain=vrs_pain,
            tess_score=tess_score,
        ),
        database_url,
        actor,
        reason,
    )


@app.command()
@handle_errors
def ae(
    study_id: str = STUDY_ID,
    term: str = typer.Option(..., help="CTCAE term, e.g. 'Pneumonitis'."),
    grade: int = typer.Option(None, help="CTCAE grade (one the term allows); leave out if not graded yet."),
    onset_date: str = typer.Option(..., help="Onset (YYYY-MM-DD)."),
    attribution: str = typer.Option(
        ..., help="Attribution to SABR: definite, probable, possible, unlikely, unrelated."
    ),
    ctcae_version: str = typer.Option("5.0", help="CTCAE version (5.0; 4.03 and 6.0 accepted)."),
    resolution_date: str = typer.Option(None, help="Resolution (YYYY-MM-DD)."),
    lesion_id: str = typer.Option(None, help="Treated lesion the event is attributed to."),
    database_url: str = DB_OPTION,
    actor: str = ACTOR_OPTION,
    reason: str = REASON_OPTION,
) -> None:
    """Record an adverse event (CTCAE term and grade checked against the shipped term list)."""
    _record(
        "ae",
        dict(
            study_id=study_id,
            term=term,
            grade=grade,
            ctcae_version=ctcae_version,
            onset_date=onset_date,
            attribution_sabr=attribution,
            resolution_date=resolution_date,
            lesion_id=lesion_id,
        ),
        database_url,
        actor,
        reason,
    )


@app.command()
@handle_errors
def assessment(
    study_id: str = STUDY_ID,
    assessment_date: str = typer.Option(..., help="Imaging date (YYYY-MM-DD)."),
    overall_response: str = typer.Option(..., help="RECIST 1.1 overall response: CR, PR, SD, PD or NE."),
    modality: str = typer.Option("ct", help="ct, mri, pet_ct, bone_scan or other."),
    visit_number: int = typer.Option(None, help="Visit the restaging belongs to."),
    lesion_status: list[str] = typer.Option(
        None,
        "--lesion-status",
        help="Local status of a treated lesion, "
        "LESION_ID=controlled|local_failure|not_evaluable (repeatable).",
    ),
    database_url: str = DB_OPTION,
    actor: str = ACTOR_OPTION,
    reason: str = REASON_OPTION,
) -> None:
    """Record a tumour assessment (RECIST 1.1) and the local status of treated lesions."""
    from sabrkit.registry.capture import record

    entries: dict[str, Any] = {
        "assessment": dict(
            study_id=study_id,
            assessment_date=assessment_date,
            modality=modality,
            overall_response=overall_response,
            visit_number=visit_number,
        )
    }
    statuses = [item.partition("=") for item in lesion_status or []]
    if statuses:
        entries["lesion-assessment"] = [
            dict(lesion_id=lesion_id, assessment_date=assessment_date, local_status=status)
            for lesion_id, _, status in statuses
        ]
    with open_cli_database(database_url, actor) as db:
        record(db, entries, reason=reason)
    console.print(f"recorded assessment of {study_id} on {assessment_date}")


@app.command()
@handle_errors
def progression(
    study_id: str = STUDY_ID,
    event_date: str = typer.Option(..., help="Date of the first progression (YYYY-MM-DD)."),
    progression_type: str = typer.Option(..., "--type", help="local, distant or both."),
    database_url: str = DB_OPTION,
    actor: str = ACTOR_OPTION,
    reason: str = REASON_OPTION,
) -> None:
    """Record the patient's first progression (RECIST 1.1)."""
    _record(
        "progression",
        dict(study_id=study_id, event_date=event_date, progression_type=progression_type),
        database_url,
        actor,
        reason,
    )


@app.command()
@handle_errors
def death(
    study_id: str = STUDY_ID,
    death_date: str = typer.Option(..., help="Date of death (YYYY-MM-DD)."),
    cause: str = typer.Option(..., help="rcc or other."),
    database_url: str = DB_OPTION,
    actor: str = ACTOR_OPTION,
) -> None:
    """Record a death."""
    _record("death", dict(study_id=study_id, death_date=death_date, cause=cause), database_url, actor)


@app.command("off-study")
@handle_errors
def off_study(
    study_id: str = STUDY_ID,
    off_study_date: str = typer.Option(..., "--date", help="Date the patient went off study (YYYY-MM-DD)."),
    reason_code: str = typer.Option(
        ...,
        "--why",
        help="completed, death, withdrew_consent, lost_to_follow_up, investigator_decision or other.",
    ),
    database_url: str = DB_OPTION,
    actor: str = ACTOR_OPTION,
) -> None:
    """Record the end of a patient's participation."""
    _record(
        "off-study",
        dict(study_id=study_id, off_study_date=off_study_date, reason=reason_code),
        database_url,
        actor,
    )


@app.command()
@handle_errors
def correct(
    table: str = typer.Argument(..., help="Registry table, e.g. visits."),
    row_key: str = typer.Argument(..., help="The row's primary key (see `sabrkit registry audit history`)."),
    changes: list[str] = typer.Option(..., "--set", help="COLUMN=VALUE (repeatable)."),
    reason: str = typer.Option(..., "--reason", help="Why the value changes (required)."),
    database_url: str = DB_OPTION,
    actor: str = ACTOR_OPTION,
) -> None:
    """Correct values of one row (audited: old and new values, who and why)."""
    from sabrkit.registry.capture import correct as correct_row

    values = dict(item.partition("=")[::2] for item in changes)
    with open_cli_database(database_url, actor) as db:
        correct_row(db, table, row_key, values, reason=reason)
    console.print(f"corrected {table} row {row_key}: {', '.join(values)}")


@app.command()
@handle_errors
def delete(
    table: str = typer.Argument(..., help="Registry table, e.g. adverse_events."),
    row_key: str = typer.Argument(..., help="The row's primary key."),
    reason: str = typer.Option(..., "--reason", help="Why the row is deleted (required)."),
    database_url: str = DB_OPTION,
    actor: str = ACTOR_OPTION,
) -> None:
    """Delete one row (audited; the log keeps its last values)."""
    from sabrkit.registry.capture import delete as delete_row

    with open_cli_database(database_url, actor) as db:
        delete_row(db, table, row_key, reason=reason)
    console.print(f"deleted {table} row {row_key}")


@app.command()
@handle_errors
def deleted(
    table: str = typer.Option(None, "--table", help="Only this registry table, e.g. visits."),
    study_id: str = typer.Option(None, "--study-id", help="Only this patient's records."),
    database_url: str = DB_OPTION,
) -> None:
    """List deleted records not entered again: table, key, patient, who, when, why (newest first)."""
    from sabrkit.registry.capture import deleted_records

    with open_cli_database(database_url) as db:
        records = deleted_records(db, table=table, study_id=study_id)
    for item in records:
        note = f"  [not restorable: {item.not_restorable}]" if item.not_restorable else ""
        console.print(
            f"{item.audit_id:>6} {item.deleted_at:%Y-%m-%d %H:%M:%S} {item.actor:<16} {item.table} {item.row_key} "
            f"{item.study_id}  {item.reason or ''}{note}",
            highlight=False,
            markup=False,
        )
    console.print(
        f"{len(records)} deleted record(s); restore one with `sabrkit registry restore TABLE KEY --reason ...`"
    )


@app.command()
@handle_errors
def restore(
    table: str = typer.Argument(..., help="Registry table, e.g. visits."),
    row_key: str = typer.Argument(..., help="The deleted row's key (see `sabrkit registry deleted`)."),
    reason: str = typer.Option(..., "--reason", help="Why the deletion is undone (required)."),
    database_url: str = DB_OPTION,
    actor: str = ACTOR_OPTION,
) -> None:
    """Enter a deleted row again exactly as the audit log kept it (re-checked, audited as an insert)."""
    from sabrkit.registry.capture import restore as restore_row

    with open_cli_database(database_url, actor) as db:
        undone = restore_row(db, table, row_key, reason=reason)
    console.print(f"restored {table} row {row_key} (undoes deletion {undone.audit_id})")


# the same command as `sabrkit audit verify`, defined once in sabrkit.cli.audit
audit_app.command("verify")(audit_verify)


@audit_app.command("history")
@handle_errors
def audit_history(
    table: str = typer.Argument(..., help="Table name, e.g. visits."),
    row_key: str = typer.Argument(None, help="Row key (primary key); all rows when left out."),
    database_url: str = DB_OPTION,
) -> None:
    """List the audit entries of a table or a row: when, who, what, why."""
    from sabrkit.audit import audit_history as history

    with open_cli_database(database_url) as db:
        entries = history(db, table, row_key)
    for entry in entries:
        console.print(
            f"{entry.id:>6} {entry.recorded_at:%Y-%m-%d %H:%M:%S} {entry.actor:<16} {entry.action:<6} "
            f"{entry.table_name} {entry.row_key}  {entry.reason or ''}",
            highlight=False,
            markup=False,
        )
    console.print(f"{len(entries)} entr(ies)")


@app.command()
@handle_errors
def export(
    out: Path = typer.Option(..., "--out", help="Folder for adsl, adtte, ae, vrs and tess tables."),
    formats: str = typer.Option("parquet,csv", "--formats", help="parquet, csv or both (comma-separated)."),
    cutoff: str = typer.Option(
        None, "--cutoff", help="Data cut-off (YYYY-MM-DD; default: the latest contact)."
    ),
    database_url: str = DB_OPTION,
) -> None:
    """Export the analysis tables (ADSL-, ADTTE-, SDTM AE-like, VRS, TESS); pseudonymous IDs only."""
    import pandas as pd

    from sabrkit.registry.exports import build_analysis_tables, write_analysis_tables
    from sabrkit.registry.frames import registry_frames

    with open_cli_database(database_url) as db:
        frames = registry_frames(db)
    tables = build_analysis_tables(frames, cutoff=pd.Timestamp(cutoff) if cutoff else None)
    paths = write_analysis_tables(
        tables, out, formats=tuple(f.strip() for f in formats.split(",") if f.strip())
    )
    console.print(f"{len(tables.adsl)} patients; {len(paths)} files -> {out}")


@app.command()
@handle_errors
def endpoints(
    out: Path = typer.Option(..., "--out", help="Output file: .parquet or .csv."),
    database_url: str = DB_OPTION,
) -> None:
    """Export PFS and OS per patient (index date = first SABR fraction; months = days / 30.4375)."""
    from sabrkit.registry import endpoints_from_db

    with open_cli_database(database_url) as db:
        table = endpoints_from_db(db)
    write_table(table, out)
    console.print(f"{len(table)} patients, {int(table['pfs_event'].sum())} PFS events -> {out}")


@app.command()
@handle_errors
def covariates(
    out: Path = typer.Option(..., "--out", help="Output file: .parquet or .csv."),
    database_url: str = DB_OPTION,
) -> None:
    """Export the clinical covariates per patient (pseudonymous study IDs only)."""
    from sabrkit.registry import clinical_covariates_from_db

    with open_cli_database(database_url) as db:
        table = clinical_covariates_from_db(db)
    write_table(table, out)
    console.print(f"{len(table)} patients -> {out}")


@handle_errors
def report_command(
    out: Path = typer.Option(Path("reports/study.html"), "--out", help="HTML report to write."),
    metrics: Path = typer.Option(Path("metrics/study.json"), "--metrics", help="Metrics JSON to write."),
    tables_dir: Path = typer.Option(
        None, "--tables", help="Also write the analysis tables into this folder."
    ),
    target: int = typer.Option(60, "--target", help="Enrolment target of the registration."),
    cutoff: str = typer.Option(
        None, "--cutoff", help="Data cut-off (YYYY-MM-DD; default: the latest contact)."
    ),
    dose_dir: Path = typer.Option(
        None,
        "--dose",
        help="The dose stage's folder (data/dose: constraints.csv, lesion_dose.csv): adds the dose and "
        "OAR constraints section.",
    ),
    database_url: str = DB_OPTION,
) -> None:
    """Write the study report (self-contained HTML: enrolment, PFS/OS, local control, toxicity, VRS/TESS,
    subgroups, swimmer plot, data quality; dose and OAR constraints with --dose) and metrics/study.json."""
    import pandas as pd

    from sabrkit.registry.exports import build_analysis_tables, write_analysis_tables
    from sabrkit.registry.frames import registry_frames
    from sabrkit.registry.report import build_study_report, write_study_report
    from sabrkit.version import __version__

    with open_cli_database(database_url) as db:
        frames = registry_frames(db)
    tables = build_analysis_tables(frames, cutoff=pd.Timestamp(cutoff) if cutoff else None)
    extra: list[Any] = []
    if dose_dir is not None:
        from sabrkit.dose.report import dose_study_section, read_dose_outputs
        from sabrkit.errors import ConfigError, format_problem

        dose = read_dose_outputs(dose_dir, dose_dir.parent.parent / "metrics" / "constraints.json")
        if dose is None:
            raise ConfigError(
                format_problem(
                    f"--dose {dose_dir}",
                    "the folder holds the dose stage's constraints.csv and lesion_dose.csv",
                    "run the DICOM path's dose stage (dvc repro pipelines/dicom/dvc.yaml) or drop --dose",
                )
            )
        extra.append(dose_study_section(dose[0], dose[1], table_version=dose[2]))
    report = build_study_report(
        tables, frames, target_patients=target, version=__version__, extra_sections=extra
    )
    write_study_report(report, out, metrics)
    if tables_dir is not None:
        write_analysis_tables(tables, tables_dir)
    console.print(
        f"study report ({len(report.section_titles)} sections, {report.metrics['n_patients']} patients) -> "
        f"{out}; metrics -> {metrics}"
    )
