"""The bench's runs on a Dask cluster: the same runs and rows, another executor.

:class:`ClusterPool` stands in for the local worker processes of
:mod:`rota.bench.runner`: every run is one Dask task that calls the same
:func:`~rota.bench.runner.execute` in a run process of a Dask worker
(:func:`rota.cluster.call_in_run_process`) and returns the same plain row
fields, which the parent appends to ``runs.csv`` as they come back.

The parent ships each instance itself, pickled, so workers need neither the
files nor the folders beside them (a SatNet week's maintenance CSV, a
reference table): an instance is read here when its first run is submitted,
checked against the content the bench planned with, and submitted once as a
task of its own whose result every run of it takes as an argument. The
scheduler keeps the data while runs need it, copies it between workers, and
recomputes it from the task if the worker holding it is lost; it is released
once no run in flight needs it.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from typing import Any

from rota.bench.runner import InstanceRef, _Task, execute, instance_of, one_line
from rota.cluster import (
    call_in_run_process,
    lost_scheduler,
    run_windowed,
    worker_lost_message,
)
from rota.solvers import processes


def _instance_data(data: bytes) -> bytes:
    """The task that holds a pickled instance on the cluster."""
    return data


def run_task(task: _Task, instance_bytes: bytes, registrations: bytes, grace: float) -> dict:
    """The Dask task of one run: :func:`execute` in a run process, under the run's deadline."""
    outcome, value = call_in_run_process(
        task.solver,
        registrations,
        execute,
        (task, instance_bytes),
        processes.deadline(task.time_limit, grace),
        task.options,
    )
    if outcome == "done":
        return value
    if outcome == "killed":
        return {"status": "error", "message": processes.killed_message(task.time_limit, grace)}
    # died; or stopped, when the parent cancelled the run and reads nothing
    return {"status": "error", "message": processes.died_message(value)}


class ClusterPool:
    """Runs of a bench as Dask tasks; ``on_done(task, row fields)`` as each finishes.

    The caller checks the cluster first (:func:`rota.cluster.check_workers`).
    """

    def __init__(
        self,
        client: Any,
        registrations: processes.Registrations,
        grace: float,
        on_done: Callable[[_Task, dict[str, Any]], None],
    ) -> None:
        self.client = client
        self.registrations = pickle.dumps(registrations)
        self.grace = grace
        self.on_done = on_done
        self.instances: dict[InstanceRef, list] = {}  # [future, runs in flight]

    def run(self, tasks: list[_Task]) -> None:
        """Run ``tasks``; raises :class:`~rota.signals.Interrupted` on SIGINT or SIGTERM."""
        run_windowed(self.client, tasks, self._submit, self._done)

    def _submit(self, task: _Task) -> Any:
        held = self.instances.get(task.ref)
        if held is None:
            instance, failure = instance_of(task)
            if failure is not None:
                self.on_done(task, {"status": "error", "message": failure})
                return None
            import cloudpickle

            # one key per path and content: two files of one content may still
            # differ in what their reader takes from the path (the name)
            where = hashlib.sha256(task.ref.id.encode()).hexdigest()[:16]
            future = self.client.submit(
                _instance_data,
                cloudpickle.dumps(instance),
                key=f"rota-instance-{task.digest}-{where}",
            )
            held = self.instances[task.ref] = [future, 0]
        held[1] += 1
        return self.client.submit(
            run_task, task, held[0], self.registrations, self.grace, pure=False
        )

    def _done(self, task: _Task, future: Any) -> None:
        held = self.instances[task.ref]
        held[1] -= 1
        if not held[1]:
            del self.instances[task.ref]
        if future.status == "cancelled":
            raise lost_scheduler(future)
        if future.status == "error":
            from distributed import KilledWorker

            exc = future.exception()
            message = (
                worker_lost_message(exc)
                if isinstance(exc, KilledWorker)
                else one_line(f"{type(exc).__name__}: {exc}")
            )
            self.on_done(task, {"status": "error", "message": message})
            return
        self.on_done(task, future.result())

    def close(self) -> None:
        """Let the cluster drop the instances (runs still out were cancelled by ``run``)."""
        self.instances.clear()


__all__ = ["ClusterPool", "run_task"]
