"""The contacts environment: greedy's placement, exact incremental fits, rewards equal to
the evaluator's on padded batches, conversions and the training generator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rota
from rota.data.contacts import generate_contacts
from rota.envs.contacts import (
    ContactsEnv,
    ContactsGenerator,
    prepare,
    replay,
    to_solution,
    week_slice,
)
from rota.solvers.contacts.encoding import encode
from rota.solvers.contacts.greedy import construct, priority_order
from tests.conftest import instance_file
from tests.problems.contacts_cases import network, tiny


def week_subset() -> rota.ContactInstance:
    return rota.read(instance_file("W10_2018_2days.json"))


@pytest.mark.parametrize("make", [tiny, network, week_subset, lambda: generate_contacts(80, 3)])
def test_greedys_order_replays_to_greedys_schedule(make):
    inst = make()
    enc = encode(inst)
    rollout = replay(inst, priority_order(inst, enc))
    assert set(rollout.solution().tracks) == set(construct(inst, enc).tracks)
    assert rollout.objective == pytest.approx(rota.solve(inst, solver="greedy").objective)


def random_rollout(env: ContactsEnv, instances: list, seed: int):
    td = env.reset(env.load(instances))
    rng = np.random.default_rng(seed)
    steps = []
    while not td["done"].all():
        mask = td["action_mask"]
        assert not (mask & ~td["request_valid"]).any(), "a padded request was allowed"
        weights = mask.double() * torch.as_tensor(rng.random(mask.shape))
        action = weights.argmax(-1)
        steps.append(action)
        td.set("action", action)
        td = env.step(td)["next"]
    return td, torch.stack(steps, 1)


def test_random_rollouts_of_a_padded_batch_score_what_the_evaluator_says():
    instances = [tiny(), network(), week_subset(), generate_contacts(60, seed=5)]
    env = ContactsEnv()
    td, actions = random_rollout(env, instances, seed=0)
    assert td["request_features"].shape[1] == max(i.num_requests for i in instances)
    reward = env.get_reward(td, actions)
    for row, (inst, solution) in enumerate(zip(instances, env.solutions(td), strict=True)):
        report = rota.evaluate(inst, solution)
        assert report.feasible, report.violations
        assert float(td["objective"][row]) == pytest.approx(report.objective, rel=1e-12)
        assert float(reward[row]) == pytest.approx(report.objective, rel=1e-6)
        # the actions alone rebuild the schedule
        assert to_solution(inst, actions[row].tolist()) == solution
        # and nothing more fits: a finished schedule is maximal for greedy's rule
        assert replay(inst, [*actions[row].tolist(), *range(inst.num_requests)]).solution() == (
            solution
        )


def test_incremental_fits_equal_fits_from_scratch():
    inst = generate_contacts(150, seed=2)
    prepared = prepare(inst)
    decoder = prepared.decoder
    rollout = replay(prepared, [])
    rng = np.random.default_rng(1)
    while rollout.fit.any():
        rollout.take(int(rng.choice(np.flatnonzero(rollout.fit))))
        placed = {r for r, _ in rollout.placed}
        for r in range(inst.num_requests):
            expected = None if r in placed else decoder.fit(rollout.timelines, r, 0, math.inf)
            assert rollout.fits[r] == expected


def test_a_request_that_fits_nowhere_is_refused():
    inst = tiny()
    rollout = replay(inst, [0])
    with pytest.raises(ValueError, match="request 0 fits nowhere or is already scheduled"):
        rollout.take(0)


def test_the_generator_slices_only_its_weeks_and_is_seeded():
    week = week_subset()
    a = ContactsGenerator([week], requests=60, generated=0.0, seed=3).draw(4)
    b = ContactsGenerator([week], requests=60, generated=0.0, seed=3).draw(4)
    ids = {r.id for r in week.requests}
    for x, y in zip(a, b, strict=True):
        assert [r.id for r in x.requests] == [r.id for r in y.requests]
        assert x.num_requests <= 60 and {r.id for r in x.requests} <= ids
    made = ContactsGenerator(requests=60, seed=0).draw(3)
    assert all(36 <= m.num_requests <= 60 for m in made)
    with pytest.raises(ValueError, match="requests is 10"):
        ContactsGenerator(requests=10)


def test_a_slice_is_the_week_shifted_in_time():
    week = week_subset()
    piece = week_slice(week, np.random.default_rng(0), 500, (30.0, 30.0))
    assert piece.num_requests == week.num_requests  # the whole week, shifted
    shift = piece.requests[0].window[0] - week.requests[0].window[0]
    assert shift > 0
    greedy, moved = (rota.solve(i, solver="greedy") for i in (week, piece))
    assert moved.objective == pytest.approx(greedy.objective)
    assert {(t.request, t.start + shift) for t in greedy.solution.tracks} == {
        (t.request, t.start) for t in moved.solution.tracks
    }
