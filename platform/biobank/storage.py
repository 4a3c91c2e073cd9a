"""Storage: freezer -> shelf -> rack -> box -> position; placing, moving, thawing, finding samples.

A storage path names the levels top-down, ``F1/S2/R3/B07`` (freezer F1, shelf S2, rack R3,
box B07); a box has a geometry (``9x9``, ``10x10``, ``8x12`` ...) and positions ``A1`` (row A,
column 1) to ``I9``. A sample's location reads ``F1/S2/R3/B07:A1``.

At most one sample per position, also under concurrent requests: the database holds
``UNIQUE(box_id, row, col)`` on ``sample_positions``; :func:`place_sample` locks the sample's
row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writes hold the database's write lock from
``BEGIN IMMEDIATE``), checks the position and inserts; a concurrent writer that got there first
makes the insert fail, and either way the caller gets :class:`PositionOccupiedError` naming the
box and the position. Every placement, move and thaw appends a custody event.
"""

from __future__ import annotations

import json
import logging
import re
import string
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sabrkit.biobank.custody import record_event
from sabrkit.biobank.errors import PositionOccupiedError, SampleStateError
from sabrkit.biobank.samples import get_sample
from sabrkit.biobank.tables import Sample, SamplePosition, StorageUnit
from sabrkit.biobank.vocabulary import STORAGE_LEVELS
from sabrkit.db.database import Database
from sabrkit.errors import NotFoundError, ValidationError, format_problem

__all__ = [
    "create_storage",
    "place_sample",
    "move_sample",
    "thaw_sample",
    "release_position",
    "locate",
    "find_samples",
    "box_map",
    "BoxMap",
    "StoredSample",
    "parse_position",
    "position_label",
    "sample_location",
]

logger = logging.getLogger(__name__)

