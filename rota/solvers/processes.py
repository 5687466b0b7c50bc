"""Run processes: fresh interpreters that run one solver's runs, one at a time.

Runs of a bench or of a cluster solve never happen in the process that plans
them, for four reasons:

- a crash (segfault, ``os._exit``, out of memory) or a run past its deadline
  is pinned to one run and ends with its process, which leads a process group
  of its own, so a solver's own children (CBC) are killed with it;
- two backends' native libraries can clash in one process (HiGHS from
  highspy and the copy inside OR-Tools make whichever is imported second
  fail), so a process serves one solver only;
- the solver and the modules its runs import (torch for ``ga``, the policy's
  and the refiner's for ``hybrid``: :func:`rota.solvers.base.preload`) are
  imported before the first run, so that import time counts neither against a
  run's wall time nor against its deadline;
- a process can be given a number of threads for its native libraries
  (OpenMP, so torch's), so that parallel runs do not oversubscribe the cores.

:func:`serve` is the loop every run process runs. ``rota bench`` starts run
processes through :mod:`multiprocessing` (:mod:`rota.bench.runner`); a Dask
worker starts them as plain subprocesses (:class:`RunProcess`), because Dask's
worker processes are daemonic and :mod:`multiprocessing` refuses to give a
daemonic process children.

A run process watches the process that started it: once that is gone (a
bench killed with SIGKILL, a Dask worker lost), it kills its own group at once
instead of running on as an orphan.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

#: How often a run process checks that its parent lives, and a host that its run does.
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Registrations:
    """What a run process re-registers: the problem families and the solvers of each name.

    Run processes start from a fresh interpreter, so families and solvers added
    at run time (:func:`rota.problems.register_problem`,
    :func:`rota.solvers.registry.register`) would be unknown there otherwise.
    """

    families: dict[str, str]
    solvers: list[tuple[str, str, Any]]  # (family, name, target)


def registrations(solvers: list[str]) -> Registrations:
    """The registrations run processes of ``solvers`` need.

    ``"module:attr"`` targets travel as they are, factories pickled, which
    works for any module-level class or function.

    Raises
    ------
    ValueError
        A solver is registered with a factory that cannot be pickled (a
        lambda, a local function, something defined in ``__main__``).
    """
    from rota.problems import FAMILIES
    from rota.solvers.registry import families_of, registry_target

    entries = []
    for name in solvers:
        for family in families_of(name):
            target = registry_target(name, family)
            if not isinstance(target, str):
                try:
                    pickle.dumps(target)
                    if getattr(target, "__module__", None) == "__main__":
                        raise TypeError("a run process cannot import __main__")
                except Exception:
                    raise ValueError(
                        f"solver {name!r} is registered with {target!r}, which cannot be sent "
                        "to worker processes; register it as 'module:attr' or a module-level "
                        "factory"
                    ) from None
            entries.append((family, name, target))
    return Registrations(dict(FAMILIES), entries)


def exit_reason(code: int | None) -> str:
    """How a process ended, from its exit code (negative: the signal that killed it)."""
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def died_message(code: int | None) -> str:
    """The ``error`` message of a run whose process died."""
    return f"worker process died ({exit_reason(code)})"


def deadline(time_limit: float, grace: float) -> float:
    """Seconds a run of ``time_limit`` may take before its process is killed."""
    return 2 * time_limit + grace


def killed_message(time_limit: float, grace: float) -> str:
    """The ``error`` message of a run killed at its :func:`deadline`."""
    return (
        f"killed: still running {deadline(time_limit, grace):g} s after it started "
        f"(twice the budget plus {grace:g} s grace)"
    )


def _end_with_parent() -> None:
    """Kill this process's group as soon as the process that started it is gone."""
    parent = os.getppid()

    def watch() -> None:
        # An orphan is re-parented, so a changed parent id means the parent died;
        # asking about the old id instead could find a new process that reused it.
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="rota-parent-watch", daemon=True).start()


