"""MILP backend (PuLP with CBC or HiGHS): conformance, proofs and honest statuses."""

from __future__ import annotations

import numpy as np
import pytest

import rota
from rota.problems.routing import RoutingInstance, VehicleType
from rota.solvers.milp import MAX_CLIENTS, MILPSolver
from rota.solvers.milp.backends import cbc_verdict, printed_lower

from ..conftest import instance_file
from .conformance import SolverConformance, brute_force_optimum, tiny_instance

#: Kinds of the conformance suite with <= 7 clients that must be proven optimal.
PROVEN_KINDS = ("tsp", "atsp", "cvrp", "acvrp", "vrptw", "hfvrp", "cvrp_float")
BACKENDS = ("cbc", "highs")


def require(backend: str) -> MILPSolver:
    solver = MILPSolver(backend=backend)
    if not solver.available():
        # highspy cannot load in a process that already loaded OR-Tools (both ship
        # a libhighs.so.1); the CBC backend and the other solvers are unaffected
        pytest.skip(f"milp backend {backend!r} is not available in this process")
    return solver


class TestMILPCBCConformance(SolverConformance):
    solver = "milp"
    supported_kinds = frozenset(
        {"tsp", "atsp", "cvrp", "acvrp", "vrptw", "hfvrp", "cvrp_float", "cvrp12"}
    )
    proves_optimality = True
    optimum_tolerance = 0.0
    time_limit = 1.0


class TestMILPHiGHSConformance(TestMILPCBCConformance):
    options = {"backend": "highs"}

    @pytest.fixture(autouse=True)
    def _require_backend(self) -> None:
        require("highs")


def random_cvrp(
    num_clients: int, seed: int, capacity: float = 40, count: int | None = None
) -> RoutingInstance:
    """Uniform integer coordinates on a 1000 grid, rounded distances, demands 1..9."""
    rng = np.random.default_rng(seed)
    coords = rng.integers(0, 1001, (num_clients + 1, 2)).astype(float)
    diff = coords[:, None, :] - coords[None, :, :]
    distance = np.floor(np.sqrt((diff**2).sum(-1)) + 0.5)
    demand = rng.integers(1, 10, num_clients + 1)
    demand[0] = 0
    return RoutingInstance(
        distance,
        (VehicleType(capacity=capacity, count=count),),
        demand=demand,
        coords=coords,
        name=f"random-cvrp-{num_clients}",
    )


def random_atsp(num_locations: int, seed: int) -> RoutingInstance:
    """Uniform integer costs in 1..999: a hard ATSP for its size."""
    rng = np.random.default_rng(seed)
    distance = rng.integers(1, 1000, (num_locations, num_locations)).astype(float)
    np.fill_diagonal(distance, 0)
    return RoutingInstance(
        distance, (VehicleType(capacity=None, count=1),), name=f"random-atsp-{num_locations}"
    )


