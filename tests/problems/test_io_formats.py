"""The VRPLIB, TSPLIB and Solomon readers on tiny hand-written files with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rota
from rota.problems import (
    dumps_instance,
    read,
    read_set,
    read_solution,
    sniff,
    write_instance,
    write_solution,
)
from rota.problems.reference import Reference, reference_cost
from rota.problems.routing import RoutingInstance, RoutingSolution, VehicleType
from rota.problems.routing.io.vrplib import distance_matrix

CVRP = """\
NAME : tiny
TYPE : CVRP
DIMENSION : 4
EDGE_WEIGHT_TYPE : EUC_2D
CAPACITY : 10
NODE_COORD_SECTION
1 0 0
2 3 4
3 6 8
4 0 5
DEMAND_SECTION
1 0
2 4
3 5
4 3
DEPOT_SECTION
1
-1
EOF
"""

# A symmetric 4x4 matrix and its five encodings.
MATRIX = np.array([[0, 1, 2, 3], [1, 0, 4, 5], [2, 4, 0, 6], [3, 5, 6, 0]], dtype=float)
ENCODINGS = {
    "FULL_MATRIX": "0 1 2 3\n1 0 4 5\n2 4 0 6\n3 5 6 0",
    "LOWER_ROW": "1\n2 4\n3 5 6",
    "LOWER_DIAG_ROW": "0\n1 0\n2 4 0\n3 5 6 0",
    "UPPER_ROW": "1 2 3\n4 5\n6",
    "UPPER_DIAG_ROW": "0 1 2 3\n0 4 5\n0 6\n0",
    "UPPER_COL": "1\n2 4\n3 5 6",
    "LOWER_COL": "1 2 3\n4 5\n6",
}

SOLOMON = """\
TINY

VEHICLE
NUMBER     CAPACITY
  2         10

CUSTOMER
CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME

    0      0         0          0          0       100          0
    1      3         4          4          0        50          1
    2      6         8          5         10        60          1
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_cvrp_rounds_to_nearest_integer(tmp_path: Path) -> None:
    inst = read(_write(tmp_path, "tiny.vrp", CVRP))
    # d(1,3) = hypot(3, 1) = 3.16 -> 3 and d(2,3) = hypot(6, 3) = 6.71 -> 7
    expected = [[0, 5, 10, 5], [5, 0, 5, 3], [10, 5, 0, 7], [5, 3, 7, 0]]
    np.testing.assert_array_equal(inst.distance, expected)
    np.testing.assert_array_equal(inst.demand, [0, 4, 5, 3])
    assert inst.kind == "cvrp" and inst.name == "tiny"
    assert inst.vehicle_types == (VehicleType(capacity=10, count=None),)


def test_spacing_and_tabs_around_colons_vary(tmp_path: Path) -> None:
    text = CVRP.replace("NAME : tiny", "NAME:\ttiny\t").replace("CAPACITY : 10", "CAPACITY :10")
    text = text.replace("DIMENSION : 4", "  DIMENSION\t:   4  ").replace("EOF\n", "")
    inst = read(_write(tmp_path, "tiny.vrp", text))
    assert inst.num_locations == 4 and inst.vehicle_types[0].capacity == 10


def test_rounding_override_gives_exact_distances(tmp_path: Path) -> None:
    from rota.problems.routing.io.vrplib_model import read_instance

    inst = read_instance(_write(tmp_path, "tiny.vrp", CVRP), rounding="exact")
    assert inst.distance[1, 3] == pytest.approx(np.hypot(3, 1))
    assert inst.metadata["rounding"] == "exact"


def test_depot_other_than_first_node(tmp_path: Path) -> None:
    text = CVRP.replace("1 0\n2 4", "1 4\n2 0").replace("DEPOT_SECTION\n1\n", "DEPOT_SECTION\n2\n")
    inst = read(_write(tmp_path, "tiny.vrp", text))
    assert inst.depots == (1,) and inst.vehicle_types[0].depot == 1
    np.testing.assert_array_equal(inst.clients, [0, 2, 3])


@pytest.mark.parametrize("fmt", sorted(ENCODINGS))
def test_every_edge_weight_format(tmp_path: Path, fmt: str) -> None:
    text = (
        f"NAME : m\nTYPE : TSP\nDIMENSION : 4\nEDGE_WEIGHT_TYPE : EXPLICIT\n"
        f"EDGE_WEIGHT_FORMAT : {fmt}\nEDGE_WEIGHT_SECTION\n{ENCODINGS[fmt]}\nEOF\n"
    )
    inst = read(_write(tmp_path, "m.tsp", text))
    np.testing.assert_array_equal(inst.distance, MATRIX)
    assert inst.kind == "tsp"


