"""The contact-scheduling family through the CLI and ``rota bench``."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rota
from rota.bench import read_runs, run_bench
from rota.bench.report import references
from rota.cli.main import app
from tests.cli.test_failures import _interrupt
from tests.conftest import instance_file

runner = CliRunner()


@pytest.fixture
def week(tmp_path: Path) -> Path:
    """The shipped two-day subset of DSN week 10, with its maintenance file beside it."""
    for name in ("W10_2018_2days.json", "W10_2018_maintenance.csv"):
        shutil.copy(instance_file(name), tmp_path / name)
    return tmp_path / "W10_2018_2days.json"


def test_solve_evaluate_and_plot_a_week(week: Path, tmp_path: Path):
    out, plot = tmp_path / "greedy.json", tmp_path / "gantt.png"
    solved = runner.invoke(app, ["solve", str(week), "-s", "greedy", "--out", str(out),
                                 "--plot", str(plot)])  # fmt: skip
    assert solved.exit_code == 0, solved.output
    header = solved.output.splitlines()[2]
    assert "requests" in header and "tracks" in header and "clients" not in header
    assert "W10_2018" in solved.output and "feasible" in solved.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    evaluated = runner.invoke(app, ["evaluate", str(week), str(out)])
    assert evaluated.exit_code == 0, evaluated.output
    for figure in ("hours scheduled", "U_max", "U_rms", "fully", "partly"):
        assert figure in evaluated.output
    objective = rota.read_result(out).objective
    assert f"{objective:.4f}".rstrip("0") in evaluated.output.replace(",", "")


def test_cpsat_reports_its_upper_bound(week: Path, tmp_path: Path):
    solved = runner.invoke(app, ["solve", str(week), "-s", "cpsat", "-t", "1", "--out",
                                 str(tmp_path / "c.json")])  # fmt: skip
    assert solved.exit_code == 0, solved.output
    result = rota.read_result(tmp_path / "c.json")
    assert result.status is rota.Status.FEASIBLE and result.bound > result.objective


def test_evaluate_lists_violations_and_fails(week: Path, tmp_path: Path):
    inst = rota.read(week)
    first = inst.requests[0]
    vp = first.resources[0].view_periods[0]
    clash = {"format": "rota.contacts.solution/1", "tracks": [
        {"request": first.id, "resource": first.resources[0].name, "start": vp[0],
         "end": vp[0] + first.duration},
        {"request": inst.requests[3].id, "resource": first.resources[0].name, "start": vp[0],
         "end": vp[0] + 60},
    ]}  # fmt: skip
    path = tmp_path / "clash.json"
    path.write_text(json.dumps(clash))
    evaluated = runner.invoke(app, ["evaluate", str(week), str(path)])
    assert evaluated.exit_code == 1
    assert "violation (antenna_overlap)" in evaluated.output
    assert "violation (duration)" in evaluated.output  # 60 s is below the minimum


def test_data_satellites_and_contacts_write_instances(tmp_path: Path):
    made = runner.invoke(app, ["data", "satellites", "--hours", "3", "--out",
                               str(tmp_path / "iridium.json")])  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "passes" in made.output and "2023-10-26T18:09:00+00:00" in made.output
    inst = rota.read(tmp_path / "iridium.json")
    assert inst.num_requests > 0 and len(inst.antennas) == 15
    made = runner.invoke(app, ["data", "contacts", "--requests", "60", "--seed", "2", "--out",
                               str(tmp_path / "gen.json")])  # fmt: skip
    assert made.exit_code == 0, made.output
    solved = runner.invoke(app, ["solve", str(tmp_path / "gen.json"), "-s", "cpsat", "-t", "1"])
    assert solved.exit_code == 0, solved.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "contacts", "--requests", "10"], "requests is 10, expected 50 to 5000"),
        (["data", "contacts", "--out", "x.txt"], "an instance is written as .json or .jsonl"),
        (["data", "satellites", "--min-elevation", "95"], "min_elevation is 95.0"),
        (["data", "satellites", "--start", "yesterday"], "--start 'yesterday' is not an ISO 8601"),
        (["data", "satellites", "--tle", "missing.tle"], "missing.tle: no such file"),
    ],
)
def test_bad_data_arguments_give_one_line(args, message, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output and result.output.count("error:") == 1


def test_a_routing_solver_is_not_a_contacts_solver(week: Path):
    result = runner.invoke(app, ["solve", str(week), "-s", "pyvrp"])
    assert result.exit_code == 2
    assert (
        "unknown solver 'pyvrp' for contacts; valid solvers: greedy, cpsat, milp, ga, neural"
        in result.output
    )


def test_bench_gaps_follow_the_maximising_sense(week: Path, tmp_path: Path):
    summary = run_bench([week], ["greedy", "cpsat"], [0.5], 1, tmp_path / "bench", workers=1,
                        progress=False)  # fmt: skip
    runs = read_runs(summary.runs_csv)
    assert {r.problem for r in runs} == {"contacts"} and {r.size for r in runs} == {31}
    by_solver = {r.solver: r for r in runs}
    greedy, cpsat = by_solver["greedy"].objective, by_solver["cpsat"].objective
    assert cpsat >= greedy  # cpsat starts from greedy's schedule
    refs, warnings = references(runs)
    assert warnings == [] and refs[runs[0].instance].value == pytest.approx(cpsat)
    row = next(line for line in summary.summary_md.read_text().splitlines()
               if line.startswith("| greedy |"))  # fmt: skip
    assert f"| {100 * (cpsat - greedy) / cpsat:.2f} |" in row


@pytest.mark.parametrize(("solver", "signum"), [("cpsat", signal.SIGINT), ("milp", signal.SIGTERM)])
def test_a_signal_ends_a_contacts_solve_keeping_its_best(
    week: Path, tmp_path: Path, solver, signum
):
    out = tmp_path / "result.json"
    args = ["solve", str(week), "--solver", solver, "-t", "600", "--out", str(out)]
    process, seconds, _ = _interrupt(args, signum, after=3.0)
    stderr = process.stderr.read()
    assert seconds < 4, (seconds, stderr)
    assert process.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], stderr
    data = json.loads(out.read_text())
    assert data["stats"]["stopped_by"] == "interrupted" and data["status"] == "feasible"
    assert data["solution"]["tracks"]
