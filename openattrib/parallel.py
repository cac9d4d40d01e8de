"""The one place that knows about joblib and Dask: map a function over tasks, results in order.

Estimators cut their work into tasks whose results do not depend on where they run
(random streams are derived from the task's index, never from the worker), so serial,
local-process and Dask runs give bit-identical results.

>>> from openattrib.parallel import map_batches
>>> map_batches(abs, [-1, 2, -3])
[1, 2, 3]
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .errors import OpenAttribError, ValidationError

__all__ = ["Executor", "map_batches", "run_isolated", "BACKENDS", "WorkerLostError"]

log = logging.getLogger("openattrib")

BACKENDS = ("serial", "loky", "dask")


class WorkerLostError(OpenAttribError, RuntimeError):
    """A worker process died and the work could not be completed after retries."""


def _check_n_jobs(n_jobs: Any) -> int:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ValidationError(
            f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs!r}"
        )
    return n_jobs


def _is_client(obj: Any) -> bool:
    return hasattr(obj, "submit") and hasattr(obj, "scatter") and hasattr(obj, "gather")


class Executor:
    """Runs tasks serially, in local worker processes (joblib/loky) or on a Dask cluster.

    Parameters
    ----------
    n_jobs : int, default 1
        Local worker processes for ``backend="loky"`` (-1: all cores).
    backend : {"serial", "loky", "dask"}, optional
        Default: ``"dask"`` when a client or scheduler is given, else ``"serial"`` for
        ``n_jobs=1`` and ``"loky"`` otherwise.
    client : dask.distributed.Client or str, optional
        A connected client, or the address of a scheduler (``"tcp://host:8786"``).
    scheduler : str, optional
        Scheduler address (alternative spelling of ``client="tcp://..."``).
    connect_timeout : float, default 5
        Seconds to wait for a scheduler before giving up (before any work is done).
    retries : int, default 2
        How many times a round is re-run after a worker process died. Tasks are pure
        functions of their index, so a re-run gives the same results; lost work is never
        silently dropped (after the retries a :class:`WorkerLostError` is raised).

    Notes
    -----
    On Dask the ``shared`` object (the game) is sent to each worker once and reused by the
    tasks that run there; games that keep state (``ModelUtility``'s cache and failure
    counts) expect one thread per worker process (``threads_per_worker=1``).

    Examples
    --------
    >>> with Executor() as ex:
    ...     ex.map(lambda shared, t: shared * t, [1, 2], shared=10)
    [10, 20]
    """

    def __init__(
        self,
        n_jobs: int = 1,
        backend: str | None = None,
        client: Any = None,
        scheduler: str | None = None,
        connect_timeout: float = 5.0,
        retries: int = 2,
    ) -> None:
        self.n_jobs = _check_n_jobs(n_jobs)
        if client is not None and scheduler is not None:
            raise ValidationError("pass either client= or scheduler=, not both")
        address = scheduler if scheduler is not None else client
        if backend is None:
            backend = "dask" if address is not None else ("serial" if self.n_jobs == 1 else "loky")
        if backend not in BACKENDS:
            raise ValidationError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if address is not None and backend != "dask":
            raise ValidationError(
                f"client=/scheduler= are for backend='dask', but backend={backend!r}"
            )
        self.backend = backend
        self.retries = int(retries)
        self._parallel: Any = None
        self._client: Any = None
        self._own_client = False
        self._scattered: dict[int, tuple[Any, Any]] = {}
        if backend == "dask":
            self._connect(address, float(connect_timeout))

    # ---------------------------------------------------------------- set-up
    def _connect(self, address: Any, timeout: float) -> None:
        try:
            from dask.distributed import Client, get_client
        except ImportError:
            raise ValidationError(
                "backend='dask' needs dask.distributed; install it with pip install 'openattrib[dask]'"
            ) from None
        if address is None:
            try:
                self._client = get_client()
            except ValueError:
                raise ValidationError(
                    "backend='dask' needs client= (a dask.distributed.Client) or "
                    "scheduler='tcp://host:8786', and no default client exists"
                ) from None
        elif _is_client(address):
            self._client = address
            status = getattr(address, "status", "running")
            if status not in ("running", "connecting"):
                raise ValidationError(
                    f"the Dask client passed as client= is not running (status {status!r})"
                )
        elif isinstance(address, str):
            try:
                _probe_tcp(address, timeout)
                self._client = Client(address, timeout=f"{timeout}s", set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ValidationError(
                    f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s ({exc}); "
                    "check the address and that `dask scheduler` is running there, or run on local "
                    "processes with n_jobs= instead"
                ) from None
            self._own_client = True
        else:
            raise ValidationError(
                f"client must be a dask.distributed.Client or a scheduler address string, got {type(address).__name__}"
            )

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Release workers, scattered data and any client this executor opened."""
        if self._parallel is not None:
            self._parallel.__exit__(None, None, None)
            self._parallel = None
        self._scattered.clear()
        if self._own_client and self._client is not None:
            self._client.close()
        self._client = None

    @property
    def workers(self) -> int:
        """Number of workers tasks can run on at once."""
        if self.backend == "serial":
            return 1
        if self.backend == "loky":
            import joblib

            return joblib.effective_n_jobs(self.n_jobs)
        return max(1, len(self._client.scheduler_info().get("workers", {})))

    def describe(self) -> dict[str, Any]:
        """Where the work runs, for diagnostics."""
        out: dict[str, Any] = {"backend": self.backend, "n_jobs": self.n_jobs}
        if self.backend == "dask":
            out["scheduler"] = str(
                getattr(self._client, "scheduler", None) and self._client.scheduler.address
            )
        return out

    # ------------------------------------------------------------------ work
    def check_shareable(self, obj: Any, label: str = "game") -> None:
        """Raise a clear error now if ``obj`` cannot be sent to worker processes."""
        if self.backend == "serial":
            return
        try:
            import cloudpickle as pickler  # what loky and Dask use when it is installed
        except ImportError:  # pragma: no cover
            import pickle as pickler
        try:
            pickler.dumps(obj)
        except Exception as exc:
            from .errors import UnsupportedError

            raise UnsupportedError(
                f"the {label} cannot be sent to worker processes ({type(exc).__name__}: {exc}); "
                "run with n_jobs=1, or build it from module-level functions and picklable objects"
            ) from None

    def map(self, fn: Callable[..., Any], tasks: Sequence[Any], shared: Any = None) -> list[Any]:
        """``[fn(shared, task) for task in tasks]`` (or ``fn(task)`` without ``shared``), in task order."""
        return list(self.imap(fn, tasks, shared=shared))

    def imap(
        self, fn: Callable[..., Any], tasks: Sequence[Any], shared: Any = None
    ) -> Iterator[Any]:
        """Like :meth:`map` but yields each result, in task order, as soon as it is available.

        If a worker process dies, the tasks not yet yielded are run again (up to
        ``retries`` times); results already yielded are never recomputed or lost.
        """
        tasks = list(tasks)
        done = 0
        attempt = 0
        while done < len(tasks):
            try:
                for result in self._iterate(fn, tasks[done:], shared):
                    yield result
                    done += 1
            except Exception as exc:
                if not _is_worker_loss(exc):
                    raise
                if attempt == self.retries:
                    raise WorkerLostError(
                        f"a worker process died ({type(exc).__name__}: {exc}) and the remaining "
                        f"{len(tasks) - done} tasks still failed after {self.retries} retries; their "
                        "results are not included. Check worker memory limits, or run with n_jobs=1 "
                        "to see the underlying error"
                    ) from exc
                attempt += 1
                log.warning(
                    "a worker process died (%s); re-running %d tasks (retry %d of %d)",
                    type(exc).__name__,
                    len(tasks) - done,
                    attempt,
                    self.retries,
                )
                self._reset_after_loss()

    def _iterate(self, fn: Callable[..., Any], tasks: list[Any], shared: Any) -> Iterator[Any]:
        if self.backend == "serial":
            return (_call(fn, shared, t) for t in tasks)
        if self.backend == "loky":
            return self._iterate_loky(fn, tasks, shared)
        return self._iterate_dask(fn, tasks, shared)

    def _iterate_loky(self, fn: Callable[..., Any], tasks: list[Any], shared: Any) -> Iterator[Any]:
        import joblib

        if self._parallel is None:
            self._parallel = joblib.Parallel(
                n_jobs=self.n_jobs, backend="loky", return_as="generator"
            )
            self._parallel.__enter__()
        return self._parallel(joblib.delayed(_call)(fn, shared, t) for t in tasks)

    def _iterate_dask(self, fn: Callable[..., Any], tasks: list[Any], shared: Any) -> Iterator[Any]:
        client = self._client
        shared_ref = shared
        if shared is not None:
            cached = self._scattered.get(id(shared))
            if cached is None or cached[0] is not shared:
                cached = (shared, client.scatter(shared, broadcast=True, hash=False))
                self._scattered[id(shared)] = cached
            shared_ref = cached[1]
        futures = [client.submit(_call, fn, shared_ref, t, pure=False) for t in tasks]
        try:
            for future in futures:
                yield future.result()
        finally:
            client.cancel([f for f in futures if not f.done()])

    def _reset_after_loss(self) -> None:
        if self._parallel is not None:
            try:
                self._parallel.__exit__(None, None, None)
            except Exception:  # pragma: no cover - a broken pool may fail to shut down
                pass
            self._parallel = None
        self._scattered.clear()


