"""Malformed files raise FormatError with one line naming the file and the line or field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rota.errors import FormatError
from rota.problems import read, read_set, read_solution
from rota.problems.reference import reference_cost
from rota.problems.routing import RoutingInstance, VehicleType

CVRP_LINES = [
    "NAME : tiny",  # 1
    "TYPE : CVRP",  # 2
    "DIMENSION : 4",  # 3
    "EDGE_WEIGHT_TYPE : EUC_2D",  # 4
    "CAPACITY : 10",  # 5
    "NODE_COORD_SECTION",  # 6
    "1 0 0",  # 7
    "2 3 4",  # 8
    "3 6 8",  # 9
    "4 0 5",  # 10
    "DEMAND_SECTION",  # 11
    "1 0",  # 12
    "2 4",  # 13
    "3 5",  # 14
    "4 3",  # 15
    "DEPOT_SECTION",  # 16
    "1",  # 17
    "-1",  # 18
    "EOF",  # 19
]

ATSP_LINES = [
    "NAME : a",  # 1
    "TYPE : ATSP",  # 2
    "DIMENSION : 3",  # 3
    "EDGE_WEIGHT_TYPE : EXPLICIT",  # 4
    "EDGE_WEIGHT_FORMAT : FULL_MATRIX",  # 5
    "EDGE_WEIGHT_SECTION",  # 6
    "9999 1 2",  # 7
    "3 9999 4",  # 8
    "5 6 9999",  # 9
    "EOF",  # 10
]

SOLOMON_LINES = [
    "TINY",  # 1
    "",
    "VEHICLE",  # 3
    "NUMBER     CAPACITY",  # 4
    "  2         10",  # 5
    "",
    "CUSTOMER",  # 7
    "CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME",  # 8
    "",
    "    0      0         0          0          0       100          0",  # 10
    "    1      3         4          4          0        50          1",  # 11
    "    2      6         8          5         10        60          1",  # 12
]


def _edit(lines: list[str], replace: dict[int, str | None]) -> str:
    """The file with 1-based lines replaced (``None`` deletes the line)."""
    out = [replace.get(i, line) for i, line in enumerate(lines, 1)]
    return "\n".join(line for line in out if line is not None) + "\n"


def _expect_error(path: Path, *fragments: str, reader=read) -> str:
    with pytest.raises(FormatError) as info:
        reader(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


VRPLIB_CASES = {
    "missing demand section": (
        CVRP_LINES,
        {11: None, 12: None, 13: None, 14: None, 15: None},
        ["field DEMAND_SECTION", "missing"],
    ),
    "missing coordinates": (
        CVRP_LINES,
        {6: None, 7: None, 8: None, 9: None, 10: None},
        ["field NODE_COORD_SECTION", "EUC_2D"],
    ),
    "missing depot section": (CVRP_LINES, {16: None, 17: None, 18: None}, ["field DEPOT_SECTION"]),
    "missing dimension": (CVRP_LINES, {3: None}, ["field DIMENSION", "missing"]),
    "missing capacity": (CVRP_LINES, {5: None}, ["field CAPACITY", "missing"]),
    "missing edge weight type": (CVRP_LINES, {4: None}, ["field EDGE_WEIGHT_TYPE", "missing"]),
    "non-numeric dimension": (
        CVRP_LINES,
        {3: "DIMENSION : four"},
        ["line 3", "DIMENSION", "'four'"],
    ),
    "fractional dimension": (CVRP_LINES, {3: "DIMENSION : 4.5"}, ["line 3", "DIMENSION", "4.5"]),
    "negative capacity": (CVRP_LINES, {5: "CAPACITY : -3"}, ["line 5", "CAPACITY", "-3"]),
    "coordinate row too short": (CVRP_LINES, {8: "2 3"}, ["line 8", "NODE_COORD_SECTION", "got 2"]),
    "coordinate row too long": (
        CVRP_LINES,
        {9: "3 6 8 1"},
        ["line 9", "NODE_COORD_SECTION", "got 4"],
    ),
    "non-numeric coordinate": (CVRP_LINES, {9: "3 6 x8"}, ["line 9", "NODE_COORD_SECTION", "'x8'"]),
    "nan demand": (CVRP_LINES, {14: "3 nan"}, ["DEMAND_SECTION", "'nan'"]),
    "dimension larger than the rows": (
        CVRP_LINES,
        {3: "DIMENSION : 5"},
        ["field NODE_COORD_SECTION", "DIMENSION is 5", "4 rows", "id 5 missing"],
    ),
    "node id beyond dimension": (CVRP_LINES, {10: "5 0 5"}, ["line 10", "1..4", "got 5"]),
    "duplicate node id": (CVRP_LINES, {10: "3 0 5"}, ["line 10", "id 3 appears twice"]),
    "fractional node id": (CVRP_LINES, {13: "2.5 4"}, ["line 13", "DEMAND_SECTION", "2.5"]),
    "depot out of range": (CVRP_LINES, {17: "9"}, ["line 17", "DEPOT_SECTION", "got 9"]),
    "depot not a number": (CVRP_LINES, {17: "one"}, ["line 17", "'one'"]),
    "number after depot terminator": (
        CVRP_LINES,
        {18: "-1 2"},
        ["line 18", "after the closing -1"],
    ),
    "no depot": (CVRP_LINES, {17: None}, ["line 16", "names no depot"]),
    "unknown edge weight type": (
        CVRP_LINES,
        {4: "EDGE_WEIGHT_TYPE : GEO"},
        ["line 4", "field EDGE_WEIGHT_TYPE", "got GEO"],
    ),
    "unknown type": (CVRP_LINES, {2: "TYPE : VRPXYZ"}, ["line 2", "field TYPE", "got VRPXYZ"]),
    "unknown field": (CVRP_LINES, {1: "NAMEX : tiny"}, ["line 1", "unknown field NAMEX"]),
    "route length limit": (CVRP_LINES, {1: "DISTANCE : 100"}, ["line 1", "field DISTANCE"]),
    "duplicated field": (CVRP_LINES, {1: "CAPACITY : 11"}, ["line 5", "CAPACITY appears twice"]),
    "unsupported section": (
        CVRP_LINES,
        {16: "FIXED_EDGES_SECTION"},
        ["line 16", "unsupported section FIXED_EDGES_SECTION"],
    ),
    "stray text": (CVRP_LINES, {11: "DEMANDS"}, ["line 11", "'DEMANDS'"]),
    "numbers before any section": (CVRP_LINES, {1: "1 2 3"}, ["line 1", "'1 2 3'"]),
    "demand above capacity": (
        CVRP_LINES,
        {14: "3 50"},
        ["invalid instance", "client 2 has demand 50 > largest vehicle capacity 10"],
    ),
    "demand at the depot": (CVRP_LINES, {12: "1 2"}, ["invalid instance", "depot 0 has demand 2"]),
    "short explicit matrix": (
        ATSP_LINES,
        {9: "5 6"},
        ["line 6", "EDGE_WEIGHT_SECTION", "needs 9 numbers", "got 8"],
    ),
    "long explicit matrix": (ATSP_LINES, {9: "5 6 9999 7"}, ["line 6", "needs 9", "got 10"]),
    "non-numeric weight": (
        ATSP_LINES,
        {8: "3 9999 four"},
        ["line 8", "EDGE_WEIGHT_SECTION", "'four'"],
    ),
    "negative weight": (
        ATSP_LINES,
        {8: "3 9999 -4"},
        ["invalid instance", "distance[1, 2] is -4.0", ">= 0"],
    ),
    "unknown weight format": (
        ATSP_LINES,
        {5: "EDGE_WEIGHT_FORMAT : FUNCTION"},
        ["line 5", "field EDGE_WEIGHT_FORMAT", "got FUNCTION"],
    ),
    "missing weight format": (ATSP_LINES, {5: None}, ["field EDGE_WEIGHT_FORMAT", "missing"]),
    "missing weight section": (
        ATSP_LINES,
        {6: None, 7: None, 8: None, 9: None},
        ["field EDGE_WEIGHT_SECTION", "missing"],
    ),
    "demand in a tsp": (ATSP_LINES, {10: "DEMAND_SECTION"}, ["line 10", "not used by TYPE ATSP"]),
}


@pytest.mark.parametrize("case", sorted(VRPLIB_CASES))
def test_malformed_vrplib(tmp_path: Path, case: str) -> None:
    lines, replace, fragments = VRPLIB_CASES[case]
    path = tmp_path / "bad.vrp"
    path.write_text(_edit(lines, replace))
    _expect_error(path, *fragments)


HFVRP_HEAD = [
    "NAME: fleet",
    "TYPE: HFVRP",
    "DIMENSION: 3",
    "VEHICLES: 3",
    "EDGE_WEIGHT_TYPE: EUC_2D",
    "NODE_COORD_SECTION",
    "1 0 0",
    "2 3 4",
    "3 0 1",
    "DEMAND_SECTION",
    "1 0",
    "2 5",
    "3 8",
    "DEPOT_SECTION",
    "1",
    "-1",
]


@pytest.mark.parametrize(
    ("tail", "fragments"),
    [
        (
            ["CAPACITY_SECTION", "1 5", "2 10"],
            ["field CAPACITY_SECTION", "VEHICLES is 3", "2 rows"],
        ),
        (
            ["CAPACITY_SECTION", "1 5", "2 10", "3 10", "VEHICLES_FIXED_COST_SECTION", "1 x"],
            ["VEHICLES_FIXED_COST_SECTION", "'x'"],
        ),
        (["CAPACITY_SECTION", "1 5", "2 10", "3 0"], ["CAPACITY_SECTION", "vehicle 3", "got 0"]),
        (["CAPACITY_SECTION", "1 5", "2 10", "3 10", "4 10"], ["CAPACITY_SECTION", "got 4"]),
        (["CAPACITY_SECTION", "1 5", "2 5", "3 5"], ["client 2 has demand 8 > largest"]),
    ],
)
def test_malformed_vehicle_sections(tmp_path: Path, tail: list[str], fragments: list[str]) -> None:
    path = tmp_path / "fleet.vrp"
    path.write_text("\n".join(HFVRP_HEAD + tail) + "\n")
    _expect_error(path, *fragments)


def test_vehicle_sections_need_vehicles(tmp_path: Path) -> None:
    path = tmp_path / "fleet.vrp"
    lines = [line for line in HFVRP_HEAD if not line.startswith("VEHICLES")]
    path.write_text("\n".join([*lines, "CAPACITY_SECTION", "1 5"]) + "\n")
    _expect_error(path, "field VEHICLES", "missing")


def test_fleet_capacity_below_total_demand(tmp_path: Path) -> None:
    path = tmp_path / "fleet.vrp"
    path.write_text("\n".join([*HFVRP_HEAD, "CAPACITY_SECTION", "1 8", "2 1", "3 1"]) + "\n")
    _expect_error(path, "invalid instance", "total demand 13 exceeds fleet capacity 10")


SOLOMON_CASES = {
    "truncated after the vehicle block": (
        {i: None for i in range(6, 13)},
        ["line 5", "'CUSTOMER'", "end of file"],
    ),
    "no customer rows": ({10: None, 11: None, 12: None}, ["line 8", "customer rows"]),
    "only the depot": ({11: None, 12: None}, ["line 10", "at least one customer"]),
    "bad fleet line": ({5: "  2"}, ["line 5", "NUMBER CAPACITY"]),
    "fleet not a number": ({5: "  two  10"}, ["line 5", "'two  10'"]),
    "zero vehicles": ({5: "  0  10"}, ["line 5", "field NUMBER", "got 0"]),
    "row too short": (
        {11: "    1      3         4          4          0        50"},
        ["line 11", "got 6"],
    ),
    "non-numeric cell": (
        {12: "    2      6         8          5         10        6O          1"},
        ["line 12", "'6O'"],
    ),
    "customers out of order": (
        {11: "    2      3         4          4          0        50          1"},
        ["line 11", "CUST NO.", "should be 1"],
    ),
    "window closes before it opens": (
        {12: "    2      6         8          5         70        60          1"},
        ["invalid instance", "location 2 time window closes at 60", "opens at 70"],
    ),
    "unreachable window": (
        {12: "    2      6         8          5          0         5          1"},
        ["invalid instance", "client 2 cannot be served within its time window [0, 5]"],
    ),
    "vehicle keyword misspelt": ({3: "VEHICLES"}, ["line 1"]),
}


@pytest.mark.parametrize("case", sorted(SOLOMON_CASES))
def test_malformed_solomon(tmp_path: Path, case: str) -> None:
    replace, fragments = SOLOMON_CASES[case]
    path = tmp_path / "bad.txt"
    path.write_text(_edit(SOLOMON_LINES, replace))
    _expect_error(path, *fragments)


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (b"", ["file is empty"]),
        (b"  \n\t\n", ["file is empty"]),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["binary data", "NUL byte at offset 8"]),
        (b"NAME : \xff\xfe tiny\n", ["not UTF-8 text", "offset 7"]),
        (b"hello world\nthis is not an instance\n", ["line 1", "'hello world'"]),
        (b'{"distance": [[0, 1], [1, 0]], ', ["line 1", "invalid JSON"]),
        (
            b'{"distance": [[0, 1, 2], [1, 0, 3]], "vehicle_types": [{}]}',
            ["distance must be square"],
        ),
        (b'{"distance": [[0, 1], [1, 0]], "vehicle_types": [{"count": 0}]}', ["vehicle_types[0]"]),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, fragments: list[str]) -> None:
    path = tmp_path / "bad.vrp"
    path.write_bytes(content)
    _expect_error(path, *fragments)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    _expect_error(tmp_path / "absent.vrp", "no such file")
    _expect_error(tmp_path, "is a directory")
    _expect_error(tmp_path / "absent.jsonl", "no such file", reader=read_set)
    _expect_error(tmp_path / "absent.sol", "no such file", reader=read_solution)


def test_json_lines_errors(tmp_path: Path) -> None:
    one = json.dumps({"distance": [[0, 1], [1, 0]], "vehicle_types": [{}]})
    path = tmp_path / "set.jsonl"
    path.write_text(f"{one}\n{one}\n")
    _expect_error(path, "holds 2 instances, expected one")
    path.write_text(f"{one}\n{{broken\n")
    _expect_error(path, "line 2", "invalid JSON", reader=read_set)
    path.write_text(f"{one}\n" + one.replace("[[0, 1], [1, 0]]", "[[0, 1], [-1, 0]]") + "\n")
    _expect_error(path, "line 2", "distance[1, 0] is -1.0", reader=read_set)


def _tiny() -> RoutingInstance:
    return RoutingInstance(
        distance=[[0, 1, 1], [1, 0, 1], [1, 1, 0]],
        vehicle_types=(VehicleType(capacity=5, count=1), VehicleType(capacity=9, count=1)),
        demand=[0, 2, 3],
    )


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("Route #1: 1 two\n", ["line 1", "'two'"]),
        ("Route #1: 1 2.0\n", ["line 1", "'2.0'"]),
        ("Route #1: 1\nRoute #3: 2\n", ["line 2", "expected 'Route #2:'", "got '3'"]),
        ("Route #1: 1\nTotal 4\n", ["line 2", "'Total 4'"]),
        ("Route #1: 1\nCost abc\n", ["line 2", "finite cost", "'abc'"]),
        ("Route #1: 1\nCost 3\nRoute #2: 2\n", ["line 3", "route after the Cost line"]),
        ("Cost 3\n", ["no 'Route #i:' line"]),
        ("Route #1: 1\nRoute #2: 2\nRoute #3:\n", ["line 3", "route #3", "has 2 vehicles"]),
    ],
)
def test_malformed_solution(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "bad.sol"
    path.write_text(text)
    _expect_error(path, *fragments, reader=lambda p: read_solution(p, _tiny()))


def test_malformed_json_solution(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"routes": [[1, "x"]]}')
    _expect_error(path, "routes[0].visits", reader=read_solution)
    path.write_text('{"routes": [[1, 2]\n')
    _expect_error(path, "line 2", "invalid JSON", reader=read_solution)


def test_unlimited_mixed_fleet_cannot_read_slots(tmp_path: Path) -> None:
    inst = RoutingInstance(
        distance=[[0, 1], [1, 0]],
        vehicle_types=(VehicleType(capacity=5), VehicleType(capacity=9, count=2)),
        demand=[0, 2],
    )
    path = tmp_path / "s.sol"
    path.write_text("Route #1: 1\n")
    _expect_error(path, "vehicle type 0", "no count", reader=lambda p: read_solution(p, inst))


def test_malformed_reference_table(tmp_path: Path) -> None:
    (tmp_path / "a.vrp").write_text("NAME : a\n")
    (tmp_path / "OPTIMA.txt").write_text("# optima\na 10\nb ten\n")
    with pytest.raises(FormatError) as info:
        reference_cost(tmp_path / "a.vrp")
    assert (
        str(info.value)
        == f"{tmp_path / 'OPTIMA.txt'}: line 3: value of b is not a number (got 'ten')"
    )
    (tmp_path / "OPTIMA.txt").write_text("a 10 extra\n")
    with pytest.raises(FormatError, match=r"OPTIMA\.txt: line 1: expected 'name value'"):
        reference_cost(tmp_path / "a.vrp")
