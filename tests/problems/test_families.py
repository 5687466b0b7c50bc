"""A second problem family, registered by one line, works through every layer of rota.

The family is the toy knapsack of :mod:`tests.problems.knapsack`, which
maximises: reading, solving (by the family's own ``greedy``), warm starts,
stopping on a target, result files, the CLI table and ``rota bench`` gaps
all follow its sense and its descriptions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rota
from rota.bench import read_runs, run_bench
from rota.bench.report import references
from rota.cli.main import app
from rota.problems import FAMILIES, problem_named, problem_of, register_problem

from .knapsack import KNAPSACK, KnapsackInstance, KnapsackSolution

#: The greedy by value density packs item 0 alone (value 10); the optimum is 1 + 2 (12).
KNAP = {
    "format": "rota.knapsack/1",
    "name": "knap",
    "values": [10, 6, 6],
    "weights": [6, 5, 5],
    "capacity": 10,
}
OPTIMUM, GREEDY = 12.0, 10.0


@pytest.fixture(autouse=True)
def knapsack_family(monkeypatch):
    monkeypatch.setitem(FAMILIES, "knapsack", "tests.problems.knapsack:KNAPSACK")
    problem_named.cache_clear()
    yield
    problem_named.cache_clear()


@pytest.fixture
def knap(tmp_path: Path) -> Path:
    path = tmp_path / "knap.json"
    path.write_text(json.dumps(KNAP))
    return path


def test_read_evaluate_and_describe_by_the_format_tag(knap: Path):
    inst = rota.read(knap)
    assert isinstance(inst, KnapsackInstance) and problem_of(inst) is KNAPSACK
    report = rota.evaluate(inst, KnapsackSolution((0, 1, 2)))
    assert report.objective == 22 and [v.kind for v in report.violations] == ["capacity"]
    assert [i.name for i in rota.list_solvers(inst)] == ["greedy", "dp"]
    assert {i.problem for i in rota.list_solvers()} == {"routing", "contacts", "knapsack"}


def test_a_solver_name_is_resolved_in_the_instance_family(knap: Path):
    inst = rota.read(knap)
    greedy = rota.solve(inst, solver="greedy", time_limit=1)
    assert greedy.solution == KnapsackSolution((0,)) and greedy.objective == GREEDY
    exact = rota.solve(inst, time_limit=1)  # the family's default solver, dp
    assert (exact.solver, exact.status, exact.objective) == ("dp", rota.Status.OPTIMAL, OPTIMUM)
    with pytest.raises(rota.UnknownSolverError, match="for knapsack; valid solvers: greedy, dp"):
        rota.solve(inst, solver="pyvrp")


def test_warm_starts_and_targets_follow_the_sense(knap: Path):
    inst = rota.read(knap)
    start = rota.solve(inst, solver="greedy", time_limit=1)
    assert rota.solve(inst, solver="dp", warm_start=start).objective == OPTIMUM
    # a target is met by an objective at least as large when maximising
    reached = rota.solve(inst, solver="greedy", stop={"target": 9})
    assert reached.stats["stopped_by"] == "target"
    missed = rota.solve(inst, solver="greedy", stop={"target": 11, "time": 1})
    assert missed.stats["stopped_by"] != "target"


def test_a_list_must_hold_one_family(knap: Path):
    routing = rota.RoutingInstance([[0, 1], [1, 0]], (rota.VehicleType(),))
    with pytest.raises(ValueError, match="must hold KnapsackInstances only"):
        rota.solve([rota.read(knap), routing], solver="greedy")


def test_result_files_name_the_family(knap: Path, tmp_path: Path):
    inst = rota.read(knap)
    result = rota.solve(inst, solver="dp", time_limit=1)
    rota.write(result, tmp_path / "r.json", inst)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["problem"] == "knapsack" and data["solution"]["items"] == [1, 2]
    assert rota.read_solution(tmp_path / "r.json", inst) == result.solution
    assert rota.read_result(tmp_path / "r.json").objective == OPTIMUM


def test_cli_tables_use_the_family_columns(knap: Path, tmp_path: Path):
    runner = CliRunner()
    solved = runner.invoke(app, ["solve", str(knap), "--solver", "greedy", "--out",
                                 str(tmp_path / "g.json")])  # fmt: skip
    assert solved.exit_code == 0, solved.output
    header = solved.output.splitlines()[2]
    assert "items" in header and "packed" in header and "clients" not in header
    evaluated = runner.invoke(app, ["evaluate", str(knap), str(tmp_path / "g.json")])
    assert evaluated.exit_code == 0 and "10" in evaluated.output
    listed = runner.invoke(app, ["solvers", str(knap)])
    assert "knapsack" in listed.output and "routing" not in listed.output.split("\n", 2)[2]


def test_bench_gaps_are_positive_when_worse_for_a_maximising_family(knap: Path, tmp_path: Path):
    summary = run_bench([knap], ["greedy", "dp"], [0.5], 1, tmp_path / "bench", workers=1,
                        progress=False)  # fmt: skip
    assert summary.statuses == {"feasible": 1, "optimal": 1}
    runs = read_runs(summary.runs_csv)
    assert {r.problem for r in runs} == {"knapsack"} and {r.size for r in runs} == {3}
    refs, warnings = references(runs)
    assert warnings == [] and refs[runs[0].instance].value == OPTIMUM
    text = summary.summary_md.read_text()
    expected = 100 * (OPTIMUM - GREEDY) / OPTIMUM
    assert f"| greedy | 0.5 | 1/1 | 1 | 0 | 0 | 0 | {expected:.2f} |" in text


def test_register_problem_adds_a_family(monkeypatch):
    monkeypatch.delitem(FAMILIES, "knapsack")
    problem_named.cache_clear()
    with pytest.raises(ValueError, match="unknown problem 'knapsack'"):
        problem_named("knapsack")
    register_problem("knapsack", "tests.problems.knapsack:KNAPSACK")
    assert problem_named("knapsack") is KNAPSACK
