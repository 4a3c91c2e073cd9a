"""What ``sabrkit info`` reports: versions, database URL, MLflow tracking URI."""

from __future__ import annotations

import platform as std_platform
from importlib.metadata import PackageNotFoundError, version

from sabrkit.settings import Settings
from sabrkit.version import __version__

__all__ = ["collect_info", "KEY_PACKAGES"]

KEY_PACKAGES = (
    "numpy",
    "pandas",
    "SimpleITK",
    "pyradiomics",
    "torch",
    "monai",
    "scikit-learn",
    "scikit-survival",
    "lifelines",
    "mlflow",
    "dvc",
    "SQLAlchemy",
    "alembic",
    "fastapi",
    "dask",
)


def _redact(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: show it as given
        return url


def collect_info(settings: Settings) -> dict[str, str]:
    """Versions of sabrkit and its key libraries, and where data and runs go."""
    rows = {"sabrkit": __version__, "python": std_platform.python_version()}
    for name in KEY_PACKAGES:
        try:
            rows[name] = version(name)
        except PackageNotFoundError:
            rows[name] = "not installed"
    rows["database URL (SABRKIT_DATABASE_URL)"] = _redact(settings.database_url)
    rows["MLflow tracking URI"] = settings.resolved_mlflow_uri()
    return rows
