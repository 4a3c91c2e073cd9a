"""Follow-up imaging: rigid registration recovers a known motion; diameters, size response, delta features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from sabrkit.errors import ValidationError
from sabrkit.imaging.followup import (
    delta_features,
    longest_3d_diameter_mm,
    longest_axial_diameter_mm,
    register_rigid,
    resample_to,
    size_response,
)
from sabrkit.imaging.followup_run import FollowUpConfig, _as_euler, pair_follow_ups, register_follow_ups


def test_rigid_registration_recovers_a_known_shift_and_rotation(tiny_cohort) -> None:
    images = pd.read_csv(tiny_cohort / "images.csv")
    planning = sitk.ReadImage(str(tiny_cohort / images.iloc[0].image_path))
    known = sitk.Euler3DTransform()
    known.SetCenter(planning.TransformContinuousIndexToPhysicalPoint([s / 2 for s in planning.GetSize()]))
    known.SetRotation(0.0, 0.0, np.deg2rad(4.0))
    known.SetTranslation((3.0, -2.0, 2.0))
    # the follow-up: follow_up(p) = planning(K^-1 p), so planning(p) = follow_up(K p): registration should find K
    follow_up = sitk.Resample(planning, planning, known.GetInverse(), sitk.sitkLinear, -1024.0)
    found = register_rigid(planning, follow_up)
    points = [
        planning.TransformContinuousIndexToPhysicalPoint([i, j, k])
        for i in (14, 28, 42)
        for j in (14, 28, 42)
        for k in (6, 12, 18)
    ]
    errors = [np.linalg.norm(np.subtract(found.TransformPoint(p), known.TransformPoint(p))) for p in points]
    assert max(errors) < 1.0  # mm, against the 3-4 mm of the applied motion
    aligned = resample_to(follow_up, planning, found)
    centre = tuple(slice(6, -6) for _ in range(3))
    before = np.abs(
        sitk.GetArrayFromImage(follow_up)[centre] - sitk.GetArrayFromImage(planning)[centre]
    ).mean()
    after = np.abs(sitk.GetArrayFromImage(aligned)[centre] - sitk.GetArrayFromImage(planning)[centre]).mean()
    assert after < 0.5 * before


def test_rigid_registration_recovers_rotation_and_translation_of_a_textured_volume() -> None:
    """A smooth random texture (96 x 96 x 40 voxels, 1 x 1 x 2 mm) moved by 2, -1.5, 4 degrees and (3, -2, 2.5) mm."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(7)
    field = ndi.gaussian_filter(rng.standard_normal((40, 96, 96)), (1.5, 3, 3))
    volume = sitk.GetImageFromArray((field / field.std() * 200).astype(np.float32))
    volume.SetSpacing((1.0, 1.0, 2.0))
    volume.SetOrigin((-48.0, -48.0, -40.0))
    known = sitk.Euler3DTransform()
    known.SetRotation(*np.deg2rad([2.0, -1.5, 4.0]))
    known.SetTranslation((3.0, -2.0, 2.5))
    follow_up = sitk.Resample(volume, volume, known.GetInverse(), sitk.sitkLinear, 0.0)
    found = _as_euler(register_rigid(volume, follow_up))
    residual = np.asarray(found.GetMatrix()).reshape(3, 3) @ np.asarray(known.GetMatrix()).reshape(3, 3).T
    assert np.degrees(np.arccos(np.clip((np.trace(residual) - 1) / 2, -1, 1))) < 1.0  # degrees, of about 4.7
    corners = [
        volume.TransformContinuousIndexToPhysicalPoint([i, j, k])
        for i in (10, 85)
        for j in (10, 85)
        for k in (5, 34)
    ]
    errors = [np.linalg.norm(np.subtract(found.TransformPoint(p), known.TransformPoint(p))) for p in corners]
    assert max(errors) < 1.0  # mm, at the corners of the inner box


