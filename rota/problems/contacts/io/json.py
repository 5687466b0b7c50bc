"""rota JSON for contact scheduling: ``rota.contacts/1`` instances and
``rota.contacts.solution/1`` schedules.

An instance::

    {"format": "rota.contacts/1", "name": "W10_2018", "objective": "hours", "mode_switch": 0,
     "antennas": [{"name": "DSS-34", "station": "Canberra", "maintenance": [[s, e], ...]}, ...],
     "requests": [{"id": "fc9bbb54-3-1", "mission": "521", "duration": 3600,
                   "min_duration": 3600, "window": [s, e], "setup": 3600, "teardown": 900,
                   "value": 1, "resources": [{"antennas": ["DSS-34"],
                                              "view_periods": [[s, e], ...]}, ...]}, ...],
     "metadata": {...}}

Times are seconds. ``station``, ``maintenance``, ``setup``, ``teardown``,
``value``, ``spacecraft``, ``mode_switch`` and ``metadata`` are optional.
A schedule::

    {"format": "rota.contacts.solution/1", "instance": "W10_2018",
     "tracks": [{"request": "fc9bbb54-3-1", "resource": "DSS-34", "start": s, "end": e}, ...]}
"""

from __future__ import annotations

from typing import Any

from rota.errors import FormatError
from rota.problems.contacts.model import (
    Antenna,
    ContactInstance,
    ContactSolution,
    Request,
    Resource,
    Track,
)

INSTANCE_FORMAT = "rota.contacts/1"
SOLUTION_FORMAT = "rota.contacts.solution/1"

_INSTANCE_FIELDS = {
    "format",
    "name",
    "objective",
    "mode_switch",
    "antennas",
    "requests",
    "metadata",
}
_ANTENNA_FIELDS = {"name", "station", "maintenance"}
_REQUEST_FIELDS = {
    "id", "mission", "spacecraft", "duration", "min_duration", "window", "setup", "teardown",
    "value", "resources",
}  # fmt: skip
_RESOURCE_FIELDS = {"antennas", "view_periods"}
_TRACK_FIELDS = {"request", "resource", "start", "end"}


