"""Where per-lesion work runs: in this process, a local process pool, or a Dask cluster.

:func:`run_tasks` applies one picklable function to a list of small task objects and yields
the results as they complete, so callers can stream them to disk instead of holding them.

* ``scheduler=None`` and one worker: in this process (pyradiomics' logger quietened).
* ``scheduler=None`` and more workers: a :class:`concurrent.futures.ProcessPoolExecutor`;
  each worker pins ITK and BLAS to one thread (:func:`init_worker`) so two workers use two
  cores, not four. Workers are forked when this process runs no other Python thread (they
  start in milliseconds, with pyradiomics already imported), spawned otherwise
  (:func:`start_method`; ``SABRKIT_START_METHOD`` overrides).
* ``scheduler="tcp://host:8786"`` (any address :class:`dask.distributed.Client` accepts): the
  tasks run on that Dask cluster; :func:`init_worker` runs once on every worker first. Input
  files must be readable from the workers (shared storage) under the same paths.

A spawned process costs several lesion extractions to start (interpreter, SimpleITK,
pyradiomics, the caller's main module), so the local pool starts one worker per
``min_tasks_per_worker`` pending tasks at most: an incremental run that has two new lesions to
extract does them in this process.
"""

from __future__ import annotations

import logging
import multiprocessing
import numbers
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from importlib import import_module
from typing import Any, TypeVar

from sabrkit.errors import ConfigError, format_problem

__all__ = [
    "RADIOMICS_LOG_LEVEL",
    "START_METHOD_ENV",
    "init_worker",
    "radiomics_quiet",
    "resolve_workers",
    "run_tasks",
    "start_method",
]

logger = logging.getLogger(__name__)

#: Level the ``radiomics`` logger is set to during extraction (its INFO/WARNING chatter is
#: noise in a batch; its ERROR messages explain NaN features and still reach its own handler).
RADIOMICS_LOG_LEVEL = logging.ERROR

#: Pending tasks per local worker process below which fewer processes are started.
MIN_TASKS_PER_WORKER = 4

#: Environment variable that sets the local pool's start method (``fork``, ``spawn`` or ``forkserver``).
START_METHOD_ENV = "SABRKIT_START_METHOD"

_SCHEDULER_PREFIXES = ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def radiomics_quiet() -> Iterator[None]:
    """Set the ``radiomics`` logger's level for the block; adds no handler, restores the level."""
    import radiomics  # noqa: F401  - its import sets the logger to INFO; import before adjusting

    radiomics_logger = logging.getLogger("radiomics")
    previous = radiomics_logger.level
    radiomics_logger.setLevel(RADIOMICS_LOG_LEVEL)
    try:
        yield
    finally:
        radiomics_logger.setLevel(previous)


def init_worker() -> None:
    """Worker initializer: one ITK / BLAS thread per worker process, quiet pyradiomics."""
    import radiomics  # noqa: F401  - its import sets the logger to INFO; import before adjusting
    import SimpleITK as sitk
    from threadpoolctl import threadpool_limits

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    threadpool_limits(limits=1)
    logging.getLogger("radiomics").setLevel(RADIOMICS_LOG_LEVEL)


