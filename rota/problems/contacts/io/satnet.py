"""SatNet week files: real NASA Deep Space Network requests, read exactly as published.

The SatNet benchmark (Goh et al., "SatNet: A Benchmark for Satellite
Scheduling Optimization", AAAI 2022 ML4OR workshop) publishes each week as
``{"W10_2018": [request, ...]}``. A request has ``subject`` (the mission),
``track_id``, ``duration`` and ``duration_min`` (hours), ``setup_time`` and
``teardown_time`` (minutes), ``time_window_start``/``time_window_end`` (Unix
seconds), ``resources`` (antenna combinations: ``["DSS-34"]`` or an array
``["DSS-34", "DSS-35"]``) and ``resource_vp_dict``: per resource, its view
periods, of which a track must lie inside ``TRX ON`` .. ``TRX OFF`` (the
transmitter window, as SatNet's simulator uses it). Resources listed without
view periods are kept, and can never be used.

Maintenance comes from ``<file stem>_maintenance.csv`` (else
``<week>_maintenance.csv``) beside the week file, when present: rows
``week, year, starttime, endtime, antenna`` in Unix seconds. Rows whose
interval does not meet the requests' horizon are left out, so SatNet's
all-weeks ``maintenance.csv`` serves as well.

Durations become seconds, rounded to whole seconds when they are whole up to
float noise (``5.3 h`` is 19080 s). DSN antenna ``DSS-NN`` belongs to the
Goldstone (1x, 2x), Canberra (3x, 4x) or Madrid (5x, 6x) complex.

Not modelled: SatNet's simulator may split a request of 8 h or more into
several tracks of at least 4 h each; here every request gets at most one
track, as in the family's model.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from rota.errors import FormatError
from rota.files import load_text
from rota.problems.contacts.model import Antenna, ContactInstance, Request, Resource

_HEAD = re.compile(r'\s*\{\s*"([^"\\]{1,100})"\s*:\s*\[\s*\{')
_REQUIRED = (
    "subject", "track_id", "duration", "duration_min", "setup_time", "teardown_time",
    "time_window_start", "time_window_end", "resources", "resource_vp_dict",
)  # fmt: skip
_COMPLEXES = {"1": "Goldstone", "2": "Goldstone", "3": "Canberra", "4": "Canberra",
              "5": "Madrid", "6": "Madrid"}  # fmt: skip
_MAINTENANCE_COLUMNS = ("starttime", "endtime", "antenna")


def looks_like_satnet(text: str) -> bool:
    """Whether ``text`` opens as a SatNet week: one key holding a list of requests."""
    head = text[:65536]
    return bool(_HEAD.match(head)) and '"resource_vp_dict"' in head and '"track_id"' in head


def _seconds(value: Any, unit: float, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormatError(f"{where}: field {name!r} must be a number, got {value!r}")
    seconds = float(value) * unit
    whole = round(seconds)
    # hours given to one decimal are whole seconds, up to the float noise of * 3600
    return float(whole) if abs(seconds - whole) <= 1e-6 * max(1.0, abs(seconds)) else seconds


def station_of(antenna: str) -> str | None:
    """The DSN complex of ``DSS-NN``, or None for any other name."""
    match = re.fullmatch(r"DSS-(\d)\d", antenna)
    return _COMPLEXES.get(match.group(1)) if match else None


def _view_periods(value: Any, where: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list):
        raise FormatError(f"{where}: expected a list of view periods")
    periods = []
    for k, vp in enumerate(value):
        if not isinstance(vp, dict) or "TRX ON" not in vp or "TRX OFF" not in vp:
            raise FormatError(f"{where}[{k}]: expected an object with 'TRX ON' and 'TRX OFF'")
        periods.append(
            (
                _seconds(vp["TRX ON"], 1, f"{where}[{k}]", "TRX ON"),
                _seconds(vp["TRX OFF"], 1, f"{where}[{k}]", "TRX OFF"),
            )
        )
    return tuple(periods)


def _request(item: Any, where: str) -> Request:
    if not isinstance(item, dict):
        raise FormatError(f"{where}: expected a request object, got {type(item).__name__}")
    track_id = item.get("track_id")
    if track_id is not None:
        if not isinstance(track_id, str | int) or isinstance(track_id, bool):
            raise FormatError(f"{where}: field 'track_id' must be a string, got {track_id!r}")
        where = f"{where} ({track_id})"
    for name in _REQUIRED:
        if name not in item:
            raise FormatError(f"{where}: missing field {name!r}")
    listed = item["resources"]
    vp_dict = item["resource_vp_dict"]
    if not isinstance(listed, list) or not all(
        isinstance(group, list) and all(isinstance(a, str) for a in group) for group in listed
    ):
        raise FormatError(f"{where}: field 'resources' must be a list of antenna-name lists")
    if not isinstance(vp_dict, dict):
        raise FormatError(f"{where}: field 'resource_vp_dict' must be an object")
    names = list(dict.fromkeys([*("_".join(group) for group in listed), *vp_dict]))
    resources = tuple(
        Resource(
            tuple(name.split("_")),
            _view_periods(vp_dict.get(name, []), f"{where}: resource_vp_dict[{name!r}]"),
        )
        for name in names
    )
    return Request(
        id=str(track_id),
        mission=str(item["subject"]),
        duration=_seconds(item["duration"], 3600, where, "duration"),
        min_duration=_seconds(item["duration_min"], 3600, where, "duration_min"),
        window=(
            _seconds(item["time_window_start"], 1, where, "time_window_start"),
            _seconds(item["time_window_end"], 1, where, "time_window_end"),
        ),
        resources=resources,
        setup=_seconds(item["setup_time"], 60, where, "setup_time"),
        teardown=_seconds(item["teardown_time"], 60, where, "teardown_time"),
    )


def maintenance_file(path: Path, week: str) -> Path | None:
    """The maintenance CSV beside a week file, if there is one."""
    for stem in dict.fromkeys((path.stem, week)):
        candidate = path.with_name(f"{stem}_maintenance.csv")
        if candidate.is_file():
            return candidate
    return None


def read_maintenance(
    path: Path, horizon: tuple[float, float]
) -> dict[str, list[tuple[float, float]]]:
    """Antenna -> maintenance intervals from a SatNet CSV, those meeting ``horizon`` only."""
    rows = csv.DictReader(io.StringIO(load_text(path)))
    missing = [c for c in _MAINTENANCE_COLUMNS if c not in (rows.fieldnames or [])]
    if missing:
        raise FormatError(f"{path}: line 1: missing column {missing[0]!r}")
    spans: dict[str, list[tuple[float, float]]] = {}
    for lineno, row in enumerate(rows, 2):
        try:
            start, end = float(row["starttime"]), float(row["endtime"])
        except (TypeError, ValueError):
            raise FormatError(
                f"{path}: line {lineno}: starttime/endtime {row['starttime']!r}, "
                f"{row['endtime']!r} are not numbers"
            ) from None
        antenna = (row["antenna"] or "").strip()
        if not antenna:
            raise FormatError(f"{path}: line {lineno}: empty antenna")
        if not start < end:
            raise FormatError(f"{path}: line {lineno}: starttime {start:g} >= endtime {end:g}")
        if end > horizon[0] and start < horizon[1]:
            spans.setdefault(antenna, []).append((start, end))
    return spans


def read_week(path: Path, text: str | None = None) -> ContactInstance:
    """The instance of a SatNet week file, with the maintenance CSV beside it when present.

    Raises
    ------
    FormatError
        One line naming the file, the request and the field.
    """
    path = Path(path)
    text = load_text(path) if text is None else text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: line {exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or len(data) != 1:
        count = len(data) if isinstance(data, dict) else 0
        raise FormatError(
            f"{path}: a SatNet week file holds one week, this one holds {count} keys; "
            "split it into one file per week"
        )
    ((week, items),) = data.items()
    if not isinstance(items, list) or not items:
        raise FormatError(f"{path}: week {week!r} must be a non-empty list of requests")
    requests = [_request(item, f"{path}: {week}[{k}]") for k, item in enumerate(items)]
    horizon = (min(r.window[0] for r in requests), max(r.window[1] for r in requests))
    csv_path = maintenance_file(path, week)
    maintenance = read_maintenance(csv_path, horizon) if csv_path is not None else {}
    names = dict.fromkeys(
        [*(a for r in requests for res in r.resources for a in res.antennas), *maintenance]
    )
    antennas = tuple(
        Antenna(name, station_of(name), tuple(maintenance.get(name, ()))) for name in sorted(names)
    )
    metadata = {"source": str(path), "format": "satnet", "week": week}
    if csv_path is not None:
        metadata["maintenance"] = str(csv_path)
    try:
        return ContactInstance(
            antennas=antennas, requests=tuple(requests), objective="hours", name=week,
            metadata=metadata,
        )  # fmt: skip
    except ValueError as exc:
        raise FormatError(f"{path}: {exc}") from None


__all__ = ["looks_like_satnet", "maintenance_file", "read_maintenance", "read_week", "station_of"]
