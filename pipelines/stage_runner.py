"""Run a DVC stage entry point with sabrkit's logging and error reporting.

A :class:`~sabrkit.errors.SabrkitError` ends the stage with its message (what failed, the rule,
the fix) and exit status 1, so `dvc repro` stops there and prints it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from sabrkit.cli.output import configure_logging, err_console
from sabrkit.errors import SabrkitError


def run_stage(main: Callable[[], None]) -> None:
    configure_logging("INFO")
    try:
        main()
    except SabrkitError as exc:
        logging.getLogger("sabrkit.pipelines").debug("stage failed", exc_info=True)
        err_console.print(f"error: {type(exc).__name__}: {exc}", markup=False, highlight=False)
        sys.exit(1)
