"""The placement ``ga``: its batched objective and swap prices against the evaluator,
its starts, caps, replicas, determinism and options."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

import rota
from rota.data.placement import generate_instance
from rota.problems.placement import PlacementInstance, contiguous, evaluate
from rota.solvers.placement import common

from .test_placement_solvers import brute_force, check, one_node, random_instance, two_nodes

torch = pytest.importorskip("torch")

from rota.solvers.placement.ga_search import _alignment, crossover  # noqa: E402
from rota.solvers.placement.ga_slots import (  # noqa: E402
    decode,
    encode,
    encode_solution,
    objective,
)
from rota.solvers.placement.ga_swaps import local_search, random_swaps  # noqa: E402

CPU = torch.device("cpu")


@functools.cache
def generated(nodes: int = 1, slots: int | None = None) -> PlacementInstance:
    """A small instance from the trace generator: 8 experts x 6 layers, top-2, 4 GPUs."""
    return generate_instance(8, 6, 4, 2, nodes=nodes, slots=slots, seed=3, tokens=512)


def random_rows(instance: PlacementInstance, rng: np.random.Generator) -> np.ndarray:
    """Random feasible slots: every expert once, some twice (replicas) where slots are spare,
    no expert twice on a GPU."""
    experts, width = instance.num_experts, instance.gpus * instance.slots
    rows = []
    for _ in range(instance.num_layers):
        extra = rng.integers(0, min(instance.spare_slots, experts) + 1)
        items = [*range(experts), *rng.choice(experts, extra, replace=False)]
        items += [experts] * (width - len(items))
        while True:
            row = rng.permutation(items)
            grid = row.reshape(instance.gpus, instance.slots)
            if all(len(set(g[g < experts])) == (g < experts).sum() for g in grid):
                break
        rows.append(row)
    return np.array(rows)


INSTANCES = {
    "one node": lambda: random_instance(6, 4, 3, seed=21),
    "two nodes": lambda: random_instance(8, 3, 4, seed=22, nodes=2),
    "spare slots": lambda: random_instance(5, 3, 3, seed=23, slots=3),
    "one layer": lambda: random_instance(6, 1, 3, seed=24),
    "generated, replicas": lambda: generated(nodes=2, slots=3),
}


@pytest.mark.parametrize("case", list(INSTANCES))
def test_the_batched_objective_is_the_evaluators(case):
    inst = INSTANCES[case]()
    rng = np.random.default_rng(1)
    enc = encode(inst, CPU)
    rows = np.stack([random_rows(inst, rng) for _ in range(12)])
    values = objective(enc, torch.tensor(rows)).objective
    traffic = objective(encode(inst, CPU, traffic_only=True), torch.tensor(rows)).fitness
    for row, value, hops in zip(rows, values, traffic, strict=True):
        solution = decode(enc, row)
        report = evaluate(inst, solution)
        assert report.feasible, report.violations
        assert float(value) == pytest.approx(report.objective, rel=1e-12)
        assert float(hops) == pytest.approx(inst.comm_weight * report.comm_cost, rel=1e-12)
        assert np.array_equal(
            objective(enc, torch.tensor(encode_solution(enc, solution))[None]).objective,
            value[None],
        )


def swaps(instance: PlacementInstance, row: np.ndarray):
    """Every allowed swap of one layer's slots: the rows after it."""
    s, experts = instance.slots, instance.num_experts
    for a, b in itertools.combinations(range(len(row)), 2):
        if a // s == b // s or row[a] == row[b]:
            continue
        grid = row.reshape(instance.gpus, s)
        if row[a] < experts and row[a] in grid[b // s]:
            continue
        if row[b] < experts and row[b] in grid[a // s]:
            continue
        new = row.copy()
        new[a], new[b] = row[b], row[a]
        yield new


@pytest.mark.parametrize("case", ["one node", "two nodes", "generated, replicas"])
def test_the_local_search_ends_where_no_swap_improves(case):
    inst = INSTANCES[case]()
    rng = np.random.default_rng(2)
    enc = encode(inst, CPU)
    population = torch.tensor(np.stack([random_rows(inst, rng) for _ in range(3)]))
    before = objective(enc, population).objective
    dirty = torch.ones(population.shape[:2], dtype=torch.bool)
    assert local_search(enc, population, dirty, lambda: False) > 0
    after = objective(enc, population).objective
    assert (after <= before).all() and (after < before).any()
    for rows, value in zip(population.numpy(), after, strict=True):
        report = evaluate(inst, decode(enc, rows))
        assert report.feasible and report.objective == pytest.approx(float(value), rel=1e-12)
        for li, row in enumerate(rows):
            for new in swaps(inst, row):
                other = rows.copy()
                other[li] = new
                moved = evaluate(inst, decode(enc, other)).objective
                assert moved >= report.objective - enc.tolerance, (li, new)


def test_random_swaps_keep_placements_feasible_and_within_caps():
    inst = generated(nodes=2, slots=3)
    start = common.eplb(inst, inst.spare_slots)
    caps = evaluate(inst, start).gpu_load.max(axis=1) * 1.02
    enc = encode(inst, CPU, caps)
    population = torch.tensor(encode_solution(enc, start))[None].repeat(6, 1, 1)
    dirty = torch.zeros(population.shape[:2], dtype=torch.bool)
    generator = torch.Generator().manual_seed(0)
    random_swaps(enc, population, dirty, torch.full((6,), 20), generator)
    assert dirty.any()
    for rows in population.numpy():
        report = evaluate(inst, decode(enc, rows))
        assert report.feasible and report.replicas == start.replicas
        assert (report.gpu_load.max(axis=1) <= caps * (1 + 1e-9)).all()


def test_crossover_renumbers_gpus_within_nodes_and_keeps_layers_whole():
    inst = random_instance(8, 5, 4, seed=25, nodes=2)
    rng = np.random.default_rng(3)
    enc = encode(inst, CPU)
    first = torch.tensor(np.stack([random_rows(inst, rng) for _ in range(8)]))
    second = torch.tensor(np.stack([random_rows(inst, rng) for _ in range(8)]))
    gpu_of = _alignment(enc, first, second, torch.full((8,), 1), torch.full((8,), 3))
    per_node = inst.gpus_per_node
    for perm in gpu_of.numpy():
        assert sorted(perm) == list(range(inst.gpus))
        for node in range(inst.nodes):
            assert len({g // per_node for g in perm[node * per_node : (node + 1) * per_node]}) == 1
    children, dirty = crossover(enc, first, second, torch.Generator().manual_seed(1))
    values = objective(enc, children).objective
    for k, child in enumerate(children.numpy()):
        report = evaluate(inst, decode(enc, child))
        assert report.feasible and report.objective == pytest.approx(float(values[k]))
        # each layer is the first parent's or the second's with GPUs renumbered
        for li, row in enumerate(child):
            parents = (first[k, li].numpy(), second[k, li].numpy())
            assert any(
                sorted(map(sorted, row.reshape(inst.gpus, -1).tolist()))
                == sorted(map(sorted, p.reshape(inst.gpus, -1).tolist()))
                for p in parents
            )
    assert dirty.any(dim=1).sum() >= 1


@pytest.mark.parametrize("inst", [one_node(), two_nodes()], ids=["one node", "two nodes"])
def test_ga_reaches_the_brute_force_optimum(inst):
    result = rota.solve(inst, solver="ga", stop={"iterations": 30}, device="cpu")
    check(inst, result)
    assert result.status is rota.Status.FEASIBLE and result.bound is None
    assert result.objective == pytest.approx(brute_force(inst), abs=1e-9)


def test_ga_reaches_the_milp_optimum():
    inst = random_instance(6, 5, 3, seed=26)
    proven = rota.solve(inst, solver="milp", time_limit=20)
    assert proven.status is rota.Status.OPTIMAL
    result = rota.solve(inst, solver="ga", stop={"iterations": 60}, seed=2, device="cpu")
    check(inst, result)
    assert result.objective == pytest.approx(proven.objective, abs=1e-9)


@pytest.mark.parametrize("nodes,slots", [(1, None), (2, None), (2, 3)])
def test_ga_is_feasible_never_worse_than_its_starts_and_says_what_it_did(nodes, slots):
    inst = generated(nodes=nodes, slots=slots)
    warm = rota.solve(inst, solver="greedy", replicas=0)
    result = rota.solve(inst, solver="ga", stop={"iterations": 3}, device="cpu", warm_start=warm)
    check(inst, result)
    assert result.stats["generations"] == 3 and result.stats["stopped_by"] == "iterations"
    assert result.stats["device"] == "cpu" and "solution_from" not in result.stats
    starts = result.stats["starts"]
    assert {"warm start 0", "contiguous", "eplb"} <= set(starts)
    assert ("eplb with replicas" in starts) == bool(inst.spare_slots)
    for name, solution in [("contiguous", contiguous(inst)), ("eplb", common.eplb(inst, 0))]:
        assert starts[name] == pytest.approx(evaluate(inst, solution).objective, rel=1e-12)
    assert result.objective <= min(starts.values()) + 1e-9
    # every layer keeps the copies of some start: replicas are moved, never made
    allowed = [
        [len(g) for g in layer]
        for start in (contiguous(inst), common.eplb(inst, inst.spare_slots))
        for layer in start.placement
    ]
    for layer in result.solution.placement:
        assert [len(g) for g in layer] in allowed


def test_a_better_warm_start_is_kept():
    inst = one_node()
    best = rota.solve(inst, solver="milp", time_limit=20)
    result = rota.solve(inst, solver="ga", stop={"iterations": 1}, device="cpu",
                        warm_start=best)  # fmt: skip
    assert result.objective == pytest.approx(best.objective)
    assert "warm start 0" in result.stats["starts"]


def test_same_seed_same_result():
    inst = generated(nodes=2)
    options = {"stop": {"iterations": 8}, "device": "cpu", "population": 6, "offspring": 4}
    runs = [rota.solve(inst, solver="ga", seed=seed, **options) for seed in (5, 5)]
    assert runs[0].solution == runs[1].solution and runs[0].objective == runs[1].objective
    assert runs[0].stats["local_search_steps"] == runs[1].stats["local_search_steps"]


@pytest.mark.parametrize("limit", [1.0, 1.05])
def test_max_imbalance_caps_every_layer(limit):
    inst = random_instance(6, 3, 3, seed=8)
    result = rota.solve(inst, solver="ga", stop={"iterations": 10}, device="cpu",
                        max_imbalance=limit)  # fmt: skip
    check(inst, result)
    mean = inst.loads.sum(axis=1) / inst.gpus
    caps = np.maximum(limit * mean, evaluate(inst, common.eplb(inst, 0)).gpu_load.max(axis=1))
    assert (result.evaluation.gpu_load.max(axis=1) <= caps * (1 + 1e-9)).all()
    assert "contiguous" not in result.stats["starts"] and "restricted" in result.stats


def test_hops_minimises_traffic_at_eplb_balance():
    inst = generated(nodes=2)
    eplb = evaluate(inst, common.eplb(inst, 0))
    joint = rota.solve(inst, solver="ga", stop={"iterations": 10}, device="cpu",
                       max_imbalance=1.0)  # fmt: skip
    hops = rota.solve(inst, solver="ga", stop={"iterations": 10}, device="cpu",
                      formulation="hops", max_imbalance=1.0)  # fmt: skip
    for result in (joint, hops):
        check(inst, result)
        assert (result.evaluation.gpu_load.max(axis=1) <= eplb.gpu_load.max(axis=1) + 1e-9).all()
    assert hops.stats["formulation"] == "hops"
    assert hops.evaluation.comm_cost <= joint.evaluation.comm_cost + 1e-9
    assert hops.evaluation.comm_cost < eplb.comm_cost


def test_stopping_criteria_are_honoured():
    inst = generated()
    target = rota.solve(inst, solver="ga", stop={"target": 1e12, "time": 20}, device="cpu")
    assert target.stats["stopped_by"] == "target" and target.stats["generations"] == 1
    stale = rota.solve(inst, solver="ga", stop={"no_improvement": 3, "time": 20}, device="cpu")
    assert stale.stats["stopped_by"] == "no_improvement"
    quick = rota.solve(generated(nodes=2, slots=3), solver="ga", time_limit=0.01, device="cpu")
    check(generated(nodes=2, slots=3), quick)
    assert quick.stats["stopped_by"] == "time"


def test_a_single_gpu_places_everything_there():
    inst = PlacementInstance(np.ones((2, 3)), np.ones((1, 3, 3)), gpus=1)
    result = rota.solve(inst, solver="ga", stop={"iterations": 2}, device="cpu")
    check(inst, result)
    assert result.objective == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"population": 0}, "ga option population=0 must be an integer >= 1"),
        ({"offspring": True}, "ga option offspring=True must be an integer >= 1"),
        ({"max_imbalance": 0.5}, "ga option max_imbalance=0.5 must be a number >= 1 or None"),
        ({"device": "tpu"}, "ga option device='tpu' is not one of auto, cpu, cuda"),
        ({"formulation": "flow"}, "ga option formulation='flow' is not one of joint, hops"),
        ({"generations": 3}, "ga: unknown option 'generations'"),
    ],
)
def test_bad_options_are_refused_in_one_line(options, message):
    with pytest.raises(ValueError, match=message) as caught:
        rota.solve(one_node(), solver="ga", time_limit=1, **options)
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_is_refused_without_a_cuda_device():
    with pytest.raises(ValueError, match="device='cuda', but torch finds no CUDA device"):
        rota.solve(one_node(), solver="ga", time_limit=1, device="cuda")


def test_ga_is_listed_for_placement_with_its_capabilities():
    info = {i.name: i for i in rota.list_solvers(one_node())}
    assert "ga" in info and info["ga"].available and info["ga"].supports
    backend = rota.get_solver("ga", "placement")
    assert backend.capabilities.gpu and backend.capabilities.warm_start
