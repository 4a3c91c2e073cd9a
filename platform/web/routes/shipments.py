"""Shipment pages: list and create shipments, add samples, ship, receive, manifests (CSV and PDF).

Each action is a biobank service (:func:`~sabrkit.biobank.create_shipment`,
:func:`~sabrkit.biobank.add_to_shipment`, :func:`~sabrkit.biobank.ship`,
:func:`~sabrkit.biobank.receive_shipment`); consent is checked there, so a withdrawn
participant's sample cannot be added or shipped from here either.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from sabrkit.db.database import Database
from sabrkit.errors import SabrkitError
from sabrkit.web import queries
from sabrkit.web.accounts import CurrentUser
from sabrkit.web.rendering import error_status, redirect, render
from sabrkit.web.security import FormFields, form_fields, get_db, require

router = APIRouter(include_in_schema=False)
WRITE = require("write_biobank")


def _list_page(
    request: Request, user: CurrentUser, db: Database, *, status_code: int = 200, error: Any = None
) -> Any:
    from sabrkit.biobank.vocabulary import CONSENT_SCOPES

    return render(
        request,
        "shipments.html",
        user,
        shipments=queries.shipments(db),
        scopes=CONSENT_SCOPES,
        status_code=status_code,
        error=error,
        title="Shipments",
    )


@router.get("/lab/shipments")
def shipment_list(
    request: Request, user: CurrentUser = Depends(WRITE), db: Database = Depends(get_db)
) -> Any:
    return _list_page(request, user, db)


@router.post("/lab/shipments")
def shipment_create(
    request: Request,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.biobank import create_shipment

    try:
        code = create_shipment(
            db,
            form.text("destination") or "",
            form.text("purpose") or "future_research",
            operator=user.username,
            courier=form.text("courier"),
        )
    except SabrkitError as exc:
        return _list_page(request, user, db, status_code=error_status(exc), error=exc)
    return redirect(f"/lab/shipments/{quote(code)}", f"Shipment {code} opened")


def _shipment_page(
    request: Request, user: CurrentUser, db: Database, code: str, *, status_code: int = 200, error: Any = None
) -> Any:
    from sabrkit.biobank import shipment_manifest

    manifest = shipment_manifest(db, code)
    listed = [s for s in queries.shipments(db) if s["shipment_code"] == code]
    return render(
        request,
        "shipment.html",
        user,
        shipment=listed[0] if listed else {"shipment_code": code},
        manifest=manifest.to_dict("records"),
        columns=list(manifest.columns),
        status_code=status_code,
        error=error,
        title=f"Shipment {code}",
    )


@router.get("/lab/shipments/{code}")
def shipment_page(
    request: Request, code: str, user: CurrentUser = Depends(WRITE), db: Database = Depends(get_db)
) -> Any:
    return _shipment_page(request, user, db, code)


@router.post("/lab/shipments/{code}/{action}")
def shipment_action(
    request: Request,
    code: str,
    action: str,
    user: CurrentUser = Depends(WRITE),
    form: FormFields = Depends(form_fields),
    db: Database = Depends(get_db),
) -> Any:
    from sabrkit.biobank import add_to_shipment, receive_shipment, ship, shipment_manifest

    try:
        if action == "add":
            ids = [
                part.strip().upper() for part in (form.get("accession_ids") or "").replace(",", " ").split()
            ]
            message = f"{add_to_shipment(db, code, ids, operator=user.username)} sample(s) added"
        elif action == "ship":
            if form.get("confirmed") != "yes":
                manifest = shipment_manifest(db, code)
                return render(
                    request,
                    "confirm.html",
                    user,
                    title=f"Ship {code}?",
                    question=f"Ship {code} with {len(manifest)} sample(s)?",
                    details=list(manifest["accession_id"])[:50],
                    consequence="Consent is checked for each sample; the samples leave their positions "
                    "and are marked in transit. This cannot be undone.",
                    button="Ship now",
                    danger=True,
                    action=f"/lab/shipments/{quote(code)}/ship",
                    back=f"/lab/shipments/{quote(code)}",
                )
            message = f"{ship(db, code, operator=user.username)} sample(s) shipped"
        elif action == "receive":
            message = f"{receive_shipment(db, code, operator=user.username)} sample(s) received"
        else:
            return render(
                request,
                "error.html",
                user,
                status_code=404,
                error=f"unknown action {action!r}",
                title="Not found",
            )
    except SabrkitError as exc:
        return _shipment_page(request, user, db, code, status_code=error_status(exc), error=exc)
    return redirect(f"/lab/shipments/{quote(code)}", message)


@router.get("/lab/shipments/{code}/manifest.{fmt}")
def manifest(
    code: str, fmt: str, user: CurrentUser = Depends(WRITE), db: Database = Depends(get_db)
) -> Response:
    from sabrkit.biobank import write_manifest_csv, write_manifest_pdf

    writers = {"csv": (write_manifest_csv, "text/csv"), "pdf": (write_manifest_pdf, "application/pdf")}
    if fmt not in writers:
        return Response("manifests are .csv or .pdf", status_code=404, media_type="text/plain")
    write, media_type = writers[fmt]
    with tempfile.TemporaryDirectory(prefix="sabrkit-manifest-") as folder:
        content = write(db, code, Path(folder) / f"manifest.{fmt}").read_bytes()
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{code}-manifest.{fmt}"',
            "Cache-Control": "no-store",
        },
    )