def compact(value: float) -> int | float:
    """``value`` as an int when it is integral, so files read as the data was given."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _object(data: Any, where: str, fields: set[str], required: tuple[str, ...]) -> dict:
    if not isinstance(data, dict):
        raise FormatError(f"{where}: expected a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - fields)
    if unknown:
        raise FormatError(f"{where}: unknown field {unknown[0]!r}")
    for name in required:
        if name not in data:
            raise FormatError(f"{where}: missing field {name!r}")
    return data


def _list(data: Any, where: str, name: str) -> list:
    if not isinstance(data, list):
        raise FormatError(f"{where}: field {name!r} must be a list, got {type(data).__name__}")
    return data


def instance_from_dict(data: Any, where: str = "JSON") -> ContactInstance:
    """An instance from a decoded ``rota.contacts/1`` object.

    Raises
    ------
    FormatError
        One line naming ``where``, the request or antenna and the field.
    """
    data = _object(data, where, _INSTANCE_FIELDS, ("antennas", "requests"))
    if data.get("format", INSTANCE_FORMAT) != INSTANCE_FORMAT:
        raise FormatError(
            f"{where}: field 'format' is {data['format']!r}, expected {INSTANCE_FORMAT!r}"
        )
    try:
        antennas = []
        for k, item in enumerate(_list(data["antennas"], where, "antennas")):
            item = _object(item, f"{where}: antennas[{k}]", _ANTENNA_FIELDS, ("name",))
            maintenance = _list(
                item.get("maintenance", []), f"{where}: antennas[{k}]", "maintenance"
            )
            antennas.append(Antenna(item["name"], item.get("station"), tuple(maintenance)))
        requests = []
        for k, item in enumerate(_list(data["requests"], where, "requests")):
            at = f"{where}: requests[{k}]"
            item = _object(
                item, at, _REQUEST_FIELDS,
                ("id", "mission", "duration", "min_duration", "window", "resources"),
            )  # fmt: skip
            resources = []
            for j, res in enumerate(_list(item["resources"], at, "resources")):
                res = _object(res, f"{at} resources[{j}]", _RESOURCE_FIELDS, ("antennas",))
                names = _list(res["antennas"], f"{at} resources[{j}]", "antennas")
                periods = _list(res.get("view_periods", []), f"{at} resources[{j}]", "view_periods")
                resources.append(Resource(tuple(names), tuple(periods)))
            requests.append(
                Request(
                    id=item["id"],
                    mission=item["mission"],
                    duration=item["duration"],
                    min_duration=item["min_duration"],
                    window=item["window"],
                    resources=tuple(resources),
                    setup=item.get("setup", 0.0),
                    teardown=item.get("teardown", 0.0),
                    value=item.get("value", 1.0),
                    spacecraft=item.get("spacecraft"),
                )
            )
        metadata = data.get("metadata", {})
        if not isinstance(metadata, dict):
            raise FormatError(f"{where}: field 'metadata' must be an object")
        return ContactInstance(
            antennas=tuple(antennas),
            requests=tuple(requests),
            objective=data.get("objective", "hours"),
            mode_switch=data.get("mode_switch", 0.0),
            name=str(data.get("name", "contacts")),
            metadata=metadata,
        )
    except FormatError:
        raise
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{where}: {exc}") from None


def _pairs(intervals: tuple[tuple[float, float], ...]) -> list[list[int | float]]:
    return [[compact(a), compact(b)] for a, b in intervals]


def instance_to_dict(instance: ContactInstance) -> dict[str, Any]:
    """The ``rota.contacts/1`` object of ``instance``; :func:`instance_from_dict` reads it back."""
    antennas = []
    for antenna in instance.antennas:
        item: dict[str, Any] = {"name": antenna.name}
        if antenna.station is not None:
            item["station"] = antenna.station
        if antenna.maintenance:
            item["maintenance"] = _pairs(antenna.maintenance)
        antennas.append(item)
    requests = []
    for r in instance.requests:
        item = {"id": r.id, "mission": r.mission}
        if r.spacecraft is not None:
            item["spacecraft"] = r.spacecraft
        item.update(
            duration=compact(r.duration), min_duration=compact(r.min_duration),
            window=[compact(r.window[0]), compact(r.window[1])], setup=compact(r.setup),
            teardown=compact(r.teardown), value=compact(r.value),
            resources=[
                {"antennas": list(res.antennas), "view_periods": _pairs(res.view_periods)}
                for res in r.resources
            ],
        )  # fmt: skip
        requests.append(item)
    return {
        "format": INSTANCE_FORMAT,
        "name": instance.name,
        "objective": instance.objective,
        "mode_switch": compact(instance.mode_switch),
        "antennas": antennas,
        "requests": requests,
        "metadata": dict(instance.metadata),
    }


def solution_from_dict(data: Any, where: str = "JSON") -> ContactSolution:
    """A schedule from a decoded ``rota.contacts.solution/1`` object."""
    data = _object(data, where, {"format", "instance", "tracks"}, ("tracks",))
    if data.get("format", SOLUTION_FORMAT) != SOLUTION_FORMAT:
        raise FormatError(
            f"{where}: field 'format' is {data['format']!r}, expected {SOLUTION_FORMAT!r}"
        )
    tracks = []
    for k, item in enumerate(_list(data["tracks"], where, "tracks")):
        at = f"{where}: tracks[{k}]"
        item = _object(item, at, _TRACK_FIELDS, tuple(sorted(_TRACK_FIELDS)))
        try:
            tracks.append(Track(item["request"], item["resource"], item["start"], item["end"]))
        except ValueError as exc:
            raise FormatError(f"{at}: {exc}") from None
    return ContactSolution(tuple(tracks))


def solution_to_dict(solution: ContactSolution, instance_name: str | None = None) -> dict[str, Any]:
    """The ``rota.contacts.solution/1`` object of ``solution``, naming the instance if given."""
    data: dict[str, Any] = {"format": SOLUTION_FORMAT}
    if instance_name is not None:
        data["instance"] = instance_name
    data["tracks"] = [
        {"request": t.request, "resource": t.resource, "start": compact(t.start),
         "end": compact(t.end)}
        for t in solution.tracks
    ]  # fmt: skip
    return data


__all__ = [
    "INSTANCE_FORMAT", "SOLUTION_FORMAT", "compact", "instance_from_dict", "instance_to_dict",
    "solution_from_dict", "solution_to_dict",
]  # fmt: skip
