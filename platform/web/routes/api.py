"""JSON API under ``/api/`` for instruments and scripts (OpenAPI at ``/openapi.json``).

Same service functions as the pages and the CLI; same permissions. Authenticate with
``Authorization: Bearer <token>`` (``sabrkit users token USER``; no CSRF token needed) or a
browser session plus the ``X-CSRF-Token`` header on writes. Errors come back as
``{"error": <type>, "detail": <message>, "errors": [...]}`` with 401/403/404/409/422/429.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from sabrkit.biobank.load import accession_sample
from sabrkit.db.database import Database
from sabrkit.web import queries
from sabrkit.web.accounts import CurrentUser
from sabrkit.web.roles import can
from sabrkit.web.security import get_db, require

router = APIRouter(prefix="/api", tags=["api"])
READ, LAB, REGISTRY = require("read"), require("write_biobank"), require("write_registry")


class Accession(BaseModel):
    """One collected specimen (the bench form; see ``sabrkit.biobank.SampleIntake`` for every field)."""

    model_config = {"extra": "forbid"}
    study_id: str = Field(examples=["SABR-RCC-001"])
    timepoint: str = Field(examples=["month_3"])
    specimen_type: str = Field(examples=["plasma"])
    collected_at: str = Field(examples=["2025-03-01T09:30"])
    volume_ml: float | None = None
    quantity: float | None = None
    quantity_unit: str | None = None
    received_at: str | None = None
    processed_at: str | None = None
    primary_container: str | None = None
    pre_centrifugation_temperature: str | None = None
    centrifugation_g: float | None = None
    centrifugation_minutes: float | None = None
    centrifugation_temperature: str | None = None
    centrifugation_braking: bool | None = None
    post_centrifugation_temperature: str | None = None
    frozen_at: str | None = None
    storage_container: str | None = None
    storage_temperature_c: float | None = None
    allow_duplicate: bool = Field(
        False,
        description="accession it although a primary sample of the same patient, timepoint, specimen type "
        "and collection minute exists (a second tube); otherwise 422 naming that sample",
    )


class Placement(BaseModel):
    box: str = Field(examples=["F1/S1/R1/B01"])
    position: str = Field(examples=["A1"])
    reason: str | None = None


class Aliquots(BaseModel):
    quantities: list[float] = Field(min_length=1, examples=[[0.5, 0.5]])


class Use(BaseModel):
    reason: str = Field(min_length=1)
    amount: float | None = None


class RegistryEntry(BaseModel):
    """Records of one or more kinds (``visit``, ``ae``, ``assessment`` ...), as the CLI enters them."""

    entries: dict[str, dict[str, Any] | list[dict[str, Any]]] = Field(
        examples=[
            {
                "visit": {
                    "study_id": "SABR-RCC-001",
                    "visit_number": 3,
                    "visit_date": "2025-03-01",
                    "vrs_pain": 1,
                    "tess_score": 52,
                }
            }
        ]
    )
    reason: str | None = None


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return _json(value.__dict__)
    return value


@router.get("/me")
def me(user: CurrentUser = Depends(READ)) -> dict[str, Any]:
    """Who the token or session belongs to."""
    return {"username": user.username, "role": user.role, "display_name": user.display_name}


@router.get("/find")
def find(code: str, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)) -> dict[str, Any]:
    """Resolve a scanned code: sample, patient or box, or candidates starting with it."""
    found = queries.find_code(db, code)
    return {
        "kind": found.kind,
        "code": found.code,
        "target": found.target,
        "candidates": list(found.candidates),
    }


@router.get("/samples/{accession_id}")
def sample(
    accession_id: str, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)
) -> dict[str, Any]:
    """A scanned sample: type, study ID, timepoint, status, amount left and location (one query set)."""
    return queries.sample_summary(db, accession_id)


@router.get("/samples/{accession_id}/detail")
def sample_detail(
    accession_id: str, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)
) -> dict[str, Any]:
    """A sample in full: every column, location, freeze-thaw count, lineage and chain of custody."""
    return _json(queries.sample_detail(db, accession_id))


@router.get("/samples")
def samples(
    q: str = "", location: str = "", user: CurrentUser = Depends(READ), db: Database = Depends(get_db)
) -> list[dict[str, Any]]:
    """Samples whose accession or study ID starts with ``q``, or stored at/below ``location``."""
    from sabrkit.biobank import find_samples

    if location:
        return [_json(found) for found in find_samples(db, location)]
    return _json(queries.search_samples(db, q))


@router.post("/samples", status_code=201)
def accession(
    body: Accession, user: CurrentUser = Depends(LAB), db: Database = Depends(get_db)
) -> dict[str, str]:
    """Accession one specimen; returns its accession ID."""
    return {
        "accession_id": accession_sample(
            db,
            body.model_dump(exclude_none=True, exclude={"allow_duplicate"}),
            operator=user.username,
            label="request",
            allow_duplicate=body.allow_duplicate,
        )
    }


@router.post("/samples/{accession_id}/aliquots", status_code=201)
def aliquots(
    accession_id: str, body: Aliquots, user: CurrentUser = Depends(LAB), db: Database = Depends(get_db)
) -> dict[str, list[str]]:
    """Split aliquots off a sample (never more than it has left)."""
    from sabrkit.biobank import aliquot_sample

    return {"accession_ids": aliquot_sample(db, accession_id, body.quantities, operator=user.username)}


@router.post("/samples/{accession_id}/place")
def place(
    accession_id: str, body: Placement, user: CurrentUser = Depends(LAB), db: Database = Depends(get_db)
) -> dict[str, str]:
    """Store a sample in a free position (409 "position occupied" when taken)."""
    from sabrkit.biobank import place_sample

    return {"location": place_sample(db, accession_id, body.box, body.position, operator=user.username)}


@router.post("/samples/{accession_id}/move")
def move(
    accession_id: str, body: Placement, user: CurrentUser = Depends(LAB), db: Database = Depends(get_db)
) -> dict[str, str]:
    """Move a stored sample to a free position."""
    from sabrkit.biobank import move_sample

    return {
        "location": move_sample(
            db, accession_id, body.box, body.position, operator=user.username, reason=body.reason
        )
    }


@router.post("/samples/{accession_id}/thaw")
def thaw(
    accession_id: str, user: CurrentUser = Depends(LAB), db: Database = Depends(get_db)
) -> dict[str, int]:
    """Thaw a stored sample; returns its freeze-thaw count."""
    from sabrkit.biobank import thaw_sample

    return {"freeze_thaw_count": thaw_sample(db, accession_id, operator=user.username)}


@router.post("/samples/{accession_id}/consume")
def consume(
    accession_id: str, body: Use, user: CurrentUser = Depends(LAB), db: Database = Depends(get_db)
) -> dict[str, float]:
    """Use (part of) a sample up; returns what is left."""
    from sabrkit.biobank import consume_sample

    return {
        "remaining": consume_sample(
            db, accession_id, amount=body.amount, operator=user.username, reason=body.reason
        )
    }


@router.post("/samples/{accession_id}/dispose")
def dispose(
    accession_id: str, body: Use, user: CurrentUser = Depends(LAB), db: Database = Depends(get_db)
) -> dict[str, str]:
    """Destroy a sample."""
    from sabrkit.biobank import dispose_sample

    dispose_sample(db, accession_id, operator=user.username, reason=body.reason)
    return {"status": "disposed"}


@router.get("/boxes")
def boxes(user: CurrentUser = Depends(READ), db: Database = Depends(get_db)) -> list[dict[str, Any]]:
    """Every box with its geometry and occupancy."""
    return queries.boxes(db)


@router.get("/boxes/{box_path:path}")
def box(box_path: str, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)) -> dict[str, Any]:
    """The box map: every position with the accession ID it holds (or null)."""
    import json

    from sabrkit.biobank import box_map

    return json.loads(box_map(db, box_path).to_json())


@router.get("/patients")
def patients(
    q: str = "", user: CurrentUser = Depends(READ), db: Database = Depends(get_db)
) -> list[dict[str, Any]]:
    """Patients by study-ID prefix (coordinators: also by hospital number or family name; never returned)."""
    return _json(queries.patients(db, q, with_identifiers=can(user.role, "read_identifiers")))


@router.get("/patients/{study_id}")
def patient(
    study_id: str, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)
) -> dict[str, Any]:
    """A patient's registry record (identifiers only for roles that may read them)."""
    detail = queries.patient_detail(db, study_id)
    if can(user.role, "read_identifiers"):
        detail["identifiers"] = queries.patient_identifiers(db, study_id)
    return _json(detail)


