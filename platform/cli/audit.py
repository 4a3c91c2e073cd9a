"""``sabrkit audit ...``: the audit key, signed checkpoints and verification of the audit log.

``init-key`` creates the key file (HMAC keys and the Ed25519 signing key, outside the
database), ``rotate-key`` adds a new HMAC key, ``checkpoint`` signs the chain head into the
checkpoint folder, ``verify`` checks chain, MACs, checkpoint and rows (also reachable as
``sabrkit registry audit verify``). See docs/audit.md for the threat model and the procedures.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from sabrkit.cli.output import console, err_console, handle_errors

if TYPE_CHECKING:
    from sabrkit.db import Database

app = typer.Typer(
    help="The audit log's key, signed checkpoints and verification (docs/audit.md).", no_args_is_help=True
)

DB_OPTION = typer.Option(None, "--database-url", help="SQLAlchemy URL (default: SABRKIT_DATABASE_URL).")
KEY_OPTION = typer.Option(
    None,
    "--key-file",
    help="Audit key file (default: SABRKIT_AUDIT_KEY_FILE, else ~/.config/sabrkit/audit-key.json).",
)
CHECKPOINT_OPTION = typer.Option(
    None,
    "--checkpoint",
    help="Verify against this checkpoint file (after a restore: "
    "the one kept with the backup); default: the latest written for the database.",
)


def _database(url: str | None, key_file: Path | None = None) -> Database:
    """The configured database, its schema checked (never migrated: :mod:`sabrkit.cli.context`)."""
    from sabrkit.cli.context import open_cli_database

    return open_cli_database(url, audit_key_file=key_file)


@app.command("init-key")
@handle_errors
def init_key(key_file: Path = KEY_OPTION) -> None:
    """Create the audit key file (mode 0600); refuses to overwrite an existing one."""
    from sabrkit.audit.keys import init_key_file

    keyring = init_key_file(key_file)
    console.print(
        f"audit key file written to {keyring.path} (HMAC key {keyring.current}); back it up apart from "
        "the database: entries keyed with it cannot be verified without it",
        highlight=False,
    )


@app.command("rotate-key")
@handle_errors
def rotate_key(key_file: Path = KEY_OPTION) -> None:
    """Add a new HMAC key and make it current (old keys stay: verification needs them)."""
    from sabrkit.audit.keys import rotate_key_file

    keyring = rotate_key_file(key_file)
    console.print(
        f"new entries are keyed with {keyring.current}; the key file keeps {len(keyring.hmac_keys)} key(s)",
        highlight=False,
    )


@app.command()
@handle_errors
def checkpoint(database_url: str = DB_OPTION, key_file: Path = KEY_OPTION) -> None:
    """Sign the head of the audit chain and write it to the checkpoint folder (outside the database)."""
    from sabrkit.audit.checkpoint import checkpoint_dir, write_checkpoint

    with _database(database_url, key_file) as db:
        written = write_checkpoint(db)
    console.print(f"{written} written to {checkpoint_dir()}", highlight=False)


def run_verify(database_url: str | None, checkpoint_file: Path | None, key_file: Path | None = None) -> None:
    """Verify and print the report; exit 1 on any problem (shared with ``sabrkit registry audit verify``)."""
    from sabrkit.audit import verify_audit

    with _database(database_url, key_file) as db:
        report = verify_audit(db, checkpoint=checkpoint_file)
    for warning in report.warnings:
        err_console.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)
    if report.ok:
        console.print(str(report), highlight=False, markup=False, soft_wrap=True)
        return
    err_console.print(str(report), highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code=1)


@app.command()
@handle_errors
def verify(
    database_url: str = DB_OPTION, checkpoint_file: Path = CHECKPOINT_OPTION, key_file: Path = KEY_OPTION
) -> None:
    """Check the hash chain, the entries' MACs, the latest checkpoint and every audited row; exit 1 on any problem."""
    run_verify(database_url, checkpoint_file, key_file)
