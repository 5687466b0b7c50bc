"""The operational baseline for contact scheduling: one greedy pass, no search.

Requests are taken in priority order: by value per requested hour when the
instance maximises value, else by value (a priority) alone; ties go to the
least flexible request first (the least view-period time per hour
requested), then to the earliest window end. Each request gets the longest
track that still fits anywhere among its options (its antennas free with
setup and teardown around the track, its spacecraft free with the mode
switch, maintenance excluded by the encoding), placed at the earliest start
of the free stretch that allows that length; a request that fits nowhere is
left out. The pass is deterministic: the seed changes nothing.

Given warm starts, the best feasible one is kept as it is and the pass only
adds the requests it leaves out, so the result is never worse than it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence

from rota.problems.contacts import ContactInstance, ContactSolution, Track
from rota.solvers.base import ALL_CRITERIA, Capabilities, Result, Status, best_feasible, finish
from rota.solvers.contacts.encoding import Encoding, _subtract, encode
from rota.solvers.stopping import Stop


class Timeline:
    """Busy intervals of one antenna or spacecraft, merged, in scaled units."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, b0: int, b1: int) -> None:
        i = bisect.bisect_left(self.ends, b0)
        j = bisect.bisect_right(self.starts, b1)
        if i < j:  # merge every interval it meets
            b0, b1 = min(b0, self.starts[i]), max(b1, self.ends[j - 1])
            del self.starts[i:j], self.ends[i:j]
        self.starts.insert(i, b0)
        self.ends.insert(i, b1)

    def holes(self, lo: int, hi: int, before: int, after: int) -> Iterator[tuple[int, int]]:
        """Open intervals a track in ``[lo, hi]`` must avoid: each busy interval
        widened by ``before`` on its left and ``after`` on its right."""
        k = bisect.bisect_right(self.ends, lo - after)
        while k < len(self.starts) and self.starts[k] - before < hi:
            yield self.starts[k] - before, self.ends[k] + after
            k += 1


class Schedule:
    """Tracks placed so far and the timelines they occupy."""

    def __init__(self, instance: ContactInstance, enc: Encoding) -> None:
        self.instance = instance
        self.enc = enc
        self.antennas = [Timeline() for _ in instance.antennas]
        self.crafts = [Timeline() for _ in range(max(enc.craft, default=-1) + 1)]
        self.tracks: list[Track] = []
        self.done: set[int] = set()
        self.length = 0  # scaled units of every placed track

    def keep(self, track: Track) -> None:
        """Take a given (feasible) track as it is, blocking its times rounded outwards."""
        enc, r = self.enc, self.instance.request_index[track.request]
        request = self.instance.requests[r]
        resource = request.resource_named(track.resource)

        def floor(t: float) -> int:
            return math.floor((t - enc.origin) * enc.scale + 1e-6)

        def ceil(t: float) -> int:
            return math.ceil((t - enc.origin) * enc.scale - 1e-6)

        for name in resource.antennas:
            self.antennas[self.instance.antenna_index[name]].add(
                floor(track.start - request.setup), ceil(track.end + request.teardown)
            )
        self.crafts[enc.craft[r]].add(floor(track.start), ceil(track.end))
        self.tracks.append(track)
        self.done.add(r)
        self.length += ceil(track.end) - floor(track.start)

    def place(self, o: int, start: int, length: int) -> None:
        enc = self.enc
        option = enc.options[o]
        r = option.request
        for a in option.antennas:
            self.antennas[a].add(start - enc.setup[r], start + length + enc.teardown[r])
        self.crafts[enc.craft[r]].add(start, start + length)
        self.tracks.append(enc.track(o, start, length))
        self.done.add(r)
        self.length += length

    def best_fit(self, r: int) -> tuple[int, int, int] | None:
        """``(option, start, length)`` of the longest track request ``r`` can get, earliest."""
        enc = self.enc
        shortest, longest = enc.min_duration[r], enc.duration[r]
        su, td, ms = enc.setup[r], enc.teardown[r], enc.mode_switch
        craft = self.crafts[enc.craft[r]]
        best = None
        for o in enc.by_request[r]:
            option = enc.options[o]
            lo, hi = option.lo, option.hi
            holes = list(craft.holes(lo, hi, ms, ms))
            for a in option.antennas:
                holes += self.antennas[a].holes(lo, hi, td, su)
            for p0, p1 in _subtract(lo, hi, holes, shortest):
                length = min(longest, p1 - p0)
                if best is None or (length, -p0) > (best[2], -best[1]):
                    best = (o, p0, length)
        return best


