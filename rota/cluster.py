"""Runs on a Dask distributed cluster: connecting, shipping runs, and :func:`solve_many`.

The parent (the machine that runs ``rota bench`` or calls :func:`solve_many`)
submits one Dask task per run; the cluster's scheduler hands each to a worker
process (``dask worker ADDRESS --nworkers N --nthreads 1``: one process per
core, one thread each). The task does not solve in the Dask worker's own
process: it hands the run to a run process that the worker keeps per thread
(:class:`rota.solvers.processes.RunProcess`), so runs on a cluster keep what
local runs have:

- the deadline: a run still going ``2 * time_limit + grace`` seconds after
  its run process received it is killed (its process group, with any solver
  child) and becomes an ``error`` (a Dask task itself cannot be stopped);
- crash isolation: a run whose run process dies (segfault, ``os._exit``,
  out of memory) is an ``error`` for that run alone; the Dask worker lives on;
- one solver per process, imported before the first run.

A run whose whole Dask worker is lost (the machine fails, the worker is
killed) is rescheduled by the scheduler onto another worker; once workers
died running it more than ``distributed.scheduler.allowed-failures`` times
(``--cluster local`` sets 1: one rerun), the scheduler gives up with
``KilledWorker`` and the run becomes an ``error``.

The parent keeps about twice the cluster's threads of runs submitted and
submits more as runs finish (:func:`run_windowed`), so neither it nor the
scheduler holds a whole bench of tasks, and Ctrl+C has little to cancel.
A running task whose future is cancelled notices within a quarter of a
second and kills its run process.

Nothing here imports Dask until a cluster is used.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from rota import signals
from rota.solvers import processes
from rota.solvers.api import plan_solve, solve
from rota.solvers.base import Result, Status
from rota.solvers.stopping import Stopping

#: Seconds to reach a scheduler, and to wait for its first worker.
CONNECT_TIMEOUT = 10.0
#: The scheduler settings of a ``--cluster local`` cluster (``docs/scaling-out.md``):
#: a run whose Dask worker died is rerun once, and a worker holds only the run it
#: executes. Dask's default saturation queues a second task on a worker, which
#: then dies with that worker and is counted a failure of its own.
LOCAL_SCHEDULER = {
    "distributed.scheduler.allowed-failures": 1,
    "distributed.scheduler.worker-saturation": 1.0,
}
#: Seconds a :func:`solve_many` run may overrun twice its time limit before it is killed.
SOLVE_GRACE = 60.0

Job = TypeVar("Job")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def connect(address: str, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` of the scheduler at ``address``, closed on exit.

    ``"local"`` starts a ``LocalCluster`` on this machine instead: ``workers``
    processes (default: one per core), one thread each, for a try-out.

    Raises
    ------
    ValueError
        The address is malformed or no scheduler answers there within
        :data:`CONNECT_TIMEOUT` seconds, or ``workers`` is given with an address.
    """
    import dask
    from distributed import Client, LocalCluster

    if address == "local":
        if workers is not None and (int(workers) != workers or workers < 1):
            raise ValueError(f"workers is {workers}, expected a positive integer")
        # The scheduler reads its configuration when it starts, so this applies
        # to the cluster's whole life.
        with dask.config.set(LOCAL_SCHEDULER):
            cluster = LocalCluster(
                n_workers=workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address="127.0.0.1:0",  # no fixed port to clash on, not exposed
            )
        with cluster, Client(cluster) as client:
            yield client
        return
    if workers is not None:
        raise ValueError(
            "workers sets the processes of --cluster local; a scheduler's workers are the "
            "ones started with `dask worker ADDRESS --nworkers N`"
        )
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = _one_line(exc)
    else:
        with client:
            yield client
        return
    # The half-made Client, held only by the failure's traceback (gone with the except
    # block), closes itself when collected. Collected while another Client starts, it
    # waits on the lock that start holds: a test suite hung there. So it goes now.
    gc.collect()
    raise ValueError(f"cannot connect to a Dask scheduler at {address}: {reason}")


def _rota_version() -> str:
    import rota

    return rota.__version__


