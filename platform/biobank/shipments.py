"""Shipments: draft, add samples (consent checked), ship, receive; manifests as CSV and PDF.

A shipment has a purpose, the consent scope the release needs (``future_research`` for
biomarker work, ``genetic_research`` for sequencing). Consent is checked when a sample is added
and again, for every sample, when the shipment leaves: a withdrawal in between makes
:func:`ship` fail with a :class:`~sabrkit.errors.ConsentError` naming the consent, and nothing
is shipped. Shipping frees the samples' positions and appends ``shipped`` events; receiving
appends ``received_at_destination``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from sabrkit.biobank.consent import check_scope, require_consent
from sabrkit.biobank.custody import freeze_thaw_counts, record_event
from sabrkit.biobank.errors import SampleStateError
from sabrkit.biobank.samples import get_sample
from sabrkit.biobank.storage import release_position, sample_location
from sabrkit.biobank.tables import BiobankCounter, Sample, Shipment, ShipmentItem
from sabrkit.biobank.vocabulary import USABLE_STATUSES
from sabrkit.db.database import Database
from sabrkit.errors import NotFoundError, ValidationError, format_problem

__all__ = [
    "MANIFEST_COLUMNS",
    "create_shipment",
    "add_to_shipment",
    "ship",
    "receive_shipment",
    "shipment_manifest",
    "write_manifest_csv",
    "write_manifest_pdf",
]

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS = (
    "shipment_code",
    "destination",
    "accession_id",
    "study_id",
    "specimen_type",
    "timepoint",
    "quantity",
    "quantity_unit",
    "sprec_code",
    "freeze_thaw_count",
    "origin",
)


def _shipment(session: Session, code: str, *, for_update: bool = False) -> Shipment:
    statement = select(Shipment).where(Shipment.shipment_code == code)
    if for_update:
        statement = statement.with_for_update()
    shipment = session.execute(statement).scalar_one_or_none()
    if shipment is None:
        raise NotFoundError(
            format_problem(
                f"shipment {code!r}",
                "the shipment must exist",
                "list shipments or create one with `sabrkit biobank shipment create`",
            )
        )
    return shipment


def create_shipment(
    db: Database, destination: str, purpose_scope: str, *, operator: str, courier: str | None = None
) -> str:
    """Open a draft shipment; returns its code (``SHP-000001``)."""
    check_scope(purpose_scope)
    with db.transaction(actor=operator) as session:
        counter = session.execute(
            select(BiobankCounter).where(BiobankCounter.name == "shipment").with_for_update()
        ).scalar_one_or_none()
        if counter is None:
            counter = BiobankCounter(name="shipment", value=0)
            session.add(counter)
        counter.value += 1
        code = f"SHP-{counter.value:06d}"
        session.add(
            Shipment(
                shipment_code=code,
                destination=destination,
                purpose_scope=purpose_scope,
                status="draft",
                created_at=datetime.now().replace(microsecond=0),
                created_by=operator,
                courier=courier,
            )
        )
    return code


def _check_releasable(session: Session, sample: Sample, scope: str) -> None:
    if sample.status not in USABLE_STATUSES or sample.status == "at_destination":
        raise SampleStateError(
            format_problem(
                f"{sample.accession_id} has status {sample.status}",
                "only samples held by the biobank can be shipped",
                "choose another sample",
            )
        )
    require_consent(session, sample.study_id, scope, what=f"sample {sample.accession_id}")


def add_to_shipment(db: Database, code: str, accession_ids: Sequence[str], *, operator: str) -> int:
    """Add samples to a draft shipment after checking consent and status; returns how many.

    Raises
    ------
    ConsentError
        A sample's participant withdrew or did not consent to the shipment's purpose.
    """
    with db.transaction(actor=operator, reason=f"add samples to {code}") as session:
        shipment = _shipment(session, code, for_update=True)
        if shipment.status != "draft":
            raise ValidationError(
                format_problem(
                    f"shipment {code} is {shipment.status}",
                    "only draft shipments change",
                    "create a new shipment",
                )
            )
        for accession_id in accession_ids:
            sample = get_sample(session, accession_id, for_update=True)
            _check_releasable(session, sample, shipment.purpose_scope)
            session.add(ShipmentItem(shipment_id=shipment.id, sample_id=sample.id))
    return len(accession_ids)


def ship(db: Database, code: str, *, operator: str, at: datetime | None = None) -> int:
    """Release a draft shipment: consent re-checked for every sample, positions freed, events written."""
    at = at or datetime.now().replace(microsecond=0)
    with db.transaction(actor=operator, reason=f"ship {code}") as session:
        shipment = _shipment(session, code, for_update=True)
        if shipment.status != "draft":
            raise ValidationError(
                format_problem(
                    f"shipment {code} is {shipment.status}", "a shipment leaves once", "nothing to do"
                )
            )
        samples = list(
            session.execute(
                select(Sample)
                .join(ShipmentItem, ShipmentItem.sample_id == Sample.id)
                .where(ShipmentItem.shipment_id == shipment.id)
                .order_by(Sample.accession_id)
                .with_for_update()
            ).scalars()
        )
        if not samples:
            raise ValidationError(
                format_problem(f"shipment {code} is empty", "a shipment carries samples", "add samples first")
            )
        for sample in samples:
            _check_releasable(session, sample, shipment.purpose_scope)
        for sample in samples:
            origin = release_position(session, sample) or "biobank"
            sample.status = "in_transit"
            record_event(
                session,
                sample,
                "shipped",
                operator=operator,
                location=origin,
                occurred_at=at,
                details=f"{code} to {shipment.destination}",
                shipment_id=shipment.id,
            )
        shipment.status, shipment.shipped_at = "shipped", at
    return len(samples)


def receive_shipment(db: Database, code: str, *, operator: str, at: datetime | None = None) -> int:
    """Record that a shipment arrived at its destination."""
    at = at or datetime.now().replace(microsecond=0)
    with db.transaction(actor=operator, reason=f"receive {code}") as session:
        shipment = _shipment(session, code, for_update=True)
        if shipment.status != "shipped":
            raise ValidationError(
                format_problem(
                    f"shipment {code} is {shipment.status}",
                    "only a shipped shipment is received",
                    "ship it first",
                )
            )
        samples = list(
            session.execute(
                select(Sample)
                .join(ShipmentItem, ShipmentItem.sample_id == Sample.id)
                .where(ShipmentItem.shipment_id == shipment.id)
            ).scalars()
        )
        for sample in samples:
            sample.status = "at_destination"
            record_event(
                session,
                sample,
                "received_at_destination",
                operator=operator,
                location=shipment.destination,
                occurred_at=at,
                details=code,
                shipment_id=shipment.id,
            )
        shipment.status, shipment.received_at = "received", at
    return len(samples)


def shipment_manifest(db: Database, code: str) -> pd.DataFrame:
    """One row per sample (:data:`MANIFEST_COLUMNS`); pseudonymous study IDs only."""
    with db.session() as session:
        shipment = _shipment(session, code)
        samples = list(
            session.execute(
                select(Sample)
                .join(ShipmentItem, ShipmentItem.sample_id == Sample.id)
                .where(ShipmentItem.shipment_id == shipment.id)
                .order_by(Sample.accession_id)
            ).scalars()
        )
        counts = freeze_thaw_counts(session, [s.id for s in samples])
        rows = [
            (
                code,
                shipment.destination,
                s.accession_id,
                s.study_id,
                s.specimen_type,
                s.timepoint,
                s.remaining_quantity,
                s.quantity_unit,
                s.sprec_code,
                counts[s.id],
                sample_location(session, s.id) or "",
            )
            for s in samples
        ]
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def write_manifest_csv(db: Database, code: str, path: Path) -> Path:
    """Write the manifest as CSV (UTF-8, header row; formula-like text neutralised, see :mod:`sabrkit.db.csv_export`)."""
    from sabrkit.db.csv_export import neutralise_formulas

    path = Path(path)
    neutralise_formulas(shipment_manifest(db, code)).to_csv(path, index=False)
    return path


def write_manifest_pdf(db: Database, code: str, path: Path) -> Path:
    """Write the manifest as a printable A4 PDF (reportlab): header, table, signature lines."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    manifest = shipment_manifest(db, code)
    with db.session() as session:
        shipment = _shipment(session, code)
        header = (
            f"Shipment {code} to {shipment.destination} - purpose: {shipment.purpose_scope} - "
            f"status: {shipment.status} - created {shipment.created_at:%Y-%m-%d} by {shipment.created_by}"
        )
    styles = getSampleStyleSheet()
    columns = [
        "accession_id",
        "study_id",
        "specimen_type",
        "timepoint",
        "quantity",
        "quantity_unit",
        "sprec_code",
        "freeze_thaw_count",
    ]
    body = [columns] + [
        ["" if pd.isna(v) else (f"{v:g}" if isinstance(v, float) else str(v)) for v in row]
        for row in manifest[columns].itertuples(index=False)
    ]
    table = Table(body, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
                ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
            ]
        )
    )
    path = Path(path)
    document = SimpleDocTemplate(
        str(path),
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"Manifest {code}",
    )
    document.build(
        [
            Paragraph(f"Sample manifest {code}", styles["Title"]),
            Paragraph(header, styles["Normal"]),
            Paragraph(f"{len(manifest)} sample(s)", styles["Normal"]),
            Spacer(1, 4 * mm),
            table,
            Spacer(1, 10 * mm),
            Paragraph(
                "Packed by: ____________________  Date: __________    "
                "Received by: ____________________  Date: __________",
                styles["Normal"],
            ),
        ]
    )
    return path
