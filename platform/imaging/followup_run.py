"""Batch follow-up imaging: pair each lesion with its follow-up CTs, register, transfer the masks.

:func:`pair_follow_ups` decides which follow-up series shows which planning lesion, by a rule
stated in advance (no image is looked at):

* candidates are the series of the same patient (``study_id``) and modality whose study date lies
  at least ``min_interval_days`` after the lesion's planning CT and that carry no lesion contour
  (the follow-up CTs; dates are the de-identified ones, shifted by one offset per patient, so
  intervals are exact);
* each later study date is one follow-up timepoint, numbered 1, 2, ... in date order;
* on one date, a single series is the follow-up of every lesion of the patient (a whole-body
  follow-up CT); with several series the one with the planning series' ``SeriesNumber`` is taken
  (the synthetic export writes one region per lesion with the lesion's number), and a lesion
  with none or several is a pairing failure;
* an explicit link table (``lesion_id, series_uid``) replaces the rule for the lesions it names.

:func:`register_follow_up` then works on one (lesion, follow-up) pair: rigid registration of the
follow-up CT to the planning CT (:func:`~sabrkit.imaging.followup.register_rigid`), a plausibility
check of the transform (rotation, translation, and the correlation of the aligned CTs around the
lesion), selection of the follow-up mask's connected components that lie within
``search_margin_mm`` of the planning lesion (mapped onto the follow-up grid), the RECIST 1.1
longest axial diameter measured on the follow-up's own axial slices, and the follow-up CT and
lesion mask resampled onto the planning grid (linear / nearest neighbour) for feature extraction.
Every problem raises :class:`~sabrkit.errors.ValidationError` (or an ``ImageReadError``) with the
lesion, the rule and the fix; :func:`register_follow_ups` turns them into
:class:`~sabrkit.errors.CaseFailure` rows and completes the other pairs.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sabrkit.errors import CaseFailure, ConfigError, SabrkitError, ValidationError, format_problem
from sabrkit.imaging.followup import (
    longest_3d_diameter_mm,
    longest_axial_diameter_mm,
    register_rigid,
    resample_to,
)

__all__ = [
    "FOLLOW_UP_PAIR_COLUMNS",
    "FollowUpCaseError",
    "FollowUpConfig",
    "RegisteredPair",
    "pair_follow_ups",
    "register_follow_up",
    "register_follow_ups",
]

logger = logging.getLogger(__name__)

#: Columns of the pairing table made by :func:`pair_follow_ups`.
FOLLOW_UP_PAIR_COLUMNS: tuple[str, ...] = (
    "lesion_id",
    "study_id",
    "follow_up_index",
    "planning_series_uid",
    "follow_up_series_uid",
    "planning_date",
    "follow_up_date",
    "interval_days",
    "planning_image_path",
    "planning_mask_path",
    "follow_up_image_path",
    "follow_up_mask_path",
)


class FollowUpCaseError(ValidationError):
    """One (lesion, follow-up) pair cannot be used; ``stage`` says which step refused it."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


