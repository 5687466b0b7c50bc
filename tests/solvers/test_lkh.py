"""LKH-3 backend: conformance, TSPLIB ATSP optima, LKH's integer range and its time limit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import rota
from rota.problems.reference import reference_cost
from rota.problems.routing import RoutingInstance, VehicleType
from rota.solvers.lkh import MAX_WEIGHT

from ..conftest import instance_file
from .conformance import SolverConformance, brute_force_optimum, tiny_instance


class TestLKHConformance(SolverConformance):
    solver = "lkh"
    supported_kinds = frozenset({"tsp", "atsp"})
    optimum_tolerance = 0.0
    time_limit = 0.3
    # With a time limit LKH tries tours until it, as many as the machine allows.
    determinism_stop = "iterations=50"


def test_br17_reaches_its_proven_optimum() -> None:
    path = instance_file("br17.atsp")
    instance = rota.read(path)
    result = rota.solve(instance, solver="lkh", stop="iterations=17", seed=1)
    assert result.status is rota.Status.FEASIBLE
    assert result.objective == reference_cost(path).value
    assert result.stats["stopped_by"] == "iterations"


@pytest.mark.parametrize("name", ["ftv33", "ftv47", "ry48p"])
def test_tsplib_atsp_reaches_its_proven_optimum(shared_instances, name: str) -> None:
    path = shared_instances / "atsp" / f"{name}.atsp"
    instance = rota.read(path)
    # LKH's default trial count: one per node
    result = rota.solve(instance, solver="lkh", stop=f"iterations={instance.num_locations}", seed=1)
    assert result.objective == reference_cost(path).value
    assert result.objective == rota.evaluate(instance, result.solution).objective


def test_a_tour_is_cut_at_the_depot_wherever_it_is() -> None:
    tiny = tiny_instance("atsp")
    instance = dataclasses.replace(
        tiny, depots=(3,), vehicle_types=(VehicleType(None, count=1, depot=3),), name="depot-3"
    )
    result = rota.solve(instance, solver="lkh", stop="iterations=20", seed=1)
    (route,) = result.solution.routes
    assert sorted(route.visits) == [c for c in range(8) if c != 3]
    # the same cycle as with depot 0: where a tour starts does not change its cost
    assert result.objective == brute_force_optimum("atsp")


def test_the_largest_weight_lkh_holds_is_solved_exactly_and_one_more_is_refused() -> None:
    tiny = tiny_instance("atsp")
    factor = MAX_WEIGHT // int(tiny.distance.max())
    widest = RoutingInstance(tiny.distance * factor, tiny.vehicle_types, name="widest")
    result = rota.solve(widest, solver="lkh", stop="iterations=20", seed=1)
    assert result.objective == brute_force_optimum("atsp") * factor
    assert result.stats["scaling_exact"] and result.stats["distance_scale"] == 1

    distance = widest.distance.copy()
    distance[0, 1] = MAX_WEIGHT + 1
    too_wide = RoutingInstance(distance, tiny.vehicle_types, name="too-wide")
    with pytest.raises(rota.UnsupportedInstanceError, match="too large for LKH"):
        rota.solve(too_wide, solver="lkh", time_limit=1.0)


def test_float_distances_are_rounded_at_the_finest_scale_lkh_holds() -> None:
    coords = np.random.default_rng(5).random((8, 2)) * 100
    distance = np.sqrt(((coords[:, None] - coords[None]) ** 2).sum(-1))
    instance = RoutingInstance(distance, (VehicleType(capacity=None, count=1),), name="float-tsp")
    result = rota.solve(instance, solver="lkh", stop="iterations=20", seed=1)
    assert not result.stats["scaling_exact"]
    assert result.stats["distance_scale"] * distance.max() <= MAX_WEIGHT
    assert result.objective == rota.evaluate(instance, result.solution).objective
    assert result.stats["engine_objective"] == pytest.approx(result.objective, rel=1e-6)


def test_a_time_limit_spent_building_candidates_leaves_no_tour(shared_instances) -> None:
    # rbg323 becomes 646 nodes; LKH's subgradient ascent alone takes about a second.
    instance = rota.read(shared_instances / "atsp" / "rbg323.atsp")
    result = rota.solve(instance, solver="lkh", time_limit=0.1, seed=1)
    assert result.status is rota.Status.NO_SOLUTION, result.stats
    assert "candidate edges" in result.stats["reason"]


def test_capacitated_instances_are_refused_naming_the_vehicle() -> None:
    with pytest.raises(rota.UnsupportedInstanceError, match="capacitated vehicles"):
        rota.solve(tiny_instance("cvrp"), solver="lkh", time_limit=1.0)
    three = dataclasses.replace(tiny_instance("tsp"), vehicle_types=(VehicleType(None, count=3),))
    with pytest.raises(rota.UnsupportedInstanceError, match="3 vehicles"):
        rota.solve(three, solver="lkh", time_limit=1.0)
