"""Biobank: accession (check-character IDs, SPREC), aliquots and lineage, storage, chain of custody,
consent and withdrawal, shipments, labels, assay results and MIABIS-shaped exports."""

from sabrkit.biobank.accession import (
    AccessionId,
    accession_check_char,
    make_accession_id,
    parse_accession_id,
    specimen_code,
    validate_accession_id,
)
from sabrkit.biobank.aliquots import (
    aliquot_sample,
    consume_sample,
    derive_sample,
    dispose_sample,
    lineage,
    pool_samples,
)
from sabrkit.biobank.assays import assay_feature_table, assay_results_table, import_assay_results
from sabrkit.biobank.consent import (
    WithdrawalSummary,
    add_consent_form,
    consented_study_ids,
    record_consent,
    require_consent,
    withdraw_consent,
)
from sabrkit.biobank.custody import CustodyRecord, custody_history, freeze_thaw_count
from sabrkit.biobank.errors import PositionOccupiedError, QuantityError, SampleStateError
from sabrkit.biobank.exports import donor_table, export_biobank, sample_table
from sabrkit.biobank.labels import LAYOUTS, LabelLayout, LabelRecord, label_records, write_label_sheet, zpl_labels
from sabrkit.biobank.load import SampleLoadSummary, accession_sample, load_samples, validate_sample_file
from sabrkit.biobank.tables import (
    AssayResult,
    Consent,
    ConsentForm,
    CustodyEvent,
    DisposalTask,
    Sample,
    SampleDerivation,
    SamplePosition,
    Shipment,
    ShipmentItem,
    StorageUnit,
)
from sabrkit.biobank.samples import SampleIntake, accession_samples, get_sample
from sabrkit.biobank.shipments import (
    add_to_shipment,
    create_shipment,
    receive_shipment,
    ship,
    shipment_manifest,
    write_manifest_csv,
    write_manifest_pdf,
)
from sabrkit.biobank.sprec import SPREC_VERSION, Centrifugation, Preanalytics, derive_sprec
from sabrkit.biobank.storage import (
    BoxMap,
    box_map,
    create_storage,
    find_samples,
    locate,
    move_sample,
    place_sample,
    thaw_sample,
)
from sabrkit.biobank.vocabulary import (
    CONSENT_SCOPES,
    CUSTODY_EVENT_TYPES,
    SAMPLE_STATUSES,
    SPECIMEN_CODES,
    SPECIMEN_TYPES,
    TIMEPOINTS,
)

__all__ = [
    "Sample", "SampleDerivation", "StorageUnit", "SamplePosition", "CustodyEvent", "ConsentForm", "Consent",
    "DisposalTask", "Shipment", "ShipmentItem", "AssayResult",
    "AccessionId", "accession_check_char", "make_accession_id", "parse_accession_id", "validate_accession_id",
    "specimen_code",
    "SampleIntake", "accession_samples", "accession_sample", "get_sample", "load_samples", "validate_sample_file",
    "SampleLoadSummary",
    "SPREC_VERSION", "Centrifugation", "Preanalytics", "derive_sprec",
    "aliquot_sample", "derive_sample", "pool_samples", "consume_sample", "dispose_sample", "lineage",
    "create_storage", "place_sample", "move_sample", "thaw_sample", "locate", "find_samples", "box_map", "BoxMap",
    "CustodyRecord", "custody_history", "freeze_thaw_count",
    "add_consent_form", "record_consent", "withdraw_consent", "WithdrawalSummary", "consented_study_ids",
    "require_consent",
    "create_shipment", "add_to_shipment", "ship", "receive_shipment", "shipment_manifest", "write_manifest_csv",
    "write_manifest_pdf",
    "LAYOUTS", "LabelLayout", "LabelRecord", "label_records", "write_label_sheet", "zpl_labels",
    "import_assay_results", "assay_results_table", "assay_feature_table",
    "sample_table", "donor_table", "export_biobank",
    "PositionOccupiedError", "QuantityError", "SampleStateError",
    "SPECIMEN_CODES", "SPECIMEN_TYPES", "TIMEPOINTS", "SAMPLE_STATUSES", "CUSTODY_EVENT_TYPES", "CONSENT_SCOPES",
]
