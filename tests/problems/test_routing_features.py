"""The routing features of real fleets, on hand-made cases with exact expected values."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pytest

import rota
from rota.problems import dumps_instance, instance_from_dict
from rota.problems.routing import (
    ClientGroup,
    RoutingInstance,
    RoutingSolution,
    Shipment,
    VehicleType,
    evaluate,
    schedule,
    schedules,
)
from rota.problems.routing.plot import plot_routes

from ..solvers.conformance import tiny_instance

#: Five locations on a line at 0, 1, 2, 3, 4: distance |i - j|.
LINE = np.abs(np.subtract.outer(np.arange(5.0), np.arange(5.0)))


def _instance(**fields) -> RoutingInstance:
    base = {"distance": LINE, "vehicle_types": (VehicleType(capacity=10),)}
    return RoutingInstance(**(base | fields))


def _kinds(instance: RoutingInstance, *routes, types=None) -> list[str]:
    solution = RoutingSolution.from_lists(list(routes), types)
    return [v.kind for v in evaluate(instance, solution).violations]


def test_several_load_dimensions_are_checked_one_by_one():
    inst = _instance(
        demand=[[0, 0], [4, 1], [4, 1], [1, 2], [0, 0]],
        vehicle_types=(VehicleType(capacity=(10, 3)),),
        required=[True, True, True, True, False],
    )
    assert inst.load_dimensions == 2 and "multi_load" in inst.features
    assert _kinds(inst, [1, 2, 3]) == ["capacity"]  # 9 <= 10 but 4 > 3
    report = evaluate(inst, RoutingSolution.from_lists([[1, 2], [3]]))
    assert report.feasible and report.routes[0].load == (8.0, 2.0)


def test_pickups_and_deliveries_share_the_vehicle_all_along():
    inst = _instance(demand=[0, 5, 5, 0, 0], pickup=[0, 6, 0, 0, 0],
                     required=[True, True, True, False, False])  # fmt: skip
    # leaves with 10; at 1 drops 5 and takes 6: 11 on board
    assert _kinds(inst, [1, 2]) == ["capacity"]
    report = evaluate(inst, RoutingSolution.from_lists([[2, 1]]))
    assert report.feasible and report.routes[0].load == (10.0,)
    loads = [v.load[0] for v in report.routes[0].visits]
    assert loads == [10.0, 5.0, 6.0, 6.0]


def test_shipments_ride_from_pickup_to_delivery_on_one_trip():
    inst = _instance(shipments=(Shipment(1, 3, 7), Shipment(2, 4, 4)))
    assert _kinds(inst, [1, 3, 2, 4]) == []
    assert _kinds(inst, [1, 2, 3, 4]) == ["capacity"]  # 7 + 4 on board
    assert _kinds(inst, [3, 1], [2, 4]) == ["shipment"]  # delivered before picked up
    assert _kinds(inst, [1], [3], [2, 4]) == ["shipment"]  # split over two routes


def test_release_times_hold_the_trip_at_the_depot():
    inst = _instance(
        time_windows=[[0, 100], [0, 20], [0, 100], [0, 100], [0, 100]],
        release_time=[0, 0, 15, 0, 0],
        required=[True, True, True, False, False],
    )
    report = schedule(inst, RoutingSolution.from_lists([[2, 1]]).routes[0])
    assert report.start_time == 15 and [v.start for v in report.visits] == [15, 17, 18, 19]
    assert _kinds(inst, [1, 2]) == []  # leaves at 15: client 1 at 16, in time
    late = _instance(
        time_windows=[[0, 100], [0, 10], [0, 100], [0, 100], [0, 100]],
        release_time=[0, 0, 15, 0, 0],
        required=[True, True, True, False, False],
    )
    assert _kinds(late, [1, 2]) == ["time_window"]
    routes = RoutingSolution.from_lists([[2, 1], [3], [4, 3]]).routes
    assert schedules(inst, routes) == [schedule(inst, route) for route in routes]
    assert _kinds(late, [1], [2]) == []  # two trips, two departures


def test_reloads_start_new_trips_only_where_allowed():
    fleet = (VehicleType(capacity=5, reload_depots=(0,), max_reloads=1),)
    inst = _instance(demand=[0, 4, 4, 4, 0], vehicle_types=fleet,
                     required=[True, True, True, True, False])  # fmt: skip
    report = evaluate(inst, RoutingSolution.from_lists([[1, 0, 2, 0, 3]]))
    assert [v.kind for v in report.violations] == ["max_reloads"]
    assert report.routes[0].trips == ((1,), (2,), (3,))
    assert report.distance == 2 + 4 + 6
    assert _kinds(inst, [1, 0, 2], [3]) == []
    two_depots = _instance(depots=(0, 4), demand=[0, 4, 4, 4, 0], vehicle_types=fleet)
    # a reload where none is allowed does not count: one trip of 8 > 5
    assert _kinds(two_depots, [1, 4, 2], [3]) == ["reload_depot", "capacity"]
    plain = _instance(demand=[0, 4, 4, 4, 0], required=[True, True, True, True, False])
    assert _kinds(plain, [1, 0, 2, 3]) == ["unknown_client", "capacity"]


def test_distance_and_duration_limits_and_costs():
    fleet = (VehicleType(capacity=10, max_distance=6, max_duration=7, unit_duration_cost=2),)
    inst = _instance(
        vehicle_types=fleet,
        time_windows=[[0, 100], [0, 100], [0, 100], [10, 100], [0, 100]],
        required=[True, False, False, True, False],
        prize=[0, 0, 0, 0, 0],
    )
    report = evaluate(inst, RoutingSolution.from_lists([[3]]))
    # leaving at 7 instead of 0 removes the wait at client 3 (open at 10): 6 of duration
    assert report.feasible and report.routes[0].duration == 6
    assert report.objective == 6 + 2 * 6 and report.duration_cost == 12
    assert _kinds(inst, [1, 3]) == []  # waiting after client 1 can still be cut: 6
    assert _kinds(inst, [4, 3]) == ["max_distance", "max_duration"]  # 8 long, 8 to 10 -> back 13


def test_prizes_pay_for_optional_clients_left_out():
    inst = _instance(prize=[0, 0, 5, 9, 0], required=[True, True, False, False, False])
    report = evaluate(inst, RoutingSolution.from_lists([[1, 3]]))
    assert report.feasible and report.uncollected_prizes == 5
    assert report.objective == 6 + 5
    assert _kinds(inst, [3]) == ["unvisited"]  # client 1 is required


def test_groups_take_exactly_or_at_most_one():
    required = [True, True, False, False, False]
    exact = _instance(required=required, groups=(ClientGroup((2, 3)),))
    assert _kinds(exact, [1, 2]) == []
    assert _kinds(exact, [1]) == ["group"]
    assert _kinds(exact, [1, 2, 3]) == ["group"]
    loose = _instance(required=required, groups=(ClientGroup((2, 3), required=False),))
    assert _kinds(loose, [1]) == [] and _kinds(loose, [1, 3, 2]) == ["group"]


def test_allowed_clients_and_end_depots():
    fleet = (VehicleType(capacity=10, allowed_clients=(1, 2)), VehicleType(capacity=10,
             depot=0, end_depot=4))  # fmt: skip
    inst = _instance(depots=(0, 4), vehicle_types=fleet)
    assert _kinds(inst, [3], [1, 2], types=[0, 1]) == ["not_allowed"]
    report = evaluate(inst, RoutingSolution.from_lists([[1, 2], [3]], [0, 1]))
    assert report.feasible and report.routes[1].path == (0, 3, 4) and report.distance == 4 + 4


def test_linehauls_come_before_backhauls():
    inst = _instance(demand=[0, 3, 0, 3, 0], pickup=[0, 0, 3, 0, 0], linehaul_first=True,
                     required=[True, True, True, True, False])  # fmt: skip
    assert _kinds(inst, [1, 3, 2]) == []
    assert _kinds(inst, [1, 2, 3]) == ["backhaul_order"]
    assert _kinds(inst, [3, 2], [1]) == []  # each route on its own is in order
    assert _kinds(inst, [2], [3, 1]) == ["backhaul_order"]  # a trip of backhauls alone


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"required": [True, True, True, False, False], "groups": (ClientGroup((2, 3)),)},
         "groups[0] holds client 2, which is required"),
        ({"shipments": (Shipment(1, 9, 1),)}, "shipments[0] names 9, which is not a client"),
        ({"required": [True, False, True, True, True], "shipments": (Shipment(1, 2, 1),)},
         "shipments[0] visits client 1, which is optional"),
        ({"demand": [[0, 0], [1, 1], [1, 1], [1, 1], [1, 1]],
          "vehicle_types": (VehicleType(capacity=(5, 5, 5)),)},
         "demand has 2 load dimensions, other loads have 3"),
        ({"vehicle_types": (VehicleType(capacity=10, reload_depots=(2,)),)},
         "vehicle type 0 reload depot 2 is not a depot"),
        ({"vehicle_types": (VehicleType(capacity=10, allowed_clients=(0,)),)},
         "vehicle type 0 allows 0, which is not a client"),
        ({"demand": [0, 11, 0, 0, 0]}, "client 1 has demand 11 > largest vehicle capacity 10"),
        ({"pickup": [0, 0, 12, 0, 0]}, "client 2 has demand 12 > largest vehicle capacity 10"),
        ({"release_time": [0, -1, 0, 0, 0]}, "release_time[1] is -1.0, expected >= 0"),
        ({"required": [1, 1, 1, 1, 1]}, "required must hold True or False"),
    ],
)  # fmt: skip
def test_invalid_features_name_the_field(fields, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _instance(**fields)


def test_every_feature_round_trips_through_json():
    fleet = (
        VehicleType(capacity=(10, 4), count=2, depot=0, end_depot=4, max_distance=30,
                    max_duration=40, unit_duration_cost=0.5, allowed_clients=(1, 2, 3),
                    reload_depots=(0, 4), max_reloads=2, name="van"),
    )  # fmt: skip
    inst = _instance(
        depots=(0, 4), vehicle_types=fleet, demand=[[0, 0], [1, 1], [2, 0], [0, 1], [0, 0]],
        pickup=[[0, 0], [0, 0], [0, 1], [1, 0], [0, 0]], release_time=[0, 1, 2, 3, 0],
        prize=[0, 4, 0, 0, 0], required=[True, False, True, True, True],
        shipments=(Shipment(2, 3, (1, 1)),), linehaul_first=False,
    )  # fmt: skip
    back = instance_from_dict(json.loads(dumps_instance(inst)), "json")
    assert back.vehicle_types == inst.vehicle_types and back.shipments == inst.shipments
    for name in ("demand", "pickup", "release_time", "prize", "required"):
        np.testing.assert_array_equal(getattr(back, name), getattr(inst, name))
    assert back.features == inst.features


def test_plots_draw_the_evaluators_paths_and_a_schedule(tmp_path):
    for kind, width in (("end_depots", 960), ("reloads", 960), ("duration_costs", 1800)):
        instance = tiny_instance(kind)
        solution = rota.solve(instance, solver="pyvrp", time_limit=0.2, seed=1).solution
        path = plot_routes(instance, solution, tmp_path / f"{kind}.png")
        # timed instances get the schedule beside the map
        assert matplotlib.image.imread(path).shape[1] == width, kind