@dataclass(frozen=True)
class FollowUpConfig:
    """Settings of the follow-up step (validated on construction).

    Parameters
    ----------
    min_interval_days : int, default 28
        A series counts as a follow-up when its study date is at least this many days after the
        planning CT (the planning CT precedes the first fraction by about a week; 28 days keeps
        re-planning scans out).
    search_margin_mm : float, default 15.0
        Follow-up mask components within this distance of the planning lesion (after
        registration) are the lesion; others (a U-Net false positive elsewhere) are dropped.
    max_rotation_deg, max_translation_mm : float, default 15.0 and 60.0
        A rigid transform beyond either is rejected as a failed registration.
    min_correlation : float, default 0.5
        Pearson correlation of the planning CT and the aligned follow-up CT (both smoothed by a
        2 mm Gaussian) in the box of the lesion plus ``3 x search_margin_mm``; below it the
        registration is rejected (unregistrable).
    empty_mask_is_complete_response : bool, default False
        An empty follow-up mask is a failure by default (a segmenter that missed the lesion looks
        the same as a lesion that disappeared); True reads it as CR (diameter 0; no features).
    mask_source : {"semiauto", "segment"}, default "semiauto"
        Where the follow-up lesion mask comes from: ``"semiauto"`` seeds
        :func:`~sabrkit.imaging.segment_from_seed` at the planning lesion's centroid carried onto
        the follow-up CT by the registration (the reader's click, made by the registration);
        ``"segment"`` uses the mask of the `segment` stage (the whole-image U-Net, or any mask put
        in its place in ``segments.csv``).
    sampling_fraction, iterations, seed :
        Passed to :func:`~sabrkit.imaging.followup.register_rigid`.
    """

    min_interval_days: int = 28
    search_margin_mm: float = 15.0
    max_rotation_deg: float = 15.0
    max_translation_mm: float = 60.0
    min_correlation: float = 0.5
    empty_mask_is_complete_response: bool = False
    mask_source: str = "semiauto"
    sampling_fraction: float = 0.2
    iterations: int = 200
    seed: int = 20240501

    def __post_init__(self) -> None:
        checks = {
            "min_interval_days": self.min_interval_days >= 0,
            "search_margin_mm": self.search_margin_mm >= 0,
            "max_rotation_deg": 0 < self.max_rotation_deg <= 180,
            "max_translation_mm": self.max_translation_mm > 0,
            "min_correlation": -1 <= self.min_correlation <= 1,
            "sampling_fraction": 0 < self.sampling_fraction <= 1,
            "iterations": self.iterations >= 1,
            "mask_source": self.mask_source in ("semiauto", "segment"),
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(
                    format_problem(
                        f"FollowUpConfig {name}={getattr(self, name)!r}",
                        "days/mm >= 0, rotation in (0, 180], translation > 0, correlation in [-1, 1], "
                        "sampling fraction in (0, 1], iterations >= 1, mask_source semiauto or segment",
                        "use the documented defaults (docs/imaging.md)",
                    )
                )


@dataclass(frozen=True)
class RegisteredPair:
    """What :func:`register_follow_up` found for one (lesion, follow-up) pair.

    ``follow_up_image`` and ``follow_up_mask`` are on the planning grid (None for a complete
    response read from an empty mask), ``follow_up_native_mask`` is the lesion on the follow-up's
    own grid; ``transform`` maps planning points into the follow-up.
    """

    lesion_id: str
    transform: Any
    follow_up_image: Any
    follow_up_mask: Any
    follow_up_native_mask: Any
    baseline_axial_diameter_mm: float
    follow_up_axial_diameter_mm: float
    baseline_3d_diameter_mm: float
    follow_up_3d_diameter_mm: float
    baseline_volume_ml: float
    follow_up_volume_ml: float
    rotation_deg: float
    translation_mm: float
    correlation: float


def _date(value: object) -> pd.Timestamp | None:
    stamp = pd.to_datetime(str(value), errors="coerce") if value is not None else pd.NaT
    return None if pd.isna(stamp) else pd.Timestamp(stamp)


def pair_follow_ups(
    lesions: pd.DataFrame,
    series: pd.DataFrame,
    masks: pd.DataFrame,
    config: FollowUpConfig,
    links: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[CaseFailure]]:
    """Pair every planning lesion with its follow-up series (rule in the module docstring).

    Parameters
    ----------
    lesions : DataFrame
        ``lesion_id, study_id, series_uid, study_date, image_path, mask_path`` (ingest's
        ``images.csv``: the contoured planning lesions).
    series : DataFrame
        ``study_id, study_date, modality, series_uid, image_path`` and optionally
        ``series_number`` (ingest's ``series.csv``).
    masks : DataFrame
        ``series_uid, mask_path``: the lesion masks of the uncontoured series (the ``segment``
        stage's ``segments.csv``); a follow-up without a row is a failure ("missing mask").
    config : FollowUpConfig
    links : DataFrame, optional
        ``lesion_id, series_uid``: explicit pairs that replace the rule for those lesions.

    Returns
    -------
    (DataFrame, list of CaseFailure)
        One row per pair (:data:`FOLLOW_UP_PAIR_COLUMNS`), sorted by lesion and timepoint, and
        the lesions or pairs that could not be paired.
    """
    for name, table, needed in (
        (
            "lesions",
            lesions,
            ("lesion_id", "study_id", "series_uid", "study_date", "image_path", "mask_path"),
        ),
        ("series", series, ("study_id", "study_date", "modality", "series_uid", "image_path")),
        ("masks", masks, ("series_uid", "mask_path")),
    ):
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise ValidationError(
                format_problem(
                    f"{name} table lacks columns {missing}",
                    f"it needs {list(needed)}",
                    "pass ingest's images.csv / series.csv and the segment stage's segments.csv",
                )
            )
    contoured = set(lesions["series_uid"].astype(str))
    by_uid = series.assign(series_uid=series["series_uid"].astype(str)).set_index("series_uid")
    mask_of = dict(zip(masks["series_uid"].astype(str), masks["mask_path"].astype(str)))
    linked: dict[str, list[str]] = {}
    if links is not None and len(links):
        for lesion_id, uid in zip(links["lesion_id"].astype(str), links["series_uid"].astype(str)):
            linked.setdefault(lesion_id, []).append(uid)
    rows: list[dict[str, Any]] = []
    failures: list[CaseFailure] = []
    for lesion in lesions.sort_values("lesion_id").itertuples(index=False):
        lesion_id, planning_uid = str(lesion.lesion_id), str(lesion.series_uid)
        planning_date = _date(lesion.study_date)
        if planning_date is None:
            failures.append(
                CaseFailure(lesion_id, "pairing", f"planning study date {lesion.study_date!r} is not a date")
            )
            continue
        planning = by_uid.loc[planning_uid] if planning_uid in by_uid.index else None
        modality = str(planning["modality"]) if planning is not None else "CT"
        number = planning.get("series_number") if planning is not None else None
        if lesion_id in linked:
            candidates = by_uid.loc[[u for u in linked[lesion_id] if u in by_uid.index]].reset_index()
            unknown = [u for u in linked[lesion_id] if u not in by_uid.index]
            for uid in unknown:
                failures.append(
                    CaseFailure(lesion_id, "pairing", f"linked series {uid} is not in series.csv")
                )
        else:
            mine = series[
                (series["study_id"].astype(str) == str(lesion.study_id))
                & (series["modality"].astype(str) == modality)
                & ~series["series_uid"].astype(str).isin(contoured)
            ].copy()
            mine["series_uid"] = mine["series_uid"].astype(str)
            candidates = mine
        dates = [_date(value) for value in candidates["study_date"]]
        later = candidates[
            [d is not None and (d - planning_date).days >= config.min_interval_days for d in dates]
        ]
        if later.empty:
            continue  # no follow-up (yet): not a failure, the lesion just has no response row
        index = 0
        for date, same_day in sorted(later.groupby("study_date"), key=lambda item: str(item[0])):
            index += 1
            if lesion_id not in linked and len(same_day) > 1:
                if "series_number" in same_day.columns and number is not None and not pd.isna(number):
                    same_day = same_day[
                        pd.to_numeric(same_day["series_number"], errors="coerce") == float(number)
                    ]
                if len(same_day) != 1:
                    failures.append(
                        CaseFailure(
                            lesion_id,
                            "pairing",
                            format_problem(
                                f"{len(same_day)} follow-up series on {date} match planning series number {number!r}",
                                "one follow-up series per lesion and date (or the only series of that date)",
                                "give the pair in followup.links (CSV lesion_id,series_uid)",
                            ),
                        )
                    )
                    continue
            for follow in same_day.itertuples(index=False):
                follow_date = _date(follow.study_date)
                assert follow_date is not None  # filtered above
                rows.append(
                    {
                        "lesion_id": lesion_id,
                        "study_id": str(lesion.study_id),
                        "follow_up_index": index,
                        "planning_series_uid": planning_uid,
                        "follow_up_series_uid": str(follow.series_uid),
                        "planning_date": planning_date.date().isoformat(),
                        "follow_up_date": follow_date.date().isoformat(),
                        "interval_days": int((follow_date - planning_date).days),
                        "planning_image_path": str(lesion.image_path),
                        "planning_mask_path": str(lesion.mask_path),
                        "follow_up_image_path": str(follow.image_path),
                        "follow_up_mask_path": mask_of.get(str(follow.series_uid), ""),
                    }
                )
    table = pd.DataFrame(rows, columns=list(FOLLOW_UP_PAIR_COLUMNS))
    return table.sort_values(["lesion_id", "follow_up_index"], ignore_index=True), failures


def _rotation_deg(transform: Any) -> float:
    matrix = np.asarray(transform.GetMatrix(), dtype=float).reshape(3, 3)
    return float(np.degrees(math.acos(float(np.clip((np.trace(matrix) - 1) / 2, -1.0, 1.0)))))


def _as_euler(transform: Any) -> Any:
    """The registration result (a composite of the initial and optimised transforms) as one Euler3D."""
    import SimpleITK as sitk

    if transform.GetName() == "Euler3DTransform":
        return sitk.Euler3DTransform(transform)
    composite = sitk.CompositeTransform(transform)
    composite.FlattenTransform()
    euler = sitk.Euler3DTransform()
    centre = (0.0, 0.0, 0.0)
    matrix = np.eye(3)
    shift = np.zeros(3)
    for k in range(composite.GetNumberOfTransforms()):
        step = sitk.Euler3DTransform(composite.GetNthTransform(k))
        # composite applies the last added transform first: T = T_0 o T_1 o ...
        m = np.asarray(step.GetMatrix()).reshape(3, 3)
        c, t = np.asarray(step.GetCenter()), np.asarray(step.GetTranslation())
        # y = m (x - c) + c + t  -> affine (m, c + t - m c); compose in application order
        matrix, shift = matrix @ m, matrix @ (c + t - m @ c) + shift
    euler.SetCenter(centre)
    euler.SetMatrix(tuple(matrix.ravel()))
    euler.SetTranslation(tuple(shift))
    return euler


def register_follow_up(
    lesion_id: str,
    planning_image: Any,
    planning_mask: Any,
    follow_up_image: Any,
    follow_up_mask: Any | None,
    config: FollowUpConfig,
) -> RegisteredPair:
    """Register one follow-up to its planning CT and bring the follow-up lesion onto the planning grid.

    Raises
    ------
    ValidationError
        Empty planning mask, a rejected registration (rotation, translation or correlation beyond
        the configured limits), an empty follow-up mask (unless read as CR) or no follow-up lesion
        near the planning lesion; the message names the lesion, the rule and the fix.
    """
    import SimpleITK as sitk

    planning_binary = sitk.Cast(sitk.NotEqual(planning_mask, 0), sitk.sitkUInt8)
    n_planning = int(sitk.GetArrayViewFromImage(planning_binary).sum())
    if n_planning == 0:
        raise FollowUpCaseError(
            "mask",
            format_problem(
                f"lesion {lesion_id}: planning mask is empty",
                "a lesion mask holds voxels",
                "check the RTSTRUCT contour",
            ),
        )
    # the lesion changes between the scans: leave it and its surroundings out of the metric
    distance = sitk.SignedMaurerDistanceMap(planning_binary, insideIsPositive=False, useImageSpacing=True)
    outside = sitk.Cast(distance > config.search_margin_mm, sitk.sitkUInt8)
    try:
        found = register_rigid(
            planning_image,
            follow_up_image,
            sampling_fraction=config.sampling_fraction,
            seed=config.seed,
            iterations=config.iterations,
            fixed_mask=outside if sitk.GetArrayViewFromImage(outside).mean() > 0.2 else None,
        )
    except RuntimeError as exc:  # ITK raises RuntimeError for e.g. too few samples in the overlap
        raise FollowUpCaseError(
            "registration",
            format_problem(
                f"lesion {lesion_id}: rigid registration failed ({exc})",
                "the follow-up CT overlaps the planning CT",
                "check that the follow-up covers the lesion's region or give the pair in followup.links",
            ),
        ) from exc
    transform = _as_euler(found)
    rotation = _rotation_deg(transform)
    # displacement of the lesion centroid: what the transform does where it matters
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(planning_binary)
    centroid = stats.GetCentroid(1)
    translation = float(np.linalg.norm(np.subtract(transform.TransformPoint(centroid), centroid)))
    aligned = resample_to(follow_up_image, planning_image, transform)
    margin = config.search_margin_mm
    correlation = _smoothed_correlation(planning_image, aligned, _lesion_box(planning_binary, 3 * margin))
    if (
        rotation > config.max_rotation_deg
        or translation > config.max_translation_mm
        or not correlation >= config.min_correlation
    ):
        raise FollowUpCaseError(
            "registration",
            format_problem(
                f"lesion {lesion_id}: registration gave a rotation of {rotation:.1f} deg, a lesion displacement of "
                f"{translation:.1f} mm and a CT correlation of {correlation:.2f} around the lesion",
                f"rotation <= {config.max_rotation_deg} deg, displacement <= {config.max_translation_mm} mm, "
                f"correlation >= {config.min_correlation}",
                "check that this follow-up shows the same region (followup.links), or relax the limits in params.yaml",
            ),
        )
    if follow_up_mask is None:  # semi-automatic: the registration carries the planning lesion's centre over
        follow_up_mask = _seeded_mask(lesion_id, follow_up_image, transform.TransformPoint(centroid))
    follow_binary = sitk.Cast(sitk.NotEqual(follow_up_mask, 0), sitk.sitkUInt8)
    volume_voxel_ml = float(np.prod(planning_mask.GetSpacing())) / 1000.0
    baseline_axial = longest_axial_diameter_mm(planning_binary)
    baseline_3d = longest_3d_diameter_mm(planning_binary)
    baseline_volume = n_planning * volume_voxel_ml
    if int(sitk.GetArrayViewFromImage(follow_binary).sum()) == 0:
        if not config.empty_mask_is_complete_response:
            raise FollowUpCaseError(
                "mask",
                format_problem(
                    f"lesion {lesion_id}: the follow-up lesion mask is empty",
                    "an empty segmentation is not read as a complete response unless "
                    "followup.empty_mask_is_complete_response is true",
                    "contour the lesion (semi-automatic: sabrkit imaging segment-seed) or confirm CR and set the option",
                ),
            )
        return RegisteredPair(
            follow_up_image=aligned,
            follow_up_mask=None,
            follow_up_native_mask=None,
            follow_up_axial_diameter_mm=0.0,
            follow_up_3d_diameter_mm=0.0,
            follow_up_volume_ml=0.0,
            correlation=correlation,
            baseline_axial_diameter_mm=baseline_axial,
            baseline_3d_diameter_mm=baseline_3d,
            baseline_volume_ml=baseline_volume,
            lesion_id=lesion_id,
            transform=transform,
            rotation_deg=rotation,
            translation_mm=translation,
        )
    # the planning lesion (dilated by the margin) on the follow-up grid picks the lesion's components
    near = sitk.Cast(distance <= margin, sitk.sitkUInt8)
    near_on_follow = resample_to(near, follow_up_mask, transform.GetInverse(), mask=True)
    components = sitk.ConnectedComponent(follow_binary)
    labels = np.unique(sitk.GetArrayViewFromImage(components)[sitk.GetArrayViewFromImage(near_on_follow) > 0])
    labels = labels[labels > 0]
    if not len(labels):
        raise FollowUpCaseError(
            "mask",
            format_problem(
                f"lesion {lesion_id}: the follow-up mask has no component within {margin} mm of the planning lesion",
                "the follow-up segmentation shows the same lesion",
                "check the follow-up segmentation (QC PNG of the segment stage) or contour it semi-automatically",
            ),
        )
    keep = np.isin(sitk.GetArrayViewFromImage(components), labels).astype(np.uint8)
    follow_lesion = sitk.GetImageFromArray(keep)
    follow_lesion.CopyInformation(follow_up_mask)
    on_planning = resample_to(follow_lesion, planning_mask, transform, mask=True)
    if int(sitk.GetArrayViewFromImage(on_planning).sum()) == 0:
        raise FollowUpCaseError(
            "registration",
            format_problem(
                f"lesion {lesion_id}: the follow-up lesion falls outside the planning CT after registration",
                "the follow-up lesion lies inside the planning field of view",
                "check the registration (followup.links) or the field of view of the planning CT",
            ),
        )
    return RegisteredPair(
        follow_up_image=aligned,
        follow_up_mask=on_planning,
        follow_up_native_mask=follow_lesion,
        follow_up_axial_diameter_mm=longest_axial_diameter_mm(follow_lesion),
        follow_up_3d_diameter_mm=longest_3d_diameter_mm(follow_lesion),
        follow_up_volume_ml=float(keep.sum()) * float(np.prod(follow_up_mask.GetSpacing())) / 1000.0,
        correlation=correlation,
        baseline_axial_diameter_mm=baseline_axial,
        baseline_3d_diameter_mm=baseline_3d,
        baseline_volume_ml=baseline_volume,
        lesion_id=lesion_id,
        transform=transform,
        rotation_deg=rotation,
        translation_mm=translation,
    )


def _seeded_mask(lesion_id: str, image: Any, point: tuple[float, ...]) -> Any:
    """Semi-automatic follow-up mask seeded at a physical point (:func:`~sabrkit.imaging.segment_from_seed`)."""
    from sabrkit.imaging.semiauto import segment_from_seed

    index = image.TransformPhysicalPointToIndex(point)
    if not all(0 <= i < n for i, n in zip(index, image.GetSize())):
        raise FollowUpCaseError(
            "mask",
            format_problem(
                f"lesion {lesion_id}: the registered lesion centre {index} lies outside the follow-up CT",
                "the follow-up covers the lesion",
                "check the pairing (followup.links) or the follow-up's field of view",
            ),
        )
    try:
        return segment_from_seed(image, index)
    except SabrkitError as exc:  # nothing grew: an empty mask, handled like an empty U-Net mask
        logger.info("lesion %s: semi-automatic follow-up segmentation found nothing (%s)", lesion_id, exc)
        return _zeros_like(image)


def _zeros_like(image: Any) -> Any:
    """A uint8 zero image on ``image``'s grid."""
    import SimpleITK as sitk

    blank = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    blank.CopyInformation(image)
    return blank


def _smoothed_correlation(fixed: Any, moved: Any, box: tuple[slice, slice, slice]) -> float:
    """Pearson correlation of the two CTs in ``box`` after a 2 mm Gaussian, which removes most of
    the scan-to-scan noise (independent between scans) and keeps the anatomy the registration aligns."""
    import SimpleITK as sitk

    # GetArrayFromImage (a copy): a view of the temporary smoothed image would outlive the image
    values = [
        sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), 2.0))[box]
        .astype(float)
        .ravel()
        for image in (fixed, moved)
    ]
    if values[0].std() == 0 or values[1].std() == 0:
        return float("nan")
    return float(np.corrcoef(values[0], values[1])[0, 1])


