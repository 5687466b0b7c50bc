"""OR-Tools' model of the routing features, against rota's evaluator.

Random instances carry the features OR-Tools models. OR-Tools restores random
routes (feasible or not) in the model rota's adapter builds: it must accept
exactly the routes the evaluator finds feasible, at the evaluator's cost. Then
OR-Tools solves the instance, and its solution must pass the evaluator at the
engine's cost. Integer data keeps the scaling exact, so costs agree to the unit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rota
from rota.problems.routing import RoutingInstance, VehicleType

pywrapcp = pytest.importorskip("ortools.constraint_solver.pywrapcp")
from rota.solvers.ortools import ORToolsSolver, _Model  # noqa: E402
from rota.solvers.scaling import scale_instance  # noqa: E402

from .test_pyvrp_features import random_instance, random_routes  # noqa: E402


def ortools_instance(rng: np.random.Generator) -> RoutingInstance | None:
    """A random feature instance reduced to what OR-Tools models; None if infeasible."""
    try:
        instance = random_instance(rng)
        collects = instance.pickup is not None or bool(instance.shipments)
        types = tuple(
            dataclasses.replace(vt, reload_depots=(), max_reloads=None)
            for vt in instance.vehicle_types
        )
        return dataclasses.replace(
            instance,
            # deliveries from the depot beside collected loads: one or the other
            demand=np.zeros_like(instance.demand) if collects else instance.demand,
            release_time=None,
            linehaul_first=False,
            vehicle_types=types,
        )
    except ValueError:
        return None  # a client no vehicle can carry, say: validation says why


def ortools_verdict(instance: RoutingInstance, routes: rota.RoutingSolution) -> float | None:
    """OR-Tools' cost of ``routes``; None when its model rejects them."""
    scaled = scale_instance(instance)
    model = _Model(pywrapcp, instance, scaled)
    assignment = model.assignment(routes.routes, pywrapcp.DefaultRoutingSearchParameters())
    if assignment is None or model.dropped(assignment):
        return None
    return assignment.ObjectiveValue() / scaled.objective_scale


CHECK = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_the_reduced_instances_keep_the_features_ortools_models() -> None:
    seen: set[str] = set()
    for seed in range(200):
        instance = ortools_instance(np.random.default_rng(seed))
        if instance is not None:
            assert ORToolsSolver().supports(instance) is None, instance.features
            seen.update(instance.features)
    assert seen == ORToolsSolver.capabilities.features


@CHECK
@given(seed=st.integers(0, 2**32 - 1))
def test_ortools_accepts_exactly_the_feasible_routes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    instance = ortools_instance(rng)
    if instance is None:
        return
    routes = random_routes(rng, instance)
    cost = ortools_verdict(instance, routes)
    report = rota.evaluate(instance, routes)
    assert (cost is not None) == report.feasible, [str(v) for v in report.violations]
    if cost is not None:
        assert report.objective == pytest.approx(cost, abs=1e-9)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_ortools_solutions_pass_the_evaluator_at_the_engines_cost(seed: int) -> None:
    instance = ortools_instance(np.random.default_rng(seed))
    if instance is None:
        return
    result = rota.solve(instance, solver="ortools", stop="time=2,iterations=60", seed=0)
    if result.status is not rota.Status.FEASIBLE:
        assert result.status is rota.Status.NO_SOLUTION and result.solution is None
        return
    report = rota.evaluate(instance, result.solution)
    assert report.feasible
    scale = result.stats["distance_scale"] * result.stats["cost_scale"]
    assert report.objective == pytest.approx(result.stats["engine_objective"] / scale, abs=1e-9)
    assert result.objective == pytest.approx(report.objective, abs=1e-9)


@pytest.mark.parametrize(
    ("feature", "change"),
    [
        ("release times", {"release_time": np.array([0, 5, 0])}),
        ("linehaul first", {"linehaul_first": True, "pickup": np.array([0, 0, 1])}),
    ],
)
def test_refuses_what_it_does_not_model(feature: str, change: dict) -> None:
    instance = RoutingInstance(
        distance=np.array([[0, 2, 3], [2, 0, 4], [3, 4, 0]], dtype=float),
        demand=np.array([0, 1, 0]),
        vehicle_types=(VehicleType(capacity=5),),
        **change,
    )
    assert feature in ORToolsSolver().supports(instance)


def test_refuses_deliveries_beside_pickups() -> None:
    instance = RoutingInstance(
        distance=np.array([[0, 2, 3], [2, 0, 4], [3, 4, 0]], dtype=float),
        demand=np.array([0, 1, 0]),
        pickup=np.array([0, 0, 1]),
        vehicle_types=(VehicleType(capacity=5),),
    )
    assert "pickups or shipments" in ORToolsSolver().supports(instance)
