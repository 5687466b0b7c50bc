"""The routing evaluator: every route's schedule, the objective and every violation.

:func:`schedule` walks one route in time and load, once, in one place; the
evaluator and the plots both read it. :func:`evaluate` is the single source of
truth for the objective and for feasibility: every solver's reported
objective is checked against it.

Conventions (those of PyVRP, so that costs agree with it):

- Service must *start* inside a location's time window; arriving early means
  waiting. A depot's window bounds when vehicles leave and come back, and a
  depot's service time is spent when a vehicle leaves it.
- A trip (the part of a route between two depot visits) starts no earlier
  than the release time of each client it visits.
- A route's duration runs from leaving its start depot to arriving at its end
  depot, waiting included, with the departure as late as helps: waiting that
  a later departure would remove does not count (it is how long the driver is
  needed, and what ``max_duration`` and ``unit_duration_cost`` apply to).
- A trip leaves the depot carrying every delivery of its clients; at each
  client it drops the delivery and takes the pickup, and a shipment's amount
  is on board from its pickup to its delivery. The load must fit the
  capacity at every point, in every dimension.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rota.problems.base import Violation
from rota.problems.routing.model import (
    TOLERANCE,
    Route,
    RoutingInstance,
    RoutingSolution,
)


@dataclass(frozen=True)
class Visit:
    """One stop of a route in time: arrival, service start, waiting, lateness, load on leaving."""

    location: int
    arrival: float
    start: float
    wait: float
    late: float
    load: tuple[float, ...]


@dataclass(frozen=True)
class RouteReport:
    """One route as the evaluator sees it (:func:`schedule`)."""

    vehicle_type: int
    path: tuple[int, ...]  # start depot, visits, end depot
    visits: tuple[Visit, ...]  # one per position of ``path``
    trips: tuple[tuple[int, ...], ...]  # the clients of each trip, in order
    distance: float
    duration: float
    cost: float
    load: tuple[float, ...]  # the largest load on board, per dimension

    @property
    def start_time(self) -> float:
        return self.visits[0].start

    @property
    def end_time(self) -> float:
        return self.visits[-1].start

    @property
    def reloads(self) -> int:
        return len(self.trips) - 1


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` found: the objective, its parts and every violation."""

    objective: float
    distance: float
    fixed_cost: float
    duration_cost: float
    uncollected_prizes: float
    routes: tuple[RouteReport, ...]
    violations: tuple[Violation, ...]

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def num_routes(self) -> int:
        return len(self.routes)


class _Walk:
    """What every route's schedule reads of one instance, derived once per evaluation
    rather than once per route (most of the evaluator's time on solutions of many
    short routes went into rebuilding these)."""

    def __init__(self, instance: RoutingInstance) -> None:
        n = instance.num_locations
        self.instance = instance
        self.n = n
        self.depots = set(instance.depots)
        self.dims = instance.load_dimensions
        if instance.time_windows is None:
            self.early, self.late = np.zeros(n), np.full(n, math.inf)
        else:
            self.early, self.late = instance.time_windows[:, 0], instance.time_windows[:, 1]
        self.travel, self.service = instance.travel_time, instance.service_time
        self.deliveries, self.pickups = instance.deliveries, instance.pickups
        change = self.pickups - self.deliveries
        for s in instance.shipments:
            change[s.pickup] += np.broadcast_to(s.amounts, self.dims)
            change[s.delivery] -= np.broadcast_to(s.amounts, self.dims)
        self.change = change
        self.capacities = [
            None if vt.capacities is None else np.broadcast_to(vt.capacities, self.dims)
            for vt in instance.vehicle_types
        ]


def schedule(instance: RoutingInstance, route: Route) -> RouteReport:
    """Walk ``route`` (of a vehicle type that exists) in distance, time and load.

    Visits to locations outside the instance, and to depots where the
    vehicle may not reload, are skipped; :func:`evaluate` reports them.
    """
    return _schedule(_Walk(instance), route)


