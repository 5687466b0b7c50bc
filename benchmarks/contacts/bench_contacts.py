"""Contact-scheduling benchmark: DSN weeks 10 and 20 of 2018, an orbit-derived Iridium day
and generated weeks of 200, 1,000 and 5,000 requests; greedy, cpsat, milp, ga and neural.

Usage (from the repository root)::

    python benchmarks/contacts/bench_contacts.py [--budgets 5,60] [--only W10_2018,...]

One solve at a time (every core goes to the solver running), seed 0. Each run
is appended to ``runs.csv`` as it ends; runs already there are skipped, so an
interrupted benchmark resumes. ``summary.md`` is rewritten from ``runs.csv``
at the end, with the command at the top. ``greedy`` is one pass whatever the
budget, so it runs once; ``milp`` runs at the largest budget where it accepts
the instance, and its refusal is recorded otherwise; ``ga`` runs at every
budget with fuzzy fitness off (``ga``) and on (``ga (fuzzy)``), and records
its decodes and the decodes fuzzy fitness saved (``estimated``); ``neural``
(the shipped model, its defaults) runs at every budget. Each
instance also gets a row with its capacity LP bound (``capacity LP``), which
counts with cpsat's bounds in the gaps.

The DSN weeks are read from ``../shared/satellites/dsn/``; the other
instances are built into ``benchmarks/contacts/instances/`` (deterministic,
not committed): ``rota data satellites`` with its defaults (24 h from the
latest TLE epoch, 10 degree mask, one 10-minute request per satellite and
hour) and ``rota data contacts --requests N --seed 0``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import rota
from rota.data.contacts import generate_contacts
from rota.data.orbits import satellite_instance
from rota.files import write_text
from rota.solvers.contacts.bound import capacity_bound
from rota.solvers.contacts.encoding import encode

HERE = Path(__file__).resolve().parent
DSN = HERE.parents[1] / ".." / "shared" / "satellites" / "dsn"
FIELDS = [
    "instance", "requests", "solver", "budget", "status", "objective", "bound", "hours_requested",
    "hours_scheduled", "satisfied", "fully", "partly", "u_max", "u_rms", "runtime", "note",
    "decodes", "estimated",
]  # fmt: skip
#: Table names of solver runs that set options: name -> (solver, options).
VARIANTS = {"ga (fuzzy)": ("ga", {"fuzzy": True})}
#: The table name of the capacity LP bound's rows.
CAPACITY = "capacity LP"


def instances(only: set[str] | None) -> dict[str, Path]:
    folder = HERE / "instances"
    folder.mkdir(exist_ok=True)
    found = {}
    for week in ("W10_2018", "W20_2018"):
        if only and week not in only:
            continue
        path = DSN / f"{week}.json"
        if not path.is_file():
            sys.exit(f"error: {path} is missing; the DSN weeks come from ../shared/satellites/dsn")
        found[week] = path
    builders = {"iridium-2023-300-24h": satellite_instance}
    for n in (200, 1000, 5000):
        builders[f"contacts-{n}-s0"] = lambda n=n: generate_contacts(n, seed=0)
    for name, build in builders.items():
        if only and name not in only:
            continue
        path = folder / f"{name}.json"
        if not path.is_file():
            rota.write_instance(build(), path)
        found[name] = path
    return found


def done_runs(path: Path) -> set[tuple[str, str, str]]:
    if not path.is_file():
        return set()
    with path.open() as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        header = reader.fieldnames
    if header != FIELDS:  # written before columns were added: rewrite it with them, blank
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, FIELDS, restval="")
            writer.writeheader()
            writer.writerows(rows)
    return {(r["instance"], r["solver"], r["budget"]) for r in rows}


def append(path: Path, row: dict) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
        handle.flush()
        os.fsync(handle.fileno())


def run(name: str, inst, label: str, budget: float) -> dict:
    row = {"instance": name, "requests": inst.num_requests, "solver": label,
           "budget": f"{budget:g}", "hours_requested": round(inst.requested_hours, 4)}  # fmt: skip
    solver, options = VARIANTS.get(label, (label, {}))
    reason = next(i for i in rota.list_solvers(inst) if i.name == solver).reason
    if reason is not None:
        return {**row, "status": "refused", "note": reason}
    result = rota.solve(inst, solver=solver, time_limit=budget, seed=0, **options)
    report = result.evaluation
    note = result.stats.get("solution_from") or ""
    return {
        **row, "status": result.status.value, "objective": result.objective,
        "bound": result.bound, "hours_scheduled": report.hours_scheduled,
        "satisfied": report.satisfied, "fully": report.fully_satisfied,
        "partly": report.partly_satisfied, "u_max": report.u_max, "u_rms": report.u_rms,
        "runtime": round(result.runtime, 2), "note": note,
        "decodes": result.stats.get("decodes", ""), "estimated": result.stats.get("estimated", ""),
    }  # fmt: skip


def capacity_row(name: str, inst) -> dict:
    """The capacity LP bound of the instance, as a row of its own (no schedule)."""
    started = time.perf_counter()
    value = capacity_bound(inst, encode(inst))
    return {
        "instance": name, "requests": inst.num_requests, "solver": CAPACITY, "budget": "-",
        "status": "bound" if value is not None else "none", "bound": value,
        "hours_requested": round(inst.requested_hours, 4),
        "runtime": round(time.perf_counter() - started, 2),
    }  # fmt: skip


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({model}), no GPU, Python {platform.python_version()}"


def _num(value: str, digits: int = 1) -> str:
    return "-" if value in ("", None) else f"{float(value):,.{digits}f}"


def summary(runs_csv: Path, command: str) -> str:
    with runs_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    lines = [
        "# Contact scheduling: greedy, cpsat, milp, ga, neural",
        "",
        f"Command: `{command}`  ",
        f"Date: {dt.date.today().isoformat()}; machine: {machine()}, shared with other work "
        "(absolute times drift; compare within a table).",
        "",
        "Objective: hours of tracks (maximised). `gap %` is `100 * (B - hours) / B` with `B` the "
        "tightest upper bound on the instance in these runs: cpsat's (CP-SAT's own, or every "
        "request at its longest possible track where that is lower) or the capacity LP's "
        "(`rota/solvers/contacts/bound.py`, no search). `sat.` counts "
        "requests with a track (fully + partly satisfied). `decodes (est.)`: schedules the ga "
        "built, and children fuzzy fitness estimated instead of decoding them.",
        "",
    ]
    for name in dict.fromkeys(r["instance"] for r in rows):
        group = [r for r in rows if r["instance"] == name]
        bounds = [float(r["bound"]) for r in group if r["solver"] in ("cpsat", CAPACITY)
                  and r["bound"]]  # fmt: skip
        best_bound = min(bounds) if bounds else None
        first = group[0]
        requested = _num(first["hours_requested"])
        lines += [
            f"## {name}: {first['requests']} requests, {requested} h requested",
            "",
            "| solver | budget s | status | hours | sat. (full + part) | U_max | U_rms | bound "
            "| gap % | time s | decodes (est.) | note |",
            "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in group:
            if r["solver"] == CAPACITY:
                lines.append(f"| {CAPACITY} | - | {r['status']} | | | | | {_num(r['bound'], 2)} | "
                             f"| {r['runtime']} | | |")  # fmt: skip
                continue
            if r["status"] == "refused":
                lines.append(f"| {r['solver']} | {r['budget']} | refused | | | | | | | | | "
                             f"{r['note']} |")  # fmt: skip
                continue
            gap = "-"
            if best_bound and r["objective"]:
                gap = f"{100 * (best_bound - float(r['objective'])) / best_bound:.2f}"
            budget = "-" if r["solver"] == "greedy" else r["budget"]
            decodes = ""
            if r.get("decodes"):
                decodes = f"{int(r['decodes']):,} ({int(r['estimated'] or 0):,})"
            lines.append(
                f"| {r['solver']} | {budget} | {r['status']} | {_num(r['objective'], 2)} | "
                f"{r['satisfied']} ({r['fully']} + {r['partly']}) | {_num(r['u_max'], 3)} | "
                f"{_num(r['u_rms'], 3)} | {_num(r['bound'], 2)} | {gap} | {r['runtime']} | "
                f"{decodes} | {r['note']} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--budgets", default="5,60", help="time limits of cpsat and ga, seconds (milp: the largest)"
    )
    parser.add_argument("--only", default="", help="comma-separated instance names")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    only = {n for n in args.only.split(",") if n} or None
    runs_csv = args.out / "runs.csv"
    done = done_runs(runs_csv)
    plan = [("greedy", min(budgets))] + [("cpsat", b) for b in budgets] + [("milp", max(budgets))]
    plan += [(ga, b) for b in budgets for ga in ("ga", "ga (fuzzy)")]
    plan += [("neural", b) for b in budgets]
    for name, path in instances(only).items():
        inst = rota.read(path)
        if (name, CAPACITY, "-") not in done:
            row = capacity_row(name, inst)
            append(runs_csv, row)
            print(f"{name} {CAPACITY}: {row['bound']} ({row['runtime']} s)", flush=True)
        for solver, budget in plan:
            if (name, solver, f"{budget:g}") in done:
                continue
            row = run(name, inst, solver, budget)
            append(runs_csv, row)
            print(f"{name} {solver} {budget:g}: {row['status']} {row.get('objective')} "
                  f"bound {row.get('bound')} ({row.get('runtime')} s)", flush=True)  # fmt: skip
    command = "python benchmarks/contacts/bench_contacts.py " + " ".join(sys.argv[1:])
    write_text(args.out / "summary.md", summary(runs_csv, command.strip()) + "\n")


if __name__ == "__main__":
    main()
