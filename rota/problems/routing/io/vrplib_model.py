"""From a parsed VRPLIB or TSPLIB file to a :class:`~rota.problems.routing.RoutingInstance`.

The file mechanics (header, sections, explicit matrices) are in
:mod:`rota.problems.routing.io.vrplib`; this module gives the sections their
meaning:

- ``TYPE``: ``TSP`` and ``ATSP`` (one uncapacitated vehicle, ``count=1``,
  depot 0); ``CVRP``/``ACVRP``, ``VRPTW``/``CVRPTW``, ``HFVRP`` and the types
  of PyVRP's dialect (``VRPB``, ``VRPSPD``, ``PDPTW``, ``MTVRPTW``,
  ``MDVRPTW``, ``SDVRPTW``, ``CPTP``, ``PCVRP``, ``GTSP``). Without ``TYPE``,
  a file with a ``DEMAND_SECTION`` is a CVRP and one without is a TSP.
- ``EDGE_WEIGHT_TYPE``: ``EUC_2D`` is rounded to the nearest integer (the
  CVRPLIB convention), truncated to one decimal for the Solomon-based types
  (``VRPTW``, ``CVRPTW``, ``MTVRPTW``, as their published results are) and
  kept exact for the types whose literature does (``HFVRP``, ``PDPTW``,
  ``MDVRPTW``, ``SDVRPTW``);
  ``CEIL_2D``, ``ATT`` and ``EXPLICIT`` matrices as TSPLIB defines them.
- Clients: ``DEMAND_SECTION`` (or ``LINEHAUL_SECTION``) with one column per
  load dimension, ``BACKHAUL_SECTION`` (pickups), ``SERVICE_TIME_SECTION`` or
  header ``SERVICE_TIME``, ``TIME_WINDOW_SECTION``, ``RELEASE_TIME_SECTION``,
  ``PRIZE_SECTION`` (a client with a prize is optional, one without is
  required, as in PyVRP), ``MUTUALLY_EXCLUSIVE_GROUP_SECTION`` (its clients
  are optional, exactly one of each group is visited; one-client groups are
  dropped) and ``PICKUP_AND_DELIVERY_SECTION`` (Li and Lim / LKH-3: every
  non-depot node is one end of a shipment; the row gives its amount, window
  and service time). ``TYPE : VRPB`` puts linehauls before backhauls.
- Vehicles: header ``CAPACITY`` and ``VEHICLES``, or one row per vehicle in
  ``CAPACITY_SECTION`` (one column per load dimension),
  ``VEHICLES_FIXED_COST_SECTION``, ``VEHICLES_UNIT_DISTANCE_COST_SECTION``,
  ``VEHICLES_DEPOT_SECTION``, ``VEHICLES_MAX_DISTANCE_SECTION``,
  ``VEHICLES_MAX_DURATION_SECTION``, ``VEHICLES_MAX_RELOADS_SECTION``,
  ``VEHICLES_ALLOWED_CLIENTS_SECTION`` and ``VEHICLES_RELOAD_DEPOT_SECTION``;
  ``VEHICLES_MAX_DISTANCE``, ``VEHICLES_MAX_DURATION`` and
  ``VEHICLES_MAX_RELOADS`` give one value for every vehicle. Consecutive
  identical vehicles become one :class:`~rota.problems.routing.VehicleType`
  with ``count`` set, in file order, so vehicle slot ``i`` of a ``.sol`` file
  maps to a type. With ``TYPE : HFVRP`` costs are scaled by 100, so
  ``fixed_cost = fixed / 100`` and ``unit_distance_cost = unit / 100``; this
  reproduces the published objectives of Pessoa et al. (2018).

Node ids are 1-based in files and locations are 0-based in rota. Fields rota
cannot model (``DISTANCE`` route-length limits without a vehicle, unknown
sections) are refused rather than dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rota.errors import FormatError
from rota.files import load_text
from rota.problems.routing.io.vrplib import (
    FLEET_KEYS,
    LIST_SECTIONS,
    VEHICLE_SECTIONS,
    VrplibFile,
    distance_matrix,
)
from rota.problems.routing.model import ClientGroup, RoutingInstance, Shipment, VehicleType

__all__ = ["HFVRP_COST_SCALE", "read_instance"]

#: Divisor applied to the vehicle cost sections of ``TYPE : HFVRP`` files.
HFVRP_COST_SCALE = 100.0

_TSP_TYPES = {"TSP", "ATSP"}
_VRP_TYPES = {
    "CVRP", "ACVRP", "VRPTW", "CVRPTW", "HFVRP", "VRPB", "VRPSPD", "PDPTW", "MTVRPTW",
    "MDVRPTW", "SDVRPTW", "CPTP", "PCVRP", "GTSP",
}  # fmt: skip
#: Types whose vehicles always have a capacity (others may be uncapacitated).
_CAPACITATED_TYPES = {"CVRP", "ACVRP", "VRPTW", "CVRPTW", "HFVRP"}
#: Types whose published results use exact (unrounded) Euclidean distances.
_EXACT_TYPES = {"HFVRP", "PDPTW", "MDVRPTW", "SDVRPTW"}
#: Solomon-based types, whose published results truncate distances to one decimal.
_FLOOR1_TYPES = {"VRPTW", "CVRPTW", "MTVRPTW"}
_EDGE_WEIGHT_TYPES = {"EUC_2D", "CEIL_2D", "ATT", "EXPLICIT"}
_ROUNDING_OF = {"EUC_2D": "nearest", "CEIL_2D": "ceil", "ATT": "att", "EXPLICIT": "explicit"}
#: Sections that describe clients or vehicles, which a TSP does not have.
_VRP_ONLY = (
    "DEMAND_SECTION", "LINEHAUL_SECTION", "BACKHAUL_SECTION", "SERVICE_TIME_SECTION",
    "TIME_WINDOW_SECTION", "RELEASE_TIME_SECTION", "PRIZE_SECTION",
    "PICKUP_AND_DELIVERY_SECTION", "DEPOT_SECTION", *VEHICLE_SECTIONS, *LIST_SECTIONS,
)  # fmt: skip


def read_instance(
    path: str | Path,
    *,
    rounding: str | None = None,
    cost_scale: float | None = None,
    text: str | None = None,
) -> RoutingInstance:
    """Read a VRPLIB or TSPLIB instance (see the module docstring for what is read).

    Parameters
    ----------
    path
        The file.
    rounding
        Override the distance convention of ``EUC_2D`` files (``"exact"``,
        ``"nearest"``, ``"floor1"``, ``"ceil"``).
    cost_scale
        Divisor of the vehicle cost sections; by default 100 for ``TYPE :
        HFVRP`` and 1 otherwise.
    text
        The file's content when the caller already read it.

    Returns
    -------
    RoutingInstance
        ``metadata`` records ``source``, ``format``, ``type``,
        ``edge_weight_type`` and ``rounding`` (and ``cost_scale`` when vehicles
        carry costs).

    Raises
    ------
    FormatError
        One line naming the file and the line or field at fault.
    """
    path = Path(path)
    f = VrplibFile(path, load_text(path) if text is None else text)

    problem = f.word("TYPE")
    if problem is None:
        vrp = any(name in f.sections for name in _VRP_ONLY) or "CAPACITY" in f.header
        problem = "CVRP" if vrp else "TSP"
    elif problem not in _TSP_TYPES | _VRP_TYPES:
        supported = ", ".join(sorted(_TSP_TYPES | _VRP_TYPES))
        f.fail(f.header["TYPE"][0], f"field TYPE must be one of {supported} (got {problem})")
    is_tsp = problem in _TSP_TYPES

    n = f.number("DIMENSION", integer=True)
    if n is None:
        f.fail_field("DIMENSION", "missing")
    if "DISTANCE" in f.header:
        f.fail(
            f.header["DISTANCE"][0],
            "field DISTANCE: give route-length limits as VEHICLES_MAX_DISTANCE",
        )
    coord_type = f.word("NODE_COORD_TYPE")
    if coord_type not in (None, "TWOD_COORDS", "NO_COORDS"):
        f.fail(f.header["NODE_COORD_TYPE"][0], f"field NODE_COORD_TYPE {coord_type} not supported")

    if is_tsp:
        for name in _VRP_ONLY:
            if name in f.sections:
                f.fail(f.sections[name].line, f"{name} is not used by TYPE {problem}")

    coords = None
    if "NODE_COORD_SECTION" in f.sections:
        coords = f.node_rows("NODE_COORD_SECTION", ("x", "y"), n)
    elif "DISPLAY_DATA_SECTION" in f.sections:
        coords = f.node_rows("DISPLAY_DATA_SECTION", ("x", "y"), n)

    metadata: dict[str, Any] = {"source": str(path), "format": "tsplib" if is_tsp else "vrplib"}
    distance = _distances(f, n, problem, coords, rounding, metadata)

    if is_tsp:
        fields: dict[str, Any] = {
            "depots": (0,),
            "vehicle_types": (VehicleType(capacity=None, count=1),),
        }
    else:
        fields = _vrp_fields(f, n, problem, cost_scale, metadata)

    name = f.text("NAME") or path.stem
    try:
        return RoutingInstance(
            distance=distance, coords=coords, name=name, metadata=metadata, **fields
        )
    except ValueError as exc:
        raise FormatError(f"{path}: invalid instance: {exc}") from None


def _distances(
    f: VrplibFile,
    n: int,
    problem: str,
    coords: np.ndarray | None,
    rounding: str | None,
    metadata: dict[str, Any],
) -> np.ndarray:
    weight_type = f.word("EDGE_WEIGHT_TYPE")
    if weight_type is None:
        f.fail_field("EDGE_WEIGHT_TYPE", "missing")
    if weight_type not in _EDGE_WEIGHT_TYPES:
        f.fail(
            f.header["EDGE_WEIGHT_TYPE"][0],
            f"field EDGE_WEIGHT_TYPE must be one of {', '.join(sorted(_EDGE_WEIGHT_TYPES))} "
            f"(got {weight_type})",
        )
    metadata.update(type=problem, edge_weight_type=weight_type)
    if f.text("COMMENT"):
        metadata["comment"] = f.text("COMMENT")
    if weight_type == "EXPLICIT":
        if rounding is not None:
            f.fail_field("EDGE_WEIGHT_TYPE", f"EXPLICIT weights cannot be rounded {rounding!r}")
        distance, nonzero_diagonal = f.edge_weights(n)
        metadata["rounding"] = "explicit"
        if nonzero_diagonal:
            metadata["diagonal"] = "file diagonal ignored (not a cost)"
        return distance
    if "EDGE_WEIGHT_SECTION" in f.sections:
        line = f.sections["EDGE_WEIGHT_SECTION"].line
        f.fail(line, f"EDGE_WEIGHT_SECTION is not used with EDGE_WEIGHT_TYPE {weight_type}")
    if coords is None or "NODE_COORD_SECTION" not in f.sections:
        f.fail_field("NODE_COORD_SECTION", f"missing; EDGE_WEIGHT_TYPE {weight_type} needs it")
    if rounding is None:
        rounding = _ROUNDING_OF[weight_type]
        if weight_type == "EUC_2D" and problem in _EXACT_TYPES:
            rounding = "exact"
        elif weight_type == "EUC_2D" and problem in _FLOOR1_TYPES:
            rounding = "floor1"
    try:
        distance = distance_matrix(coords, rounding)
    except ValueError as exc:
        raise FormatError(f"{f.path}: {exc}") from None
    metadata["rounding"] = rounding
    return distance


def _vrp_fields(
    f: VrplibFile, n: int, problem: str, cost_scale: float | None, metadata: dict[str, Any]
) -> dict[str, Any]:
    """Depots, client data and the fleet of a VRP file, as :class:`RoutingInstance` fields."""
    # Without a DEPOT_SECTION node 1 is the depot, as PyVRP reads such files; the
    # classic CVRPLIB types always name theirs.
    if "DEPOT_SECTION" not in f.sections and f.word("TYPE") in _CAPACITATED_TYPES:
        f.fail_field("DEPOT_SECTION", f"missing; TYPE {problem} needs a depot")
    depots = f.depots(n) if "DEPOT_SECTION" in f.sections else [0]
    fields: dict[str, Any] = {"depots": tuple(depots)}
    if "PICKUP_AND_DELIVERY_SECTION" in f.sections:
        fields |= _shipments(f, n, depots)
    else:
        demand_section = "LINEHAUL_SECTION" if "LINEHAUL_SECTION" in f.sections else None
        if "DEMAND_SECTION" in f.sections:
            if demand_section is not None:
                f.fail_field("LINEHAUL_SECTION", "conflicts with DEMAND_SECTION")
            demand_section = "DEMAND_SECTION"
        if demand_section is not None:
            fields["demand"] = _loads(f, demand_section, n)
        elif f.word("TYPE") in _CAPACITATED_TYPES:
            f.fail_field("DEMAND_SECTION", f"missing; TYPE {problem} needs client demands")
        if "BACKHAUL_SECTION" in f.sections:
            fields["pickup"] = _loads(f, "BACKHAUL_SECTION", n)
        fields["service_time"] = _service_times(f, n, depots)
        if "TIME_WINDOW_SECTION" in f.sections:
            fields["time_windows"] = f.node_rows("TIME_WINDOW_SECTION", ("earliest", "latest"), n)
    if "RELEASE_TIME_SECTION" in f.sections:
        fields["release_time"] = f.node_rows("RELEASE_TIME_SECTION", ("release",), n)[:, 0]
    required = np.ones(n, dtype=bool)
    if "PRIZE_SECTION" in f.sections:
        prize = f.node_rows("PRIZE_SECTION", ("prize",), n)[:, 0]
        fields["prize"] = prize
        required = prize == 0  # PyVRP's reading: a client without a prize must be visited
    if "MUTUALLY_EXCLUSIVE_GROUP_SECTION" in f.sections:
        count = len(f.sections["MUTUALLY_EXCLUSIVE_GROUP_SECTION"].rows)
        lists = f.id_lists("MUTUALLY_EXCLUSIVE_GROUP_SECTION", count, n)
        groups = [ClientGroup(members) for members in lists if len(members) > 1]
        for group in groups:
            required[list(group.clients)] = False
        fields["groups"] = tuple(groups)
    if not required.all():
        fields["required"] = required
    fields["linehaul_first"] = problem == "VRPB"
    scale = cost_scale
    if scale is None:
        scale = HFVRP_COST_SCALE if problem == "HFVRP" else 1.0
    fields["vehicle_types"] = _fleet(f, n, depots, scale, metadata)
    return fields


def _loads(f: VrplibFile, name: str, n: int) -> np.ndarray:
    values = f.node_rows(name, None, n)
    return values[:, 0] if values.shape[1] == 1 else values


def _shipments(f: VrplibFile, n: int, depots: list[int]) -> dict[str, Any]:
    """``id amount early late service pickup delivery`` rows: every client is a shipment end."""
    name = "PICKUP_AND_DELIVERY_SECTION"
    rows = f.node_rows(name, ("amount", "early", "late", "service", "pickup", "delivery"), n)
    for other in ("DEMAND_SECTION", "LINEHAUL_SECTION", "BACKHAUL_SECTION",
                  "SERVICE_TIME_SECTION"):  # fmt: skip
        if other in f.sections:
            f.fail_field(other, f"conflicts with {name}, which gives the same data")
    if "TIME_WINDOW_SECTION" in f.sections:  # Li and Lim files repeat the windows
        windows = f.node_rows("TIME_WINDOW_SECTION", ("earliest", "latest"), n)
        if not np.array_equal(windows, rows[:, 1:3]):
            f.fail_field("TIME_WINDOW_SECTION", f"differs from the windows of {name}")
    shipments = []
    for i in range(n):
        if i in depots:
            continue
        amount, _, _, _, pickup, delivery = rows[i]
        if pickup == 0 and delivery > 0:  # a pickup row names its delivery
            d = int(delivery) - 1
            if not 0 <= d < n or d in depots or int(rows[d, 4]) != i + 1:
                f.fail_field(name, f"node {i + 1} delivers to node {delivery:g}, which does not "
                             f"name it as its pickup")  # fmt: skip
            if amount < 0 or rows[d, 0] != -amount:
                f.fail_field(name, f"node {i + 1} picks up {amount:g} but node {d + 1} "
                             f"delivers {-rows[d, 0]:g}")  # fmt: skip
            shipments.append(Shipment(i, d, float(amount)))
        elif not (pickup > 0 and delivery == 0):
            f.fail_field(name, f"node {i + 1} is neither a pickup nor a delivery")
    windows = rows[:, 1:3].copy()
    service = rows[:, 3].copy()
    service[depots] = 0.0
    return {"shipments": tuple(shipments), "time_windows": windows, "service_time": service}


def _service_times(f: VrplibFile, n: int, depots: list[int]) -> np.ndarray | None:
    if "SERVICE_TIME_SECTION" in f.sections:
        if "SERVICE_TIME" in f.header:
            line = f.header["SERVICE_TIME"][0]
            f.fail(line, "field SERVICE_TIME conflicts with SERVICE_TIME_SECTION")
        return f.node_rows("SERVICE_TIME_SECTION", ("service_time",), n)[:, 0]
    value = f.number("SERVICE_TIME", positive=False)
    if value is None:
        return None
    service = np.full(n, value)
    service[depots] = 0.0
    return service


def _per_vehicle(f: VrplibFile, vehicles: int, section: str, key: str | None) -> Any:
    """A per-vehicle value from its section, or one header value for all, or ``None``."""
    if section in f.sections:
        if key is not None and key in f.header:
            f.fail(f.header[key][0], f"field {key} and {section} both given")
        values = f.node_rows(section, None, vehicles, "VEHICLES")
        return values[:, 0] if values.shape[1] == 1 else values
    if key is not None and key in f.header:
        integer = key in ("VEHICLES_MAX_RELOADS", "VEHICLES")
        return np.full(vehicles, f.number(key, integer=integer, positive=False))
    return None


def _fleet(
    f: VrplibFile, n: int, depots: list[int], scale: float, metadata: dict[str, Any]
) -> tuple[VehicleType, ...]:
    """Vehicle types from ``CAPACITY``/``VEHICLES`` or the per-vehicle sections."""
    capacity = f.number("CAPACITY")
    vehicles = f.number("VEHICLES", integer=True)
    per_vehicle = [s for s in (*VEHICLE_SECTIONS, *LIST_SECTIONS[:2]) if s in f.sections]
    per_vehicle += [key for key in FLEET_KEYS if key in f.header]
    classic = f.word("TYPE") in _CAPACITATED_TYPES
    if classic and capacity is None and "CAPACITY_SECTION" not in f.sections:
        f.fail_field("CAPACITY", "missing; give CAPACITY or a CAPACITY_SECTION")
    if not per_vehicle:
        if vehicles is not None and len(depots) > 1:
            f.fail(
                f.header["VEHICLES"][0],
                "field VEHICLES with several depots is ambiguous; give VEHICLES_DEPOT_SECTION",
            )
        return tuple(VehicleType(capacity=capacity, count=vehicles, depot=d) for d in depots)

    if vehicles is None:
        f.fail_field("VEHICLES", f"missing; {per_vehicle[0]} needs one value per vehicle")
    capacities = _per_vehicle(f, vehicles, "CAPACITY_SECTION", "CAPACITY")
    fixed = _per_vehicle(f, vehicles, "VEHICLES_FIXED_COST_SECTION", None)
    unit = _per_vehicle(f, vehicles, "VEHICLES_UNIT_DISTANCE_COST_SECTION", None)
    slot_depots = _per_vehicle(f, vehicles, "VEHICLES_DEPOT_SECTION", None)
    max_distance = _per_vehicle(f, vehicles, "VEHICLES_MAX_DISTANCE_SECTION",
                                "VEHICLES_MAX_DISTANCE")  # fmt: skip
    max_duration = _per_vehicle(f, vehicles, "VEHICLES_MAX_DURATION_SECTION",
                                "VEHICLES_MAX_DURATION")  # fmt: skip
    max_reloads = _per_vehicle(f, vehicles, "VEHICLES_MAX_RELOADS_SECTION",
                               "VEHICLES_MAX_RELOADS")  # fmt: skip
    allowed = reloads = None
    if "VEHICLES_ALLOWED_CLIENTS_SECTION" in f.sections:
        allowed = f.id_lists("VEHICLES_ALLOWED_CLIENTS_SECTION", vehicles, n)
    if "VEHICLES_RELOAD_DEPOT_SECTION" in f.sections:
        reloads = f.id_lists("VEHICLES_RELOAD_DEPOT_SECTION", vehicles, n)
    if slot_depots is not None:
        slot_depots = slot_depots - 1
        for k, d in enumerate(slot_depots):
            if d not in depots:
                f.fail_field(
                    "VEHICLES_DEPOT_SECTION", f"vehicle {k + 1} uses node {d + 1:g}, not a depot"
                )
    metadata["cost_scale"] = scale

    def attributes(k: int) -> dict[str, Any]:
        cap = None if capacities is None else capacities[k]
        return {
            "capacity": None if cap is None else (
                float(cap) if np.ndim(cap) == 0 else tuple(float(c) for c in cap)
            ),
            "fixed_cost": 0.0 if fixed is None else float(fixed[k]) / scale,
            "unit_distance_cost": 1.0 if unit is None else float(unit[k]) / scale,
            # without a VEHICLES_DEPOT_SECTION every vehicle starts at the first depot
            "depot": depots[0] if slot_depots is None else int(slot_depots[k]),
            "max_distance": None if max_distance is None else float(max_distance[k]),
            "max_duration": None if max_duration is None else float(max_duration[k]),
            "allowed_clients": None if allowed is None else allowed[k],
            "reload_depots": () if reloads is None else reloads[k],
            # a reload limit means nothing to a vehicle that may not reload
            "max_reloads": None if max_reloads is None or not reloads or not reloads[k]
            else int(max_reloads[k]),
        }  # fmt: skip

    keys = [attributes(k) for k in range(vehicles)]
    types = []
    start = 0
    for k in range(1, vehicles + 1):
        if k < vehicles and keys[k] == keys[start]:
            continue
        label = f"vehicle {start + 1}" if k - start == 1 else f"vehicles {start + 1}-{k}"
        try:
            types.append(VehicleType(count=k - start, name=label, **keys[start]))
        except ValueError as exc:
            f.fail_field(per_vehicle[0], f"{label}: {exc}")
        start = k
    return tuple(types)
