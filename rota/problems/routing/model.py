"""Routing instances and solutions.

One instance type covers TSP, ATSP, CVRP, asymmetric CVRP, VRPTW (asymmetric
too), heterogeneous fleets and the constraints real fleets have (see
:data:`FEATURES`): several load dimensions, pickups and backhauls, paired
shipments, release times, optional clients with prizes, mutually exclusive
groups, multiple trips with reloads, route distance and duration limits,
duration costs, vehicle-client restrictions and distinct start and end
depots. Locations are indexed ``0..n-1``; some of them are depots
(``depots``), every other location is a client that is visited once (or
not at all, when it is optional). Matrices may be asymmetric:
``distance[i, j]`` is the cost of travelling from ``i`` to ``j``.

:func:`rota.problems.routing.evaluation.evaluate` is the single source of
truth for the objective and for feasibility.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

#: Absolute slack when comparing times and loads, so that float rounding in
#: user-supplied matrices never turns a feasible route into a violation.
TOLERANCE = 1e-6


def _number(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{owner} {name} must be a number, got {value!r}")
    return float(value)


def _index_tuple(owner: str, name: str, values: Any) -> tuple[int, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray):
        raise ValueError(f"{owner} {name} must be a list of location indices, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float | np.number) or int(v) != v:
            raise ValueError(f"{owner} {name} holds {v!r}, not a location index")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise ValueError(f"{owner} {name} holds duplicates: {out}")
    return tuple(out)


@dataclass(frozen=True)
class VehicleType:
    """A group of identical vehicles.

    Parameters
    ----------
    capacity
        Load a vehicle can carry: a number, or one number per load dimension;
        ``None`` means uncapacitated (TSP).
    count
        Vehicles available; ``None`` means unlimited.
    fixed_cost
        Cost paid once per used vehicle.
    unit_distance_cost
        Multiplier on the distance a vehicle of this type travels.
    depot
        Location index where these vehicles start (and end, unless ``end_depot``).
    name
        Free-form label used in reports.
    end_depot
        Where these vehicles end their routes; ``None``: back at ``depot``.
    max_distance
        Longest distance a route may cover; ``None``: unlimited.
    max_duration
        Longest a route may last, from leaving ``depot`` to arriving at its
        end, waiting included (the shift length); ``None``: unlimited.
    unit_duration_cost
        Cost per unit of a route's duration, on top of its distance cost.
    allowed_clients
        The only clients these vehicles may visit; ``None``: every client.
    reload_depots
        Depots where these vehicles may unload and reload between trips of
        one route; empty: a route is one trip.
    max_reloads
        Most reloads per route; ``None``: unlimited (only with reload depots).
    """

    capacity: float | tuple[float, ...] | None = None
    count: int | None = None
    fixed_cost: float = 0.0
    unit_distance_cost: float = 1.0
    depot: int = 0
    name: str = ""
    end_depot: int | None = None
    max_distance: float | None = None
    max_duration: float | None = None
    unit_duration_cost: float = 0.0
    allowed_clients: tuple[int, ...] | None = None
    reload_depots: tuple[int, ...] = ()
    max_reloads: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if isinstance(self.capacity, Sequence | np.ndarray) and not isinstance(self.capacity, str):
            capacity = tuple(_number("vehicle", "capacity", c) for c in self.capacity)
            if not capacity:
                raise ValueError("vehicle capacity is an empty list; give None or numbers")
            if not all(math.isfinite(c) and c >= 0 for c in capacity):
                raise ValueError(f"vehicle capacity must be finite and >= 0, got {list(capacity)}")
            set_(self, "capacity", capacity[0] if len(capacity) == 1 else capacity)
        elif self.capacity is not None:
            capacity = _number("vehicle", "capacity", self.capacity)
            if not (math.isfinite(capacity) and capacity > 0):
                raise ValueError(f"vehicle capacity must be positive and finite, got {capacity}")
        for name in ("count", "depot", "end_depot", "max_reloads"):
            value = getattr(self, name)
            if value is None:
                continue
            number = _number("vehicle", name, value)
            low = 1 if name == "count" else 0
            if not math.isfinite(number) or int(number) != number or number < low:
                what = {
                    "count": "a positive integer or None",
                    "depot": "a location index",
                    "end_depot": "a location index or None",
                    "max_reloads": "an integer >= 0 or None",
                }[name]
                raise ValueError(f"vehicle {name} must be {what}, got {value}")
            set_(self, name, int(number))
        for name in ("fixed_cost", "unit_distance_cost", "unit_duration_cost"):
            value = _number("vehicle", name, getattr(self, name))
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"vehicle {name} must be finite and >= 0, got {value}")
        for name in ("max_distance", "max_duration"):
            value = getattr(self, name)
            if value is not None:
                number = _number("vehicle", name, value)
                if not (math.isfinite(number) and number >= 0):
                    raise ValueError(f"vehicle {name} must be finite and >= 0, got {value}")
        if self.allowed_clients is not None:
            set_(self, "allowed_clients", _index_tuple("vehicle", "allowed_clients",
                                                       self.allowed_clients))  # fmt: skip
        set_(self, "reload_depots", _index_tuple("vehicle", "reload_depots", self.reload_depots))
        if self.max_reloads is not None and not self.reload_depots:
            raise ValueError(f"vehicle max_reloads is {self.max_reloads} without reload_depots")

    @property
    def capacities(self) -> tuple[float, ...] | None:
        """The capacity per load dimension; ``None`` when uncapacitated."""
        if self.capacity is None:
            return None
        return self.capacity if isinstance(self.capacity, tuple) else (float(self.capacity),)

    @property
    def final_depot(self) -> int:
        """Where routes of this type end."""
        return self.depot if self.end_depot is None else self.end_depot


@dataclass(frozen=True)
class ClientGroup:
    """Mutually exclusive clients: exactly one is visited if ``required``, else at most one."""

    clients: tuple[int, ...]
    required: bool = True

    def __post_init__(self) -> None:
        clients = _index_tuple("group", "clients", self.clients)
        if len(clients) < 2:
            raise ValueError(f"group clients must name two or more clients, got {list(clients)}")
        if not isinstance(self.required, bool | np.bool_):
            raise ValueError(f"group required must be True or False, got {self.required!r}")
        object.__setattr__(self, "clients", clients)
        object.__setattr__(self, "required", bool(self.required))


@dataclass(frozen=True)
class Shipment:
    """Goods loaded at client ``pickup`` and unloaded at client ``delivery``, later on the
    same trip of the same route (a paired pickup and delivery)."""

    pickup: int
    delivery: int
    amount: float | tuple[float, ...] = 0.0

    def __post_init__(self) -> None:
        pickup, delivery = _index_tuple("shipment", "locations", (self.pickup, self.delivery))
        amounts = self.amount if isinstance(self.amount, Sequence | np.ndarray) else [self.amount]
        values = tuple(_number("shipment", "amount", a) for a in amounts)
        if not values or not all(math.isfinite(a) and a >= 0 for a in values):
            raise ValueError(f"shipment amount must be finite and >= 0, got {self.amount!r}")
        object.__setattr__(self, "pickup", pickup)
        object.__setattr__(self, "delivery", delivery)
        object.__setattr__(self, "amount", values[0] if len(values) == 1 else values)

    @property
    def amounts(self) -> tuple[float, ...]:
        return self.amount if isinstance(self.amount, tuple) else (float(self.amount),)


def _boolean_at(value: Any) -> list[int] | None:
    """Index of the first boolean in nested lists (numpy would read True as 1), or None."""
    if isinstance(value, bool | np.bool_):
        return []
    if isinstance(value, np.ndarray):
        return [0] * value.ndim if value.dtype == bool and value.size else None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            inner = _boolean_at(item)
            if inner is not None:
                return [i, *inner]
    return None


def _frozen_array(name: str, value: Any, ndim: int | None, dtype: Any = np.float64) -> np.ndarray:
    where = _boolean_at(value)
    if where is not None:
        raise ValueError(f"{name}{where if where else ''} is a boolean, expected a number")
    try:
        array = np.array(value, dtype=dtype, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {type(value).__name__}: {exc}") from None
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {array.shape}")
    array.setflags(write=False)
    return array


def _check_finite_nonnegative(name: str, array: np.ndarray) -> None:
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        index = tuple(int(i) for i in bad[0])
        raise ValueError(f"{name}{list(index)} is {array[index]}, expected a finite number")
    bad = np.argwhere(array < 0)
    if bad.size:
        index = tuple(int(i) for i in bad[0])
        raise ValueError(f"{name}{list(index)} is {array[index]}, expected >= 0")


def _check_square_matrix(name: str, matrix: np.ndarray, size: int | None) -> None:
    if matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be square, got shape {matrix.shape}")
    if size is not None and matrix.shape[0] != size:
        raise ValueError(f"{name} has shape {matrix.shape}, expected ({size}, {size})")
    _check_finite_nonnegative(name, matrix)
    if matrix.size and not np.isfinite(matrix.max() * matrix.shape[0]):
        raise ValueError(
            f"{name} values up to {matrix.max():.3g} overflow the sum of a route's "
            f"{matrix.shape[0]} arcs; rescale the data"
        )
    diagonal = np.flatnonzero(np.diag(matrix))
    if diagonal.size:
        i = int(diagonal[0])
        raise ValueError(f"{name}[{i}, {i}] is {matrix[i, i]}, expected 0 on the diagonal")


#: Features beyond a plain (A)CVRP, VRPTW or heterogeneous fleet, as
#: :attr:`RoutingInstance.features` names them; a solver lists those it models
#: and refuses instances that use others.
FEATURES = (
    "multi_load", "pickups", "shipments", "release_times", "prizes", "groups", "reloads",
    "max_distance", "max_duration", "duration_costs", "allowed_clients", "end_depots",
    "linehaul_first",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class RoutingInstance:
    """An immutable, validated routing instance.

    Parameters
    ----------
    distance
        ``(n, n)`` travel costs, possibly asymmetric, zero diagonal.
    vehicle_types
        The fleet. One uncapacitated vehicle with ``count=1`` makes a TSP.
    depots
        Location indices of the depots; every other location is a client.
    demand
        ``(n,)`` or ``(n, d)`` amounts delivered to each client from the depot
        (zero at depots), per load dimension. Defaults to zeros.
    service_time
        ``(n,)`` time spent at each location (at a depot: when a vehicle
        leaves it). Defaults to zeros.
    time_windows
        ``(n, 2)`` earliest and latest service start; a depot's window bounds
        when vehicles may leave and come back. ``None`` means no time windows.
    duration
        ``(n, n)`` travel times. Defaults to ``distance``.
    coords
        ``(n, 2)`` coordinates, for plots only: the objective never uses them.
    name
        Instance name.
    metadata
        Provenance (source file, rounding convention, ...); not used by solvers.
    pickup
        ``(n,)`` or ``(n, d)`` amounts collected at each client and brought
        back to the depot (backhauls; with ``demand``, simultaneous pickup
        and delivery). The load on board must fit the capacity all along.
    release_time
        ``(n,)`` the earliest time a vehicle may leave the depot on a trip
        that visits each client.
    prize
        ``(n,)`` what visiting each client earns; the objective counts the
        prizes of optional clients left unvisited.
    required
        ``(n,)`` whether each client must be visited; defaults to every client.
    groups
        Mutually exclusive client groups (:class:`ClientGroup`), of optional clients.
    shipments
        Paired pickups and deliveries (:class:`Shipment`) between clients.
    linehaul_first
        On every trip, all delivery clients come before every pickup client
        (the VRP with backhauls).
    """

    distance: np.ndarray
    vehicle_types: tuple[VehicleType, ...]
    depots: tuple[int, ...] = (0,)
    demand: np.ndarray | None = None
    service_time: np.ndarray | None = None
    time_windows: np.ndarray | None = None
    duration: np.ndarray | None = None
    coords: np.ndarray | None = None
    name: str = "instance"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    pickup: np.ndarray | None = None
    release_time: np.ndarray | None = None
    prize: np.ndarray | None = None
    required: np.ndarray | None = None
    groups: tuple[ClientGroup, ...] = ()
    shipments: tuple[Shipment, ...] = ()
    linehaul_first: bool = False

    def __post_init__(self) -> None:
        self._check_vehicle_types()
        distance = _frozen_array("distance", self.distance, 2)
        _check_square_matrix("distance", distance, None)
        n = distance.shape[0]
        set_ = object.__setattr__
        set_(self, "distance", distance)

        raw_depots = (self.depots,) if np.isscalar(self.depots) else tuple(self.depots)
        for d in raw_depots:
            if isinstance(d, bool) or not isinstance(d, int | float | np.number) or int(d) != d:
                raise ValueError(f"depot {d!r} is not an integer location index")
        depots = tuple(int(d) for d in raw_depots)
        if not depots:
            raise ValueError("depots must name at least one location, got ()")
        for d in depots:
            if not 0 <= d < n:
                raise ValueError(f"depot {d} is not a location index in [0, {n})")
        if len(set(depots)) != len(depots):
            raise ValueError(f"depots contains duplicates: {list(depots)}")
        if len(depots) >= n:
            raise ValueError(f"instance has no clients: {n} locations, all depots")
        set_(self, "depots", depots)

        for name in ("demand", "pickup"):
            value = getattr(self, name)
            if value is None and name == "pickup":
                continue
            array = _frozen_array(name, np.zeros(n) if value is None else value, None)
            if array.ndim == 1 and array.shape[0] != n:
                raise ValueError(f"{name} has length {array.shape[0]}, expected {n}")
            if array.ndim not in (1, 2) or array.shape[0] != n or 0 in array.shape[1:]:
                raise ValueError(f"{name} has shape {array.shape}, expected ({n},) or ({n}, d)")
            _check_finite_nonnegative(name, array)
            for d in depots:
                if np.any(array[d] != 0):
                    raise ValueError(f"depot {d} has {name} {array[d]}, expected 0")
            # one load dimension is always (n,), as single-load code expects
            set_(self, name, array[:, 0] if array.ndim == 2 and array.shape[1] == 1 else array)
        for name in ("service_time", "release_time", "prize"):
            value = getattr(self, name)
            if value is None and name != "service_time":
                continue
            array = _frozen_array(name, np.zeros(n) if value is None else value, 1)
            if array.shape != (n,):
                raise ValueError(f"{name} has length {array.shape[0]}, expected {n}")
            _check_finite_nonnegative(name, array)
            set_(self, name, array)
        self._validate_visits(n)

        if self.time_windows is not None:
            windows = _frozen_array("time_windows", self.time_windows, 2)
            if windows.shape != (n, 2):
                raise ValueError(f"time_windows has shape {windows.shape}, expected ({n}, 2)")
            _check_finite_nonnegative("time_windows", windows)
            closed = np.flatnonzero(windows[:, 1] < windows[:, 0])
            if closed.size:
                i = int(closed[0])
                raise ValueError(
                    f"location {i} time window closes at {windows[i, 1]} "
                    f"before it opens at {windows[i, 0]}"
                )
            set_(self, "time_windows", windows)

        if self.duration is not None:
            duration = _frozen_array("duration", self.duration, 2)
            _check_square_matrix("duration", duration, n)
            set_(self, "duration", duration)

        if self.coords is not None:
            coords = _frozen_array("coords", self.coords, 2)
            if coords.shape != (n, 2):
                raise ValueError(f"coords has shape {coords.shape}, expected ({n}, 2)")
            if not np.isfinite(coords).all():
                raise ValueError("coords contains a non-finite value")
            set_(self, "coords", coords)
        if not isinstance(self.linehaul_first, bool | np.bool_):
            raise ValueError(f"linehaul_first must be True or False, got {self.linehaul_first!r}")
        set_(self, "linehaul_first", bool(self.linehaul_first))

        self._validate_fleet()
        if self.time_windows is not None:
            self._validate_reachability()
            windows = self.time_windows
            for k, s in enumerate(self.shipments):
                if windows[s.delivery, 1] < windows[s.pickup, 0]:
                    raise ValueError(
                        f"shipments[{k}] must be delivered by {windows[s.delivery, 1]:g}, "
                        f"before it can be picked up at {windows[s.pickup, 0]:g}"
                    )
        set_(self, "metadata", MappingProxyType(dict(self.metadata)))

    def _validate_visits(self, n: int) -> None:
        """Required flags, groups and shipments: who must, may and may not be visited."""
        set_ = object.__setattr__
        clients = set(range(n)) - set(self.depots)
        required = np.array(True if self.required is None else self.required, copy=True)
        if required.ndim == 0:
            required = np.full(n, bool(required))
        if required.dtype != bool:
            raise ValueError("required must hold True or False per location")
        if required.shape != (n,):
            raise ValueError(f"required has length {required.shape[0]}, expected {n}")
        required[list(self.depots)] = True
        required.setflags(write=False)
        set_(self, "required", required)

        groups = tuple(self.groups)
        grouped: set[int] = set()
        for g, group in enumerate(groups):
            if not isinstance(group, ClientGroup):
                raise ValueError(f"groups[{g}] is {type(group).__name__}, expected ClientGroup")
            for c in group.clients:
                if c not in clients:
                    raise ValueError(f"groups[{g}] names {c}, which is not a client")
                if required[c]:
                    raise ValueError(
                        f"groups[{g}] holds client {c}, which is required; clients of a group "
                        "are optional (the group says how many of them to visit)"
                    )
                if c in grouped:
                    raise ValueError(f"client {c} is in two groups")
                grouped.add(c)
        set_(self, "groups", groups)

        shipments = tuple(self.shipments)
        paired: set[int] = set()
        for k, shipment in enumerate(shipments):
            if not isinstance(shipment, Shipment):
                raise ValueError(f"shipments[{k}] is {type(shipment).__name__}, expected Shipment")
            for c in (shipment.pickup, shipment.delivery):
                if c not in clients:
                    raise ValueError(f"shipments[{k}] names {c}, which is not a client")
                if c in paired:
                    raise ValueError(f"client {c} is in two shipments")
                if not required[c]:
                    raise ValueError(f"shipments[{k}] visits client {c}, which is optional")
                paired.add(c)
            if shipment.pickup == shipment.delivery:
                raise ValueError(f"shipments[{k}] picks up and delivers at client {c}")
        set_(self, "shipments", shipments)

    def _check_vehicle_types(self) -> None:
        if isinstance(self.vehicle_types, VehicleType) or not isinstance(
            self.vehicle_types, Sequence
        ):
            raise ValueError(
                "vehicle_types must be a sequence of VehicleType, "
                f"got {type(self.vehicle_types).__name__}"
            )
        types = tuple(self.vehicle_types)
        if not types:
            raise ValueError("vehicle_types is empty: at least one vehicle type is needed")
        for k, vt in enumerate(types):
            if not isinstance(vt, VehicleType):
                raise ValueError(f"vehicle_types[{k}] is {type(vt).__name__}, expected VehicleType")
        object.__setattr__(self, "vehicle_types", types)

    def _validate_fleet(self) -> None:
        types = self.vehicle_types
        dims = self.load_dimensions
        for name in ("demand", "pickup"):
            array = getattr(self, name)
            if array is not None and array.ndim == 2 and array.shape[1] != dims:
                raise ValueError(
                    f"{name} has {array.shape[1]} load dimensions, other loads have {dims}"
                )
        for k, s in enumerate(self.shipments):
            if len(s.amounts) not in (1, dims):
                raise ValueError(
                    f"shipments[{k}] has {len(s.amounts)} amounts, other loads have {dims}"
                )
        clients = set(self.clients.tolist())
        for k, vt in enumerate(types):
            if vt.depot not in self.depots:
                raise ValueError(f"vehicle type {k} uses depot {vt.depot}, which is not a depot")
            if vt.final_depot not in self.depots:
                raise ValueError(f"vehicle type {k} ends at {vt.final_depot}, which is not a depot")
            for depot in vt.reload_depots:
                if depot not in self.depots:
                    raise ValueError(f"vehicle type {k} reload depot {depot} is not a depot")
            for c in vt.allowed_clients or ():
                if c not in clients:
                    raise ValueError(f"vehicle type {k} allows {c}, which is not a client")
            if vt.capacities is not None and len(vt.capacities) not in (1, dims):
                raise ValueError(
                    f"vehicle type {k} has {len(vt.capacities)} capacities for {dims} load "
                    "dimensions"
                )

        if all(vt.allowed_clients is not None for vt in types):
            servable = set().union(*(vt.allowed_clients for vt in types))
            stranded = [int(c) for c in self.clients if self.required[c] and c not in servable]
            if stranded:
                raise ValueError(
                    f"client {stranded[0]} is required, but no vehicle type's allowed_clients "
                    "includes it"
                )
        loads = np.maximum(self.deliveries, self.pickups)
        for s in self.shipments:
            loads[s.pickup] = np.maximum(loads[s.pickup], np.broadcast_to(s.amounts, dims))
        largest = np.full(dims, -np.inf)
        for vt in types:
            caps = np.inf if vt.capacities is None else np.broadcast_to(vt.capacities, dims)
            largest = np.maximum(largest, caps)
        over = np.argwhere(loads > largest + TOLERANCE)
        if over.size:
            i, dim = (int(v) for v in over[0])
            which = f" in load dimension {dim}" if dims > 1 else ""
            raise ValueError(
                f"client {i} has demand {loads[i, dim]:g}{which} "
                f"> largest vehicle capacity {largest[dim]:g}"
            )
        single_trip = all(not vt.reload_depots for vt in types)
        optional = not self.required.all()
        finite = all(vt.count is not None and vt.capacities is not None for vt in types)
        if single_trip and not optional and finite:
            fleet = sum(vt.count * np.broadcast_to(vt.capacities, dims) for vt in types)
            total = self.deliveries.sum(axis=0)
            short = np.flatnonzero(total > fleet + TOLERANCE)
            if short.size:
                dim = int(short[0])
                raise ValueError(
                    f"total demand {total[dim]:g} exceeds fleet capacity {fleet[dim]:g}"
                )

    def _validate_reachability(self) -> None:
        # A client that no vehicle can serve inside its window and still get
        # home before the depot closes makes the instance infeasible; say so
        # now rather than let every solver fail on it later.
        # Optional clients may well be out of reach; shipments are checked by solvers.
        windows, travel, service = self.time_windows, self.travel_time, self.service_time
        release = np.zeros(self.num_locations) if self.release_time is None else self.release_time
        ends = sorted({(vt.depot, vt.final_depot) for vt in self.vehicle_types})
        for client in np.flatnonzero(self.required):
            if client in self.depots:
                continue
            reachable = False
            for d, e in ends:
                leave = max(windows[d, 0], release[client]) + service[d]
                start = max(leave + travel[d, client], windows[client, 0])
                back = start + service[client] + travel[client, e]
                if start <= windows[client, 1] + TOLERANCE and back <= windows[e, 1] + TOLERANCE:
                    reachable = True
                    break
            if not reachable:
                raise ValueError(
                    f"client {client} cannot be served within its time window "
                    f"[{windows[client, 0]:g}, {windows[client, 1]:g}] from any depot"
                )

    # -- derived views -------------------------------------------------------
    @property
    def num_locations(self) -> int:
        return int(self.distance.shape[0])

    @property
    def clients(self) -> np.ndarray:
        """Location indices of the clients, in increasing order."""
        mask = np.ones(self.num_locations, dtype=bool)
        mask[list(self.depots)] = False
        return np.flatnonzero(mask)

    @property
    def num_clients(self) -> int:
        return self.num_locations - len(self.depots)

    @property
    def load_dimensions(self) -> int:
        """Load dimensions of the demands, pickups, shipments and capacities."""
        dims = [1 if a.ndim == 1 else a.shape[1] for a in (self.demand, self.pickup)
                if a is not None]  # fmt: skip
        dims += [len(s.amounts) for s in self.shipments]
        dims += [len(vt.capacities) for vt in self.vehicle_types if vt.capacities is not None]
        return max(dims, default=1)

    @property
    def deliveries(self) -> np.ndarray:
        """``(n, d)`` delivery amounts (a copy), whatever the shape of ``demand``."""
        return _columns(self.demand, self.num_locations, self.load_dimensions)

    @property
    def pickups(self) -> np.ndarray:
        """``(n, d)`` pickup amounts (a copy); zeros without ``pickup``."""
        return _columns(self.pickup, self.num_locations, self.load_dimensions)

    @property
    def optional_clients(self) -> np.ndarray:
        return np.flatnonzero(~self.required)

    @property
    def travel_time(self) -> np.ndarray:
        """Travel times: ``duration`` if given, else ``distance``."""
        return self.distance if self.duration is None else self.duration

    @property
    def is_symmetric(self) -> bool:
        return bool(np.array_equal(self.distance, self.distance.T)) and (
            self.duration is None or bool(np.array_equal(self.duration, self.duration.T))
        )

    @property
    def has_time_windows(self) -> bool:
        return self.time_windows is not None

    @property
    def is_heterogeneous(self) -> bool:
        # Per-depot copies of one vehicle model are not a mixed fleet.
        models = {(vt.capacity, vt.fixed_cost, vt.unit_distance_cost) for vt in self.vehicle_types}
        return len(models) > 1 or any(
            vt.fixed_cost != 0 or vt.unit_distance_cost != 1 for vt in self.vehicle_types
        )

    @property
    def is_capacitated(self) -> bool:
        return any(vt.capacity is not None for vt in self.vehicle_types)

    @property
    def features(self) -> tuple[str, ...]:
        """The :data:`FEATURES` this instance uses, for solvers to check against."""
        types = self.vehicle_types
        used = {
            "multi_load": self.load_dimensions > 1,
            "pickups": self.pickup is not None and bool(np.any(self.pickup > 0)),
            "shipments": bool(self.shipments),
            "release_times": self.release_time is not None and bool(np.any(self.release_time > 0)),
            "prizes": not self.required.all(),
            "groups": bool(self.groups),
            "reloads": any(vt.reload_depots for vt in types),
            "max_distance": any(vt.max_distance is not None for vt in types),
            "max_duration": any(vt.max_duration is not None for vt in types),
            "duration_costs": any(vt.unit_duration_cost > 0 for vt in types),
            "allowed_clients": any(vt.allowed_clients is not None for vt in types),
            "end_depots": any(vt.final_depot != vt.depot for vt in types),
            "linehaul_first": self.linehaul_first,
        }
        return tuple(name for name in FEATURES if used[name])

    @property
    def is_timed(self) -> bool:
        """Whether times matter: time windows, release times, duration limits or costs."""
        timed = {"release_times", "max_duration", "duration_costs"}
        return self.has_time_windows or bool(timed & set(self.features))

    @property
    def is_tsp(self) -> bool:
        """One uncapacitated vehicle visiting every client: a (A)TSP tour."""
        return (
            len(self.vehicle_types) == 1
            and self.vehicle_types[0].count == 1
            and self.vehicle_types[0].capacity is None
            and len(self.depots) == 1
            and not self.has_time_windows
            and not self.features
        )

    @property
    def kind(self) -> str:
        """A short label: tsp, atsp, cvrp, acvrp, vrptw, avrptw, hfvrp, ...; ``+`` joins the
        features, as in ``vrptw+release_times``."""
        asym = "" if self.is_symmetric else "a"
        if self.is_tsp:
            return f"{asym}tsp"
        base = "vrptw" if self.has_time_windows else "cvrp"
        if self.is_heterogeneous:
            base = "hf" + base.removeprefix("c")
        if len(self.depots) > 1:
            base = "md" + base
        return "+".join((asym + base, *self.features))

    def __repr__(self) -> str:
        return (
            f"RoutingInstance(name={self.name!r}, kind={self.kind!r}, "
            f"clients={self.num_clients}, vehicle_types={len(self.vehicle_types)})"
        )


def _columns(array: np.ndarray | None, n: int, dims: int) -> np.ndarray:
    if array is None:
        return np.zeros((n, dims))
    if array.ndim == 1:
        out = np.zeros((n, dims))
        out[:, 0] = array
        return out
    return np.array(array, dtype=np.float64)


@dataclass(frozen=True)
class Route:
    """Locations visited in order by one vehicle of ``vehicle_type``.

    The start and end depots are implicit. A depot inside ``visits`` is a
    reload: the vehicle unloads and reloads there and starts a new trip
    (only at the vehicle type's ``reload_depots``).
    """

    visits: tuple[int, ...]
    vehicle_type: int = 0

    def __post_init__(self) -> None:
        bad = [v for v in self.visits if isinstance(v, bool) or int(v) != v]
        if bad:
            raise ValueError(f"route visit {bad[0]!r} is not an integer location index")
        huge = [v for v in self.visits if not -(2**62) < int(v) < 2**62]
        if huge:
            raise ValueError(f"route visit {int(huge[0]):.3g} is out of range for a location index")
        object.__setattr__(self, "visits", tuple(int(v) for v in self.visits))
        object.__setattr__(self, "vehicle_type", int(self.vehicle_type))


@dataclass(frozen=True)
class RoutingSolution:
    """A set of routes. Empty routes are allowed and cost nothing."""

    routes: tuple[Route, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "routes", tuple(self.routes))

    @classmethod
    def from_lists(
        cls, routes: Sequence[Sequence[int]], vehicle_types: Sequence[int] | None = None
    ) -> RoutingSolution:
        types = [0] * len(routes) if vehicle_types is None else list(vehicle_types)
        if len(types) != len(routes):
            raise ValueError(f"vehicle_types has {len(types)} entries for {len(routes)} routes")
        return cls(tuple(Route(tuple(r), t) for r, t in zip(routes, types, strict=True)))

    @property
    def nonempty_routes(self) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.visits)
