"""Consent: form versions, each participant's signed scopes, and withdrawal in one action.

Scopes: ``storage`` (keep samples), ``future_research`` (use samples and data in research),
``genetic_research`` (DNA/RNA work), ``image_linkage`` (link samples and data to images and
image-derived features). A participant's consent in force is the most recently signed one; a
withdrawal ends all of that participant's consents at once.

Every release and export asks this module first:

- :func:`consented_study_ids` returns the participants whose consent in force covers a scope;
  exports (biobank, assay results, and the features/models rooms' image-derived tables) keep
  only those rows;
- :func:`require_consent` raises :class:`~sabrkit.errors.ConsentError` naming the consent
  (version, participant, date signed/withdrawn) when a release is not covered.

:func:`withdraw_consent` marks the consents withdrawn, removes the participant's samples from
draft shipments, and opens a disposal task for every sample still held, in one audited
transaction (the audit log shows each change with the withdrawal's reason).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sabrkit.audit import insert_audited
from sabrkit.biobank.tables import Consent, ConsentForm, DisposalTask, Sample, Shipment, ShipmentItem
from sabrkit.biobank.vocabulary import CONSENT_SCOPES, FINAL_STATUSES
from sabrkit.db.database import Database
from sabrkit.errors import ConsentError, NotFoundError, ValidationError, format_problem

__all__ = [
    "add_consent_form",
    "record_consent",
    "withdraw_consent",
    "WithdrawalSummary",
    "consented_study_ids",
    "require_consent",
    "check_scope",
    "withdrawn_consent",
    "refuse_after_withdrawal",
    "open_disposal_tasks_for_withdrawn",
]

logger = logging.getLogger(__name__)


def check_scope(scope: str) -> str:
    """Return ``scope`` if it is a consent scope, else raise :class:`ValidationError`."""
    if scope not in CONSENT_SCOPES:
        raise ValidationError(
            format_problem(
                f"consent scope {scope!r}", "one of " + ", ".join(CONSENT_SCOPES), "use a listed scope"
            )
        )
    return scope


def add_consent_form(db: Database, version: str, title: str, effective_from: date, *, operator: str) -> None:
    """Register a consent form version (``"2.0"``)."""
    with db.transaction(actor=operator) as session:
        session.add(ConsentForm(version=version, title=title, effective_from=effective_from))


def record_consent(
    db: Database, study_id: str, form_version: str, signed_on: date, scopes: Iterable[str], *, operator: str
) -> int:
    """Record a participant's signed consent with the scopes they agreed to; returns its id.

    Raises
    ------
    ValidationError
        Unknown scope, or signed before the form came into use.
    NotFoundError
        Unknown participant or form version.
    """
    from sabrkit.registry.tables import Patient

    granted = {check_scope(scope) for scope in scopes}
    with db.transaction(actor=operator) as session:
        if session.get(Patient, study_id) is None:
            raise NotFoundError(
                format_problem(
                    f"study ID {study_id!r}",
                    "consent is recorded for an enrolled patient",
                    "enrol the patient in the registry first",
                )
            )
        form = session.get(ConsentForm, form_version)
        if form is None:
            raise NotFoundError(
                format_problem(
                    f"consent form version {form_version!r}",
                    "the form must be registered",
                    "add it with `sabrkit biobank consent form-add`",
                )
            )
        if signed_on < form.effective_from:
            raise ValidationError(
                format_problem(
                    f"consent {form_version} signed {signed_on.isoformat()}",
                    f"form {form_version} is in use from {form.effective_from.isoformat()}",
                    "check the form version",
                )
            )
        consent = Consent(
            study_id=study_id,
            form_version=form_version,
            signed_on=signed_on,
            **{scope: scope in granted for scope in CONSENT_SCOPES},
        )
        session.add(consent)
        session.flush()
        return consent.id


def _consents(session: Session, study_ids: Iterable[str] | None = None) -> dict[str, list[Consent]]:
    statement = select(Consent).order_by(Consent.study_id, Consent.signed_on, Consent.id)
    if study_ids is not None:
        statement = statement.where(Consent.study_id.in_(list(study_ids)))
    grouped: dict[str, list[Consent]] = {}
    for consent in session.execute(statement).scalars():
        grouped.setdefault(consent.study_id, []).append(consent)
    return grouped


def consented_study_ids(db: Database, scope: str) -> set[str]:
    """Participants whose consent in force covers ``scope`` and who have not withdrawn.

    This is the function every export and release calls (features and models rooms included:
    ``consented_study_ids(db, "image_linkage")`` before exporting image-derived features).
    """
    check_scope(scope)
    with db.session() as session:
        return {
            study_id
            for study_id, consents in _consents(session).items()
            if consents[-1].covers(scope) and all(c.withdrawn_at is None for c in consents)
        }


def require_consent(session: Session, study_id: str, scope: str, *, what: str) -> Consent:
    """The consent that covers releasing ``what`` for ``scope``; else :class:`ConsentError`.

    The message names the consent (version, participant, signed, withdrawn) and the scope.
    """
    check_scope(scope)
    consents = _consents(session, [study_id]).get(study_id, [])
    if not consents:
        raise ConsentError(
            format_problem(
                f"release of {what} refused: no consent recorded for {study_id}",
                f"releases need a consent covering {scope}",
                "record the participant's consent first",
            )
        )
    current = consents[-1]
    withdrawn = [c for c in consents if c.withdrawn_at is not None]
    if withdrawn:
        first = withdrawn[0]
        raise ConsentError(
            format_problem(
                f"release of {what} refused: {first.describe()} was withdrawn on {first.withdrawn_at:%Y-%m-%d}",
                "nothing of a withdrawn participant is released or exported",
                "do not release; dispose of the samples",
            )
        )
    if not current.covers(scope):
        raise ConsentError(
            format_problem(
                f"release of {what} refused: {current.describe()} does not cover {scope}",
                f"a release for {scope} needs the participant's consent to it",
                "ask for re-consent or choose other samples",
            )
        )
    return current


def withdrawn_consent(session: Session, study_id: str) -> Consent | None:
    """The participant's first withdrawn consent, or None when they have not withdrawn."""
    return session.execute(
        select(Consent)
        .where(Consent.study_id == study_id, Consent.withdrawn_at.is_not(None))
        .order_by(Consent.withdrawn_at)
        .limit(1)
    ).scalar_one_or_none()