def priority_order(instance: ContactInstance, enc: Encoding) -> list[int]:
    """Requests in the order the greedy pass takes them (see the module docstring)."""

    def key(r: int) -> tuple[float, float, float, int]:
        request = instance.requests[r]
        room = sum(enc.options[o].hi - enc.options[o].lo for o in enc.by_request[r])
        flexibility = room / max(enc.duration[r], 1)
        worth = request.value
        if instance.objective == "value":
            worth /= request.duration / 3600
        return (-worth, flexibility, request.window[1], r)

    return sorted(range(instance.num_requests), key=key)


def construct(
    instance: ContactInstance, enc: Encoding, keep: Sequence[Track] = ()
) -> ContactSolution:
    """The greedy schedule, keeping the (feasible) tracks ``keep`` as they are."""
    schedule = Schedule(instance, enc)
    for track in keep:
        schedule.keep(track)
    for r in priority_order(instance, enc):
        if r in schedule.done:
            continue
        fit = schedule.best_fit(r)
        if fit is not None:
            schedule.place(*fit)
    return ContactSolution(tuple(schedule.tracks))


def objective_of(instance: ContactInstance, solution: ContactSolution) -> float:
    """The objective of a feasible schedule, without the evaluator's checks (for stops)."""
    if instance.objective == "hours":
        return sum(t.end - t.start for t in solution.tracks) / 3600
    index = instance.request_index
    return sum(instance.requests[index[t.request]].value for t in solution.tracks)


def longest_tracks_bound(instance: ContactInstance, enc: Encoding) -> float | None:
    """An upper bound with no search: every request served by its longest possible track.

    (With the ``value`` objective: every request that has an option.) ``None``
    when the encoding rounded times, since the true tracks may then be longer.
    """
    if not enc.exact:
        return None
    if instance.objective == "hours":
        longest = [max((enc.max_length(o) for o in opts), default=0) for opts in enc.by_request]
        return sum(longest) / enc.scale / 3600
    return sum(instance.requests[r].value for r, opts in enumerate(enc.by_request) if opts)


def improves(a: float, b: float) -> bool:
    """Whether objective ``a`` beats ``b`` by more than the float noise of summing tracks."""
    return a > b + 1e-9 * max(1.0, abs(b))


class GreedyContacts:
    """Priority order, longest feasible track, earliest fit; see the module docstring."""

    name = "greedy"
    problem = "contacts"
    description = "Operational baseline: priority order, longest feasible track, earliest fit"
    # One pass is one iteration: every criterion is met once it ends.
    capabilities = Capabilities(warm_start=True, stopping=ALL_CRITERIA)

    def available(self) -> bool:
        return True

    def supports(self, instance: ContactInstance) -> str | None:
        try:
            encode(instance)
        except ValueError as exc:
            return str(exc)
        return None

    def solve(
        self,
        instance: ContactInstance,
        stop: Stop,
        seed: int,
        warm_start: tuple[ContactSolution, ...] = (),
    ) -> Result:
        enc = encode(instance)
        start = best_feasible(instance, warm_start)
        solution = construct(instance, enc, start[0].tracks if start is not None else ())
        stop(objective_of(instance, solution))
        stats = {"kept_from_warm_start": len(start[0].tracks)} if start is not None else {}
        return finish(
            instance, solution, Status.FEASIBLE, solver=self.name, seed=seed, stop=stop,
            stats=stats,
        )  # fmt: skip


__all__ = [
    "GreedyContacts", "Schedule", "Timeline", "construct", "improves", "longest_tracks_bound",
    "objective_of", "priority_order",
]  # fmt: skip
