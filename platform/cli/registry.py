"""``sabrkit registry ...``: database migrations, bulk import, endpoint exports."""

from __future__ import annotations

from pathlib import Path

import typer

from sabrkit.cli.output import console, handle_errors
from sabrkit.cli.tables import write_table
from sabrkit.settings import Settings

app = typer.Typer(help="Clinical registry: migrate the database, import records, export endpoints.", no_args_is_help=True)


def _database(url: str | None):
    from sabrkit.db import Database

    return Database.from_url(url or Settings().database_url)


DB_OPTION = typer.Option(None, "--database-url", help="SQLAlchemy URL (default: SABRKIT_DATABASE_URL).")


@app.command()
@handle_errors
def migrate(database_url: str = DB_OPTION) -> None:
    """Create or upgrade the registry + biobank schema to the newest Alembic revision."""
    with _database(database_url) as db:
        db.upgrade()
        console.print(f"database at revision {db.current_revision()}")


@app.command("import")
@handle_errors
def import_folder(
    folder: Path = typer.Argument(..., help="Folder with patients.csv, lesions.csv, sabr_courses.csv, visits.csv, "
                                  "adverse_events.csv, progression_events.csv, deaths.csv, identifiers.csv."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate every row and report; write nothing."),
    database_url: str = DB_OPTION,
) -> None:
    """Import registry CSV files: every row is checked first; all rows commit in one transaction or none."""
    from sabrkit.registry import load_registry_folder, validate_registry_folder

    with _database(database_url) as db:
        db.upgrade()
        if dry_run:
            parsed = validate_registry_folder(db, folder)
            counts = ", ".join(f"{len(rows)} {name}" for name, rows in parsed.items())
            console.print(f"dry run: every row is valid ({counts}); nothing written")
            return
        console.print(str(load_registry_folder(db, folder)))


@app.command()
@handle_errors
def endpoints(
    out: Path = typer.Option(..., "--out", help="Output file: .parquet or .csv."),
    database_url: str = DB_OPTION,
) -> None:
    """Export PFS and OS per patient (index date = first SABR fraction; months = days / 30.4375)."""
    from sabrkit.registry import endpoints_from_db

    with _database(database_url) as db:
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

    with _database(database_url) as db:
        table = clinical_covariates_from_db(db)
    write_table(table, out)
    console.print(f"{len(table)} patients -> {out}")
