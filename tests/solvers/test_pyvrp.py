"""PyVRP backend: the conformance suite plus checks on shared benchmark instances."""

from __future__ import annotations

import numpy as np
import pytest

import rota
from rota.problems.routing import RoutingInstance, VehicleType
from rota.solvers.scaling import scale_instance

from ..conftest import instance_file
from .conformance import SolverConformance, tiny_instance


def huge_instance() -> RoutingInstance:
    """Distances no 64-bit engine can take after scaling."""
    distance = np.full((4, 4), 3e17)
    np.fill_diagonal(distance, 0)
    return RoutingInstance(distance, (VehicleType(capacity=None, count=1),), name="huge")


class TestPyVRPConformance(SolverConformance):
    solver = "pyvrp"
    # Seven clients are solved to optimality long before the limit; the slack
    # covers only the 1e-4 rounding of the inexactly scaled float instance.
    optimum_tolerance = 1e-6
    time_limit = 0.3

    def extra_unsupported(self):
        return [(huge_instance(), ("64-bit", "too large"))]


def test_scaling_is_exact_for_integer_and_one_decimal_data() -> None:
    scaled = scale_instance(tiny_instance("vrptw"))  # half-integer distances
    assert scaled.exact
    assert scaled.distance_scale == 10
    assert scaled.time_scale >= scaled.objective_scale
    assert np.array_equal(scaled.distance, np.round(tiny_instance("vrptw").distance * 10))


def test_scaling_of_floats_is_flagged_inexact_and_objective_comes_from_evaluator() -> None:
    instance = tiny_instance("cvrp_float")
    assert not scale_instance(instance).exact
    result = rota.solve(instance, solver="pyvrp", time_limit=0.3, seed=3)
    assert result.stats["scaling_exact"] is False
    assert result.objective == rota.evaluate(instance, result.solution).objective
    # PyVRP's own integer objective is kept, in engine units.
    assert result.stats["engine_objective"] / 10_000 == pytest.approx(result.objective, rel=1e-5)


def test_different_seeds_record_their_seed() -> None:
    result = rota.solve(tiny_instance("cvrp"), solver="pyvrp", time_limit=0.2, seed=7)
    assert result.seed == 7
    assert result.stats["iterations"] > 0


def test_e_n13_k4_reaches_proven_optimum() -> None:
    instance = rota.read(instance_file("E-n13-k4.vrp"))
    result = rota.solve(instance, solver="pyvrp", time_limit=1.0, seed=1)
    assert result.status is rota.Status.FEASIBLE
    assert result.objective == 247


def test_solomon_c101_feasible_and_objective_matches_evaluator() -> None:
    instance = rota.read(instance_file("C101.txt"))
    result = rota.solve(instance, solver="pyvrp", time_limit=1.0, seed=1)
    assert result.status is rota.Status.FEASIBLE
    report = rota.evaluate(instance, result.solution)
    assert report.feasible, [str(v) for v in report.violations]
    assert result.objective == pytest.approx(report.objective, rel=1e-9)
    # C101's best known distance is 827.3; a second of search is close to it.
    assert result.objective <= 827.3 * 1.05


def test_heterogeneous_fleet_x110_hd_feasible() -> None:
    instance = rota.read(instance_file("X110-HD.vrp"))
    result = rota.solve(instance, solver="pyvrp", time_limit=1.0, seed=1)
    assert result.status is rota.Status.FEASIBLE
    report = rota.evaluate(instance, result.solution)
    assert report.feasible, [str(v) for v in report.violations]
    assert result.objective == pytest.approx(report.objective, rel=1e-9)
    used = {route.vehicle_type for route in result.solution.nonempty_routes}
    assert used <= set(range(len(instance.vehicle_types)))
