"""``sabrkit biobank ...``: every biobank action from the command line.

Accession (bulk CSV import with ``--dry-run``), show a sample, aliquot / derive / pool /
consume / dispose, storage (add, place, move, thaw, locate, find, box-map), custody events,
consent (forms, record, import, withdraw, disposal tasks), shipments (create, add, ship,
receive, manifest), labels (PDF, ZPL), assay results (import, export), exports (MIABIS-shaped
CSV/Parquet) and ``audit verify``. Every write names its operator (``--operator``, default: the
logged-in user) for the custody events and the audit log.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sabrkit.cli.audit import verify as audit_verify
from sabrkit.cli.context import DATABASE_URL_OPTION as DB_OPTION
from sabrkit.cli.context import open_cli_database, resolve_actor
from sabrkit.cli.output import console, handle_errors, parse_date
from sabrkit.errors import ValidationError, format_problem

app = typer.Typer(
    help="Biobank: accession, aliquot, store, track, consent, ship, label and export samples.",
    no_args_is_help=True,
)
storage_app = typer.Typer(
    help="Freezers, shelves, racks and boxes; place, move, thaw and find samples.", no_args_is_help=True
)
consent_app = typer.Typer(help="Consent forms, participants' consents and withdrawal.", no_args_is_help=True)
shipment_app = typer.Typer(
    help="Shipments: create, add samples, ship, receive, manifest.", no_args_is_help=True
)
assay_app = typer.Typer(help="Assay results (biomarkers): import and export.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log of every change.", no_args_is_help=True)
app.add_typer(storage_app, name="storage")
app.add_typer(consent_app, name="consent")
app.add_typer(shipment_app, name="shipment")
app.add_typer(assay_app, name="assay")
app.add_typer(audit_app, name="audit")

OPERATOR_OPTION = typer.Option(
    None, "--operator", "--actor", help="Who does this (default: SABRKIT_ACTOR, else the logged-in user)."
)


def _parts(items: list[str]) -> dict[str, float]:
    """``ACCESSION=AMOUNT`` options as a mapping, or a ValidationError naming the bad one."""
    parts: dict[str, float] = {}
    for item in items:
        accession_id, _, amount = item.partition("=")
        try:
            value = float(amount)
        except ValueError:
            value = float("nan")
        if not accession_id.strip() or not value > 0 or value == float("inf"):
            raise ValidationError(
                format_problem(
                    f"--part {item!r}",
                    "each part is ACCESSION=AMOUNT with a positive amount in the sample's unit",
                    "write e.g. --part SABR-PL-000001-C=0.5",
                ),
                field="part",
            )
        parts[accession_id.strip()] = value
    return parts


@app.command("import")
@handle_errors
def import_samples(
    csv_path: Path = typer.Argument(
        ...,
        help="CSV: study_id, timepoint, specimen_type, collected_at, volume_ml "
        "(+ optional processing columns, see docs/biobank.md).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row and report; write nothing."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
    encoding: str = typer.Option(
        None, "--encoding", help="Text encoding of the CSV (default UTF-8; e.g. latin-1)."
    ),
    errors_out: Path = typer.Option(
        None,
        "--errors-out",
        help="Write every row error to this CSV (default: beside the input when there are more than 100).",
    ),
) -> None:
    """Accession a CSV of samples: every row is checked first; all rows commit in one transaction or none.

    Rows already imported (same source_id, or same patient, timepoint, type and collection time)
    are skipped and counted: re-importing a file reports "N already imported, 0 new".
    """
    from rich.progress import Progress

    from sabrkit.biobank import load_samples, validate_sample_file
    from sabrkit.errors import ImportValidationError

    with open_cli_database(database_url, operator) as db:
        try:
            if dry_run:
                rows = validate_sample_file(db, csv_path, encoding=encoding)
                console.print(f"{csv_path}: dry run, all {len(rows)} row(s) valid; nothing written")
                return
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("accessioning", total=None)
                summary = load_samples(
                    db,
                    csv_path,
                    operator=resolve_actor(operator),
                    encoding=encoding,
                    on_progress=lambda n: progress.update(task, completed=n),
                )
        except ImportValidationError as exc:
            exc.errors_out = errors_out  # type: ignore[attr-defined]  # read by handle_errors
            raise
        console.print(str(summary))


@app.command("check-id")
@handle_errors
def check_id(
    accession_id: str = typer.Argument(..., help="An accession ID such as SABR-PL-000123-K."),
) -> None:
    """Check an accession ID's format and check character (e.g. after typing one by hand)."""
    from sabrkit.biobank import parse_accession_id

    parsed = parse_accession_id(accession_id)
    console.print(f"{accession_id}: valid ({parsed.specimen_type}, serial {parsed.serial})")


