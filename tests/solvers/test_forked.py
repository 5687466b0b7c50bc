"""Native calls in a forked child: answers, errors, crashes, deadlines and interrupts."""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
import time

import pytest

from rota.solvers.forked import run_forked
from rota.solvers.stopping import Stopping


def _stop():
    return Stopping(iterations=1).start()


def _square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def _raise() -> None:
    raise RuntimeError("engine says no")


def _die(signum: int) -> None:
    faulthandler.disable()  # pytest's would print a traceback of the deliberate crash
    os.kill(os.getpid(), signum)
    time.sleep(10)


def _sleep_after_writing_pid(path: str) -> None:
    with open(path, "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(10)


def test_the_answer_comes_back_from_another_process() -> None:
    outcome = run_forked(_square_and_pid, 7, stop=_stop())
    assert outcome.ended == "done"
    assert outcome.value[0] == 49 and outcome.value[1] != os.getpid()


def test_an_exception_in_the_engine_is_a_failed_outcome() -> None:
    outcome = run_forked(_raise, stop=_stop())
    assert outcome.ended == "failed"
    assert outcome.detail == "RuntimeError: engine says no"


def test_a_crash_of_the_engine_is_a_failed_outcome_not_the_callers_end() -> None:
    outcome = run_forked(_die, signal.SIGSEGV, stop=_stop())
    assert outcome.ended == "failed"
    assert "SIGSEGV" in outcome.detail


def test_a_child_ended_by_sigint_counts_as_an_interrupt() -> None:
    # Ctrl+C reaches the whole process group, so the child may end first.
    assert run_forked(_die, signal.SIGINT, stop=_stop()).ended == "interrupted"


def test_the_deadline_kills_the_child_at_once(tmp_path) -> None:
    pid_file = tmp_path / "pid"
    began = time.perf_counter()
    outcome = run_forked(
        _sleep_after_writing_pid, str(pid_file), stop=_stop(), deadline=time.perf_counter() + 0.3
    )
    assert outcome.ended == "deadline"
    assert time.perf_counter() - began < 1.5
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def _forked_square(x: int) -> int:
    return run_forked(_square_and_pid, x, stop=_stop()).value[0]


def test_a_daemonic_pool_worker_may_fork_the_engine() -> None:
    # multiprocessing forbids daemonic processes children of its own; os.fork is allowed
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.map(_forked_square, [3, 4]) == [9, 16]