def check_workers(client: Any) -> str:
    """Check that the cluster has workers running this rota; describe them in one line.

    Raises
    ------
    ValueError
        No worker joined within :data:`CONNECT_TIMEOUT` seconds, or one cannot
        import rota or runs another version of it.
    """
    import rota

    address = client.scheduler.address
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        raise ValueError(
            f"the Dask scheduler at {address} has no workers; start them with "
            f"`dask worker {address} --nworkers N --nthreads 1`"
        ) from None
    for worker, version in client.run(_rota_version, on_error="return").items():
        if isinstance(version, BaseException):
            raise ValueError(f"Dask worker {worker} cannot run rota: {_one_line(version)}")
        if version != rota.__version__:
            raise ValueError(
                f"Dask worker {worker} runs rota {version} and this machine rota "
                f"{rota.__version__}; install one version everywhere"
            )
    from distributed.comm import get_address_host

    threads = client.nthreads()
    hosts = {get_address_host(worker) for worker in threads}
    return (
        f"{len(threads)} Dask worker processes ({sum(threads.values())} threads) on "
        f"{len(hosts)} host{'s' * (len(hosts) != 1)}, scheduler {address}"
    )


# -- on a worker -------------------------------------------------------------------

_hosted = threading.local()


def _cancelled() -> bool:
    """Whether the Dask task running in this thread was cancelled (its result is unwanted)."""
    from distributed import get_worker
    from distributed.worker import thread_state

    task = get_worker().state.tasks.get(thread_state.key)
    return task is None or task.state == "cancelled"


def call_in_run_process(
    solver: str,
    registrations: bytes,
    function: Callable[..., Any],
    args: tuple,
    limit: float,
    options: dict[str, Any] | None = None,
) -> tuple[str, Any]:
    """Inside a Dask task: ``function(*args)`` in this thread's run process of ``solver``.

    The process, which loads ``solver`` configured with ``options`` before its
    first run, is kept for the thread's next run of the same solver, options and
    registrations (``registrations`` is a pickled
    :class:`~rota.solvers.processes.Registrations`); see
    :meth:`RunProcess.call <rota.solvers.processes.RunProcess.call>` for what
    comes back.
    """
    process = getattr(_hosted, "process", None)
    key = (solver, registrations, options or {})
    if process is not None and (process.key != key or not process.alive):
        process.close()
        process = None
    if process is None:
        process = _hosted.process = processes.RunProcess(*key)
    outcome, value = process.call(function, args, limit, _cancelled)
    if outcome != "done":
        _hosted.process = None
    return outcome, value


def worker_lost_message(exc: Any) -> str:
    """The ``error`` message of a run the scheduler gave up on (a ``KilledWorker``)."""
    return (
        f"the Dask workers running it died {exc.allowed_failures + 1} times "
        f"(the scheduler's allowed-failures is {exc.allowed_failures})"
    )


# -- on the parent -----------------------------------------------------------------


def run_windowed(
    client: Any,
    jobs: Iterable[Job],
    submit: Callable[[Job], Any],
    on_done: Callable[[Job, Any], None],
) -> None:
    """Submit ``jobs`` in order, about twice the cluster's threads at a time.

    ``submit(job)`` returns the job's future, or ``None`` when it settled the
    job itself; ``on_done(job, future)`` is called as each future finishes
    (done, erred or cancelled), in the parent's thread. On a SIGINT or SIGTERM
    (inside :func:`rota.signals.graceful`) or any exception, the futures
    still out are cancelled.

    Raises
    ------
    rota.signals.Interrupted
        A SIGINT or SIGTERM arrived.
    """
    from distributed import as_completed

    queue = deque(jobs)
    out: dict[Any, Job] = {}
    finished = as_completed()
    window, sized = 1, -float("inf")
    try:
        while queue or out:
            if signals.interrupted():
                raise signals.Interrupted(signals.received())
            if time.monotonic() - sized > 1.0:  # workers come and go
                window = 2 * max(1, sum(client.nthreads().values()))
                sized = time.monotonic()
            while queue and len(out) < window:
                job = queue.popleft()
                future = submit(job)
                if future is not None:
                    out[future] = job
                    finished.add(future)
            batch = finished.next_batch(block=False)
            if not batch:
                time.sleep(processes.POLL_SECONDS / 5)
            for future in batch:
                on_done(out.pop(future), future)
                # else the cluster keeps the result, and recomputes it if its worker is lost
                future.release()
    finally:
        if out:
            client.cancel(list(out))


def lost_scheduler(future: Any) -> ConnectionError:
    """The error of a run whose future was cancelled by someone other than rota."""
    return ConnectionError(
        f"the Dask scheduler dropped run {future.key} (lost connection or restarted); what "
        "finished is kept"
    )


# -- solve_many ----------------------------------------------------------------------


