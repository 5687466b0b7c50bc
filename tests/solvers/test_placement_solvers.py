"""Every placement solver: feasible, its objective the evaluator's, optimal only when it is.

Tiny instances are solved by brute force over every placement, so the exact
models' optima, statuses and bounds are checked against the truth.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest

import rota
from rota.errors import UnsupportedError, UnsupportedInstanceError
from rota.problems.placement import PlacementInstance, PlacementSolution, contiguous, evaluate
from rota.solvers.placement import common, layout, milp
from rota.solvers.placement.common import canonical, first_layer_allowed, lower_bound, objective


def random_instance(
    experts: int, layers: int, gpus: int, seed: int, **options
) -> PlacementInstance:
    rng = np.random.default_rng(seed)
    loads = rng.integers(0, 60, (layers, experts))
    flows = rng.integers(0, 30, (layers - 1, experts, experts))
    options.setdefault("comm_weight", 0.7)
    return PlacementInstance(loads, flows, gpus=gpus, bandwidth_inter=150.0, **options)


@functools.cache
def one_node() -> PlacementInstance:
    """4 experts x 3 layers on 2 GPUs: both encodings apply."""
    return random_instance(4, 3, 2, seed=3)


@functools.cache
def two_nodes() -> PlacementInstance:
    """4 experts x 2 layers on 4 GPUs in 2 nodes (one slot each): assignment encoding only."""
    return random_instance(4, 2, 4, seed=4, nodes=2)


@functools.cache
def brute_force(instance: PlacementInstance) -> float:
    """The optimum over every placement without replicas."""
    g, s = instance.gpus, instance.slots
    rows = [
        r
        for r in itertools.product(range(g), repeat=instance.num_experts)
        if np.bincount(r, minlength=g).max() <= s
    ]
    return min(
        objective(instance, np.array(combo))
        for combo in itertools.product(rows, repeat=instance.num_layers)
    )


def check(instance: PlacementInstance, result: rota.Result) -> None:
    """Feasible, and the reported objective is the evaluator's."""
    assert result.status.has_solution, result.stats
    report = evaluate(instance, result.solution)
    assert report.feasible, report.violations
    assert math.isclose(result.objective, report.objective, rel_tol=1e-9, abs_tol=1e-9)
    if result.bound is not None:
        assert result.bound <= result.objective + 1e-9


EXACT = [
    ("milp", {"backend": "cbc", "encoding": "blocks"}),
    ("milp", {"backend": "highs", "encoding": "assignment"}),
    ("cpsat", {"encoding": "blocks"}),
    ("cpsat", {"encoding": "assignment"}),
]


@pytest.mark.parametrize(("solver", "options"), EXACT)
def test_exact_models_prove_the_brute_force_optimum(solver, options):
    inst = one_node()
    result = rota.solve(inst, solver=solver, time_limit=20, **options)
    check(inst, result)
    assert result.status is rota.Status.OPTIMAL
    assert result.objective == pytest.approx(brute_force(inst), abs=1e-9)
    assert result.bound == pytest.approx(result.objective)
    assert result.stats["encoding"] == options["encoding"]


@pytest.mark.parametrize("solver", ["milp", "cpsat"])
def test_nodes_and_inverse_bandwidth_are_modelled_exactly(solver):
    inst = two_nodes()
    result = rota.solve(inst, solver=solver, time_limit=20)
    check(inst, result)
    assert result.status is rota.Status.OPTIMAL and result.stats["encoding"] == "assignment"
    assert result.objective == pytest.approx(brute_force(inst), abs=1e-9)


def test_the_combinatorial_bound_is_below_the_optimum():
    for inst in (one_node(), two_nodes()):
        assert lower_bound(inst) <= brute_force(inst) + 1e-9


def test_relabelled_starts_keep_their_objective_and_fit_the_symmetry_breaking():
    inst = two_nodes()
    start = np.array([[3, 1, 0, 2], [2, 0, 1, 3]])
    relabelled = canonical(inst, start)
    assert objective(inst, relabelled) == pytest.approx(objective(inst, start))
    allowed = first_layer_allowed(inst)
    assert allowed[np.arange(4), relabelled[0]].all()


