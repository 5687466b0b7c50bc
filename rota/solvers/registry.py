"""The registry of solvers, keyed by (problem family, solver name).

Each family declares its solvers in :attr:`rota.problems.base.Problem.solvers`
as ``"module:attribute"`` paths of zero-argument factories, imported only when
the solver is used, so that listing solvers never imports torch or an absent
backend. :func:`register` adds more at run time (tests, plug-ins); ``rota
bench`` re-registers them in its worker processes from :func:`registry_target`.

A name may exist in several families (``milp`` for routing and for another
family): the instance's family decides which one :func:`rota.solve` uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rota.errors import UnknownSolverError
from rota.problems import FAMILIES, problem_named, problem_of
from rota.solvers.base import Solver
from rota.solvers.stopping import CRITERIA

#: Solvers registered at run time: (family, name) -> target.
_EXTRA: dict[tuple[str, str], str | Callable[[], Solver]] = {}


def _entries() -> dict[tuple[str, str], str | Callable[[], Solver]]:
    entries: dict[tuple[str, str], Any] = {}
    for family in FAMILIES:
        for name, target in problem_named(family).solvers.items():
            entries[(family, name)] = target
    entries.update(_EXTRA)
    return entries


def register(name: str, target: str | Callable[[], Solver], problem: str = "routing") -> None:
    """Register a solver of family ``problem`` as ``name`` (``"module:attr"`` or a factory)."""
    problem_named(problem)  # an unknown family fails here
    _EXTRA[(problem, name)] = target


def solver_names(problem: str | None = None) -> list[str]:
    """Registered solver names, of one family or of all (each name once)."""
    names = [n for (family, n) in _entries() if problem is None or family == problem]
    return list(dict.fromkeys(names))


def _family_of(name: str, problem: str | None) -> str:
    entries = _entries()
    if problem is not None:
        if (problem, name) not in entries:
            raise UnknownSolverError(
                f"unknown solver {name!r} for {problem}; valid solvers: "
                f"{', '.join(solver_names(problem))}"
            )
        return problem
    families = [family for (family, n) in entries if n == name]
    if not families:
        raise UnknownSolverError(
            f"unknown solver {name!r}; valid solvers: {', '.join(solver_names())}"
        )
    # Without an instance to decide, the first registered family's solver is meant.
    return families[0]


def families_of(name: str) -> list[str]:
    """The families that register a solver called ``name``."""
    return [family for (family, n) in _entries() if n == name]


def registry_target(name: str, problem: str | None = None) -> str | Callable[[], Solver]:
    """What ``name`` is registered as: a ``"module:attr"`` path or a factory."""
    family = _family_of(name, problem)
    return _entries()[(family, name)]


def get_solver(name: str, problem: str | None = None) -> Solver:
    """The solver registered as ``name`` (for family ``problem`` when given).

    Raises
    ------
    UnknownSolverError
        No family (or not ``problem``) registers ``name``; the message lists the valid names.
    """
    target = registry_target(name, problem)
    if callable(target):
        return target()
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)()


@dataclass(frozen=True)
class SolverInfo:
    """One line of ``rota solvers``."""

    name: str
    problem: str
    description: str
    available: bool
    supports: bool | None
    reason: str | None = None
    warm_start: bool = False
    stopping: tuple[str, ...] = ()
    batched: bool = False


def unavailable_reason(solver: Solver) -> str:
    detail = getattr(solver, "import_error", None)
    return f"solver {solver.name!r} could not be imported" + (f" ({detail})" if detail else "")


def list_solvers(instance: Any | None = None) -> list[SolverInfo]:
    """Every registered solver (of the instance's family when one is given).

    Says whether each is installed and, given an instance, whether it supports it.
    """
    family = None if instance is None else problem_of(instance).name
    infos = []
    for problem, name in _entries():
        if family is not None and problem != family:
            continue
        try:
            solver = get_solver(name, problem)
        except ImportError as exc:  # a backend module whose own imports fail
            infos.append(
                SolverInfo(name, problem, "", False, False if instance else None, str(exc))
            )
            continue
        available = solver.available()
        reason = None
        supports = None
        if instance is not None:
            reason = solver.supports(instance) if available else unavailable_reason(solver)
            supports = reason is None
        caps = solver.capabilities
        infos.append(
            SolverInfo(
                name,
                problem,
                solver.description,
                available,
                supports,
                reason,
                warm_start=caps.warm_start,
                stopping=tuple(c for c in CRITERIA if c in caps.stopping),
                batched=caps.batched,
            )  # fmt: skip
        )
    return infos


__all__ = [
    "SolverInfo", "families_of", "get_solver", "list_solvers", "register", "registry_target",
    "solver_names", "unavailable_reason",
]  # fmt: skip
