"""Key lengths and the patient foreign key shared by the registry's model modules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey

__all__ = ["STUDY_ID_LENGTH", "LESION_ID_LENGTH", "patient_fk", "lesion_fk"]

STUDY_ID_LENGTH = 32
LESION_ID_LENGTH = 40


def patient_fk() -> Any:
    """Foreign key to ``patients.study_id`` (renaming a study ID cascades)."""
    return ForeignKey("patients.study_id", onupdate="CASCADE")


def lesion_fk() -> Any:
    """Foreign key to ``lesions.lesion_id``."""
    return ForeignKey("lesions.lesion_id", onupdate="CASCADE")
