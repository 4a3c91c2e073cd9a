"""Shared fixtures: the repo root, the shared real-data folder, a seeded Generator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from sabrkit.audit import open_database
from sabrkit.db import Database
from sabrkit.db.testing import POSTGRES_URL_ENV, postgres_test_url, sqlite_test_url, temporary_postgres_schema
from sabrkit.settings import shared_data_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = shared_data_dir().resolve()


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (see ../shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240501)


# ---- small CT-like cases for the imaging and features tests ------------------------------


def ct_like_case(
    rng: np.random.Generator,
    size_xyz: tuple[int, int, int] = (40, 40, 20),
    spacing: tuple[float, float, float] = (0.8, 0.8, 2.0),
    radius_mm: float = 7.0,
    origin: tuple[float, float, float] = (-16.0, -16.0, -20.0),
) -> tuple[sitk.Image, sitk.Image]:
    """A lung-like background (-800 HU) with a soft-tissue sphere (40 HU) and its mask."""
    nx, ny, nz = size_xyz
    z, y, x = np.mgrid[0:nz, 0:ny, 0:nx]
    centre = (np.array([nx, ny, nz]) - 1) / 2
    r = np.sqrt(
        ((x - centre[0]) * spacing[0]) ** 2
        + ((y - centre[1]) * spacing[1]) ** 2
        + ((z - centre[2]) * spacing[2]) ** 2
    )
    lesion = r <= radius_mm
    hu = rng.normal(-800.0, 30.0, size=lesion.shape)
    hu[lesion] = rng.normal(40.0, 25.0, size=int(lesion.sum()))
    image = sitk.GetImageFromArray(np.clip(hu, -1024, 3071).astype(np.int16))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    mask = sitk.GetImageFromArray(lesion.astype(np.uint8))
    mask.CopyInformation(image)
    return image, mask


@pytest.fixture
def make_ct_case(rng: np.random.Generator) -> Callable[..., tuple[sitk.Image, sitk.Image]]:
    """Factory fixture: ``make_ct_case(**kwargs)`` -> (image, mask) from :func:`ct_like_case`."""

    def make(**kwargs: object) -> tuple[sitk.Image, sitk.Image]:
        return ct_like_case(rng, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def write_case(tmp_path: Path, rng: np.random.Generator) -> Callable[..., tuple[Path, Path]]:
    """Write one case as NIfTI files into tmp_path; return (image_path, mask_path)."""

    def write(lesion_id: str, suffix: str = ".nii.gz", **kwargs: object) -> tuple[Path, Path]:
        image, mask = ct_like_case(rng, **kwargs)  # type: ignore[arg-type]
        image_path = tmp_path / f"{lesion_id}_ct{suffix}"
        mask_path = tmp_path / f"{lesion_id}_mask{suffix}"
        sitk.WriteImage(image, str(image_path))
        sitk.WriteImage(mask, str(mask_path))
        return image_path, mask_path

    return write


@pytest.fixture(autouse=True)
def _audit_key_files_per_test(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Point the audit key file and checkpoint folder at a fresh temp folder (no key unless a test makes one).

    A key file in the developer's home (``sabrkit audit init-key``) must not leak into tests.
    """
    folder = tmp_path_factory.mktemp("audit-key")
    monkeypatch.setenv("SABRKIT_AUDIT_KEY_FILE", str(folder / "audit-key.json"))
    monkeypatch.setenv("SABRKIT_AUDIT_CHECKPOINT_DIR", str(folder / "checkpoints"))


# ---- databases: a SQLite file per test, and PostgreSQL when SABRKIT_TEST_POSTGRES_URL is set ----


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield sqlite_test_url(tmp_path)
        return
    server = postgres_test_url()
    if server is None:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_URL_ENV}, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test"
        )
    with temporary_postgres_schema(server) as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated, empty database."""
    database = open_database(db_url)
    database.upgrade()
    yield database
    database.dispose()