def serve(
    conn: Connection,
    registrations: Registrations,
    solver: str,
    options: dict[str, Any] | None = None,
    threads: int | None = None,
) -> None:
    """The loop of a run process: ``(function, args)`` in, ``function(*args)`` out.

    Sends ``"ready"`` once ``solver``, configured with ``options``, and what
    its runs import are loaded; ``None`` or a closed pipe ends the loop. The
    functions sent never raise (they describe failures in what they return),
    so one message in is always one message out. ``threads`` caps OpenMP's
    threads (torch reads it when imported, which is why it is set first).
    """
    # A group of its own: a Ctrl+C at the terminal reaches the parent alone, which
    # decides what to do, and the parent can end the process with its children.
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _end_with_parent()
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    from rota.problems import FAMILIES, register_problem
    from rota.solvers.base import preload
    from rota.solvers.registry import families_of, get_solver, register

    for family, target in registrations.families.items():
        if FAMILIES.get(family) != target:
            register_problem(family, target)
    for family, name, target in registrations.solvers:
        register(name, target, family)
    # A failure to import or configure is left for the runs to record, each with its
    # own message; one family's failure (options it does not take) must not keep the
    # solver of another family from loading.
    for family in families_of(solver):
        with contextlib.suppress(Exception):
            backend = get_solver(solver, family)
            if options:
                backend = backend.configure(**options)
            preload(backend)
    conn.send("ready")
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message is None:
            return
        function, args = message
        try:
            conn.send(function(*args))
        except (BrokenPipeError, OSError):
            return


def serve_fd(fd: int) -> None:
    """Entry point of a :class:`RunProcess`: its solver, registrations and options come first."""
    conn = Connection(fd)
    solver, pickled, options = conn.recv()
    serve(conn, pickle.loads(pickled), solver, options)


_BOOT = "import sys; from rota.solvers.processes import serve_fd; serve_fd(int(sys.argv[1]))"


class RunProcess:
    """A run process started as a plain subprocess: one solver, one call at a time.

    It sees the host's ``sys.path`` (so the host's ``rota`` and the modules of
    run-time registrations import the same there), and talks over a socket
    pair whose end it inherits as a file descriptor (POSIX).
    """

    def __init__(
        self, solver: str, registrations: bytes, options: dict[str, Any] | None = None
    ) -> None:
        self.key = (solver, registrations, options or {})
        parent, child = multiprocessing.Pipe()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        # -P: no script folder or working directory ahead of the host's path
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-c", _BOOT, str(child.fileno())],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            env=env,
            process_group=0,
        )
        child.close()
        self.conn = parent
        self.ready = False
        parent.send(self.key)

    def _wait(self, until: float, stop: Callable[[], bool]) -> tuple[str, Any]:
        """The next message: ``("reply", message)``, ``("died", code)``, ``("late", None)``
        once ``until`` (``time.monotonic``) passes, or ``("stopped", None)`` once ``stop()``."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return "late", None
            try:
                if self.conn.poll(min(POLL_SECONDS, left)):
                    return "reply", self.conn.recv()
            except (EOFError, OSError):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(5)
                return "died", self.process.returncode
            if stop():
                return "stopped", None

    def call(
        self, function: Callable[..., Any], args: tuple, limit: float, stop: Callable[[], bool]
    ) -> tuple[str, Any]:
        """Run ``function(*args)`` in the process, within ``limit`` seconds of sending it.

        Returns ``("done", reply)``, ``("died", exit code)`` (also when it died
        while importing its solver), ``("killed", None)`` past the limit, or
        ``("stopped", None)`` when ``stop()`` became true while waiting. After
        anything but ``"done"`` the process is gone.
        """
        if not self.ready:
            outcome, message = self._wait(float("inf"), stop)
            if outcome != "reply":
                self.close(kill=True)
                return outcome, message
            self.ready = True
        try:
            self.conn.send((function, args))
        except OSError:
            self.close(kill=True)
            return "died", self.process.returncode
        outcome, message = self._wait(time.monotonic() + limit, stop)
        if outcome == "reply":
            return "done", message
        self.close(kill=True)
        return ("killed" if outcome == "late" else outcome), message

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self, kill: bool = False) -> None:
        """End the process: ask it to stop, or kill its whole group."""
        if not kill and self.alive:
            with contextlib.suppress(OSError):
                self.conn.send(None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(2)
        if self.alive or kill:
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.conn.close()


__all__ = [
    "POLL_SECONDS", "Registrations", "RunProcess", "deadline", "died_message", "exit_reason",
    "killed_message", "registrations", "serve", "serve_fd",
]  # fmt: skip
