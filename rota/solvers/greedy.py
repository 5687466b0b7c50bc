"""A dependency-free constructive heuristic for every routing instance.

Two constructions, both deterministic:

* **Clarke-Wright savings** (parallel version) when there is one vehicle
  type, one load and nothing timed: TSP, ATSP, CVRP and ACVRP. On asymmetric
  matrices a merge only joins the end of one route to the start of another;
  on symmetric ones routes may also be reversed. Candidate merges are limited
  to each client's nearest neighbours, and when the fleet is finite and too
  many routes remain, the best remaining route-to-route merges (even costly
  ones) are made until the routes fit.
* **Nearest neighbour** otherwise (time windows, several vehicle types or
  depots): routes are built one at a time; each step appends the closest
  client that still fits the vehicle and its time window and lets it get back
  to the depot in time, scored as in Solomon's (1987) nearest-neighbour rule.
  Each new route is built once per vehicle type that still has vehicles, and
  the type with the lowest cost per client served is kept.

Of the routing features, nearest neighbour respects several load
dimensions, end depots, the clients each vehicle type may serve, and
distance and duration limits (a duration counted from the earliest
departure, never shorter than the evaluator's); duration costs are simply
paid. A required group is served by its member nearest a depot; optional
clients join the routes afterwards where their prize beats the added cost
(see :func:`insert_profitable`). Instances with
other features are refused.

When the clients cannot be fitted into the available vehicles the result is
``NO_SOLUTION``; the objective is the evaluator's.
"""

from __future__ import annotations

import math

import numpy as np

from rota.problems.routing import (
    TOLERANCE,
    Route,
    RoutingInstance,
    RoutingSolution,
    check_route,
    evaluate,
)
from rota.solvers.base import ALL_CRITERIA, Result, Status, finish
from rota.solvers.routing import RoutingCapabilities, check_capabilities
from rota.solvers.stopping import Stop

#: Nearest neighbours per client whose savings are considered in the first pass.
SAVINGS_NEIGHBOURS = 40

#: Positions tried per optional client, cheapest first, by :func:`insert_profitable`.
INSERTION_TRIES = 5

#: Solomon's weights for distance, time until service can start, and urgency.
_NN_WEIGHTS = (0.4, 0.4, 0.2)


class GreedySolver:
    """Savings or time-window-aware nearest neighbour; no dependencies beyond numpy."""

    name = "greedy"
    problem = "routing"
    description = "Constructive heuristic: Clarke-Wright savings or nearest neighbour (numpy)"
    # One construction is one iteration: every criterion is met once it ends.
    capabilities = RoutingCapabilities(
        stopping=ALL_CRITERIA,
        asymmetric=True,
        time_windows=True,
        heterogeneous=True,
        multi_depot=True,
        uncapacitated=True,
        features=frozenset(
            {
                "multi_load",
                "prizes",
                "groups",
                "allowed_clients",
                "end_depots",
                "max_distance",
                "max_duration",
                "duration_costs",
            }
        ),  # fmt: skip
    )

    def available(self) -> bool:
        return True

    def supports(self, instance: RoutingInstance) -> str | None:
        return check_capabilities(self.name, self.capabilities, instance)

    def solve(
        self, instance: RoutingInstance, stop: Stop, seed: int, warm_start: tuple = ()
    ) -> Result:
        """Construct routes; ``seed`` is recorded but ties break by lowest index.

        The construction runs to its end whatever the stop says: it is one
        iteration, and stops only count what happens after it.
        """
        routes, method = construct(instance)
        stats: dict[str, str] = {"method": method}
        stop(None)  # counts the one iteration; the objective is the evaluator's, in finish()
        if routes is None:
            stats["reason"] = "the clients do not fit into the available vehicles"
            return finish(
                instance,
                None,
                Status.NO_SOLUTION,
                solver=self.name,
                seed=seed,
                stop=stop,
                stats=stats,
            )
        return finish(
            instance,
            RoutingSolution(tuple(routes)),
            Status.FEASIBLE,
            solver=self.name,
            seed=seed,
            stop=stop,
            stats=stats,
        )