def bin_packing_infeasible() -> RoutingInstance:
    """Three clients of demand 6, two vehicles of capacity 10: 18 <= 20 on paper only."""
    coords = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    diff = coords[:, None, :] - coords[None, :, :]
    return RoutingInstance(
        np.round(np.sqrt((diff**2).sum(-1))),
        (VehicleType(capacity=10, count=2),),
        demand=[0, 6, 6, 6],
        name="bin-packing-infeasible",
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", PROVEN_KINDS)
def test_tiny_instances_are_proven_optimal_at_the_brute_force_optimum(
    backend: str, kind: str
) -> None:
    require(backend)
    instance = tiny_instance(kind)
    result = rota.solve(instance, solver="milp", time_limit=1.0, seed=0, backend=backend)
    assert result.status is rota.Status.OPTIMAL, result.stats
    optimum = brute_force_optimum(kind)
    assert result.objective == pytest.approx(optimum, rel=1e-9)
    assert result.objective == rota.evaluate(instance, result.solution).objective
    assert result.bound == pytest.approx(optimum, rel=1e-9)
    assert result.stats["gap"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_time_limited_cut_off_is_never_called_optimal(backend: str) -> None:
    require(backend)
    instance = random_cvrp(60, seed=1)
    result = rota.solve(instance, solver="milp", time_limit=0.3, seed=0, backend=backend)
    assert result.status in (rota.Status.FEASIBLE, rota.Status.NO_SOLUTION), result.stats
    assert result.runtime <= 0.3 + 1.0
    if result.bound is not None and result.objective is not None:
        assert result.bound <= result.objective


@pytest.mark.parametrize("backend", BACKENDS)
def test_time_out_inside_the_lazy_loop_without_a_start_is_honest(backend: str) -> None:
    require(backend)
    instance = random_atsp(150, seed=2)
    result = rota.solve(
        instance, solver="milp", time_limit=0.3, seed=0, backend=backend, greedy_start=False
    )
    assert result.status in (rota.Status.FEASIBLE, rota.Status.NO_SOLUTION), result.stats
    assert result.runtime <= 0.3 + 1.0
    if result.status is rota.Status.FEASIBLE:  # only a subtour-free MIP incumbent counts
        assert rota.evaluate(instance, result.solution).feasible


def test_greedy_start_gives_a_feasible_solution_and_a_valid_bound_on_a_cut_off() -> None:
    instance = random_cvrp(60, seed=1)
    result = rota.solve(instance, solver="milp", time_limit=0.5, seed=0)
    assert result.status is rota.Status.FEASIBLE
    assert rota.evaluate(instance, result.solution).feasible
    if result.bound is not None:
        assert result.bound <= result.objective
        assert result.stats["gap"] == pytest.approx(result.gap_to_bound)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bin_packing_infeasible_fleet_is_proven_infeasible(backend: str) -> None:
    require(backend)
    result = rota.solve(bin_packing_infeasible(), solver="milp", time_limit=1.0, backend=backend)
    assert result.status is rota.Status.INFEASIBLE, result.stats
    assert result.solution is None and result.objective is None


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
        rota.solve(instance, solver="milp", time_limit=0.5)


def test_bad_options_are_rejected_by_name() -> None:
    instance = tiny_instance("tsp")
    with pytest.raises(ValueError, match="unknown option 'gap'"):
        rota.solve(instance, solver="milp", gap=0.1)
    with pytest.raises(ValueError, match="backend='gurobi'"):
        rota.solve(instance, solver="milp", backend="gurobi")
    with pytest.raises(ValueError, match="threads=0"):
        rota.get_solver("milp").configure(threads=0)
    with pytest.raises(ValueError, match="formulation='mtz'"):
        rota.get_solver("milp").configure(formulation="mtz")


def test_configure_returns_a_new_solver() -> None:
    base = rota.get_solver("milp")
    configured = base.configure(backend="highs", threads=1)
    assert (configured.backend, configured.threads) == ("highs", 1)
    assert (base.backend, base.threads) == ("cbc", None)


@pytest.mark.parametrize("kind", ["tsp", "atsp"])
def test_flow_formulation_proves_the_same_optimum(kind: str) -> None:
    result = rota.solve(tiny_instance(kind), solver="milp", time_limit=1.0, formulation="flow")
    assert result.status is rota.Status.OPTIMAL
    assert result.objective == pytest.approx(brute_force_optimum(kind), rel=1e-9)


def test_flow_formulation_is_refused_beyond_tsp() -> None:
    with pytest.raises(rota.UnsupportedInstanceError, match="TSP/ATSP only"):
        rota.solve(tiny_instance("cvrp"), solver="milp", time_limit=0.5, formulation="flow")


def test_multi_depot_is_refused() -> None:
    reason = MILPSolver().supports(tiny_instance("mdvrp"))
    assert reason is not None and "depots" in reason


def test_cbc_bounds_are_lowered_by_their_printed_precision() -> None:
    assert printed_lower("4704.088") == pytest.approx(4704.0875)
    assert printed_lower("1.5e+03") == pytest.approx(1450.0)
    assert printed_lower("nan") is None


_PREPROCESSING_CUT_SHORT = """\
Cgl0000I Cut generators found to be infeasible! (or unbounded)
Pre-processing says infeasible or unbounded
Total time (CPU seconds):       3.41   (Wallclock seconds):       3.57
"""
_STOPPED_ON_TIME = """\
Result - Stopped on time limit

Objective value:                1388.00000000
Lower bound:                    1326.000
Total time (CPU seconds):       13.49   (Wallclock seconds):       13.85
"""
_OPTIMAL = """\
Result - Optimal solution found

Objective value:                39.00000000
Total time (CPU seconds):       0.05   (Wallclock seconds):       0.06
"""


def verdict(text: str, limit: float, **claims: bool):
    flags = {"claims_infeasible": False, "solution_optimal": False, "solution_feasible": False}
    flags.update(claims)
    return cbc_verdict(text, mip=True, time_limit=limit, interrupted=False, objective=39.0, **flags)


def test_cbc_infeasible_verdict_at_its_time_limit_is_not_a_proof() -> None:
    # CBC 2.10 on a feasible 400-city ATSP whose -sec limit struck in preprocessing
    assert verdict(_PREPROCESSING_CUT_SHORT, 1.0, claims_infeasible=True).status == "none"
    assert verdict(_PREPROCESSING_CUT_SHORT, 60.0, claims_infeasible=True).status == "infeasible"


def test_cbc_stopped_on_time_is_feasible_with_its_printed_bound() -> None:
    # PuLP's problem status is "Optimal" here; its solution status is only feasible
    outcome = verdict(_STOPPED_ON_TIME, 60.0, solution_feasible=True)
    assert outcome.status == "feasible"
    assert outcome.bound == pytest.approx(1325.9995)
    assert verdict(_OPTIMAL, 60.0, solution_optimal=True).status == "optimal"
    assert verdict(_OPTIMAL, 0.06, solution_optimal=True).status == "feasible"


def test_e_n13_k4_is_proven_at_its_known_optimum() -> None:
    instance = rota.read(instance_file("E-n13-k4.vrp"))
    result = rota.solve(instance, solver="milp", time_limit=1.0)
    assert result.status is rota.Status.OPTIMAL, result.stats
    assert result.objective == 247


def test_watchdog_kills_a_solver_process_that_ignores_its_interrupt(tmp_path) -> None:
    """CBC ignores SIGINT inside its root LP: the watchdog must still end the run."""
    import subprocess
    import sys
    import time

    from rota.solvers.milp.backends import Watchdog

    marker = str(tmp_path / "marker")
    stubborn = (
        "import signal, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    began = time.monotonic()
    with Watchdog(marker, limit=0.2, grace=0.0, kill_after=0.3) as watchdog:
        child = subprocess.Popen([sys.executable, "-c", stubborn, marker], stdout=subprocess.PIPE)
        assert child.stdout.readline() == b"ready\n"
        code = child.wait(timeout=30)
    assert watchdog.fired and code == -9
    assert time.monotonic() - began < 10
