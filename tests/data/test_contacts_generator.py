"""The seeded contact-scheduling generator."""

from __future__ import annotations

import pytest

import rota
from rota.data.contacts import generate_contacts
from rota.problems.contacts import CONTACTS


def test_same_seed_same_instance_and_seeds_differ():
    a, b = generate_contacts(60, seed=3), generate_contacts(60, seed=3)
    assert CONTACTS.instance_to_dict(a) == CONTACTS.instance_to_dict(b)
    assert CONTACTS.instance_to_dict(generate_contacts(60, seed=4)) != CONTACTS.instance_to_dict(a)


@pytest.mark.parametrize("requests", [50, 400])
def test_instances_are_oversubscribed_and_use_arrays_and_maintenance(requests):
    inst = generate_contacts(requests, seed=0)
    assert inst.num_requests == requests and inst.has_arrays
    assert any(a.maintenance for a in inst.antennas)
    greedy = rota.solve(inst, solver="greedy")
    assert greedy.evaluation.feasible
    assert greedy.objective < 0.97 * inst.requested_hours  # not everything fits


def test_value_objective_and_bad_arguments():
    assert generate_contacts(50, objective="value").objective == "value"
    for bad, message in [
        ({"requests": 49}, "requests is 49, expected 50 to 5000"),
        ({"requests": 5001}, "requests is 5001"),
        ({"requests": 50, "days": 0}, "days is 0"),
        ({"requests": 50, "objective": "cost"}, "objective is 'cost'"),
    ]:
        with pytest.raises(ValueError, match=message):
            generate_contacts(**bad)
