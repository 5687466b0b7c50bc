"""Exact routing by mixed-integer programming, through PuLP with CBC or HiGHS.

Formulations
------------
*One vehicle type* (TSP, ATSP, CVRP, ACVRP, VRPTW, with or without a fixed
cost per route): a two-index model with one binary per allowed arc (see
:func:`allowed_arcs`), in- and out-degree one at every client and between
``ceil(total demand / Q)`` and ``count`` routes at the depot.

*Several vehicle types*: a type-indexed model, one copy of the arc variables
per vehicle type, with flow conservation per type (a route keeps its type),
an integer route count per type bounded by ``count``, "load of type k <=
Q_k times its routes", and MTZ-style loads ``u_j >= u_i + d_j`` (lifted as in
Desrochers and Laporte) capped at the capacity of the type leaving each
client, which bounds every route's load by its own vehicle's capacity.
Offered only for small models (:data:`MAX_VEHICLE_ARCS`).

Subtours and overloaded routes are excluded by rounded capacity inequalities
``x(delta-(S)) >= r(S)`` over client sets ``S``, where ``r(S)`` is the fewest
vehicles of the fleet whose capacities add up to ``d(S)`` (``ceil(d(S) / Q)``
with one type; ``1`` without capacities, the subtour elimination constraint).
They are added lazily: first in rounds on the LP relaxation (subtour cuts
separated exactly by maximum flow; capacity cuts on connected components and
on sets grown greedily from each client), then on each integer solution,
re-solving the MIP until its optimum violates no cut, with LP rounds again
after every MIP that did. For TSP/ATSP a compact single-commodity flow
formulation is available too (``formulation="flow"``);
``benchmarks/exact/summary.md`` measured the lazy loop 5 to 60 times faster
on br17, ftv33, ftv47 and ry48p, so it is the default. Time windows use
big-M start-time constraints.

Proofs
------
Every model solved in the loop is a relaxation of the routing problem, so
its dual bound is a valid lower bound, and an infeasibility proof of any of
them proves the instance infeasible. A result is ``OPTIMAL`` only when the
backend proved a MIP optimal *and* that solution violates no cut, or when a
feasible solution meets the proven bound. A time-out inside the loop returns
the best feasible solution seen (warm start, a patched tour or a cut-free MIP
incumbent) as ``FEASIBLE`` with the best bound, else ``NO_SOLUTION``.
PuLP maps CBC's "stopped on time" to ``Optimal``; this adapter reads CBC's
log and the solution status instead and never relies on the problem status.

Costs are scaled to integers with :func:`~rota.solvers.base.integer_scale`
when that is exact (the bound is then rounded up to the next integer, which
is valid because every solution has an integral scaled cost). Otherwise the
model uses the instance's float costs directly, so no rounding ever enters a
bound; the bound is lowered by the solver's tolerance and the objective is
the evaluator's.

Time limits
-----------
The loop tracks the time left across its solves and grants each one that
time minus the measured cost of writing and loading the model. Two backend
steps do not check their limit, so they are guarded: HiGHS runs with
interrupt callbacks at the deadline and, on large models, without presolve;
CBC gets a SIGINT from a watchdog thread once it runs past its limit (it
then still writes its best solution) and, on large models, no MIP start.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, maximum_flow

from rota.problems.routing import TOLERANCE, RoutingInstance, RoutingSolution, evaluate
from rota.solvers import greedy
from rota.solvers.base import (
    Capabilities,
    Result,
    Status,
    Stop,
    UnsupportedInstanceError,
    check_capabilities,
    finish,
    integer_scale,
    reconfigured,
    size_family,
)

#: PuLP, imported on first use: importing it loads highspy, whose libhighs.so.1
#: clashes with the one bundled in OR-Tools, so merely listing solvers (or using
#: cpsat's helpers from this module) must not import it.
pulp: Any = None


def _load_pulp() -> bool:
    """Import PuLP into the module global; False when it cannot be imported."""
    global pulp
    if pulp is None:
        try:
            import pulp as module
        except ImportError:
            return False
        pulp = module
    return True


BACKENDS = ("cbc", "highs")
FORMULATIONS = ("lazy", "flow")

#: Largest number of clients offered per problem family. The two-index model
#: has ``n^2`` binaries; beyond these sizes the lazy loop rarely closes the gap
#: within minutes on two cores, and a heuristic solver is the right tool.
MAX_CLIENTS = {"tsp": 400, "cvrp": 100, "vrptw": 60, "hf": 30}
#: The compact flow formulation doubles the model and its root LP can run far
#: past the time limit (CBC does not check it there); it is offered up to here.
MAX_FLOW_CLIENTS = 60
#: Type-indexed (heterogeneous fleet) models: vehicle types times arcs, at most.
MAX_VEHICLE_ARCS = 40_000

#: Relative tolerance of the backends' optimality and bound arithmetic; a float
#: bound is lowered by this much so that it stays a valid lower bound.
_BOUND_TOL = 1e-6
#: Below this many seconds left, another MIP solve cannot do anything useful.
_MIN_SOLVE = 0.05
#: The LP cutting rounds may use at most this share of the time limit.
_LP_SHARE = 0.35
_MAX_LP_ROUNDS = 200
#: LP rounds after each MIP whose integer solution violated a cut.
_RESEPARATION_ROUNDS = 20
_EPS = 1e-6
#: Above this many columns two backend steps ignore the time limit: HiGHS's
#: presolve (50 s on a 300-city ATSP with a few dense subtour cuts, removing
#: nothing) and CBC's processing of a MIP start (13 s there). Larger models are
#: solved without them; the loop keeps its own incumbent either way.
_LARGE_MODEL_COLS = 20_000
#: A CBC run that used this share of its time limit may have been stopped by it
#: anywhere, preprocessing included, so its optimality or infeasibility verdict
#: is not taken as a proof.
_CBC_LIMIT_SHARE = 0.95


# -- the encoded instance -------------------------------------------------------


@dataclass
class _Data:
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


def _encode(instance: RoutingInstance) -> _Data:
    types = instance.vehicle_types
    depot = instance.depots[0]
    indexed = len(types) > 1
    unit_costs = [vt.unit_distance_cost * instance.distance for vt in types]
    fixed = np.array([vt.fixed_cost for vt in types], dtype=np.float64)
    scale, exact = integer_scale(*unit_costs, fixed)
    if exact:
        cost = np.round(np.stack(unit_costs) * scale)
        fixed = np.round(fixed * scale)
    else:  # floats go to the MILP unrounded so that its bound stays valid
        scale, cost = 1, np.stack(unit_costs)
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
    return _Data(
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
class _Formulation:
    problem: Any
    arc_vars: dict[tuple[int, int], list[Any]]  # aggregated: every vehicle's copy
    vehicle_arcs: list[dict[tuple[int, int], Any]]  # per vehicle (three-index), else one
    integer_vars: list[Any]
    route_counts: list[Any]  # one integer per vehicle type (type-indexed model only)
    cuts: int = 0
    cut_sets: set[frozenset[int]] = field(default_factory=set)


def _lin(terms: Iterable[tuple[Any, float]]) -> Any:
    return pulp.LpAffineExpression(list(terms))


def _build(data: _Data, formulation: str) -> _Formulation:
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
    prob += _lin(objective)

    out_arcs: dict[int, list[tuple[int, int]]] = {i: [] for i in range(data.n)}
    in_arcs: dict[int, list[tuple[int, int]]] = {i: [] for i in range(data.n)}
    for a in data.arcs:
        out_arcs[a[0]].append(a)
        in_arcs[a[1]].append(a)

    def agg(arcs: Iterable[tuple[int, int]], coef: float = 1.0) -> list[tuple[Any, float]]:
        return [(var, coef) for a in arcs for var in arc_vars[a]]

    for j in data.clients:
        prob += _lin(agg(in_arcs[j])) == 1, f"in_{j}"
        prob += _lin(agg(out_arcs[j])) == 1, f"out_{j}"
    route_counts: list[Any] = []
    if data.indexed:
        for k, xs in enumerate(vehicle_arcs):
            for node in range(data.n):  # a route keeps its vehicle type
                flow = [(xs[a], 1.0) for a in in_arcs[node]]
                flow += [(xs[a], -1.0) for a in out_arcs[node]]
                prob += _lin(flow) == 0, f"flow_{k}_{node}"
            # an integer route count per type lets the backend derive fleet covers from
            # "load of type k <= Q_k * routes of type k"
            vt = inst.vehicle_types[k]
            routes = prob.add_variable(
                f"routes_{k}", lowBound=0, upBound=vt.count, cat=pulp.LpInteger
            )
            route_counts.append(routes)
            depart = [(xs[a], 1.0) for a in out_arcs[depot]]
            prob += _lin([*depart, (routes, -1.0)]) == 0, f"count_{k}"
            if vt.capacity is not None:
                load = [(xs[a], float(data.demand[a[1]])) for a in data.arcs if a[1] != depot]
                prob += _lin([*load, (routes, -float(vt.capacity))]) <= 0, f"type_load_{k}"
        _add_loads(prob, data, vehicle_arcs, arc_vars)
        prob += _lin((r, 1.0) for r in route_counts) >= data.min_routes, "min_routes"
    else:
        routes = _lin(agg(out_arcs[depot]))
        prob += _lin(agg(out_arcs[depot]) + agg(in_arcs[depot], -1.0)) == 0, "depot_balance"
        if data.min_routes == data.max_routes:
            prob += routes == data.max_routes, "routes"
        else:
            prob += _lin(agg(out_arcs[depot])) <= data.max_routes, "max_routes"
            prob += _lin(agg(out_arcs[depot])) >= data.min_routes, "min_routes"

    if inst.time_windows is not None:
        _add_time_windows(prob, data, arc_vars)
    if formulation == "flow":
        _add_flow(prob, data, arc_vars, out_arcs, in_arcs)
    integer_vars = [var for xs in vehicle_arcs for var in xs.values()] + route_counts
    return _Formulation(prob, arc_vars, vehicle_arcs, integer_vars, route_counts)


def _add_time_windows(prob: Any, data: _Data, arc_vars: dict) -> None:
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
                prob += _lin([(start[j], 1.0)] + [(x, -gap) for x in xs]) >= float(e[j])
        elif j == depot:  # last client: back before the depot closes
            big_m = float(late[i]) + step - float(late[depot])
            if big_m > 0:
                terms = [(start[i], 1.0)] + [(x, big_m) for x in xs]
                prob += _lin(terms) <= float(late[depot]) - step + big_m
        else:
            big_m = float(late[i]) + step - float(e[j])
            if big_m > 0:
                terms = [(start[j], 1.0), (start[i], -1.0)] + [(x, -big_m) for x in xs]
                prob += _lin(terms) >= step - big_m


def _add_flow(prob: Any, data: _Data, arc_vars: dict, out_arcs: dict, in_arcs: dict) -> None:
    """Single-commodity flow: the depot ships one unit to each client (TSP only)."""
    depot, m = data.depot, len(data.clients)
    flow = {
        a: prob.add_variable(f"f_{a[0]}_{a[1]}", lowBound=0) for a in data.arcs if a[1] != depot
    }
    for (i, j), f in flow.items():
        room = m if i == depot else m - 1
        prob += _lin([(f, 1.0)] + [(x, -float(room)) for x in arc_vars[(i, j)]]) <= 0
    prob += _lin((flow[a], 1.0) for a in out_arcs[depot]) == m, "flow_source"
    for j in data.clients:
        balance = [(flow[a], 1.0) for a in in_arcs[j]]
        balance += [(flow[a], -1.0) for a in out_arcs[j] if a in flow]
        prob += _lin(balance) == 1, f"flow_{j}"


def _add_loads(prob: Any, data: _Data, type_arcs: list[dict], arc_vars: dict) -> None:
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
        prob += _lin(terms) >= float(d[j]) - top
    for k, vt in enumerate(inst.vehicle_types):
        if vt.capacity is None or vt.capacity >= top:
            continue
        leaving: dict[int, list[Any]] = {}
        for (i, _), x in type_arcs[k].items():
            if i != depot:
                leaving.setdefault(i, []).append(x)
        for i, xs in leaving.items():  # u_i <= Q_k when a type-k vehicle serves i
            prob += _lin([(load[i], 1.0)] + [(x, top - vt.capacity) for x in xs]) <= top


def _add_cut(form: _Formulation, data: _Data, members: frozenset[int], rhs: int) -> None:
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
        form.problem += _lin(terms) <= len(members) - rhs, f"cut_{form.cuts}"
    else:
        outside = [i for i in range(data.n) if i not in members]
        pairs = ((i, j) for j in inside for i in outside)
        terms = [(x, 1.0) for a in pairs for x in arc_vars.get(a, ())]
        form.problem += _lin(terms) >= rhs, f"cut_{form.cuts}"
    form.cuts += 1


def _vehicles_needed(data: _Data, load: float) -> int:
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


def _cut_rhs(data: _Data, members: Iterable[int]) -> int:
    return _vehicles_needed(data, float(sum(data.demand[list(members)])))


# -- separation -----------------------------------------------------------------


def _aggregate(form: _Formulation, data: _Data) -> np.ndarray:
    x = np.zeros((data.n, data.n))
    for (i, j), xs in form.arc_vars.items():
        x[i, j] = sum((v.varValue or 0.0) for v in xs)
    return x


def _fractional_cuts(data: _Data, x: np.ndarray) -> list[tuple[frozenset[int], int]]:
    """Violated capacity / subtour cuts of an LP point.

    Connected components of the client support and sets grown greedily from
    each client (:func:`_grown_sets`) give capacity cuts; a minimum
    cut from the depot to each client (maximum flow on ``x`` scaled to
    integers) gives every violated subtour cut, exactly up to that scaling.
    """
    found: dict[frozenset[int], int] = {}
    clients = data.clients

    def consider(members: frozenset[int]) -> None:
        idx = np.fromiter(members, dtype=np.int64)
        outside = np.ones(data.n, dtype=bool)
        outside[idx] = False
        inflow = float(x[np.ix_(outside, idx)].sum())
        rhs = _cut_rhs(data, members)
        if inflow < rhs - 1e-4 and members not in found:
            found[members] = rhs

    support = x[np.ix_(clients, clients)] > _EPS
    ncomp, labels = connected_components(csr_matrix(support), directed=True, connection="weak")
    if ncomp > 1 or data.capacity is not None:
        for c in range(ncomp):
            consider(frozenset(int(v) for v in clients[labels == c]))
    if data.capacity is not None:
        for members in _grown_sets(data, x):
            consider(members)

    flow_scale = 1_000_000
    cap = np.floor(x * flow_scale).astype(np.int32)
    np.fill_diagonal(cap, 0)
    graph = csr_matrix(cap)
    graph.sort_indices()
    covered = np.zeros(data.n, dtype=bool)
    for j in clients:
        if covered[j]:
            continue
        result = maximum_flow(graph, data.depot, int(j))
        if result.flow_value >= flow_scale - 10:
            continue
        residual = cap - result.flow.toarray()
        reach = np.zeros(data.n, dtype=bool)
        reach[data.depot] = True
        frontier = [data.depot]
        while frontier:
            u = frontier.pop()
            nxt = np.flatnonzero((residual[u] > 0) & ~reach)
            reach[nxt] = True
            frontier.extend(nxt.tolist())
        members = frozenset(int(v) for v in np.flatnonzero(~reach))
        covered[list(members)] = True
        consider(members)
    return list(found.items())


def _grown_sets(data: _Data, x: np.ndarray) -> list[frozenset[int]]:
    """Client sets that violate a rounded capacity inequality, grown from each seed.

    From every client, repeatedly add the client most strongly connected to
    the set. Every client has in-degree one, so ``x(delta-(S)) = |S| - x(S:S)``
    and the inflow is tracked as the internal flow grows.
    """
    clients = data.clients
    sub = x[np.ix_(clients, clients)]
    link = sub + sub.T
    demand = data.demand[clients]
    m = len(clients)
    violated: list[frozenset[int]] = []
    for seed in range(m):
        inside = np.zeros(m, dtype=bool)
        inside[seed] = True
        strength = link[seed].copy()
        internal, load, size = 0.0, float(demand[seed]), 1
        for _ in range(m - 1):
            strength[inside] = -1.0
            j = int(np.argmax(strength))
            if strength[j] <= _EPS:
                break
            internal += strength[j]
            load += float(demand[j])
            size += 1
            inside[j] = True
            strength += link[j]
            rhs = _vehicles_needed(data, load)
            if size - internal < rhs - 1e-4:
                violated.append(frozenset(int(c) for c in clients[inside]))
    return violated


@dataclass
class _Decoded:
    routes: list[tuple[list[int], int]]  # (visits, vehicle type)
    subtours: list[list[int]]


def _decode(form: _Formulation, data: _Data) -> _Decoded:
    depot = data.depot
    routes: list[tuple[list[int], int]] = []
    seen = np.zeros(data.n, dtype=bool)
    succ_all: dict[int, int] = {}
    for v, xs in enumerate(form.vehicle_arcs):
        succ: dict[int, list[int]] = {}
        for (i, j), var in xs.items():
            if (var.varValue or 0.0) > 0.5:
                succ.setdefault(i, []).append(j)
                if i != depot:
                    succ_all[i] = j
        for first in succ.get(depot, []):
            visits, node = [], first
            while node != depot and not seen[node]:
                seen[node] = True
                visits.append(node)
                node = succ.get(node, [depot])[0]
            routes.append((visits, data.vehicles[v] if data.indexed else 0))
    subtours = []
    for start in data.clients:
        if seen[start]:
            continue
        cycle, node = [], int(start)
        while not seen[node] and node != depot:
            seen[node] = True
            cycle.append(node)
            node = succ_all.get(node, depot)
        subtours.append(cycle)
    return _Decoded(routes, subtours)


def _integer_cuts(data: _Data, decoded: _Decoded) -> list[tuple[frozenset[int], int]]:
    cuts = [(frozenset(s), _cut_rhs(data, s)) for s in decoded.subtours]
    if data.homogeneous_capacity:
        for visits, _ in decoded.routes:
            if float(data.demand[visits].sum()) > data.capacity + TOLERANCE:
                cuts.append((frozenset(visits), _cut_rhs(data, visits)))
    return cuts


# -- heuristics for warm starts and upper bounds ----------------------------------


def _or_opt(tour: list[int], c: np.ndarray, deadline: float) -> list[int]:
    """Relocate segments of one to three nodes (orientation kept: costs may be asymmetric)."""
    tour = list(tour)
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for length in (1, 2, 3):
            pos = 1
            while pos + length <= len(tour) and time.perf_counter() < deadline:
                m = len(tour)
                seg = tour[pos : pos + length]
                prev, nxt = tour[pos - 1], tour[(pos + length) % m]
                removal = c[prev, seg[0]] + c[seg[-1], nxt] - c[prev, nxt]
                rest = tour[:pos] + tour[pos + length :]
                a = np.asarray(rest)
                b = np.roll(a, -1)
                gain = removal - (c[a, seg[0]] + c[seg[-1], b] - c[a, b])
                best = int(np.argmax(gain))
                if gain[best] > 1e-9 and rest[best] != prev:
                    tour = rest[: best + 1] + seg + rest[best + 1 :]
                    improved = True
                else:
                    pos += 1
    return tour


def _tsp_tour(data: _Data, deadline: float) -> list[int]:
    c = data.cost[0]
    tour, left = [data.depot], set(int(j) for j in data.clients)
    while left:
        last = tour[-1]
        nxt = min(left, key=lambda j: c[last, j])
        tour.append(nxt)
        left.remove(nxt)
    return _or_opt(tour, c, deadline)


def _patch(cycles: list[list[int]], c: np.ndarray) -> list[int]:
    """Merge cycles into one tour, each time by the cheapest two-arc exchange."""
    cycles = [list(cy) for cy in cycles]
    while len(cycles) > 1:
        cycles.sort(key=len)
        small = cycles.pop(0)
        best = None
        for ci, big in enumerate(cycles):
            a = np.asarray(big)
            an = np.roll(a, -1)
            b = np.asarray(small)
            bn = np.roll(b, -1)
            delta = (
                c[a[:, None], bn[None, :]]
                + c[b[None, :], an[:, None]]
                - c[a, an][:, None]
                - c[b, bn][None, :]
            )
            p, q = np.unravel_index(int(np.argmin(delta)), delta.shape)
            if best is None or delta[p, q] < best[0]:
                best = (float(delta[p, q]), ci, int(p), int(q))
        _, ci, p, q = best
        big = cycles[ci]
        # big[p] -> small[q+1] ... small[q] -> big[p+1]
        rotated = small[q + 1 :] + small[: q + 1]
        cycles[ci] = big[: p + 1] + rotated + big[p + 1 :]
    return cycles[0]


def _initial(data: _Data, deadline: float) -> list[tuple[list[int], int]] | None:
    """A feasible solution to warm-start from (rota's greedy constructions), or ``None``."""
    inst = data.instance
    if inst.is_tsp:
        tour = _tsp_tour(data, deadline)
        i = tour.index(data.depot)
        return [(tour[i + 1 :] + tour[:i], 0)]
    routes = None
    if len(inst.vehicle_types) == 1 and not inst.has_time_windows:
        routes = greedy.savings(inst)
    for choose in ("cost", "most_clients"):
        if routes is None:
            routes = greedy.nearest_neighbour(inst, choose)
    if routes is None or not evaluate(inst, RoutingSolution(tuple(routes))).feasible:
        return None
    return [(list(r.visits), r.vehicle_type) for r in routes if r.visits]


# -- backends ---------------------------------------------------------------------


@dataclass
class _Outcome:
    status: str  # "optimal", "feasible", "infeasible", "none"
    has_values: bool
    bound: float | None  # model units
    solver_time: float
    detail: str


def _cbc_path() -> str:
    return pulp.PULP_CBC_CMD.pulp_cbc_path


def _printed_lower(text: str) -> float | None:
    """A number printed by CBC, lowered by half a unit of its last printed digit."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return float(value) - 0.5 * 10.0 ** value.as_tuple().exponent


def _children_running(marker: str) -> list[int]:
    """Ids of this process's children whose command line contains ``marker`` (Linux)."""
    found = []
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != me:  # fields: state, ppid, ...
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if marker.encode() in fh.read():
                    found.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return found


class _Watchdog:
    """Interrupts this solve's CBC process once it runs ``limit + grace`` seconds.

    CBC checks its ``-sec`` limit during branching but not while it processes
    the root of a large model; a SIGINT makes it stop there too and still write
    its best solution. PuLP starts the process itself, so it is found among
    this process's children by the unique work folder on its command line.
    Where ``/proc`` does not exist the watchdog finds nothing and does nothing.
    """

    def __init__(self, marker: str, limit: float, grace: float = 0.3) -> None:
        self.marker = marker
        self.fired = False
        self.limit = limit + grace
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> _Watchdog:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def _watch(self) -> None:
        pids: list[int] = []
        while not pids:  # PuLP first writes the model, then starts CBC
            if self.done.wait(0.05):
                return
            pids = _children_running(self.marker)
        if self.done.wait(self.limit):
            return
        self.fired = True
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)


