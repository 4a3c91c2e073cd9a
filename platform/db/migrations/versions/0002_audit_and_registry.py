"""Audit log (append-only, hash-chained) and the registry's clinical detail.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-12

* ``audit_log``: one row per insert/update/delete of an audited row (``sabrkit.audit``);
  a trigger refuses UPDATE and DELETE on it (SQLite: ``RAISE(ABORT)``; PostgreSQL: a PL/pgSQL
  function, also on TRUNCATE).
* registry: ``patients`` gains KPS, prior systemic lines and the number of metastases;
  ``lesions`` gains organ and the DICOM study UID; ``adverse_events`` gains resolution date and
  lesion, and its grade may be NULL (not yet graded); new tables ``eligibility``,
  ``systemic_therapy_lines``, ``tumour_assessments``, ``lesion_assessments`` and ``off_study``.

``patients`` is referenced by every registry and biobank table, so on SQLite its new columns
are added with ``ALTER TABLE ADD COLUMN`` (named column CHECK constraints), never by copying
the table; ``adverse_events`` (referenced by no table) is rebuilt in batch mode.

Written by hand; ``tests/db/test_db_migrations.py`` checks that the schema matches the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_APPEND_ONLY = "audit_log is append-only: entries are never updated or deleted"

_SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END""",
    f"""CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END""",
)
_POSTGRES_TRIGGERS = (
    f"""CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{_APPEND_ONLY} (% refused)', TG_OP; END $$""",
    """CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
)


def _audit_log_upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("row_key", sa.String(255), nullable=False),
        sa.Column("old_values", sa.Text(), nullable=True),
        sa.Column("new_values", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("entry_hash", name=op.f("uq_audit_log_entry_hash")),
        sa.CheckConstraint("action IN ('insert', 'update', 'delete')", name=op.f("ck_audit_log_action_code")),
    )
    op.create_index("ix_audit_log_table_name_row_key", "audit_log", ["table_name", "row_key"])
    dialect = op.get_bind().dialect.name
    for statement in (
        _SQLITE_TRIGGERS if dialect == "sqlite" else _POSTGRES_TRIGGERS if dialect == "postgresql" else ()
    ):
        op.execute(statement)


def _audit_log_downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update_delete ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_index("ix_audit_log_table_name_row_key", table_name="audit_log")
    op.drop_table("audit_log")


_PATIENT_COLUMNS = (
    ("kps", "kps_range", "kps BETWEEN 0 AND 100 AND kps % 10 = 0"),
    ("prior_systemic_lines", "prior_systemic_lines_nonnegative", "prior_systemic_lines >= 0"),
    ("n_metastases", "n_metastases_positive", "n_metastases >= 1"),
)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _study_id_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["study_id"], ["patients.study_id"], name=op.f(f"fk_{table}_study_id_patients"), onupdate="CASCADE"
    )


def _registry_upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for column, name, rule in _PATIENT_COLUMNS:
            op.execute(
                f"ALTER TABLE patients ADD COLUMN {column} INTEGER CONSTRAINT ck_patients_{name} CHECK ({rule})"
            )
    else:
        for column, name, rule in _PATIENT_COLUMNS:
            op.add_column("patients", sa.Column(column, sa.Integer(), nullable=True))
            op.create_check_constraint(op.f(f"ck_patients_{name}"), "patients", rule)
    op.add_column("lesions", sa.Column("organ", sa.String(64), nullable=True))
    op.add_column("lesions", sa.Column("study_uid", sa.String(64), nullable=True))
    with op.batch_alter_table("adverse_events") as batch:
        batch.alter_column("grade", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("resolution_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("lesion_id", sa.String(40), nullable=True))
        batch.create_foreign_key(
            op.f("fk_adverse_events_lesion_id_lesions"),
            "lesions",
            ["lesion_id"],
            ["lesion_id"],
            onupdate="CASCADE",
        )
        batch.create_check_constraint(
            op.f("ck_adverse_events_resolution_after_onset"),
            "resolution_date IS NULL OR resolution_date >= onset_date",
        )
    op.create_table(
        "eligibility",
        sa.Column("study_id", sa.String(32), nullable=False),
        sa.Column("assessed_on", sa.Date(), nullable=False),
        sa.Column("rcc_confirmed", sa.Boolean(), nullable=False),
        sa.Column("one_to_five_metastases", sa.Boolean(), nullable=False),
        sa.Column("all_lesions_treatable", sa.Boolean(), nullable=False),
        sa.Column("ecog_0_to_2", sa.Boolean(), nullable=False),
        sa.Column("informed_consent", sa.Boolean(), nullable=False),
        sa.Column("mdt_decision", sa.String(20), nullable=False),
        sa.Column("mdt_note", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("study_id", name=op.f("pk_eligibility")),
        _study_id_fk("eligibility"),
        sa.CheckConstraint(
            _in("mdt_decision", ("sabr_all_lesions", "not_for_sabr")),
            name=op.f("ck_eligibility_mdt_decision_code"),
        ),
    )
    op.create_table(
        "systemic_therapy_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.String(32), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("agent", sa.String(100), nullable=False),
        sa.Column("therapy_class", sa.String(8), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("stop_date", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_systemic_therapy_lines")),
        _study_id_fk("systemic_therapy_lines"),
        sa.UniqueConstraint(
            "study_id", "line_number", name=op.f("uq_systemic_therapy_lines_study_id_line_number")
        ),
        sa.CheckConstraint("line_number >= 1", name=op.f("ck_systemic_therapy_lines_line_number_positive")),
        sa.CheckConstraint(
            _in("therapy_class", ("tki", "ici", "tki_ici")),
            name=op.f("ck_systemic_therapy_lines_therapy_class_code"),
        ),
        sa.CheckConstraint(
            "stop_date IS NULL OR stop_date >= start_date",
            name=op.f("ck_systemic_therapy_lines_stop_after_start"),
        ),
    )
    op.create_index(op.f("ix_systemic_therapy_lines_study_id"), "systemic_therapy_lines", ["study_id"])
    op.create_table(
        "tumour_assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.String(32), nullable=False),
        sa.Column("assessment_date", sa.Date(), nullable=False),
        sa.Column("visit_number", sa.Integer(), nullable=True),
        sa.Column("modality", sa.String(10), nullable=False),
        sa.Column("overall_response", sa.String(2), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tumour_assessments")),
        _study_id_fk("tumour_assessments"),
        sa.UniqueConstraint(
            "study_id", "assessment_date", name=op.f("uq_tumour_assessments_study_id_assessment_date")
        ),
        sa.CheckConstraint(
            _in("overall_response", ("CR", "PR", "SD", "PD", "NE")),
            name=op.f("ck_tumour_assessments_overall_response_code"),
        ),
        sa.CheckConstraint(
            _in("modality", ("ct", "mri", "pet_ct", "bone_scan", "other")),
            name=op.f("ck_tumour_assessments_modality_code"),
        ),
    )
    op.create_index(op.f("ix_tumour_assessments_study_id"), "tumour_assessments", ["study_id"])
    op.create_table(
        "lesion_assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lesion_id", sa.String(40), nullable=False),
        sa.Column("assessment_date", sa.Date(), nullable=False),
        sa.Column("local_status", sa.String(16), nullable=False),
        sa.Column("longest_diameter_mm", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lesion_assessments")),
        sa.ForeignKeyConstraint(
            ["lesion_id"],
            ["lesions.lesion_id"],
            name=op.f("fk_lesion_assessments_lesion_id_lesions"),
            onupdate="CASCADE",
        ),
        sa.UniqueConstraint(
            "lesion_id", "assessment_date", name=op.f("uq_lesion_assessments_lesion_id_assessment_date")
        ),
        sa.CheckConstraint(
            _in("local_status", ("controlled", "local_failure", "not_evaluable")),
            name=op.f("ck_lesion_assessments_local_status_code"),
        ),
        sa.CheckConstraint(
            "longest_diameter_mm > 0", name=op.f("ck_lesion_assessments_longest_diameter_positive")
        ),
    )
    op.create_index(op.f("ix_lesion_assessments_lesion_id"), "lesion_assessments", ["lesion_id"])
    op.create_table(
        "off_study",
        sa.Column("study_id", sa.String(32), nullable=False),
        sa.Column("off_study_date", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(24), nullable=False),
        sa.PrimaryKeyConstraint("study_id", name=op.f("pk_off_study")),
        _study_id_fk("off_study"),
        sa.CheckConstraint(
            _in(
                "reason",
                (
                    "completed",
                    "death",
                    "withdrew_consent",
                    "lost_to_follow_up",
                    "investigator_decision",
                    "other",
                ),
            ),
            name=op.f("ck_off_study_reason_code"),
        ),
    )


def _registry_downgrade() -> None:
    op.drop_table("off_study")
    op.drop_index(op.f("ix_lesion_assessments_lesion_id"), table_name="lesion_assessments")
    op.drop_table("lesion_assessments")
    op.drop_index(op.f("ix_tumour_assessments_study_id"), table_name="tumour_assessments")
    op.drop_table("tumour_assessments")
    op.drop_index(op.f("ix_systemic_therapy_lines_study_id"), table_name="systemic_therapy_lines")
    op.drop_table("systemic_therapy_lines")
    op.drop_table("eligibility")
    with op.batch_alter_table("adverse_events") as batch:
        batch.drop_constraint(op.f("ck_adverse_events_resolution_after_onset"), type_="check")
        batch.drop_constraint(op.f("fk_adverse_events_lesion_id_lesions"), type_="foreignkey")
        batch.drop_column("lesion_id")
        batch.drop_column("resolution_date")
        batch.alter_column("grade", existing_type=sa.Integer(), nullable=False)
    op.drop_column("lesions", "study_uid")
    op.drop_column("lesions", "organ")
    if op.get_bind().dialect.name == "sqlite":
        for column, _, _ in reversed(_PATIENT_COLUMNS):
            op.execute(f"ALTER TABLE patients DROP COLUMN {column}")
    else:
        for column, name, _ in reversed(_PATIENT_COLUMNS):
            op.drop_constraint(op.f(f"ck_patients_{name}"), "patients", type_="check")
            op.drop_column("patients", column)


def upgrade() -> None:
    _audit_log_upgrade()
    _registry_upgrade()


def downgrade() -> None:
    _registry_downgrade()
    _audit_log_downgrade()
