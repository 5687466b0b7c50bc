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

from rota.problems.routing import FEATURES, Route, RoutingInstance, RoutingSolution, evaluate
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
    type bound by one capacity alone gets ``2 * ceil(load / capacity) + 1``
    vehicles, where the load is everything ever on board: two routes of a
    type can always be chained into one if their peak loads fit together, so
    in a plan where no two can, pairs of routes exceed the capacity and the
    cap never makes a feasible instance infeasible. It keeps the model small
    on X-n1001 (1000 idle vehicles slow every move). Other unlimited types
    (timed, distance-limited, several loads) get one vehicle per client.
    """
    vt = instance.vehicle_types[k]
    n = instance.num_clients
    if vt.count is not None:
        return min(vt.count, n)
    single_capacity = vt.capacities is not None and len(vt.capacities) == 1 and vt.capacities[0] > 0
    if not single_capacity or instance.is_timed or "max_distance" in instance.features:
        return n
    load = float(instance.deliveries.sum() + instance.pickups.sum())
    load += sum(float(np.sum(s.amounts)) for s in instance.shipments)
    return min(n, 2 * math.ceil(load / vt.capacities[0]) + 1)


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
        features=frozenset(FEATURES) - {"release_times", "reloads", "linehaul_first"},
    )

    requires = ("ortools.constraint_solver.pywrapcp",)

    def supports(self, instance: RoutingInstance) -> str | None:
        if reason := check_capabilities(self.name, self.capabilities, instance):
            return reason
        if _mixed_loads(instance):
            return (
                f"{self.name} does not model deliveries from the depot together with pickups "
                f"or shipments on one vehicle ({instance.name} has both)"
            )
        return scaling_refusal(self.name, instance)

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
        # Paired pickups and deliveries start from insertion, as OR-Tools advises: on
        # generated PDP100 it halves the 1 s gap to PyVRP (PATH_CHEAPEST_ARC: 90-160 %).
        first = "parallel_cheapest_insertion" if instance.shipments else "path_cheapest_arc"
        params.first_solution_strategy = getattr(
            routing_enums_pb2.FirstSolutionStrategy, first.upper()
        )
        params.local_search_metaheuristic = (
            routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
        )
        encode_time = time.perf_counter() - encode_start
        params.time_limit.FromMilliseconds(max(1, int(stop.engine_seconds * 1000)))
        model.watch(stop, scaled.objective_scale)

        start = best_feasible(instance, warm_start)
        if start is not None:
            initial = model.assignment(start[0].routes, params)
            origin = "warm start" if initial is not None else f"{first} (start rejected)"
        else:
            # PATH_CHEAPEST_ARC ignores how few vehicles of each type a mixed fleet
            # has: on X115-HVRP it finds no complete plan in 5 s, so such fleets
            # start from the greedy routes. On Solomon's loose homogeneous fleets
            # the greedy start measured worse (6.5% vs 4.8% mean gap at 1 s).
            tight_mix = instance.is_heterogeneous and all(
                vt.count is not None for vt in instance.vehicle_types
            )
            initial = model.greedy_assignment(instance, params) if tight_mix else None
            origin = "greedy" if initial is not None else first
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
        solution = model.decode(assignment)
        if start is not None and evaluate(instance, solution).objective > start[1].objective:
            # A search limit that fires mid-move can end OR-Tools on a plan worse
            # than its start (seen with duration costs at an iteration limit of one).
            stats["note"] = "OR-Tools ended on a plan worse than its start; the warm start stands"
            return finish(
                instance, start[0], Status.FEASIBLE, solver=self.name, seed=seed, stop=stop,
                stats=stats,
            )  # fmt: skip
        return finish(
            instance,
            solution,
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
    scaled: ScaledInstance, arc_cost: np.ndarray, vehicles: int, horizon: int
) -> int | None:
    """A penalty for a required visit left out, above any plan's cost; None if it may overflow.

    A plan costs at most every vehicle's fixed cost and duration cost over the
    whole horizon, the costliest arc out of every location, and every prize.
    """
    worst_plan = (
        vehicles * (int(scaled.fixed_cost.max()) + int(scaled.unit_duration_cost.max()) * horizon)
        + int(arc_cost.max(axis=1).sum())
        + (int(scaled.prize.sum()) if scaled.prize is not None else 0)
    )
    penalty = worst_plan + 1
    # OR-Tools sums penalties in int64: every client dropped must still fit.
    return penalty if penalty * len(arc_cost) < 2**62 else None


def _mixed_loads(instance: RoutingInstance) -> bool:
    """Deliveries from the depot on board together with pickups or shipments.

    OR-Tools' load dimension starts every route empty, so it cannot carry a
    route's deliveries from the depot while it also collects loads on the way.
    """
    collects = bool(instance.pickups.any()) or bool(instance.shipments)
    return collects and bool(instance.deliveries.any())


class _Model:
    """The OR-Tools routing model of one instance, and the index maps to decode it."""

    def __init__(self, pywrapcp: Any, instance: RoutingInstance, scaled: ScaledInstance) -> None:
        types = instance.vehicle_types
        # OR-Tools must visit every node that is not a start or end, so depots
        # no vehicle starts or ends at are left out of the model altogether.
        used_depots = sorted({vt.depot for vt in types} | {vt.final_depot for vt in types})
        self.num_depots = len(used_depots)
        self.locations = np.array(used_depots + [int(c) for c in instance.clients])
        self.node_of = {int(loc): i for i, loc in enumerate(self.locations)}

        self.vehicle_type = [k for k in range(len(types)) for _ in range(fleet_size(instance, k))]
        self.num_vehicles = len(self.vehicle_type)
        self.manager = pywrapcp.RoutingIndexManager(
            len(self.locations),
            self.num_vehicles,
            [self.node_of[types[k].depot] for k in self.vehicle_type],
            [self.node_of[types[k].final_depot] for k in self.vehicle_type],
        )
        self.routing = pywrapcp.RoutingModel(self.manager)
        self.sub = np.ix_(self.locations, self.locations)

        self.horizon = self._add_time(instance, scaled) if scaled.duration is not None else 0
        arc_cost = self._add_costs(instance, scaled)
        self.drop_penalty = _drop_penalty(scaled, arc_cost, self.num_vehicles, self.horizon)
        self.required_visits = self._add_visits(instance, scaled)
        self._add_loads(instance, scaled)
        if scaled.max_distance is not None:
            self._add_distance_limits(scaled)
        if instance.shipments:
            self._add_shipments(instance)

    def _index(self, location: int) -> int:
        return self.manager.NodeToIndex(self.node_of[location])

    def _add_costs(self, instance: RoutingInstance, scaled: ScaledInstance) -> np.ndarray:
        """Arc, fixed and duration costs per vehicle; returns the costliest arc matrix.

        A group's prizes count as a cost on leaving the client visited, the
        other clients' prizes of its group (``sum - prize``): that keeps every
        arc cost non-negative and the engine's objective equal to rota's.
        """
        routing = self.routing
        distance = scaled.distance[self.sub]
        node_cost = np.zeros(len(self.locations), dtype=np.int64)
        for group in instance.groups:
            prizes = {
                c: int(scaled.prize[c]) if scaled.prize is not None else 0 for c in group.clients
            }
            for c, prize in prizes.items():
                node_cost[self.node_of[c]] = sum(prizes.values()) - prize
        evaluators: dict[int, int] = {}
        costliest = distance
        for v, k in enumerate(self.vehicle_type):
            unit = int(scaled.unit_cost[k])
            if unit not in evaluators:
                arc_cost = distance * unit + node_cost[:, None]
                costliest = np.maximum(costliest, arc_cost)
                evaluators[unit] = routing.RegisterTransitMatrix(arc_cost.tolist())
            routing.SetArcCostEvaluatorOfVehicle(evaluators[unit], v)
            routing.SetFixedCostOfVehicle(int(scaled.fixed_cost[k]), v)
            if scaled.unit_duration_cost[k]:
                times = routing.GetDimensionOrDie("Time")
                times.SetSpanCostCoefficientForVehicle(int(scaled.unit_duration_cost[k]), v)
        return costliest

    def _add_visits(self, instance: RoutingInstance, scaled: ScaledInstance) -> list[list[int]]:
        """Who must and who may be visited, by which vehicles; returns the required visits.

        Every required client may still be dropped at a penalty above the cost
        of any complete plan: then a first solution always exists
        (PATH_CHEAPEST_ARC alone finds none on R101 in 5 s) and the search
        drives drops to zero; a final plan that still drops one is reported as
        no solution. Each returned list needs at least one of its indices visited.
        """
        routing, types = self.routing, instance.vehicle_types
        required: list[list[int]] = []
        prize = scaled.prize if scaled.prize is not None else np.zeros(instance.num_locations, int)
        forced = -1 if self.drop_penalty is None else self.drop_penalty
        grouped = {c for group in instance.groups for c in group.clients}
        for group in instance.groups:
            indices = [self._index(c) for c in group.clients]
            penalty = forced if group.required else sum(int(prize[c]) for c in group.clients)
            routing.AddDisjunction(indices, penalty, 1)
            if group.required:
                required.append(indices)
        for c in instance.clients:
            c = int(c)
            index = self._index(c)
            if c not in grouped:
                if instance.required[c]:
                    required.append([index])
                    if forced >= 0:
                        routing.AddDisjunction([index], forced)
                else:
                    routing.AddDisjunction([index], int(prize[c]))
            allowed = [
                v
                for v, k in enumerate(self.vehicle_type)
                if types[k].allowed_clients is None or c in types[k].allowed_clients
            ]
            if len(allowed) < self.num_vehicles:
                # -1 is "unperformed"; OR-Tools' Python wrapper cannot pass a
                # list to SetAllowedVehiclesForIndex, so the vehicle variable's
                # domain says the same.
                routing.VehicleVar(index).SetValues([-1, *allowed])
        return required

    def _add_loads(self, instance: RoutingInstance, scaled: ScaledInstance) -> None:
        """One load dimension per load kind, counting up from an empty vehicle.

        Deliveries count up what has been handed out (the peak load is the
        route's total, as a vehicle leaves full); pickups and shipments count
        what is on board. :func:`_mixed_loads` instances are refused upstream.
        """
        if scaled.demand is None:
            return
        routing = self.routing
        change = scaled.demand + scaled.pickup
        if scaled.shipment_amount is not None:
            for s, amount in zip(instance.shipments, scaled.shipment_amount, strict=True):
                change[s.pickup] += amount
                change[s.delivery] -= amount
        for dim in range(change.shape[1]):
            transit = routing.RegisterUnaryTransitVector(change[self.locations, dim].tolist())
            capacities = [int(scaled.capacity[k, dim]) for k in self.vehicle_type]
            routing.AddDimensionWithVehicleCapacity(transit, 0, capacities, True, f"Load{dim}")

    def _add_distance_limits(self, scaled: ScaledInstance) -> None:
        routing = self.routing
        distance = scaled.distance[self.sub]
        unlimited = int(distance.max(axis=1).sum())
        limits = [
            unlimited if scaled.max_distance[k] < 0 else int(scaled.max_distance[k])
            for k in self.vehicle_type
        ]
        transit = routing.RegisterTransitMatrix(distance.tolist())
        routing.AddDimensionWithVehicleCapacity(transit, 0, limits, True, "Distance")

    def _add_time(self, instance: RoutingInstance, scaled: ScaledInstance) -> int:
        """The time dimension: windows, duration limits; returns its horizon."""
        routing, types = self.routing, instance.vehicle_types
        # Service happens at the node a vehicle leaves, as in the evaluator.
        transit = scaled.duration[self.sub] + scaled.service[self.locations][:, None]
        if scaled.windows is not None:
            horizon = int(scaled.windows[self.locations, 1].max())
        else:
            horizon = int(transit.max(axis=1).sum())
        callback = routing.RegisterTransitMatrix(transit.tolist())
        # Slack up to the horizon lets a vehicle wait for a window to open.
        routing.AddDimension(callback, horizon, horizon, False, "Time")
        times = routing.GetDimensionOrDie("Time")
        if scaled.windows is not None:
            windows = scaled.windows
            for c in instance.clients:
                early, late = (int(t) for t in windows[c])
                times.CumulVar(self._index(int(c))).SetRange(early, late)
            for v, k in enumerate(self.vehicle_type):
                times.CumulVar(routing.Start(v)).SetRange(
                    *(int(t) for t in windows[types[k].depot])
                )
                times.CumulVar(routing.End(v)).SetRange(
                    *(int(t) for t in windows[types[k].final_depot])
                )
        if scaled.max_duration is not None:
            for v, k in enumerate(self.vehicle_type):
                if scaled.max_duration[k] >= 0:
                    times.SetSpanUpperBoundForVehicle(int(scaled.max_duration[k]), v)
        return horizon

    def _add_shipments(self, instance: RoutingInstance) -> None:
        """Each shipment's pickup and delivery on one vehicle, the pickup first."""
        routing = self.routing
        solver = routing.solver()
        routing.AddConstantDimension(1, len(self.locations) + 1, True, "Order")
        order = routing.GetDimensionOrDie("Order")
        for s in instance.shipments:
            pickup, delivery = self._index(s.pickup), self._index(s.delivery)
            routing.AddPickupAndDelivery(pickup, delivery)
            solver.Add(routing.VehicleVar(pickup) == routing.VehicleVar(delivery))
            solver.Add(order.CumulVar(pickup) < order.CumulVar(delivery))

    def watch(self, stop: Stop, objective_scale: int) -> None:
        """Show ``stop`` every solution the search accepts; end the search when it says so.

        The search limit is asked at every node, so a signal (``stop.interrupted``)
        ends the search within milliseconds even between solutions.
        A plan that still drops a client costs at least the drop penalty, so
        it counts as no feasible solution yet.
        """
        routing = self.routing
        best: int | None = None

        def on_solution() -> None:
            nonlocal best
            cost = routing.CostVar().Value()
            complete = self.drop_penalty is None or cost < self.drop_penalty
            if complete and (best is None or cost < best):
                best = cost
            if stop(None if best is None else best / objective_scale):
                # Not a search limit: a limit crossed while the first solution is
                # being restored sends OR-Tools into a complete CP search that no
                # limit checks (14 s on a seven-client fleet instance).
                routing.solver().FinishCurrentSearch()

        # kept on the model: OR-Tools holds no Python reference to its callbacks
        self.callbacks = (on_solution, lambda: stop.interrupted)
        routing.AddAtSolutionCallback(self.callbacks[0])
        routing.AddSearchMonitor(routing.solver().CustomLimit(self.callbacks[1]))

    def greedy_assignment(self, instance: RoutingInstance, params: Any) -> Any | None:
        """The greedy backend's routes as an OR-Tools assignment, or None without one."""
        from rota.solvers.greedy import GreedySolver, construct

        if GreedySolver().supports(instance) is not None:
            return None  # its routes would ignore the features it does not model
        routes, _ = construct(instance)
        return None if routes is None else self.assignment(routes, params)

    def assignment(self, routes: Any, params: Any) -> Any | None:
        """``routes`` (rota routes) as an OR-Tools assignment; None if OR-Tools rejects them."""
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
                plan[vehicle] = [self._index(c) for c in route.visits]
        self.routing.CloseModelWithParameters(params)
        return self.routing.ReadAssignmentFromRoutes(plan, True)

    def dropped(self, assignment: Any) -> int:
        """Required visits the assignment leaves out (only possible with a drop penalty)."""
        routing = self.routing
        return sum(
            all(assignment.Value(routing.NextVar(index)) == index for index in indices)
            for indices in self.required_visits
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