def resolve_workers(n_jobs: int, n_tasks: int, min_tasks_per_worker: int = MIN_TASKS_PER_WORKER) -> int:
    """Number of local worker processes for ``n_tasks`` pending tasks.

    ``min(n_jobs, ceil(n_tasks / min_tasks_per_worker))``, at least 1; ``n_jobs=-1`` means
    every core.

    Raises
    ------
    ConfigError
        ``n_jobs`` is not a positive integer or -1.
    """
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0 or n_jobs < -1:
        raise ConfigError(
            format_problem(
                f"n_jobs = {n_jobs!r}", "n_jobs is a positive integer or -1 (all cores)", "e.g. 1 or 4"
            )
        )
    wanted = (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)
    useful = -(-n_tasks // max(1, min_tasks_per_worker))
    return max(1, min(wanted, useful))


def check_scheduler(scheduler: str | None) -> str | None:
    """Validate a Dask scheduler address (``None`` means the local pool)."""
    if scheduler is None:
        return None
    if not isinstance(scheduler, str) or not scheduler.startswith(_SCHEDULER_PREFIXES):
        raise ConfigError(
            format_problem(
                f"scheduler {scheduler!r}",
                f"a Dask scheduler address starts with one of {list(_SCHEDULER_PREFIXES)}",
                "pass e.g. tcp://dask-scheduler:8786 (or leave it unset for the local process pool)",
            )
        )
    return scheduler


def _progress(enabled: bool, description: str) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def start_method() -> str:
    """Start method of the local worker processes: ``fork`` when safe, else ``spawn``.

    A spawned worker starts a new interpreter and imports SimpleITK, pyradiomics and the
    caller's main module again (about 0.6 s of CPU each, a few lesions' worth); a forked one
    starts in milliseconds with all of that inherited. Forking is safe when no other Python
    thread runs here (a thread holding a lock at the fork would leave that lock held forever in
    the child). The native libraries a worker uses cope with being forked: OpenBLAS registers
    ``pthread_atfork`` hooks, and SimpleITK filters run multi-threaded in a child forked after
    the parent ran multi-threaded filters (tested). So: ``fork`` when this process runs only
    its main thread and the platform offers fork, ``spawn`` otherwise. ``SABRKIT_START_METHOD``
    (``fork``, ``spawn`` or ``forkserver``) overrides the choice.

    Raises
    ------
    ConfigError
        ``SABRKIT_START_METHOD`` names a method this platform does not offer.
    """
    available = multiprocessing.get_all_start_methods()
    forced = os.environ.get(START_METHOD_ENV, "").strip()
    if forced:
        if forced not in available:
            raise ConfigError(
                format_problem(
                    f"{START_METHOD_ENV}={forced!r}",
                    f"one of {available} on this platform",
                    f"unset {START_METHOD_ENV} (sabrkit then picks fork or spawn itself)",
                )
            )
        return forced
    return "fork" if "fork" in available and threading.active_count() == 1 else "spawn"


def _start_local(
    function: Callable[[T], R], tasks: Sequence[T], workers: int, preload: Sequence[str], stack: ExitStack
) -> Iterator[R]:
    """Start the local work now (the pool's processes exist on return) and return its results."""
    if workers == 1:
        return _run_in_process(function, tasks)
    from concurrent.futures import ProcessPoolExecutor

    method = start_method()
    if method == "fork":
        for name in preload:  # imported once here, inherited by every forked worker
            import_module(name)
    logger.debug("starting %d %s worker process(es)", workers, method)
    context = multiprocessing.get_context(method)
    pool = stack.enter_context(
        ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=init_worker)
    )
    stack.callback(pool.shutdown, wait=True, cancel_futures=True)  # also on an error while results are read
    # The first submit creates the processes (all of them, before the pool's own manager thread
    # starts, when forking), so they are forked before the progress bar starts its thread.
    futures = [pool.submit(function, task) for task in tasks]
    return _completed(futures)


def _run_in_process(function: Callable[[T], R], tasks: Sequence[T]) -> Iterator[R]:
    with radiomics_quiet():
        for task in tasks:
            yield function(task)


def _completed(futures: list) -> Iterator[R]:
    from concurrent.futures import as_completed

    for future in as_completed(futures):
        yield future.result()


def _run_dask(function: Callable[[T], R], tasks: Sequence[T], scheduler: str) -> Iterator[R]:
    from distributed import Client, as_completed

    try:
        client = Client(scheduler, set_as_default=False, timeout="30s")
    except OSError as exc:
        raise ConfigError(
            format_problem(
                f"no Dask scheduler answers at {scheduler} ({exc})",
                "--scheduler names a running dask scheduler",
                "start one (dask scheduler; dask worker <address>) or leave --scheduler unset",
            )
        ) from exc
    with client:
        client.run(init_worker)
        futures = client.map(function, list(tasks), pure=False)
        completed = as_completed(futures, loop=client.loop)
        del futures  # as_completed holds them; each is dropped (and forgotten by the cluster) once read
        for future in completed:
            yield future.result()


def run_tasks(
    function: Callable[[T], R],
    tasks: Sequence[T],
    *,
    n_jobs: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
    description: str = "extracting lesion features",
    min_tasks_per_worker: int = MIN_TASKS_PER_WORKER,
    preload: Sequence[str] = (),
) -> Iterator[R]:
    """Apply ``function`` to every task and yield the results in completion order.

    Parameters
    ----------
    function : callable
        A module-level (picklable) function of one task.
    tasks : sequence
        Small picklable task descriptions (paths and settings, never images).
    n_jobs : int, default 1
        Local worker processes (-1: every core); ignored when ``scheduler`` is given.
    scheduler : str, optional
        Dask scheduler address (``tcp://host:8786``).
    progress : bool, default True
        Rich progress bar on stderr.
    description : str
        Label of the progress bar.
    min_tasks_per_worker : int
        See :func:`resolve_workers`.
    preload : sequence of str
        Modules ``function`` imports when it runs; with forked local workers they are imported
        here first, so each worker inherits them instead of importing them again.

    Yields
    ------
    object
        ``function(task)`` for each task, in completion order (callers sort).
    """
    scheduler = check_scheduler(scheduler)
    workers = resolve_workers(n_jobs, len(tasks), min_tasks_per_worker)
    if not tasks:
        return
    where = f"Dask scheduler {scheduler}" if scheduler else f"{workers} local worker(s)"
    logger.info("%s: %d task(s) on %s", description, len(tasks), where)
    with ExitStack() as stack:
        if scheduler:
            results = _run_dask(function, tasks, scheduler)
        else:
            results = _start_local(function, tasks, workers, preload, stack)
        bar = stack.enter_context(
            _progress(progress, description)
        )  # its refresh thread starts after any fork
        job = bar.add_task("tasks", total=len(tasks))
        for result in results:
            bar.advance(job)
            yield result
