"""Exact solvers (milp with CBC and HiGHS, cpsat) on ATSP and CVRP instances.

Every solve runs in a fresh interpreter (``spawn``), one at a time: the runs
do not share caches, a crash or a runaway backend cannot spoil the next one,
and highspy and OR-Tools (which ship different ``libhighs.so.1``) never meet
in one process. Results are appended to ``runs.csv`` (resumable: a run that is
already there is skipped) and summarised in ``summary.md``.

Usage::

    python benchmarks/exact/bench_exact.py atsp [--time-limit 60]
    python benchmarks/exact/bench_exact.py formulations [--time-limit 30]
    python benchmarks/exact/bench_exact.py cvrp [--time-limit 60]
    python benchmarks/exact/bench_exact.py random [--time-limit 60]
    python benchmarks/exact/bench_exact.py report
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import datetime
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = REPO / ".." / "shared" / "instances"
RUNS = HERE / "runs.csv"
SUMMARY = HERE / "summary.md"
GENERATED = HERE / "instances"

#: solver label -> (registered name, options)
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "milp-cbc": ("milp", {"backend": "cbc"}),
    "milp-highs": ("milp", {"backend": "highs"}),
    "cpsat": ("cpsat", {}),
    "milp-cbc-flow": ("milp", {"backend": "cbc", "formulation": "flow"}),
    "milp-highs-flow": ("milp", {"backend": "highs", "formulation": "flow"}),
}
MAIN = ("milp-cbc", "milp-highs", "cpsat")
ATSP = ("br17", "ftv33", "ftv47", "ry48p", "ft70", "kro124p", "rbg323")
SMALL_ATSP = ("br17", "ftv33", "ftv47", "ry48p")
SHARED_CVRP = {"E-n13-k4": 247, "P-n16-k8": 450}
RANDOM_SIZES = (10, 15, 20, 25, 30, 40, 50, 60, 80)
RANDOM_SEED = 1
FIELDS = [
    "part", "instance", "clients", "solver", "time_limit", "seed", "status", "objective",
    "bound", "gap", "optimum", "runtime", "wall", "iterations", "lp_rounds", "cuts", "note",
]  # fmt: skip


def literature_capacity(num_clients: int) -> int:
    """Vehicle capacity of the random CVRP sets of Nazari et al. (2018) and Kool et al.
    (2019): 20, 30, 40, 50 for 10, 20, 50, 100 clients; sizes in between take the
    capacity of the next listed size up."""
    for size, capacity in ((10, 20), (20, 30), (50, 40), (100, 50)):
        if num_clients <= size:
            return capacity
    return 50


def random_cvrp_path(num_clients: int, seed: int = RANDOM_SEED) -> Path:
    """Write (once) and return a uniform random CVRP in rota's JSON format.

    Integer coordinates on a 1000 x 1000 grid and Euclidean distances rounded to
    the nearest integer (the CVRPLIB X convention), demands uniform in 1..9,
    capacity as in :func:`literature_capacity`, unlimited vehicles.
    """
    from rota.problems import write_instance
    from rota.problems.routing import RoutingInstance, VehicleType
    from rota.problems.routing.io.json import euclidean

    path = GENERATED / f"random-cvrp-n{num_clients}-s{seed}.json"
    if path.is_file():
        return path
    rng = np.random.default_rng(seed * 1000 + num_clients)
    coords = rng.integers(0, 1001, (num_clients + 1, 2)).astype(float)
    demand = rng.integers(1, 10, num_clients + 1)
    demand[0] = 0
    instance = RoutingInstance(
        euclidean(coords, "nearest"),
        (VehicleType(capacity=literature_capacity(num_clients)),),
        demand=demand,
        coords=coords,
        name=path.stem,
        metadata={"generator": "benchmarks/exact/bench_exact.py", "rounding": "nearest"},
    )
    GENERATED.mkdir(parents=True, exist_ok=True)
    write_instance(instance, path)
    return path


def solve_one(path: str, label: str, time_limit: float, seed: int) -> dict[str, Any]:
    """Run in a fresh process: read, solve, and report one run."""
    import rota

    solver, options = CONFIGS[label]
    instance = rota.read(path)
    began = time.perf_counter()
    try:
        result = rota.solve(instance, solver=solver, time_limit=time_limit, seed=seed, **options)
    except Exception as exc:  # a refusal or a crash is a result of the benchmark too
        return {"status": "refused" if "Unsupported" in type(exc).__name__ else "crash",
                "note": f"{type(exc).__name__}: {exc}"[:200], "clients": instance.num_clients,
                "wall": time.perf_counter() - began}  # fmt: skip
    wall = time.perf_counter() - began
    stats = result.stats
    if result.solution is not None:
        assert rota.evaluate(instance, result.solution).feasible, "infeasible solution reported"
    return {
        "clients": instance.num_clients,
        "status": str(result.status),
        "objective": result.objective,
        "bound": result.bound,
        "gap": result.gap_to_bound,
        "runtime": round(result.runtime, 2),
        "wall": round(wall, 2),
        "iterations": stats.get("iterations"),
        "lp_rounds": stats.get("lp_rounds"),
        "cuts": stats.get("cuts"),
        "note": stats.get("error", ""),
    }


def load_runs() -> list[dict[str, str]]:
    if not RUNS.is_file():
        return []
    with RUNS.open(newline="") as fh:
        return list(csv.DictReader(fh))


def run(part: str, jobs: list[tuple[str, str, str, int | None]], time_limit: float) -> list[dict]:
    """Solve ``(instance name, path, solver label, known optimum)`` jobs one at a time."""
    done = {(r["part"], r["instance"], r["solver"], r["time_limit"]) for r in load_runs()}
    rows = []
    ctx = multiprocessing.get_context("spawn")
    for name, path, label, optimum in jobs:
        key = (part, name, label, str(time_limit))
        if key in done:
            continue
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
            try:
                row = pool.submit(solve_one, path, label, time_limit, 0).result()
            except Exception as exc:
                row = {"status": "crash", "note": f"{type(exc).__name__}: {exc}"[:200]}
        row.update(part=part, instance=name, solver=label, time_limit=time_limit, seed=0,
                   optimum=optimum)  # fmt: skip
        append(row)
        rows.append(row)
        print(
            f"{part:12s} {name:24s} {label:16s} {row['status']:12s} "
            f"obj={row.get('objective')} bound={row.get('bound')} t={row.get('runtime')}",
            flush=True,
        )
    return rows


def append(row: dict[str, Any]) -> None:
    new = not RUNS.is_file()
    with RUNS.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in FIELDS})


def atsp_optima() -> dict[str, int]:
    optima = {}
    for line in (SHARED / "atsp" / "OPTIMA.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, value = line.split()
            optima[name] = int(value)
    return optima


def part_atsp(time_limit: float) -> None:
    optima = atsp_optima()
    jobs = [
        (name, str(SHARED / "atsp" / f"{name}.atsp"), label, optima[name])
        for name in ATSP
        for label in MAIN
    ]
    run("atsp", jobs, time_limit)


def part_formulations(time_limit: float) -> None:
    optima = atsp_optima()
    jobs = [
        (name, str(SHARED / "atsp" / f"{name}.atsp"), label, optima[name])
        for name in SMALL_ATSP
        for label in ("milp-cbc-flow", "milp-highs-flow")
    ]
    run("formulation", jobs, time_limit)


def part_cvrp(time_limit: float) -> None:
    jobs = [
        (name, str(SHARED / "cvrp" / f"{name}.vrp"), label, optimum)
        for name, optimum in SHARED_CVRP.items()
        for label in MAIN
    ]
    run("cvrp", jobs, time_limit)


def part_random(time_limit: float) -> None:
    """Growing random CVRPs per solver until one is not proven within the limit."""
    for label in MAIN:
        for size in RANDOM_SIZES:
            path = random_cvrp_path(size)
            previous = [
                r for r in load_runs()
                if r["part"] == "random" and r["instance"] == path.stem and r["solver"] == label
            ]  # fmt: skip
            rows = previous or run("random", [(path.stem, str(path), label, None)], time_limit)
            if rows[0]["status"] != "optimal":
                break


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores ({cpu}), no GPU, {platform.system()} {platform.release()}, shared"


def versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{p} {version(p)}" for p in ("pulp", "highspy", "ortools"))


def fmt(value: str, digits: int = 0) -> str:
    if value in ("", "None", None):
        return "-"
    number = float(value)
    return f"{number:.{digits}f}" if digits else f"{number:g}"


#: Observations about the recorded runs that the tables alone do not show.
NOTES = [
    "Timings on this shared two-core machine drift between identical runs, CP-SAT's most",
    "(two search workers): in an earlier full run CP-SAT proved kro124p in 56 s and ry48p",
    "in 4.9 s; the MILP times moved by up to 45%. The CBC and HiGHS statuses and",
    "objectives were the same in both runs.",
    "All seven ATSP instances are proven by the lazy MILP loop with both backends well",
    "within 60 s (rbg323's assignment bound is tight, so its subtour cuts close it fast).",
]


def report() -> None:
    runs = load_runs()
    lines = [
        "# Exact solvers: milp (PuLP: CBC, HiGHS) and cpsat (OR-Tools CP-SAT)",
        "",
        f"Generated {datetime.date.today().isoformat()} by "
        "`python benchmarks/exact/bench_exact.py report` from `runs.csv`.",
        f"Machine: {machine()}. Packages: {versions()}.",
        "Each run is one solve in a fresh process, one at a time, seed 0; `runtime` is the",
        "solver's own wall clock (`Result.runtime`). Status `optimal` means proven; `feasible`",
        "comes with the best proven lower bound and gap `(objective - bound) / objective`.",
        "",
    ]
    sections = [
        ("atsp", "ATSP (TSPLIB), 60 s", "python benchmarks/exact/bench_exact.py atsp"),
        (
            "formulation",
            "ATSP, compact single-commodity flow instead of the lazy subtour loop",
            "python benchmarks/exact/bench_exact.py formulations --time-limit 30",
        ),
        ("cvrp", "CVRP (CVRPLIB E, P), 60 s", "python benchmarks/exact/bench_exact.py cvrp"),
        (
            "random",
            "Random CVRP (uniform 1000 x 1000 grid, rounded distances, demands 1..9, "
            "capacity 20/30/40/50 for <= 10/20/50/100 clients), growing until not proven, 60 s",
            "python benchmarks/exact/bench_exact.py random",
        ),
    ]
    lines += ["## Notes", "", *NOTES, ""]
    for part, title, command in sections:
        rows = [r for r in runs if r["part"] == part]
        if not rows:
            continue
        lines += [f"## {title}", "", f"Command: `{command}`", ""]
        lines += [
            "| instance | clients | solver | limit s | status | objective | bound | gap % "
            "| known optimum | runtime s |",
            "|---|---:|---|---:|---|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            gap = "-" if r["gap"] in ("", "None") else f"{100 * float(r['gap']):.2f}"
            lines.append(
                f"| {r['instance']} | {r['clients']} | {r['solver']} | {fmt(r['time_limit'])} "
                f"| {r['status']} | {fmt(r['objective'])} | {fmt(r['bound'])} | {gap} "
                f"| {fmt(r['optimum'])} | {fmt(r['runtime'], 1)} |"
            )
        if part == "formulation":
            lines += [
                "",
                "Lazy loop (the default, from the ATSP table) against flow, runtime in s:",
                "",
            ]
            lines += ["| instance | lazy cbc | flow cbc | lazy highs | flow highs |"]
            lines += ["|---|---:|---:|---:|---:|"]
            by_key = {(r["part"], r["instance"], r["solver"]): r for r in runs}
            for name in SMALL_ATSP:
                cells = []
                for backend in ("cbc", "highs"):
                    for part_name, label in (
                        ("atsp", f"milp-{backend}"),
                        (part, f"milp-{backend}-flow"),
                    ):
                        r = by_key.get((part_name, name, label))
                        if r is None:
                            cells.append("-")
                        elif r["status"] == "optimal":
                            cells.append(fmt(r["runtime"], 1))
                        else:
                            cells.append(f"not proven in {fmt(r['time_limit'])}")
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        if part == "random":
            lines += [
                "",
                "Largest random CVRP proven optimal within the limit (sizes are tried in",
                "increasing order and each solver stops at its first size not proven):",
                "",
            ]
            for label in MAIN:
                proven = [
                    int(r["clients"]) for r in rows
                    if r["solver"] == label and r["status"] == "optimal"
                ]  # fmt: skip
                lines.append(f"- {label}: {max(proven) if proven else 'none'} clients")
        lines.append("")
    SUMMARY.write_text("\n".join(lines))
    print(SUMMARY.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["atsp", "formulations", "cvrp", "random", "report"])
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--out", type=Path, default=HERE, help="folder of runs.csv, summary.md")
    args = parser.parse_args(argv)
    global RUNS, SUMMARY
    args.out.mkdir(parents=True, exist_ok=True)
    RUNS, SUMMARY = args.out / "runs.csv", args.out / "summary.md"
    sys.path.insert(0, str(REPO))
    if args.part == "report":
        report()
        return
    limit = args.time_limit or (30.0 if args.part == "formulations" else 60.0)
    {
        "atsp": part_atsp,
        "formulations": part_formulations,
        "cvrp": part_cvrp,
        "random": part_random,
    }[args.part](limit)
    report()


if __name__ == "__main__":
    main()