def test_numbers_wrap_over_lines_arbitrarily(tmp_path: Path) -> None:
    wrapped = "0 1\n2 3 1 0 4\n5 2\n4 0 6 3\n5 6\n0\n"
    text = (
        "NAME : w\nTYPE : ATSP\nDIMENSION : 4\nEDGE_WEIGHT_TYPE : EXPLICIT\n"
        f"EDGE_WEIGHT_FORMAT : FULL_MATRIX\nEDGE_WEIGHT_SECTION\n{wrapped}EOF\n"
    )
    np.testing.assert_array_equal(read(_write(tmp_path, "w.atsp", text)).distance, MATRIX)


def test_atsp_diagonal_is_not_a_cost(tmp_path: Path) -> None:
    text = (
        "NAME : a\nTYPE : ATSP\nDIMENSION : 3\nEDGE_WEIGHT_TYPE : EXPLICIT\n"
        "EDGE_WEIGHT_FORMAT : FULL_MATRIX\nEDGE_WEIGHT_SECTION\n"
        "100000000 1 2\n3 100000000 4\n5 6 100000000\nEOF\n"
    )
    inst = read(_write(tmp_path, "a.atsp", text))
    np.testing.assert_array_equal(inst.distance, [[0, 1, 2], [3, 0, 4], [5, 6, 0]])
    assert inst.kind == "atsp"
    tour = RoutingSolution.from_lists([[1, 2]])
    assert rota.evaluate(inst, tour).objective == 1 + 4 + 5


@pytest.mark.parametrize(
    ("weight_type", "coords", "expected"),
    [
        ("CEIL_2D", [[0, 0], [1, 1]], 2),  # ceil(1.41)
        ("ATT", [[0, 0], [10, 0]], 4),  # sqrt(100 / 10) = 3.16 rounds to 3 < 3.16, so 4
        ("ATT", [[0, 0], [10, 30]], 10),  # sqrt(1000 / 10) is exactly 10
        ("EUC_2D", [[0, 0], [1, 2]], 2),  # 2.24 -> 2
        ("EUC_2D", [[0, 0], [1.5, 2]], 3),  # 2.5 rounds up
    ],
)
def test_coordinate_distance_conventions(
    tmp_path: Path, weight_type: str, coords: list, expected: float
) -> None:
    rows = "".join(f"{i + 1} {x} {y}\n" for i, (x, y) in enumerate(coords))
    text = (
        f"NAME : c\nTYPE : TSP\nDIMENSION : 2\nEDGE_WEIGHT_TYPE : {weight_type}\n"
        f"NODE_COORD_SECTION\n{rows}EOF\n"
    )
    inst = read(_write(tmp_path, "c.tsp", text))
    assert inst.distance[0, 1] == inst.distance[1, 0] == expected


def test_floor1_truncates_to_one_decimal() -> None:
    coords = np.array([[0.0, 0.0], [1.0, 3.0], [3.0, 4.0]])
    d = distance_matrix(coords, "floor1")
    assert d[0, 1] == pytest.approx(3.1, abs=1e-12)  # 3.162: truncated, not rounded to 3.2
    assert d[0, 2] == 5.0


def test_vrplib_time_windows_and_service_times(tmp_path: Path) -> None:
    text = CVRP.replace(
        "DEPOT_SECTION",
        "SERVICE_TIME_SECTION\n1 0\n2 1\n3 2\n4 3\n"
        "TIME_WINDOW_SECTION\n1 0 100\n2 0 50\n3 10 60\n4 0 90\nDEPOT_SECTION",
    ).replace("TYPE : CVRP", "TYPE : VRPTW")
    inst = read(_write(tmp_path, "tw.vrp", text))
    assert inst.kind == "vrptw"
    np.testing.assert_array_equal(inst.service_time, [0, 1, 2, 3])
    np.testing.assert_array_equal(inst.time_windows[2], [10, 60])
    scalar = CVRP.replace("CAPACITY : 10", "CAPACITY : 10\nSERVICE_TIME : 7")
    np.testing.assert_array_equal(
        read(_write(tmp_path, "s.vrp", scalar)).service_time, [0, 7, 7, 7]
    )


