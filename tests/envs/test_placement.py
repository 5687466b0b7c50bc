"""The placement environment: its reward is the evaluator's objective, its mask keeps capacity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rota.data.placement import generate_instance
from rota.envs.placement import (
    PlacementEnv,
    PlacementGenerator,
    current,
    objective,
    to_solution,
    to_tensordict,
)
from rota.problems.placement import PlacementInstance, evaluate
from rota.solvers.placement import ga_slots


def random_instances(
    count: int, experts: int, layers: int, gpus: int, slots: int, seed: int, nodes: int = 1
) -> list[PlacementInstance]:
    rng = np.random.default_rng(seed)
    return [
        PlacementInstance(
            rng.integers(0, 50, (layers, experts)),
            rng.integers(0, 20, (layers - 1, experts, experts)),
            gpus=gpus,
            nodes=nodes,
            slots=slots,
            comm_weight=float(rng.uniform(0.1, 2.0)),
            bandwidth_inter=float(rng.choice([50.0, 450.0])),
        )
        for _ in range(count)
    ]


def random_rollout(env: PlacementEnv, instances: list[PlacementInstance], seed: int):
    """Uniform choices among the free GPUs; checks the mask at every step."""
    td = env.reset(to_tensordict(instances))
    rng = torch.Generator().manual_seed(seed)
    slots = instances[0].slots
    while not td["done"].all():
        layer, _ = current(td)
        counts = td["count"][torch.arange(len(instances)), layer]
        assert torch.equal(td["action_mask"], counts < slots)
        action = torch.multinomial(td["action_mask"].double(), 1, generator=rng).squeeze(-1)
        td.set("action", action)
        td = env.step(td)["next"]
        assert (td["count"] <= slots).all()
    return td


shapes = st.tuples(
    st.integers(1, 7),  # experts
    st.integers(1, 4),  # layers
    st.sampled_from([(1, 1), (2, 1), (2, 2), (4, 2), (3, 3)]),  # gpus, nodes
    st.integers(0, 2),  # spare slots per GPU beyond the fewest that fit
    st.integers(0, 2**16),
)


@settings(max_examples=40, deadline=None)
@given(shapes)
def test_random_rollouts_respect_capacity_and_score_as_the_evaluator(shape):
    experts, layers, (gpus, nodes), extra, seed = shape
    slots = -(-experts // gpus) + extra
    instances = random_instances(3, experts, layers, gpus, slots, seed, nodes)
    env = PlacementEnv()
    td = random_rollout(env, instances, seed)
    reward = env.get_reward(td, td["placement"])
    for b, inst in enumerate(instances):
        report = evaluate(inst, to_solution(td["placement"][b]))
        assert report.feasible, report.violations
        assert -float(reward[b]) == pytest.approx(report.objective, rel=1e-12, abs=1e-9)
        placed = [np.bincount(row, minlength=gpus) for row in td["placement"][b].numpy()]
        assert np.array_equal(td["count"][b].numpy(), np.stack(placed))
        assert np.allclose(td["gpu_load"][b].numpy(), report.gpu_load)


def test_generated_instances_and_the_family_objective_agree_with_the_ga_formula():
    instances = [generate_instance(8, 5, 4, 2, nodes=2, seed=s, tokens=512) for s in range(4)]
    env = PlacementEnv()
    td = random_rollout(env, instances, seed=1)
    for b, inst in enumerate(instances):
        solution = to_solution(td["placement"][b])
        enc = ga_slots.encode(inst, torch.device("cpu"))
        rows = torch.tensor(ga_slots.encode_solution(enc, solution))[None]
        expected = evaluate(inst, solution).objective
        assert float(objective(td)[b]) == pytest.approx(expected, rel=1e-12)
        assert float(ga_slots.objective(enc, rows).objective[0]) == pytest.approx(
            expected, rel=1e-12
        )


def test_experts_are_placed_layer_by_layer_heaviest_first():
    inst = PlacementInstance([[1, 5, 5, 3], [9, 0, 2, 4]], np.ones((1, 4, 4)), gpus=2)
    env = PlacementEnv()
    td = env.reset(to_tensordict([inst]))
    seen = []
    while not td["done"].all():
        layer, expert = current(td)
        seen.append((int(layer[0]), int(expert[0])))
        td.set("action", td["action_mask"].long().argmax(-1))
        td = env.step(td)["next"]
    assert seen == [(0, 1), (0, 2), (0, 3), (0, 0), (1, 0), (1, 3), (1, 2), (1, 1)]


def test_instances_round_trip_through_the_tensordict():
    inst = random_instances(1, 5, 3, 4, 2, seed=7, nodes=2)[0]
    td = to_tensordict([inst])
    assert np.array_equal(td["loads"][0].numpy(), inst.loads)
    assert np.array_equal(td["flows"][0].numpy(), inst.flows)
    assert np.array_equal(td["hop"][0].numpy(), inst.hop)
    assert float(td["comm_weight"][0]) == inst.comm_weight and int(td["slots"][0]) == 2
    array = np.array([[0, 1, 2, 3, 0], [1, 1, 0, 2, 3], [3, 2, 1, 0, 0]])
    assert np.array_equal(to_solution(torch.tensor(array)).as_array(), array)


def test_a_batch_of_mixed_shapes_is_refused_in_one_line():
    one = random_instances(1, 4, 2, 2, 2, seed=1)[0]
    other = random_instances(1, 6, 2, 2, 3, seed=1)[0]
    with pytest.raises(ValueError, match=r"one shape .* got 2x4x2x1x2, 2x6x2x1x3$"):
        to_tensordict([one, other])
    with pytest.raises(ValueError, match="no instances"):
        to_tensordict([])


def test_the_generator_draws_a_new_model_per_instance():
    generator = PlacementGenerator(8, 3, 4, 2, seed=5, tokens=256)
    td = generator(3)
    assert td["loads"].shape == (3, 3, 8) and td["flows"].shape == (3, 2, 8, 8)
    assert not torch.equal(td["loads"][0], td["loads"][1])
    again = PlacementGenerator(8, 3, 4, 2, seed=5, tokens=256)(3)
    assert torch.equal(td["loads"], again["loads"])
