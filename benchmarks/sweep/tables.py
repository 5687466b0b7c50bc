"""The README's tables: mean gap (%) per set, solver and budget, from ``runs.csv``.

Gaps are to each instance's bench reference, as in ``summary.md``: the BKS for
the X instances, the best objective of any run for the generated sets (no BKS
exists for them). A cell averages, over the instances of its set that the
solver solved at that budget, each instance's gap averaged over its feasible
seeds, and says how many instances when that is not all of them. Also prints,
per solver, how many runs took more than their budget plus 0.2 s of wall time,
and every run that returned no feasible solution.

Usage: python benchmarks/sweep/tables.py [runs.csv]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from statistics import mean

from rota.bench.report import Run, latest, read_runs, references

SETS = {
    "cvrp100": "CVRP n=100",
    "cvrp200": "CVRP n=200",
    "cvrp500": "CVRP n=500",
    "acvrp100": "Helsinki ACVRP100 (held out)",
    "x": "CVRPLIB X instances of ../shared (n = 101 to 1001), gap to BKS",
    "x-small": "X instances with n <= 200 (the sizes the CVRP100 model serves), gap to BKS",
    "x-large": "X instances with n >= 400, gap to BKS",
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


def sets_of(run: Run) -> list[str]:
    """The tables a run counts in: its file's for a generated set; for an X instance, that
    of all ten and that of its size band (``size`` counts clients: X-n200 has 199)."""
    if not run.name.startswith("X-n"):
        return [Path(run.instance.split("#")[0]).stem]
    bands = (["x-small"] if run.size <= 200 else []) + (["x-large"] if run.size >= 400 else [])
    return ["x", *bands]


def main(path: str) -> None:
    runs = latest(read_runs(path))
    refs, warnings = references(runs)
    for warning in warnings:
        print("warning:", warning)
    gaps: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    failures: list[str] = []
    instances: dict[str, set[str]] = defaultdict(set)
    overruns: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    budgets = sorted({r.time_limit for r in runs})
    for r in runs:
        options = json.loads(r.options or "{}")
        sets, solver = sets_of(r), label(r.solver, options)
        for name in sets:
            instances[name].add(r.instance)
            if r.solved:
                gap = r.sense.gap_pct(r.objective, refs[r.instance].value)
                gaps[(name, solver, r.time_limit)][r.instance].append(gap)
        if r.wall_time is not None:
            where = "X instances" if sets[0] == "x" else "generated sets"
            overruns[(where, solver)][0] += r.wall_time > r.time_limit + OVERRUN
            overruns[(where, solver)][1] += 1
        if not r.solved:
            failures.append(f"{Path(r.instance).stem} {solver} {r.time_limit:g} s seed {r.seed}")
    for name, title in SETS.items():
        count = len(instances[name])
        print(f"\n### {title}\n")
        print("| solver | " + " | ".join(f"{b:g} s" for b in budgets) + " |")
        print("|---|" + "---:|" * len(budgets))
        for solver, options in SOLVERS:
            cells = [
                [mean(seeds) for seeds in gaps.get((name, label(solver, options), b), {}).values()]
                for b in budgets
            ]
            if not any(cells):
                continue
            text = [
                f"{mean(c):.2f}" + ("" if len(c) == count else f" ({len(c)})") if c else "-"
                for c in cells
            ]
            print(f"| {label(solver, options)} | " + " | ".join(text) + " |")
        print(f"\n{count} instances")
    print(f"\nruns over their budget by more than {OVERRUN} s of wall time:")
    for (where, solver), (over, total) in sorted(overruns.items()):
        print(f"- {where}, {solver}: {over} of {total}")
    print(f"\nruns with no feasible solution: {len(failures)}")
    for failure in failures:
        print("-", failure)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).with_name("runs.csv")))
