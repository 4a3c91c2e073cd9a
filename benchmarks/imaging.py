"""Benchmark: DICOM ingest + preprocessing of 100 synthetic patients, the lesion U-Net, semi-automatic segmentation.

``--repeats`` (default 3) runs of the whole pipeline on one synthetic cohort (``--patients``, default 100,
written to a temporary folder), each phase in a fresh subprocess so its peak resident memory (process +
its children, ``ru_maxrss``) is its own; every figure is reported per run and as median, min and max:

1. **export**: cohort -> DICOM (CT series + RTSTRUCT + follow-up CT per patient), then de-identification
   (PS3.15 Basic Profile) and the PHI check of the released files;
2. **ingest**: ``ingest_folder`` on the de-identified export (series per minute, peak memory), its re-run
   (nothing changed: no work), and the plain alternative a user would write: SimpleITK's GDCM series
   discovery + ``ImageSeriesReader`` + NIfTI write per series (no RTSTRUCT, no checks);
3. **preprocess**: ``preprocess_manifest`` on the ingest manifest with 1 and 2 workers;
4. **unet**: the default :class:`~sabrkit.imaging.UNetConfig` trained on the 1 mm crops of 80 % of the
   patients within 10 minutes on 2 threads; held-out mean Dice; inference time per lesion crop
   (sliding window) vs one forward pass of the padded crop (the plain alternative);
5. **semiauto**: seed segmentation (seed = deepest voxel of the reference) of every lesion on its native
   CT: mean Dice and time, vs plain ``SimpleITK.ConfidenceConnected`` from the same seed.

No GPU is available in this session; the JSON says so. Run: ``.venv/bin/python benchmarks/imaging.py
[--patients 100] [--unet-minutes 10] [--repeats 3]`` (about 90 minutes at the defaults on 2 busy cores)
-> ``benchmarks/results/imaging.json``. Every Dice figure is on synthetic phantoms.

``--memory-only`` runs only the memory measurement of one 300-slice 512 x 512 CT series with an RTSTRUCT
(``ingest_folder`` vs the plain SimpleITK series read, three alternating repeats, each in a fresh
interpreter) and merges it into the JSON as ``memory_300_slices`` (a few minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform as stdlib_platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from measure import DEFAULT_REPEATS, check_repeats, load_average, spread

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "imaging.json"
N_PATIENTS = 100
SEED = 20240501
SECRET = "benchmark-secret-0123456789"


def _peak_mb() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)  # ru_maxrss is in KiB on Linux


def _rep_folder(work: Path, name: str, rep: int) -> Path:
    """``work/name`` for the first repeat (the later phases read it), ``work/name_r<rep>`` after."""
    return work / (name if rep == 0 else f"{name}_r{rep}")


def _drop_repeat(work: Path, names: tuple[str, ...], rep: int) -> None:
    """Remove a later repeat's output folders (only the first repeat's are read again)."""
    if rep > 0:
        for name in names:
            shutil.rmtree(_rep_folder(work, name, rep), ignore_errors=True)


def phase_export(work: Path, rep: int, n_patients: int) -> dict:
    import pandas as pd

    from sabrkit.imaging import DeidConfig, check_deidentified_folder, deidentify_folder
    from sabrkit.synthetic import SynthConfig, synthesize
    from sabrkit.synthetic.dicom import write_cohort_dicom

    export, deid_folder = _rep_folder(work, "export", rep), _rep_folder(work, "deid", rep)
    started = time.perf_counter()
    cohort = synthesize(_rep_folder(work, "cohort", rep), SynthConfig(n_patients=n_patients, seed=SEED))
    synth_s = time.perf_counter() - started
    started = time.perf_counter()
    summary = write_cohort_dicom(cohort, export, follow_up_truth_dir=_rep_folder(work, "truth", rep))
    dicom_s = time.perf_counter() - started
    keys = pd.read_csv(cohort / "registry" / "identifiers.csv", dtype=str)
    started = time.perf_counter()
    deid = deidentify_folder(
        export,
        deid_folder,
        DeidConfig(secret=SECRET, pseudonym_of=dict(zip(keys["hospital_number"], keys["study_id"]))),
    )
    deid_s = time.perf_counter() - started
    needles = [
        *keys["hospital_number"],
        *(keys["family_name"] + "^" + keys["given_name"]),
        *keys["date_of_birth"].str.replace("-", ""),
    ]
    started = time.perf_counter()
    findings = check_deidentified_folder(deid_folder, identifiers=needles)
    check_s = time.perf_counter() - started
    n_lesions = int(len(pd.read_csv(cohort / "images.csv")))
    _drop_repeat(work, ("cohort", "export", "truth", "deid"), rep)
    return {
        "n_patients": n_patients,
        "n_lesions": n_lesions,
        "synthesize_seconds": round(synth_s, 1),
        "dicom_write_seconds": round(dicom_s, 1),
        "n_image_series": summary.n_image_series,
        "n_rtstruct": summary.n_rtstruct,
        "n_files": summary.n_files,
        "export_mb": round(summary.n_bytes / 1e6, 1),
        "deidentify_seconds": round(deid_s, 1),
        "deidentify_files_per_second": round(deid.n_written / deid_s, 1),
        "deidentify_failures": len(deid.failures),
        "phi_check_seconds": round(check_s, 1),
        "phi_findings": len(findings),
        "peak_rss_mb": _peak_mb(),
    }


def phase_ingest(work: Path, rep: int) -> dict:
    from sabrkit.imaging import ingest_folder

    out = _rep_folder(work, "imaging", rep)
    started = time.perf_counter()
    result = ingest_folder(work / "deid", out)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    again = ingest_folder(work / "deid", out)
    rerun_s = time.perf_counter() - started
    n_series = len(result.series)
    _drop_repeat(work, ("imaging",), rep)
    return {
        "n_series": n_series,
        "n_lesion_masks": len(result.lesions),
        "n_failures": len(result.failures),
        "seconds": round(first_s, 1),
        "series_per_minute": round(n_series / first_s * 60, 1),
        "rerun_seconds": round(rerun_s, 2),
        "rerun_units_done": again.n_units_done,
        "rerun_fraction_of_first": round(rerun_s / first_s, 3),
        "peak_rss_mb": _peak_mb(),
    }


def phase_plain_ingest(work: Path, rep: int) -> dict:
    """What a user writes without sabrkit: GDCM series discovery per folder, read, write NIfTI."""
    import SimpleITK as sitk

    out = _rep_folder(work, "plain", rep)
    out.mkdir(exist_ok=True)
    started = time.perf_counter()
    n_series = 0
    for folder in sorted({p.parent for p in (work / "deid").rglob("*.dcm")}):
        for series_id in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)):
            names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id)
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(names)
            try:
                image = reader.Execute()
            except RuntimeError:  # the RTSTRUCT folder: no image
                continue
            sitk.WriteImage(image, str(out / f"{series_id}.nii.gz"), True)
            n_series += 1
    seconds = time.perf_counter() - started
    _drop_repeat(work, ("plain",), rep)
    return {
        "n_series": n_series,
        "seconds": round(seconds, 1),
        "series_per_minute": round(n_series / seconds * 60, 1),
        "peak_rss_mb": _peak_mb(),
        "note": "image series only: no RTSTRUCT masks, no geometry checks, no manifest",
    }


def phase_preprocess(work: Path, n_jobs: int, rep: int) -> dict:
    import pandas as pd

    from sabrkit.imaging import PreprocessConfig, preprocess_manifest

    manifest = pd.read_csv(work / "imaging" / "images.csv")
    started = time.perf_counter()
    table = preprocess_manifest(
        manifest,
        _rep_folder(work, f"preprocessed_{n_jobs}", rep),
        PreprocessConfig(),
        n_jobs=n_jobs,
        base_dir=work / "imaging",
    )
    seconds = time.perf_counter() - started
    _drop_repeat(work, (f"preprocessed_{n_jobs}",), rep)
    return {
        "n_jobs": n_jobs,
        "n_lesions": len(table),
        "seconds": round(seconds, 1),
        "series_per_minute": round(len(table) / seconds * 60, 1),
        "peak_rss_mb": _peak_mb(),
    }


def phase_unet(work: Path, minutes: float) -> dict:
    import numpy as np
    import pandas as pd
    import torch

    from sabrkit.imaging import UNetConfig, lesion_arrays, train_unet
    from sabrkit.imaging.unet_infer import dice_coefficient, largest_component, predict_mask

    config = UNetConfig(max_minutes=minutes, validate_every=10_000, n_threads=2)
    manifest = pd.read_csv(work / "preprocessed_2" / "images.csv")  # paths relative to that folder
    patients = sorted(manifest["study_id"].unique())
    held_out = set(
        np.random.default_rng(config.seed).choice(patients, size=round(0.2 * len(patients)), replace=False)
    )
    lesions = lesion_arrays(manifest, work / "preprocessed_2", config)
    train = [x for x in lesions if x["study_id"] not in held_out]
    test = [x for x in lesions if x["study_id"] in held_out]
    trained = train_unet(train, config, test)
    model = trained.model
    sliding, single, single_dice = [], [], []
    for lesion in test:
        started = time.perf_counter()
        predict_mask(model, lesion["image"], config)
        sliding.append(time.perf_counter() - started)
        shape = lesion["image"].shape[1:]
        padded_shape = [max(16 * int(np.ceil(s / 16)), p) for s, p in zip(shape, config.patch_size)]
        padded = np.pad(
            lesion["image"], [(0, 0)] + [(0, p - s) for p, s in zip(padded_shape, shape)], mode="edge"
        )
        started = time.perf_counter()
        with torch.no_grad():
            logits = model(torch.as_tensor(padded[None]))
        single.append(time.perf_counter() - started)
        mask = largest_component(logits.argmax(1)[0].numpy().astype(bool)[: shape[0], : shape[1], : shape[2]])
        single_dice.append(dice_coefficient(mask, lesion["label"][0] > 0))
    v = trained.validation
    return {
        "device": trained.device,
        "torch_threads": torch.get_num_threads(),
        "config": {
            "channels": list(config.channels),
            "strides": list(config.strides),
            "num_res_units": config.num_res_units,
            "patch_size": list(config.patch_size),
            "samples_per_lesion": config.samples_per_lesion,
            "batch_lesions": config.batch_lesions,
            "learning_rate": config.learning_rate,
        },
        "n_train_lesions": len(train),
        "n_held_out_lesions": len(test),
        "n_held_out_patients": len(held_out),
        "train_seconds": round(trained.seconds, 1),
        "epochs": len(trained.history),
        "held_out_mean_dice": round(v["mean_dice"], 4),
        "held_out_median_dice": round(v["median_dice"], 4),
        "held_out_min_dice": round(v["min_dice"], 4),
        "target_mean_dice": 0.80,
        "target_minutes": 10,
        "inference_sliding_window_median_seconds": round(statistics.median(sliding), 4),
        "inference_single_pass_median_seconds": round(statistics.median(single), 4),
        "single_pass_mean_dice": round(float(np.mean(single_dice)), 4),
        "sliding_over_single_time_ratio": round(statistics.median(sliding) / statistics.median(single), 2),
        "peak_rss_mb": _peak_mb(),
    }


def phase_semiauto(work: Path, rep: int) -> dict:
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk
    from scipy import ndimage as ndi

    from sabrkit.imaging import dice_coefficient, segment_from_seed

    cohort = work / "cohort"
    ours, plain, ours_s, plain_s, sites = [], [], [], [], []
    lesions = pd.read_csv(cohort / "registry" / "lesions.csv").set_index("lesion_id")
    for row in pd.read_csv(cohort / "images.csv").itertuples():
        image = sitk.ReadImage(str(cohort / row.image_path))
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(cohort / row.mask_path))) > 0
        depth = ndi.distance_transform_edt(truth, sampling=image.GetSpacing()[::-1])
        z, y, x = np.unravel_index(np.argmax(depth), truth.shape)
        seed = (int(x), int(y), int(z))
        started = time.perf_counter()
        found = sitk.GetArrayFromImage(segment_from_seed(image, seed)) > 0
        ours_s.append(time.perf_counter() - started)
        ours.append(dice_coefficient(found, truth))
        started = time.perf_counter()
        grown = sitk.ConfidenceConnected(
            image, seedList=[seed], numberOfIterations=3, multiplier=2.5, initialNeighborhoodRadius=1
        )
        plain_s.append(time.perf_counter() - started)
        plain.append(dice_coefficient(sitk.GetArrayFromImage(grown) > 0, truth))
        sites.append(lesions.loc[row.lesion_id, "site"])
    by_site = pd.DataFrame({"site": sites, "dice": ours}).groupby("site")["dice"].mean().round(3).to_dict()
    return {
        "n_lesions": len(ours),
        "seed_mean_dice": round(float(np.mean(ours)), 4),
        "seed_median_dice": round(float(np.median(ours)), 4),
        "target_mean_dice": 0.85,
        "seed_median_seconds": round(statistics.median(ours_s), 3),
        "seed_mean_dice_by_site": by_site,
        "plain_confidence_connected_mean_dice": round(float(np.mean(plain)), 4),
        "plain_confidence_connected_median_seconds": round(statistics.median(plain_s), 3),
        "peak_rss_mb": _peak_mb(),
    }


# --- memory: one 300-slice 512 x 512 CT series (+ RTSTRUCT), sabrkit vs the plain SimpleITK read -------------

MEMORY_SHAPE = (300, 512, 512)  # z, y, x
MEMORY_REPEATS = 3
MEMORY_HOSPITAL_NUMBER = "BENCH-0001"


def _rss_bytes() -> int:
    """Current resident set size of this process (VmRSS)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")  # pragma: no cover


