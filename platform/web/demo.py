"""A demo site on the synthetic cohort: database, storage, consents and one account per role.

:func:`build_demo` writes a synthetic cohort (:func:`sabrkit.synthetic.synthesize`, no images),
migrates a new SQLite database in ``folder``, and fills it with the rooms' own loaders and
services: :func:`~sabrkit.registry.load_registry_folder`, :func:`~sabrkit.biobank.load_samples`,
:func:`~sabrkit.biobank.create_storage`, :func:`~sabrkit.biobank.place_sample`,
:func:`~sabrkit.biobank.add_consent_form` / :func:`~sabrkit.biobank.record_consent` and
:func:`sabrkit.web.accounts.create_user`. Every row is therefore audited like real data.
``sabrkit serve --demo`` calls it and prints the accounts.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sabrkit.audit import open_database
from sabrkit.web.roles import ROLES

__all__ = ["DemoSite", "build_demo", "DEMO_BOXES"]

logger = logging.getLogger(__name__)

#: Boxes of the demo freezer (path, geometry).
DEMO_BOXES: tuple[tuple[str, str], ...] = (
    ("F1/S1/R1/B01", "9x9"),
    ("F1/S1/R1/B02", "9x9"),
    ("F1/S1/R2/B01", "10x10"),
)
_ACTOR = "demo-setup"


@dataclass(frozen=True)
class DemoSite:
    """A built demo: where its database is, and each demo account's role and password."""

    folder: Path
    database_url: str
    accounts: dict[str, tuple[str, str]]

    def account_lines(self) -> list[str]:
        """``user  role  password`` lines for the console."""
        return [f"{name:<12} {role:<12} {password}" for name, (role, password) in self.accounts.items()]


def build_demo(
    folder: Path,
    *,
    n_patients: int = 60,
    seed: int = 20240502,
    n_stored: int = 60,
    passwords: Mapping[str, str] | None = None,
    password_profile: str = "default",
) -> DemoSite:
    """Build a demo site in ``folder`` (created; an existing demo database there is replaced).

    Parameters
    ----------
    folder : Path
        Gets ``cohort/`` (the synthetic files) and ``sabrkit.db``.
    n_patients, seed
        Size and seed of the synthetic cohort (:class:`sabrkit.synthetic.SynthConfig`).
    n_stored : int
        How many of the accessioned samples are placed into the demo boxes (the rest wait on the
        bench as ``received``).
    passwords : mapping, optional
        Password per role (``admin``, ``lab``, ``coordinator``, ``researcher``); default: random.
    password_profile : str
        argon2 parameters of the accounts (``"fast-insecure"`` only for tests).

    Returns
    -------
    DemoSite
        The database URL and the accounts (user name = role).
    """
    from sabrkit.biobank import add_consent_form, create_storage, load_samples, place_sample, record_consent
    from sabrkit.biobank.storage import position_label
    from sabrkit.registry import load_registry_folder
    from sabrkit.synthetic import SynthConfig, synthesize
    from sabrkit.web.accounts import create_user

    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "sabrkit.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    cohort = synthesize(folder / "cohort", SynthConfig(n_patients=n_patients, seed=seed, write_images=False))
    url = f"sqlite:///{database}"
    db = open_database(url, actor=_ACTOR)
    try:
        db.upgrade()
        load_registry_folder(db, cohort, actor=_ACTOR)
        summary = load_samples(db, cohort / "biobank" / "samples.csv", operator=_ACTOR)
        for path, geometry in DEMO_BOXES:
            create_storage(db, path, geometry=geometry, temperature_c=-80.0, operator=_ACTOR)
        path, geometry = DEMO_BOXES[0]
        rows, columns = (int(n) for n in geometry.split("x"))
        for index, accession_id in enumerate(summary.accession_ids[: min(n_stored, rows * columns * 2)]):
            box = DEMO_BOXES[index // (rows * columns)][0]
            slot = index % (rows * columns)
            place_sample(
                db,
                accession_id,
                box,
                position_label(slot // columns + 1, slot % columns + 1),
                operator=_ACTOR,
            )
        add_consent_form(
            db, "1.0", "SABR-RCC registry and biobank consent", dt.date(2024, 1, 1), operator=_ACTOR
        )
        with (cohort / "registry" / "patients.csv").open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                record_consent(
                    db,
                    row["study_id"],
                    "1.0",
                    dt.date.fromisoformat(row["enrolment_date"]),
                    ("storage", "future_research", "image_linkage"),
                    operator=_ACTOR,
                )
        accounts: dict[str, tuple[str, str]] = {}
        for role in ROLES:
            password = (passwords or {}).get(role) or secrets.token_urlsafe(12)
            create_user(
                db,
                role,
                password,
                role,
                display_name=f"Demo {role}",
                actor=_ACTOR,
                reason="demo account",
                password_profile=password_profile,
            )
            accounts[role] = (role, password)
    finally:
        db.dispose()
    logger.info(
        "demo site with %d patients and %d samples in %s", n_patients, len(summary.accession_ids), folder
    )
    return DemoSite(folder, url, accounts)
