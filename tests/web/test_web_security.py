"""Security of the web app (issue 8, Done when): login required, researchers read-only and without
identifiers, CSRF on every form, SQL injection harmless in every search field, failed logins throttled."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from web_helpers import PASSWORDS, as_user

PAGES = [
    "/find",
    "/lab",
    "/lab/accession",
    "/lab/boxes",
    "/lab/boxes/F1/S1/R1/B01",
    "/lab/shipments",
    "/lab/labels",
    "/registry/patients",
    "/registry/patients/SABR-RCC-001",
    "/registry/enrol",
    "/registry/quality",
    "/dashboard",
    "/dashboard/km.png",
    "/inventory",
    "/reports/study",
    "/admin/users",
    "/admin/audit",
    "/account",
    "/docs",
]
API = [
    "/openapi.json",
    "/api/me",
    "/api/samples?q=SABR",
    "/api/boxes",
    "/api/patients",
    "/api/dashboard",
    "/api/ctcae/terms",
]

# every write form a researcher (or a forged request) might try
WRITES = [
    (
        "/lab/accession",
        {
            "study_id": "SABR-RCC-001",
            "timepoint": "month_3",
            "specimen_type": "plasma",
            "collected_at": "2026-01-05T09:00",
            "volume_ml": "2",
        },
    ),
    ("/lab/boxes/F1/S1/R1/B01/place", {"sample": "SABR-PL-000001-X", "position": "I9"}),
    ("/lab/boxes", {"path": "F9/S1/R1/B01", "geometry": "9x9"}),
    ("/lab/shipments", {"destination": "Lab X", "purpose": "future_research"}),
    ("/registry/enrol", {"study_id": "SABR-RCC-099"}),
    ("/registry/patients/SABR-RCC-001/visit", {"visit_number": "30", "visit_date": "2026-10-01"}),
    ("/admin/users", {"username": "mallory", "password": "mallory-pass-1", "role": "admin"}),
]

INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE samples; --",
    "SABR-PL-%",
    '" OR 1=1 --',
    "%' UNION SELECT hospital_number, "
    "family_name, given_name, date_of_birth, 1, 1, 1 FROM patient_identifiers --",
    "_",
    "\\",
    "<script>x</script>",
]


def _count(app, model) -> int:
    with app.state.db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_unauthenticated_pages_redirect_to_login(web):
    for path in PAGES:
        response = web.client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next="), path
    for path in API:
        response = web.client.get(path)
        assert response.status_code == 401, path
        assert response.json()["error"] == "LoginRequired"
    assert web.client.get("/healthz").status_code == 200


def test_login_redirects_back_but_never_off_site(web):
    page = web.client.get("/lab/boxes", follow_redirects=True)
    assert page.url.path == "/login" and "next" in str(page.url)
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    response = web.client.post(
        "/login",
        data={
            "username": "lab",
            "password": PASSWORDS["lab"],
            "csrf_token": token,
            "next": "//evil.example/steal",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert (
        "sabrkit_session=" in cookie
        and "HttpOnly" in cookie
        and "SameSite=lax" in cookie.replace("Lax", "lax")
    )


def test_researcher_sees_no_identifiers_and_cannot_write(app, web):
    from sabrkit.registry.tables import PatientIdentifier
    from sabrkit.web.tables import WebUser

    with app.state.db.session() as session:
        ident = session.get(PatientIdentifier, "SABR-RCC-001")
        secrets_ = [
            ident.hospital_number,
            ident.family_name,
            ident.given_name,
            ident.date_of_birth.isoformat(),
        ]
    researcher = as_user(app, "researcher")
    coordinator = as_user(app, "coordinator")
    page = researcher.client.get("/registry/patients/SABR-RCC-001")
    assert page.status_code == 200 and "SABR-RCC-001" in page.text
    assert not any(value in page.text for value in secrets_)
    assert "Key table" not in page.text and "Record a visit" not in page.text
    api = researcher.client.get("/api/patients/SABR-RCC-001").json()
    assert "identifiers" not in api and not any(value in str(api) for value in secrets_)
    # searching by a hospital number finds nothing for a researcher (no side channel)
    assert "SABR-RCC-001" not in researcher.client.get("/registry/patients", params={"q": secrets_[0]}).text
    # ... while the coordinator sees and searches them
    assert secrets_[0] in coordinator.client.get("/registry/patients/SABR-RCC-001").text
    assert "SABR-RCC-001" in coordinator.client.get("/registry/patients", params={"q": secrets_[0]}).text
    # every write is refused, with the CSRF token present, and nothing changes
    users_before = _count(app, WebUser)
    for path, data in WRITES:
        response = researcher.post(path, data, follow_redirects=False)
        assert response.status_code == 403, path
        assert "may not do this" in response.text
    for path, body in [
        (
            "/api/samples",
            {
                "study_id": "SABR-RCC-001",
                "timepoint": "month_3",
                "specimen_type": "plasma",
                "collected_at": "2026-01-05T09:00",
            },
        ),
        ("/api/registry", {"entries": {"visit": {"study_id": "SABR-RCC-001"}}}),
    ]:
        response = researcher.client.post(path, json=body, headers={"X-CSRF-Token": researcher.csrf})
        assert response.status_code == 403, path
    assert _count(app, WebUser) == users_before
    nav = researcher.client.get("/dashboard").text
    assert (
        'href="/lab"' not in nav and 'href="/registry/enrol"' not in nav and 'href="/admin/users"' not in nav
    )


def test_admin_and_lab_do_not_see_identifiers(app):
    from sabrkit.registry.tables import PatientIdentifier

    with app.state.db.session() as session:
        number = session.get(PatientIdentifier, "SABR-RCC-002").hospital_number
    for role in ("admin", "lab"):
        assert number not in as_user(app, role).client.get("/registry/patients/SABR-RCC-002").text


def test_post_without_csrf_token_is_refused(app, web):
    from sabrkit.biobank.tables import Sample

    lab = as_user(app, "lab")
    before = _count(app, Sample)
    form = dict(WRITES[0][1])
    for token in (None, "", "forged-token", lab.csrf[:-1] + ("A" if lab.csrf[-1] != "A" else "B")):
        data = form if token is None else {**form, "csrf_token": token}
        response = lab.client.post("/lab/accession", data=data, follow_redirects=False)
        assert response.status_code == 403
        assert "CSRF" in response.text
    # a JSON request with the session cookie but without the header is refused too
    assert lab.client.post("/api/samples", json={**form, "volume_ml": 2.0}).status_code == 403
    # logout is a form too
    assert lab.client.post("/logout", follow_redirects=False).status_code == 403
    assert _count(app, Sample) == before
    # the same form with the token goes through
    assert lab.post("/lab/accession", form, follow_redirects=False).status_code == 303
    assert _count(app, Sample) == before + 1
    # another session's token is not accepted
    other = as_user(app, "lab")
    assert (
        lab.client.post(
            "/lab/accession", data={**form, "csrf_token": other.csrf}, follow_redirects=False
        ).status_code
        == 403
    )
    # login form without its double-submit token
    response = web.client.post(
        "/login", data={"username": "lab", "password": PASSWORDS["lab"], "csrf_token": "x"}
    )
    assert response.status_code == 403


def test_bearer_token_needs_no_csrf_and_respects_roles(app, web):
    from sabrkit.web import create_api_token

    lab_token = create_api_token(app.state.db, "lab", label="scanner", days=1, actor="test")
    researcher_token = create_api_token(app.state.db, "researcher", label="script", days=1, actor="test")
    headers = {"Authorization": f"Bearer {lab_token}"}
    assert web.client.get("/api/me", headers=headers).json()["role"] == "lab"
    created = web.client.post(
        "/api/samples",
        headers=headers,
        json={
            "study_id": "SABR-RCC-003",
            "timepoint": "month_3",
            "specimen_type": "serum",
            "collected_at": "2026-06-01T08:15",
            "volume_ml": 1.5,
        },
    )
    assert created.status_code == 201, created.text
    denied = web.client.post(
        "/api/samples",
        headers={"Authorization": f"Bearer {researcher_token}"},
        json={
            "study_id": "SABR-RCC-003",
            "timepoint": "month_3",
            "specimen_type": "serum",
            "collected_at": "2026-06-01T08:15",
        },
    )
    assert denied.status_code == 403
    assert web.client.get("/api/me", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    # an API token is not a browser session
    web.client.cookies.set("sabrkit_session", lab_token)
    assert web.client.get("/lab", follow_redirects=False).status_code == 303


def test_sql_injection_in_every_search_field_is_harmless(app):
    from sabrkit.biobank.tables import Sample
    from sabrkit.registry.tables import Patient, PatientIdentifier

    counts = {model: _count(app, model) for model in (Sample, Patient, PatientIdentifier)}
    coordinator, lab = as_user(app, "coordinator"), as_user(app, "lab")
    with app.state.db.session() as session:
        numbers = [n for (n,) in session.execute(select(PatientIdentifier.hospital_number))]
    for text in INJECTIONS:
        responses = [
            lab.client.get("/find", params={"code": text}),
            coordinator.client.get("/registry/patients", params={"q": text}),
            coordinator.client.get("/registry/quality", params={"study_id": text, "issue": text}),
            lab.client.get("/lab/boxes/F1/S1/R1/B01", params={"sample": text}),
            lab.client.get("/lab/labels", params={"ids": text}),
            lab.client.get("/api/find", params={"code": text}),
            lab.client.get("/api/samples", params={"q": text}),
            lab.client.get("/api/samples", params={"location": text}),
            coordinator.client.get("/api/patients", params={"q": text}),
            lab.client.get("/api/ctcae/terms", params={"q": text}),
            lab.client.get(f"/lab/samples/{text}"),
            coordinator.client.get(f"/registry/patients/{text}"),
        ]
        for response in responses:
            assert response.status_code < 500, (text, response.url, response.text[:500])
            if response.headers["content-type"].startswith("text/html"):
                assert "<script>x</script>" not in response.text  # reflected text is escaped in pages
            assert not any(number in response.text for number in numbers)  # nothing leaks through a UNION
        # wildcards are literal: '_' and '%' match nothing rather than everything
        if not text.startswith("SABR-PL-"):
            assert lab.client.get("/api/samples", params={"q": text}).json() == []
        assert "SABR-RCC-001" not in coordinator.client.get("/registry/patients", params={"q": text}).text
    assert {model: _count(app, model) for model in counts} == counts


def test_repeated_failed_logins_are_throttled(app, web):
    from sabrkit.web.tables import LoginFailure

    def attempt(password: str) -> object:
        page = web.client.get("/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        return web.client.post(
            "/login",
            data={"username": "lab", "password": password, "csrf_token": token},
            follow_redirects=False,
        )

    for _ in range(5):
        response = attempt("wrong-password-x")
        assert response.status_code == 401
        assert "not recognised" in response.text
    locked = attempt(PASSWORDS["lab"])  # even the right password is refused while locked
    assert locked.status_code == 429
    assert "too many failed logins" in locked.text and "wait 15 minute(s)" in locked.text
    assert "sabrkit_session" not in locked.headers.get("set-cookie", "")
    assert _count(app, LoginFailure) == 5  # attempts while locked are not even checked
    # another user name from the same address is not locked (per user name + address) ...
    other = as_user(app, "coordinator")
    assert other.client.get("/api/me").json()["username"] == "coordinator"


def test_lock_expires_and_success_clears_failures(app):
    from datetime import timedelta

    from sabrkit.web import LoginError, LoginThrottledError, WebSettings, authenticate
    from sabrkit.web.accounts import utcnow

    settings = WebSettings(max_failed_logins=3, lockout_minutes=10)
    db, now = app.state.db, utcnow()
    for _ in range(3):
        with pytest.raises(LoginError):
            authenticate(db, "lab", "nope-nope-nope", "10.0.0.9", settings, now=now)
    with pytest.raises(LoginThrottledError) as locked:
        authenticate(db, "lab", PASSWORDS["lab"], "10.0.0.9", settings, now=now + timedelta(minutes=9))
    assert locked.value.until == now + timedelta(minutes=10)
    # another address is not affected; after the lock the right password works and clears the failures
    assert authenticate(db, "lab", PASSWORDS["lab"], "10.0.0.10", settings, now=now)[1] == "lab"
    assert (
        authenticate(db, "LAB ", PASSWORDS["lab"], "10.0.0.9", settings, now=now + timedelta(minutes=11))[1]
        == "lab"
    )
    for _ in range(2):
        with pytest.raises(LoginError):
            authenticate(db, "lab", "nope-nope-nope", "10.0.0.9", settings, now=now + timedelta(minutes=12))
    assert authenticate(db, "lab", PASSWORDS["lab"], "10.0.0.9", settings, now=now + timedelta(minutes=12))


def test_security_headers(web):
    response = web.client.get("/login")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
