"""Read a REDCap-style export (one row per record and event) as registry files.

The export is REDCap's "CSV (raw data)" of the study project: ``record_id`` (the study ID),
``redcap_event_name``, ``redcap_repeat_instrument`` and ``redcap_repeat_instance``, then the
fields. :data:`REDCAP_EVENTS` and :data:`REPEAT_INSTRUMENTS` are the project's data
dictionary (field -> registry column; most fields carry the registry column's own name, yes/no
fields are REDCap's 1/0):

======================== ==================================================================
event / instrument       registry file (fields)
======================== ==================================================================
``enrolment_arm_1``      ``patients.csv``, ``identifiers.csv`` and ``eligibility.csv``
                         (``elig_*`` fields, ``mdt_decision``, ``mdt_note``)
``month_<n>_arm_1``      ``visits.csv`` (visit *n* = month *n*, 0-24: ``visit_date``,
                         ``vrs_pain``, ``tess_score``) and, when ``assessment_date`` is filled,
                         ``tumour_assessments.csv`` (``modality``, ``overall_response``)
``end_of_study_arm_1``   ``progression_events.csv`` (``progression_date``, ``progression_type``),
                         ``deaths.csv`` (``death_date``, ``death_cause``), ``off_study.csv``
                         (``off_study_date``, ``off_study_reason``); ``last_contact_date``
instrument ``lesion``    ``lesions.csv`` + ``sabr_courses.csv`` (one course per lesion; the
                         lesion ID is ``<record_id>-L<lesion_number>``)
``systemic_therapy``     ``systemic_therapy_lines.csv`` (line = repeat instance)
``adverse_event``        ``adverse_events.csv`` (``ae_*`` fields; ``ae_lesion_number``)
``lesion_assessment``    ``lesion_assessments.csv`` (``la_*`` fields)
======================== ==================================================================

The patient's last contact is the latest of ``last_contact_date`` (enrolment or end-of-study
event) and the dates of the record's visits, assessments, adverse-event onsets and progression
(a REDCap project rarely keeps it up to date by hand); a death may come later.

Every problem is reported in the export's own coordinates: the row of the export file and the
REDCap field name (``redcap.csv:ae_grade``).
"""

from __future__ import annotations

import re
from pathlib import Path

from sabrkit.db.csv_import import RawRow, read_raw_rows, row_error
from sabrkit.errors import RowError
from sabrkit.registry.load import RegistrySource

__all__ = ["REDCAP_EVENTS", "REPEAT_INSTRUMENTS", "read_redcap_export", "REDCAP_ID_FIELDS"]

REDCAP_ID_FIELDS = ("record_id", "redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance")

_PATIENT = (
    "mdt_date",
    "enrolment_date",
    "age_years",
    "sex",
    "ecog",
    "kps",
    "histology",
    "imdc_risk",
    "prior_nephrectomy",
    "disease_state",
    "systemic_therapy",
    "prior_systemic_lines",
    "n_metastases",
    "last_contact_date",
)
_IDENTIFIERS = ("hospital_number", "family_name", "given_name", "date_of_birth")
_ELIGIBILITY = {
    "elig_assessed_on": "assessed_on",
    "elig_rcc_confirmed": "rcc_confirmed",
    "elig_one_to_five_metastases": "one_to_five_metastases",
    "elig_all_lesions_treatable": "all_lesions_treatable",
    "elig_ecog_0_to_2": "ecog_0_to_2",
    "elig_informed_consent": "informed_consent",
    "mdt_decision": "mdt_decision",
    "mdt_note": "mdt_note",
}

