"""Read an experiment's input tables and write its outputs (the file side of the experiment runner).

Paths in an experiment's ``inputs`` section are relative to the project root that the caller
(CLI or DVC entry point) hands in; nothing here reads a path it was not given. Tables are read
by suffix (``.parquet`` or ``.csv``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sabrkit.errors import ConfigError, format_problem
from sabrkit.io import atomic_write_text
from sabrkit.models.dataset import SurvivalDataset
from sabrkit.models.spec import ExperimentSpec

__all__ = ["ExperimentInputs", "read_table", "read_experiment_inputs", "write_json"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExperimentInputs:
    """The tables an experiment runs on (already read; see :func:`read_experiment_inputs`).

    Attributes
    ----------
    endpoints : DataFrame
        Registry endpoints (``study_id, pfs_months, pfs_event, os_months, os_event``).
    clinical : DataFrame or None
        Clinical covariate table.
    patient_features : DataFrame or None
        Radiomic features aggregated per patient.
    lesion_features : DataFrame or None
        Radiomic features per lesion (lesion-level experiments).
    deep_features, biomarkers : DataFrame or None
        ``study_id`` plus numeric columns.
    lesion_outcomes : DataFrame or None
        ``lesion_id, study_id, local_control_months, local_failure`` (optionally ``competing_death``).
    lesion_blocks : dict block -> DataFrame
        The lesion-level blocks the experiment uses (``dose``, ``dvh``, ``dosiomic``, ``delta``;
        :func:`sabrkit.models.lesion_blocks.lesion_block`), indexed by ``lesion_id``.
    patient_blocks : dict block -> DataFrame
        The same blocks aggregated per patient (patient-level experiments), ``study_id`` column.
    consented : iterable of str, DataFrame or None
        Consented study IDs (None: consent not checked; recorded on the run).
    feature_table_path : Path or None
        The radiomic feature table file, for the DVC lineage tag.
    table : DataFrame or None
        The one table of a ``table:`` experiment (:mod:`sabrkit.models.one_table`).
    input_paths : dict name -> Path
        Every file read, for the content hashes recorded with the run.
    dataset : SurvivalDataset or None
        An already assembled data set (``sabrkit models validate``, written by the ``assemble``
        stage): the experiment runs on it as it is - its rows, blocks and recorded consent - and
        the registry tables above are not read.
    """

    endpoints: pd.DataFrame | None = None
    clinical: pd.DataFrame | None = None
    patient_features: pd.DataFrame | None = None
    lesion_features: pd.DataFrame | None = None
    deep_features: pd.DataFrame | None = None
    biomarkers: pd.DataFrame | None = None
    lesion_outcomes: pd.DataFrame | None = None
    lesion_blocks: dict[str, pd.DataFrame] = field(default_factory=dict)
    patient_blocks: dict[str, pd.DataFrame] = field(default_factory=dict)
    consented: Any = None
    feature_table_path: Path | None = None
    batches: pd.Series | None = None
    perturbed_features: pd.DataFrame | None = None
    table: pd.DataFrame | None = None
    input_paths: dict[str, Path] = field(default_factory=dict)
    dataset: SurvivalDataset | None = None

    @property
    def side_data(self) -> dict[str, Any]:
        """Tables that pipeline steps look rows up in (ComBat batches, ICC perturbations)."""
        return {"batches": self.batches, "perturbed_features": self.perturbed_features}


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A Parquet or CSV table; a missing file raises :class:`ConfigError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            format_problem(
                f"input table {path} does not exist",
                "experiment inputs must exist before the experiment runs",
                "run `dvc repro` for the stage that writes it, or correct inputs: in the experiment file",
            )
        )
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise ConfigError(
        format_problem(f"input table {path}", "tables are .parquet or .csv", "convert the file")
    )


def read_experiment_inputs(spec: ExperimentSpec, root: str | os.PathLike[str]) -> ExperimentInputs:
    """Read the tables ``spec`` needs, with ``spec.inputs`` paths resolved against ``root``.

    The radiomic lesion table is aggregated per patient with the spec's ``aggregation``
    (:func:`sabrkit.features.aggregate_lesions`) for patient-level experiments. Optional tables
    are read only when the feature set needs them, or (deep, biomarker) when given, for the
    low-risk profile and the screening.
    """
    root = Path(root)
    if spec.table is not None:
        table_path = root / spec.table.path
        return ExperimentInputs(table=read_table(table_path), input_paths={"table": table_path})
    assert spec.data is not None
    inputs = spec.inputs
    blocks = set(spec.data.feature_set.split("+"))

    def resolve(relative: str | None) -> Path | None:
        return None if relative is None else (root / relative)

    lesion_path = resolve(inputs.lesion_features)
    lesion_features = patient_features = None
    if lesion_path is not None and (lesion_path.is_file() or "radiomic" in blocks):
        from sabrkit.features import aggregate_lesions, read_feature_table

        lesion_features = (
            read_feature_table(lesion_path) if lesion_path.suffix == ".parquet" else read_table(lesion_path)
        )
        if spec.data.unit == "patient":
            patient_features = aggregate_lesions(lesion_features, inputs.aggregation)
    optional: dict[str, pd.DataFrame | None] = {}
    for name, block in (("deep_features", "deep"), ("biomarkers", "biomarker")):
        path = resolve(getattr(inputs, name))
        if path is None and block in blocks:
            raise ConfigError(
                format_problem(
                    f"feature set {spec.data.feature_set!r} without inputs.{name}",
                    f"the {block} block needs a table",
                    f"set inputs.{name} in experiments/{spec.name}.yaml",
                )
            )
        optional[name] = None if path is None else read_table(path)
    lesion_blocks, patient_blocks, block_paths = _lesion_blocks(spec, root, lesion_features)
    lesion_outcomes = None
    if spec.data.unit == "lesion":
        if inputs.lesion_outcomes is None:
            raise ConfigError(
                format_problem(
                    "a lesion-level experiment without inputs.lesion_outcomes",
                    "local control needs the lesion outcome table",
                    "set inputs.lesion_outcomes",
                )
            )
        lesion_outcomes = read_table(root / inputs.lesion_outcomes)
    consent_path = None if inputs.consent == "not_required" else resolve(inputs.consent)
    batches = None
    if inputs.images is not None:
        from sabrkit.features import scanner_batches

        key = "lesion_id" if spec.data.unit == "lesion" else "study_id"
        batches = scanner_batches(read_table(root / inputs.images), key=key)
    perturbed_path = resolve(inputs.perturbed_features)
    read = {
        "lesion_features": lesion_path if lesion_features is not None else None,
        "endpoints": root / inputs.endpoints,
        "clinical": resolve(inputs.clinical),
        "deep_features": resolve(inputs.deep_features),
        "biomarkers": resolve(inputs.biomarkers),
        "lesion_outcomes": resolve(inputs.lesion_outcomes) if spec.data.unit == "lesion" else None,
        "consent": consent_path,
        "images": resolve(inputs.images),
        "perturbed_features": perturbed_path,
        **block_paths,
    }
    return ExperimentInputs(
        endpoints=read_table(root / inputs.endpoints),
        clinical=None if inputs.clinical is None else read_table(root / inputs.clinical),
        patient_features=patient_features,
        lesion_features=lesion_features,
        deep_features=optional["deep_features"],
        biomarkers=optional["biomarkers"],
        lesion_outcomes=lesion_outcomes,
        lesion_blocks=lesion_blocks,
        patient_blocks=patient_blocks,
        consented=None if consent_path is None else read_table(consent_path),
        feature_table_path=lesion_path if lesion_features is not None else None,
        batches=batches,
        perturbed_features=None if perturbed_path is None else read_table(perturbed_path),
        input_paths={name: path for name, path in read.items() if path is not None},
    )


def _lesion_blocks(
    spec: ExperimentSpec, root: Path, lesion_features: pd.DataFrame | None
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], dict[str, Path]]:
    """The lesion-level blocks (dose, dvh, dosiomic, delta) the model or its comparator uses.

    Read only when named (a block of ``data.feature_set`` or ``clinical_reference.feature_set``);
    patient-level experiments also get them aggregated with ``inputs.aggregation``.
    """
    from sabrkit.models.lesion_blocks import BLOCK_INPUTS, aggregate_block, lesion_block, volume_of

    assert spec.data is not None
    named = set(spec.data.feature_set.split("+")) | set(spec.clinical_reference.feature_set.split("+"))
    lesion_blocks: dict[str, pd.DataFrame] = {}
    paths: dict[str, Path] = {}
    tables: dict[str, pd.DataFrame] = {}
    for block in [b for b in BLOCK_INPUTS if b in named]:
        field_name = BLOCK_INPUTS[block]
        relative = getattr(spec.inputs, field_name)
        if relative is None:
            raise ConfigError(
                format_problem(
                    f"feature set with the {block} block without inputs.{field_name}",
                    f"the {block} block needs a table",
                    f"set inputs.{field_name} in experiments/{spec.name}.yaml",
                )
            )
        path = root / relative
        if field_name not in tables:
            tables[field_name] = read_table(path)
        paths[field_name] = path
        lesion_blocks[block] = lesion_block(tables[field_name], block)
    patient_blocks: dict[str, pd.DataFrame] = {}
    if spec.data.unit == "patient" and lesion_blocks:
        volume = volume_of(lesion_features)
        patient_blocks = {
            b: aggregate_block(t, volume, spec.inputs.aggregation) for b, t in lesion_blocks.items()
        }
    return lesion_blocks, patient_blocks, paths


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(document: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``document`` as JSON (NaN/inf as null, so DVC and browsers can read it), atomically."""
    return atomic_write_text(
        path, json.dumps(_clean(document), indent=2, sort_keys=False, default=str) + "\n"
    )