@app.command()
@handle_errors
def show(
    accession_id: str = typer.Argument(..., help="Accession ID."), database_url: str = DB_OPTION
) -> None:
    """Show a sample: participant, timepoint, SPREC, quantity left, status, location, lineage, freeze-thaw count."""
    from sabrkit.biobank import freeze_thaw_count, get_sample, lineage, locate

    with open_cli_database(database_url) as db:
        with db.session() as session:
            s = get_sample(session, accession_id)
        family = lineage(db, accession_id)
        rows = {
            "accession_id": s.accession_id,
            "study_id": s.study_id,
            "timepoint": s.timepoint,
            "specimen_type": f"{s.specimen_type} ({s.kind})",
            "collected_at": f"{s.collected_at:%Y-%m-%dT%H:%M}",
            "sprec": f"{s.sprec_code} (SPREC {s.sprec_version})" if s.sprec_code else "-",
            "quantity": f"{s.remaining_quantity:g} of {s.quantity:g} {s.quantity_unit}"
            if s.quantity
            else "-",
            "status": s.status,
            "location": locate(db, accession_id) or "-",
            "freeze_thaw_cycles": str(freeze_thaw_count(db, accession_id)),
            "parents": ", ".join(family["parents"]) or "-",
            "children": ", ".join(family["children"]) or "-",
        }
    for key, value in rows.items():
        console.print(f"{key:<20} {value}", highlight=False)


