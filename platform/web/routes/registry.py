"""Coordinator pages: patients, enrolment, visits with adverse events, assessments, events, data queries.

Every entry calls :func:`sabrkit.registry.capture.record` (or :func:`~sabrkit.registry.capture.enrol`),
the functions behind ``sabrkit registry enrol/visit/ae/...``: the same row models, cross-record
rules (dates, visit windows, the grades a CTCAE term allows) and one audited transaction with
``actor`` = the logged-in user and the reason typed (or the form's name). A refused entry
re-renders the form with every broken rule and the values typed. Direct identifiers are shown
and searched only for roles holding ``read_identifiers`` (coordinators).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request

from sabrkit.db.database import Database
from sabrkit.errors import SabrkitError
from sabrkit.web import queries
from sabrkit.web.accounts import CurrentUser
from sabrkit.web.rendering import error_status, redirect, render
from sabrkit.web.roles import can
from sabrkit.web.security import FormFields, form_fields, get_db, require

router = APIRouter(include_in_schema=False)
READ, WRITE = require("read"), require("write_registry")
_ELIGIBILITY = (
    "rcc_confirmed",
    "one_to_five_metastases",
    "all_lesions_treatable",
    "ecog_0_to_2",
    "informed_consent",
)


def vocabularies() -> dict[str, Any]:
    """Choices of the registry forms (from the registry's vocabularies and CTCAE term list)."""
    from sabrkit.registry import vocabulary as v
    from sabrkit.registry.ctcae import terms_for_entry
    from sabrkit.registry.rules import latest_allowed_date

    terms = terms_for_entry()  # the study's frequent terms first, then the rest of CTCAE v5.0
    return {
        "sites": v.LESION_SITES,
        "sexes": v.SEXES,
        "histologies": v.HISTOLOGIES,
        "imdc_risks": v.IMDC_RISKS,
        "disease_states": v.DISEASE_STATES,
        "therapies": v.SYSTEMIC_THERAPIES,
        "attributions": v.ATTRIBUTIONS,
        "progression_types": v.PROGRESSION_TYPES,
        "death_causes": v.DEATH_CAUSES,
        "responses": v.RECIST_RESPONSES,
        "local_statuses": v.LOCAL_STATUSES,
        "modalities": v.ASSESSMENT_MODALITIES,
        "off_study_reasons": v.OFF_STUDY_REASONS,
        "mdt_decisions": v.MDT_DECISIONS,
        "ctcae_terms": [
            {
                "term": t.term,
                "soc": t.soc,
                "grades": list(t.allowed_grades),
                "meddra": t.meddra_code,
                "frequent": t.frequent,
            }
            for t in terms
        ],
        "today": latest_allowed_date().isoformat(),
    }  # the service's rule, mirrored by the date inputs' max


def _clean(form: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {name: form.get(name, "").strip() for name in names if form.get(name, "").strip()}


def _reason(form: FormFields, what: str, user: CurrentUser) -> str:
    return form.text("reason") or f"{what} entered in the web app by {user.username}"


@router.get("/registry/patients")
def patient_list(
    request: Request,
    q: str = "",
    disease_state: str = "",
    therapy: str = "",
    page: int = 1,
    user: CurrentUser = Depends(READ),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.registry import vocabulary as v

    per_page = 50
    page = max(1, page)
    with_ids = can(user.role, "read_identifiers")
    found = queries.patients(
        db,
        q,
        with_identifiers=with_ids,
        limit=per_page + 1,
        offset=(page - 1) * per_page,
        disease_state=disease_state,
        therapy=therapy,
    )
    return render(
        request,
        "patients.html",
        user,
        q=q,
        patients=found[:per_page],
        page=page,
        more=len(found) > per_page,
        disease_state=disease_state,
        therapy=therapy,
        disease_states=v.DISEASE_STATES,
        therapies=v.SYSTEMIC_THERAPIES,
        title="Patients",
    )


@router.get("/registry/patients/{study_id}")
def patient_page(
    request: Request, study_id: str, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)
) -> Any:
    detail = queries.patient_detail(db, study_id)
    identifiers = queries.patient_identifiers(db, study_id) if can(user.role, "read_identifiers") else None
    return render(request, "patient.html", user, identifiers=identifiers, title=study_id, **detail)


def _form_page(
    request: Request,
    user: CurrentUser,
    template: str,
    values: Mapping[str, Any],
    *,
    title: str,
    status_code: int = 200,
    error: Any = None,
    **context: Any,
) -> Any:
    return render(
        request,
        template,
        user,
        values=dict(values),
        status_code=status_code,
        error=error,
        title=title,
        **vocabularies(),
        **context,
    )


@router.get("/registry/enrol")
def enrol_form(request: Request, user: CurrentUser = Depends(WRITE)) -> Any:
    return _form_page(
        request, user, "enrol.html", {"mdt_decision": "sabr_all_lesions"}, title="Enrol a patient"
    )


@router.post("/registry/enrol")
def enrol(
    request: Request,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.registry.capture import record

    patient = _clean(
        form,
        (
            "study_id",
            "mdt_date",
            "enrolment_date",
            "age_years",
            "sex",
            "ecog",
            "kps",
            "histology",
            "imdc_risk",
            "disease_state",
            "systemic_therapy",
            "prior_systemic_lines",
            "n_metastases",
        ),
    )
    patient["study_id"] = patient.get("study_id", "").upper()
    patient["prior_nephrectomy"] = "true" if form.get("prior_nephrectomy") else "false"
    patient["last_contact_date"] = patient.get("enrolment_date", "")
    eligibility = {name: "true" if form.get(name) else "false" for name in _ELIGIBILITY}
    eligibility.update(
        study_id=patient["study_id"],
        assessed_on=form.text("assessed_on") or patient.get("mdt_date", ""),
        mdt_decision=form.text("mdt_decision") or "",
        mdt_note=form.text("mdt_note") or "",
    )
    entries: dict[str, Any] = {"patient": patient, "eligibility": eligibility}
    identifiers = _clean(form, ("hospital_number", "family_name", "given_name", "date_of_birth"))
    if identifiers and can(user.role, "read_identifiers"):
        entries["identifiers"] = {**identifiers, "study_id": patient["study_id"]}
    try:
        record(db, entries, actor=user.username, reason=_reason(form, "enrolment", user))
    except SabrkitError as exc:
        # every value typed comes back (identifiers too: the page is the coordinator's own, sent no-store)
        values = {k: v for k, v in form.items() if k != "csrf_token"}
        return _form_page(
            request,
            user,
            "enrol.html",
            values,
            title="Enrol a patient",
            status_code=error_status(exc),
            error=exc,
        )
    return redirect(f"/registry/patients/{quote(patient['study_id'])}", f"Enrolled {patient['study_id']}")


def _ae_rows(form: FormFields, study_id: str) -> list[dict[str, str]]:
    """The adverse-event rows of a form (``ae_term`` ... repeated; rows without a term are skipped)."""
    names = ("term", "grade", "onset_date", "attribution_sabr", "resolution_date", "lesion_id")
    columns = {name: form.getlist(f"ae_{name}") for name in names}
    rows = []
    for index, term in enumerate(columns["term"]):
        if term.strip():
            row = {
                name: (values[index].strip() if index < len(values) else "")
                for name, values in columns.items()
            }
            rows.append({k: v for k, v in row.items() if v} | {"study_id": study_id, "ctcae_version": "5.0"})
    return rows


@router.get("/registry/patients/{study_id}/{entry}")
def entry_form(
    request: Request,
    study_id: str,
    entry: str,
    user: CurrentUser = Depends(WRITE),
    db: Database = Depends(get_db),
) -> Any:
    detail = queries.patient_detail(db, study_id)
    return _entry_page(request, user, study_id, entry, detail, {})


def _entry_page(
    request: Request,
    user: CurrentUser,
    study_id: str,
    entry: str,
    detail: dict[str, Any],
    values: Mapping[str, Any],
    *,
    status_code: int = 200,
    error: Any = None,
) -> Any:
    templates = {
        "visit": ("visit.html", "Visit"),
        "ae": ("visit.html", "Adverse event"),
        "lesion": ("lesion.html", "Lesion and SABR course"),
        "assessment": ("assessment.html", "Tumour assessment"),
        "event": ("event.html", "Events"),
    }
    if entry not in templates:
        return render(
            request, "error.html", user, status_code=404, error=f"no form {entry!r}", title="Not found"
        )
    template, title = templates[entry]
    next_visit = 1 + max((v["visit_number"] for v in detail["visits"]), default=-1)
    next_lesion = 1 + max((lesion["lesion_number"] for lesion in detail["lesions"]), default=0)
    return _form_page(
        request,
        user,
        template,
        values,
        title=f"{title}: {study_id}",
        status_code=status_code,
        error=error,
        study_id=study_id,
        entry=entry,
        detail=detail,
        next_visit=next_visit,
        next_lesion=next_lesion,
        ae_rows=entry in ("visit", "ae"),
    )


@router.post("/registry/patients/{study_id}/{entry}")
def entry(
    request: Request,
    study_id: str,
    entry: str,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.registry.capture import record

    entries: dict[str, Any] = {}
    if entry == "visit":
        entries["visit"] = _clean(form, ("visit_number", "visit_date", "vrs_pain", "tess_score")) | {
            "study_id": study_id
        }
    if entry in ("visit", "ae"):
        if rows := _ae_rows(form, study_id):
            entries["ae"] = rows
    elif entry == "lesion":
        number = form.text("lesion_number") or ""
        lesion_id = f"{study_id}-L{number}"
        entries["lesion"] = _clean(
            form, ("lesion_number", "site", "organ", "longest_diameter_mm", "roi_name", "series_uid")
        ) | {"study_id": study_id, "lesion_id": lesion_id}
        course = _clean(form, ("total_dose_gy", "fractions", "start_date", "end_date", "technique"))
        if course:
            entries["course"] = course | {"study_id": study_id, "lesion_id": lesion_id}
    elif entry == "assessment":
        entries["assessment"] = _clean(
            form, ("assessment_date", "visit_number", "modality", "overall_response")
        ) | {"study_id": study_id}
        lesion_rows = []
        for lesion_id in form.getlist("lesion_id"):
            status = form.get(f"local_status_{lesion_id}", "").strip()
            if status:
                lesion_rows.append(
                    {
                        "lesion_id": lesion_id,
                        "local_status": status,
                        "assessment_date": form.get("assessment_date", ""),
                        "longest_diameter_mm": form.get(f"diameter_{lesion_id}", "").strip(),
                    }
                )
        if lesion_rows:
            entries["lesion-assessment"] = lesion_rows
    elif entry == "event":
        kind = form.get("kind", "")
        fields = {
            "progression": ("event_date", "progression_type"),
            "death": ("death_date", "cause"),
            "off-study": ("off_study_date", "reason_code"),
        }.get(kind, ())
        values: dict[str, Any] = _clean(form, fields)
        if "reason_code" in values:
            values["reason"] = values.pop("reason_code")
        entries[kind or "progression"] = values | {"study_id": study_id}
    detail = queries.patient_detail(db, study_id)
    try:
        if not entries:
            from sabrkit.errors import ValidationError, format_problem

            raise ValidationError(
                format_problem("an empty form", "enter at least one record", "fill in the form")
            )
        summary = record(db, entries, actor=user.username, reason=_reason(form, entry, user))
    except SabrkitError as exc:
        values = {k: v for k, v in form.items() if k != "csrf_token"}
        values["ae_rows"] = _ae_rows(form, study_id)
        return _entry_page(
            request, user, study_id, entry, detail, values, status_code=error_status(exc), error=exc
        )
    written = ", ".join(f"{n} {table.replace('_', ' ')}" for table, n in summary.counts.items() if n)
    return redirect(f"/registry/patients/{quote(study_id)}", f"Recorded {written}")


@router.get("/registry/quality")
def quality(
    request: Request,
    issue: str = "",
    study_id: str = "",
    user: CurrentUser = Depends(READ),
    db: Database = Depends(get_db),
) -> Any:
    board = request.app.state.dashboard.dashboard(db)
    rows = [
        q
        for q in board.queries
        if (not issue or q["issue"] == issue)
        and (not study_id or q["study_id"].startswith(study_id.strip().upper()))
    ]
    issues: dict[str, int] = {}
    for q in board.queries:
        issues[q["issue"]] = issues.get(q["issue"], 0) + 1
    return render(
        request,
        "quality.html",
        user,
        rows=rows[:1000],
        n_rows=len(rows),
        issues=issues,
        issue=issue,
        study_id=study_id,
        title="Data-quality queue",
    )
