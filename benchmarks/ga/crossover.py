"""ga's crossovers against each other: OX, OX on whole routes, half of each, and EAX.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python benchmarks/ga/crossover.py [--time-limit 10] [--seeds 1,2]

Four CVRPLIB X instances of ``../shared/instances/cvrp`` (n = 100 to 255), one
run at a time on one torch thread; prints one line per run and the mean gap
to the best-known solution per crossover. The figures are in ``summary.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import rota
from rota.problems.reference import reference_cost

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "instances" / "cvrp"
NAMES = ("X-n101-k25", "X-n153-k22", "X-n200-k36", "X-n256-k16")
CROSSOVERS = ("ox", "routes", "mixed", "eax")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--crossovers", default=",".join(CROSSOVERS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    chosen = args.crossovers.split(",")
    gaps: dict[str, list[float]] = {c: [] for c in chosen}
    for name in NAMES:
        path = SHARED / f"{name}.vrp"
        instance = rota.read(path)
        best = reference_cost(path, instance).value
        for seed in (int(s) for s in args.seeds.split(",")):
            for crossover in chosen:
                result = rota.solve(instance, solver="ga", time_limit=args.time_limit, seed=seed,
                                    device="cpu", crossover=crossover)  # fmt: skip
                gap = 100 * (result.objective / best - 1)
                gaps[crossover].append(gap)
                print(f"{name} seed {seed} {crossover}: {result.objective:.0f} ({gap:.2f} %, "
                      f"{result.stats['generations']} generations)", flush=True)  # fmt: skip
    for crossover, values in gaps.items():
        print(f"{crossover}: mean gap {sum(values) / len(values):.2f} % over {len(values)} runs")


if __name__ == "__main__":
    main()
