"""What a bench leaves behind: the ``runs.csv`` schema, gap references, tables and plots.

Everything here is computed from the rows of ``runs.csv`` alone, so a report
can be rebuilt at any time (``write_report(out)``), including after an
interrupted bench.

Gap reference, per instance, in priority order (:func:`pick_reference`):

1. a proven optimum: an ``OPTIMA`` file entry (``optimal``) or the objective of
   a run of this bench that ended with status ``optimal`` (``optimal-run``);
2. a best-known solution from a ``.sol`` file or a ``BKS`` table (``bks``);
3. the best objective found by any run of this bench (``best-found``).

``gap % = 100 * (objective - reference) / reference``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import platform
import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from rota.files import atomic_open, save_figure, write_text
from rota.problems import FAMILIES, problem_named
from rota.problems.base import Sense

#: Statuses a row can hold. The first five are :class:`rota.Status` values.
SOLVED = ("optimal", "feasible")
FAILED = ("error", "infeasible_solution", "no_solution", "infeasible")
UNSUPPORTED = "unsupported"
STATUSES = (*SOLVED, *FAILED, UNSUPPORTED)

RUNS_CSV = "runs.csv"
SUMMARY_MD = "summary.md"
GAP_PNG = "gap_vs_time.png"
PROFILE_PNG = "performance_profile.png"

#: Relative tolerance when two objectives that should agree are compared.
_REL_TOL = 1e-6


@dataclass(frozen=True)
class Run:
    """One row of ``runs.csv``: one (instance, solver, options, budget, seed) run.

    ``instance`` is the instance's identity (absolute path, ``#line`` for a
    line of a ``.jsonl`` set) and ``digest`` a hash of its content, so that a
    changed file is never mistaken for the one that ran; ``problem`` is its
    family, ``name`` the name stored in the instance and ``size`` its size in
    the family's unit (clients for routing).
    ``objective`` is the evaluator's objective of the returned solution and
    ``feasible`` the evaluator's verdict (``None`` when no solution came back).
    ``runtime`` is what the solver reported, ``wall_time`` the wall-clock time
    the worker measured around the solve call and ``cpu_time`` the CPU time of
    the worker process over that call (all its threads, not its child
    processes): well below ``wall_time`` for a single-threaded solver means the
    run waited for a core. ``reference``,
    ``reference_kind`` and ``gap_pct`` use the file reference (``optimal`` or
    ``bks``) known when the run finished; the summary recomputes gaps with the
    final reference, which may be a proven optimum or the best found.
    """

    instance: str
    digest: str
    problem: str
    name: str
    kind: str
    size: int | None
    solver: str
    options: str
    time_limit: float
    seed: int
    status: str
    objective: float | None = None
    bound: float | None = None
    runtime: float | None = None
    wall_time: float | None = None
    cpu_time: float | None = None
    feasible: bool | None = None
    message: str = ""
    reference: float | None = None
    reference_kind: str = ""
    gap_pct: float | None = None
    finished_at: str = ""

    @property
    def key(self) -> tuple[str, str, str, float, int]:
        """What a run is a run of; the last row of a key is the one that counts.

        A resumed bench skips a key whose last row has the instance's current
        ``digest``, and reruns it otherwise.
        """
        return (self.instance, self.solver, self.options, self.time_limit, self.seed)

    @property
    def sense(self) -> Sense:
        return problem_named(self.problem).sense

    @property
    def solved(self) -> bool:
        return self.status in SOLVED and self.feasible is True and self.objective is not None

    @property
    def label(self) -> str:
        """The solver as tables show it: its name, plus its options when it has any."""
        return self.solver if self.options in ("", "{}") else f"{self.solver} {self.options}"

    def to_csv(self) -> list[str]:
        return [_format_cell(getattr(self, f.name)) for f in fields(self)]

    @classmethod
    def from_csv(cls, cells: Sequence[str], where: str) -> Run:
        if len(cells) != len(COLUMNS):
            raise ValueError(f"{where}: has {len(cells)} fields, expected {len(COLUMNS)}")
        values = dict(zip(COLUMNS, cells, strict=True))
        try:
            return cls(
                instance=values["instance"],
                digest=values["digest"],
                problem=_parse_problem(values["problem"]),
                name=values["name"],
                kind=values["kind"],
                size=_parse(values["size"], int),
                solver=values["solver"],
                options=values["options"] or "{}",
                time_limit=float(values["time_limit"]),
                seed=int(values["seed"]),
                status=_parse_status(values["status"]),
                objective=_parse(values["objective"], float),
                bound=_parse(values["bound"], float),
                runtime=_parse(values["runtime"], float),
                wall_time=_parse(values["wall_time"], float),
                cpu_time=_parse(values["cpu_time"], float),
                feasible=_parse(values["feasible"], _parse_bool),
                message=values["message"],
                reference=_parse(values["reference"], float),
                reference_kind=values["reference_kind"],
                gap_pct=_parse(values["gap_pct"], float),
                finished_at=values["finished_at"],
            )
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Run))

#: The columns of ``runs.csv`` files written before problem families: routing
#: only, ``n_clients`` for ``size``, no digest. They still read.
LEGACY_COLUMNS: tuple[str, ...] = tuple(
    "n_clients" if c == "size" else c for c in COLUMNS if c not in ("digest", "problem")
)


def _legacy_cells(cells: Sequence[str]) -> list[str]:
    """A legacy row's cells in today's column order (routing, no digest)."""
    values = dict(zip(LEGACY_COLUMNS, cells, strict=True))
    values |= {"size": values.pop("n_clients"), "digest": "", "problem": "routing"}
    return [values[c] for c in COLUMNS]


def _format_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # round-trips exactly, so resumed keys compare equal
    return str(value)


def _parse(text: str, kind):
    return None if text == "" else kind(text)


def _parse_bool(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"feasible is {text!r}, expected true, false or empty")
    return text == "true"


def _parse_problem(text: str) -> str:
    if text not in FAMILIES:
        raise ValueError(f"problem is {text!r}, expected one of {', '.join(FAMILIES)}")
    return text


def _parse_status(text: str) -> str:
    if text not in STATUSES:
        raise ValueError(f"status is {text!r}, expected one of {', '.join(STATUSES)}")
    return text


def read_runs(path: str | Path) -> list[Run]:
    """The rows of a ``runs.csv``; a torn last line (a bench killed mid-write) is ignored.

    Raises
    ------
    ValueError
        The header is not rota's run schema, or a complete row is malformed.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if not text:
        return []
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        return []
    legacy = tuple(header) == LEGACY_COLUMNS
    if tuple(header) != COLUMNS and not legacy:
        raise ValueError(
            f"{path}: header is {','.join(header)!r}, expected rota's bench columns "
            f"{','.join(COLUMNS)!r}; use another --out folder"
        )
    runs = []
    for i, cells in enumerate(reader, 2):
        where = f"{path}: line {i}"
        if legacy:
            if len(cells) != len(LEGACY_COLUMNS):
                raise ValueError(
                    f"{where}: has {len(cells)} fields, expected {len(LEGACY_COLUMNS)}"
                )
            cells = _legacy_cells(cells)
        runs.append(Run.from_csv(cells, where))
    return runs


