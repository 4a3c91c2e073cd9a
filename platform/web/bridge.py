"""Adapters from one web form to a room's service where the room offers only a bulk form of it.

Accessioning: the biobank offers :func:`sabrkit.biobank.load_samples` (a CSV, every row checked,
all-or-nothing) and :func:`~sabrkit.biobank.samples.accession_samples` (inside a caller's
session). The bench form accessions one specimen, so :func:`accession_one` writes the form as a
one-row CSV in a private temporary folder and calls :func:`load_samples`: the same validation,
the same accession-ID assignment, the same custody events and audit entries as the CLI's
``sabrkit biobank import``. No rule lives here.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Mapping
from pathlib import Path

from sabrkit.db.database import Database

__all__ = ["accession_one", "INTAKE_FIELDS"]

#: Fields of the accession form, in the CSV's column order (see ``SampleIntake``).
INTAKE_FIELDS: tuple[str, ...] = (
    "study_id", "timepoint", "specimen_type", "collected_at", "volume_ml", "quantity", "quantity_unit",
    "received_at", "processed_at", "primary_container", "pre_centrifugation_temperature", "centrifugation_g",
    "centrifugation_minutes", "centrifugation_temperature", "centrifugation_braking",
    "post_centrifugation_temperature", "frozen_at", "storage_container", "storage_temperature_c",
)


def accession_one(db: Database, fields: Mapping[str, object], *, operator: str) -> str:
    """Accession one specimen from form fields; returns its new accession ID.

    Raises
    ------
    ImportValidationError
        Every broken rule (the column is the field name); nothing was written.
    """
    from sabrkit.biobank import load_samples

    values = {name: "" if fields.get(name) is None else str(fields.get(name)).strip() for name in INTAKE_FIELDS}
    columns = [name for name in INTAKE_FIELDS if values[name] != ""] or ["study_id"]
    with tempfile.TemporaryDirectory(prefix="sabrkit-accession-") as folder:
        path = Path(folder) / "accession.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerow([values[name] for name in columns])
        summary = load_samples(db, path, operator=operator)
    return summary.accession_ids[0]