HFVRP = """\
NAME: fleet
TYPE: HFVRP
DIMENSION: 3
VEHICLES: 4
EDGE_WEIGHT_TYPE: EUC_2D
NODE_COORD_SECTION
1 0 0
2 3 4
3 0 1.5
DEMAND_SECTION
1 0
2 5
3 8
CAPACITY_SECTION
1 5
2 5
3 10
4 5
VEHICLES_FIXED_COST_SECTION
1 1000
2 1000
3 2500
4 1000
VEHICLES_UNIT_DISTANCE_COST_SECTION
1 100
2 100
3 150
4 100
DEPOT_SECTION
1
-1
EOF
"""


def test_hfvrp_groups_consecutive_vehicles_and_scales_costs(tmp_path: Path) -> None:
    inst = read(_write(tmp_path, "fleet.vrp", HFVRP))
    assert inst.kind == "hfvrp"
    fleet = [
        (vt.capacity, vt.count, vt.fixed_cost, vt.unit_distance_cost) for vt in inst.vehicle_types
    ]
    assert fleet == [(5, 2, 10, 1.0), (10, 1, 25, 1.5), (5, 1, 10, 1.0)]
    assert inst.distance[0, 2] == 1.5  # exact, not rounded
    # slot 3 (type 1) carries client 2 (demand 8); slot 1 (type 0) carries client 1
    sol = _write(tmp_path, "fleet.sol", "Route #1: 1\nRoute #2:\nRoute #3: 2\nRoute #4:\n")
    solution = read_solution(sol, inst)
    assert [r.vehicle_type for r in solution.routes] == [0, 0, 1, 2]
    report = rota.evaluate(inst, solution)
    assert report.feasible
    assert report.objective == pytest.approx((10 + 1.0 * 10) + (25 + 1.5 * 3.0))


def test_hfvrp_writer_places_routes_in_slots(tmp_path: Path) -> None:
    inst = read(_write(tmp_path, "fleet.vrp", HFVRP))
    solution = RoutingSolution.from_lists([[2], [1]], vehicle_types=[1, 2])
    target = tmp_path / "out.sol"
    write_solution(solution, target, inst)
    lines = target.read_text().splitlines()
    assert lines[:4] == ["Route #1:", "Route #2:", "Route #3: 2", "Route #4: 1"]
    assert lines[4] == f"Cost {rota.evaluate(inst, solution).objective!r}"
    back = read_solution(target, inst)
    assert [(r.visits, r.vehicle_type) for r in back.nonempty_routes] == [((2,), 1), ((1,), 2)]
    assert rota.evaluate(inst, back).objective == rota.evaluate(inst, solution).objective


def test_hfvrp_writer_refuses_routes_beyond_the_fleet(tmp_path: Path) -> None:
    inst = read(_write(tmp_path, "fleet.vrp", HFVRP))
    solution = RoutingSolution.from_lists([[1], [2]], vehicle_types=[1, 1])
    with pytest.raises(ValueError, match=r"out\.sol: more than 1 routes use vehicle type 1"):
        write_solution(solution, tmp_path / "out.sol", inst)


def test_sol_writer_refuses_a_depot_other_than_zero(tmp_path: Path) -> None:
    text = CVRP.replace("1 0\n2 4", "1 4\n2 0").replace("DEPOT_SECTION\n1\n", "DEPOT_SECTION\n2\n")
    inst = read(_write(tmp_path, "tiny.vrp", text))
    solution = RoutingSolution.from_lists([[0, 2, 3]])
    with pytest.raises(ValueError, match=r"out\.sol: tiny has depots \[1\]"):
        write_solution(solution, tmp_path / "out.sol", inst)
    write_solution(solution, tmp_path / "out.json", inst)  # the JSON format has no such limit
    assert read_solution(tmp_path / "out.json", inst) == solution


def test_sol_cost_line_variants(tmp_path: Path) -> None:
    inst = read(_write(tmp_path, "tiny.vrp", CVRP))
    for text in ("Route #1: 1 2\nRoute #2: 3\nCost 30\n", "Route #1: 1 2\nRoute #2: 3\nCost: 30.0"):
        solution = read_solution(_write(tmp_path, "t.sol", text), inst)
        assert rota.evaluate(inst, solution).objective == 30  # 5 + 5 + 10 and 5 + 5
        assert reference_cost(tmp_path / "t.vrp") == Reference(30, "bks", str(tmp_path / "t.sol"))


