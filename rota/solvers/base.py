"""The solver interface every backend implements, and the result type.

A backend is an adapter: it encodes an instance of its family for its engine
(integer scaling and index maps live only there), runs it under a
:class:`~rota.solvers.stopping.Stop`, and decodes the answer into a
:class:`Result` whose objective is in the instance's own units, built by
:func:`finish` so that the family's evaluator checks it.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from rota.problems import problem_of
from rota.solvers.stopping import CRITERIA, Stop


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
    """What every solver returns, whatever its backend and problem family.

    ``objective`` is in the instance's units and equals the family evaluator's
    objective of ``solution``; ``bound`` is a proven bound (lower when
    minimising, upper when maximising) and is set only by solvers that prove
    one. ``evaluation`` is the evaluator's report of ``solution``, kept so
    that nobody evaluates the same solution twice; it is not saved in files.
    """

    objective: float | None
    solution: Any
    status: Status
    runtime: float
    solver: str
    seed: int
    bound: float | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)
    evaluation: Any = field(default=None, compare=False, repr=False)

    @property
    def gap_to_bound(self) -> float | None:
        """Relative gap ``|objective - bound| / |objective|`` when both are known."""
        if self.objective is None or self.bound is None or self.objective == 0:
            return None
        return abs(self.objective - self.bound) / abs(self.objective)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond modelling an instance, whatever the family.

    Families add what their instances need (routing:
    :class:`~rota.solvers.routing.RoutingCapabilities`); anything a backend
    cannot do it refuses, never drops.
    """

    #: Takes starting solutions (``warm_start``) and never returns a worse one.
    warm_start: bool = False
    #: Stopping criteria it honours (see :data:`rota.solvers.stopping.CRITERIA`).
    stopping: frozenset[str] = frozenset({"time"})
    #: Solves a list of instances in one call (:meth:`Solver.solve_batch`).
    batched: bool = False
    gpu: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.stopping) - set(CRITERIA)
        if unknown:
            raise ValueError(f"unknown stopping criteria {sorted(unknown)}")


#: Every criterion; most backends honour them all.
ALL_CRITERIA = frozenset(CRITERIA)


@runtime_checkable
class Solver(Protocol):
    """A backend. ``problem`` names the family it solves; ``name`` is unique within it.

    Batched backends (``capabilities.batched``) also implement
    ``solve_batch(instances, stop, seed, warm_starts) -> list[Result]``, where
    ``stop`` holds the whole batch's budget.
    """

    name: str
    problem: str
    description: str
    capabilities: Capabilities

    def available(self) -> bool:
        """True when the backend's packages import; never raises."""

    def supports(self, instance: Any) -> str | None:
        """``None`` if this solver can solve ``instance``, else the reason it cannot."""

    def solve(self, instance: Any, stop: Stop, seed: int, warm_start: Sequence[Any] = ()) -> Result:
        """Solve within ``stop``, starting from ``warm_start`` solutions when given."""


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


def preload(solver: Any) -> None:
    """Import what ``solver``'s runs import, so that a run process pays for it once, untimed.

    A backend whose ``available()`` only looks for its packages (importing
    them is slow, and listing solvers must stay quick) defines ``preload()``;
    for the others ``available()`` imports their engine's modules. A backend
    that cannot load may raise here; run processes ignore that, and its runs
    say why.
    """
    hook = getattr(solver, "preload", None)
    if hook is not None:
        hook()
    else:
        solver.available()


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


def finish(
    instance: Any,
    solution: Any,
    status: Status,
    *,
    solver: str,
    seed: int,
    stop: Stop,
    backend_objective: float | None = None,
    bound: float | None = None,
    stats: Mapping[str, Any] | None = None,
) -> Result:
    """Build a :class:`Result`, checking the decoded solution with the family's evaluator.

    The objective comes from the backend (converted to instance units) when
    it gave one, else from the evaluator; conformance tests check the two
    agree. A solution that breaks a constraint turns the status into ``ERROR``
    with the violations in ``stats`` rather than being reported as feasible.
    The stop's iteration count and the criterion that ended the run go into
    ``stats``.
    """
    stats = {**stop.stats(), **(stats or {})}
    runtime = stop.elapsed
    if solution is None or not status.has_solution:
        return Result(None, None, status, runtime, solver, seed, bound, stats)
    report = problem_of(instance).evaluate(instance, solution)
    stats["evaluated_objective"] = report.objective
    if report.violations:
        stats["violations"] = [str(v) for v in report.violations]
        stats["error"] = (
            f"{solver} returned a solution that breaks {len(report.violations)} constraint(s)"
        )
        return Result(
            report.objective, solution, Status.ERROR, runtime, solver, seed, bound, stats, report
        )
    objective = report.objective if backend_objective is None else float(backend_objective)
    return Result(objective, solution, status, runtime, solver, seed, bound, stats, report)


def best_feasible(instance: Any, solutions: Sequence[Any]) -> tuple[Any, Any] | None:
    """The best feasible solution among ``solutions`` and its evaluation, or ``None``."""
    problem = problem_of(instance)
    best = None
    for solution in solutions:
        report = problem.evaluate(instance, solution)
        if report.feasible and (
            best is None or problem.sense.better(report.objective, best[1].objective)
        ):
            best = (solution, report)
    return best


__all__ = [
    "ALL_CRITERIA", "Capabilities", "RequiresModules", "Result", "Solver", "Status",
    "best_feasible", "finish", "preload", "reconfigured",
]  # fmt: skip
