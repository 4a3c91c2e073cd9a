"""Biobank errors: refinements of :mod:`sabrkit.errors` that callers (CLI, web, tests) can tell apart.

Each subclasses a :mod:`sabrkit.errors` class (and so the builtin it refines); messages follow
:func:`sabrkit.errors.format_problem` (what, rule, fix).
"""

from __future__ import annotations

from sabrkit.errors import ValidationError

__all__ = ["PositionOccupiedError", "QuantityError", "SampleStateError", "DuplicateAccessionError"]


class PositionOccupiedError(ValidationError):
    """A box position already holds a sample ("position occupied"); names the box and position."""

    def __init__(self, message: str, *, box: str, position: str):
        super().__init__(message)
        self.box = box
        self.position = position


class QuantityError(ValidationError):
    """A child or a consumption would take more than the parent has left."""


class SampleStateError(ValidationError):
    """The sample's status forbids the action (consumed, disposed, depleted, in transit ...)."""


class DuplicateAccessionError(ValidationError):
    """A primary sample of the same patient, timepoint, specimen type and collection minute exists.

    ``accession_ids`` names those samples; the caller asks the user to confirm a second tube
    (:func:`sabrkit.biobank.accession_sample` with ``allow_duplicate=True``) or open the first.
    """

    def __init__(self, message: str, *, accession_ids: list[str]):
        super().__init__(message, field="collected_at")
        self.accession_ids = accession_ids
