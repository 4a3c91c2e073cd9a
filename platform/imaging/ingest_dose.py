"""The dose part of :func:`sabrkit.imaging.ingest.ingest_folder`: RTDOSE/RTPLAN onto the CT grid.

For every RTDOSE of the crawled folder: link it to its RTPLAN, the plan to its RTSTRUCT and the
dose to the ingested CT series sharing its frame of reference
(:func:`sabrkit.imaging.rtdose.link_dose_objects`); read it in Gy (``DoseGridScaling``,
``DoseUnits GY``, physical dose); resample it onto the CT grid (trilinear) and write
``dose/<study_id>/RTDOSE_<SOP instance UID>.nii.gz`` (float32, Gy). Each lesion contoured on
that CT gets one row of ``dose.csv`` (:data:`DOSE_COLUMNS`) with its prescription, fractions
and the share of its mask inside the dose grid (a re-run reuses a dose NIfTI whose RTDOSE
file and CT image did not change: ``dose/.dose_state.json``); a lesion not fully covered, and every dose
object that cannot be read or linked, is one failure row naming it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from sabrkit.errors import CaseFailure, SabrkitError, format_problem

__all__ = ["DOSE_COLUMNS", "MIN_COVERAGE", "ingest_doses"]

logger = logging.getLogger(__name__)

#: Columns of the ingest ``dose.csv`` (one row per lesion with a planned dose).
DOSE_COLUMNS: tuple[str, ...] = (
    "lesion_id",
    "study_id",
    "series_uid",
    "rtdose_uid",
    "rtplan_uid",
    "dose_path",
    "prescription_gy",
    "fractions",
    "dose_type",
    "coverage",
)
#: Share of a lesion's mask voxels that must lie inside the dose grid.
MIN_COVERAGE = 0.999
_RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"


def ingest_doses(
    files: Iterable[Any], lesions: pd.DataFrame, series: pd.DataFrame, out: Path
) -> tuple[pd.DataFrame, list[CaseFailure]]:
    """Resample every linked RTDOSE onto its CT and describe the lesions it covers (module docstring).

    Parameters
    ----------
    files : iterable of DicomFile
        The crawled DICOM files (:func:`sabrkit.imaging.crawl_dicom`).
    lesions, series : pandas.DataFrame
        The ingest's lesion manifest and series table (paths relative to ``out``).
    out : Path
        The ingest output folder.

    Returns
    -------
    (pandas.DataFrame, list of CaseFailure)
        ``dose.csv`` rows and the failures.
    """
    import SimpleITK as sitk

    from sabrkit.imaging.io import write_image
    from sabrkit.imaging.rtdose import (
        RT_DOSE_SOP_CLASS,
        RT_PLAN_SOP_CLASS,
        dose_coverage,
        link_dose_objects,
        read_rtdose,
        resample_dose,
    )

    records = list(files)
    doses = sorted(r.path for r in records if r.sop_class_uid == RT_DOSE_SOP_CLASS)
    plans = sorted(r.path for r in records if r.sop_class_uid == RT_PLAN_SOP_CLASS)
    structs = {r.sop_instance_uid: r.path for r in records if r.sop_class_uid == _RTSTRUCT}
    ok_series = series[series["image_path"].astype(str).str.len() > 0]
    series_of_frame = {
        str(f): str(u)
        for f, u in zip(ok_series["frame_of_reference_uid"], ok_series["series_uid"])
        if isinstance(f, str) and f
    }
    links, failures = link_dose_objects(doses, plans, structs, series_of_frame)
    sha_of = {r.path: r.sha256 for r in records}
    state_path = out / "dose" / ".dose_state.json"
    try:
        state: dict[str, str] = json.loads(state_path.read_text()) if state_path.is_file() else {}
    except (OSError, ValueError):
        state = {}
    new_state: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for link in links:
        row = ok_series[ok_series["series_uid"] == link.series_uid].iloc[0]
        try:
            dose, facts = read_rtdose(link.dose_path)
            relative = f"dose/{row['study_id']}/RTDOSE_{link.dose_uid}.nii.gz"
            ct_stat = (out / row["image_path"]).stat()
            key = f"{sha_of.get(link.dose_path, '')}|{ct_stat.st_size}|{ct_stat.st_mtime_ns}"
            if (
                state.get(relative) != key or not (out / relative).is_file()
            ):  # else: same dose, same CT: reuse
                on_ct = resample_dose(dose, sitk.ReadImage(str(out / row["image_path"])))
                write_image(on_ct, out / relative)
            new_state[relative] = key
        except SabrkitError as exc:
            failures.append(CaseFailure(f"RTDOSE {link.dose_path}", "dose", f"{type(exc).__name__}: {exc}"))
            continue
        mine = lesions[lesions["series_uid"] == link.series_uid]
        if mine.empty:
            failures.append(
                CaseFailure(
                    f"RTDOSE {link.dose_path}",
                    "dose",
                    format_problem(
                        f"no lesion contour on CT series {link.series_uid}",
                        "a dose is joined to the lesions of its CT",
                        "export the RTSTRUCT with the lesion's GTV",
                    ),
                )
            )
        for lesion in mine.itertuples(index=False):
            mask = sitk.ReadImage(str(out / lesion.mask_path))
            coverage = dose_coverage(dose, mask)
            if coverage < MIN_COVERAGE:
                failures.append(
                    CaseFailure(
                        lesion.lesion_id,
                        "dose",
                        format_problem(
                            f"only {coverage:.1%} of lesion {lesion.lesion_id} lies inside dose grid {link.dose_uid}",
                            f"at least {MIN_COVERAGE:.1%} of a lesion must be covered by its dose grid",
                            "export the dose grid over the whole target (or a larger calculation volume)",
                        ),
                    )
                )
            rows.append(
                {
                    "lesion_id": lesion.lesion_id,
                    "study_id": row["study_id"],
                    "series_uid": link.series_uid,
                    "rtdose_uid": link.dose_uid,
                    "rtplan_uid": link.plan.sop_instance_uid,
                    "dose_path": relative,
                    "prescription_gy": link.plan.total_dose_gy,
                    "fractions": link.plan.fractions,
                    "dose_type": facts["dose_type"],
                    "coverage": round(coverage, 6),
                }
            )
    for relative in set(state) - set(new_state):  # the RTDOSE is gone or failed: drop its old output
        (out / relative).unlink(missing_ok=True)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(new_state, indent=1, sort_keys=True) + "\n")
    table = (
        pd.DataFrame(rows, columns=list(DOSE_COLUMNS))
        .sort_values("lesion_id", kind="stable")
        .reset_index(drop=True)
    )
    logger.info(
        "dose ingest: %d RTDOSE linked, %d lesion row(s), %d failure(s)",
        len(links),
        len(table),
        len(failures),
    )
    return table, failures
