"""HGS-CVRP backend: conformance, asymmetric costs, its stopping rules and CVRPLIB quality."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

import rota
from rota.problems.reference import reference_cost
from rota.problems.routing import Route, RoutingInstance, RoutingSolution, VehicleType

from .conformance import SolverConformance, tiny_instance

X101 = Path(__file__).resolve().parents[2] / "data" / "instances" / "X-n101-k25.vrp"


class TestHGSConformance(SolverConformance):
    solver = "hgs"
    supported_kinds = frozenset(
        {"tsp", "atsp", "cvrp", "acvrp", "cvrp_float", "cvrp12", "max_duration"}
    )
    # Seven clients are solved long before the limit; HGS compares costs with a
    # tolerance of 1e-5 on distances scaled to about 1,000.
    optimum_tolerance = 1e-6
    time_limit = 0.3
    # With a time limit HGS searches until it, as much as the machine allows.
    determinism_stop = "no_improvement=300"


def _rounded_line(n: int) -> np.ndarray:
    """Distances between ``n`` points 0, 1, ..., n - 1 on a line."""
    points = np.arange(float(n))
    return np.abs(points[:, None] - points[None, :])


def one_way_x101() -> RoutingInstance:
    """X-n101-k25 with a seeded one-way surcharge on every arc (up to 200)."""
    base = rota.read(X101)
    surcharge = np.random.default_rng(0).integers(0, 200, base.distance.shape)
    distance = base.distance + surcharge
    np.fill_diagonal(distance, 0)
    return RoutingInstance(
        distance=distance, vehicle_types=base.vehicle_types, demand=base.demand,
        coords=base.coords, name="X-n101-k25-one-way",
    )  # fmt: skip


def test_asymmetric_routes_cost_what_hgs_says_in_their_direction() -> None:
    instance = one_way_x101()
    result = rota.solve(instance, solver="hgs", time_limit=1.0, seed=1)
    assert result.status is rota.Status.FEASIBLE, result.stats
    report = rota.evaluate(instance, result.solution)
    assert report.feasible
    # HGS sums its arcs in travel order; a reversed or misplaced route would differ
    assert result.stats["engine_objective"] == report.objective == result.objective
    backwards = RoutingSolution(tuple(Route(r.visits[::-1]) for r in result.solution.routes))
    assert report.objective < rota.evaluate(instance, backwards).objective
    greedy = rota.solve(instance, solver="greedy")
    assert result.objective < greedy.objective


def test_x_n101_k25_within_one_percent_of_bks_in_two_seconds() -> None:
    instance = rota.read(X101)
    bks = reference_cost(X101, instance).value
    result = rota.solve(instance, solver="hgs", time_limit=2.0, seed=1)
    assert result.status is rota.Status.FEASIBLE, result.stats
    assert result.objective == rota.evaluate(instance, result.solution).objective
    assert bks <= result.objective <= bks * 1.01
    assert result.stats["stopped_by"] == "time"


def test_float_distances_report_the_evaluators_objective() -> None:
    instance = tiny_instance("cvrp_float")
    result = rota.solve(instance, solver="hgs", time_limit=0.2, seed=2)
    assert result.objective == rota.evaluate(instance, result.solution).objective
    assert result.stats["engine_objective"] == pytest.approx(result.objective, rel=1e-12)


def test_duration_limit_splits_routes_as_the_evaluator_counts_them() -> None:
    instance = tiny_instance("max_duration")
    result = rota.solve(instance, solver="hgs", stop="no_improvement=200", seed=1)
    limit = instance.vehicle_types[0].max_duration
    durations = [route.duration for route in rota.evaluate(instance, result.solution).routes]
    assert len(durations) > 1 and max(durations) <= limit
    unlimited = dataclasses.replace(
        instance, vehicle_types=(dataclasses.replace(instance.vehicle_types[0], max_duration=None),)
    )
    free = rota.solve(unlimited, solver="hgs", stop="no_improvement=200", seed=1)
    assert free.objective < result.objective


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"duration": "double"}, "duration matrix"),
        ({"service_time": [5, 20, 20, 20, 20, 20]}, "service time at the depot"),
    ],
)
def test_duration_limits_it_cannot_model_are_refused(change: dict, words: str) -> None:
    instance = tiny_instance("max_duration")
    if change.get("duration") == "double":
        change = {"duration": instance.distance * 2}
    refused = dataclasses.replace(instance, **change)
    with pytest.raises(rota.UnsupportedInstanceError, match=words):
        rota.solve(refused, solver="hgs", time_limit=0.2)


def test_a_fleet_that_fits_only_within_tolerance_gets_no_search() -> None:
    # Valid (the total exceeds the fleet by less than the evaluator's tolerance),
    # yet HGS-CVRP throws on a fleet below its bin-packing bound.
    instance = RoutingInstance(
        distance=_rounded_line(5),
        vehicle_types=(VehicleType(capacity=1.0, count=2),),
        demand=[0, 0.5, 0.5, 0.5, 0.5 + 5e-7],
        name="tight-fleet",
    )
    result = rota.solve(instance, solver="hgs", time_limit=5.0)
    assert result.status is rota.Status.NO_SOLUTION, result.stats
    assert "capacity covers the total demand" in result.stats["reason"]
    assert result.runtime < 1.0


def test_no_improvement_ends_the_run_without_using_the_time_limit() -> None:
    instance = rota.read(X101)
    result = rota.solve(instance, solver="hgs", stop="no_improvement=50", time_limit=30.0)
    assert result.status is rota.Status.FEASIBLE
    assert result.stats["stopped_by"] == "no_improvement"
    assert result.runtime < 10


def test_a_time_limit_before_no_improvement_kills_the_run_without_a_solution() -> None:
    instance = rota.read(X101)
    began = time.perf_counter()
    result = rota.solve(instance, solver="hgs", stop="no_improvement=100000000", time_limit=0.5)
    assert time.perf_counter() - began < 1.5
    assert result.status is rota.Status.NO_SOLUTION
    assert result.stats["stopped_by"] == "time"
    assert result.solution is None


def test_one_client_needs_no_search() -> None:
    instance = RoutingInstance(
        distance=np.array([[0.0, 3.0], [4.0, 0.0]]),
        vehicle_types=(VehicleType(capacity=5),),
        demand=[0, 2],
        name="one-client",
    )
    result = rota.solve(instance, solver="hgs", time_limit=5.0)
    assert result.status is rota.Status.FEASIBLE
    assert result.objective == 7.0
    assert result.runtime < 1.0
