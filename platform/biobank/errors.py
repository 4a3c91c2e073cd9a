"""Biobank errors: refinements of :mod:`sabrkit.errors` that callers (CLI, web, tests) can tell apart.

Each subclasses a :mod:`sabrkit.errors` class (and so the builtin it refines); messages follow
:func:`sabrkit.errors.format_problem` (what, rule, fix).
"""

from __future__ import annotations

from sabrkit.errors import ValidationError

__all__ = ["PositionOccupiedError", "QuantityError", "SampleStateError"]


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
