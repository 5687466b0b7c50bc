"""The placement family through the ``rota`` command: data, solve, evaluate, plot and bench."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import rota
from rota.bench import read_runs, run_bench
from rota.cli.main import EXIT_BAD_INPUT, EXIT_INFEASIBLE, app

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:") and "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    path = tmp_path / "p.json"
    result = invoke("data", "placement", "--experts", 4, "--layers", 3, "--gpus", 2,
                    "--top-k", 2, "--tokens", 500, "--seed", 1, "--out", path,
                    "--write-trace", tmp_path / "t.npz")  # fmt: skip
    assert result.exit_code == 0, result.output
    return path


def test_data_placement_writes_an_instance_and_its_trace(instance: Path, tmp_path: Path):
    inst = rota.read(instance)
    assert (inst.num_experts, inst.num_layers, inst.top_k, inst.gpus) == (4, 3, 2, 2)
    assert inst.loads.sum() == 500 * 3 * 2
    assert {"gini_mean", "affinity", "seed"} <= set(inst.metadata)
    again = tmp_path / "again.json"
    summarised = invoke("data", "placement", "--trace", tmp_path / "t.npz", "--gpus", 2,
                        "--out", again)  # fmt: skip
    assert summarised.exit_code == 0, summarised.output
    assert np.array_equal(rota.read(again).flows, inst.flows)


def test_solve_evaluate_and_plot(instance: Path, tmp_path: Path):
    out, plot = tmp_path / "r.json", tmp_path / "traffic.png"
    solved = invoke("solve", instance, "--solver", "milp", "-t", 20, "--out", out,
                    "--plot", plot)  # fmt: skip
    assert solved.exit_code == 0, solved.output
    assert "optimal" in solved.output and "experts" in solved.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(out.read_text())
    assert data["problem"] == "placement" and data["status"] == "optimal"
    evaluated = invoke("evaluate", instance, out)
    assert evaluated.exit_code == 0, evaluated.output
    assert "cross-GPU" in evaluated.output and "max imbalance" in evaluated.output
    contiguous = invoke("solve", instance, "--solver", "greedy", "-o", "method=contiguous")
    assert contiguous.exit_code == 0, contiguous.output


def test_evaluate_lists_violations(instance: Path, tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"placement": [[0, 0, 0, 1], [0, 0, 1, 1], [0, 0, 1, 1]]}))
    result = invoke("evaluate", instance, bad)
    assert result.exit_code == EXIT_INFEASIBLE
    assert "violation (capacity): layer 0: GPU 0 holds 3 experts" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--experts", 9, "--layers", 2, "--gpus", 2, "--top-k", 1, "--slots", 4),
         "9 experts per layer do not fit on 2 GPUs x 4 slots"),
        (("--experts", 4, "--layers", 2, "--gpus", 2), "--experts, --layers and --top-k"),
        (("--experts", 4, "--layers", 2, "--gpus", 2, "--top-k", 5), "top_k is 5"),
        (("--experts", 4, "--layers", 2, "--gpus", 3, "--top-k", 1, "--nodes", 2),
         "gpus is 3, not a multiple of nodes 2"),
    ],
)  # fmt: skip
def test_bad_data_requests_give_one_line(tmp_path: Path, args, message):
    result = invoke("data", "placement", *args, "--out", tmp_path / "p.json")
    assert result.exit_code == EXIT_BAD_INPUT
    assert message in one_line_error(result)
    assert not (tmp_path / "p.json").exists()


def test_bad_counts_in_a_file_give_one_line(instance: Path, tmp_path: Path):
    data = json.loads(instance.read_text())
    data["loads"][1][2] = -5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = invoke("solve", bad, "--solver", "greedy")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "loads[1][2] is -5.0" in one_line_error(result)


def test_a_trace_given_as_an_instance_says_what_to_do(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text("token,layer,expert\n0,0,1\n0,1,0\n")
    result = invoke("solve", path, "--solver", "greedy")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "rota data placement --trace" in one_line_error(result)


def test_bench_runs_placement_solvers(instance: Path, tmp_path: Path):
    summary = run_bench([instance], ["greedy", "milp"], [5.0], 1, tmp_path / "bench",
                        workers=1, progress=False)  # fmt: skip
    runs = read_runs(summary.runs_csv)
    assert {r.problem for r in runs} == {"placement"} and {r.size for r in runs} == {12}
    assert summary.statuses == {"feasible": 1, "optimal": 1}
    best = min(r.objective for r in runs)
    assert next(r for r in runs if r.solver == "milp").objective == best