_POSITION = re.compile(r"^([A-Z])([0-9]{1,2})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
_GEOMETRY = re.compile(r"^([0-9]{1,2})x([0-9]{1,2})$")


def position_label(row: int, col: int) -> str:
    """``(1, 1)`` -> ``"A1"``."""
    return f"{string.ascii_uppercase[row - 1]}{col}"


def parse_position(text: str) -> tuple[int, int]:
    """``"A1"`` -> ``(1, 1)``; ``"J10"`` -> ``(10, 10)``.

    Raises
    ------
    ValidationError
        If the text is not a row letter followed by a column number.
    """
    match = _POSITION.match(text.strip().upper()) if isinstance(text, str) else None
    if match is None or int(match[2]) < 1:
        raise ValidationError(
            format_problem(
                f"box position {text!r}",
                "a row letter and a column number, e.g. A1 or J10",
                "read the position off the box map",
            )
        )
    return string.ascii_uppercase.index(match[1]) + 1, int(match[2])


def parse_geometry(text: str) -> tuple[int, int]:
    """``"9x9"`` -> ``(9, 9)`` (rows x columns)."""
    match = _GEOMETRY.match(text.strip().lower())
    if match is None or not (1 <= int(match[1]) <= 26 and 1 <= int(match[2]) <= 99):
        raise ValidationError(
            format_problem(
                f"box geometry {text!r}",
                "ROWSxCOLUMNS with 1-26 rows and 1-99 columns",
                "e.g. 9x9, 10x10 or 8x12",
            )
        )
    return int(match[1]), int(match[2])


def create_storage(
    db: Database, path: str, *, geometry: str | None = None, temperature_c: float | None = None, operator: str
) -> list[str]:
    """Create a storage path, adding the levels that do not exist yet; returns the paths created.

    Parameters
    ----------
    path : str
        One to four slash-separated names: freezer, shelf, rack, box (``F1/S2/R3/B07``).
    geometry : str, optional
        Required when the path reaches a new box: ``"9x9"``, ``"10x10"`` ...
    temperature_c : float, optional
        The freezer's set temperature, when the path creates the freezer.
    """
    names = path.strip("/").split("/")
    if not 1 <= len(names) <= len(STORAGE_LEVELS) or not all(_NAME.match(name) for name in names):
        raise ValidationError(
            format_problem(
                f"storage path {path!r}",
                "freezer[/shelf[/rack[/box]]], names of letters, digits, _ . -",
                "e.g. F1/S2/R3/B07",
            )
        )
    created: list[str] = []
    with db.transaction(actor=operator) as session:
        parent: StorageUnit | None = None
        for depth, name in enumerate(names):
            level = STORAGE_LEVELS[depth]
            current = "/".join(names[: depth + 1])
            unit = session.execute(
                select(StorageUnit).where(StorageUnit.path == current)
            ).scalar_one_or_none()
            if unit is None:
                rows = columns = None
                if level == "box":
                    if geometry is None:
                        raise ValidationError(
                            format_problem(
                                f"new box {current}",
                                "a box needs a geometry",
                                "pass --geometry 9x9 (rows x columns)",
                            )
                        )
                    rows, columns = parse_geometry(geometry)
                unit = StorageUnit(
                    path=current,
                    name=name,
                    level=level,
                    parent_id=parent.id if parent else None,
                    n_rows=rows,
                    n_columns=columns,
                    temperature_c=temperature_c if level == "freezer" else None,
                )
                session.add(unit)
                session.flush()
                created.append(current)
            parent = unit
    return created


def _box(session: Session, box_path: str) -> StorageUnit:
    box = session.execute(
        select(StorageUnit).where(StorageUnit.path == box_path.strip("/"))
    ).scalar_one_or_none()
    if box is None or box.level != "box":
        raise NotFoundError(
            format_problem(
                f"box {box_path!r}",
                "samples are placed in an existing box",
                "create it with `sabrkit biobank storage add PATH --geometry 9x9`",
            )
        )
    return box


def _check_inside(box: StorageUnit, row: int, col: int) -> None:
    assert box.n_rows is not None and box.n_columns is not None
    if row > box.n_rows or col > box.n_columns:
        raise ValidationError(
            format_problem(
                f"position {position_label(row, col)} in box {box.path}",
                f"the box is {box.n_rows}x{box.n_columns} (A1 to {position_label(box.n_rows, box.n_columns)})",
                "choose a position inside the box",
            )
        )


def _occupied(box_path: str, row: int, col: int, holder: str | None) -> PositionOccupiedError:
    label = position_label(row, col)
    held = f" by {holder}" if holder else ""
    return PositionOccupiedError(
        format_problem(
            f"position occupied: {box_path} position {label} is already taken{held}",
            "a box position holds at most one sample",
            "choose a free position (see the box map)",
        ),
        box=box_path,
        position=label,
    )


def _flush_placement(session: Session, box_path: str, row: int, col: int) -> None:
    """Flush the pending placement; a concurrent writer that took the position makes it fail."""
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent writer took the position between check and insert
        if "sample_id" in str(exc.orig) and "box_id" not in str(exc.orig):
            raise
        raise _occupied(box_path, row, col, None) from None


def _insert_position(
    session: Session,
    box: StorageUnit,
    row: int,
    col: int,
    sample: Sample,
    at: datetime,
    *,
    flush: bool = True,
) -> None:
    box_path = box.path  # read now: after a failed flush the session's objects are expired
    holder = session.execute(
        select(Sample.accession_id)
        .join(SamplePosition, SamplePosition.sample_id == Sample.id)
        .where(SamplePosition.box_id == box.id, SamplePosition.row == row, SamplePosition.col == col)
    ).scalar_one_or_none()
    if holder is not None:
        raise _occupied(box_path, row, col, holder)
    session.add(SamplePosition(sample_id=sample.id, box_id=box.id, row=row, col=col, placed_at=at))
    if flush:
        _flush_placement(session, box_path, row, col)


def sample_location(session: Session, sample_id: int) -> str | None:
    """``F1/S2/R3/B07:A1`` for a placed sample, else None."""
    found = session.execute(
        select(StorageUnit.path, SamplePosition.row, SamplePosition.col)
        .join(SamplePosition, SamplePosition.box_id == StorageUnit.id)
        .where(SamplePosition.sample_id == sample_id)
    ).first()
    return None if found is None else f"{found[0]}:{position_label(found[1], found[2])}"


def place_sample(
    db: Database,
    accession_id: str,
    box_path: str,
    position: str,
    *,
    operator: str,
    at: datetime | None = None,
) -> str:
    """Freeze a sample into a free box position (or back into its own after a thaw).

    Returns
    -------
    str
        The location, ``F1/S2/R3/B07:A1``.

    Raises
    ------
    PositionOccupiedError
        The position holds another sample (message: "position occupied", the box and position).
    SampleStateError
        The sample is stored elsewhere (use :func:`move_sample`) or unusable.
    """
    row, col = parse_position(position)
    at = at or datetime.now().replace(microsecond=0)
    location = f"{box_path.strip('/')}:{position_label(row, col)}"
    with db.transaction(actor=operator, reason=f"store {accession_id} at {location}") as session:
        sample = get_sample(session, accession_id, for_update=True)
        box = _box(session, box_path)
        _check_inside(box, row, col)
        current = session.execute(
            select(SamplePosition).where(SamplePosition.sample_id == sample.id)
        ).scalar_one_or_none()
        if (
            current is not None
            and (current.box_id, current.row, current.col) == (box.id, row, col)
            and sample.status == "in_use"
        ):
            pass  # back into its own position after a thaw
        elif current is not None:
            raise SampleStateError(
                format_problem(
                    f"{accession_id} is already stored at {sample_location(session, sample.id)}",
                    "a sample has one position",
                    "use `sabrkit biobank move` to move it",
                )
            )
        elif sample.status not in ("received", "in_use", "at_destination"):
            raise SampleStateError(
                format_problem(
                    f"{accession_id} has status {sample.status}",
                    "only received or thawed samples are put into storage",
                    "check the sample's history (`sabrkit biobank events`)",
                )
            )
        else:
            _insert_position(session, box, row, col, sample, at, flush=False)
        sample.status = "stored"
        if sample.frozen_at is None:
            sample.frozen_at = at
        record_event(session, sample, "frozen", operator=operator, location=location, occurred_at=at)
        _flush_placement(session, box_path.strip("/"), row, col)  # one flush: one audit append
    logger.info("%s stored at %s", accession_id, location)
    return location


def move_sample(
    db: Database,
    accession_id: str,
    box_path: str,
    position: str,
    *,
    operator: str,
    reason: str | None = None,
    at: datetime | None = None,
) -> str:
    """Move a stored sample to a free position; the ``moved`` event records from where to where."""
    row, col = parse_position(position)
    at = at or datetime.now().replace(microsecond=0)
    target = f"{box_path.strip('/')}:{position_label(row, col)}"
    with db.transaction(actor=operator, reason=reason or f"move {accession_id} to {target}") as session:
        sample = get_sample(session, accession_id, for_update=True)
        box = _box(session, box_path)
        _check_inside(box, row, col)
        current = session.execute(
            select(SamplePosition).where(SamplePosition.sample_id == sample.id)
        ).scalar_one_or_none()
        if current is None:
            raise SampleStateError(
                format_problem(
                    f"{accession_id} is not in storage",
                    "only stored samples are moved",
                    "use `sabrkit biobank place` to store it",
                )
            )
        origin = sample_location(session, sample.id)
        session.delete(current)
        session.flush()
        _insert_position(session, box, row, col, sample, at)
        record_event(
            session,
            sample,
            "moved",
            operator=operator,
            location=target,
            occurred_at=at,
            details=f"from {origin}",
        )
    return target


def release_position(session: Session, sample: Sample) -> str | None:
    """Free the sample's position (shipping, consumption, disposal); returns the old location."""
    current = session.execute(
        select(SamplePosition).where(SamplePosition.sample_id == sample.id)
    ).scalar_one_or_none()
    if current is None:
        return None
    origin = sample_location(session, sample.id)
    session.delete(current)
    session.flush()
    return origin


def thaw_sample(db: Database, accession_id: str, *, operator: str, at: datetime | None = None) -> int:
    """Take a stored sample out and thaw it (its position stays reserved); returns its new FT count."""
    from sabrkit.biobank.custody import freeze_thaw_count

    at = at or datetime.now().replace(microsecond=0)
    with db.transaction(actor=operator, reason=f"thaw {accession_id}") as session:
        sample = get_sample(session, accession_id, for_update=True)
        if sample.status != "stored":
            raise SampleStateError(
                format_problem(
                    f"{accession_id} has status {sample.status}",
                    "only a stored (frozen) sample can be thawed",
                    "check its history",
                )
            )
        location = sample_location(session, sample.id) or "unknown"
        sample.status = "in_use"
        record_event(session, sample, "thawed", operator=operator, location=location, occurred_at=at)
    return freeze_thaw_count(db, accession_id)


def locate(db: Database, accession_id: str) -> str | None:
    """Where a sample is stored (``F1/S2/R3/B07:A1``), or None."""
    with db.session() as session:
        return sample_location(session, get_sample(session, accession_id).id)


@dataclass(frozen=True)
class StoredSample:
    """A sample found at a location."""

    accession_id: str
    location: str
    specimen_type: str
    timepoint: str
    status: str


def find_samples(db: Database, location: str) -> list[StoredSample]:
    """Samples stored at or below a location (``F1``, ``F1/S2``, a box, or ``box:A1``)."""
    path, _, position = location.strip("/").partition(":")
    statement = (
        select(
            Sample.accession_id,
            StorageUnit.path,
            SamplePosition.row,
            SamplePosition.col,
            Sample.specimen_type,
            Sample.timepoint,
            Sample.status,
        )
        .join(SamplePosition, SamplePosition.sample_id == Sample.id)
        .join(StorageUnit, StorageUnit.id == SamplePosition.box_id)
        .where(or_(StorageUnit.path == path, StorageUnit.path.startswith(path + "/", autoescape=True)))
        .order_by(StorageUnit.path, SamplePosition.row, SamplePosition.col)
    )
    if position:
        row, col = parse_position(position)
        statement = statement.where(SamplePosition.row == row, SamplePosition.col == col)
    with db.session() as session:
        return [
            StoredSample(accession, f"{box}:{position_label(r, c)}", kind, timepoint, status)
            for accession, box, r, c, kind, timepoint, status in session.execute(statement)
        ]


@dataclass(frozen=True)
class BoxMap:
    """Occupied and free positions of one box (``cells[(row, col)]`` = accession ID or None)."""

    box: str
    n_rows: int
    n_columns: int
    cells: dict[tuple[int, int], str | None]

    @property
    def n_occupied(self) -> int:
        """Positions holding a sample."""
        return sum(value is not None for value in self.cells.values())

    def to_json(self) -> str:
        """JSON for the web app: box, geometry, counts and one entry per position (row-major)."""
        positions = [
            {"position": position_label(r, c), "row": r, "col": c, "accession_id": self.cells[(r, c)]}
            for r in range(1, self.n_rows + 1)
            for c in range(1, self.n_columns + 1)
        ]
        return json.dumps(
            {
                "box": self.box,
                "rows": self.n_rows,
                "columns": self.n_columns,
                "occupied": self.n_occupied,
                "free": len(self.cells) - self.n_occupied,
                "positions": positions,
            },
            indent=2,
        )

    def to_text(self) -> str:
        """A fixed-width grid: ``PL-000123`` (code and serial) where occupied, ``.`` where free."""
        width = 9
        lines = [
            f"box {self.box} ({self.n_rows}x{self.n_columns}): {self.n_occupied} occupied, "
            f"{len(self.cells) - self.n_occupied} free",
            "   " + " ".join(f"{c:^{width}}" for c in range(1, self.n_columns + 1)),
        ]
        for r in range(1, self.n_rows + 1):
            cells = [
                (self.cells[(r, c)] or ".")[5:14] if self.cells[(r, c)] else "."
                for c in range(1, self.n_columns + 1)
            ]
            lines.append(
                f"{string.ascii_uppercase[r - 1]}  " + " ".join(f"{cell:^{width}}" for cell in cells)
            )
        return "\n".join(lines)


def box_map(db: Database, box_path: str) -> BoxMap:
    """The box map of one box."""
    with db.session() as session:
        box = _box(session, box_path)
        assert box.n_rows is not None and box.n_columns is not None
        cells: dict[tuple[int, int], str | None] = {
            (r, c): None for r in range(1, box.n_rows + 1) for c in range(1, box.n_columns + 1)
        }
        for accession_id, r, c in session.execute(
            select(Sample.accession_id, SamplePosition.row, SamplePosition.col)
            .join(SamplePosition, SamplePosition.sample_id == Sample.id)
            .where(SamplePosition.box_id == box.id)
        ):
            cells[(r, c)] = accession_id
        return BoxMap(box.path, box.n_rows, box.n_columns, cells)