def construct(instance: RoutingInstance) -> tuple[list[Route] | None, str]:
    """Greedy routes for ``instance`` and the method that built them.

    Savings first where it applies, then nearest neighbour choosing the
    cheapest vehicle type per client, then nearest neighbour filling the
    largest route first (cheapest choices can use up the big vehicles early on
    tight fleets). With optional clients, two plans are built and the cheaper
    kept: one routes them as if required and then drops those that cost more
    than their prize (:func:`drop_unprofitable`), the other routes the
    required only; in both, optional clients left out then join where they
    pay (:func:`insert_profitable`). Returns ``(None, method)`` when no
    construction fits the fleet.
    """
    required = served_clients(instance)
    grouped = {c for group in instance.groups for c in group.clients}
    optional = [int(c) for c in np.flatnonzero(~instance.required) if c not in grouped]
    attempts = [np.union1d(required, optional).astype(int)] if optional else []
    best: tuple[float, list[Route], str] | None = None
    method = "nearest_neighbour_fill"
    for clients in [*attempts, required]:
        routes, method = _route(instance, clients)
        if routes is None:
            continue
        if instance.prize is not None:
            routes = insert_profitable(instance, drop_unprofitable(instance, routes))
        objective = evaluate(instance, RoutingSolution(tuple(routes))).objective
        if best is None or objective < best[0]:
            best = (objective, routes, method)
    return (None, method) if best is None else (best[1], best[2])


def _route(instance: RoutingInstance, clients: np.ndarray) -> tuple[list[Route] | None, str]:
    simple = set(instance.features) <= {"prizes", "groups"}
    if len(instance.vehicle_types) == 1 and simple and not instance.is_timed:
        routes = savings(instance, clients)
        if routes is not None:
            return routes, "savings"
    routes = nearest_neighbour(instance, "cost", clients)
    if routes is not None:
        return routes, "nearest_neighbour"
    return nearest_neighbour(instance, "most_clients", clients), "nearest_neighbour_fill"


def served_clients(instance: RoutingInstance) -> np.ndarray:
    """The clients greedy must serve: the required ones, and one member of each required
    group (the one nearest a depot of a vehicle type that may serve it)."""
    serve = instance.required.copy()
    serve[list(instance.depots)] = False
    dist = instance.distance
    for group in instance.groups:
        options = [
            (dist[vt.depot, c] + dist[c, vt.final_depot], c)
            for c in group.clients
            for vt in instance.vehicle_types
            if vt.allowed_clients is None or c in vt.allowed_clients
        ]
        if group.required and options:
            serve[min(options)[1]] = True
    return np.flatnonzero(serve)


def drop_unprofitable(instance: RoutingInstance, routes: list[Route]) -> list[Route]:
    """Remove optional clients (outside groups) whose removal saves more than their prize.

    Each is looked at once, in route order; a removal is kept only if the
    shorter route is still feasible on its own, and a route left empty is
    dropped with its fixed cost.
    """
    prize = instance.prize
    grouped = {c for group in instance.groups for c in group.clients}
    out = []
    for route in routes:
        visits = list(route.visits)
        cost = check_route(instance, route)[0].cost
        for c in route.visits:
            if instance.required[c] or c in grouped:
                continue
            rest = tuple(v for v in visits if v != c)
            if not rest:
                if cost > prize[c]:
                    visits = []
                continue
            report, violations = check_route(instance, Route(rest, route.vehicle_type))
            if not violations and cost - report.cost > prize[c]:
                visits, cost = list(rest), report.cost
        if visits:
            out.append(Route(tuple(visits), route.vehicle_type))
    return out


def insert_profitable(instance: RoutingInstance, routes: list[Route]) -> list[Route]:
    """Add optional clients (outside groups) where their prize beats the added cost.

    Clients go by prize, highest first; each goes to the cheapest position (by
    distance) among the routes whose vehicles may serve it, and the first of
    the :data:`INSERTION_TRIES` cheapest positions that keeps the route
    feasible and gains more than the route's added cost (duration costs
    included) takes it.
    """
    prize, dist, types = instance.prize, instance.distance, instance.vehicle_types
    grouped = {c for group in instance.groups for c in group.clients}
    visited = {c for route in routes for c in route.visits}
    candidates = [
        int(c) for c in np.flatnonzero(~instance.required & (prize > 0))
        if c not in grouped and c not in visited
    ]  # fmt: skip
    routes = list(routes)
    costs = [check_route(instance, route)[0].cost for route in routes]
    for c in sorted(candidates, key=lambda c: (-prize[c], c)):
        options: list[tuple[float, int, int]] = []
        for r, route in enumerate(routes):
            vt = types[route.vehicle_type]
            if vt.allowed_clients is not None and c not in vt.allowed_clients:
                continue
            path = np.array([vt.depot, *route.visits, vt.final_depot])
            added = vt.unit_distance_cost * (dist[path[:-1], c] + dist[c, path[1:]]
                                             - dist[path[:-1], path[1:]])  # fmt: skip
            options += [(float(a), r, p) for p, a in enumerate(added) if a < prize[c]]
        for _, r, p in sorted(options)[:INSERTION_TRIES]:
            visits = routes[r].visits
            longer = Route((*visits[:p], c, *visits[p:]), routes[r].vehicle_type)
            report, violations = check_route(instance, longer)
            if not violations and report.cost - costs[r] < prize[c]:
                routes[r], costs[r] = longer, report.cost
                break
    return routes


