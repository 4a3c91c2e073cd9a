"""DVC stage `followup`: follow-up CT registration, delta-radiomics and size-based lesion response.

For every planning lesion of ``data/imaging/images.csv`` the follow-up CT series of the same patient
(``series.csv``, uncontoured, at least ``followup.min_interval_days`` after the planning CT) are paired
by the rule of :mod:`sabrkit.imaging.followup_run`, registered rigidly to the planning CT (SimpleITK),
and the follow-up lesion mask of the `segment` stage (U-Net; or a semi-automatic mask put in its
place) is brought onto the planning grid. Writes ``data/followup/``:

* ``lesion_response.parquet``: one row per (lesion, follow-up): RECIST 1.1 longest axial diameter at
  both timepoints (and the 3-D one), percent change, single-lesion category (CR/PR/SD/PD, PD from the
  nadir), volumes, interval, registration checks; keyed by ``lesion_id, study_id``;
* ``delta_features.parquet``: one row per lesion for the **first** follow-up (``follow_up_index`` 1,
  fixed by rule): pyradiomics features of both timepoints through the main pipeline's own code
  (``preprocess`` section, then ``features.radiomics_params``, ct_v2), as ``delta_abs_<feature>``
  (change per month) and ``delta_rel_<feature>`` (relative change per month);
* ``failures.csv`` (``case_id, stage, reason``) naming every lesion or pair that failed, the rest
  completing; ``registered/`` (follow-up CT and mask on the planning grid) and ``preprocessed/``;
* ``metrics/followup.json``: counts, categories, interval and (synthetic data) the registration error
  against the planted set-up motion.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import numpy as np
import pandas as pd
from stage_params import ROOT, load_all

IMAGING = ROOT / "data" / "imaging"
SEGMENTATION = ROOT / "data" / "segmentation"
TRUTH = ROOT / "data" / "dicom" / "follow_up_truth" / "follow_up_truth.csv"
OUT = ROOT / "data" / "followup"
METRICS = ROOT / "metrics" / "followup.json"
DAYS_PER_MONTH = 365.25 / 12


def _truth_motion() -> dict[str, Any]:
    """De-identified follow-up series UID -> planted set-up motion K (synthetic data only)."""
    import SimpleITK as sitk
    from deidentify import DEMO_SECRET

    from sabrkit.imaging import DeidConfig, Deidentifier

    if not TRUTH.is_file():
        return {}
    truth = pd.read_csv(TRUTH, dtype={"series_uid": str})
    if "setup_shift_x_mm" not in truth.columns:
        return {}
    mapper = Deidentifier(
        DeidConfig(secret=os.environ.get("SABRKIT_DEID_SECRET") or DEMO_SECRET, pseudonym_of={})
    )
    motion = {}
    for row in truth.itertuples(index=False):
        k = sitk.Euler3DTransform()
        k.SetRotation(row.setup_angle_x_rad, row.setup_angle_y_rad, row.setup_angle_z_rad)
        k.SetTranslation((row.setup_shift_x_mm, row.setup_shift_y_mm, row.setup_shift_z_mm))
        motion[mapper.new_uid(row.series_uid)] = k
    return motion


def _registration_check(motion: dict[str, Any]) -> Any:
    """``on_pair`` hook: distance (mm) at the planning lesion centroid between the found and the true transform."""
    import SimpleITK as sitk

    def check(pair: dict[str, Any], registered: Any) -> dict[str, Any]:
        truth = motion.get(str(pair["follow_up_series_uid"]))
        if truth is None:
            return {"registration_error_mm": np.nan, "follow_up_dice_vs_truth": np.nan}
        dice = np.nan
        truth_mask = TRUTH.parent / f"{pair['lesion_id']}_followup_mask.nii.gz"
        if registered.follow_up_native_mask is not None and truth_mask.is_file():
            found = sitk.GetArrayFromImage(registered.follow_up_native_mask) > 0
            true = sitk.GetArrayFromImage(sitk.ReadImage(str(truth_mask))) > 0
            dice = float(2 * (found & true).sum() / max(found.sum() + true.sum(), 1))
        planning = sitk.ReadImage(str(IMAGING / pair["planning_mask_path"]))
        size = np.asarray(planning.GetSize(), dtype=float)
        k = sitk.Euler3DTransform(truth)
        k.SetCenter(planning.TransformContinuousIndexToPhysicalPoint(tuple((size - 1) / 2)))
        stats = sitk.LabelShapeStatisticsImageFilter()
        stats.Execute(sitk.Cast(sitk.NotEqual(planning, 0), sitk.sitkUInt8))
        centroid = stats.GetCentroid(1)
        expected = k.GetInverse().TransformPoint(
            centroid
        )  # the follow-up shows unmoved(K p): planning y at K^-1(y)
        return {
            "registration_error_mm": float(
                np.linalg.norm(np.subtract(registered.transform.TransformPoint(centroid), expected))
            ),
            "follow_up_dice_vs_truth": dice,
        }

    return check


def _responses(registered: pd.DataFrame) -> pd.DataFrame:
    """Percent change and RECIST-like category per (lesion, follow-up), PD measured from the nadir."""
    from sabrkit.imaging.followup import size_response

    rows = []
    for _, mine in registered.sort_values(["lesion_id", "follow_up_index"]).groupby("lesion_id", sort=True):
        nadir = float(mine["baseline_axial_diameter_mm"].iloc[0])
        for row in mine.to_dict("records"):
            change, category = size_response(
                row["baseline_axial_diameter_mm"], row["follow_up_axial_diameter_mm"], nadir_mm=nadir
            )
            nadir = min(nadir, row["follow_up_axial_diameter_mm"])
            rows.append({**row, "percent_change": 100.0 * change, "response": category})
    return pd.DataFrame(rows)


RESPONSE_COLUMNS = (
    "lesion_id", "study_id", "follow_up_index", "used_for_delta", "planning_series_uid", "follow_up_series_uid",
    "interval_days", "interval_months", "baseline_axial_diameter_mm", "follow_up_axial_diameter_mm",
    "change_mm", "percent_change", "response", "baseline_3d_diameter_mm", "follow_up_3d_diameter_mm",
    "baseline_volume_ml", "follow_up_volume_ml", "registration_rotation_deg", "registration_lesion_shift_mm",
    "registration_correlation", "registration_error_mm", "follow_up_dice_vs_truth",
)  # fmt: skip


def main() -> None:
    from sabrkit.errors import CaseFailure, ExtractionError
    from sabrkit.features import extract_lesion_features, feature_columns, load_params
    from sabrkit.imaging import PreprocessConfig, preprocess_manifest
    from sabrkit.imaging.followup import delta_features
    from sabrkit.imaging.followup_run import FollowUpConfig, pair_follow_ups, register_follow_ups
    from sabrkit.io import atomic_write, atomic_write_text

    params = load_all()
    p, execution = params["followup"], params["execution"]
    config = FollowUpConfig(
        min_interval_days=p.min_interval_days,
        search_margin_mm=p.search_margin_mm,
        max_rotation_deg=p.max_rotation_deg,
        max_translation_mm=p.max_translation_mm,
        min_correlation=p.min_correlation,
        empty_mask_is_complete_response=p.empty_mask_is_complete_response,
        mask_source=p.mask_source,
        seed=p.seed,
    )
    lesions = pd.read_csv(IMAGING / "images.csv", dtype=str)
    series = pd.read_csv(IMAGING / "series.csv", dtype={"series_uid": str, "study_id": str})
    segments = SEGMENTATION / "segments.csv"
    masks = (
        pd.read_csv(segments, dtype=str)
        if segments.is_file()
        else pd.DataFrame(columns=["series_uid", "mask_path"])
    )
    links = pd.read_csv(ROOT / p.links, dtype=str) if p.links else None
    pairs, failures = pair_follow_ups(lesions, series, masks, config, links)
    if OUT.exists():
        shutil.rmtree(OUT)
    registered, failed = register_follow_ups(
        pairs,
        config,
        image_root=IMAGING,
        mask_root=SEGMENTATION,
        out_dir=OUT / "registered",
        on_pair=_registration_check(_truth_motion()),
    )
    failures += failed
    response = pd.DataFrame(columns=list(RESPONSE_COLUMNS))
    delta = pd.DataFrame(columns=["lesion_id", "study_id"])
    if len(registered):
        registered["interval_months"] = registered["interval_days"] / DAYS_PER_MONTH
        registered["change_mm"] = (
            registered["follow_up_axial_diameter_mm"] - registered["baseline_axial_diameter_mm"]
        )
        for column in ("registration_error_mm", "follow_up_dice_vs_truth"):
            if column not in registered.columns:
                registered[column] = np.nan
        response = _responses(registered)
        # the delta table uses the first follow-up (rule fixed in advance); a CR has no follow-up features
        first = response[(response["follow_up_index"] == 1) & (response["follow_up_lesion_mask_path"] != "")]
        response["used_for_delta"] = False
        if len(first):
            preprocess, features = params["preprocess"], params["features"]
            prep = PreprocessConfig(
                spacing_mm=preprocess.spacing_mm,
                interpolator=preprocess.interpolator,
                hu_window=preprocess.hu_window,
                crop_margin_mm=preprocess.crop_margin_mm,
            )
            radiomics = load_params(features.radiomics_params)
            tables = {}
            for name, manifest, base in (
                (
                    "planning",
                    first[["lesion_id", "study_id", "planning_image_path", "planning_mask_path"]],
                    IMAGING,
                ),
                (
                    "follow_up",
                    first[["lesion_id", "study_id", "follow_up_ct_path", "follow_up_lesion_mask_path"]],
                    OUT / "registered",
                ),
            ):
                manifest = manifest.set_axis(["lesion_id", "study_id", "image_path", "mask_path"], axis=1)
                done = preprocess_manifest(
                    manifest,
                    OUT / "preprocessed" / name,
                    prep,
                    n_jobs=execution.n_jobs,
                    max_failure_fraction=1.0,
                    base_dir=base,
                )
                failures += [
                    CaseFailure(f.case_id, f"{name} preprocess", f.reason)
                    for f in done.attrs.get("failures", [])
                ]
                result = extract_lesion_features(
                    done,
                    radiomics,
                    n_jobs=execution.n_jobs,
                    max_failure_fraction=1.0,
                    cache_dir=ROOT / execution.cache_dir if execution.cache_dir else None,
                    scheduler=execution.scheduler,
                )
                failures += [CaseFailure(f.case_id, f"{name} features", f.reason) for f in result.failures]
                tables[name] = result.features.set_index("lesion_id")
            columns = [
                c
                for c in feature_columns(tables["planning"].reset_index())
                if c in tables["follow_up"].columns
            ]
            both = tables["planning"].index.intersection(tables["follow_up"].index)
            if len(both):
                months = first.set_index("lesion_id")["interval_months"]
                delta = delta_features(
                    tables["planning"].loc[both, columns], tables["follow_up"].loc[both, columns], months
                )
                delta.insert(0, "study_id", tables["planning"].loc[both, "study_id"])
                delta = delta.rename_axis("lesion_id").reset_index()
                delta["prov_params_version"] = radiomics.version
                delta["prov_params_hash"] = radiomics.params_hash
                delta["prov_follow_up_series_uid"] = (
                    first.set_index("lesion_id").loc[both, "follow_up_series_uid"].values
                )
                response.loc[
                    (response["follow_up_index"] == 1) & response["lesion_id"].isin(both), "used_for_delta"
                ] = True
        response = response[list(RESPONSE_COLUMNS)]
    OUT.mkdir(parents=True, exist_ok=True)
    for table, name in ((delta, "delta_features.parquet"), (response, "lesion_response.parquet")):
        with atomic_write(OUT / name, suffix=".parquet") as tmp:
            table.to_parquet(tmp, index=False)
    failure_table = pd.DataFrame(
        [{"case_id": f.case_id, "stage": f.stage, "reason": f.reason} for f in failures],
        columns=["case_id", "stage", "reason"],
    )
    atomic_write_text(OUT / "failures.csv", failure_table.to_csv(index=False, lineterminator="\n"))
    errors, dice = (
        response[column].dropna().astype(float) if len(response) else pd.Series(dtype=float)
        for column in ("registration_error_mm", "follow_up_dice_vs_truth")
    )
    summary = {
        "n_lesions": int(lesions["lesion_id"].nunique()),
        "n_pairs": len(pairs),
        "n_registered": len(response),
        "n_failures": len(failures),
        "n_delta_lesions": len(delta),
        "n_delta_features": int(sum(c.startswith("delta_") for c in delta.columns)),
        "follow_up_used_for_delta": "first follow-up at least min_interval_days after the planning CT",
        "median_interval_months": float(response["interval_months"].median()) if len(response) else None,
        "responses": {k: int(v) for k, v in response["response"].value_counts().sort_index().items()},
        "median_percent_change": float(response["percent_change"].median()) if len(response) else None,
        "registration_error_mm_median": float(errors.median()) if len(errors) else None,
        "registration_error_mm_max": float(errors.max()) if len(errors) else None,
        "follow_up_mask_source": p.mask_source,
        "follow_up_dice_vs_truth_median": float(dice.median()) if len(dice) else None,
        "radiomics_params": params["features"].radiomics_params,
    }
    METRICS.parent.mkdir(exist_ok=True)
    atomic_write_text(METRICS, json.dumps(summary, indent=2, allow_nan=False) + "\n")
    print(
        f"followup: {len(pairs)} lesion/follow-up pair(s), {len(response)} registered, {len(delta)} with delta "
        f"features, {len(failures)} failure(s) (data/followup/failures.csv)"
    )
    n_units = max(len(pairs) + sum(f.stage == "pairing" for f in failures), 1)
    if failures and len(failures) / n_units > p.max_failure_fraction:
        raise ExtractionError(failures, n_units, p.max_failure_fraction)


if __name__ == "__main__":
    from stage_runner import run_stage

    run_stage(main)
