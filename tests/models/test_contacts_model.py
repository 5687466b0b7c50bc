"""The contacts policy: rollouts scored as the evaluator scores them, decodings, model files,
and the trainer (`rota train --problem contacts`) end to end on a tiny budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rota
from rota.data.contacts import generate_contacts
from rota.envs.contacts import ContactsEnv, to_solution
from rota.errors import FormatError
from rota.models.checkpoint import write_model_file
from rota.models.contacts import (
    ContactsConfig,
    ContactsModel,
    ContactsPolicy,
    decode,
    load_model,
    save_model,
)
from rota.models.training import RunSpec
from tests.conftest import instance_file
from tests.problems.contacts_cases import network, tiny

SMALL = ContactsConfig(embed_dim=16, num_layers=1, num_heads=2, ff_hidden=32, train_samples=3)


def batch() -> list[rota.ContactInstance]:
    return [tiny(), network(), rota.read(instance_file("W10_2018_2days.json"))]


def test_sampled_rollouts_have_shared_baseline_shapes_and_evaluator_rewards():
    torch.manual_seed(0)
    instances = batch()
    env = ContactsEnv()
    policy = ContactsPolicy(SMALL)
    out = policy(env.reset(env.load(instances)), env, phase="train", return_actions=True)
    assert out["reward"].shape == out["log_likelihood"].shape == (3, 3)
    assert (out["log_likelihood"] <= 0).all() and out["log_likelihood"].requires_grad
    actions = out["actions"]
    for b, inst in enumerate(instances):
        for k in range(3):
            solution = to_solution(inst, actions[k * 3 + b].tolist())
            report = rota.evaluate(inst, solution)
            assert report.feasible
            assert float(out["objective"][b, k]) == pytest.approx(report.objective, rel=1e-12)
            assert float(out["reward"][b, k]) == pytest.approx(report.objective, rel=1e-6)
    best = policy(env.reset(env.load(instances)), env, phase="val", decode_type="sampling",
                  num_samples=3, select_best=True)  # fmt: skip
    assert best["reward"].shape == (3,)
    assert torch.equal(best["reward"], best["max_reward"])


def test_decodings_and_their_best(tmp_path: Path):
    model = ContactsModel(ContactsPolicy(SMALL).eval(), SMALL, {}, "memory")
    instances = [*batch(), generate_contacts(60, seed=1)]
    greedy = decode(model, instances, "greedy")
    sampled = decode(model, instances, "sampling", samples=20, chunk=8, seed=3)
    again = decode(model, instances, "sampling", samples=20, chunk=8, seed=3)
    for inst, g, s, a in zip(instances, greedy, sampled, again, strict=True):
        assert g.rollouts == 1 and s.rollouts == 21  # the greedy rollout and 20 samples
        assert s.objective >= g.objective  # the greedy rollout is among the candidates
        assert s.solution == a.solution  # seeded
        assert rota.evaluate(inst, s.solution).objective == pytest.approx(s.objective, rel=1e-12)
    asked = []
    stopped = decode(model, instances[:1], "sampling", samples=100, chunk=8,
                     keep_going=lambda: len(asked) < 2 and not asked.append(1))  # fmt: skip
    assert stopped[0].rollouts == 1 + 2 * 8


def test_model_files_round_trip_and_refuse_other_files(tmp_path: Path):
    policy = ContactsPolicy(SMALL).eval()
    path = tmp_path / "m.pt"
    save_model(path, policy, {"runs": []})
    loaded = load_model(path)
    assert loaded.config == SMALL
    for name, tensor in policy.state_dict().items():
        assert torch.equal(tensor, loaded.policy.state_dict()[name])
    routing = tmp_path / "routing.pt"
    write_model_file(routing, "cvrp", {"config": {}, "state_dict": {}})
    with pytest.raises(FormatError, match="problem is 'cvrp', expected one of contacts"):
        load_model(routing)
    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    with pytest.raises(FormatError, match="not a rota model file"):
        load_model(text)
    with pytest.raises(ValueError, match="'embed_dim' \\(10\\) must be a multiple"):
        ContactsConfig(embed_dim=10, num_heads=4)


def test_the_trainer_trains_exports_writes_its_card_and_resumes(tmp_path: Path):
    from rota.models.train_contacts import train

    week = str(instance_file("W10_2018_2days.json"))
    options = {"requests": 50, "samples": 2, "embed_dim": 16, "num_layers": 1, "num_heads": 2,
               "ff_hidden": 16, "reference_time": 0.1, "train_weeks": week}  # fmt: skip
    run = RunSpec(out=tmp_path, max_time=2.0, device="cpu", batch_size=2, epoch_size=4,
                  val_size=2, lr=1e-3, threads=1, command="first")  # fmt: skip
    record = train(run, options)
    assert record["steps"] > 0 and set(record["validation"]) == {"greedy", "sampling 16 (best)"}
    assert record["reference"] == "ga at 0.1 s per instance"
    assert (tmp_path / "validation.json").is_file() and (tmp_path / "card.md").is_file()
    assert "W10_2018_2days.json" in (tmp_path / "card.md").read_text()
    model = load_model(tmp_path / "model.pt")
    assert model.config.embed_dim == 16 and model.training["steps"] == record["steps"]
    resumed = RunSpec(out=tmp_path, max_time=2.0, device="cpu", batch_size=2, epoch_size=4,
                      val_size=2, lr=1e-3, threads=1, resume=True, command="second")  # fmt: skip
    again = train(resumed, options)
    assert [r["command"] for r in again["runs"]] == ["first", "second"]
    with pytest.raises(ValueError, match="unknown option 'speed'"):
        train(run, {"speed": 3})
    with pytest.raises(ValueError, match="train_weeks names 'nowhere.json', not a file"):
        train(run, {"train_weeks": "nowhere.json"})
