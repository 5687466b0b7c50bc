"""Instance generators: validity, feasibility of a trivial solution, determinism, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rota.data import City, area_points, default_capacity, generate, write_set
from rota.problems import read_set
from rota.problems.routing import RoutingInstance, RoutingSolution, evaluate


def grid_city(side: int = 8) -> City:
    """A synthetic city: points on a grid, Manhattan distances plus a one-way penalty."""
    row, col = np.divmod(np.arange(side * side), side)
    manhattan = np.abs(row[:, None] - row[None, :]) + np.abs(col[:, None] - col[None, :])
    # Going "up" the grid is a detour: asymmetric, and still metric (a potential shift).
    distance = 100 * manhattan + 30 * np.maximum(row[None, :] - row[:, None], 0)
    duration = np.ceil(distance / 10).astype(int)
    lat = 60.0 + 0.001 * row
    lon = 25.0 + 0.003 * col
    meta = {"source": "Grid.osm.pbf", "sha256": "0" * 64, "points": side * side, "seed": 0}
    return City(distance, duration, lat, lon, meta)


CITY = grid_city()


def trivial_solution(instance: RoutingInstance) -> RoutingSolution:
    """A plan every generated instance admits: one client per trip, shipments in pairs."""
    if instance.is_tsp:
        return RoutingSolution.from_lists([list(instance.clients)])
    paired = {s.pickup: s.delivery for s in instance.shipments}
    delivered = set(paired.values())
    trips = [
        [int(c), paired[c]] if c in paired else [int(c)]
        for c in instance.clients
        if instance.required[c] and c not in delivered
    ]
    if instance.vehicle_types[0].reload_depots:  # one vehicle, reloading between trips
        return RoutingSolution.from_lists([[v for trip in trips for v in (*trip, 0)][:-1]])
    return RoutingSolution.from_lists(trips)


CASES = [
    ("atsp", CITY, {}),
    ("acvrp", CITY, {}),
    ("acvrptw", CITY, {}),
    ("acvrp", CITY, {"distribution": "cluster", "clusters": 1}),
    ("acvrptw", CITY, {"distribution": "mixed", "area": "train", "cost": "duration"}),
    ("tsp", None, {}),
    ("cvrp", None, {"distribution": "cluster"}),
    ("cvrp", None, {"distribution": "mixed", "scale": 1000}),
    ("vrptw", None, {}),
    ("vrptw", None, {"scale": 1000, "window_share": 0.5}),
    ("vrptw-release", None, {}),
    ("vrptw-release", None, {"scale": 1000}),
    ("mtvrp", None, {}),
    ("pcvrp", None, {"scale": 1000}),
    ("vrpspd", None, {}),
    ("pdp", None, {}),
]


@pytest.mark.parametrize(("problem", "city", "options"), CASES)
def test_instances_validate_and_a_trivial_solution_is_feasible(problem, city, options):
    instances = list(generate(problem, 4, 20, seed=3, city=city, **options))
    assert len(instances) == 4
    for instance in instances:
        tsp = problem in ("tsp", "atsp")
        assert instance.num_locations == (20 if tsp else 21)
        assert instance.kind == {
            "atsp": "atsp", "acvrp": "acvrp", "acvrptw": "avrptw",
            "tsp": "tsp", "cvrp": "cvrp", "vrptw": "vrptw", "vrptw-release": "vrptw+release_times",
            "mtvrp": "cvrp+reloads", "pcvrp": "cvrp+prizes", "vrpspd": "cvrp+pickups",
            "pdp": "cvrp+shipments",
        }[problem]  # fmt: skip
        report = evaluate(instance, trivial_solution(instance))
        assert report.feasible, report.violations
        assert report.objective > 0
        if not tsp:
            assert instance.vehicle_types[0].capacity == default_capacity(20) == 30
            amounts = [*instance.deliveries[1:, 0], *instance.pickups[1:, 0]]
            amounts += [a for s in instance.shipments for a in s.amounts]
            assert set(amounts) - {0} <= set(range(1, 10)) and len(set(amounts) - {0}) > 1
        assert instance.metadata["problem"] == problem and instance.metadata["seed"] == 3
    names = [i.name for i in instances]
    assert len(set(names)) == 4


def test_city_instances_use_the_city_matrices():
    (instance,) = generate("acvrptw", 1, 10, seed=0, city=CITY)
    chosen = instance.metadata["city_points"]
    assert len(set(chosen)) == 11
    assert np.array_equal(instance.distance, CITY.distance[np.ix_(chosen, chosen)])
    assert np.array_equal(instance.duration, CITY.duration[np.ix_(chosen, chosen)])
    assert np.array_equal(instance.coords[:, 0], CITY.lon[chosen])
    assert not instance.is_symmetric
    assert instance.metadata["city"]["source"] == "Grid.osm.pbf"
    # Integer seconds everywhere, so integer engines scale exactly.
    assert np.array_equal(instance.time_windows, np.round(instance.time_windows))
    assert instance.time_windows[0].tolist() == [0, 8 * 3600]
    assert (instance.service_time[1:] == 300).all()


def test_time_windows_allow_the_direct_route():
    for instance in generate("vrptw", 20, 30, seed=1, window=(0.0, 0.01)):
        windows, travel, service = (
            instance.time_windows,
            instance.travel_time,
            instance.service_time,
        )
        horizon = windows[0, 1]
        arrive = np.maximum(travel[0, 1:], windows[1:, 0])
        assert (arrive <= windows[1:, 1] + 1e-9).all()
        assert (arrive + service[1:] + travel[1:, 0] <= horizon + 1e-9).all()
        assert (windows[1:, 1] - windows[1:, 0] <= 0.01 * horizon + 1e-9).all()


def test_too_short_horizon_is_rejected():
    with pytest.raises(ValueError, match="horizon 50 is shorter than the longest depot round trip"):
        list(generate("vrptw", 1, 30, seed=1, horizon=50))


def test_determinism_and_independence_of_count(tmp_path: Path):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    write_set(generate("acvrp", 5, 12, seed=9, city=CITY), a)
    write_set(generate("acvrp", 5, 12, seed=9, city=CITY), b)
    write_set(generate("acvrp", 5, 12, seed=10, city=CITY), c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    first_three = [i.name for i in generate("acvrp", 3, 12, seed=9, city=CITY)]
    lines = a.read_text().splitlines()
    assert len(lines) == 5
    read_back = read_set(a)
    assert [i.name for i in read_back[:3]] == first_three
    original = list(generate("acvrp", 5, 12, seed=9, city=CITY))
    for x, y in zip(original, read_back, strict=True):
        assert np.array_equal(x.distance, y.distance) and np.array_equal(x.demand, y.demand)
    synthetic = [tmp_path / f"s{k}.jsonl" for k in range(2)]
    for path in synthetic:
        write_set(generate("vrptw", 3, 15, seed=2, distribution="mixed"), path)
    assert synthetic[0].read_bytes() == synthetic[1].read_bytes()


def test_interrupted_write_leaves_no_file(tmp_path: Path):
    path = tmp_path / "set.jsonl"

    def failing():
        yield from generate("cvrp", 2, 10, seed=0)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_set(failing(), path)
    assert list(tmp_path.iterdir()) == []
    path.write_text("previous\n")
    with pytest.raises(KeyboardInterrupt):
        write_set(failing(), path)
    assert path.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["set.jsonl"]


def test_write_set_reports_progress(tmp_path: Path):
    calls = []
    count = write_set(
        generate("tsp", 3, 5, seed=0),
        tmp_path / "t.jsonl",
        progress=lambda stage, done, total: calls.append((stage, done, total)),
        total=3,
    )
    assert count == 3
    assert calls == [("writing", 1, 3), ("writing", 2, 3), ("writing", 3, 3)]


def test_spatial_split_is_disjoint():
    train = area_points(CITY, "train", 0.25)
    test = area_points(CITY, "test", 0.25)
    assert len(test) == 16 and len(train) == 48
    assert not set(train.tolist()) & set(test.tolist())
    # The map is wider east-west (0.003 deg of longitude per column): split along longitude.
    assert CITY.lon[train].max() < CITY.lon[test].min()
    for instance in generate("acvrp", 5, 10, seed=0, city=CITY, area="test"):
        assert set(instance.metadata["city_points"]) <= set(test.tolist())


def test_clusters_are_tighter_than_uniform():
    def spread(instances):
        return np.mean([i.distance[1:, 1:].mean() for i in instances])

    uniform = spread(generate("cvrp", 20, 50, seed=0))
    cluster = spread(generate("cvrp", 20, 50, seed=0, distribution="cluster", clusters=1))
    mixed = spread(generate("cvrp", 20, 50, seed=0, distribution="mixed", clusters=1))
    assert cluster < mixed < uniform
    on_city = spread(generate("atsp", 20, 10, seed=0, city=CITY))
    clustered_city = spread(
        generate("atsp", 20, 10, seed=0, city=CITY, distribution="cluster", clusters=1)
    )
    assert clustered_city < on_city


def test_default_capacity_follows_the_literature():
    assert [default_capacity(n) for n in (10, 20, 50, 100)] == [20, 30, 40, 50]
    assert default_capacity(75) == 45 and default_capacity(5) == 20
    assert default_capacity(5000) == 150


def test_scaled_synthetic_sets_are_integer():
    (instance,) = generate("cvrp", 1, 30, seed=0, scale=1000)
    assert np.array_equal(instance.coords, np.round(instance.coords))
    assert np.array_equal(instance.distance, np.round(instance.distance))
    assert instance.coords.max() <= 1000
    assert instance.metadata["distance_rounding"] == "nearest"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("acvrp", 1, 10, 0), {}, "problem 'acvrp' needs a city"),
        (("pdp", 1, 10, 0), {"city": CITY}, "problem 'pdp' is generated on synthetic maps only"),
        (("mtvrp", 1, 10, 0), {"horizon": 100}, "horizon 100 applies to time windows"),
        (("cvrp", 1, 10, 0), {"city": CITY}, "problem 'cvrp' is Euclidean; on a city use 'acvrp'"),
        (
            ("vrp", 1, 10, 0),
            {},
            "problem is 'vrp', expected one of tsp, cvrp, vrptw, vrptw-release",
        ),
        (("cvrp", 0, 10, 0), {}, "count must be an integer >= 1, got 0"),
        (("cvrp", 1, 0, 0), {}, "nodes must be an integer >= 1, got 0"),
        (("tsp", 1, 1, 0), {}, "nodes must be an integer >= 2, got 1"),
        (("cvrp", 1, 10, -1), {}, "seed must be an integer >= 0, got -1"),
        (("cvrp", 1, 10, 0), {"distribution": "gauss"}, "distribution is 'gauss'"),
        (("cvrp", 1, 10, 0), {"capacity": 5}, "capacity must be an integer >= 9, got 5"),
        (("cvrp", 1, 10, 0), {"area": "train"}, "area 'train' needs a city"),
        (("acvrp", 1, 10, 0), {"city": CITY, "area": "north"}, "area is 'north'"),
        (("acvrp", 1, 64, 0), {"city": CITY}, "has 64 points in area 'all', fewer than the 65"),
        (("acvrp", 1, 10, 0), {"city": CITY, "scale": 100}, "scale 100 applies to synthetic"),
        (("vrptw", 1, 10, 0), {"window": (0.5, 0.1)}, "expected .low, high. with low <= high"),
        (("vrptw", 1, 10, 0), {"window_share": 2}, "window_share is 2"),
        (("vrptw", 1, 10, 0), {"horizon": -5}, "horizon must be a finite number >= 0"),
        (("acvrp", 1, 10, 0), {"city": CITY, "cost": "money"}, "cost is 'money'"),
        (("cvrp", 1, 10, 0), {"cost": "duration"}, "cost 'duration' needs a city"),
        (("tsp", 1, 10, 0), {"capacity": 50}, "capacity 50 applies to a VRP, not to 'tsp'"),
        (("cvrp", 1, 10, 0), {"horizon": 100}, "horizon 100 applies to time windows"),
        (("vrptw", 1, 10, 0), {"window": (0.1,)}, "expected two fractions"),
    ],
)
def test_bad_parameters_are_rejected_before_drawing(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(*args, **kwargs)  # raises at the call, not at the first next()
