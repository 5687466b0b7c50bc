"""Run every (instance, solver, budget, seed) in worker processes and log each run to a CSV.

The flow of :func:`run_bench`:

1. expand the instance specs (files, folders, globs, ``.jsonl`` sets) and read
   each instance that still has runs to do once in the parent, so that a bad
   file fails before any time is spent;
2. read ``out/runs.csv`` if it exists and skip every run already in it;
3. hand the remaining runs to ``workers`` processes (or, given a Dask
   ``client``, to the cluster's workers: :mod:`rota.bench.cluster`); each
   run's :func:`execute` reads its instance, calls :func:`rota.solve`,
   re-checks the returned solution with :func:`rota.evaluate` and sends back
   one plain row;
4. append each row to ``runs.csv`` as it arrives (flush + fsync, so a
   ``kill -9`` loses at most the runs in flight);
5. write ``summary.md`` and the plots (:mod:`rota.bench.report`).

Workers are started with the ``forkserver`` method (``spawn`` where there is
none, i.e. Windows): never forked from the parent, so safe when the parent has
threads (e.g. after importing torch). A worker starts from a fresh
interpreter's state, so solvers added to the registry at run time
(:func:`rota.solvers.base.register`) are re-registered in every worker
(:mod:`rota.solvers.processes`, whose loop the workers run).

Each worker is a long-lived process with its own pipe, so the parent always
knows which run a worker holds: a worker that dies (segfault, ``os._exit``,
out of memory) becomes an ``error`` row for exactly that run and is replaced,
and a run still going ``2 * time_limit + grace`` seconds after it started is
killed and recorded the same way. (A ``ProcessPoolExecutor`` cannot tell which
run took a worker down: it breaks the whole pool.)

A worker process runs one solver only, because two backends' native libraries
can clash in one process; it imports that solver before taking runs, and when
the solver has no runs left the worker is replaced by one for the next solver.
Parallel runs are therefore mostly of the same solver, so every solver meets
about the same contention for cores. Each worker gets an even share of the
cores for OpenMP (torch) threads, and imports what its solver's runs import
before taking runs, so no run's time includes an import.

Workers ignore SIGINT, so Ctrl+C reaches the parent alone, which stops them
and keeps what is written; if the parent itself is killed, each worker kills
itself and its children at once.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import glob
import hashlib
import json
import multiprocessing
import os
import pickle
import shlex
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from rota import signals
from rota.bench.report import (
    COLUMNS,
    RUNS_CSV,
    SOLVED,
    Run,
    is_legacy,
    latest,
    options_json,
    read_runs,
    upgrade_legacy,
    write_report,
)
from rota.errors import FormatError, ResourceError
from rota.problems import RESULT_FORMAT, instance_from_dict, problem_of, problems
from rota.solvers import processes

#: Suffixes a folder or a glob contributes (every family's); an explicitly named
#: file is taken whatever it is.
INSTANCE_SUFFIXES = tuple(dict.fromkeys(suffix for p in problems() for suffix in p.suffixes))
#: Files beside instances that share their suffixes but hold references or prose.
_NOT_INSTANCES = ("OPTIMA", "BKS", "README", "LICENSE", "CHANGELOG")
_NOT_INSTANCE_FORMATS = tuple(
    f'"{tag}"' for tag in (RESULT_FORMAT, *(t for p in problems() for t in p.solution_formats))
)

DEFAULT_GRACE = 60.0
#: Most runs one bench plans: a million runs of the shortest sensible budget
#: already take days; more is a typo, and the plan alone would fill memory.
MAX_RUNS = 1_000_000
_MESSAGE_CHARS = 300
_POLL_SECONDS = 0.25


# -- instances ---------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceRef:
    """One benchmark instance: a file, or one line (1-based) of a ``.jsonl`` set."""

    path: Path
    line: int | None = None

    @property
    def id(self) -> str:
        """The identity used in ``runs.csv``: the absolute path, ``#line`` for a set line."""
        return str(self.path) if self.line is None else f"{self.path}#{self.line}"

    def __str__(self) -> str:
        return self.id