def schedules(instance: RoutingInstance, routes: Sequence[Route]) -> list[RouteReport]:
    """:func:`schedule` of each of ``routes``, reading the instance once for all of them."""
    walk = _Walk(instance)
    return [_schedule(walk, route) for route in routes]


def _schedule(walk: _Walk, route: Route) -> RouteReport:
    instance, n, depots, dims = walk.instance, walk.n, walk.depots, walk.dims
    vt = instance.vehicle_types[route.vehicle_type]
    reloads = set(vt.reload_depots)
    visits = [v for v in route.visits if 0 <= v < n and (v not in depots or v in reloads)]
    path = (vt.depot, *visits, vt.final_depot)

    trips: list[list[int]] = [[]]
    for v in visits:
        if v in depots:
            trips.append([])
        else:
            trips[-1].append(v)
    release = instance.release_time
    trip_release = [
        max((float(release[c]) for c in trip), default=0.0) if release is not None else 0.0
        for trip in trips
    ]

    early, late = walk.early, walk.late
    travel, service = walk.travel, walk.service
    deliveries, change = walk.deliveries, walk.change

    out: list[Visit] = []
    peak = np.zeros(dims)
    trip = 0
    load = deliveries[trips[0]].sum(axis=0) if trips[0] else np.zeros(dims)
    time = max(float(early[path[0]]), trip_release[0])
    out.append(Visit(path[0], time, time, 0.0, max(0.0, time - late[path[0]]), tuple(load)))
    peak = np.maximum(peak, load)
    for position, (prev, node) in enumerate(zip(path[:-1], path[1:], strict=True), 1):
        arrival = time + float(service[prev]) + float(travel[prev, node])
        opens = float(early[node])
        last = position == len(path) - 1
        if node in depots and not last:  # a reload: the next trip starts here
            trip += 1
            opens = max(opens, trip_release[trip])
            load = deliveries[trips[trip]].sum(axis=0) if trips[trip] else np.zeros(dims)
        elif not last:
            load = load + change[node]
        start = max(arrival, opens)
        time = start
        out.append(
            Visit(node, arrival, start, start - arrival, max(0.0, start - late[node]), tuple(load))
        )
        peak = np.maximum(peak, load)

    # accumulate adds left to right, as a plain sum does (np.sum pairs terms up), so
    # the distance is the same to the last bit
    distance = float(np.add.accumulate(instance.distance[path[:-1], path[1:]])[-1])
    total = out[-1].start - out[0].start
    # Leaving later by delta moves the service at each stop by max(0, delta - waits so
    # far): allowed while every window still holds, useful until the waits are used up.
    waited, slack = 0.0, math.inf
    for visit in out:
        waited += visit.wait
        if visit.late == 0:
            slack = min(slack, waited + float(late[visit.location]) - visit.start)
    duration = total - max(0.0, min(waited, slack))
    cost = vt.fixed_cost + vt.unit_distance_cost * distance + vt.unit_duration_cost * duration
    return RouteReport(
        vehicle_type=route.vehicle_type,
        path=tuple(int(p) for p in path),
        visits=tuple(out),
        trips=tuple(tuple(t) for t in trips),
        distance=distance,
        duration=duration,
        cost=cost,
        load=tuple(float(x) for x in peak),
    )


def _over(value: float, limit: float) -> bool:
    return value > limit + TOLERANCE * max(1.0, abs(limit))


