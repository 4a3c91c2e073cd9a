"""Corrections of registry records: change or delete one row, with a reason, from the patient page.

Both call the CLI's services, :func:`sabrkit.registry.capture.correct` and
:func:`~sabrkit.registry.capture.delete` (``sabrkit registry correct|delete``): the row model
checks the new values, the patient's whole record is re-checked against every date and
cross-record rule, and the change lands in the audit log with the old and new values, the
logged-in user and the reason typed. A refused change re-renders the form with each message at
its field and every value kept. Deleting asks for confirmation first (a second page naming the
record); the audit log keeps the deleted row's last values.

"Deleted records" (``/registry/deleted``) lists the deletions not undone
(:func:`sabrkit.registry.capture.deleted_records`, as ``sabrkit registry deleted``); Restore asks
for confirmation and a reason, then calls :func:`~sabrkit.registry.capture.restore` (``sabrkit
registry restore``), which enters the row again exactly as the audit log kept it, re-checked.
Both are for the roles that may delete (``write_registry``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request

from sabrkit.db.database import Database
from sabrkit.errors import NotFoundError, SabrkitError, ValidationError, format_problem
from sabrkit.web import queries
from sabrkit.web.accounts import CurrentUser
from sabrkit.web.rendering import error_status, field_label, redirect, render
from sabrkit.web.roles import can
from sabrkit.web.security import FormFields, form_fields, get_db, require

router = APIRouter(include_in_schema=False)
WRITE = require("write_registry")

#: Fields shown read-only on the correction form (they say which record it is, not what it says).
_FIXED = ("study_id", "lesion_id", "ctcae_version")


def _record(db: Database, user: CurrentUser, table: str, row_key: str) -> dict[str, Any]:
    _check_key_table(user, table)
    return queries.registry_record(db, table, row_key)


def _check_key_table(user: CurrentUser, table: str) -> None:
    if table == "patient_identifiers" and not can(user.role, "read_identifiers"):
        from sabrkit.web.errors import AccessDeniedError

        raise AccessDeniedError(
            format_problem(
                f"{user.username} ({user.role}) correcting the key table",
                "only coordinators read or change direct identifiers",
                "ask a coordinator",
            )
        )


def _page(
    request: Request,
    user: CurrentUser,
    record: dict[str, Any],
    values: dict[str, str],
    *,
    status_code: int = 200,
    error: Any = None,
) -> Any:
    from sabrkit.registry.ctcae import terms_for_entry
    from sabrkit.registry.rules import latest_allowed_date

    fields = [
        {
            "name": name,
            "label": field_label(name),
            "kind": kind,
            "fixed": name in _FIXED,
            "value": values.get(name, record["values"].get(name, "")),
        }
        for name, kind in record["fields"].items()
    ]
    terms = (
        [{"term": t.term, "grades": list(t.allowed_grades)} for t in terms_for_entry()]
        if "term" in record["fields"]
        else []
    )
    return render(
        request,
        "correct.html",
        user,
        record=record,
        fields=fields,
        reason=values.get("reason", ""),
        ctcae_terms=terms,
        today=latest_allowed_date().isoformat(),
        status_code=status_code,
        error=error,
        title=f"Correct {record['label']}",
    )


@router.get("/registry/correct/{table}/{row_key}")
def correct_form(
    request: Request,
    table: str,
    row_key: str,
    user: CurrentUser = Depends(WRITE),
    db: Database = Depends(get_db),
) -> Any:
    return _page(request, user, _record(db, user, table, row_key), {})


@router.post("/registry/correct/{table}/{row_key}")
def correct(
    request: Request,
    table: str,
    row_key: str,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.registry.capture import correct as correct_row

    record = _record(db, user, table, row_key)
    typed = {
        name: (form.get(name) or "").strip()
        for name in record["fields"]
        if name not in _FIXED and name in form
    }
    changes = {name: value for name, value in typed.items() if value != record["values"].get(name, "")}
    reason = form.text("reason") or ""
    try:
        if not changes:
            raise ValidationError(
                format_problem(
                    "no value changed", "a correction changes at least one value", "edit a value, or go back"
                )
            )
        if not reason:
            raise ValidationError(
                format_problem(
                    "no reason",
                    "every correction needs a reason (audit log)",
                    "type why, e.g. 'source document checked: VRS was 2'",
                ),
                field="reason",
            )
        correct_row(db, table, row_key, changes, reason=reason, actor=user.username)
    except SabrkitError as exc:
        return _page(
            request, user, record, {**typed, "reason": reason}, status_code=error_status(exc), error=exc
        )
    what = ", ".join(
        f"{field_label(k)} {record['values'].get(k) or '–'} -> {v or '–'}" for k, v in changes.items()
    )
    return redirect(f"/registry/patients/{quote(record['study_id'])}", f"Corrected {record['label']}: {what}")


@router.post("/registry/delete/{table}/{row_key}")
def delete(
    request: Request,
    table: str,
    row_key: str,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.registry.capture import delete as delete_row

    record = _record(db, user, table, row_key)
    reason = form.text("reason") or ""
    if form.get("confirmed") != "yes" or not reason:
        error = _missing_reason(form, "a deletion needs a reason (audit log)", "type why the record goes")
        return render(
            request,
            "confirm.html",
            user,
            title=f"Delete {record['label']}?",
            question=f"Delete {record['label']} of {record['study_id']}?",
            details=[f"{field_label(k)}: {v}" for k, v in record["values"].items() if v != ""],
            consequence="The record leaves the registry; the audit log keeps its last values and your reason.",
            action=f"/registry/delete/{quote(table)}/{quote(row_key)}",
            button="Delete",
            danger=True,
            reason=reason,
            needs_reason=True,
            back=f"/registry/patients/{quote(record['study_id'])}",
            error=error,
            status_code=422 if error else 200,
        )
    try:
        delete_row(db, table, row_key, reason=reason, actor=user.username)
    except SabrkitError as exc:
        return _page(request, user, record, {}, status_code=error_status(exc), error=exc)
    return redirect(f"/registry/patients/{quote(record['study_id'])}", f"Deleted {record['label']}")


def _deleted_page(
    request: Request, user: CurrentUser, db: Database, *, status_code: int = 200, error: Any = None
) -> Any:
    from sabrkit.registry.capture import deleted_records

    records = [
        d
        for d in deleted_records(db)
        if d.table != "patient_identifiers" or can(user.role, "read_identifiers")
    ]
    return render(
        request,
        "deleted.html",
        user,
        records=records,
        title="Deleted records",
        status_code=status_code,
        error=error,
    )


@router.get("/registry/deleted")
def deleted(request: Request, user: CurrentUser = Depends(WRITE), db: Database = Depends(get_db)) -> Any:
    return _deleted_page(request, user, db)


@router.post("/registry/restore/{table}/{row_key}")
def restore(
    request: Request,
    table: str,
    row_key: str,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.registry.capture import deleted_records
    from sabrkit.registry.capture import restore as restore_row

    _check_key_table(user, table)
    reason = form.text("reason") or ""
    pending = next((d for d in deleted_records(db, table=table) if d.row_key == row_key), None)
    error: SabrkitError | None
    if pending is None:
        error = NotFoundError(
            format_problem(
                f"{table} row {row_key}",
                "only a deleted record not yet restored or entered again can be restored",
                "pick one from the list",
            )
        )
        return _deleted_page(request, user, db, status_code=error_status(error), error=error)
    label = f"{field_label(table)} row {row_key}"
    if form.get("confirmed") != "yes" or not reason:
        error = _missing_reason(
            form, "a restore needs a reason (audit log)", "type why the deletion is undone"
        )
        return render(
            request,
            "confirm.html",
            user,
            title=f"Restore {label}?",
            question=f"Restore {label} of {pending.study_id}?",
            details=[
                f"Deleted {pending.deleted_at:%Y-%m-%d %H:%M} UTC by {pending.actor}: {pending.reason or ''}",
                *(
                    f"{field_label(k)}: {v}"
                    for k, v in pending.values.items()
                    if v not in (None, "") and not pending.not_restorable
                ),
            ],
            consequence=(
                "The record is entered again exactly as it was when deleted, checked against the patient's "
                "record as it is now; the audit log records the restore with your reason."
            ),
            action=f"/registry/restore/{quote(table)}/{quote(row_key)}",
            button="Restore",
            reason=reason,
            needs_reason=True,
            back="/registry/deleted",
            error=error,
            status_code=422 if error else 200,
        )
    try:
        restore_row(db, table, row_key, reason=reason, actor=user.username)
    except SabrkitError as exc:
        return _deleted_page(request, user, db, status_code=error_status(exc), error=exc)
    return redirect(
        f"/registry/patients/{quote(pending.study_id)}",
        f"Restored {label} (undoes deletion {pending.audit_id})",
    )


def _missing_reason(form: Any, rule: str, fix: str) -> ValidationError | None:
    """No error before the confirmation page was submitted; after it, the missing reason at its field."""
    if form.get("confirmed") != "yes":
        return None
    return ValidationError(format_problem("no reason", rule, fix), field="reason")
