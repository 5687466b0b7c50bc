"""The MILP formulations: the encoded instance and the PuLP models built from it.

See :mod:`rota.solvers.milp` for the models; this module builds them and adds
the cuts :mod:`rota.solvers.milp.separation` finds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rota.problems.routing import TOLERANCE, RoutingInstance
from rota.solvers.scaling import integer_scale

# -- the encoded instance -------------------------------------------------------


@dataclass
class ModelData:
    """The instance as the formulations see it (costs possibly scaled)."""

    instance: RoutingInstance
    depot: int
    clients: np.ndarray
    demand: np.ndarray
    vehicles: list[int]  # vehicle type of each copy of the arc variables
    indexed: bool  # one copy per vehicle type (several types)
    min_routes: int
    max_routes: int
    capacity: float | None  # largest capacity, for the rounded capacity cuts
    fleet_reach: np.ndarray | None  # capacity of the k largest vehicles, k = 1, 2, ...
    homogeneous_capacity: bool  # one type: a route above ``capacity`` is a violation
    arcs: list[tuple[int, int]]
    cost: np.ndarray  # (types, n, n) in model units
    fixed: np.ndarray  # (types,) in model units
    scale: float  # model units per instance unit
    integral: bool  # model costs are integers

    @property
    def n(self) -> int:
        return self.instance.num_locations

    def route_cost(self, visits: Sequence[int], vtype: int) -> float:
        path = [self.depot, *visits, self.depot]
        c = self.cost[vtype]
        return float(
            self.fixed[vtype] + sum(c[a, b] for a, b in zip(path[:-1], path[1:], strict=True))
        )


def vehicle_copies(instance: RoutingInstance) -> list[int]:
    """The vehicle type of every usable vehicle (``count=None``: one per client)."""
    copies: list[int] = []
    for k, vt in enumerate(instance.vehicle_types):
        copies += [k] * (
            instance.num_clients if vt.count is None else min(vt.count, instance.num_clients)
        )
    return copies


def allowed_arcs(instance: RoutingInstance) -> np.ndarray:
    """``(n, n)`` mask of the arcs some feasible solution could use.

    Drops the diagonal, client pairs whose joint demand exceeds the largest
    capacity, and arcs that reach a client after its window closes even when
    leaving the tail as early as possible.
    """
    n = instance.num_locations
    allowed = ~np.eye(n, dtype=bool)
    clients = instance.clients
    caps = [vt.capacity for vt in instance.vehicle_types]
    if None not in caps:
        d = instance.demand
        pair = d[:, None] + d[None, :] > max(caps) + TOLERANCE
        block = np.zeros((n, n), dtype=bool)
        block[np.ix_(clients, clients)] = pair[np.ix_(clients, clients)]
        allowed &= ~block
    if instance.time_windows is not None:
        e, late = instance.time_windows[:, 0], instance.time_windows[:, 1]
        earliest = e[:, None] + instance.service_time[:, None] + instance.travel_time
        late_arc = earliest > late[None, :] + TOLERANCE * np.maximum(1.0, np.abs(late[None, :]))
        block = np.zeros((n, n), dtype=bool)
        block[:, clients] = late_arc[:, clients]
        allowed &= ~block
    return allowed


def encode(instance: RoutingInstance) -> ModelData:
    types = instance.vehicle_types
    depot = instance.depots[0]
    indexed = len(types) > 1
    unit_costs = [vt.unit_distance_cost * instance.distance for vt in types]
    fixed = np.array([vt.fixed_cost for vt in types], dtype=np.float64)
    scale, exact = integer_scale(*unit_costs, fixed)
    if exact:
        cost = np.round(np.stack(unit_costs) * scale)
        fixed = np.round(fixed * scale)
    else:
        # Floats go to the MILP unrounded so that its bound stays valid, but brought
        # to hundreds at least: the backends' absolute tolerances (about 1e-9) would
        # otherwise take costs of 1e-7 for ties, and "prove" a wrong optimum.
        cost = np.stack(unit_costs)
        largest = max(float(cost.max()), float(fixed.max()))
        scale = 10.0 ** max(0, math.ceil(2 - math.log10(largest))) if largest > 0 else 1.0
        cost, fixed = cost * scale, fixed * scale
    caps = [vt.capacity for vt in types]
    capacity = None if None in caps else float(max(caps))
    total = float(instance.demand.sum())
    vt0 = types[0]
    fleet_reach = None
    if indexed:
        vehicles = list(range(len(types)))
        copies = vehicle_copies(instance)
        max_routes = len(copies)
        min_routes = 1
        if capacity is not None:
            fleet_reach = np.cumsum(sorted((types[k].capacity for k in copies), reverse=True))
            reachable = np.searchsorted(fleet_reach, total - TOLERANCE) + 1
            min_routes = int(max(1, min(reachable, max_routes)))
    else:
        vehicles = [0]
        max_routes = instance.num_clients if vt0.count is None else vt0.count
        max_routes = min(max_routes, instance.num_clients)
        needed = 1 if capacity is None else math.ceil(total / capacity - 1e-9)
        min_routes = max(1, min(needed, max_routes))
    allowed = allowed_arcs(instance)
    arcs = [(int(i), int(j)) for i, j in zip(*np.nonzero(allowed), strict=True)]
    return ModelData(
        instance=instance,
        depot=depot,
        clients=instance.clients,
        demand=instance.demand,
        vehicles=vehicles,
        indexed=indexed,
        min_routes=min_routes,
        fleet_reach=fleet_reach,
        max_routes=max_routes,
        capacity=capacity,
        homogeneous_capacity=not indexed and capacity is not None,
        arcs=arcs,
        cost=cost,
        fixed=fixed,
        scale=float(scale),
        integral=exact,
    )


# -- the PuLP model -------------------------------------------------------------


@dataclass
class Formulation:
    problem: Any
    arc_vars: dict[tuple[int, int], list[Any]]  # aggregated: every vehicle's copy
    vehicle_arcs: list[dict[tuple[int, int], Any]]  # per vehicle (three-index), else one
    integer_vars: list[Any]
    route_counts: list[Any]  # one integer per vehicle type (type-indexed model only)
    cuts: int = 0
    cut_sets: set[frozenset[int]] = field(default_factory=set)


def lin(terms: Iterable[tuple[Any, float]]) -> Any:
    import pulp  # loaded by now: see backends.load_pulp

    return pulp.LpAffineExpression(list(terms))


def build(data: ModelData, formulation: str) -> Formulation:
    import pulp  # loaded by now: see backends.load_pulp

    inst = data.instance
    prob = pulp.LpProblem("rota", pulp.LpMinimize)
    depot = data.depot
    vehicle_arcs: list[dict[tuple[int, int], Any]] = []
    arc_vars: dict[tuple[int, int], list[Any]] = {a: [] for a in data.arcs}
    objective: list[tuple[Any, float]] = []
    for v, k in enumerate(data.vehicles):
        tag = f"{v}_" if data.indexed else ""
        xs = {}
        for i, j in data.arcs:
            var = prob.add_variable(f"x_{tag}{i}_{j}", cat=pulp.LpBinary)
            xs[(i, j)] = var
            arc_vars[(i, j)].append(var)
            c = data.cost[k][i, j] + (data.fixed[k] if i == depot else 0.0)
            if c:
                objective.append((var, float(c)))
        vehicle_arcs.append(xs)
    prob += lin(objective)

    out_arcs: dict[int, list[tuple[int, int]]] = {i: [] for i in range(data.n)}
    in_arcs: dict[int, list[tuple[int, int]]] = {i: [] for i in range(data.n)}
    for a in data.arcs:
        out_arcs[a[0]].append(a)
        in_arcs[a[1]].append(a)

    def agg(arcs: Iterable[tuple[int, int]], coef: float = 1.0) -> list[tuple[Any, float]]:
        return [(var, coef) for a in arcs for var in arc_vars[a]]

    for j in data.clients:
        prob += lin(agg(in_arcs[j])) == 1, f"in_{j}"
        prob += lin(agg(out_arcs[j])) == 1, f"out_{j}"
    route_counts: list[Any] = []
    if data.indexed:
        for k, xs in enumerate(vehicle_arcs):
            for node in range(data.n):  # a route keeps its vehicle type
                flow = [(xs[a], 1.0) for a in in_arcs[node]]
                flow += [(xs[a], -1.0) for a in out_arcs[node]]
                prob += lin(flow) == 0, f"flow_{k}_{node}"
            # an integer route count per type lets the backend derive fleet covers from
            # "load of type k <= Q_k * routes of type k"
            vt = inst.vehicle_types[k]
            routes = prob.add_variable(
                f"routes_{k}", lowBound=0, upBound=vt.count, cat=pulp.LpInteger
            )
            route_counts.append(routes)
            depart = [(xs[a], 1.0) for a in out_arcs[depot]]
            prob += lin([*depart, (routes, -1.0)]) == 0, f"count_{k}"
            if vt.capacity is not None:
                load = [(xs[a], float(data.demand[a[1]])) for a in data.arcs if a[1] != depot]
                prob += lin([*load, (routes, -float(vt.capacity))]) <= 0, f"type_load_{k}"
        _add_loads(prob, data, vehicle_arcs, arc_vars)
        prob += lin((r, 1.0) for r in route_counts) >= data.min_routes, "min_routes"
    else:
        routes = lin(agg(out_arcs[depot]))
        prob += lin(agg(out_arcs[depot]) + agg(in_arcs[depot], -1.0)) == 0, "depot_balance"
        if data.min_routes == data.max_routes:
            prob += routes == data.max_routes, "routes"
        else:
            prob += lin(agg(out_arcs[depot])) <= data.max_routes, "max_routes"
            prob += lin(agg(out_arcs[depot])) >= data.min_routes, "min_routes"

    if inst.time_windows is not None:
        _add_time_windows(prob, data, arc_vars)
    if formulation == "flow":
        _add_flow(prob, data, arc_vars, out_arcs, in_arcs)
    integer_vars = [var for xs in vehicle_arcs for var in xs.values()] + route_counts
    return Formulation(prob, arc_vars, vehicle_arcs, integer_vars, route_counts)


def _add_time_windows(prob: Any, data: ModelData, arc_vars: dict) -> None:
    inst = data.instance
    e, late = inst.time_windows[:, 0], inst.time_windows[:, 1]
    service, travel, depot = inst.service_time, inst.travel_time, data.depot
    start = {
        int(j): prob.add_variable(f"t_{j}", lowBound=float(e[j]), upBound=float(late[j]))
        for j in data.clients
    }
    for (i, j), xs in arc_vars.items():
        step = float(service[i] + travel[i, j])
        if i == depot:  # first client: not before the depot opens plus the trip
            gap = float(e[depot]) + step - float(e[j])
            if gap > 0:
                prob += lin([(start[j], 1.0)] + [(x, -gap) for x in xs]) >= float(e[j])
        elif j == depot:  # last client: back before the depot closes
            big_m = float(late[i]) + step - float(late[depot])
            if big_m > 0:
                terms = [(start[i], 1.0)] + [(x, big_m) for x in xs]
                prob += lin(terms) <= float(late[depot]) - step + big_m
        else:
            big_m = float(late[i]) + step - float(e[j])
            if big_m > 0:
                terms = [(start[j], 1.0), (start[i], -1.0)] + [(x, -big_m) for x in xs]
                prob += lin(terms) >= step - big_m


def _add_flow(prob: Any, data: ModelData, arc_vars: dict, out_arcs: dict, in_arcs: dict) -> None:
    """Single-commodity flow: the depot ships one unit to each client (TSP only)."""
    depot, m = data.depot, len(data.clients)
    flow = {
        a: prob.add_variable(f"f_{a[0]}_{a[1]}", lowBound=0) for a in data.arcs if a[1] != depot
    }
    for (i, j), f in flow.items():
        room = m if i == depot else m - 1
        prob += lin([(f, 1.0)] + [(x, -float(room)) for x in arc_vars[(i, j)]]) <= 0
    prob += lin((flow[a], 1.0) for a in out_arcs[depot]) == m, "flow_source"
    for j in data.clients:
        balance = [(flow[a], 1.0) for a in in_arcs[j]]
        balance += [(flow[a], -1.0) for a in out_arcs[j] if a in flow]
        prob += lin(balance) == 1, f"flow_{j}"


def _add_loads(prob: Any, data: ModelData, type_arcs: list[dict], arc_vars: dict) -> None:
    """Load after each client (MTZ style), capped by the capacity of the type serving it.

    ``u_j >= u_i + d_j`` on every used client arc makes ``u`` at least the load
    carried so far, and a route keeps its type, so ``u_i <= Q(type of i)`` at
    the last client bounds the whole route's load.
    """
    inst, depot = data.instance, data.depot
    caps = [vt.capacity for vt in inst.vehicle_types]
    top = float(data.demand.sum()) if None in caps else float(max(caps))
    load = {
        int(j): prob.add_variable(f"u_{j}", lowBound=float(data.demand[j]), upBound=top)
        for j in data.clients
    }
    d = data.demand
    for (i, j), xs in arc_vars.items():
        if i == depot or j == depot:
            continue
        # Desrochers-Laporte lifting: the reverse arc j -> i forces u_i = u_j + d_i
        terms = [(load[j], 1.0), (load[i], -1.0)] + [(x, -top) for x in xs]
        terms += [(x, -(top - d[i] - d[j])) for x in arc_vars.get((j, i), ())]
        prob += lin(terms) >= float(d[j]) - top
    for k, vt in enumerate(inst.vehicle_types):
        if vt.capacity is None or vt.capacity >= top:
            continue
        leaving: dict[int, list[Any]] = {}
        for (i, _), x in type_arcs[k].items():
            if i != depot:
                leaving.setdefault(i, []).append(x)
        for i, xs in leaving.items():  # u_i <= Q_k when a type-k vehicle serves i
            prob += lin([(load[i], 1.0)] + [(x, top - vt.capacity) for x in xs]) <= top


def add_cut(form: Formulation, data: ModelData, members: frozenset[int], rhs: int) -> None:
    """``x(delta-(S)) >= rhs``, written on the sparser side.

    Every client has in-degree one, so the cut equals the packing form
    ``x(A(S)) <= |S| - rhs``, which has fewer terms while ``|S| < n / 2``.
    """
    if members in form.cut_sets:
        return
    form.cut_sets.add(members)
    arc_vars = form.arc_vars
    inside = sorted(members)
    if 2 * len(members) < data.n:
        pairs = ((i, j) for i in inside for j in inside if i != j)
        terms = [(x, 1.0) for a in pairs for x in arc_vars.get(a, ())]
        form.problem += lin(terms) <= len(members) - rhs, f"cut_{form.cuts}"
    else:
        outside = [i for i in range(data.n) if i not in members]
        pairs = ((i, j) for j in inside for i in outside)
        terms = [(x, 1.0) for a in pairs for x in arc_vars.get(a, ())]
        form.problem += lin(terms) >= rhs, f"cut_{form.cuts}"
    form.cuts += 1


def vehicles_needed(data: ModelData, load: float) -> int:
    """Fewest vehicles of the fleet whose capacities add up to ``load`` (at least one).

    Routes entering a client set each bring one vehicle, so this many arcs must
    enter it; with one vehicle type it is ``ceil(load / Q)``.
    """
    if data.capacity is None:
        return 1
    if data.fleet_reach is None:
        return max(1, math.ceil(load / data.capacity - 1e-9))
    needed = int(np.searchsorted(data.fleet_reach, load - TOLERANCE)) + 1
    return max(1, min(needed, len(data.fleet_reach)))


def cut_rhs(data: ModelData, members: Iterable[int]) -> int:
    return vehicles_needed(data, float(sum(data.demand[list(members)])))
