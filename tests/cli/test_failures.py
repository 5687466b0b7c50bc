"""rota as a hostile user meets it: every class of failure ends in one clear line.

The classes (see ``docs/failures.md``): data loss, stale results, numeric
overflow, signals, resource blow-ups, silently accepted inconsistencies, and
tracebacks or unclear messages. Each test would have caught one of the cases
first found by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rota.bench import read_runs
from rota.cli.main import EXIT_BAD_INPUT, app
from rota.files import atomic_open

from ..conftest import TEST_INSTANCES

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line(result, prefix: str = "error:") -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith(prefix), result.output
    assert "Traceback" not in result.output
    return lines[0]


def refused(result, *fragments: str) -> str:
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    line = one_line(result)
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.fixture
def e13(tmp_path: Path) -> Path:
    """E-n13-k4 with its reference solution beside it, in a folder of its own."""
    for suffix in (".vrp", ".sol"):
        shutil.copy(TEST_INSTANCES / f"E-n13-k4{suffix}", tmp_path)
    return tmp_path / "E-n13-k4.vrp"


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


# -- 1. data loss ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "target", "fragment"),
    [
        ("--out", "E-n13-k4.sol", "is the reference"),
        ("--out", "E-n13-k4.vrp", "is an input of this command"),
        ("--plot", "E-n13-k4.vrp", "is an input of this command"),
    ],
)
def test_an_output_never_replaces_an_input_or_a_reference(e13: Path, option, target, fragment):
    before = {p.name: p.read_bytes() for p in e13.parent.iterdir()}
    result = invoke("solve", e13, "--solver", "greedy", option, e13.parent / target)
    refused(result, fragment)
    assert {p.name: p.read_bytes() for p in e13.parent.iterdir()} == before


def test_an_output_never_replaces_a_warm_start(e13: Path, tmp_path: Path):
    start = tmp_path / "start.json"
    assert invoke("solve", e13, "--solver", "greedy", "--out", start).exit_code == 0
    result = invoke("solve", e13, "--solver", "pyvrp", "--warm-start", start, "--out", start)
    refused(result, "--out", "is an input")


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    target = tmp_path / "result.json"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as handle:
        handle.write("half of the new")
        raise KeyboardInterrupt
    assert target.read_text() == "old\n" and list(tmp_path.iterdir()) == [target]


def test_outputs_have_the_extension_of_their_format(tmp_path: Path):
    refused(invoke("generate", "--problem", "cvrp", "--out", tmp_path / "g.csv"), ".jsonl")
    refused(invoke("data", "city", "--out", tmp_path / "c.json"), ".npz")
    tiny = write_json(tmp_path / "t.json", TINY)
    refused(invoke("solve", tiny, "--solver", "greedy", "--out", tmp_path / "r.csv"), ".csv")


# -- 3. numeric overflow -------------------------------------------------------------------

TINY = {
    "format": "rota.routing/1",
    "name": "tiny",
    "distance": [[0, 5, 7, 3], [5, 0, 4, 6], [6, 4, 0, 2], [3, 6, 2, 0]],
    "demand": [0, 2, 3, 1],
    "vehicle_types": [{"capacity": 5, "count": 2}],
}


@pytest.mark.parametrize("solver", ["pyvrp", "ortools", "cpsat", "milp"])
def test_costs_past_64_bit_integers_are_refused_not_misreported(tmp_path: Path, solver: str):
    huge = dict(TINY, distance=(np.array(TINY["distance"]) * 1e19).tolist())
    result = invoke("solve", write_json(tmp_path / "huge.json", huge), "--solver", solver)
    line = refused(result)
    assert any(word in line for word in ("too large", "beyond")), line
    assert invoke("solve", tmp_path / "huge.json", "--solver", "greedy").exit_code == 0


def test_costs_that_overflow_a_sum_are_refused_when_read(tmp_path: Path):
    huge = dict(TINY, distance=(np.array(TINY["distance"]) * 1e307).tolist())
    refused(invoke("solve", write_json(tmp_path / "h.json", huge)), "overflow")


@pytest.mark.parametrize("limit", ["1e300", "1e8"])
def test_time_limits_past_what_engines_represent_are_refused(tmp_path: Path, limit: str):
    tiny = write_json(tmp_path / "t.json", TINY)
    refused(invoke("solve", tiny, "--solver", "ortools", "-t", limit), "beyond rota's longest")


# -- 5. resource blow-ups --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "NAME : x\nTYPE : CVRP\nDIMENSION : 1000000000000\nCAPACITY : 5\n"
            "EDGE_WEIGHT_TYPE : EUC_2D\nNODE_COORD_SECTION\n1 0 0\n2 1 1\n",
            "DIMENSION is 1000000000000 but 2 rows are given",
        ),
        (
            "NAME : x\nTYPE : ATSP\nDIMENSION : 1000000\nEDGE_WEIGHT_TYPE : EXPLICIT\n"
            "EDGE_WEIGHT_FORMAT : FULL_MATRIX\nEDGE_WEIGHT_SECTION\n0 1 1 0\n",
            "needs 1000000000000 numbers (got 4)",
        ),
    ],
)
def test_a_header_that_claims_a_huge_size_fails_before_allocating(tmp_path, text, fragment):
    path = tmp_path / "claim.vrp"
    path.write_text(text)
    started = time.perf_counter()
    refused(invoke("solve", path), fragment)
    assert time.perf_counter() - started < 5


def test_matrices_that_cannot_fit_in_memory_are_refused_with_their_size(tmp_path: Path):
    coords = np.random.default_rng(0).uniform(0, 100, (300_000, 2)).round(1).tolist()
    data = {"coords": coords, "vehicle_types": [{"capacity": None, "count": 1}]}
    refused(invoke("solve", write_json(tmp_path / "big.json", data)), "needs about", "TB")
    result = invoke(
        "generate", "--problem", "tsp", "--nodes", "300000", "--out", tmp_path / "g.jsonl"
    )
    refused(result, "needs about")
    assert not (tmp_path / "g.jsonl").exists()


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_special_files_are_refused_not_read_forever(tmp_path: Path, kind: str):
    if kind == "device":
        path = Path("/dev/zero")
    else:
        path = tmp_path / "pipe.vrp"
        os.mkfifo(path)
    for args in (("solve", path), ("evaluate", TEST_INSTANCES / "E-n13-k4.vrp", path)):
        refused(invoke(*args), "is not a regular file")


def test_a_bench_of_absurdly_many_runs_is_refused_before_planning(tmp_path: Path):
    tiny = write_json(tmp_path / "t.json", TINY)
    result = invoke("bench", tiny, "--solvers", "greedy", "--seeds", "1000000000",
                    "--out", tmp_path / "b")  # fmt: skip
    refused(result, "more runs than a bench takes")


# -- 6. inconsistent input -------------------------------------------------------------------


def test_a_solomon_file_cut_at_a_row_boundary_is_flagged(tmp_path: Path):
    lines = (TEST_INSTANCES / "C101.txt").read_text().splitlines()
    cut = tmp_path / "C101.txt"
    cut.write_text("\n".join(lines[: 9 + 1 + 38]) + "\n")  # header, depot, 38 customers
    result = invoke("solve", cut, "--solver", "greedy")
    assert result.exit_code == 0, result.output
    assert "38 customers, not a standard" in one_line(result, "warning:")


def test_a_solution_of_another_instance_is_flagged(tmp_path: Path):
    first = write_json(tmp_path / "a.json", dict(TINY, name="A"))
    second = write_json(tmp_path / "b.json", dict(TINY, name="B"))
    assert (
        invoke("solve", first, "--solver", "greedy", "--out", tmp_path / "a-sol.json").exit_code
        == 0
    )
    result = invoke("evaluate", second, tmp_path / "a-sol.json")
    assert result.exit_code == 0
    assert "is a solution of 'A', read for instance 'B'" in one_line(result, "warning:")


def test_a_reference_optimum_that_a_solver_beats_is_flagged(e13: Path):
    (e13.parent / "E-n13-k4.sol").unlink()
    (e13.parent / "OPTIMA.txt").write_text("E-n13-k4 260\n")  # the true optimum is 247
    result = invoke("solve", e13, "--solver", "cpsat", "-t", "10")
    assert result.exit_code == 0, result.output
    assert "better than the proven optimum 260" in one_line(result, "warning:")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("demand", [0, True, 3, 1], "demand[1] is a boolean"),
        ("distance", [[0, 5, 7, 3], [5, 0, 4, 6], [6, 4, 0, False], [3, 6, 2, 0]],
         "distance[2, 3] is a boolean"),
    ],
)  # fmt: skip
def test_booleans_are_not_numbers(tmp_path: Path, field, value, fragment):
    refused(
        invoke("solve", write_json(tmp_path / "b.json", dict(TINY, **{field: value}))), fragment
    )


# -- 7. tracebacks and unclear messages ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("huge.sol", "Route #1: 1 99999999999999999999999999999999\nCost 3\n"),
        ("huge.json", '{"routes": [[1, 99999999999999999999999999999999]]}'),
    ],
)
def test_overflowing_integers_in_solutions_are_one_line(tmp_path: Path, name: str, text: str):
    (tmp_path / name).write_text(text)
    line = refused(invoke("evaluate", write_json(tmp_path / "t.json", TINY), tmp_path / name))
    assert "out of range" in line and len(line) < 300


def test_absurd_numbers_in_options_are_shortened(tmp_path: Path):
    tiny = write_json(tmp_path / "t.json", TINY)
    line = refused(invoke("bench", tiny, "--solvers", "greedy", "--workers", "-" + "9" * 300))
    assert "(300 digits)" in line and len(line) < 200


def test_messages_name_commands_not_python_functions(tmp_path: Path):
    path = tmp_path / "set.jsonl"
    path.write_text((json.dumps(TINY) + "\n") * 2)
    line = refused(invoke("evaluate", path, tmp_path / "x.json"), "`rota solve`")
    assert "read_set" not in line


def _cli(*args: str, **kwargs):
    return subprocess.run([sys.executable, "-m", "rota.cli.main", *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO, **kwargs)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("solve",), "Missing argument 'instance'"),
        (("solve", "data/instances/X-n101-k25.vrp", "--seed", "abc"), "'--seed'"),
        (("nope",), "No such command 'nope'"),
    ],
)
def test_usage_errors_are_one_line_too(args, fragment):
    done = _cli(*args)
    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], done.stderr


# -- 4. signals ----------------------------------------------------------------------------------


def _default_signals() -> None:
    # A background job starts with SIGINT ignored, and Python then keeps ignoring it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.add(pid)
        except OSError:
            pass
    return alive


def _interrupt(args: list[str], signum: int, after: float) -> tuple[subprocess.Popen, float, set]:
    """Start ``rota ARGS``, send ``signum`` after ``after`` s; (process, seconds to exit, kids)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rota.cli.main", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=REPO, preexec_fn=_default_signals,
    )  # fmt: skip
    time.sleep(after)
    assert process.poll() is None, process.communicate()
    kids = _descendants(process.pid)
    sent = time.perf_counter()
    process.send_signal(signum)
    process.wait(timeout=60)
    return process, time.perf_counter() - sent, kids


