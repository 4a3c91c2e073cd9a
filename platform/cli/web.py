"""``sabrkit serve`` (the web app under uvicorn) and ``sabrkit users ...`` (web accounts).

``sabrkit serve`` runs :func:`sabrkit.web.create_app` on the configured database
(``SABRKIT_DATABASE_URL`` or ``--database-url``); ``sabrkit serve --demo`` first builds a demo
site on the synthetic cohort in a temporary folder and prints one account per role. The first
admin of a real site is made with ``sabrkit users add NAME --role admin`` (password prompted).
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import typer

from sabrkit.cli.context import DATABASE_URL_OPTION as DB_OPTION
from sabrkit.cli.context import open_cli_database
from sabrkit.cli.output import console, handle_errors
from sabrkit.settings import Settings

users_app = typer.Typer(
    help="Web app accounts: add, list, role, password, deactivate, API tokens.", no_args_is_help=True
)

REASON_OPTION = typer.Option(..., "--reason", help="Why (recorded in the audit log).")


@handle_errors
def serve(
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on (0.0.0.0: every interface; "
        "put a TLS reverse proxy in front, see docs/web.md).",
    ),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    reload: bool = typer.Option(False, "--reload", help="Restart when the code changes (development)."),
    workers: int = typer.Option(1, "--workers", help="Worker processes (PostgreSQL; keep 1 for SQLite)."),
    proxy_headers: bool = typer.Option(
        False,
        "--proxy-headers",
        help="Trust X-Forwarded-For/-Proto from --forwarded-allow-ips (behind a reverse proxy).",
    ),
    forwarded_allow_ips: str = typer.Option(
        "127.0.0.1", "--forwarded-allow-ips", help="Proxy addresses whose X-Forwarded-* headers are trusted."
    ),
    demo: bool = typer.Option(
        False,
        "--demo",
        help="Serve a demo site on the synthetic cohort (temporary SQLite database; accounts printed).",
    ),
    demo_dir: Path = typer.Option(
        None, "--demo-dir", help="Folder for the demo site (default: a new temporary one)."
    ),
    database_url: str = DB_OPTION,
) -> None:
    """Run the web application (FastAPI + uvicorn) on the configured database."""
    import uvicorn

    from sabrkit.web import WebSettings, create_app

    if demo:
        from sabrkit.web.demo import build_demo

        folder = demo_dir or Path(tempfile.mkdtemp(prefix="sabrkit-demo-"))
        console.print(f"building the demo site in {folder} (synthetic cohort, 60 patients) ...")
        site = build_demo(folder)
        database_url = site.database_url
        console.print("demo accounts (user name, role, password):")
        for line in site.account_lines():
            console.print("  " + line, highlight=False, markup=False)
    settings = Settings(database_url=database_url) if database_url else Settings()
    console.print(
        f"sabrkit web app on http://{host}:{port}/  (database {settings.database_url}; Ctrl+C stops)",
        highlight=False,
        markup=False,
    )
    options: dict[str, Any] = dict(
        host=host,
        port=port,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        log_level="info",
    )
    if reload or workers > 1:  # uvicorn re-imports the app in its own processes: pass the settings on
        os.environ["SABRKIT_DATABASE_URL"] = settings.database_url
        uvicorn.run(
            "sabrkit.web.app:app_from_environment",
            factory=True,
            reload=reload,
            workers=None if reload else workers,
            **options,
        )
        return
    app = create_app(settings, WebSettings(), migrate=False)
    threading.Thread(
        target=app.state.dashboard.dashboard, args=(app.state.db,), daemon=True, name="warm-dashboard"
    ).start()
    uvicorn.run(app, **options)


@users_app.command("add")
@handle_errors
def users_add(
    username: str = typer.Argument(..., help="User name (lower case letters, digits, _ . -)."),
    role: str = typer.Option(..., "--role", help="admin, lab, coordinator or researcher."),
    display_name: str = typer.Option(None, "--name", help="Name shown in the app."),
    password_stdin: bool = typer.Option(
        False,
        "--password-stdin",
        help="Read the password from standard input (scripts) instead of prompting.",
    ),
    database_url: str = DB_OPTION,
) -> None:
    """Create an account (the first admin of a new site: `sabrkit users add NAME --role admin`)."""
    import sys

    from sabrkit.web import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password (10+ characters)", hide_input=True, confirmation_prompt=True)
    with open_cli_database(database_url) as db:
        create_user(
            db,
            username,
            password,
            role,
            display_name=display_name,
            actor=db.actor,
            reason=f"account created with the CLI by {db.actor}",
        )
    console.print(f"account {username.strip().lower()} ({role}) created")


@users_app.command("list")
@handle_errors
def users_list(database_url: str = DB_OPTION) -> None:
    """List accounts."""
    from sabrkit.web import list_users

    with open_cli_database(database_url) as db:
        for user in list_users(db):
            console.print(
                f"{user.username:<20} {user.role:<12} {'active' if user.active else 'inactive':<9} "
                f"{user.display_name or ''}",
                highlight=False,
                markup=False,
            )


@users_app.command("role")
@handle_errors
def users_role(
    username: str = typer.Argument(..., help="User name."),
    role: str = typer.Argument(..., help="admin, lab, coordinator or researcher."),
    reason: str = REASON_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Change an account's role."""
    from sabrkit.web import set_role

    with open_cli_database(database_url) as db:
        set_role(db, username, role, actor=db.actor, reason=reason)
    console.print(f"{username}: role {role}")


@users_app.command("passwd")
@handle_errors
def users_passwd(
    username: str = typer.Argument(..., help="User name."),
    reason: str = REASON_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Set a new password (ends the account's browser sessions)."""
    from sabrkit.web import set_password

    password = typer.prompt("New password (10+ characters)", hide_input=True, confirmation_prompt=True)
    with open_cli_database(database_url) as db:
        set_password(db, username, password, actor=db.actor, reason=reason)
    console.print(f"{username}: password changed")


@users_app.command("deactivate")
@handle_errors
def users_deactivate(
    username: str = typer.Argument(..., help="User name."),
    reason: str = REASON_OPTION,
    database_url: str = DB_OPTION,
) -> None:
    """Deactivate an account (ends its sessions and API tokens; history stays)."""
    from sabrkit.web import set_active

    with open_cli_database(database_url) as db:
        set_active(db, username, False, actor=db.actor, reason=reason)
    console.print(f"{username}: deactivated")


@users_app.command("token")
@handle_errors
def users_token(
    username: str = typer.Argument(..., help="User name the token acts as."),
    label: str = typer.Option(..., "--label", help="What uses it (e.g. 'freezer scanner 2')."),
    days: float = typer.Option(365.0, "--days", help="Days until it expires."),
    database_url: str = DB_OPTION,
) -> None:
    """Create an API token (printed once): `Authorization: Bearer <token>` on /api/ requests."""
    from sabrkit.web import create_api_token

    with open_cli_database(database_url) as db:
        token = create_api_token(db, username, label=label, days=days, actor=db.actor)
    console.print(token, highlight=False, markup=False)
