"""The schedule builder the contacts ``ga`` decodes its individuals with.

An individual gives each request a **key** (its place in the order: lower
keys go first) and a **mode**. Decoding takes the requests in key order and
gives each the longest track that fits among its options, as the greedy pass
does (:mod:`.greedy`, the same free stretches, the same ties): at the
earliest start of the stretch that allows that length (mode 0) or at the
latest end (mode 1, which leaves the start of a view period to the requests
that come later). With greedy's priority order and every mode 0 it builds
greedy's schedule. Some optima need a late placement: of 26 tiny instances
(those of the tests, optima by brute force), every optimum is the decoding of
some order and modes, and one is the decoding of no order in mode 0 alone.

Keys are integers ``base * n + request`` (``n`` requests), so that no two
requests ever share a key whatever the operators do to the bases.

Redecoding
----------
A child of the ``ga`` differs from a parent in a few genes, and decoding it
from scratch repeats the parent's work for every request whose placement
cannot change. :meth:`Decoder.redecode` starts from the parent's schedule
instead: the placements stay in per-antenna and per-spacecraft timelines,
each busy interval tagged with its request's key, and a request fitting at
key ``k`` sees only the intervals tagged below ``k`` (what it would have
seen in a decoding from scratch). Only the requests that may see something
else are fitted again, in key order: those whose genes changed, and those
whose options (widened by setup, teardown or the mode switch) reach a busy
interval that was added, removed, or moved across them in the order. A
request nothing reaches keeps the parent's placement, which is exact, not
an estimate: the tests check redecoding against decoding from scratch. A
request reached only by added intervals keeps its placement too when
nothing is in its way: no free stretch grew, so no better track appeared.
On the DSN weeks and generated weeks, where a request's window is a day or
two of the week, a child with one gene moved refits about 40 requests: 2 ms
on DSN week 10 and on the generated week of 5,000 requests, against 6 and
80 ms to decode from scratch (CPU time, 2 cores of a shared Xeon).

Everything here is plain Python over lists and tuples: each request's fit
depends on every placement before it, so the pass is sequential, and the
lists are small (a handful of busy intervals meet one view period).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass

import numpy as np

from rota.problems.contacts import ContactInstance, ContactSolution
from rota.solvers.contacts.encoding import Encoding
from rota.solvers.scaling import integer_scale

#: A placement: ``(option, start, length)`` in the encoding's units.
Placement = tuple[int, int, int]
#: A busy interval in a timeline: ``(start, end, key, request)``.
Entry = tuple[int, int, int, int]
#: Why a request is refitted when redecoding: intervals were added to its view, or one left it.
ADDED, FREED = 1, 2


@dataclass
class Built:
    """A decoded schedule: its timelines, each request's placement and the objective.

    ``value`` is in the decoder's units: scaled time units of tracks for the
    ``hours`` objective, the (scaled) values of the requests served for ``value``.
    """

    timelines: list[list[Entry]]
    placed: list[Placement | None]
    value: int | float


class Decoder:
    """Decodes keys and modes into schedules of one instance (see the module docstring)."""

    def __init__(self, instance: ContactInstance, enc: Encoding) -> None:
        self.enc = enc
        self.n = n = instance.num_requests
        self.antennas = num_antennas = len(instance.antennas)
        crafts = max(enc.craft, default=-1) + 1
        self.num_timelines = num_antennas + crafts
        self.shortest, self.longest = enc.min_duration, enc.duration
        self.setup, self.teardown, self.switch = enc.setup, enc.teardown, enc.mode_switch
        self.craft = [num_antennas + c for c in enc.craft]
        # per request and mode, its options as (best key a track there can have, lo, hi,
        # antennas, option), best first: a fit stops at the first option that cannot win
        self.options: list[list[tuple]] = [[], []]
        for opts in enc.by_request:
            early, late = [], []
            for o in opts:
                option = enc.options[o]
                cap = enc.max_length(o)
                item = (option.lo, option.hi, option.antennas, o)
                early.append(((cap, -option.lo, -o), *item))
                late.append(((cap, option.hi - cap, -o), *item))
            self.options[0].append(sorted(early, reverse=True))
            self.options[1].append(sorted(late, reverse=True))
        self.antennas_of = [option.antennas for option in enc.options]
        self.hours = instance.objective == "hours"
        self.weight, self.weight_scale = _weights([r.value for r in instance.requests])
        # the longest busy interval each timeline can hold bounds how far back a search looks
        self.longest_busy = [0] * self.num_timelines
        reach: list[list[tuple[int, int, int]]] = [[] for _ in range(self.num_timelines)]
        for r in range(n):
            su, td = self.setup[r], self.teardown[r]
            for _, lo, hi, antennas, o in self.options[0][r]:
                track = enc.max_length(o)
                for a in antennas:
                    self.longest_busy[a] = max(self.longest_busy[a], track + su + td)
                    reach[a].append((lo - su, hi + td, r))
                c = self.craft[r]
                self.longest_busy[c] = max(self.longest_busy[c], track)
                reach[c].append((lo - self.switch, hi + self.switch, r))
        # per timeline, the reach of every option on it (the stretch a busy interval
        # must meet to change the option's free stretches), sorted by its start
        self.reach = []
        for items in reach:
            items.sort()
            widest = max((b - a for a, b, _ in items), default=0)
            self.reach.append(([a for a, _, _ in items], items, widest))

    # -- one request -----------------------------------------------------------------------

    def gain(self, r: int, placement: Placement) -> int | float:
        return placement[2] if self.hours else self.weight[r]

    def fit(
        self, timelines: list[list[Entry]], r: int, late: int, limit: float
    ) -> Placement | None:
        """The longest track of request ``r`` among the intervals tagged below ``limit``.

        Earliest start (greedy's rule) unless ``late``, then latest end; ties
        between options go to the first one.
        """
        shortest, longest = self.shortest[r], self.longest[r]
        su, td, ms = self.setup[r], self.teardown[r], self.switch
        craft = self.craft[r]
        longest_busy = self.longest_busy
        best: Placement | None = None
        best_key: tuple[int, int, int] = (-1, 0, 0)
        for bound, lo, hi, antennas, o in self.options[late][r]:
            if bound <= best_key:  # options come best bound first
                break
            # busy intervals widened by what must separate them from this track
            line = timelines[craft]
            first = bisect_left(line, (lo - ms - longest_busy[craft],))
            last = bisect_left(line, (hi + ms,))
            holes = [
                (b0 - ms, b1 + ms)
                for b0, b1, tag, _ in line[first:last]
                if tag < limit and b1 + ms > lo
            ]
            for a in antennas:
                line = timelines[a]
                first = bisect_left(line, (lo - su - longest_busy[a],))
                last = bisect_left(line, (hi + td,))
                for b0, b1, tag, _ in line[first:last]:
                    if tag < limit and b1 + su > lo:
                        holes.append((b0 - td, b1 + su))
            holes.sort()
            cursor = lo
            for h0, h1 in (*holes, (hi, hi)):
                if h1 <= cursor:
                    continue
                end = min(h0, hi)
                if end - cursor >= shortest:
                    length = min(longest, end - cursor)
                    start = end - length if late else cursor
                    key = (length, start if late else -start, -o)
                    if key > best_key:
                        best_key, best = key, (o, start, length)
                if h0 >= hi:
                    break
                cursor = max(cursor, h1)
        return best

    def busy(self, r: int, placement: Placement) -> list[tuple[int, int, int]]:
        """``(timeline, start, end)`` of every busy interval of a placement of request ``r``."""
        o, start, length = placement
        end = start + length
        su, td = self.setup[r], self.teardown[r]
        intervals = [(a, start - su, end + td) for a in self.antennas_of[o]]
        intervals.append((self.craft[r], start, end))
        return intervals

    def _add(self, timelines: list[list[Entry]], r: int, placement: Placement, key: int) -> None:
        for t, b0, b1 in self.busy(r, placement):
            insort(timelines[t], (b0, b1, key, r))

    def _remove(self, timelines: list[list[Entry]], r: int, placement: Placement, key: int) -> None:
        for t, b0, b1 in self.busy(r, placement):
            line = timelines[t]
            del line[bisect_left(line, (b0, b1, key, r))]

    def touched(self, t: int, b0: int, b1: int) -> list[int]:
        """Requests with an option on timeline ``t`` that a busy ``[b0, b1]`` there may change."""
        starts, items, widest = self.reach[t]
        first = bisect_left(starts, b0 - widest)
        last = bisect_right(starts, b1)
        return [r for _, end, r in items[first:last] if end >= b0]

    # -- whole schedules -------------------------------------------------------------------

    def decode(self, keys: list[int], modes: list[int]) -> Built:
        """The schedule of requests taken in ``keys`` order, placed by ``modes``."""
        timelines: list[list[Entry]] = [[] for _ in range(self.num_timelines)]
        placed: list[Placement | None] = [None] * self.n
        value: int | float = 0
        for r in sorted(range(self.n), key=keys.__getitem__):
            placement = self.fit(timelines, r, modes[r], math.inf)
            if placement is not None:
                self._add(timelines, r, placement, keys[r])
                placed[r] = placement
                value += self.gain(r, placement)
        return Built(timelines, placed, value)

    def redecode(
        self,
        parent: Built,
        parent_keys: list[int],
        keys: list[int],
        modes: list[int],
        changed: list[int],
    ) -> tuple[Built, int]:
        """The decoding of ``keys`` and ``modes`` from ``parent``'s; and how many fits it took.

        ``changed`` lists the requests whose key or mode differs from the
        parent's (``parent_keys`` and the parent's modes); the result is the
        same schedule as :meth:`decode` builds.
        """
        timelines = [line.copy() for line in parent.timelines]
        placed = parent.placed.copy()
        value = parent.value
        # 0: not queued; ADDED: reached by added intervals only; FREED: reached by a
        # removed one too, or its own genes changed
        queued = bytearray(self.n)
        heap: list[tuple[int, int]] = []

        def push(intervals: list[tuple[int, int, int]], after: int, why: int) -> None:
            for t, b0, b1 in intervals:
                for q in self.touched(t, b0, b1):
                    if keys[q] > after and queued[q] < why:
                        if not queued[q]:
                            heapq.heappush(heap, (keys[q], q))
                        queued[q] = why

        for w in changed:
            old = placed[w]
            if old is not None:  # out of every view until it is fitted again at its new key
                self._remove(timelines, w, old, parent_keys[w])
                value -= self.gain(w, old)
                placed[w] = None
                # requests it moved across saw it and no longer do, or the reverse
                push(self.busy(w, old), min(parent_keys[w], keys[w]), FREED)
            if not queued[w]:
                heapq.heappush(heap, (keys[w], w))
            queued[w] = FREED
        fitted = 0
        while heap:
            key, r = heapq.heappop(heap)
            old = placed[r]
            if queued[r] == ADDED and (old is None or self.free(timelines, r, old, key)):
                # intervals were only added to its view: no stretch grew, so its best
                # track can only get worse, and its old one is still there
                continue
            new = self.fit(timelines, r, modes[r], key)
            fitted += 1
            if new == old:
                continue
            if old is not None:
                self._remove(timelines, r, old, key)
                value -= self.gain(r, old)
                push(self.busy(r, old), key, FREED)
            if new is not None:
                self._add(timelines, r, new, key)
                value += self.gain(r, new)
                push(self.busy(r, new), key, ADDED)
            placed[r] = new
        return Built(timelines, placed, value), fitted

    def free(self, timelines: list[list[Entry]], r: int, placement: Placement, limit: int) -> bool:
        """Whether nothing tagged below ``limit`` is in the way of request ``r``'s ``placement``."""
        o, start, length = placement
        end = start + length
        ms, longest_busy = self.switch, self.longest_busy
        craft = self.craft[r]
        if _holes(timelines[craft], start, end, ms, ms, limit, longest_busy[craft]):
            return False
        su, td = self.setup[r], self.teardown[r]
        return not any(
            _holes(timelines[a], start, end, td, su, limit, longest_busy[a])
            for a in self.antennas_of[o]
        )

    def solution(self, built: Built) -> ContactSolution:
        return ContactSolution(tuple(self.enc.track(*p) for p in built.placed if p is not None))

    def objective(self, value: int | float) -> float:
        """A decoder value in the instance's units (hours, or the value served)."""
        if self.hours:
            return value / self.enc.scale / 3600
        return value / self.weight_scale


def _holes(
    line: list[Entry], lo: int, hi: int, before: int, after: int, limit: float, longest: int
) -> list[tuple[int, int]]:
    """Busy intervals tagged below ``limit`` widened by ``before`` and ``after`` that meet
    ``(lo, hi)``; none starts before ``lo - after - longest`` and reaches ``lo``."""
    first = bisect_left(line, (lo - after - longest,))
    last = bisect_left(line, (hi + before,))
    return [
        (b0 - before, b1 + after)
        for b0, b1, key, _ in line[first:last]
        if key < limit and b1 + after > lo
    ]


def _weights(values: list[float]) -> tuple[list[int] | list[float], int]:
    """Request values times a power of ten that makes them integers (so that sums
    updated one request at a time stay exact), and that power; else the values and 1."""
    scale, exact = integer_scale(np.asarray(values, dtype=np.float64))
    if exact:
        return [round(v * scale) for v in values], scale
    return list(values), 1


__all__ = ["Built", "Decoder", "Placement"]
