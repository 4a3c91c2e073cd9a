"""Benchmark: DICOM ingest + preprocessing of 100 synthetic patients, the lesion U-Net, semi-automatic segmentation.

One run, on one synthetic cohort (100 patients, written to a temporary folder), each phase in a fresh
subprocess so its peak resident memory (process + its children, ``ru_maxrss``) is its own:

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

No GPU is available in this session; the JSON says so. Run: ``.venv/bin/python benchmarks/imaging.py``
(about 30 minutes on 2 busy cores) -> ``benchmarks/results/imaging.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform as stdlib_platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def phase_export(work: Path) -> dict:
    import pandas as pd

    from sabrkit.imaging import DeidConfig, check_deidentified_folder, deidentify_folder
    from sabrkit.synthetic import SynthConfig, synthesize
    from sabrkit.synthetic.dicom import write_cohort_dicom

    started = time.perf_counter()
    cohort = synthesize(work / "cohort", SynthConfig(n_patients=N_PATIENTS, seed=SEED))
    synth_s = time.perf_counter() - started
    started = time.perf_counter()
    summary = write_cohort_dicom(cohort, work / "export", follow_up_truth_dir=work / "truth")
    dicom_s = time.perf_counter() - started
    keys = pd.read_csv(cohort / "registry" / "identifiers.csv", dtype=str)
    started = time.perf_counter()
    deid = deidentify_folder(work / "export", work / "deid",
                             DeidConfig(secret=SECRET, pseudonym_of=dict(zip(keys["hospital_number"], keys["study_id"]))))
    deid_s = time.perf_counter() - started
    needles = [*keys["hospital_number"], *(keys["family_name"] + "^" + keys["given_name"]),
               *keys["date_of_birth"].str.replace("-", "")]
    started = time.perf_counter()
    findings = check_deidentified_folder(work / "deid", identifiers=needles)
    check_s = time.perf_counter() - started
    return {
        "n_patients": N_PATIENTS, "n_lesions": int(len(pd.read_csv(cohort / "images.csv"))),
        "synthesize_seconds": round(synth_s, 1), "dicom_write_seconds": round(dicom_s, 1),
        "n_image_series": summary.n_image_series, "n_rtstruct": summary.n_rtstruct, "n_files": summary.n_files,
        "export_mb": round(summary.n_bytes / 1e6, 1),
        "deidentify_seconds": round(deid_s, 1), "deidentify_files_per_second": round(deid.n_written / deid_s, 1),
        "deidentify_failures": len(deid.failures), "phi_check_seconds": round(check_s, 1),
        "phi_findings": len(findings), "peak_rss_mb": _peak_mb(),
    }


def phase_ingest(work: Path) -> dict:
    from sabrkit.imaging import ingest_folder

    started = time.perf_counter()
    result = ingest_folder(work / "deid", work / "imaging")
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    again = ingest_folder(work / "deid", work / "imaging")
    rerun_s = time.perf_counter() - started
    n_series = len(result.series)
    return {
        "n_series": n_series, "n_lesion_masks": len(result.lesions), "n_failures": len(result.failures),
        "seconds": round(first_s, 1), "series_per_minute": round(n_series / first_s * 60, 1),
        "rerun_seconds": round(rerun_s, 2), "rerun_units_done": again.n_units_done,
        "rerun_fraction_of_first": round(rerun_s / first_s, 3), "peak_rss_mb": _peak_mb(),
    }


def phase_plain_ingest(work: Path) -> dict:
    """What a user writes without sabrkit: GDCM series discovery per folder, read, write NIfTI."""
    import SimpleITK as sitk

    out = work / "plain"
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
    return {"n_series": n_series, "seconds": round(seconds, 1), "series_per_minute": round(n_series / seconds * 60, 1),
            "peak_rss_mb": _peak_mb(), "note": "image series only: no RTSTRUCT masks, no geometry checks, no manifest"}


def phase_preprocess(work: Path, n_jobs: int) -> dict:
    import pandas as pd

    from sabrkit.imaging import PreprocessConfig, preprocess_manifest

    manifest = pd.read_csv(work / "imaging" / "images.csv")
    started = time.perf_counter()
    table = preprocess_manifest(manifest, work / f"preprocessed_{n_jobs}", PreprocessConfig(), n_jobs=n_jobs,
                                base_dir=work / "imaging")
    seconds = time.perf_counter() - started
    return {"n_jobs": n_jobs, "n_lesions": len(table), "seconds": round(seconds, 1),
            "series_per_minute": round(len(table) / seconds * 60, 1), "peak_rss_mb": _peak_mb()}


def phase_unet(work: Path, minutes: float) -> dict:
    import numpy as np
    import pandas as pd
    import torch

    from sabrkit.imaging import UNetConfig, lesion_arrays, train_unet
    from sabrkit.imaging.unet_infer import dice_coefficient, largest_component, predict_mask

    config = UNetConfig(max_minutes=minutes, validate_every=10_000, n_threads=2)
    manifest = pd.read_csv(work / "preprocessed_2" / "images.csv")  # paths relative to that folder
    patients = sorted(manifest["study_id"].unique())
    held_out = set(np.random.default_rng(config.seed).choice(patients, size=round(0.2 * len(patients)), replace=False))
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
        padded = np.pad(lesion["image"], [(0, 0)] + [(0, p - s) for p, s in zip(padded_shape, shape)], mode="edge")
        started = time.perf_counter()
        with torch.no_grad():
            logits = model(torch.as_tensor(padded[None]))
        single.append(time.perf_counter() - started)
        mask = largest_component(logits.argmax(1)[0].numpy().astype(bool)[: shape[0], : shape[1], : shape[2]])
        single_dice.append(dice_coefficient(mask, lesion["label"][0] > 0))
    v = trained.validation
    return {
        "device": trained.device, "torch_threads": torch.get_num_threads(), "config": {
            "channels": list(config.channels), "strides": list(config.strides), "num_res_units": config.num_res_units,
            "patch_size": list(config.patch_size), "samples_per_lesion": config.samples_per_lesion,
            "batch_lesions": config.batch_lesions, "learning_rate": config.learning_rate},
        "n_train_lesions": len(train), "n_held_out_lesions": len(test), "n_held_out_patients": len(held_out),
        "train_seconds": round(trained.seconds, 1), "epochs": len(trained.history),
        "held_out_mean_dice": round(v["mean_dice"], 4), "held_out_median_dice": round(v["median_dice"], 4),
        "held_out_min_dice": round(v["min_dice"], 4), "target_mean_dice": 0.80, "target_minutes": 10,
        "inference_sliding_window_median_seconds": round(statistics.median(sliding), 4),
        "inference_single_pass_median_seconds": round(statistics.median(single), 4),
        "single_pass_mean_dice": round(float(np.mean(single_dice)), 4),
        "sliding_over_single_time_ratio": round(statistics.median(sliding) / statistics.median(single), 2),
        "peak_rss_mb": _peak_mb(),
    }


def phase_semiauto(work: Path) -> dict:
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
        grown = sitk.ConfidenceConnected(image, seedList=[seed], numberOfIterations=3, multiplier=2.5,
                                         initialNeighborhoodRadius=1)
        plain_s.append(time.perf_counter() - started)
        plain.append(dice_coefficient(sitk.GetArrayFromImage(grown) > 0, truth))
        sites.append(lesions.loc[row.lesion_id, "site"])
    by_site = pd.DataFrame({"site": sites, "dice": ours}).groupby("site")["dice"].mean().round(3).to_dict()
    return {
        "n_lesions": len(ours), "seed_mean_dice": round(float(np.mean(ours)), 4),
        "seed_median_dice": round(float(np.median(ours)), 4), "target_mean_dice": 0.85,
        "seed_median_seconds": round(statistics.median(ours_s), 3), "seed_mean_dice_by_site": by_site,
        "plain_confidence_connected_mean_dice": round(float(np.mean(plain)), 4),
        "plain_confidence_connected_median_seconds": round(statistics.median(plain_s), 3),
        "peak_rss_mb": _peak_mb(),
    }


PHASES = {
    "export": phase_export, "ingest": phase_ingest, "plain_ingest": phase_plain_ingest,
    "preprocess_1": lambda w: phase_preprocess(w, 1), "preprocess_2": lambda w: phase_preprocess(w, 2),
    "unet": lambda w: phase_unet(w, float(os.environ.get("SABRKIT_BENCH_UNET_MINUTES", "10"))),
    "semiauto": phase_semiauto,
}


def _run_phase(name: str, work: Path) -> dict:
    load_before = os.getloadavg()[0]
    completed = subprocess.run([sys.executable, __file__, "--phase", name, "--work", str(work)], check=True,
                               capture_output=True, text=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["load_average_1min_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phase", choices=sorted(PHASES))
    parser.add_argument("--work", type=Path)
    parser.add_argument("--only", nargs="*", default=None, help="run these phases (work folder must hold earlier ones)")
    args = parser.parse_args()
    if args.phase:
        import logging

        logging.basicConfig(level=logging.WARNING)
        print(json.dumps(PHASES[args.phase](args.work)))
        return
    import torch

    from sabrkit.version import __version__

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sabrkit-bench-imaging-") as tmp:
        work = args.work or Path(tmp)
        done_file = work / "phase_results.json"  # earlier phases of an interrupted run (with --work and --only)
        results = json.loads(done_file.read_text()) if args.only and done_file.is_file() else {}
        for name in args.only or list(PHASES):
            started = time.perf_counter()
            results[name] = _run_phase(name, work)
            done_file.write_text(json.dumps(results, indent=2))
            print(f"{name}: {time.perf_counter() - started:.0f} s {results[name]}", file=sys.stderr)
    ingest, plain = results.get("ingest"), results.get("plain_ingest")
    pre1, pre2 = results.get("preprocess_1"), results.get("preprocess_2")
    summary = {
        "date": dt.date.today().isoformat(),
        "cpu_count": os.cpu_count(),
        "gpu": "none: no GPU in this session (torch.cuda.is_available() is False); U-Net timings are CPU only"
        if not torch.cuda.is_available() else torch.cuda.get_device_name(0),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "machine": stdlib_platform.platform(),
        "versions": {"sabrkit": __version__, "torch": torch.__version__},
        "phases": results,
        "ratios": {
            "ingest_vs_plain_series_per_minute": round(ingest["series_per_minute"] / plain["series_per_minute"], 3)
            if ingest and plain else None,
            "preprocess_2_vs_1_jobs_speedup": round(pre1["seconds"] / pre2["seconds"], 2) if pre1 and pre2 else None,
            "ingest_plus_preprocess_series_per_minute": round(
                ingest["n_series"] / (ingest["seconds"] + pre2["seconds"]) * 60, 1) if ingest and pre2 else None,
        },
    }
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
