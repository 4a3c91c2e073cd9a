"""Rendering: the Jinja2 templates, flash messages, and how errors become HTTP statuses and text.

Templates are server-rendered with autoescaping on (everything a user typed is escaped). A
flash message survives one redirect in a short-lived cookie (no identifiers ever go in one:
messages name accession IDs, study IDs, positions). Errors raised by the service functions are
:class:`~sabrkit.errors.SabrkitError` subclasses; :func:`error_status` maps them to statuses and
:func:`error_lines` to the lines a form shows (one per row error of an import-style error).

Errors at the field: :func:`field_errors` maps an error to the form fields it concerns, from the
error itself (an :class:`~sabrkit.errors.ImportValidationError`'s row errors name their column; a
:class:`~sabrkit.errors.ValidationError` may carry ``field``), never from rules kept in the views.
Templates call ``field_error("visit_date")`` after an input (the message, in words, with the
value typed and the rule) and ``invalid("visit_date")`` inside it (``aria-invalid`` and
``aria-describedby``); repeated rows (adverse events) use ``"ae_grade-2"`` (field, row).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from sabrkit.errors import ConsentError, ImportValidationError, NotFoundError, SabrkitError
from sabrkit.web.accounts import CurrentUser
from sabrkit.web.errors import AccessDeniedError, LoginThrottledError
from sabrkit.web.roles import can

__all__ = [
    "make_templates",
    "render",
    "redirect",
    "flash",
    "error_status",
    "error_lines",
    "field_errors",
    "field_label",
    "NAVIGATION",
    "FIELD_LABELS",
]

logger = logging.getLogger(__name__)

FLASH_COOKIE = "sabrkit_flash"

#: Top navigation: (label, path, permission).
NAVIGATION: tuple[tuple[str, str, str], ...] = (
    ("Find", "/find", "read"),
    ("Lab", "/lab", "write_biobank"),
    ("Boxes", "/lab/boxes", "read"),
    ("Shipments", "/lab/shipments", "write_biobank"),
    ("Patients", "/registry/patients", "read"),
    ("Enrol", "/registry/enrol", "write_registry"),
    ("Data queries", "/registry/quality", "read"),
    ("Dashboard", "/dashboard", "read"),
    ("Experiments", "/research/experiments", "read"),
    ("Inventory", "/inventory", "read"),
    ("Users", "/admin/users", "manage_users"),
)


#: Field names of the services -> the words a form shows (unlisted names: underscores become spaces).
FIELD_LABELS: dict[str, str] = {
    "study_id": "Study ID",
    "mdt_date": "MDT date",
    "assessed_on": "MDT date",
    "enrolment_date": "Enrolment date",
    "age_years": "Age",
    "ecog": "ECOG",
    "kps": "KPS",
    "imdc_risk": "IMDC risk",
    "n_metastases": "Number of metastases",
    "visit_number": "Visit number",
    "visit_date": "Visit date",
    "vrs_pain": "Pain (VRS)",
    "tess_score": "TESS",
    "term": "CTCAE term",
    "grade": "Grade",
    "onset_date": "Onset",
    "resolution_date": "Resolved",
    "attribution_sabr": "Attribution to SABR",
    "event_date": "Progression date",
    "death_date": "Date of death",
    "off_study_date": "Off-study date",
    "assessment_date": "Assessment date",
    "last_contact_date": "Last contact",
    "hospital_number": "Hospital number",
    "family_name": "Family name",
    "given_name": "Given name",
    "date_of_birth": "Date of birth",
    "collected_at": "Collected at",
    "received_at": "Received at",
    "processed_at": "Processed at",
    "frozen_at": "Frozen at",
    "volume_ml": "Volume",
    "position": "Position",
    "password": "Password",
    "username": "User name",
    "reason": "Reason",
    "total_dose_gy": "Total dose",
    "start_date": "First fraction",
    "end_date": "Last fraction",
    "longest_diameter_mm": "Longest diameter",
}
#: Fields of the adverse-event rows of the visit form (named ``ae_<field>-<row>`` there).
AE_FIELDS = ("term", "grade", "onset_date", "attribution_sabr", "resolution_date", "lesion_id")
#: A service field a form shows under another name (enrolment: eligibility is assessed at the MDT).
FIELD_ALIASES = {"assessed_on": "mdt_date", "last_contact_date": "enrolment_date"}


def field_label(name: str) -> str:
    """The words a form uses for a service field name."""
    base = name.split(":", 1)[-1]
    return FIELD_LABELS.get(base, base.replace("_", " ").capitalize())


def field_errors(
    error: SabrkitError | None, *, ae_rows: bool = False, default_field: str | None = None
) -> dict[str, list[str]]:
    """Form field -> messages, for every part of ``error`` that names a field.

    Parameters
    ----------
    error : SabrkitError, optional
        What a service raised.
    ae_rows : bool
        The form has adverse-event rows: their fields are keyed ``ae_<field>-<row>``.
    default_field : str, optional
        The field an error that names none concerns on this form (the box map: the position).
    """
    found: dict[str, list[str]] = {}
    if isinstance(error, ImportValidationError):
        for problem in error.errors:
            name = problem.column.split(":", 1)[-1]
            name = FIELD_ALIASES.get(name, name)
            if ae_rows and name in AE_FIELDS:
                name = f"ae_{name}-{problem.row}"
            value = "" if problem.value is None or problem.value == "" else f"{problem.value}: "
            found.setdefault(name, []).append(f"{value}{problem.rule}")
    elif isinstance(error, SabrkitError) and (getattr(error, "field", None) or default_field):
        name = getattr(error, "field", None) or default_field or ""
        found.setdefault(FIELD_ALIASES.get(name, name), []).append(str(error))
    return found


def _field_error(context: Any, name: str) -> Markup:
    messages = (context.get("field_errors") or {}).get(name)
    if not messages:
        return Markup("")
    text = Markup("<br>").join(escape(m) for m in messages)
    return Markup('<span class="field-error" id="error-{}" role="alert">{}</span>').format(name, text)


def _invalid(context: Any, name: str) -> Markup:
    if not (context.get("field_errors") or {}).get(name):
        return Markup("")
    return Markup(' aria-invalid="true" aria-describedby="error-{}"').format(name)


def make_templates() -> Jinja2Templates:
    """The packaged templates (``sabrkit/web/templates``), autoescaped, with the house filters."""
    from importlib.resources import files

    from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape

    folder = str(files("sabrkit.web").joinpath("templates"))
    env = Environment(
        loader=FileSystemLoader(folder), autoescape=select_autoescape(default=True, default_for_string=True)
    )
    env.filters["num"] = lambda value, digits=3: (
        "" if value is None else (f"{value:.{digits}g}" if isinstance(value, float) else str(value))
    )
    env.filters["dt"] = lambda value: (
        ""
        if value is None
        else (value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "hour") else value.isoformat())
    )
    env.filters["cell"] = _cell
    env.filters["qty"] = _quantity
    env.filters["pct"] = lambda value: "n/a" if value is None or value != value else f"{100 * value:.1f}%"
    env.filters["urlpath"] = lambda value: quote(str(value), safe="/")
    env.globals["field_error"] = pass_context(_field_error)
    env.globals["invalid"] = pass_context(_invalid)
    return Jinja2Templates(env=env)


def _quantity(value: Any) -> str:
    """An amount without exponent notation: ``1000000000`` -> ``1,000,000,000``, ``0.25`` -> ``0.25``."""
    if value is None:
        return ""
    number = float(value)
    if number.is_integer():
        return f"{number:,.0f}"
    return f"{number:,.4f}".rstrip("0").rstrip(".")


def _cell(value: Any) -> str:
    """One table cell: blank for missing, yes/no, 4 significant digits, ISO dates."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if hasattr(value, "hour"):
        return value.strftime("%Y-%m-%d %H:%M")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def flash(response: Any, message: str, kind: str = "ok") -> Any:
    """Attach a one-shot message to a response (shown on the next page)."""
    payload = quote(json.dumps({"kind": kind, "text": message[:1500]}))
    response.set_cookie(FLASH_COOKIE, payload, max_age=60, httponly=True, samesite="lax", path="/")
    return response