def refuse_after_withdrawal(session: Session, sample: Sample, action: str) -> None:
    """Raise :class:`ConsentError` if ``sample``'s participant withdrew consent.

    After a withdrawal a sample is only disposed of (``sabrkit biobank dispose``, the documented
    disposal step, which closes its disposal task); aliquoting, deriving, pooling and consuming
    it are refused.
    """
    consent = withdrawn_consent(session, sample.study_id)
    if consent is None:
        return
    raise ConsentError(
        format_problem(
            f"{action} of {sample.accession_id} refused: {consent.describe()} was withdrawn on "
            f"{consent.withdrawn_at:%Y-%m-%d}",
            "after a withdrawal the participant's samples are only disposed of (the documented disposal step)",
            f"dispose of the sample: sabrkit biobank dispose {sample.accession_id} --reason 'consent withdrawn'",
        )
    )


def open_disposal_tasks_for_withdrawn(session: Session, samples: Iterable[Sample], at: datetime) -> int:
    """Open a disposal task for each of ``samples`` whose participant withdrew (and that has none open).

    Used when a sample enters the biobank after its participant's withdrawal (collected before it,
    received later), so every sample still held by a withdrawn participant has a disposal task.
    """
    held = [s for s in samples if s.status not in FINAL_STATUSES]
    withdrawn = {study_id: withdrawn_consent(session, study_id) for study_id in {s.study_id for s in held}}
    targets = [s for s in held if withdrawn[s.study_id] is not None]
    if not targets:
        return 0
    open_tasks = set(
        session.execute(
            select(DisposalTask.sample_id).where(
                DisposalTask.sample_id.in_([s.id for s in targets]), DisposalTask.status == "open"
            )
        ).scalars()
    )
    tasks = [
        dict(
            sample_id=s.id,
            consent_id=withdrawn[s.study_id].id,  # type: ignore[union-attr]
            status="open",
            created_at=at,
            reason=f"consent withdrawn by {s.study_id}: sample received after the withdrawal",
        )
        for s in targets
        if s.id not in open_tasks
    ]
    insert_audited(session, DisposalTask, tasks)
    return len(tasks)