@app.command()
@handle_errors
def aliquot(
    parent: str = typer.Argument(..., help="Parent accession ID."),
    quantity: list[float] = typer.Option(
        ..., "--quantity", "-q", help="Amount per aliquot (parent's unit); repeat."
    ),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Split aliquots off a parent (never more than it has left)."""
    from sabrkit.biobank import aliquot_sample

    with open_cli_database(database_url, operator) as db:
        for accession_id in aliquot_sample(db, parent, quantity, operator=resolve_actor(operator)):
            console.print(accession_id)


@app.command()
@handle_errors
def derive(
    parent: str = typer.Argument(..., help="Parent accession ID."),
    specimen_type: str = typer.Option(..., "--type", help="dna, rna or cfdna."),
    taken: float = typer.Option(..., "--taken", help="Amount of the parent used (parent's unit)."),
    yield_quantity: float = typer.Option(..., "--yield", help="Amount of the derivative obtained."),
    unit: str = typer.Option(None, "--unit", help="Unit of the yield (default ug)."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Extract a derivative (DNA, RNA, cfDNA) from a parent."""
    from sabrkit.biobank import derive_sample

    with open_cli_database(database_url, operator) as db:
        console.print(
            derive_sample(
                db,
                parent,
                specimen_type,
                taken=taken,
                yield_quantity=yield_quantity,
                unit=unit,
                operator=resolve_actor(operator),
            )
        )


@app.command()
@handle_errors
def pool(
    part: list[str] = typer.Option(..., "--part", help="ACCESSION=AMOUNT; repeat for each parent."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Pool amounts of several samples of one participant and material."""
    from sabrkit.biobank import pool_samples

    parts = _parts(part)
    with open_cli_database(database_url, operator) as db:
        console.print(pool_samples(db, parts, operator=resolve_actor(operator)))


@app.command()
@handle_errors
def consume(
    accession_id: str = typer.Argument(..., help="Accession ID."),
    amount: float = typer.Option(None, "--amount", help="Amount used (default: all that is left)."),
    reason: str = typer.Option(..., "--reason", help="What it was used for (assay, batch)."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Use (part of) a sample up in an assay."""
    from sabrkit.biobank import consume_sample

    with open_cli_database(database_url, operator) as db:
        left = consume_sample(
            db, accession_id, amount=amount, operator=resolve_actor(operator), reason=reason
        )
    console.print(f"{accession_id}: {left:g} left")


@app.command()
@handle_errors
def dispose(
    accession_id: str = typer.Argument(..., help="Accession ID."),
    reason: str = typer.Option(..., "--reason", help="Why it is destroyed."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Destroy a sample (closes its open disposal tasks)."""
    from sabrkit.biobank import dispose_sample

    with open_cli_database(database_url, operator) as db:
        dispose_sample(db, accession_id, operator=resolve_actor(operator), reason=reason)
    console.print(f"{accession_id}: disposed")


@app.command()
@handle_errors
def events(
    accession_id: str = typer.Argument(..., help="Accession ID."), database_url: str = DB_OPTION
) -> None:
    """Chain of custody of a sample, oldest first."""
    from sabrkit.biobank import custody_history

    with open_cli_database(database_url) as db:
        for record in custody_history(db, accession_id):
            console.print(str(record), highlight=False)


@storage_app.command("add")
@handle_errors
def storage_add(
    path: str = typer.Argument(
        ..., help="FREEZER, FREEZER/SHELF, FREEZER/SHELF/RACK or FREEZER/SHELF/RACK/BOX, e.g. F1/S2/R3/B07."
    ),
    geometry: str = typer.Option(None, "--geometry", help="Box geometry ROWSxCOLUMNS, e.g. 9x9 or 10x10."),
    temperature: float = typer.Option(None, "--temperature", help="Freezer temperature in °C (e.g. -80)."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Create a storage path (missing levels are added)."""
    from sabrkit.biobank import create_storage

    with open_cli_database(database_url, operator) as db:
        created = create_storage(
            db, path, geometry=geometry, temperature_c=temperature, operator=resolve_actor(operator)
        )
    console.print("created " + ", ".join(created) if created else f"{path} exists")


@storage_app.command("place")
@handle_errors
def storage_place(
    accession_id: str = typer.Argument(..., help="Accession ID."),
    box: str = typer.Argument(..., help="Box path, e.g. F1/S2/R3/B07."),
    position: str = typer.Argument(..., help="Position, e.g. A1."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Freeze a sample into a free box position (fails with "position occupied" if taken)."""
    from sabrkit.biobank import place_sample

    with open_cli_database(database_url, operator) as db:
        console.print(place_sample(db, accession_id, box, position, operator=resolve_actor(operator)))


@storage_app.command("move")
@handle_errors
def storage_move(
    accession_id: str = typer.Argument(..., help="Accession ID."),
    box: str = typer.Argument(..., help="Target box path."),
    position: str = typer.Argument(..., help="Target position."),
    reason: str = typer.Option(None, "--reason", help="Why it moves."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Move a stored sample; the move is recorded in its chain of custody."""
    from sabrkit.biobank import move_sample

    with open_cli_database(database_url, operator) as db:
        console.print(
            move_sample(db, accession_id, box, position, operator=resolve_actor(operator), reason=reason)
        )


@storage_app.command("thaw")
@handle_errors
def storage_thaw(
    accession_id: str = typer.Argument(..., help="Accession ID."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Take a stored sample out and thaw it (its freeze-thaw count goes up by one)."""
    from sabrkit.biobank import thaw_sample

    with open_cli_database(database_url, operator) as db:
        console.print(
            f"{accession_id}: thawed, {thaw_sample(db, accession_id, operator=resolve_actor(operator))} cycle(s)"
        )


@storage_app.command("locate")
@handle_errors
def storage_locate(
    accession_id: str = typer.Argument(..., help="Accession ID."), database_url: str = DB_OPTION
) -> None:
    """Where a sample is stored."""
    from sabrkit.biobank import locate

    with open_cli_database(database_url) as db:
        console.print(locate(db, accession_id) or f"{accession_id} is not in storage")


@storage_app.command("find")
@handle_errors
def storage_find(
    location: str = typer.Argument(..., help="F1, F1/S2, a box, or BOX:A1."), database_url: str = DB_OPTION
) -> None:
    """List the samples stored at or below a location."""
    from sabrkit.biobank import find_samples

    with open_cli_database(database_url) as db:
        found = find_samples(db, location)
    for item in found:
        console.print(
            f"{item.location:<28} {item.accession_id}  {item.specimen_type:<12} {item.timepoint:<12} {item.status}",
            highlight=False,
        )
    console.print(f"{len(found)} sample(s)")


@storage_app.command("box-map")
@handle_errors
def storage_box_map(
    box: str = typer.Argument(..., help="Box path."),
    as_json: bool = typer.Option(False, "--json", help="JSON (for the web app) instead of text."),
    database_url: str = DB_OPTION,
) -> None:
    """Occupied and free positions of a box."""
    from sabrkit.biobank import box_map

    with open_cli_database(database_url) as db:
        grid = box_map(db, box)
    console.print(grid.to_json() if as_json else grid.to_text(), highlight=False, soft_wrap=True)


@consent_app.command("form-add")
@handle_errors
def consent_form_add(
    version: str = typer.Argument(..., help="Form version, e.g. 2.0."),
    title: str = typer.Option(..., "--title", help="Form title."),
    effective_from: str = typer.Option(..., "--from", help="In use from (YYYY-MM-DD)."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Register a consent form version."""
    from sabrkit.biobank import add_consent_form

    with open_cli_database(database_url, operator) as db:
        add_consent_form(
            db, version, title, parse_date(effective_from, "--from"), operator=resolve_actor(operator)
        )
    console.print(f"consent form {version} registered")


@consent_app.command("record")
@handle_errors
def consent_record(
    study_id: str = typer.Argument(..., help="Study ID."),
    form_version: str = typer.Option(..., "--form", help="Form version signed."),
    signed_on: str = typer.Option(..., "--signed", help="Date signed (YYYY-MM-DD)."),
    scope: list[str] = typer.Option(
        ..., "--scope", help="storage, future_research, genetic_research, image_linkage; repeat."
    ),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Record a participant's signed consent and its scopes."""
    from sabrkit.biobank import record_consent

    with open_cli_database(database_url, operator) as db:
        record_consent(
            db,
            study_id,
            form_version,
            parse_date(signed_on, "--signed"),
            scope,
            operator=resolve_actor(operator),
        )
    console.print(f"{study_id}: consent {form_version} recorded ({', '.join(scope)})")


@consent_app.command("withdraw")
@handle_errors
def consent_withdraw(
    study_id: str = typer.Argument(..., help="Study ID."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the audit log)."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Withdraw consent in one action: blocks all releases and exports, opens disposal tasks."""
    from sabrkit.biobank import withdraw_consent

    with open_cli_database(database_url, operator) as db:
        console.print(str(withdraw_consent(db, study_id, operator=resolve_actor(operator), reason=reason)))


@consent_app.command("tasks")
@handle_errors
def consent_tasks(database_url: str = DB_OPTION) -> None:
    """Open disposal tasks (samples to destroy after a withdrawal)."""
    from sqlalchemy import select

    from sabrkit.biobank.tables import DisposalTask, Sample

    with open_cli_database(database_url) as db, db.session() as session:
        rows = session.execute(
            select(Sample.accession_id, Sample.status, DisposalTask.reason, DisposalTask.created_at)
            .join(DisposalTask, DisposalTask.sample_id == Sample.id)
            .where(DisposalTask.status == "open")
            .order_by(DisposalTask.id)
        ).all()
    for accession_id, status, reason, created in rows:
        console.print(f"{created:%Y-%m-%d}  {accession_id}  ({status})  {reason}", highlight=False)
    console.print(f"{len(rows)} open disposal task(s)")


@shipment_app.command("create")
@handle_errors
def shipment_create(
    destination: str = typer.Option(..., "--to", help="Destination laboratory."),
    purpose: str = typer.Option("future_research", "--purpose", help="Consent scope the use needs."),
    courier: str = typer.Option(None, "--courier", help="Courier."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Open a draft shipment; prints its code."""
    from sabrkit.biobank import create_shipment

    with open_cli_database(database_url, operator) as db:
        console.print(
            create_shipment(db, destination, purpose, operator=resolve_actor(operator), courier=courier)
        )


@shipment_app.command("add")
@handle_errors
def shipment_add(
    code: str = typer.Argument(..., help="Shipment code."),
    accession_ids: list[str] = typer.Argument(..., help="Samples to add."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Add samples to a draft shipment (consent and status checked)."""
    from sabrkit.biobank import add_to_shipment

    with open_cli_database(database_url, operator) as db:
        console.print(
            f"{code}: {add_to_shipment(db, code, accession_ids, operator=resolve_actor(operator))} sample(s) added"
        )


@shipment_app.command("ship")
@handle_errors
def shipment_ship(
    code: str = typer.Argument(..., help="Shipment code."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Release the shipment (consent re-checked for every sample)."""
    from sabrkit.biobank import ship

    with open_cli_database(database_url, operator) as db:
        console.print(f"{code}: {ship(db, code, operator=resolve_actor(operator))} sample(s) shipped")


@shipment_app.command("receive")
@handle_errors
def shipment_receive(
    code: str = typer.Argument(..., help="Shipment code."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Record that the shipment arrived at its destination."""
    from sabrkit.biobank import receive_shipment

    with open_cli_database(database_url, operator) as db:
        console.print(
            f"{code}: {receive_shipment(db, code, operator=resolve_actor(operator))} sample(s) received"
        )


@shipment_app.command("manifest")
@handle_errors
def shipment_manifest_command(
    code: str = typer.Argument(..., help="Shipment code."),
    csv_out: Path = typer.Option(None, "--csv", help="Write the manifest as CSV."),
    pdf_out: Path = typer.Option(None, "--pdf", help="Write the manifest as PDF."),
    database_url: str = DB_OPTION,
) -> None:
    """Write the shipment manifest (CSV and/or PDF)."""
    from sabrkit.biobank import write_manifest_csv, write_manifest_pdf

    with open_cli_database(database_url) as db:
        if csv_out:
            console.print(str(write_manifest_csv(db, code, csv_out)))
        if pdf_out:
            console.print(str(write_manifest_pdf(db, code, pdf_out)))


@app.command()
@handle_errors
def labels(
    accession_ids: list[str] = typer.Argument(..., help="Samples to label."),
    pdf_out: Path = typer.Option(None, "--pdf", help="PDF label sheet to write."),
    layout: str = typer.Option("a4-38x21mm", "--layout", help="a4-38x21mm or letter-1.28x0.5in."),
    skip: int = typer.Option(0, "--skip", help="Labels already used on the first sheet."),
    zpl_out: Path = typer.Option(None, "--zpl", help="ZPL file for a thermal printer."),
    dpi: int = typer.Option(300, "--dpi", help="Thermal printer resolution (203, 300, 600)."),
    database_url: str = DB_OPTION,
) -> None:
    """Print labels: 2D barcode + accession ID, no identifying data (PDF sheet and/or ZPL)."""
    from sabrkit.biobank import label_records, write_label_sheet, zpl_labels

    with open_cli_database(database_url) as db:
        records = label_records(db, accession_ids)
    if pdf_out:
        console.print(str(write_label_sheet(records, pdf_out, layout, skip=skip)))
    if zpl_out:
        zpl_out.write_text(zpl_labels(records, dpi=dpi))
        console.print(str(zpl_out))


@assay_app.command("import")
@handle_errors
def assay_import(
    csv_path: Path = typer.Argument(
        ..., help="CSV: accession_id, analyte, value, unit, method, batch, lod, measured_on."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row; write nothing."),
    operator: str = OPERATOR_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Import assay results: every row checked; all commit or none."""
    from sabrkit.biobank import import_assay_results

    with open_cli_database(database_url, operator) as db:
        console.print(
            str(import_assay_results(db, csv_path, operator=resolve_actor(operator), dry_run=dry_run))
        )


@assay_app.command("export")
@handle_errors
def assay_export(
    out: Path = typer.Option(..., "--out", help="Output .parquet or .csv."),
    wide: bool = typer.Option(False, "--wide", help="One row per patient, <analyte>_<timepoint> columns."),
    database_url: str = DB_OPTION,
) -> None:
    """Export assay results joined to patients (consented participants only)."""
    from sabrkit.biobank import assay_feature_table, assay_results_table
    from sabrkit.cli.tables import write_table

    with open_cli_database(database_url) as db:
        table = assay_feature_table(db) if wide else assay_results_table(db)
    write_table(table, out)
    console.print(f"{len(table)} row(s) -> {out}")


@app.command("export")
@handle_errors
def export(
    folder: Path = typer.Argument(
        ..., help="Folder to write samples, donors, collections, assay_results into."
    ),
    file_format: str = typer.Option("parquet", "--format", help="parquet or csv."),
    database_url: str = DB_OPTION,
) -> None:
    """Export MIABIS-shaped sample, donor and collection tables and assay results (consented participants only)."""
    from sabrkit.biobank import export_biobank

    with open_cli_database(database_url) as db:
        for name, path in export_biobank(db, folder, file_format=file_format).items():
            console.print(f"{name}: {path}")


# the same command as `sabrkit audit verify`, defined once in sabrkit.cli.audit
audit_app.command("verify")(audit_verify)
