"""Exact routing with OR-Tools CP-SAT.

Models
------
Node 0 is the depot and node ``a >= 1`` is the ``a``-th client; one Boolean per
allowed arc (see :func:`rota.solvers.milp.formulation.allowed_arcs`).

* TSP/ATSP: ``AddCircuit`` over every location.
* One vehicle type (CVRP, ACVRP, VRPTW): ``AddMultipleCircuit`` (every route
  is a circuit through the depot), between ``ceil(total demand / Q)`` and
  ``count`` routes, a load variable per client with ``load_b >= load_a + d_b``
  on every used client arc (MTZ-like; the circuit constraint already excludes
  subtours, the loads only enforce capacity), and, with time windows, a
  service start per client with ``start_b >= start_a + service_a + travel_ab``
  on every used arc and a return before the depot closes.
* Several vehicle types: one ``AddCircuit`` per vehicle, where a client's
  self-loop means "not visited by this vehicle" and the depot's self-loop
  "vehicle unused"; each client is visited by exactly one vehicle, each
  vehicle's load is at most its capacity, identical vehicles are used in
  order. Offered only for small fleets (:data:`MAX_VEHICLE_ARCS`).

Integer data
------------
CP-SAT needs integers. Costs are scaled with
:func:`~rota.solvers.scaling.integer_scale`; when no exact scale exists they are
scaled by ``10**6`` and rounded *down*, so every CP-SAT bound is still a valid
lower bound on the true cost; the objective is then the evaluator's and
``OPTIMAL`` is claimed only if that objective meets the bound. Travel and
service times, time windows, demands and capacities are scaled the same way;
when that is inexact they are rounded conservatively (times and demands up,
window closings and capacities down), so every solution found is truly
feasible, but a proof about the rounded model says nothing about the true one:
the result is then never ``OPTIMAL`` or ``INFEASIBLE`` and carries no bound.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from rota import signals
from rota.errors import UnsupportedInstanceError
from rota.problems.routing import RoutingInstance, RoutingSolution, evaluate
from rota.solvers.base import (
    ALL_CRITERIA,
    RequiresModules,
    Result,
    Status,
    best_feasible,
    finish,
    reconfigured,
)
from rota.solvers.milp.formulation import allowed_arcs, vehicle_copies
from rota.solvers.milp.heuristics import greedy_routes
from rota.solvers.routing import (
    RoutingCapabilities,
    check_capabilities,
    per_instance,
    size_family,
)
from rota.solvers.scaling import integer_scale
from rota.solvers.stopping import MAX_ENGINE_SECONDS, Stop

#: Largest number of clients offered per problem family.
MAX_CLIENTS = {"tsp": 400, "cvrp": 100, "vrptw": 100, "hf": 40}
#: Vehicle-indexed (heterogeneous fleet) models: vehicles times arcs, at most.
MAX_VEHICLE_ARCS = 60_000
#: Scale for float costs that no power of ten up to 10**4 makes integral.
FLOAT_COST_SCALE = 1_000_000
#: Scaled integers must stay far from int64 overflow inside CP-SAT's sums.
_MAX_SCALED = 2**50
#: Relative slack between the evaluator's objective and a bound for OPTIMAL
#: when costs were rounded: only floating-point noise, not rounding error.
_PROOF_TOL = 1e-9

_OPTION_NAMES = ("num_workers", "greedy_start")


def machine_workers() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class _Scaled:
    """Integer data for CP-SAT and how it relates to the instance."""

    cost: np.ndarray  # (types, n, n) int64
    fixed: np.ndarray  # (types,) int64
    cost_scale: int
    cost_exact: bool
    step: np.ndarray | None  # (n, n) service at tail + travel, int64
    open_: np.ndarray | None
    close: np.ndarray | None
    demand: np.ndarray  # int64
    capacity: list[int | None]
    proofs_valid: bool  # times and loads scaled exactly


@per_instance
def _scale(instance: RoutingInstance) -> _Scaled:
    types = instance.vehicle_types
    unit = np.stack([vt.unit_distance_cost * instance.distance for vt in types])
    fixed = np.array([vt.fixed_cost for vt in types], dtype=np.float64)
    s, exact = integer_scale(unit, fixed)
    if exact:
        cost, fixed_i = np.round(unit * s), np.round(fixed * s)
    else:  # rounding down keeps every bound CP-SAT proves a bound on the true costs
        s = FLOAT_COST_SCALE
        cost, fixed_i = np.floor(unit * s), np.floor(fixed * s)

    valid = True
    step = open_ = close = None
    if instance.time_windows is not None:
        raw_step = instance.service_time[:, None] + instance.travel_time
        windows = instance.time_windows
        ts, t_exact = integer_scale(raw_step, windows)
        if t_exact:
            step, open_, close = (
                np.round(raw_step * ts),
                np.round(windows[:, 0] * ts),
                np.round(windows[:, 1] * ts),
            )
        else:  # later arrivals and earlier closings: whatever CP-SAT finds is truly on time
            step = np.ceil(raw_step * ts)
            open_, close = np.ceil(windows[:, 0] * ts), np.floor(windows[:, 1] * ts)
        valid &= t_exact

    caps = [vt.capacity for vt in types]
    loads = [instance.demand] + [np.array([c]) for c in caps if c is not None]
    ls, l_exact = integer_scale(*loads)
    if l_exact:
        demand = np.round(instance.demand * ls)
        capacity = [None if c is None else int(round(c * ls)) for c in caps]
    else:  # heavier clients and smaller vehicles: every route found truly fits
        demand = np.ceil(instance.demand * ls)
        capacity = [None if c is None else int(math.floor(c * ls)) for c in caps]
    valid &= l_exact

    # In floats, before any cast (a value past int64 wraps around silently): the
    # objective, a route's times and the loads summed along it must all fit.
    sums = {
        "costs": cost.max() * instance.num_locations + fixed_i.sum(),
        "loads": demand.sum() + max((c for c in capacity if c is not None), default=0),
    }
    if step is not None:
        sums["times"] = step.max(axis=1).sum() + close.max()
    for what, value in sums.items():
        if not value <= _MAX_SCALED:
            raise ValueError(
                f"cpsat cannot scale the {what} of {instance.name} to integers: sums up to "
                f"{value:.3g} are too large for 64-bit arithmetic"
            )
    as_int = [a.astype(np.int64) if a is not None else None for a in (step, open_, close)]
    return _Scaled(
        cost=cost.astype(np.int64),
        fixed=fixed_i.astype(np.int64),
        cost_scale=int(s),
        cost_exact=exact,
        step=as_int[0],
        open_=as_int[1],
        close=as_int[2],
        demand=demand.astype(np.int64),
        capacity=capacity,
        proofs_valid=valid,
    )


class CPSATSolver(RequiresModules):
    """Exact routing with OR-Tools CP-SAT; see the module docstring.

    Parameters
    ----------
    num_workers
        CP-SAT search workers; ``None`` uses every core this process may run on.
    greedy_start
        Without a warm start, hint CP-SAT with a solution from
        :mod:`rota.solvers.greedy`.

    A warm start (the best feasible one given, else the first) is CP-SAT's
    solution hint; a feasible one is also returned if CP-SAT finds nothing
    better. An iteration is one improving solution CP-SAT reports.
    """

    name = "cpsat"
    problem = "routing"
    requires = ("ortools.sat.python.cp_model",)
    description = "exact CP-SAT (OR-Tools): circuit constraints, loads and start times"
    capabilities = RoutingCapabilities(
        warm_start=True,
        stopping=ALL_CRITERIA,
        asymmetric=True,
        time_windows=True,
        heterogeneous=True,
        multi_depot=False,
        uncapacitated=True,
        max_clients=MAX_CLIENTS,
    )

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

    def configure(self, **options: Any) -> CPSATSolver:
        """A copy of this solver with ``options`` changed.

        Raises
        ------
        ValueError
            An unknown option name or an invalid value; the message names it.
        """
        return reconfigured(self, _OPTION_NAMES, options)

    def supports(self, instance: RoutingInstance) -> str | None:
        """``None`` if the models cover ``instance``, else why not."""
        reason = check_capabilities(self.name, self.capabilities, instance)
        if reason is not None:
            return reason
        family = size_family(instance)
        if family == "hf":
            n = instance.num_locations
            size = len(vehicle_copies(instance)) * n * n
            if size > MAX_VEHICLE_ARCS:
                return (
                    f"cpsat's vehicle-indexed model of {instance.name} would have {size} arc "
                    f"literals (limit {MAX_VEHICLE_ARCS}); bound the vehicle counts or use a "
                    "heuristic solver such as pyvrp"
                )
        try:
            _scale(instance)
        except ValueError as exc:
            return str(exc)
        return None

    def solve(
        self,
        instance: RoutingInstance,
        stop: Stop,
        seed: int,
        warm_start: tuple[RoutingSolution, ...] = (),
    ) -> Result:
        """Solve ``instance`` within ``stop``; see the module docstring for the status."""
        reason = self.supports(instance)
        if reason is not None:
            raise UnsupportedInstanceError(reason)
        from ortools.sat.python import cp_model

        scaled = _scale(instance)
        builder = _Builder(cp_model, instance, scaled)
        if instance.is_tsp:
            builder.tsp()
        elif len(instance.vehicle_types) == 1:
            builder.one_type()
        else:
            builder.vehicles()
        best = best_feasible(instance, warm_start)
        if best is not None:
            hint, initial = _routes(best[0]), _routes(best[0])
        elif warm_start:  # infeasible starts still guide the search, but are no fallback
            hint, initial = _routes(warm_start[0]), None
        else:
            initial = greedy_routes(instance) if self.greedy_start else None
            hint = initial
        builder.hint(hint)

        solver = cp_model.CpSolver()
        params = solver.parameters
        params.max_time_in_seconds = max(0.01, min(stop.remaining - 0.05, MAX_ENGINE_SECONDS))
        params.num_workers = self.num_workers or machine_workers()
        params.random_seed = seed % 2_147_483_647
        params.log_search_progress = False
        # rota.signals decides what a Ctrl+C means; CP-SAT's own handler would
        # end this solve quietly and let a list of solves go on to the next one
        params.catch_sigint_signal = False
        with signals.on_interrupt(solver.stop_search):
            code = solver.solve(builder.model, _stop_callback(cp_model, stop, scaled.cost_scale))
        return self._result(instance, stop, seed, cp_model, solver, code, builder, scaled, initial)

    def _result(
        self,
        instance: RoutingInstance,
        stop: Stop,
        seed: int,
        cp_model: Any,
        solver: Any,
        code: Any,
        builder: _Builder,
        scaled: _Scaled,
        initial: list[tuple[list[int], int]] | None,
    ) -> Result:
        status_name = solver.status_name(code)
        stats: dict[str, Any] = {
            "cpsat_status": status_name,
            "num_workers": solver.parameters.num_workers,
            "cost_scale": scaled.cost_scale,
            "cost_scale_exact": scaled.cost_exact,
            "proofs_valid": scaled.proofs_valid,
            "wall_time": solver.wall_time,
            "branches": solver.num_branches,
            "conflicts": solver.num_conflicts,
        }
        common = {"solver": self.name, "seed": seed, "stop": stop}
        if code == cp_model.MODEL_INVALID:
            stats["error"] = f"CP-SAT rejected the model: {builder.model.validate()}"
            return finish(instance, None, Status.ERROR, stats=stats, **common)
        bound = None
        if scaled.proofs_valid and code != cp_model.INFEASIBLE:
            raw = float(solver.best_objective_bound)
            if math.isfinite(raw):
                # an exact integral objective allows rounding the bound up
                raw = math.ceil(raw - 1e-6) if scaled.cost_exact else raw
                bound = raw / scaled.cost_scale
        if code == cp_model.INFEASIBLE:
            if scaled.proofs_valid:
                return finish(instance, None, Status.INFEASIBLE, stats=stats, **common)
            stats["note"] = "the conservatively rounded model is infeasible; no proof for the data"
            return finish(instance, None, Status.NO_SOLUTION, stats=stats, **common)
        start = None
        if initial is not None:
            routes = RoutingSolution.from_lists([v for v, _ in initial], [k for _, k in initial])
            start = (routes, evaluate(instance, routes).objective)

        def start_result(why: str) -> Result:
            solution, objective = start
            stats["solution_from"] = f"start ({why})"
            capped = None if bound is None else min(bound, objective)
            if capped is not None and objective != 0:
                stats["gap"] = (objective - capped) / abs(objective)
            return finish(instance, solution, Status.FEASIBLE, bound=capped, stats=stats, **common)

        if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            if start is None:
                return finish(
                    instance, None, Status.NO_SOLUTION, bound=bound, stats=stats, **common
                )
            return start_result("CP-SAT stopped before finding a solution")

        solution = builder.decode(solver)
        engine = float(solver.objective_value)
        stats["engine_objective"] = engine
        objective = evaluate(instance, solution).objective
        # with rounded costs CP-SAT's proof is about the rounded model: the true
        # objective must meet the (valid) bound itself
        met = scaled.cost_exact or (
            bound is not None and objective <= bound + _PROOF_TOL * max(1.0, abs(objective))
        )
        proven = code == cp_model.OPTIMAL and scaled.proofs_valid and met
        if not proven and start is not None and start[1] < objective:
            # stopped (an iteration or improvement limit) before it caught up with its hint
            return start_result("better than CP-SAT's last solution")
        status = Status.OPTIMAL if proven else Status.FEASIBLE
        if bound is not None and bound > objective:
            bound = objective  # floating-point noise on a proven optimum
        if bound is not None and objective != 0:
            stats["gap"] = (objective - bound) / abs(objective)
        backend_objective = engine / scaled.cost_scale if scaled.cost_exact else None
        if backend_objective is not None and not math.isclose(
            backend_objective, objective, rel_tol=1e-9, abs_tol=1e-9
        ):  # the decoded routes are not the ones CP-SAT costed: report, never hide
            stats["error"] = (
                f"cpsat objective {backend_objective} differs from the evaluator's {objective}"
            )
            return finish(instance, solution, Status.ERROR, bound=bound, stats=stats, **common)
        return finish(
            instance,
            solution,
            status,
            backend_objective=backend_objective,
            bound=bound,
            stats=stats,
            **common,
        )


def _routes(solution: RoutingSolution) -> list[tuple[list[int], int]]:
    return [(list(r.visits), r.vehicle_type) for r in solution.routes if r.visits]


def _stop_callback(cp_model: Any, stop: Stop, cost_scale: int) -> Any:
    """A solution callback that shows ``stop`` every solution and ends the search on its word."""

    class StopCallback(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            if stop(self.objective_value / cost_scale):
                self.stop_search()

    return StopCallback()


class _Builder:
    """Builds the CP-SAT model and decodes its solutions."""

    def __init__(self, cp_model: Any, instance: RoutingInstance, scaled: _Scaled) -> None:
        self.cp = cp_model
        self.model = cp_model.CpModel()
        self.instance = instance
        self.scaled = scaled
        self.depot = instance.depots[0]
        self.loc = [self.depot, *(int(c) for c in instance.clients)]  # node -> location
        allowed = allowed_arcs(instance)
        m = len(self.loc)
        self.node_arcs = [
            (a, b)
            for a in range(m)
            for b in range(m)
            if a != b and allowed[self.loc[a], self.loc[b]]
        ]
        # vehicle -> {(a, b): literal}; one entry unless the model is vehicle-indexed
        self.lits: list[dict[tuple[int, int], Any]] = []
        self.vehicle_type: list[int] = []

    def _arc_literals(self, tag: str) -> dict[tuple[int, int], Any]:
        return {(a, b): self.model.new_bool_var(f"x{tag}_{a}_{b}") for a, b in self.node_arcs}

    def _cost_terms(self, lits: dict[tuple[int, int], Any], k: int) -> list[Any]:
        cost, fixed, loc = self.scaled.cost[k], int(self.scaled.fixed[k]), self.loc
        terms = []
        for (a, b), lit in lits.items():
            c = int(cost[loc[a], loc[b]]) + (fixed if a == 0 else 0)
            if c:
                terms.append(c * lit)
        return terms

    def _times(self, lits_per_vehicle: list[dict[tuple[int, int], Any]]) -> None:
        s, loc, m = self.scaled, self.loc, len(self.loc)
        start = [None] + [
            self.model.new_int_var(int(s.open_[loc[b]]), int(s.close[loc[b]]), f"t_{b}")
            for b in range(1, m)
        ]
        depart = int(s.open_[self.depot])
        close = int(s.close[self.depot])
        for lits in lits_per_vehicle:
            for (a, b), lit in lits.items():
                step = int(s.step[loc[a], loc[b]])
                if a == 0:
                    self.model.add(start[b] >= depart + step).only_enforce_if(lit)
                elif b == 0:
                    self.model.add(start[a] + step <= close).only_enforce_if(lit)
                else:
                    self.model.add(start[b] >= start[a] + step).only_enforce_if(lit)

    # -- the three models -------------------------------------------------------
    def tsp(self) -> None:
        lits = self._arc_literals("")
        self.model.add_circuit([(a, b, lit) for (a, b), lit in lits.items()])
        self.lits, self.vehicle_type = [lits], [0]
        self.model.minimize(sum(self._cost_terms(lits, 0)))

    def one_type(self) -> None:
        inst, s, m = self.instance, self.scaled, len(self.loc)
        lits = self._arc_literals("")
        self.model.add_multiple_circuit([(a, b, lit) for (a, b), lit in lits.items()])
        vt = inst.vehicle_types[0]
        departures = [lit for (a, _), lit in lits.items() if a == 0]
        most = inst.num_clients if vt.count is None else min(vt.count, inst.num_clients)
        capacity = s.capacity[0]
        fewest = 1
        if capacity is not None:
            fewest = max(1, -(-int(s.demand.sum()) // capacity))
            load = [None] + [
                self.model.new_int_var(int(s.demand[self.loc[b]]), capacity, f"load_{b}")
                for b in range(1, m)
            ]
            for (a, b), lit in lits.items():
                if a and b:
                    demand_b = int(s.demand[self.loc[b]])
                    self.model.add(load[b] >= load[a] + demand_b).only_enforce_if(lit)
        self.model.add_linear_constraint(sum(departures), min(fewest, most), most)
        if inst.time_windows is not None:
            self._times([lits])
        self.lits, self.vehicle_type = [lits], [0]
        self.model.minimize(sum(self._cost_terms(lits, 0)))

    def vehicles(self) -> None:
        inst, s, m = self.instance, self.scaled, len(self.loc)
        copies = vehicle_copies(inst)
        visits: list[list[Any]] = [[] for _ in range(m)]
        used_prev = None
        objective = []
        for v, k in enumerate(copies):
            lits = self._arc_literals(f"{v}")
            idle = self.model.new_bool_var(f"idle_{v}")
            skip = [None] + [self.model.new_bool_var(f"skip_{v}_{b}") for b in range(1, m)]
            arcs = [(a, b, lit) for (a, b), lit in lits.items()]
            arcs += [(0, 0, idle)] + [(b, b, skip[b]) for b in range(1, m)]
            self.model.add_circuit(arcs)
            for b in range(1, m):
                visits[b].append(~skip[b])
                self.model.add_implication(idle, skip[b])  # an unused vehicle visits nobody
            capacity = s.capacity[k]
            if capacity is not None:
                self.model.add(
                    sum(int(s.demand[self.loc[b]]) * (1 - skip[b]) for b in range(1, m)) <= capacity
                )
            if used_prev is not None and copies[v - 1] == k:  # identical vehicles in order
                self.model.add_implication(~idle, used_prev)
            used_prev = ~idle
            objective += self._cost_terms(lits, k)
            self.lits.append(lits)
            self.vehicle_type.append(k)
        for b in range(1, m):
            self.model.add_exactly_one(visits[b])
        if inst.time_windows is not None:
            self._times(self.lits)
        self.model.minimize(sum(objective))

    # -- hints and decoding -------------------------------------------------------
    def hint(self, routes: list[tuple[list[int], int]] | None) -> None:
        if routes is None:
            return
        node = {loc: a for a, loc in enumerate(self.loc)}
        used: set[tuple[int, int, int]] = set()
        free = list(range(len(self.lits)))
        for visits, k in routes:
            if len(self.lits) == 1:
                v = 0
            else:
                candidates = [v for v in free if self.vehicle_type[v] == k]
                if not candidates:
                    return  # the greedy routes do not fit the vehicle copies; no hint
                v = candidates[0]
                free.remove(v)
            path = [0, *(node[c] for c in visits), 0]
            for a, b in zip(path[:-1], path[1:], strict=True):
                used.add((v, a, b))
        for v, lits in enumerate(self.lits):
            for (a, b), lit in lits.items():
                self.model.add_hint(lit, (v, a, b) in used)

    def decode(self, solver: Any) -> RoutingSolution:
        routes, types = [], []
        for v, lits in enumerate(self.lits):
            succ: dict[int, list[int]] = {}
            for (a, b), lit in lits.items():
                if solver.boolean_value(lit):
                    succ.setdefault(a, []).append(b)
            for first in succ.get(0, []):
                route, node, guard = [], first, 0
                while node != 0 and guard <= len(self.loc):
                    route.append(self.loc[node])
                    node = succ[node][0]
                    guard += 1
                routes.append(route)
                types.append(self.vehicle_type[v])
        return RoutingSolution.from_lists(routes, types)
