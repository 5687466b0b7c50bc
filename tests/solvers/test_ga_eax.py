"""Edge assembly crossover: AB-cycles, children that keep every client, and the ga's use of it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rota

from .test_ga import random_instance

pytest.importorskip("torch")

from rota.solvers.ga.eax import _arcs, _join, ab_cycles, child_routes  # noqa: E402


def _routes(clients: list[int], cuts: list[int]) -> list[list[int]]:
    bounds = sorted({c % len(clients) for c in cuts} | {0, len(clients)})
    return [clients[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def _costs(n: int, seed: int, directed: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = rng.random((n + 1, 2))
    cost = np.linalg.norm(points[:, None] - points[None], axis=2)
    if directed:
        cost = cost + 0.3 * rng.random(cost.shape)
    k = max(1, min(6, n - 1))
    between = cost[1:, 1:] + np.diag(np.full(n, np.inf))
    near = np.zeros((n + 1, k), dtype=np.int64)
    near[1:] = np.argsort(between, axis=1, kind="stable")[:, :k] + 1
    return cost, near


def _key(arc, directed):
    return arc if directed else (min(arc), max(arc))


parents = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.permutations(range(1, n + 1)),
        st.lists(st.integers(0, 100), max_size=8),
        st.permutations(range(1, n + 1)),
        st.lists(st.integers(0, 100), max_size=8),
        st.booleans(),
        st.integers(0, 2**31),
    )
)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(parents)
def test_ab_cycles_alternate_close_and_use_every_unshared_edge_once(case) -> None:
    n, first, first_cuts, second, second_cuts, directed, seed = case
    a_routes, b_routes = _routes(list(first), first_cuts), _routes(list(second), second_cuts)
    count = max(len(a_routes), len(b_routes))
    a_arcs, b_arcs = _arcs(a_routes, count), _arcs(b_routes, count)
    cycles = ab_cycles(a_arcs, b_arcs, directed, np.random.default_rng(seed))
    used_a = Counter(_key(a_arcs[e], directed) for c in cycles for side, e in c if side == "a")
    used_b = Counter(_key(b_arcs[e], directed) for c in cycles for side, e in c if side == "b")
    all_a = Counter(_key(a, directed) for a in a_arcs)
    all_b = Counter(_key(b, directed) for b in b_arcs)
    assert used_a == all_a - all_b and used_b == all_b - all_a
    for cycle in cycles:
        assert [side for side, _ in cycle] == ["a", "b"] * (len(cycle) // 2)
        # exchanging one cycle keeps every node's degree (in and out, when directed)
        if directed:
            out_a = Counter(a_arcs[e][0] for s, e in cycle if s == "a")
            out_b = Counter(b_arcs[e][0] for s, e in cycle if s == "b")
            in_a = Counter(a_arcs[e][1] for s, e in cycle if s == "a")
            in_b = Counter(b_arcs[e][1] for s, e in cycle if s == "b")
            assert out_a == out_b and in_a == in_b
        else:
            ends_a = Counter(v for s, e in cycle if s == "a" for v in a_arcs[e])
            ends_b = Counter(v for s, e in cycle if s == "b" for v in b_arcs[e])
            assert ends_a == ends_b


@settings(max_examples=80, deadline=None, derandomize=True)
@given(parents)
def test_a_child_visits_every_client_once(case) -> None:
    n, first, first_cuts, second, second_cuts, directed, seed = case
    cost, near = _costs(n, seed % 1000, directed)
    a_routes, b_routes = _routes(list(first), first_cuts), _routes(list(second), second_cuts)
    child = child_routes(a_routes, b_routes, cost, near, directed, np.random.default_rng(seed))
    assert sorted(v for route in child for v in route) == list(range(1, n + 1))
    assert all(route for route in child)


@pytest.mark.parametrize("directed", [False, True])
def test_a_child_of_one_parent_twice_is_that_parent(directed: bool) -> None:
    cost, near = _costs(12, 0, directed)
    routes = [[3, 1, 7], [2, 12, 5, 4], [6, 8, 9, 10, 11]]
    child = child_routes(routes, routes, cost, near, directed, np.random.default_rng(1))
    assert child == routes


def _cost_of(routes, cost) -> float:
    return sum(cost[a, b] for r in routes for a, b in zip([0, *r], [*r, 0], strict=True))


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_a_cut_off_loop_is_joined_where_it_costs_least(directed: bool, seed: int) -> None:
    n = 9
    cost, _ = _costs(n, seed, directed)
    near = np.array([[0] * (n - 1)] + [[v for v in range(1, n + 1) if v != u] for u in
                                       range(1, n + 1)])  # fmt: skip
    routes, loop = [[1, 2, 3], [4, 5]], [6, 7, 8, 9]
    joined = _join(routes, [loop], cost, near, directed)
    # every way to open the loop at one arc and put it between two neighbours of a route,
    # or alone
    options = []
    m = len(loop)
    for p in range(m):
        path = loop[p + 1 :] + loop[: p + 1]
        for way in [path, path[::-1]] if not directed else [path]:
            options.append([*routes, way])
            for i, route in enumerate(routes):
                for at in range(len(route) + 1):
                    changed = [list(r) for r in routes]
                    changed[i][at:at] = way
                    options.append(changed)
    assert _cost_of(joined, cost) == pytest.approx(min(_cost_of(o, cost) for o in options))


@pytest.mark.parametrize("kind", ["cvrp", "acvrp", "vrptw"])
def test_ga_with_edge_assembly_returns_feasible_solutions_and_batches_like_one_by_one(
    kind: str,
) -> None:
    instances = [random_instance(seed, 22, kind) for seed in range(2)]
    # five generations: with three, one of the time-window instances (tight windows) can end
    # before any offspring is feasible, depending on the search's path
    run = {"solver": "ga", "stop": "iterations=5", "seed": 4, "device": "cpu",
           "population": 6, "offspring": 6, "crossover": "eax"}  # fmt: skip
    together = rota.solve(instances, **run)
    for instance, result in zip(instances, together, strict=True):
        report = rota.evaluate(instance, result.solution)
        assert report.feasible and result.objective == report.objective
        alone = rota.solve(instance, **run)
        assert alone.solution == result.solution
