"""Exports: MIABIS-shaped sample, donor and collection tables, and assay results (CSV or Parquet).

MIABIS (Minimum Information About BIobank data Sharing, 2.0 core) describes a biobank's
samples, donors and collections with shared vocabularies; the tables here use its attribute
names and vocabularies (material types, storage temperatures, sex) as columns:

- ``samples``: ``sample_id, parent_sample_id, donor_id, collection_id, material_type,
  storage_temperature, sample_collection_date`` plus sabrkit's ``timepoint, sprec_code,
  sprec_version, quantity, quantity_unit, freeze_thaw_cycles, status``;
- ``donors``: ``donor_id, sex, age_at_enrolment`` (pseudonymous study ID; no birth date);
- ``collections``: one for the study and one per protocol timepoint, with counts, material
  types and age range.

Only participants whose consent covers ``future_research`` appear (a withdrawn participant's
samples, donor row and results are left out of every table), and only pseudonymous IDs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from sabrkit.biobank.assays import assay_results_table
from sabrkit.biobank.consent import consented_study_ids
from sabrkit.biobank.custody import freeze_thaw_counts
from sabrkit.biobank.tables import Sample, SampleDerivation
from sabrkit.db.csv_export import neutralise_formulas
from sabrkit.db.database import Database
from sabrkit.errors import ValidationError, format_problem

__all__ = [
    "MIABIS_MATERIAL_TYPES",
    "miabis_storage_temperature",
    "sample_table",
    "donor_table",
    "collection_table",
    "export_biobank",
    "STUDY_COLLECTION_ID",
]

logger = logging.getLogger(__name__)

STUDY_COLLECTION_ID = "SABR-RCC"
#: sabrkit specimen type -> MIABIS 2.0 material type.
MIABIS_MATERIAL_TYPES: dict[str, str] = {
    "whole_blood": "Whole blood",
    "plasma": "Plasma",
    "serum": "Serum",
    "buffy_coat": "Buffy coat",
    "pbmc": "Peripheral blood cells",
    "urine": "Urine",
    "ffpe": "Tissue (FFPE)",
    "fresh_frozen_tissue": "Tissue (frozen)",
    "dna": "DNA",
    "rna": "RNA",
    "cfdna": "DNA",
}
_SEX = {"F": "Female", "M": "Male"}


def miabis_storage_temperature(celsius: float | None) -> str | None:
    """MIABIS storage temperature band of a temperature in °C (``-80`` -> ``"-60 °C to -85 °C"``)."""
    if celsius is None or pd.isna(celsius):
        return None
    if celsius <= -150:
        return "LN"
    if -85 <= celsius <= -60:
        return "-60 °C to -85 °C"
    if -35 <= celsius <= -18:
        return "-18 °C to -35 °C"
    if 2 <= celsius <= 10:
        return "2 °C to 10 °C"
    if 15 <= celsius <= 25:
        return "RT"
    return "Other"


def sample_table(db: Database, *, scope: str = "future_research") -> pd.DataFrame:
    """MIABIS-shaped sample table of consented participants (one row per sample)."""
    allowed = consented_study_ids(db, scope)
    with db.session() as session:
        samples = session.execute(
            select(
                Sample.id,
                Sample.accession_id,
                Sample.study_id,
                Sample.specimen_type,
                Sample.storage_temperature_c,
                Sample.collected_at,
                Sample.timepoint,
                Sample.kind,
                Sample.sprec_code,
                Sample.sprec_version,
                Sample.remaining_quantity,
                Sample.quantity_unit,
                Sample.status,
            ).order_by(Sample.accession_id)
        ).all()
        samples = [s for s in samples if s.study_id in allowed]
        ids = {s.id: s.accession_id for s in samples}
        parents: dict[int, str] = {}
        for parent_id, child_id in session.execute(
            select(SampleDerivation.parent_id, SampleDerivation.child_id)
        ):
            if child_id in ids and child_id not in parents:
                parents[child_id] = ids.get(parent_id, "")
        counts = freeze_thaw_counts(session, list(ids))
    rows = [
        {
            "sample_id": s.accession_id,
            "parent_sample_id": parents.get(s.id),
            "donor_id": s.study_id,
            "collection_id": f"{STUDY_COLLECTION_ID}:{s.timepoint}",
            "material_type": MIABIS_MATERIAL_TYPES[s.specimen_type],
            "storage_temperature": miabis_storage_temperature(s.storage_temperature_c),
            "sample_collection_date": s.collected_at.date().isoformat(),
            "timepoint": s.timepoint,
            "kind": s.kind,
            "sprec_code": s.sprec_code,
            "sprec_version": s.sprec_version,
            "quantity": s.remaining_quantity,
            "quantity_unit": s.quantity_unit,
            "freeze_thaw_cycles": counts[s.id],
            "status": s.status,
        }
        for s in samples
    ]
    columns = [
        "sample_id",
        "parent_sample_id",
        "donor_id",
        "collection_id",
        "material_type",
        "storage_temperature",
        "sample_collection_date",
        "timepoint",
        "kind",
        "sprec_code",
        "sprec_version",
        "quantity",
        "quantity_unit",
        "freeze_thaw_cycles",
        "status",
    ]
    return pd.DataFrame(rows, columns=columns)


def donor_table(db: Database, *, scope: str = "future_research") -> pd.DataFrame:
    """MIABIS-shaped donor table: consented participants who have samples."""
    from sabrkit.registry.tables import Patient

    allowed = consented_study_ids(db, scope)
    with db.session() as session:
        with_samples = set(session.execute(select(Sample.study_id).distinct()).scalars())
        patients = session.execute(
            select(Patient.study_id, Patient.sex, Patient.age_years).order_by(Patient.study_id)
        ).all()
    rows = [
        (p.study_id, _SEX.get(p.sex, "Unknown"), p.age_years)
        for p in patients
        if p.study_id in allowed and p.study_id in with_samples
    ]
    return pd.DataFrame(rows, columns=["donor_id", "sex", "age_at_enrolment"])


def collection_table(samples: pd.DataFrame, donors: pd.DataFrame) -> pd.DataFrame:
    """MIABIS-shaped collections: the study, and one sub-collection per protocol timepoint."""
    ages = donors.set_index("donor_id")["age_at_enrolment"] if not donors.empty else pd.Series(dtype=float)

    def row(collection_id: str, name: str, part: pd.DataFrame, parent: str | None) -> dict[str, object]:
        donor_ages = ages.reindex(part["donor_id"].unique()).dropna()
        return {
            "collection_id": collection_id,
            "parent_collection_id": parent,
            "name": name,
            "type": "Longitudinal",
            "number_of_samples": len(part),
            "number_of_donors": part["donor_id"].nunique(),
            "material_types": ";".join(sorted(part["material_type"].unique())),
            "storage_temperatures": ";".join(sorted(part["storage_temperature"].dropna().unique())),
            "age_low": int(donor_ages.min()) if len(donor_ages) else None,
            "age_high": int(donor_ages.max()) if len(donor_ages) else None,
            "age_unit": "Years",
            "sex": ";".join(sorted(donors[donors["donor_id"].isin(part["donor_id"])]["sex"].unique())),
        }

    rows = [row(STUDY_COLLECTION_ID, "SABR oligometastatic RCC registry biobank", samples, None)]
    for timepoint, part in samples.groupby("timepoint", sort=True):
        rows.append(
            row(
                f"{STUDY_COLLECTION_ID}:{timepoint}",
                f"SABR RCC samples at {timepoint}",
                part,
                STUDY_COLLECTION_ID,
            )
        )
    return pd.DataFrame(rows)


def export_biobank(
    db: Database, folder: Path, *, file_format: str = "parquet", scope: str = "future_research"
) -> dict[str, Path]:
    """Write ``samples``, ``donors``, ``collections`` and ``assay_results`` tables into ``folder``.

    Returns
    -------
    dict of str to Path
        Table name -> file written.
    """
    if file_format not in ("parquet", "csv"):
        raise ValidationError(
            format_problem(f"export format {file_format!r}", "parquet or csv", "choose one")
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    samples = sample_table(db, scope=scope)
    donors = donor_table(db, scope=scope)
    tables = {
        "samples": samples,
        "donors": donors,
        "collections": collection_table(samples, donors),
        "assay_results": assay_results_table(db, scope=scope),
    }
    written: dict[str, Path] = {}
    for name, table in tables.items():
        path = folder / f"{name}.{file_format}"
        if file_format == "parquet":
            table.to_parquet(path, index=False)
        else:
            neutralise_formulas(table).to_csv(path, index=False)
        written[name] = path
    logger.info("biobank export: %s", ", ".join(f"{n} ({len(t)} rows)" for n, t in tables.items()))
    return written
