"""``rota bench`` and ``rota.solve_many`` on a Dask cluster: a real scheduler and two workers.

The module starts ``dask scheduler`` and two ``dask worker`` processes on the
loopback address (each in a process group of its own, killed at the end; a
test that kills workers starts a cluster of its own) with
``allowed-failures`` at 1 and ``worker-saturation`` at 1.0, as ``docs/scaling-out.md``
advises. The workers
import this worktree's rota and tests (``PYTHONPATH``), so the test-only
solvers of ``test_bench`` run there too.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from distributed import Client
from typer.testing import CliRunner

import rota
from rota import cluster as rota_cluster
from rota.bench import read_runs, run_bench
from rota.cli.main import app
from rota.problems import dumps_instance
from rota.solvers import registry
from rota.solvers.base import Status

from ..conftest import instance_file
from .test_bench import ATSP, CVRP, TEST_SOLVERS, _TestSolver

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


class KillHostSolver(_TestSolver):
    """Kills the process that started its run process: on a cluster, its Dask worker."""

    name = "bench-kill-host"

    def solve(self, instance, stop, seed, warm_start=()):
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(60)  # ended sooner: a run process dies with its parent


SOLVERS = {**TEST_SOLVERS, KillHostSolver.name: f"{__name__}:KillHostSolver"}


@pytest.fixture(autouse=True)
def test_solvers(monkeypatch):
    for name, target in SOLVERS.items():
        monkeypatch.setitem(registry._EXTRA, ("routing", name), target)


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return dict(
        os.environ,
        PYTHONPATH=path,
        OMP_NUM_THREADS="1",
        DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1",
        DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION="1.0",
    )


@contextlib.contextmanager
def _cluster(folder: Path) -> Iterator[str]:
    """A scheduler with two workers, one process and one thread each; its address."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> None:
        log = (folder / f"{args[0]}-{len(started)}.log").open("w")
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "dask", *args],
                cwd=folder,
                env=_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group of its own, killed whole at the end
            )
        )

    scheduler_file = folder / "scheduler.json"
    try:
        start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(scheduler_file))  # fmt: skip
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        where = json.loads(scheduler_file.read_text())["address"]
        for _ in range(2):
            start("worker", where, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                  "--local-directory", str(folder))  # fmt: skip
        with Client(where, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield where
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def address(tmp_path_factory) -> Iterator[str]:
    """The cluster the tests share; tests that kill workers start their own."""
    with _cluster(tmp_path_factory.mktemp("dask")) as where:
        yield where


@pytest.fixture
def own_cluster(tmp_path) -> Iterator[Client]:
    """A client of a cluster of this test's own: the test kills its workers."""
    folder = tmp_path / "dask"
    folder.mkdir()
    with _cluster(folder) as where, Client(where, timeout=30) as connected:
        yield connected


@pytest.fixture(scope="module")
def client(address) -> Iterator[Client]:
    with Client(address, timeout=30) as connected:
        yield connected


@pytest.fixture
def two_workers(client) -> Client:
    """The client, once both workers are up (a test before may have killed one)."""
    client.wait_for_workers(2, timeout=60)
    return client


@pytest.fixture
def instances(tmp_path) -> list[str]:
    folder = tmp_path / "instances"
    folder.mkdir()
    (folder / "tiny-cvrp.json").write_text(json.dumps(CVRP))
    (folder / "tiny-atsp.json").write_text(json.dumps(ATSP))
    return [str(folder / "tiny-cvrp.json"), str(folder / "tiny-atsp.json"),
            str(instance_file("E-n13-k4.vrp"))]  # fmt: skip


_TIMING = ("runtime", "wall_time", "cpu_time", "finished_at")


def _runs(out: Path) -> dict[tuple, dict]:
    """Each run's row without its timings, by key; one row per key."""
    rows = read_runs(out / "runs.csv")
    assert len({r.key for r in rows}) == len(rows)
    return {r.key: {k: v for k, v in vars(r).items() if k not in _TIMING} for r in rows}


def test_a_bench_on_the_cluster_writes_the_runs_of_a_local_bench(two_workers, instances, tmp_path):
    solvers = ["greedy", "pyvrp", "bench-order", "bench-crash"]
    options = {"pyvrp": {"stop": "iterations=100"}}  # deterministic: stops before the time
    args = (instances, solvers, [0.5], 2)
    local = run_bench(*args, tmp_path / "local", workers=2, progress=False,
                      solver_options=options)  # fmt: skip
    remote = run_bench(*args, tmp_path / "cluster", progress=False, solver_options=options,
                       client=two_workers)  # fmt: skip
    assert (remote.total, remote.executed, remote.statuses) == (24, 24, local.statuses)
    assert local.statuses == {"feasible": 18, "error": 6}
    assert _runs(tmp_path / "cluster") == _runs(tmp_path / "local")
    for folder in ("local", "cluster"):
        errors = (tmp_path / folder / "errors.log").read_text()
        assert errors.count("RuntimeError: solver blew up") == 6
    text = remote.summary_md.read_text()
    assert "ran on 2 Dask worker processes (2 threads) on 1 host, scheduler tcp://127" in text
    assert "runs in parallel worker processes" not in text

    # resumable as a local bench is: nothing left to run
    again = run_bench(*args, tmp_path / "cluster", progress=False, solver_options=options,
                      client=two_workers)  # fmt: skip
    assert (again.skipped, again.executed) == (24, 0)


def test_dead_and_hanging_runs_are_error_rows_as_in_a_local_bench(two_workers, tmp_path):
    atsp = tmp_path / "tiny-atsp.json"
    atsp.write_text(json.dumps(ATSP))
    args = ([str(atsp)], ["bench-die", "bench-hang", "bench-order"], [0.1], 1)
    run_bench(*args, tmp_path / "local", workers=2, progress=False, grace=0.5)
    run_bench(*args, tmp_path / "cluster", progress=False, grace=0.5, client=two_workers)
    rows = _runs(tmp_path / "cluster")
    assert rows == _runs(tmp_path / "local")
    messages = {row["solver"]: (row["status"], row["message"]) for row in rows.values()}
    assert messages == {
        "bench-die": ("error", "worker process died (exit code 3)"),
        "bench-hang": (
            "error", "killed: still running 0.7 s after it started (twice the budget plus 0.5 s "
            "grace)",
        ),
        "bench-order": ("feasible", ""),
    }  # fmt: skip


def test_a_killed_worker_loses_no_finished_run_and_its_run_is_rerun(
    own_cluster, instances, tmp_path
):
    calls = tmp_path / "calls.log"
    out = tmp_path / "out"
    options = {"bench-order": {"log": str(calls), "sleep": 4.0}}
    seen: dict[str, object] = {}

    def kill_a_worker_mid_run() -> None:
        # Dask picks the order of runs, so wait for a finished row and a sleeping
        # run without one, and kill the worker of the run that started last.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            written = (out / "runs.csv").read_text() if (out / "runs.csv").exists() else ""
            done = {(r["solver"], r["seed"]) for r in csv.DictReader(io.StringIO(written))}
            started = calls.read_text().splitlines() if calls.exists() else []
            running = [ln.split() for ln in started if ("bench-order", ln.split()[2]) not in done]
            if done and running:
                break
            time.sleep(0.02)
        *_, seed, _, pid = running[-1]
        run_process = psutil.Process(int(pid))
        seen.update(csv=written, seed=seed, run_process=run_process)
        os.kill(run_process.ppid(), signal.SIGKILL)  # the Dask worker running it

    killer = threading.Thread(target=kill_a_worker_mid_run)
    killer.start()
    summary = run_bench([instances[0]], ["greedy", "bench-order"], [5.0], 2, out,
                        progress=False, solver_options=options, client=own_cluster)  # fmt: skip
    killer.join()

    assert len(seen["csv"].splitlines()) >= 2  # the header and a finished row, kept as written
    assert (out / "runs.csv").read_text().startswith(seen["csv"])
    rows = read_runs(out / "runs.csv")
    assert sorted((r.solver, r.seed, r.status) for r in rows) == [
        ("bench-order", 0, "feasible"), ("bench-order", 1, "feasible"),
        ("greedy", 0, "feasible"), ("greedy", 1, "feasible"),
    ]  # fmt: skip
    assert (summary.executed, summary.statuses) == (4, {"feasible": 4})
    logged = [line.split()[2] for line in calls.read_text().splitlines()]
    assert sorted(logged) == sorted(["0", "1", seen["seed"]])  # the lost run ran again
    # the orphaned run process ended with its worker instead of running on
    assert not seen["run_process"].is_running()


def test_a_run_that_keeps_killing_its_worker_ends_as_an_error_row(own_cluster, tmp_path):
    atsp = tmp_path / "tiny-atsp.json"
    atsp.write_text(json.dumps(ATSP))
    summary = run_bench([str(atsp)], ["bench-kill-host", "bench-order"], [0.1], 1,
                        tmp_path / "out", progress=False, client=own_cluster)  # fmt: skip
    rows = {r.solver: r for r in read_runs(tmp_path / "out" / "runs.csv")}
    assert rows["bench-kill-host"].status == "error"
    assert rows["bench-kill-host"].message == (
        "the Dask workers running it died 2 times (the scheduler's allowed-failures is 1)"
    )
    assert rows["bench-order"].status == "feasible"
    assert summary.executed == 2


def test_ctrl_c_cancels_the_runs_out_keeps_the_rows_and_a_rerun_finishes(
    two_workers, address, tmp_path
):
    out, calls = tmp_path / "out", tmp_path / "calls.log"
    atsp = tmp_path / "tiny-atsp.json"
    atsp.write_text(json.dumps(ATSP))
    hold = tmp_path / "hold"
    hold.touch()  # the third and fourth runs go on until they are killed
    options = {"bench-order": {"log": str(calls), "sleep": 1.5, "hold": str(hold),
                               "hold_after": 2}}  # fmt: skip
    spec = ([str(atsp)], ["bench-order"], [5.0], 4, str(out))
    script = (
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from tests.bench.test_bench import register_test_solvers as r; r()\n"
        "from distributed import Client\n"
        "from rota.bench import run_bench\n"
        f"with Client({address!r}) as c:\n"
        f"    s = run_bench(*{spec!r}, progress=False, solver_options={options!r}, client=c)\n"
        "print('interrupted', s.interrupted, s.executed)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, env=_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the first two runs written, the next two under way
        rows = (out / "runs.csv").read_text().splitlines() if (out / "runs.csv").exists() else []
        if len(rows) == 3 and len(calls.read_text().splitlines()) == 4:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    _, signum, executed = stdout.split()
    written = read_runs(out / "runs.csv")
    assert signum == str(int(signal.SIGINT)) and int(executed) == len(written) == 2, (
        (out / "runs.csv").read_text(),
        calls.read_text(),
        stderr[-2000:],
    )
    # the cancelled runs' run processes are killed, not left to sleep on
    done = {str(r.seed) for r in written}
    cancelled = [ln.split() for ln in calls.read_text().splitlines() if ln.split()[2] not in done]
    assert len(cancelled) == 2
    running = []
    for *_, pid in cancelled:
        with contextlib.suppress(psutil.NoSuchProcess):
            running.append(psutil.Process(int(pid)))
    _, alive = psutil.wait_procs(running, timeout=5)
    assert not alive

    hold.unlink()
    again = run_bench(*spec, progress=False, solver_options=options, client=two_workers)
    assert (again.skipped, again.executed) == (2, 2)
    assert sorted(r.seed for r in read_runs(out / "runs.csv")) == list(range(4))


def test_solve_many_on_the_cluster_returns_what_a_local_solve_many_does(two_workers):
    instances = [
        rota.read(instance_file("E-n13-k4.vrp")),
        rota.read(instance_file("br17.atsp")),
        rota.read(instance_file("E-n13-k4.vrp")),
    ]
    for solver, stop in [("greedy", None), ("pyvrp", "iterations=100")]:
        local = rota.solve_many(instances, solver=solver, time_limit=5, seed=3, stop=stop)
        remote = rota.solve_many(instances, solver=solver, time_limit=5, seed=3, stop=stop,
                                 client=two_workers)  # fmt: skip
        assert [r.objective for r in remote] == [r.objective for r in local]
        assert [r.solution for r in remote] == [r.solution for r in local]
        assert {(r.status, r.solver, r.seed) for r in remote} == {(Status.FEASIBLE, solver, 3)}
        assert all(r.evaluation.objective == r.objective for r in remote)

    # a solver's exception is raised here; a run process that dies is that run's error
    with pytest.raises(RuntimeError, match="solver blew up"):
        rota.solve_many(instances, solver="bench-crash", time_limit=1, client=two_workers)
    (died,) = rota.solve_many(instances[:1], solver="bench-die", time_limit=1, client=two_workers)
    assert (died.status, died.stats["error"]) == (Status.ERROR, "worker process died (exit code 3)")
    # bad arguments fail here, before any task is sent
    with pytest.raises(ValueError, match="time_limit must be a positive"):
        rota.solve_many(instances, solver="greedy", time_limit=-1, client=two_workers)


def test_cli_solve_and_bench_take_a_cluster_address(two_workers, address, tmp_path):
    many = tmp_path / "many.jsonl"
    lines = [json.dumps(CVRP), json.dumps(ATSP), dumps_instance(rota.read(instance_file(
        "E-n13-k4.vrp")))]  # fmt: skip
    many.write_text("\n".join(lines) + "\n")
    for name, extra in [("local.jsonl", []), ("cluster.jsonl", ["--cluster", address])]:
        result = runner.invoke(app, ["solve", str(many), "--solver", "greedy", "--out",
                                     str(tmp_path / name), *extra])  # fmt: skip
        assert result.exit_code == 0, result.output
    results = {
        name: [{k: v for k, v in json.loads(line).items() if k != "runtime"}
               for line in (tmp_path / name).read_text().splitlines()]
        for name in ("local.jsonl", "cluster.jsonl")
    }  # fmt: skip
    assert results["cluster.jsonl"] == results["local.jsonl"]
    assert [r["objective"] for r in results["cluster.jsonl"]] == [24.0, 5.0, 275.0]

    bench = ["bench", str(many), "--solvers", "greedy", "-t", "1", "--out", str(tmp_path / "b")]
    result = runner.invoke(app, [*bench, "--cluster", address])
    assert result.exit_code == 0, result.output
    assert "3 runs executed" in result.output
    assert {r.status for r in read_runs(tmp_path / "b" / "runs.csv")} == {"feasible"}


def test_cli_bench_on_a_local_cluster(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, [
        "bench", str(instance_file("E-n13-k4.vrp")), str(instance_file("br17.atsp")),
        "--solvers", "greedy", "-t", "1", "--seeds", "2", "--out", str(out),
        "--cluster", "local", "--workers", "2",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = read_runs(out / "runs.csv")
    assert sorted((Path(r.instance).stem, r.seed, r.objective) for r in rows) == [
        ("E-n13-k4", 0, 275.0), ("E-n13-k4", 1, 275.0), ("br17", 0, 41.0), ("br17", 1, 41.0),
    ]  # fmt: skip
    summary = (out / "summary.md").read_text()
    assert "ran on 2 Dask worker processes (2 threads) on 1 host" in summary


def test_a_local_clusters_runs_get_one_openmp_thread_each(monkeypatch):
    # one run per worker thread and one thread per worker process: Dask's nannies start
    # their workers with OMP_NUM_THREADS=1, and a run process inherits its worker's
    # environment, where torch reads it; a change of that default would show here
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with rota_cluster.connect("local", workers=2) as client:
        seen = client.run(os.environ.get, "OMP_NUM_THREADS")
    assert list(seen.values()) == ["1", "1"]


@contextlib.contextmanager
def _closed_port() -> Iterator[int]:
    """A port nothing listens on, held bound meanwhile: a port only probed and released
    could be taken by one of the dask processes alive around it, and a client that
    reaches a dask server other than a scheduler may wait for it far past its timeout."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        yield holder.getsockname()[1]


@pytest.mark.parametrize("address", ["nonsense", "tcp://127.0.0.1:{port}"])
def test_a_failed_connection_leaves_no_client_for_the_collector(monkeypatch, address):
    # a half-made Client collected later, while another Client starts, deadlocks it
    monkeypatch.setattr(rota_cluster, "CONNECT_TIMEOUT", 1.0)

    def clients() -> int:
        return sum(type(o) is Client for o in gc.get_objects())

    gc.collect()
    before = clients()
    with (
        _closed_port() as port,
        pytest.raises(ValueError, match="cannot connect"),
        rota_cluster.connect(address.format(port=port)),
    ):
        pass
    assert clients() == before


@pytest.mark.parametrize(
    ("cluster", "extra", "message"),
    [
        ("nonsense", [], "cannot connect to a Dask scheduler at nonsense: missing port number"),
        ("tcp://127.0.0.1:{port}", [], "cannot connect to a Dask scheduler at "
         "tcp://127.0.0.1:{port}: Timed out trying to connect to tcp://127.0.0.1:{port} after 1 s"),
        ("tcp://127.0.0.1:{port}", ["--workers", "2"], "--workers sets the processes of a local "
         "bench or of --cluster local"),
    ],
)  # fmt: skip
def test_a_bad_cluster_is_one_line_and_exit_2(tmp_path, monkeypatch, cluster, extra, message):
    monkeypatch.setattr(rota_cluster, "CONNECT_TIMEOUT", 1.0)
    bench = ["bench", str(instance_file("br17.atsp")), "--solvers", "greedy"]
    with _closed_port() as port:
        cluster, message = cluster.format(port=port), message.format(port=port)
        result = runner.invoke(
            app, [*bench, "--out", str(tmp_path / "out"), "--cluster", cluster, *extra]
        )
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), result.stderr
    assert not (tmp_path / "out").exists()
