"""Heuristics for warm starts and upper bounds: tours, Or-opt, subtour patching."""

from __future__ import annotations

import time

import numpy as np

from rota.problems.routing import RoutingInstance, RoutingSolution, evaluate
from rota.solvers import greedy
from rota.solvers.milp.formulation import ModelData


def or_opt(tour: list[int], c: np.ndarray, deadline: float) -> list[int]:
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


def tsp_tour(data: ModelData, deadline: float) -> list[int]:
    c = data.cost[0]
    tour, left = [data.depot], set(int(j) for j in data.clients)
    while left:
        last = tour[-1]
        nxt = min(left, key=lambda j: c[last, j])
        tour.append(nxt)
        left.remove(nxt)
    return or_opt(tour, c, deadline)


def patch_cycles(cycles: list[list[int]], c: np.ndarray) -> list[int]:
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


def initial_solution(data: ModelData, deadline: float) -> list[tuple[list[int], int]] | None:
    """A feasible solution to warm-start from (rota's greedy constructions), or ``None``."""
    inst = data.instance
    if inst.is_tsp:
        tour = tsp_tour(data, deadline)
        i = tour.index(data.depot)
        return [(tour[i + 1 :] + tour[:i], 0)]
    return greedy_routes(inst)


def greedy_routes(instance: RoutingInstance) -> list[tuple[list[int], int]] | None:
    """:func:`rota.solvers.greedy.construct`'s routes as (visits, type) pairs, if feasible."""
    routes, _ = greedy.construct(instance)
    if routes is None or not evaluate(instance, RoutingSolution(tuple(routes))).feasible:
        return None
    return [(list(r.visits), r.vehicle_type) for r in routes if r.visits]
