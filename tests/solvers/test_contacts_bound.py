"""The capacity LP bound of contact schedules: valid, and tight where capacity binds."""

from __future__ import annotations

import pytest

import rota
from rota.problems.contacts import Antenna, ContactInstance, Request, Resource
from rota.solvers.contacts.bound import capacity_bound
from rota.solvers.contacts.encoding import encode
from rota.solvers.contacts.greedy import longest_tracks_bound
from tests.conftest import instance_file
from tests.problems.contacts_cases import TINY_OPTIMUM, network, tiny
from tests.solvers.test_contacts_solvers import brute_force, random_tiny


def bound(inst: ContactInstance) -> float | None:
    return capacity_bound(inst, encode(inst))


@pytest.mark.parametrize("seed", range(10))
def test_it_bounds_brute_forced_optima_and_never_exceeds_every_request_at_its_longest(seed):
    inst = random_tiny(seed)
    assert brute_force(inst) - 1e-12 <= bound(inst)
    # loosened by a millionth against HiGHS's tolerances
    assert bound(inst) <= longest_tracks_bound(inst, encode(inst)) * (1 + 2e-6)


def test_it_bounds_tiny_and_the_value_objective():
    assert bound(tiny()) * 3600 >= TINY_OPTIMUM - 1e-9
    # all three requests of the network fit (value 8); no request has no option
    assert 8.0 - 1e-9 <= bound(network("value")) <= 8.0 + 1e-5


def test_it_is_exact_where_one_antenna_is_short_of_time():
    # two requests of 4 s (1 s at least) in the same 6 s on one antenna: 6 s in all at best,
    # while every request at its longest would make 8 s
    view = (Resource(("A",), ((0, 6),)),)
    inst = ContactInstance(
        (Antenna("A"),),
        (Request("p", "m", 4, 1, (0, 6), view), Request("q", "n", 4, 1, (0, 6), view)),
    )
    assert longest_tracks_bound(inst, encode(inst)) * 3600 == pytest.approx(8)
    assert bound(inst) * 3600 == pytest.approx(6, rel=1e-5)
    assert rota.solve(inst, solver="cpsat", time_limit=5).objective * 3600 == pytest.approx(6)


def test_it_bounds_a_dsn_subset_and_says_nothing_of_rounded_times():
    week = rota.read(instance_file("W10_2018_2days.json"))
    found = rota.solve(week, solver="cpsat", time_limit=1).objective
    assert found <= bound(week) <= longest_tracks_bound(week, encode(week)) * (1 + 2e-6)
    third = 1 / 3
    inexact = ContactInstance(
        (Antenna("A"),),
        (Request("p", "m", 2, 1, (third, 10), (Resource(("A",), ((third, 6),)),)),),
    )
    assert not encode(inexact).exact and bound(inexact) is None
