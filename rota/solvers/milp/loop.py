"""One MILP solve: the LP cutting rounds, then the lazy MIP loop, then the result."""

from __future__ import annotations

import math
import time
from typing import Any

from rota.problems.routing import RoutingInstance, RoutingSolution
from rota.solvers.base import Result, Status, best_feasible, finish
from rota.solvers.milp.backends import CBCRunner, HiGHSRunner, Outcome
from rota.solvers.milp.formulation import add_cut, build, encode
from rota.solvers.milp.heuristics import initial_solution, or_opt, patch_cycles
from rota.solvers.milp.separation import aggregate, decode, fractional_cuts, integer_cuts
from rota.solvers.stopping import MAX_ENGINE_SECONDS, Stop

#: Relative tolerance of the backends' optimality and bound arithmetic; a float
#: bound is lowered by this much so that it stays a valid lower bound.
_BOUND_TOL = 1e-6
#: Below this many seconds left, another MIP solve cannot do anything useful.
_MIN_SOLVE = 0.05
#: The LP cutting rounds may use at most this share of the time limit.
_LP_SHARE = 0.35
_MAX_LP_ROUNDS = 200
#: LP rounds after each MIP whose integer solution violated a cut.
_RESEPARATION_ROUNDS = 20


class Loop:
    """One solve: the LP cutting rounds, then the lazy MIP loop.

    An iteration of the stop is one MIP solve; the best objective it sees is
    the incumbent's (a warm start, a patched tour or a cut-free MIP solution).
    """

    def __init__(
        self,
        solver: Any,
        instance: RoutingInstance,
        stop: Stop,
        seed: int,
        workdir: str,
        warm_start: tuple[RoutingSolution, ...] = (),
    ) -> None:
        self.solver = solver
        self.instance = instance
        self.stop = stop
        self.seed = seed
        self.warm_start = warm_start
        backend_seed = seed % 2_147_483_646 + 1  # CBC reads 0 as "seed from the clock"
        if solver.backend == "cbc":
            self.runner: Any = CBCRunner(solver.threads, backend_seed, workdir)
        else:
            self.runner = HiGHSRunner(solver.threads, backend_seed)
        self.best: list[tuple[list[int], int]] | None = None
        self.best_cost = math.inf
        self.bound = -math.inf  # model units
        self.overhead = 0.0
        self.last_lp_time = 0.0
        self.iterations = 0
        self.lp_rounds = 0
        self.last_detail = ""

    # bookkeeping ---------------------------------------------------------------
    def offer(self, routes: list[tuple[list[int], int]]) -> None:
        cost = sum(self.data.route_cost(v, k) for v, k in routes if v)
        if cost < self.best_cost - 1e-9:
            self.best, self.best_cost = routes, cost

    def raise_bound(self, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        if self.data.integral:
            value = math.ceil(value - _BOUND_TOL * max(1.0, abs(value)))
        else:
            value = value - _BOUND_TOL * max(1.0, abs(value))
        self.bound = max(self.bound, value)

    def proven_by_bound(self) -> bool:
        if self.best is None or not math.isfinite(self.bound):
            return False
        tol = 1e-9 if self.data.integral else _BOUND_TOL * max(1.0, abs(self.best_cost))
        return self.best_cost <= self.bound + tol

    def call(self, *, mip: bool, cap: float | None = None) -> Outcome | None:
        limit = min(self.stop.remaining - self.overhead - 0.05, MAX_ENGINE_SECONDS)
        if cap is not None:
            limit = min(limit, cap)
        # a call granted much less than its fixed cost (writing and loading the
        # model) cannot help, and would only overrun the time limit
        if limit < max(_MIN_SOLVE, 0.5 * self.overhead):
            return None
        warm = mip and self.best is not None
        if warm:
            self.set_start()
        began = time.perf_counter()
        outcome = self.runner.run(self.form, mip=mip, time_limit=limit, warm=warm)
        wall = time.perf_counter() - began
        # Time beyond the granted limit: writing and loading the model (redone on every
        # call, growing with the cuts) plus the backend's own overrun of its limit.
        spent_outside = wall - min(outcome.solver_time, limit)
        self.overhead = max(self.overhead, 1.2 * max(0.0, spent_outside) + 0.02)
        self.last_detail = outcome.detail
        return outcome

    def set_start(self) -> None:
        for var in self.form.integer_vars:
            var.setInitialValue(0)
        for visits, k in self.best:
            if not visits:
                continue
            v = k if self.data.indexed else 0
            path = [self.data.depot, *visits, self.data.depot]
            for a in zip(path[:-1], path[1:], strict=True):
                self.form.vehicle_arcs[v][a].setInitialValue(1)
        for k, count in enumerate(self.form.route_counts):
            count.setInitialValue(sum(1 for visits, t in self.best if visits and t == k))

    # phases ----------------------------------------------------------------------
    def run(self) -> Result:
        began = time.perf_counter()
        self.data = encode(self.instance)
        self.form = build(self.data, self.solver.formulation)
        build_time = time.perf_counter() - began
        # Handing the model to the backend costs about as much as building it, and
        # for CBC twice (an MPS file written, then read back with the solution).
        factor = 2.0 if self.solver.backend == "cbc" else 1.5
        self.overhead = factor * build_time + 0.05
        start = best_feasible(self.instance, self.warm_start)
        if start is not None:
            self.offer([(list(r.visits), r.vehicle_type) for r in start[0].routes if r.visits])
        elif self.solver.greedy_start:
            deadline = time.perf_counter() + min(1.0, 0.05 * self.stop.time_limit)
            initial = initial_solution(self.data, deadline)
            if initial is not None:
                self.offer(initial)
        infeasible = proven = False
        if self.solver.formulation == "lazy":
            infeasible = self.lp_rounds_phase(until=_LP_SHARE * self.stop.time_limit)
        if not infeasible:
            infeasible, proven = self.mip_phase()
        return self.result(infeasible, proven, build_time)

    def lp_rounds_phase(self, until: float, max_rounds: int = _MAX_LP_ROUNDS) -> bool:
        """Cut the LP relaxation until ``until`` seconds have elapsed.

        Returns True when even the relaxation is infeasible.
        """
        history: list[float] = []
        rounds = 0
        while rounds < max_rounds and self.stop.elapsed < until:
            if until - self.stop.elapsed < self.last_lp_time:
                break  # the next LP would not finish within this phase
            began = time.perf_counter()
            outcome = self.call(mip=False, cap=until - self.stop.elapsed)
            self.last_lp_time = time.perf_counter() - began
            if outcome is None:
                break
            if outcome.status == "infeasible":
                return True
            if outcome.status != "optimal":
                break
            rounds += 1
            self.lp_rounds += 1
            self.raise_bound(outcome.bound)
            history.append(outcome.bound)
            cuts = fractional_cuts(self.data, aggregate(self.form, self.data))
            if not cuts:
                break
            for members, rhs in cuts:
                add_cut(self.form, self.data, members, rhs)
            if len(history) > 5 and history[-1] - history[-6] <= 1e-6 * max(1.0, abs(history[-1])):
                break  # the cuts this separation finds no longer move the bound
        return False

    def mip_phase(self) -> tuple[bool, bool]:
        while not self.proven_by_bound():
            outcome = self.call(mip=True)
            if outcome is None:
                return False, False
            self.iterations += 1
            if outcome.status == "infeasible":
                return True, False
            self.raise_bound(outcome.bound)
            if not outcome.has_values:
                return False, False
            decoded = decode(self.form, self.data)
            cuts = integer_cuts(self.data, decoded)
            if not cuts:
                self.offer(decoded.routes)
                if outcome.status == "optimal":
                    return False, True
                return False, False
            for members, rhs in cuts:
                add_cut(self.form, self.data, members, rhs)
            if outcome.status != "optimal":
                return False, False
            # the new cuts move the LP optimum: separating around it again is far
            # cheaper than letting the next MIP find each violation one at a time
            until = self.stop.elapsed + _LP_SHARE * self.stop.remaining
            if self.lp_rounds_phase(until=until, max_rounds=_RESEPARATION_ROUNDS):
                return True, False
            if self.instance.is_tsp:
                cycles = [[self.data.depot, *decoded.routes[0][0]]] if decoded.routes else []
                cycles += decoded.subtours
                deadline = time.perf_counter() + min(0.5, 0.02 * self.stop.time_limit)
                tour = or_opt(patch_cycles(cycles, self.data.cost[0]), self.data.cost[0], deadline)
                i = tour.index(self.data.depot)
                self.offer([(tour[i + 1 :] + tour[:i], 0)])
            if self.stop(None if self.best is None else self.best_cost / self.data.scale):
                return False, False
        return False, True

    def result(self, infeasible: bool, proven: bool, build_time: float) -> Result:
        data = self.data
        stats: dict[str, Any] = {
            "backend": self.solver.backend,
            "formulation": self.solver.formulation,
            "iterations": self.iterations,
            "lp_rounds": self.lp_rounds,
            "cuts": self.form.cuts,
            "scale": data.scale if data.integral else None,
            "scale_exact": data.integral,
            "build_time": build_time,
            "last_status": self.last_detail,
        }
        name = self.solver.name
        if infeasible:
            return finish(
                self.instance,
                None,
                Status.INFEASIBLE,
                solver=name,
                seed=self.seed,
                stop=self.stop,
                stats=stats,
            )
        bound = self.bound / data.scale if math.isfinite(self.bound) else None
        if self.best is None:
            return finish(
                self.instance,
                None,
                Status.NO_SOLUTION,
                solver=name,
                seed=self.seed,
                stop=self.stop,
                bound=bound,
                stats=stats,
            )
        proven = proven or self.proven_by_bound()
        solution = RoutingSolution.from_lists([v for v, _ in self.best], [k for _, k in self.best])
        backend_objective = self.best_cost / data.scale
        if proven or (bound is not None and bound > backend_objective):
            # a proof makes the optimum its own bound; a float bound past it is tolerance noise
            bound = backend_objective
        stats["backend_objective"] = backend_objective
        stats["gap"] = (
            None
            if bound is None or backend_objective == 0
            else (backend_objective - bound) / abs(backend_objective)
        )
        result = finish(
            self.instance,
            solution,
            Status.OPTIMAL if proven else Status.FEASIBLE,
            solver=name,
            seed=self.seed,
            stop=self.stop,
            bound=bound,
            stats=stats,
        )
        if result.status.has_solution and not math.isclose(
            result.objective, backend_objective, rel_tol=1e-6, abs_tol=1e-6
        ):
            stats["error"] = (
                f"milp objective {backend_objective} differs from the evaluator's "
                f"{result.objective}"
            )
            return Result(
                result.objective,
                solution,
                Status.ERROR,
                result.runtime,
                name,
                self.seed,
                bound,
                stats,
            )
        return result
