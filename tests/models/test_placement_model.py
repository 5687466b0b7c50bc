"""The learned placer: features, decoding, REINFORCE's calling convention, model files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rota.data.placement import generate_instance
from rota.envs.placement import PlacementEnv, to_solution, to_tensordict
from rota.errors import FormatError
from rota.models.placement import (
    PlacementModelConfig,
    PlacementPolicy,
    decode,
    features,
    load_model,
    save_model,
)
from rota.problems.placement import PlacementInstance, evaluate

TINY = PlacementModelConfig(hidden=8, blocks=1)


def instances(count: int = 3, experts: int = 8, layers: int = 3, gpus: int = 4, nodes: int = 2):
    return [
        generate_instance(experts, layers, gpus, 2, nodes=nodes, seed=s, tokens=256)
        for s in range(count)
    ]


def prior_only(config: PlacementModelConfig = TINY) -> PlacementPolicy:
    """A policy whose network adds nothing: it follows the greedy prior alone."""
    torch.manual_seed(0)
    policy = PlacementPolicy(config)
    torch.nn.init.zeros_(policy.head.weight)
    torch.nn.init.zeros_(policy.head.bias)
    return policy.eval()


def myopic_greedy(inst: PlacementInstance) -> np.ndarray:
    """Layer by layer, heaviest first, each expert where the objective grows least."""
    gpu = np.full((inst.num_layers, inst.num_experts), -1)
    for li in range(inst.num_layers):
        load = np.zeros(inst.gpus)
        count = np.zeros(inst.gpus, dtype=int)
        for e in np.argsort(-inst.loads[li], kind="stable"):
            grow = np.maximum(load + inst.loads[li, e] - load.max(), 0.0)
            if li:
                inflow = np.bincount(gpu[li - 1], weights=inst.flows[li - 1][:, e],
                                     minlength=inst.gpus)  # fmt: skip
                grow = grow + inst.comm_weight * inflow @ inst.hop
            grow[count >= inst.slots] = np.inf
            g = int(np.argmin(grow))
            gpu[li, e] = g
            load[g] += inst.loads[li, e]
            count[g] += 1
    return gpu


def test_the_untrained_prior_is_the_myopic_greedy():
    batch = instances()
    found = decode(prior_only(), batch, "greedy")
    for inst, best in zip(batch, found, strict=True):
        assert np.array_equal(best.placement, myopic_greedy(inst))
        assert best.objective == pytest.approx(
            evaluate(inst, to_solution(best.placement)).objective
        )


def test_features_are_finite_and_full_gpus_are_masked():
    inst = PlacementInstance(np.arange(1, 7).reshape(2, 3), np.ones((1, 3, 3)), gpus=3, slots=1)
    env = PlacementEnv()
    td = env.reset(to_tensordict([inst]))
    policy = prior_only()
    while not td["done"].all():
        x, increase = features(td)
        assert torch.isfinite(x).all() and torch.isfinite(increase).all()
        logits = policy.logits(td)
        assert torch.equal(torch.isfinite(logits), td["action_mask"])
        td.set("action", logits.argmax(-1))
        td = env.step(td)["next"]


def test_train_phase_returns_what_the_shared_baseline_needs():
    torch.manual_seed(1)
    policy = PlacementPolicy(TINY, train_samples=4)
    env = PlacementEnv()
    out = policy(env.reset(to_tensordict(instances(2))), env, phase="train")
    assert out["reward"].shape == (2, 4) and out["log_likelihood"].shape == (2, 4)
    advantage = out["reward"] - out["reward"].mean(1, keepdim=True)
    (-(advantage.float() * out["log_likelihood"]).mean()).backward()
    assert all(p.grad is not None for p in policy.parameters())


def test_decodings_keep_the_best_rollout_and_are_seeded():
    torch.manual_seed(2)
    policy = PlacementPolicy(TINY).eval()
    batch = instances()
    greedy = decode(policy, batch, "greedy")
    both = decode(policy, batch, "both", samples=6, seed=3, chunk=4)
    again = decode(policy, batch, "both", samples=6, seed=3, chunk=4)
    for inst, g, b, a in zip(batch, greedy, both, again, strict=True):
        assert b.objective <= g.objective + 1e-9 and b.rollouts == 7
        assert b.objective == pytest.approx(evaluate(inst, to_solution(b.placement)).objective)
        assert np.array_equal(b.placement, a.placement)
    first = decode(policy, batch, "both", samples=6, keep_going=lambda best: False)
    assert [d.rollouts for d in first] == [1, 1, 1]
    with pytest.raises(ValueError, match="decoding is 'beam'"):
        decode(policy, batch, "beam")


def test_one_policy_serves_every_shape():
    policy = prior_only()
    for shape in ((8, 4, 8, 1), (12, 2, 4, 2), (5, 3, 2, 1), (5, 1, 2, 1)):
        inst = instances(1, *shape)[0]
        (best,) = decode(policy, [inst], "greedy")
        assert evaluate(inst, to_solution(best.placement)).feasible


def test_model_files_round_trip_and_others_are_refused(tmp_path):
    torch.manual_seed(4)
    policy = PlacementPolicy(TINY).eval()
    path = tmp_path / "placement.pt"
    save_model(path, policy, TINY, {"steps": 3})
    model = load_model(path)
    assert model.config == TINY and model.training == {"steps": 3}
    env = PlacementEnv()
    td = env.reset(to_tensordict(instances(1)))
    assert torch.equal(model.policy.logits(td.clone()), policy.logits(td.clone()))
    from rota.models.checkpoint import write_model_file

    write_model_file(tmp_path / "cvrp.pt", "cvrp", {"nodes": 10})
    with pytest.raises(
        FormatError, match=r"cvrp.pt: problem is 'cvrp', expected one of placement$"
    ):
        load_model(tmp_path / "cvrp.pt")
    (tmp_path / "text.pt").write_text("not a model")
    with pytest.raises(FormatError, match="text.pt: not a rota model file"):
        load_model(tmp_path / "text.pt")
    write_model_file(tmp_path / "broken.pt", "placement", {"config": {"hidden": 0}})
    with pytest.raises(FormatError, match="model does not load .*hidden must be a positive"):
        load_model(tmp_path / "broken.pt")


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match="blocks must be a positive integer, got 0"):
        PlacementModelConfig(blocks=0)
