"""The contact-scheduling solvers: feasible schedules, honest statuses and bounds, starts, stops."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

import rota
from rota.data.contacts import generate_contacts
from rota.problems.contacts import (
    Antenna,
    ContactInstance,
    ContactSolution,
    Request,
    Resource,
    Track,
    evaluate,
)
from rota.solvers.contacts.encoding import compulsory_cliques, encode
from rota.solvers.contacts.greedy import longest_tracks_bound
from rota.solvers.contacts.milp import MAX_OPTIONS
from tests.conftest import instance_file
from tests.problems.contacts_cases import TINY_GREEDY, TINY_OPTIMUM, network, tiny

SOLVERS = ("greedy", "cpsat", "milp")


def brute_force(instance: ContactInstance) -> float:
    """The optimum of a tiny integral instance, by trying every integral placement.

    With integral data some optimal schedule has integral starts and lengths:
    for a fixed choice and order of tracks, the constraints are differences
    of starts and ends bounded by integers.
    """
    choices = []
    for r in instance.requests:
        placements: list[Track | None] = [None]
        for res in r.resources:
            for a, b in res.view_periods:
                for start, length in itertools.product(
                    range(int(a), int(b) + 1), range(int(r.min_duration), int(r.duration) + 1)
                ):
                    if start + length <= b:
                        placements.append(Track(r.id, res.name, start, start + length))
        choices.append(placements)
    best = -math.inf

    def extend(k: int, tracks: tuple[Track, ...]) -> None:
        nonlocal best
        report = evaluate(instance, ContactSolution(tracks))
        if not report.feasible:  # adding tracks never repairs a schedule
            return
        if k == len(choices):
            best = max(best, report.objective)
            return
        for track in choices[k]:
            extend(k + 1, tracks if track is None else (*tracks, track))

    extend(0, ())
    return best


def week_subset() -> ContactInstance:
    return rota.read(instance_file("W10_2018_2days.json"))


@pytest.fixture(scope="module")
def results() -> dict[tuple[str, str], rota.Result]:
    """One short solve per (solver, instance), shared by the checks below."""
    instances = {"tiny": tiny(), "network": network(), "week": week_subset(),
                 "generated": generate_contacts(50, seed=4)}  # fmt: skip
    return {
        (solver, name): rota.solve(inst, solver=solver, time_limit=2, seed=1)
        for solver in SOLVERS
        for name, inst in instances.items()
    }


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", ["tiny", "network", "week", "generated"])
def test_schedules_are_feasible_and_objectives_match_the_evaluator(results, solver, name):
    result = results[(solver, name)]
    assert result.status.has_solution, result.stats
    assert result.evaluation.feasible
    inst = {"tiny": tiny, "network": network, "week": week_subset,
            "generated": lambda: generate_contacts(50, seed=4)}[name]()  # fmt: skip
    report = rota.evaluate(inst, result.solution)
    assert report.feasible, report.violations
    assert result.objective == pytest.approx(report.objective, rel=1e-9, abs=1e-9)
    if result.bound is not None:
        assert result.bound >= result.objective - 1e-9  # an upper bound when maximising


def test_the_brute_forced_optimum_is_proven_by_cpsat_and_milp(results):
    optimum = brute_force(tiny()) * 3600  # seconds of tracks
    assert optimum == TINY_OPTIMUM
    greedy = results[("greedy", "tiny")]
    assert greedy.objective * 3600 == pytest.approx(TINY_GREEDY)
    for solver in ("cpsat", "milp"):
        result = results[(solver, "tiny")]
        assert result.status is rota.Status.OPTIMAL, (solver, result.stats)
        assert result.objective * 3600 == pytest.approx(optimum)
        assert result.bound * 3600 == pytest.approx(optimum)


def test_exact_solvers_are_never_worse_than_greedy_from_its_start(results):
    for name in ("network", "week", "generated"):
        greedy = results[("greedy", name)].objective
        for solver in ("cpsat", "milp"):
            assert results[(solver, name)].objective >= greedy - 1e-9


def test_a_time_limit_is_no_proof():
    inst = week_subset()
    result = rota.solve(inst, solver="cpsat", time_limit=0.5)
    assert result.status is rota.Status.FEASIBLE  # the subset takes CP-SAT far longer to prove
    assert result.runtime < 1.5
    assert result.bound is not None and result.bound > result.objective


def test_value_objective_is_proven_too():
    inst = network("value")
    exact = rota.solve(inst, solver="cpsat", time_limit=5)
    assert exact.status is rota.Status.OPTIMAL
    # all three fit (b on DSS-54 after 8 h): values 2 + 5 + 1
    assert exact.objective == 8.0 and exact.bound == 8.0
    assert rota.solve(inst, solver="milp", time_limit=5).objective == 8.0


@pytest.mark.parametrize("solver", SOLVERS)
def test_warm_starts_are_never_worsened(solver):
    inst = tiny()
    best = rota.solve(inst, solver="cpsat", time_limit=5)
    again = rota.solve(inst, solver=solver, time_limit=1, warm_start=best)
    assert again.objective == pytest.approx(best.objective)
    assert again.evaluation.feasible


def test_greedy_keeps_a_feasible_start_and_adds_to_it():
    inst = tiny()
    start = ContactSolution((Track("r3", "B", 0, 3),))
    result = rota.solve(inst, solver="greedy", warm_start=start)
    assert Track("r3", "B", 0, 3) in result.solution.tracks
    assert result.stats["kept_from_warm_start"] == 1
    assert result.objective * 3600 > 3


def test_an_infeasible_start_only_guides_cpsat():
    inst = tiny()
    clash = ContactSolution((Track("r1", "A", 0, 4), Track("r2", "A", 2, 5)))
    assert not rota.evaluate(inst, clash).feasible
    result = rota.solve(inst, solver="cpsat", time_limit=5, warm_start=clash)
    assert result.status is rota.Status.OPTIMAL and result.evaluation.feasible
    with pytest.raises(ValueError, match="unknown request 'zz'"):
        rota.solve(inst, solver="cpsat", warm_start=ContactSolution((Track("zz", "A", 0, 1),)))


def test_cpsat_stops_on_a_target_and_counts_improving_schedules():
    inst = week_subset()
    greedy = rota.solve(inst, solver="greedy").objective
    result = rota.solve(inst, solver="cpsat", stop={"target": greedy, "time": 10})
    assert result.stats["stopped_by"] == "target" and result.runtime < 10
    assert result.objective >= greedy


def test_milp_honours_only_its_time_limit():
    with pytest.raises(rota.UnsupportedError, match="milp cannot stop on target"):
        rota.solve(tiny(), solver="milp", stop={"target": 1.0, "time": 1})


def test_milp_refuses_large_instances_with_the_reason():
    big = generate_contacts(1000, seed=0)
    assert len(encode(big).options) > MAX_OPTIONS
    info = {i.name: i for i in rota.list_solvers(big)}
    assert info["milp"].supports is False and "candidate intervals" in info["milp"].reason
    assert info["cpsat"].supports and info["greedy"].supports
    with pytest.raises(rota.UnsupportedInstanceError, match="use cpsat or greedy"):
        rota.solve(big, solver="milp", time_limit=1)


def test_cpsat_refuses_more_options_than_it_builds(monkeypatch):
    monkeypatch.setattr("rota.solvers.contacts.cpsat.MAX_OPTIONS", 10)
    with pytest.raises(rota.UnsupportedInstanceError, match="candidate intervals \\(limit 10\\)"):
        rota.solve(week_subset(), solver="cpsat", time_limit=1)


def test_milp_with_highs():
    result = rota.solve(tiny(), solver="milp", time_limit=5, backend="highs")
    assert result.status is rota.Status.OPTIMAL and result.objective * 3600 == TINY_OPTIMUM


def test_inexact_times_give_feasible_schedules_but_no_proof():
    third = 1 / 3
    inst = ContactInstance(
        (Antenna("A"),),
        (
            Request(
                "p", "m", 2 + third, 1 + third, (third, 10), (Resource(("A",), ((third, 6),)),)
            ),
            Request("q", "n", 2, 2, (0, 10), (Resource(("A",), ((0, 10),)),), setup=third),
        ),
    )
    assert not encode(inst).exact
    result = rota.solve(inst, solver="cpsat", time_limit=2)
    assert result.status is rota.Status.FEASIBLE and result.bound is None
    assert result.evaluation.feasible and result.evaluation.satisfied == 2


def test_same_seed_same_greedy_schedule():
    inst = generate_contacts(100, seed=2)
    a = rota.solve(inst, solver="greedy", seed=1)
    b = rota.solve(inst, solver="greedy", seed=7)
    assert a.solution == b.solution


def test_solver_options_are_checked():
    with pytest.raises(ValueError, match="num_workers=0"):
        rota.solve(tiny(), solver="cpsat", num_workers=0)
    with pytest.raises(ValueError, match="unknown option 'speed'"):
        rota.solve(tiny(), solver="cpsat", speed=3)
    started = time.perf_counter()
    result = rota.solve(tiny(), solver="cpsat", num_workers=1, greedy_start=False, time_limit=5)
    assert result.status is rota.Status.OPTIMAL and time.perf_counter() - started < 5


def random_tiny(seed: int) -> ContactInstance:
    """Three or four requests on two antennas (and their array), integral seconds up to 14."""
    rng = np.random.default_rng(seed)
    requests = []
    for k in range(int(rng.integers(3, 5))):
        duration = int(rng.integers(2, 5))
        minimum = int(rng.integers(1, duration + 1))
        resources = []
        for antennas in (("A",), ("B",), ("A", "B")):
            if rng.random() < 0.6:
                a = int(rng.integers(0, 9))
                resources.append(Resource(antennas, ((a, a + int(rng.integers(duration, 7))),)))
        requests.append(
            Request(f"r{k}", f"m{int(rng.integers(2))}", duration, minimum, (0, 15),
                    tuple(resources) or (Resource(("A",), ((0, 15),)),),
                    setup=int(rng.integers(0, 2)), teardown=int(rng.integers(0, 2)))
        )  # fmt: skip
    maintenance = ((int(rng.integers(0, 12)), 15),) if rng.random() < 0.5 else ()
    return ContactInstance((Antenna("A"), Antenna("B", maintenance=maintenance)),
                           tuple(requests), mode_switch=int(rng.integers(0, 2)))  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 21])  # 21: no request fits anywhere
def test_cpsat_and_milp_prove_brute_forced_optima_of_random_tiny_instances(seed):
    inst = random_tiny(seed)
    optimum = brute_force(inst)
    for solver in ("cpsat", "milp"):
        result = rota.solve(inst, solver=solver, time_limit=10)
        assert result.status is rota.Status.OPTIMAL, (solver, result.stats)
        assert result.objective == pytest.approx(optimum, abs=1e-12), solver


def test_compulsory_parts_exclude_each_other():
    inst = ContactInstance(
        (Antenna("A"),),
        (
            Request("r1", "m1", 4, 4, (0, 20), (Resource(("A",), ((0, 5),)),), teardown=1),
            Request("r2", "m2", 3, 3, (0, 20), (Resource(("A",), ((5, 8),)),), setup=1),
            Request("r3", "m3", 2, 2, (0, 20), (Resource(("A",), ((10, 20),)),)),
        ),
    )
    # r1's antenna is surely busy over [1, 5) with its teardown, r2's over [4, 8) with its setup
    assert compulsory_cliques(encode(inst)) == [[0, 1]]
    assert rota.solve(inst, solver="cpsat", time_limit=5).evaluation.satisfied == 2


def test_the_bound_is_never_above_every_request_at_its_longest():
    inst = week_subset()
    ceiling = longest_tracks_bound(inst, encode(inst))
    assert ceiling < inst.requested_hours  # some view periods are shorter than the request
    quick = rota.solve(inst, solver="cpsat", time_limit=0.05, greedy_start=False)
    assert quick.bound == pytest.approx(ceiling) and quick.stats["bound_from"] == "longest tracks"
    longer = rota.solve(inst, solver="cpsat", time_limit=1)
    assert longer.objective <= longer.bound <= ceiling + 1e-9
