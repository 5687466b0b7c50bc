"""Edge assembly crossover (EAX) of two routing solutions, one pair at a time on the CPU.

Nagata and Bräysy's EAX for the CVRP, single strategy. The parents are edge
sets: routes closed at the depot, the parent with fewer routes padded with
empty ones (depot loops) so the depot has the same degree in both. Edges the
parents share are set aside; the rest splits into AB-cycles, closed walks
that alternate an edge of the first parent and one of the second. The child
is the first parent with one random AB-cycle exchanged: that cycle's
first-parent edges removed, its second-parent edges added. Every client
keeps two edges, but loops of clients may be cut off the depot; each loop is
joined, by a 2-opt-like exchange of one edge on each side, where that costs
least among its clients' nearest neighbours (or becomes a route of its own)
until every client is on a route again. On asymmetric costs the edges are
arcs: an AB-cycle follows first-parent arcs forwards and second-parent arcs
backwards, and a join keeps every arc's direction.

The child comes out as a giant tour, its routes one after another: split
cuts it again and local search repairs what the exchange overloaded (EAX
knows no capacity or time window). The walk is sequential Python, so
``crossover=eax`` pays a host transfer per generation on a GPU;
``benchmarks/ga/crossover.py`` measures it against the tensor crossovers.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

Arc = tuple[int, int]


def edge_assembly(
    first_seq: torch.Tensor,
    second_seq: torch.Tensor,
    cost: torch.Tensor,
    symmetric: torch.Tensor,
    neighbours: torch.Tensor,
    n: torch.Tensor,
    u: torch.Tensor,
) -> torch.Tensor:
    """Children (B, C, N) of the parents' flat sequences (B, C, M).

    ``cost`` (B, N1, N1) are the arc costs, ``neighbours`` (B, N1, k) each
    client's nearest clients, ``u`` (B, C) uniform numbers seeding each
    child's choices (so a child depends on its parents and its draw only).
    """
    B, C, _ = first_seq.shape
    N = cost.shape[1] - 1
    out = np.zeros((B, C, N), dtype=np.int64)
    firsts, seconds = first_seq.cpu().numpy(), second_seq.cpu().numpy()
    costs, near = cost.cpu().numpy(), neighbours.cpu().numpy()
    seeds = (u.cpu().double().numpy() * 2.0**53).astype(np.int64)
    for b in range(B):
        directed, clients = not bool(symmetric[b]), int(n[b])
        for c in range(C):
            rng = np.random.default_rng(int(seeds[b, c]))
            first, second = routes_of(firsts[b, c]), routes_of(seconds[b, c])
            child = child_routes(first, second, costs[b], near[b], directed, rng)
            tour = [v for route in child for v in route]
            if sorted(tour) != list(range(1, clients + 1)):
                raise AssertionError("EAX lost or repeated a client")
            out[b, c, :clients] = tour
    return torch.as_tensor(out, device=first_seq.device)


def routes_of(seq: np.ndarray) -> list[list[int]]:
    """The non-empty routes of a flat sequence."""
    routes, current = [], []
    for v in [*seq.tolist(), 0]:
        if v == 0:
            if current:
                routes.append(current)
            current = []
        else:
            current.append(v)
    return routes


def child_routes(
    first: list[list[int]],
    second: list[list[int]],
    cost: np.ndarray,
    near: np.ndarray,
    directed: bool,
    rng: np.random.Generator,
) -> list[list[int]]:
    """``first`` with one random AB-cycle of ``second`` exchanged, loops joined back."""
    count = max(len(first), len(second))
    a_arcs, b_arcs = _arcs(first, count), _arcs(second, count)
    cycles = ab_cycles(a_arcs, b_arcs, directed, rng)
    if not cycles:
        return [list(r) for r in first]
    cycle = cycles[int(rng.integers(len(cycles)))]
    removed = {e for side, e in cycle if side == "a"}
    arcs = [a for e, a in enumerate(a_arcs) if e not in removed]
    arcs += [b_arcs[e] for side, e in cycle if side == "b"]
    routes, loops = _components(arcs, directed)
    return _join(routes, loops, cost, near, directed)


def _arcs(routes: list[list[int]], count: int) -> list[Arc]:
    """Arcs of ``routes`` closed at the depot, plus depot loops up to ``count`` routes."""
    arcs: list[Arc] = []
    for route in routes:
        path = [0, *route, 0]
        arcs += list(zip(path[:-1], path[1:], strict=True))
    return arcs + [(0, 0)] * (count - len(routes))


class _Unused:
    """One parent's unused edges by node: by both ends (undirected), else by ``end``."""

    def __init__(self, arcs: list[Arc], alive: list[bool], end: int, directed: bool):
        self.arcs = arcs
        self.at: dict[int, list[int]] = defaultdict(list)
        for e, arc in enumerate(arcs):
            if alive[e]:
                for node in (arc[end],) if directed else set(arc):
                    self.at[node].append(e)

    def take(self, node: int, rng: np.random.Generator) -> tuple[int, int]:
        """Use a random unused edge at ``node``: (its index, the node at its other end)."""
        edges = self.at[node]
        e = edges.pop(int(rng.integers(len(edges))))
        tail, head = self.arcs[e]
        other = head if node == tail else tail
        if other != node and e in self.at.get(other, ()):
            self.at[other].remove(e)
        return e, other

    def nodes(self) -> list[int]:
        return [v for v, edges in self.at.items() if edges]


