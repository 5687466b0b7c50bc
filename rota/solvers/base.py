"""The solver interface every backend implements, the result type and the registry.

A backend is an adapter: it encodes a :class:`~rota.problems.routing.RoutingInstance`
for its engine (integer scaling and index maps live only there), runs it under
a :class:`Stop`, and decodes the answer into a :class:`Result` whose objective
is in the instance's own units.
"""

from __future__ import annotations

import enum
import importlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rota.problems.routing import RoutingInstance, RoutingSolution, evaluate


class Status(enum.StrEnum):
    """Outcome of a solve. Only a proof makes a result ``OPTIMAL``."""

    OPTIMAL = "optimal"  # proven optimal by the backend
    FEASIBLE = "feasible"  # a feasible solution, optimality not proven
    INFEASIBLE = "infeasible"  # proven that no feasible solution exists
    NO_SOLUTION = "no_solution"  # stopped without finding a feasible solution
    ERROR = "error"  # the backend failed or returned a solution that breaks constraints

    @property
    def has_solution(self) -> bool:
        return self in (Status.OPTIMAL, Status.FEASIBLE)


@dataclass(frozen=True)
class Result:
    """What every solver returns, whatever its backend.

    ``objective`` is in the instance's units and equals
    ``evaluate(instance, solution).objective``; ``bound`` is a proven lower
    bound and is set only by solvers that prove one.
    """

    objective: float | None
    solution: RoutingSolution | None
    status: Status
    runtime: float
    solver: str
    seed: int
    bound: float | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)

    @property
    def gap_to_bound(self) -> float | None:
        """Relative gap ``(objective - bound) / objective`` when both are known."""
        if self.objective is None or self.bound is None or self.objective == 0:
            return None
        return (self.objective - self.bound) / abs(self.objective)


@dataclass(frozen=True)
class Stop:
    """When to stop: a wall-clock budget, measured from :meth:`start`."""

    time_limit: float
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.time_limit) and self.time_limit > 0):
            raise ValueError(
                f"time_limit must be a positive number of seconds, got {self.time_limit}"
            )

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def remaining(self) -> float:
        return max(0.0, self.time_limit - self.elapsed)

    def __call__(self) -> bool:
        return self.elapsed >= self.time_limit


@dataclass(frozen=True)
class Capabilities:
    """What a backend can model. Anything else it must refuse, never drop."""

    asymmetric: bool = True
    time_windows: bool = False
    heterogeneous: bool = False
    multi_depot: bool = False
    uncapacitated: bool = True
    gpu: bool = False
    #: One limit for every instance, or one per :func:`size_family` (a family
    #: missing from the mapping is unlimited).
    max_clients: int | Mapping[str, int] | None = None


@runtime_checkable
class Solver(Protocol):
    name: str
    description: str
    capabilities: Capabilities

    def available(self) -> bool:
        """True when the backend's packages import; never raises."""

    def supports(self, instance: RoutingInstance) -> str | None:
        """``None`` if this solver can solve ``instance``, else the reason it cannot."""

    def solve(self, instance: RoutingInstance, stop: Stop, seed: int) -> Result:
        """Solve within ``stop``; objective in the instance's units."""


class RequiresModules:
    """Mixin giving a backend an ``available()`` that imports its engine's modules.

    Importing is the only reliable test: a package can be installed yet fail
    to load (a clashing shared library), so the reason is kept in
    ``import_error`` for ``rota solvers`` to show.
    """

    requires: tuple[str, ...] = ()
    import_error: str | None = None

    def available(self) -> bool:
        try:
            for module in self.requires:
                importlib.import_module(module)
        except Exception as exc:  # any import failure means "not usable here"
            self.import_error = f"{type(exc).__name__}: {exc}"
            return False
        self.import_error = None
        return True


def reconfigured(solver: Any, option_names: tuple[str, ...], options: Mapping[str, Any]) -> Any:
    """A new solver of ``solver``'s class with ``options`` replacing its current ones.

    Backends with options implement ``configure(**options)`` with this; the
    constructor validates the values, and an unknown name fails here.
    """
    unknown = sorted(set(options) - set(option_names))
    if unknown:
        raise ValueError(
            f"{solver.name}: unknown option {unknown[0]!r}; "
            f"valid options: {', '.join(option_names)}"
        )
    current = {name: getattr(solver, name) for name in option_names}
    return type(solver)(**{**current, **options})


class UnsupportedInstanceError(ValueError):
    """Raised when a solver is asked to solve an instance it cannot model."""


class UnknownSolverError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; a CLI line should not
        return str(self.args[0])


def check_capabilities(name: str, caps: Capabilities, instance: RoutingInstance) -> str | None:
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


def integer_scale(*arrays: np.ndarray, max_scale: int = 10_000) -> tuple[int, bool]:
    """Smallest power of ten making every array integral, and whether it is exact.

    Integer engines (PyVRP, OR-Tools) need integer data. When no power of ten
    up to ``max_scale`` is exact, ``max_scale`` is used and the engine sees
    rounded data; adapters then report the evaluator's objective instead.
    """
    scale = 1
    while scale <= max_scale:
        if all(np.allclose(a * scale, np.round(a * scale), rtol=0, atol=1e-6) for a in arrays):
            return scale, True
        scale *= 10
    return max_scale, False


