"""A conformance suite every routing solver subclasses, and its tiny instances.

Usage::

    class TestMySolver(SolverConformance):
        solver = "mysolver"
        supported_kinds = frozenset({"cvrp", "acvrp"})   # what it must solve
        proves_optimality = True                         # OPTIMAL expected on tiny ones
        optimum_tolerance = 0.0                          # relative gap to brute force

Every kind in :data:`TINY_KINDS` that is not in ``supported_kinds`` is
expected to be refused by ``rota.solve`` with an
:class:`~rota.UnsupportedInstanceError` whose message names the missing
feature (see :data:`KIND_FEATURES`). Results are cached per (solver, kind,
seed), so the checks below share one solve per instance.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest

import rota
from rota.problems.routing import (
    TOLERANCE,
    ClientGroup,
    Route,
    RoutingInstance,
    RoutingSolution,
    Shipment,
    VehicleType,
)

# -- tiny instances -----------------------------------------------------------


def _euclidean(coords: np.ndarray) -> np.ndarray:
    diff = coords[:, None, :] - coords[None, :, :]
    return np.sqrt((diff**2).sum(-1))


def _rounded(coords: np.ndarray) -> np.ndarray:
    return np.floor(_euclidean(coords) + 0.5)


def _coords(seed: int, n: int, size: int = 100) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, size, (n, 2)).astype(float)


def _asymmetric(seed: int, n: int) -> np.ndarray:
    # Euclidean plus a one-way surcharge, so d[i, j] != d[j, i] but the
    # matrix still looks like a road network rather than noise.
    coords = _coords(seed, n)
    surcharge = np.random.default_rng(seed + 1).integers(0, 15, (n, n)).astype(float)
    matrix = _rounded(coords) + surcharge
    np.fill_diagonal(matrix, 0)
    return matrix


def tiny_tsp() -> RoutingInstance:
    coords = _coords(1, 8)
    return RoutingInstance(
        distance=_rounded(coords),
        vehicle_types=(VehicleType(capacity=None, count=1),),
        coords=coords,
        name="tiny-tsp",
    )


def tiny_atsp() -> RoutingInstance:
    return RoutingInstance(
        distance=_asymmetric(2, 8),
        vehicle_types=(VehicleType(capacity=None, count=1),),
        name="tiny-atsp",
    )


_DEMAND7 = [0, 2, 3, 4, 2, 3, 1, 3]


def tiny_cvrp() -> RoutingInstance:
    coords = _coords(3, 8)
    return RoutingInstance(
        distance=_rounded(coords),
        vehicle_types=(VehicleType(capacity=8),),
        demand=_DEMAND7,
        coords=coords,
        name="tiny-cvrp",
    )


def tiny_acvrp() -> RoutingInstance:
    return RoutingInstance(
        distance=_asymmetric(4, 8),
        vehicle_types=(VehicleType(capacity=8),),
        demand=_DEMAND7,
        name="tiny-acvrp",
    )


def tiny_vrptw() -> RoutingInstance:
    """Asymmetric VRPTW whose windows bind: the distance-only optimum is late."""
    distance = _asymmetric(5, 8) / 2
    # Each window opens when a direct trip from the depot could first arrive,
    # plus a staggered offset, so that visiting order is forced by time.
    offsets = np.array([0, 60, 0, 90, 30, 120, 10, 50], dtype=float)
    early = distance[0] + offsets
    windows = np.stack([early, early + 35], axis=1)
    windows[0] = (0, 400)
    return RoutingInstance(
        distance=distance,
        vehicle_types=(VehicleType(capacity=10, count=3),),
        demand=_DEMAND7,
        service_time=[0, 5, 5, 5, 5, 5, 5, 5],
        time_windows=windows,
        name="tiny-vrptw",
    )


def tiny_hfvrp() -> RoutingInstance:
    """Two vehicle types with fixed costs, a finite fleet and a non-integer unit cost."""
    coords = _coords(6, 8)
    return RoutingInstance(
        distance=_rounded(coords),
        vehicle_types=(
            VehicleType(capacity=6, count=2, fixed_cost=20, unit_distance_cost=1.0, name="van"),
            VehicleType(capacity=10, count=1, fixed_cost=45, unit_distance_cost=1.5, name="truck"),
        ),
        demand=_DEMAND7,
        coords=coords,
        name="tiny-hfvrp",
    )


def tiny_mdvrp() -> RoutingInstance:
    """Two depots (locations 0 and 1), one vehicle type at each."""
    coords = _coords(7, 9)
    coords[0], coords[1] = (10, 10), (90, 90)
    return RoutingInstance(
        distance=_rounded(coords),
        vehicle_types=(VehicleType(capacity=8, depot=0), VehicleType(capacity=8, depot=1)),
        depots=(0, 1),
        demand=[0, 0, 2, 3, 4, 2, 3, 1, 3],
        coords=coords,
        name="tiny-mdvrp",
    )


def tiny_cvrp_float() -> RoutingInstance:
    """Exact (unrounded) Euclidean distances: integer engines cannot scale them exactly."""
    coords = _coords(8, 8) + 0.25
    return RoutingInstance(
        distance=_euclidean(coords),
        vehicle_types=(VehicleType(capacity=8),),
        demand=_DEMAND7,
        coords=coords,
        name="tiny-cvrp-float",
    )


def small_cvrp() -> RoutingInstance:
    """Twelve clients and a finite fleet: too many for brute force, still tiny."""
    coords = _coords(9, 13)
    demand = np.random.default_rng(9).integers(1, 6, 13)
    demand[0] = 0
    return RoutingInstance(
        distance=_rounded(coords),
        vehicle_types=(VehicleType(capacity=15, count=4),),
        demand=demand,
        coords=coords,
        name="small-cvrp",
    )


def fleet_too_small() -> RoutingInstance:
    """Five unit demands, two vehicles of capacity 2.5: valid on paper, yet infeasible."""
    coords = np.stack([np.arange(6.0), np.zeros(6)], axis=1)
    return RoutingInstance(
        distance=_rounded(coords),
        vehicle_types=(VehicleType(capacity=2.5, count=2),),
        demand=[0, 1, 1, 1, 1, 1],
        coords=coords,
        name="fleet-too-small",
    )


# -- one tiny instance per routing feature: five clients, the feature binds --

_DEMAND5 = [0, 2, 3, 4, 2, 3]


def _featured(kind: str, seed: int, **fields: Any) -> RoutingInstance:
    coords = _coords(seed, 7 if "depots" in fields else 6)
    fields.setdefault("vehicle_types", (VehicleType(capacity=7),))
    fields.setdefault("demand", _DEMAND5 + [0] * (len(coords) - 6))
    return RoutingInstance(distance=_rounded(coords), coords=coords, name=f"tiny-{kind}", **fields)


def _windows(early: list[float], width: float, depot_close: float) -> np.ndarray:
    windows = np.stack([early, np.array(early) + width], axis=1)
    windows[0] = (0, depot_close)
    return windows


def tiny_multi_load() -> RoutingInstance:
    """Weight and volume: the volume, not the weight, decides which clients share a van."""
    demand = [[0, 0], [2, 4], [3, 1], [4, 2], [2, 3], [3, 2]]
    return _featured("multi_load", 11, demand=demand, vehicle_types=(VehicleType(capacity=(7, 6)),))


def tiny_pickups() -> RoutingInstance:
    """Collections only (backhauls without linehauls): loads grow along the route."""
    return _featured("pickups", 12, demand=[0] * 6, pickup=_DEMAND5)


def tiny_pickup_delivery() -> RoutingInstance:
    """Simultaneous delivery and pickup at each client: the load rises and falls."""
    return _featured("pickup_delivery", 13, pickup=[0, 3, 1, 2, 4, 1])


def tiny_backhauls() -> RoutingInstance:
    """Deliveries first, then collections, on every route (linehaul first)."""
    return _featured(
        "backhauls", 14, demand=[0, 3, 4, 0, 0, 2], pickup=[0, 0, 0, 3, 4, 0], linehaul_first=True
    )


def tiny_shipments() -> RoutingInstance:
    """Two paired pickups and deliveries that do not fit on board together."""
    return _featured(
        "shipments",
        15,
        demand=[0] * 6,
        pickup=[0, 0, 0, 0, 2, 0],
        shipments=(Shipment(1, 3, 3.0), Shipment(2, 5, 4.0)),
        vehicle_types=(VehicleType(capacity=6),),
    )


def tiny_release_times() -> RoutingInstance:
    """Goods for two clients reach the depot late: their routes cannot leave before."""
    return _featured(
        "release_times",
        16,
        service_time=[0, 5, 5, 5, 5, 5],
        time_windows=_windows([0, 0, 0, 0, 0, 0], 400, 400),
        release_time=[0, 0, 120, 0, 150, 0],
        vehicle_types=(VehicleType(capacity=7, count=3),),
    )


def tiny_prizes() -> RoutingInstance:
    """Three optional clients, one worth a detour, two not."""
    return _featured(
        "prizes",
        17,
        required=[True, True, False, True, False, False],
        prize=[0, 0, 8, 0, 90, 10],
        vehicle_types=(VehicleType(capacity=8),),
    )


def tiny_groups() -> RoutingInstance:
    """Exactly one of clients 2 and 4, at most one of 3 and 5, prizes for each."""
    return _featured(
        "groups",
        18,
        required=[True, True, False, False, False, False],
        prize=[0, 0, 20, 30, 40, 10],
        groups=(ClientGroup((2, 4)), ClientGroup((3, 5), required=False)),
    )


def tiny_reloads() -> RoutingInstance:
    """One vehicle, 14 units to deliver with room for 8: it must come back and reload."""
    return _featured(
        "reloads",
        19,
        vehicle_types=(VehicleType(capacity=8, count=1, reload_depots=(0,), max_reloads=2),),
    )


def tiny_max_distance() -> RoutingInstance:
    """Short-range vehicles: no route may cover more than 150."""
    return _featured(
        "max_distance", 20, vehicle_types=(VehicleType(capacity=10, max_distance=150.0),)
    )


def tiny_max_duration() -> RoutingInstance:
    """Shifts of 160 with 20 of service per stop: time, not load, splits the routes."""
    return _featured(
        "max_duration",
        21,
        service_time=[0, 20, 20, 20, 20, 20],
        vehicle_types=(VehicleType(capacity=14, max_duration=160.0),),
    )


def tiny_duration_costs() -> RoutingInstance:
    """Drivers are paid by the hour, waiting included: windows make waits costly."""
    return _featured(
        "duration_costs",
        22,
        service_time=[0, 5, 5, 5, 5, 5],
        time_windows=_windows([0, 60, 150, 20, 90, 200], 40, 500),
        vehicle_types=(VehicleType(capacity=8, unit_duration_cost=0.5),),
    )


def tiny_allowed_clients() -> RoutingInstance:
    """A cheap van that may serve three clients only, and a costly truck for any."""
    return _featured(
        "allowed_clients",
        23,
        vehicle_types=(
            VehicleType(capacity=7, count=1, allowed_clients=(1, 2, 4), name="van"),
            VehicleType(capacity=10, count=2, fixed_cost=25, unit_distance_cost=1.5, name="truck"),
        ),
    )


def tiny_end_depots() -> RoutingInstance:
    """Routes leave depot 0 and end at depot 6, across the map."""
    return _featured(
        "end_depots",
        24,
        depots=(0, 6),
        vehicle_types=(VehicleType(capacity=7, end_depot=6),),
    )


#: kind -> builder; every builder is deterministic.
TINY_KINDS: dict[str, Callable[[], RoutingInstance]] = {
    "tsp": tiny_tsp,
    "atsp": tiny_atsp,
    "cvrp": tiny_cvrp,
    "acvrp": tiny_acvrp,
    "vrptw": tiny_vrptw,
    "hfvrp": tiny_hfvrp,
    "mdvrp": tiny_mdvrp,
    "cvrp_float": tiny_cvrp_float,
    "cvrp12": small_cvrp,
    "multi_load": tiny_multi_load,
    "pickups": tiny_pickups,
    "pickup_delivery": tiny_pickup_delivery,
    "backhauls": tiny_backhauls,
    "shipments": tiny_shipments,
    "release_times": tiny_release_times,
    "prizes": tiny_prizes,
    "groups": tiny_groups,
    "reloads": tiny_reloads,
    "max_distance": tiny_max_distance,
    "max_duration": tiny_max_duration,
    "duration_costs": tiny_duration_costs,
    "allowed_clients": tiny_allowed_clients,
    "end_depots": tiny_end_depots,
}

#: The kinds above that use routing features (only PyVRP models all of them).
FEATURE_KINDS = frozenset(TINY_KINDS) - {
    "tsp", "atsp", "cvrp", "acvrp", "vrptw", "hfvrp", "mdvrp", "cvrp_float", "cvrp12"
}  # fmt: skip

#: Words of which at least one must appear in the refusal of an unsupported kind.
KIND_FEATURES: dict[str, tuple[str, ...]] = {
    "tsp": ("capacit",),
    "atsp": ("symmetric", "capacit"),
    "cvrp": ("capacit", "clients"),
    "acvrp": ("symmetric", "capacit"),
    "vrptw": ("time window", "symmetric"),
    "hfvrp": ("heterogeneous",),
    "mdvrp": ("depot", "heterogeneous"),
    "cvrp_float": ("integer", "scal", "float"),
    "cvrp12": ("clients",),
    "multi_load": ("multi load",),
    "pickups": ("pickups",),
    "pickup_delivery": ("pickups",),
    "backhauls": ("linehaul first",),
    "shipments": ("shipments",),
    # three kinds have a second property a solver may name first: time windows, or
    # (allowed clients) a van and a truck of different costs
    "release_times": ("release times", "time window"),
    "prizes": ("prizes",),
    "groups": ("groups",),
    "reloads": ("reloads",),
    "max_distance": ("max distance",),
    "max_duration": ("max duration",),
    "duration_costs": ("duration costs", "time window"),
    "allowed_clients": ("allowed clients", "heterogeneous"),
    "end_depots": ("end depots", "depots"),
}

#: Largest instance the brute force below solves.
BRUTE_FORCE_MAX_CLIENTS = 7


@functools.cache
def tiny_instance(kind: str) -> RoutingInstance:
    return TINY_KINDS[kind]()


# -- brute force --------------------------------------------------------------


def _route_cost(instance: RoutingInstance, k: int, order: tuple[int, ...]) -> float:
    """Cost of serving ``order`` with one vehicle of type ``k``; inf when infeasible.

    Computed here, independently of the evaluator, for the kinds without features.
    """
    vt = instance.vehicle_types[k]
    path = (vt.depot, *order, vt.depot)
    if instance.time_windows is not None:
        windows, travel, service = (
            instance.time_windows,
            instance.travel_time,
            instance.service_time,
        )
        t = windows[vt.depot, 0]
        for a, b in itertools.pairwise(path):
            t = max(t + service[a] + travel[a, b], windows[b, 0])
            if t > windows[b, 1] + TOLERANCE * max(1.0, abs(windows[b, 1])):
                return math.inf
    distance = sum(instance.distance[a, b] for a, b in itertools.pairwise(path))
    return vt.fixed_cost + vt.unit_distance_cost * distance


#: Violations of a whole plan rather than of one route: the search below handles them.
_PLAN_VIOLATIONS = frozenset({"unvisited", "group"})


def _evaluated_route_cost(instance: RoutingInstance, k: int, order: tuple[int, ...]) -> float:
    """The cheapest way to serve ``order`` with one vehicle of type ``k``, by the evaluator.

    Feature kinds keep their brute force small (five clients), so every place
    a vehicle with reload depots may reload is tried too.
    """
    vt = instance.vehicle_types[k]
    reloads = 0
    if vt.reload_depots:
        reloads = len(order) - 1 if vt.max_reloads is None else min(vt.max_reloads, len(order) - 1)
    best = math.inf
    for count in range(reloads + 1):
        for gaps in itertools.combinations(range(1, len(order)), count):
            for depots in itertools.product(vt.reload_depots, repeat=count):
                visits = list(order)
                for gap, depot in sorted(zip(gaps, depots, strict=True), reverse=True):
                    visits.insert(gap, depot)
                report = rota.evaluate(instance, RoutingSolution((Route(tuple(visits), k),)))
                if all(v.kind in _PLAN_VIOLATIONS for v in report.violations):
                    best = min(best, report.objective - report.uncollected_prizes)
    return best


def _visit_sets(instance: RoutingInstance, clients: tuple[int, ...]) -> list[int]:
    """Masks over ``clients`` of every set of visits the plan-level rules allow."""
    bit = {c: 1 << i for i, c in enumerate(clients)}
    must = sum(bit[c] for c in clients if instance.required[c])
    sets = []
    for mask in range(1 << len(clients)):
        if mask & must != must:
            continue
        visited = [sum(bool(mask & bit[c]) for c in g.clients) for g in instance.groups]
        if all(n == 1 or (n == 0 and not g.required)
               for n, g in zip(visited, instance.groups, strict=True)):  # fmt: skip
            sets.append(mask)
    return sets


@functools.cache
def brute_force_optimum(kind: str) -> float:
    """Optimal objective of ``tiny_instance(kind)`` by enumeration (<= 7 clients).

    Cheapest route per (vehicle type, client subset) over all orders, then a
    memoised search over set partitions of every allowed set of visits that
    respects each type's count; unvisited clients' prizes are added.
    """
    instance = tiny_instance(kind)
    clients = tuple(int(c) for c in instance.clients)
    if len(clients) > BRUTE_FORCE_MAX_CLIENTS:
        raise ValueError(f"{instance.name} has {len(clients)} clients, too many for brute force")
    route_cost = _evaluated_route_cost if instance.features else _route_cost
    types = instance.vehicle_types
    bit = {c: 1 << i for i, c in enumerate(clients)}
    best: dict[tuple[int, int], float] = {}
    for mask in range(1, 1 << len(clients)):
        subset = [c for i, c in enumerate(clients) if mask >> i & 1]
        # a shipment's two ends travel together
        split = any(bool(mask & bit[s.pickup]) != bool(mask & bit[s.delivery])
                    for s in instance.shipments)  # fmt: skip
        load = float(instance.demand[subset].sum())
        for k, vt in enumerate(types):
            # the evaluator checks the capacity of feature kinds itself
            heavy = not instance.features and vt.capacity is not None
            if split or (heavy and load > vt.capacity + TOLERANCE):
                best[k, mask] = math.inf
                continue
            best[k, mask] = min(
                route_cost(instance, k, order) for order in itertools.permutations(subset)
            )

    counts = tuple(len(clients) if vt.count is None else vt.count for vt in types)
    prize = instance.prize if instance.prize is not None else np.zeros(instance.num_locations)

    def cover_all(target: int) -> float:
        @functools.cache
        def cover(done: int, left: tuple[int, ...]) -> float:
            if done == target:
                return 0.0
            first = (~done & target) & -(~done & target)  # lowest unserved client joins next
            rest = target & ~done & ~first
            value = math.inf
            sub = rest
            while True:
                mask = sub | first
                for k in range(len(types)):
                    if left[k] and best[k, mask] < math.inf:
                        fewer = left[:k] + (left[k] - 1,) + left[k + 1 :]
                        value = min(value, best[k, mask] + cover(done | mask, fewer))
                if sub == 0:
                    break
                sub = (sub - 1) & rest
            return value

        return cover(0, counts)

    optimum = min(
        cover_all(target) + sum(float(prize[c]) for c in clients if not target & bit[c])
        for target in _visit_sets(instance, clients)
    )
    if not math.isfinite(optimum):
        raise ValueError(f"{instance.name} has no feasible solution")
    return optimum


# -- the suite ----------------------------------------------------------------

_RESULTS: dict[tuple[str, str, str, str, int], tuple[rota.Result, float]] = {}


class SolverConformance:
    """Checks every solver must pass; subclass it and set the class attributes."""

    #: Registered solver name, as passed to ``rota.solve``.
    solver: ClassVar[str] = ""
    #: Kinds of :data:`TINY_KINDS` the solver must solve; all others it must refuse.
    supported_kinds: ClassVar[frozenset[str]] = frozenset(TINY_KINDS)
    #: Whether the solver proves optimality: OPTIMAL is then allowed, and must be true.
    proves_optimality: ClassVar[bool] = False
    #: Largest relative gap to the brute-force optimum on <= 7 clients; None: feasibility only.
    optimum_tolerance: ClassVar[float | None] = None
    #: Time limit of every solve in the suite, seconds.
    time_limit: ClassVar[float] = 0.5
    #: Seed of every solve; the determinism check repeats it.
    seed: ClassVar[int] = 1
    #: Extra keyword options for ``rota.solve`` (solvers with ``configure``).
    options: ClassVar[dict[str, Any]] = {}
    #: Stop of the determinism check; None: the time limit. A search that stops on
    #: time does as much work as the machine allows, so only a solver that settles
    #: within :attr:`time_limit` can promise the same answer twice on a busy machine.
    #: A solver that proves optimality settles on its proof (or on its scaled
    #: model's): the check gives it a generous limit and requires it to end well before.
    determinism_stop: ClassVar[str | None] = None

    def extra_unsupported(self) -> list[tuple[RoutingInstance, tuple[str, ...]]]:
        """Instances beyond :data:`TINY_KINDS` the solver must refuse, with reason words."""
        return []

    # -- parametrisation (pytest calls this for each test method) ---------------
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        kinds = [k for k in TINY_KINDS if k in self.supported_kinds]
        if "kind" in metafunc.fixturenames:
            metafunc.parametrize("kind", kinds)
        if "tiny_kind" in metafunc.fixturenames:
            tiny = [k for k in kinds if tiny_instance(k).num_clients <= BRUTE_FORCE_MAX_CLIENTS]
            metafunc.parametrize("tiny_kind", tiny)

    def refused_cases(self) -> list[tuple[RoutingInstance, tuple[str, ...]]]:
        """Every tiny kind the solver does not support, and :meth:`extra_unsupported`."""
        cases = [
            (tiny_instance(k), KIND_FEATURES[k])
            for k in TINY_KINDS
            if k not in self.supported_kinds
        ]
        return cases + self.extra_unsupported()

    def solve(self, instance: RoutingInstance, **kwargs: Any) -> rota.Result:
        """``rota.solve`` with this suite's solver, seed and options; ``kwargs`` override."""
        arguments = {"time_limit": self.time_limit, "seed": self.seed} | kwargs
        return rota.solve(instance, solver=self.solver, **arguments, **self.options)

    @pytest.fixture(autouse=True)
    def _require_backend(self) -> None:
        assert self.solver, f"{type(self).__name__} must set the class attribute `solver`"
        backend = rota.get_solver(self.solver)
        if not backend.available():
            why = getattr(backend, "import_error", None)
            pytest.skip(f"solver {self.solver!r} is not installed" + (f" ({why})" if why else ""))

    def solved(self, kind: str, seed: int | None = None) -> tuple[rota.Result, float]:
        """(result, wall seconds) of solving the tiny ``kind``; cached per seed."""
        seed = self.seed if seed is None else seed
        # Keyed by class too: two subclasses may share a solver with different options.
        key = (type(self).__qualname__, self.solver, repr(sorted(self.options.items())), kind, seed)
        if key not in _RESULTS:
            instance = tiny_instance(kind)
            start = time.perf_counter()
            result = rota.solve(
                instance, solver=self.solver, time_limit=self.time_limit, seed=seed, **self.options
            )
            _RESULTS[key] = (result, time.perf_counter() - start)
        return _RESULTS[key]

    # -- the checks ---------------------------------------------------------
    def test_feasible_and_objective_matches_evaluator(self, kind: str) -> None:
        instance = tiny_instance(kind)
        result, _ = self.solved(kind)
        assert result.solution is not None, f"{self.solver} found no solution: {result.stats}"
        report = rota.evaluate(instance, result.solution)
        assert report.violations == (), [str(v) for v in report.violations]
        assert result.objective == pytest.approx(report.objective, rel=1e-9, abs=1e-9)

    def test_status(self, kind: str) -> None:
        result, _ = self.solved(kind)
        assert result.solver == self.solver
        assert result.seed == self.seed
        if self.proves_optimality:
            assert result.status in (rota.Status.OPTIMAL, rota.Status.FEASIBLE)
        else:
            assert result.status is rota.Status.FEASIBLE
            assert result.bound is None
        if result.bound is not None:
            assert result.bound <= result.objective + 1e-6 * max(1.0, abs(result.objective))

    def test_same_seed_same_objective(self, kind: str) -> None:
        instance = tiny_instance(kind)
        if self.determinism_stop is None and self.proves_optimality:
            first, again = (self.solve(instance, time_limit=60.0) for _ in range(2))
            assert max(first.runtime, again.runtime) < 30.0, first.stats
        elif self.determinism_stop is None:
            first, _ = self.solved(kind)
            again = self.solve(instance)
        else:
            first, again = (
                self.solve(instance, stop=self.determinism_stop, time_limit=60.0) for _ in range(2)
            )
            assert first.stats["stopped_by"] != "time", first.stats
        assert again.status == first.status
        assert again.objective == pytest.approx(first.objective, rel=1e-9)

    def test_time_limit_respected(self, kind: str) -> None:
        result, wall = self.solved(kind)
        assert result.runtime <= self.time_limit + 1.5
        assert wall <= self.time_limit + 1.5

    def test_tiny_instance_near_brute_force_optimum(self, tiny_kind: str) -> None:
        result, _ = self.solved(tiny_kind)
        optimum = brute_force_optimum(tiny_kind)
        assert result.objective is not None
        # Nothing may beat a true optimum: that would mean a broken evaluator or decode.
        assert result.objective >= optimum - 1e-6 * max(1.0, optimum)
        if self.proves_optimality and result.status is rota.Status.OPTIMAL:
            assert result.objective == pytest.approx(optimum, rel=1e-9)
        if self.optimum_tolerance is not None:
            assert result.objective <= optimum * (1 + self.optimum_tolerance) + 1e-9

    def test_refuses_unsupported_instances_and_supports_the_rest(self) -> None:
        for instance, words in self.refused_cases():
            with pytest.raises(rota.UnsupportedInstanceError) as info:
                self.solve(instance)
            message = str(info.value).lower()
            assert any(word in message for word in words), (instance.name, message, words)
            infos = {i.name: i for i in rota.list_solvers(instance)}
            assert infos[self.solver].supports is False
            assert infos[self.solver].reason
        refused = {instance.name for instance, _ in self.refused_cases()}
        for kind in self.supported_kinds:
            assert tiny_instance(kind).name not in refused

    def test_warm_start_from_greedy_is_never_worsened(self, kind: str) -> None:
        instance = tiny_instance(kind)
        # greedy models no routing features; PyVRP models them all
        source = "pyvrp" if kind in FEATURE_KINDS else "greedy"
        start = rota.solve(instance, solver=source, time_limit=1.0, seed=self.seed)
        assert start.status is rota.Status.FEASIBLE
        if not rota.get_solver(self.solver).capabilities.warm_start:
            with pytest.raises(rota.UnsupportedError, match="cannot start from given solutions"):
                self.solve(instance, warm_start=start)
            return
        # One iteration: whatever the solver returns then is its start or better.
        result = self.solve(instance, warm_start=start, stop="iterations=1", time_limit=30.0)
        assert result.status.has_solution, result.stats
        assert result.objective <= start.objective + 1e-9 * max(1.0, start.objective)
        assert rota.evaluate(instance, result.solution).feasible
        # the backend honoured the start itself; rota.solve's fallback was not needed
        assert result.stats.get("solution_from") != "warm start", result.stats

    def test_every_stopping_criterion_is_honoured_or_refused(self) -> None:
        instance = tiny_instance("cvrp12" if "cvrp12" in self.supported_kinds else "tsp")
        honoured = rota.get_solver(self.solver).capabilities.stopping
        for criterion in ("iterations", "no_improvement", "target"):
            value = {"iterations": 3, "no_improvement": 3, "target": 1e12}[criterion]
            stop = {criterion: value}
            if criterion not in honoured:
                with pytest.raises(rota.UnsupportedError, match="cannot stop on"):
                    self.solve(instance, stop=stop)
                continue
            began = time.perf_counter()
            result = self.solve(instance, stop=stop, time_limit=60.0)
            # each criterion ends a run long before the 60 s limit: the exact
            # solvers may prove optimality first, the heuristics never stop otherwise
            assert time.perf_counter() - began < 20, (criterion, result.stats)
            assert result.status.has_solution, result.stats
            assert result.stats["stopped_by"] in (criterion, None), result.stats

    @pytest.mark.parametrize("factor", [1e17, 1e290, 1e-7])
    def test_extreme_costs_are_solved_exactly_or_refused(self, factor: float) -> None:
        """Costs near and past 64-bit integers, and tiny ones: never a false status."""
        tiny = tiny_instance("atsp" if "atsp" in self.supported_kinds else "cvrp")
        instance = RoutingInstance(
            distance=tiny.distance * factor,
            vehicle_types=tiny.vehicle_types,
            demand=tiny.demand,
            name=f"{tiny.name}-x{factor:g}",
        )
        try:
            result = self.solve(instance, time_limit=5.0)
        except rota.UnsupportedInstanceError as exc:
            assert any(w in str(exc) for w in ("large", "64-bit", "beyond", "exact")), str(exc)
            return
        assert result.status in (rota.Status.FEASIBLE, rota.Status.OPTIMAL), result.stats
        report = rota.evaluate(instance, result.solution)
        assert report.feasible
        assert result.objective == pytest.approx(report.objective, rel=1e-9)
        optimum = brute_force_optimum(tiny.name.removeprefix("tiny-")) * factor
        assert result.objective >= optimum * (1 - 1e-9)
        if result.status is rota.Status.OPTIMAL:
            assert result.objective == pytest.approx(optimum, rel=1e-9)

    def test_fleet_too_small_is_never_reported_feasible(self) -> None:
        if "cvrp" not in self.supported_kinds:
            pytest.skip(f"{self.solver} does not solve CVRP")
        result = rota.solve(
            fleet_too_small(),
            solver=self.solver,
            time_limit=self.time_limit,
            seed=self.seed,
            **self.options,
        )
        assert result.status in (rota.Status.NO_SOLUTION, rota.Status.INFEASIBLE), result.stats
        assert result.solution is None and result.objective is None

    def test_listed_as_available_and_supporting(self, kind: str) -> None:
        infos = {i.name: i for i in rota.list_solvers(tiny_instance(kind))}
        info = infos[self.solver]
        assert info.available is True
        assert info.supports is True, info.reason
        assert info.reason is None


__all__ = [
    "BRUTE_FORCE_MAX_CLIENTS",
    "FEATURE_KINDS",
    "KIND_FEATURES",
    "SolverConformance",
    "TINY_KINDS",
    "brute_force_optimum",
    "fleet_too_small",
    "tiny_instance",
]