def is_legacy(path: str | Path) -> bool:
    """Whether ``path`` is a ``runs.csv`` with the columns from before problem families."""
    with Path(path).open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), None)
    return header is not None and tuple(header) == LEGACY_COLUMNS


def upgrade_legacy(path: str | Path) -> None:
    """Rewrite a legacy ``runs.csv`` with today's columns, atomically; no row is lost."""
    runs = read_runs(path)
    with atomic_open(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(run.to_csv() for run in runs)


def latest(runs: Iterable[Run]) -> list[Run]:
    """One row per key, the last one written (a retried run replaces its earlier row)."""
    by_key: dict[tuple, Run] = {}
    for run in runs:
        by_key.pop(run.key, None)
        by_key[run.key] = run
    return list(by_key.values())


# -- references and gaps -----------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """The value gaps of one instance are measured against, and where it comes from."""

    value: float
    kind: str  # "optimal", "optimal-run", "bks" or "best-found"

    @property
    def label(self) -> str:
        return {
            "optimal": "optimum (file)",
            "optimal-run": "optimum (proved in run)",
            "bks": "BKS (file)",
            "best-found": "best found",
        }[self.kind]


def pick_reference(
    file_value: float | None,
    file_kind: str | None,
    run_optima: Sequence[float] = (),
    best_found: float | None = None,
    sense: Sense = Sense.MIN,
) -> Reference | None:
    """Choose the gap reference: proven optimum > best-known > best found in this bench.

    Parameters
    ----------
    file_value, file_kind
        The value from the instance's reference files and its kind, ``"optimal"``
        (an ``OPTIMA`` table) or ``"bks"`` (a ``.sol`` file or a ``BKS`` table).
    run_optima
        Objectives of this bench's runs that ended with status ``optimal``.
    best_found
        The best feasible objective of this bench's runs.
    sense
        Whether the family minimises or maximises.
    """
    if file_value is not None and file_kind not in ("optimal", "bks"):
        raise ValueError(f"reference kind is {file_kind!r}, expected 'optimal' or 'bks'")
    if file_value is not None and file_kind == "optimal":
        return Reference(float(file_value), "optimal")
    if run_optima:
        return Reference(float(sense.best(run_optima)), "optimal-run")
    if file_value is not None:
        return Reference(float(file_value), "bks")
    if best_found is not None:
        return Reference(float(best_found), "best-found")
    return None


def references(runs: Sequence[Run]) -> tuple[dict[str, Reference], list[str]]:
    """The gap reference of every instance in ``runs``, and warnings about inconsistencies.

    A warning flags what can only be a bug in a solver, a reader or a
    reference file: proven optima that disagree, or a feasible objective
    better than a proven optimum. Gaps and "best" follow each instance's
    family's sense.
    """
    by_instance: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_instance[run.instance].append(run)
    refs: dict[str, Reference] = {}
    warnings: list[str] = []
    for instance, group in by_instance.items():
        file_rows = [r for r in group if r.reference is not None]
        file_value = file_rows[-1].reference if file_rows else None
        file_kind = file_rows[-1].reference_kind if file_rows else None
        sense = group[-1].sense
        optima = [r.objective for r in group if r.solved and r.status == "optimal"]
        solved = [r.objective for r in group if r.solved]
        best = sense.best(solved) if solved else None
        ref = pick_reference(file_value, file_kind, optima, best, sense)
        if ref is None:
            continue
        refs[instance] = ref
        proven = ([file_value] if file_kind == "optimal" else []) + optima
        if proven and max(proven) - min(proven) > _REL_TOL * max(1.0, abs(min(proven))):
            warnings.append(
                f"{instance}: proven optima disagree ({_num(min(proven))} vs {_num(max(proven))})"
            )
        optimum = sense.best(proven) if proven else None
        slack = 0.0 if optimum is None else _REL_TOL * max(1.0, abs(optimum))
        if (
            optimum is not None
            and best is not None
            and sense.better(best, optimum)
            and abs(best - optimum) > slack
        ):
            warnings.append(
                f"{instance}: a feasible objective {_num(best)} is better than the proven "
                f"optimum {_num(optimum)}; check the reader's rounding or the optimum"
            )
    return refs, warnings


# -- aggregation -------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """The runs of one (instance, solver, budget): every seed."""

    runs: tuple[Run, ...]
    reference: Reference | None

    @property
    def solved(self) -> list[Run]:
        return [r for r in self.runs if r.solved]

    @property
    def gaps(self) -> list[float]:
        if self.reference is None:
            return []
        values = (r.sense.gap_pct(r.objective, self.reference.value) for r in self.solved)
        return [g for g in values if g is not None]

    @property
    def mean_gap(self) -> float | None:
        gaps = self.gaps
        return float(np.mean(gaps)) if gaps else None


def _cells(runs: Sequence[Run], refs: dict[str, Reference]) -> dict[tuple, Cell]:
    grouped: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        grouped[(run.instance, run.label, run.time_limit)].append(run)
    return {
        key: Cell(tuple(sorted(group, key=lambda r: r.seed)), refs.get(key[0]))
        for key, group in grouped.items()
    }


def instance_labels(instances: Iterable[str]) -> dict[str, str]:
    """Short unique labels: the file stem (``stem#line`` for a set), with parent folders
    added only where two instances would otherwise share a label."""
    instances = sorted(set(instances))
    depth = {i: 1 for i in instances}

    def label(instance: str) -> str:
        path, _, line = instance.partition("#")
        parts = Path(path).parts
        shown = [*parts[-depth[instance] : -1], Path(parts[-1]).stem] if parts else [path]
        return "/".join(shown) + (f"#{line}" if line else "")

    while True:
        counts = Counter(label(i) for i in instances)
        clashes = [i for i in instances if counts[label(i)] > 1]
        grown = [i for i in clashes if depth[i] < len(Path(i.partition("#")[0]).parts)]
        if not grown:
            return {i: label(i) for i in instances}
        for i in grown:
            depth[i] += 1


def _num(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}f}"


