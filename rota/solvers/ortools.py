"""OR-Tools routing backend: guided local search from a cheapest-arc start.

Encode -> run -> decode. The instance is scaled to integers with
:func:`rota.solvers.scaling.scale_instance` (shared by both integer engines),
every transit is registered as a whole matrix (``RegisterTransitMatrix``,
``RegisterUnaryTransitVector``) so that OR-Tools never calls back into Python
per arc, and the routes are mapped back to the instance's location indices.

An iteration is one solution OR-Tools accepts during its search (an
at-solution callback); rota's :class:`~rota.solvers.stopping.Stop` sees each
one, and a search limit ends the search once it says stop. OR-Tools' routing
search has no seed: for a given instance it is deterministic up to the point
where the wall-clock limit cuts it, no further. The seed is stored in the
result for the record only.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from rota.problems.routing import Route, RoutingInstance, RoutingSolution
from rota.solvers.base import ALL_CRITERIA, RequiresModules, Result, Status, best_feasible, finish
from rota.solvers.routing import RoutingCapabilities, check_capabilities
from rota.solvers.scaling import ScaledInstance, scale_instance, scaling_refusal
from rota.solvers.stopping import Stop

#: OR-Tools' RoutingSearchStatus values, by number (``routing.status()``).
ROUTING_STATUS = {
    0: "ROUTING_NOT_SOLVED",
    1: "ROUTING_SUCCESS",
    2: "ROUTING_PARTIAL_SUCCESS_LOCAL_OPTIMUM_NOT_REACHED",
    3: "ROUTING_FAIL",
    4: "ROUTING_FAIL_TIMEOUT",
    5: "ROUTING_INVALID",
    6: "ROUTING_INFEASIBLE",
    7: "ROUTING_OPTIMAL",
}


def fleet_size(instance: RoutingInstance, k: int) -> int:
    """Vehicles of type ``k`` to give OR-Tools (it needs a finite number).

    A finite count is kept (capped at the number of clients). An unlimited
    capacitated type without time windows gets ``2 * ceil(demand / capacity)
    + 1`` vehicles: any packing in which no two bins could be merged uses
    fewer, so the cap never makes a feasible instance infeasible, and it keeps
    the model small on X-n1001 (1000 idle vehicles slow every move). Other
    unlimited types get one vehicle per client.
    """
    vt = instance.vehicle_types[k]
    n = instance.num_clients
    if vt.count is not None:
        return min(vt.count, n)
    if vt.capacity is None or instance.has_time_windows:
        return n
    total = float(instance.demand.sum())
    return min(n, 2 * math.ceil(total / vt.capacity) + 1)


class ORToolsSolver(RequiresModules):
    """OR-Tools routing (CVRP, ACVRP, VRPTW, heterogeneous, multi-depot), heuristic.

    A warm start (the best feasible one of those given) is the search's first
    solution; guided local search only ever reports a solution at least as
    good as its best, so the result is never worse.
    """

    name = "ortools"
    problem = "routing"
    description = "OR-Tools routing, guided local search (heuristic; CVRP, VRPTW, fleets)"
    capabilities = RoutingCapabilities(
        warm_start=True,
        stopping=ALL_CRITERIA,
        asymmetric=True,
        time_windows=True,
        heterogeneous=True,
        multi_depot=True,
        uncapacitated=True,
    )

    requires = ("ortools.constraint_solver.pywrapcp",)

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
        from ortools.constraint_solver import pywrapcp, routing_enums_pb2

        encode_start = time.perf_counter()
        scaled = scale_instance(instance)
        model = _Model(pywrapcp, instance, scaled)
        params = pywrapcp.DefaultRoutingSearchParameters()
        params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
        params.local_search_metaheuristic = (
            routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
        )
        encode_time = time.perf_counter() - encode_start
        params.time_limit.FromMilliseconds(max(1, int(stop.engine_seconds * 1000)))
        model.watch(stop, scaled.objective_scale)

        start = best_feasible(instance, warm_start)
        if start is not None:
            initial = model.assignment(start[0].routes, params)
            origin = "warm start" if initial is not None else "path_cheapest_arc (start rejected)"
        else:
            # PATH_CHEAPEST_ARC ignores how few vehicles of each type a mixed fleet
            # has: on X115-HVRP it finds no complete plan in 5 s, so such fleets
            # start from the greedy routes. On Solomon's loose homogeneous fleets
            # the greedy start measured worse (6.5% vs 4.8% mean gap at 1 s).
            tight_mix = instance.is_heterogeneous and all(
                vt.count is not None for vt in instance.vehicle_types
            )
            initial = model.greedy_assignment(instance, params) if tight_mix else None
            origin = "greedy" if initial is not None else "path_cheapest_arc"
        if initial is None:
            assignment = model.routing.SolveWithParameters(params)
        else:
            assignment = model.routing.SolveFromAssignmentWithParameters(initial, params)
        engine_status = ROUTING_STATUS.get(model.routing.status(), str(model.routing.status()))
        stats: dict[str, Any] = {
            "engine_status": engine_status,
            "vehicles": model.num_vehicles,
            "distance_scale": scaled.distance_scale,
            "cost_scale": scaled.cost_scale,
            "time_scale": scaled.time_scale,
            "load_scale": scaled.load_scale,
            "scaling_exact": scaled.exact,
            "encode_time": encode_time,
            "seeded": False,
            "initial_solution": origin,
        }
        if assignment is not None:
            stats["engine_objective"] = int(assignment.ObjectiveValue())
            if dropped := model.dropped(assignment):
                stats["dropped_clients"] = dropped
        if (assignment is None or "dropped_clients" in stats) and start is not None:
            # A search stopped at once (an iteration limit met on the first
            # callback) ends before it accepts the start: the start stands.
            stats["note"] = "OR-Tools stopped before accepting a solution; the warm start stands"
            return finish(
                instance, start[0], Status.FEASIBLE, solver=self.name, seed=seed, stop=stop,
                stats=stats,
            )  # fmt: skip
        if assignment is None or "dropped_clients" in stats:
            # Even ROUTING_INFEASIBLE is no proof here: the model may cap an
            # unlimited fleet, so it is not exactly the instance.
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
            model.decode(assignment),
            # A time-limited guided local search proves nothing, whatever the status says.
            Status.FEASIBLE,
            solver=self.name,
            seed=seed,
            stop=stop,
            backend_objective=(
                stats["engine_objective"] / scaled.objective_scale if scaled.exact else None
            ),
            stats=stats,
        )


def _drop_penalty(
    instance: RoutingInstance, scaled: ScaledInstance, distance: np.ndarray
) -> int | None:
    """A per-client drop penalty above any complete plan's cost, or None if it could overflow."""
    n = instance.num_clients
    worst_plan = n * int(scaled.fixed_cost.max()) + int(scaled.unit_cost.max()) * int(
        distance.max(axis=1).sum()
    )
    penalty = worst_plan + 1
    # OR-Tools sums penalties in int64: all clients dropped must still fit.
    return penalty if penalty * n < 2**62 else None


