"""Lab pages: scan-to-find, accession, the sample page and its actions, box maps, labels, shipments.

Every change calls a biobank service function (:mod:`sabrkit.biobank`) with ``operator`` = the
logged-in user, so it lands in the chain of custody and the audit log exactly as from the CLI;
a refused action (position occupied, not enough volume, consent withdrawn ...) re-renders the
page with the service's message. The box map is a grid of buttons: with a sample chosen, a free
position is one click to place (or move) it there; or type the position (``C4``) and Enter, or
move through the grid with the arrow keys (keyboard first, scanner flow: scan tube, type or
arrow to a position, Enter).

Actions that cannot be undone at the bench (thaw, dispose, add to a shipment) first show a
confirmation page naming the sample, where it is and what will happen; a thawed sample goes back
into its reserved position with "Return to freezer"; a disposed, consumed or shipped sample is
read-only. An accession that repeats one already made (same patient, timepoint, specimen type and
collection minute) asks to confirm that it is a second specimen.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from sabrkit.biobank.errors import DuplicateAccessionError
from sabrkit.biobank.load import accession_sample
from sabrkit.biobank.samples import SampleIntake
from sabrkit.db.database import Database
from sabrkit.errors import SabrkitError, ValidationError, format_problem
from sabrkit.web import queries
from sabrkit.web.accounts import CurrentUser
from sabrkit.web.rendering import error_status, redirect, render
from sabrkit.web.security import FormFields, form_fields, get_db, require

router = APIRouter(include_in_schema=False)
READ, WRITE = require("read"), require("write_biobank")


def _sample_url(accession_id: str) -> str:
    return f"/lab/samples/{quote(accession_id)}"


def _amounts(text: str | None) -> list[float]:
    """``"0.5, 0.5 0.25"`` -> ``[0.5, 0.5, 0.25]`` (the aliquot form's volumes)."""
    parts = (text or "").replace(";", ",").replace(",", " ").split()
    try:
        return [float(part) for part in parts]
    except ValueError:
        raise ValidationError(
            format_problem(
                f"aliquot amounts {text!r}", "numbers separated by commas or spaces", "e.g. 0.5, 0.5, 0.5"
            )
        ) from None


def _number(text: str | None, name: str) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise ValidationError(
            format_problem(f"{name} {text!r}", "a number", "type a number such as 0.5")
        ) from None


@router.get("/find")
def find(
    request: Request, code: str = "", user: CurrentUser = Depends(READ), db: Database = Depends(get_db)
) -> Any:
    if not code.strip():
        return render(request, "find.html", user, found=None, code="", title="Scan or type a code")
    found = queries.find_code(db, code)
    if found.target:
        return redirect(found.target)
    return render(request, "find.html", user, found=found, code=code, status_code=404, title="Not found")


@router.get("/lab")
def lab_home(
    request: Request,
    q: str = "",
    status: str = "received",
    page: int = 1,
    user: CurrentUser = Depends(WRITE),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.biobank.vocabulary import SAMPLE_STATUSES

    listed = queries.sample_list(db, q, status=status, page=page)
    return render(
        request,
        "lab_home.html",
        user,
        listed=listed,
        q=q,
        status=status,
        statuses=SAMPLE_STATUSES,
        boxes=queries.boxes(db),
        title="Lab bench",
    )


def _accession_page(
    request: Request,
    user: CurrentUser,
    values: dict[str, Any],
    *,
    status_code: int = 200,
    error: Any = None,
    duplicates: list[str] | None = None,
) -> Any:
    from sabrkit.biobank.sprec import PRIMARY_CONTAINERS, STORAGE_CONTAINERS
    from sabrkit.biobank.vocabulary import PRIMARY_SPECIMEN_TYPES, TIMEPOINTS
    from sabrkit.registry.rules import latest_allowed_date

    return render(
        request,
        "accession.html",
        user,
        values=values,
        timepoints=TIMEPOINTS,
        specimen_types=PRIMARY_SPECIMEN_TYPES,
        containers=PRIMARY_CONTAINERS,
        storage_containers=STORAGE_CONTAINERS,
        status_code=status_code,
        error=error,
        title="Accession",
        duplicates=duplicates or [],
        latest_time=f"{latest_allowed_date().isoformat()}T23:59",
    )  # mirrors the no-future-date rule


@router.get("/lab/accession")
def accession_form(request: Request, study_id: str = "", user: CurrentUser = Depends(WRITE)) -> Any:
    return _accession_page(request, user, {"study_id": study_id})


@router.post("/lab/accession")
def accession(
    request: Request,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    values = {key: value for key, value in form.items() if key in SampleIntake.model_fields}
    for key in ("collected_at", "received_at", "processed_at", "frozen_at"):
        if values.get(key):  # <input type=datetime-local> may send seconds
            values[key] = values[key][:16]
    try:  # the biobank service refuses a duplicate accession; this page only asks for the confirmation
        accession_id = accession_sample(
            db, values, operator=user.username, allow_duplicate=form.get("confirm_duplicate") == "yes"
        )
    except SabrkitError as exc:
        duplicates = exc.accession_ids if isinstance(exc, DuplicateAccessionError) else []
        return _accession_page(
            request,
            user,
            values,
            status_code=error_status(exc),
            error=exc,
            duplicates=duplicates,
        )
    return redirect(_sample_url(accession_id), f"Accessioned {accession_id}. Print its label, then store it.")


def _sample_page(
    request: Request,
    user: CurrentUser,
    db: Database,
    accession_id: str,
    *,
    status_code: int = 200,
    error: Any = None,
) -> Any:
    from sabrkit.biobank.vocabulary import USABLE_STATUSES

    detail = queries.sample_detail(db, accession_id)
    return render(
        request,
        "sample.html",
        user,
        status_code=status_code,
        error=error,
        boxes=queries.boxes(db),
        usable_statuses=USABLE_STATUSES,
        title=f"Sample {detail['sample']['accession_id']}",
        **detail,
    )


@router.get("/lab/samples/{accession_id}")
def sample_page(
    request: Request, accession_id: str, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)
) -> Any:
    return _sample_page(request, user, db, accession_id)


def _sample_action(
    request: Request,
    user: CurrentUser,
    db: Database,
    accession_id: str,
    action: Callable[[], str],
    then: str | None = None,
) -> Any:
    try:
        message = action()
    except SabrkitError as exc:
        return _sample_page(request, user, db, accession_id, status_code=error_status(exc), error=exc)
    return redirect(then or _sample_url(accession_id), message)


@router.post("/lab/samples/{accession_id}/aliquot")
def aliquot(
    request: Request,
    accession_id: str,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.biobank import aliquot_sample

    def action() -> str:
        children = aliquot_sample(db, accession_id, _amounts(form.get("quantities")), operator=user.username)
        return f"{len(children)} aliquot(s): " + ", ".join(children)

    return _sample_action(request, user, db, accession_id, action)


def _store(
    db: Database, user: CurrentUser, accession_id: str, box: str, position: str, reason: str | None
) -> str:
    """Place a sample, or move it when it already has a position elsewhere (same services as the CLI)."""
    from sabrkit.biobank import locate, move_sample, place_sample
    from sabrkit.biobank.storage import parse_position, position_label

    current = locate(db, accession_id)
    target = f"{box.strip('/')}:{position_label(*parse_position(position))}"
    if current is not None and current != target:
        return "Moved to " + move_sample(
            db, accession_id, box, position, operator=user.username, reason=reason
        )
    return "Stored at " + place_sample(db, accession_id, box, position, operator=user.username)


@router.post("/lab/samples/{accession_id}/place")
def place(
    request: Request,
    accession_id: str,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    return _sample_action(
        request,
        user,
        db,
        accession_id,
        lambda: _store(
            db, user, accession_id, form.get("box") or "", form.get("position") or "", form.text("reason")
        ),
    )


def _confirm(
    request: Request,
    user: CurrentUser,
    db: Database,
    accession_id: str,
    action: str,
    *,
    question: str,
    consequence: str,
    button: str,
    danger: bool = False,
    needs_reason: bool = False,
    carry: dict[str, str] | None = None,
    reason: str = "",
    error: Any = None,
) -> Any:
    """The confirmation page of a sample action (re-posts the form with ``confirmed=yes``)."""
    detail = queries.sample_detail(db, accession_id)
    s = detail["sample"]
    details = [
        f"{s['specimen_type']} of {s['study_id']}, {s['timepoint']}",
        f"status: {s['status']}",
        f"location: {detail['location'] or 'not in storage'}",
        f"freeze-thaw cycles so far: {detail['freeze_thaw']}",
    ]
    return render(
        request,
        "confirm.html",
        user,
        title=question,
        question=question,
        details=details,
        consequence=consequence,
        action=f"{_sample_url(accession_id)}/{action}",
        button=button,
        danger=danger,
        needs_reason=needs_reason,
        carry=carry or {},
        reason=reason,
        back=_sample_url(accession_id),
        error=error,
        status_code=422 if error else 200,
    )


@router.post("/lab/samples/{accession_id}/thaw")
def thaw(
    request: Request,
    accession_id: str,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.biobank import thaw_sample

    if form.get("confirmed") != "yes":
        return _confirm(
            request,
            user,
            db,
            accession_id,
            "thaw",
            question=f"Thaw {accession_id}?",
            consequence="It is taken out and thawed: one more freeze-thaw cycle. Its position stays "
            "reserved; use 'Return to freezer' to put it back.",
            button="Thaw",
        )
    return _sample_action(
        request,
        user,
        db,
        accession_id,
        lambda: f"Thawed: freeze-thaw cycle {thaw_sample(db, accession_id, operator=user.username)}",
    )


@router.post("/lab/samples/{accession_id}/return")
def return_to_freezer(
    request: Request, accession_id: str, user: CurrentUser = Depends(WRITE), db: Database = Depends(get_db)
) -> Any:
    """Put a thawed sample back into the position it kept (the CLI's ``biobank place`` to its own position)."""
    from sabrkit.biobank import locate, place_sample

    def action() -> str:
        location = locate(db, accession_id)
        if not location:
            raise ValidationError(
                format_problem(
                    f"{accession_id} has no reserved position",
                    "'return to freezer' puts a thawed sample back where it was",
                    "store it on a box map instead",
                )
            )
        box, _, position = location.rpartition(":")
        return "Returned to the freezer at " + place_sample(
            db, accession_id, box, position, operator=user.username
        )

    return _sample_action(request, user, db, accession_id, action)


@router.post("/lab/samples/{accession_id}/consume")
def consume(
    request: Request,
    accession_id: str,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.biobank import consume_sample

    def action() -> str:
        reason = form.text("reason")
        if not reason:
            raise ValidationError(
                format_problem(
                    "no reason",
                    "using a sample up needs a reason (assay, batch)",
                    "type what it was used for",
                )
            )
        left = consume_sample(
            db,
            accession_id,
            amount=_number(form.get("amount"), "amount"),
            operator=user.username,
            reason=reason,
        )
        return f"Consumed; {left:g} left"

    return _sample_action(request, user, db, accession_id, action)


@router.post("/lab/samples/{accession_id}/dispose")
def dispose(
    request: Request,
    accession_id: str,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.biobank import dispose_sample

    reason = form.text("reason") or ""
    if form.get("confirmed") != "yes" or not reason:
        error = (
            ValidationError(
                format_problem("no reason", "disposal needs a reason", "type why it is destroyed"),
                field="reason",
            )
            if form.get("confirmed") == "yes"
            else None
        )
        return _confirm(
            request,
            user,
            db,
            accession_id,
            "dispose",
            question=f"Dispose of {accession_id}?",
            consequence="The sample is destroyed: its position is freed and it becomes read-only. "
            "This cannot be undone.",
            button="Dispose",
            danger=True,
            needs_reason=True,
            reason=reason,
            error=error,
        )

    def action() -> str:
        dispose_sample(db, accession_id, operator=user.username, reason=reason)
        return "Disposed"

    return _sample_action(request, user, db, accession_id, action)


@router.post("/lab/samples/{accession_id}/ship")
def add_to_shipment(
    request: Request,
    accession_id: str,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.biobank import add_to_shipment as add

    code = form.get("shipment") or ""
    if form.get("confirmed") != "yes":
        return _confirm(
            request,
            user,
            db,
            accession_id,
            "ship",
            question=f"Add {accession_id} to shipment {code}?",
            consequence="It is listed on the manifest; when the shipment is sent, the sample leaves "
            "its position (consent is checked then).",
            button="Add to shipment",
            carry={"shipment": code},
        )
    return _sample_action(
        request,
        user,
        db,
        accession_id,
        lambda: f"Added to {code} ({add(db, code, [accession_id], operator=user.username)})",
    )


@router.get("/lab/boxes")
def box_list(request: Request, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)) -> Any:
    return render(request, "boxes.html", user, boxes=queries.boxes(db), title="Boxes")


@router.post("/lab/boxes")
def box_create(
    request: Request,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.biobank import create_storage

    path = (form.get("path") or "").strip().strip("/")
    try:
        created = create_storage(
            db,
            path,
            geometry=form.text("geometry"),
            temperature_c=_number(form.get("temperature_c"), "temperature"),
            operator=user.username,
        )
    except SabrkitError as exc:
        return render(
            request,
            "boxes.html",
            user,
            boxes=queries.boxes(db),
            status_code=error_status(exc),
            error=exc,
            title="Boxes",
        )
    return redirect(
        f"/lab/boxes/{quote(path)}", "Created " + ", ".join(created) if created else f"{path} exists"
    )


def _box_page(
    request: Request,
    user: CurrentUser,
    db: Database,
    box_path: str,
    sample: str,
    *,
    status_code: int = 200,
    error: Any = None,
    typed_position: str = "",
) -> Any:
    from sabrkit.biobank import box_map, locate
    from sabrkit.biobank.storage import position_label

    grid = box_map(db, box_path)
    chosen = sample.strip().upper()
    location = locate(db, chosen) if chosen and queries.ACCESSION_PATTERN.match(chosen) else None
    rows = [
        [
            {"position": position_label(r, c), "accession_id": grid.cells[(r, c)]}
            for c in range(1, grid.n_columns + 1)
        ]
        for r in range(1, grid.n_rows + 1)
    ]
    free = [cell["position"] for row in rows for cell in row if not cell["accession_id"]]
    return render(
        request,
        "box.html",
        user,
        grid=grid,
        rows=rows,
        sample=chosen,
        sample_location=location,
        first_free=free[0] if free else "",
        typed_position=typed_position,
        error_field="position",
        boxes=queries.boxes(db),
        status_code=status_code,
        error=error,
        title=f"Box {grid.box}",
    )


@router.get("/lab/boxes/{box_path:path}")
def box_page(
    request: Request,
    box_path: str,
    sample: str = "",
    user: CurrentUser = Depends(READ),
    db: Database = Depends(get_db),
) -> Any:
    return _box_page(request, user, db, box_path, sample)


@router.post("/lab/boxes/{box_path:path}/place")
def box_place(
    request: Request,
    box_path: str,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    sample = (form.get("sample") or "").strip().upper()
    try:
        if not sample:
            raise ValidationError(
                format_problem(
                    "no sample chosen",
                    "a position is filled with a sample",
                    "scan the sample into the box page first",
                )
            )
        message = _store(db, user, sample, box_path, form.get("position") or "", form.text("reason"))
    except SabrkitError as exc:
        return _box_page(
            request,
            user,
            db,
            box_path,
            sample,
            status_code=error_status(exc),
            error=exc,
            typed_position=(form.get("position") or "").strip().upper(),
        )
    return redirect(f"/lab/boxes/{quote(box_path)}", f"{sample}: {message}")


@router.get("/lab/labels")
def labels(
    request: Request,
    ids: str = "",
    layout: str = "a4-38x21mm",
    skip: int = 0,
    user: CurrentUser = Depends(WRITE),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.biobank import LAYOUTS, label_records, write_label_sheet

    accession_ids = [part.strip().upper() for part in ids.replace(",", " ").split() if part.strip()]
    if not accession_ids:
        return render(request, "labels.html", user, layouts=list(LAYOUTS), ids="", title="Print labels")
    try:
        records = label_records(db, accession_ids)
        with tempfile.TemporaryDirectory(prefix="sabrkit-labels-") as folder:
            pdf = write_label_sheet(
                records, Path(folder) / "labels.pdf", layout, skip=max(0, skip)
            ).read_bytes()
    except (SabrkitError, KeyError) as exc:
        error = exc if isinstance(exc, SabrkitError) else ValidationError(f"unknown label layout {layout!r}")
        return render(
            request,
            "labels.html",
            user,
            layouts=list(LAYOUTS),
            ids=ids,
            status_code=error_status(error),
            error=error,
            title="Print labels",
        )
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": 'inline; filename="labels.pdf"', "Cache-Control": "no-store"},
    )


def _sample_form_values(sample: dict[str, Any]) -> dict[str, str]:
    from sabrkit.biobank.corrections import CORRECTABLE_SAMPLE_FIELDS

    def text(value: Any) -> str:
        if value is None:
            return ""
        if hasattr(value, "hour"):
            return value.strftime("%Y-%m-%dT%H:%M")
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return {name: text(sample.get(name)) for name in CORRECTABLE_SAMPLE_FIELDS}


def _correct_page(
    request: Request,
    user: CurrentUser,
    db: Database,
    accession_id: str,
    values: dict[str, str],
    *,
    status_code: int = 200,
    error: Any = None,
) -> Any:
    from sabrkit.biobank.vocabulary import TIMEPOINTS
    from sabrkit.registry.rules import latest_allowed_date

    detail = queries.sample_detail(db, accession_id)
    current = _sample_form_values(detail["sample"])
    return render(
        request,
        "sample_correct.html",
        user,
        sample=detail["sample"],
        current=current,
        values={**current, **values},
        timepoints=TIMEPOINTS,
        status_code=status_code,
        error=error,
        latest_time=f"{latest_allowed_date().isoformat()}T23:59",
        title=f"Correct {accession_id}",
    )


@router.get("/lab/samples/{accession_id}/correct")
def sample_correct_form(
    request: Request, accession_id: str, user: CurrentUser = Depends(WRITE), db: Database = Depends(get_db)
) -> Any:
    return _correct_page(request, user, db, accession_id, {})


@router.post("/lab/samples/{accession_id}/correct")
def sample_correct(
    request: Request,
    accession_id: str,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    """Correct recorded collection and processing values (:func:`sabrkit.biobank.corrections.correct_sample`)."""
    from sabrkit.biobank.corrections import CORRECTABLE_SAMPLE_FIELDS, correct_sample

    current = _sample_form_values(queries.sample_detail(db, accession_id)["sample"])
    typed = {name: (form.get(name) or "").strip() for name in CORRECTABLE_SAMPLE_FIELDS if name in form}
    changes = {name: value for name, value in typed.items() if value != current.get(name, "")}
    reason = form.text("reason") or ""
    try:
        if not changes:
            raise ValidationError(
                format_problem(
                    "no value changed", "a correction changes at least one value", "edit a value, or go back"
                )
            )
        changed = correct_sample(db, accession_id, changes, reason=reason, operator=user.username)
    except SabrkitError as exc:
        return _correct_page(
            request,
            user,
            db,
            accession_id,
            {**typed, "reason": reason},
            status_code=error_status(exc),
            error=exc,
        )
    what = ", ".join(
        f"{name.replace('_', ' ')} {current.get(name) or '–'} -> {typed.get(name) or '–'}"
        for name in changed
        if name in typed
    )
    return redirect(_sample_url(accession_id), f"Corrected: {what}")
