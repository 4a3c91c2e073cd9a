"""sabrkit's relational database: engine, Database object, declarative base, migrations."""

from sabrkit.db.base import NAMING_CONVENTION, Base
from sabrkit.db.csv_import import ImportRow, IsoDate, IsoDateTime, ParsedRow, read_csv_rows
from sabrkit.db.database import Database
from sabrkit.db.engine import make_engine
from sabrkit.db.migrate import current_revision, downgrade, head_revision, schema_differences, upgrade

__all__ = [
    "Base",
    "NAMING_CONVENTION",
    "Database",
    "make_engine",
    "upgrade",
    "downgrade",
    "current_revision",
    "head_revision",
    "schema_differences",
    "ImportRow",
    "ParsedRow",
    "IsoDate",
    "IsoDateTime",
    "read_csv_rows",
]
