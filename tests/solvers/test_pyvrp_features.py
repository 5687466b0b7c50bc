"""rota's evaluator against PyVRP's own, on random instances with random features and routes.

For each random instance and random routes (feasible or not), PyVRP judges
the same routes on the data rota's adapter builds: both must agree on
feasibility, and on the cost whenever the routes are feasible. Then PyVRP
solves the instance, and its solution must pass rota's evaluator at PyVRP's
cost. Integer data keeps the scaling exact, so the costs agree to the unit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rota
from rota.problems.routing import (
    ClientGroup,
    RoutingInstance,
    RoutingSolution,
    Shipment,
    VehicleType,
)
from rota.solvers.pyvrp import _Encoding, _problem_data
from rota.solvers.scaling import scale_instance

pyvrp = pytest.importorskip("pyvrp")
from pyvrp.constants import MAX_VALUE  # noqa: E402


def random_instance(rng: np.random.Generator) -> RoutingInstance:
    """A small instance with a random subset of the routing features, integer data."""
    n_depots = int(rng.integers(1, 3))
    n = n_depots + int(rng.integers(4, 8))
    depots = tuple(range(n_depots))
    clients = list(range(n_depots, n))
    distance = rng.integers(1, 30, (n, n)).astype(float)
    np.fill_diagonal(distance, 0)
    dims = int(rng.integers(1, 3))
    demand = rng.integers(0, 4, (n, dims)).astype(float)
    demand[list(depots)] = 0
    fields: dict = {"distance": distance, "depots": depots, "demand": demand}

    if rng.random() < 0.4:
        pickup = rng.integers(0, 4, (n, dims)).astype(float)
        pickup[list(depots)] = 0
        fields["pickup"] = pickup
    required = np.ones(n, dtype=bool)
    if rng.random() < 0.4:
        optional = rng.choice(clients, size=int(rng.integers(1, 3)), replace=False)
        required[optional] = False
        fields["prize"] = np.where(required, 0, rng.integers(1, 40, n)).astype(float)
        if rng.random() < 0.5 and len(optional) >= 2:
            fields["groups"] = (ClientGroup(tuple(int(c) for c in optional),
                                            bool(rng.random() < 0.5)),)  # fmt: skip
    fields["required"] = required
    free = [c for c in clients if required[c]]
    if rng.random() < 0.3 and len(free) >= 2:
        a, b = (int(c) for c in rng.choice(free, size=2, replace=False))
        fields["shipments"] = (Shipment(a, b, tuple(float(x) for x in rng.integers(1, 4, dims))),)
        demand[[a, b]] = 0
        if "pickup" in fields:
            fields["pickup"][[a, b]] = 0
    if rng.random() < 0.5:
        early = rng.integers(0, 60, n).astype(float)
        windows = np.stack([early, early + rng.integers(20, 200, n)], axis=1)
        windows[list(depots)] = (0, 1000)
        fields["time_windows"] = windows
        fields["service_time"] = rng.integers(0, 5, n).astype(float)
    if rng.random() < 0.3:
        fields["release_time"] = np.where(np.arange(n) >= n_depots, rng.integers(0, 40, n), 0)
    fields["linehaul_first"] = "pickup" in fields and rng.random() < 0.3

    types = []
    for _ in range(int(rng.integers(1, 3))):
        depot = int(rng.choice(depots))
        vt = {
            "capacity": tuple(float(c) for c in rng.integers(6, 15, dims)),
            "count": int(rng.integers(1, 4)),
            "fixed_cost": float(rng.integers(0, 20)),
            "unit_distance_cost": float(rng.integers(1, 3)),
            "depot": depot,
        }
        if rng.random() < 0.3:
            vt["end_depot"] = int(rng.choice(depots))
        if rng.random() < 0.3:
            vt["max_distance"] = float(rng.integers(30, 150))
        if rng.random() < 0.3:
            vt["max_duration"] = float(rng.integers(40, 200))
        if rng.random() < 0.3:
            vt["unit_duration_cost"] = (
                float(rng.integers(1, 5)) / 2
            )  # halves: costs scaled past times
        if rng.random() < 0.3:
            vt["reload_depots"] = tuple(int(d) for d in depots)
            vt["max_reloads"] = int(rng.integers(1, 3))
        if rng.random() < 0.2:
            vt["allowed_clients"] = tuple(clients)
        types.append(VehicleType(**vt))
    fields["vehicle_types"] = tuple(types)
    return RoutingInstance(**fields)


def random_routes(rng: np.random.Generator, instance: RoutingInstance) -> RoutingSolution:
    visited = [int(c) for c in instance.clients if instance.required[c] or rng.random() < 0.5]
    rng.shuffle(visited)
    routes: list[tuple[list[int], int]] = []
    left = [vt.count for vt in instance.vehicle_types]
    for c in visited:
        free = [k for k, count in enumerate(left) if count]
        if free and (not routes or rng.random() < 0.4):
            k = int(rng.choice(free))
            left[k] -= 1
            routes.append(([], k))
        routes[-1][0].append(c)
    out = []
    for visits, k in routes:
        vt = instance.vehicle_types[k]
        if vt.reload_depots and len(visits) > 1 and rng.random() < 0.5:
            at = int(rng.integers(1, len(visits)))
            visits.insert(at, int(rng.choice(vt.reload_depots)))
        out.append((visits, k))
    return RoutingSolution.from_lists([v for v, _ in out], [k for _, k in out])


def pyvrp_verdict(instance: RoutingInstance, solution: RoutingSolution) -> tuple[bool, int] | None:
    """PyVRP's feasibility and cost of ``solution``; None when PyVRP cannot hold the routes."""
    encoding = _Encoding(instance)
    scaled = scale_instance(instance)
    data = _problem_data(pyvrp, instance, scaled, encoding)
    try:
        routes = [
            pyvrp.Route(data, encoding.activities(pyvrp, r.visits), r.vehicle_type)
            for r in solution.routes
            if r.visits
        ]
        result = pyvrp.Solution(data, routes)
    except (ValueError, IndexError, RuntimeError):
        return None  # more routes than vehicles, say: rota reports it as a violation
    cost = (
        result.distance_cost()
        + result.duration_cost()
        + result.fixed_vehicle_cost()
        + result.uncollected_prizes()
    )
    return bool(result.is_feasible()) and cost < MAX_VALUE, cost / scaled.objective_scale


