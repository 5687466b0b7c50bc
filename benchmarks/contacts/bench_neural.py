"""Does the learned contacts scheduler generalise from one DSN week to another?

Usage (from the repository root)::

    python benchmarks/contacts/bench_neural.py MODEL.pt [MODEL.pt ...]
    python benchmarks/contacts/bench_neural.py --table-only   # neural.md from the CSV

Each model is run on DSN weeks 10 and 20 of 2018: on the week(s) it was
trained on (slices of them were its training data, with generated weeks)
and on the week it never saw. Three runs per model and week, seed 0, the
policy's own schedules (``greedy_floor=False``, so greedy never stands in
for it): its greedy decoding (one rollout), and the best of sampling at 5 s
and at 60 s (``samples`` high enough for the time limit to end it). The runs
go to ``neural_runs.csv``, where the rows of models not measured this time
stay; ``neural.md`` sets them beside the committed rows of ``runs.csv``
(greedy, ga, cpsat at 5 s and 60 s, the bounds), so the gap between the
training week and the held-out week, the overfitting SatNet found, can be
read off.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from pathlib import Path

import rota
from rota.files import write_text
from rota.models.contacts import load_model

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_contacts import DSN, machine  # noqa: E402

WEEKS = ("W10_2018", "W20_2018")
FIELDS = [
    "command", "model", "trained_on", "instance", "role", "run", "budget", "objective",
    "hours_scheduled", "satisfied", "fully", "partly", "u_max", "u_rms", "rollouts", "runtime",
]  # fmt: skip
#: Rows of ``runs.csv`` shown beside the neural ones.
REFERENCES = (("greedy", "5"), ("ga", "5"), ("ga", "60"), ("cpsat", "5"), ("cpsat", "60"))


def neural_run(model: Path, inst, label: str, budget: float | None, **options) -> dict:
    limit = {"time_limit": budget} if budget is not None else {"stop": {"iterations": 1}}
    result = rota.solve(inst, solver="neural", model=str(model), seed=0, greedy_floor=False,
                        **limit, **options)  # fmt: skip
    report = result.evaluation
    return {
        "run": label, "budget": "-" if budget is None else f"{budget:g}",
        "objective": result.objective, "hours_scheduled": report.hours_scheduled,
        "satisfied": report.satisfied, "fully": report.fully_satisfied,
        "partly": report.partly_satisfied, "u_max": report.u_max, "u_rms": report.u_rms,
        "rollouts": result.stats["rollouts"], "runtime": round(result.runtime, 2),
    }  # fmt: skip


def committed() -> dict[tuple[str, str, str], dict]:
    """The benchmark's committed rows by (instance, solver, budget), and each week's bound."""
    rows = {}
    with (HERE / "runs.csv").open() as handle:
        for row in csv.DictReader(handle):
            rows[(row["instance"], row["solver"], row["budget"])] = row
    return rows


def bound(rows: dict, week: str) -> float:
    """The tightest upper bound of ``week`` in ``runs.csv`` (cpsat's or the capacity LP's)."""
    return min(float(r["bound"]) for (w, _, _), r in rows.items() if w == week and r["bound"])


def summary(runs: list[dict]) -> str:
    rows = committed()
    commands = list(dict.fromkeys(r["command"] for r in runs))
    lines = [
        "# Contact scheduling: the learned scheduler on a week it trained on and a week it did not",
        "",
        *(f"Command: `{c}`  " for c in commands),
        f"Date: {dt.date.today()}; machine: {machine()}, shared with other work.",
        "",
        "`neural greedy` is the policy's greedy decoding (one rollout); `neural` the best of "
        "its greedy rollout and the samples drawn within the budget (`rollouts`). The policy's "
        "own schedules: greedy never stands in (`greedy_floor=False`). Other rows: "
        "`runs.csv` of `bench_contacts.py`, same machine and day. `gap %` is to the tightest "
        "upper bound in `runs.csv`.",
    ]
    for week in WEEKS:
        best = bound(rows, week)
        lines += [
            "",
            f"## {week} (bound {best:,.2f} h)",
            "",
            "| solver | trained on | week is | budget s | hours | sat. (full + part) | U_max "
            "| U_rms | gap % | rollouts | time s |",
            "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
        ]
        for solver, budget in REFERENCES:
            r = rows[(week, solver, budget)]
            shown = "-" if solver == "greedy" else budget
            lines.append(
                f"| {solver} | | | {shown} | {float(r['objective']):,.2f} | {r['satisfied']} "
                f"({r['fully']} + {r['partly']}) | {float(r['u_max']):.3f} "
                f"| {float(r['u_rms']):.3f} | {100 * (best - float(r['objective'])) / best:.2f} "
                f"| | {r['runtime']} |"
            )
        for r in (r for r in runs if r["instance"] == week):
            lines.append(
                f"| {r['run']} ({r['model']}) | {r['trained_on']} | {r['role']} | {r['budget']} "
                f"| {r['objective']:,.2f} | {r['satisfied']} ({r['fully']} + {r['partly']}) "
                f"| {r['u_max']:.3f} | {r['u_rms']:.3f} "
                f"| {100 * (best - r['objective']) / best:.2f} | {r['rollouts']} "
                f"| {r['runtime']} |"
            )
    lines += [
        "",
        "## Training week against held-out week",
        "",
        "Hours of the neural runs relative to greedy's and to the ga's at 60 s on the same "
        "week (%, positive: more hours).",
        "",
        "| model (trained on) | week | week is | run | vs greedy % | vs ga 60 s % |",
        "|---|---|---|---|---:|---:|",
    ]
    for r in runs:
        greedy = float(rows[(r["instance"], "greedy", "5")]["objective"])
        ga = float(rows[(r["instance"], "ga", "60")]["objective"])
        lines.append(
            f"| {r['model']} ({r['trained_on']}) | {r['instance']} | {r['role']} "
            f"| {r['run']} {r['budget']} | {100 * (r['objective'] / greedy - 1):+.2f} "
            f"| {100 * (r['objective'] / ga - 1):+.2f} |"
        )
    return "\n".join(lines) + "\n"


def _typed(row: dict) -> dict:
    """A row of ``neural_runs.csv`` with its numbers as numbers again."""
    floats = ("objective", "hours_scheduled", "u_max", "u_rms", "runtime")
    ints = ("satisfied", "fully", "partly", "rollouts")
    return {**row, **{k: float(row[k]) for k in floats}, **{k: int(row[k]) for k in ints}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--budgets", default="5,60")
    parser.add_argument(
        "--table-only", action="store_true", help="rewrite neural.md from neural_runs.csv"
    )
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    command = "python benchmarks/contacts/bench_neural.py " + " ".join(sys.argv[1:])
    weeks = {} if args.table_only else {w: rota.read(DSN / f"{w}.json") for w in WEEKS}
    runs = []
    for path in [] if args.table_only else args.models:
        trained_on = load_model(path).training.get("train_weeks", [])
        for week, inst in weeks.items():
            role = "trained on" if week in trained_on else "held out"
            head = {"command": command, "model": path.stem,
                    "trained_on": "+".join(trained_on) or "generated", "instance": week,
                    "role": role}  # fmt: skip
            runs.append({**head, **neural_run(path, inst, "neural greedy", None,
                                              decoding="greedy")})  # fmt: skip
            for budget in budgets:
                runs.append({**head, **neural_run(path, inst, "neural", budget,
                                                  samples=1_000_000)})  # fmt: skip
            print(f"{path.stem} on {week}: " + ", ".join(f"{r['objective']:.2f}"
                  for r in runs[-1 - len(budgets):]), flush=True)  # fmt: skip
    # rows of other models stay, so that models can be measured one run at a time
    names = {path.stem for path in args.models}
    kept = []
    if (HERE / "neural_runs.csv").is_file():
        with (HERE / "neural_runs.csv").open() as handle:
            kept = [_typed(r) for r in csv.DictReader(handle) if r["model"] not in names]
    runs = kept + runs
    with (HERE / "neural_runs.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(runs)
    write_text(HERE / "neural.md", summary(runs))


if __name__ == "__main__":
    main()
