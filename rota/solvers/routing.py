"""What routing backends share: the routing features they declare and the check against them.

Each routing backend declares a :class:`RoutingCapabilities`; :func:`check_capabilities`
turns the first feature of an instance that a backend cannot model into the
reason it refuses, never a silent drop.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from rota.problems.routing import RoutingInstance
from rota.solvers.base import Capabilities

T = TypeVar("T")


@dataclass(frozen=True)
class RoutingCapabilities(Capabilities):
    """What a routing backend can model. Anything else it must refuse, never drop."""

    asymmetric: bool = True
    time_windows: bool = False
    heterogeneous: bool = False
    multi_depot: bool = False
    uncapacitated: bool = True
    #: One limit for every instance, or one per :func:`size_family` (a family
    #: missing from the mapping is unlimited).
    max_clients: int | Mapping[str, int] | None = None
    #: The :data:`~rota.problems.routing.FEATURES` the backend models exactly.
    features: frozenset[str] = frozenset()


def check_capabilities(
    name: str, caps: RoutingCapabilities, instance: RoutingInstance
) -> str | None:
    """The reason ``caps`` cannot model ``instance``, or ``None``. Shared by backends."""
    if not caps.asymmetric and not instance.is_symmetric:
        return f"{name} needs a symmetric distance matrix; {instance.name} is asymmetric"
    if not caps.time_windows and instance.has_time_windows:
        return f"{name} does not support time windows ({instance.name} has them)"
    if not caps.heterogeneous and instance.is_heterogeneous:
        return f"{name} does not support heterogeneous fleets or vehicle costs"
    if not caps.multi_depot and len(instance.depots) > 1:
        return f"{name} does not support several depots ({len(instance.depots)} given)"
    if not caps.uncapacitated and not instance.is_capacitated:
        return f"{name} needs capacitated vehicles"
    missing = [f for f in instance.features if f not in caps.features]
    if missing:
        return (
            f"{name} does not model {', '.join(f.replace('_', ' ') for f in missing)} "
            f"({instance.name} uses {'them' if len(missing) > 1 else 'it'})"
        )
    limit, family = caps.max_clients, None
    if isinstance(limit, Mapping):
        family = size_family(instance)
        limit = limit.get(family)
    if limit is not None and instance.num_clients > limit:
        which = f"{family} instances of " if family else ""
        return (
            f"{name} handles {which}at most {limit} clients, {instance.name} has "
            f"{instance.num_clients}; use a heuristic solver such as pyvrp"
        )
    return None


def size_family(instance: RoutingInstance) -> str:
    """Which size limit of a model applies: ``tsp``, ``hf`` (several vehicle types),
    ``vrptw`` or ``cvrp``."""
    if instance.is_tsp:
        return "tsp"
    if len(instance.vehicle_types) > 1:
        return "hf"
    return "vrptw" if instance.has_time_windows else "cvrp"


def per_instance(function: Callable[[RoutingInstance], T]) -> Callable[[RoutingInstance], T]:
    """Cache ``function``'s value for each live instance.

    Instances are immutable, so what an adapter derives from one (its integer
    encoding) is computed once: ``supports()`` and ``solve()`` share it. The
    cache holds no instance alive.
    """
    cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def cached(instance: RoutingInstance) -> T:
        if instance not in cache:
            cache[instance] = function(instance)
        return cache[instance]

    cached.__doc__ = function.__doc__
    cached.__name__ = function.__name__
    return cached


__all__ = ["RoutingCapabilities", "check_capabilities", "per_instance", "size_family"]