def _peak_bytes() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def write_memory_series(folder: Path) -> None:
    """A synthetic 300 x 512 x 512 planning CT (1 mm slices) and an RTSTRUCT: a GTV, a lung, the cord."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    nz, ny, nx = MEMORY_SHAPE
    spacing, origin = (0.9765625, 0.9765625, 1.0), (-249.51171875, -249.51171875, -150.0)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    sops = [generate_uid() for _ in range(nz)]
    rng = np.random.default_rng(SEED)
    yy, xx = np.mgrid[0:ny, 0:nx]
    body = ((xx - nx / 2) / 230) ** 2 + ((yy - ny / 2) / 180) ** 2 < 1

    def base(sop_class: str, modality: str, series_uid: str) -> Dataset:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID = sop_class, ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta, ds.SOPClassUID, ds.Modality = meta, sop_class, modality
        ds.PatientID, ds.PatientName = MEMORY_HOSPITAL_NUMBER, "Bench^Patient"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series_uid, frame
        ds.StudyDate = "20250102"
        return ds

    (folder / "CT").mkdir(parents=True)
    for k in range(nz):
        ds = base("1.2.840.10008.5.1.4.1.1.2", "CT", series)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sops[k]
        ds.ImagePositionPatient = [origin[0], origin[1], origin[2] + k * spacing[2]]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [spacing[1], spacing[0]], spacing[2]
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = ny, nx, 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        hu = np.where(body, 40, -1000) + rng.normal(0, 20, (ny, nx))
        ds.PixelData = (hu + 1024).clip(0, 4095).astype("<u2").tobytes()
        ds.save_as(folder / "CT" / f"IM{k:04d}.dcm", enforce_file_format=True)
    rois = {"GTV-1": [], "Lung-Left": [], "Spinal-Cord": []}
    t = np.linspace(0, 2 * np.pi, 128, endpoint=False)
    for k in range(nz):
        z = origin[2] + k * spacing[2]
        if abs(k - 150) < 20:
            r = np.sqrt(20.0**2 - (k - 150) ** 2)
            rois["GTV-1"].append(
                (k, np.column_stack([40 + r * np.cos(t), -30 + r * np.sin(t), np.full(128, z)]))
            )
        if 50 <= k < 250:
            rois["Lung-Left"].append(
                (k, np.column_stack([90 + 70 * np.cos(t), -10 + 110 * np.sin(t), np.full(128, z)]))
            )
        rois["Spinal-Cord"].append(
            (k, np.column_stack([0 + 6 * np.cos(t), 120 + 5 * np.sin(t), np.full(128, z)]))
        )
    rs = base("1.2.840.10008.5.1.4.1.1.481.3", "RTSTRUCT", generate_uid())
    rs.SOPInstanceUID = rs.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    series_ref = Dataset()
    series_ref.SeriesInstanceUID = series
    study_ref = Dataset()
    study_ref.RTReferencedSeriesSequence = Sequence([series_ref])
    frame_ref = Dataset()
    frame_ref.FrameOfReferenceUID, frame_ref.RTReferencedStudySequence = frame, Sequence([study_ref])
    rs.ReferencedFrameOfReferenceSequence = Sequence([frame_ref])
    roi_items, contour_items = [], []
    for number, (name, contours) in enumerate(rois.items(), start=1):
        item = Dataset()
        item.ROINumber, item.ROIName, item.ReferencedFrameOfReferenceUID = number, name, frame
        roi_items.append(item)
        sequence = []
        for k, points in contours:
            contour = Dataset()
            image = Dataset()
            image.ReferencedSOPInstanceUID = sops[k]
            contour.ContourImageSequence = Sequence([image])
            contour.ContourGeometricType, contour.NumberOfContourPoints = "CLOSED_PLANAR", len(points)
            contour.ContourData = [round(float(v), 3) for v in points.reshape(-1)]
            sequence.append(contour)
        roi_contour = Dataset()
        roi_contour.ReferencedROINumber, roi_contour.ContourSequence = number, Sequence(sequence)
        contour_items.append(roi_contour)
    rs.StructureSetROISequence, rs.ROIContourSequence = Sequence(roi_items), Sequence(contour_items)
    (folder / "RS").mkdir()
    rs.save_as(folder / "RS" / "RS.dcm", enforce_file_format=True)


def phase_memory_sabrkit(work: Path) -> dict:
    """``ingest_folder`` on the 300-slice series: CT, one lesion and two OAR masks (fresh output folder)."""
    import shutil

    from sabrkit.imaging import IngestConfig, ingest_folder

    out = work / "memory_out"
    shutil.rmtree(out, ignore_errors=True)
    config = IngestConfig(patient_key={MEMORY_HOSPITAL_NUMBER: "SABR-RCC-900"})
    baseline = _rss_bytes()
    started = time.perf_counter()
    result = ingest_folder(work / "memory_series", out, config)
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "peak_rss_bytes": _peak_bytes(),
        "baseline_rss_bytes": baseline,
        "n_failures": len(result.failures),
        "n_masks": len(result.masks),
    }


def phase_memory_plain(work: Path) -> dict:
    """The plain alternative: SimpleITK ImageSeriesReader on the folder, then WriteImage (no masks)."""
    import SimpleITK as sitk

    out = work / "memory_plain.nii.gz"
    baseline = _rss_bytes()
    started = time.perf_counter()
    folder = str(work / "memory_series" / "CT")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder))
    sitk.WriteImage(reader.Execute(), str(out), True)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "peak_rss_bytes": _peak_bytes(), "baseline_rss_bytes": baseline}


def run_memory(work: Path) -> dict:
    """Three alternating repeats of each, every one in a fresh interpreter; medians and ratios."""
    import numpy as np

    if not (work / "memory_series").is_dir():
        write_memory_series(work / "memory_series")
    voxel_bytes = int(np.prod(MEMORY_SHAPE)) * 2  # int16 HU
    runs: dict[str, list[dict]] = {"sabrkit_ingest": [], "plain_simpleitk": []}
    for _ in range(MEMORY_REPEATS):
        runs["sabrkit_ingest"].append(_run_phase("memory_sabrkit", work))
        runs["plain_simpleitk"].append(_run_phase("memory_plain", work))

    def summary(rows: list[dict]) -> dict:
        peak = statistics.median(r["peak_rss_bytes"] for r in rows)
        base = statistics.median(r["baseline_rss_bytes"] for r in rows)
        return {
            "median_seconds": statistics.median(r["seconds"] for r in rows),
            "median_peak_rss_bytes": int(peak),
            "median_baseline_rss_bytes": int(base),
            "peak_rss_bytes_over_voxel_bytes": round(peak / voxel_bytes, 3),
            "peak_above_baseline_over_voxel_bytes": round((peak - base) / voxel_bytes, 3),
            "repeats": rows,
        }

    mine, plain = summary(runs["sabrkit_ingest"]), summary(runs["plain_simpleitk"])
    return {
        "what": "one synthetic CT series of 300 slices x 512 x 512 (int16 HU: voxel_bytes) + an RTSTRUCT with a GTV "
        "(40 slices), a lung (200 slices) and the spinal cord (300 slices). sabrkit_ingest = ingest_folder "
        "(crawl with SHA-256, geometry check, CT -> .nii.gz, 1 lesion + 2 OAR masks, manifests) in a fresh "
        "interpreter; plain_simpleitk = ImageSeriesReader + WriteImage of the CT only. peak_rss_bytes = the "
        "process's ru_maxrss (interpreter and imports included); baseline_rss_bytes = VmRSS after the imports, "
        "just before the work (the interpreter); each figure is the median of the repeats",
        "date": dt.date.today().isoformat(),
        "cpu_count": os.cpu_count(),
        "shape_zyx": list(MEMORY_SHAPE),
        "voxel_bytes": voxel_bytes,
        "repeats": MEMORY_REPEATS,
        "sabrkit_ingest": mine,
        "plain_simpleitk": plain,
        "ratios": {
            "sabrkit_peak_over_plain_peak": round(
                mine["median_peak_rss_bytes"] / plain["median_peak_rss_bytes"], 3
            ),
            "sabrkit_seconds_over_plain_seconds": round(mine["median_seconds"] / plain["median_seconds"], 3),
        },
        "target": "peak_rss_bytes / voxel_bytes <= 2 (issue 14)",
        "target_met": mine["peak_rss_bytes_over_voxel_bytes"] <= 2,
    }


MEMORY_PHASES: dict[str, Callable[[Path], dict]] = {
    "memory_sabrkit": phase_memory_sabrkit,
    "memory_plain": phase_memory_plain,
}
# Each repeated phase gets (work folder, repeat number, settings); the first repeat's outputs feed the next
# phases, later repeats write beside them and remove their outputs.
PHASES: dict[str, Callable[[Path, int, argparse.Namespace], dict]] = {
    "export": lambda w, rep, a: phase_export(w, rep, a.patients),
    "ingest": lambda w, rep, a: phase_ingest(w, rep),
    "plain_ingest": lambda w, rep, a: phase_plain_ingest(w, rep),
    "preprocess_1": lambda w, rep, a: phase_preprocess(w, 1, rep),
    "preprocess_2": lambda w, rep, a: phase_preprocess(w, 2, rep),
    "unet": lambda w, rep, a: phase_unet(w, a.unet_minutes),
    "semiauto": lambda w, rep, a: phase_semiauto(w, rep),
}


def _run_phase(name: str, work: Path, rep: int = 0, args: argparse.Namespace | None = None) -> dict:
    load_before = os.getloadavg()[0]
    settings = (
        [] if args is None else ["--patients", str(args.patients), "--unet-minutes", str(args.unet_minutes)]
    )
    completed = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--work", str(work), "--repeat", str(rep), *settings],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["load_average_1min_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


def _summarise_phase(runs: list[dict]) -> dict:
    """Median, min and max over the repeats of every number a phase reports, beside the runs."""
    numbers = [
        key
        for key, value in runs[0].items()
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and key != "load_average_1min_before_after"
    ]
    return {**{key: spread(run[key] for run in runs) for key in numbers}, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phase", choices=sorted({*PHASES, *MEMORY_PHASES}))
    parser.add_argument("--work", type=Path)
    parser.add_argument("--repeat", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--patients", type=int, default=N_PATIENTS, help="synthetic patients (default 100)")
    parser.add_argument(
        "--unet-minutes", type=float, default=10.0, help="U-Net training budget per repeat (default 10)"
    )
    parser.add_argument(
        "--repeats",
        type=lambda text: check_repeats(int(text)),
        default=DEFAULT_REPEATS,
        help="repeats of every phase (default 3)",
    )
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only the 300-slice memory measurement; merged into the JSON as 'memory_300_slices'",
    )
    args = parser.parse_args()
    if args.phase:
        import logging

        logging.basicConfig(level=logging.WARNING)
        if args.phase in MEMORY_PHASES:
            print(json.dumps(MEMORY_PHASES[args.phase](args.work)))
        else:
            print(json.dumps(PHASES[args.phase](args.work, args.repeat, args)))
        return
    existing = json.loads(RESULT.read_text()) if RESULT.is_file() else {}
    if args.memory_only:
        load_before = load_average()
        with tempfile.TemporaryDirectory(prefix="sabrkit-bench-memory-") as tmp:
            memory = run_memory(args.work or Path(tmp))
        memory["load_average_before"] = load_before
        memory["load_average_after"] = load_average()
        existing["memory_300_slices"] = memory
        existing.setdefault("notes", {})["memory_300_slices"] = MEMORY_NOTE
        RESULT.parent.mkdir(exist_ok=True)
        RESULT.write_text(json.dumps(existing, indent=2) + "\n")
        print(json.dumps(memory, indent=2))
        return
    summary = run_phases(args)
    if "memory_300_slices" in existing:  # measured on its own (--memory-only); kept with its own date
        summary["memory_300_slices"] = existing["memory_300_slices"]
        summary["notes"]["memory_300_slices"] = MEMORY_NOTE
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


MEMORY_NOTE = (
    "measured by `benchmarks/imaging.py --memory-only` on its own date (memory_300_slices.date); every "
    "other figure in this file comes from the repeated run dated in 'date'"
)


def run_phases(args: argparse.Namespace) -> dict:
    """Every phase ``args.repeats`` times (whole pipeline per repeat), then medians and spreads."""
    import torch

    from sabrkit.version import __version__

    load_before = load_average()
    runs: dict[str, list[dict]] = {name: [] for name in PHASES}
    with tempfile.TemporaryDirectory(prefix="sabrkit-bench-imaging-") as tmp:
        work = args.work or Path(tmp)
        for rep in range(args.repeats):
            for name in PHASES:
                started = time.perf_counter()
                runs[name].append(_run_phase(name, work, rep, args))
                print(
                    f"{name} #{rep}: {time.perf_counter() - started:.0f} s {runs[name][-1]}", file=sys.stderr
                )
    results = {name: _summarise_phase(phase_runs) for name, phase_runs in runs.items()}

    def median(phase: str, key: str) -> float:
        return float(results[phase][key]["median"])

    return {
        "date": dt.date.today().isoformat(),
        "cpu_count": os.cpu_count(),
        "gpu": "none: no GPU in this session (torch.cuda.is_available() is False); U-Net timings are CPU only"
        if not torch.cuda.is_available()
        else torch.cuda.get_device_name(0),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "machine": stdlib_platform.platform(),
        "versions": {"sabrkit": __version__, "torch": torch.__version__},
        "repeats": args.repeats,
        "n_patients": args.patients,
        "unet_minutes": args.unet_minutes,
        "phases": results,
        "ratios": {
            "ingest_vs_plain_series_per_minute": round(
                median("ingest", "series_per_minute") / median("plain_ingest", "series_per_minute"), 3
            ),
            "preprocess_2_vs_1_jobs_speedup": round(
                median("preprocess_1", "seconds") / median("preprocess_2", "seconds"), 2
            ),
            "ingest_plus_preprocess_series_per_minute": round(
                median("ingest", "n_series")
                / (median("ingest", "seconds") + median("preprocess_2", "seconds"))
                * 60,
                1,
            ),
        },
        "notes": {
            "what": f"{args.patients} SYNTHETIC patients (sabrkit.synthetic phantoms, seed {SEED}); every Dice "
            "figure is on synthetic phantoms against their known masks, not on patient CT. Each repeat runs "
            "the whole pipeline in fresh subprocesses; every number in a phase is given as median, min and "
            "max over the repeats (runs keep each repeat). export = synthesize + DICOM write + "
            "de-identification + PHI check (each timed on its own); ingest seconds = ingest_folder of the "
            "de-identified export (plus its no-change re-run, timed apart); plain_ingest = SimpleITK series "
            "read + NIfTI write of the image series only; preprocess = preprocess_manifest of the first "
            "repeat's manifest; unet = one training of the default UNetConfig within unet_minutes on 2 "
            "threads per repeat (same seed; epochs differ with the machine's load), held-out Dice on 20 % of "
            "the patients, inference medians over the held-out lesions; semiauto = seed segmentation of every "
            "lesion, Dice and median seconds per lesion.",
            "workload": "shrunk from 100 patients and a 10-minute U-Net budget when n_patients / unet_minutes "
            "say so, to fit 3 repeats of every phase in the session's time on 2 shared cores; the U-Net "
            "target (mean Dice >= 0.80 after 10 minutes on 100 patients) is only judged at those settings.",
            "load": "the machine is shared: see load_average_* (whole run) and each run's "
            "load_average_1min_before_after.",
        },
    }


if __name__ == "__main__":
    main()
