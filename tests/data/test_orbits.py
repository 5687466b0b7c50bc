"""Visibility windows from TLEs, checked against a brute-force propagation at one-second steps."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from sgp4.api import Satrec
from sgp4.propagation import gstime

from rota.data.orbits import (
    default_stations,
    default_tle,
    passes,
    read_stations,
    read_tles,
    satellite_instance,
)
from rota.errors import FormatError

JD_UNIX = 2440587.5


def brute_windows(satrec: Satrec, lat: float, lon: float, alt_m: float, start_jd: float,
                  seconds: int, mask: float) -> list[tuple[int, int]]:  # fmt: skip
    """Windows at one-second resolution, with their own frames: TEME rotated by sgp4's
    ``gstime``, the site by the WGS84 ellipsoid, elevation from the local east-north-up axes."""
    t = np.arange(seconds + 1, dtype=float)
    jd = start_jd + t / 86400
    whole = np.floor(jd - 0.5) + 0.5
    error, r, _ = satrec.sgp4_array(whole, jd - whole)
    assert not error.any()
    theta = np.array([gstime(j) for j in jd])
    x = np.cos(theta) * r[:, 0] + np.sin(theta) * r[:, 1]
    y = -np.sin(theta) * r[:, 0] + np.cos(theta) * r[:, 1]
    z = r[:, 2]
    a, f = 6378.137, 1 / 298.257223563
    e2 = f * (2 - f)
    phi, lam = math.radians(lat), math.radians(lon)
    n = a / math.sqrt(1 - e2 * math.sin(phi) ** 2)
    h = alt_m / 1000
    site = np.array(
        [
            (n + h) * math.cos(phi) * math.cos(lam),
            (n + h) * math.cos(phi) * math.sin(lam),
            (n * (1 - e2) + h) * math.sin(phi),
        ]
    )
    d = np.stack([x, y, z], axis=1) - site
    east = -math.sin(lam) * d[:, 0] + math.cos(lam) * d[:, 1]
    north = (-math.sin(phi) * math.cos(lam) * d[:, 0] - math.sin(phi) * math.sin(lam) * d[:, 1]
             + math.cos(phi) * d[:, 2])  # fmt: skip
    up = (math.cos(phi) * math.cos(lam) * d[:, 0] + math.cos(phi) * math.sin(lam) * d[:, 1]
          + math.sin(phi) * d[:, 2])  # fmt: skip
    visible = np.degrees(np.arctan2(up, np.hypot(east, north))) >= mask
    windows, rise = [], None
    for k, v in enumerate(visible):
        if v and rise is None:
            rise = k
        if not v and rise is not None:
            windows.append((rise, k - 1))
            rise = None
    if rise is not None:
        windows.append((rise, seconds))
    return windows


def test_windows_agree_with_a_brute_force_propagation():
    satellites = dict(read_tles(default_tle()))
    stations = {s.name: s for s in read_stations(default_stations())}
    satrec = satellites["IRIDIUM 7"]
    start_jd = satrec.jdsatepoch + satrec.jdsatepochF
    seconds = 6 * 3600
    for name in ("Svalbard", "Kourou"):
        site = stations[name]
        found = passes(satrec, [site], start_jd, seconds, 10.0)[0]
        expected = brute_windows(satrec, site.latitude, site.longitude, site.altitude, start_jd,
                                 seconds, 10.0)  # fmt: skip
        assert len(found) == len(expected) and found, (name, found, expected)
        for (a, b), (c, d) in zip(found, expected, strict=True):
            assert abs(a - c) <= 2 and abs(b - d) <= 2, (name, (a, b), (c, d))


def test_the_default_instance():
    inst = satellite_instance(hours=6)
    assert inst.metadata["start_utc"] == "2023-10-26T18:09:00+00:00"
    assert len(inst.antennas) == 15 and len(inst.missions) == 31
    assert {a.station for a in inst.antennas} >= {"Svalbard", "Troll", "Kourou"}
    for request in inst.requests:
        assert request.duration == 600 and request.min_duration == 300
        w0, w1 = request.window
        assert w1 - w0 == 3600
        usable = [vp for res in request.resources for vp in res.view_periods]
        assert all(w0 <= a < b <= w1 for a, b in usable)
        assert any(b - a >= 300 for a, b in usable)


def test_a_given_start_and_other_files(tmp_path: Path):
    lines = default_tle().read_text().splitlines()[:6]
    (tmp_path / "two.tle").write_text("\n".join(lines[1:3] + lines[4:6]) + "\n")  # no name lines
    (tmp_path / "pole.csv").write_text(
        "name,latitude_deg,longitude_deg,altitude_m,antennas\nPole,-90,0,2800,1\n"
    )
    inst = satellite_instance(tmp_path / "two.tle", tmp_path / "pole.csv", hours=12,
                              start=dt.datetime(2023, 10, 26, 12, 0), every=2,
                              track_minutes=4, min_track_minutes=2)  # fmt: skip
    assert inst.metadata["start_utc"] == "2023-10-26T12:00:00+00:00"
    assert set(inst.missions) <= {"sat-24793", "sat-24795"} and len(inst.antennas) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("IRIDIUM 7\n1 24793U 97020B   23299.73973548\n", "line 1: an element set needs"),
        ("IRIDIUM 7\n2 24793\n1 24793\n", "line 2: expected TLE lines '1 ...' and '2 ...'"),
    ],
)
def test_bad_tle_files_are_named(tmp_path: Path, text, message):
    path = tmp_path / "bad.tle"
    path.write_text(text)
    with pytest.raises(FormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_tles(path)


def test_bad_station_files_and_arguments(tmp_path: Path):
    path = tmp_path / "s.csv"
    path.write_text("name,latitude_deg,longitude_deg,altitude_m,antennas\nX,95,0,0,1\n")
    with pytest.raises(FormatError, match="line 2: latitude 95.0"):
        read_stations(path)
    path.write_text("name,lat\nX,1\n")
    with pytest.raises(FormatError, match="missing column 'latitude_deg'"):
        read_stations(path)
    with pytest.raises(ValueError, match="hours must be a positive number"):
        satellite_instance(hours=-1)
    with pytest.raises(ValueError, match="min_track_minutes 20 > track_minutes 10"):
        satellite_instance(min_track_minutes=20)