def _set_lines(path: Path) -> list[int]:
    """1-based numbers of the non-empty lines of a JSON-lines set."""
    with path.open(encoding="utf-8") as handle:
        return [n for n, text in enumerate(handle, 1) if text.strip()]


def _is_instance_file(path: Path) -> bool:
    if path.suffix.lower() not in INSTANCE_SUFFIXES or path.name.startswith("."):
        return False
    if path.stem.upper().startswith(_NOT_INSTANCES):
        return False
    if path.suffix.lower() == ".json":
        with path.open("rb") as handle:
            head = handle.read(4096).decode("utf-8", errors="replace")
        return not any(fmt in head for fmt in _NOT_INSTANCE_FORMATS)
    return True


def _refs_of_file(path: Path) -> list[InstanceRef]:
    path = path.resolve()
    if path.suffix.lower() == ".jsonl":
        lines = _set_lines(path)
        if not lines:
            raise ValueError(f"{path}: instance set is empty")
        return [InstanceRef(path, n) for n in lines]
    return [InstanceRef(path)]


def expand_instances(specs: Sequence[str | Path]) -> list[InstanceRef]:
    """The instances named by files, folders, globs and ``set.jsonl#line`` specs.

    A file is taken as given; a folder contributes, recursively, its files with
    a known suffix (``.vrp .txt .atsp .tsp .json .jsonl``) except reference
    tables (``OPTIMA*``, ``BKS*``), READMEs and rota solution/result JSON; a
    glob (``*``, ``?``, ``[``; ``**`` recurses) contributes its matches filtered
    the same way. A ``.jsonl`` set contributes each non-empty line as its own
    instance, identified as ``path#lineno``. Order is kept, duplicates dropped.

    Raises
    ------
    ValueError
        A spec names nothing, or a glob or folder holds no instance file.
    """
    refs: list[InstanceRef] = []
    for spec in specs:
        text = str(spec)
        path = Path(text).expanduser()
        base, hash_, line = text.rpartition("#")
        if hash_ and line.isdigit() and Path(base).is_file() and not path.exists():
            number = int(line)
            set_path = Path(base).expanduser().resolve()
            if number not in _set_lines(set_path):
                raise ValueError(f"{text}: {set_path} has no instance on line {number}")
            refs.append(InstanceRef(set_path, number))
        elif path.is_file():
            refs.extend(_refs_of_file(path))
        elif path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and _is_instance_file(p)
            )
            if not found:
                raise ValueError(
                    f"{text}: folder holds no instance file ({', '.join(INSTANCE_SUFFIXES)})"
                )
            for p in found:
                refs.extend(_refs_of_file(p))
        elif any(c in text for c in "*?["):
            matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(text), recursive=True))
            found = [p for p in matches if p.is_file() and _is_instance_file(p)]
            if not found:
                raise ValueError(f"{text}: glob matches no instance file")
            for p in found:
                refs.extend(_refs_of_file(p))
        elif path.exists():
            raise ValueError(f"{text}: is not a regular file or a folder")
        else:
            raise ValueError(f"{text}: no such file or folder")
    return list(dict.fromkeys(refs))


def _coerce_refs(instances: Sequence[InstanceRef | str | Path]) -> list[InstanceRef]:
    refs: list[InstanceRef] = []
    for item in instances:
        if isinstance(item, InstanceRef):
            refs.append(InstanceRef(item.path.resolve(), item.line))
        else:
            refs.extend(expand_instances([item]))
    return list(dict.fromkeys(refs))


