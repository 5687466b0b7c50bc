"""Solve a generated road-network ACVRP set with PyVRP and OR-Tools, to show it is solvable
and not trivial.

Usage (from the repository root, after ``city_figures.py`` wrote the city)::

    python benchmarks/data/solve_acvrp.py --city out/helsinki-1000.npz

Generates ``--count`` ACVRP instances with ``--nodes`` clients (seed ``--seed``),
writes them to ``out/`` first so every solver sees the same set, then runs each
solver with its time limit and writes ``acvrp_<nodes>_<city>.md``/``.csv``
into ``--out-dir``. The greedy savings heuristic is reported as a reference.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import statistics
import sys
from pathlib import Path

import rota
from rota.data import City, generate, write_set
from rota.problems import read_set

HERE = Path(__file__).resolve().parent
SOLVERS = (("pyvrp", 10.0), ("ortools", 1.0), ("greedy", 1.0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city", type=Path, default=Path("out/helsinki-1000.npz"))
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)

    city = City.load(args.city)
    set_path = Path("out") / f"acvrp{args.nodes}-{city.name.lower()}-s{args.seed}.jsonl"
    set_path.parent.mkdir(parents=True, exist_ok=True)
    write_set(generate("acvrp", args.count, args.nodes, args.seed, city=city), set_path)
    instances = read_set(set_path)

    rows = []
    for instance in instances:
        row = {"instance": instance.name}
        for solver, limit in SOLVERS:
            result = rota.solve(instance, solver=solver, time_limit=limit, seed=1)
            report = rota.evaluate(instance, result.solution)
            if not report.feasible or report.objective != result.objective:
                raise RuntimeError(f"{solver} on {instance.name}: {report.violations}")
            row[f"{solver}_objective"] = result.objective
            row[f"{solver}_routes"] = report.num_routes
            row[f"{solver}_seconds"] = round(result.runtime, 2)
        rows.append(row)
        print(row, flush=True)

    name = f"acvrp{args.nodes}_{city.name.lower()}"
    with open(args.out_dir / f"{name}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    def gap(solver: str, row: dict) -> float:
        best = row["pyvrp_objective"]
        return 100 * (row[f"{solver}_objective"] - best) / best

    command = "python benchmarks/data/solve_acvrp.py " + " ".join(argv or sys.argv[1:])
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU"
    lines = [
        f"# ACVRP{args.nodes} on {city.name}: {args.count} generated instances",
        "",
        f"Command: `{command.strip()}`  ",
        f"Date: {datetime.date.today().isoformat()}  ",
        f"Machine: {machine} (shared and noisy)  ",
        f"City: {city.metadata['source']} (sha256 {str(city.metadata['sha256'])[:12]}...), "
        f"{city.points} points, seed {city.metadata['seed']}  ",
        f"Set: `rota generate --problem acvrp --city {args.city} --nodes {args.nodes} "
        f"--count {args.count} --seed {args.seed}` (uniform, demands 1..9, capacity "
        f"{instances[0].vehicle_types[0].capacity:g}, distances in metres)",
        "",
        "| solver | time limit (s) | mean objective (m) | mean routes "
        "| mean gap to PyVRP (%) | worst gap (%) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for solver, limit in SOLVERS:
        objectives = [r[f"{solver}_objective"] for r in rows]
        gaps = [gap(solver, r) for r in rows]
        lines.append(
            f"| {solver} | {limit:g} | {statistics.mean(objectives):.1f} "
            f"| {statistics.mean(r[f'{solver}_routes'] for r in rows):.2f} "
            f"| {statistics.mean(gaps):.2f} | {max(gaps):.2f} |"
        )
    better = sum(r["ortools_objective"] < r["pyvrp_objective"] for r in rows)
    lines += [
        "",
        f"OR-Tools beat PyVRP on {better} of {len(rows)} instances. Per-instance "
        f"objectives: `{name}.csv`.",
        "",
    ]
    (args.out_dir / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
