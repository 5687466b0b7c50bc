"""Routing instances, solutions and the routing evaluator.

One instance type covers TSP, ATSP, CVRP, asymmetric CVRP, VRPTW (asymmetric
too) and heterogeneous fleets. Locations are indexed ``0..n-1``; some of them
are depots (``depots``), every other location is a client that must be visited
exactly once. Matrices may be asymmetric: ``distance[i, j]`` is the cost of
travelling from ``i`` to ``j``.

:func:`evaluate` is the single source of truth for the objective and for
feasibility: every solver's reported objective is checked against it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from rota.problems.base import Violation

#: Absolute slack when comparing times and loads, so that float rounding in
#: user-supplied matrices never turns a feasible route into a violation.
TOLERANCE = 1e-6


@dataclass(frozen=True)
class VehicleType:
    """A group of identical vehicles.

    Parameters
    ----------
    capacity
        Load a vehicle can carry; ``None`` means uncapacitated (TSP).
    count
        Vehicles available; ``None`` means unlimited.
    fixed_cost
        Cost paid once per used vehicle.
    unit_distance_cost
        Multiplier on the distance a vehicle of this type travels.
    depot
        Location index where these vehicles start and end.
    name
        Free-form label used in reports.
    """

    capacity: float | None = None
    count: int | None = None
    fixed_cost: float = 0.0
    unit_distance_cost: float = 1.0
    depot: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        for field_name in ("capacity", "fixed_cost", "unit_distance_cost", "count", "depot"):
            value = getattr(self, field_name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float | np.number)
            ):
                raise ValueError(f"vehicle {field_name} must be a number, got {value!r}")
        if self.capacity is not None and not (math.isfinite(self.capacity) and self.capacity > 0):
            raise ValueError(f"vehicle capacity must be positive and finite, got {self.capacity}")
        if self.count is not None and (int(self.count) != self.count or self.count < 1):
            raise ValueError(f"vehicle count must be a positive integer or None, got {self.count}")
        for field_name in ("fixed_cost", "unit_distance_cost"):
            value = getattr(self, field_name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"vehicle {field_name} must be finite and >= 0, got {value}")
        if int(self.depot) != self.depot or self.depot < 0:
            raise ValueError(f"vehicle depot must be a location index, got {self.depot}")
        object.__setattr__(self, "depot", int(self.depot))
        if self.count is not None:
            object.__setattr__(self, "count", int(self.count))


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


def _frozen_array(name: str, value: Any, ndim: int, dtype: Any = np.float64) -> np.ndarray:
    where = _boolean_at(value)
    if where is not None:
        raise ValueError(f"{name}{where if where else ''} is a boolean, expected a number")
    try:
        array = np.array(value, dtype=dtype, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {type(value).__name__}: {exc}") from None
    if array.ndim != ndim:
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
        ``(n,)`` client demands (zero at depots). Defaults to zeros.
    service_time
        ``(n,)`` time spent at each location. Defaults to zeros.
    time_windows
        ``(n, 2)`` earliest and latest service start; the depot's window is
        the planning horizon. ``None`` means no time windows.
    duration
        ``(n, n)`` travel times used for time windows. Defaults to
        ``distance`` when time windows are given.
    coords
        ``(n, 2)`` coordinates, for plots only: the objective never uses them.
    name
        Instance name.
    metadata
        Provenance (source file, rounding convention, ...); not used by solvers.
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

    def __post_init__(self) -> None:
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

        for name in ("demand", "service_time"):
            value = getattr(self, name)
            array = _frozen_array(name, np.zeros(n) if value is None else value, 1)
            if array.shape != (n,):
                raise ValueError(f"{name} has length {array.shape[0]}, expected {n}")
            _check_finite_nonnegative(name, array)
            set_(self, name, array)
        for d in depots:
            if self.demand[d] != 0:
                raise ValueError(f"depot {d} has demand {self.demand[d]}, expected 0")

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

        self._validate_fleet()
        if self.time_windows is not None:
            self._validate_reachability()
        set_(self, "metadata", MappingProxyType(dict(self.metadata)))

    def _validate_fleet(self) -> None:
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
            if vt.depot not in self.depots:
                raise ValueError(f"vehicle type {k} uses depot {vt.depot}, which is not a depot")
        object.__setattr__(self, "vehicle_types", types)

        capacities = [vt.capacity for vt in types]
        largest = math.inf if None in capacities else max(capacities)
        heaviest = int(np.argmax(self.demand))
        if self.demand[heaviest] > largest + TOLERANCE:
            raise ValueError(
                f"client {heaviest} has demand {self.demand[heaviest]:g} "
                f"> largest vehicle capacity {largest:g}"
            )
        if all(vt.count is not None for vt in types) and None not in capacities:
            fleet_capacity = sum(vt.count * vt.capacity for vt in types)
            total = float(self.demand.sum())
            if total > fleet_capacity + TOLERANCE:
                raise ValueError(
                    f"total demand {total:g} exceeds fleet capacity {fleet_capacity:g}"
                )

    def _validate_reachability(self) -> None:
        # A client that no vehicle can serve inside its window and still get
        # home before the depot closes makes the instance infeasible; say so
        # now rather than let every solver fail on it later.
        windows, travel, service = self.time_windows, self.travel_time, self.service_time
        depots = sorted({vt.depot for vt in self.vehicle_types})
        for client in self.clients:
            reachable = False
            for d in depots:
                start = max(windows[d, 0] + service[d] + travel[d, client], windows[client, 0])
                back = start + service[client] + travel[client, d]
                if start <= windows[client, 1] + TOLERANCE and back <= windows[d, 1] + TOLERANCE:
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
    def travel_time(self) -> np.ndarray:
        """Travel times for time windows: ``duration`` if given, else ``distance``."""
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
    def is_tsp(self) -> bool:
        """One uncapacitated vehicle visiting every client: a (A)TSP tour."""
        return (
            len(self.vehicle_types) == 1
            and self.vehicle_types[0].count == 1
            and self.vehicle_types[0].capacity is None
            and len(self.depots) == 1
            and not self.has_time_windows
        )

    @property
    def kind(self) -> str:
        """A short label: tsp, atsp, cvrp, acvrp, vrptw, avrptw, hfvrp, ..."""
        asym = "" if self.is_symmetric else "a"
        if self.is_tsp:
            return f"{asym}tsp"
        base = "vrptw" if self.has_time_windows else "cvrp"
        if self.is_heterogeneous:
            base = "hf" + base.removeprefix("c")
        if len(self.depots) > 1:
            base = "md" + base
        return asym + base

    def __repr__(self) -> str:
        return (
            f"RoutingInstance(name={self.name!r}, kind={self.kind!r}, "
            f"clients={self.num_clients}, vehicle_types={len(self.vehicle_types)})"
        )


@dataclass(frozen=True)
class Route:
    """Clients visited in order by one vehicle of ``vehicle_type`` (depots excluded)."""

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


@dataclass(frozen=True)
class RouteReport:
    vehicle_type: int
    distance: float
    cost: float
    load: float
    end_time: float | None


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` found: the objective and every violation."""

    objective: float
    distance: float
    fixed_cost: float
    routes: tuple[RouteReport, ...]
    violations: tuple[Violation, ...]

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def num_routes(self) -> int:
        return len(self.routes)