def _lesion_box(binary: Any, margin_mm: float) -> tuple[slice, slice, slice]:
    """Array slices [z, y, x] of the mask's bounding box grown by ``margin_mm``."""
    import SimpleITK as sitk

    array = sitk.GetArrayViewFromImage(binary)
    where = np.argwhere(np.asarray(array) > 0)
    spacing = np.asarray(binary.GetSpacing())[::-1]
    pad = np.ceil(margin_mm / spacing).astype(int)
    low = np.maximum(where.min(axis=0) - pad, 0)
    high = np.minimum(where.max(axis=0) + pad + 1, array.shape)
    return (slice(low[0], high[0]), slice(low[1], high[1]), slice(low[2], high[2]))


def register_follow_ups(
    pairs: pd.DataFrame,
    config: FollowUpConfig,
    *,
    image_root: str | os.PathLike[str],
    mask_root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    on_pair: Callable[[dict[str, Any], RegisteredPair], dict[str, Any]] | None = None,
) -> tuple[pd.DataFrame, list[CaseFailure]]:
    """Run :func:`register_follow_up` on every pair; write the follow-up CTs and masks on the planning grid.

    Parameters
    ----------
    pairs : DataFrame
        :func:`pair_follow_ups`' table.
    config : FollowUpConfig
    image_root : path-like
        Folder the planning and follow-up image and planning mask paths are relative to (ingest's
        output folder).
    mask_root : path-like
        Folder the follow-up mask paths are relative to (the segment stage's output folder).
    out_dir : path-like
        Where ``<lesion_id>_fu<k>_ct.nii.gz`` and ``<lesion_id>_fu<k>_mask.nii.gz`` are written.
    on_pair : callable, optional
        ``f(row, registered) -> dict`` of extra columns for the pair (e.g. a check against known
        synthetic motion); its exceptions are the pair's failure like any other.

    Returns
    -------
    (DataFrame, list of CaseFailure)
        One row per registered pair: the pairing columns, ``follow_up_ct_path`` and
        ``follow_up_lesion_mask_path`` (planning grid, relative to ``out_dir``; empty for a CR
        read from an empty mask), diameters, volumes and the registration's rotation (degrees),
        lesion displacement (mm) and correlation; and one failure per pair that did not complete.
    """
    from sabrkit.imaging.io import read_image, write_image

    image_root, mask_root, out = Path(image_root), Path(mask_root), Path(out_dir)
    rows: list[dict[str, Any]] = []
    failures: list[CaseFailure] = []
    for pair in pairs.to_dict("records"):
        case = f"{pair['lesion_id']} follow-up {pair['follow_up_index']} ({pair['follow_up_series_uid']})"
        try:
            if config.mask_source == "segment" and not pair["follow_up_mask_path"]:
                raise FollowUpCaseError(
                    "mask",
                    format_problem(
                        f"lesion {pair['lesion_id']}: no segmentation of follow-up series {pair['follow_up_series_uid']}",
                        "every follow-up series has a lesion mask (segment stage)",
                        "run the segment stage, or add the series' mask to segments.csv",
                    ),
                )
            lesion_id = str(pair["lesion_id"])
            registered = register_follow_up(
                lesion_id,
                read_image(image_root / pair["planning_image_path"], lesion_id),
                read_image(image_root / pair["planning_mask_path"], lesion_id, role="mask"),
                read_image(image_root / pair["follow_up_image_path"], lesion_id, role="follow-up image"),
                read_image(mask_root / pair["follow_up_mask_path"], lesion_id, role="follow-up mask")
                if config.mask_source == "segment"
                else None,
                config,
            )
            extra = on_pair(pair, registered) if on_pair is not None else {}
        except SabrkitError as exc:
            stage = exc.stage if isinstance(exc, FollowUpCaseError) else "read"
            failures.append(CaseFailure(case, stage, str(exc)))
            logger.warning("follow-up %s failed: %s", case, exc)
            continue
        stem = f"{pair['lesion_id']}_fu{pair['follow_up_index']}"
        write_image(registered.follow_up_image, out / f"{stem}_ct.nii.gz")
        mask_path = ""
        if registered.follow_up_mask is not None:
            write_image(registered.follow_up_mask, out / f"{stem}_mask.nii.gz")
            mask_path = f"{stem}_mask.nii.gz"
        rows.append(
            {
                **pair,
                "follow_up_ct_path": f"{stem}_ct.nii.gz",
                "follow_up_lesion_mask_path": mask_path,
                "baseline_axial_diameter_mm": registered.baseline_axial_diameter_mm,
                "follow_up_axial_diameter_mm": registered.follow_up_axial_diameter_mm,
                "baseline_3d_diameter_mm": registered.baseline_3d_diameter_mm,
                "follow_up_3d_diameter_mm": registered.follow_up_3d_diameter_mm,
                "baseline_volume_ml": registered.baseline_volume_ml,
                "follow_up_volume_ml": registered.follow_up_volume_ml,
                "registration_rotation_deg": registered.rotation_deg,
                "registration_lesion_shift_mm": registered.translation_mm,
                "registration_correlation": registered.correlation,
                **extra,
            }
        )
    return pd.DataFrame(rows), failures
