"""Contact-scheduling instances from orbits: visibility windows of satellites over stations.

Satellites come from two-line element sets (TLEs) and are propagated offline
with SGP4 (the ``sgp4`` package); stations are WGS84 sites with a number of
antennas each. A satellite is visible from a station while its elevation
above the local horizon (the plane normal to the geodetic vertical) is at
least ``min_elevation``. Positions are rotated from SGP4's TEME frame to the
Earth-fixed frame by the Greenwich mean sidereal time (IAU 1982, UTC taken
as UT1; polar motion ignored: metres, far below what changes a window by a
second at 10 degrees). Elevation is sampled every ``step`` seconds and each
rise and set is refined by bisection to a millisecond; a pass shorter than
the step can be missed, far below any track length this is for. Windows
are rounded inwards to whole seconds.

The instance asks, for every satellite and every ``every`` hours of the
horizon, for one track of ``track_minutes`` (at least ``min_track_minutes``)
on any antenna, with ``setup_minutes`` and ``teardown_minutes`` of antenna
time around it; requests whose window holds no pass long enough are left
out (their count is in the metadata). Times are seconds from the start of
the horizon, by default the latest TLE epoch rounded down to the minute.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from rota.errors import FormatError
from rota.files import load_text
from rota.problems.contacts import Antenna, ContactInstance, Request, Resource

#: WGS84 semi-major axis (km) and first eccentricity squared.
WGS84_A = 6378.137
WGS84_E2 = 6.69437999014e-3
#: Julian date of the Unix epoch.
_JD_UNIX = 2440587.5
_STATION_COLUMNS = ("name", "latitude_deg", "longitude_deg", "altitude_m", "antennas")


def default_tle() -> Path:
    """The Iridium TLEs shipped with rota (see ``rota/data/satellites/README.md``)."""
    return Path(str(resources.files("rota.data") / "satellites" / "iridium-2023-300.tle"))


def default_stations() -> Path:
    """The ground stations shipped with rota."""
    return Path(str(resources.files("rota.data") / "satellites" / "stations.csv"))


@dataclass(frozen=True)
class Station:
    """A ground station: WGS84 latitude and longitude (degrees), altitude (m), antennas."""

    name: str
    latitude: float
    longitude: float
    altitude: float
    antennas: int

    def ecef(self) -> np.ndarray:
        """Earth-fixed position (km)."""
        lat, lon = math.radians(self.latitude), math.radians(self.longitude)
        n = WGS84_A / math.sqrt(1 - WGS84_E2 * math.sin(lat) ** 2)
        h = self.altitude / 1000
        return np.array(
            [
                (n + h) * math.cos(lat) * math.cos(lon),
                (n + h) * math.cos(lat) * math.sin(lon),
                (n * (1 - WGS84_E2) + h) * math.sin(lat),
            ]
        )

    def up(self) -> np.ndarray:
        """Unit vector of the geodetic vertical, Earth-fixed."""
        lat, lon = math.radians(self.latitude), math.radians(self.longitude)
        return np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon),
                         math.sin(lat)])  # fmt: skip


def read_tles(path: str | Path) -> list[tuple[str, Any]]:
    """``(name, Satrec)`` of every element set in a TLE file (with or without name lines).

    Raises
    ------
    FormatError
        One line naming the file and line at fault.
    """
    from sgp4.api import Satrec

    path = Path(path)
    lines = [(k, line.rstrip()) for k, line in enumerate(load_text(path).splitlines(), 1)]
    lines = [(k, line) for k, line in lines if line.strip()]
    found = []
    i = 0
    while i < len(lines):
        k, line = lines[i]
        name = None
        if not line.startswith("1 "):
            name = re.sub(r"\s*\[.*\]\s*$", "", line.strip())  # CelesTrak's status marker
            i += 1
        if i + 1 >= len(lines):
            raise FormatError(f"{path}: line {k}: an element set needs lines 1 and 2")
        (k1, one), (_, two) = lines[i], lines[i + 1]
        if not one.startswith("1 ") or not two.startswith("2 "):
            raise FormatError(f"{path}: line {k1}: expected TLE lines '1 ...' and '2 ...'")
        try:
            satrec = Satrec.twoline2rv(one, two)
        except ValueError as exc:
            raise FormatError(f"{path}: line {k1}: not a valid element set ({exc})") from None
        found.append((name or f"sat-{satrec.satnum}", satrec))
        i += 2
    if not found:
        raise FormatError(f"{path}: holds no element set")
    names = [n for n, _ in found]
    if len(set(names)) != len(names):
        raise FormatError(f"{path}: satellite names repeat ({names})")
    return found


def read_stations(path: str | Path) -> list[Station]:
    """The stations of a CSV with columns name, latitude_deg, longitude_deg, altitude_m, antennas.

    Raises
    ------
    FormatError
        One line naming the file, line and field at fault.
    """
    path = Path(path)
    rows = csv.DictReader(io.StringIO(load_text(path)))
    missing = [c for c in _STATION_COLUMNS if c not in (rows.fieldnames or [])]
    if missing:
        raise FormatError(f"{path}: line 1: missing column {missing[0]!r}")
    stations = []
    for lineno, row in enumerate(rows, 2):
        try:
            lat, lon = float(row["latitude_deg"]), float(row["longitude_deg"])
            alt, count = float(row["altitude_m"]), int(row["antennas"])
        except (TypeError, ValueError):
            raise FormatError(f"{path}: line {lineno}: a number is malformed: {row}") from None
        name = (row["name"] or "").strip()
        if not name:
            raise FormatError(f"{path}: line {lineno}: empty station name")
        if not -90 <= lat <= 90 or not -180 <= lon <= 360 or not math.isfinite(alt):
            raise FormatError(
                f"{path}: line {lineno}: latitude {lat} or longitude {lon} out of range"
            )
        if not 1 <= count <= 100:
            raise FormatError(f"{path}: line {lineno}: antennas is {count}, expected 1 to 100")
        stations.append(Station(name, lat, lon, alt, count))
    if not stations:
        raise FormatError(f"{path}: holds no station")
    if len({s.name for s in stations}) != len(stations):
        raise FormatError(f"{path}: station names repeat")
    return stations


def gmst(jd: np.ndarray) -> np.ndarray:
    """Greenwich mean sidereal time (radians) at UT1 Julian dates (IAU 1982)."""
    t = (jd - 2451545.0) / 36525.0
    seconds = 67310.54841 + (876600.0 * 3600 + 8640184.812866) * t + 0.093104 * t**2 - 6.2e-6 * t**3
    return np.mod(seconds / 240.0, 360.0) * (np.pi / 180.0)


def _split(jd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    whole = np.floor(jd - 0.5) + 0.5
    return whole, jd - whole


def elevations(satrec: Any, jd: np.ndarray, sites: np.ndarray, ups: np.ndarray) -> np.ndarray:
    """Elevation (degrees) of one satellite at Julian dates ``jd`` from each site: (sites, times).

    ``sites`` and ``ups`` are (sites, 3) Earth-fixed positions (km) and unit
    verticals. Times where SGP4 fails (a decayed orbit) read as -90.
    """
    whole, fraction = _split(jd)
    error, teme, _ = satrec.sgp4_array(whole, fraction)
    theta = gmst(jd)
    c, s = np.cos(theta), np.sin(theta)
    ecef = np.stack(
        [c * teme[:, 0] + s * teme[:, 1], -s * teme[:, 0] + c * teme[:, 1], teme[:, 2]], axis=-1
    )
    rho = ecef[None, :, :] - sites[:, None, :]
    sine = np.einsum("stk,sk->st", rho, ups) / np.linalg.norm(rho, axis=-1)
    elevation = np.degrees(np.arcsin(np.clip(sine, -1.0, 1.0)))
    elevation[:, error != 0] = -90.0
    return elevation


def passes(
    satrec: Any,
    stations: list[Station],
    start_jd: float,
    seconds: float,
    min_elevation: float,
    step: float = 10.0,
) -> list[list[tuple[float, float]]]:
    """Each station's visibility windows of one satellite, in seconds from ``start_jd``.

    Windows are clipped to ``[0, seconds]``; rises and sets are bisected to a
    millisecond, then rounded inwards to whole seconds.
    """
    sites = np.stack([s.ecef() for s in stations])
    ups = np.stack([s.up() for s in stations])
    times = np.append(np.arange(0.0, seconds, step), seconds)
    above = elevations(satrec, start_jd + times / 86400.0, sites, ups) >= min_elevation
    # crossings between samples k and k + 1, refined together
    st, k = np.nonzero(above[:, 1:] != above[:, :-1])
    lo, hi = times[k].copy(), times[k + 1].copy()
    rising = above[st, k + 1]
    for _ in range(int(math.ceil(math.log2(step / 1e-3)))):
        mid = (lo + hi) / 2
        up_now = (
            elevations(satrec, start_jd + mid / 86400.0, sites, ups)[st, np.arange(len(mid))]
            >= min_elevation
        )
        go_right = up_now != rising  # still before the crossing
        lo = np.where(go_right, mid, lo)
        hi = np.where(go_right, hi, mid)
    crossing = (lo + hi) / 2
    windows: list[list[tuple[float, float]]] = []
    for s in range(len(stations)):
        mine = st == s
        events = sorted(zip(crossing[mine].tolist(), rising[mine].tolist(), strict=True))
        found = []
        rise = 0.0 if above[s, 0] else None
        for t, is_rise in events:
            if is_rise:
                rise = t
            elif rise is not None:
                found.append((rise, t))
                rise = None
        if rise is not None:
            found.append((rise, seconds))
        windows.append(
            [(float(math.ceil(a)), float(math.floor(b))) for a, b in found if math.floor(b) > a]
        )
    return windows


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def satellite_instance(
    tle: str | Path | None = None,
    stations: str | Path | None = None,
    *,
    hours: float = 24.0,
    min_elevation: float = 10.0,
    start: dt.datetime | None = None,
    every: float = 1.0,
    track_minutes: float = 10.0,
    min_track_minutes: float = 5.0,
    setup_minutes: float = 5.0,
    teardown_minutes: float = 2.0,
    step: float = 10.0,
) -> ContactInstance:
    """The contact-scheduling instance of satellites over stations; see the module docstring.

    Parameters
    ----------
    tle, stations
        TLE and station files; default: the copies shipped in ``rota/data/satellites``.
    hours
        Length of the horizon.
    min_elevation
        Elevation mask, degrees.
    start
        UTC start of the horizon; default: the latest TLE epoch, down to the minute.
    every
        Hours between a satellite's successive requests (the length of each window).
    track_minutes, min_track_minutes
        Requested and minimum track length.
    setup_minutes, teardown_minutes
        Antenna time before and after each track.
    step
        Sampling step of the elevation, seconds.

    Raises
    ------
    ValueError
        A bad argument, named (a ``FormatError`` for a bad file).
    """
    hours = _positive("hours", hours)
    if hours > 24 * 31:
        raise ValueError(f"hours is {hours:g}, more than a month: SGP4 drifts far from the epoch")
    every = _positive("every", every)
    if not -5 <= min_elevation < 90:
        raise ValueError(f"min_elevation is {min_elevation!r}, expected -5 to 90 degrees")
    track = _positive("track_minutes", track_minutes) * 60
    minimum = _positive("min_track_minutes", min_track_minutes) * 60
    if minimum > track:
        raise ValueError(
            f"min_track_minutes {min_track_minutes:g} > track_minutes {track_minutes:g}"
        )
    if track > min(every, hours) * 3600:
        raise ValueError(f"track_minutes {track_minutes:g} is longer than a request window")
    for name, value in (("setup_minutes", setup_minutes), ("teardown_minutes", teardown_minutes)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    step = _positive("step", step)
    tle_path = Path(tle) if tle is not None else default_tle()
    station_path = Path(stations) if stations is not None else default_stations()
    satellites = read_tles(tle_path)
    sites = read_stations(station_path)
    if start is None:
        latest = max(s.jdsatepoch + s.jdsatepochF for _, s in satellites)
        unix = math.floor((latest - _JD_UNIX) * 86400 / 60) * 60
        start = dt.datetime.fromtimestamp(unix, dt.UTC)
    elif start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    start_jd = _JD_UNIX + start.timestamp() / 86400
    seconds = hours * 3600

    antennas = [
        Antenna(f"{site.name}-{k + 1}", site.name) for site in sites for k in range(site.antennas)
    ]
    station_of = [s for s, site in enumerate(sites) for _ in range(site.antennas)]
    requests = []
    dropped = 0
    window_count = math.ceil(seconds / (every * 3600) - 1e-9)
    total_passes = 0
    for name, satrec in satellites:
        windows = passes(satrec, sites, start_jd, seconds, min_elevation, step)
        total_passes += sum(len(w) for w in windows)
        for k in range(window_count):
            w0, w1 = k * every * 3600, min(seconds, (k + 1) * every * 3600)
            if w1 - w0 < track:
                continue
            resources_ = tuple(
                Resource(
                    (antenna.name,),
                    tuple(
                        (max(a, w0), min(b, w1))
                        for a, b in windows[station_of[i]]
                        if min(b, w1) - max(a, w0) >= 1
                    ),
                )  # fmt: skip
                for i, antenna in enumerate(antennas)
            )
            if not any(b - a >= minimum for res in resources_ for a, b in res.view_periods):
                dropped += 1
                continue
            requests.append(
                Request(
                    id=f"{name}/{k}",
                    mission=name,
                    duration=track,
                    min_duration=minimum,
                    window=(float(w0), float(w1)),
                    resources=resources_,
                    setup=setup_minutes * 60.0,
                    teardown=teardown_minutes * 60.0,
                )  # fmt: skip
            )
    if not requests:
        raise ValueError(
            f"no satellite of {tle_path} passes over a station of {station_path} for "
            f"{min_track_minutes:g} minutes in {hours:g} hours above {min_elevation:g} degrees"
        )
    return ContactInstance(
        antennas=tuple(antennas),
        requests=tuple(requests),
        name=f"{tle_path.stem}-{hours:g}h",
        metadata={
            "source": "rota.data.orbits", "tle": tle_path.name, "stations": station_path.name,
            "start_utc": start.isoformat(), "hours": hours, "min_elevation_deg": min_elevation,
            "every_hours": every, "passes": total_passes, "requests_without_pass": dropped,
        },
    )  # fmt: skip


__all__ = [
    "Station", "default_stations", "default_tle", "elevations", "gmst", "passes", "read_stations",
    "read_tles", "satellite_instance",
]  # fmt: skip
