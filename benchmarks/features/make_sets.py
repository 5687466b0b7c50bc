"""Write the instance sets of the routing-feature benchmark into ``out/features/``.

Usage (from the repository root)::

    python benchmarks/features/make_sets.py [--shared ../shared/instances]

Real instances come first: the published benchmark instances among PyVRP's
test files (shipped in ``tests/data/pyvrp``) are read by ``run.sh`` in place.
This script derives, deterministically, the sets that have no shipped files:

``solomon-release.jsonl``
    the 12 shared Solomon instances with release times in the manner of
    PyVRP's ``C201R0.25`` (after Yang, 2023): half the clients, drawn at
    random, released at ``U(0.2, 0.5)`` times the latest departure from the
    depot that reaches their window's opening, the others at time 0 (seed 0).
    Solomon's fleets are fixed and single-trip, so the looser rule of
    ``rota generate vrptw-release`` (uniform up to the last departure that
    meets the window's close) leaves most of them without a feasible plan;
``x-spd.jsonl``
    the shared CVRPLIB X instances up to 300 clients with simultaneous pickup
    and delivery split from each demand by the rule of Salhi and Nagy (1999):
    ``r = min(x / y, y / x)`` of the client's coordinates, delivery
    ``round(r * q)``, pickup ``q - delivery``;
``x-backhaul.jsonl``
    the same X instances with every second client (in file order) a backhaul
    collecting its demand, deliveries first on every route (VRPB);
``mtvrp.jsonl``, ``pcvrp.jsonl``, ``pdp.jsonl``
    five 100-client instances each from ``rota generate`` (seed 0).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

import rota
from rota.data import generate, write_set

SETS = Path("out/features")
X_MAX_CLIENTS = 300
RELEASED_SHARE = 0.5


def solomon_release(shared: Path) -> list[rota.RoutingInstance]:
    out = []
    for path in sorted((shared / "vrptw").glob("*.txt")):
        instance = rota.read(path)
        rng = np.random.default_rng([0, len(out)])
        reaches_opening = np.maximum(instance.time_windows[:, 0] - instance.travel_time[0], 0.0)
        released = rng.random(len(reaches_opening)) < RELEASED_SHARE
        released[list(instance.depots)] = False
        release = np.where(
            released, np.floor(rng.uniform(0.2, 0.5, released.shape) * reaches_opening), 0.0
        )
        meta = {**instance.metadata, "derived": "release times as PyVRP's C201R0.25, seed 0"}
        out.append(
            dataclasses.replace(
                instance, release_time=release, name=f"{instance.name}-release", metadata=meta
            )
        )
    return out


def x_instances(shared: Path) -> list[rota.RoutingInstance]:
    chosen = []
    for path in sorted((shared / "cvrp").glob("X-*.vrp")):
        instance = rota.read(path)
        if instance.num_clients <= X_MAX_CLIENTS:
            chosen.append(instance)
    return chosen


def salhi_nagy(instance: rota.RoutingInstance) -> rota.RoutingInstance:
    x, y = instance.coords[:, 0], instance.coords[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.nan_to_num(np.minimum(x / y, y / x), nan=0.0, posinf=0.0)
    demand = instance.demand
    delivery = np.rint(ratio * demand)
    meta = {**instance.metadata, "derived": "Salhi and Nagy (1999) pickup-delivery split"}
    return dataclasses.replace(
        instance, demand=delivery, pickup=demand - delivery, name=f"{instance.name}-spd",
        metadata=meta,
    )  # fmt: skip


def backhauls(instance: rota.RoutingInstance) -> rota.RoutingInstance:
    demand = instance.demand.copy()
    pickup = np.zeros_like(demand)
    every_second = instance.clients[1::2]
    pickup[every_second], demand[every_second] = demand[every_second], 0
    meta = {**instance.metadata, "derived": "every second client a backhaul, linehaul first"}
    return dataclasses.replace(
        instance, demand=demand, pickup=pickup, linehaul_first=True,
        name=f"{instance.name}-b50", metadata=meta,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/instances"))
    args = parser.parse_args(argv)
    SETS.mkdir(parents=True, exist_ok=True)
    x = x_instances(args.shared)
    sets = {
        "solomon-release": solomon_release(args.shared),
        "x-spd": [salhi_nagy(i) for i in x],
        "x-backhaul": [backhauls(i) for i in x],
        **{p: list(generate(p, 5, 100, seed=0)) for p in ("mtvrp", "pcvrp", "pdp")},
    }
    for name, instances in sets.items():
        written = write_set(instances, SETS / f"{name}.jsonl")
        print(f"wrote {written} instances to {SETS / name}.jsonl ({instances[0].kind})")


if __name__ == "__main__":
    main()
