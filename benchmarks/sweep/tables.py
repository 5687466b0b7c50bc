"""The README's tables: mean gap (%) per set, solver and budget, from ``runs.csv``.

Gaps are to each instance's bench reference (here the best objective of any
run: no BKS exists for these sets), as in ``summary.md``; a cell averages the
instances of its set that the solver solved at that budget, and says how many
when that is not all of them. Also prints, per solver, how many runs took more
than their budget plus 0.2 s of wall time.

Usage: python benchmarks/sweep/tables.py [runs.csv]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from statistics import mean

from rota.bench.report import latest, read_runs, references

SETS = {
    "cvrp100": "CVRP n=100",
    "cvrp200": "CVRP n=200",
    "cvrp500": "CVRP n=500",
    "acvrp100": "Helsinki ACVRP100 (held out)",
}
SOLVERS = [
    ("pyvrp", {}),
    ("hgs", {}),
    ("ga", {}),
    ("ortools", {}),
    ("hybrid", {"seeds": "greedy"}),
    ("hybrid", {"seeds": "neural,greedy"}),
]
OVERRUN = 0.2  # seconds of wall time past the budget worth reporting


def label(solver: str, options: dict) -> str:
    if solver != "hybrid":
        return solver
    return f"hybrid ({options['seeds'].replace(',', '+')} seeds)"


def set_of(instance: str) -> str:
    return Path(instance.split("#")[0]).stem


def main(path: str) -> None:
    runs = latest(read_runs(path))
    refs, warnings = references(runs)
    for warning in warnings:
        print("warning:", warning)
    gaps: dict[tuple, list[float]] = defaultdict(list)
    instances: dict[str, set[str]] = defaultdict(set)
    overruns: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    budgets = sorted({r.time_limit for r in runs})
    for r in runs:
        options = json.loads(r.options or "{}")
        key = (set_of(r.instance), label(r.solver, options), r.time_limit)
        instances[key[0]].add(r.instance)
        if r.wall_time is not None:
            overruns[key[1]][0] += r.wall_time > r.time_limit + OVERRUN
            overruns[key[1]][1] += 1
        gap = r.sense.gap_pct(r.objective, refs[r.instance].value) if r.solved else None
        if gap is not None:
            gaps[key].append(gap)
    for name, title in SETS.items():
        count = len(instances[name])
        print(f"\n### {title}\n")
        print("| solver | " + " | ".join(f"{b:g} s" for b in budgets) + " |")
        print("|---|" + "---:|" * len(budgets))
        for solver, options in SOLVERS:
            cells = [gaps.get((name, label(solver, options), b), []) for b in budgets]
            if not any(cells):
                continue
            text = [
                f"{mean(c):.2f}" + ("" if len(c) == count else f" ({len(c)})") if c else "-"
                for c in cells
            ]
            print(f"| {label(solver, options)} | " + " | ".join(text) + " |")
        print(f"\n{count} instances")
    print(f"\nruns over their budget by more than {OVERRUN} s of wall time:")
    for solver, (over, total) in overruns.items():
        print(f"- {solver}: {over} of {total}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).with_name("runs.csv")))
