"""ORM models of the biobank (minimal: one row per accessioned sample).

Samples reference registry patients by study ID (``patients.study_id``); both rooms share one
MetaData (:class:`sabrkit.db.Base`), so one migration history covers them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sabrkit.biobank.vocabulary import SAMPLE_STATUSES, SPECIMEN_TYPES, TIMEPOINTS
from sabrkit.db.base import Base
from sabrkit.registry.models import STUDY_ID_LENGTH
from sabrkit.registry.vocabulary import sql_in

__all__ = ["Sample", "ACCESSION_ID_LENGTH"]

ACCESSION_ID_LENGTH = 16


class Sample(Base):
    """A specimen collected from a participant at a protocol timepoint.

    ``accession_id`` (``SABR-PL-000001-C``, see :mod:`sabrkit.biobank.accession`) is the only
    identifier printed on labels; the patient link is the pseudonymous study ID.
    """

    __tablename__ = "samples"
    __table_args__ = (
        CheckConstraint(f"length(accession_id) = {ACCESSION_ID_LENGTH}", name="accession_id_length"),
        CheckConstraint(sql_in("timepoint", TIMEPOINTS), name="timepoint_code"),
        CheckConstraint(sql_in("specimen_type", SPECIMEN_TYPES), name="specimen_type_code"),
        CheckConstraint(sql_in("status", SAMPLE_STATUSES), name="status_code"),
        CheckConstraint("volume_ml > 0", name="volume_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    accession_id: Mapped[str] = mapped_column(String(ACCESSION_ID_LENGTH), unique=True)
    study_id: Mapped[str] = mapped_column(
        String(STUDY_ID_LENGTH), ForeignKey("patients.study_id", onupdate="CASCADE"), index=True
    )
    timepoint: Mapped[str] = mapped_column(String(16))
    specimen_type: Mapped[str] = mapped_column(String(24))
    collected_at: Mapped[datetime] = mapped_column(DateTime)
    volume_ml: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="received", server_default="received")

    def __repr__(self) -> str:
        return f"Sample({self.accession_id!r}, {self.study_id!r}, {self.timepoint!r}, {self.specimen_type!r})"
