"""Application settings (``SABRKIT_*`` environment variables), created in entry points.

There is no module-level settings object: the CLI, the web app and the pipeline entry points
build one :class:`Settings` and pass it (or the values it holds) down. Every field carries its
help text; ``tests/test_settings.py`` checks that each one is documented in the README.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "Settings",
    "DEFAULT_DATABASE_URL",
    "DEFAULT_MLFLOW_URI",
    "SHARED_DATA_ENV",
    "shared_data_dir",
]

DEFAULT_DATABASE_URL = "sqlite:///data/sabrkit.db"
DEFAULT_MLFLOW_URI = "sqlite:///mlflow.db"
SHARED_DATA_ENV = "SABRKIT_IBSI_DATA"


def shared_data_dir(*, required: bool = False) -> Path:
    """The study's data folder kept outside the repository (licensed data: the IBSI CT phantom, ...).

    The one place that resolves it, for the package, the pipelines, the benchmarks and the tests:
    ``$SABRKIT_IBSI_DATA`` when set; else ``shared/data`` beside the repository checkout that holds
    this package (``<checkout>/../shared/data``); else, for an installed package, ``../shared/data``
    from the working folder.

    Parameters
    ----------
    required
        Raise when the folder does not exist (default: return the path, the caller decides).

    Raises
    ------
    SharedDataNotFoundError
        With ``required=True``, when the folder is missing (the message names it and the fix).
    """
    import os

    from sabrkit.errors import SharedDataNotFoundError, format_problem

    configured = os.environ.get(SHARED_DATA_ENV)
    if configured:
        folder = Path(configured)
    else:
        checkout = Path(__file__).resolve().parent.parent  # platform/ -> the repository checkout
        base = checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()
        folder = base.parent / "shared" / "data"
    if required and not folder.is_dir():
        raise SharedDataNotFoundError(
            format_problem(
                f"shared data folder {folder} does not exist",
                f"the study's data outside the repository is read from ${SHARED_DATA_ENV} or "
                "../shared/data beside the checkout",
                f"place the data there (see shared/data/README.md) or set {SHARED_DATA_ENV} to its folder",
            )
        )
    return folder


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