def _probe_tcp(address: str, timeout: float) -> None:
    """Fail fast (connection refused, unknown host) before Dask's own retrying connect."""
    import socket
    from urllib.parse import urlsplit

    if "://" not in address:
        address = f"tcp://{address}"
    parts = urlsplit(address)
    if parts.scheme not in ("tcp", "tls") or parts.hostname is None or parts.port is None:
        return  # other transports (inproc, ucx, ws): let Dask connect
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
        pass


def _call(fn: Callable[..., Any], shared: Any, task: Any) -> Any:
    return fn(task) if shared is None else fn(shared, task)


def _is_worker_loss(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(
        names & {"TerminatedWorkerError", "BrokenProcessPool", "KilledWorker", "BrokenExecutor"}
    )


def map_batches(
    fn: Callable[..., Any],
    tasks: Sequence[Any],
    n_jobs: int = 1,
    backend: str | None = None,
    client: Any = None,
    scheduler: str | None = None,
    shared: Any = None,
) -> list[Any]:
    """Run ``fn`` over ``tasks`` (``fn(shared, task)`` when ``shared`` is given); results in task order.

    A one-shot wrapper around :class:`Executor`; estimators keep one executor per run.

    Examples
    --------
    >>> map_batches(max, [1, 5], shared=3)
    [3, 5]
    """
    with Executor(n_jobs=n_jobs, backend=backend, client=client, scheduler=scheduler) as ex:
        return ex.map(fn, tasks, shared=shared)


_ISOLATED_CHILD = """
import pickle, sys
with open(sys.argv[1], "rb") as handle:
    fn, args = pickle.load(handle)
try:
    outcome = (True, fn(*args))
except BaseException as exc:  # handed to the parent, which raises it
    outcome = (False, exc)
with open(sys.argv[1], "wb") as handle:
    pickle.dump(outcome, handle, protocol=pickle.HIGHEST_PROTOCOL)
"""


def run_isolated(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` run in a fresh Python process; returns its result or raises its error.

    For steps whose memory should all be handed back to the system when they end (the
    process exits), such as tokenising a corpus before sorting it. ``fn`` must be a
    module-level function and ``args`` and the result picklable. The child is a plain
    ``python -c`` started with this interpreter and ``sys.path`` (no ``fork``, and the
    caller's ``__main__`` is never re-imported); its standard streams are the caller's.
    """
    import os
    import pickle
    import subprocess
    import sys
    import tempfile

    handle, name = tempfile.mkstemp(prefix="openattrib-isolated-", suffix=".pickle")
    try:
        with os.fdopen(handle, "wb") as out:
            pickle.dump((fn, args), out, protocol=pickle.HIGHEST_PROTOCOL)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        done = subprocess.run([sys.executable, "-c", _ISOLATED_CHILD, name], env=env, check=False)
        if done.returncode != 0:
            raise WorkerLostError(
                f"the process running {getattr(fn, '__name__', fn)!r} ended with code "
                f"{done.returncode} (killed, e.g. out of memory?); nothing was kept"
            )
        with open(name, "rb") as result:
            ok, value = pickle.load(result)
    finally:
        os.unlink(name)
    if not ok:
        raise value
    return value
