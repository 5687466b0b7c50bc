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

from rota.problems.routing import FEATURES, Route, RoutingInstance, RoutingSolution
from rota.solvers.base import ALL_CRITERIA, RequiresModules, Result, Status, best_feasible, finish
from rota.solvers.routing import RoutingCapabilities, check_capabilities
from rota.solvers.scaling import ScaledInstance, scale_instance, scaling_refusal
from rota.solvers.stopping import Stop

#: PyVRP's cost of an infeasible solution is "a very large number"; anything
#: this large is no objective.
_INFEASIBLE_COST = 2**60


class PyVRPSolver(RequiresModules):
    """PyVRP's iterated local search, for every routing feature rota models.

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
    description = "PyVRP iterated local search (heuristic; every routing feature)"
    capabilities = RoutingCapabilities(
        warm_start=True,
        stopping=ALL_CRITERIA,
        asymmetric=True,
        time_windows=True,
        heterogeneous=True,
        multi_depot=True,
        uncapacitated=True,
        features=frozenset(FEATURES),
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
        from pyvrp.constants import MAX_VALUE

        encode_start = time.perf_counter()
        scaled = scale_instance(instance)
        encoding = _Encoding(instance)
        data = _problem_data(pyvrp, instance, scaled, encoding)
        encode_time = time.perf_counter() - encode_start

        stats: dict = {}
        if warm_start:
            # the best feasible start, else the first: PyVRP repairs an infeasible one
            best = best_feasible(instance, warm_start)
            start = warm_start[0] if best is None else best[0]
            initial = _pyvrp_solution(pyvrp, encoding, data, start.routes)
            stats["initial_solution"] = "warm start"
        else:
            # PyVRP's random start ignores fleet limits; on tight finite fleets
            # (X115-HVRP: 19 vehicles for 84% of their capacity) it often ends a
            # 1 s run infeasible, while a greedy start keeps it feasible throughout.
            finite_fleet = all(vt.count is not None for vt in instance.vehicle_types)
            plain = not instance.features  # the greedy construction models no feature
            initial = (
                _greedy_start(pyvrp, instance, encoding, data) if finite_fleet and plain else None
            )
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
        routes = [
            Route(encoding.visits(instance, route), int(route.vehicle_type()))
            for route in best.routes()
        ]
        feasible = best.is_feasible()
        engine_objective = (
            int(best.distance_cost())
            + int(best.duration_cost())
            + int(best.fixed_vehicle_cost())
            + int(best.uncollected_prizes())
        )
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
        if feasible and engine_objective >= MAX_VALUE:
            # PyVRP prices the arcs a vehicle may not use at MAX_VALUE rather than
            # forbidding them: a best solution on one breaks a rule, it is no solution
            stats["note"] = "PyVRP's best solution uses an arc that allowed clients forbid"
            feasible = False
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


class _Encoding:
    """PyVRP's indices of rota's locations: clients, depots and shipment ends."""

    def __init__(self, instance: RoutingInstance) -> None:
        shipped = {c for s in instance.shipments for c in (s.pickup, s.delivery)}
        self.depot_index = {d: i for i, d in enumerate(instance.depots)}
        self.client_locations = [int(c) for c in instance.clients if int(c) not in shipped]
        self.client_index = {c: i for i, c in enumerate(self.client_locations)}
        self.pickup_of = {s.pickup: k for k, s in enumerate(instance.shipments)}
        self.delivery_of = {s.delivery: k for k, s in enumerate(instance.shipments)}

    def activities(self, pyvrp, visits) -> list:
        kind = pyvrp.ActivityType
        out = []
        for v in visits:
            if v in self.depot_index:
                out.append(pyvrp.Activity(kind.DEPOT, self.depot_index[v]))
            elif v in self.pickup_of:
                out.append(pyvrp.Activity(kind.PICKUP, self.pickup_of[v]))
            elif v in self.delivery_of:
                out.append(pyvrp.Activity(kind.DELIVERY, self.delivery_of[v]))
            else:
                out.append(pyvrp.Activity(kind.CLIENT, self.client_index[v]))
        return out

    def visits(self, instance: RoutingInstance, route) -> tuple[int, ...]:
        """rota's visits of a PyVRP route: its activities but the start and end depot."""
        out = []
        for activity in list(route.schedule())[1:-1]:
            if activity.is_depot():
                out.append(instance.depots[activity.idx])
            elif activity.is_client():
                out.append(self.client_locations[activity.idx])
            elif activity.is_pickup():
                out.append(instance.shipments[activity.idx].pickup)
            else:
                out.append(instance.shipments[activity.idx].delivery)
        return tuple(out)


def _pyvrp_solution(pyvrp, encoding: _Encoding, data, routes) -> object:
    """Routes as a ``pyvrp.Solution`` of ``data``."""
    return pyvrp.Solution(
        data,
        [
            pyvrp.Route(data, encoding.activities(pyvrp, r.visits), r.vehicle_type)
            for r in routes
            if r.visits
        ],
    )


def _greedy_start(pyvrp, instance: RoutingInstance, encoding: _Encoding, data):
    """The greedy backend's routes as a ``pyvrp.Solution``, or None if it found none."""
    from rota.solvers.greedy import construct

    routes, _ = construct(instance)
    return None if routes is None else _pyvrp_solution(pyvrp, encoding, data, routes)


