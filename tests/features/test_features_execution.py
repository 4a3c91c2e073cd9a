"""Per-lesion cache, the local pool's start method and the Dask route of feature extraction."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import SimpleITK as sitk

from sabrkit.errors import ConfigError
from sabrkit.features import LesionCache, extract_lesion_features, load_params
from sabrkit.features.execution import START_METHOD_ENV, resolve_workers, start_method


def _manifest(rows: list[tuple[str, Path, Path]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lesion_id": [r[0] for r in rows],
            "study_id": [r[0].rsplit("-L", 1)[0] for r in rows],
            "image_path": [str(r[1]) for r in rows],
            "mask_path": [str(r[2]) for r in rows],
        }
    )


@pytest.fixture
def three_lesions(write_case: Callable) -> pd.DataFrame:
    return _manifest(
        [
            ("SABR-RCC-001-L1", *write_case("a", radius_mm=5.0)),
            ("SABR-RCC-001-L2", *write_case("b", radius_mm=7.0)),
            ("SABR-RCC-002-L1", *write_case("c", radius_mm=6.0)),
        ]
    )


def test_cache_reuses_rows_and_recomputes_only_what_changed(
    tmp_path: Path, three_lesions: pd.DataFrame, write_case: Callable
) -> None:
    params, cache = load_params("ct_v1"), tmp_path / "cache"
    plain = extract_lesion_features(three_lesions, params, progress=False)
    first = extract_lesion_features(three_lesions, params, progress=False, cache_dir=cache)
    assert (first.n_extracted, first.n_from_cache) == (3, 0) and len(LesionCache(cache)) == 3
    pd.testing.assert_frame_equal(first.features, plain.features, check_exact=True)

    again = extract_lesion_features(three_lesions, params, progress=False, cache_dir=cache)
    assert (again.n_extracted, again.n_from_cache) == (0, 3)
    pd.testing.assert_frame_equal(again.features, plain.features, check_exact=True)

    # a new patient: only its lesion is extracted
    grown = pd.concat([three_lesions, _manifest([("SABR-RCC-003-L1", *write_case("d", radius_mm=6.5))])])
    added = extract_lesion_features(grown, params, progress=False, cache_dir=cache)
    assert (added.n_extracted, added.n_from_cache) == (1, 3) and len(added.features) == 4

    # an edited mask changes its hash: that lesion is recomputed, with the new hash recorded
    mask_path = Path(three_lesions.loc[1, "mask_path"])
    mask = sitk.ReadImage(str(mask_path))
    sitk.WriteImage(sitk.BinaryErode(mask, [1, 1, 1]), str(mask_path))
    edited = extract_lesion_features(grown, params, progress=False, cache_dir=cache)
    assert (edited.n_extracted, edited.n_from_cache) == (1, 3)
    before = added.features.set_index("lesion_id").loc["SABR-RCC-001-L2"]
    after = edited.features.set_index("lesion_id").loc["SABR-RCC-001-L2"]
    assert after["original_shape_VoxelVolume"] < before["original_shape_VoxelVolume"]
    assert after["prov_mask_sha256"] != before["prov_mask_sha256"]

    # other parameters are another key: nothing is reused
    other = params.derive("ct-v1-bw10", setting={"binWidth": 10})
    rebinned = extract_lesion_features(grown, other, progress=False, cache_dir=cache)
    assert rebinned.n_extracted == 4 and set(rebinned.features["prov_params_version"]) == {"ct-v1-bw10"}


def test_broken_cache_entry_is_recomputed(tmp_path: Path, three_lesions: pd.DataFrame) -> None:
    params, cache = load_params("ct_v1"), tmp_path / "cache"
    first = extract_lesion_features(three_lesions.iloc[:1], params, progress=False, cache_dir=cache)
    (entry,) = (tmp_path / "cache").glob("*/*.json")
    entry.write_bytes(b"truncated")
    second = extract_lesion_features(three_lesions.iloc[:1], params, progress=False, cache_dir=cache)
    assert second.n_extracted == 1
    pd.testing.assert_frame_equal(first.features, second.features, check_exact=True)
    # read back from the (rewritten) entry: the same values bit for bit, the same column types
    third = extract_lesion_features(three_lesions.iloc[:1], params, progress=False, cache_dir=cache)
    assert third.n_extracted == 0
    pd.testing.assert_frame_equal(first.features, third.features, check_exact=True)


def test_workers_follow_pending_lesions() -> None:
    assert resolve_workers(2, 2) == 1  # two new lesions: cheaper in this process
    assert resolve_workers(2, 8) == 2 and resolve_workers(2, 1, min_tasks_per_worker=1) == 1
    with pytest.raises(ConfigError, match="n_jobs"):
        resolve_workers(0, 4)


def test_dask_local_cluster_gives_the_local_table(three_lesions: pd.DataFrame) -> None:
    from distributed import LocalCluster

    params = load_params("ct_v1")
    local = extract_lesion_features(three_lesions, params, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask = extract_lesion_features(
            three_lesions, params, progress=False, scheduler=cluster.scheduler_address
        )
    pd.testing.assert_frame_equal(local.features, on_dask.features, check_exact=True)


def test_bad_scheduler_is_rejected(three_lesions: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="scheduler"):
        extract_lesion_features(
            three_lesions, load_params("ct_v1"), progress=False, scheduler="localhost:8786"
        )


def test_workers_are_forked_only_while_no_other_thread_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(START_METHOD_ENV, raising=False)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        assert start_method() == "spawn"  # a lock held by another thread at a fork stays held in the child
    finally:
        stop.set()
        other.join()
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # pytest-timeout's timer thread aside
    assert start_method() == "fork"


def test_start_method_override_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(START_METHOD_ENV, "spawn")
    assert start_method() == "spawn"
    monkeypatch.setenv(START_METHOD_ENV, "threads")
    with pytest.raises(ConfigError, match=r"SABRKIT_START_METHOD='threads'.*unset SABRKIT_START_METHOD"):
        start_method()


def _smooth_with_four_threads(_: int) -> float:
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(4)
    image = sitk.GaussianSource(sitk.sitkFloat32, size=[96, 96, 48], sigma=[20, 20, 10], mean=[48, 48, 24])
    resampled = sitk.Resample(
        sitk.SmoothingRecursiveGaussian(image, 2.0), image, sitk.Transform(), sitk.sitkBSpline
    )
    return float(sitk.GetArrayViewFromImage(resampled).sum())


def test_forked_workers_run_multithreaded_itk_after_the_parent_did() -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    try:
        expected = _smooth_with_four_threads(0)  # ITK's threads have run in this process
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(_smooth_with_four_threads, range(4), timeout=120))
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)
    assert results == pytest.approx([expected] * 4, rel=1e-9)
