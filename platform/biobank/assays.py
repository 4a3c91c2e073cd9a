"""Assay results: biomarker measurements on samples, imported all-or-nothing, exported per patient.

A result names the analyte (``ctDNA_VAF``, ``IL6``, ``neutrophils``), value, unit, method, batch
and the method's limit of detection (LOD); ``below_lod`` is derived (``value < lod``, or no
value). Exports keep only participants whose consent covers ``future_research``
(:func:`sabrkit.biobank.consent.consented_study_ids`), joined to the patient's study ID and the
sample's timepoint, ready for the models room:

- :func:`assay_results_table`: one row per result (long);
- :func:`assay_feature_table`: one row per patient, one column per ``<analyte>_<timepoint>``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pandas as pd
from pydantic import Field, StringConstraints
from sqlalchemy import select

from sabrkit.audit import insert_audited
from sabrkit.biobank.consent import consented_study_ids
from sabrkit.biobank.tables import AssayResult, Sample
from sabrkit.db.csv_import import ImportRow, IsoDate, read_csv_rows, row_error
from sabrkit.db.database import Database
from sabrkit.errors import ImportValidationError

__all__ = [
    "AssayRow",
    "ASSAY_EXPORT_COLUMNS",
    "import_assay_results",
    "AssayImportSummary",
    "assay_results_table",
    "assay_feature_table",
]

logger = logging.getLogger(__name__)

ASSAY_EXPORT_COLUMNS = (
    "study_id",
    "accession_id",
    "timepoint",
    "specimen_type",
    "collected_at",
    "analyte",
    "value",
    "unit",
    "method",
    "batch",
    "lod",
    "below_lod",
    "measured_on",
)
Text = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class AssayRow(ImportRow):
    """``assay_results.csv``: one measurement."""

    accession_id: Annotated[str, StringConstraints(pattern=r"^SABR-[A-Z]{2}-[0-9]{6}-[0-9A-Z]$")]
    analyte: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.+-]{1,64}$")]
    value: float | None = None
    unit: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    method: Text
    batch: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    lod: Annotated[float, Field(ge=0)] | None = None
    measured_on: IsoDate


@dataclass(frozen=True)
class AssayImportSummary:
    """Result of :func:`import_assay_results` (``dry_run``: validated, nothing written)."""

    source: Path
    n_results: int
    dry_run: bool

    def __str__(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        return f"{self.source}: {verb} {self.n_results} assay result(s)"


def import_assay_results(
    db: Database, csv_path: Path, *, operator: str, dry_run: bool = False
) -> AssayImportSummary:
    """Validate every row (format, known sample, measured after collection) then import all or none.

    Raises
    ------
    ImportValidationError
        Every bad row, with row, column, value and rule; nothing was written.
    """
    csv_path = Path(csv_path)
    label = csv_path.name
    parsed, errors = read_csv_rows(csv_path, AssayRow)
    with db.session() as session:
        samples = {
            a: (i, c)
            for a, i, c in session.execute(
                select(Sample.accession_id, Sample.id, Sample.collected_at).where(
                    Sample.accession_id.in_({row.record.accession_id for row in parsed})
                )
            )
        }
    for row in parsed:
        found = samples.get(row.record.accession_id)
        if found is None:
            errors.append(
                row_error(
                    label,
                    row.row,
                    "accession_id",
                    row.record.accession_id,
                    "unknown sample: not in the biobank",
                )
            )
        elif row.record.measured_on < found[1].date():
            errors.append(
                row_error(
                    label,
                    row.row,
                    "measured_on",
                    row.record.measured_on.isoformat(),
                    f"measured before the sample was collected ({found[1]:%Y-%m-%d})",
                )
            )
    if errors:
        raise ImportValidationError(str(csv_path), sorted(errors, key=lambda e: e.row))
    if not dry_run:
        rows = []
        for row in parsed:
            values = row.record.model_dump(exclude={"accession_id"})
            values["sample_id"] = samples[row.record.accession_id][0]
            values["below_lod"] = values["value"] is None or (
                values["lod"] is not None and values["value"] < values["lod"]
            )
            rows.append(values)
        with db.transaction(actor=operator) as session:
            insert_audited(session, AssayResult, rows)
    summary = AssayImportSummary(csv_path, len(parsed), dry_run)
    logger.info("%s", summary)
    return summary


def assay_results_table(db: Database, *, scope: str = "future_research") -> pd.DataFrame:
    """All results of consented participants (:data:`ASSAY_EXPORT_COLUMNS`), one row per result."""
    allowed = consented_study_ids(db, scope)
    with db.session() as session:
        rows = session.execute(
            select(
                Sample.study_id,
                Sample.accession_id,
                Sample.timepoint,
                Sample.specimen_type,
                Sample.collected_at,
                AssayResult.analyte,
                AssayResult.value,
                AssayResult.unit,
                AssayResult.method,
                AssayResult.batch,
                AssayResult.lod,
                AssayResult.below_lod,
                AssayResult.measured_on,
            )
            .join(AssayResult, AssayResult.sample_id == Sample.id)
            .order_by(Sample.study_id, Sample.collected_at, AssayResult.analyte)
        ).all()
    table = pd.DataFrame([tuple(r) for r in rows], columns=list(ASSAY_EXPORT_COLUMNS))
    return table[table["study_id"].isin(allowed)].reset_index(drop=True)


def assay_feature_table(
    db: Database, *, scope: str = "future_research", below_lod: str = "half_lod"
) -> pd.DataFrame:
    """One row per consented patient, columns ``<analyte>_<timepoint>`` (mean over replicate results).

    Parameters
    ----------
    below_lod : str
        Value used for results below the LOD: ``"half_lod"`` (LOD/2, a common substitution),
        ``"lod"`` or ``"missing"`` (NaN).
    """
    table = assay_results_table(db, scope=scope)
    if table.empty:
        return pd.DataFrame({"study_id": pd.Series(dtype=str)})
    values = table["value"].astype(float)
    substitute = {
        "half_lod": table["lod"].astype(float) / 2,
        "lod": table["lod"].astype(float),
        "missing": pd.Series(float("nan"), index=table.index),
    }[below_lod]
    table = table.assign(value=values.where(~table["below_lod"].astype(bool), substitute))
    table["feature"] = table["analyte"] + "_" + table["timepoint"]
    wide = table.pivot_table(index="study_id", columns="feature", values="value", aggfunc="mean")
    wide.columns.name = None
    return wide.reset_index()
