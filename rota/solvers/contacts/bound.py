"""An upper bound on contact schedules from capacity: a linear programme, no search.

On the integer encoding (:mod:`rota.solvers.contacts.encoding`), per option
``o`` a fraction ``y_o`` of it used and a track length ``l_o`` with
``min_duration * y_o <= l_o <= max_length(o) * y_o``, at most one option per
request (``sum y <= 1``) and per set of options whose compulsory parts meet
(:func:`~rota.solvers.contacts.encoding.compulsory_cliques`). Then capacity:
an antenna is busy for a track, its setup and its teardown inside the
option's reach ``[lo - setup, hi + teardown]``, and busy intervals of one
antenna never overlap, so over each connected stretch of the reaches on an
antenna::

    sum over the options in the stretch of (l_o + (setup + teardown) * y_o) <= its length

and likewise per spacecraft, with the track and the mode switch inside
``[lo, hi + mode_switch]``. Every schedule is a 0/1 point of this LP, so its
optimum (``sum l`` in hours, or ``sum value * y``) bounds every schedule.

It is tighter than CP-SAT's bound where antennas or spacecraft are short of
time in stretches, and looser where view periods barely overlap (CP-SAT's
``NoOverlap`` reasoning wins there); ``benchmarks/contacts/summary.md``
gives both. Energetic-reasoning cuts over windows of a stretch added little
on DSN week 10 (1,142.3 to 1,133.4 hours after 60 rounds and 300 s), so
they are left out.
"""

from __future__ import annotations

import numpy as np

from rota.problems.contacts import ContactInstance
from rota.solvers.contacts.encoding import Encoding, compulsory_cliques


def _stretches(reaches: list[tuple[int, int, int]]) -> list[tuple[int, list[int]]]:
    """``(length, options)`` of each connected union of ``(start, end, option)`` reaches."""
    found: list[tuple[int, list[int]]] = []
    start = end = 0
    members: list[int] = []
    for a, b, o in sorted(reaches):
        if members and a >= end:
            found.append((end - start, members))
            members = []
        if not members:
            start, end = a, b
        end = max(end, b)
        members.append(o)
    if members:
        found.append((end - start, members))
    return found


def capacity_bound(instance: ContactInstance, enc: Encoding) -> float | None:
    """The LP bound of the module docstring, in the instance's units.

    ``None`` when the encoding rounded times (rounded data proves nothing
    about the instance) or when HiGHS does not solve the LP to optimality.
    """
    if not enc.exact:
        return None
    import highspy

    n = len(enc.options)
    if n == 0:
        return 0.0
    hours = instance.objective == "hours"
    values = np.array([r.value for r in instance.requests], dtype=np.float64)
    longest = np.array([enc.max_length(o) for o in range(n)], dtype=np.float64)
    request = np.array([option.request for option in enc.options])
    # columns: l_o (0 .. n-1), y_o (n .. 2n-1); HiGHS minimises the negated objective
    cost = np.r_[-np.ones(n), np.zeros(n)] if hours else np.r_[np.zeros(n), -values[request]]
    rows: list[tuple[list[int], list[float], float]] = []
    for o in range(n):
        shortest = enc.min_duration[request[o]]
        rows.append(([o, n + o], [1.0, -longest[o]], 0.0))  # l <= longest * y
        rows.append(([o, n + o], [-1.0, float(shortest)], 0.0))  # l >= shortest * y
    for options in enc.by_request:
        if len(options) > 1:
            rows.append(([n + o for o in options], [1.0] * len(options), 1.0))
    for clique in compulsory_cliques(enc):
        rows.append(([n + o for o in clique], [1.0] * len(clique), 1.0))
    per_antenna: dict[int, list[tuple[int, int, int]]] = {}
    per_craft: dict[int, list[tuple[int, int, int]]] = {}
    for o, option in enumerate(enc.options):
        r = option.request
        for a in option.antennas:
            per_antenna.setdefault(a, []).append(
                (option.lo - enc.setup[r], option.hi + enc.teardown[r], o)
            )
        per_craft.setdefault(enc.craft[r], []).append((option.lo, option.hi + enc.mode_switch, o))
    # what a used option adds to its track's time on an antenna, and on its spacecraft
    busy = [float(enc.setup[r] + enc.teardown[r]) for r in request]
    link = [float(enc.mode_switch)] * n
    timelines = [(items, busy) for items in per_antenna.values()]
    timelines += [(items, link) for items in per_craft.values()]
    for reaches, around in timelines:
        for length, options in _stretches(reaches):
            if len(options) > 1:  # one option's track always fits its own reach
                coefficients = [1.0] * len(options) + [around[o] for o in options]
                rows.append(([*options, *(n + o for o in options)], coefficients, float(length)))

    lp = highspy.Highs()
    lp.setOptionValue("output_flag", False)
    lp.addCols(
        2 * n, cost, np.zeros(2 * n), np.r_[longest, np.ones(n)], 0,
        np.array([], dtype=np.int32), np.array([], dtype=np.int32), np.array([], dtype=np.float64),
    )  # fmt: skip
    starts = np.cumsum([0] + [len(index) for index, _, _ in rows[:-1]]).astype(np.int32)
    lp.addRows(
        len(rows), np.full(len(rows), -highspy.kHighsInf), np.array([b for _, _, b in rows]),
        int(sum(len(index) for index, _, _ in rows)), starts,
        np.concatenate([np.asarray(index, dtype=np.int32) for index, _, _ in rows]),
        np.concatenate([np.asarray(coefficients) for _, coefficients, _ in rows]),
    )  # fmt: skip
    lp.run()
    if lp.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    # the LP optimum is exact up to HiGHS's tolerances: loosen it by them, never tighten
    best = -lp.getInfo().objective_function_value
    best += 1e-6 * max(1.0, abs(best))
    return best / enc.scale / 3600 if hours else best


__all__ = ["capacity_bound"]