@pytest.mark.parametrize("method", ["eplb", "contiguous"])
def test_greedy_constructions(method):
    inst = one_node()
    result = rota.solve(inst, solver="greedy", method=method)
    check(inst, result)
    assert result.status is rota.Status.FEASIBLE and result.stats["stop_iterations"] == 1
    if method == "contiguous":
        assert result.solution == contiguous(inst)


def test_eplb_replicates_hot_experts_into_spare_slots():
    inst = random_instance(6, 2, 3, seed=5, slots=3)  # 9 slots for 6 experts
    result = rota.solve(inst, solver="greedy")
    check(inst, result)
    assert result.solution.replicas == 2 * 3 and result.stats["replicas_per_layer"] == 3
    fewer = rota.solve(inst, solver="greedy", replicas=1)
    assert fewer.solution.replicas == 2
    hottest = int(np.argmax(inst.loads[0]))
    assert len(result.solution.placement[0][hottest]) > 1
    with pytest.raises(UnsupportedInstanceError, match="4 replicas per layer do not fit"):
        rota.solve(inst, solver="greedy", replicas=4)


@pytest.mark.parametrize("solver", ["milp", "cpsat"])
def test_spare_slots_are_never_claimed_optimal(solver):
    inst = random_instance(4, 2, 2, seed=6, slots=3)
    result = rota.solve(inst, solver=solver, time_limit=20, decomposition="none")
    check(inst, result)
    assert result.status is rota.Status.FEASIBLE and result.bound is None
    assert "replicas" in result.stats["scope"]


@pytest.mark.parametrize("solver", ["milp", "cpsat"])
def test_hops_minimises_traffic_and_is_never_optimal(solver):
    inst = one_node()
    hops = rota.solve(inst, solver=solver, time_limit=20, formulation="hops")
    check(inst, hops)
    assert hops.status is rota.Status.FEASIBLE
    assert hops.bound <= brute_force(inst) + 1e-9
    for other in (contiguous(inst), common.eplb(inst, 0)):
        assert hops.evaluation.comm_cost <= evaluate(inst, other).comm_cost + 1e-9


@pytest.mark.parametrize("solver", ["milp", "cpsat"])
@pytest.mark.parametrize("decomposition", ["none", "layers"])
def test_max_imbalance_caps_every_layer(solver, decomposition):
    inst = random_instance(6, 3, 3, seed=8)
    start = common.eplb(inst, 0)
    result = rota.solve(inst, solver=solver, time_limit=20, formulation="hops",
                        max_imbalance=1.05, decomposition=decomposition)  # fmt: skip
    check(inst, result)
    mean = inst.loads.sum(axis=1) / inst.gpus
    caps = np.maximum(1.05 * mean, evaluate(inst, start).gpu_load.max(axis=1))
    assert (result.evaluation.gpu_load.max(axis=1) <= caps * (1 + 1e-9)).all()
    assert result.status is rota.Status.FEASIBLE and "restricted" in result.stats


@pytest.mark.parametrize("solver", ["milp", "cpsat"])
def test_the_layer_decomposition_says_so_and_is_never_worse_than_its_start(solver):
    inst = random_instance(6, 4, 3, seed=9)
    start = rota.solve(inst, solver="greedy")
    result = rota.solve(inst, solver=solver, time_limit=20, decomposition="layers")
    check(inst, result)
    assert result.status is rota.Status.FEASIBLE
    assert result.stats["decomposition"] == "layers" and result.stats["layer_solves"] > 0
    assert result.objective <= start.objective + 1e-9
    assert result.bound == pytest.approx(lower_bound(inst))


@pytest.mark.parametrize("solver", ["milp", "cpsat"])
def test_the_decomposition_keeps_eplb_replicas(solver):
    inst = random_instance(6, 3, 3, seed=10, slots=3)
    result = rota.solve(inst, solver=solver, time_limit=20, decomposition="layers")
    check(inst, result)
    assert result.solution.replicas == 3 * 3 and "replicas kept" in result.stats["scope"]
    copies = [[len(g) for g in layer] for layer in result.solution.placement]
    expected = [[len(g) for g in layer] for layer in common.eplb(inst, 3).placement]
    assert copies == expected


