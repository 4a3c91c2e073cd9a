"""Consent and withdrawal: a withdrawn participant's samples appear in no export, releasing one
fails with a ConsentError naming the consent, disposal tasks are opened, the audit log shows it."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from biobank_helpers import add_samples
from sqlalchemy import select

from sabrkit.audit import AuditLogEntry, verify_audit
from sabrkit.biobank import (
    add_consent_form,
    add_to_shipment,
    consented_study_ids,
    create_shipment,
    create_storage,
    export_biobank,
    import_assay_results,
    place_sample,
    receive_shipment,
    record_consent,
    ship,
    shipment_manifest,
    withdraw_consent,
    write_manifest_csv,
    write_manifest_pdf,
)
from sabrkit.biobank.tables import DisposalTask, Sample
from sabrkit.db import Database
from sabrkit.errors import ConsentError, NotFoundError

ALL_SCOPES = ["storage", "future_research", "genetic_research", "image_linkage"]


@pytest.fixture
def consented_db(enrolled_db: Database) -> Database:
    add_consent_form(enrolled_db, "1.0", "SABR RCC biobank consent", date(2024, 1, 1), operator="coordinator")
    add_consent_form(
        enrolled_db, "2.0", "SABR RCC biobank consent (genetics)", date(2024, 6, 1), operator="coordinator"
    )
    record_consent(enrolled_db, "SABR-RCC-001", "1.0", date(2024, 5, 6), ALL_SCOPES, operator="coordinator")
    record_consent(
        enrolled_db,
        "SABR-RCC-002",
        "1.0",
        date(2024, 5, 6),
        ["storage", "future_research"],
        operator="coordinator",
    )
    record_consent(enrolled_db, "SABR-RCC-003", "1.0", date(2024, 5, 6), ALL_SCOPES, operator="coordinator")
    return enrolled_db


def _assay_csv(path: Path, accession_ids: list[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["accession_id", "analyte", "value", "unit", "method", "batch", "lod", "measured_on"])
        for accession_id in accession_ids:
            writer.writerow([accession_id, "IL6", "4.2", "pg/mL", "ELISA", "B1", "1.0", "2024-08-01"])
    return path


def test_scopes_and_versions(consented_db: Database):
    assert consented_study_ids(consented_db, "future_research") == {
        "SABR-RCC-001",
        "SABR-RCC-002",
        "SABR-RCC-003",
    }
    assert consented_study_ids(consented_db, "genetic_research") == {"SABR-RCC-001", "SABR-RCC-003"}
    # re-consent on the newer form version replaces the scopes in force
    record_consent(consented_db, "SABR-RCC-003", "2.0", date(2024, 7, 1), ["storage"], operator="coordinator")
    assert "SABR-RCC-003" not in consented_study_ids(consented_db, "image_linkage")
    with pytest.raises(Exception, match=r"form 2.0 is in use from 2024-06-01"):
        record_consent(
            consented_db, "SABR-RCC-002", "2.0", date(2024, 5, 7), ALL_SCOPES, operator="coordinator"
        )
    with pytest.raises(NotFoundError):
        record_consent(
            consented_db, "SABR-RCC-099", "1.0", date(2024, 5, 6), ALL_SCOPES, operator="coordinator"
        )


def test_release_needs_the_scope(consented_db: Database):
    [sample] = add_samples(consented_db, 1, study_id="SABR-RCC-002")
    code = create_shipment(consented_db, "Genomics core", "genetic_research", operator="lab1")
    with pytest.raises(
        ConsentError, match=r"consent 1.0 of SABR-RCC-002 \(signed 2024-05-06\) does not cover genetic"
    ):
        add_to_shipment(consented_db, code, [sample], operator="lab1")


def test_withdrawal_blocks_every_release_and_export(consented_db: Database, tmp_path: Path):
    db = consented_db
    create_storage(db, "F1/S1/R1/B01", geometry="9x9", operator="lab1")
    kept = add_samples(db, 2, study_id="SABR-RCC-001")
    gone = add_samples(db, 3, study_id="SABR-RCC-003")
    place_sample(db, gone[0], "F1/S1/R1/B01", "A1", operator="lab1")
    import_assay_results(db, _assay_csv(tmp_path / "assays.csv", kept + gone), operator="lab2")
    draft = create_shipment(db, "Cytokine lab", "future_research", operator="lab1")
    add_to_shipment(db, draft, [kept[0], gone[1]], operator="lab1")

    summary = withdraw_consent(
        db, "SABR-RCC-003", operator="coordinator", reason="participant request 2024-09-01"
    )
    assert (summary.disposal_tasks, summary.removed_from_shipments) == (3, 1)

    # 1. no release: adding, and shipping a shipment that still held the sample, both fail naming the consent
    with pytest.raises(ConsentError) as caught:
        add_to_shipment(db, draft, [gone[2]], operator="lab1")
    assert "consent 1.0 of SABR-RCC-003 (signed 2024-05-06) was withdrawn on" in str(caught.value)
    assert list(shipment_manifest(db, draft)["accession_id"]) == [kept[0]]
    # 2. no export: not in the samples, donors, collections or assay tables
    written = export_biobank(db, tmp_path / "export", file_format="parquet")
    tables = {name: pd.read_parquet(path) for name, path in written.items()}
    assert set(tables["samples"]["sample_id"]) == set(kept)
    assert set(tables["donors"]["donor_id"]) == {"SABR-RCC-001"}
    assert set(tables["assay_results"]["accession_id"]) == set(kept)
    assert int(tables["collections"].loc[0, "number_of_samples"]) == 2
    everything = "".join(t.to_csv() for t in tables.values())
    assert "SABR-RCC-003" not in everything and not any(a in everything for a in gone)
    # the features/models rooms' gate
    for scope in ALL_SCOPES:
        assert "SABR-RCC-003" not in consented_study_ids(db, scope)
    # 3. disposal tasks for every sample still held
    with db.session() as session:
        tasks = (
            session.execute(
                select(Sample.accession_id)
                .join(DisposalTask, DisposalTask.sample_id == Sample.id)
                .where(DisposalTask.status == "open")
            )
            .scalars()
            .all()
        )
        assert sorted(tasks) == sorted(gone)
        # 4. the audit log shows who withdrew and why
        entries = (
            session.execute(
                select(AuditLogEntry).where(
                    AuditLogEntry.table_name == "consents", AuditLogEntry.action == "update"
                )
            )
            .scalars()
            .all()
        )
    assert len(entries) == 1 and entries[0].actor == "coordinator"
    assert entries[0].reason == "consent withdrawal: participant request 2024-09-01"
    assert json.loads(entries[0].new_values)["withdrawn_at"] is not None
    assert verify_audit(db).ok


def test_consent_checked_again_when_the_shipment_leaves(consented_db: Database, tmp_path: Path):
    db = consented_db
    create_storage(db, "F1/S1/R1/B01", geometry="9x9", operator="lab1")
    samples = add_samples(db, 2, study_id="SABR-RCC-001")
    place_sample(db, samples[0], "F1/S1/R1/B01", "A1", operator="lab1")
    code = create_shipment(db, "Cytokine lab", "future_research", operator="lab1", courier="World Courier")
    assert code == "SHP-000001"
    add_to_shipment(db, code, samples, operator="lab1")
    csv_path = write_manifest_csv(db, code, tmp_path / "manifest.csv")
    manifest = pd.read_csv(csv_path)
    assert list(manifest["accession_id"]) == sorted(samples) and set(manifest["study_id"]) == {"SABR-RCC-001"}
    assert manifest.loc[manifest["accession_id"] == samples[0], "origin"].item() == "F1/S1/R1/B01:A1"
    pdf = write_manifest_pdf(db, code, tmp_path / "manifest.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 1500
    assert ship(db, code, operator="lab1") == 2
    assert receive_shipment(db, code, operator="courier-desk") == 2
    with db.session() as session:
        assert set(
            session.execute(select(Sample.status).where(Sample.accession_id.in_(samples))).scalars()
        ) == {"at_destination"}
    # withdrawal between draft and departure blocks the whole shipment
    [late] = add_samples(db, 1, study_id="SABR-RCC-002")
    second = create_shipment(db, "Cytokine lab", "future_research", operator="lab1")
    add_to_shipment(db, second, [late], operator="lab1")
    with db.transaction(actor="coordinator", reason="test: withdrawal recorded directly") as session:
        from sabrkit.biobank.tables import Consent

        consent = session.execute(select(Consent).where(Consent.study_id == "SABR-RCC-002")).scalar_one()
        consent.withdrawn_at = datetime(2024, 9, 1)
    with pytest.raises(ConsentError, match="SABR-RCC-002"):
        ship(db, second, operator="lab1")


def test_after_withdrawal_samples_are_only_disposed_of(consented_db: Database):
    from sabrkit.biobank import aliquot_sample, consume_sample, derive_sample, dispose_sample, pool_samples

    first, second = add_samples(consented_db, 2, study_id="SABR-RCC-003", specimen_type="plasma")
    [buffy] = add_samples(consented_db, 1, study_id="SABR-RCC-003", specimen_type="buffy_coat", volume_ml=1.0)
    [aliquot] = aliquot_sample(consented_db, first, [1.0], operator="lab1")  # before the withdrawal: allowed
    withdraw_consent(consented_db, "SABR-RCC-003", operator="coordinator", reason="participant asked")
    with consented_db.session() as session:
        before = {(s.accession_id, s.status, s.remaining_quantity) for s in session.scalars(select(Sample))}
        held = {s.id for s in session.scalars(select(Sample).where(Sample.study_id == "SABR-RCC-003"))}
        tasks = {
            t.sample_id for t in session.scalars(select(DisposalTask).where(DisposalTask.status == "open"))
        }
    assert held == tasks  # every remaining sample, the aliquot included, has a disposal task
    attempts = {
        "aliquoting": lambda: aliquot_sample(consented_db, second, [0.5], operator="lab1"),
        "extracting dna": lambda: derive_sample(
            consented_db, buffy, "dna", taken=0.5, yield_quantity=10, operator="lab1"
        ),
        "pooling": lambda: pool_samples(consented_db, {first: 0.5, second: 0.5}, operator="lab1"),
        "consuming": lambda: consume_sample(consented_db, aliquot, operator="lab1", reason="ELISA"),
    }
    for action, attempt in attempts.items():
        with pytest.raises(ConsentError, match=f"{action} of SABR-.* refused: .* was withdrawn") as caught:
            attempt()
        assert "sabrkit biobank dispose" in str(caught.value)
    with consented_db.session() as session:
        assert {
            (s.accession_id, s.status, s.remaining_quantity) for s in session.scalars(select(Sample))
        } == before
    dispose_sample(consented_db, aliquot, operator="lab1", reason="consent withdrawn")  # the documented step
    with consented_db.session() as session:
        task = session.scalars(
            select(DisposalTask)
            .join(Sample, Sample.id == DisposalTask.sample_id)
            .where(Sample.accession_id == aliquot)
        ).one()
    assert task.status == "done"


def test_a_sample_received_after_the_withdrawal_gets_a_disposal_task(consented_db: Database):
    withdraw_consent(consented_db, "SABR-RCC-002", operator="coordinator", reason="participant asked")
    [late] = add_samples(consented_db, 1, study_id="SABR-RCC-002")
    with consented_db.session() as session:
        tasks = session.scalars(
            select(DisposalTask)
            .join(Sample, Sample.id == DisposalTask.sample_id)
            .where(Sample.accession_id == late)
        ).all()
    assert [t.status for t in tasks] == ["open"] and "received after the withdrawal" in tasks[0].reason
