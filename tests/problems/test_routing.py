"""RoutingInstance validation, exact evaluator values on tiny instances, evaluator properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rota.problems.routing import (
    Route,
    RoutingInstance,
    RoutingSolution,
    VehicleType,
    evaluate,
)

SQUARE = [[0, 2, 3], [2, 0, 4], [3, 4, 0]]


def _instance(**overrides) -> RoutingInstance:
    fields = {
        "distance": SQUARE,
        "vehicle_types": (VehicleType(capacity=10),),
        "demand": [0, 3, 4],
    }
    fields.update(overrides)
    return RoutingInstance(**fields)


# -- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"distance": [[0, 1, 2], [1, 0, 3]]}, r"distance must be square, got shape \(2, 3\)"),
        ({"distance": [[0, 1], [1, 0]]}, r"demand has length 3, expected 2"),
        (
            {"distance": [[0, -2, 3], [2, 0, 4], [3, 4, 0]]},
            r"distance\[0, 1\] is -2\.0, expected >= 0",
        ),
        (
            {"distance": [[0, 2, 3], [2, 0, math.nan], [3, 4, 0]]},
            r"distance\[1, 2\] is nan, expected a finite number",
        ),
        (
            {"distance": [[0, 2, 3], [2, 0, 4], [3, 4, math.inf]]},
            r"distance\[2, 2\] is inf, expected a finite number",
        ),
        ({"distance": [[0, 2, 3], [2, 5, 4], [3, 4, 0]]}, r"distance\[1, 1\] is 5\.0, expected 0"),
        ({"distance": [0, 1, 2]}, r"distance must be 2-dimensional, got shape \(3,\)"),
        ({"distance": [["a", 1], [1, 0]]}, r"distance must be numeric"),
        ({"demand": [0, 3, 12]}, r"client 2 has demand 12 > largest vehicle capacity 10"),
        ({"demand": [0, -3, 4]}, r"demand\[1\] is -3\.0, expected >= 0"),
        ({"demand": [1, 3, 4]}, r"depot 0 has demand 1\.0, expected 0"),
        ({"demand": [0, 3]}, r"demand has length 2, expected 3"),
        ({"service_time": [0, math.nan, 0]}, r"service_time\[1\] is nan"),
        (
            {"time_windows": [[0, 100], [50, 40], [0, 100]]},
            r"location 1 time window closes at 40\.0 before it opens at 50\.0",
        ),
        (
            {"time_windows": [[0, 100], [0, 100]]},
            r"time_windows has shape \(2, 2\), expected \(3, 2\)",
        ),
        ({"time_windows": [[0, 100], [-1, 100], [0, 100]]}, r"time_windows\[1, 0\] is -1\.0"),
        ({"duration": [[0, 1], [1, 0]]}, r"duration has shape \(2, 2\), expected \(3, 3\)"),
        ({"coords": [[0, 0], [1, 1]]}, r"coords has shape \(2, 2\), expected \(3, 2\)"),
        ({"coords": [[0, 0], [1, 1], [math.nan, 0]]}, r"coords contains a non-finite value"),
        ({"depots": (3,)}, r"depot 3 is not a location index in \[0, 3\)"),
        ({"depots": (-1,)}, r"depot -1 is not a location index"),
        ({"depots": ()}, r"depots must name at least one location"),
        ({"depots": (0, 0)}, r"depots contains duplicates: \[0, 0\]"),
        (
            {"depots": (0, 1, 2), "demand": [0, 0, 0]},
            r"instance has no clients: 3 locations, all depots",
        ),
        ({"distance": [[0]], "demand": [0]}, r"instance has no clients: 1 locations"),
        (
            {"distance": np.zeros((0, 0)), "demand": []},
            r"depot 0 is not a location index in \[0, 0\)",
        ),
        ({"vehicle_types": ()}, r"vehicle_types is empty"),
        ({"vehicle_types": ("truck",)}, r"vehicle_types\[0\] is str, expected VehicleType"),
        (
            {"vehicle_types": (VehicleType(capacity=10, depot=2),)},
            r"vehicle type 0 uses depot 2, which is not a depot",
        ),
        (
            {"vehicle_types": (VehicleType(capacity=4, count=1), VehicleType(capacity=2, count=1))},
            r"total demand 7 exceeds fleet capacity 6",
        ),
        (
            {"time_windows": [[0, 10], [0, 100], [0, 1]]},
            r"client 2 cannot be served within its time window \[0, 1\] from any depot",
        ),
        (
            {"time_windows": [[0, 10], [9, 100], [0, 100]]},
            r"client 1 cannot be served within its time window \[9, 100\]",
        ),
    ],
)
def test_invalid_instances_name_field_and_value(overrides: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        _instance(**overrides)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"capacity": 0}, r"vehicle capacity must be positive and finite, got 0"),
        ({"capacity": math.inf}, r"vehicle capacity must be positive and finite, got inf"),
        ({"count": 0}, r"vehicle count must be a positive integer or None, got 0"),
        ({"count": 1.5}, r"vehicle count must be a positive integer or None, got 1\.5"),
        ({"fixed_cost": -1}, r"vehicle fixed_cost must be finite and >= 0, got -1"),
        ({"unit_distance_cost": math.nan}, r"vehicle unit_distance_cost must be finite"),
        ({"depot": -2}, r"vehicle depot must be a location index, got -2"),
    ],
)
def test_invalid_vehicle_types(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        VehicleType(**kwargs)


def test_instance_is_immutable() -> None:
    inst = _instance()
    with pytest.raises(ValueError, match="read-only"):
        inst.distance[0, 1] = 7
    with pytest.raises(AttributeError):
        inst.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        inst.metadata["x"] = 1  # type: ignore[index]


def test_kinds() -> None:
    assert _instance().kind == "cvrp"
    assert _instance(distance=[[0, 2, 3], [1, 0, 4], [3, 4, 0]]).kind == "acvrp"
    assert _instance(time_windows=[[0, 100]] * 3).kind == "vrptw"
    tsp = _instance(vehicle_types=(VehicleType(count=1),), demand=None)
    assert tsp.kind == "tsp" and tsp.is_tsp and not tsp.is_capacitated
    fleet = (VehicleType(capacity=10, fixed_cost=5),)
    assert _instance(vehicle_types=fleet).kind == "hfvrp"
    assert _instance(depots=(0, 1), demand=[0, 0, 4]).kind == "mdcvrp"


# -- exact evaluator values -------------------------------------------------------------

ASYMMETRIC = [[0, 1, 10], [10, 0, 2], [3, 10, 0]]


def test_asymmetric_distance_follows_direction() -> None:
    inst = _instance(distance=ASYMMETRIC)
    forward = evaluate(inst, RoutingSolution.from_lists([[1, 2]]))
    backward = evaluate(inst, RoutingSolution.from_lists([[2, 1]]))
    assert forward.objective == 1 + 2 + 3
    assert backward.objective == 10 + 10 + 10
    assert forward.feasible and backward.feasible
    # without time windows the route still has a schedule: travel times are the distances
    assert forward.routes[0].load == (7.0,) and forward.routes[0].end_time == 6


def test_time_windows_with_waiting() -> None:
    inst = _instance(
        distance=[[0, 5, 7], [5, 0, 3], [7, 3, 0]],
        service_time=[0, 2, 1],
        time_windows=[[0, 100], [10, 20], [0, 30]],
        duration=[[0, 6, 7], [6, 0, 4], [7, 4, 0]],
    )
    report = evaluate(inst, RoutingSolution.from_lists([[1, 2]]))
    # reach 1 at 6, wait until 10, serve 2 -> 12, travel 4 -> 16, serve 1 -> 17, travel 7 -> 24
    assert report.feasible
    assert report.routes[0].end_time == 24
    assert report.objective == 5 + 3 + 7  # time windows do not change the distance objective


def test_late_arrival_at_client_and_depot() -> None:
    inst = _instance(
        distance=[[0, 5, 7], [5, 0, 3], [7, 3, 0]],
        time_windows=[[0, 14], [0, 20], [0, 7]],
    )
    report = evaluate(inst, RoutingSolution.from_lists([[1, 2]]))
    # reach 1 at 5, reach 2 at 8 (window closes at 7), back at 15 (depot closes at 14)
    assert [v.kind for v in report.violations] == ["time_window", "time_window"]
    assert report.violations[0].message == (
        "route 0 reaches client 2 at 8 after its window closes at 7"
    )
    assert report.violations[1].message == (
        "route 0 reaches the depot at 15 after its window closes at 14"
    )
    assert report.routes[0].end_time == 15 and report.objective == 15


def test_fixed_and_unit_costs() -> None:
    fleet = (
        VehicleType(capacity=10, count=1, fixed_cost=100, unit_distance_cost=2),
        VehicleType(capacity=5, count=2, fixed_cost=10, unit_distance_cost=0.5),
    )
    inst = _instance(vehicle_types=fleet)
    solution = RoutingSolution.from_lists([[1], [2], []], vehicle_types=[1, 0, 1])
    report = evaluate(inst, solution)
    # route [1] on type 1: 10 + 0.5 * 4; route [2] on type 0: 100 + 2 * 6; the empty route is free
    assert report.objective == 10 + 0.5 * 4 + 100 + 2 * 6
    assert report.distance == 4 + 6 and report.fixed_cost == 110
    assert [r.cost for r in report.routes] == [12, 112]
    assert report.num_routes == 2 and report.feasible


def test_fleet_size_and_capacity_violations() -> None:
    inst = _instance(vehicle_types=(VehicleType(capacity=5, count=2),))
    report = evaluate(inst, RoutingSolution.from_lists([[1], [2], [1, 2]]))
    kinds = sorted(v.kind for v in report.violations)
    assert kinds == ["capacity", "fleet", "repeated", "repeated"]
    messages = {str(v) for v in report.violations}
    assert "vehicle type 0 runs 3 routes but has 2 vehicles" in messages
    assert "route 2 carries 7 > capacity 5" in messages
    assert "client 1 is visited 2 times" in messages


def test_unvisited_unknown_and_bad_vehicle_type() -> None:
    inst = _instance()
    report = evaluate(
        inst,
        RoutingSolution((Route((1, 0, 7, -1)), Route((2,), vehicle_type=3))),
    )
    assert [str(v) for v in report.violations] == [
        "route 0 visits 0, which is not a client",
        "route 0 visits 7, which is not a client",
        "route 0 visits -1, which is not a client",
        "route 1 uses vehicle type 3, which does not exist",
        "client 2 is not visited",
    ]
    # the unknown visits are skipped: route 0 is depot -> 1 -> depot
    assert report.objective == 4 and not report.feasible


def test_empty_solution_visits_nobody() -> None:
    report = evaluate(_instance(), RoutingSolution(()))
    assert report.objective == 0
    assert [str(v) for v in report.violations] == [
        "client 1 is not visited",
        "client 2 is not visited",
    ]


def test_routes_start_at_their_depot() -> None:
    fleet = (VehicleType(capacity=10, depot=0), VehicleType(capacity=10, depot=1))
    inst = _instance(
        distance=[[0, 2, 3, 9], [2, 0, 4, 1], [3, 4, 0, 5], [9, 1, 5, 0]],
        depots=(0, 1),
        demand=[0, 0, 4, 3],
        vehicle_types=fleet,
    )
    report = evaluate(inst, RoutingSolution.from_lists([[2], [3]], vehicle_types=[0, 1]))
    assert report.feasible and report.objective == 3 + 3 + 1 + 1
    report = evaluate(inst, RoutingSolution.from_lists([[2, 1, 3]]))
    assert [v.kind for v in report.violations] == ["unknown_client"]


# -- properties ---------------------------------------------------------------------------

PROPERTY = settings(max_examples=50, deadline=None, derandomize=True)


@st.composite
def cvrp_instances(draw, symmetric: bool = False, fleet: bool = False) -> RoutingInstance:
    n = draw(st.integers(min_value=2, max_value=9))
    if symmetric:
        coords = np.array(
            draw(
                st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=n, max_size=n)
            )
        )
        diff = coords[:, None, :] - coords[None, :, :]
        distance = np.floor(np.hypot(diff[..., 0], diff[..., 1]) + 0.5)
    else:
        values = draw(st.lists(st.integers(0, 100), min_size=n * n, max_size=n * n))
        distance = np.array(values, dtype=float).reshape(n, n)
        np.fill_diagonal(distance, 0)
    demand = [0] + draw(st.lists(st.integers(1, 10), min_size=n - 1, max_size=n - 1))
    capacity = draw(st.integers(10, 30))
    if fleet:
        types = tuple(
            VehicleType(
                capacity=capacity,
                fixed_cost=draw(st.integers(0, 50)),
                unit_distance_cost=draw(st.sampled_from([0.5, 1.0, 2.0, 3.0])),
            )
            for _ in range(draw(st.integers(1, 3)))
        )
    else:
        types = (VehicleType(capacity=capacity),)
    return RoutingInstance(distance=distance, vehicle_types=types, demand=demand)


@st.composite
def instance_and_routes(draw, symmetric: bool = False, fleet: bool = False):
    """An instance and a solution that visits every client once, in random routes."""
    inst = draw(cvrp_instances(symmetric=symmetric, fleet=fleet))
    order = draw(st.permutations(list(inst.clients)))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=len(order))))
    bounds = [0, *[c for c in cuts if c < len(order)], len(order)]
    routes = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    types = [draw(st.integers(0, len(inst.vehicle_types) - 1)) for _ in routes]
    return inst, RoutingSolution.from_lists(routes, types)


def _route_cost(inst: RoutingInstance, route: Route) -> float:
    """Independent re-computation: a plain loop over the path."""
    if not route.visits:
        return 0.0
    vt = inst.vehicle_types[route.vehicle_type]
    path = [vt.depot, *route.visits, vt.depot]
    distance = 0.0
    for a, b in zip(path[:-1], path[1:], strict=True):
        distance += float(inst.distance[a][b])
    return vt.fixed_cost + vt.unit_distance_cost * distance


@PROPERTY
@given(instance_and_routes(fleet=True))
def test_objective_is_the_sum_of_route_costs(case) -> None:
    inst, solution = case
    report = evaluate(inst, solution)
    assert report.objective == pytest.approx(sum(_route_cost(inst, r) for r in solution.routes))
    assert not any(v.kind in ("unvisited", "repeated", "unknown_client") for v in report.violations)


@PROPERTY
@given(instance_and_routes(fleet=True), st.randoms(use_true_random=False))
def test_route_order_does_not_matter(case, rng) -> None:
    inst, solution = case
    routes = list(solution.routes)
    rng.shuffle(routes)
    before, after = evaluate(inst, solution), evaluate(inst, RoutingSolution(tuple(routes)))
    assert after.objective == pytest.approx(before.objective)
    assert sorted(v.kind for v in after.violations) == sorted(v.kind for v in before.violations)


@PROPERTY
@given(instance_and_routes(symmetric=True), st.data())
def test_reversing_a_route_keeps_its_distance_on_symmetric_instances(case, data) -> None:
    inst, solution = case
    assert inst.is_symmetric
    k = data.draw(st.integers(0, len(solution.routes) - 1))
    routes = list(solution.routes)
    routes[k] = Route(tuple(reversed(routes[k].visits)), routes[k].vehicle_type)
    assert evaluate(inst, RoutingSolution(tuple(routes))).objective == pytest.approx(
        evaluate(inst, solution).objective
    )


@PROPERTY
@given(cvrp_instances(), st.data())
def test_capacity_feasible_split_is_feasible(inst, data) -> None:
    order = data.draw(st.permutations(list(inst.clients)))
    capacity = inst.vehicle_types[0].capacity
    routes: list[list[int]] = [[]]
    load = 0.0
    for client in order:
        if load + inst.demand[client] > capacity:
            routes.append([])
            load = 0.0
        routes[-1].append(int(client))
        load += inst.demand[client]
    report = evaluate(inst, RoutingSolution.from_lists(routes))
    assert report.feasible, report.violations
    assert max(r.load[0] for r in report.routes) <= capacity


@PROPERTY
@given(instance_and_routes(), st.data())
def test_removing_a_client_is_reported_unvisited(case, data) -> None:
    inst, solution = case
    client = data.draw(st.sampled_from(list(inst.clients)))
    routes = [
        Route(tuple(v for v in r.visits if v != client), r.vehicle_type) for r in solution.routes
    ]
    report = evaluate(inst, RoutingSolution(tuple(routes)))
    unvisited = [v for v in report.violations if v.kind == "unvisited"]
    assert [str(v) for v in unvisited] == [f"client {client} is not visited"]


# -- edge cases of validation ---------------------------------------------------------


def test_bare_vehicle_type_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="vehicle_types"):
        _instance(vehicle_types=VehicleType(capacity=10))


def test_fractional_visit_is_refused() -> None:
    with pytest.raises(ValueError, match="1.5"):
        Route((1.5,))


def test_identical_vehicles_at_two_depots_are_not_heterogeneous() -> None:
    fleet = (VehicleType(capacity=10, depot=0), VehicleType(capacity=10, depot=1))
    inst = _instance(depots=(0, 1), demand=[0, 0, 4], vehicle_types=fleet)
    assert inst.kind == "mdcvrp"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"depots": (1.5,)}, "depot 1.5"),
        ({"vehicle_types": (VehicleType(capacity=10),), "depots": ("a",)}, "depot 'a'"),
    ],
)
def test_non_integer_depot_is_refused(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        _instance(**kwargs)


def test_vehicle_fields_are_numbers_and_counts_integers() -> None:
    with pytest.raises(ValueError, match="capacity must be a number, got '5'"):
        VehicleType(capacity="5")
    assert isinstance(VehicleType(count=2.0).count, int)