def _route_violations(
    walk: _Walk, r: int, report: RouteReport, violations: list[Violation]
) -> None:
    instance, depots = walk.instance, walk.depots
    vt = instance.vehicle_types[report.vehicle_type]
    ends = {0: vt.depot, len(report.visits) - 1: vt.final_depot}
    if vt.max_reloads is not None and report.reloads > vt.max_reloads:
        violations.append(
            Violation("max_reloads", f"route {r} reloads {report.reloads} times > {vt.max_reloads}")
        )
    for position, visit in enumerate(report.visits):
        closes = visit.start - visit.late
        if visit.late > TOLERANCE * max(1.0, abs(closes)):
            node = visit.location
            where = f"client {node}"
            if node in depots:
                where = "the depot" if ends.get(position) == node else f"reload depot {node}"
            violations.append(
                Violation(
                    "time_window",
                    f"route {r} reaches {where} at {visit.start:g} after its window closes "
                    f"at {closes:g}",
                )
            )
    caps = walk.capacities[report.vehicle_type]
    if caps is not None:
        dims = walk.dims
        for dim in range(dims):
            if _over(report.load[dim], caps[dim]):
                which = f" in load dimension {dim}" if dims > 1 else ""
                violations.append(
                    Violation(
                        "capacity",
                        f"route {r} carries {report.load[dim]:g}{which} > capacity {caps[dim]:g}",
                    )
                )
    if vt.max_distance is not None and _over(report.distance, vt.max_distance):
        violations.append(
            Violation(
                "max_distance",
                f"route {r} covers {report.distance:g} > max distance {vt.max_distance:g}",
            )
        )
    if vt.max_duration is not None and _over(report.duration, vt.max_duration):
        violations.append(
            Violation(
                "max_duration",
                f"route {r} lasts {report.duration:g} > max duration {vt.max_duration:g}",
            )
        )
    if vt.allowed_clients is not None:
        allowed = set(vt.allowed_clients)
        for trip in report.trips:
            for c in trip:
                if c not in allowed:
                    violations.append(
                        Violation(
                            "not_allowed",
                            f"route {r} visits client {c}, which vehicle type "
                            f"{report.vehicle_type} may not serve",
                        )
                    )
    if instance.linehaul_first:
        # A trip starts with a delivery (linehaul) client, and no delivery client
        # directly follows a pickup (backhaul) client; a client with both is both.
        linehaul = walk.deliveries.any(axis=1)
        backhaul = walk.pickups.any(axis=1)
        for trip in report.trips:
            if trip and backhaul[trip[0]]:
                violations.append(
                    Violation(
                        "backhaul_order",
                        f"route {r} starts a trip with backhaul client {trip[0]}",
                    )
                )
            for prev, c in zip(trip[:-1], trip[1:], strict=True):
                if backhaul[prev] and linehaul[c]:
                    violations.append(
                        Violation(
                            "backhaul_order",
                            f"route {r} delivers to client {c} after backhaul client {prev}",
                        )
                    )


def _shipment_violations(
    instance: RoutingInstance, reports: list[tuple[int, RouteReport]], violations: list[Violation]
) -> None:
    where: dict[int, tuple[int, int, int]] = {}  # client -> (route, trip, position)
    for r, report in reports:
        for t, trip in enumerate(report.trips):
            for position, c in enumerate(trip):
                where.setdefault(c, (r, t, position))
    for k, s in enumerate(instance.shipments):
        pickup, delivery = where.get(s.pickup), where.get(s.delivery)
        if pickup is None or delivery is None:
            continue  # reported as unvisited
        if pickup[:2] != delivery[:2]:
            violations.append(
                Violation(
                    "shipment",
                    f"shipment {k} is picked up at client {s.pickup} and delivered at client "
                    f"{s.delivery} on different trips",
                )
            )
        elif pickup[2] > delivery[2]:
            violations.append(
                Violation(
                    "shipment",
                    f"shipment {k} is delivered at client {s.delivery} before its pickup at "
                    f"client {s.pickup}",
                )
            )


def check_route(instance: RoutingInstance, route: Route) -> tuple[RouteReport, list[Violation]]:
    """One route's schedule and what it breaks on its own: load, windows, distance,
    duration, reloads, the clients its vehicle may serve, backhaul order.

    What only a whole plan can break (unvisited or repeated clients, groups,
    shipments, fleet size) is left to :func:`evaluate`. The route's vehicle
    type must exist.
    """
    walk = _Walk(instance)
    report = _schedule(walk, route)
    violations: list[Violation] = []
    _route_violations(walk, 0, report, violations)
    return report, violations


