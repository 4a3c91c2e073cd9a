"""One-hot encoding of the registry's clinical covariate table against fixed reference levels.

Clinical covariates are encoded against fixed reference levels (the first level of each list in
:data:`CLINICAL_CATEGORIES`), with column names in scikit-survival's ``OneHotEncoder`` style
(``imdc_risk=poor``):

============================  ==================  ==========================================
covariate                     reference level     indicator columns
============================  ==================  ==========================================
sex                           F                   ``sex=M``
histology                     clear_cell          ``histology=non_clear_cell``
imdc_risk                     favourable          ``imdc_risk=intermediate``, ``imdc_risk=poor``
prior_nephrectomy             false               ``prior_nephrectomy=true``
disease_state                 oligometastatic     ``disease_state=oligoprogressive``
systemic_therapy              none                ``systemic_therapy=tki``, ``=ici``, ``=tki_ici``
============================  ==================  ==========================================

``age_years``, ``ecog`` (ordinal 0-2, kept numeric to spend one parameter, not two),
``n_lesions`` and ``max_bed10_gy`` stay numeric. Levels absent from a cohort give all-zero
columns, which the pipelines' variance filter removes inside each fold. The encoding uses fixed
levels, not the data, so doing it before cross-validation leaks nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sabrkit.errors import ModelInputError, format_problem

__all__ = [
    "CLINICAL_CATEGORIES",
    "CLINICAL_NUMERIC",
    "THERAPY_LABELS",
    "encode_clinical",
    "clinical_characteristics",
    "CLINICAL_COLUMN_PATTERN",
    "ESTABLISHED_CLINICAL",
    "ESTABLISHED_COLUMN_PATTERN",
    "covariate_columns",
]

CLINICAL_CATEGORIES: dict[str, tuple[str, ...]] = {
    "sex": ("F", "M"),
    "histology": ("clear_cell", "non_clear_cell"),
    "imdc_risk": ("favourable", "intermediate", "poor"),
    "prior_nephrectomy": ("false", "true"),
    "disease_state": ("oligometastatic", "oligoprogressive"),
    "systemic_therapy": ("none", "tki", "ici", "tki_ici"),
}
CLINICAL_NUMERIC: tuple[str, ...] = ("age_years", "ecog", "n_lesions", "max_bed10_gy")
#: regular expression matching exactly the columns :func:`encode_clinical` makes (the clinical
#: block); ``build_coxnet(unpenalized="clinical")`` leaves these columns unpenalised.
CLINICAL_COLUMN_PATTERN: str = (
    "^(?:(?:" + "|".join(CLINICAL_CATEGORIES) + ")=.+|" + "|".join(CLINICAL_NUMERIC) + ")$"
)
#: the established prognostic factors of metastatic RCC that the default clinical comparator uses
#: (``clinical_reference.covariates``): IMDC risk group (Heng et al., J Clin Oncol 2009;27:5794),
#: performance status (ECOG; Karnofsky < 80 % is an IMDC factor) and disease state before SABR
#: (oligoprogressive vs oligometastatic; Cheung et al., Eur Urol 2021;80:693). Four columns for a
#: cohort of about 30 events keeps the comparator near the 10 events per variable rule
#: (Peduzzi et al., J Clin Epidemiol 1996;49:1373); every registry covariate (13-14 columns) would
#: be about 2 events per variable. Chosen by that rule and the literature; benchmarks/comparator.py
#: measures both comparators on 100 generator seeds that are not the demo's.
ESTABLISHED_CLINICAL: tuple[str, ...] = ("imdc_risk", "ecog", "disease_state")
#: the encoded columns of :data:`ESTABLISHED_CLINICAL`; ``build_coxnet(unpenalized="established")``
#: leaves these unpenalised (the established model plus screened, penalised additions).
ESTABLISHED_COLUMN_PATTERN: str = "^(?:" + "|".join(f"{c}(?:=.+)?" for c in ESTABLISHED_CLINICAL) + ")$"
#: display labels of the therapy classes (SABR is given to every patient).
THERAPY_LABELS: dict[str, str] = {
    "none": "SABR alone",
    "tki": "SABR + TKI",
    "ici": "SABR + ICI",
    "tki_ici": "SABR + TKI + ICI",
}


def encode_clinical(clinical: pd.DataFrame) -> pd.DataFrame:
    """One-hot encode the clinical covariate table against the documented reference levels.

    Parameters
    ----------
    clinical : pandas.DataFrame
        Columns ``study_id`` and any of :data:`CLINICAL_NUMERIC` and :data:`CLINICAL_CATEGORIES`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``study_id``; numeric columns as float, one ``<covariate>=<level>`` indicator
        per non-reference level (NaN where the covariate is missing, for in-fold imputation).

    Raises
    ------
    ModelInputError
        An unknown level, a non-numeric value in a numeric column or an unknown column.
    """
    table = clinical.set_index("study_id")
    unknown = [c for c in table.columns if c not in CLINICAL_CATEGORIES and c not in CLINICAL_NUMERIC]
    if unknown:
        raise ModelInputError(
            format_problem(
                f"clinical column(s) {unknown}",
                f"clinical covariates are {list(CLINICAL_NUMERIC) + list(CLINICAL_CATEGORIES)}",
                "drop the column from the clinical table, or give the data as one table (an experiment's "
                "table: section, docs/models.md 'Your own data'), where any column can be a covariate",
            )
        )
    encoded: dict[str, pd.Series] = {}
    for column in table.columns:
        values = table[column]
        if column in CLINICAL_NUMERIC:
            numeric = pd.to_numeric(values, errors="coerce")
            bad = numeric.isna() & values.notna()
            if bad.any():
                raise ModelInputError(
                    format_problem(
                        f"clinical {column} = {values[bad].tolist()[:5]} for {bad[bad].index.tolist()[:5]}",
                        f"{column} must be numeric",
                        "correct the registry values",
                    )
                )
            encoded[column] = numeric.astype(float)
            continue
        levels = CLINICAL_CATEGORIES[column]
        as_text = values.map(_level_text)
        bad = as_text.notna() & ~as_text.isin(levels)
        if bad.any():
            raise ModelInputError(
                format_problem(
                    f"clinical {column} = {sorted(set(as_text[bad]))} for {bad[bad].index.tolist()[:5]}",
                    f"{column} must be one of {list(levels)}",
                    "correct the registry values",
                )
            )
        missing = as_text.isna()
        for level in levels[1:]:
            indicator = (as_text == level).astype(float)
            indicator[missing] = np.nan
            encoded[f"{column}={level}"] = indicator
    return pd.DataFrame(encoded, index=table.index)


def covariate_columns(covariates: Sequence[str], columns: Sequence[str]) -> list[str]:
    """The encoded columns (in ``columns`` order) of the named covariates.

    A covariate name matches its own column (``ecog``) or its indicator columns
    (``imdc_risk`` -> ``imdc_risk=intermediate``, ``imdc_risk=poor``); any other column of
    ``columns`` may be named exactly.

    Raises
    ------
    ModelInputError
        A name that matches no column.
    """
    matched: set[str] = set()
    unmatched = []
    for name in covariates:
        hits = {c for c in columns if c == name or c.startswith(f"{name}=")}
        if not hits:
            unmatched.append(name)
        matched |= hits
    if unmatched:
        raise ModelInputError(
            format_problem(
                f"covariate(s) {unmatched} of the comparator",
                f"a comparator covariate names a column of its data set ({list(columns)[:20]})",
                "correct clinical_reference.covariates, add the covariate to the clinical table, or set "
                "clinical_reference.covariates: all",
            )
        )
    return [c for c in columns if c in matched]


def _level_text(value: object) -> object:
    """A category value as its level text; booleans become ``"true"``/``"false"``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    text = str(value).strip()
    return text.lower() if text.lower() in ("true", "false") else text


def clinical_characteristics(clinical: pd.DataFrame) -> pd.DataFrame:
    """The clinical table as descriptive characteristics: raw levels as text, numbers as float.

    Used for strata, subgroup profiles and forest plots (never as model features). Indexed by
    ``study_id``; only the known clinical columns are kept.
    """
    table = clinical.set_index("study_id")
    out: dict[str, pd.Series] = {}
    for column in table.columns:
        if column in CLINICAL_NUMERIC:
            out[column] = pd.to_numeric(table[column], errors="coerce").astype(float)
        elif column in CLINICAL_CATEGORIES:
            out[column] = table[column].map(_level_text).astype(object)
    return pd.DataFrame(out, index=table.index)
