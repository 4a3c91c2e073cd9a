"""Alembic revision scripts of sabrkit's database, oldest first (``0001_initial`` ...)."""