def test_longest_axial_diameter_of_a_disc_and_size_response() -> None:
    mask = np.zeros((5, 60, 60), dtype=np.uint8)
    yy, xx = np.mgrid[:60, :60]
    mask[2] = (yy - 30) ** 2 + (xx - 30) ** 2 <= 20**2  # radius 20 voxels
    image = sitk.GetImageFromArray(mask)
    image.SetSpacing((0.5, 0.5, 2.0))
    assert longest_axial_diameter_mm(image) == pytest.approx(20.0, abs=0.6)  # 41 voxels across at 0.5 mm
    assert longest_axial_diameter_mm(sitk.GetImageFromArray(np.zeros((3, 5, 5), np.uint8))) == 0.0
    assert size_response(20.0, 0.0)[1] == "CR"
    assert size_response(20.0, 13.0) == (pytest.approx(-0.35), "PR")
    assert size_response(20.0, 25.0)[1] == "PD" and size_response(20.0, 23.0)[1] == "SD"
    with pytest.raises(ValidationError):
        size_response(0.0, 3.0)


def test_delta_features_per_month() -> None:
    baseline = pd.DataFrame(
        {"f": [10.0, 0.0], "g": [2.0, 4.0]}, index=pd.Index(["L1", "L2"], name="lesion_id")
    )
    follow = pd.DataFrame({"f": [16.0, 3.0], "g": [1.0, 4.0]}, index=pd.Index(["L1", "L2"], name="lesion_id"))
    delta = delta_features(baseline, follow, pd.Series({"L1": 3.0, "L2": 2.0}))
    assert delta.loc["L1", "delta_abs_f"] == pytest.approx(2.0) and delta.loc[
        "L1", "delta_rel_f"
    ] == pytest.approx(0.2)
    assert np.isnan(delta.loc["L2", "delta_rel_f"]) and delta.loc["L2", "delta_abs_g"] == 0.0
    with pytest.raises(ValidationError, match="after the baseline"):
        delta_features(baseline, follow, 0.0)


def test_longest_diameters_of_an_analytic_ellipsoid() -> None:
    """Semi-axes 12 mm (x), 8 mm (y), 5 mm (z): the axial and the 3-D longest diameter are both 2 x 12 mm."""
    spacing = (0.5, 0.5, 1.0)  # x, y, z
    z, y, x = np.mgrid[:21, :41, :61]
    inside = ((x - 30) * 0.5 / 12) ** 2 + ((y - 20) * 0.5 / 8) ** 2 + ((z - 10) * 1.0 / 5) ** 2 <= 1
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.SetSpacing(spacing)
    assert longest_axial_diameter_mm(mask) == pytest.approx(24.0, abs=0.5)  # within one in-plane voxel
    assert longest_3d_diameter_mm(mask) == pytest.approx(24.0, abs=0.5)
    # tilted out of the axial plane, the 3-D diameter stays while the axial one shrinks
    tilted = ((x - 30) * 0.5 / 5) ** 2 + ((y - 20) * 0.5 / 5) ** 2 + ((z - 10) * 1.0 / 9) ** 2 <= 1
    column = sitk.GetImageFromArray(tilted.astype(np.uint8))
    column.SetSpacing(spacing)
    assert longest_3d_diameter_mm(column) == pytest.approx(18.0, abs=1.0)  # along z, 1 mm voxels
    assert longest_axial_diameter_mm(column) == pytest.approx(10.0, abs=0.5)
    assert longest_3d_diameter_mm(sitk.GetImageFromArray(np.zeros((3, 4, 4), np.uint8))) == 0.0