def evaluate(instance: RoutingInstance, solution: RoutingSolution) -> Evaluation:
    """Objective of ``solution`` in the instance's units, and every violation.

    The objective is, over non-empty routes, the vehicle type's fixed cost plus
    its unit distance cost times the route's distance (depot to depot).
    Violations are: a visit to something that is not a client, a client
    visited twice or never, an unknown vehicle type, a load above capacity, a
    late arrival at a client or back at the depot, and more routes of a type
    than it has vehicles. A solution with violations still gets an objective
    (of the routes as given) so that reports can show how far off it is.
    """
    n = instance.num_locations
    is_client = np.ones(n, dtype=bool)
    is_client[list(instance.depots)] = False
    seen = np.zeros(n, dtype=np.int64)
    violations: list[Violation] = []
    reports: list[RouteReport] = []
    used = [0] * len(instance.vehicle_types)
    total_distance = total_fixed = objective = 0.0

    for r, route in enumerate(solution.routes):
        if not route.visits:
            continue
        k = route.vehicle_type
        if not 0 <= k < len(instance.vehicle_types):
            violations.append(
                Violation("vehicle_type", f"route {r} uses vehicle type {k}, which does not exist")
            )
            continue
        vt = instance.vehicle_types[k]
        used[k] += 1
        visits = np.asarray(route.visits, dtype=np.int64)
        valid = (visits >= 0) & (visits < n)
        valid[valid] = is_client[visits[valid]]
        for v in visits[~valid]:
            violations.append(
                Violation("unknown_client", f"route {r} visits {int(v)}, which is not a client")
            )
        visits = visits[valid]
        np.add.at(seen, visits, 1)
        path = np.concatenate(([vt.depot], visits, [vt.depot]))
        distance = float(instance.distance[path[:-1], path[1:]].sum())
        load = float(instance.demand[visits].sum())
        cost = vt.fixed_cost + vt.unit_distance_cost * distance
        if vt.capacity is not None and load > vt.capacity + TOLERANCE:
            violations.append(
                Violation("capacity", f"route {r} carries {load:g} > capacity {vt.capacity:g}")
            )
        end_time = _check_schedule(instance, r, path, violations)
        reports.append(RouteReport(k, distance, cost, load, end_time))
        total_distance += distance
        total_fixed += vt.fixed_cost
        objective += cost

    for c in np.flatnonzero(is_client & (seen == 0)):
        violations.append(Violation("unvisited", f"client {int(c)} is not visited"))
    for c in np.flatnonzero(seen > 1):
        violations.append(Violation("repeated", f"client {int(c)} is visited {int(seen[c])} times"))
    for k, vt in enumerate(instance.vehicle_types):
        if vt.count is not None and used[k] > vt.count:
            violations.append(
                Violation(
                    "fleet", f"vehicle type {k} runs {used[k]} routes but has {vt.count} vehicles"
                )
            )
    return Evaluation(objective, total_distance, total_fixed, tuple(reports), tuple(violations))


def _check_schedule(
    instance: RoutingInstance, r: int, path: np.ndarray, violations: list[Violation]
) -> float | None:
    """Walk the route in time; record late arrivals; return the time back at the depot."""
    if instance.time_windows is None:
        return None
    windows, travel, service = instance.time_windows, instance.travel_time, instance.service_time
    time = float(windows[path[0], 0])
    for prev, node in zip(path[:-1], path[1:], strict=True):
        time = max(time + service[prev] + travel[prev, node], float(windows[node, 0]))
        late = windows[node, 1]
        if time > late + TOLERANCE * max(1.0, abs(late)):
            where = "the depot" if node == path[0] else f"client {int(node)}"
            violations.append(
                Violation(
                    "time_window",
                    f"route {r} reaches {where} at {time:g} after its window closes at {late:g}",
                )
            )
    return float(time)
