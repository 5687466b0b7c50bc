"""Contact scheduling as a disjunctive MILP, through PuLP with CBC or HiGHS, for small instances.

Formulation
-----------
On the integer encoding (:mod:`rota.solvers.contacts.encoding`), per option
``o`` (request, resource, view-period stretch free of maintenance): a binary
``x_o`` (the option is used), an integer start ``s_o`` and an integer length
``l_o`` with ``min_duration x_o <= l_o <= duration x_o`` and ``s_o + l_o``
inside the option. At most one option per request. For every pair of options
of different requests that could clash (sharing an antenna with overlapping
busy ranges, or one spacecraft with overlapping windows), one order binary
``y`` and two big-M constraints::

    s_o  + l_o  + gap(o, o') <= s_o' + M  (3 - y - x_o - x_o')     # o before o'
    s_o' + l_o' + gap(o', o) <= s_o  + M' (2 + y - x_o - x_o')     # o' before o

where ``gap(o, o')`` is ``teardown(o) + setup(o')`` on a shared antenna and
the mode-switch time on a shared spacecraft (the larger when both), and each
``M`` is the largest value its left side can reach, so it is as tight as the
windows allow. A pair whose windows force one order needs no binary. Sets
of options whose compulsory parts meet get ``sum x <= 1``
(:func:`~rota.solvers.contacts.encoding.compulsory_cliques`). The objective
is the hours (``sum l``) or the value (``sum value x``).

Exactness
---------
Times are integers and every big-M stays below :data:`MAX_BIG_M`, so a
solution within the backends' integrality tolerance (1e-6) rounds to one
that meets every constraint exactly. The MILP is offered up to
:data:`MAX_OPTIONS` options and :data:`MAX_PAIRS` order binaries; larger
instances are refused with the reason (use ``cpsat`` or ``greedy``).

Statuses follow :mod:`rota.solvers.milp`: CBC's log and the solution status
are read, never PuLP's problem status, and a run stopped by its time limit
is never ``OPTIMAL``. The model minimises the negated objective, so the
backends' lower bound is the upper bound reported here (or every request's
longest possible track, when that is lower). The best feasible
warm start, else the greedy schedule (``greedy_start``), is the MIP start,
and is returned if the backend ends without a better schedule. One MIP solve
is the only iteration, so the time limit is the only criterion honoured.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from rota.errors import UnsupportedInstanceError
from rota.problems.contacts import ContactInstance, ContactSolution
from rota.solvers.base import Capabilities, Result, Status, best_feasible, finish, reconfigured
from rota.solvers.contacts.encoding import Encoding, compulsory_cliques, encode
from rota.solvers.contacts.greedy import (
    construct,
    improves,
    longest_tracks_bound,
    objective_of,
)
from rota.solvers.milp import BACKENDS, MILPSolver
from rota.solvers.milp.backends import CBCRunner, HiGHSRunner, load_pulp
from rota.solvers.stopping import MAX_ENGINE_SECONDS, Stop

#: Most options (candidate intervals) and order binaries offered: the big-M
#: relaxation is weak, and beyond these sizes CBC rarely improves its start.
MAX_OPTIONS = 3_000
MAX_PAIRS = 50_000
#: Largest big-M in time units: times 1e-6 (the integrality tolerance) it must
#: stay below half a unit, so rounding a solution keeps it exactly feasible.
MAX_BIG_M = 400_000
#: Relative tolerance by which a bound on a non-integral objective is raised.
_BOUND_TOL = 1e-6
#: Handing the model to a backend costs about this many times building it
#: (CBC: an MPS file written, then the solution read back), as in the routing MILP.
_HANDOVER = {"cbc": 2.0, "highs": 1.5}
_OPTION_NAMES = ("backend", "greedy_start", "threads")


@dataclass
class _Pair:
    first: int
    second: int
    gap_12: int  # time between the end of first and the start of second when first goes first
    gap_21: int
    big_12: int
    big_21: int


def order_pairs(enc: Encoding) -> list[_Pair]:
    """Every pair of options that may clash and whose order is not forced by their windows."""
    found: dict[tuple[int, int], list[int]] = {}  # (o, o') -> [gap_12, gap_21]

    def note(o: int, p: int, g12: int, g21: int) -> None:
        key, gaps = ((o, p), [g12, g21]) if o < p else ((p, o), [g21, g12])
        old = found.get(key)
        found[key] = gaps if old is None else [max(old[0], gaps[0]), max(old[1], gaps[1])]

    def sweep(items: list[tuple[int, int, int]], gap: Any) -> None:
        items.sort()
        for k, (_, b1, o) in enumerate(items):
            for c0, _, p in items[k + 1 :]:
                if c0 >= b1:
                    break
                if enc.options[o].request != enc.options[p].request:
                    note(o, p, gap(o, p), gap(p, o))

    per_antenna: dict[int, list[tuple[int, int, int]]] = {}
    per_craft: dict[int, list[tuple[int, int, int]]] = {}
    ms = enc.mode_switch
    for o, option in enumerate(enc.options):
        r = option.request
        for a in option.antennas:
            per_antenna.setdefault(a, []).append(
                (option.lo - enc.setup[r], option.hi + enc.teardown[r], o)
            )
        per_craft.setdefault(enc.craft[r], []).append((option.lo, option.hi + ms, o))

    def antenna_gap(o: int, p: int) -> int:
        return enc.teardown[enc.options[o].request] + enc.setup[enc.options[p].request]

    for items in per_antenna.values():
        sweep(items, antenna_gap)
    for items in per_craft.values():
        sweep(items, lambda o, p: ms)

    pairs = []
    for (o, p), (g12, g21) in found.items():
        first, second = enc.options[o], enc.options[p]
        big_12 = first.hi + g12 - second.lo  # most "o ends + gap - o' starts" can be
        big_21 = second.hi + g21 - first.lo
        if big_12 > 0 and big_21 > 0:  # otherwise one order always holds
            pairs.append(_Pair(o, p, g12, g21, big_12, big_21))
    return pairs


@dataclass
class _Formulation:
    """What :mod:`rota.solvers.milp.backends` needs of a model: the PuLP problem and
    its integer variables (for MIP starts)."""

    problem: Any
    integer_vars: list[Any] = field(default_factory=list)


class MILPContacts:
    """Disjunctive MILP for small contact-scheduling instances; see the module docstring.

    Parameters
    ----------
    backend
        ``"cbc"`` (bundled with PuLP) or ``"highs"`` (highspy).
    greedy_start
        Without a feasible warm start, start the MIP from the greedy schedule.
    threads
        Threads the backend may use; ``None`` leaves the backend's default.
    """

    name = "milp"
    problem = "contacts"
    description = "exact disjunctive MILP (PuLP: CBC or HiGHS) for small instances"
    capabilities = Capabilities(warm_start=True, stopping=frozenset({"time"}))

    def __init__(
        self, backend: str = "cbc", greedy_start: bool = True, threads: int | None = None
    ) -> None:
        # the routing MILP validates the shared options and checks the backend
        self._backend = MILPSolver(backend=backend, greedy_start=greedy_start, threads=threads)
        self.backend = backend
        self.greedy_start = greedy_start
        self.threads = threads
        self.import_error: str | None = None

    def configure(self, **options: Any) -> MILPContacts:
        """A copy of this solver with ``options`` changed (a ValueError names a bad one)."""
        return reconfigured(self, _OPTION_NAMES, options)

    def available(self) -> bool:
        """True when PuLP and the chosen backend run; never raises."""
        ok = self._backend.available()
        self.import_error = self._backend.import_error
        return ok

    def supports(self, instance: ContactInstance) -> str | None:
        try:
            enc = encode(instance)
        except ValueError as exc:
            return f"milp: {exc}"
        if len(enc.options) > MAX_OPTIONS:
            return (
                f"milp: {instance.name} has {len(enc.options)} candidate intervals (limit "
                f"{MAX_OPTIONS}); use cpsat or greedy"
            )
        pairs = order_pairs(enc)
        if len(pairs) > MAX_PAIRS:
            return (
                f"milp: {instance.name} needs {len(pairs)} order binaries (limit {MAX_PAIRS}); "
                "use cpsat or greedy"
            )
        big = max((max(p.big_12, p.big_21) for p in pairs), default=0)
        if big > MAX_BIG_M:
            return (
                f"milp: {instance.name} needs a big-M of {big} time units (limit {MAX_BIG_M}, "
                "where the integrality tolerance stops being exact); use cpsat"
            )
        return None

    def solve(
        self,
        instance: ContactInstance,
        stop: Stop,
        seed: int,
        warm_start: tuple[ContactSolution, ...] = (),
    ) -> Result:
        """Solve within ``stop``; see the module docstring for statuses and bounds."""
        reason = self.supports(instance)
        if reason is not None:
            raise UnsupportedInstanceError(reason)
        if not load_pulp():
            raise UnsupportedInstanceError("solver 'milp' is not installed: PuLP does not import")
        enc = encode(instance)
        if not enc.options:  # no request fits anywhere: the empty schedule is optimal
            stop(0.0)
            return finish(
                instance, ContactSolution(), Status.OPTIMAL, solver=self.name, seed=seed,
                stop=stop, bound=0.0, stats={"options": 0},
            )  # fmt: skip
        best = best_feasible(instance, warm_start)
        if best is not None:
            start = best[0]
        else:
            start = construct(instance, enc) if self.greedy_start else None
        began = time.perf_counter()
        model = _Model(instance, enc, order_pairs(enc))
        if start is not None:
            model.start(enc.placements(instance, start))
        build = time.perf_counter() - began
        stats: dict[str, Any] = {
            "backend": self.backend,
            "options": len(enc.options),
            "order_binaries": len(model.pairs),
            "build_seconds": build,
        }
        common = {"solver": self.name, "seed": seed, "stop": stop}
        # the engine's limit leaves time to hand the model over and read the answer back
        limit = min(stop.remaining - _HANDOVER[self.backend] * build - 0.05, MAX_ENGINE_SECONDS)
        if limit < 0.05:
            stats["backend_detail"] = "no time left to run the MIP after building it"
            stop(objective_of(instance, start) if start is not None else None)
            if start is None:
                return finish(instance, None, Status.NO_SOLUTION, stats=stats, **common)
            stats["solution_from"] = "start (no time left for the MIP)"
            return finish(instance, start, Status.FEASIBLE, stats=stats, **common)
        backend_seed = seed % 2_147_483_646 + 1  # CBC reads 0 as "seed from the clock"
        with tempfile.TemporaryDirectory(prefix="rota-milp-") as workdir:
            if self.backend == "cbc":
                runner: Any = CBCRunner(self.threads, backend_seed, workdir)
            else:
                runner = HiGHSRunner(self.threads, backend_seed)
            outcome = runner.run(model.form, mip=True, time_limit=limit, warm=start is not None)
        stats["backend_detail"] = outcome.detail
        bound = None
        if outcome.bound is not None and math.isfinite(outcome.bound) and enc.exact:
            upper = -outcome.bound / model.factor
            if model.integral:
                upper = math.floor(-outcome.bound + 1e-6) / model.factor
            else:
                upper += _BOUND_TOL * max(1.0, abs(upper))
            bound = upper
        ceiling = longest_tracks_bound(instance, enc)
        if ceiling is not None and (bound is None or ceiling < bound):
            bound = ceiling
            stats["bound_from"] = "longest tracks"
        solution = model.decode() if outcome.has_values else None
        objective = objective_of(instance, solution) if solution is not None else -math.inf
        stop(objective if solution is not None else None)
        status = Status.OPTIMAL if outcome.status == "optimal" and enc.exact else Status.FEASIBLE
        if start is not None and (
            solution is None or improves(objective_of(instance, start), objective)
        ):
            solution, objective = start, objective_of(instance, start)
            stats["solution_from"] = f"start ({self.backend}: {outcome.detail})"
            status = Status.FEASIBLE
        if solution is None:
            if outcome.status == "infeasible":
                # the empty schedule is always feasible: the backend is wrong
                stats["error"] = f"{self.backend} reported infeasible: {outcome.detail}"
                return finish(instance, None, Status.ERROR, stats=stats, **common)
            return finish(instance, None, Status.NO_SOLUTION, bound=bound, stats=stats, **common)
        if bound is not None:
            bound = max(bound, objective)
            if objective != 0:
                stats["gap"] = (bound - objective) / abs(objective)
        return finish(instance, solution, status, bound=bound, stats=stats, **common)


class _Model:
    """The PuLP model of one instance, its MIP start and its decoding."""

    def __init__(self, instance: ContactInstance, enc: Encoding, pairs: list[_Pair]) -> None:
        import pulp  # loaded by now: see backends.load_pulp

        self.enc = enc
        self.pairs = pairs
        prob = pulp.LpProblem("contacts", pulp.LpMinimize)
        self.x, self.s, self.l = [], [], []
        for o, option in enumerate(enc.options):
            r = option.request
            shortest, longest = enc.min_duration[r], enc.max_length(o)
            x = prob.add_variable(f"x_{o}", cat=pulp.LpBinary)
            s = prob.add_variable(f"s_{o}", option.lo, option.hi - shortest, cat=pulp.LpInteger)
            length = prob.add_variable(f"l_{o}", 0, longest, cat=pulp.LpInteger)
            prob += length - shortest * x >= 0
            prob += length - longest * x <= 0
            prob += s + length <= option.hi
            self.x.append(x)
            self.s.append(s)
            self.l.append(length)
        for options in enc.by_request:
            if len(options) > 1:
                prob += pulp.lpSum(self.x[o] for o in options) <= 1
        for clique in compulsory_cliques(enc):  # valid cuts the big-M relaxation misses
            prob += pulp.lpSum(self.x[o] for o in clique) <= 1
        self.y = []
        for k, pair in enumerate(pairs):
            o, p = pair.first, pair.second
            y = prob.add_variable(f"y_{k}", cat=pulp.LpBinary)
            xs = self.x[o] + self.x[p]
            prob += (
                self.s[o] + self.l[o] + pair.gap_12 - self.s[p]
                <= pair.big_12 * 3 - pair.big_12 * y - pair.big_12 * xs
            )
            prob += (
                self.s[p] + self.l[p] + pair.gap_21 - self.s[o]
                <= pair.big_21 * 2 + pair.big_21 * y - pair.big_21 * xs
            )
            self.y.append(y)
        if instance.objective == "hours":
            self.factor = enc.scale * 3600.0
            self.integral = True
            prob += -pulp.lpSum(self.l)
        else:
            values = [r.value for r in instance.requests]
            self.factor = 1.0
            self.integral = all(float(v).is_integer() for v in values)
            prob += -pulp.lpSum(
                values[option.request] * self.x[o] for o, option in enumerate(enc.options)
            )
        self.form = _Formulation(prob, [*self.x, *self.s, *self.l, *self.y])

    def start(self, placements: list[tuple[int, int, int]]) -> None:
        """Set a consistent MIP start: the placements used, every other option unused."""
        chosen = {o: (start, length) for o, start, length in placements}
        for o, option in enumerate(self.enc.options):
            start, length = chosen.get(o, (option.lo, 0))
            self.x[o].setInitialValue(1 if o in chosen else 0)
            self.s[o].setInitialValue(start)
            self.l[o].setInitialValue(length)
        for pair, y in zip(self.pairs, self.y, strict=True):
            before = (
                pair.first in chosen
                and pair.second in chosen
                and (chosen[pair.first][0] < chosen[pair.second][0])
            )
            y.setInitialValue(1 if before else 0)

    def decode(self) -> ContactSolution:
        tracks = []
        for o in range(len(self.enc.options)):
            if (self.x[o].varValue or 0.0) > 0.5:
                start, length = round(self.s[o].varValue), round(self.l[o].varValue)
                tracks.append(self.enc.track(o, start, length))
        return ContactSolution(tuple(tracks))


__all__ = ["BACKENDS", "MAX_BIG_M", "MAX_OPTIONS", "MAX_PAIRS", "MILPContacts", "order_pairs"]
