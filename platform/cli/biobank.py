"""``sabrkit biobank ...``: accession samples and check accession IDs."""

from __future__ import annotations

from pathlib import Path

import typer

from sabrkit.cli.output import console, handle_errors
from sabrkit.settings import Settings

app = typer.Typer(help="Biobank: accession samples, check accession IDs.", no_args_is_help=True)


@app.command("import")
@handle_errors
def import_samples(
    csv_path: Path = typer.Argument(..., help="CSV with study_id, timepoint, specimen_type, collected_at, volume_ml."),
    database_url: str = typer.Option(None, "--database-url", help="SQLAlchemy URL (default: SABRKIT_DATABASE_URL)."),
) -> None:
    """Accession the samples of a CSV file: every row is checked first; all commit or none."""
    from sabrkit.biobank import load_samples
    from sabrkit.db import Database

    with Database.from_url(database_url or Settings().database_url) as db:
        db.upgrade()
        console.print(str(load_samples(db, csv_path)))


@app.command("check-id")
@handle_errors
def check_id(accession_id: str = typer.Argument(..., help="An accession ID such as SABR-PL-000123-K.")) -> None:
    """Check an accession ID's format and check character (e.g. after typing one by hand)."""
    from sabrkit.biobank import parse_accession_id

    parsed = parse_accession_id(accession_id)
    console.print(f"{accession_id}: valid ({parsed})")
