"""The clinical covariate table: one row per patient, no direct identifiers.

Columns: ``study_id, age_years, sex, ecog, histology, imdc_risk, prior_nephrectomy,
disease_state, systemic_therapy, n_lesions, max_bed10_gy``. ``n_lesions`` counts the
patient's registered lesions; ``max_bed10_gy`` is the highest BED10 over the patient's SABR
courses, recomputed with alpha/beta = 10 Gy whatever alpha/beta a course stores:

.. math:: \\mathrm{BED}_{10} = D \\left(1 + \\frac{D / n}{10}\\right)
"""

from __future__ import annotations

import logging

import pandas as pd
from sqlalchemy import select

from sabrkit.db.database import Database
from sabrkit.errors import ValidationError, format_problem
from sabrkit.registry import tables as m
from sabrkit.registry.dose import bed10

__all__ = ["CLINICAL_COVARIATE_COLUMNS", "compute_clinical_covariates", "clinical_covariates_from_db"]

logger = logging.getLogger(__name__)

_PATIENT_COLUMNS = (
    "study_id",
    "age_years",
    "sex",
    "ecog",
    "histology",
    "imdc_risk",
    "prior_nephrectomy",
    "disease_state",
    "systemic_therapy",
)
CLINICAL_COVARIATE_COLUMNS = (*_PATIENT_COLUMNS, "n_lesions", "max_bed10_gy")


def _require(frame: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValidationError(
            format_problem(
                f"{name} table lacks column(s) {', '.join(missing)}",
                f"{name} needs {', '.join(columns)}",
                "pass the registry table with its documented columns",
            )
        )


_BOOLEAN_TEXT = {"true": True, "false": False, "1": True, "0": False}


def _as_bool(values: pd.Series) -> pd.Series:
    """``prior_nephrectomy`` as bool; text ``"false"`` must not become True."""
    if values.dtype == bool:
        return values
    mapped = values.map(lambda v: _BOOLEAN_TEXT.get(str(v).strip().lower()) if not isinstance(v, bool) else v)
    if mapped.isna().any():
        bad = sorted({str(v) for v in values[mapped.isna()]})
        raise ValidationError(
            format_problem(
                f"prior_nephrectomy values {bad}",
                "prior_nephrectomy is true or false",
                "correct the patients table",
            )
        )
    return mapped.astype(bool)


def compute_clinical_covariates(
    patients: pd.DataFrame, lesions: pd.DataFrame, sabr_courses: pd.DataFrame
) -> pd.DataFrame:
    """Build the clinical covariate table from registry tables.

    Parameters
    ----------
    patients : DataFrame
        The patient columns of :data:`CLINICAL_COVARIATE_COLUMNS` (other columns are dropped,
        so identifiers never pass through).
    lesions : DataFrame
        ``study_id``, ``lesion_id``.
    sabr_courses : DataFrame
        ``study_id``, ``total_dose_gy``, ``fractions``.

    Returns
    -------
    DataFrame
        :data:`CLINICAL_COVARIATE_COLUMNS`, one row per patient, sorted by ``study_id``.

    Raises
    ------
    ValidationError
        A column is missing or a patient has no SABR course (no BED10).
    """
    _require(patients, "patients", _PATIENT_COLUMNS)
    _require(lesions, "lesions", ("study_id", "lesion_id"))
    _require(sabr_courses, "sabr_courses", ("study_id", "total_dose_gy", "fractions"))
    covariates = patients.loc[:, list(_PATIENT_COLUMNS)].copy()
    n_lesions = lesions.groupby("study_id")["lesion_id"].nunique()
    covariates["n_lesions"] = covariates["study_id"].map(n_lesions).fillna(0).astype(int)
    course_bed10 = pd.Series(
        [
            bed10(float(dose), int(n))
            for dose, n in zip(sabr_courses["total_dose_gy"], sabr_courses["fractions"])
        ],
        index=sabr_courses.index,
        dtype=float,
    )
    max_bed10 = course_bed10.groupby(sabr_courses["study_id"]).max()
    covariates["max_bed10_gy"] = covariates["study_id"].map(max_bed10)
    untreated = covariates.loc[covariates["max_bed10_gy"].isna(), "study_id"].tolist()
    if untreated:
        raise ValidationError(
            format_problem(
                f"patient(s) {', '.join(map(str, untreated))} have no SABR course",
                "max_bed10_gy needs at least one SABR course per patient",
                "enter the patient's SABR course(s), or leave the patient out of the analysis",
            )
        )
    covariates["prior_nephrectomy"] = _as_bool(covariates["prior_nephrectomy"])
    return covariates.sort_values("study_id", ignore_index=True)


def clinical_covariates_from_db(db: Database) -> pd.DataFrame:
    """:func:`compute_clinical_covariates` over every patient of the registry database.

    Reads only the ``patients``, ``lesions`` and ``sabr_courses`` tables, never the key table.
    """
    patient_columns = [getattr(m.Patient, column) for column in _PATIENT_COLUMNS]
    with db.session() as session:
        patients = pd.DataFrame(
            session.execute(select(*patient_columns)).all(), columns=list(_PATIENT_COLUMNS)
        )
        lesions = pd.DataFrame(
            session.execute(select(m.Lesion.study_id, m.Lesion.lesion_id)).all(),
            columns=["study_id", "lesion_id"],
        )
        courses = pd.DataFrame(
            session.execute(
                select(m.Lesion.study_id, m.SabrCourse.total_dose_gy, m.SabrCourse.fractions).join(
                    m.SabrCourse.lesion
                )
            ).all(),
            columns=["study_id", "total_dose_gy", "fractions"],
        )
    covariates = compute_clinical_covariates(patients, lesions, courses)
    logger.info("clinical covariates for %d patient(s)", len(covariates))
    return covariates
