"""Seeded random contact-scheduling instances for scaling studies (50 to 5,000 requests).

The instances imitate a DSN week: stations spread in longitude, each with 2
to 4 antennas; missions of two kinds, deep-space ones seen for 6 to 14 hours
a day from each station (tracks of 1 to 8 hours, setup 30 to 60 minutes,
teardown 15, windows of 1 to 3 days) and near-Earth ones seen in 3 to 6
short passes a day (tracks of 15 or 30 minutes, setup 10, teardown 5,
windows of 6 to 12 hours). Each mission can use one or two antennas of each
station (its own choice, as a spacecraft needs a band or a dish size); a
request names 1 to 3 stations, and about one deep-space request in ten may
also use a two-antenna array. A fifth of the requests accept 80 % of their
duration; values run from 1 to 5; antennas have a few maintenance
intervals. Antennas grow with requests (about one per 33), so every size is
oversubscribed alike. Times are whole seconds from the start of the horizon.
The same arguments give the same instance.
"""

from __future__ import annotations

import numpy as np

from rota.problems.contacts import OBJECTIVES, Antenna, ContactInstance, Request, Resource

#: Range of request counts the generator is meant for.
MIN_REQUESTS, MAX_REQUESTS = 50, 5_000
HOUR, DAY = 3600, 86_400


def _passes(rng: np.random.Generator, deep: bool, offset: float, days: int) -> list[tuple]:
    """A mission's view periods over one station, in seconds from the start."""
    if deep:
        rises = np.arange(-1, days + 1) * DAY + offset
        lengths = rng.uniform(6, 14, len(rises)) * HOUR
    else:
        counts = rng.integers(3, 7, days + 2)
        rises = np.repeat(np.arange(-1, days + 1) * DAY, counts) + rng.uniform(0, DAY, counts.sum())
        lengths = rng.uniform(0.3, 1.0, len(rises)) * HOUR
    return list(zip(rises.tolist(), (rises + lengths).tolist(), strict=True))


def generate_contacts(
    requests: int, seed: int = 0, *, days: int = 7, objective: str = "hours"
) -> ContactInstance:
    """A random instance with ``requests`` requests over ``days`` days; see the module docstring.

    Raises
    ------
    ValueError
        ``requests`` outside 50..5000, ``days`` outside 1..28, or an unknown objective.
    """
    if isinstance(requests, bool) or not isinstance(requests, int):
        raise ValueError(f"requests must be an integer, got {requests!r}")
    if not MIN_REQUESTS <= requests <= MAX_REQUESTS:
        raise ValueError(
            f"requests is {requests}, expected {MIN_REQUESTS} to {MAX_REQUESTS} "
            "(the sizes the generator is calibrated for)"
        )
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 28:
        raise ValueError(f"days is {days!r}, expected an integer from 1 to 28")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective is {objective!r}, expected one of {', '.join(OBJECTIVES)}")
    rng = np.random.default_rng(seed)
    horizon = days * DAY
    num_stations = max(1, round(requests / 100))
    station_names = [f"S{k:02d}" for k in range(num_stations)]
    station_antennas: list[list[str]] = []
    antennas = []
    for station in station_names:
        names = [f"{station}-{k + 1}" for k in range(int(rng.integers(2, 5)))]
        station_antennas.append(names)
        for name in names:
            maintenance = []
            for _ in range(int(rng.poisson(1.0))):
                start = float(rng.integers(0, horizon - 8 * HOUR))
                maintenance.append((start, start + float(rng.integers(2, 9)) * HOUR))
            antennas.append(Antenna(name, station, tuple(maintenance)))
    phases = (np.arange(num_stations) / num_stations + rng.normal(0, 0.02, num_stations)) * DAY

    num_missions = max(3, round(requests / 9))
    deep = rng.random(num_missions) < 0.7
    mission_phase = rng.uniform(0, DAY, num_missions)
    usable = [
        [sorted(rng.choice(names, size=min(len(names), int(rng.integers(1, 3))), replace=False))
         for names in station_antennas]
        for _ in range(num_missions)
    ]  # fmt: skip
    visibility = [
        [
            _passes(rng, bool(deep[m]), (phases[s] + mission_phase[m]) % DAY, days)
            for s in range(num_stations)
        ]
        for m in range(num_missions)
    ]

    made = []
    for k in range(requests):
        m = int(rng.integers(num_missions))
        if deep[m]:
            duration = float(rng.choice([1, 2, 4, 6, 8])) * HOUR
            setup, teardown = float(rng.choice([30, 45, 60])) * 60, 15 * 60.0
        else:
            duration = float(rng.choice([15, 30])) * 60
            setup, teardown = 600.0, 300.0
        minimum = duration if rng.random() < 0.8 else round(0.8 * duration / 60) * 60.0
        w0 = float(rng.integers(0, horizon - DAY))
        span = rng.integers(DAY, 3 * DAY + 1) if deep[m] else rng.integers(6 * HOUR, 12 * HOUR)
        w1 = min(float(horizon), w0 + float(span))
        chosen = rng.choice(num_stations, size=min(num_stations, int(rng.integers(1, 4))),
                            replace=False)  # fmt: skip
        resources = []
        for s in sorted(int(x) for x in chosen):
            periods = tuple(
                (float(round(max(a, w0))), float(round(min(b, w1))))
                for a, b in visibility[m][s]
                if min(b, w1) - max(a, w0) >= 60
            )
            names = station_antennas[s]
            resources += [Resource((str(name),), periods) for name in usable[m][s]]
            if deep[m] and rng.random() < 0.1:
                resources.append(Resource(tuple(names[:2]), periods))
        made.append(
            Request(
                id=f"r{k}",
                mission=f"m{m}",
                duration=duration,
                min_duration=minimum,
                window=(w0, w1),
                resources=tuple(resources),
                setup=setup,
                teardown=teardown,
                value=float(rng.integers(1, 6)),
            )  # fmt: skip
        )
    return ContactInstance(
        antennas=tuple(antennas),
        requests=tuple(made),
        objective=objective,
        name=f"contacts-{requests}-s{seed}",
        metadata={
            "generator": "rota.data.contacts",
            "requests": requests,
            "seed": seed,
            "days": days,
        },  # fmt: skip
    )


__all__ = ["MAX_REQUESTS", "MIN_REQUESTS", "generate_contacts"]
