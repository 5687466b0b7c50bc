"""HGS-CVRP backend: Vidal's hybrid genetic search, through hygese.

Encode -> run -> decode. HGS-CVRP takes one depot (its index 0), one vehicle
capacity, a fleet size, an optional route-duration limit and a full distance
matrix in doubles; it handles asymmetric matrices (its moves and its Split
walk arcs in their direction, and 2-opt counts the cost of reversing a
segment). Distances (with service times and the duration limit) and loads are
each multiplied by a power of two that brings their largest value between
1024 and 2048: that is exact in binary floating point, keeps the data inside
the range HGS-CVRP accepts (it throws on a largest distance or demand outside
0.1..100,000), and makes its absolute tolerance of 1e-5 on load and duration
excess far finer than the evaluator's. Routes come back as client indices
and are mapped to the instance's locations; the objective is the
evaluator's (HGS's own, divided by the factor, when that is exact).

HGS-CVRP runs in a forked child (:mod:`rota.solvers.forked`): it cannot be
stopped from outside, and hygese's C interface returns an uninitialised
pointer when HGS throws, so every input HGS would reject is refused or
answered here first.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from rota.problems.routing import Route, RoutingInstance, RoutingSolution, evaluate
from rota.solvers.base import RequiresModules, Result, Status, finish
from rota.solvers.forked import run_forked
from rota.solvers.ortools import fleet_size
from rota.solvers.routing import RoutingCapabilities, check_capabilities
from rota.solvers.stopping import NoImprovement, Stop

#: HGS-CVRP's own default of ``nbIter``: with a time limit, the population is
#: restarted after this many iterations without improvement.
_RESTART_ITERATIONS = 20_000
#: HGS-CVRP counts iterations and vehicles in C ints.
_INT_MAX = 2**31 - 1


class HGSSolver(RequiresModules):
    """HGS-CVRP (Vidal 2022) for CVRP and ACVRP, with an optional route-duration limit.

    Stopping criteria, as HGS-CVRP has them:

    - ``time``: HGS's time limit, which counts the CPU time of its process
      from its set-up on (the granular neighbourhoods are part of it); on a
      busy machine the wall-clock time of a run exceeds the limit by what
      other processes take. With a time limit HGS restarts its population
      after 20,000 iterations without improvement, as it does by default.
    - ``no_improvement``: HGS's ``nbIter``, consecutive iterations (a
      crossover and the local search of its offspring) that do not improve
      the best feasible solution. HGS ends on it only without a time limit,
      so with both the run has no time limit of its own and is killed at the
      time limit: such a run ends without a solution, since HGS gives its best
      only when it ends.

    An interrupt (Ctrl+C) kills the run; it then has no solution either. The
    seed is HGS's; a run that ends on ``no_improvement`` is reproducible,
    one cut by time is not. HGS takes no starting solutions.

    A finite fleet is HGS's fleet size; an unlimited one gets the number of
    vehicles :func:`~rota.solvers.ortools.fleet_size` proves enough (HGS's own
    default, 30 % above the bin-packing bound, can be too few). SWAP*, whose
    filter compares the polar angles of routes, runs only when the instance
    has coordinates, as HGS-CVRP intends.
    """

    name = "hgs"
    problem = "routing"
    description = "HGS-CVRP hybrid genetic search, hygese (heuristic; CVRP, ACVRP, duration limits)"
    capabilities = RoutingCapabilities(
        warm_start=False,
        stopping=frozenset({"time", "no_improvement"}),
        asymmetric=True,
        time_windows=False,
        heterogeneous=False,
        multi_depot=False,
        uncapacitated=True,
        features=frozenset({"max_duration"}),
    )

    requires = ("hygese",)

    def supports(self, instance: RoutingInstance) -> str | None:
        if reason := check_capabilities(self.name, self.capabilities, instance):
            return reason
        if not instance.distance.max() > 0:
            return f"{self.name} needs a positive distance somewhere ({instance.name} has none)"
        if "max_duration" in instance.features:
            depot = instance.depots[0]
            if instance.duration is not None and not np.array_equal(
                instance.duration, instance.distance
            ):
                return (
                    f"{self.name} models max duration only with travel times equal to the "
                    f"distances; {instance.name} has its own duration matrix"
                )
            if instance.service_time[depot] != 0:
                return (
                    f"{self.name} models max duration only without a service time at the "
                    f"depot; {instance.name} has one"
                )
        return None

    def solve(
        self, instance: RoutingInstance, stop: Stop, seed: int, warm_start: tuple = ()
    ) -> Result:
        encode_start = time.perf_counter()
        encoding = _Encoding(instance)
        stats: dict[str, Any] = {
            "vehicles": encoding.fleet,
            "distance_factor": encoding.distance_factor,
            "load_factor": encoding.load_factor,
            "swap_star": encoding.swap_star,
        }

        def done(solution: RoutingSolution | None, status: Status, **extra: Any) -> Result:
            return finish(
                instance, solution, status, solver=self.name, seed=seed, stop=stop,
                stats=stats | extra,
            )  # fmt: skip

        if instance.num_clients < 2:
            # HGS-CVRP's crossover needs two clients (it loops forever on one).
            routes = tuple(Route((int(c),)) for c in instance.clients)
            solution = RoutingSolution(routes)
            if evaluate(instance, solution).feasible:
                return done(solution, Status.FEASIBLE, note="fewer than two clients: one plan")
            return done(None, Status.INFEASIBLE, reason="the only plan breaks a constraint")
        if encoding.fleet < math.ceil(encoding.total_demand / encoding.capacity):
            # HGS-CVRP throws on a fleet below the bin-packing bound. Instances only
            # get here when their total demand exceeds the fleet's capacity by less
            # than the evaluator's tolerance, which HGS does not grant.
            return done(
                None,
                Status.NO_SOLUTION,
                reason="HGS-CVRP needs a fleet whose capacity covers the total demand exactly",
            )

        no_improvement = next(
            (c.count for c in stop.criteria if isinstance(c, NoImprovement)), None
        )
        deadline = None
        if no_improvement is None:
            limits = {"timeLimit": max(stop.engine_seconds, 1e-3), "nbIter": _RESTART_ITERATIONS}
        else:
            limits = {"timeLimit": 0.0, "nbIter": min(no_improvement, _INT_MAX)}
            if math.isfinite(stop.time_limit):
                deadline = stop.started + stop.time_limit
        stats["encode_time"] = time.perf_counter() - encode_start
        outcome = run_forked(
            _run_hgs,
            encoding.data,
            {**limits, "seed": seed % 2**31, "useSwapStar": encoding.swap_star},
            stop=stop,
            deadline=deadline,
        )
        if outcome.ended == "failed":
            return done(None, Status.ERROR, error=f"HGS-CVRP failed: {outcome.detail}")
        if outcome.ended != "done":
            note = "HGS-CVRP was stopped before it ended; it gives its best only when it ends"
            stopped_by = "time" if outcome.ended == "deadline" else "interrupted"
            return done(None, Status.NO_SOLUTION, note=note, stopped_by=stopped_by)

        cost, engine_routes, engine_time = outcome.value
        stats["engine_time"] = engine_time
        stats["stopped_by"] = "time" if no_improvement is None else "no_improvement"
        if not engine_routes:
            return done(None, Status.NO_SOLUTION, reason="HGS-CVRP found no feasible solution")
        objective = cost / encoding.distance_factor
        routes = tuple(Route(tuple(encoding.location(i) for i in r)) for r in engine_routes)
        return finish(
            instance,
            RoutingSolution(routes),
            Status.FEASIBLE,
            solver=self.name,
            seed=seed,
            stop=stop,
            backend_objective=objective if encoding.exact else None,
            stats=stats | {"engine_objective": objective},
        )


def _run_hgs(data: dict[str, Any], parameters: dict[str, Any]) -> tuple[float, list, float]:
    """HGS-CVRP's cost, routes (client indices) and CPU seconds; runs in the child."""
    import hygese

    solver = hygese.Solver(hygese.AlgorithmParameters(**parameters), verbose=False)
    result = solver.solve_cvrp(data)
    return float(result.cost), [list(r) for r in result.routes], float(result.time)


