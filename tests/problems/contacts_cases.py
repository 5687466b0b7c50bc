"""Small hand-made contact-scheduling instances shared by the contacts tests."""

from __future__ import annotations

from rota.problems.contacts import Antenna, ContactInstance, Request, Resource


def tiny() -> ContactInstance:
    """Four requests on two antennas (one array), integral seconds; optimum 12 s of tracks.

    The greedy pass schedules 9 s: it gives ``r2`` the start of its view period,
    which leaves ``r1`` a shorter stretch and ``r3`` none.
    """
    return ContactInstance(
        antennas=(Antenna("A", "X"), Antenna("B", "X", maintenance=((9.0, 12.0),))),
        requests=(
            Request(
                "r1", "m1", 4, 2, (0, 12), (Resource(("A",), ((0, 12),)),), setup=1, teardown=1
            ),
            Request("r2", "m2", 3, 3, (0, 12), (Resource(("A",), ((2, 7),)),), setup=1),
            Request(
                "r3",
                "m2",
                3,
                2,
                (0, 12),
                (Resource(("A", "B"), ((4, 12),)), Resource(("B",), ((0, 5),))),
                teardown=1,
            ),  # fmt: skip
            Request("r4", "m3", 2, 1, (0, 12), (Resource(("B",), ((2, 9),)),)),
        ),
        mode_switch=1,
        name="tiny",
    )


#: Seconds of tracks in the optimum of :func:`tiny` (by brute force) and in greedy's schedule.
TINY_OPTIMUM, TINY_GREEDY = 12.0, 9.0


def network(objective: str = "hours") -> ContactInstance:
    """Three antennas at two stations, maintenance, setup and teardown, one array."""
    hour = 3600.0
    return ContactInstance(
        antennas=(
            Antenna("DSS-34", "Canberra"),
            Antenna("DSS-35", "Canberra"),
            Antenna("DSS-54", "Madrid", maintenance=((10 * hour, 12 * hour),)),
        ),
        requests=(
            Request(
                "a",
                "M1",
                2 * hour,
                1 * hour,
                (0, 10 * hour),
                (Resource(("DSS-34",), ((0, 5 * hour), (6 * hour, 10 * hour))),),
                setup=1800,
                teardown=900,
                value=2,
            ),
            Request(
                "b",
                "M2",
                3 * hour,
                3 * hour,
                (0, 20 * hour),
                (
                    Resource(("DSS-34", "DSS-35"), ((2 * hour, 9 * hour),)),
                    Resource(("DSS-54",), ((8 * hour, 16 * hour),)),
                ),
                setup=3600,
                teardown=900,
                value=5,
            ),
            Request(
                "c",
                "M1",
                1 * hour,
                1 * hour,
                (0, 20 * hour),
                (Resource(("DSS-35",), ((0, 20 * hour),)),),
                value=1,
            ),
        ),  # fmt: skip
        objective=objective,
        name="network",
    )
