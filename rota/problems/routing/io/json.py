"""rota's JSON formats for routing instances, solutions and results.

Instance (``"format": "rota.routing/1"``); only ``distance`` (or ``coords``)
and ``vehicle_types`` are required::

    {
      "format": "rota.routing/1",
      "name": "depot-and-3",
      "distance": [[0, 5, 7, 3], [5, 0, 4, 6], [6, 4, 0, 2], [3, 6, 2, 0]],
      "duration": null,                     # (n, n) travel times, optional
      "depots": [0],
      "demand": [0, 2, 3, 1],
      "service_time": [0, 0, 0, 0],
      "time_windows": [[0, 100], [0, 50], [10, 60], [0, 90]],   # optional
      "coords": [[0, 0], [5, 0], [5, 4], [2, 3]],               # optional
      "vehicle_types": [
        {"capacity": 5, "count": 2, "fixed_cost": 0, "unit_distance_cost": 1,
         "depot": 0, "name": "van"}
      ],
      "metadata": {"source": "hand-made"}
    }

``capacity: null`` is an uncapacitated vehicle, a list of numbers one
capacity per load dimension, and ``count: null`` an unlimited fleet. The
constraints of richer fleets are optional fields with the meaning
:class:`~rota.problems.routing.RoutingInstance` gives them: per vehicle type
``end_depot``, ``max_distance``, ``max_duration``, ``unit_duration_cost``,
``allowed_clients``, ``reload_depots`` and ``max_reloads``; per instance
``pickup``, ``release_time``, ``prize``, ``required`` (booleans),
``groups`` (``[{"clients": [3, 4], "required": true}]``), ``shipments``
(``[{"pickup": 1, "delivery": 5, "amount": [2]}]``) and ``linehaul_first``;
``demand`` and ``pickup`` may have one column per load dimension.

When ``distance`` is absent it is the Euclidean distance between ``coords``,
rounded as ``"distance_rounding"`` says: ``"exact"`` (default), ``"nearest"``
(nearest integer, as CVRPLIB) or ``"floor1"`` (down to one decimal, as
Solomon's published BKS).

A JSON-lines file (``.jsonl``) holds one instance per line.

Solution (``"format": "rota.solution/1"``)::

    {"format": "rota.solution/1", "instance": "depot-and-3",
     "routes": [{"visits": [1, 2], "vehicle_type": 0}, {"visits": [3], "vehicle_type": 0}]}

A result file (``"format": "rota.result/1"``, see :mod:`rota.solvers.results`)
stores the ``routes`` list of its solution in its ``solution`` field.

Reading and writing files is generic (:mod:`rota.problems`); this module only
converts between JSON objects and routing instances and solutions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rota.errors import FormatError
from rota.files import json_safe, matrix_bytes, require_memory
from rota.problems.routing.model import (
    ClientGroup,
    Route,
    RoutingInstance,
    RoutingSolution,
    Shipment,
    VehicleType,
)

INSTANCE_FORMAT = "rota.routing/1"
SOLUTION_FORMAT = "rota.solution/1"

_ROUNDINGS = {
    "exact": lambda d: d,
    "nearest": lambda d: np.floor(d + 0.5),
    "floor1": lambda d: np.floor(d * 10 + 1e-9) / 10,
}


def euclidean(coords: np.ndarray, rounding: str = "exact") -> np.ndarray:
    """Pairwise Euclidean distances, rounded by a named convention."""
    if rounding not in _ROUNDINGS:
        raise ValueError(
            f"distance_rounding is {rounding!r}, expected one of {', '.join(_ROUNDINGS)}"
        )
    n = coords.shape[0]
    require_memory(matrix_bytes(n, 4), f"the distance matrix of {n} locations")
    diff = coords[:, None, :] - coords[None, :, :]
    return _ROUNDINGS[rounding](np.sqrt((diff**2).sum(-1)))


#: Vehicle fields written only when they differ from their defaults, so that
#: plain instances keep their short, long-standing JSON.
_VEHICLE_OPTIONAL = {
    "end_depot": None, "max_distance": None, "max_duration": None, "unit_duration_cost": 0.0,
    "allowed_clients": None, "reload_depots": (), "max_reloads": None,
}  # fmt: skip


def _vehicle_to_dict(vt: VehicleType) -> dict[str, Any]:
    data = {
        "capacity": list(vt.capacity) if isinstance(vt.capacity, tuple) else vt.capacity,
        "count": vt.count,
        "fixed_cost": vt.fixed_cost,
        "unit_distance_cost": vt.unit_distance_cost,
        "depot": vt.depot,
        "name": vt.name,
    }
    for name, default in _VEHICLE_OPTIONAL.items():
        value = getattr(vt, name)
        if value != default:
            data[name] = list(value) if isinstance(value, tuple) else value
    return data


def instance_to_dict(instance: RoutingInstance) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format": INSTANCE_FORMAT,
        "name": instance.name,
        "distance": instance.distance,
        "depots": list(instance.depots),
        "demand": instance.demand,
        "service_time": instance.service_time,
        "vehicle_types": [_vehicle_to_dict(vt) for vt in instance.vehicle_types],
        "metadata": dict(instance.metadata),
    }
    for optional in ("duration", "time_windows", "coords", "pickup", "release_time", "prize"):
        value = getattr(instance, optional)
        if value is not None:
            data[optional] = value
    if not instance.required.all():
        data["required"] = instance.required
    if instance.groups:
        data["groups"] = [
            {"clients": list(g.clients), "required": g.required} for g in instance.groups
        ]
    if instance.shipments:
        data["shipments"] = [
            {"pickup": s.pickup, "delivery": s.delivery, "amount": list(s.amounts)}
            for s in instance.shipments
        ]
    if instance.linehaul_first:
        data["linehaul_first"] = True
    return json_safe(data)


_VEHICLE_FIELDS = {
    "capacity", "count", "fixed_cost", "unit_distance_cost", "depot", "name", *_VEHICLE_OPTIONAL,
}  # fmt: skip
_INSTANCE_FIELDS = {
    "format", "name", "distance", "distance_rounding", "duration", "depots", "demand",
    "service_time", "time_windows", "coords", "vehicle_types", "metadata", "pickup",
    "release_time", "prize", "required", "groups", "shipments", "linehaul_first",
}  # fmt: skip


def _records(data: dict, key: str, fields: set[str], where: str) -> list[dict]:
    """The objects of list field ``key``, each with only ``fields``."""
    items = data.get(key, [])
    if not isinstance(items, list):
        raise FormatError(f"{where}: field {key!r} must be a list")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise FormatError(f"{where}: {key}[{i}] must be an object")
        extra = sorted(set(item) - fields)
        if extra:
            raise FormatError(f"{where}: {key}[{i}] has unknown field {extra[0]!r}")
    return items


def instance_from_dict(data: Any, where: str = "JSON") -> RoutingInstance:
    """Build an instance from a decoded JSON object; errors name the field."""
    if not isinstance(data, dict):
        raise FormatError(f"{where}: expected a JSON object, got {type(data).__name__}")
    fmt = data.get("format", INSTANCE_FORMAT)
    if fmt != INSTANCE_FORMAT:
        raise FormatError(f"{where}: field 'format' is {fmt!r}, expected {INSTANCE_FORMAT!r}")
    unknown = sorted(set(data) - _INSTANCE_FIELDS)
    if unknown:
        raise FormatError(f"{where}: unknown field {unknown[0]!r}")
    if "vehicle_types" not in data:
        raise FormatError(f"{where}: missing field 'vehicle_types'")
    vehicles = data["vehicle_types"]
    if not isinstance(vehicles, list):
        raise FormatError(f"{where}: field 'vehicle_types' must be a list")
    types = []
    for k, vt in enumerate(vehicles):
        if not isinstance(vt, dict):
            raise FormatError(f"{where}: vehicle_types[{k}] must be an object")
        extra = sorted(set(vt) - _VEHICLE_FIELDS)
        if extra:
            raise FormatError(f"{where}: vehicle_types[{k}] has unknown field {extra[0]!r}")
        try:
            types.append(VehicleType(**vt))
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{where}: vehicle_types[{k}]: {exc}") from None
    try:
        if "distance" in data:
            distance = data["distance"]
        elif data.get("coords") is not None:
            coords = np.asarray(data["coords"], dtype=float)
            if coords.ndim != 2 or coords.shape[1] != 2:
                raise ValueError(f"coords has shape {coords.shape}, expected (n, 2)")
            distance = euclidean(coords, data.get("distance_rounding", "exact"))
        else:
            raise FormatError(f"{where}: missing field 'distance' (or 'coords')")
        groups = [
            ClientGroup(**g) for g in _records(data, "groups", {"clients", "required"}, where)
        ]
        shipments = [
            Shipment(**s)
            for s in _records(data, "shipments", {"pickup", "delivery", "amount"}, where)
        ]
        return RoutingInstance(
            distance=distance,
            vehicle_types=tuple(types),
            depots=tuple(data.get("depots", (0,))),
            demand=data.get("demand"),
            service_time=data.get("service_time"),
            time_windows=data.get("time_windows"),
            duration=data.get("duration"),
            coords=data.get("coords"),
            name=str(data.get("name", "instance")),
            metadata=data.get("metadata") or {},
            pickup=data.get("pickup"),
            release_time=data.get("release_time"),
            prize=data.get("prize"),
            required=data.get("required"),
            groups=tuple(groups),
            shipments=tuple(shipments),
            linehaul_first=data.get("linehaul_first", False),
        )
    except FormatError:
        raise
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{where}: {exc}") from None


def solution_to_dict(solution: RoutingSolution, instance_name: str | None = None) -> dict:
    data: dict[str, Any] = {"format": SOLUTION_FORMAT}
    if instance_name is not None:
        data["instance"] = instance_name
    data["routes"] = [
        {"visits": list(r.visits), "vehicle_type": r.vehicle_type} for r in solution.routes
    ]
    return data


def solution_from_dict(data: Any, where: str = "JSON") -> RoutingSolution:
    if not isinstance(data, dict) or not isinstance(data.get("routes"), list):
        raise FormatError(f"{where}: expected an object with a 'routes' list")
    routes = []
    for r, route in enumerate(data["routes"]):
        if isinstance(route, list):  # bare lists of clients are accepted too
            route = {"visits": route}
        if not isinstance(route, dict) or not isinstance(route.get("visits"), list):
            raise FormatError(f"{where}: routes[{r}] must have a 'visits' list")
        visits = route["visits"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in visits):
            raise FormatError(f"{where}: routes[{r}].visits must hold integers, got {visits}"[:300])
        if not all(0 <= v < 2**62 for v in visits):
            raise FormatError(f"{where}: routes[{r}].visits holds an index out of range")
        vehicle_type = route.get("vehicle_type", 0)
        if not isinstance(vehicle_type, int):
            raise FormatError(f"{where}: routes[{r}].vehicle_type is {vehicle_type!r}")
        routes.append(Route(tuple(visits), vehicle_type))
    return RoutingSolution(tuple(routes))
