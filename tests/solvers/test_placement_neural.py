"""The ``neural`` placement solver: feasible, the evaluator's objective, batched, bounded."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rota
import rota.solvers.neural
from rota.data.placement import generate_instance
from rota.errors import UnsupportedInstanceError
from rota.models.placement import PlacementModelConfig, PlacementPolicy, save_model
from rota.problems.placement import PlacementInstance, PlacementSolution, contiguous, evaluate
from rota.solvers.placement import neural


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> str:
    torch.manual_seed(0)
    config = PlacementModelConfig(hidden=8, blocks=1)
    path = tmp_path_factory.mktemp("model") / "placement.pt"
    save_model(path, PlacementPolicy(config), config, {"steps": 0})
    return str(path)


def instance(experts=8, layers=3, gpus=4, nodes=2, seed=0, **options):
    return generate_instance(experts, layers, gpus, 2, nodes=nodes, seed=seed, tokens=256,
                             **options)  # fmt: skip


def check(inst, result: rota.Result) -> None:
    assert result.status is rota.Status.FEASIBLE and result.bound is None
    report = evaluate(inst, result.solution)
    assert report.feasible, report.violations
    assert math.isclose(result.objective, report.objective, rel_tol=1e-9)
    assert result.objective <= evaluate(inst, contiguous(inst)).objective + 1e-9


def test_a_solve_is_feasible_and_scored_by_the_evaluator(model_file):
    inst = instance(slots=3)  # spare slots stay empty: no replicas
    result = rota.solve(inst, solver="neural", time_limit=10, model=model_file, samples=4)
    check(inst, result)
    assert result.solution.replicas == 0
    assert result.stats["rollouts"] == 5 and result.stats["model"] == model_file
    assert result.stats["chosen"] in ("policy (greedy)", "policy (sample)", "contiguous")


def test_a_list_of_instances_of_several_shapes_is_one_call(model_file):
    batch = [instance(seed=1), instance(seed=2), instance(12, 2, 4, 1, seed=3)]
    results = rota.solve(batch, solver="neural", time_limit=10, model=model_file, samples=2)
    for inst, result in zip(batch, results, strict=True):
        check(inst, result)
    assert [r.stats["batch"] for r in results] == [2, 2, 1]


def test_same_seed_same_placement(model_file):
    inst = instance(seed=4)
    one, two = (
        rota.solve(
            inst,
            solver="neural",
            time_limit=10,
            seed=7,
            model=model_file,
            decoding="sampling",
            samples=3,
        )  # fmt: skip
        for _ in range(2)
    )
    assert one.solution == two.solution and one.stats["rollouts"] == 3


def test_the_stop_ends_sampling_after_a_chunk(model_file):
    inst = instance(seed=5)
    result = rota.solve(inst, solver="neural", stop={"iterations": 1}, model=model_file,
                        samples=64, chunk=4)  # fmt: skip
    check(inst, result)
    assert result.stats["rollouts"] == 1 and result.stats["stopped_by"] == "iterations"


def test_contiguous_is_kept_when_no_rollout_beats_it(model_file):
    # one slot per GPU and no traffic: every placement costs the same, so contiguous stays
    inst = PlacementInstance(np.ones((2, 4)), np.zeros((1, 4, 4)), gpus=4)
    result = rota.solve(inst, solver="neural", time_limit=10, model=model_file, samples=2)
    check(inst, result)
    assert result.stats["chosen"] == "contiguous" and result.solution == contiguous(inst)


def test_without_a_model_the_solver_refuses_by_name(monkeypatch, tmp_path):
    monkeypatch.setattr(rota.solvers.neural, "CHECKPOINTS", tmp_path)
    with pytest.raises(UnsupportedInstanceError, match="no shipped placement model"):
        rota.solve(instance(), solver="neural", time_limit=1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"decoding": "beam"}, "decoding='beam' is not one of greedy, sampling, both"),
        ({"samples": 0}, "samples=0 must be an integer >= 1"),
        ({"device": "tpu"}, "device='tpu' is not one of auto, cpu, cuda"),
        ({"colour": 1}, "unknown option 'colour'"),
    ],
)
def test_bad_options_are_named(options, message, model_file):
    with pytest.raises(ValueError, match=message):
        rota.solve(instance(), solver="neural", time_limit=1, model=model_file, **options)


def test_a_model_of_another_problem_is_refused(tmp_path):
    from rota.models.checkpoint import write_model_file

    write_model_file(tmp_path / "atsp.pt", "atsp", {})
    with pytest.raises(rota.FormatError, match="problem is 'atsp', expected one of placement"):
        rota.solve(instance(), solver="neural", time_limit=1, model=str(tmp_path / "atsp.pt"))


def test_the_solver_names_the_models_decodings():
    from rota.models import placement

    assert neural.DECODINGS == placement.DECODINGS


def test_the_shipped_model_is_listed_and_used_by_default():
    inst = instance(seed=6)
    info = {i.name: i for i in rota.list_solvers(inst)}
    assert info["neural"].available and info["neural"].supports
    result = rota.solve(inst, solver="neural", time_limit=10, decoding="greedy")
    check(inst, result)
    assert result.stats["model"] == str(neural.shipped_model())
    assert neural.shipped_model().name.startswith("placement-")


def test_no_sampling_chunk_starts_that_the_last_says_would_end_past_the_limit():
    from rota.solvers.stopping import MaxRuntime, Stop

    budget = neural._Budget(Stop([MaxRuntime(100.0)]), greedy_first=True)
    budget.last -= 500.0  # the greedy rollout took 500 s: no estimate for a chunk, go on
    assert budget([1.0])
    budget.last -= 1.0  # a chunk that took 1 s fits
    assert budget([1.0])
    budget.last -= 150.0  # a chunk that took 150 s does not fit in the 100 s left
    assert not budget([1.0])


def _balanced(inst: PlacementInstance) -> np.ndarray:
    """Every layer by itself: heaviest expert first, onto the least-loaded GPU with room."""
    gpu = np.zeros(inst.loads.shape, dtype=int)
    for layer, loads in enumerate(inst.loads):
        load, count = np.zeros(inst.gpus), np.zeros(inst.gpus, dtype=int)
        for e in np.argsort(-loads, kind="stable"):
            g = int(np.argmin(np.where(count < inst.slots, load, np.inf)))
            gpu[layer, e], load[g], count[g] = g, load[g] + loads[e], count[g] + 1
    return gpu


def test_a_rollout_cut_short_by_the_time_limit_is_finished_by_balancing(model_file):
    """At a time limit already spent the policy places nothing: every layer is balanced."""
    inst = instance(experts=12, layers=5, gpus=4, seed=3)
    result = rota.solve(inst, solver="neural", model=model_file, decoding="greedy",
                        time_limit=1e-6, seed=0)  # fmt: skip
    check(inst, result)
    balanced = evaluate(inst, PlacementSolution.from_array(_balanced(inst))).objective
    if result.stats["chosen"] != "contiguous":
        assert "cut short by the time limit" in result.stats["chosen"]
        assert result.objective == pytest.approx(balanced, rel=1e-12)
    else:
        assert evaluate(inst, contiguous(inst)).objective <= balanced
