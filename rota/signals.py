"""Graceful interruption: SIGINT and SIGTERM end a solve or a bench early, keeping what it has.

Inside :func:`graceful`, a SIGINT (Ctrl+C) or SIGTERM neither raises at a
random point nor kills the process: it sets a flag that every solver's
:class:`~rota.solvers.stopping.Stop` reports as met, so each engine ends its
search at its next check and returns its best solution; engines that run
outside Python (CP-SAT's search, the CBC process) are stopped at once by
callbacks registered with :func:`on_interrupt`. The caller then sees
:func:`interrupted` and ends cleanly (``rota.solve`` raises
:class:`Interrupted` carrying the results it has).

Python runs signal handlers only between bytecodes of the main thread, which
may be inside an engine's C++ code for a long time, so the signal is also
written to a wakeup socket (:func:`signal.set_wakeup_fd`) that a watcher
thread reads at once.

Only the main thread can install handlers, and only handlers that are
Python's defaults are replaced: an application that installed its own keeps
them, and :func:`graceful` then does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

#: The signals handled, and the exit code a command ends with after each (128 + number).
SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(KeyboardInterrupt):
    """A solve or bench stopped by SIGINT or SIGTERM; ``results`` holds what it finished."""

    def __init__(self, signum: int, results: Any = None) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.results = results


_lock = threading.Lock()
_event = threading.Event()
_received: list[int] = []
_cancels: list[Callable[[], None]] = []
_depth = 0


def interrupted() -> bool:
    """Whether a SIGINT or SIGTERM arrived inside the current :func:`graceful` block."""
    return _event.is_set()


def received() -> int | None:
    """The first signal that arrived inside the current :func:`graceful` block."""
    return _received[0] if _received else None


def _note(signum: int) -> None:
    with _lock:
        if not _received:
            _received.append(signum)
        _event.set()
        cancels = list(_cancels)
    for cancel in cancels:
        with contextlib.suppress(Exception):  # an engine already gone is fine
            cancel()


def _handler(signum: int, frame: Any) -> None:
    _note(signum)


def _watch(reader: socket.socket) -> None:
    while True:
        try:
            data = reader.recv(16)
        except OSError:
            return
        if not data:
            return
        for signum in data:
            if signum in SIGNALS:
                _note(signum)


def _raise(signum: int, frame: Any) -> None:
    _note(signum)
    raise Interrupted(signum)


def _defaults_installed() -> bool:
    """Whether both handlers are Python's defaults or :func:`terminating`'s."""
    return signal.getsignal(signal.SIGINT) in (signal.default_int_handler, _raise) and (
        signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None, _raise)
    )


@contextlib.contextmanager
def terminating() -> Iterator[None]:
    """Make SIGTERM raise :class:`Interrupted` in the main thread, as SIGINT does.

    For commands that compute in Python (building a road network, writing a
    set): a SIGTERM then unwinds like Ctrl+C, so that atomic writes remove
    their temporary files, instead of killing the process. :func:`graceful`
    blocks inside take over from it. Outside the main thread, or when the
    process has its own handlers, it does nothing.
    """
    if threading.current_thread() is not threading.main_thread() or not _defaults_installed():
        yield
        return
    _event.clear()
    _received.clear()
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, _raise)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def graceful() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into the :func:`interrupted` flag inside the block.

    Re-entrant: an inner block inside an outer one changes nothing. Outside
    the main thread, or when the process has its own handlers, it does nothing.
    """
    global _depth
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    if threading.current_thread() is not threading.main_thread() or not _defaults_installed():
        yield
        return
    _event.clear()
    _received.clear()
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    watcher = threading.Thread(target=_watch, args=(reader,), name="rota-signals", daemon=True)
    watcher.start()
    for s in SIGNALS:
        signal.signal(s, _handler)
    _depth = 1
    try:
        yield
    finally:
        _depth = 0
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(old_fd)
        writer.close()
        reader.shutdown(socket.SHUT_RDWR)
        watcher.join(1)
        reader.close()


@contextlib.contextmanager
def on_interrupt(cancel: Callable[[], None]) -> Iterator[None]:
    """Call ``cancel`` (from another thread) if a signal arrives inside the block.

    For engines that do not come back to Python while they search: CP-SAT's
    ``stop_search``, a signal to a solver process. If the signal already
    came, ``cancel`` runs at once.
    """
    with _lock:
        _cancels.append(cancel)
        already = _event.is_set()
    if already:
        with contextlib.suppress(Exception):
            cancel()
    try:
        yield
    finally:
        with _lock:
            _cancels.remove(cancel)


__all__ = [
    "EXIT_CODES", "Interrupted", "SIGNALS", "graceful", "interrupted", "on_interrupt", "received",
    "terminating",
]  # fmt: skip
