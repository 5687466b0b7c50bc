"""The integer encoding every contact-scheduling solver works on.

Times become integers: seconds times the smallest power of ten that makes
every time of the instance integral (:func:`~rota.solvers.scaling.integer_scale`),
counted from an origin at the earliest request window. When no power of ten
up to 10**4 is exact, times are rounded in the safe direction (window and
view-period starts, minimum durations, setup, teardown and mode switches
up; ends and requested durations down; maintenance outwards), so every
schedule found is feasible for the evaluator, but a proof about the rounded
data proves nothing about the true one (:attr:`Encoding.exact` is False).

Each request's candidate placements are its **options**: for each allowed
resource and each view period, the part of the view period inside the
request window, with every stretch removed where a track would meet the
maintenance of one of the resource's antennas (a track ``[s, e]`` must keep
``e + teardown <= m0`` or ``s - setup >= m1`` for maintenance ``[m0, m1]``).
An option is kept when the minimum duration fits in it. Maintenance is thus
fully handled here, and solvers only keep tracks apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rota.problems.contacts import ContactInstance, ContactSolution, Track
from rota.solvers.routing import per_instance
from rota.solvers.scaling import integer_scale

#: Scaled times must stay far from int64 overflow in the engines' sums.
MAX_SCALED = 2**50


@dataclass(frozen=True)
class Option:
    """One candidate placement: request ``request`` on its resource ``resource``
    (an index into ``request.resources``), inside ``[lo, hi]`` (scaled units)."""

    request: int
    resource: int
    lo: int
    hi: int
    antennas: tuple[int, ...]  # antenna indices, into instance.antennas
    name: str  # the resource's name, as a track gives it


@dataclass
class Encoding:
    """Integer data of one instance; see the module docstring.

    It holds no reference to the instance, so that the per-instance cache
    lets instances go.
    """

    ids: list[str]  # request ids
    scale: int  # units per second
    exact: bool  # times scaled without rounding
    origin: float  # seconds at unit 0
    duration: list[int]  # per request, requested length
    min_duration: list[int]
    setup: list[int]
    teardown: list[int]
    mode_switch: int
    craft: list[int]  # per request, spacecraft index
    options: list[Option]
    by_request: list[list[int]]  # request -> its option indices

    def seconds(self, units: int) -> float:
        """A scaled time back in the instance's seconds."""
        return self.origin + units / self.scale

    def units(self, seconds: float) -> int:
        """An instance time in scaled units, to the nearest unit (hints only)."""
        return round((seconds - self.origin) * self.scale)

    def max_length(self, o: int) -> int:
        option = self.options[o]
        return min(self.duration[option.request], option.hi - option.lo)

    def track(self, o: int, start: int, length: int) -> Track:
        """The track of option ``o`` starting at ``start`` for ``length`` units."""
        option = self.options[o]
        return Track(
            self.ids[option.request],
            option.name,
            self.seconds(start),
            self.seconds(start + length),
        )

    def placements(
        self, instance: ContactInstance, solution: ContactSolution
    ) -> list[tuple[int, int, int]]:
        """``(option, start, length)`` of each track of ``solution`` that fits an option.

        Tracks that fit none (they break a constraint) are left out: for hints.
        """
        index = instance.request_index
        found = []
        for track in solution.tracks:
            r = index.get(track.request)
            if r is None:
                continue
            start, end = self.units(track.start), self.units(track.end)
            for o in self.by_request[r]:
                option = self.options[o]
                if option.name == track.resource and option.lo <= start and end <= option.hi:
                    found.append((o, start, end - start))
                    break
        return found


def _maximal_cliques(parts: list[tuple[int, int, int]]) -> list[list[int]]:
    """Maximal sets of ``(start, end, option)`` half-open intervals sharing a point."""
    events = sorted([(a, 1, o) for a, _, o in parts] + [(b, 0, o) for _, b, o in parts])
    found, active, grew = [], set(), False
    for _, starts, o in events:  # at one time, ends (0) before starts: half-open intervals
        if starts:
            active.add(o)
            grew = True
            continue
        if grew and len(active) > 1:
            found.append(sorted(active))
        grew = False
        active.discard(o)
    return found