@dataclass(frozen=True)
class WithdrawalSummary:
    """What one withdrawal did."""

    study_id: str
    consents: tuple[str, ...]
    disposal_tasks: int
    removed_from_shipments: int

    def __str__(self) -> str:
        return (
            f"{self.study_id}: consent(s) {', '.join(self.consents)} withdrawn; {self.disposal_tasks} disposal "
            f"task(s) opened; {self.removed_from_shipments} sample(s) taken out of draft shipments"
        )


def withdraw_consent(
    db: Database, study_id: str, *, operator: str, reason: str, at: datetime | None = None
) -> WithdrawalSummary:
    """Withdraw a participant's consent in one action (one audited transaction).

    Marks every consent of the participant withdrawn, takes their samples out of draft
    shipments and opens a disposal task for every sample not yet consumed or disposed.
    From then on :func:`require_consent` refuses every release and :func:`consented_study_ids`
    leaves the participant out of every export.

    Raises
    ------
    NotFoundError
        If no consent is recorded for ``study_id``.
    """
    if not reason or not reason.strip():
        raise ValidationError(
            format_problem("withdrawal without a reason", "a withdrawal records why", "pass --reason")
        )
    at = at or datetime.now().replace(microsecond=0)
    with db.transaction(actor=operator, reason=f"consent withdrawal: {reason}") as session:
        consents = _consents(session, [study_id]).get(study_id, [])
        if not consents:
            raise NotFoundError(
                format_problem(
                    f"study ID {study_id!r}", "a withdrawal ends a recorded consent", "check the study ID"
                )
            )
        for consent in consents:
            if consent.withdrawn_at is None:
                consent.withdrawn_at = at
                consent.withdrawal_reason = reason
        samples = list(session.execute(select(Sample).where(Sample.study_id == study_id)).scalars())
        sample_ids = [s.id for s in samples]
        draft_items = (
            list(
                session.execute(
                    select(ShipmentItem)
                    .join(Shipment, Shipment.id == ShipmentItem.shipment_id)
                    .where(Shipment.status == "draft", ShipmentItem.sample_id.in_(sample_ids))
                ).scalars()
            )
            if sample_ids
            else []
        )
        for item in draft_items:
            session.delete(item)
        open_tasks = (
            set(
                session.execute(
                    select(DisposalTask.sample_id).where(
                        DisposalTask.sample_id.in_(sample_ids), DisposalTask.status == "open"
                    )
                ).scalars()
            )
            if sample_ids
            else set()
        )
        tasks = [
            dict(
                sample_id=s.id,
                consent_id=consents[-1].id,
                status="open",
                created_at=at,
                reason=f"consent withdrawn by {study_id}: {reason}",
            )
            for s in samples
            if s.status not in FINAL_STATUSES and s.id not in open_tasks
        ]
        insert_audited(session, DisposalTask, tasks)
    logger.info("consent withdrawn for %s: %d disposal task(s)", study_id, len(tasks))
    return WithdrawalSummary(study_id, tuple(c.form_version for c in consents), len(tasks), len(draft_items))
