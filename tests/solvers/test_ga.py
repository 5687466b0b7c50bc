"""The batched genetic algorithm: conformance, its operators, determinism and batching."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rota
from rota.problems.routing import RoutingInstance, VehicleType

from .conformance import FEATURE_KINDS, TINY_KINDS, SolverConformance, tiny_instance

torch = pytest.importorskip("torch")

from rota.solvers.ga import search  # noqa: E402
from rota.solvers.ga.eax import routes_of  # noqa: E402
from rota.solvers.ga.encoding import encode  # noqa: E402
from rota.solvers.ga.local_search import (  # noqa: E402
    EPSILON,
    _disjoint,
    improve_round,
    local_search,
    penalised,
)
from rota.solvers.ga.operators import order_crossover, route_crossover  # noqa: E402
from rota.solvers.ga.rng import CounterRng  # noqa: E402
from rota.solvers.ga.search import _nearest_tours  # noqa: E402
from rota.solvers.ga.split import split  # noqa: E402

CPU = torch.device("cpu")


class TestGAConformance(SolverConformance):
    solver = "ga"
    time_limit = 0.5
    # seven clients: CPU search finds the optimum, or (time windows) comes within 5 %
    optimum_tolerance = 0.05
    supported_kinds = frozenset(TINY_KINDS) - FEATURE_KINDS - {"hfvrp", "mdvrp"}
    options = {"device": "cpu"}
    determinism_stop = "iterations=20"


def random_instance(seed: int, n: int, kind: str) -> RoutingInstance:
    """A random CVRP, ACVRP or VRPTW instance of ``n`` clients (integer data)."""
    rng = np.random.default_rng(seed)
    coords = rng.integers(0, 100, (n + 1, 2)).astype(float)
    distance = np.floor(np.sqrt(((coords[:, None] - coords[None]) ** 2).sum(-1)) + 0.5)
    if kind == "acvrp":
        distance = distance + rng.integers(0, 20, distance.shape)
        np.fill_diagonal(distance, 0)
    demand = rng.integers(1, 10, n + 1).astype(float)
    demand[0] = 0
    fields = {}
    if kind == "vrptw":
        early = distance[0] + rng.integers(0, 250, n + 1)  # reachable from the depot
        windows = np.stack([early, early + 60], axis=1)
        windows[0] = (0, 1000)
        fields = {"time_windows": windows, "service_time": np.where(np.arange(n + 1) > 0, 10.0, 0)}
    return RoutingInstance(
        distance=distance,
        vehicle_types=(VehicleType(capacity=30),),
        demand=demand,
        name=f"{kind}-{n}-{seed}",
        **fields,
    )


KINDS = ("cvrp", "acvrp", "vrptw")


def solve(instances, seed=3, iterations=3, **kwargs):
    return rota.solve(
        instances, solver="ga", stop=f"iterations={iterations}", seed=seed, device="cpu",
        population=8, offspring=8, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_every_returned_solution_is_feasible_with_the_evaluators_objective(kind: str) -> None:
    instances = [random_instance(seed, 25, kind) for seed in range(3)]
    for instance, result in zip(instances, solve(instances), strict=True):
        assert result.status is rota.Status.FEASIBLE, result.stats
        report = rota.evaluate(instance, result.solution)
        assert report.feasible, [str(v) for v in report.violations]
        assert result.objective == report.objective
        assert result.stats["batch_size"] == 3


def _population(kind: str, seed: int, size: int = 6):
    """Random giant tours of a random instance, split at random penalty weights."""
    instance = random_instance(seed, 20, kind)
    batch = encode([instance], CPU, 6)
    gen = torch.Generator().manual_seed(seed)
    tours = torch.stack([torch.randperm(20, generator=gen) + 1 for _ in range(size)])[None]
    weights = torch.rand((1, 2), generator=gen, dtype=torch.float64) * 0.05
    return batch, split(batch, tours, weights), weights


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(4))
def test_local_search_never_worsens_and_keeps_a_valid_solution(kind: str, seed: int) -> None:
    batch, seq, weights = _population(kind, seed)
    before = penalised(batch, seq, weights)
    for _ in range(5):
        after_seq, _ = improve_round(batch, seq, weights)
        after = penalised(batch, after_seq, weights)
        assert torch.all(after <= before + 1e-12), (before, after)
        seq, before = after_seq, after
    seq = local_search(batch, seq, weights)
    assert torch.all(penalised(batch, seq, weights) <= before + 1e-12)
    clients = torch.sort(seq[seq > 0].view(seq.shape[1], -1), dim=1).values
    assert torch.equal(clients, torch.arange(1, 21).expand_as(clients))
    routes = (seq == 0).cumsum(dim=2)
    used = torch.where(seq > 0, routes, 0).amax(dim=2)
    assert torch.all(used <= batch.routes[0])


def test_local_search_of_a_mixed_batch_equals_each_instance_searched_alone() -> None:
    # the rounds search the moving individuals of every instance as one set of rows
    # that read their instance's matrices: no row may see another instance's data
    cases = [(0, 20, "cvrp"), (1, 13, "vrptw"), (2, 17, "acvrp"), (3, 20, "vrptw")]
    instances = [random_instance(seed, n, kind) for seed, n, kind in cases]
    gen = torch.Generator().manual_seed(5)
    tours = torch.zeros((len(cases), 6, 20), dtype=torch.int64)
    for b, (_, n, _) in enumerate(cases):
        tours[b, :, :n] = torch.stack([torch.randperm(n, generator=gen) + 1 for _ in range(6)])
    weights = torch.rand((len(cases), 2), generator=gen, dtype=torch.float64) * 0.05
    batch = encode(instances, CPU, 6)
    together = local_search(batch, split(batch, tours, weights), weights)
    for b, (instance, (_, n, _)) in enumerate(zip(instances, cases, strict=True)):
        alone, own = encode([instance], CPU, 6), weights[b : b + 1]
        seq = local_search(alone, split(alone, tours[b : b + 1, :, :n], own), own)
        for p in range(6):
            assert routes_of(together[b, p]) == routes_of(seq[0, p]), (b, p)


def test_local_search_of_chosen_individuals_leaves_the_others_as_they_are() -> None:
    batch, seq, weights = _population("cvrp", 7)
    chosen = torch.tensor([[True, False, True, False, False, True]])
    searched = local_search(batch, seq, weights, searched=chosen)
    assert torch.equal(searched[~chosen], seq[~chosen])
    everyone = local_search(batch, seq, weights)
    assert torch.equal(searched[chosen], everyone[chosen])
    assert not torch.equal(searched[chosen], seq[chosen])


def _moved_within_route(tour: list[int], i: int, j: int, swap: bool) -> list[int]:
    out = list(tour)
    if swap:
        out[i], out[j] = out[j], out[i]
    else:
        out.insert(j, out.pop(i))
    return out


@pytest.mark.parametrize("kind", ["vrptw", "acvrp"])
@pytest.mark.parametrize("seed", range(3))
def test_local_search_ends_where_no_move_inside_a_route_helps(kind: str, seed: int) -> None:
    """One vehicle, so every move is inside its route: with time windows too, the search
    must leave no relocate or swap of one client that lowers the penalised cost."""
    n = 9
    instance = random_instance(seed, n, kind)
    instance = RoutingInstance(
        distance=instance.distance, demand=instance.demand, name=instance.name,
        vehicle_types=(VehicleType(capacity=1000, count=1),),
        time_windows=instance.time_windows, service_time=instance.service_time,
    )  # fmt: skip
    batch = encode([instance], CPU, n)  # every client a neighbour: no move left out
    gen = torch.Generator().manual_seed(seed)
    tours = torch.stack([torch.randperm(n, generator=gen) + 1 for _ in range(4)])[None]
    weights = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    seq = local_search(batch, split(batch, tours, weights), weights)
    cost = penalised(batch, seq, weights)[0]
    for p in range(seq.shape[1]):
        tour = [c for c in seq[0, p].tolist() if c > 0]
        assert sorted(tour) == list(range(1, n + 1))
        neighbours = [
            _moved_within_route(tour, i, j, swap)
            for swap in (False, True)
            for i in range(n)
            for j in range(n)
            if i != j
        ]
        flats = torch.tensor([[0, *t, *[0] * (seq.shape[2] - n - 1)] for t in neighbours])
        assert penalised(batch, flats[None], weights).min() >= cost[p] - 1e-9, (kind, p)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(routes=st.integers(1, 6), clients=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_moves_chosen_touch_disjoint_routes_and_no_improving_move_is_left_out(
    routes: int, clients: int, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    shape = (2, 3, clients)
    # few distinct gains, so ties between moves are common
    gain = torch.randint(-2, 4, shape, generator=generator).double()
    r1 = torch.randint(0, routes, shape, generator=generator)
    r2 = torch.where(torch.rand(shape, generator=generator) < 0.3, r1,
                     torch.randint(0, routes, shape, generator=generator))  # fmt: skip
    accept = _disjoint(gain, r1, r2, routes)
    assert bool((gain[accept] > EPSILON).all())
    for b in range(2):
        for p in range(3):
            taken = [m for m in range(clients) if accept[b, p, m]]
            used = [r for m in taken for r in {int(r1[b, p, m]), int(r2[b, p, m])}]
            assert len(used) == len(set(used))  # no route touched twice
            for m in range(clients):  # maximal: an improving move left out meets a taken route
                if gain[b, p, m] > EPSILON and m not in taken:
                    assert {int(r1[b, p, m]), int(r2[b, p, m])} & set(used)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    n=st.integers(1, 30),
    pad=st.integers(0, 5),
    seed=st.integers(0, 2**31),
)
def test_order_crossover_yields_a_permutation(n: int, pad: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    first = torch.randperm(n, generator=gen) + 1
    second = torch.randperm(n, generator=gen) + 1
    zeros = torch.zeros(pad, dtype=torch.int64)
    parents = [torch.cat([p, zeros]).view(1, 1, -1) for p in (first, second)]
    u = torch.rand((1, 1, 2), generator=gen, dtype=torch.float64)
    child = order_crossover(*parents, torch.tensor([n]), u)[0, 0]
    assert sorted(child[:n].tolist()) == list(range(1, n + 1))
    assert child[n:].tolist() == [0] * pad


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    sizes=st.lists(st.integers(0, 6), min_size=1, max_size=8),
    pad=st.integers(0, 4),
    seed=st.integers(0, 2**31),
)
def test_route_crossover_keeps_whole_routes_of_the_first_parent(
    sizes: list[int], pad: int, seed: int
) -> None:
    n = sum(sizes)
    if n == 0:
        return
    gen = torch.Generator().manual_seed(seed)
    clients = (torch.randperm(n, generator=gen) + 1).tolist()
    routes, flat = [], [0]
    for size in sizes:  # empty routes too: a flat sequence keeps their depot visits
        routes.append(clients[:size])
        clients = clients[size:]
        flat += [*routes[-1], 0]
    first_seq = torch.tensor(flat + [0] * pad).view(1, 1, -1)
    first = torch.tensor([c for r in routes for c in r] + [0] * pad).view(1, 1, -1)
    second = torch.cat([torch.randperm(n, generator=gen) + 1, torch.zeros(pad, dtype=torch.int64)])
    u = torch.rand((1, 1, 2), generator=gen, dtype=torch.float64)
    child = route_crossover(first_seq, first, second.view(1, 1, -1), torch.tensor([n]), u)
    child = child[0, 0].tolist()
    assert sorted(child[:n]) == list(range(1, n + 1)) and child[n:] == [0] * pad
    kept = [r for r in routes if r]
    giant = [c for r in kept for c in r]
    starts = [sum(len(r) for r in kept[:k]) for k in range(len(kept))]

    def inherits(k: int, count: int) -> bool:
        """The child holds routes k .. k + count - 1 (cyclically) where the mother has them."""
        length = sum(len(kept[(k + j) % len(kept)]) for j in range(count))
        return all(child[(starts[k] + t) % n] == giant[(starts[k] + t) % n] for t in range(length))

    counts = range(1, max(2, len(kept)))  # all routes but one, when there are two or more
    assert any(inherits(k, c) for k in range(len(kept)) for c in counts), (routes, child)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=4), st.integers(0, 2**31))
def test_nearest_walks_visit_every_client_once_and_step_to_the_nearest_biased_one(
    sizes: list[int], seed: int
) -> None:
    instances = [random_instance(seed + k, n, "acvrp") for k, n in enumerate(sizes)]
    batch = encode(instances, CPU, 4)
    tours = _nearest_tours(batch, CounterRng(seed, CPU), 5, 0.0)
    for b, n in enumerate(sizes):
        for tour in tours[b].tolist():
            assert sorted(tour[:n]) == list(range(1, n + 1)) and not any(tour[n:])
            for here, there in itertools.pairwise(tour[:n]):  # spread 0: the nearest left
                left = [c for c in range(1, n + 1) if c not in tour[: tour.index(there)]]
                cost = batch.cost[b, here]
                assert float(cost[there]) == min(float(cost[c]) for c in left)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(2, 14), st.integers(0, 2**31))
def test_with_time_windows_a_walk_goes_on_in_time_or_restarts_at_the_first_closing_window(
    n: int, seed: int
) -> None:
    batch = encode([random_instance(seed, n, "vrptw")], CPU, 4)
    travel, service = batch.travel[0].tolist(), batch.service[0].tolist()
    early, late = batch.early[0].tolist(), batch.late[0].tolist()
    for tour in _nearest_tours(batch, CounterRng(seed, CPU), 4, 0.0)[0].tolist():  # no bias
        assert sorted(tour) == list(range(1, n + 1))
        clock = max(travel[0][tour[0]], early[tour[0]])
        for k, (here, there) in enumerate(itertools.pairwise(tour)):
            left = tour[k + 1 :]
            reach = {c: max(clock + service[here] + travel[here][c], early[c]) for c in left}
            if reach[there] <= late[there]:
                clock = reach[there]
            else:  # nothing left was reachable in time: a new start, earliest closing first
                assert all(reach[c] > late[c] for c in left)
                assert late[there] == min(late[c] for c in left)
                clock = max(travel[0][there], early[there])


def test_same_seed_same_result_and_another_seed_searches_differently() -> None:
    instance = random_instance(7, 30, "cvrp")
    first, again = solve(instance, seed=5), solve(instance, seed=5)
    assert first.solution == again.solution
    assert first.objective == again.objective


@pytest.mark.parametrize("start", ["nearest", "random"])
def test_initial_individuals_built_in_one_pass_or_the_first_few_first_agree(start: str) -> None:
    # under a time limit the first few initial individuals are built, searched and
    # repaired before the others are built; without one all go in one pass, which must
    # change nothing (not even the random draws that follow)
    instances = [random_instance(seed, 25, kind) for seed, kind in ((8, "cvrp"), (9, "vrptw"))]
    one_pass = solve(instances, iterations=2, start=start)
    first_few_first = rota.solve(
        instances, solver="ga", stop="iterations=2,time=1000", seed=3, device="cpu",
        population=8, offspring=8, start=start,
    )  # fmt: skip
    for a, b in zip(one_pass, first_few_first, strict=True):
        assert a.solution == b.solution
        assert a.objective == b.objective


def test_warm_starts_beyond_the_first_few_all_join_the_first_part() -> None:
    # six warm starts: under a time limit the first part holds all six, as one pass does
    instance = random_instance(5, 25, "cvrp")
    starts = [solve(instance, seed=s, iterations=1).solution for s in range(6)]
    one_pass = solve(instance, iterations=2, warm_start=starts)
    in_parts = rota.solve(
        instance, solver="ga", stop="iterations=2,time=1000", seed=3, device="cpu",
        population=8, offspring=8, warm_start=starts,
    )  # fmt: skip
    assert one_pass.solution == in_parts.solution
    assert one_pass.objective == in_parts.objective


def _without_time_to_build_the_rest(instance, seed, monkeypatch):
    # as if building the other initial individuals would overrun the limit: the run ends
    # with the first few, searched and repaired, and runs no generation on them
    monkeypatch.setattr(search, "_REST_BUILD_RATIO", math.inf)
    result = rota.solve(instance, solver="ga", time_limit=60, seed=seed, device="cpu")
    assert result.stats["generations"] == 0
    assert result.status is rota.Status.FEASIBLE
    report = rota.evaluate(instance, result.solution)
    assert report.feasible and report.objective == result.objective


def test_a_run_with_no_time_to_build_the_rest_returns_the_first_few(monkeypatch) -> None:
    _without_time_to_build_the_rest(random_instance(4, 30, "cvrp"), 3, monkeypatch)


def test_when_the_first_few_give_no_incumbent_the_others_tours_are_split_too(
    monkeypatch, shared_instances
) -> None:
    # X-n153's capacity is tight: seed 1's first four individuals stay infeasible after
    # search and repair, and so do their tours' repair splits; the other 21 tours' give
    # a feasible one
    instance = rota.read(shared_instances / "cvrp" / "X-n153-k22.vrp")
    _without_time_to_build_the_rest(instance, 1, monkeypatch)


@pytest.mark.parametrize("start", ["nearest", "random"])
def test_a_batch_gets_the_results_of_solving_one_by_one(start: str) -> None:
    shapes = ((1, 18, "cvrp"), (2, 25, "vrptw"), (3, 22, "acvrp"))
    instances = [random_instance(seed, n, kind) for seed, n, kind in shapes]
    together = solve(instances, iterations=4, start=start)
    alone = [solve(instance, iterations=4, start=start) for instance in instances]
    for a, b in zip(together, alone, strict=True):
        assert a.solution == b.solution
        assert a.objective == b.objective


def test_warm_start_is_kept_when_no_generation_beats_it() -> None:
    instance = random_instance(4, 30, "vrptw")
    start = rota.solve(instance, solver="greedy", time_limit=1.0)
    assert start.status is rota.Status.FEASIBLE
    result = solve(instance, iterations=1, warm_start=start)
    assert result.objective <= start.objective
    assert result.stats.get("solution_from") != "warm start"


def test_a_limited_fleet_is_never_exceeded() -> None:
    base = random_instance(5, 24, "cvrp")
    load = base.demand.sum()
    count = int(np.ceil(load / 30)) + 1
    instance = RoutingInstance(
        distance=base.distance, vehicle_types=(VehicleType(capacity=30, count=count),),
        demand=base.demand, name="limited",
    )  # fmt: skip
    result = solve(instance)
    assert result.status is rota.Status.FEASIBLE
    assert len(result.solution.nonempty_routes) <= count


def test_fixed_and_unit_costs_of_one_vehicle_type_are_modelled() -> None:
    base = random_instance(6, 20, "cvrp")
    instance = RoutingInstance(
        distance=base.distance,
        vehicle_types=(VehicleType(capacity=30, fixed_cost=100, unit_distance_cost=2.5),),
        demand=base.demand, name="costly",
    )  # fmt: skip
    result = solve(instance)
    assert result.status is rota.Status.FEASIBLE
    assert result.objective == rota.evaluate(instance, result.solution).objective


def test_one_client_and_two_clients() -> None:
    for n in (1, 2):
        instance = random_instance(8, n, "cvrp")
        result = solve(instance)
        assert result.status is rota.Status.FEASIBLE
        assert sorted(c for r in result.solution.routes for c in r.visits) == list(range(1, n + 1))


def test_refuses_what_it_does_not_model_by_name() -> None:
    with pytest.raises(rota.UnsupportedInstanceError, match="heterogeneous"):
        solve(tiny_instance("hfvrp"))
    with pytest.raises(rota.UnsupportedInstanceError, match="prizes"):
        solve(tiny_instance("prizes"))
    with pytest.raises(rota.UnsupportedInstanceError, match="release times"):
        solve(tiny_instance("release_times"))


def test_options_are_checked_by_name() -> None:
    backend = rota.get_solver("ga")
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, got 'tpu'"):
        backend.configure(device="tpu")
    with pytest.raises(ValueError, match="population must be an integer >= 2, got 1"):
        backend.configure(population=1)
    with pytest.raises(ValueError, match="start must be one of nearest, random, got 'x'"):
        backend.configure(start="x")
    assert rota.get_solver("ga").capabilities.batched


def test_preload_imports_what_a_run_imports() -> None:
    # a fresh interpreter: this one imported torch long ago
    code = (
        "import sys; import rota; "
        "from rota.solvers.base import preload; "
        "preload(rota.get_solver('hybrid').configure(seeds='greedy', refine='ga')); "
        "print(sorted({'torch', 'rota.solvers.ga.search'} - set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