@functools.lru_cache(maxsize=2)
def _set_text(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    with open(path, encoding="utf-8") as handle:
        return tuple(handle)


@functools.lru_cache(maxsize=4)
def _file_instance(path: str, digest: str) -> Any:
    from rota.problems import read

    return read(path)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _set_line(ref: InstanceRef) -> str:
    path = Path(ref.path)
    stat = path.stat()
    lines = _set_text(str(path), stat.st_mtime_ns, stat.st_size)
    if not 1 <= ref.line <= len(lines) or not lines[ref.line - 1].strip():
        raise FormatError(f"{path}: line {ref.line}: no instance on this line")
    return lines[ref.line - 1]


def content_digest(ref: InstanceRef) -> str:
    """A hash of the instance's content: the file's bytes, or the set line's text.

    Runs are keyed by it as well as by the path, so that runs of a file that
    has since changed are never taken for runs of what is there now.
    """
    path = Path(ref.path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    if ref.line is None:
        return _digest(path.read_bytes())
    return _digest(_set_line(ref).encode("utf-8"))


def load_instance(ref: InstanceRef) -> tuple[Any, str]:
    """The instance ``ref`` names and its :func:`content_digest`.

    A file is read through :func:`rota.read`; a set line is decoded on its own.
    """
    digest = content_digest(ref)
    if ref.line is None:
        return _file_instance(str(ref.path), digest), digest
    where = f"{ref.path}: line {ref.line}"
    try:
        data = json.loads(_set_line(ref))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{where}: invalid JSON ({exc.msg})") from None
    return instance_from_dict(data, where), digest


def file_reference(ref: InstanceRef, instance: Any) -> tuple[float, str] | None:
    """The reference value of an instance file and its kind (``"optimal"`` or ``"bks"``).

    Asks :func:`rota.problems.reference.reference_cost` (an ``OPTIMA.txt``
    entry, the evaluated routes of the instance's ``.sol`` or a ``BKS.txt``
    entry in its folder). Lines of a ``.jsonl`` set have no reference file:
    ``None``.
    """
    if ref.line is not None:
        return None
    from rota.problems.reference import reference_cost

    found = reference_cost(ref.path, instance)
    if found is None:
        return None
    if found.kind not in ("optimal", "bks"):
        raise ValueError(f"{found.source}: reference kind is {found.kind!r}, not optimal or bks")
    return float(found.value), found.kind


# -- one run, inside a worker -----------------------------------------------------


@dataclass(frozen=True)
class _Task:
    ref: InstanceRef
    digest: str  # of the instance's content when the bench planned the run
    problem: str
    solver: str
    options: dict[str, Any]
    options_json: str
    time_limit: float
    seed: int


def one_line(text: object) -> str:
    """A message fit for one CSV cell and one table cell: first line only, trimmed."""
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    first = " ".join(lines[0].split()) if lines else ""
    if len(lines) > 1:
        first += " …"
    return first if len(first) <= _MESSAGE_CHARS else first[: _MESSAGE_CHARS - 1] + "…"


def _describe(exc: BaseException) -> str:
    return one_line(f"{type(exc).__name__}: {exc}")


def instance_of(task: _Task, instance_bytes: bytes | None = None) -> tuple[Any, str | None]:
    """The task's instance, or ``None`` and the message of the run's ``error`` row.

    Read from ``task.ref``, or unpickled from ``instance_bytes``; a file whose
    content is no longer what the bench planned with is refused.
    """
    try:
        if instance_bytes is None:
            instance, digest = load_instance(task.ref)
        else:
            instance, digest = pickle.loads(instance_bytes), task.digest
    except Exception as exc:
        return None, one_line(f"cannot read instance: {exc}")
    if digest != task.digest:
        return None, "the instance file changed since the bench started"
    return instance, None


def execute(task: _Task, instance_bytes: bytes | None = None) -> dict[str, Any]:
    """Run one task and describe the outcome as plain row fields; never raises ``Exception``.

    The instance is read from ``task.ref``, or unpickled from
    ``instance_bytes`` when the parent shipped it (a cluster's workers need not
    see the file). :func:`rota.solve` returns every solution with its family
    evaluator's report; a solution that breaks a constraint becomes
    ``infeasible_solution`` with the first violation, and the evaluator's
    objective is the one recorded.
    """
    from rota.errors import UnsupportedError
    from rota.problems import problem_of
    from rota.solvers.api import solve
    from rota.solvers.base import Status

    instance, failure = instance_of(task, instance_bytes)
    if failure is not None:
        return {"status": "error", "message": failure}
    problem = problem_of(instance)
    row: dict[str, Any] = {
        "name": one_line(instance.name),
        "kind": problem.kind(instance),
        "size": problem.size(instance),
    }
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        result = solve(
            instance,
            solver=task.solver,
            time_limit=task.time_limit,
            seed=task.seed,
            **task.options,
        )
    except UnsupportedError as exc:
        return row | {"status": "unsupported", "message": one_line(exc)}
    except Exception as exc:
        return row | {
            "status": "error",
            "wall_time": time.perf_counter() - started,
            "cpu_time": time.process_time() - cpu_started,
            "message": _describe(exc),
            "traceback": traceback.format_exc(),
        }
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    notes: list[str] = []
    try:
        status = Status(result.status).value
        row |= {"runtime": float(result.runtime), "wall_time": wall, "cpu_time": cpu}
        row["bound"] = None if result.bound is None else float(result.bound)
        if result.solution is not None:
            report = result.evaluation
            row["objective"] = float(report.objective)
            row["feasible"] = not report.violations
            if report.violations:
                status = "infeasible_solution"
                notes.append(
                    f"{len(report.violations)} violation(s), first: {report.violations[0]}"
                )
            elif status in SOLVED and result.objective is not None:
                claimed = float(result.objective)
                if abs(claimed - report.objective) > 1e-6 * max(1.0, abs(report.objective)):
                    notes.append(
                        f"solver reported objective {claimed:g}, evaluator says "
                        f"{report.objective:g}; the evaluator's is recorded"
                    )
        elif status in SOLVED:
            status = "error"
            notes.append(f"solver reported status {result.status.value} without a solution")
        if status == "error" and result.stats.get("error"):
            notes.append(str(result.stats["error"]))
        if wall > 1.5 * task.time_limit + 1.0:
            notes.append(f"ran {wall:.2f} s for a {task.time_limit:g} s budget")
    except Exception as exc:  # a malformed Result is the solver's bug, not the bench's
        return row | {
            "status": "error", "wall_time": wall, "cpu_time": cpu, "message": _describe(exc),
        }  # fmt: skip
    return row | {"status": status, "message": one_line("; ".join(notes))}


# -- the pool ----------------------------------------------------------------------


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False
    task: _Task | None = None
    solver: str = ""  # the one solver this process runs
    deadline: float = float("inf")


def threads_per_worker(workers: int) -> int | None:
    """OpenMP threads each of ``workers`` parallel runs gets: an even share of the cores.

    torch's default of one thread per core, times two runs on two cores, made
    torch solvers overrun their budgets several times over. ``None`` (keep the
    default) when the user set ``OMP_NUM_THREADS``: their choice stands.
    """
    if "OMP_NUM_THREADS" in os.environ:
        return None
    return max(1, (os.cpu_count() or 1) // workers)


def _context() -> multiprocessing.context.BaseContext:
    # forkserver: each worker is forked from a clean single-threaded server that has
    # imported this module once, so a worker starts in ~10 ms instead of ~0.5 s for
    # spawn, and nothing the parent holds (threads, torch, a solver's native state)
    # leaks into it. Windows has only spawn.
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


@dataclass
class _Pool:
    """``size`` long-lived worker processes, each holding at most one task."""

    size: int
    registrations: processes.Registrations
    grace: float
    on_done: Callable[[_Task, dict[str, Any]], None]
    threads: int | None = None  # OpenMP threads per worker; None leaves the default
    workers: list[_Worker] = field(default_factory=list)
    startup_failures: int = 0

    def _start(self, task: _Task) -> _Worker:
        """A worker for ``task``'s solver, configured with the bench's options for it."""
        ctx = _context()
        parent, child = ctx.Pipe()
        process = ctx.Process(
            target=processes.serve,
            args=(child, self.registrations, task.solver, task.options, self.threads),
            name=f"rota-bench-{task.solver}",
        )
        process.start()
        child.close()
        return _Worker(process, parent, solver=task.solver)

    def run(self, tasks: list[_Task]) -> None:
        """Run ``tasks``; raises :class:`~rota.signals.Interrupted` on SIGINT or SIGTERM."""
        pending = list(tasks)
        self.workers = [self._start(t) for t in pending[: self.size]]
        while pending or any(w.task is not None for w in self.workers):
            if signals.interrupted():
                raise signals.Interrupted(signals.received())
            for i, w in enumerate(self.workers):
                if w.ready and w.task is None and pending and not self._dispatch(w, pending):
                    self._close(w, kill=False)
                    self.workers[i] = self._start(pending[0])
            busy = [w.deadline for w in self.workers if w.task is not None]
            timeout = min([_POLL_SECONDS, *(d - time.monotonic() for d in busy)])
            wait(
                [w.conn for w in self.workers] + [w.process.sentinel for w in self.workers],
                timeout=max(0.0, timeout),
            )
            alive = []
            for w in self.workers:
                if self._poll(w):
                    alive.append(w)
                else:
                    self._close(w, kill=True)
                    if pending:
                        alive.append(self._start(pending[0]))
            self.workers = alive

    def _dispatch(self, w: _Worker, pending: list[_Task]) -> bool:
        """Send ``w`` the next task of its solver; ``False`` when its solver has none left.

        A process runs one solver only: native libraries of two backends can
        clash in one process (HiGHS from highspy and the copy inside OR-Tools
        make whichever is imported second fail), which would turn a
        scheduling accident into a wrong result.
        """
        index = next((k for k, t in enumerate(pending) if t.solver == w.solver), None)
        if index is None:
            return False
        task = pending[index]
        try:
            w.conn.send((execute, (task,)))
        except OSError:  # died since it said ready: the next poll replaces it
            return True
        pending.pop(index)
        w.task = task
        w.deadline = time.monotonic() + processes.deadline(task.time_limit, self.grace)
        return True

    def _poll(self, w: _Worker) -> bool:
        """Collect what ``w`` has to say; ``False`` when it must be replaced."""
        try:
            if w.conn.poll():
                message = w.conn.recv()
                if message == "ready":
                    w.ready, self.startup_failures = True, 0
                else:
                    task, w.task = w.task, None
                    self.on_done(task, message)
                return True
        except (EOFError, OSError):
            pass  # the worker died; its exit code says how
        if w.process.is_alive() and not (w.task and time.monotonic() > w.deadline):
            return True
        if signals.interrupted():
            # a group-wide SIGTERM also ended the forkserver, after which a live
            # worker looks dead (exit code 255): the run is cut short, not failed,
            # and a resumed bench runs it again
            return True
        if w.task is not None:
            task, w.task = w.task, None
            if w.process.is_alive():
                message = processes.killed_message(task.time_limit, self.grace)
            else:
                w.process.join(1)
                message = processes.died_message(w.process.exitcode)
            self.on_done(task, {"status": "error", "message": message})
        elif not w.ready:
            self.startup_failures += 1
            if self.startup_failures > 3:
                raise RuntimeError(
                    "bench worker processes keep dying at start "
                    f"({processes.exit_reason(w.process.exitcode)}); "
                    "run one solve outside the bench"
                )
        return False

    def _close(self, w: _Worker, kill: bool) -> None:
        if w.process.is_alive() and not kill and w.task is None:
            with contextlib.suppress(OSError):
                w.conn.send(None)
            w.process.join(2)
        # The worker leads its own process group: this also ends the solver
        # processes it started (CBC), which would run on as orphans otherwise. It
        # is sent whatever is_alive() says, which is wrong once the forkserver died.
        if w.process.pid is not None and (kill or w.task is not None or w.process.is_alive()):
            with contextlib.suppress(OSError):
                os.killpg(w.process.pid, signal.SIGKILL)
        w.process.join()
        w.conn.close()

    def close(self) -> None:
        for w in self.workers:
            self._close(w, kill=False)
        self.workers = []


# -- the CSV log -------------------------------------------------------------------


def _repair_tail(path: Path) -> None:
    """Cut a torn last line (a bench killed mid-write) so the next row starts clean."""
    with path.open("rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


class _CsvLog:
    """Append-only ``runs.csv``: the header once, then one flushed, fsynced row per run."""

    def __init__(self, path: Path) -> None:
        fresh = not path.exists() or path.stat().st_size == 0
        self._handle = path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._handle, lineterminator="\n")
        if fresh:
            self._writer.writerow(COLUMNS)
            self._sync()

    def _sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def append(self, run: Run) -> None:
        self._writer.writerow(run.to_csv())
        self._sync()

    def close(self) -> None:
        self._handle.close()


# -- the bench ---------------------------------------------------------------------


def _row(task: _Task, outcome: dict[str, Any], file_ref: tuple[float, str] | None) -> Run:
    """The CSV row of a finished task; gap against the file reference when there is one."""
    ref_value, ref_kind = file_ref or (None, "")
    run = Run(
        instance=task.ref.id,
        digest=task.digest,
        problem=task.problem,
        name=outcome.get("name", ""),
        kind=outcome.get("kind", ""),
        size=outcome.get("size"),
        solver=task.solver,
        options=task.options_json,
        time_limit=task.time_limit,
        seed=task.seed,
        status=outcome["status"],
        objective=outcome.get("objective"),
        bound=outcome.get("bound"),
        runtime=outcome.get("runtime"),
        wall_time=outcome.get("wall_time"),
        cpu_time=outcome.get("cpu_time"),
        feasible=outcome.get("feasible"),
        message=outcome.get("message", ""),
        reference=ref_value,
        reference_kind=ref_kind,
        finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    if run.solved and ref_value is not None:
        run = replace(run, gap_pct=run.sense.gap_pct(run.objective, ref_value))
    return run


class _Recorder:
    """Receives finished tasks: appends the row, keeps tracebacks, advances the bar."""

    def __init__(
        self, log: _CsvLog, errors_log: Path, file_refs: dict[str, tuple[float, str] | None]
    ) -> None:
        self.log, self.errors_log, self.file_refs = log, errors_log, file_refs
        self.executed = 0
        self.counts = {True: 0, False: 0}
        self.bar = None
        self.bar_task = None

    def show_progress(self, todo: int, skipped: int, csv_path: Path) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        if skipped:
            self.bar.console.print(f"skipping {skipped} runs already in {csv_path}")
        self.bar.start()
        self.bar_task = self.bar.add_task("bench", total=todo)

    def __call__(self, task: _Task, outcome: dict[str, Any]) -> None:
        run = _row(task, outcome, self.file_refs.get(task.ref.id))
        self.log.append(run)
        if outcome.get("traceback"):
            with self.errors_log.open("a", encoding="utf-8") as handle:
                handle.write(f"== {task.ref.id} {task.solver} {task.time_limit:g}s ")
                handle.write(f"seed {task.seed}\n{outcome['traceback']}\n")
        self.executed += 1
        self.counts[run.solved] += 1
        if self.bar is not None:
            ok, other = self.counts[True], self.counts[False]
            self.bar.update(
                self.bar_task, advance=1, description=f"bench: {ok} feasible, {other} not"
            )

    def close(self) -> None:
        self.log.close()
        if self.bar is not None:
            self.bar.stop()


@dataclass(frozen=True)
class BenchSummary:
    """What :func:`run_bench` did and where it wrote it.

    ``total`` runs were asked for: ``skipped`` were already in ``runs.csv``,
    ``executed`` finished in this call (the rest were cut off when
    ``interrupted``). ``statuses`` counts the status of every asked-for run
    now in ``runs.csv``.
    """

    out: Path
    runs_csv: Path
    summary_md: Path
    plots: tuple[Path, ...]
    total: int
    skipped: int
    executed: int
    interrupted: int | None  # the signal (SIGINT or SIGTERM) that stopped the bench
    statuses: dict[str, int]


def _validate(
    solvers: Sequence[str],
    time_limits: Sequence[float],
    seeds: int | Sequence[int],
    workers: int | None,
    solver_options: dict[str, dict] | None,
) -> tuple[list[str], list[float], list[int], int, dict[str, dict]]:
    from rota.solvers.registry import solver_names

    solvers = list(dict.fromkeys(solvers))
    if not solvers:
        raise ValueError("solvers is empty: name at least one solver")
    for name in solvers:
        if name not in solver_names():
            raise ValueError(f"unknown solver {name!r}; valid solvers: {', '.join(solver_names())}")
    budgets = []
    for t in time_limits:
        t = float(t)
        if not (t > 0 and t != float("inf")):
            raise ValueError(f"time limit {t} is not a positive number of seconds")
        budgets.append(t)
    if not budgets:
        raise ValueError("time_limits is empty: give at least one budget")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds is {seeds}, expected a count >= 1 or a list of seeds")
        if seeds > MAX_RUNS:
            raise ResourceError(f"seeds is {seeds}: more runs than a bench takes ({MAX_RUNS:,})")
        seed_list = list(range(seeds))
    else:
        seed_list = list(dict.fromkeys(int(s) for s in seeds))
        if not seed_list:
            raise ValueError("seeds is empty: give a count or a list of seeds")
    if workers is None:
        workers = os.cpu_count() or 1
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers is {workers}, expected a positive integer")
    options = dict(solver_options or {})
    for name, opts in options.items():
        if name not in solvers:
            raise ValueError(f"options given for solver {name!r}, which is not benchmarked")
        if not isinstance(opts, dict):
            raise ValueError(f"options of solver {name!r} must be a dict, got {opts!r}")
    return solvers, list(dict.fromkeys(budgets)), seed_list, int(workers), options


def run_bench(
    instances: Sequence[InstanceRef | str | Path],
    solvers: Sequence[str],
    time_limits: Sequence[float],
    seeds: int | Sequence[int],
    out: str | Path,
    workers: int | None = None,
    progress: bool = True,
    solver_options: dict[str, dict] | None = None,
    *,
    grace: float = DEFAULT_GRACE,
    retry_errors: bool = False,
    command: str | None = None,
    client: Any = None,
) -> BenchSummary:
    """Run every (instance, solver, time limit, seed) and write ``out/``.

    Parameters
    ----------
    instances
        :class:`InstanceRef` (from :func:`expand_instances`), or paths, folders,
        globs and ``set.jsonl#line`` specs, expanded the same way.
    solvers
        Registered solver names.
    time_limits
        Wall-clock budgets in seconds.
    seeds
        A count ``k`` (seeds ``0..k-1``) or the seeds themselves.
    out
        Output folder: ``runs.csv``, ``summary.md``, ``gap_vs_time.png``,
        ``performance_profile.png`` and ``errors.log`` (tracebacks). Runs
        already in ``out/runs.csv`` are skipped, so rerunning an interrupted
        bench finishes it.
    workers
        Parallel worker processes; default ``os.cpu_count()``. Not with ``client``.
    progress
        Show a rich progress bar on stderr.
    solver_options
        Options passed to ``rota.solve`` per solver name, e.g.
        ``{"pyvrp": {"population": 25}}``; recorded as JSON in each row.
    grace
        A run still going ``2 * time_limit + grace`` s after it started is
        killed and recorded as an ``error``.
    retry_errors
        Rerun runs whose row says ``error`` (crash, kill); the new row replaces
        the old one in the report.
    command
        Command line shown in ``summary.md``; default ``sys.argv``.
    client
        A ``distributed.Client`` (:func:`rota.cluster.connect`): run on its
        cluster, one Dask task per run (:mod:`rota.bench.cluster`), instead of
        in local worker processes. Rows, resume, deadlines and crash isolation
        are the same.

    Returns
    -------
    BenchSummary
        Counts and paths; ``interrupted`` is the signal number when SIGINT
        (Ctrl+C) or SIGTERM stopped the bench,
        in which case every finished run is saved and the report is written.

    Raises
    ------
    ValueError
        Unknown solver, bad budget, seed count or worker count, an instance that
        does not read, an ``out/runs.csv`` that is not a bench log, or a
        cluster without workers or with another rota.
    ConnectionError
        The cluster's scheduler dropped runs (it was lost or restarted); the
        finished runs are in ``runs.csv``.
    """
    if client is not None and workers is not None:
        raise ValueError("workers sets the local worker processes; a cluster's workers are its own")
    refs = _coerce_refs(instances)
    if not refs:
        raise ValueError("instances is empty: name at least one instance")
    solvers, budgets, seed_list, workers, options = _validate(
        solvers, time_limits, seeds, workers, solver_options
    )
    planned = len(refs) * len(solvers) * len(budgets) * len(seed_list)
    if planned > MAX_RUNS:
        raise ResourceError(
            f"{len(refs)} instances x {len(solvers)} solvers x {len(budgets)} budgets x "
            f"{len(seed_list)} seeds = {planned:,} runs, more than a bench takes ({MAX_RUNS:,})"
        )
    registrations = processes.registrations(solvers)
    if command is None:
        command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    csv_path = out / RUNS_CSV

    existing: list[Run] = []
    if csv_path.exists():
        existing = read_runs(csv_path)  # validates the header before anything is appended
        _repair_tail(csv_path)
        if is_legacy(csv_path):
            upgrade_legacy(csv_path)
    # A run is done when its key's last row ran on the content the file has now.
    done = {r.key: r.digest for r in latest(existing) if not (retry_errors and r.status == "error")}
    digests = {ref: content_digest(ref) for ref in refs}
    order = {ref: k for k, ref in enumerate(refs)}
    plan = [
        (ref, name, t, seed)
        for ref in refs
        for name in solvers
        for t in budgets
        for seed in seed_list
    ]
    asked = {
        (ref.id, name, options_json(options.get(name)), t, seed) for ref, name, t, seed in plan
    }
    todo_plan = [
        (ref, name, t, seed)
        for ref, name, t, seed in plan
        if done.get((ref.id, name, options_json(options.get(name)), t, seed)) != digests[ref]
    ]
    file_refs: dict[str, tuple[float, str] | None] = {}
    families: dict[InstanceRef, str] = {}
    for ref in dict.fromkeys(ref for ref, *_ in todo_plan):
        instance, _ = load_instance(ref)  # a bad instance fails here, before any run starts
        families[ref] = problem_of(instance).name
        file_refs[ref.id] = file_reference(ref, instance)
    todo = [
        _Task(ref, digests[ref], families[ref], name, options.get(name, {}),
              options_json(options.get(name)), t, seed)
        for ref, name, t, seed in todo_plan
    ]  # fmt: skip
    total = len(plan)
    # Longest budgets first, so that short runs fill the gaps at the end; then by
    # solver, as workers take runs of their own solver only.
    rank = {name: k for k, name in enumerate(solvers)}
    todo.sort(key=lambda t: (-t.time_limit, rank[t.solver], order[t.ref], t.seed))

    notes = []
    if client is not None:
        from rota.bench.cluster import ClusterPool
        from rota.cluster import check_workers

        if todo:  # a finished bench needs no cluster
            where = check_workers(client)
            notes.append(f"ran on {where}; the machine above planned and recorded the runs")
    out.mkdir(parents=True, exist_ok=True)
    interrupted: int | None = None
    recorder = _Recorder(_CsvLog(csv_path), out / "errors.log", file_refs)
    if client is None:
        pool = _Pool(workers, registrations, grace, recorder, threads_per_worker(workers))
    else:
        pool = ClusterPool(client, registrations, grace, recorder)
    try:
        with signals.graceful():
            if progress and todo:
                recorder.show_progress(len(todo), total - len(todo), csv_path)
            pool.run(todo)
    except KeyboardInterrupt as exc:  # Interrupted, or a Ctrl+C outside rota's handling
        interrupted = getattr(exc, "signum", signal.SIGINT)
    finally:
        pool.close()
        recorder.close()

    notes += ["the bench was interrupted; rerun the same command to finish it"] * bool(interrupted)
    summary_md, *plots = write_report(
        out, command=command, workers=None if client else workers, notes=notes
    )
    statuses: dict[str, int] = {}
    for run in latest(read_runs(csv_path)):
        if run.key in asked:
            statuses[run.status] = statuses.get(run.status, 0) + 1
    return BenchSummary(
        out=out,
        runs_csv=csv_path,
        summary_md=summary_md,
        plots=tuple(plots),
        total=total,
        skipped=total - len(todo),
        executed=recorder.executed,
        interrupted=interrupted,
        statuses=statuses,
    )