def ab_cycles(
    a_arcs: list[Arc], b_arcs: list[Arc], directed: bool, rng: np.random.Generator
) -> list[list[tuple[str, int]]]:
    """Every AB-cycle of the edges the parents do not share: ("a"|"b", edge index) lists."""

    def key(arc: Arc) -> Arc:
        return arc if directed else (min(arc), max(arc))

    unmatched: dict[Arc, list[int]] = defaultdict(list)
    for e, arc in enumerate(a_arcs):
        unmatched[key(arc)].append(e)
    a_alive, b_alive = [True] * len(a_arcs), [True] * len(b_arcs)
    for e, arc in enumerate(b_arcs):
        twins = unmatched.get(key(arc))
        if twins:
            a_alive[twins.pop()] = b_alive[e] = False
    # A edges are walked from their tails, B edges back from their heads
    unused_a = _Unused(a_arcs, a_alive, 0, directed)
    unused_b = _Unused(b_arcs, b_alive, 1, directed)
    cycles = []
    while starts := unused_a.nodes():
        # the walk: nodes[i] at even i is where an A edge leaves; ``open_at`` holds those
        # positions (except the walk's end) per node, so a B edge arriving at one of them
        # closes an AB-cycle
        nodes = [starts[int(rng.integers(len(starts)))]]
        steps: list[tuple[str, int]] = []
        open_at: dict[int, list[int]] = defaultdict(list)
        while True:
            e, middle = unused_a.take(nodes[-1], rng)
            f, end = unused_b.take(middle, rng)
            open_at[nodes[-1]].append(len(nodes) - 1)
            steps += [("a", e), ("b", f)]
            nodes += [middle, end]
            if open_at[end]:
                start = open_at[end].pop()
                cycles.append(steps[start:])
                for position in range(start + 2, len(nodes) - 1, 2):
                    open_at[nodes[position]].pop()
                del nodes[start + 1 :], steps[start:]
                if len(nodes) == 1 and not unused_a.at[nodes[0]]:
                    break
    return cycles


def _components(arcs: list[Arc], directed: bool) -> tuple[list[list[int]], list[list[int]]]:
    """Routes (client lists between depot visits) and loops (client cycles) of ``arcs``."""
    at: dict[int, list[int]] = defaultdict(list)
    for e, (tail, head) in enumerate(arcs):
        at[tail].append(e)
        if not directed and head != tail:
            at[head].append(e)
    used = [False] * len(arcs)

    def walk(node: int, e: int) -> list[int]:
        path = []
        while True:
            used[e] = True
            tail, head = arcs[e]
            node = head if node == tail else tail
            if node == 0:
                return path
            path.append(node)
            e = next(f for f in at[node] if not used[f])

    routes = [route for e in list(at[0]) if not used[e] and (route := walk(0, e))]
    loops = []
    for node in list(at):
        if node != 0 and not used[at[node][0]]:
            loops.append(_walk_loop(node, at, arcs, used))
    return routes, loops


def _walk_loop(start: int, at, arcs: list[Arc], used: list[bool]) -> list[int]:
    """The cycle of clients through ``start``, in the direction of its first unused edge."""
    path, node = [start], start
    while True:
        e = next(f for f in at[node] if not used[f])
        used[e] = True
        tail, head = arcs[e]
        node = head if node == tail else tail
        if node == start:
            return path
        path.append(node)


def _join(
    routes: list[list[int]],
    loops: list[list[int]],
    cost: np.ndarray,
    near: np.ndarray,
    directed: bool,
) -> list[list[int]]:
    """Join every loop into a route, a loop or a new route, wherever it costs least."""
    routes = [list(r) for r in routes]
    loops = sorted((list(loop) for loop in loops), key=len)
    while loops:
        loop = loops.pop(0)
        inside = set(loop)
        # where each other client sits: (kind, index, position) with kind 0 route, 1 loop
        where = {v: (0, i, p) for i, r in enumerate(routes) for p, v in enumerate(r)}
        where |= {v: (1, i, p) for i, other in enumerate(loops) for p, v in enumerate(other)}
        best = None
        m = len(loop)
        for p in range(m):
            u, s = loop[p], loop[(p + 1) % m]
            # the loop opened at (u, s): the path s .. u (and u .. s when undirected)
            paths = [loop[p + 1 :] + loop[: p + 1]]
            if not directed:
                paths.append(paths[0][::-1])
            for path in paths:
                head, tail = path[0], path[-1]
                base = cost[u, s]
                alone = cost[0, head] + cost[tail, 0] - base
                if best is None or alone < best[0]:
                    best = (alone, path, None)
                for w in near[u].tolist() + near[s].tolist():
                    if w in inside or w not in where:
                        continue
                    for before, after, spot in _arcs_at(w, where, routes, loops):
                        delta = cost[before, head] + cost[tail, after] - cost[before, after] - base
                        if delta < best[0]:
                            best = (delta, path, spot)
        _, path, spot = best
        if spot is None:
            routes.append(path)
        else:
            kind, i, position = spot
            target = routes[i] if kind == 0 else loops[i]
            target[position:position] = path
            if kind == 1:
                loops.sort(key=len)
    return routes


def _arcs_at(w, where, routes, loops):
    """The arcs into and out of client ``w``: (before, after, where a path goes between)."""
    kind, i, p = where[w]
    nodes = routes[i] if kind == 0 else loops[i]
    m = len(nodes)
    if kind == 0:
        previous = nodes[p - 1] if p > 0 else 0
        following = nodes[p + 1] if p + 1 < m else 0
    else:
        previous, following = nodes[p - 1], nodes[(p + 1) % m]
    return ((previous, w, (kind, i, p)), (w, following, (kind, i, p + 1)))


__all__ = ["ab_cycles", "child_routes", "edge_assembly", "routes_of"]