#: Non-repeating events: event name pattern -> {registry file: {REDCap field: registry column}}.
REDCAP_EVENTS: dict[str, dict[str, dict[str, str]]] = {
    "enrolment_arm_1": {
        "patients.csv": {field: field for field in _PATIENT},
        "identifiers.csv": {field: field for field in _IDENTIFIERS},
        "eligibility.csv": _ELIGIBILITY,
    },
    "month_<n>_arm_1": {
        "visits.csv": {"visit_date": "visit_date", "vrs_pain": "vrs_pain", "tess_score": "tess_score"},
        "tumour_assessments.csv": {
            "assessment_date": "assessment_date",
            "modality": "modality",
            "overall_response": "overall_response",
        },
    },
    "end_of_study_arm_1": {
        "progression_events.csv": {"progression_date": "event_date", "progression_type": "progression_type"},
        "deaths.csv": {"death_date": "death_date", "death_cause": "cause"},
        "off_study.csv": {"off_study_date": "off_study_date", "off_study_reason": "reason"},
    },
}
#: Repeating instruments: name -> {registry file: {REDCap field: registry column}}.
REPEAT_INSTRUMENTS: dict[str, dict[str, dict[str, str]]] = {
    "lesion": {
        "lesions.csv": {
            f: f
            for f in (
                "lesion_number",
                "site",
                "organ",
                "longest_diameter_mm",
                "series_uid",
                "study_uid",
                "roi_name",
            )
        },
        "sabr_courses.csv": {
            f: f
            for f in ("total_dose_gy", "fractions", "start_date", "end_date", "technique", "alpha_beta_gy")
        },
    },
    "systemic_therapy": {
        "systemic_therapy_lines.csv": {
            "agent": "agent",
            "therapy_class": "therapy_class",
            "therapy_start_date": "start_date",
            "therapy_stop_date": "stop_date",
        },
    },
    "adverse_event": {
        "adverse_events.csv": {
            "ae_term": "term",
            "ae_grade": "grade",
            "ae_ctcae_version": "ctcae_version",
            "ae_onset_date": "onset_date",
            "ae_resolution_date": "resolution_date",
            "ae_attribution": "attribution_sabr",
            "ae_lesion_number": "lesion_id",
        },
    },
    "lesion_assessment": {
        "lesion_assessments.csv": {
            "la_lesion_number": "lesion_id",
            "la_date": "assessment_date",
            "la_local_status": "local_status",
            "la_longest_diameter_mm": "longest_diameter_mm",
        },
    },
}
#: Fields whose dates show the patient was in contact (the last contact is their latest).
_CONTACT_FIELDS = (
    "last_contact_date",
    "visit_date",
    "assessment_date",
    "la_date",
    "ae_onset_date",
    "progression_date",
)
_ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_MONTH_EVENT = re.compile(r"^month_([0-9]{1,2})_arm_1$")
#: Files whose rows only exist when one of these fields is filled (optional parts of an event).
_TRIGGER = {
    "identifiers.csv": "hospital_number",
    "sabr_courses.csv": "total_dose_gy",
    "eligibility.csv": "elig_assessed_on",
    "tumour_assessments.csv": "assessment_date",
    "progression_events.csv": "progression_date",
    "deaths.csv": "death_date",
    "off_study.csv": "off_study_date",
}


def _known_fields() -> set[str]:
    fields = set(REDCAP_ID_FIELDS)
    for groups in (*REDCAP_EVENTS.values(), *REPEAT_INSTRUMENTS.values()):
        for mapping in groups.values():
            fields.update(mapping)
    return fields


def _event_files(event: str, instrument: str) -> tuple[dict[str, dict[str, str]] | None, str | None]:
    if instrument:
        return REPEAT_INSTRUMENTS.get(instrument), None
    match = _MONTH_EVENT.match(event)
    if match:
        return REDCAP_EVENTS["month_<n>_arm_1"], match.group(1)
    return REDCAP_EVENTS.get(event), None


def _header_errors(label: str, header: list[str]) -> list[RowError]:
    """Fields the data dictionary does not know, and required fields the header lacks."""
    known = _known_fields()
    errors = [
        row_error(label, 1, column, column, "unknown REDCap field (not in sabrkit's data dictionary)")
        for column in header
        if column not in known
    ]
    errors += [
        row_error(label, 1, column, None, "required REDCap field is missing from the header")
        for column in ("record_id", "redcap_event_name")
        if column not in header
    ]
    return errors