def _power_of_two(largest: float) -> float:
    """The power of two that brings ``largest`` (> 0) into [1024, 2048)."""
    _, exponent = math.frexp(largest)  # largest = m * 2**exponent, 0.5 <= m < 1
    return math.ldexp(1.0, 11 - exponent)


class _Encoding:
    """HGS-CVRP's data of one instance: the depot first, then the clients in order."""

    def __init__(self, instance: RoutingInstance) -> None:
        vt = instance.vehicle_types[0]
        self.order = np.array([instance.depots[0], *instance.clients])
        sub = np.ix_(self.order, self.order)
        self.distance_factor = _power_of_two(float(instance.distance.max()))
        distance = instance.distance[sub] * self.distance_factor
        # whole numbers below 2048: HGS's sums of them are exact
        self.exact = bool(np.array_equal(distance, np.round(distance)))

        demand = instance.deliveries[self.order, 0]
        demand[0] = 0.0
        if vt.capacity is None or not demand.any():
            # nothing binds: one unit per client, and room for all of them
            demand = np.ones(len(self.order))
            demand[0] = 0.0
            capacity = float(instance.num_clients)
        else:
            capacity = float(vt.capacity)
        self.load_factor = _power_of_two(float(demand.max()))
        demand = demand * self.load_factor
        self.capacity = capacity * self.load_factor
        total = 0.0
        for amount in demand.tolist():  # in HGS-CVRP's order, so the sum is HGS's own
            total += amount
        self.total_demand = total
        self.fleet = min(fleet_size(instance, 0), _INT_MAX)

        self.swap_star = instance.coords is not None
        coords = (
            instance.coords[self.order] - instance.coords.min(axis=0)  # hygese wants x, y >= 0
            if self.swap_star
            else np.zeros((len(self.order), 2))
        )
        self.data: dict[str, Any] = {
            "distance_matrix": distance,
            "demands": demand,
            "vehicle_capacity": self.capacity,
            "num_vehicles": self.fleet,
            "depot": 0,
            "service_times": instance.service_time[self.order] * self.distance_factor,
            "x_coordinates": coords[:, 0],
            "y_coordinates": coords[:, 1],
        }
        if vt.max_duration is not None:
            self.data["duration_limit"] = vt.max_duration * self.distance_factor

    def location(self, engine_index: int) -> int:
        return int(self.order[engine_index])


__all__ = ["HGSSolver"]
