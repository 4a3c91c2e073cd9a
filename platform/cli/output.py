"""Console output, logging set-up and error reporting shared by every CLI command.

Library code only logs; this module is the one place that configures logging handlers and
turns a :class:`~sabrkit.errors.SabrkitError` into a readable message and a non-zero exit.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

from sabrkit.errors import SabrkitError

__all__ = ["console", "err_console", "configure_logging", "handle_errors"]

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def configure_logging(level: str = "INFO") -> None:
    """Send sabrkit's log records to stderr through rich, once."""
    root = logging.getLogger()
    if any(isinstance(h, RichHandler) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False)
    logging.basicConfig(level=level.upper(), format="%(message)s", handlers=[handler])
    for noisy in ("radiomics", "alembic", "mlflow", "urllib3", "matplotlib", "distributed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def handle_errors(func: F) -> F:
    """Print a SabrkitError as 'error: <message>' and exit with status 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SabrkitError as exc:
            err_console.print(
                Text.assemble(("error: ", "bold red"), f"{type(exc).__name__}: {exc}"),
                highlight=False,
            )
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]
