"""One exception hierarchy for sabrkit.

Every error raised on purpose by sabrkit derives from :class:`SabrkitError`. Domain errors also
subclass the builtin they refine, so callers that only know the builtin still catch them
(``except ValueError`` catches an :class:`ImageGeometryError`).

Messages name the value, the rule it broke and the fix, e.g.::

    lesion SABR-RCC-003-L2: image spacing (0.8, 0.8, 2.0) != mask spacing (1.0, 1.0, 2.0);
    rule: image and mask must share one voxel grid; fix: resample the mask onto the image grid
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SabrkitError",
    "ConfigError",
    "ValidationError",
    "RowError",
    "ImportValidationError",
    "ConsentError",
    "ImageGeometryError",
    "ImageReadError",
    "EmptyMaskError",
    "ExtractionError",
    "CaseFailure",
    "ModelInputError",
    "NotFoundError",
    "SharedDataNotFoundError",
    "SchemaVersionError",
    "format_problem",
    "pydantic_problems",
]


def format_problem(what: str, rule: str, fix: str) -> str:
    """Build the house message: what was wrong, which rule it broke, how to fix it."""
    return f"{what}; rule: {rule}; fix: {fix}"


def pydantic_problems(errors: Iterable[Mapping[str, Any]]) -> str:
    """``loc: msg`` for each error of a ``pydantic.ValidationError`` (pass ``exc.errors()``), ``; ``-joined.

    The top level (an empty ``loc``) is written ``<top>``.
    """
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}" for err in errors)


class SabrkitError(Exception):
    """Base class of every error sabrkit raises on purpose."""


class ConfigError(SabrkitError, ValueError):
    """A configuration file or setting is missing, unknown or out of range."""


class ValidationError(SabrkitError, ValueError):
    """A value entered or imported breaks a domain rule.

    ``field`` (optional, keyword only) names the offending field of a form or row, so a caller
    (the web's forms) can show the message beside it; None when the error is not about one field.
    """

    def __init__(self, *args: object, field: str | None = None):
        super().__init__(*args)
        self.field = field


class NotFoundError(SabrkitError, LookupError):
    """A referenced record (patient, lesion, sample) does not exist."""


class SharedDataNotFoundError(NotFoundError, FileNotFoundError):
    """The study's data folder outside the repository (``../shared/data``) is not where it should be."""


class SchemaVersionError(SabrkitError, RuntimeError):
    """The database's schema is not the revision this version of sabrkit uses (migrate it)."""


class ConsentError(SabrkitError, PermissionError):
    """An action is not covered by the participant's consent."""


@dataclass(frozen=True)
class RowError:
    """One problem in one row of an import file."""

    row: int
    column: str
    value: object
    rule: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}, value {self.value!r}: {self.rule}"


class ImportValidationError(ValidationError):
    """An import file has bad rows. Holds every row error found; nothing was committed.

    ``changed`` (keyword, default False) words the message for a change of stored records (a
    correction) instead of an import: "nothing was changed".
    """

    def __init__(self, source: str, errors: Sequence[RowError], *, changed: bool = False):
        self.source = source
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}" for e in self.errors)
        first = self.errors[0].column.rsplit(":", 1)[-1] if self.errors else None
        outcome = (
            "nothing was changed. Fix every value listed and try again"
            if changed
            else "nothing was imported. Fix every row listed and import again"
        )
        super().__init__(f"{source}: {len(self.errors)} bad row value(s); {outcome}:\n{lines}", field=first)

    @property
    def fields(self) -> list[str]:
        """The offending fields (column names without the file), in error order, each once."""
        return list(dict.fromkeys(e.column.rsplit(":", 1)[-1] for e in self.errors))


class ImageReadError(SabrkitError, FileNotFoundError):
    """An image or mask file is missing or unreadable."""


class ImageGeometryError(SabrkitError, ValueError):
    """Image and mask (or two images) do not share one voxel grid."""


class EmptyMaskError(SabrkitError, ValueError):
    """A mask has no foreground voxel for the requested label."""


class ModelInputError(SabrkitError, ValueError):
    """Data handed to a model or validation routine break its rules."""


@dataclass(frozen=True)
class CaseFailure:
    """One failed case of a batch job (a lesion in feature extraction, a series in ingest)."""

    case_id: str
    stage: str
    reason: str

    def __str__(self) -> str:
        return f"{self.case_id} [{self.stage}]: {self.reason}"


class ExtractionError(SabrkitError, RuntimeError):
    """A batch job failed above its allowed failure fraction; lists every failed case."""

    def __init__(self, failures: Iterable[CaseFailure], n_total: int, max_failure_fraction: float):
        self.failures = list(failures)
        self.n_total = n_total
        self.max_failure_fraction = max_failure_fraction
        lines = "\n".join(f"  - {f}" for f in self.failures)
        super().__init__(
            f"{len(self.failures)} of {n_total} case(s) failed, above the allowed failure "
            f"fraction {max_failure_fraction:g}; no output was written. Failed cases:\n{lines}\n"
            "Fix the inputs named above and run again (or, to accept recorded failures, raise the "
            "allowed fraction: max_failure_fraction in params.yaml, --max-failure-fraction on the CLI)."
        )