def test_large_layers_are_solved_by_lp_rounding(monkeypatch):
    monkeypatch.setattr(milp, "MAX_EXACT_LAYER", 0)
    inst = random_instance(8, 3, 4, seed=11)
    result = rota.solve(inst, solver="milp", time_limit=20, decomposition="layers",
                        backend="highs", max_imbalance=1.1)  # fmt: skip
    check(inst, result)
    assert result.stats["layer_models"] == "LP, rounded" and result.stats["local_optimum"] is False


def test_repair_brings_every_gpu_within_its_cap():
    owner = np.arange(6)
    loads = np.array([9.0, 8, 1, 1, 1, 1])
    costs = np.zeros((6, 3))
    row = layout.repair(np.array([0, 0, 1, 1, 2, 2]), owner, loads, costs, cap=10)
    assert np.bincount(row, weights=loads, minlength=3).max() <= 10
    assert (np.bincount(row, minlength=3) == 2).all()


@pytest.mark.parametrize("solver", ["milp", "cpsat"])
def test_a_better_warm_start_is_kept(solver):
    inst = one_node()
    best = brute_force(inst)
    g, s = inst.gpus, inst.slots
    rows = [r for r in itertools.product(range(g), repeat=4) if max(np.bincount(r)) <= s]
    optimum = next(
        np.array(c) for c in itertools.product(rows, repeat=3)
        if objective(inst, np.array(c)) == best
    )  # fmt: skip
    start = PlacementSolution.from_array(optimum)
    result = rota.solve(inst, solver=solver, stop={"iterations": 1}, warm_start=start)
    check(inst, result)
    assert result.objective == pytest.approx(best)
    assert result.stats["start"] == "warm start"


def test_greedy_refuses_warm_starts():
    inst = one_node()
    with pytest.raises(UnsupportedError, match="greedy cannot start from given solutions"):
        rota.solve(inst, solver="greedy", warm_start=contiguous(inst))


def test_stopping_criteria_are_honoured():
    inst = random_instance(6, 4, 3, seed=12)
    once = rota.solve(inst, solver="milp", stop={"iterations": 2}, decomposition="layers")
    assert once.stats["stop_iterations"] == 2 and once.stats["stopped_by"] == "iterations"
    target = rota.solve(inst, solver="cpsat", stop={"target": 1e12, "time": 20})
    assert target.stats["stopped_by"] == "target"


def test_sizes_beyond_the_models_are_refused():
    big = PlacementInstance(np.ones((2, 256)), np.ones((1, 256, 256)), gpus=256, slots=1)
    for solver in ("milp", "cpsat"):
        with pytest.raises(UnsupportedInstanceError, match="binaries \\(limit 40000\\)"):
            rota.solve(big, solver=solver, time_limit=1)
    wide = PlacementInstance(np.ones((10, 32)), np.ones((9, 32, 32)), gpus=16)
    with pytest.raises(UnsupportedInstanceError, match="use decomposition=auto or layers"):
        rota.solve(wide, solver="milp", time_limit=1, decomposition="none", encoding="assignment")


def test_cpsat_refuses_weights_it_cannot_scale_exactly():
    inst = random_instance(4, 2, 2, seed=13, comm_weight=math.pi)
    with pytest.raises(UnsupportedInstanceError, match="denominators up to"):
        rota.solve(inst, solver="cpsat", time_limit=1)
    check(inst, rota.solve(inst, solver="milp", time_limit=20))


@pytest.mark.parametrize(
    ("solver", "options", "message"),
    [
        ("milp", {"backend": "gurobi"}, "backend='gurobi' is not one of cbc, highs"),
        ("milp", {"formulation": "quadratic"}, "formulation='quadratic' is not one of"),
        ("cpsat", {"max_imbalance": 0.5}, "max_imbalance=0.5 must be a number >= 1"),
        ("greedy", {"method": "random"}, "method='random' is not one of eplb, contiguous"),
        ("greedy", {"colour": 1}, "unknown option 'colour'"),
    ],
)
def test_bad_options_are_named(solver, options, message):
    with pytest.raises(ValueError, match=message):
        rota.solve(one_node(), solver=solver, time_limit=1, **options)
