"""Labels: the rendered PDF's barcodes decode back to the accession IDs; ZPL; no identifying data."""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
import pytest
import zxingcpp
from biobank_helpers import add_samples

from sabrkit.biobank import (
    LAYOUTS,
    LabelRecord,
    label_records,
    make_accession_id,
    write_label_sheet,
    zpl_labels,
)
from sabrkit.db import Database
from sabrkit.errors import NotFoundError, ValidationError


def _records() -> list[LabelRecord]:
    ids = [make_accession_id("plasma", 123), make_accession_id("serum", 7), make_accession_id("dna", 999999)]
    return [
        LabelRecord(ids[0], "plasma", "month_3"),
        LabelRecord(ids[1], "serum", "baseline"),
        LabelRecord(ids[2], "dna", "progression"),
    ]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_rendered_barcodes_decode_to_the_accession_ids(layout: str, tmp_path: Path):
    records = _records()
    path = write_label_sheet(records, tmp_path / "labels.pdf", layout)
    document = pdfium.PdfDocument(str(path))
    assert len(document) == 1
    image = document[0].render(scale=600 / 72).to_pil().convert("L")  # a 600 dpi scan of the printed sheet
    decoded = zxingcpp.read_barcodes(image)
    assert sorted(result.text for result in decoded) == sorted(r.accession_id for r in records)
    assert {result.format.name for result in decoded} == {"QRCode"}
    text = document[0].get_textpage().get_text_range()
    for record in records:
        assert (
            record.accession_id in text.replace("\r", "").replace("\n", "") or record.accession_id[:7] in text
        )


def test_sheets_continue_on_new_pages_and_skip_used_labels(tmp_path: Path):
    layout = LAYOUTS["a4-38x21mm"]
    records = _records() * 30  # 90 labels: 65 on the first sheet (10 skipped), 35 on the second
    write_label_sheet(records, tmp_path / "many.pdf", layout, skip=10)
    assert len(pdfium.PdfDocument(str(tmp_path / "many.pdf"))) == 2
    assert layout.per_sheet == 65


def test_labels_carry_no_identifying_data(enrolled_db: Database, tmp_path: Path):
    accession_ids = add_samples(enrolled_db, 2, study_id="SABR-RCC-002")
    records = label_records(enrolled_db, accession_ids)
    zpl = zpl_labels(records)
    pdf = write_label_sheet(records, tmp_path / "l.pdf").read_bytes()
    for content in (zpl, pdf.decode("latin-1")):
        assert "SABR-RCC" not in content  # no study ID, and the registry's key table is never read
    with pytest.raises(NotFoundError):
        label_records(enrolled_db, [make_accession_id("plasma", 99)])  # well formed, never accessioned


def test_zpl_has_one_datamatrix_and_the_readable_id_per_label():
    records = _records()
    zpl = zpl_labels(records, dpi=300)
    blocks = [b for b in zpl.split("^XZ") if b.strip()]
    assert len(blocks) == 3
    for block, record in zip(blocks, records):
        assert block.strip().startswith("^XA")
        assert (
            f"^BXN,5,200^FD{record.accession_id}^FS" in block
        )  # Data Matrix ECC 200, 5-dot modules at 300 dpi
        assert block.count(f"^FD{record.accession_id}^FS") == 2  # barcode + human-readable line
        assert "^PW384" in block and "^LL150" in block  # 1.28 x 0.5 in at 300 dpi
    assert f"^FDMA,{records[0].accession_id}^FS" in zpl_labels(records, symbology="qr")
    with pytest.raises(ValidationError):
        zpl_labels(records, dpi=250)
    with pytest.raises(ValidationError):
        zpl_labels([LabelRecord("SABR-PL-000123-0", "plasma", "baseline")])  # wrong check character
