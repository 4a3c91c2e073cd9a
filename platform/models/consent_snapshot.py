"""Consent snapshots for model building: who may be analysed, fixed in a file with its hash.

Models use a patient's registry data *and* image-derived features, so a patient enters a model
only when the consent in force covers both ``future_research`` and ``image_linkage``
(:data:`ANALYSIS_SCOPES`) and was never withdrawn (:func:`sabrkit.biobank.consented_study_ids`
answers per scope). :func:`consent_snapshot` writes that answer as a table
(``study_id, future_research, image_linkage, consented``) that the assemble stage and every
experiment read; :func:`snapshot_sha256` is the content hash recorded in MLflow beside the number
of patients excluded, so a run names exactly which consent state it used.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

import pandas as pd

from sabrkit.errors import ConsentError, format_problem

__all__ = [
    "load_consent_table",
    "ANALYSIS_SCOPES",
    "NOT_REQUIRED",
    "consent_snapshot",
    "snapshot_sha256",
    "n_excluded",
    "require_checked",
]

logger = logging.getLogger(__name__)

ANALYSIS_SCOPES: tuple[str, ...] = ("future_research", "image_linkage")
NOT_REQUIRED = "not_required"


def consent_snapshot(
    db: Any, study_ids: Iterable[str], scopes: Iterable[str] = ANALYSIS_SCOPES
) -> pd.DataFrame:
    """Per patient of ``study_ids``: whether the consent in force covers each scope, and all of them."""
    from sabrkit.biobank.consent import consented_study_ids

    ids = sorted(set(study_ids))
    frame = pd.DataFrame({"study_id": ids})
    scopes = tuple(scopes)
    for scope in scopes:
        covered = consented_study_ids(db, scope)
        frame[scope] = frame["study_id"].isin(covered)
    frame["consented"] = frame[list(scopes)].all(axis=1)
    return frame


def snapshot_sha256(snapshot: pd.DataFrame) -> str:
    """Content hash of a snapshot (rows sorted by study ID; column order fixed)."""
    columns = sorted(snapshot.columns)
    rows = snapshot.sort_values("study_id")[columns].astype(str).to_csv(index=False)
    return hashlib.sha256(rows.encode()).hexdigest()


def n_excluded(snapshot: pd.DataFrame, study_ids: Iterable[str]) -> int:
    """How many of ``study_ids`` the snapshot does not cover (absent or ``consented`` false)."""
    allowed = set(snapshot.loc[snapshot["consented"].astype(bool), "study_id"].astype(str))
    return sum(1 for s in set(map(str, study_ids)) if s not in allowed)


def require_checked(consent: str | None, reason: str | None, where: str) -> None:
    """Refuse to build a model without a consent check unless ``not_required`` comes with a reason.

    Raises
    ------
    ConsentError
        ``consent`` is empty, or ``not_required`` without a reason.
    """
    if consent is None or consent == "":
        raise ConsentError(
            format_problem(
                f"{where}: no consent snapshot given",
                "models use only patients whose consent covers future research and image linkage",
                f"set consent: data/registry/consent.parquet (written by `ingest`), or consent: {NOT_REQUIRED} "
                "with consent_reason: <why> (e.g. a public data set with its own ethics approval)",
            )
        )
    if consent == NOT_REQUIRED and not (reason or "").strip():
        raise ConsentError(
            format_problem(
                f"{where}: consent: {NOT_REQUIRED} without a reason",
                "skipping the consent check must be justified",
                "add consent_reason: <why consent does not apply>",
            )
        )


def load_consent_table(
    db: Any,
    path: Any,
    *,
    operator: str = "pipeline",
    form: tuple[str, str, str] = ("1.0", "SABR-RCC registry and biobank consent", "2024-01-01"),
) -> dict[str, int]:
    """Record the consents of a ``consents.csv`` (``study_id, form_version, signed_on, scopes,
    withdrawn_on``; scopes ``;``-separated) and apply its withdrawals, through
    :mod:`sabrkit.biobank.consent` (audited). Every row is checked before the first is written.

    Returns
    -------
    dict
        ``{"consents": n, "withdrawn": n}``.

    Raises
    ------
    ConsentError
        A row with an unknown scope or an unreadable date (all bad rows named).
    """
    import datetime as dt

    from sabrkit.biobank.consent import add_consent_form, record_consent, withdraw_consent
    from sabrkit.biobank.vocabulary import CONSENT_SCOPES

    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    problems, rows = [], []
    for number, row in enumerate(table.to_dict("records"), start=2):
        scopes = [s for s in row.get("scopes", "").split(";") if s]
        unknown = [s for s in scopes if s not in CONSENT_SCOPES]
        try:
            signed = dt.date.fromisoformat(row["signed_on"])
            withdrawn = dt.date.fromisoformat(row["withdrawn_on"]) if row.get("withdrawn_on") else None
        except (KeyError, ValueError) as exc:
            problems.append(f"line {number}: {exc}")
            continue
        if unknown:
            problems.append(f"line {number}: unknown scope(s) {unknown}")
        rows.append((row["study_id"], row.get("form_version") or form[0], signed, scopes, withdrawn))
    if problems:
        raise ConsentError(
            format_problem(
                f"{path}: {'; '.join(problems[:20])}",
                f"consent rows need ISO dates and scopes from {list(CONSENT_SCOPES)}",
                "correct the rows named",
            )
        )
    for version in sorted({r[1] for r in rows}):
        add_consent_form(db, version, form[1], dt.date.fromisoformat(form[2]), operator=operator)
    n_withdrawn = 0
    for study_id, version, signed, scopes, _withdrawn in rows:
        record_consent(db, study_id, version, signed, scopes, operator=operator)
    for study_id, _, _, _, withdrawn in rows:
        if withdrawn is not None:
            withdraw_consent(
                db,
                study_id,
                operator=operator,
                reason="withdrawal recorded in consents.csv",
                at=dt.datetime.combine(withdrawn, dt.time(12, 0)),
            )
            n_withdrawn += 1
    return {"consents": len(rows), "withdrawn": n_withdrawn}