class _CBCRunner:
    def __init__(self, threads: int | None, seed: int, workdir: str) -> None:
        self.threads = threads
        self.seed = seed
        self.workdir = workdir

    def run(self, form: _Formulation, *, mip: bool, time_limit: float, warm: bool) -> _Outcome:
        log = os.path.join(self.workdir, "cbc.log")
        solver = pulp.COIN_CMD(
            path=_cbc_path(),
            mip=mip,
            msg=False,
            timeLimit=max(time_limit, 0.01),
            gapRel=0,
            warmStart=warm and mip and len(form.integer_vars) <= _LARGE_MODEL_COLS,
            threads=self.threads,
            logPath=log,
            options=[f"randomCbcSeed {self.seed}"],
        )
        solver.tmpDir = self.workdir
        with _Watchdog(self.workdir, solver.timeLimit) as watchdog:
            form.problem.solve(solver)
        with open(log, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        problem = form.problem
        return _cbc_verdict(
            text,
            mip=mip,
            time_limit=float(solver.timeLimit),
            interrupted=watchdog.fired,
            claims_infeasible=problem.status == pulp.LpStatusInfeasible,
            solution_optimal=problem.sol_status == pulp.LpSolutionOptimal,
            solution_feasible=problem.sol_status == pulp.LpSolutionIntegerFeasible,
            objective=pulp.value(problem.objective),
        )


def _cbc_verdict(
    text: str,
    *,
    mip: bool,
    time_limit: float,
    interrupted: bool,
    claims_infeasible: bool,
    solution_optimal: bool,
    solution_feasible: bool,
    objective: float | None,
) -> _Outcome:
    """What one CBC run proved, from its log and PuLP's reading of its solution file.

    CBC's verdicts are trusted only from a run that ended on its own: when its
    time limit strikes inside preprocessing, CBC 2.10 reports "Integer
    infeasible" for a feasible model ("Pre-processing says infeasible"), and
    PuLP reports "Optimal" for a run stopped on time.
    """
    wall = re.findall(r"\(Wallclock seconds\):\s*([0-9.eE+-]+)", text)
    solver_time = float(wall[-1]) if wall else 0.0
    result = re.search(r"Result - (.*)", text)
    result_line = result.group(1).strip() if result else ""
    cut_short = (
        interrupted
        or solver_time >= _CBC_LIMIT_SHARE * time_limit
        or "maximum time" in text
        or "ctrl-c" in text.lower()
        or "Stopped" in result_line
    )
    detail = result_line or ("cut short" if cut_short else "finished")
    if claims_infeasible:
        if cut_short:
            return _Outcome("none", False, None, solver_time, f"unproven: {detail}")
        return _Outcome("infeasible", False, None, solver_time, detail)
    if not mip:
        ok = solution_optimal and not cut_short
        return _Outcome(
            "optimal" if ok else "none", ok, objective if ok else None, solver_time, "lp"
        )
    bound = None
    match = re.search(r"Lower bound:\s+(\S+)", text)
    if match and result_line.startswith(("Stopped on time", "User ctrl-c")):
        bound = _printed_lower(match.group(1))
    optimal = solution_optimal and result_line.startswith("Optimal solution found")
    if optimal and not cut_short:
        return _Outcome("optimal", True, objective, solver_time, result_line)
    if optimal or (solution_feasible and "No feasible solution" not in text):
        return _Outcome("feasible", True, bound, solver_time, detail)
    return _Outcome("none", False, bound, solver_time, detail)


def _warm_highs_class() -> type:
    import highspy

    class WarmHiGHS(pulp.HiGHS):
        """PuLP's HiGHS interface with a bulk model load and a MIP start.

        PuLP passes columns, integrality flags and rows to highspy one call at
        a time, and each ``changeColIntegrality`` call costs tens of
        microseconds: seconds for a 300-city ATSP, paid again on every solve
        of the lazy loop. Here the same model goes in as three arrays calls.
        """

        start: list[tuple[Any, float]] | None = None

        def buildSolverModel(self, lp: Any) -> None:  # noqa: N802 - PuLP's name
            inf = highspy.kHighsInf
            sense = -1.0 if lp.sense == pulp.LpMaximize else 1.0
            variables = lp.variables()
            num = len(variables)
            cost = np.empty(num)
            lower = np.empty(num)
            upper = np.empty(num)
            integer = []
            objective = lp.objective
            for i, var in enumerate(variables):
                var.index = i
                cost[i] = sense * objective.get(var, 0.0)
                lower[i] = -inf if var.lowBound is None else var.lowBound
                upper[i] = inf if var.upBound is None else var.upBound
                if self.mip and var.cat == pulp.LpInteger:
                    integer.append(i)
            no_entries = np.zeros(0, dtype=np.int32)
            starts = np.zeros(num, dtype=np.int32)
            lp.solverModel.addCols(num, cost, lower, upper, 0, starts, no_entries, np.zeros(0))
            if integer:
                kinds = np.full(len(integer), int(highspy.HighsVarType.kInteger), dtype=np.uint8)
                lp.solverModel.changeColsIntegrality(
                    len(integer), np.array(integer, dtype=np.int32), kinds
                )
            constraints = list(lp._constraints.values())
            row_lower = np.empty(len(constraints))
            row_upper = np.empty(len(constraints))
            row_start = np.empty(len(constraints), dtype=np.int32)
            index: list[int] = []
            value: list[float] = []
            for r, constraint in enumerate(constraints):
                constraint.index = r
                row_start[r] = len(index)
                for var, coefficient in constraint.items():
                    if coefficient != 0:
                        index.append(var.index)
                        value.append(coefficient)
                lb, ub = constraint.getLb(), constraint.getUb()
                row_lower[r] = -inf if lb is None else lb
                row_upper[r] = inf if ub is None else ub
            if constraints:
                lp.solverModel.addRows(
                    len(constraints),
                    row_lower,
                    row_upper,
                    len(index),
                    row_start,
                    np.array(index, dtype=np.int32),
                    np.array(value, dtype=np.float64),
                )

        def callSolver(self, lp: Any) -> None:  # noqa: N802 - PuLP's name
            h = lp.solverModel
            if self.timeLimit is not None:
                # HiGHS checks its time limit rarely during presolve and the root
                # node of a large model; the interrupt callbacks run far more often
                deadline = time.perf_counter() + float(self.timeLimit)

                def stop_at_deadline(event: Any) -> None:
                    if time.perf_counter() > deadline:
                        event.interrupt()

                h.cbMipInterrupt += stop_at_deadline
                h.cbSimplexInterrupt += stop_at_deadline
                h.cbIpmInterrupt += stop_at_deadline
            if self.start:
                index = np.array([var.index for var, _ in self.start], dtype=np.int32)
                value = np.array([val for _, val in self.start], dtype=np.float64)
                h.setSolution(len(index), index, value)
            h.run()

    return WarmHiGHS


class _HiGHSRunner:
    def __init__(self, threads: int | None, seed: int) -> None:
        self.threads = threads
        self.seed = seed
        self.cls = _warm_highs_class()

    def run(
        self,
        form: _Formulation,
        *,
        mip: bool,
        time_limit: float,
        warm: bool,
    ) -> _Outcome:
        import highspy

        extra = {}
        if len(form.integer_vars) > _LARGE_MODEL_COLS:
            extra["presolve"] = "off"
        solver = self.cls(
            mip=mip,
            msg=False,
            timeLimit=max(time_limit, 0.01),
            gapRel=0.0,
            threads=self.threads,
            random_seed=self.seed,
            **extra,
        )
        if warm and mip:
            solver.start = [(v, float(v.varValue or 0.0)) for v in form.integer_vars]
        form.problem.solve(solver)
        h = form.problem.solverModel
        status = h.getModelStatus()
        info = h.getInfo()
        solver_time = float(h.getRunTime())
        ms = highspy.HighsModelStatus
        detail = h.modelStatusToString(status)
        if status == ms.kInfeasible:
            return _Outcome("infeasible", False, None, solver_time, detail)
        if not mip:
            ok = status == ms.kOptimal
            bound = float(info.objective_function_value) if ok else None
            return _Outcome("optimal" if ok else "none", ok, bound, solver_time, detail)
        dual = float(info.mip_dual_bound)
        bound = dual if math.isfinite(dual) else None
        if status == ms.kOptimal:
            return _Outcome("optimal", True, bound, solver_time, detail)
        if info.primal_solution_status == 2:  # kSolutionStatusFeasible
            return _Outcome("feasible", True, bound, solver_time, detail)
        return _Outcome("none", False, bound, solver_time, detail)


# -- the solver -------------------------------------------------------------------

_OPTION_NAMES = ("backend", "warm_start", "threads", "formulation")


class MILPSolver:
    """Exact MILP routing solver (PuLP with CBC or HiGHS); see the module docstring.

    Parameters
    ----------
    backend
        ``"cbc"`` (the CBC binary bundled with PuLP) or ``"highs"`` (highspy,
        through PuLP's ``HiGHS`` class).
    warm_start
        Start the MIP from a heuristic solution (nearest neighbour and Or-opt
        for tours, :mod:`rota.solvers.greedy` for routes).
    threads
        Threads the backend may use; ``None`` leaves the backend's default.
    formulation
        ``"lazy"`` (cuts added in a loop) or ``"flow"`` (compact single-commodity
        flow, TSP/ATSP only).
    """

    name = "milp"
    description = "exact MILP (PuLP: CBC or HiGHS), lazy subtour and capacity cuts"
    capabilities = Capabilities(
        asymmetric=True,
        time_windows=True,
        heterogeneous=True,
        multi_depot=False,
        uncapacitated=True,
        max_clients=MAX_CLIENTS,
    )

    def __init__(
        self,
        backend: str = "cbc",
        warm_start: bool = True,
        threads: int | None = None,
        formulation: str = "lazy",
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"milp option backend={backend!r} is not one of {', '.join(BACKENDS)}")
        if not isinstance(warm_start, bool):
            raise ValueError(f"milp option warm_start={warm_start!r} must be True or False")
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ValueError(f"milp option threads={threads!r} must be a positive integer or None")
        if formulation not in FORMULATIONS:
            raise ValueError(
                f"milp option formulation={formulation!r} is not one of {', '.join(FORMULATIONS)}"
            )
        self.backend = backend
        self.import_error: str | None = None
        self.warm_start = warm_start
        self.threads = threads
        self.formulation = formulation

    def configure(self, **options: Any) -> MILPSolver:
        """A copy of this solver with ``options`` changed.

        Raises
        ------
        ValueError
            An unknown option name or an invalid value; the message names it.
        """
        return reconfigured(self, _OPTION_NAMES, options)

    def available(self) -> bool:
        """True when PuLP and the chosen backend can run; never raises.

        The reason it cannot is kept in ``import_error``: highspy fails to load
        in a process that already loaded OR-Tools' own ``libhighs.so.1`` when
        the two HiGHS versions differ.
        """
        self.import_error = None
        try:
            if not _load_pulp():
                self.import_error = "PuLP does not import"
            elif self.backend == "cbc":
                if not pulp.COIN_CMD(path=_cbc_path(), msg=False).available():
                    self.import_error = (
                        f"the CBC binary bundled with PuLP cannot run: {_cbc_path()}"
                    )
            elif not pulp.HiGHS(msg=False).available():
                self.import_error = "highspy does not import (PuLP's HiGHS is unavailable)"
        except Exception as exc:
            self.import_error = f"{type(exc).__name__}: {exc}"
        return self.import_error is None

    def supports(self, instance: RoutingInstance) -> str | None:
        """``None`` if the formulations cover ``instance``, else why not."""
        reason = check_capabilities(self.name, self.capabilities, instance)
        if reason is not None:
            return reason
        family = size_family(instance)
        if family == "hf":
            size = (
                len(instance.vehicle_types) * instance.num_locations * (instance.num_locations - 1)
            )
            if size > MAX_VEHICLE_ARCS:
                return (
                    f"milp's type-indexed model of {instance.name} would have {size} arc "
                    f"variables (limit {MAX_VEHICLE_ARCS}); use a heuristic solver such as pyvrp"
                )
        if self.formulation == "flow" and instance.num_clients > MAX_FLOW_CLIENTS:
            return (
                f"milp formulation 'flow' handles at most {MAX_FLOW_CLIENTS} clients, "
                f"{instance.name} has {instance.num_clients}; use the default 'lazy'"
            )
        if self.formulation == "flow" and family != "tsp":
            return (
                f"milp formulation 'flow' is for TSP/ATSP only; {instance.name} is {instance.kind}"
            )
        return None

    def solve(self, instance: RoutingInstance, stop: Stop, seed: int) -> Result:
        """Solve ``instance`` exactly within ``stop``; see the module docstring for the status."""
        reason = self.supports(instance)
        if reason is not None:
            raise UnsupportedInstanceError(reason)
        if not _load_pulp():
            raise UnsupportedInstanceError("solver 'milp' is not installed: PuLP does not import")
        with tempfile.TemporaryDirectory(prefix="rota-milp-") as workdir:
            return _Loop(self, instance, stop, seed, workdir).run()


class _Loop:
    """One solve: the LP cutting rounds, then the lazy MIP loop."""

    def __init__(
        self, solver: MILPSolver, instance: RoutingInstance, stop: Stop, seed: int, workdir: str
    ) -> None:
        self.solver = solver
        self.instance = instance
        self.stop = stop
        self.seed = seed
        backend_seed = seed % 2_147_483_646 + 1  # CBC reads 0 as "seed from the clock"
        if solver.backend == "cbc":
            self.runner: Any = _CBCRunner(solver.threads, backend_seed, workdir)
        else:
            self.runner = _HiGHSRunner(solver.threads, backend_seed)
        self.best: list[tuple[list[int], int]] | None = None
        self.best_cost = math.inf
        self.bound = -math.inf  # model units
        self.overhead = 0.0
        self.last_lp_time = 0.0
        self.iterations = 0
        self.lp_rounds = 0
        self.last_detail = ""

    # bookkeeping ---------------------------------------------------------------
    def offer(self, routes: list[tuple[list[int], int]]) -> None:
        cost = sum(self.data.route_cost(v, k) for v, k in routes if v)
        if cost < self.best_cost - 1e-9:
            self.best, self.best_cost = routes, cost

    def raise_bound(self, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        if self.data.integral:
            value = math.ceil(value - _BOUND_TOL * max(1.0, abs(value)))
        else:
            value = value - _BOUND_TOL * max(1.0, abs(value))
        self.bound = max(self.bound, value)

    def proven_by_bound(self) -> bool:
        if self.best is None or not math.isfinite(self.bound):
            return False
        tol = 1e-9 if self.data.integral else _BOUND_TOL * max(1.0, abs(self.best_cost))
        return self.best_cost <= self.bound + tol

    def call(self, *, mip: bool, cap: float | None = None) -> _Outcome | None:
        limit = self.stop.remaining - self.overhead - 0.05
        if cap is not None:
            limit = min(limit, cap)
        # a call granted much less than its fixed cost (writing and loading the
        # model) cannot help, and would only overrun the time limit
        if limit < max(_MIN_SOLVE, 0.5 * self.overhead):
            return None
        warm = mip and self.best is not None
        if warm:
            self.set_start()
        began = time.perf_counter()
        outcome = self.runner.run(self.form, mip=mip, time_limit=limit, warm=warm)
        wall = time.perf_counter() - began
        # Time beyond the granted limit: writing and loading the model (redone on every
        # call, growing with the cuts) plus the backend's own overrun of its limit.
        spent_outside = wall - min(outcome.solver_time, limit)
        self.overhead = max(self.overhead, 1.2 * max(0.0, spent_outside) + 0.02)
        self.last_detail = outcome.detail
        return outcome

    def set_start(self) -> None:
        for var in self.form.integer_vars:
            var.setInitialValue(0)
        for visits, k in self.best:
            if not visits:
                continue
            v = k if self.data.indexed else 0
            path = [self.data.depot, *visits, self.data.depot]
            for a in zip(path[:-1], path[1:], strict=True):
                self.form.vehicle_arcs[v][a].setInitialValue(1)
        for k, count in enumerate(self.form.route_counts):
            count.setInitialValue(sum(1 for visits, t in self.best if visits and t == k))

    # phases ----------------------------------------------------------------------
    def run(self) -> Result:
        began = time.perf_counter()
        self.data = _encode(self.instance)
        self.form = _build(self.data, self.solver.formulation)
        build_time = time.perf_counter() - began
        # Handing the model to the backend costs about as much as building it, and
        # for CBC twice (an MPS file written, then read back with the solution).
        factor = 2.0 if self.solver.backend == "cbc" else 1.5
        self.overhead = factor * build_time + 0.05
        if self.solver.warm_start:
            deadline = time.perf_counter() + min(1.0, 0.05 * self.stop.time_limit)
            initial = _initial(self.data, deadline)
            if initial is not None:
                self.offer(initial)
        infeasible = proven = False
        if self.solver.formulation == "lazy":
            infeasible = self.lp_rounds_phase(until=_LP_SHARE * self.stop.time_limit)
        if not infeasible:
            infeasible, proven = self.mip_phase()
        return self.result(infeasible, proven, build_time)

    def lp_rounds_phase(self, until: float, max_rounds: int = _MAX_LP_ROUNDS) -> bool:
        """Cut the LP relaxation until ``until`` seconds have elapsed.

        Returns True when even the relaxation is infeasible.
        """
        history: list[float] = []
        rounds = 0
        while rounds < max_rounds and self.stop.elapsed < until:
            if until - self.stop.elapsed < self.last_lp_time:
                break  # the next LP would not finish within this phase
            began = time.perf_counter()
            outcome = self.call(mip=False, cap=until - self.stop.elapsed)
            self.last_lp_time = time.perf_counter() - began
            if outcome is None:
                break
            if outcome.status == "infeasible":
                return True
            if outcome.status != "optimal":
                break
            rounds += 1
            self.lp_rounds += 1
            self.raise_bound(outcome.bound)
            history.append(outcome.bound)
            cuts = _fractional_cuts(self.data, _aggregate(self.form, self.data))
            if not cuts:
                break
            for members, rhs in cuts:
                _add_cut(self.form, self.data, members, rhs)
            if len(history) > 5 and history[-1] - history[-6] <= 1e-6 * max(1.0, abs(history[-1])):
                break  # the cuts this separation finds no longer move the bound
        return False

    def mip_phase(self) -> tuple[bool, bool]:
        while not self.proven_by_bound():
            outcome = self.call(mip=True)
            if outcome is None:
                return False, False
            self.iterations += 1
            if outcome.status == "infeasible":
                return True, False
            self.raise_bound(outcome.bound)
            if not outcome.has_values:
                return False, False
            decoded = _decode(self.form, self.data)
            cuts = _integer_cuts(self.data, decoded)
            if not cuts:
                self.offer(decoded.routes)
                if outcome.status == "optimal":
                    return False, True
                return False, False
            for members, rhs in cuts:
                _add_cut(self.form, self.data, members, rhs)
            if outcome.status != "optimal":
                return False, False
            # the new cuts move the LP optimum: separating around it again is far
            # cheaper than letting the next MIP find each violation one at a time
            until = self.stop.elapsed + _LP_SHARE * self.stop.remaining
            if self.lp_rounds_phase(until=until, max_rounds=_RESEPARATION_ROUNDS):
                return True, False
            if self.instance.is_tsp:
                cycles = [[self.data.depot, *decoded.routes[0][0]]] if decoded.routes else []
                cycles += decoded.subtours
                deadline = time.perf_counter() + min(0.5, 0.02 * self.stop.time_limit)
                tour = _or_opt(_patch(cycles, self.data.cost[0]), self.data.cost[0], deadline)
                i = tour.index(self.data.depot)
                self.offer([(tour[i + 1 :] + tour[:i], 0)])
        return False, True

    def result(self, infeasible: bool, proven: bool, build_time: float) -> Result:
        data = self.data
        stats: dict[str, Any] = {
            "backend": self.solver.backend,
            "formulation": self.solver.formulation,
            "iterations": self.iterations,
            "lp_rounds": self.lp_rounds,
            "cuts": self.form.cuts,
            "scale": data.scale if data.integral else None,
            "scale_exact": data.integral,
            "build_time": build_time,
            "last_status": self.last_detail,
        }
        name = self.solver.name
        if infeasible:
            return finish(
                self.instance,
                None,
                Status.INFEASIBLE,
                solver=name,
                seed=self.seed,
                stop=self.stop,
                stats=stats,
            )
        bound = self.bound / data.scale if math.isfinite(self.bound) else None
        if self.best is None:
            return finish(
                self.instance,
                None,
                Status.NO_SOLUTION,
                solver=name,
                seed=self.seed,
                stop=self.stop,
                bound=bound,
                stats=stats,
            )
        proven = proven or self.proven_by_bound()
        solution = RoutingSolution.from_lists([v for v, _ in self.best], [k for _, k in self.best])
        backend_objective = self.best_cost / data.scale
        if proven or (bound is not None and bound > backend_objective):
            # a proof makes the optimum its own bound; a float bound past it is tolerance noise
            bound = backend_objective
        stats["backend_objective"] = backend_objective
        stats["gap"] = (
            None
            if bound is None or backend_objective == 0
            else (backend_objective - bound) / abs(backend_objective)
        )
        result = finish(
            self.instance,
            solution,
            Status.OPTIMAL if proven else Status.FEASIBLE,
            solver=name,
            seed=self.seed,
            stop=self.stop,
            bound=bound,
            stats=stats,
        )
        if result.status.has_solution and not math.isclose(
            result.objective, backend_objective, rel_tol=1e-6, abs_tol=1e-6
        ):
            stats["error"] = (
                f"milp objective {backend_objective} differs from the evaluator's "
                f"{result.objective}"
            )
            return Result(
                result.objective,
                solution,
                Status.ERROR,
                result.runtime,
                name,
                self.seed,
                bound,
                stats,
            )
        return result