# -- Clarke-Wright savings ------------------------------------------------------


def savings(instance: RoutingInstance, clients: np.ndarray | None = None) -> list[Route] | None:
    """Clarke-Wright savings for one vehicle type without time windows.

    Routes ``clients`` (default: :func:`served_clients`). Returns ``None``
    when the routes cannot be merged down to the fleet size.
    """
    vt = instance.vehicle_types[0]
    depot = vt.depot
    clients = served_clients(instance) if clients is None else clients
    dist = instance.distance
    demand = instance.demand
    capacity = math.inf if vt.capacity is None else vt.capacity + TOLERANCE
    symmetric = instance.is_symmetric
    m = len(clients)

    # gain[a, b]: what joining a route ending at clients[a] to one starting at
    # clients[b] saves, fixed cost included (one vehicle fewer).
    sub = dist[np.ix_(clients, clients)]
    gain = dist[clients, depot][:, None] + dist[depot, clients][None, :] - sub
    gain = vt.unit_distance_cost * gain + vt.fixed_cost
    np.fill_diagonal(gain, -np.inf)

    k = min(SAVINGS_NEIGHBOURS, m - 1)
    if k < m - 1:
        near = np.argpartition(sub + np.diag(np.full(m, np.inf)), k, axis=1)[:, :k]
        rows = np.repeat(np.arange(m), k)
        cols = near.ravel()
    else:
        rows, cols = np.nonzero(~np.eye(m, dtype=bool))
    values = gain[rows, cols]
    keep = values > 0
    rows, cols, values = rows[keep], cols[keep], values[keep]
    order = np.lexsort((cols, rows, -values))  # best first; ties by index, so deterministic

    route_of = np.arange(m)
    members: dict[int, list[int]] = {a: [a] for a in range(m)}
    load = {a: float(demand[clients[a]]) for a in range(m)}
    for a, b in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        ra, rb = route_of[a], route_of[b]
        if ra == rb or load[ra] + load[rb] > capacity:
            continue
        first, second = members[ra], members[rb]
        if first[-1] != a:
            if not (symmetric and first[0] == a):
                continue
            first.reverse()
        if second[0] != b:
            if not (symmetric and second[-1] == b):
                continue
            second.reverse()
        first.extend(second)
        route_of[second] = ra
        load[ra] += load.pop(rb)
        del members[rb]

    routes = [(members[r], load[r]) for r in sorted(members)]
    if vt.count is not None and len(routes) > vt.count:
        routes = _merge_down(routes, gain, capacity, symmetric, vt.count)
        if routes is None:
            return None
    return [Route(tuple(int(clients[a]) for a in seq), 0) for seq, _ in routes]


def _merge_down(
    routes: list[tuple[list[int], float]],
    gain: np.ndarray,
    capacity: float,
    symmetric: bool,
    count: int,
) -> list[tuple[list[int], float]] | None:
    """Merge the best-gaining pair of routes (gain may be negative) until ``count`` remain."""
    routes = [(list(seq), load) for seq, load in routes]
    while len(routes) > count:
        starts = np.array([seq[0] for seq, _ in routes])
        ends = np.array([seq[-1] for seq, _ in routes])
        loads = np.array([load for _, load in routes])
        fits = loads[:, None] + loads[None, :] <= capacity
        np.fill_diagonal(fits, False)
        # orientation 0: a then b as they are; 1-3 reverse a, b or both (symmetric only)
        options = [gain[np.ix_(ends, starts)]]
        if symmetric:
            options += [
                gain[np.ix_(starts, starts)],
                gain[np.ix_(ends, ends)],
                gain[np.ix_(starts, ends)],
            ]
        stacked = np.where(fits[None], np.stack(options), -np.inf)
        best = int(np.argmax(stacked))
        if not np.isfinite(stacked.flat[best]):
            return None
        orientation, a, b = np.unravel_index(best, stacked.shape)
        first, second = routes[a][0], routes[b][0]
        if orientation in (1, 3):
            first.reverse()
        if orientation in (2, 3):
            second.reverse()
        merged = (first + second, routes[a][1] + routes[b][1])
        routes = [r for i, r in enumerate(routes) if i not in (a, b)] + [merged]
    return routes


