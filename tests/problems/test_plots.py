"""Every family's plot writes a PNG without touching matplotlib's global state.

A plot called from a notebook must leave the user's backend (inline) and
pyplot's open figures as they were; switching to Agg, as the plots once did,
silently stopped every later inline figure of the session.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

import rota
from rota.data.placement import generate_instance
from rota.problems.contacts.plot import plot_schedule
from rota.problems.placement.plot import plot_traffic
from rota.problems.routing.plot import plot_routes
from tests.conftest import instance_file
from tests.problems.contacts_cases import tiny


def test_family_plots_leave_the_backend_and_pyplot_alone(tmp_path: Path, monkeypatch):
    routing = rota.read(instance_file("E-n13-k4.vrp"))
    contacts = tiny()
    placement = generate_instance(8, 4, 4, 2, tokens=512, seed=1)
    cases = [(plot_routes, routing), (plot_schedule, contacts), (plot_traffic, placement)]
    backend = matplotlib.get_backend()
    # A backend switch would show here: pyplot's module-level switch_backend is what
    # matplotlib.use calls.
    switched = []
    monkeypatch.setattr(plt, "switch_backend", lambda name: switched.append(name))
    before = plt.get_fignums()
    for plot, instance in cases:
        solution = rota.solve(instance, solver="greedy", seed=0).solution
        path = plot(instance, solution, tmp_path / f"{plot.__name__}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert switched == [] and matplotlib.get_backend() == backend
    assert plt.get_fignums() == before