class _Model:
    """The OR-Tools routing model of one instance, and the index maps to decode it."""

    def __init__(self, pywrapcp: Any, instance: RoutingInstance, scaled: ScaledInstance) -> None:
        types = instance.vehicle_types
        # OR-Tools must visit every node that is not a start or end, so depots
        # no vehicle uses are left out of the model altogether.
        used_depots = sorted({vt.depot for vt in types})
        self.locations = np.array(used_depots + [int(c) for c in instance.clients])
        node_of = {int(loc): i for i, loc in enumerate(self.locations)}

        self.vehicle_type = [k for k in range(len(types)) for _ in range(fleet_size(instance, k))]
        self.num_vehicles = len(self.vehicle_type)
        starts = [node_of[types[k].depot] for k in self.vehicle_type]
        self.manager = pywrapcp.RoutingIndexManager(
            len(self.locations), self.num_vehicles, starts, starts
        )
        self.routing = routing = pywrapcp.RoutingModel(self.manager)
        sub = np.ix_(self.locations, self.locations)

        distance = scaled.distance[sub]
        evaluators: dict[int, int] = {}
        for v, k in enumerate(self.vehicle_type):
            unit = int(scaled.unit_cost[k])
            if unit not in evaluators:
                evaluators[unit] = routing.RegisterTransitMatrix((distance * unit).tolist())
            routing.SetArcCostEvaluatorOfVehicle(evaluators[unit], v)
            routing.SetFixedCostOfVehicle(int(scaled.fixed_cost[k]), v)

        # Every client may be dropped at a penalty above the cost of any complete
        # plan: then a first solution always exists (PATH_CHEAPEST_ARC alone
        # finds none on R101 in 5 s) and the search drives drops to zero; a
        # final plan that still drops a client is reported as no solution.
        self.drop_penalty = _drop_penalty(instance, scaled, distance)
        if self.drop_penalty is not None:
            for node in range(len(used_depots), len(self.locations)):
                routing.AddDisjunction([self.manager.NodeToIndex(node)], self.drop_penalty)

        if scaled.demand is not None:
            for dim in range(scaled.demand.shape[1]):
                demand = scaled.demand[self.locations, dim]
                transit = routing.RegisterUnaryTransitVector(demand.tolist())
                capacities = [int(scaled.capacity[k, dim]) for k in self.vehicle_type]
                routing.AddDimensionWithVehicleCapacity(transit, 0, capacities, True, f"Load{dim}")

        if scaled.windows is not None:
            windows = scaled.windows[self.locations]
            # Service happens at the node a vehicle leaves, as in the evaluator.
            transit = scaled.duration[sub] + scaled.service[self.locations][:, None]
            horizon = int(windows[:, 1].max())
            callback = routing.RegisterTransitMatrix(transit.tolist())
            # Slack up to the horizon lets a vehicle wait for a window to open.
            routing.AddDimension(callback, horizon, horizon, False, "Time")
            times = routing.GetDimensionOrDie("Time")
            for node in range(len(used_depots), len(self.locations)):
                index = self.manager.NodeToIndex(node)
                times.CumulVar(index).SetRange(int(windows[node, 0]), int(windows[node, 1]))
            for v, k in enumerate(self.vehicle_type):
                early, late = (int(t) for t in windows[node_of[types[k].depot]])
                times.CumulVar(routing.Start(v)).SetRange(early, late)
                times.CumulVar(routing.End(v)).SetRange(early, late)

    def watch(self, stop: Stop, objective_scale: int) -> None:
        """Show ``stop`` every solution the search accepts; end the search when it says so.

        The search limit is asked at every node, so a signal (``stop.interrupted``)
        ends the search within milliseconds even between solutions.
        A plan that still drops a client costs at least the drop penalty, so
        it counts as no feasible solution yet.
        """
        routing = self.routing
        best: int | None = None
        stopping = False

        def on_solution() -> None:
            nonlocal best, stopping
            cost = routing.CostVar().Value()
            complete = self.drop_penalty is None or cost < self.drop_penalty
            if complete and (best is None or cost < best):
                best = cost
            if stop(None if best is None else best / objective_scale):
                stopping = True

        # kept on the model: OR-Tools holds no Python reference to its callbacks
        self.callbacks = (on_solution, lambda: stopping or stop.interrupted)
        routing.AddAtSolutionCallback(self.callbacks[0])
        routing.AddSearchMonitor(routing.solver().CustomLimit(self.callbacks[1]))

    def greedy_assignment(self, instance: RoutingInstance, params: Any) -> Any | None:
        """The greedy backend's routes as an OR-Tools assignment, or None without one."""
        from rota.solvers.greedy import construct

        routes, _ = construct(instance)
        return None if routes is None else self.assignment(routes, params)

    def assignment(self, routes: Any, params: Any) -> Any | None:
        """``routes`` (rota routes) as an OR-Tools assignment; None if OR-Tools rejects them."""
        node_of = {int(loc): i for i, loc in enumerate(self.locations)}
        free = {
            k: [v for v, t in enumerate(self.vehicle_type) if t == k]
            for k in set(self.vehicle_type)
        }
        plan: list[list[int]] = [[] for _ in range(self.num_vehicles)]
        for route in routes:
            if route.visits:
                if not free.get(route.vehicle_type):
                    return None  # more routes of this type than the model has vehicles
                vehicle = free[route.vehicle_type].pop(0)
                plan[vehicle] = [self.manager.NodeToIndex(node_of[c]) for c in route.visits]
        self.routing.CloseModelWithParameters(params)
        return self.routing.ReadAssignmentFromRoutes(plan, True)

    def dropped(self, assignment: Any) -> int:
        """Clients the assignment leaves unvisited (only possible with a drop penalty)."""
        routing = self.routing
        return sum(
            assignment.Value(routing.NextVar(index)) == index
            for index in range(routing.Size())
            if not routing.IsStart(index) and not routing.IsEnd(index)
        )

    def decode(self, assignment: Any) -> RoutingSolution:
        routing, manager = self.routing, self.manager
        routes = []
        for v, k in enumerate(self.vehicle_type):
            visits = []
            index = assignment.Value(routing.NextVar(routing.Start(v)))
            while not routing.IsEnd(index):
                visits.append(int(self.locations[manager.IndexToNode(index)]))
                index = assignment.Value(routing.NextVar(index))
            if visits:
                routes.append(Route(tuple(visits), k))
        return RoutingSolution(tuple(routes))


__all__ = ["ORToolsSolver", "fleet_size"]
