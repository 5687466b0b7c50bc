"""Every benchmark instance in ../shared/instances reads, and its reference solution checks out."""

from __future__ import annotations

import math
import shutil
import time
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
from rota.problems.reference import reference_cost
from rota.problems.routing import RoutingInstance, RoutingSolution

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "instances"
KIND_OF_FOLDER = {"cvrp": "cvrp", "vrptw": "vrptw", "atsp": "atsp", "hfvrp": "hfvrp"}
INSTANCE_SUFFIXES = {".vrp", ".txt", ".atsp", ".tsp"}


def _instance_names() -> list[str]:
    if not SHARED.is_dir():
        return []
    return sorted(
        f"{p.parent.name}/{p.name}"
        for p in SHARED.glob("*/*")
        if p.suffix in INSTANCE_SUFFIXES and p.name not in ("OPTIMA.txt", "BKS.txt")
    )


INSTANCES = _instance_names()
WITH_SOLUTION = [n for n in INSTANCES if (SHARED / n).with_suffix(".sol").is_file()]
# JSON writing is O(n^2) Python work; the round trip is checked on the smaller files.
SMALL = [n for n in INSTANCES if not n.startswith("cvrp/X-n") or int(n[8:].split("-")[0]) <= 502]


def _same_instance(a: RoutingInstance, b: RoutingInstance) -> None:
    for name in ("distance", "demand", "service_time", "time_windows", "duration", "coords"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.depots == b.depots
    assert a.vehicle_types == b.vehicle_types
    assert a.name == b.name
    assert dict(a.metadata) == dict(b.metadata)


def _same_routes(a: RoutingSolution, b: RoutingSolution) -> None:
    assert [(r.visits, r.vehicle_type) for r in a.routes] == [
        (r.visits, r.vehicle_type) for r in b.routes
    ]


def test_shared_folder_is_complete(shared_instances: Path) -> None:
    folders = {name.split("/")[0] for name in INSTANCES}
    assert folders == set(KIND_OF_FOLDER)
    assert len(WITH_SOLUTION) >= 25


@pytest.mark.parametrize("name", INSTANCES)
def test_reads_with_the_right_kind(shared_instances: Path, name: str) -> None:
    path = shared_instances / name
    instance = read(path)
    assert instance.kind == KIND_OF_FOLDER[name.split("/")[0]]
    assert instance.name == path.stem
    assert instance.metadata["source"] == str(path)
    assert instance.depots == (0,)
    assert np.all(np.diag(instance.distance) == 0)
    assert read_set(path)[0].num_locations == instance.num_locations


@pytest.mark.parametrize("name", WITH_SOLUTION)
def test_reference_solution_is_feasible_at_its_cost(shared_instances: Path, name: str) -> None:
    path = shared_instances / name
    instance = read(path)
    solution = read_solution(path.with_suffix(".sol"), instance)
    report = rota.evaluate(instance, solution)
    assert report.violations == ()
    reference = reference_cost(path)
    assert reference is not None and reference.kind == "bks"
    assert reference.source == str(path.with_suffix(".sol"))
    folder = name.split("/")[0]
    if folder == "cvrp":
        assert report.objective == reference.value
    elif folder == "vrptw":
        assert round(report.objective, 1) == pytest.approx(reference.value, abs=1e-6)
    else:
        assert report.objective == pytest.approx(reference.value, abs=0.01)


def test_atsp_optima_are_proven(shared_instances: Path) -> None:
    names = [n for n in INSTANCES if n.startswith("atsp/")]
    assert len(names) == 7
    for name in names:
        reference = reference_cost(shared_instances / name)
        assert reference is not None
        assert reference.kind == "optimal"
        assert Path(reference.source).name == "OPTIMA.txt"
    assert reference_cost(shared_instances / "atsp/br17.atsp").value == 39


# -- spot checks against values read off the files by hand ------------------------


def test_x_instance_fields(shared_instances: Path) -> None:
    inst = read(shared_instances / "cvrp/X-n101-k25.vrp")
    assert inst.num_locations == 101
    assert inst.vehicle_types == (rota.VehicleType(capacity=206, count=None),)
    np.testing.assert_array_equal(inst.coords[:2], [[365, 689], [146, 180]])
    assert inst.distance[0, 1] == math.floor(math.hypot(365 - 146, 689 - 180) + 0.5)
    assert inst.demand[0] == 0 and inst.demand[1] == 38
    assert inst.metadata["rounding"] == "nearest"
    assert inst.metadata["format"] == "vrplib"


def test_lower_row_explicit_matrix(shared_instances: Path) -> None:
    inst = read(shared_instances / "cvrp/E-n13-k4.vrp")
    # LOWER_ROW: row 1 holds d(1,0); row 2 holds d(2,0), d(2,1); ...
    assert inst.distance[1, 0] == inst.distance[0, 1] == 9
    assert inst.distance[2, 0] == 14 and inst.distance[2, 1] == 21
    assert inst.distance[12, 11] == 10
    assert inst.is_symmetric and inst.coords is None
    assert inst.metadata["rounding"] == "explicit"


def test_atsp_full_matrix(shared_instances: Path) -> None:
    inst = read(shared_instances / "atsp/br17.atsp")
    assert inst.num_locations == 17
    assert inst.vehicle_types == (rota.VehicleType(capacity=None, count=1),)
    assert inst.is_tsp and not inst.is_symmetric
    # rows wrap after 16 numbers: row 0 ends with 5 on the next line, row 1 starts with 3
    assert inst.distance[0, 16] == 5 and inst.distance[1, 0] == 3 and inst.distance[0, 11] == 0
    assert inst.metadata["format"] == "tsplib"
    assert "diagonal" in inst.metadata  # the 9999 diagonal was dropped, and said so


def test_solomon_fields(shared_instances: Path) -> None:
    inst = read(shared_instances / "vrptw/C101.txt")
    assert inst.vehicle_types == (rota.VehicleType(capacity=200, count=25),)
    np.testing.assert_array_equal(inst.time_windows[:2], [[0, 1236], [912, 967]])
    assert inst.service_time[0] == 0 and inst.service_time[1] == 90
    assert inst.duration is None
    # floor(10 * d) / 10 with d = hypot(5, 18) = 18.68...
    assert inst.distance[0, 1] == pytest.approx(18.6, abs=1e-12)
    assert inst.metadata["rounding"] == "floor1"


def test_hfvrp_fleet(shared_instances: Path) -> None:
    inst = read(shared_instances / "hfvrp/X110-HD.vrp")
    types = inst.vehicle_types
    assert [vt.count for vt in types] == [2, 1, 1, 1, 1, 2, 2, 2, 1]
    assert [vt.capacity for vt in types] == [30, 36, 42, 50, 60, 71, 85, 101, 120]
    assert types[0].unit_distance_cost == pytest.approx(0.59)
    assert all(vt.fixed_cost == 0 for vt in types)
    assert inst.metadata["rounding"] == "exact" and inst.metadata["cost_scale"] == 100
    fsm = read(shared_instances / "hfvrp/X101-FSMFD.vrp")
    assert [(vt.count, vt.fixed_cost) for vt in fsm.vehicle_types] == [
        (100, 246), (100, 305), (100, 377), (100, 466), (100, 575),
    ]  # fmt: skip
    # exact Euclidean distances: not rounded
    assert fsm.distance[0, 1] == pytest.approx(math.hypot(365 - 146, 689 - 180), rel=1e-15)


def test_hfvrp_slots_map_to_types(shared_instances: Path) -> None:
    path = shared_instances / "hfvrp/X110-HD.vrp"
    inst = read(path)
    solution = read_solution(path.with_suffix(".sol"), inst)
    assert len(solution.routes) == 13
    assert [r.vehicle_type for r in solution.routes] == [0, 0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 8]
    assert solution.routes[4].visits == ()


def test_reading_everything_is_fast(shared_instances: Path) -> None:
    start = time.perf_counter()
    for name in INSTANCES:
        read(shared_instances / name)
    # about 0.5 s on a shared 2-core machine; a Python loop over the X-n1001 matrix takes >5 s
    assert time.perf_counter() - start < 5.0


# -- round trips --------------------------------------------------------------------


@pytest.mark.parametrize("name", SMALL)
def test_instance_json_round_trip(shared_instances: Path, name: str, tmp_path: Path) -> None:
    instance = read(shared_instances / name)
    target = tmp_path / "instance.json"
    write_instance(instance, target)
    assert sniff(target) == "json"
    _same_instance(instance, read(target))


def test_instance_json_lines_round_trip(shared_instances: Path, tmp_path: Path) -> None:
    instances = [read(shared_instances / n) for n in ("vrptw/C101.txt", "hfvrp/X110-HD.vrp")]
    target = tmp_path / "set.jsonl"
    target.write_text("".join(f"{dumps_instance(i)}\n" for i in instances))
    back = read_set(target)
    assert len(back) == 2
    for a, b in zip(instances, back, strict=True):
        _same_instance(a, b)
    single = tmp_path / "one.jsonl"
    write_instance(instances[0], single)
    _same_instance(instances[0], read(single))


@pytest.mark.parametrize("name", WITH_SOLUTION)
def test_solution_round_trips(shared_instances: Path, name: str, tmp_path: Path) -> None:
    path = shared_instances / name
    instance = read(path)
    solution = read_solution(path.with_suffix(".sol"), instance)
    for suffix in (".sol", ".json"):
        target = tmp_path / f"solution{suffix}"
        write_solution(solution, target, instance)
        _same_routes(solution, read_solution(target, instance))
    # the Cost line written is the evaluator's objective
    written = (tmp_path / "solution.sol").read_text().splitlines()[-1]
    assert float(written.split()[1]) == rota.evaluate(instance, solution).objective


def test_sniffing_ignores_the_extension(shared_instances: Path, tmp_path: Path) -> None:
    solomon = tmp_path / "C101.vrp"
    shutil.copy(shared_instances / "vrptw/C101.txt", solomon)
    assert sniff(solomon) == "solomon"
    assert read(solomon).kind == "vrptw"
    vrplib = tmp_path / "P-n16-k8"
    shutil.copy(shared_instances / "cvrp/P-n16-k8.vrp", vrplib)
    assert sniff(vrplib) == "vrplib"
    assert read(vrplib).num_clients == 15
    as_json = tmp_path / "p16.data"
    write_instance(read(vrplib), tmp_path / "p16.json")
    shutil.copy(tmp_path / "p16.json", as_json)
    assert sniff(as_json) == "json"
    assert read(as_json).num_clients == 15