def _solve_pickled(instance_bytes: bytes, request: bytes) -> tuple[bool, bytes]:
    """In a run process: :func:`rota.solve` of one instance, the result or exception pickled."""
    import cloudpickle

    try:
        result = solve(pickle.loads(instance_bytes), **pickle.loads(request))
        return True, cloudpickle.dumps(result)
    except Exception as exc:
        try:
            return False, cloudpickle.dumps(exc)
        except Exception:  # an exception that does not pickle still says what it was
            return False, cloudpickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def _solve_task(
    instance_bytes: bytes,
    request: bytes,
    solver: str,
    seed: int,
    time_limit: float | None,
    registrations: bytes,
) -> bytes:
    """The Dask task of one :func:`solve_many` run: the pickled Result, or the solver's error."""
    import cloudpickle

    limit = float("inf") if time_limit is None else processes.deadline(time_limit, SOLVE_GRACE)
    started = time.perf_counter()
    outcome, value = call_in_run_process(
        solver, registrations, _solve_pickled, (instance_bytes, request), limit
    )
    if outcome == "done":
        ok, data = value
        if not ok:
            raise pickle.loads(data)
        return data
    if outcome == "killed":
        message = processes.killed_message(time_limit, SOLVE_GRACE)
    else:  # died; or stopped, when nobody reads the result
        message = processes.died_message(value)
    return cloudpickle.dumps(
        Result(None, None, Status.ERROR, time.perf_counter() - started, solver, seed,
               stats={"error": message})
    )  # fmt: skip


def solve_many(
    instances: Sequence[Any],
    solver: str | None = None,
    time_limit: float | None = None,
    seed: int = 0,
    *,
    client: Any = None,
    warm_start: Any = None,
    stop: Stopping | str | Mapping[str, Any] | None = None,
    **options: Any,
) -> list[Result]:
    """Solve many instances of one family; with a Dask ``client``, one task per instance.

    Without ``client`` this is :func:`rota.solve` on the list (a batched
    solver gets the whole list in one call). With one, every instance is
    solved on the cluster by a run process of a worker, with its own
    ``time_limit``; the checks of :func:`rota.solve` run here first, so bad
    arguments fail before any task is sent.

    Parameters
    ----------
    instances
        Instances of one family.
    solver, time_limit, seed, warm_start, stop, options
        As for :func:`rota.solve`; ``warm_start`` has one entry per instance.
    client
        A ``distributed.Client`` (see :func:`connect`), or ``None``.

    Returns
    -------
    list[Result]
        In input order. On a cluster, a run whose run process died, that ran
        past ``2 * time_limit + 60`` s, or whose Dask workers kept dying, is a
        :attr:`Status.ERROR <rota.Status.ERROR>` result with the reason in
        ``stats["error"]``.

    Raises
    ------
    rota.signals.Interrupted
        A SIGINT or SIGTERM arrived; ``results`` holds a list in input order
        with ``None`` for every instance not finished (with ``client``), or
        what :func:`rota.solve` has.
    Exception
        What :func:`rota.solve` raises; on a cluster, the first error a
        solver raised (the other runs are cancelled).
    """
    instances = list(instances)
    if client is None:
        return solve(
            instances, solver=solver, time_limit=time_limit, seed=seed, warm_start=warm_start,
            stop=stop, **options,
        )  # fmt: skip
    import cloudpickle

    plan = plan_solve(instances, True, solver, time_limit, seed, warm_start, stop, options)
    name, stopping = plan.backend.name, plan.stopping
    check_workers(client)
    registrations = pickle.dumps(processes.registrations([name]))
    results: list[Result | None] = [None] * len(instances)

    def submit(index: int) -> Any:
        starts = list(plan.warm[index]) or None
        request = dict(solver=name, stop=stopping, seed=seed, warm_start=starts, **options)
        return client.submit(
            _solve_task, cloudpickle.dumps(instances[index]), cloudpickle.dumps(request), name,
            seed, stopping.time, registrations, pure=False,
        )  # fmt: skip

    def on_done(index: int, future: Any) -> None:
        from distributed import KilledWorker

        if future.status == "cancelled":
            raise lost_scheduler(future)
        if future.status == "error" and isinstance(future.exception(), KilledWorker):
            message = worker_lost_message(future.exception())
            results[index] = Result(None, None, Status.ERROR, 0.0, name, seed,
                                    stats={"error": message})  # fmt: skip
            return
        results[index] = pickle.loads(future.result())

    with signals.graceful():
        try:
            run_windowed(client, range(len(instances)), submit, on_done)
        except signals.Interrupted as exc:
            raise signals.Interrupted(exc.signum, results) from None
    return results


__all__ = [
    "CONNECT_TIMEOUT", "LOCAL_SCHEDULER", "SOLVE_GRACE", "call_in_run_process",
    "check_workers", "connect", "lost_scheduler", "run_windowed", "solve_many",
    "worker_lost_message",
]  # fmt: skip
