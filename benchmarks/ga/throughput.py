"""Throughput on a set of generated instances: ga in one batched call against PyVRP one
by one, on one core. Writes a markdown table of instances per second and the mean gap
to the best objective any run found per instance.

Usage: python benchmarks/ga/throughput.py SET.jsonl --out throughput.md
"""

from __future__ import annotations

import argparse
import time

import torch

import rota

#: (label, solver, options, stop): ga batches stop on generations, PyVRP on time.
RUNS = (
    ("ga P=8, 5 generations", "ga", {"population": 8, "offspring": 8}, "iterations=5"),
    ("ga P=8, 20 generations", "ga", {"population": 8, "offspring": 8}, "iterations=20"),
    ("pyvrp 0.1 s each", "pyvrp", {}, "time=0.1"),
    ("pyvrp 1 s each", "pyvrp", {}, "time=1"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("set")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    instances = rota.read_set(args.set)
    rows, objectives = [], {}
    for label, solver, options, stop in RUNS:
        began = time.perf_counter()
        if solver == "ga":
            results = rota.solve(instances, solver=solver, stop=stop, seed=0, **options)
        else:
            results = [rota.solve(i, solver=solver, stop=stop, seed=0) for i in instances]
        wall = time.perf_counter() - began
        solved = [r.objective if r.status.has_solution else None for r in results]
        objectives[label] = solved
        rows.append((label, wall, sum(s is not None for s in solved)))
        print(label, f"{wall:.1f} s", flush=True)
    best = [
        min(objectives[label][i] for label in objectives if objectives[label][i] is not None)
        for i in range(len(instances))
    ]
    lines = [
        f"{len(instances)} generated CVRP100 (`rota generate --problem cvrp --nodes 100 "
        f"--seed 0`), one core (taskset -c 1, torch 1 thread), {time.strftime('%Y-%m-%d')}.",
        "Gap: to the best objective any run below found for the instance.",
        "",
        "| run | wall s | instances/s | solved | mean gap % |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, wall, count in rows:
        gaps = [100 * (o - b) / b for o, b in zip(objectives[label], best, strict=True) if o]
        gap = sum(gaps) / len(gaps) if gaps else float("nan")
        lines.append(
            f"| {label} | {wall:.1f} | {len(instances) / wall:.2f} | {count}/{len(instances)} "
            f"| {gap:.2f} |"
        )
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
