"""Biobank: accession (check-character IDs, SPREC), aliquots and lineage, storage, chain of custody,
consent and withdrawal, shipments, labels, assay results and MIABIS-shaped exports."""

from sabrkit.biobank.accession import (
    ACCESSION_PATTERN,
    ACCESSION_PREFIX,
    MAX_SERIAL,
    AccessionId,
    accession_check_char,
    make_accession_id,
    parse_accession_id,
    specimen_code,
    validate_accession_id,
)
from sabrkit.biobank.accession import __all__ as _accession_all
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
    check_scope,
    consented_study_ids,
    open_disposal_tasks_for_withdrawn,
    record_consent,
    refuse_after_withdrawal,
    require_consent,
    withdraw_consent,
    withdrawn_consent,
)
from sabrkit.biobank.consent import __all__ as _consent_all
from sabrkit.biobank.custody import CustodyRecord, custody_history, freeze_thaw_count
from sabrkit.biobank.errors import (
    DuplicateAccessionError,
    PositionOccupiedError,
    QuantityError,
    SampleStateError,
)
from sabrkit.biobank.exports import donor_table, export_biobank, sample_table
from sabrkit.biobank.labels import (
    LAYOUTS,
    LabelLayout,
    LabelRecord,
    label_records,
    write_label_sheet,
    zpl_labels,
)
from sabrkit.biobank.load import SampleLoadSummary, accession_sample, load_samples, validate_sample_file
from sabrkit.biobank.samples import SampleIntake, accession_samples, get_sample
from sabrkit.biobank.shipments import (
    MANIFEST_COLUMNS,
    add_to_shipment,
    create_shipment,
    receive_shipment,
    ship,
    shipment_manifest,
    write_manifest_csv,
    write_manifest_pdf,
)
from sabrkit.biobank.shipments import __all__ as _shipments_all
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
from sabrkit.biobank.tables import (
    ACCESSION_ID_LENGTH,
    AssayResult,
    BiobankCounter,
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
from sabrkit.biobank.tables import __all__ as _tables_all
from sabrkit.biobank.vocabulary import (
    CONSENT_SCOPES,
    CUSTODY_EVENT_TYPES,
    SAMPLE_STATUSES,
    SPECIMEN_CODES,
    SPECIMEN_TYPES,
    TIMEPOINTS,
)

# Whole submodule lists are taken from the submodule's own __all__ (listed once, there).
__all__ = [
    *_tables_all,
    *_accession_all,
    "SampleIntake",
    "accession_samples",
    "accession_sample",
    "get_sample",
    "load_samples",
    "validate_sample_file",
    "SampleLoadSummary",
    "SPREC_VERSION",
    "Centrifugation",
    "Preanalytics",
    "derive_sprec",
    "aliquot_sample",
    "derive_sample",
    "pool_samples",
    "consume_sample",
    "dispose_sample",
    "lineage",
    "create_storage",
    "place_sample",
    "move_sample",
    "thaw_sample",
    "locate",
    "find_samples",
    "box_map",
    "BoxMap",
    "CustodyRecord",
    "custody_history",
    "freeze_thaw_count",
    *_consent_all,
    *_shipments_all,
    "LAYOUTS",
    "LabelLayout",
    "LabelRecord",
    "label_records",
    "write_label_sheet",
    "zpl_labels",
    "import_assay_results",
    "assay_results_table",
    "assay_feature_table",
    "sample_table",
    "donor_table",
    "export_biobank",
    "PositionOccupiedError",
    "DuplicateAccessionError",
    "QuantityError",
    "SampleStateError",
    "SPECIMEN_CODES",
    "SPECIMEN_TYPES",
    "TIMEPOINTS",
    "SAMPLE_STATUSES",
    "CUSTODY_EVENT_TYPES",
    "CONSENT_SCOPES",
]
