"""The contacts ``ga``: its decoder (redecoding is exact) and the search (feasible, seeded,
never worse than greedy or a start, deterministic, optimal on tiny cases, fuzzy fitness)."""

from __future__ import annotations

import numpy as np
import pytest

import rota
from rota.data.contacts import generate_contacts
from rota.problems.contacts import ContactInstance
from rota.solvers.contacts.decoder import Decoder
from rota.solvers.contacts.encoding import encode
from rota.solvers.contacts.greedy import construct, priority_order
from tests.conftest import instance_file
from tests.problems.contacts_cases import TINY_OPTIMUM, network, tiny
from tests.solvers.test_contacts_solvers import brute_force, random_tiny


def week_subset() -> ContactInstance:
    return rota.read(instance_file("W10_2018_2days.json"))


def priority_keys(instance: ContactInstance) -> list[int]:
    n = instance.num_requests
    keys = [0] * n
    for rank, r in enumerate(priority_order(instance, encode(instance))):
        keys[r] = rank * n + r
    return keys


@pytest.mark.parametrize("make", [tiny, network, week_subset])
def test_priority_keys_in_mode_0_decode_to_greedys_schedule(make):
    inst = make()
    enc = encode(inst)
    decoder = Decoder(inst, enc)
    built = decoder.decode(priority_keys(inst), [0] * inst.num_requests)
    assert set(decoder.solution(built).tracks) == set(construct(inst, enc).tracks)


@pytest.mark.parametrize(
    ("make", "refit_share"),
    [(week_subset, 1.0), (lambda: generate_contacts(300, seed=3), 0.2)],
)
def test_redecoding_a_child_builds_what_decoding_it_from_scratch_builds(make, refit_share):
    inst = make()
    decoder = Decoder(inst, encode(inst))
    n = inst.num_requests
    rng = np.random.default_rng(0)
    keys, modes = priority_keys(inst), [int(m) for m in rng.integers(2, size=n)]
    parent = decoder.decode(keys, modes)
    refits = []
    for _ in range(40):
        child_keys, child_modes, changed = list(keys), list(modes), set()
        for _ in range(int(rng.integers(1, 6))):
            r = int(rng.integers(n))
            changed.add(r)
            if rng.random() < 0.3:
                child_modes[r] = 1 - child_modes[r]
            else:  # to anywhere in the order, earlier or later
                child_keys[r] = int(rng.integers(-2, n + 2)) * n + r
        child, fitted = decoder.redecode(parent, keys, child_keys, child_modes, sorted(changed))
        scratch = decoder.decode(child_keys, child_modes)
        assert child.placed == scratch.placed and child.value == scratch.value
        refits.append(fitted)
    # on a week of 300 requests it refits a small part of the schedule, not all of it
    assert np.mean(refits) <= refit_share * n


@pytest.fixture(scope="module")
def results() -> dict[str, tuple[ContactInstance, rota.Result]]:
    instances = {"tiny": tiny(), "network": network(), "value": network("value"),
                 "week": week_subset(), "generated": generate_contacts(200, seed=4)}  # fmt: skip
    return {
        name: (inst, rota.solve(inst, solver="ga", stop={"iterations": 15}, seed=1))
        for name, inst in instances.items()
    }


@pytest.mark.parametrize("name", ["tiny", "network", "value", "week", "generated"])
def test_schedules_are_feasible_and_the_ga_objective_is_the_evaluators(results, name):
    inst, result = results[name]
    assert result.status is rota.Status.FEASIBLE and result.bound is None
    report = rota.evaluate(inst, result.solution)
    assert report.feasible, report.violations
    # the objective is the decoder's, in scaled units; finish() checked the schedule
    assert result.objective == pytest.approx(report.objective, rel=1e-9, abs=1e-9)
    assert result.stats["decodes"] > 0 and result.stats["estimated"] == 0


