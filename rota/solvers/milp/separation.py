"""Cut separation: violated subtour and capacity inequalities of LP and integer solutions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, maximum_flow

from rota.problems.routing import TOLERANCE
from rota.solvers.milp.formulation import Formulation, ModelData, cut_rhs, vehicles_needed

_EPS = 1e-6


def aggregate(form: Formulation, data: ModelData) -> np.ndarray:
    x = np.zeros((data.n, data.n))
    for (i, j), xs in form.arc_vars.items():
        x[i, j] = sum((v.varValue or 0.0) for v in xs)
    return x


def fractional_cuts(data: ModelData, x: np.ndarray) -> list[tuple[frozenset[int], int]]:
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
        rhs = cut_rhs(data, members)
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


def _grown_sets(data: ModelData, x: np.ndarray) -> list[frozenset[int]]:
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
            rhs = vehicles_needed(data, load)
            if size - internal < rhs - 1e-4:
                violated.append(frozenset(int(c) for c in clients[inside]))
    return violated


@dataclass
class Decoded:
    routes: list[tuple[list[int], int]]  # (visits, vehicle type)
    subtours: list[list[int]]


def decode(form: Formulation, data: ModelData) -> Decoded:
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
    return Decoded(routes, subtours)


def integer_cuts(data: ModelData, decoded: Decoded) -> list[tuple[frozenset[int], int]]:
    cuts = [(frozenset(s), cut_rhs(data, s)) for s in decoded.subtours]
    if data.homogeneous_capacity:
        for visits, _ in decoded.routes:
            if float(data.demand[visits].sum()) > data.capacity + TOLERANCE:
                cuts.append((frozenset(visits), cut_rhs(data, visits)))
    return cuts
