"""Correct what was recorded for a sample (timepoint, times, processing), with a reason.

:func:`correct_sample` is the biobank counterpart of :func:`sabrkit.registry.capture.correct`:
the sample's recorded values merged with the changes go through the same checks as an accession
(:class:`~sabrkit.biobank.samples.SampleIntake` and :func:`~sabrkit.biobank.samples.intake_problems`:
no time after today or before enrolment, processing after collection, a SPREC code that can be
derived), the SPREC code is derived again, and the change is written in one audited transaction
(old -> new, actor, reason). The patient, specimen type and amounts are not corrected here (they
are part of the accession ID and the aliquot bookkeeping: dispose and accession again). A
disposed, consumed or depleted sample is read-only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from sabrkit.biobank.errors import SampleStateError
from sabrkit.biobank.samples import SampleIntake, enrolment_dates, get_sample, intake_problems
from sabrkit.biobank.vocabulary import FINAL_STATUSES
from sabrkit.db.database import Database
from sabrkit.errors import ImportValidationError, RowError, ValidationError, format_problem

__all__ = ["CORRECTABLE_SAMPLE_FIELDS", "correct_sample"]

logger = logging.getLogger(__name__)

#: Fields of a primary sample that :func:`correct_sample` may change.
CORRECTABLE_SAMPLE_FIELDS: tuple[str, ...] = (
    "timepoint",
    "collected_at",
    "received_at",
    "processed_at",
    "primary_container",
    "pre_centrifugation_temperature",
    "centrifugation_g",
    "centrifugation_minutes",
    "centrifugation_temperature",
    "centrifugation_braking",
    "second_centrifugation_g",
    "second_centrifugation_minutes",
    "second_centrifugation_temperature",
    "second_centrifugation_braking",
    "post_centrifugation_temperature",
    "frozen_at",
    "storage_container",
    "storage_temperature_c",
)


def _text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def correct_sample(
    db: Database, accession_id: str, changes: Mapping[str, object], *, reason: str, operator: str
) -> dict[str, tuple[Any, Any]]:
    """Change recorded values of one primary sample; returns ``{field: (old, new)}`` of what changed.

    Raises
    ------
    ValidationError
        No reason, an unknown field, or a value the field does not accept (``field`` names it).
    ImportValidationError
        The corrected record breaks an accession rule (every broken rule, by field); nothing changed.
    SampleStateError
        The sample is an aliquot/derivative or is disposed, consumed or depleted (read-only).
    """
    if not reason or not str(reason).strip():
        raise ValidationError(
            format_problem(
                f"a correction of {accession_id}",
                "every change needs a reason",
                "type why (it goes into the audit log)",
            ),
            field="reason",
        )
    unknown = sorted(set(changes) - set(CORRECTABLE_SAMPLE_FIELDS))
    if unknown:
        raise ValidationError(
            format_problem(
                f"field(s) {unknown} of sample {accession_id}",
                "only the recorded collection and processing values are corrected",
                "use one of " + ", ".join(CORRECTABLE_SAMPLE_FIELDS),
            ),
            field=unknown[0],
        )
    with db.transaction(actor=operator, reason=reason) as session:
        sample = get_sample(session, accession_id, for_update=True)
        if sample.kind != "primary":
            raise SampleStateError(
                format_problem(
                    f"{accession_id} is an {sample.kind}",
                    "collection and processing are recorded on the primary sample",
                    "correct its parent sample",
                )
            )
        if sample.status in FINAL_STATUSES:
            raise SampleStateError(
                format_problem(
                    f"{accession_id} is {sample.status}",
                    "such a sample is read-only",
                    "nothing can be changed any more",
                )
            )
        current = {name: _text(getattr(sample, name)) for name in CORRECTABLE_SAMPLE_FIELDS}
        merged = {k: v for k, v in current.items() if v is not None}
        merged.update({k: v for k, v in changes.items()})
        merged = {k: v for k, v in merged.items() if v is not None and v != ""}
        merged.update(study_id=sample.study_id, specimen_type=sample.specimen_type)
        try:
            intake = SampleIntake.model_validate(merged)
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else None
            raise ValidationError(
                format_problem(
                    f"{field} = {first.get('input')!r}", first["msg"], "give a value the field accepts"
                ),
                field=field,
            ) from None
        problems = intake_problems(intake, enrolment_dates(session))
        if problems:
            raise ImportValidationError(
                f"correction of {accession_id}",
                [RowError(1, column, value, rule) for column, value, rule in problems],
                changed=True,
            )
        values = intake.sample_values()
        changed: dict[str, tuple[Any, Any]] = {}
        for name in (*changes, "sprec_code", "sprec_version"):
            old, new = getattr(sample, name), values.get(name)
            if old != new:
                setattr(sample, name, new)
                changed[name] = (old, new)
    logger.info("corrected sample %s: %s", accession_id, ", ".join(changed) or "nothing")
    return changed
