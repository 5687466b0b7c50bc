"""``rota bench``: expansion, references, the run log, resume, failures and the report.

Test-only solvers live in this module and are registered as
``"tests.bench.test_bench:Class"`` targets (:func:`register_test_solvers`):
bench workers are spawned processes, and a ``"module:attr"`` target is
something they can import, unlike a class defined inside a test function.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rota.bench import InstanceRef, expand_instances, pick_reference, read_runs, run_bench
from rota.bench.report import (
    COLUMNS,
    LEGACY_COLUMNS,
    Reference,
    Run,
    instance_labels,
    latest,
    plot_gap_vs_time,
    plot_performance_profile,
    profile_ratios,
    references,
    summary_markdown,
)
from rota.bench.runner import threads_per_worker
from rota.problems.routing import RoutingInstance, RoutingSolution
from rota.solvers import registry
from rota.solvers.base import Result, Status, finish
from rota.solvers.routing import RoutingCapabilities

from ..conftest import instance_file

REPO = Path(__file__).resolve().parents[2]


# -- test-only solvers ---------------------------------------------------------------


class _TestSolver:
    problem = "routing"
    description = "test-only solver"
    capabilities = RoutingCapabilities()

    def available(self) -> bool:
        return True

    def supports(self, instance: RoutingInstance) -> str | None:
        return None


def _in_order(instance: RoutingInstance) -> RoutingSolution:
    """Clients in index order, cut into routes whenever the capacity would be exceeded."""
    capacity = instance.vehicle_types[0].capacity
    routes: list[list[int]] = [[]]
    load = 0.0
    for c in instance.clients:
        if capacity is not None and load + instance.demand[c] > capacity:
            routes.append([])
            load = 0.0
        routes[-1].append(int(c))
        load += instance.demand[c]
    return RoutingSolution.from_lists(routes)


class OrderSolver(_TestSolver):
    """Feasible and deterministic; with ``log`` set, appends one line per call.

    A call after the first ``hold_after`` calls in ``log`` also waits while the
    file ``hold`` exists: a run certainly still under way when a test
    interrupts the bench, whatever order the runs start in.
    """

    name = "bench-order"

    def __init__(
        self,
        log: str | None = None,
        sleep: float = 0.0,
        hold: str | None = None,
        hold_after: int = 0,
    ) -> None:
        self.log, self.sleep = log, sleep
        self.hold, self.hold_after = hold, hold_after

    def configure(self, **options) -> OrderSolver:
        return type(self)(**options)

    def solve(self, instance, stop, seed, warm_start=()):
        call = f"{instance.name} {stop.time_limit:g} {seed} {self.name} {os.getpid()}\n"
        if self.log:
            with open(self.log, "a") as handle:
                handle.write(call)
        time.sleep(self.sleep)
        if self.hold and self.log:
            with open(self.log) as handle:
                order = handle.readlines().index(call)
            while order >= self.hold_after and os.path.exists(self.hold):
                time.sleep(0.05)
        return finish(
            instance, _in_order(instance), Status.FEASIBLE, solver=self.name, seed=seed, stop=stop
        )


class OtherOrderSolver(OrderSolver):
    name = "bench-order2"


class PreloadSolver(OrderSolver):
    """An OrderSolver whose ``preload`` logs its process and the OpenMP threads it was given."""

    name = "bench-preload"

    def preload(self) -> None:
        with open(self.log, "a") as handle:
            handle.write(f"preload {os.getpid()} {os.environ.get('OMP_NUM_THREADS')}\n")


class NoOptionsSolver:
    """A contacts solver named like :class:`PreloadSolver` that takes no options."""

    name = PreloadSolver.name
    problem = "contacts"

    def configure(self, **options):
        raise ValueError(f"{self.name}: unknown option {sorted(options)[0]!r}")

    def available(self) -> bool:
        return True


class ExactTSPSolver(_TestSolver):
    """Brute force over tours; proves optimality; refuses anything but a TSP."""

    name = "bench-exact"

    def supports(self, instance):
        return None if instance.is_tsp else f"bench-exact solves only TSPs, not {instance.kind}"

    def solve(self, instance, stop, seed, warm_start=()):
        d = instance.distance

        def length(tour: tuple[int, ...]) -> float:
            return (
                d[0, tour[0]] + d[tour[-1], 0] + sum(d[a, b] for a, b in itertools.pairwise(tour))
            )

        best = min(itertools.permutations(instance.clients.tolist()), key=length)
        solution = RoutingSolution.from_lists([best])
        return finish(instance, solution, Status.OPTIMAL, solver=self.name, seed=seed, stop=stop)


class CrashSolver(_TestSolver):
    name = "bench-crash"

    def solve(self, instance, stop, seed, warm_start=()):
        raise RuntimeError("solver blew up\nsecond line of detail")


class BrokenSolver(_TestSolver):
    """Claims a feasible solution that skips the last client: a buggy backend."""

    name = "bench-broken"

    def solve(self, instance, stop, seed, warm_start=()):
        routes = [list(r.visits) for r in _in_order(instance).routes]
        routes[-1].pop()
        solution = RoutingSolution.from_lists(routes)
        return Result(1.0, solution, Status.FEASIBLE, 0.0, self.name, seed)


class DyingSolver(_TestSolver):
    name = "bench-die"

    def solve(self, instance, stop, seed, warm_start=()):
        os._exit(3)


class HangingSolver(_TestSolver):
    name = "bench-hang"

    def solve(self, instance, stop, seed, warm_start=()):
        time.sleep(60)


TEST_SOLVERS = {
    cls.name: f"{__name__}:{cls.__name__}"
    for cls in (
        OrderSolver,
        OtherOrderSolver,
        PreloadSolver,
        ExactTSPSolver,
        CrashSolver,
        BrokenSolver,
        DyingSolver,
        HangingSolver,
    )
}


def register_test_solvers() -> None:
    """Add the test-only solvers to the registry (used by the SIGINT subprocess)."""
    for name, target in TEST_SOLVERS.items():
        registry.register(name, target)


@pytest.fixture(autouse=True)
def test_solvers(monkeypatch):
    # setitem restores the registry after each test, so other tests never list these.
    for name, target in TEST_SOLVERS.items():
        monkeypatch.setitem(registry._EXTRA, ("routing", name), target)


# -- tiny instances ------------------------------------------------------------------

#: 4 clients, capacity 2, unit demands; optimum 24 = [1, 4] + [2, 3];
#: OrderSolver's [1, 2] + [3, 4] costs 12 + 16 = 28.
CVRP = {
    "format": "rota.routing/1",
    "name": "tiny-cvrp",
    "coords": [[0, 0], [3, 0], [0, 4], [3, 4], [6, 0]],
    "demand": [0, 1, 1, 1, 1],
    "vehicle_types": [{"capacity": 2, "count": None}],
}
CVRP_OPTIMUM, CVRP_ORDER = 24.0, 28.0


def _atsp_distance() -> list[list[float]]:
    # Every arc costs 2 except the tour 0 -> 2 -> 1 -> 4 -> 3 -> 0 at 1 each: optimum 5,
    # and OrderSolver's 0 -> 1 -> 2 -> 3 -> 4 -> 0 costs 10.
    d = np.full((5, 5), 2.0)
    np.fill_diagonal(d, 0.0)
    for a, b in [(0, 2), (2, 1), (1, 4), (4, 3), (3, 0)]:
        d[a, b] = 1.0
    return d.tolist()


ATSP = {
    "format": "rota.routing/1",
    "name": "tiny-atsp",
    "distance": _atsp_distance(),
    "vehicle_types": [{"capacity": None, "count": 1}],
}
ATSP_OPTIMUM, ATSP_ORDER = 5.0, 10.0


@pytest.fixture
def instances(tmp_path) -> Path:
    folder = tmp_path / "instances"
    folder.mkdir()
    (folder / "tiny-cvrp.json").write_text(json.dumps(CVRP))
    (folder / "tiny-atsp.json").write_text(json.dumps(ATSP))
    (folder / "BKS.txt").write_text(f"# best known\ntiny-cvrp {CVRP_OPTIMUM:g}\n")
    return folder


def _rows(out: Path) -> list[Run]:
    return read_runs(out / "runs.csv")


def _by(rows, **match) -> list[Run]:
    return [r for r in rows if all(getattr(r, k) == v for k, v in match.items())]


# -- expansion -----------------------------------------------------------------------


def test_expand_instances_files_folders_globs_and_sets(tmp_path):
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    (folder / "a.json").write_text(json.dumps(CVRP))
    (folder / "sub" / "b.json").write_text(json.dumps(ATSP))
    (folder / "set.jsonl").write_text(json.dumps(CVRP) + "\n\n" + json.dumps(ATSP) + "\n")
    (folder / ".hidden" / "c.json").write_text(json.dumps(CVRP))
    (folder / "OPTIMA.txt").write_text("a 1\n")
    (folder / "README.txt").write_text("prose\n")
    (folder / "notes.md").write_text("prose\n")
    (folder / "a-result.json").write_text('{"format": "rota.result/1", "status": "feasible"}')
    root = folder.resolve()

    refs = expand_instances([str(folder)])
    assert [r.id for r in refs] == [
        f"{root}/a.json",
        f"{root}/set.jsonl#1",
        f"{root}/set.jsonl#3",
        f"{root}/sub/b.json",
    ]
    assert expand_instances([f"{folder}/**/*.json"]) == [
        InstanceRef(root / "a.json"),
        InstanceRef(root / "sub" / "b.json"),
    ]
    # Explicit specs are taken as given, duplicates dropped, order kept.
    specs = [f"{folder}/set.jsonl#3", str(folder / "a.json"), f"{folder}/a.json"]
    assert expand_instances(specs) == [
        InstanceRef(root / "set.jsonl", 3),
        InstanceRef(root / "a.json"),
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.json", "missing.json: no such file or folder"),
        ("*.vrp", "glob matches no instance file"),
        ("empty", "folder holds no instance file"),
        ("set.jsonl#2", "has no instance on line 2"),
    ],
)
def test_expand_instances_rejects_specs_that_name_nothing(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "set.jsonl").write_text(json.dumps(CVRP) + "\n\n")
    with pytest.raises(ValueError, match=message):
        expand_instances([spec])


# -- references ----------------------------------------------------------------------


def test_pick_reference_priority():
    # A proven optimum from a file beats everything.
    assert pick_reference(10.0, "optimal", [11.0], 9.0) == Reference(10.0, "optimal")
    # An optimum proved in this bench beats a best-known value from a file.
    assert pick_reference(12.0, "bks", [11.0, 11.0], 11.0) == Reference(11.0, "optimal-run")
    # Without a proof the best-known value wins, even over a better run.
    assert pick_reference(12.0, "bks", [], 11.5) == Reference(12.0, "bks")
    # Only without any file or proof is the best found used; nothing at all gives None.
    assert pick_reference(None, None, [], 13.0) == Reference(13.0, "best-found")
    assert pick_reference(None, None, [], None) is None
    with pytest.raises(ValueError, match="reference kind is 'guess'"):
        pick_reference(12.0, "guess")


def _run(instance="i", solver="s", seed=0, status="feasible", objective=10.0, **kw) -> Run:
    fields = {"name": "n", "kind": "cvrp", "size": 3, "options": "{}", "time_limit": 1.0,
              "digest": "d", "problem": "routing"}  # fmt: skip
    feasible = kw.pop("feasible", status in ("feasible", "optimal"))
    return Run(
        instance=instance, solver=solver, seed=seed, status=status, objective=objective,
        feasible=feasible, **(fields | kw),
    )  # fmt: skip


def test_references_from_rows_follow_priority_and_flag_contradictions():
    rows = [
        _run("a", objective=12.0, reference=11.0, reference_kind="bks"),
        _run("a", "exact", status="optimal", objective=10.0, reference=11.0, reference_kind="bks"),
        _run("b", objective=7.0),
        _run("b", "other", objective=6.0),
        _run("b", "broken", status="infeasible_solution", objective=1.0, feasible=False),
        _run("c", objective=4.0, reference=5.0, reference_kind="optimal"),
    ]
    refs, warnings = references(rows)
    assert refs == {
        "a": Reference(10.0, "optimal-run"),
        "b": Reference(6.0, "best-found"),  # the infeasible 1.0 never counts
        "c": Reference(5.0, "optimal"),
    }
    assert warnings == [
        "c: a feasible objective 4 is better than the proven optimum 5; "
        "check the reader's rounding or the optimum"
    ]


def test_performance_profile_ratios_count_failures_as_never_solved():
    rows = [
        _run("a", "x", objective=10.0),
        _run("a", "y", objective=12.0),
        _run("b", "x", status="error", objective=None, feasible=None),
        _run("b", "y", objective=8.0),
        _run("c", "x", objective=3.0),  # y never ran c: c is not a common problem
    ]
    ratios = profile_ratios(rows, 1.0)
    np.testing.assert_allclose(ratios["x"], [1.0, np.inf])
    np.testing.assert_allclose(ratios["y"], [1.2, 1.0])


def test_instance_labels_are_short_and_unique():
    labels = instance_labels(["/d/x/a.vrp", "/d/y/a.vrp", "/d/x/b.vrp", "/d/s.jsonl#4"])
    assert labels == {
        "/d/x/a.vrp": "x/a", "/d/y/a.vrp": "y/a", "/d/x/b.vrp": "b", "/d/s.jsonl#4": "s#4",
    }  # fmt: skip


# -- the bench, end to end -----------------------------------------------------------


def test_bench_end_to_end(instances, tmp_path):
    solvers = ["greedy", "bench-order", "bench-exact", "bench-crash", "bench-broken"]
    out = tmp_path / "out"
    summary = run_bench(
        [str(instances)], solvers, [0.05, 0.1], 2, out, workers=2, progress=True, command="test"
    )
    rows = _rows(out)
    assert len(rows) == 2 * len(solvers) * 2 * 2
    assert (summary.total, summary.skipped, summary.executed) == (40, 0, 40)
    assert not summary.interrupted
    assert summary.statuses == {
        "feasible": 16, "optimal": 4, "error": 8, "infeasible_solution": 8, "unsupported": 4,
    }  # fmt: skip
    keys = {(Path(r.instance).stem, r.solver, r.time_limit, r.seed) for r in rows}
    assert len(keys) == 40

    cvrp_id = str((instances / "tiny-cvrp.json").resolve())
    atsp_id = str((instances / "tiny-atsp.json").resolve())
    for r in _by(rows, solver="bench-order"):
        assert (r.status, r.feasible) == ("feasible", True)
        assert r.objective == {cvrp_id: CVRP_ORDER, atsp_id: ATSP_ORDER}[r.instance]
        assert r.runtime is not None and r.wall_time >= r.runtime
    for r in _by(rows, solver="greedy"):
        assert (r.status, r.feasible) == ("feasible", True)
        assert r.objective >= {cvrp_id: CVRP_OPTIMUM, atsp_id: ATSP_OPTIMUM}[r.instance]
    for r in _by(rows, instance=cvrp_id):
        assert (r.problem, r.name, r.kind, r.size) == ("routing", "tiny-cvrp", "cvrp", 4)
        assert (r.reference, r.reference_kind) == (CVRP_OPTIMUM, "bks")
    for r in _by(rows, instance=cvrp_id, solver="bench-order"):
        assert r.gap_pct == pytest.approx(100 * (CVRP_ORDER - CVRP_OPTIMUM) / CVRP_OPTIMUM)
    for r in _by(rows, instance=atsp_id):
        assert (r.kind, r.reference, r.reference_kind, r.gap_pct) == ("atsp", None, "", None)

    exact = _by(rows, solver="bench-exact")
    assert {(r.instance, r.status) for r in exact} == {
        (cvrp_id, "unsupported"), (atsp_id, "optimal"),
    }  # fmt: skip
    assert {r.objective for r in _by(exact, status="optimal")} == {ATSP_OPTIMUM}
    unsupported = {r.message for r in _by(exact, status="unsupported")}
    assert unsupported == {"bench-exact solves only TSPs, not cvrp"}
    for r in _by(rows, solver="bench-crash"):
        assert (r.status, r.objective, r.feasible) == ("error", None, None)
        assert r.message == "RuntimeError: solver blew up …"
    for r in _by(rows, solver="bench-broken"):
        assert (r.status, r.feasible) == ("infeasible_solution", False)
        assert r.objective != 1.0  # the evaluator's objective, not the claimed one
        assert r.message == "1 violation(s), first: client 4 is not visited"
    assert (out / "errors.log").read_text().count("RuntimeError: solver blew up") == 8

    text = summary.summary_md.read_text()
    assert "- Command: `test`" in text and "2 runs in parallel worker processes" in text
    # The ATSP's reference is the optimum proved by bench-exact, the CVRP's the BKS file.
    expected_lines = [
        "| tiny-atsp | routing | atsp | 4 | 5 (optimum (proved in run)) | bench-order | 0.05 "
        "| 10 (10) "
        "| 100.00 | 2 feasible |",
        "| tiny-cvrp | routing | cvrp | 4 | 24 (BKS (file)) | bench-order | 0.1 | 28 (28) "
        "| 16.67 "
        "| 2 feasible |",
        "| bench-order | 0.1 | 2/2 | 4 | 0 | 0 | 0 | 58.33 |",
        "| bench-crash | 0.1 | 0/2 | 0 | 0 | 4 | 0 | – |",
        "| tiny-cvrp | bench-broken | infeasible_solution | 4 | 0.05, 0.1 | 0, 1 "
        "| 1 violation(s), first: client 4 is not visited |",
        "| tiny-atsp | bench-crash | error | 4 | 0.05, 0.1 | 0, 1 "
        "| RuntimeError: solver blew up … |",
        "| tiny-cvrp | bench-exact | unsupported | 4 | 0.05, 0.1 | 0, 1 "
        "| bench-exact solves only TSPs, not cvrp |",
    ]
    for line in expected_lines:
        assert line in text
    for png in summary.plots:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert {p.name for p in summary.plots} == {"gap_vs_time.png", "performance_profile.png"}


def test_bench_resumes_and_repairs_a_torn_log(instances, tmp_path):
    calls = tmp_path / "calls.log"
    options = {"bench-order": {"log": str(calls)}}
    out = tmp_path / "out"
    args = ([str(instances / "tiny-cvrp.json")], ["bench-order"], [0.05, 0.1], [3, 7], out)
    run_bench(*args, workers=2, progress=False, solver_options=options)
    assert len(calls.read_text().splitlines()) == 4
    first = _rows(out)
    assert {r.options for r in first} == {json.dumps({"log": str(calls)}, separators=(",", ":"))}

    # An interrupted bench: two rows never written, and the last one torn by kill -9.
    lines = (out / "runs.csv").read_text().splitlines(keepends=True)
    (out / "runs.csv").write_text("".join(lines[:3]) + lines[4][:25])
    kept = {r.key: r for r in first[:2]}
    calls.unlink()

    again = run_bench(*args, workers=2, progress=False, solver_options=options)
    assert (again.total, again.skipped, again.executed) == (4, 2, 2)
    missing = {(0.05 if r.time_limit == 0.05 else 0.1, r.seed) for r in first[2:]}
    logged = [line.split() for line in calls.read_text().splitlines()]
    assert {(float(t), int(s)) for _, t, s, *_ in logged} == missing
    rows = _rows(out)
    assert sorted(r.key for r in rows) == sorted(r.key for r in first)
    assert all(kept[r.key] == r for r in rows if r.key in kept)  # untouched, not rerun
    with (out / "runs.csv").open() as handle:
        assert all(len(cells) == len(COLUMNS) for cells in csv.reader(handle))

    done = run_bench(*args, workers=2, progress=False, solver_options=options)
    assert (done.skipped, done.executed) == (4, 0)
    assert len(calls.read_text().splitlines()) == 2


def test_a_changed_instance_is_rerun_not_reported_from_its_old_runs(instances, tmp_path):
    path, out = instances / "tiny-cvrp.json", tmp_path / "out"
    run_bench([str(path)], ["bench-order"], [0.05], 1, out, workers=1, progress=False)
    (before,) = _rows(out)
    assert before.objective == CVRP_ORDER
    # the same path, other content: a client moves, so the route costs change
    changed = dict(CVRP, coords=[[0, 0], [3, 0], [0, 4], [3, 4], [9, 0]])
    path.write_text(json.dumps(changed))
    again = run_bench([str(path)], ["bench-order"], [0.05], 1, out, workers=1, progress=False)
    assert (again.skipped, again.executed) == (0, 1)
    after = latest(_rows(out))
    assert len(after) == 1 and after[0].digest != before.digest
    assert after[0].objective == pytest.approx(12 + 5 + 52**0.5 + 9)  # [1, 2] + [3, 4], moved


def test_a_runs_csv_from_before_problem_families_still_reads(instances, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    path = str((instances / "tiny-cvrp.json").resolve())
    old = {"instance": path, "name": "tiny-cvrp", "kind": "cvrp", "n_clients": "4",
           "solver": "bench-order", "options": "{}", "time_limit": "0.05", "seed": "0",
           "status": "feasible", "objective": "28.0", "feasible": "true"}  # fmt: skip
    with (out / "runs.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(LEGACY_COLUMNS)
        writer.writerow([old.get(column, "") for column in LEGACY_COLUMNS])
    (legacy,) = _rows(out)
    assert (legacy.problem, legacy.size, legacy.digest, legacy.objective) == (
        "routing",
        4,
        "",
        28.0,
    )
    # resuming upgrades the file in place; a row without a digest cannot be trusted, so reruns
    summary = run_bench([path], ["bench-order"], [0.05], 1, out, workers=1, progress=False)
    assert (summary.skipped, summary.executed) == (0, 1)
    with (out / "runs.csv").open() as handle:
        assert tuple(next(csv.reader(handle))) == COLUMNS
    rows = _rows(out)
    assert len(rows) == 2 and rows[0] == legacy and rows[1].digest


def test_a_worker_process_runs_one_solver_only(instances, tmp_path):
    calls = tmp_path / "calls.log"
    options = {name: {"log": str(calls)} for name in ("bench-order", "bench-order2")}
    run_bench(
        [str(instances / "tiny-atsp.json")], ["bench-order", "bench-order2"], [0.05], 4,
        tmp_path / "out", workers=2, progress=False, solver_options=options,
    )  # fmt: skip
    pids: dict[str, set[str]] = {"bench-order": set(), "bench-order2": set()}
    for line in calls.read_text().splitlines():
        _, _, _, solver, pid = line.split()
        pids[solver].add(pid)
    assert pids["bench-order"] and pids["bench-order2"]
    assert not pids["bench-order"] & pids["bench-order2"]


def test_a_worker_preloads_its_configured_solver_with_a_share_of_the_cores(
    instances, tmp_path, monkeypatch
):
    # the log path reaches preload only through the bench's options, so a line from
    # preload shows the worker loaded the solver as configured
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    calls = tmp_path / "calls.log"
    run_bench(
        [str(instances / "tiny-atsp.json")], ["bench-preload"], [0.05], 4, tmp_path / "out",
        workers=2, progress=False, solver_options={"bench-preload": {"log": str(calls)}},
    )  # fmt: skip
    lines = [line.split() for line in calls.read_text().splitlines()]
    preloads = {words[1]: k for k, words in enumerate(lines) if words[0] == "preload"}
    solves = [(k, words[-1]) for k, words in enumerate(lines) if words[0] != "preload"]
    assert len(solves) == 4
    assert all(pid in preloads and preloads[pid] < k for k, pid in solves)
    assert {words[2] for words in lines if words[0] == "preload"} == {"3"}


def test_a_family_refusing_the_options_does_not_stop_another_family_preloading(
    instances, tmp_path, monkeypatch
):
    # the refusing family comes first in the registry, so a worker that gave up at the
    # first failure would never preload the routing solver
    routing = ("routing", PreloadSolver.name)
    target = registry._EXTRA[routing]
    monkeypatch.delitem(registry._EXTRA, routing)
    monkeypatch.setitem(registry._EXTRA, ("contacts", PreloadSolver.name), NoOptionsSolver)
    monkeypatch.setitem(registry._EXTRA, routing, target)
    assert registry.families_of(PreloadSolver.name) == ["contacts", "routing"]
    calls = tmp_path / "calls.log"
    run_bench(
        [str(instances / "tiny-atsp.json")], [PreloadSolver.name], [0.05], 1, tmp_path / "out",
        workers=1, progress=False, solver_options={PreloadSolver.name: {"log": str(calls)}},
    )  # fmt: skip
    assert calls.read_text().splitlines()[0].startswith("preload ")


def test_threads_per_worker_shares_the_cores_unless_the_user_chose(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert [threads_per_worker(w) for w in (1, 2, 3)] == [2, 1, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert threads_per_worker(2) is None


def test_retry_errors_reruns_only_errors(instances, tmp_path):
    out = tmp_path / "out"
    args = ([str(instances / "tiny-atsp.json")], ["bench-order", "bench-crash"], [0.05], 1, out)
    run_bench(*args, workers=1, progress=False)
    again = run_bench(*args, workers=1, progress=False, retry_errors=True)
    assert (again.skipped, again.executed) == (1, 1)
    rows = _rows(out)
    assert [r.solver for r in rows] == ["bench-order", "bench-crash", "bench-crash"]
    assert "1 error" in again.summary_md.read_text()  # the retried row replaces the first


def test_dead_and_hanging_workers_become_error_rows(instances, tmp_path):
    out = tmp_path / "out"
    summary = run_bench(
        [str(instances / "tiny-atsp.json")],
        ["bench-die", "bench-hang", "bench-order"],
        [0.1],
        1,
        out,
        workers=2,
        progress=False,
        grace=0.5,
    )
    rows = {r.solver: r for r in _rows(out)}
    assert rows["bench-die"].status == "error"
    assert rows["bench-die"].message == "worker process died (exit code 3)"
    assert rows["bench-hang"].status == "error"
    assert rows["bench-hang"].message.startswith("killed: still running 0.7 s after it started")
    assert rows["bench-order"].status == "feasible"
    assert summary.executed == 3


def test_sigint_stops_cleanly_and_a_rerun_finishes(instances, tmp_path):
    out = tmp_path / "out"
    calls = tmp_path / "calls.log"
    options = {"bench-order": {"log": str(calls), "sleep": 0.2}}
    spec = ([str(instances / "tiny-cvrp.json")], ["bench-order"], [1.0], 5, str(out))
    # A shell that starts jobs in the background (as CI may) makes them ignore
    # SIGINT; restore Python's handler, as a terminal would have it.
    script = (
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "import sys; from tests.bench.test_bench import register_test_solvers as r; r()\n"
        "from rota.bench import run_bench\n"
        f"s = run_bench(*{spec!r}, workers=1, progress=False, solver_options={options!r})\n"
        "print('interrupted', s.interrupted, s.executed)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    csv_path = out / "runs.csv"
    while time.monotonic() < deadline:
        if csv_path.exists() and len(csv_path.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    _, flag, executed = stdout.split()
    written = _rows(out)
    assert flag == str(int(signal.SIGINT)) and 2 <= int(executed) == len(written) < 5
    assert "interrupted" in (out / "summary.md").read_text()

    again = run_bench(*spec, workers=2, progress=False, solver_options=options)
    assert (again.skipped, again.executed) == (len(written), 5 - len(written))
    assert sorted(r.seed for r in _rows(out)) == list(range(5))


# -- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"solvers": ["nope"]}, "unknown solver 'nope'; valid solvers: "),
        ({"time_limits": [0]}, "time limit 0.0 is not a positive number"),
        ({"seeds": 0}, "seeds is 0, expected a count >= 1"),
        ({"workers": 0}, "workers is 0, expected a positive integer"),
        ({"solver_options": {"greedy": {}}}, "options given for solver 'greedy', which is not"),
        ({"solver_options": {"bench-order": {"f": print}}}, "are not JSON-serialisable"),
    ],
)
def test_bad_arguments_raise_value_errors(instances, tmp_path, change, message):
    args = {
        "instances": [str(instances)], "solvers": ["bench-order"], "time_limits": [0.1],
        "seeds": 1, "out": tmp_path / "out", "progress": False,
    } | change  # fmt: skip
    with pytest.raises(ValueError, match=message):
        run_bench(**args)
    assert not (tmp_path / "out" / "runs.csv").exists()


def test_bad_instance_fails_before_any_run(instances, tmp_path):
    (instances / "bad.json").write_text('{"vehicle_types": [{"capacity": -1}], "distance": [[0]]}')
    with pytest.raises(ValueError, match=r"bad.json: vehicle_types\[0\]: vehicle capacity must"):
        run_bench([str(instances)], ["bench-order"], [0.1], 1, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "runs.csv").exists()


def test_foreign_csv_is_refused(instances, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"runs.csv: header is 'a,b', expected rota's bench"):
        run_bench([str(instances)], ["bench-order"], [0.1], 1, out, progress=False)


def test_unpicklable_factory_is_refused(instances, tmp_path, monkeypatch):
    monkeypatch.setitem(registry._EXTRA, ("routing", "bench-local"), lambda: OrderSolver())
    with pytest.raises(ValueError, match="register it as 'module:attr'"):
        run_bench([str(instances)], ["bench-local"], [0.1], 1, tmp_path / "out", progress=False)


# -- real instances ------------------------------------------------------------------


def test_bench_reads_references_of_real_instances(tmp_path):
    files = [instance_file("E-n13-k4.vrp"), instance_file("br17.atsp")]
    run_bench([str(f) for f in files], ["greedy"], [0.1], 1, tmp_path, workers=2, progress=False)
    rows = {Path(r.instance).stem: r for r in _rows(tmp_path)}
    assert (rows["E-n13-k4"].reference, rows["E-n13-k4"].reference_kind) == (247.0, "bks")
    assert (rows["br17"].reference, rows["br17"].reference_kind) == (39.0, "optimal")
    for r in rows.values():
        assert r.status == "feasible"
        assert r.gap_pct == pytest.approx(100 * (r.objective - r.reference) / r.reference)
        assert r.gap_pct >= 0


def test_report_of_no_feasible_run_is_still_written(tmp_path):
    text = summary_markdown([], command="x", machine={
        "cores": "2", "cpu": "c", "memory": "1 GiB", "gpu": "none", "python": "3", "platform": "p",
    }, date="today")  # fmt: skip
    assert "- Runs: 0 (none)" in text and "None: every run returned a feasible solution." in text
    failed = [_run("a", "x", status="error", objective=None, feasible=None)]
    for plot in (plot_gap_vs_time, plot_performance_profile):
        for runs in ([], failed):
            path = plot(runs, tmp_path / "plot.png")
            assert path.read_bytes()[:4] == b"\x89PNG"


def test_reference_rows_round_trip_through_csv(tmp_path):
    row = _run("a", objective=27591.0, bound=1.5, runtime=0.123456789, reference=27591.0,
               reference_kind="bks", gap_pct=0.0, message='say "hi", twice')  # fmt: skip
    path = tmp_path / "runs.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerow(row.to_csv())
    assert read_runs(path) == [row]