def _hard_cvrp(path: Path) -> Path:
    rng = np.random.default_rng(3)
    coords = rng.integers(0, 1000, (61, 2))
    demand = [0, *rng.integers(1, 10, 60).tolist()]
    data = {"coords": coords.tolist(), "distance_rounding": "nearest", "demand": demand,
            "vehicle_types": [{"capacity": 40}], "name": "hard"}  # fmt: skip
    return write_json(path, data)


@pytest.mark.parametrize(
    ("solver", "signum", "extra"),
    [
        ("pyvrp", signal.SIGINT, ()),
        ("ortools", signal.SIGINT, ()),
        ("ortools", signal.SIGTERM, ()),
        ("cpsat", signal.SIGTERM, ()),
        ("milp", signal.SIGINT, ()),
        ("milp", signal.SIGTERM, ("--backend", "highs")),
    ],
)
def test_a_signal_ends_a_solve_at_once_keeping_its_best(tmp_path, solver, signum, extra):
    instance = _hard_cvrp(tmp_path / "hard.json")
    out = tmp_path / "result.json"
    args = ["solve", str(instance), "--solver", solver, *extra, "-t", "600", "--out", str(out)]
    process, seconds, kids = _interrupt(args, signum, after=4.0)
    stderr = process.stderr.read()
    assert seconds < 4, (seconds, stderr)
    assert process.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum], stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and f"interrupted by {signal.Signals(signum).name}" in lines[0]
    data = json.loads(out.read_text())
    assert data["stats"]["stopped_by"] == "interrupted"
    assert data["status"] == "feasible" and data["solution"]
    time.sleep(0.5)
    assert not _alive(kids), "solver processes outlived rota"


def test_sigterm_stops_a_bench_keeps_finished_runs_and_leaves_no_worker(tmp_path: Path):
    instance = _hard_cvrp(tmp_path / "hard.json")
    quick = write_json(tmp_path / "tiny.json", TINY)
    out = tmp_path / "bench"
    args = ["bench", str(quick), str(instance), "--solvers", "greedy,pyvrp", "--time-limit",
            "60", "--workers", "2", "--out", str(out)]  # fmt: skip
    process, seconds, kids = _interrupt(args, signal.SIGTERM, after=8.0)
    stderr = process.stderr.read()
    assert process.returncode == 143, stderr
    assert seconds < 6, (seconds, stderr)
    assert "interrupted by SIGTERM: finished runs are saved" in stderr
    time.sleep(0.5)
    assert kids and not _alive(kids), "bench workers outlived the bench"
    runs = read_runs(out / "runs.csv")
    assert runs and all(r.status != "error" for r in runs), [r.message for r in runs]
    assert (out / "summary.md").is_file()