def compulsory_cliques(enc: Encoding) -> list[list[int]]:
    """Sets of options of which at most one can be used: their compulsory parts meet.

    Whatever its start and length, a used option's track covers
    ``[hi - min_duration, lo + min_duration)`` when that is not empty, its
    antennas are busy over ``[hi - min_duration - setup, lo + min_duration +
    teardown)`` and its spacecraft over the track plus the mode switch. Options
    of different requests whose compulsory parts meet on a shared antenna or
    spacecraft exclude each other; only sets with two requests or more are
    returned (one request's options exclude each other already). They tighten
    the relaxations a great deal where view periods are barely longer than the
    tracks (LEO passes).
    """
    per_antenna: dict[int, list[tuple[int, int, int]]] = {}
    per_craft: dict[int, list[tuple[int, int, int]]] = {}
    for o, option in enumerate(enc.options):
        r = option.request
        shortest = enc.min_duration[r]
        b0, b1 = option.hi - shortest - enc.setup[r], option.lo + shortest + enc.teardown[r]
        if b0 < b1:
            for a in option.antennas:
                per_antenna.setdefault(a, []).append((b0, b1, o))
        t0, t1 = option.hi - shortest, option.lo + shortest + enc.mode_switch
        if t0 < t1:
            per_craft.setdefault(enc.craft[r], []).append((t0, t1, o))
    cliques = []
    for group in (*per_antenna.values(), *per_craft.values()):
        for clique in _maximal_cliques(group):
            if len({enc.options[o].request for o in clique}) > 1:
                cliques.append(clique)
    return cliques


def _subtract(
    lo: int, hi: int, holes: list[tuple[int, int]], shortest: int
) -> list[tuple[int, int]]:
    """The parts of ``[lo, hi]`` outside every open interval in ``holes``, at least ``shortest``."""
    pieces = []
    cursor = lo
    for h0, h1 in sorted(holes):
        if h1 <= cursor:
            continue
        if h0 >= hi:
            break
        if h0 - cursor >= shortest:
            pieces.append((cursor, h0))
        cursor = max(cursor, h1)
    if hi - cursor >= shortest:
        pieces.append((cursor, hi))
    return pieces


@per_instance
def encode(instance: ContactInstance) -> Encoding:
    """The integer encoding of ``instance`` (cached per live instance).

    Raises
    ------
    ValueError
        When the scaled times would overflow an engine's 64-bit sums.
    """
    requests = instance.requests
    times = [instance.mode_switch]
    for r in requests:
        times += [r.duration, r.min_duration, r.setup, r.teardown, *r.window]
        times += [t for res in r.resources for vp in res.view_periods for t in vp]
    times += [t for a in instance.antennas for m in a.maintenance for t in m]
    origin = float(math.floor(min(r.window[0] for r in requests)))
    scale, exact = integer_scale(np.asarray(times, dtype=np.float64))
    horizon = (max(r.window[1] for r in requests) - origin) * scale
    if not horizon * (len(requests) + 1) <= MAX_SCALED:
        raise ValueError(
            f"the times of {instance.name} span {horizon:.3g} units at scale {scale}: "
            "too large for 64-bit arithmetic"
        )

    def up(seconds: float) -> int:
        return math.ceil(seconds * scale - 1e-9) if not exact else round(seconds * scale)

    def down(seconds: float) -> int:
        return math.floor(seconds * scale + 1e-9) if not exact else round(seconds * scale)

    maintenance = [
        [(down(m0 - origin), up(m1 - origin)) for m0, m1 in a.maintenance]
        for a in instance.antennas
    ]
    crafts: dict[str, int] = {}
    enc = Encoding(
        ids=[r.id for r in requests], scale=scale, exact=exact, origin=origin,
        duration=[down(r.duration) for r in requests],
        min_duration=[up(r.min_duration) for r in requests],
        setup=[up(r.setup) for r in requests], teardown=[up(r.teardown) for r in requests],
        mode_switch=up(instance.mode_switch),
        craft=[crafts.setdefault(r.craft, len(crafts)) for r in requests],
        options=[], by_request=[],
    )  # fmt: skip
    antenna_index = instance.antenna_index
    for i, r in enumerate(requests):
        mine = []
        shortest = enc.min_duration[i]
        if enc.duration[i] >= shortest:  # rounding can leave no admissible length
            w0, w1 = up(r.window[0] - origin), down(r.window[1] - origin)
            for k, resource in enumerate(r.resources):
                antennas = tuple(antenna_index[a] for a in resource.antennas)
                holes = [
                    (m0 - enc.teardown[i], m1 + enc.setup[i])
                    for a in antennas
                    for m0, m1 in maintenance[a]
                ]
                for a, b in resource.view_periods:
                    lo, hi = max(up(a - origin), w0), min(down(b - origin), w1)
                    for p0, p1 in _subtract(lo, hi, holes, shortest):
                        mine.append(len(enc.options))
                        enc.options.append(Option(i, k, p0, p1, antennas, resource.name))
        enc.by_request.append(mine)
    return enc


__all__ = ["MAX_SCALED", "Encoding", "Option", "compulsory_cliques", "encode"]