@pytest.mark.parametrize(
    ("baseline", "follow_up", "nadir", "category"),
    [
        (10.0, 7.0, None, "PR"),  # exactly -30 %
        (30.0, 21.0, None, "PR"),  # -30 % that floating point computes as -0.30000000000000004
        (10.0, 7.01, None, "SD"),  # just above -30 %
        (25.0, 30.0, None, "PD"),  # exactly +20 % and exactly +5 mm
        (25.0, 29.99, None, "SD"),  # +5 mm missed by 0.01 mm
        (20.0, 24.0, None, "SD"),  # +20 % but only +4 mm: not PD
        (40.0, 47.9, None, "SD"),  # +7.9 mm but +19.75 %
        (20.0, 0.0, None, "CR"),
        (30.0, 16.0, 10.0, "PD"),  # -47 % from baseline, but +60 % and +6 mm from the nadir: PD wins
        (30.0, 14.0, 10.0, "PR"),  # +40 % but only +4 mm from the nadir
    ],
)
def test_recist_categories_at_the_thresholds(baseline, follow_up, nadir, category) -> None:
    change, found = size_response(baseline, follow_up, nadir_mm=nadir)
    assert found == category
    assert change == pytest.approx((follow_up - baseline) / baseline)


def test_delta_features_equal_a_hand_computation_on_a_tiny_frame() -> None:
    ids = pd.Index(["SABR-RCC-001-L1", "SABR-RCC-002-L1"], name="lesion_id")
    baseline = pd.DataFrame({"original_shape_VoxelVolume": [8000.0, 1000.0]}, index=ids)
    follow = pd.DataFrame({"original_shape_VoxelVolume": [4000.0, 1500.0]}, index=ids)
    delta = delta_features(baseline, follow, pd.Series([4.0, 2.5], index=ids))
    # by hand: (4000 - 8000) / 4 = -1000 per month, -0.5 / 4 = -0.125; (1500 - 1000) / 2.5 = 200, 0.5 / 2.5 = 0.2
    assert delta["delta_abs_original_shape_VoxelVolume"].tolist() == pytest.approx([-1000.0, 200.0])
    assert delta["delta_rel_original_shape_VoxelVolume"].tolist() == pytest.approx([-0.125, 0.2])
    assert all(c.startswith("delta_") for c in delta.columns)


