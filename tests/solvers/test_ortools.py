"""OR-Tools backend: the conformance suite plus a Solomon instance."""

from __future__ import annotations

import numpy as np
import pytest

import rota
from rota.problems.routing import RoutingInstance, VehicleType
from rota.solvers.ortools import fleet_size

from ..conftest import instance_file
from .conformance import TINY_KINDS, SolverConformance, tiny_instance


class TestORToolsConformance(SolverConformance):
    solver = "ortools"
    # Guided local search finds these seven-client optima within the limit;
    # 1% leaves room for a time cut-off on a loaded machine.
    optimum_tolerance = 0.01
    time_limit = 0.3
    # its load dimensions start empty; release times and reloads it does not model
    supported_kinds = frozenset(TINY_KINDS) - {
        "pickup_delivery", "backhauls", "release_times", "reloads"
    }  # fmt: skip

    def extra_unsupported(self):
        distance = np.full((4, 4), 3e17)
        np.fill_diagonal(distance, 0)
        huge = RoutingInstance(distance, (VehicleType(capacity=None, count=1),), name="huge")
        return [(huge, ("64-bit", "too large"))]


def test_unlimited_fleet_is_capped_by_a_packing_bound() -> None:
    instance = tiny_instance("cvrp")  # demand 18, capacity 8: 2 * 3 + 1 = 7 = clients
    assert fleet_size(instance, 0) == 7
    assert fleet_size(tiny_instance("vrptw"), 0) == 3  # a finite count is kept
    assert fleet_size(tiny_instance("tsp"), 0) == 1


def test_seed_is_recorded_though_routing_is_unseeded() -> None:
    result = rota.solve(tiny_instance("cvrp"), solver="ortools", time_limit=0.2, seed=11)
    assert result.seed == 11
    assert result.stats["seeded"] is False
    assert result.stats["engine_status"].startswith("ROUTING_")


def test_solomon_c101_feasible_and_objective_matches_evaluator() -> None:
    instance = rota.read(instance_file("C101.txt"))
    result = rota.solve(instance, solver="ortools", time_limit=1.0, seed=1)
    assert result.status is rota.Status.FEASIBLE
    report = rota.evaluate(instance, result.solution)
    assert report.feasible, [str(v) for v in report.violations]
    assert result.objective == pytest.approx(report.objective, rel=1e-9)
    assert len(result.solution.nonempty_routes) <= instance.vehicle_types[0].count


def test_tight_mixed_fleet_starts_from_greedy_and_stays_feasible() -> None:
    # X115-HVRP: 19 vehicles of three types for 84% of their capacity; the
    # cheapest-arc construction alone found no complete plan within 5 s.
    inst = rota.read(instance_file("X115-HVRP.vrp"))
    result = rota.solve(inst, solver="ortools", time_limit=1, seed=0)
    assert result.stats["initial_solution"] == "greedy"
    assert result.status is rota.Status.FEASIBLE
    assert rota.evaluate(inst, result.solution).feasible
