"""Application settings (``SABRKIT_*`` environment variables), created in entry points.

There is no module-level settings object: the CLI, the web app and the pipeline entry points
build one :class:`Settings` and pass it (or the values it holds) down. Every field carries its
help text; ``tests/test_settings.py`` checks that each one is documented in the README.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "DEFAULT_DATABASE_URL", "DEFAULT_MLFLOW_URI"]

DEFAULT_DATABASE_URL = "sqlite:///data/sabrkit.db"
DEFAULT_MLFLOW_URI = "sqlite:///mlflow.db"


class Settings(BaseSettings):
    """sabrkit's settings, read from ``SABRKIT_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="SABRKIT_", extra="forbid", frozen=True)

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the registry and biobank database "
        "(SQLite file by default; postgresql+psycopg://user@host/db for several users).",
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        description=f"MLflow tracking URI. Unset: MLFLOW_TRACKING_URI if set, else {DEFAULT_MLFLOW_URI}.",
    )
    data_dir: Path = Field(Path("data"), description="Folder for images, masks and derived tables.")
    log_level: str = Field("INFO", description="Logging level of the CLI (DEBUG, INFO, WARNING).")
    actor: str | None = Field(
        None,
        description="Who the CLI records as making changes (audit log, custody events) when "
        "--actor/--operator is not given. Unset: the operating-system user.",
    )

    def resolved_mlflow_uri(self) -> str:
        """The tracking URI in force: this setting, then ``MLFLOW_TRACKING_URI``, then the default."""
        import os

        return self.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_MLFLOW_URI