def evaluate(instance: RoutingInstance, solution: RoutingSolution) -> Evaluation:
    """Objective of ``solution`` in the instance's units, and every violation.

    The objective is, over non-empty routes, the vehicle type's fixed cost
    plus its unit distance cost times the route's distance and its unit
    duration cost times the route's duration, plus the prizes of the clients
    left unvisited. Violations: a visit to something that is neither a client
    nor a reload depot of the vehicle, a client visited twice, a required
    client never visited, a group visited more (or, if required, less) than
    once, an unknown vehicle type, a load above capacity, a late service, a
    route over its distance or duration limit or its reloads, a client the
    vehicle may not serve, a shipment split across trips or delivered before
    its pickup, a delivery after a backhaul (or a trip that starts with one),
    and more routes of a type than
    it has vehicles. A solution with violations still gets an objective (of
    the routes as given) so that reports can show how far off it is.
    """
    n = instance.num_locations
    is_client = np.ones(n, dtype=bool)
    is_client[list(instance.depots)] = False
    seen = np.zeros(n, dtype=np.int64)
    violations: list[Violation] = []
    reports: list[tuple[int, RouteReport]] = []
    used = [0] * len(instance.vehicle_types)
    walk = _Walk(instance)

    for r, route in enumerate(solution.routes):
        if not route.visits:
            continue
        k = route.vehicle_type
        if not 0 <= k < len(instance.vehicle_types):
            violations.append(
                Violation("vehicle_type", f"route {r} uses vehicle type {k}, which does not exist")
            )
            continue
        used[k] += 1
        reloads = instance.vehicle_types[k].reload_depots
        for v in route.visits:
            if 0 <= v < n and is_client[v]:
                seen[v] += 1
            elif 0 <= v < n and reloads and v not in reloads:
                violations.append(
                    Violation(
                        "reload_depot",
                        f"route {r} reloads at depot {v}, not a reload depot of vehicle type {k}",
                    )
                )
            elif not (0 <= v < n and v in reloads):
                violations.append(
                    Violation("unknown_client", f"route {r} visits {v}, which is not a client")
                )
        report = _schedule(walk, route)
        _route_violations(walk, r, report, violations)
        reports.append((r, report))

    _shipment_violations(instance, reports, violations)
    required = instance.required
    for c in np.flatnonzero(is_client & required & (seen == 0)):
        violations.append(Violation("unvisited", f"client {int(c)} is not visited"))
    for c in np.flatnonzero(seen > 1):
        violations.append(Violation("repeated", f"client {int(c)} is visited {int(seen[c])} times"))
    for g, group in enumerate(instance.groups):
        visited = int(sum(seen[c] > 0 for c in group.clients))
        if visited > 1 or (group.required and visited == 0):
            need = "exactly one" if group.required else "at most one"
            violations.append(
                Violation("group", f"group {g} has {visited} clients visited, {need} may be")
            )
    for k, vt in enumerate(instance.vehicle_types):
        if vt.count is not None and used[k] > vt.count:
            violations.append(
                Violation(
                    "fleet", f"vehicle type {k} runs {used[k]} routes but has {vt.count} vehicles"
                )
            )

    routes = tuple(report for _, report in reports)
    types = instance.vehicle_types
    distance = sum(report.distance for report in routes)
    fixed = sum(types[report.vehicle_type].fixed_cost for report in routes)
    duration_cost = sum(
        types[report.vehicle_type].unit_duration_cost * report.duration for report in routes
    )
    prizes = 0.0
    if instance.prize is not None:
        prizes = float(instance.prize[is_client & (seen == 0)].sum())
    objective = sum(report.cost for report in routes) + prizes
    return Evaluation(objective, distance, fixed, duration_cost, prizes, routes, tuple(violations))


__all__ = ["Evaluation", "RouteReport", "Visit", "evaluate", "schedule", "schedules"]