def _pop_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        message = json.loads(unquote(raw))
        return {"kind": str(message.get("kind", "ok")), "text": str(message.get("text", ""))}
    except (ValueError, AttributeError):
        return None


def redirect(path: str, message: str | None = None, kind: str = "ok") -> RedirectResponse:
    """303 See Other to ``path`` (Post/Redirect/Get), with an optional flash message."""
    response = RedirectResponse(path, status_code=303)
    return flash(response, message, kind) if message else response


def render(
    request: Request,
    template: str,
    user: CurrentUser | None,
    *,
    status_code: int = 200,
    error: SabrkitError | str | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a page with the layout's context (user, navigation, CSRF token, flash, error lines)."""
    templates: Jinja2Templates = request.app.state.templates
    nav = [
        (label, path)
        for label, path, permission in NAVIGATION
        if user is not None and can(user.role, permission)
    ]
    here = max(
        (p for _, p in nav if request.url.path == p or request.url.path.startswith(p + "/")),
        key=len,
        default=None,
    )
    flashed = _pop_flash(request)
    errors = error_lines(error) if isinstance(error, SabrkitError) else ([error] if error else [])
    at_fields = (
        field_errors(
            error, ae_rows=bool(context.pop("ae_rows", False)), default_field=context.pop("error_field", None)
        )
        if isinstance(error, SabrkitError)
        else {}
    )
    response = templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "nav": nav,
            "csrf_token": user.csrf_token if user else context.pop("csrf_token", ""),
            "flash": flashed,
            "errors": errors,
            "field_errors": at_fields,
            "can": (lambda p: user is not None and can(user.role, p)),
            "path": request.url.path,
            "here": here,
            **context,
        },
        status_code=status_code,
    )
    if flashed:
        response.delete_cookie(FLASH_COOKIE, path="/")
    response.headers["Cache-Control"] = "no-store"
    return response


def error_status(error: BaseException) -> int:
    """HTTP status for an error raised by a service function."""
    from sabrkit.biobank.errors import PositionOccupiedError

    if isinstance(error, LoginThrottledError):
        return 429
    if isinstance(error, (AccessDeniedError, ConsentError)):
        return 403
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, PositionOccupiedError):
        return 409
    if isinstance(error, PermissionError):
        return 403
    return 422 if isinstance(error, SabrkitError) else 500


def error_lines(error: SabrkitError) -> list[str]:
    """Readable lines: one per row error of an import-style error, else the message."""
    if isinstance(error, ImportValidationError):
        return [
            f"{field_label(e.column)}"
            + (f" ({e.value})" if e.value not in (None, "") else "")
            + f": {e.rule}"
            for e in error.errors
        ]
    return [str(error)]


def error_payload(error: SabrkitError) -> dict[str, Any]:
    """JSON body of an API error: type, message and, for import-style errors, every row error."""
    body: dict[str, Any] = {"error": type(error).__name__, "detail": str(error)}
    if isinstance(error, ImportValidationError):
        body["errors"] = [
            {
                "row": e.row,
                "field": e.column.split(":", 1)[-1],
                "value": None if e.value is None else str(e.value),
                "rule": e.rule,
            }
            for e in error.errors
        ]
    return body