CHECK = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@CHECK
@given(seed=st.integers(0, 2**32 - 1))
def test_evaluator_agrees_with_pyvrp_on_random_routes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    try:
        instance = random_instance(rng)
    except ValueError:
        return  # an infeasible draw (a client no vehicle can carry): validation says why
    solution = random_routes(rng, instance)
    verdict = pyvrp_verdict(instance, solution)
    if verdict is None:
        return
    feasible, cost = verdict
    report = rota.evaluate(instance, solution)
    assert report.feasible == feasible, (instance.features, [str(v) for v in report.violations])
    if feasible:
        assert report.objective == pytest.approx(cost, abs=1e-9)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_pyvrp_solutions_pass_the_evaluator_at_pyvrps_cost(seed: int) -> None:
    rng = np.random.default_rng(seed)
    try:
        instance = random_instance(rng)
    except ValueError:
        return
    result = rota.solve(instance, solver="pyvrp", stop="time=5,iterations=150", seed=seed % 7)
    if result.status is not rota.Status.FEASIBLE:
        assert result.status is rota.Status.NO_SOLUTION and result.solution is None
        return
    report = rota.evaluate(instance, result.solution)
    assert report.feasible
    scale = result.stats["distance_scale"] * result.stats["cost_scale"]
    assert report.objective == pytest.approx(result.stats["engine_objective"] / scale, abs=1e-9)
