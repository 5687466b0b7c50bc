"""Integer encoding shared by the integer engines (PyVRP, OR-Tools).

Integer scaling happens only inside adapters; this module is the one place
that decides the scales and the rounding direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rota.problems.routing import RoutingInstance
from rota.solvers.routing import per_instance

#: Integer engines work in int64; keep every scaled quantity (and sums of them
#: along a route) far below 2**63 so that penalties cannot overflow.
MAX_SCALED_VALUE = 2**53


def integer_scale(*arrays: np.ndarray, max_scale: int = 10_000) -> tuple[int, bool]:
    """Smallest power of ten making every array integral, and whether it is exact.

    Integer engines (PyVRP, OR-Tools, CP-SAT) need integer data. When no power
    of ten up to ``max_scale`` is exact, ``max_scale`` is used and the engine
    sees rounded data; adapters then report the evaluator's objective instead.
    """
    scale = 1
    while scale <= max_scale:
        # Relative as well as absolute: 3.0000000001 is 3, but 1e-7 is not 0.
        if all(np.allclose(a * scale, np.round(a * scale), rtol=1e-12, atol=1e-9) for a in arrays):
            return scale, True
        scale *= 10
    return max_scale, False


@dataclass(frozen=True)
class ScaledInstance:
    """Integer data for an integer engine, and the scales that produced it.

    The engine's objective divided by ``objective_scale`` is the instance's
    objective whenever ``exact`` is true. Times and loads are rounded in the
    safe direction when their scaling is inexact (travel and service times,
    release times and demands up, window ends, duration limits and capacities
    down), so an engine-feasible solution is feasible for the evaluator too.
    """

    distance: np.ndarray  # (n, n) int64, distance * distance_scale
    duration: np.ndarray | None  # (n, n) int64 travel times; None without a time feature
    service: np.ndarray | None  # (n,) int64
    windows: np.ndarray | None  # (n, 2) int64, None without time windows
    release: np.ndarray | None  # (n,) int64, None without release times
    demand: np.ndarray | None  # (n, d) int64 deliveries, None when no vehicle has a capacity
    pickup: np.ndarray | None  # (n, d) int64, None when no vehicle has a capacity
    shipment_amount: np.ndarray | None  # (shipments, d) int64
    capacity: np.ndarray  # (types, d) int64; uncapacitated types get the total load
    fixed_cost: np.ndarray  # (types,) int64, fixed_cost * objective_scale
    unit_cost: np.ndarray  # (types,) int64, unit_distance_cost * cost_scale
    unit_duration_cost: np.ndarray  # (types,) int64, per time unit at time_scale
    max_distance: np.ndarray | None  # (types,) int64, -1 where unlimited
    max_duration: np.ndarray | None  # (types,) int64, -1 where unlimited
    prize: np.ndarray | None  # (n,) int64, prize * objective_scale
    distance_scale: int
    cost_scale: int
    time_scale: int
    load_scale: int
    exact: bool  # the engine objective / objective_scale is the exact objective

    @property
    def objective_scale(self) -> int:
        return self.distance_scale * self.cost_scale


def _up(values: np.ndarray, scale: int, exact: bool) -> np.ndarray:
    scaled = np.asarray(values, dtype=np.float64) * scale
    # The 1e-6 guard keeps float noise (3.0000000001) from rounding a whole unit up.
    return (np.round(scaled) if exact else np.ceil(scaled - 1e-6)).astype(np.int64)


def _down(values: np.ndarray, scale: int, exact: bool) -> np.ndarray:
    scaled = np.asarray(values, dtype=np.float64) * scale
    return (np.round(scaled) if exact else np.floor(scaled + 1e-6)).astype(np.int64)


def _limits(values: list[float | None], scale: int, exact: bool) -> np.ndarray | None:
    """Per-type limits scaled down (a tighter limit is safe); -1 marks "unlimited"."""
    if all(v is None for v in values):
        return None
    out = np.full(len(values), -1, dtype=np.int64)
    for k, v in enumerate(values):
        if v is not None:
            out[k] = _down(np.array([v]), scale, exact)[0]
    return out


def _times(instance: RoutingInstance) -> list[np.ndarray]:
    """Every time quantity: travel and service times first, then windows, releases, limits."""
    times = [instance.travel_time, instance.service_time]
    times += [instance.time_windows] if instance.time_windows is not None else []
    times += [instance.release_time] if instance.release_time is not None else []
    limits = [vt.max_duration for vt in instance.vehicle_types if vt.max_duration is not None]
    times += [np.array(limits)] if limits else []
    return times


@per_instance
def scale_instance(instance: RoutingInstance) -> ScaledInstance:
    """Scale ``instance`` to integers for PyVRP or OR-Tools (computed once per instance).

    Distances, vehicle costs, times and loads get powers of ten from
    :func:`integer_scale`. Fixed costs and prizes are scaled by
    ``distance_scale * cost_scale`` so that ``fixed + unit * distance`` keeps
    one scale in the engine. Times and loads are scaled at least as much as
    costs (any larger power of ten stays exact): penalty-based engines such as
    PyVRP price a unit of excess load or lateness against a unit of cost, and
    a 10,000-fold cost scale against unscaled loads makes overloading cheap.
    Fractional duration costs are the exception: costs are then scaled past
    times by the power of ten that makes the cost per time unit whole.

    Raises
    ------
    ValueError
        When a scaled value would exceed :data:`MAX_SCALED_VALUE`.
    """
    types = instance.vehicle_types
    unit = np.array([vt.unit_distance_cost for vt in types], dtype=np.float64)
    fixed = np.array([vt.fixed_cost for vt in types], dtype=np.float64)
    per_time = np.array([vt.unit_duration_cost for vt in types], dtype=np.float64)
    prize = instance.prize
    timed = instance.is_timed

    distance_scale, distance_exact = integer_scale(instance.distance)
    cost_arrays = [unit, fixed] + ([prize] if prize is not None else [])
    cost_scale, cost_exact = integer_scale(*cost_arrays)
    time_scale, time_exact = 1, True
    per_time_scale, per_time_exact = 1, True
    if timed:
        time_scale, time_exact = integer_scale(*_times(instance))
        per_time_scale, per_time_exact = integer_scale(per_time)
        if per_time.any():
            # The engine charges per_time * objective_scale / time_scale per scaled
            # time unit: whole only if costs are scaled past times by per_time_scale.
            cost_scale = max(cost_scale, time_scale * per_time_scale // distance_scale)
    objective_scale = distance_scale * cost_scale
    if timed:
        time_scale = max(time_scale, objective_scale // per_time_scale)

    # Bound every scaled quantity, and the sums an engine forms of them, in floats
    # before any cast: a cast of a value past int64 wraps around silently, and the
    # engine then reports a wrong status instead of an error. A route costs at most
    # fixed + unit * (the sum of the largest arc out of every location), plus its
    # duration cost over the horizon.
    worst_route = fixed.max() * objective_scale + unit.max() * cost_scale * (
        instance.distance.max(axis=1).sum() * distance_scale
    )
    if prize is not None:
        worst_route += prize.sum() * objective_scale

    duration = service = windows = release = None
    unit_duration = np.zeros(len(types), dtype=np.int64)
    max_duration = None
    if timed:
        travel = instance.travel_time
        horizon = (
            travel.max(axis=1).sum()
            + instance.service_time.sum()
            + max((float(t.max()) for t in _times(instance)[2:]), default=0.0)
        )
        _check_range(instance, "time", horizon * time_scale)
        worst_route += per_time.max() * horizon * objective_scale
        duration = _up(travel, time_scale, time_exact)
        service = _up(instance.service_time, time_scale, time_exact)
        if instance.time_windows is not None:
            windows = np.stack(
                [
                    _up(instance.time_windows[:, 0], time_scale, time_exact),
                    _down(instance.time_windows[:, 1], time_scale, time_exact),
                ],
                axis=1,
            )
        if instance.release_time is not None:
            release = _up(instance.release_time, time_scale, time_exact)
        max_duration = _limits([vt.max_duration for vt in types], time_scale, time_exact)
        # duration costs count per time unit at time_scale, the objective at objective_scale
        per_unit = per_time * objective_scale / time_scale
        unit_duration = np.round(per_unit).astype(np.int64)
        cost_exact = cost_exact and per_time_exact
        cost_exact = cost_exact and np.allclose(per_unit, unit_duration, rtol=0, atol=1e-9)
        cost_exact = cost_exact and (time_exact or not per_unit.any())
    _check_range(instance, "distance", worst_route)

    dims = instance.load_dimensions
    capacities = [vt.capacities for vt in types if vt.capacities is not None]
    demand = pickup = amounts = None
    load_scale = 1
    if capacities:
        deliveries, pickups = instance.deliveries, instance.pickups
        shipped = np.array([np.broadcast_to(s.amounts, dims) for s in instance.shipments])
        loads = [deliveries, pickups] + [np.broadcast_to(c, dims) for c in capacities]
        loads += [shipped] if shipped.size else []
        load_scale, load_exact = integer_scale(*loads)
        load_scale = max(load_scale, objective_scale)
        largest = max(float(np.max(c)) for c in capacities)
        total = deliveries.sum() + pickups.sum() + (shipped.sum() if shipped.size else 0.0)
        _check_range(instance, "load", (total + largest) * load_scale)
        demand = _up(deliveries, load_scale, load_exact)
        pickup = _up(pickups, load_scale, load_exact)
        if shipped.size:
            amounts = _up(shipped, load_scale, load_exact)
        everything = demand.sum(axis=0) + pickup.sum(axis=0)
        if amounts is not None:
            everything = everything + amounts.sum(axis=0)
        capacity = np.stack(
            [
                everything
                if vt.capacities is None
                else _down(np.broadcast_to(vt.capacities, dims), load_scale, load_exact)
                for vt in types
            ]
        ).astype(np.int64)
    else:
        capacity = np.zeros((len(types), dims), dtype=np.int64)

    distance = np.round(instance.distance * distance_scale).astype(np.int64)
    unit_cost = np.round(unit * cost_scale).astype(np.int64)
    fixed_cost = np.round(fixed * objective_scale).astype(np.int64)
    max_distance = _limits([vt.max_distance for vt in types], distance_scale, distance_exact)

    return ScaledInstance(
        distance=distance,
        duration=duration,
        service=service,
        windows=windows,
        release=release,
        demand=demand,
        pickup=pickup,
        shipment_amount=amounts,
        capacity=capacity,
        fixed_cost=fixed_cost,
        unit_cost=unit_cost,
        unit_duration_cost=unit_duration,
        max_distance=max_distance,
        max_duration=max_duration,
        prize=None if prize is None else np.round(prize * objective_scale).astype(np.int64),
        distance_scale=distance_scale,
        cost_scale=cost_scale,
        time_scale=time_scale,
        load_scale=load_scale,
        exact=distance_exact and cost_exact,
    )


def _check_range(instance: RoutingInstance, what: str, value: float) -> None:
    if not value <= MAX_SCALED_VALUE:
        raise ValueError(
            f"{instance.name}: {what} values are too large for 64-bit integer engines "
            f"after scaling (up to {value:.3g} > {MAX_SCALED_VALUE:.3g})"
        )


def scaling_refusal(name: str, instance: RoutingInstance) -> str | None:
    """Why ``instance`` cannot be scaled to integers for backend ``name``, or ``None``."""
    try:
        scale_instance(instance)
    except ValueError as exc:
        return f"{name}: {exc}"
    return None