def _profiles(pyvrp, instance: RoutingInstance, scaled: ScaledInstance) -> tuple[list, list]:
    """One distance matrix per set of allowed clients, and each vehicle type's profile.

    Arcs a vehicle must not use cost PyVRP's ``MAX_VALUE``, as PyVRP's own
    reader does: to and from clients a vehicle type may not serve, and, with
    linehauls first, from the depot to a backhaul and from a backhaul to a
    linehaul (so every trip starts with a linehaul and ends with backhauls).
    """
    from pyvrp.constants import MAX_VALUE

    base = scaled.distance.copy()
    if instance.linehaul_first:
        backhaul = instance.pickups.any(axis=1)
        linehaul = instance.deliveries.any(axis=1)
        for d in instance.depots:
            base[d, backhaul] = MAX_VALUE
        base[np.ix_(backhaul, linehaul)] = MAX_VALUE
        np.fill_diagonal(base, 0)  # a client with both a pickup and a delivery
    matrices, profile_of, types = [base], {None: 0}, []
    for vt in instance.vehicle_types:
        key = vt.allowed_clients
        if key not in profile_of:
            allowed = np.zeros(instance.num_locations, dtype=bool)
            allowed[list(instance.depots)] = True
            allowed[list(key)] = True
            matrix = base.copy()
            matrix[:, ~allowed] = MAX_VALUE
            matrix[~allowed, :] = MAX_VALUE
            np.fill_diagonal(matrix, 0)
            profile_of[key] = len(matrices)
            matrices.append(matrix)
        types.append(profile_of[key])
    return matrices, types


def _problem_data(pyvrp, instance: RoutingInstance, scaled: ScaledInstance, encoding: _Encoding):
    """Build ``pyvrp.ProblemData`` directly, keeping the instance's location indices."""
    n = instance.num_locations
    coords = instance.coords if instance.coords is not None else np.zeros((n, 2))
    locations = [pyvrp.Location(float(x), float(y)) for x, y in coords]
    windows, service = scaled.windows, scaled.service

    def timing(loc: int) -> dict:
        out = {}
        if windows is not None:
            out |= {"tw_early": int(windows[loc, 0]), "tw_late": int(windows[loc, 1])}
        if service is not None:
            out["service_duration"] = int(service[loc])
        return out

    def loads(array: np.ndarray | None, loc: int) -> list[int]:
        return [] if array is None else [int(x) for x in array[loc]]

    depots = [pyvrp.Depot(location=d, **timing(d)) for d in instance.depots]
    group_of = {c: g for g, group in enumerate(instance.groups) for c in group.clients}
    clients = []
    for c in encoding.client_locations:
        extra = {}
        if scaled.release is not None:
            extra["release_time"] = int(scaled.release[c])
        if scaled.prize is not None:
            extra["prize"] = int(scaled.prize[c])
        clients.append(
            pyvrp.Client(
                location=c,
                delivery=loads(scaled.demand, c),
                pickup=loads(scaled.pickup, c),
                required=bool(instance.required[c]),
                group=group_of.get(c),
                **timing(c),
                **extra,
            )  # fmt: skip
        )
    groups = [
        pyvrp.ClientGroup([encoding.client_index[c] for c in g.clients], g.required)
        for g in instance.groups
    ]
    shipments = []
    for k, s in enumerate(instance.shipments):
        ends = {}
        for side, loc in (("pickup", s.pickup), ("delivery", s.delivery)):
            ends |= {f"{side}_{key}": value for key, value in timing(loc).items()}
        amount = (
            [] if scaled.shipment_amount is None else [int(x) for x in scaled.shipment_amount[k]]
        )
        shipments.append(pyvrp.Shipment(s.pickup, s.delivery, amount=amount, **ends))

    matrices, profiles = _profiles(pyvrp, instance, scaled)
    vehicle_types = []
    for k, vt in enumerate(instance.vehicle_types):
        # An unlimited fleet never needs more vehicles than there are clients.
        count = instance.num_clients if vt.count is None else min(vt.count, instance.num_clients)
        extra = {}
        if windows is not None:
            extra |= {
                "tw_early": int(windows[vt.depot, 0]),
                "tw_late": int(windows[vt.final_depot, 1]),
            }
        if scaled.max_distance is not None and scaled.max_distance[k] >= 0:
            extra["max_distance"] = int(scaled.max_distance[k])
        if scaled.max_duration is not None and scaled.max_duration[k] >= 0:
            extra["shift_duration"] = int(scaled.max_duration[k])
        if vt.reload_depots:
            extra["reload_depots"] = [encoding.depot_index[d] for d in vt.reload_depots]
            if vt.max_reloads is not None:
                extra["max_reloads"] = vt.max_reloads
        vehicle_types.append(
            pyvrp.VehicleType(
                num_available=count,
                capacity=[] if scaled.demand is None else [int(x) for x in scaled.capacity[k]],
                start_depot=encoding.depot_index[vt.depot],
                end_depot=encoding.depot_index[vt.final_depot],
                fixed_cost=int(scaled.fixed_cost[k]),
                unit_distance_cost=int(scaled.unit_cost[k]),
                unit_duration_cost=int(scaled.unit_duration_cost[k]),
                profile=profiles[k],
                name=vt.name,
                **extra,
            )
        )

    duration = scaled.duration if scaled.duration is not None else np.zeros((n, n), np.int64)
    return pyvrp.ProblemData(
        locations, clients, depots, vehicle_types, matrices, [duration] * len(matrices),
        groups=groups, shipments=shipments,
    )  # fmt: skip


__all__ = ["PyVRPSolver"]
