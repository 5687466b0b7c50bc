"""The contacts ``neural`` solver: feasible schedules through the evaluator, batches, the
greedy floor said in stats, seeds, stops and time limits, options and model files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rota
from rota.data.contacts import generate_contacts
from rota.models.contacts import ContactsConfig, ContactsPolicy, save_model
from rota.solvers.contacts.neural import shipped_model
from tests.conftest import instance_file
from tests.problems.contacts_cases import network, tiny


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> str:
    """An untrained small policy: the solver's contract does not depend on training."""
    torch.manual_seed(0)
    config = ContactsConfig(embed_dim=16, num_layers=1, num_heads=2, ff_hidden=32, train_samples=2)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(path, ContactsPolicy(config).eval(), {"runs": []})
    return str(path)


def instances() -> dict[str, rota.ContactInstance]:
    return {"tiny": tiny(), "network": network(), "value": network("value"),
            "week": rota.read(instance_file("W10_2018_2days.json")),
            "generated": generate_contacts(80, seed=4)}  # fmt: skip


@pytest.mark.parametrize("floor", [True, False])
def test_schedules_are_feasible_and_objectives_match_the_evaluator(model_file, floor):
    cases = instances()
    results = rota.solve(list(cases.values()), solver="neural", model=model_file, samples=16,
                         greedy_floor=floor, time_limit=5, seed=1)  # fmt: skip
    for (name, inst), result in zip(cases.items(), results, strict=True):
        assert result.status is rota.Status.FEASIBLE and result.bound is None, name
        report = rota.evaluate(inst, result.solution)
        assert report.feasible, (name, report.violations)
        assert result.objective == pytest.approx(report.objective, rel=1e-9, abs=1e-9)
        stats = result.stats
        assert stats["batch"] == len(cases) and stats["rollouts"] == 17
        if floor:
            greedy = rota.solve(inst, solver="greedy").objective
            assert result.objective >= greedy - 1e-9
            assert stats["greedy_objective"] == pytest.approx(greedy)
            assert (stats["solution_from"] == "greedy (better than the policy's)") == (
                greedy > stats["policy_objective"] + 1e-9
            )
        else:
            assert "greedy_objective" not in stats
            assert result.objective == pytest.approx(stats["policy_objective"])


def test_same_seed_same_schedule_and_a_stop_on_iterations(model_file):
    inst = generate_contacts(80, seed=5)
    a, b = (rota.solve(inst, solver="neural", model=model_file, seed=3, greedy_floor=False,
                       samples=16, time_limit=10) for _ in range(2))  # fmt: skip
    assert a.solution == b.solution
    once = rota.solve(inst, solver="neural", model=model_file, stop={"iterations": 1})
    assert once.stats["rollouts"] == 1 and once.stats["stop_iterations"] == 1
    greedy = rota.solve(inst, solver="neural", model=model_file, decoding="greedy", time_limit=5)
    assert greedy.stats["rollouts"] == 1 and greedy.stats["stop_iterations"] == 1


def test_the_time_limit_is_kept(model_file):
    inst = rota.read(instance_file("W10_2018_2days.json"))
    result = rota.solve(inst, solver="neural", model=model_file, samples=100_000, time_limit=3.0)
    assert result.runtime < 3.5
    assert 1 < result.stats["rollouts"] < 100_001 and result.stats["stopped_by"] == "time"


def test_options_and_model_files_are_checked(model_file, tmp_path: Path):
    inst = tiny()
    with pytest.raises(ValueError, match="decoding='beam'"):
        rota.solve(inst, solver="neural", model=model_file, decoding="beam")
    with pytest.raises(ValueError, match="samples=0"):
        rota.solve(inst, solver="neural", model=model_file, samples=0)
    with pytest.raises(ValueError, match="unknown option 'speed'"):
        rota.solve(inst, solver="neural", speed=1)
    with pytest.raises(rota.UnsupportedError):
        rota.solve(inst, solver="neural", model=model_file, warm_start=rota.solve(inst).solution)
    missing = str(tmp_path / "none.pt")
    info = {i.name: i for i in rota.list_solvers(inst)}
    assert info["neural"].available
    with pytest.raises(Exception, match="none.pt: no such model file"):
        rota.solve(inst, solver="neural", model=missing)


@pytest.mark.skipif(shipped_model() is None, reason="no shipped contacts model")
def test_the_shipped_model_loads_and_schedules():
    inst = rota.read(instance_file("W10_2018_2days.json"))
    result = rota.solve(inst, solver="neural", decoding="greedy", greedy_floor=False)
    assert result.evaluation.feasible and result.stats["model"] == str(shipped_model())


def test_a_rollout_cut_short_by_the_time_limit_finishes_in_greedys_order(model_file):
    """At a time limit already spent, the policy chooses nothing: the requests are all taken
    in greedy's order, so the schedule is greedy's, complete and feasible."""
    inst = generate_contacts(120, seed=6)
    result = rota.solve(inst, solver="neural", model=model_file, greedy_floor=False,
                        time_limit=1e-6, seed=0)  # fmt: skip
    greedy = rota.solve(inst, solver="greedy", seed=0)
    assert "cut short by the time limit" in result.stats["solution_from"]
    assert result.evaluation.feasible
    assert result.objective == pytest.approx(greedy.objective, rel=1e-12)
