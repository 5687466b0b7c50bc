"""Batched neural decoding on the test sets: seconds per instance and gap to PyVRP.

Usage (from the repository root, after ``bash benchmarks/neural/run.sh``)::

    python benchmarks/neural/throughput.py [--threads 1] [--sets out/neural] [--out FILE]

``rota bench`` times one instance per run; this decodes each whole test set
in one call (``rota.solve(list, solver="neural")``), as a user with many
instances would, and reports the wall time per instance beside the mean gap
to the PyVRP 10 s runs of the same bench (``runs.csv``). Writes
``throughput.md`` beside this file (or ``--out``); decodes on a GPU when torch
sees one.
"""

from __future__ import annotations

import argparse
import csv
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

import rota

HERE = Path(__file__).resolve().parent
UNAUGMENTED = (
    ("greedy", {"decoding": "greedy", "augment": 1}),
    ("multistart", {"decoding": "multistart", "augment": 1}),
)
#: x8 is POMO's dihedral transforms; x32 adds 4 rotations 22.5 degrees apart.
AUGMENTS = (8, 32)


def pyvrp_costs() -> dict[str, float]:
    costs = {}
    with open(HERE / "runs.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["solver"] == "pyvrp" and row["feasible"] == "true":
                costs[row["name"]] = float(row["objective"])
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sets", type=Path, default=Path("out/neural"), help="PROBLEM.jsonl")
    parser.add_argument("--out", type=Path, default=HERE / "throughput.md")
    parser.add_argument(
        "--problems", nargs="+", default=["atsp", "acvrp", "acvrptw", "cvrp"], metavar="PROBLEM"
    )
    parser.add_argument(
        "--augments", nargs="+", type=int, default=list(AUGMENTS), metavar="N",
        help="the augmented multistart decodings (1 or multiples of 8 up to 128)",
    )  # fmt: skip
    parser.add_argument("--no-unaugmented", action="store_true", help="no greedy, multistart")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reference = pyvrp_costs()
    if torch.cuda.is_available():
        device = f"GPU {torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    else:
        device = f"CPU, {args.threads} torch thread(s)"
    lines = [
        "# Batched neural decoding on the test sets", "",
        f"Command: `python benchmarks/neural/throughput.py {' '.join(sys.argv[1:])}`  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        f"Machine: {platform.machine()}, {device}  ",
        "Each set decoded in one call; time is wall time per instance (model load excluded, "
        "one warm-up call first); gap is the mean over instances of the gap to PyVRP at 10 s "
        "(`runs.csv`).", "",
        "| set | decoding | instances | seconds per instance | mean gap to PyVRP % |",
        "|---|---|---:|---:|---:|",
    ]  # fmt: skip
    decodings = [] if args.no_unaugmented else list(UNAUGMENTED)
    decodings += [
        (f"multistart x{n}", {"decoding": "multistart", "augment": n}) for n in args.augments
    ]
    for problem in args.problems:
        instances = rota.read_set(args.sets / f"{problem}.jsonl")
        for label, options in decodings:
            rota.solve(instances[:2], solver="neural", **options)  # load and warm up
            started = time.perf_counter()
            results = rota.solve(instances, solver="neural", **options)
            seconds = (time.perf_counter() - started) / len(instances)
            gaps = [
                100 * (r.objective / reference[i.name] - 1)
                for i, r in zip(instances, results, strict=True)
                if r.objective is not None and i.name in reference
            ]
            gap = f"{np.mean(gaps):.2f}" if gaps else "–"
            lines.append(f"| {problem}100 | {label} | {len(instances)} | {seconds:.4f} | {gap} |")
            print(lines[-1], flush=True)
            # row by row, so a run cut off by its time limit keeps what it measured
            args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
