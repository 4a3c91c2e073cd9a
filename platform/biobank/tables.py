"""ORM models of the biobank: samples and lineage, storage, custody events, consent, shipments,
disposal tasks and assay results.

Samples reference registry patients by study ID (``patients.study_id``); registry and biobank
share one MetaData (:class:`sabrkit.db.Base`) and one Alembic history (biobank tables:
migrations ``0001`` and ``0003``). Every model except the serial counters is
:class:`~sabrkit.audit.tables.Audited`: inserts, updates and deletes are logged, hash-chained,
in the same transaction. Rules the database itself enforces:

- one sample per box position (``UNIQUE(box_id, row, col)``), one position per sample;
- ``0 <= remaining_quantity <= quantity`` (a child can never take more than its parent has left);
- custody events are append-only (triggers refuse UPDATE and DELETE, migration ``0003``).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from sabrkit.audit.tables import Audited
from sabrkit.biobank.vocabulary import (
    CONSENT_SCOPES,
    CUSTODY_EVENT_TYPES,
    DISPOSAL_STATUSES,
    QUANTITY_UNITS,
    SAMPLE_KINDS,
    SAMPLE_STATUSES,
    SHIPMENT_STATUSES,
    SPECIMEN_TYPES,
    STORAGE_LEVELS,
    TIMEPOINTS,
)
from sabrkit.db.base import Base
from sabrkit.registry.tables import STUDY_ID_LENGTH
from sabrkit.registry.vocabulary import sql_in

__all__ = [
    "ACCESSION_ID_LENGTH",
    "Sample",
    "SampleDerivation",
    "StorageUnit",
    "SamplePosition",
    "CustodyEvent",
    "ConsentForm",
    "Consent",
    "DisposalTask",
    "Shipment",
    "ShipmentItem",
    "AssayResult",
    "BiobankCounter",
]

ACCESSION_ID_LENGTH = 16
_TEMPERATURES = ("room_temperature", "refrigerated", "body")


def _sample_fk() -> ForeignKey:
    return ForeignKey("samples.id")


class Sample(Audited, Base):
    """A specimen (primary, aliquot, derivative or pool) with its preanalytical record.

    ``accession_id`` (``SABR-PL-000001-C``, :mod:`sabrkit.biobank.accession`) is the only
    identifier printed on labels; the patient link is the pseudonymous study ID. ``sprec_code``
    is derived from the recorded times and conditions (:mod:`sabrkit.biobank.sprec`), never typed.
    """

    __tablename__ = "samples"
    __audit_label_columns__ = ("accession_id",)
    __table_args__ = (
        CheckConstraint(f"length(accession_id) = {ACCESSION_ID_LENGTH}", name="accession_id_length"),
        CheckConstraint(sql_in("timepoint", TIMEPOINTS), name="timepoint_code"),
        CheckConstraint(sql_in("specimen_type", SPECIMEN_TYPES), name="specimen_type_code"),
        CheckConstraint(sql_in("kind", SAMPLE_KINDS), name="kind_code"),
        CheckConstraint(sql_in("status", SAMPLE_STATUSES), name="status_code"),
        CheckConstraint(sql_in("quantity_unit", QUANTITY_UNITS), name="quantity_unit_code"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "remaining_quantity >= 0 AND remaining_quantity <= quantity", name="remaining_within_quantity"
        ),
        CheckConstraint(
            "processed_at IS NULL OR processed_at >= collected_at", name="processed_after_collected"
        ),
        CheckConstraint(sql_in("pre_centrifugation_temperature", _TEMPERATURES), name="pre_temperature_code"),
        CheckConstraint(
            sql_in("post_centrifugation_temperature", _TEMPERATURES), name="post_temperature_code"
        ),
        Index("uq_samples_source_site_source_id", "source_site", "source_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    accession_id: Mapped[str] = mapped_column(String(ACCESSION_ID_LENGTH), unique=True)
    study_id: Mapped[str] = mapped_column(
        String(STUDY_ID_LENGTH), ForeignKey("patients.study_id", onupdate="CASCADE"), index=True
    )
    timepoint: Mapped[str] = mapped_column(String(16))
    specimen_type: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(12), default="primary", server_default="primary")
    collected_at: Mapped[datetime] = mapped_column(DateTime)
    received_at: Mapped[datetime | None] = mapped_column(DateTime)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime)
    frozen_at: Mapped[datetime | None] = mapped_column(DateTime)
    primary_container: Mapped[str | None] = mapped_column(String(3))
    pre_centrifugation_temperature: Mapped[str | None] = mapped_column(String(20))
    centrifugation_g: Mapped[float | None] = mapped_column(Float)
    centrifugation_minutes: Mapped[float | None] = mapped_column(Float)
    centrifugation_temperature: Mapped[str | None] = mapped_column(String(20))
    centrifugation_braking: Mapped[bool | None] = mapped_column(Boolean)
    second_centrifugation_g: Mapped[float | None] = mapped_column(Float)
    second_centrifugation_minutes: Mapped[float | None] = mapped_column(Float)
    second_centrifugation_temperature: Mapped[str | None] = mapped_column(String(20))
    second_centrifugation_braking: Mapped[bool | None] = mapped_column(Boolean)
    post_centrifugation_temperature: Mapped[str | None] = mapped_column(String(20))
    storage_container: Mapped[str | None] = mapped_column(String(32))
    storage_temperature_c: Mapped[float | None] = mapped_column(Float)
    sprec_code: Mapped[str | None] = mapped_column(String(32))
    sprec_version: Mapped[str | None] = mapped_column(String(8))
    quantity: Mapped[float | None] = mapped_column(Float)
    remaining_quantity: Mapped[float | None] = mapped_column(Float)
    quantity_unit: Mapped[str] = mapped_column(String(8), default="mL", server_default="mL")
    status: Mapped[str] = mapped_column(String(16), default="received", server_default="received")
    #: Site that gave ``source_id`` (default ``main`` when a source ID is given without one).
    source_site: Mapped[str | None] = mapped_column(String(32))
    #: The sample's ID at its source (tube barcode, LIMS ID): unique per site; recognises re-imports.
    source_id: Mapped[str | None] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"Sample({self.accession_id!r}, {self.study_id!r}, {self.timepoint!r}, {self.specimen_type!r})"


class SampleDerivation(Audited, Base):
    """One parent -> child link: how much of the parent (in the parent's unit) the child took."""

    __tablename__ = "sample_derivations"
    __table_args__ = (
        UniqueConstraint("parent_id", "child_id"),
        CheckConstraint("quantity_taken > 0", name="quantity_taken_positive"),
        CheckConstraint("parent_id <> child_id", name="not_own_parent"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[int] = mapped_column(Integer, _sample_fk(), index=True)
    child_id: Mapped[int] = mapped_column(Integer, _sample_fk(), index=True)
    quantity_taken: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class StorageUnit(Audited, Base):
    """A freezer, shelf, rack or box; ``path`` is the unique slash-joined name (``F1/S2/R3/B07``)."""

    __tablename__ = "storage_units"
    __audit_label_columns__ = ("path",)
    __table_args__ = (
        CheckConstraint(sql_in("level", STORAGE_LEVELS), name="level_code"),
        CheckConstraint(
            "(level = 'box' AND n_rows BETWEEN 1 AND 26 AND n_columns BETWEEN 1 AND 99) OR "
            "(level <> 'box' AND n_rows IS NULL AND n_columns IS NULL)",
            name="box_geometry",
        ),
        CheckConstraint("(level = 'freezer') = (parent_id IS NULL)", name="only_freezers_at_top"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(8))
    parent_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("storage_units.id"), index=True)
    n_rows: Mapped[int | None] = mapped_column(Integer)
    n_columns: Mapped[int | None] = mapped_column(Integer)
    temperature_c: Mapped[float | None] = mapped_column(Float)


class SamplePosition(Audited, Base):
    """Where a sample sits now: box and position (row 1 = A, column 1 = 1). History: custody events."""

    __tablename__ = "sample_positions"
    __audit_label_columns__ = ("box_id", "row", "col")
    __table_args__ = (
        UniqueConstraint("box_id", "row", "col"),
        CheckConstraint("row >= 1 AND col >= 1", name="position_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sample_id: Mapped[int] = mapped_column(Integer, _sample_fk(), unique=True)
    box_id: Mapped[int] = mapped_column(Integer, ForeignKey("storage_units.id"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    col: Mapped[int] = mapped_column(Integer)
    placed_at: Mapped[datetime] = mapped_column(DateTime)


class CustodyEvent(Audited, Base):
    """One append-only chain-of-custody event of a sample: what, when, who, where."""

    __tablename__ = "custody_events"
    __audit_label_columns__ = ("sample_id", "event_type")
    __table_args__ = (CheckConstraint(sql_in("event_type", CUSTODY_EVENT_TYPES), name="event_type_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sample_id: Mapped[int] = mapped_column(Integer, _sample_fk(), index=True)
    event_type: Mapped[str] = mapped_column(String(24))
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    operator: Mapped[str] = mapped_column(String(128))
    location: Mapped[str] = mapped_column(String(200))
    details: Mapped[str | None] = mapped_column(Text)
    shipment_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("shipments.id"))


class ConsentForm(Audited, Base):
    """A version of the study's consent form (``"2.0"``) and when it came into use."""

    __tablename__ = "consent_forms"
    __audit_label_columns__ = ("version",)

    version: Mapped[str] = mapped_column(String(16), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[date] = mapped_column(Date)


class Consent(Audited, Base):
    """A participant's signed consent (one form version) with its scopes; withdrawal ends it."""

    __tablename__ = "consents"
    __audit_label_columns__ = ("study_id", "form_version")
    __table_args__ = (UniqueConstraint("study_id", "form_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(
        String(STUDY_ID_LENGTH), ForeignKey("patients.study_id", onupdate="CASCADE"), index=True
    )
    form_version: Mapped[str] = mapped_column(String(16), ForeignKey("consent_forms.version"))
    signed_on: Mapped[date] = mapped_column(Date)
    storage: Mapped[bool] = mapped_column(Boolean)
    future_research: Mapped[bool] = mapped_column(Boolean)
    genetic_research: Mapped[bool] = mapped_column(Boolean)
    image_linkage: Mapped[bool] = mapped_column(Boolean)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime)
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)

    def covers(self, scope: str) -> bool:
        """Whether this consent, not withdrawn, covers ``scope`` (one of :data:`CONSENT_SCOPES`)."""
        return self.withdrawn_at is None and bool(getattr(self, scope))

    def describe(self) -> str:
        """``consent 2.0 of SABR-RCC-004 (signed 2024-05-06)`` for messages."""
        return f"consent {self.form_version} of {self.study_id} (signed {self.signed_on.isoformat()})"


class DisposalTask(Audited, Base):
    """A sample the lab must destroy (after a consent withdrawal), open until done."""

    __tablename__ = "disposal_tasks"
    __table_args__ = (CheckConstraint(sql_in("status", DISPOSAL_STATUSES), name="status_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sample_id: Mapped[int] = mapped_column(Integer, _sample_fk(), index=True)
    consent_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("consents.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(8), default="open", server_default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_by: Mapped[str | None] = mapped_column(String(128))


class Shipment(Audited, Base):
    """A shipment of samples to a destination, for a purpose that consent must cover."""

    __tablename__ = "shipments"
    __audit_label_columns__ = ("shipment_code",)
    __table_args__ = (
        CheckConstraint(sql_in("status", SHIPMENT_STATUSES), name="status_code"),
        CheckConstraint(sql_in("purpose_scope", CONSENT_SCOPES), name="purpose_scope_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_code: Mapped[str] = mapped_column(String(20), unique=True)
    destination: Mapped[str] = mapped_column(String(200))
    purpose_scope: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="draft", server_default="draft")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    courier: Mapped[str | None] = mapped_column(String(100))
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime)
    received_at: Mapped[datetime | None] = mapped_column(DateTime)


class ShipmentItem(Audited, Base):
    """One sample in a shipment."""

    __tablename__ = "shipment_items"
    __table_args__ = (UniqueConstraint("shipment_id", "sample_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(Integer, ForeignKey("shipments.id"), index=True)
    sample_id: Mapped[int] = mapped_column(Integer, _sample_fk(), index=True)


class AssayResult(Audited, Base):
    """A biomarker measurement on a sample (ctDNA, a cytokine, a blood count ...)."""

    __tablename__ = "assay_results"
    __audit_label_columns__ = ("sample_id", "analyte")
    __table_args__ = (CheckConstraint("lod IS NULL OR lod >= 0", name="lod_nonnegative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sample_id: Mapped[int] = mapped_column(Integer, _sample_fk(), index=True)
    analyte: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(100))
    batch: Mapped[str] = mapped_column(String(64))
    lod: Mapped[float | None] = mapped_column(Float)
    below_lod: Mapped[bool] = mapped_column(Boolean)
    measured_on: Mapped[date] = mapped_column(Date)


class BiobankCounter(Base):
    """Last serial handed out per series (``accession:PL``, ``shipment``), read under a row lock.

    Not audited: it is bookkeeping, and every serial it hands out is audited where it is used.
    """

    __tablename__ = "biobank_counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
