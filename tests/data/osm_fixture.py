"""A tiny hand-made road network, written as OSM XML and as OSM PBF for the tests.

Nodes sit on a grid of 0.001 degree (about 111.195 m) near (0, 0); ``(row,
col)`` below is (latitude, longitude) in thousandths of a degree::

    4 (1,0) <--L-- 5 (1,1) <---2L--- 6 (1,3) --- 7 (2,3) two-way spur
    |  roundabout  ^ |                ^
    v              | v two-way        | oneway=-1 way [6, 3]
    1 (0,0) --L--> 2 (0,1) ---2L---> 3 (0,3) --> 8 (0,4) one-way dead end

The ring 1 -> 2 -> 3 -> 6 -> 5 -> 4 -> 1 plus the two-way middle street 2-5
and the two-way spurs 6-7 and 4-11 (11 at (2,0); the same way goes on to a
node missing from the file) form the largest strongly connected component; node 8 (a
one-way dead end) and the far road 9-10 are outside it. Shortcuts that a car
may not use (a footway, a private service road, a ``motor_vehicle=no``
street, a reversible street) and a way to a missing node are ignored.
"""

from __future__ import annotations

import struct
import zlib

STEP = 0.001
#: Length in metres of one grid step (a thousandth of a degree on a great circle).
L = 6_371_008.8 * 3.141592653589793 / 180 * STEP

NODES = {
    1: (0, 0), 2: (0, 1), 3: (0, 3), 4: (1, 0), 5: (1, 1), 6: (1, 3), 7: (2, 3), 8: (0, 4),
    9: (5, 5), 10: (5, 6), 11: (2, 0),
}  # fmt: skip

WAYS: list[tuple[int, list[int], dict[str, str]]] = [
    (100, [1, 2, 3], {"highway": "residential", "oneway": "yes", "maxspeed": "36"}),
    (101, [6, 3], {"highway": "secondary", "oneway": "-1", "maxspeed": "FI:urban"}),
    (102, [6, 5, 4], {"highway": "residential", "oneway": "true", "maxspeed": "18"}),
    (103, [4, 1], {"highway": "residential", "junction": "roundabout"}),
    (
        104,
        [2, 5],
        {"highway": "tertiary", "maxspeed:forward": "72", "maxspeed:backward": "36 km/h"},
    ),
    (105, [6, 7], {"highway": "service", "maxspeed": "10 mph"}),
    (106, [3, 8], {"highway": "residential", "oneway": "1"}),
    (107, [9, 10], {"highway": "primary"}),
    (108, [1, 5], {"highway": "footway"}),
    (109, [4, 2], {"highway": "service", "access": "private"}),
    (110, [3, 5], {"highway": "residential", "motor_vehicle": "no"}),
    (111, [1, 6], {"highway": "residential", "oneway": "reversible"}),
    (112, [4, 11, 999], {"highway": "unclassified"}),
    (113, [5, 6], {"building": "yes"}),
]

#: Speeds (m/s) of each allowed direction, for hand-computed durations.
SPEED = {
    "bottom": 36 / 3.6,
    "right": 50 / 3.6,
    "top": 18 / 3.6,
    "left": 30 / 3.6,
    "middle_up": 72 / 3.6,
    "middle_down": 36 / 3.6,
}


def latlon(node: int) -> tuple[float, float]:
    row, col = NODES[node]
    return row * STEP, col * STEP


def osm_xml(ways: list | None = None) -> str:
    """The network as OSM XML (nodes first, then ways)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for node in NODES:
        lat, lon = latlon(node)
        lines.append(f'  <node id="{node}" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    for way_id, refs, tags in WAYS if ways is None else ways:
        lines.append(f'  <way id="{way_id}">')
        lines += [f'    <nd ref="{ref}"/>' for ref in refs]
        lines += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("  </way>")
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


# -- a minimal protobuf/PBF writer, only for building fixtures ------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _varint(len(payload)) + payload


def _uint(number: int, value: int) -> bytes:
    return _key(number, 0) + _varint(value)


def _packed(number: int, values: list[int]) -> bytes:
    return _bytes(number, b"".join(_varint(v) for v in values))


def _deltas(values: list[int]) -> list[int]:
    return [_zigzag(b - a) for a, b in zip([0, *values[:-1]], values, strict=True)]


def _blob(kind: str, payload: bytes, compress: bool = True) -> bytes:
    if compress:
        blob = _uint(2, len(payload)) + _bytes(3, zlib.compress(payload))
    else:
        blob = _bytes(1, payload)
    header = _bytes(1, kind.encode()) + _uint(3, len(blob))
    return struct.pack(">I", len(header)) + header + blob


def osm_pbf(ways: list | None = None, dense: bool = True, compress: bool = True) -> bytes:
    """The network as OSM PBF: a header block and one data block (dense or plain nodes)."""
    header = _bytes(4, b"OsmSchema-V0.6") + _bytes(4, b"DenseNodes")
    strings = [b""]

    def string(text: str) -> int:
        if text.encode() not in strings:
            strings.append(text.encode())
        return strings.index(text.encode())

    granularity = 100
    ids = list(NODES)
    # Coordinates are stored in units of granularity nanodegrees.
    lats = [round(latlon(n)[0] * 1e9 / granularity) for n in ids]
    lons = [round(latlon(n)[1] * 1e9 / granularity) for n in ids]
    if dense:
        nodes = _bytes(
            2,
            _packed(1, _deltas(ids)) + _packed(8, _deltas(lats)) + _packed(9, _deltas(lons)),
        )
    else:
        nodes = b"".join(
            _bytes(1, _uint(1, _zigzag(i)) + _uint(8, _zigzag(a)) + _uint(9, _zigzag(o)))
            for i, a, o in zip(ids, lats, lons, strict=True)
        )
    way_messages = b""
    for way_id, refs, tags in WAYS if ways is None else ways:
        keys = [string(k) for k in tags]
        values = [string(v) for v in tags.values()]
        body = _uint(1, way_id) + _packed(2, keys) + _packed(3, values)
        body += _packed(8, _deltas(refs))
        way_messages += _bytes(3, body)
    table = b"".join(_bytes(1, s) for s in strings)
    block = _bytes(1, table) + _bytes(2, nodes) + _bytes(2, way_messages)
    block += _uint(17, granularity)
    return _blob("OSMHeader", header, compress) + _blob("OSMData", block, compress)
