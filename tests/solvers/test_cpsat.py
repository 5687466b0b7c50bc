"""CP-SAT backend: conformance, proofs, honest statuses and integer scaling."""

from __future__ import annotations

import numpy as np
import pytest

import rota
from rota.problems.routing import RoutingInstance
from rota.solvers.cpsat import MAX_CLIENTS, CPSATSolver, machine_workers

from .conformance import SolverConformance, brute_force_optimum, tiny_instance
from .test_milp import PROVEN_KINDS, bin_packing_infeasible, random_atsp, random_cvrp


@pytest.fixture(autouse=True)
def _require_cpsat() -> None:
    if not CPSATSolver().available():
        # OR-Tools cannot load in a process that already loaded highspy (both ship
        # a libhighs.so.1 of different versions)
        pytest.skip("cpsat is not available in this process")


class TestCPSATConformance(SolverConformance):
    solver = "cpsat"
    supported_kinds = frozenset(
        {"tsp", "atsp", "cvrp", "acvrp", "vrptw", "hfvrp", "cvrp_float", "cvrp12"}
    )
    proves_optimality = True
    # float costs are scaled by 10**6 and rounded down: the optimum of the rounded
    # model may differ from the true one by that rounding only
    optimum_tolerance = 1e-6
    time_limit = 1.0
    options = {"num_workers": 2}


def float_time_vrptw() -> RoutingInstance:
    """The tiny VRPTW with irrational travel times: no power of ten scales them exactly."""
    base = tiny_instance("vrptw")
    distance = base.distance + np.sqrt(2) * 1e-3
    np.fill_diagonal(distance, 0)
    return RoutingInstance(
        distance,
        base.vehicle_types,
        demand=base.demand,
        service_time=base.service_time,
        time_windows=base.time_windows,
        name="float-time-vrptw",
    )


@pytest.mark.parametrize("kind", [k for k in PROVEN_KINDS if k != "cvrp_float"])
def test_tiny_instances_are_proven_optimal_at_the_brute_force_optimum(kind: str) -> None:
    instance = tiny_instance(kind)
    result = rota.solve(instance, solver="cpsat", time_limit=1.0, seed=0)
    assert result.status is rota.Status.OPTIMAL, result.stats
    optimum = brute_force_optimum(kind)
    assert result.objective == pytest.approx(optimum, rel=1e-9)
    assert result.objective == rota.evaluate(instance, result.solution).objective
    assert result.bound == pytest.approx(optimum, rel=1e-9)


def test_float_costs_give_a_valid_bound_but_no_claim_beyond_the_rounding() -> None:
    instance = tiny_instance("cvrp_float")
    result = rota.solve(instance, solver="cpsat", time_limit=1.0, seed=0)
    optimum = brute_force_optimum("cvrp_float")
    assert result.stats["cost_scale_exact"] is False
    assert result.status in (rota.Status.OPTIMAL, rota.Status.FEASIBLE)
    assert result.bound is not None and result.bound <= optimum
    assert result.objective == pytest.approx(optimum, rel=1e-6)
    assert result.objective == rota.evaluate(instance, result.solution).objective


def test_inexact_times_are_rounded_safely_and_never_proven() -> None:
    instance = float_time_vrptw()
    result = rota.solve(instance, solver="cpsat", time_limit=1.0, seed=0)
    assert result.stats["proofs_valid"] is False
    assert result.status is rota.Status.FEASIBLE
    assert result.bound is None
    assert rota.evaluate(instance, result.solution).feasible


def test_time_limited_cut_off_is_never_called_optimal() -> None:
    instance = random_cvrp(60, seed=1)
    result = rota.solve(instance, solver="cpsat", time_limit=0.3, seed=0)
    assert result.status in (rota.Status.FEASIBLE, rota.Status.NO_SOLUTION), result.stats
    assert result.runtime <= 0.3 + 1.0
    if result.status is rota.Status.FEASIBLE:
        assert rota.evaluate(instance, result.solution).feasible
        if result.bound is not None:
            assert result.bound <= result.objective


def test_bin_packing_infeasible_fleet_is_proven_infeasible() -> None:
    result = rota.solve(bin_packing_infeasible(), solver="cpsat", time_limit=1.0)
    assert result.status is rota.Status.INFEASIBLE, result.stats
    assert result.solution is None


@pytest.mark.parametrize(
    "instance",
    [
        random_cvrp(MAX_CLIENTS["cvrp"] + 1, seed=3, capacity=100),
        random_atsp(MAX_CLIENTS["tsp"] + 2, seed=4),
    ],
    ids=["cvrp", "atsp"],
)
def test_too_large_instance_is_refused_up_front(instance: RoutingInstance) -> None:
    with pytest.raises(rota.UnsupportedInstanceError, match="heuristic solver such as pyvrp"):
        rota.solve(instance, solver="cpsat", time_limit=0.5)


def test_workers_follow_the_machine_and_the_seed_is_passed() -> None:
    result = rota.solve(tiny_instance("atsp"), solver="cpsat", time_limit=1.0, seed=7)
    assert result.stats["num_workers"] == machine_workers()
    assert result.seed == 7
    single = rota.solve(tiny_instance("atsp"), solver="cpsat", time_limit=1.0, num_workers=1)
    assert single.stats["num_workers"] == 1
    assert single.objective == result.objective


def test_bad_options_are_rejected_by_name() -> None:
    instance = tiny_instance("tsp")
    with pytest.raises(ValueError, match="unknown option 'backend'"):
        rota.solve(instance, solver="cpsat", backend="highs")
    with pytest.raises(ValueError, match="num_workers=0"):
        rota.solve(instance, solver="cpsat", num_workers=0)
    with pytest.raises(ValueError, match="greedy_start='yes'"):
        rota.get_solver("cpsat").configure(greedy_start="yes")


def test_multi_depot_is_refused() -> None:
    reason = CPSATSolver().supports(tiny_instance("mdvrp"))
    assert reason is not None and "depots" in reason