def _secs(value: float) -> str:
    return f"{value:g}"


def _time(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _gap(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _status_counts(runs: Iterable[Run]) -> str:
    counts = Counter(r.status for r in runs)
    return ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


# -- machine description ---------------------------------------------------------


def machine_info() -> dict[str, str]:
    """Cores, CPU model, memory and GPU of this machine, for the report header."""
    info = {
        "cores": str(os.cpu_count() or "unknown"),
        "cpu": platform.processor() or platform.machine(),
        "memory": "unknown",
        "gpu": "none detected",
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        models = [ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if "model name" in ln]
        if models:
            info["cpu"] = models[0]
        meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0]  # MemTotal: N kB
        info["memory"] = f"{int(meminfo.split()[1]) / 2**20:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass  # not Linux: keep platform's answers
    # nvidia-smi is asked rather than torch, which takes seconds to import.
    if shutil.which("nvidia-smi"):
        try:
            listed = subprocess.run(
                ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
            if listed:
                info["gpu"] = "; ".join(listed.splitlines())
        except (OSError, subprocess.SubprocessError):
            info["gpu"] = "nvidia-smi present but did not answer"
    return info


# -- markdown ----------------------------------------------------------------------


def summary_markdown(
    runs: Sequence[Run],
    *,
    command: str | None = None,
    workers: int | None = None,
    machine: dict[str, str] | None = None,
    date: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The ``summary.md`` text: header, averaged table, per-instance table, failures."""
    runs = latest(runs)
    machine = machine or machine_info()
    date = date or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    refs, warnings = references(runs)
    cells = _cells(runs, refs)
    labels = instance_labels(r.instance for r in runs)
    solvers = sorted({r.label for r in runs})
    budgets = sorted({r.time_limit for r in runs})
    instances = sorted({r.instance for r in runs}, key=lambda i: labels[i])
    info = {r.instance: r for r in runs if r.kind}

    out = ["# rota bench", ""]
    if command:
        out.append(f"- Command: `{command}`")
    out.append(f"- Date: {date}")
    out.append(
        f"- Machine: {machine['cores']} cores, {machine['cpu']}, {machine['memory']} memory, "
        f"GPU: {machine['gpu']}; Python {machine['python']} on {machine['platform']}"
    )
    seeds = sorted({r.seed for r in runs})
    out.append(
        f"- Runs: {len(runs)} ({_status_counts(runs) or 'none'}) over {len(instances)} "
        f"instances, {len(solvers)} solvers, budgets {', '.join(_secs(b) for b in budgets)} s, "
        f"seeds {', '.join(map(str, seeds))}"
    )
    if workers is not None:
        out.append(
            f"- Timing: {workers} runs in parallel worker processes on {machine['cores']} cores. "
            "Budgets are wall-clock and parallel runs share cores, memory bandwidth and caches "
            "(multi-threaded solvers more so), so compare solvers within this table, not with "
            "timings taken elsewhere."
        )
    out += [f"- Note: {note}" for note in notes]
    out += [
        "",
        "Gap % = 100 × (objective − reference) / |reference| for problems that minimise, "
        "100 × (reference − objective) / |reference| for problems that maximise: positive "
        "is worse. Reference per instance, in "
        "priority: a proven optimum (from an OPTIMA file, or proved by a run of this bench), "
        "then a best-known solution (a .sol file or BKS table), then the best objective "
        "found by this bench. Objectives and gaps count only runs whose returned solution "
        "the evaluator found feasible; every other run is listed under Failures.",
        "",
        "## Averages per solver and budget",
        "",
        "Mean gap over the instances the solver solved at that budget (each instance's gap "
        "averaged over its seeds); means over different instance subsets are not comparable, "
        "so read them with the solved count and the performance profile.",
        "",
        "| solver | budget (s) | instances solved | runs feasible | runs optimal | runs failed "
        "| runs unsupported | mean gap % | mean time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for solver in solvers:
        for budget in budgets:
            group = [cells[k] for k in cells if k[1] == solver and k[2] == budget]
            if not group:
                continue
            group_runs = [r for c in group for r in c.runs]
            gaps = [c.mean_gap for c in group if c.mean_gap is not None]
            times = [r.runtime for r in group_runs if r.runtime is not None]
            solved = sum(1 for c in group if c.solved)
            out.append(
                f"| {_md_cell(solver)} | {_secs(budget)} | {solved}/{len(group)} "
                f"| {sum(r.solved for r in group_runs)} "
                f"| {sum(r.solved and r.status == 'optimal' for r in group_runs)} "
                f"| {sum(r.status in FAILED for r in group_runs)} "
                f"| {sum(r.status == UNSUPPORTED for r in group_runs)} "
                f"| {_gap(float(np.mean(gaps)) if gaps else None)} "
                f"| {_time(float(np.mean(times)) if times else None)} |"
            )

    out += [
        "",
        "## Per instance",
        "",
        "Objective: mean over the seeds with a feasible solution (best in brackets); "
        "time: mean solver-reported runtime.",
        "",
        "| instance | problem | kind | size | reference | solver | budget (s) | objective "
        "| gap % | status | time (s) |",
        "|---|---|---|---:|---|---|---:|---:|---:|---|---:|",
    ]
    for instance in instances:
        ref = refs.get(instance)
        ref_text = f"{_num(ref.value)} ({ref.label})" if ref else "–"
        meta = info.get(instance)
        for solver in solvers:
            for budget in budgets:
                cell = cells.get((instance, solver, budget))
                if cell is None:
                    continue
                objectives = [r.objective for r in cell.solved]
                objective = (
                    f"{_num(float(np.mean(objectives)))} ({_num(min(objectives))})"
                    if objectives
                    else "–"
                )
                times = [r.runtime for r in cell.runs if r.runtime is not None]
                out.append(
                    f"| {_md_cell(labels[instance])} | {meta.problem if meta else '–'} "
                    f"| {meta.kind if meta else '–'} "
                    f"| {meta.size if meta and meta.size is not None else '–'} "
                    f"| {ref_text} | {_md_cell(solver)} | {_secs(budget)} | {objective} "
                    f"| {_gap(cell.mean_gap)} | {_status_counts(cell.runs)} "
                    f"| {_time(float(np.mean(times)) if times else None)} |"
                )

    failures = [r for r in runs if not r.solved]
    out += ["", "## Failures", ""]
    if not failures:
        out.append("None: every run returned a feasible solution.")
    else:
        out += [
            "Every run without a feasible solution, with its reason; runs of one instance and "
            "solver that failed the same way share a line.",
            "",
            "| instance | solver | status | runs | budgets (s) | seeds | message |",
            "|---|---|---|---:|---|---|---|",
        ]
        same: dict[tuple, list[Run]] = defaultdict(list)
        for r in failures:
            same[(labels[r.instance], r.label, r.status, r.message)].append(r)
        for (label, solver, status, message), group in sorted(same.items()):
            group_budgets = ", ".join(_secs(t) for t in sorted({r.time_limit for r in group}))
            group_seeds = ", ".join(str(x) for x in sorted({r.seed for r in group}))
            out.append(
                f"| {_md_cell(label)} | {_md_cell(solver)} | {status} | {len(group)} "
                f"| {group_budgets} | {group_seeds} | {_md_cell(message) or '–'} |"
            )
    warned = [r for r in runs if r.solved and r.message]
    if warnings or warned:
        out += ["", "## Warnings", ""]
        out += [f"- {_md_cell(w)}" for w in warnings]
        out += [
            f"- {_md_cell(labels[r.instance])}, {_md_cell(r.label)}, {_secs(r.time_limit)} s, "
            f"seed {r.seed}: {_md_cell(r.message)}"
            for r in warned
        ]
    return "\n".join(out) + "\n"


# -- plots -------------------------------------------------------------------------


def _figure(width: float = 7.0, height: float = 4.5, ncols: int = 1):
    # A bare Figure on the Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, sharey=True, squeeze=False)[0]
    return fig, axes


#: Line styles cycled with colours so that solvers with identical curves stay visible.
_STYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _style(index: int) -> dict:
    return {
        "color": f"C{index % 10}",
        "linestyle": _STYLES[index % len(_STYLES)],
        "marker": _MARKERS[index % len(_MARKERS)],
        "linewidth": 2.2 if index == 0 else 1.6,
    }


def _short(label: str, width: int = 32) -> str:
    """A solver label short enough for a legend (options can be long)."""
    return label if len(label) <= width else label[: width - 1] + "…"


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="gray")


def plot_gap_vs_time(runs: Sequence[Run], path: str | Path) -> Path:
    """Mean gap % against the time budget, one line per solver (``gap_vs_time.png``).

    Each point averages the instances the solver solved at that budget, as the
    ``k/N`` label beside it says.
    """
    runs = latest(runs)
    refs, _ = references(runs)
    cells = _cells(runs, refs)
    budgets = sorted({r.time_limit for r in runs})
    fig, (ax,) = _figure(width=8.0)
    plotted = False
    for index, solver in enumerate(sorted({r.label for r in runs})):
        xs, means, counts = [], [], []
        for budget in budgets:
            group = [c for k, c in cells.items() if k[1] == solver and k[2] == budget]
            gaps = [c.mean_gap for c in group if c.mean_gap is not None]
            if gaps:
                xs.append(budget)
                means.append(np.mean(gaps))
                counts.append(f"{len(gaps)}/{len(group)}")
        if not xs:
            continue
        plotted = True
        (line,) = ax.plot(xs, means, label=_short(solver), **_style(index))
        for x, y, count in zip(xs, means, counts, strict=True):
            # Staggered so that labels of solvers with close gaps do not overprint.
            ax.annotate(
                count, (x, y), textcoords="offset points", xytext=(6, 7 * (index % 3) - 7),
                fontsize=7, color=line.get_color(), va="center",
            )  # fmt: skip
    if not plotted:
        _empty(ax, "no feasible run with a reference: no gap to plot")
    elif budgets[-1] / budgets[0] >= 10:
        ax.set_xscale("log")
    if budgets:
        ax.set_xticks(budgets, [_secs(b) for b in budgets])
        ax.minorticks_off()
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_title("Gap to reference versus time budget")
    ax.set_xlabel("time budget per run (s, wall clock)")
    ax.set_ylabel("mean gap to reference (%)")
    ax.grid(True, alpha=0.3)
    if plotted:
        fig.legend(
            title="solver\n(k/N: instances\nsolved)", fontsize=8, title_fontsize=8,
            loc="outside right upper",
        )  # fmt: skip
    return save_figure(fig, path)


def profile_ratios(runs: Sequence[Run], budget: float) -> dict[str, np.ndarray]:
    """Dolan–Moré ratios at one budget, per (instance, seed): how many times worse than
    the best solver a run is (objective / best when minimising, best / objective
    when maximising).

    Only (instance, seed) pairs run by every solver at this budget count; a run
    without a feasible solution (failure, unsupported) has ratio ``inf``.
    """
    runs = [r for r in latest(runs) if r.time_limit == budget]
    solvers = sorted({r.label for r in runs})
    table: dict[tuple, dict[str, float | None]] = defaultdict(dict)
    senses: dict[tuple, Sense] = {}
    for r in runs:
        table[(r.instance, r.seed)][r.label] = r.objective if r.solved else None
        senses[(r.instance, r.seed)] = r.sense
    ratios: dict[str, list[float]] = {s: [] for s in solvers}
    for key, values in table.items():
        if len(values) != len(solvers):
            continue
        found = [v for v in values.values() if v is not None]
        best = senses[key].best(found) if found else None
        for solver, value in values.items():
            ratios[solver].append(_ratio(value, best, senses[key]))
    return {s: np.asarray(v, dtype=float) for s, v in ratios.items()}


def _ratio(value: float | None, best: float | None, sense: Sense) -> float:
    """How many times worse than ``best`` ``value`` is; ``inf`` for no solution."""
    if value is None or best is None:
        return math.inf
    worse, better = (value, best) if sense is Sense.MIN else (best, value)
    if better > 0:
        return worse / better
    return 1.0 if worse == better else math.inf  # a best of 0: only another 0 ties with it


def plot_performance_profile(runs: Sequence[Run], path: str | Path) -> Path:
    """Dolan–Moré performance profile, one panel per budget (``performance_profile.png``).

    ``rho_s(tau)`` is the share of (instance, seed) problems on which solver
    ``s`` found a feasible objective within a factor ``tau`` of the best
    solver's; a run that failed never counts as solved.
    """
    from matplotlib.ticker import MaxNLocator

    runs = latest(runs)
    budgets = sorted({r.time_limit for r in runs}) or [0.0]
    fig, axes = _figure(width=1.6 + 4.2 * len(budgets), height=4.5, ncols=len(budgets))
    solvers = sorted({r.label for r in runs})
    styles = {s: _style(i) | {"marker": None} for i, s in enumerate(solvers)}
    for ax, budget in zip(axes, budgets, strict=True):
        ratios = profile_ratios(runs, budget)
        finite = np.concatenate([v[np.isfinite(v)] for v in ratios.values()] or [np.ones(0)])
        top = max(1.1, float(finite.max()) * 1.05) if finite.size else 1.1
        n_problems = max((len(v) for v in ratios.values()), default=0)
        if n_problems == 0:
            _empty(ax, "no problem run by every solver")
        for solver, values in ratios.items():
            if not values.size:
                continue
            taus = np.concatenate(([1.0], np.sort(values[np.isfinite(values)]), [top]))
            rho = [np.mean(values <= t) for t in taus]
            ax.step(taus, rho, where="post", label=_short(solver), **styles[solver])
        if top > 4:
            ax.set_xscale("log", base=2)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.set_xlim(1.0, top)
        ax.set_ylim(-0.03, 1.05)
        ax.set_title(f"budget {_secs(budget)} s ({n_problems} instance × seed problems)")
        ax.set_xlabel("τ: objective within a factor τ of the best")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("share of problems solved within τ")
    legend: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    if legend:
        fig.legend(
            list(legend.values()), list(legend), title="solver", loc="outside right upper",
            fontsize=8,
        )  # fmt: skip
    fig.suptitle("Performance profile (Dolan–Moré); a failed run never counts as solved")
    return save_figure(fig, path)


def write_report(
    out: str | Path,
    *,
    command: str | None = None,
    workers: int | None = None,
    notes: Sequence[str] = (),
) -> tuple[Path, Path, Path]:
    """Write ``summary.md``, ``gap_vs_time.png`` and ``performance_profile.png`` from
    ``out/runs.csv``; returns their paths.

    The report covers every run in ``runs.csv`` (the last row of each key), so
    benches run into one folder with other solvers or budgets add up.

    Parameters
    ----------
    out
        The bench folder.
    command, workers
        Shown in the header: the command line and the number of parallel workers.
    notes
        Extra lines for the header (e.g. that the bench was interrupted).

    Raises
    ------
    ValueError
        ``out/runs.csv`` is missing or not a rota bench file.
    """
    out = Path(out)
    csv_path = out / RUNS_CSV
    if not csv_path.is_file():
        raise ValueError(f"{csv_path}: no such file; run a bench into {out} first")
    runs = read_runs(csv_path)
    summary = out / SUMMARY_MD
    write_text(summary, summary_markdown(runs, command=command, workers=workers, notes=notes))
    return (
        summary,
        plot_gap_vs_time(runs, out / GAP_PNG),
        plot_performance_profile(runs, out / PROFILE_PNG),
    )


def options_json(options: dict | None) -> str:
    """Canonical one-line JSON of a solver's options, as stored in ``runs.csv``."""
    try:
        return json.dumps(options or {}, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"solver options {options!r} are not JSON-serialisable: {exc}") from None