# -- nearest neighbour ------------------------------------------------------------


def nearest_neighbour(
    instance: RoutingInstance, choose: str = "cost", clients: np.ndarray | None = None
) -> list[Route] | None:
    """Routes built one at a time by the time-window-aware nearest-neighbour rule.

    ``choose`` picks the vehicle type of each route among those with vehicles
    left: ``"cost"`` the lowest cost per client served, ``"most_clients"`` the
    one serving the most clients (then the cheaper). Routes ``clients``
    (default: :func:`served_clients`). Returns ``None`` when some clients are
    left and no vehicle can take them.
    """
    if choose not in ("cost", "most_clients"):
        raise ValueError(f"choose is {choose!r}, expected 'cost' or 'most_clients'")
    types = instance.vehicle_types
    left = [math.inf if vt.count is None else vt.count for vt in types]
    unserved = np.zeros(instance.num_locations, dtype=bool)
    unserved[served_clients(instance) if clients is None else clients] = True
    routes: list[Route] = []
    while unserved.any():
        best: tuple[tuple[float, float], int, list[int]] | None = None
        for k, vt in enumerate(types):
            if left[k] <= 0:
                continue
            visits = _build_route(instance, k, unserved)
            if not visits:
                continue
            path = np.array([vt.depot, *visits, vt.final_depot])
            cost = vt.fixed_cost + vt.unit_distance_cost * float(
                instance.distance[path[:-1], path[1:]].sum()
            )
            per_client = cost / len(visits)
            key = (per_client, 0.0) if choose == "cost" else (-len(visits), per_client)
            if best is None or key < best[0]:
                best = (key, k, visits)
        if best is None:
            return None
        _, k, visits = best
        routes.append(Route(tuple(visits), k))
        unserved[visits] = False
        left[k] -= 1
    return routes


def _build_route(instance: RoutingInstance, k: int, unserved: np.ndarray) -> list[int]:
    """One route for a vehicle of type ``k`` over the ``unserved`` clients it may serve."""
    vt = instance.vehicle_types[k]
    depot, end = vt.depot, vt.final_depot
    dist = instance.distance
    # Half the evaluator's slack, so float noise here never becomes a violation there.
    slack = 0.5 * TOLERANCE
    demand = instance.deliveries
    capacity = np.inf if vt.capacities is None else np.asarray(vt.capacities) + slack
    max_distance = math.inf if vt.max_distance is None else vt.max_distance + slack
    max_duration = math.inf if vt.max_duration is None else vt.max_duration + slack
    windows = instance.time_windows
    timed = windows is not None or vt.max_duration is not None
    if timed:
        travel, service = instance.travel_time, instance.service_time
        if windows is None:
            early, late = np.zeros(instance.num_locations), np.full(instance.num_locations, np.inf)
        else:
            early = windows[:, 0]
            late = windows[:, 1] + slack * np.maximum(1.0, np.abs(windows[:, 1]))
        # Serving a client must still leave time to get back before the end depot closes.
        home_by = late[end] - service - travel[:, end]
        departure = time = float(early[depot])
    open_ = unserved.copy()
    if vt.allowed_clients is not None:
        allowed = np.zeros_like(open_)
        allowed[list(vt.allowed_clients)] = True
        open_ &= allowed
    visits: list[int] = []
    current, load, covered = depot, np.zeros(demand.shape[1]), 0.0
    w_dist, w_time, w_urgency = _NN_WEIGHTS
    while True:
        feasible = open_ & np.all(load + demand <= capacity, axis=1)
        feasible &= covered + dist[current] + dist[:, end] <= max_distance
        score = dist[current]
        if timed:
            ready = time + service[current]
            arrival = np.maximum(ready + travel[current], early)
            feasible &= (arrival <= late) & (arrival <= home_by)
            # the duration if the route went home next, counted from the earliest departure
            home = np.maximum(arrival + service + travel[:, end], early[end])
            feasible &= home - departure <= max_duration
            if windows is not None:
                score = (
                    w_dist * dist[current]
                    + w_time * (arrival - ready)
                    + w_urgency * (windows[:, 1] - arrival)
                )
        if not feasible.any():
            return visits
        nxt = int(np.argmin(np.where(feasible, score, np.inf)))
        visits.append(nxt)
        open_[nxt] = False
        load += demand[nxt]
        covered += float(dist[current, nxt])
        if timed:
            time = float(arrival[nxt])
        current = nxt


__all__ = [
    "GreedySolver", "construct", "drop_unprofitable", "insert_profitable", "nearest_neighbour",
    "savings", "served_clients",
]  # fmt: skip