def test_sol_writer_without_instance_and_given_cost(tmp_path: Path) -> None:
    target = tmp_path / "x.sol"
    write_solution(RoutingSolution.from_lists([[1, 2], [], [3]]), target, cost=12.5)
    assert target.read_text() == "Route #1: 1 2\nRoute #2:\nRoute #3: 3\nCost 12.5\n"
    write_solution(RoutingSolution.from_lists([[3]]), target)
    assert target.read_text() == "Route #1: 3\n"


def test_result_is_written_whole(tmp_path: Path) -> None:
    inst = read(_write(tmp_path, "tiny.vrp", CVRP))
    solution = RoutingSolution.from_lists([[1, 2], [3]])
    result = rota.Result(30.0, solution, rota.Status.FEASIBLE, 0.1, "hand", 0)
    rota.write(result, tmp_path / "r.json", inst)
    assert read_solution(tmp_path / "r.json") == solution
    assert rota.read_result(tmp_path / "r.json").objective == 30.0
    rota.write(result, tmp_path / "r.sol", inst)
    assert (tmp_path / "r.sol").read_text().splitlines()[-1] == "Cost 30"


def test_solomon_reader(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="2 customers, not a standard Solomon"):
        inst = read(_write(tmp_path, "tiny.txt", SOLOMON.replace("\n", "\r\n")))
    assert inst.kind == "vrptw" and inst.name == "TINY"
    assert inst.vehicle_types == (VehicleType(capacity=10, count=2),)
    np.testing.assert_array_equal(inst.time_windows, [[0, 100], [0, 50], [10, 60]])
    np.testing.assert_array_equal(inst.service_time, [0, 1, 1])
    assert inst.distance[0, 1] == 5 and inst.distance[0, 2] == 10 and inst.duration is None
    report = rota.evaluate(inst, RoutingSolution.from_lists([[1, 2]]))
    # leave 0, reach 1 at 5, serve 1, reach 2 at 11, serve 1, back at 22
    assert report.feasible and report.objective == 20 and report.routes[0].end_time == 22


def test_reference_tables(tmp_path: Path) -> None:
    (tmp_path / "a.vrp").write_text(CVRP)
    (tmp_path / "b.vrp").write_text(CVRP)
    (tmp_path / "c.vrp").write_text(CVRP)
    (tmp_path / "OPTIMA.txt").write_text("# proven\na 10  # tight\n")
    (tmp_path / "BKS.txt").write_text("a 9\nb 11.5\n")
    assert reference_cost(tmp_path / "a.vrp") == Reference(
        10, "optimal", str(tmp_path / "OPTIMA.txt")
    )
    assert reference_cost(tmp_path / "b.vrp") == Reference(11.5, "bks", str(tmp_path / "BKS.txt"))
    assert reference_cost(tmp_path / "c.vrp") is None


@pytest.mark.filterwarnings("ignore:.*not a standard Solomon")
def test_read_set_and_json_lines(tmp_path: Path) -> None:
    instances = [read(_write(tmp_path, "tiny.vrp", CVRP)), read(_write(tmp_path, "t.txt", SOLOMON))]
    target = _write(tmp_path, "set", "".join(dumps_instance(i) + "\n\n" for i in instances))
    assert sniff(target) == "jsonl"
    back = read_set(target)
    assert [i.name for i in back] == ["tiny", "TINY"]
    np.testing.assert_array_equal(back[1].time_windows, instances[1].time_windows)
    assert len(read_set(tmp_path / "tiny.vrp")) == 1


def test_instance_json_round_trip(tmp_path: Path) -> None:
    inst = RoutingInstance(
        distance=[[0, 1.25, 2], [1, 0, 3], [2, 3.5, 0]],
        vehicle_types=(VehicleType(capacity=4, count=2, fixed_cost=1.5, name="van"),),
        demand=[0, 1, 2],
        time_windows=[[0, 50], [0, 10], [5, 20]],
        duration=[[0, 2, 2], [2, 0, 2], [2, 2, 0]],
        name="hand",
        metadata={"source": "test"},
    )
    write_instance(inst, tmp_path / "i.json")
    back = read(tmp_path / "i.json")
    for field in ("distance", "demand", "time_windows", "duration", "service_time"):
        np.testing.assert_array_equal(getattr(back, field), getattr(inst, field))
    assert back.vehicle_types == inst.vehicle_types and back.name == "hand"
    with pytest.raises(ValueError, match=r"i\.vrp: unknown instance extension '\.vrp'"):
        write_instance(inst, tmp_path / "i.vrp")
