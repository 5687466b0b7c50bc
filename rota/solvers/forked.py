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

import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, NoReturn

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
    The child is forked with :func:`os.fork`, not a ``multiprocessing``
    process, which a daemonic caller (a ``multiprocessing.Pool`` worker) may
    not start.
    """
    reader, writer = multiprocessing.Pipe(duplex=False)
    pid = os.fork()
    if pid == 0:
        reader.close()
        _child(writer, function, args)
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
            if wait([reader], timeout):
                break
        try:
            ended, payload = reader.recv()
        except EOFError:
            code = _reap(pid)
            pid = 0
            if stop.interrupted or -code in _INTERRUPTS:
                # Ctrl+C reaches the whole process group, the child first at times;
                # this module itself only ever sends SIGKILL.
                return Outcome("interrupted")
            return Outcome("failed", detail=_exit_reason(code))
        if ended == "failed":
            return Outcome("failed", detail=payload)
        return Outcome("done", value=payload)
    finally:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _reap(pid)
        reader.close()


def _child(writer: Connection, function: Callable[..., Any], args: tuple) -> NoReturn:
    # The parent's handlers write signals to its wakeup socket, which the child
    # shares: a signal meant for the child must not look like one for the parent.
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    code = 0
    try:
        try:
            message = ("done", function(*args))
        except Exception as exc:  # the engine's error, reported to the parent
            message = ("failed", f"{type(exc).__name__}: {exc}")
        writer.send(message)
        writer.close()
    except BaseException:
        code = 1
    finally:
        # never return into the parent's code (its stack, its atexit handlers)
        os._exit(code)


def _reap(pid: int) -> int:
    """Wait for child ``pid``; its exit code, or minus the signal that ended it."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"the engine's process was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the engine's process was killed by signal {-code}"
    return f"the engine's process ended without an answer (exit code {code})"


__all__ = ["Outcome", "run_forked"]
