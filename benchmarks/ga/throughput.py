"""Throughput on a set of generated instances: ga in one batched call against PyVRP one
instance at a time in parallel processes, on the same cores. Writes a markdown table of
instances per second and the mean gap to the best objective any run found per instance,
and PyVRP's throughput interpolated at each ga run's gap.

Usage: python benchmarks/ga/throughput.py SET.jsonl --out throughput.md [--workers 2]
       [--device auto]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import time

import torch

import rota

#: ga's population in the throughput runs.
POPULATION = 8
#: PyVRP's budgets per instance, seconds.
PYVRP_BUDGETS = (0.1, 0.3, 1.0)


def _pyvrp_share(args: tuple[str, int, int, float]) -> list[tuple[int, float | None]]:
    path, worker, workers, budget = args
    torch.set_num_threads(1)
    instances = rota.read_set(path)
    out = []
    for i in range(worker, len(instances), workers):
        result = rota.solve(instances[i], solver="pyvrp", time_limit=budget, seed=0)
        out.append((i, result.objective if result.status.has_solution else None))
    return out


def _pyvrp(path: str, count: int, workers: int, budget: float) -> list[float | None]:
    # fork: the workers inherit rota already imported, and each reads the set itself
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        shares = pool.map(_pyvrp_share, [(path, w, workers, budget) for w in range(workers)])
    objectives: list[float | None] = [None] * count
    for share in shares:
        for i, objective in share:
            objectives[i] = objective
    return objectives


def _interpolated_rate(points: list[tuple[float, float]], gap: float) -> float | None:
    """Instances/s at ``gap`` on the (gap, rate) points, linear in log rate; None outside."""
    points = sorted(points)
    for (g0, r0), (g1, r1) in zip(points, points[1:], strict=False):
        if g0 <= gap <= g1:
            share = 0.0 if g1 == g0 else (gap - g0) / (g1 - g0)
            return math.exp(math.log(r0) + share * (math.log(r1) - math.log(r0)))
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("set")
    parser.add_argument("--out", required=True)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="auto", help="ga's device: auto, cpu or cuda")
    parser.add_argument("--generations", default="5,10", help="ga runs: generations of each")
    parser.add_argument(
        "--offspring",
        default="8",
        help="ga runs: children a generation (each with each --generations)",
    )
    args = parser.parse_args()
    instances = rota.read_set(args.set)
    count = len(instances)
    device = "cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu"
    if device == "cuda":
        device = f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    ga_runs = [
        (
            f"ga P={POPULATION}" + (f", {c} children" if c != POPULATION else "")
            + f", {g} generations",
            {"stop": f"iterations={g}", "population": POPULATION, "offspring": c},
        )
        for c in (int(x) for x in args.offspring.split(","))
        for g in (int(x) for x in args.generations.split(","))
    ]  # fmt: skip
    rows, objectives = [], {}
    torch.set_num_threads(args.workers)
    # starting CUDA (or torch's CPU kernels) is paid here, not by the first timed run
    rota.solve(instances[:2], solver="ga", stop="iterations=1", seed=0, device=args.device)
    for label, options in ga_runs:
        began = time.perf_counter()
        results = rota.solve(instances, solver="ga", seed=0, device=args.device, **options)
        wall = time.perf_counter() - began
        objectives[label] = [r.objective if r.status.has_solution else None for r in results]
        rows.append((label, wall))
        print(label, f"{wall:.1f} s", flush=True)
    for budget in PYVRP_BUDGETS:
        label = f"pyvrp {budget:g} s each, {args.workers} processes"
        began = time.perf_counter()
        objectives[label] = _pyvrp(args.set, count, args.workers, budget)
        wall = time.perf_counter() - began
        rows.append((label, wall))
        print(label, f"{wall:.1f} s", flush=True)
    best = [min(o[i] for o in objectives.values() if o[i] is not None) for i in range(count)]
    lines = [
        f"{count} generated CVRP100 (`rota generate --problem cvrp --nodes 100 --seed 0 "
        f"--count {count}`), {time.strftime('%Y-%m-%d')}, {platform.machine()} CPU, "
        f"{os.cpu_count()} cores, ga on {device}: {args.workers} torch threads, one call "
        "after a warm-up call; "
        f"PyVRP in {args.workers} processes.",
        "Gap: to the best objective any run below found for the instance.",
        "",
        "| run | wall s | instances/s | solved | mean gap % |",
        "|---|---:|---:|---:|---:|",
    ]
    summary = {}
    for label, wall in rows:
        found = objectives[label]
        gaps = [100 * (o - b) / b for o, b in zip(found, best, strict=True) if o is not None]
        gap = sum(gaps) / len(gaps) if gaps else float("nan")
        summary[label] = (gap, count / wall)
        solved = sum(o is not None for o in found)
        rate = count / wall
        lines.append(f"| {label} | {wall:.1f} | {rate:.2f} | {solved}/{count} | {gap:.2f} |")
    pyvrp_points = [v for k, v in summary.items() if k.startswith("pyvrp")]
    lines.append("")
    for label, _ in ga_runs:
        gap, rate = summary[label]
        at_gap = _interpolated_rate(pyvrp_points, gap)
        said = (
            f"PyVRP reaches that gap at about {at_gap:.2f} instances/s "
            f"(ga/PyVRP = {rate / at_gap:.2f})"
            if at_gap
            else "outside the range of PyVRP's budgets here"
        )
        lines.append(f"- {label}: {gap:.2f} % at {rate:.2f} instances/s; {said}.")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
