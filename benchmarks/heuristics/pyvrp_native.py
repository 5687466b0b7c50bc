"""Is rota's PyVRP adapter as good as PyVRP itself? Same instances, budget and seed.

Runs PyVRP on its own reading of each CVRPLIB X file (``pyvrp.read`` with
CVRPLIB's rounding) and through ``rota.solve``, one after the other, and writes
a markdown table. A large difference would mean the adapter loses something
(scaling, fleet size, time spent encoding).

    python benchmarks/heuristics/pyvrp_native.py --time-limit 5 --seed 1
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
from pathlib import Path

import pyvrp
from pyvrp.stop import MaxRuntime

import rota
from rota.problems.reference import reference_cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/instances"))
    parser.add_argument("--time-limit", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("pyvrp_native.md"))
    args = parser.parse_args()

    lines = [
        "# PyVRP through rota vs PyVRP directly (CVRPLIB X)",
        "",
        f"Command: `python benchmarks/heuristics/pyvrp_native.py --time-limit "
        f"{args.time_limit:g} --seed {args.seed}`  ",
        f"Date: {datetime.date.today()}; machine: {os.cpu_count()} cores, no GPU, "
        f"{platform.machine()}; one solve at a time.",
        "",
        "| instance | BKS | native PyVRP | gap % | rota pyvrp | gap % |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    gaps: dict[str, list[float]] = {"native": [], "rota": []}
    for path in sorted((args.shared / "cvrp").glob("X-*.vrp")):
        bks = reference_cost(path).value
        data = pyvrp.read(path, round_func="round")
        native = pyvrp.solve(data, stop=MaxRuntime(args.time_limit), seed=args.seed).cost()
        ours = rota.solve(rota.read(path), "pyvrp", args.time_limit, args.seed).objective
        row = [path.stem, f"{bks:g}"]
        for key, cost in (("native", native), ("rota", ours)):
            gap = 100 * (cost - bks) / bks
            gaps[key].append(gap)
            row += [f"{cost:g}", f"{gap:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
        print(lines[-1], flush=True)
    mean = {key: sum(v) / len(v) for key, v in gaps.items()}
    lines.append(f"| **mean** | | | **{mean['native']:.2f}** | | **{mean['rota']:.2f}** |")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
