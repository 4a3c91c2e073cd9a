"""The SABR registry as one producer of the one-table experiment input.

A ``data:`` experiment reads the registry's tables (endpoints, clinical covariates, radiomic,
deep and biomarker features) and joins them on ``study_id``
(:func:`sabrkit.models.experiment.assemble_experiment_data`). :func:`registry_table` writes that
join as the single table a ``table:`` experiment reads, with the ``table:`` section that
describes it, so the registry path and a researcher's own table meet in the same runner: the
same pipeline on the same folds gives the same numbers (``tests/models/test_models_own_table.py``).

The clinical covariates are written already encoded against the registry's fixed reference
levels (:mod:`sabrkit.models.clinical_encoding`), so they are numeric covariates of the table;
times are months.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from sabrkit.errors import ConfigError, format_problem
from sabrkit.models.experiment_io import ExperimentInputs
from sabrkit.models.spec import ExperimentSpec

__all__ = ["registry_table"]

logger = logging.getLogger(__name__)


def registry_table(
    spec: ExperimentSpec, inputs: ExperimentInputs, path: str = "data/registry_table.parquet"
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The registry inputs of a patient-level ``data:`` experiment as one table and its ``table:`` section.

    Parameters
    ----------
    spec : ExperimentSpec
        A ``data:`` experiment (``unit: patient``).
    inputs : ExperimentInputs
        Its registry tables (:func:`~sabrkit.models.experiment_io.read_experiment_inputs`).
    path : str
        The path the table will be written to (relative to the project), for the section.

    Returns
    -------
    table : pandas.DataFrame
        ``study_id``, ``<endpoint>_months``, ``<endpoint>_event``, the encoded clinical
        covariates, then the columns of the other blocks; rows sorted by ``study_id``.
    section : dict
        The ``table:`` section reading it (covariates = the clinical block, other blocks by
        column list, comparator = the clinical reference model's columns - by default the
        established factors - when the experiment has one).
    """
    from sabrkit.models.experiment import assemble_experiment_data

    if spec.data is None or spec.data.unit != "patient":
        raise ConfigError(
            format_problem(
                f"experiment {spec.name!r}",
                "registry_table writes patient-level data: experiments",
                "use an experiment with data: {unit: patient}",
            )
        )
    model, reference, _ = assemble_experiment_data(spec, inputs)
    blocks = dict(model.blocks)
    if reference is not None:
        blocks.setdefault("clinical", tuple(reference.feature_names))
    columns = [c for b in blocks.values() for c in b]
    features = pd.concat([model.X, reference.X] if reference is not None else [model.X], axis=1)
    features = features.loc[:, ~features.columns.duplicated()][columns]
    endpoint = model.endpoint
    table = (
        pd.DataFrame(
            {f"{endpoint}_months": model.y["time"], f"{endpoint}_event": model.y["event"].astype(int)},
            index=model.X.index,
        )
        .join(features)
        .reset_index()
    )
    covariates = list(blocks.get("clinical", ()))
    section: dict[str, Any] = {
        "path": path,
        "id": "study_id",
        "time": f"{endpoint}_months",
        "event": f"{endpoint}_event",
        "time_unit": "months",
        "endpoint": endpoint,
        "covariates": covariates,
        "blocks": {b: {"columns": list(c)} for b, c in blocks.items() if b != "clinical"},
        "comparator": _comparator(reference, covariates),
        "model_blocks": ["covariates" if b == "clinical" else b for b in model.blocks],
    }
    logger.info("registry table: %d rows, %d columns, blocks %s", len(table), table.shape[1], list(blocks))
    return table, section


def _comparator(reference: Any, covariates: list[str]) -> str | list[str] | None:
    """The ``table.comparator`` of the reference model's columns (``"covariates"`` when they are all)."""
    if reference is None or not covariates:
        return None
    columns = list(reference.feature_names)
    return "covariates" if columns == covariates else columns
