"""Alembic environment of sabrkit's database (run it through :mod:`sabrkit.db.migrate`)."""
