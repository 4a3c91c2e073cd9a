"""Biobank: preanalytics and SPREC on samples, lineage, storage, custody, consent, shipments, assays.

Revision ID: 0003
Revises: 0002
Create Date: 2026-01-12

* ``samples``: kind, processing times and conditions, SPREC code and version, quantity with unit
  and remaining quantity (``volume_ml`` becomes ``quantity`` in mL), ``unscheduled`` timepoint,
  new specimen types (buffy coat, DNA, RNA, cfDNA), new statuses (``shipped`` -> ``in_transit``,
  ``destroyed`` -> ``disposed``).
* new tables: ``sample_derivations``, ``storage_units``, ``sample_positions`` (one sample per
  position: ``UNIQUE(box_id, row, col)``), ``custody_events`` (append-only: triggers refuse
  UPDATE and DELETE), ``consent_forms``, ``consents``, ``disposal_tasks``, ``shipments``,
  ``shipment_items``, ``assay_results``, ``biobank_counters`` (accession serials per specimen
  code, started from the serials already used).

Written by hand; ``tests/db/test_db_migrations.py`` checks that the schema matches the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMEPOINTS = (
    "baseline",
    "end_of_sabr",
    "month_1",
    "month_3",
    "month_6",
    "month_12",
    "month_24",
    "progression",
    "unscheduled",
)
_OLD_TIMEPOINTS = _TIMEPOINTS[:-1]
_SPECIMEN_TYPES = (
    "whole_blood",
    "plasma",
    "serum",
    "buffy_coat",
    "pbmc",
    "urine",
    "ffpe",
    "fresh_frozen_tissue",
    "dna",
    "rna",
    "cfdna",
)
_OLD_SPECIMEN_TYPES = ("plasma", "serum", "whole_blood", "pbmc", "urine", "fresh_frozen_tissue", "ffpe")
_STATUSES = (
    "received",
    "stored",
    "in_use",
    "in_transit",
    "at_destination",
    "depleted",
    "consumed",
    "disposed",
)
_OLD_STATUSES = ("received", "stored", "in_use", "depleted", "shipped", "destroyed")
_TEMPERATURES = ("room_temperature", "refrigerated", "body")
_EVENTS = (
    "collected",
    "received",
    "processed",
    "aliquoted",
    "frozen",
    "thawed",
    "moved",
    "shipped",
    "received_at_destination",
    "consumed",
    "disposed",
)
_SCOPES = ("storage", "future_research", "genetic_research", "image_linkage")
_CODES = {
    "plasma": "PL",
    "serum": "SE",
    "whole_blood": "WB",
    "pbmc": "PB",
    "urine": "UR",
    "fresh_frozen_tissue": "FF",
    "ffpe": "FP",
}

_APPEND_ONLY = "custody_events is append-only: record a new event instead"
_SQLITE_TRIGGERS = (
    f"CREATE TRIGGER custody_events_no_update BEFORE UPDATE ON custody_events "
    f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END",
    f"CREATE TRIGGER custody_events_no_delete BEFORE DELETE ON custody_events "
    f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END",
)
_POSTGRES_TRIGGERS = (
    f"CREATE FUNCTION custody_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{_APPEND_ONLY} (% refused)', TG_OP; END $$",
    "CREATE TRIGGER custody_events_no_update_delete BEFORE UPDATE OR DELETE ON custody_events "
    "FOR EACH ROW EXECUTE FUNCTION custody_events_append_only()",
)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    target_table = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_{table}_{column}_{target_table}"))


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


_NEW_SAMPLE_COLUMNS = (
    ("kind", sa.String(12), False, "primary"),
    ("received_at", sa.DateTime(), True, None),
    ("processed_at", sa.DateTime(), True, None),
    ("frozen_at", sa.DateTime(), True, None),
    ("primary_container", sa.String(3), True, None),
    ("pre_centrifugation_temperature", sa.String(20), True, None),
    ("centrifugation_g", sa.Float(), True, None),
    ("centrifugation_minutes", sa.Float(), True, None),
    ("centrifugation_temperature", sa.String(20), True, None),
    ("centrifugation_braking", sa.Boolean(), True, None),
    ("second_centrifugation_g", sa.Float(), True, None),
    ("second_centrifugation_minutes", sa.Float(), True, None),
    ("second_centrifugation_temperature", sa.String(20), True, None),
    ("second_centrifugation_braking", sa.Boolean(), True, None),
    ("post_centrifugation_temperature", sa.String(20), True, None),
    ("storage_container", sa.String(32), True, None),
    ("storage_temperature_c", sa.Float(), True, None),
    ("sprec_code", sa.String(32), True, None),
    ("sprec_version", sa.String(8), True, None),
    ("quantity", sa.Float(), True, None),
    ("remaining_quantity", sa.Float(), True, None),
    ("quantity_unit", sa.String(8), False, "mL"),
)


def _upgrade_samples() -> None:
    with op.batch_alter_table("samples") as batch:
        for name, type_, nullable, default in _NEW_SAMPLE_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=nullable, server_default=default))
        for name in ("timepoint_code", "specimen_type_code", "status_code", "volume_positive"):
            batch.drop_constraint(op.f(f"ck_samples_{name}"), type_="check")
    op.execute("UPDATE samples SET quantity = volume_ml, remaining_quantity = volume_ml")
    op.execute(
        "UPDATE samples SET quantity_unit = 'count' WHERE specimen_type IN ('ffpe', 'fresh_frozen_tissue')"
    )
    op.execute("UPDATE samples SET status = 'in_transit' WHERE status = 'shipped'")
    op.execute("UPDATE samples SET status = 'disposed' WHERE status = 'destroyed'")
    checks = {
        "timepoint_code": _in("timepoint", _TIMEPOINTS),
        "specimen_type_code": _in("specimen_type", _SPECIMEN_TYPES),
        "kind_code": _in("kind", ("primary", "aliquot", "derivative", "pool")),
        "status_code": _in("status", _STATUSES),
        "quantity_unit_code": _in("quantity_unit", ("mL", "ug", "count")),
        "quantity_positive": "quantity > 0",
        "remaining_within_quantity": "remaining_quantity >= 0 AND remaining_quantity <= quantity",
        "processed_after_collected": "processed_at IS NULL OR processed_at >= collected_at",
        "pre_temperature_code": _in("pre_centrifugation_temperature", _TEMPERATURES),
        "post_temperature_code": _in("post_centrifugation_temperature", _TEMPERATURES),
    }
    with op.batch_alter_table("samples") as batch:
        batch.drop_column("volume_ml")
        for name, condition in checks.items():
            batch.create_check_constraint(op.f(f"ck_samples_{name}"), condition)


def _downgrade_samples() -> None:
    with op.batch_alter_table("samples") as batch:
        batch.add_column(sa.Column("volume_ml", sa.Float(), nullable=True))
        for name in (
            "timepoint_code",
            "specimen_type_code",
            "kind_code",
            "status_code",
            "quantity_unit_code",
            "quantity_positive",
            "remaining_within_quantity",
            "processed_after_collected",
            "pre_temperature_code",
            "post_temperature_code",
        ):
            batch.drop_constraint(op.f(f"ck_samples_{name}"), type_="check")
    op.execute("UPDATE samples SET volume_ml = quantity WHERE quantity_unit = 'mL'")
    op.execute("UPDATE samples SET status = 'shipped' WHERE status IN ('in_transit', 'at_destination')")
    op.execute("UPDATE samples SET status = 'destroyed' WHERE status IN ('disposed', 'consumed')")
    with op.batch_alter_table("samples") as batch:
        for name, _, _, _ in _NEW_SAMPLE_COLUMNS:
            batch.drop_column(name)
        batch.create_check_constraint(op.f("ck_samples_timepoint_code"), _in("timepoint", _OLD_TIMEPOINTS))
        batch.create_check_constraint(
            op.f("ck_samples_specimen_type_code"), _in("specimen_type", _OLD_SPECIMEN_TYPES)
        )
        batch.create_check_constraint(op.f("ck_samples_status_code"), _in("status", _OLD_STATUSES))
        batch.create_check_constraint(op.f("ck_samples_volume_positive"), "volume_ml > 0")


def _create_tables() -> None:
    op.create_table(
        "sample_derivations",
        _id(),
        sa.Column("parent_id", sa.Integer(), nullable=False),
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.Column("quantity_taken", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_derivations")),
        _fk("sample_derivations", "parent_id", "samples.id"),
        _fk("sample_derivations", "child_id", "samples.id"),
        sa.UniqueConstraint("parent_id", "child_id", name=op.f("uq_sample_derivations_parent_id_child_id")),
        sa.CheckConstraint("quantity_taken > 0", name=op.f("ck_sample_derivations_quantity_taken_positive")),
        sa.CheckConstraint("parent_id <> child_id", name=op.f("ck_sample_derivations_not_own_parent")),
    )
    op.create_index(op.f("ix_sample_derivations_parent_id"), "sample_derivations", ["parent_id"])
    op.create_index(op.f("ix_sample_derivations_child_id"), "sample_derivations", ["child_id"])
    op.create_table(
        "storage_units",
        _id(),
        sa.Column("path", sa.String(200), nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("n_rows", sa.Integer(), nullable=True),
        sa.Column("n_columns", sa.Integer(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storage_units")),
        _fk("storage_units", "parent_id", "storage_units.id"),
        sa.UniqueConstraint("path", name=op.f("uq_storage_units_path")),
        sa.CheckConstraint(
            _in("level", ("freezer", "shelf", "rack", "box")), name=op.f("ck_storage_units_level_code")
        ),
        sa.CheckConstraint(
            "(level = 'box' AND n_rows BETWEEN 1 AND 26 AND n_columns BETWEEN 1 AND 99) OR "
            "(level <> 'box' AND n_rows IS NULL AND n_columns IS NULL)",
            name=op.f("ck_storage_units_box_geometry"),
        ),
        sa.CheckConstraint(
            "(level = 'freezer') = (parent_id IS NULL)", name=op.f("ck_storage_units_only_freezers_at_top")
        ),
    )
    op.create_index(op.f("ix_storage_units_parent_id"), "storage_units", ["parent_id"])
    op.create_table(
        "sample_positions",
        _id(),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("box_id", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("col", sa.Integer(), nullable=False),
        sa.Column("placed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_positions")),
        _fk("sample_positions", "sample_id", "samples.id"),
        _fk("sample_positions", "box_id", "storage_units.id"),
        sa.UniqueConstraint("sample_id", name=op.f("uq_sample_positions_sample_id")),
        sa.UniqueConstraint("box_id", "row", "col", name=op.f("uq_sample_positions_box_id_row_col")),
        sa.CheckConstraint("row >= 1 AND col >= 1", name=op.f("ck_sample_positions_position_positive")),
    )
    op.create_index(op.f("ix_sample_positions_box_id"), "sample_positions", ["box_id"])
    op.create_table(
        "shipments",
        _id(),
        sa.Column("shipment_code", sa.String(20), nullable=False),
        sa.Column("destination", sa.String(200), nullable=False),
        sa.Column("purpose_scope", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10), server_default="draft", nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("courier", sa.String(100), nullable=True),
        sa.Column("shipped_at", sa.DateTime(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
        sa.UniqueConstraint("shipment_code", name=op.f("uq_shipments_shipment_code")),
        sa.CheckConstraint(
            _in("status", ("draft", "shipped", "received")), name=op.f("ck_shipments_status_code")
        ),
        sa.CheckConstraint(_in("purpose_scope", _SCOPES), name=op.f("ck_shipments_purpose_scope_code")),
    )
    op.create_table(
        "shipment_items",
        _id(),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipment_items")),
        _fk("shipment_items", "shipment_id", "shipments.id"),
        _fk("shipment_items", "sample_id", "samples.id"),
        sa.UniqueConstraint("shipment_id", "sample_id", name=op.f("uq_shipment_items_shipment_id_sample_id")),
    )
    op.create_index(op.f("ix_shipment_items_shipment_id"), "shipment_items", ["shipment_id"])
    op.create_index(op.f("ix_shipment_items_sample_id"), "shipment_items", ["sample_id"])
    op.create_table(
        "custody_events",
        _id(),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(24), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("operator", sa.String(128), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("shipment_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_events")),
        _fk("custody_events", "sample_id", "samples.id"),
        _fk("custody_events", "shipment_id", "shipments.id"),
        sa.CheckConstraint(_in("event_type", _EVENTS), name=op.f("ck_custody_events_event_type_code")),
    )
    op.create_index(op.f("ix_custody_events_sample_id"), "custody_events", ["sample_id"])
    op.create_table(
        "consent_forms",
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_consent_forms")),
    )
    op.create_table(
        "consents",
        _id(),
        sa.Column("study_id", sa.String(32), nullable=False),
        sa.Column("form_version", sa.String(16), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        *(sa.Column(scope, sa.Boolean(), nullable=False) for scope in _SCOPES),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
        sa.Column("withdrawal_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["patients.study_id"],
            name=op.f("fk_consents_study_id_patients"),
            onupdate="CASCADE",
        ),
        _fk("consents", "form_version", "consent_forms.version"),
        sa.UniqueConstraint("study_id", "form_version", name=op.f("uq_consents_study_id_form_version")),
    )
    op.create_index(op.f("ix_consents_study_id"), "consents", ["study_id"])
    op.create_table(
        "disposal_tasks",
        _id(),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("consent_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(8), server_default="open", nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("completed_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disposal_tasks")),
        _fk("disposal_tasks", "sample_id", "samples.id"),
        _fk("disposal_tasks", "consent_id", "consents.id"),
        sa.CheckConstraint(_in("status", ("open", "done")), name=op.f("ck_disposal_tasks_status_code")),
    )
    op.create_index(op.f("ix_disposal_tasks_sample_id"), "disposal_tasks", ["sample_id"])
    op.create_table(
        "assay_results",
        _id(),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("analyte", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("method", sa.String(100), nullable=False),
        sa.Column("batch", sa.String(64), nullable=False),
        sa.Column("lod", sa.Float(), nullable=True),
        sa.Column("below_lod", sa.Boolean(), nullable=False),
        sa.Column("measured_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assay_results")),
        _fk("assay_results", "sample_id", "samples.id"),
        sa.CheckConstraint("lod IS NULL OR lod >= 0", name=op.f("ck_assay_results_lod_nonnegative")),
    )
    op.create_index(op.f("ix_assay_results_sample_id"), "assay_results", ["sample_id"])
    op.create_table(
        "biobank_counters",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_biobank_counters")),
    )


def _start_counters() -> None:
    bind = op.get_bind()
    for code in _CODES.values():
        highest = bind.execute(
            sa.text(
                "SELECT MAX(CAST(substr(accession_id, 9, 6) AS INTEGER)) FROM samples WHERE substr(accession_id, 6, 2) = :code"
            ),
            {"code": code},
        ).scalar()
        if highest:
            bind.execute(
                sa.text("INSERT INTO biobank_counters (name, value) VALUES (:name, :value)"),
                {"name": f"accession:{code}", "value": int(highest)},
            )


def upgrade() -> None:
    _upgrade_samples()
    _create_tables()
    _start_counters()
    dialect = op.get_bind().dialect.name
    for statement in (
        _SQLITE_TRIGGERS if dialect == "sqlite" else _POSTGRES_TRIGGERS if dialect == "postgresql" else ()
    ):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS custody_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS custody_events_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS custody_events_no_update_delete ON custody_events")
        op.execute("DROP FUNCTION IF EXISTS custody_events_append_only()")
    for table in (
        "biobank_counters",
        "assay_results",
        "disposal_tasks",
        "consents",
        "consent_forms",
        "custody_events",
        "shipment_items",
        "shipments",
        "sample_positions",
        "storage_units",
        "sample_derivations",
    ):
        op.drop_table(table)
    _downgrade_samples()
