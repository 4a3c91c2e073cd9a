"""Sample labels: print-ready PDF sheets (reportlab) and ZPL for thermal printers.

Each label carries a 2D barcode that encodes exactly the accession ID, the human-readable
accession ID and the material and timepoint; nothing that identifies the participant (no study
ID, name, hospital number or date of birth).

- PDF sheets draw a QR code (segno, version chosen for the ID, error correction M, drawn as
  vector squares so it prints sharp at any size) on one of the :data:`LAYOUTS`.
- ZPL draws a Data Matrix ECC 200 (``^BX``, the usual cryo-tube symbology; ``symbology="qr"``
  gives ``^BQ``) computed by the printer, with the ID in font 0.

Layouts are parameters (page, label size, grid, margins, pitch); check a new label stock with
a test print before a run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from sabrkit.biobank.accession import validate_accession_id
from sabrkit.biobank.tables import Sample
from sabrkit.db.database import Database
from sabrkit.errors import NotFoundError, ValidationError, format_problem

if TYPE_CHECKING:  # reportlab is imported by the function that writes the PDF
    from reportlab.pdfgen.canvas import Canvas

__all__ = ["LabelLayout", "LAYOUTS", "LabelRecord", "label_records", "write_label_sheet", "zpl_labels"]

logger = logging.getLogger(__name__)

_MM = 72 / 25.4
_INCH = 72.0


@dataclass(frozen=True)
class LabelLayout:
    """A sheet of labels; lengths in points (1/72 inch)."""

    name: str
    page_width: float
    page_height: float
    label_width: float
    label_height: float
    columns: int
    rows: int
    left: float
    top: float
    column_pitch: float
    row_pitch: float

    @property
    def per_sheet(self) -> int:
        """Labels per sheet."""
        return self.columns * self.rows

    def origin(self, index: int) -> tuple[float, float]:
        """Lower-left corner (reportlab coordinates) of label ``index`` on its sheet (row-major)."""
        row, column = divmod(index % self.per_sheet, self.columns)
        x = self.left + column * self.column_pitch
        y = self.page_height - self.top - row * self.row_pitch - self.label_height
        return x, y


#: Common cryo-label sheets: 38.1 x 21.2 mm, 5 x 13 on A4 (L7651-style mini labels), and
#: 1.28 x 0.5 in cryo-tube labels, 5 x 17 on US Letter.
LAYOUTS: dict[str, LabelLayout] = {
    "a4-38x21mm": LabelLayout(
        "a4-38x21mm",
        210 * _MM,
        297 * _MM,
        38.1 * _MM,
        21.2 * _MM,
        5,
        13,
        4.65 * _MM,
        10.7 * _MM,
        40.6 * _MM,
        21.2 * _MM,
    ),
    "letter-1.28x0.5in": LabelLayout(
        "letter-1.28x0.5in",
        8.5 * _INCH,
        11 * _INCH,
        1.28 * _INCH,
        0.5 * _INCH,
        5,
        17,
        0.55 * _INCH,
        0.75 * _INCH,
        1.5 * _INCH,
        0.56 * _INCH,
    ),
}


@dataclass(frozen=True)
class LabelRecord:
    """What one label shows: accession ID (also the barcode), material and timepoint."""

    accession_id: str
    specimen_type: str
    timepoint: str

    @property
    def caption(self) -> str:
        """Second text line, e.g. ``plasma month_3``."""
        return f"{self.specimen_type} {self.timepoint}"


def label_records(db: Database, accession_ids: Sequence[str]) -> list[LabelRecord]:
    """Label contents of samples, in the order given (raises NotFoundError for unknown IDs)."""
    for accession_id in accession_ids:
        validate_accession_id(accession_id)
    with db.session() as session:
        found = {
            a: LabelRecord(a, s, t)
            for a, s, t in session.execute(
                select(Sample.accession_id, Sample.specimen_type, Sample.timepoint).where(
                    Sample.accession_id.in_(list(accession_ids))
                )
            )
        }
    missing = [a for a in accession_ids if a not in found]
    if missing:
        raise NotFoundError(
            format_problem(
                "accession ID(s) " + ", ".join(missing),
                "labels are printed for samples",
                "accession the samples first",
            )
        )
    return [found[a] for a in accession_ids]


def _draw_qr(canvas: Canvas, text: str, x: float, y: float, size: float) -> None:
    import segno

    code = segno.make_qr(text, error="m", boost_error=False)
    matrix = code.matrix
    quiet = 2  # modules of quiet zone kept inside ``size``
    modules = len(matrix) + 2 * quiet
    step = size / modules
    canvas.setFillColorRGB(0, 0, 0)
    for r, line in enumerate(matrix):
        for c, dark in enumerate(line):
            if dark:
                canvas.rect(
                    x + (c + quiet) * step, y + size - (r + quiet + 1) * step, step, step, stroke=0, fill=1
                )


def _draw_text(canvas: Canvas, record: LabelRecord, x: float, y: float, width: float, height: float) -> None:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    size = min(8.0, height / 3.2)
    lines = [record.accession_id]
    while stringWidth(record.accession_id, "Helvetica-Bold", size) > width and size > 6.0:
        size -= 0.25
    if stringWidth(record.accession_id, "Helvetica-Bold", size) > width:
        lines = [record.accession_id[:7], record.accession_id[8:]]  # SABR-PL / 000123-K
        size = min(height / 4.0, 8.0)
    caption_size = max(4.5, size * 0.75)
    top = y + height - size - 1.5
    for offset, line in enumerate(lines):
        canvas.setFont("Helvetica-Bold", size)
        canvas.drawString(x, top - offset * (size + 1), line)
    canvas.setFont("Helvetica", caption_size)
    caption = record.caption
    while stringWidth(caption, "Helvetica", caption_size) > width and len(caption) > 4:
        caption = caption[:-1]
    canvas.drawString(x, top - len(lines) * (size + 1) - 0.5, caption)


def write_label_sheet(
    records: Sequence[LabelRecord], path: Path, layout: str | LabelLayout = "a4-38x21mm", *, skip: int = 0
) -> Path:
    """Write a PDF of label sheets, one label per record (row-major, ``skip`` labels left blank first).

    Parameters
    ----------
    records : sequence of LabelRecord
    path : Path
        PDF to write.
    layout : str or LabelLayout
        A key of :data:`LAYOUTS` or a custom layout.
    skip : int
        Labels already used on the first sheet.
    """
    from reportlab.pdfgen.canvas import Canvas

    if isinstance(layout, str):
        if layout not in LAYOUTS:
            raise ValidationError(
                format_problem(
                    f"label layout {layout!r}",
                    "one of " + ", ".join(LAYOUTS),
                    "choose a listed layout or pass a LabelLayout",
                )
            )
        layout = LAYOUTS[layout]
    path = Path(path)
    canvas = Canvas(str(path), pagesize=(layout.page_width, layout.page_height))
    canvas.setTitle("sabrkit sample labels")
    pad = 1.2 * _MM
    for index, record in enumerate(records, start=skip):
        if index > skip and index % layout.per_sheet == 0:
            canvas.showPage()
        x, y = layout.origin(index)
        size = layout.label_height - 2 * pad
        _draw_qr(canvas, record.accession_id, x + pad, y + pad, size)
        text_x = x + pad + size + pad
        _draw_text(canvas, record, text_x, y + pad, layout.label_width - (text_x - x) - pad, size)
    canvas.showPage()
    canvas.save()
    logger.info("%d label(s) written to %s (%s)", len(records), path, layout.name)
    return path


def zpl_labels(
    records: Sequence[LabelRecord],
    *,
    width_in: float = 1.28,
    height_in: float = 0.5,
    dpi: int = 300,
    symbology: str = "datamatrix",
) -> str:
    """ZPL II for a roll of labels, one ``^XA ... ^XZ`` block per record.

    Parameters
    ----------
    width_in, height_in : float
        Label size in inches.
    dpi : int
        Printer resolution (203, 300 or 600 dots per inch).
    symbology : str
        ``"datamatrix"`` (``^BX``, ECC 200) or ``"qr"`` (``^BQ``, error correction M).
    """
    if dpi not in (203, 300, 600):
        raise ValidationError(
            format_problem(f"printer resolution {dpi}", "203, 300 or 600 dpi", "use your printer's")
        )
    if symbology not in ("datamatrix", "qr"):
        raise ValidationError(format_problem(f"symbology {symbology!r}", "datamatrix or qr", "choose one"))
    width, height = round(width_in * dpi), round(height_in * dpi)
    margin = round(0.04 * dpi)
    module = max(2, round(0.0165 * dpi))  # ~0.42 mm modules
    text_x = margin + 20 * module + margin
    # font 0 is about 0.6 x its height wide: the 16-character ID fits on one line
    font = max(12, min(round(height * 0.2), int((width - text_x - margin) / (16 * 0.6))))
    blocks = []
    for record in records:
        validate_accession_id(record.accession_id)
        if symbology == "datamatrix":
            barcode = f"^FO{margin},{margin}^BXN,{module},200^FD{record.accession_id}^FS"
        else:
            barcode = f"^FO{margin},{margin}^BQN,2,{max(1, module - 1)}^FDMA,{record.accession_id}^FS"
        blocks.append(
            "\n".join(
                [
                    "^XA",
                    "^CI28",
                    f"^PW{width}",
                    f"^LL{height}",
                    "^LH0,0",
                    barcode,
                    f"^FO{text_x},{margin}^A0N,{font},{font}^FD{record.accession_id}^FS",
                    f"^FO{text_x},{margin + font + 6}^A0N,{round(font * 0.8)},{round(font * 0.8)}^FD{record.caption}^FS",
                    "^XZ",
                ]
            )
        )
    return "\n".join(blocks) + "\n"
