"""Accounts: argon2 hashes, validation, audit of account changes, sessions ended on changes, CLI."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from web_helpers import PASSWORDS, as_user


def test_passwords_are_argon2_hashed_and_account_changes_audited(app):
    from sabrkit.audit import audit_history, verify_audit
    from sabrkit.errors import ValidationError
    from sabrkit.web import create_user, list_users, set_role
    from sabrkit.web.tables import WebUser

    db = app.state.db
    create_user(db, "Tech.One", "a-long-enough-pass", "lab", actor="admin", reason="new starter")
    with db.session() as session:
        stored = session.scalar(select(WebUser.password_hash).where(WebUser.username == "tech.one"))
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$") and "a-long-enough-pass" not in stored
    for bad in (
        ("x", "a-long-enough-pass", "lab"),
        ("tech.two", "short", "lab"),
        ("tech.two", "a-long-enough-pass", "superuser"),
        ("tech.one", "a-long-enough-pass", "lab"),
    ):
        with pytest.raises(ValidationError):
            create_user(db, *bad, actor="admin")
    set_role(db, "tech.one", "coordinator", actor="admin", reason="moved to the trials office")
    entries = audit_history(db, "web_users")
    mine = [e for e in entries if "tech.one" in (e.new_values or e.old_values or "")]
    assert [e.action for e in mine] == ["insert", "update"] and mine[
        -1
    ].reason == "moved to the trials office"
    assert all(
        "a-long-enough-pass" not in (e.new_values or "") and stored not in (e.new_values or "") for e in mine
    )
    assert {u.username: u.role for u in list_users(db)}["tech.one"] == "coordinator"
    assert verify_audit(db).ok


def test_password_reset_and_deactivation_end_sessions(app):
    lab = as_user(app, "lab")
    admin = as_user(app, "admin")
    assert lab.client.get("/lab").status_code == 200
    reset = admin.post("/admin/users/lab/password", {"password": "brand-new-pass-9", "reason": "forgotten"})
    assert reset.status_code == 200 and "lab: password done" in reset.text
    assert lab.client.get("/lab", follow_redirects=False).status_code == 303  # logged out
    assert lab.login("lab", PASSWORDS["lab"]).status_code == 401
    assert lab.login("lab", "brand-new-pass-9").status_code == 303
    assert lab.client.get("/lab").status_code == 200
    no_reason = admin.post("/admin/users/lab/deactivate", {"reason": ""})
    assert no_reason.status_code == 422
    admin.post("/admin/users/lab/deactivate", {"reason": "left the unit"})
    assert lab.client.get("/lab", follow_redirects=False).status_code == 303
    assert lab.login("lab", "brand-new-pass-9").status_code == 401
    assert admin.post("/admin/users/admin/deactivate", {"reason": "oops"}).status_code == 422
    token_page = admin.post("/admin/users/researcher/token", {"reason": "R notebook"})
    token = token_page.text.split('<code class="token">')[1].split("</code>")[0]
    assert (
        admin.client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()["role"]
        == "researcher"
    )
    assert "left the unit" in admin.client.get("/admin/audit").text


def test_user_changes_own_password(app):
    coordinator = as_user(app, "coordinator")
    wrong = coordinator.post(
        "/account/password",
        {"current_password": "nope-nope-nope", "new_password": "x" * 12, "repeat_password": "x" * 12},
    )
    assert wrong.status_code in (401, 403)
    changed = coordinator.post(
        "/account/password",
        {
            "current_password": PASSWORDS["coordinator"],
            "new_password": "new-coord-pass-1",
            "repeat_password": "new-coord-pass-1",
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert coordinator.login("coordinator", "new-coord-pass-1").status_code == 303


def test_cli_users_and_serve_help(site_url):
    import typer
    from typer.testing import CliRunner

    from sabrkit.cli.web import serve, users_app

    runner = CliRunner()
    added = runner.invoke(
        users_app,
        ["add", "firstadmin", "--role", "admin", "--password-stdin", "--database-url", site_url],
        input="first-admin-pass-1\n",
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(users_app, ["list", "--database-url", site_url])
    assert "firstadmin" in listed.output and "admin" in listed.output
    refused = runner.invoke(
        users_app,
        ["add", "x", "--role", "admin", "--password-stdin", "--database-url", site_url],
        input="short\n",
    )
    assert refused.exit_code == 1 and "rule:" in refused.output
    token = runner.invoke(users_app, ["token", "firstadmin", "--label", "ci", "--database-url", site_url])
    assert token.exit_code == 0 and len(token.output.strip()) >= 40
    app = typer.Typer()
    app.command("serve")(serve)
    app.command("noop")(lambda: None)
    helptext = runner.invoke(app, ["serve", "--help"]).output
    assert "--demo" in helptext and "--reload" in helptext and "--port" in helptext
