"""compute_clinical_covariates: the clinical covariate table, one row per patient, no identifiers."""

from __future__ import annotations

import pandas as pd
import pytest

from sabrkit.errors import ValidationError
from sabrkit.registry import compute_clinical_covariates


def test_covariates_read_text_booleans_correctly_and_name_untreated_patients():
    patients = pd.DataFrame(
        {
            "study_id": ["SABR-RCC-001", "SABR-RCC-002"],
            "age_years": [64, 71],
            "sex": ["M", "F"],
            "ecog": [0, 1],
            "histology": ["clear_cell"] * 2,
            "imdc_risk": ["poor", "favourable"],
            "prior_nephrectomy": ["false", "true"],
            "disease_state": ["oligometastatic"] * 2,
            "systemic_therapy": ["tki", "none"],
            "family_name": ["Never", "Exported"],
        }
    )
    lesions = pd.DataFrame(
        {
            "study_id": ["SABR-RCC-001", "SABR-RCC-001", "SABR-RCC-002"],
            "lesion_id": ["SABR-RCC-001-L1", "SABR-RCC-001-L2", "SABR-RCC-002-L1"],
        }
    )
    courses = pd.DataFrame(
        {
            "study_id": ["SABR-RCC-001", "SABR-RCC-001", "SABR-RCC-002"],
            "total_dose_gy": [35.0, 54.0, 60.0],
            "fractions": [5, 3, 8],
        }
    )
    covariates = compute_clinical_covariates(patients, lesions, courses).set_index("study_id")
    assert "family_name" not in covariates.columns
    assert covariates["prior_nephrectomy"].tolist() == [False, True]
    assert covariates["n_lesions"].tolist() == [2, 1]
    assert covariates["max_bed10_gy"].tolist() == pytest.approx([151.2, 105.0])
    with pytest.raises(ValidationError, match=r"SABR-RCC-002.*no SABR course"):
        compute_clinical_covariates(patients, lesions, courses.iloc[:2])
