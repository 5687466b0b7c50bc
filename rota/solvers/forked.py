"""Run a native engine that Python cannot stop in a forked child process.

hygese (HGS-CVRP through ctypes) and elkai (LKH-3, a C extension that holds
the GIL) return only when their own search ends: neither reports progress nor
takes a callback, so a SIGINT or SIGTERM could not end a solve until then, and
LKH ends the whole process when one of its internal assertions fails. In a
forked child, the caller stays in control: an interrupt (``Stop.interrupted``)
or a deadline kills the child at once, and a crash becomes a failed outcome
instead of the end of the caller. Forking copies the loaded engine and the
encoded data, so a child starts in milliseconds; its answer comes back
through a pipe.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from rota.solvers.stopping import Stop

#: Seconds between two looks at the stop while the child runs.
_POLL_SECONDS = 0.05
#: The signals that end a child as an interrupt of its caller would.
_INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Outcome:
    """How a forked call ended: ``done`` (with its ``value``), ``deadline``,
    ``interrupted`` or ``failed`` (with ``detail``)."""

    ended: str
    value: Any = None
    detail: str | None = None


def run_forked(
    function: Callable[..., Any], *args: Any, stop: Stop, deadline: float | None = None
) -> Outcome:
    """``function(*args)`` in a forked child, killed on an interrupt or at ``deadline``.

    ``deadline`` is a :func:`time.perf_counter` instant. The value must be
    picklable; an exception in the child comes back as a ``failed`` outcome.
    """
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(writer, function, args), daemon=True)
    child.start()
    writer.close()
    try:
        while True:
            if stop.interrupted:
                return Outcome("interrupted")
            timeout = _POLL_SECONDS
            if deadline is not None:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return Outcome("deadline")
                timeout = min(timeout, left)
            if wait([reader, child.sentinel], timeout):
                break
        try:
            ended, payload = reader.recv()
        except EOFError:
            child.join()
            if stop.interrupted or -child.exitcode in _INTERRUPTS:
                # Ctrl+C reaches the whole process group, the child first at times;
                # this module itself only ever sends SIGKILL.
                return Outcome("interrupted")
            return Outcome("failed", detail=_exit_reason(child.exitcode))
        if ended == "failed":
            return Outcome("failed", detail=payload)
        return Outcome("done", value=payload)
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        reader.close()


def _child(writer: Connection, function: Callable[..., Any], args: tuple) -> None:
    # The parent's handlers write signals to its wakeup socket, which the child
    # shares: a signal meant for the child must not look like one for the parent.
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    try:
        message = ("done", function(*args))
    except Exception as exc:  # the engine's error, reported to the parent
        message = ("failed", f"{type(exc).__name__}: {exc}")
    writer.send(message)
    writer.close()


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"the engine's process was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the engine's process was killed by signal {-code}"
    return f"the engine's process ended without an answer (exit code {code})"


__all__ = ["Outcome", "run_forked"]