@router.post("/registry", status_code=201)
def record(
    body: RegistryEntry, user: CurrentUser = Depends(REGISTRY), db: Database = Depends(get_db)
) -> dict[str, Any]:
    """Enter registry records (``visit``, ``ae``, ``assessment``, ``progression`` ...) in one transaction."""
    from sabrkit.registry.capture import record as record_entries

    if "identifiers" in body.entries and not can(user.role, "read_identifiers"):
        from sabrkit.web.errors import AccessDeniedError

        raise AccessDeniedError(
            f"{user.username} ({user.role}) may not enter identifiers; rule: the key table is "
            "the coordinators'; fix: leave 'identifiers' out"
        )
    summary = record_entries(
        db,
        body.entries,
        actor=user.username,
        reason=body.reason or f"entered through the API by {user.username}",
    )
    return {"counts": summary.counts}


@router.get("/ctcae/terms")
def ctcae_terms(q: str = "", user: CurrentUser = Depends(READ)) -> list[dict[str, Any]]:
    """CTCAE v5.0 terms containing ``q`` (in the term or its SOC; the study's frequent terms first) with
    the grades each allows and its MedDRA code (at most 50)."""
    from sabrkit.registry.ctcae import terms_for_entry

    return [
        {
            "term": t.term,
            "soc": t.soc,
            "grades": list(t.allowed_grades),
            "meddra_code": t.meddra_code,
            "frequent": t.frequent,
        }
        for t in terms_for_entry(q, limit=50)
    ]


@router.get("/dashboard")
def dashboard(
    request: Request, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)
) -> dict[str, Any]:
    """Cohort summary: enrolment against the target, follow-up completeness, KM landmarks, toxicity."""
    return request.app.state.dashboard.dashboard(db).as_dict()


@router.get("/inventory")
def inventory(user: CurrentUser = Depends(READ), db: Database = Depends(get_db)) -> dict[str, Any]:
    """Samples by protocol timepoint and specimen type, and by status."""
    return queries.inventory(db)


@router.get("/quality")
def quality(
    request: Request, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)
) -> list[dict[str, str]]:
    """The data-quality queue (missing and out-of-window visits, AEs without grade ...)."""
    return request.app.state.dashboard.dashboard(db).queries
