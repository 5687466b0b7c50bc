"""Contact scheduling with OR-Tools CP-SAT: proven optima, or schedules with an upper bound.

Model
-----
On the integer encoding (:mod:`rota.solvers.contacts.encoding`), one
optional interval per option (request, resource, view-period stretch free of
maintenance), present when its Boolean ``p`` is true, with a start ``s`` and
a variable length ``l``: ``min_duration * p <= l <= duration * p`` and
``s + l`` inside the option. Then:

* at most one present option per request, and (redundant, for the LP
  relaxation, which misses the links once presolve has turned them into
  enforced constraints) the lengths of a request's options sum to at most
  its duration;
* per antenna, ``NoOverlap`` of the options that use it, each as the busy
  interval ``[s - setup, s + l + teardown)`` (an array's option is in the
  ``NoOverlap`` of each of its antennas); maintenance is already cut out of
  the options by the encoding, which is tighter than fixed intervals here;
* per spacecraft, ``NoOverlap`` of ``[s, s + l + mode_switch)``;
* (redundant) at most one option of each set whose compulsory parts meet
  (:func:`~rota.solvers.contacts.encoding.compulsory_cliques`): on the
  orbit-derived Iridium day they lowered the upper bound at 30 s from 114.1
  to 96.4 hours (88.1 scheduled), on DSN week 10 from 1,190 to 1,143;
* maximise ``sum l`` (hours) or ``sum value * p`` (values scaled to integers).

Proofs and bounds
-----------------
The family maximises, so CP-SAT's bound is an *upper* bound. It is reported,
and ``OPTIMAL`` claimed, only when the encoding is exact (times, and values
for the ``value`` objective, integral at some power of ten up to 10**4);
otherwise the model ran on safely rounded data and its proofs say nothing
about the instance. When every request's longest possible track gives a
lower bound than CP-SAT's (or CP-SAT ends before proving one), that one is
reported, with ``stats["bound_from"] = "longest tracks"``.

Search
------
At least :data:`MIN_WORKERS` workers, for CP-SAT's full portfolio; models
over :data:`LARGE_MODEL` options run without presolve, one worker per core.
CP-SAT's upper bounds on the DSN weeks stay far above the schedules found
(``benchmarks/contacts/summary.md``).

Starts
------
The best feasible warm start (else the first one given, else the greedy
schedule unless ``greedy_start=False``) is CP-SAT's solution hint; a feasible
one is also returned, with CP-SAT's bound, when CP-SAT ends without a better
schedule. An iteration of the stop is one improving schedule CP-SAT reports.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rota import signals
from rota.errors import UnsupportedInstanceError
from rota.problems.contacts import ContactInstance, ContactSolution
from rota.solvers.base import (
    ALL_CRITERIA,
    Capabilities,
    RequiresModules,
    Result,
    Status,
    best_feasible,
    finish,
    reconfigured,
)
from rota.solvers.contacts.encoding import Encoding, compulsory_cliques, encode
from rota.solvers.contacts.greedy import (
    construct,
    improves,
    longest_tracks_bound,
    objective_of,
)
from rota.solvers.cpsat import machine_workers
from rota.solvers.scaling import integer_scale
from rota.solvers.stopping import MAX_ENGINE_SECONDS, Stop

#: Fewest CP-SAT workers by default on models up to :data:`LARGE_MODEL`: with
#: fewer, CP-SAT's portfolio leaves out the LP-based workers that tighten the
#: bound (measured on generated instances of 100 and 200 requests: upper bound
#: 4 % and 9 % lower at 20 s with 8 workers than with 2, on 2 cores); on fewer
#: cores the workers share them.
MIN_WORKERS = 8
#: Options above which a model is large: CP-SAT then runs without presolve and
#: with one worker per core. Presolve costs more than it gives there (on a
#: generated week of 1,000 requests, 5,234 options, it took 4 s and the search
#: after it found nothing better than the search without it, started at 0.3 s;
#: at 5,000 requests, 27,018 options, it took the whole 15 s budget), and
#: workers sharing cores stop late on such models (8 workers on 2 cores ran
#: 10 s past a 15 s limit at 27,018 options, 2 workers 2 s).
LARGE_MODEL = 4_000
#: Largest number of options (candidate intervals) the model is built for:
#: beyond it, building the model in Python alone takes most of a minute.
MAX_OPTIONS = 300_000
_OPTION_NAMES = ("num_workers", "greedy_start")


class CPSATContacts(RequiresModules):
    """Contact scheduling with CP-SAT; see the module docstring.

    Parameters
    ----------
    num_workers
        CP-SAT search workers; ``None`` uses every core this process may run on,
        and at least :data:`MIN_WORKERS` on models up to :data:`LARGE_MODEL` options.
    greedy_start
        Without a warm start, hint CP-SAT with the greedy schedule (and keep
        it if CP-SAT finds nothing better).
    """

    name = "cpsat"
    problem = "contacts"
    requires = ("ortools.sat.python.cp_model",)
    description = "exact CP-SAT (OR-Tools): optional variable-length intervals, no-overlap"
    capabilities = Capabilities(warm_start=True, stopping=ALL_CRITERIA)

    def __init__(self, num_workers: int | None = None, greedy_start: bool = True) -> None:
        if num_workers is not None and (
            isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1
        ):
            raise ValueError(
                f"cpsat option num_workers={num_workers!r} must be a positive integer or None"
            )
        if not isinstance(greedy_start, bool):
            raise ValueError(f"cpsat option greedy_start={greedy_start!r} must be True or False")
        self.num_workers = num_workers
        self.greedy_start = greedy_start

    def configure(self, **options: Any) -> CPSATContacts:
        """A copy of this solver with ``options`` changed (a ValueError names a bad one)."""
        return reconfigured(self, _OPTION_NAMES, options)

    def supports(self, instance: ContactInstance) -> str | None:
        try:
            enc = encode(instance)
        except ValueError as exc:
            return f"cpsat: {exc}"
        if len(enc.options) > MAX_OPTIONS:
            return (
                f"cpsat: {instance.name} has {len(enc.options)} candidate intervals (limit "
                f"{MAX_OPTIONS}); use greedy"
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
        from ortools.sat.python import cp_model

        enc = encode(instance)
        best = best_feasible(instance, warm_start)
        if best is not None:
            hint, fallback = best[0], best[0]
        elif warm_start:  # an infeasible start still guides the search, but is no fallback
            hint, fallback = warm_start[0], None
        else:
            fallback = construct(instance, enc) if self.greedy_start else None
            hint = fallback
        model = _Model(cp_model, instance, enc)
        if hint is not None:
            model.hint(enc.placements(instance, hint))
        built = stop.elapsed  # encoding, greedy start and model, before the engine starts

        solver = cp_model.CpSolver()
        params = solver.parameters
        params.max_time_in_seconds = max(0.01, min(stop.remaining - 0.05, MAX_ENGINE_SECONDS))
        large = len(enc.options) > LARGE_MODEL
        params.num_workers = self.num_workers or (
            machine_workers() if large else max(MIN_WORKERS, machine_workers())
        )
        params.random_seed = seed % 2_147_483_647
        params.log_search_progress = False
        params.cp_model_presolve = not large
        # rota.signals decides what a Ctrl+C means; CP-SAT's own handler would
        # end this solve quietly and let a list of solves go on to the next one
        params.catch_sigint_signal = False
        callback = _stop_callback(cp_model, stop, model.factor)
        with signals.on_interrupt(solver.stop_search):
            code = solver.solve(model.model, callback)
        return self._result(instance, stop, seed, cp_model, solver, code, model, fallback, built)

    def _result(
        self,
        instance: ContactInstance,
        stop: Stop,
        seed: int,
        cp_model: Any,
        solver: Any,
        code: Any,
        model: _Model,
        fallback: ContactSolution | None,
        built: float,
    ) -> Result:
        stats: dict[str, Any] = {
            "cpsat_status": solver.status_name(code),
            "num_workers": solver.parameters.num_workers,
            "presolve": solver.parameters.cp_model_presolve,
            "options": len(model.enc.options),
            "engine_started": built,
            "time_scale": model.enc.scale,
            "proofs_valid": model.proofs_valid,
            "wall_time": solver.wall_time,
            "branches": solver.num_branches,
            "conflicts": solver.num_conflicts,
        }
        common = {"solver": self.name, "seed": seed, "stop": stop}
        if code == cp_model.MODEL_INVALID:
            stats["error"] = f"CP-SAT rejected the model: {model.model.validate()}"
            return finish(instance, None, Status.ERROR, stats=stats, **common)
        bound = None
        if model.proofs_valid and code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            raw = float(solver.best_objective_bound)
            if math.isfinite(raw):
                # the objective is integral, so the upper bound rounds down
                bound = math.floor(raw + 1e-6) / model.factor
        ceiling = longest_tracks_bound(instance, model.enc)
        if ceiling is not None and (bound is None or ceiling < bound):
            bound = ceiling
            stats["bound_from"] = "longest tracks"

        solution = None
        objective = -math.inf
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            solution = model.decode(solver)
            objective = objective_of(instance, solution)
            engine = solver.objective_value / model.factor
            stats["engine_objective"] = engine
            if model.proofs_valid and not math.isclose(engine, objective, rel_tol=1e-9,
                                                       abs_tol=1e-9):  # fmt: skip
                stats["error"] = f"cpsat objective {engine} differs from the schedule's {objective}"
                return finish(instance, solution, Status.ERROR, bound=bound, stats=stats, **common)
        if fallback is not None and (
            solution is None or improves(objective_of(instance, fallback), objective)
        ):
            stats["solution_from"] = "start (CP-SAT found nothing better)"
            solution = fallback
            objective = objective_of(instance, fallback)
            code = cp_model.FEASIBLE
        if solution is None:
            return finish(instance, None, Status.NO_SOLUTION, bound=bound, stats=stats, **common)
        proven = code == cp_model.OPTIMAL and model.proofs_valid
        if bound is not None:
            bound = max(bound, objective)  # floating-point noise on a proven optimum
            if objective != 0:
                stats["gap"] = (bound - objective) / abs(objective)
        return finish(
            instance, solution, Status.OPTIMAL if proven else Status.FEASIBLE, bound=bound,
            stats=stats, **common,
        )  # fmt: skip


def _stop_callback(cp_model: Any, stop: Stop, factor: float) -> Any:
    """A solution callback that shows ``stop`` every improving schedule and ends on its word."""

    class StopCallback(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            if stop(self.objective_value / factor):
                self.stop_search()

    return StopCallback()


class _Model:
    """The CP-SAT model of one instance, its hints and its decoding."""

    def __init__(self, cp_model: Any, instance: ContactInstance, enc: Encoding) -> None:
        self.enc = enc
        self.model = model = cp_model.CpModel()
        self.present: list[Any] = []
        self.start: list[Any] = []
        self.length: list[Any] = []
        self.end: list[Any] = []
        per_antenna: list[list[Any]] = [[] for _ in instance.antennas]
        per_craft: dict[int, list[Any]] = {}
        ms = enc.mode_switch
        for o, option in enumerate(enc.options):
            r = option.request
            su, td = enc.setup[r], enc.teardown[r]
            shortest = enc.min_duration[r]
            p = model.new_bool_var(f"p{o}")
            s = model.new_int_var(option.lo, option.hi - shortest, f"s{o}")
            length = model.new_int_var(0, enc.max_length(o), f"l{o}")
            end = model.new_int_var(option.lo, option.hi, f"e{o}")
            model.add(end == s + length)
            # linear, not only reified, so that the LP relaxation sees them
            model.add(length >= shortest * p)
            model.add(length <= enc.max_length(o) * p)
            # intervals take affine expressions of one variable each: start, size, end
            busy = model.new_optional_interval_var(
                s - su, length + su + td, end + td, p, f"busy{o}"
            )
            for a in option.antennas:
                per_antenna[a].append(busy)
            link = model.new_optional_interval_var(s, length + ms, end + ms, p, f"link{o}")
            per_craft.setdefault(enc.craft[r], []).append((r, link))
            self.present.append(p)
            self.start.append(s)
            self.length.append(length)
            self.end.append(end)
        for r, options in enumerate(enc.by_request):
            if len(options) > 1:
                model.add_at_most_one(self.present[o] for o in options)
                # redundant, but presolve turns the per-option links into enforced
                # constraints the LP relaxation misses: without it the bound is loose
                model.add(sum(self.length[o] for o in options) <= enc.duration[r])
        for clique in compulsory_cliques(enc):  # redundant, but CP-SAT's LP misses them
            model.add_at_most_one(self.present[o] for o in clique)
        for intervals in per_antenna:
            if len(intervals) > 1:
                model.add_no_overlap(intervals)
        for links in per_craft.values():
            if len({r for r, _ in links}) > 1:  # one request's options exclude each other already
                model.add_no_overlap(link for _, link in links)

        self.proofs_valid = enc.exact
        if instance.objective == "hours":
            self.factor = enc.scale * 3600.0
            model.maximize(sum(self.length))
        else:
            values = np.array([r.value for r in instance.requests], dtype=np.float64)
            vs, exact = integer_scale(values)
            scaled = np.floor(values * vs + 1e-9).astype(np.int64)
            self.proofs_valid &= exact
            self.factor = float(vs)
            model.maximize(
                sum(int(scaled[option.request]) * self.present[o]
                    for o, option in enumerate(enc.options))
            )  # fmt: skip

    def hint(self, placements: list[tuple[int, int, int]]) -> None:
        """Hint every variable: the placements present, every other option absent."""
        chosen = {o: (start, length) for o, start, length in placements}
        for o, option in enumerate(self.enc.options):
            start, length = chosen.get(o, (option.lo, 0))
            self.model.add_hint(self.present[o], o in chosen)
            self.model.add_hint(self.start[o], start)
            self.model.add_hint(self.length[o], length)
            self.model.add_hint(self.end[o], start + length)

    def decode(self, solver: Any) -> ContactSolution:
        return ContactSolution(
            tuple(
                self.enc.track(o, solver.value(self.start[o]), solver.value(self.length[o]))
                for o in range(len(self.enc.options))
                if solver.boolean_value(self.present[o])
            )
        )


__all__ = ["LARGE_MODEL", "MAX_OPTIONS", "MIN_WORKERS", "CPSATContacts"]