def _registry_cells(
    name: str,
    mapping: dict[str, str],
    values: dict[str, str],
    month: str | None,
    field_of: dict[tuple[str, str], str],
) -> dict[str, str]:
    """One export row's cells of registry file ``name``; records in ``field_of`` where each came from."""
    record = values.get("record_id", "")
    cells = {column: values[field] for field, column in mapping.items() if field in values}
    for field, column in mapping.items():
        field_of[(name, column)] = field
    cells["study_id"] = record
    field_of[(name, "study_id")] = "record_id"
    if month is not None and name == "visits.csv":
        cells["visit_number"] = str(int(month))
        field_of[(name, "visit_number")] = "redcap_event_name"
    if month is not None and name == "tumour_assessments.csv":
        cells["visit_number"] = str(int(month))
    if name in ("lesions.csv", "sabr_courses.csv"):
        cells["lesion_id"] = f"{record}-L{values.get('lesion_number', '?')}"
        field_of[(name, "lesion_id")] = "lesion_number"
    if "lesion_id" in cells and name in ("adverse_events.csv", "lesion_assessments.csv"):
        cells["lesion_id"] = f"{record}-L{cells['lesion_id']}"
    if name == "lesion_assessments.csv":
        cells.pop("study_id")
    if name == "systemic_therapy_lines.csv":
        cells["line_number"] = values.get("redcap_repeat_instance", "")
        field_of[(name, "line_number")] = "redcap_repeat_instance"
    if name == "adverse_events.csv":
        cells.setdefault("ctcae_version", "5.0")
    return cells


def read_redcap_export(path: Path, encoding: str | None = None) -> RegistrySource:
    """Turn a REDCap raw-data export into registry files, keeping the export's row numbers.

    Returns
    -------
    RegistrySource
        Validate it with :func:`sabrkit.registry.load.validate_source`; its errors name the
        export's rows and REDCap fields.
    """
    path = Path(path)
    label = path.name
    header, raw_rows, read_errors = read_raw_rows(path, encoding)
    errors = [row_error(label, e.row, "(row)", e.value, e.rule) for e in read_errors]
    errors += _header_errors(label, header)
    files: dict[str, list[RawRow]] = {}
    field_of: dict[tuple[str, str], str] = {}  # (registry file, column) -> REDCap field
    last_contact: dict[str, str] = {}
    patient_rows: dict[str, RawRow] = {}
    for raw in raw_rows:
        values = raw.values
        record = values.get("record_id", "")
        for field in _CONTACT_FIELDS:
            day = values.get(field, "")
            if _ISO_DAY.match(day) and day > last_contact.get(record, ""):
                last_contact[record] = day
        event = values.get("redcap_event_name", "")
        instrument = values.get("redcap_repeat_instrument", "")
        groups, month = _event_files(event, instrument)
        if groups is None:
            what = f"repeat instrument {instrument!r}" if instrument else f"event {event!r}"
            errors.append(
                row_error(
                    label,
                    raw.row,
                    "redcap_repeat_instrument" if instrument else "redcap_event_name",
                    instrument or event,
                    f"unknown {what} in sabrkit's REDCap project",
                )
            )
            continue
        for name, mapping in groups.items():
            trigger = _TRIGGER.get(name)
            if trigger is not None and trigger not in values:
                continue
            if name == "visits.csv" and "visit_date" not in values:
                continue
            row = RawRow(raw.row, _registry_cells(name, mapping, values, month, field_of))
            files.setdefault(name, []).append(row)
            if name == "patients.csv":
                patient_rows[record] = row
    for record, value in last_contact.items():
        if record in patient_rows:
            patient_rows[record].values["last_contact_date"] = value

    def relabel(error: RowError) -> RowError:
        name, _, column = error.column.partition(":")
        if name == label:
            return error
        return RowError(error.row, f"{label}:{field_of.get((name, column), column)}", error.value, error.rule)

    return RegistrySource(
        name=str(path),
        rows=files,
        errors=errors,
        relabel=relabel,
        order=lambda error: (error.row, error.column),
    )
