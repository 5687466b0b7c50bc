"""Routing instances as padded tensors, and solutions as flat sequences.

Node ``0`` of an encoded instance is its depot and nodes ``1..n`` its clients
(in ``instance.clients`` order); a batch pads every instance to the largest
``n``. A solution is a *flat sequence*: a row of ``M`` nodes starting with
the depot, in which every depot visit closes one route and opens the next,
padded with depots (empty routes, free). Instance ``b`` may use its first
``K_b`` routes only (its fleet, or ``n_b`` when unlimited), so the fleet
limit holds by construction.

Costs are normalised: an arc costs ``(unit_distance_cost * distance +
fixed_cost on depot-to-client arcs) / scale``, with ``scale`` a power of two
(so integer distances stay exact and extreme magnitudes, 1e-7 to 1e290, stay
in range); the fixed cost on the arcs leaving the depot counts one per used
vehicle. Times and loads keep the instance's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from rota.problems.routing import Route, RoutingInstance, RoutingSolution


@dataclass
class Batch:
    """B instances as tensors (``N1 = N + 1`` nodes, ``N`` the largest client count)."""

    cost: torch.Tensor  # (B, N1, N1) normalised arc costs
    travel: torch.Tensor | None  # (B, N1, N1) travel times; None when nothing is timed
    service: torch.Tensor | None  # (B, N1)
    early: torch.Tensor | None  # (B, N1)
    late: torch.Tensor | None  # (B, N1)
    demand: torch.Tensor  # (B, N1)
    capacity: torch.Tensor  # (B,) inf when uncapacitated
    n: torch.Tensor  # (B,) clients
    routes: torch.Tensor  # (B,) route slots K_b
    limited: torch.Tensor  # (B,) bool: the fleet is finite
    windowed: torch.Tensor  # (B,) bool: the instance has time windows
    symmetric: torch.Tensor  # (B,) bool: the distance matrix is symmetric
    neighbours: torch.Tensor  # (B, N1, k) nearest clients of each client
    window: torch.Tensor  # (B,) most clients a route may hold in split
    scale: list[float]  # cost scale per instance
    locations: list[np.ndarray]  # node -> location index, per instance
    #: (B,) which instance of ``cost`` and ``travel`` each entry reads; None: its own
    shared: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.n.shape[0])

    @property
    def nodes(self) -> int:
        return int(self.cost.shape[1])

    @property
    def length(self) -> int:
        """``M``: room for every client and one depot per route slot, plus the first depot."""
        return int((self.n + self.routes).max()) + 1

    @property
    def timed(self) -> bool:
        return self.travel is not None

    @property
    def device(self) -> torch.device:
        return self.cost.device

    def rows(self, instance: torch.Tensor) -> Batch:
        """A batch whose entry ``r`` is instance ``instance[r]`` of this one.

        The per-node values are copied; the two matrices are not (they are the
        bulk: a row per individual would copy them once per individual) but
        read through :attr:`shared`, which :func:`arc` follows.
        """

        def pick(x):
            return None if x is None else x.index_select(0, instance)

        listed = instance.tolist()
        return Batch(
            cost=self.cost, travel=self.travel, service=pick(self.service),
            early=pick(self.early), late=pick(self.late), demand=pick(self.demand),
            capacity=pick(self.capacity), n=pick(self.n), routes=pick(self.routes),
            limited=pick(self.limited), windowed=pick(self.windowed),
            symmetric=pick(self.symmetric), neighbours=pick(self.neighbours),
            window=pick(self.window), scale=[self.scale[b] for b in listed],
            locations=[self.locations[b] for b in listed],
            shared=instance if self.shared is None else self.shared.index_select(0, instance),
        )  # fmt: skip

    def distance(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Normalised cost of the arcs ``i`` to ``j`` (B, ...)."""
        return arc(self.cost, i, j, self.shared)

    def duration(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Travel time of the arcs ``i`` to ``j`` (B, ...)."""
        return arc(self.travel, i, j, self.shared)


def _power_of_two_above(value: float) -> float:
    if not value > 0:
        return 1.0
    return math.ldexp(1.0, math.frexp(value)[1])


def _most_clients(demand: np.ndarray, capacity: float) -> int:
    """Most clients one route can hold within ``capacity`` (smallest demands first)."""
    if not math.isfinite(capacity):
        return len(demand)
    fits = np.cumsum(np.sort(demand)) <= capacity * (1 + 1e-9)
    return max(1, int(fits.sum()))


def encode(instances: list[RoutingInstance], device: torch.device, k: int) -> Batch:
    """Pad ``instances`` (one depot, one vehicle type, checked by the solver) into a batch."""
    size = max(inst.num_clients for inst in instances)
    n1 = size + 1
    timed = any(inst.has_time_windows for inst in instances)
    B = len(instances)
    cost = np.zeros((B, n1, n1))
    travel = np.zeros((B, n1, n1)) if timed else None
    service, early = np.zeros((B, n1)), np.zeros((B, n1))
    late = np.full((B, n1), np.inf)
    demand = np.zeros((B, n1))
    capacity = np.full(B, np.inf)
    n, routes, limited, windowed, symmetric = [], [], [], [], []
    neighbours = np.zeros((B, n1, max(1, min(k, size - 1))), dtype=np.int64)
    window, scales, locations = [], [], []
    for b, inst in enumerate(instances):
        vt = inst.vehicle_types[0]
        nodes = np.concatenate([[inst.depots[0]], inst.clients])
        m = len(nodes) - 1
        dist = inst.distance[np.ix_(nodes, nodes)] * vt.unit_distance_cost
        arcs = dist.copy()
        arcs[0, 1:] += vt.fixed_cost
        arcs[0, 0] = 0.0
        scale = _power_of_two_above(float(arcs.max()))
        cost[b, :n1, :n1] = 0.0
        cost[b, : m + 1, : m + 1] = arcs / scale
        if timed:
            travel[b, : m + 1, : m + 1] = inst.travel_time[np.ix_(nodes, nodes)]
            service[b, : m + 1] = inst.service_time[nodes]
            if inst.time_windows is not None:
                early[b, : m + 1] = inst.time_windows[nodes, 0]
                late[b, : m + 1] = inst.time_windows[nodes, 1]
        demand[b, : m + 1] = inst.deliveries[nodes, 0]
        if vt.capacity is not None:
            capacity[b] = float(vt.capacity)
        slots = m if vt.count is None else min(vt.count, m)
        n.append(m)
        routes.append(slots)
        limited.append(vt.count is not None)
        windowed.append(inst.has_time_windows)
        symmetric.append(inst.is_symmetric)
        most = _most_clients(demand[b, 1 : m + 1], capacity[b])
        # a slightly overfull route may still pay off while penalties are low,
        # and a finite fleet needs room for every client
        window.append(min(m, max(most + 2, math.ceil(m / slots))))
        # granular neighbourhood: the nearest clients either way (asymmetric matrices)
        near = np.minimum(dist[1:, 1:], dist[1:, 1:].T)
        np.fill_diagonal(near, np.inf)
        kk = min(neighbours.shape[2], m - 1)
        neighbours[b, 1 : m + 1, :] = np.arange(1, m + 1)[:, None]  # itself: no move
        neighbours[b, 1 : m + 1, :kk] = np.argsort(near, axis=1, kind="stable")[:, :kk] + 1
        scales.append(scale)
        locations.append(nodes.astype(np.int64))

    def t(x, dtype=torch.float64):
        return None if x is None else torch.as_tensor(x, dtype=dtype, device=device)

    return Batch(
        cost=t(cost), travel=t(travel), service=t(service) if timed else None,
        early=t(early) if timed else None, late=t(late) if timed else None,
        demand=t(demand), capacity=t(capacity), n=t(n, torch.int64),
        routes=t(routes, torch.int64), limited=t(limited, torch.bool),
        windowed=t(windowed, torch.bool),
        symmetric=t(symmetric, torch.bool), neighbours=t(neighbours, torch.int64),
        window=t(window, torch.int64), scale=scales, locations=locations,
    )  # fmt: skip


def flat_from_routes(batch: Batch, b: int, solution: RoutingSolution) -> list[int] | None:
    """A solution of instance ``b`` as a flat sequence, or None if it needs more route slots."""
    node_of = {int(loc): i for i, loc in enumerate(batch.locations[b])}
    routes = [r.visits for r in solution.routes if r.visits]
    if len(routes) > int(batch.routes[b]):
        return None
    seq = [0]
    for visits in routes:
        seq += [node_of[v] for v in visits] + [0]
    return seq + [0] * (batch.length - len(seq))


def decode(batch: Batch, b: int, seq: torch.Tensor) -> RoutingSolution:
    """The routes of instance ``b``'s flat sequence ``seq`` (M,), in location indices."""
    locations = batch.locations[b]
    routes, current = [], []
    for node in seq.tolist():
        if node == 0:
            if current:
                routes.append(Route(tuple(int(locations[c]) for c in current), 0))
            current = []
        else:
            current.append(node)
    return RoutingSolution(tuple(routes))


# -- gathers ----------------------------------------------------------------------


def arc(
    matrix: torch.Tensor, i: torch.Tensor, j: torch.Tensor, shared: torch.Tensor | None = None
) -> torch.Tensor:
    """``matrix[b, i, j]`` for node tensors ``i``, ``j`` of shape (B, ...), or
    ``matrix[shared[b], i, j]`` where entries share their instance's matrix."""
    n1, dims = matrix.shape[1], max(i.dim(), j.dim())
    first = torch.arange(matrix.shape[0], device=i.device) if shared is None else shared
    row = first.view(-1, *[1] * (dims - 1)) * n1 + i  # broadcast last: i is often the smaller
    return torch.take(matrix, row * n1 + j)


def node(values: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """``values[b, i]`` for a node tensor ``i`` of shape (B, ...)."""
    return values.gather(1, i.reshape(i.shape[0], -1)).view(i.shape)


def take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[b, p, index]`` for ``values`` (B, P, L) and ``index`` (B, P, ...)."""
    B, P = index.shape[:2]
    return values.gather(2, index.reshape(B, P, -1)).view(index.shape)


# -- time-window segments (Vidal et al. 2013, as HGS-CVRP concatenates them) ----


@dataclass
class Segment:
    """A route piece in time: duration, time warp, earliest and latest start, its ends."""

    duration: torch.Tensor
    warp: torch.Tensor
    early: torch.Tensor
    late: torch.Tensor
    first: torch.Tensor
    last: torch.Tensor

    def where(self, mask: torch.Tensor, other: Segment) -> Segment:
        return Segment(
            *(torch.where(mask, a, b) for a, b in zip(self.fields(), other.fields(), strict=True))
        )

    def fields(self) -> tuple[torch.Tensor, ...]:
        return (self.duration, self.warp, self.early, self.late, self.first, self.last)


def visit(batch: Batch, i: torch.Tensor) -> Segment:
    """The segment of a single visit to each node of ``i`` (B, ...)."""
    zero = torch.zeros(i.shape, dtype=torch.float64, device=i.device)
    return Segment(node(batch.service, i), zero, node(batch.early, i), node(batch.late, i), i, i)


def merge(batch: Batch, a: Segment, b: Segment) -> Segment:
    """``a`` followed by ``b``: waiting when ``b`` opens later, warp when it closes earlier."""
    gap = batch.duration(a.last, b.first)
    delta = a.duration - a.warp + gap
    wait = torch.clamp(b.early - delta - a.late, min=0)
    warp = torch.clamp(a.early + delta - b.late, min=0)
    return Segment(
        a.duration + b.duration + gap + wait,
        a.warp + b.warp + warp,
        torch.maximum(b.early - delta, a.early) - wait,
        torch.minimum(b.late - delta, a.late) + warp,
        a.first,
        b.last,
    )


__all__ = [
    "Batch", "Segment", "arc", "decode", "encode", "flat_from_routes", "merge", "node", "take",
    "visit",
]  # fmt: skip