def finish(
    instance: RoutingInstance,
    solution: RoutingSolution | None,
    status: Status,
    *,
    solver: str,
    seed: int,
    stop: Stop,
    backend_objective: float | None = None,
    bound: float | None = None,
    stats: Mapping[str, Any] | None = None,
) -> Result:
    """Build a :class:`Result`, checking the decoded solution with the evaluator.

    The objective comes from the backend (converted to instance units) when
    it gave one, else from the evaluator; conformance tests check the two
    agree. A solution that breaks a constraint turns the status into ``ERROR``
    with the violations in ``stats`` rather than being reported as feasible.
    """
    stats = dict(stats or {})
    runtime = stop.elapsed
    if solution is None or not status.has_solution:
        return Result(None, None, status, runtime, solver, seed, bound, stats)
    report = evaluate(instance, solution)
    stats["evaluated_objective"] = report.objective
    if report.violations:
        stats["violations"] = [str(v) for v in report.violations]
        stats["error"] = (
            f"{solver} returned a solution that breaks {len(report.violations)} constraint(s)"
        )
        return Result(report.objective, solution, Status.ERROR, runtime, solver, seed, bound, stats)
    objective = report.objective if backend_objective is None else float(backend_objective)
    return Result(objective, solution, status, runtime, solver, seed, bound, stats)


# -- registry -----------------------------------------------------------------

#: name -> "module:attribute" of a zero-argument factory; imported lazily so that
#: listing solvers never imports torch or an absent backend.
_REGISTRY: dict[str, str] = {
    "pyvrp": "rota.solvers.pyvrp:PyVRPSolver",
    "ortools": "rota.solvers.ortools:ORToolsSolver",
    "greedy": "rota.solvers.greedy:GreedySolver",
    "milp": "rota.solvers.milp:MILPSolver",
    "cpsat": "rota.solvers.cpsat:CPSATSolver",
}
DEFAULT_SOLVER = "pyvrp"


def register(name: str, target: str | Callable[[], Solver]) -> None:
    """Register a solver under ``name``: a ``"module:attr"`` path or a factory."""
    _REGISTRY[name] = target  # type: ignore[assignment]


def solver_names() -> list[str]:
    return list(_REGISTRY)


def registry_target(name: str) -> str | Callable[[], Solver]:
    """What ``name`` is registered as: a ``"module:attr"`` path or a factory.

    Worker processes re-register the solvers they run from these targets.
    """
    if name not in _REGISTRY:
        raise UnknownSolverError(
            f"unknown solver {name!r}; valid solvers: {', '.join(solver_names())}"
        )
    return _REGISTRY[name]


def get_solver(name: str) -> Solver:
    """The solver registered as ``name``; unknown names list the valid ones."""
    target = registry_target(name)
    if callable(target):
        return target()
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)()


@dataclass(frozen=True)
class SolverInfo:
    name: str
    description: str
    available: bool
    supports: bool | None
    reason: str | None = None


def list_solvers(instance: RoutingInstance | None = None) -> list[SolverInfo]:
    """Every registered solver: installed or not, and whether it supports ``instance``."""
    infos = []
    for name in solver_names():
        try:
            solver = get_solver(name)
        except ImportError as exc:  # a backend module whose own imports fail
            infos.append(SolverInfo(name, "", False, False if instance else None, str(exc)))
            continue
        available = solver.available()
        reason = None
        supports = None
        if instance is not None:
            reason = solver.supports(instance) if available else _unavailable(solver)
            supports = reason is None
        infos.append(SolverInfo(name, solver.description, available, supports, reason))
    return infos


def _unavailable(solver: Solver) -> str:
    detail = getattr(solver, "import_error", None)
    return f"solver {solver.name!r} could not be imported" + (f" ({detail})" if detail else "")


def solve(
    instance: RoutingInstance,
    solver: str = DEFAULT_SOLVER,
    time_limit: float = 10.0,
    seed: int = 0,
    **options: Any,
) -> Result:
    """Solve ``instance`` with the named solver within ``time_limit`` seconds.

    Raises
    ------
    UnknownSolverError
        ``solver`` is not registered.
    UnsupportedInstanceError
        The solver is not installed or cannot model this instance.
    """
    backend = get_solver(solver)
    if options:
        configure = getattr(backend, "configure", None)
        if configure is None:
            raise ValueError(f"solver {solver!r} takes no options, got {sorted(options)}")
        backend = configure(**options)
    if not backend.available():
        raise UnsupportedInstanceError(_unavailable(backend))
    reason = backend.supports(instance)
    if reason is not None:
        raise UnsupportedInstanceError(reason)
    return backend.solve(instance, Stop(float(time_limit)), int(seed))
