"""Greedy constructive heuristic: conformance, fleet limits and speed on CVRPLIB."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rota
from rota.problems.routing import RoutingInstance, VehicleType
from rota.solvers.greedy import nearest_neighbour, savings

from ..conftest import SHARED_INSTANCES
from .conformance import FEATURE_KINDS, TINY_KINDS, SolverConformance, tiny_instance
from .test_pyvrp_features import random_instance


class TestGreedyConformance(SolverConformance):
    solver = "greedy"
    time_limit = 0.2
    # loads that change along the route, release times and reloads it does not model
    supported_kinds = frozenset(TINY_KINDS) - FEATURE_KINDS | {
        "multi_load", "prizes", "groups", "max_distance", "max_duration", "duration_costs",
        "allowed_clients", "end_depots",
    }  # fmt: skip


def greedy_instance(rng: np.random.Generator) -> RoutingInstance | None:
    """A random feature instance without the features greedy refuses; None if infeasible."""
    try:
        instance = random_instance(rng)
        types = tuple(
            dataclasses.replace(vt, reload_depots=(), max_reloads=None)
            for vt in instance.vehicle_types
        )
        return dataclasses.replace(
            instance,
            pickup=None,
            shipments=(),
            release_time=None,
            linehaul_first=False,
            vehicle_types=types,
        )
    except ValueError:
        return None


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_greedy_routes_respect_every_feature_it_claims(seed: int) -> None:
    instance = greedy_instance(np.random.default_rng(seed))
    if instance is None:
        return
    assert rota.get_solver("greedy").supports(instance) is None, instance.features
    result = rota.solve(instance, solver="greedy", seed=0)
    if result.status is rota.Status.NO_SOLUTION:
        return  # a tight fleet: nearest neighbour ran out of vehicles
    assert result.status is rota.Status.FEASIBLE, result.stats
    report = rota.evaluate(instance, result.solution)
    assert report.feasible and result.objective == pytest.approx(report.objective)


def _line(num_clients: int, capacity: float, count: int | None) -> RoutingInstance:
    coords = np.stack([np.arange(num_clients + 1.0), np.zeros(num_clients + 1)], axis=1)
    distance = np.abs(coords[:, None, 0] - coords[None, :, 0])
    demand = np.ones(num_clients + 1)
    demand[0] = 0
    return RoutingInstance(
        distance, (VehicleType(capacity=capacity, count=count),), demand=demand, coords=coords
    )


def test_savings_on_a_line_makes_one_full_route_per_vehicle() -> None:
    routes = savings(_line(6, capacity=3, count=None))
    assert sorted(sorted(r.visits) for r in routes) == [[1, 2, 3], [4, 5, 6]]


def test_uncapacitated_single_vehicle_is_merged_into_one_tour() -> None:
    instance = tiny_instance("tsp")
    routes = savings(instance)
    assert len(routes) == 1
    assert sorted(routes[0].visits) == list(instance.clients)


def test_nearest_neighbour_respects_time_windows_and_fleet() -> None:
    instance = tiny_instance("vrptw")
    routes = nearest_neighbour(instance)
    assert routes is not None
    report = rota.evaluate(instance, rota.RoutingSolution(tuple(routes)))
    assert report.feasible, [str(v) for v in report.violations]


def test_nearest_neighbour_rejects_unknown_choice() -> None:
    with pytest.raises(ValueError, match="choose is 'random'"):
        nearest_neighbour(tiny_instance("cvrp"), "random")


def test_deterministic_whatever_the_seed() -> None:
    instance = tiny_instance("mdvrp")
    a = rota.solve(instance, solver="greedy", time_limit=1, seed=1)
    b = rota.solve(instance, solver="greedy", time_limit=1, seed=2)
    assert a.solution == b.solution


def test_every_shared_cvrp_instance_is_solved_feasibly_and_fast() -> None:
    paths = sorted((SHARED_INSTANCES / "cvrp").glob("*.vrp"))
    if not paths:
        pytest.skip(f"benchmark instances not found at {(SHARED_INSTANCES / 'cvrp').resolve()}")
    for path in paths:
        instance = rota.read(path)
        start = time.perf_counter()
        result = rota.solve(instance, solver="greedy", time_limit=10, seed=0)
        elapsed = time.perf_counter() - start
        assert result.status is rota.Status.FEASIBLE, (path.name, result.stats)
        assert rota.evaluate(instance, result.solution).feasible, path.name
        assert elapsed < 3.0, (path.name, elapsed)
