"""Accession samples: validate what the lab recorded, derive the SPREC code, assign accession IDs.

:class:`SampleIntake` is one collected specimen as entered at the bench or read from a CSV
row; :func:`intake_problems` checks it against the registry (a known, enrolled patient, a sample
collected on or after enrolment) and the order of its times; :func:`accession_samples` writes
valid intakes in the caller's transaction. Serials come from ``biobank_counters`` read under a
row lock (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite transactions of
:meth:`sabrkit.db.Database.transaction` hold the write lock from ``BEGIN IMMEDIATE``), so
concurrent accessioning never hands out one ID twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from sabrkit.audit import insert_audited, insert_audited_rows
from sabrkit.biobank.accession import MAX_SERIAL, make_accession_id, specimen_code
from sabrkit.biobank.sprec import (
    PRIMARY_CONTAINERS,
    SPREC_VERSION,
    STORAGE_CONTAINERS,
    Centrifugation,
    Preanalytics,
    derive_sprec,
)
from sabrkit.biobank.tables import BiobankCounter, CustodyEvent, Sample
from sabrkit.biobank.vocabulary import DEFAULT_UNITS, QuantityUnit, SpecimenType, Timepoint
from sabrkit.db.csv_import import ImportRow, IsoDateTime
from sabrkit.errors import NotFoundError, ValidationError, format_problem
from sabrkit.registry.rows import StudyId

__all__ = [
    "SampleIntake",
    "intake_problems",
    "accession_samples",
    "get_sample",
    "next_serials",
    "enrolment_dates",
    "BENCH",
]

logger = logging.getLogger(__name__)

#: Default location of events recorded at accessioning.
BENCH = "biobank reception"
#: Site of a source ID given without ``source_site``.
DEFAULT_SOURCE_SITE = "main"
Temperature = Literal["room_temperature", "refrigerated", "body"]
SpinTemperature = Literal["room_temperature", "refrigerated"]
Positive = Annotated[float, Field(gt=0)]


_NOT_DERIVED = object()


class SampleIntake(ImportRow):
    """One collected specimen: the data contract's columns plus the optional preanalytics.

    Required: ``study_id, timepoint, specimen_type, collected_at``. ``volume_ml`` (the data
    contract) or ``quantity`` with ``quantity_unit`` (mL, ug, count) give the amount. The rest
    is the processing record from which the SPREC code is derived (:mod:`sabrkit.biobank.sprec`).
    """

    study_id: StudyId
    timepoint: Timepoint
    specimen_type: SpecimenType
    collected_at: IsoDateTime
    volume_ml: Positive | None = None
    quantity: Positive | None = None
    quantity_unit: QuantityUnit | None = None
    received_at: IsoDateTime | None = None
    processed_at: IsoDateTime | None = None
    primary_container: Annotated[str, Field(pattern=r"^[A-Z0-9]{3}$")] | None = None
    pre_centrifugation_temperature: Temperature | None = None
    centrifugation_g: Positive | None = None
    centrifugation_minutes: Positive | None = None
    centrifugation_temperature: SpinTemperature | None = None
    centrifugation_braking: bool | None = None
    second_centrifugation_g: Positive | None = None
    second_centrifugation_minutes: Positive | None = None
    second_centrifugation_temperature: SpinTemperature | None = None
    second_centrifugation_braking: bool | None = None
    post_centrifugation_temperature: Temperature | None = None
    frozen_at: IsoDateTime | None = None
    storage_container: str | None = None
    storage_temperature_c: Annotated[float, Field(ge=-200, le=40)] | None = None
    source_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    source_site: Annotated[str, Field(min_length=1, max_length=32)] | None = None

    def source(self) -> tuple[str, str] | None:
        """``(site, source ID)`` of the tube (site ``main`` when only the ID is given), or None."""
        if self.source_id is None:
            return None
        return (self.source_site or DEFAULT_SOURCE_SITE, self.source_id)

    def natural_key(self) -> tuple[str, str, str, datetime]:
        """What identifies a collection without a source ID: patient, timepoint, type and collection time."""
        return (self.study_id, self.timepoint, self.specimen_type, self.collected_at)

    def _spin(self, prefix: str) -> Centrifugation | None:
        g_force = getattr(self, f"{prefix}_g")
        if g_force is None:
            return None
        return Centrifugation(
            g_force=g_force,
            minutes=getattr(self, f"{prefix}_minutes") or 0.0,
            temperature=getattr(self, f"{prefix}_temperature") or "room_temperature",
            braking=True
            if getattr(self, f"{prefix}_braking") is None
            else bool(getattr(self, f"{prefix}_braking")),
        )

    def preanalytics(self) -> Preanalytics:
        """The processing record as :class:`~sabrkit.biobank.sprec.Preanalytics`."""
        return Preanalytics(
            specimen_type=self.specimen_type,
            collected_at=self.collected_at,
            primary_container=self.primary_container,
            processed_at=self.processed_at,
            pre_centrifugation_temperature=self.pre_centrifugation_temperature,
            centrifugation=self._spin("centrifugation"),
            second_centrifugation=self._spin("second_centrifugation"),
            post_centrifugation_temperature=self.post_centrifugation_temperature,
            frozen_at=self.frozen_at,
            storage_container=self.storage_container,
            storage_temperature_c=self.storage_temperature_c,
        )

    def amount(self) -> tuple[float | None, str]:
        """(quantity, unit): ``volume_ml`` in mL, else ``quantity`` in its unit (default per type)."""
        if self.volume_ml is not None:
            return self.volume_ml, "mL"
        return self.quantity, self.quantity_unit or DEFAULT_UNITS[self.specimen_type]

    def sprec_code(self) -> str | None:
        """The derived SPREC code (computed once: validation and accession both ask for it).

        Raises
        ------
        ValidationError
            As :func:`~sabrkit.biobank.sprec.derive_sprec`.
        """
        cached = self.__dict__.get("_sprec_code", _NOT_DERIVED)
        if cached is _NOT_DERIVED:
            cached = derive_sprec(self.preanalytics())
            self.__dict__["_sprec_code"] = cached
        return cached

    def sample_values(self) -> dict[str, Any]:
        """Column values of the new ``samples`` row, without accession ID (SPREC derived here)."""
        quantity, unit = self.amount()
        values = self.model_dump(exclude={"volume_ml", "quantity", "quantity_unit", "source_site"})
        source = self.source()
        values["source_site"] = source[0] if source is not None else None
        sprec = self.sprec_code()
        values.update(
            quantity=quantity,
            remaining_quantity=quantity,
            quantity_unit=unit,
            kind="primary",
            status="received",
            sprec_code=sprec,
            sprec_version=SPREC_VERSION if sprec else None,
        )
        return values


def enrolment_dates(session: Session) -> dict[str, date]:
    """Enrolment date of every registry patient, by study ID."""
    from sabrkit.registry.tables import Patient

    return dict(session.execute(select(Patient.study_id, Patient.enrolment_date)).all())


#: One broken rule of an intake: (column, value, rule).
Problem = tuple[str, object, str]


def intake_problems(intake: SampleIntake, enrolled: dict[str, date]) -> list[Problem]:
    """Rules one intake breaks, as ``(column, value, rule)``; empty when it can be accessioned.

    Checks: the patient is in the registry (enrolled), the sample was collected on or after
    enrolment, volume and quantity are not both given, ``quantity`` has a unit for its type, and
    the preanalytical record is consistent (processing after collection, freezing after
    processing, a known container; see :func:`sabrkit.biobank.sprec.derive_sprec`).
    """
    problems = [*_registration_problems(intake, enrolled), *_quantity_problems(intake)]
    problems += _processing_problems(intake)
    if not problems:
        try:
            intake.sprec_code()
        except ValidationError as exc:
            problems.append(("frozen_at", intake.frozen_at, str(exc).split("; fix:")[0]))
    return problems


def _registration_problems(intake: SampleIntake, enrolled: dict[str, date]) -> list[Problem]:
    """Dates after the cut-off, a source site without its ID, the patient not enrolled by collection."""
    from sabrkit.registry.rules import latest_allowed_date

    problems: list[Problem] = []
    latest = latest_allowed_date()
    for column in ("collected_at", "received_at", "processed_at", "frozen_at"):
        moment = getattr(intake, column)
        if moment is not None and moment.date() > latest:
            problems.append(
                (
                    column,
                    moment.isoformat(timespec="minutes"),
                    f"must not lie after today/the data cut-off ({latest.isoformat()})",
                )
            )
    if intake.source_site is not None and intake.source_id is None:
        problems.append(
            (
                "source_site",
                intake.source_site,
                "a source site names where source_id comes from: "
                "give source_id too, or leave source_site empty",
            )
        )
    enrolment = enrolled.get(intake.study_id)
    if enrolment is None:
        problems.append(
            (
                "study_id",
                intake.study_id,
                "patient not enrolled: the study ID is not in the registry (enrol the patient first)",
            )
        )
    elif intake.collected_at.date() < enrolment:
        problems.append(
            (
                "collected_at",
                intake.collected_at.isoformat(timespec="minutes"),
                f"collected before the patient's enrolment on {enrolment.isoformat()}",
            )
        )
    return problems


def _quantity_problems(intake: SampleIntake) -> list[Problem]:
    """Volume and quantity not both given; a volume only for specimens counted in mL."""
    problems: list[Problem] = []
    if intake.volume_ml is not None and intake.quantity is not None:
        problems.append(("quantity", intake.quantity, "give volume_ml or quantity, not both"))
    if intake.volume_ml is not None and DEFAULT_UNITS[intake.specimen_type] != "mL":
        problems.append(
            (
                "volume_ml",
                intake.volume_ml,
                f"{intake.specimen_type} is counted in {DEFAULT_UNITS[intake.specimen_type]}, not mL "
                "(use quantity and quantity_unit)",
            )
        )
    return problems


def _processing_problems(intake: SampleIntake) -> list[Problem]:
    """The preanalytical record: receipt, centrifugations, processing and freezing times, containers."""
    problems: list[Problem] = []
    if intake.received_at is not None and intake.received_at < intake.collected_at:
        problems.append(
            (
                "received_at",
                intake.received_at.isoformat(timespec="minutes"),
                "received before it was collected",
            )
        )
    for prefix in ("centrifugation", "second_centrifugation"):
        if getattr(intake, f"{prefix}_g") is not None and getattr(intake, f"{prefix}_minutes") is None:
            problems.append((f"{prefix}_minutes", None, f"{prefix}_g is given: its minutes are required too"))
    if intake.second_centrifugation_g is not None and intake.centrifugation_g is None:
        problems.append(
            (
                "second_centrifugation_g",
                intake.second_centrifugation_g,
                "a second centrifugation needs the first one recorded",
            )
        )
    start = intake.processed_at or intake.collected_at
    if intake.processed_at is not None and intake.processed_at < intake.collected_at:
        problems.append(
            (
                "processed_at",
                intake.processed_at.isoformat(timespec="minutes"),
                f"processing before collection ({intake.collected_at.isoformat(timespec='minutes')})",
            )
        )
    elif intake.frozen_at is not None and intake.frozen_at < start:
        problems.append(
            (
                "frozen_at",
                intake.frozen_at.isoformat(timespec="minutes"),
                f"frozen before it was collected/processed ({start.isoformat(timespec='minutes')})",
            )
        )
    if intake.primary_container is not None and intake.primary_container not in PRIMARY_CONTAINERS:
        problems.append(
            (
                "primary_container",
                intake.primary_container,
                "not a SPREC primary-container code (" + ", ".join(PRIMARY_CONTAINERS) + ")",
            )
        )
    if intake.storage_container is not None and intake.storage_container not in STORAGE_CONTAINERS:
        problems.append(
            (
                "storage_container",
                intake.storage_container,
                "storage container must be one of " + ", ".join(STORAGE_CONTAINERS),
            )
        )
    return problems


def next_serials(session: Session, specimen_type: str, count: int) -> range:
    """Reserve ``count`` accession serials of a specimen type (row-locked counter).

    Raises
    ------
    ValidationError
        If the serials would run past 999999 for this specimen code.
    """
    code = specimen_code(specimen_type)
    name = f"accession:{code}"
    counter = session.execute(
        select(BiobankCounter).where(BiobankCounter.name == name).with_for_update()
    ).scalar_one_or_none()
    if counter is None:
        counter = BiobankCounter(name=name, value=0)
        session.add(counter)
    first = counter.value + 1
    if counter.value + count > MAX_SERIAL:
        raise ValidationError(
            format_problem(
                f"{count} {specimen_type} sample(s) from serial {first}",
                f"accession serials of code {code} end at {MAX_SERIAL}",
                "ask the data manager to extend the accession scheme",
            )
        )
    counter.value += count
    session.flush()
    return range(first, first + count)


def accession_samples(
    session: Session,
    intakes: Sequence[SampleIntake],
    *,
    operator: str,
    location: str = BENCH,
    received_at: datetime | None = None,
    chunk_size: int = 2000,
    on_chunk: Callable[[int], None] | None = None,
) -> list[str]:
    """Write valid intakes as samples with ``collected`` and ``received`` custody events.

    Parameters
    ----------
    session : Session
        Inside ``Database.transaction(actor=operator)``; nothing is committed here.
    intakes : sequence of SampleIntake
        Already validated (:func:`intake_problems`), in accession order.
    operator : str
        Who receives the samples (custody events).
    location : str
        Where they are received.
    received_at : datetime, optional
        Default: each intake's ``received_at``, else now.
    chunk_size : int
        Rows per multi-row INSERT.
    on_chunk : callable, optional
        Called with the number of samples written so far after each chunk (progress bars).

    Returns
    -------
    list of str
        Accession IDs, in the order of ``intakes``.
    """
    now = received_at or datetime.now().replace(microsecond=0)
    by_type: dict[str, list[int]] = {}
    for index, intake in enumerate(intakes):
        by_type.setdefault(intake.specimen_type, []).append(index)
    accession_ids: list[str] = [""] * len(intakes)
    for specimen_type, indices in by_type.items():
        for index, serial in zip(indices, next_serials(session, specimen_type, len(indices)), strict=True):
            accession_ids[index] = make_accession_id(specimen_type, serial)
    written = 0
    for start in range(0, len(intakes), chunk_size):
        chunk = range(start, min(start + chunk_size, len(intakes)))
        rows = []
        for index in chunk:
            values = intakes[index].sample_values()
            values["accession_id"] = accession_ids[index]
            values["received_at"] = values.get("received_at") or now
            rows.append(values)
        sample_ids = insert_audited_rows(session, Sample, rows)
        events = []
        for sample_id, values in zip(sample_ids, rows, strict=True):
            events.append(
                dict(
                    sample_id=sample_id,
                    event_type="collected",
                    occurred_at=values["collected_at"],
                    operator=operator,
                    location="collection site",
                    details=values["timepoint"],
                    shipment_id=None,
                )
            )
            events.append(
                dict(
                    sample_id=sample_id,
                    event_type="received",
                    occurred_at=values["received_at"],
                    operator=operator,
                    location=location,
                    details=None,
                    shipment_id=None,
                )
            )
        insert_audited(session, CustodyEvent, events)
        written += len(rows)
        if on_chunk is not None:
            on_chunk(written)
    from sabrkit.biobank.consent import open_disposal_tasks_for_withdrawn
    from sabrkit.biobank.tables import Consent

    study_ids = sorted({intake.study_id for intake in intakes})
    withdrawn = (
        set(
            session.execute(
                select(Consent.study_id).where(
                    Consent.study_id.in_(study_ids), Consent.withdrawn_at.is_not(None)
                )
            ).scalars()
        )
        if study_ids
        else set()
    )
    opened = 0
    if withdrawn:
        new = [
            accession_id
            for accession_id, intake in zip(accession_ids, intakes, strict=True)
            if intake.study_id in withdrawn
        ]
        received = session.execute(select(Sample).where(Sample.accession_id.in_(new))).scalars()
        opened = open_disposal_tasks_for_withdrawn(session, list(received), now)
    if opened:
        logger.info("%d sample(s) of withdrawn participants received: disposal task(s) opened", opened)
    logger.debug("accessioned %d sample(s)", written)
    return accession_ids


def get_sample(session: Session, accession_id: str, *, for_update: bool = False) -> Sample:
    """The sample with this accession ID; ``for_update`` locks its row until the transaction ends.

    Raises
    ------
    NotFoundError
        If no sample has this accession ID.
    """
    statement = select(Sample).where(Sample.accession_id == accession_id)
    if for_update:
        statement = statement.with_for_update()
    sample = session.execute(statement).scalar_one_or_none()
    if sample is None:
        from sabrkit.biobank.accession import parse_accession_id

        parse_accession_id(accession_id)  # a malformed ID gets the format message
        raise NotFoundError(
            format_problem(
                f"accession ID {accession_id!r}",
                "the sample must exist in the biobank",
                "check the label, or accession the sample first",
            )
        )
    return sample
