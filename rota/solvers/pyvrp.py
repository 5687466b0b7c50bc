"""PyVRP backend: hybrid iterated local search on integer data.

Encode -> run -> decode. The instance is scaled to integers (see
:func:`rota.solvers.scaling.scale_instance`), handed to PyVRP as a ``ProblemData`` built straight
from numpy matrices (no per-edge Python calls, so n = 1000 encodes in
milliseconds), solved under ``MaxRuntime``, and the routes are mapped back to
the instance's location indices. PyVRP never proves optimality, so a result is
``FEASIBLE`` or ``NO_SOLUTION``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from rota.problems.routing import Route, RoutingInstance, RoutingSolution
from rota.solvers.base import ALL_CRITERIA, RequiresModules, Result, Status, best_feasible, finish
from rota.solvers.routing import RoutingCapabilities, check_capabilities
from rota.solvers.scaling import ScaledInstance, scale_instance, scaling_refusal
from rota.solvers.stopping import Stop

#: PyVRP's cost of an infeasible solution is "a very large number"; anything
#: this large is no objective.
_INFEASIBLE_COST = 2**60


class PyVRPSolver(RequiresModules):
    """PyVRP's iterated local search (CVRP, ACVRP, VRPTW, heterogeneous, multi-depot).

    The stop's clock starts before encoding, so encoding and PyVRP's initial
    local search count against the budget. An iteration is one PyVRP
    iterated-local-search step. The same seed reproduces the same search (up
    to where a time limit cuts it). A warm start replaces PyVRP's random
    initial solution (the best feasible one when several are given); PyVRP
    keeps its best solution, so the result is never worse than a feasible
    start. ``stats`` records the iterations, the scales, PyVRP's own objective
    and whether the scaling was exact.
    """

    name = "pyvrp"
    problem = "routing"
    description = "PyVRP iterated local search (heuristic; CVRP, VRPTW, heterogeneous fleets)"
    capabilities = RoutingCapabilities(
        warm_start=True,
        stopping=ALL_CRITERIA,
        asymmetric=True,
        time_windows=True,
        heterogeneous=True,
        multi_depot=True,
        uncapacitated=True,
    )

    requires = ("pyvrp",)

    def supports(self, instance: RoutingInstance) -> str | None:
        return check_capabilities(self.name, self.capabilities, instance) or scaling_refusal(
            self.name, instance
        )

    def solve(
        self,
        instance: RoutingInstance,
        stop: Stop,
        seed: int,
        warm_start: tuple[RoutingSolution, ...] = (),
    ) -> Result:
        import pyvrp

        encode_start = time.perf_counter()
        scaled = scale_instance(instance)
        data = _problem_data(pyvrp, instance, scaled)
        encode_time = time.perf_counter() - encode_start

        stats: dict = {}
        if warm_start:
            # the best feasible start, else the first: PyVRP repairs an infeasible one
            best = best_feasible(instance, warm_start)
            start = warm_start[0] if best is None else best[0]
            initial = _pyvrp_solution(pyvrp, instance, data, start.routes)
            stats["initial_solution"] = "warm start"
        else:
            # PyVRP's random start ignores fleet limits; on tight finite fleets
            # (X115-HVRP: 19 vehicles for 84% of their capacity) it often ends a
            # 1 s run infeasible, while a greedy start keeps it feasible throughout.
            finite_fleet = all(vt.count is not None for vt in instance.vehicle_types)
            initial = _greedy_start(pyvrp, instance, data) if finite_fleet else None
            stats["initial_solution"] = "random" if initial is None else "greedy"

        def criterion(cost: int) -> bool:
            best = None if cost >= _INFEASIBLE_COST else cost / scaled.objective_scale
            return stop(best)

        with warnings.catch_warnings(record=True) as caught:
            # PyVRP warns when its penalties saturate (an infeasible instance,
            # typically); that belongs in this result's stats, not on stderr.
            warnings.simplefilter("always")
            run = pyvrp.solve(
                data,
                criterion,
                seed=seed % 2**32,
                collect_stats=False,
                display=False,
                initial_solution=initial,
            )
        best = run.best
        clients = instance.clients
        routes = []
        for route in best.routes():
            visits = [int(clients[a.idx]) for a in route.schedule() if a.is_client()]
            routes.append(Route(tuple(visits), int(route.vehicle_type())))
        feasible = best.is_feasible()
        engine_objective = int(best.distance_cost()) + int(best.fixed_vehicle_cost())
        stats |= {
            "iterations": int(run.num_iterations),
            "engine_objective": engine_objective,
            "engine_feasible": bool(feasible),
            "distance_scale": scaled.distance_scale,
            "cost_scale": scaled.cost_scale,
            "time_scale": scaled.time_scale,
            "load_scale": scaled.load_scale,
            "scaling_exact": scaled.exact,
            "encode_time": encode_time,
        }
        if caught:
            stats["engine_warnings"] = sorted(
                {f"{type(w.message).__name__}: {' '.join(str(w.message).split())}" for w in caught}
            )
        if not feasible:
            return finish(
                instance,
                None,
                Status.NO_SOLUTION,
                solver=self.name,
                seed=seed,
                stop=stop,
                stats=stats,
            )
        return finish(
            instance,
            RoutingSolution(tuple(routes)),
            Status.FEASIBLE,
            solver=self.name,
            seed=seed,
            stop=stop,
            backend_objective=engine_objective / scaled.objective_scale if scaled.exact else None,
            stats=stats,
        )


def _pyvrp_solution(pyvrp, instance: RoutingInstance, data, routes) -> object:
    """Routes as a ``pyvrp.Solution`` of ``data`` (location indices mapped to PyVRP's)."""
    client_index = {int(c): i for i, c in enumerate(instance.clients)}
    return pyvrp.Solution(
        data,
        [
            pyvrp.Route(data, [client_index[v] for v in r.visits], r.vehicle_type)
            for r in routes
            if r.visits
        ],
    )


def _greedy_start(pyvrp, instance: RoutingInstance, data):
    """The greedy backend's routes as a ``pyvrp.Solution``, or None if it found none."""
    from rota.solvers.greedy import construct

    routes, _ = construct(instance)
    return None if routes is None else _pyvrp_solution(pyvrp, instance, data, routes)


def _problem_data(pyvrp, instance: RoutingInstance, scaled: ScaledInstance):
    """Build ``pyvrp.ProblemData`` directly, keeping the instance's location indices."""
    n = instance.num_locations
    coords = instance.coords if instance.coords is not None else np.zeros((n, 2))
    locations = [pyvrp.Location(float(x), float(y)) for x, y in coords]
    depot_index = {d: i for i, d in enumerate(instance.depots)}
    windows, service = scaled.windows, scaled.service

    depots = []
    for d in instance.depots:
        if windows is None:
            depots.append(pyvrp.Depot(location=d))
        else:
            depots.append(
                pyvrp.Depot(
                    location=d,
                    tw_early=int(windows[d, 0]),
                    tw_late=int(windows[d, 1]),
                    service_duration=int(service[d]),
                )
            )

    clients = []
    for c in instance.clients:
        load = [] if scaled.demand is None else [int(scaled.demand[c])]
        if windows is None:
            clients.append(pyvrp.Client(location=int(c), delivery=load))
        else:
            clients.append(
                pyvrp.Client(
                    location=int(c),
                    delivery=load,
                    service_duration=int(service[c]),
                    tw_early=int(windows[c, 0]),
                    tw_late=int(windows[c, 1]),
                )
            )

    vehicle_types = []
    for k, vt in enumerate(instance.vehicle_types):
        depot = depot_index[vt.depot]
        # An unlimited fleet never needs more vehicles than there are clients.
        count = instance.num_clients if vt.count is None else min(vt.count, instance.num_clients)
        shift = {}
        if windows is not None:
            shift = {"tw_early": int(windows[vt.depot, 0]), "tw_late": int(windows[vt.depot, 1])}
        vehicle_types.append(
            pyvrp.VehicleType(
                num_available=count,
                capacity=[] if scaled.demand is None else [int(scaled.capacity[k])],
                start_depot=depot,
                end_depot=depot,
                fixed_cost=int(scaled.fixed_cost[k]),
                unit_distance_cost=int(scaled.unit_cost[k]),
                name=vt.name,
                **shift,
            )
        )

    duration = scaled.duration if scaled.duration is not None else np.zeros((n, n), np.int64)
    return pyvrp.ProblemData(
        locations, clients, depots, vehicle_types, [scaled.distance], [duration]
    )


__all__ = ["PyVRPSolver"]