@pytest.fixture(scope="module")
def follow_up_export(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Two patients with 96 x 96 x 40 regions (77 x 77 x 80 mm: room for registration around the lesion)
    written as DICOM with follow-ups (set-up motion planted), and their key table."""
    from sabrkit.synthetic import SynthConfig, synthesize
    from sabrkit.synthetic.dicom import write_cohort_dicom

    root = tmp_path_factory.mktemp("followup")
    cohort = synthesize(root / "cohort", SynthConfig(n_patients=2, seed=20240507, image_shape=(96, 96, 40)))
    write_cohort_dicom(cohort, root / "export", follow_up_truth_dir=root / "truth", dose=False)
    keys = pd.read_csv(cohort / "registry" / "identifiers.csv", dtype=str)
    return root / "export", dict(zip(keys["hospital_number"], keys["study_id"]))


@pytest.mark.slow
def test_batch_follow_up_records_failed_cases_and_completes_the_rest(follow_up_export, tmp_path) -> None:
    """Real ingest of a DICOM export; follow-up masks = the synthetic truth, one emptied and one missing."""
    from sabrkit.imaging import IngestConfig, ingest_folder

    export, key_table = follow_up_export
    ingested = tmp_path / "imaging"
    ingest_folder(export, ingested, IngestConfig(patient_key=key_table))
    lesions = pd.read_csv(ingested / "images.csv", dtype=str)
    series = pd.read_csv(ingested / "series.csv", dtype={"series_uid": str, "study_id": str})
    truth_dir = export.parent / "truth"
    truth = pd.read_csv(truth_dir / "follow_up_truth.csv", dtype={"series_uid": str})
    assert len(truth) >= 3, "the tiny cohort needs three follow-ups for this test"
    masks = pd.DataFrame(
        {
            "series_uid": truth["series_uid"],
            "mask_path": [str(truth_dir / f"{lid}_followup_mask.nii.gz") for lid in truth["lesion_id"]],
        }
    )
    emptied, missing = truth["lesion_id"].iloc[0], truth["lesion_id"].iloc[1]
    blank = sitk.ReadImage(masks["mask_path"].iloc[0]) * 0
    sitk.WriteImage(blank, str(tmp_path / "empty_mask.nii.gz"))
    masks.loc[0, "mask_path"] = str(tmp_path / "empty_mask.nii.gz")
    masks = masks.drop(index=1)
    config = FollowUpConfig(mask_source="segment")
    pairs, pairing_failures = pair_follow_ups(lesions, series, masks, config)
    assert not pairing_failures
    assert sorted(pairs["lesion_id"]) == sorted(truth["lesion_id"])  # every follow-up found its lesion
    assert (pairs["follow_up_index"] == 1).all() and (pairs["interval_days"] >= 91).all()
    by_lesion = truth.set_index("lesion_id")
    assert (
        pairs.set_index("lesion_id").loc[truth["lesion_id"], "follow_up_series_uid"]
        == truth["series_uid"].values
    ).all()

    def error_mm(pair: dict, found) -> dict:
        """Distance at the lesion centroid between the found transform and K^-1 of the planted set-up motion K."""
        motion = by_lesion.loc[pair["lesion_id"]]
        planning = sitk.ReadImage(str(ingested / pair["planning_mask_path"]))
        k = sitk.Euler3DTransform()
        k.SetCenter(
            planning.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in planning.GetSize()])
        )
        k.SetRotation(motion.setup_angle_x_rad, motion.setup_angle_y_rad, motion.setup_angle_z_rad)
        k.SetTranslation((motion.setup_shift_x_mm, motion.setup_shift_y_mm, motion.setup_shift_z_mm))
        stats = sitk.LabelShapeStatisticsImageFilter()
        stats.Execute(sitk.Cast(planning > 0, sitk.sitkUInt8))
        c = stats.GetCentroid(1)
        planted = np.linalg.norm(np.subtract(k.GetInverse().TransformPoint(c), c))
        error = np.linalg.norm(
            np.subtract(found.transform.TransformPoint(c), k.GetInverse().TransformPoint(c))
        )
        return {"error_mm": float(error), "planted_mm": float(planted)}

    registered, failures = register_follow_ups(
        pairs,
        config,
        image_root=ingested,
        mask_root=tmp_path,
        out_dir=tmp_path / "registered",
        on_pair=error_mm,
    )
    failed = {f.case_id.split(" ")[0]: f for f in failures}
    assert failed[emptied].stage == "mask" and "empty" in failed[emptied].reason
    assert failed[missing].stage == "mask" and "no segmentation" in failed[missing].reason
    # every other pair completed, or was refused by the registration checks with a named reason
    others = set(failed) - {emptied, missing}
    assert all(
        failed[lesion].stage == "registration" and "rule:" in failed[lesion].reason for lesion in others
    )
    assert set(registered["lesion_id"]) | set(failed) == set(truth["lesion_id"]) and len(registered) >= 1
    # what the checks let through is right: within 1 mm of the planted set-up motion at the lesion
    assert (registered["error_mm"] < 1.0).all(), registered[["lesion_id", "error_mm", "planted_mm"]]
    assert (registered["planted_mm"] > 1.0).all()  # the motion was there to be found
    for row in registered.itertuples(index=False):
        planning = sitk.ReadImage(str(ingested / row.planning_mask_path))
        on_planning = sitk.ReadImage(str(tmp_path / "registered" / row.follow_up_lesion_mask_path))
        assert on_planning.GetSize() == planning.GetSize()
        # the lesion shrank (response 0.55-0.95) and the transferred mask lies inside the planning lesion
        assert row.follow_up_volume_ml < row.baseline_volume_ml
        moved = sitk.GetArrayFromImage(on_planning) > 0
        assert (moved & (sitk.GetArrayFromImage(planning) > 0)).sum() > 0.8 * moved.sum()
        assert row.follow_up_axial_diameter_mm < row.baseline_axial_diameter_mm
        assert row.registration_correlation >= config.min_correlation

    # the default mask source: semi-automatic segmentation seeded where the registration puts the lesion
    def dice_vs_truth(pair: dict, found) -> dict:
        true = (
            sitk.GetArrayFromImage(
                sitk.ReadImage(str(truth_dir / f"{pair['lesion_id']}_followup_mask.nii.gz"))
            )
            > 0
        )
        mine = sitk.GetArrayFromImage(found.follow_up_native_mask) > 0
        return {"dice": 2 * (true & mine).sum() / (true.sum() + mine.sum())}

    accepted = pairs[pairs["lesion_id"].isin(registered["lesion_id"])]
    seeded, seeded_failures = register_follow_ups(
        accepted,
        FollowUpConfig(),
        image_root=ingested,
        mask_root=tmp_path,
        out_dir=tmp_path / "seeded",
        on_pair=dice_vs_truth,
    )
    assert len(seeded) + len(seeded_failures) == len(accepted) and len(seeded) >= 1
    assert seeded["dice"].median() > 0.5, seeded[["lesion_id", "dice"]]


def test_pairing_rule_dates_series_numbers_and_links() -> None:
    """Tables only: the follow-up rule picks later, uncontoured series; series numbers split a date; links override."""
    lesions = pd.DataFrame(
        {
            "lesion_id": ["P1-L1", "P1-L2", "P2-L1"],
            "study_id": ["P1", "P1", "P2"],
            "series_uid": ["plan1", "plan2", "plan3"],
            "study_date": ["2025-01-10", "2025-01-10", "2025-03-01"],
            "image_path": ["a", "b", "c"],
            "mask_path": ["am", "bm", "cm"],
        }
    )
    series = pd.DataFrame(
        {
            "study_id": ["P1", "P1", "P1", "P1", "P1", "P2", "P2", "P2"],
            "study_date": [
                "2025-01-10", "2025-01-10", "2025-01-20", "2025-04-15", "2025-04-15",
                "2025-03-01", "2025-06-01", "2025-09-01",
            ],
            "modality": ["CT"] * 8,
            "series_uid": ["plan1", "plan2", "replan", "fu1", "fu2", "plan3", "fu3", "fu4"],
            "image_path": ["a", "b", "r", "f1", "f2", "c", "f3", "f4"],
            "series_number": [1, 2, 1, 2, 1, 1, 7, 8],
        }
    )  # fmt: skip
    masks = pd.DataFrame({"series_uid": ["fu1", "fu2", "fu3"], "mask_path": ["m1", "m2", "m3"]})
    pairs, failures = pair_follow_ups(lesions, series, masks, FollowUpConfig())
    got = {(r.lesion_id, r.follow_up_index): r.follow_up_series_uid for r in pairs.itertuples()}
    # P1: the 10-day re-planning scan is no follow-up; on 04-15 the series number tells the lesions apart
    # P2: one series per date serves the lesion: two timepoints, the second without a mask yet
    assert got == {("P1-L1", 1): "fu2", ("P1-L2", 1): "fu1", ("P2-L1", 1): "fu3", ("P2-L1", 2): "fu4"}
    assert not failures
    assert pairs.set_index(["lesion_id", "follow_up_index"]).loc[("P2-L1", 2), "follow_up_mask_path"] == ""
    assert pairs.set_index(["lesion_id", "follow_up_index"]).loc[("P1-L1", 1), "interval_days"] == 95
    # ambiguous: two series on one date and no matching number -> a named pairing failure
    renumbered = series.assign(series_number=[1, 2, 1, 5, 6, 1, 7, 8])
    pairs, failures = pair_follow_ups(lesions, renumbered, masks, FollowUpConfig())
    assert {f.case_id for f in failures} == {"P1-L1", "P1-L2"} and {f.stage for f in failures} == {"pairing"}
    assert "followup.links" in failures[0].reason and set(pairs["lesion_id"]) == {"P2-L1"}
    # an explicit link replaces the rule for its lesion
    links = pd.DataFrame({"lesion_id": ["P1-L1"], "series_uid": ["fu1"]})
    pairs, failures = pair_follow_ups(lesions, renumbered, masks, FollowUpConfig(), links)
    assert pairs.set_index("lesion_id").loc["P1-L1", "follow_up_series_uid"] == "fu1"
    assert {f.case_id for f in failures} == {"P1-L2"}