@pytest.mark.parametrize("name", ["network", "week", "generated"])
def test_never_worse_than_greedy(results, name):
    inst, result = results[name]
    greedy = rota.solve(inst, solver="greedy").objective
    assert result.stats["greedy_objective"] == pytest.approx(greedy, rel=1e-9)
    assert result.objective >= greedy - 1e-9


def test_it_improves_on_greedy_where_greedy_is_far_from_the_optimum(results):
    inst, result = results["generated"]
    assert result.objective > 1.05 * result.stats["greedy_objective"]


def test_same_seed_and_iterations_give_the_same_schedule():
    inst = generate_contacts(150, seed=9)
    runs = [rota.solve(inst, solver="ga", stop={"iterations": 8}, seed=s) for s in (3, 3, 4)]
    assert runs[0].objective == runs[1].objective
    assert runs[0].solution == runs[1].solution
    assert runs[0].stats["stopped_by"] == "iterations" and runs[0].stats["generations"] == 8
    assert runs[2].solution != runs[0].solution  # the seed drives the search


def test_it_reaches_the_brute_forced_optimum_of_tiny():
    result = rota.solve(tiny(), solver="ga", stop={"iterations": 30}, seed=0)
    assert result.objective * 3600 == pytest.approx(TINY_OPTIMUM)
    assert result.stats["greedy_objective"] * 3600 < TINY_OPTIMUM


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])  # 2: only a late placement reaches it
def test_it_reaches_brute_forced_optima_of_random_tiny_instances(seed):
    inst = random_tiny(seed)
    optimum = brute_force(inst)
    result = rota.solve(inst, solver="ga", stop={"iterations": 30}, seed=0)
    assert result.objective == pytest.approx(optimum, abs=1e-12)


def test_fuzzy_fitness_saves_decodes_and_stays_feasible():
    inst = generate_contacts(200, seed=4)
    stop = {"iterations": 40}
    plain = rota.solve(inst, solver="ga", stop=stop, seed=2, offspring=30)
    fuzzy = rota.solve(inst, solver="ga", stop=stop, seed=2, offspring=30, fuzzy=True)
    assert fuzzy.evaluation.feasible and fuzzy.stats["fuzzy"]
    assert fuzzy.stats["estimated"] > 0
    assert fuzzy.stats["decodes"] < plain.stats["decodes"]
    for run in (plain, fuzzy):  # 40 generations of 30 children, each decoded or estimated
        children = run.stats["decodes"] - run.stats["seeded"] + run.stats["estimated"]
        assert 0.9 * 40 * 30 <= children <= 40 * 30
    assert fuzzy.objective >= fuzzy.stats["greedy_objective"]


def test_warm_starts_are_never_worsened():
    inst = random_tiny(2)  # its optimum needs a late placement: its start order decodes worse
    best = rota.solve(inst, solver="cpsat", time_limit=5)
    again = rota.solve(inst, solver="ga", stop={"iterations": 1}, warm_start=best,
                       population=2, offspring=1)  # fmt: skip
    assert again.objective == pytest.approx(best.objective) and again.evaluation.feasible
    assert again.stats["greedy_objective"] < best.objective
    assert again.stats["solution_from"] == "warm start (the ga found nothing better)"


def test_a_time_limit_stops_it():
    result = rota.solve(week_subset(), solver="ga", time_limit=0.5, seed=0)
    assert result.stats["stopped_by"] == "time" and result.runtime < 1.5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"population": 1}, "ga option population=1 must be an integer >= 2"),
        ({"offspring": 0}, "ga option offspring=0 must be an integer >= 1"),
        ({"population": 2.5}, "ga option population=2.5 must be an integer >= 2"),
        ({"fuzzy": "yes"}, "ga option fuzzy='yes' must be True or False"),
        ({"speed": 3}, "ga: unknown option 'speed'; valid options: population, offspring, fuzzy"),
    ],
)
def test_bad_options_are_refused_in_one_line(options, message):
    with pytest.raises(ValueError) as caught:
        rota.solve(tiny(), solver="ga", time_limit=1, **options)
    assert str(caught.value) == message
