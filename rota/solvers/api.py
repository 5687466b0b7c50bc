"""``rota.solve``: one entry point for every family, backend, warm start and batch.

The steps, in order, all before any solver time is spent:

1. the stopping criteria (a time limit, or :class:`~rota.solvers.stopping.Stopping`);
2. the instances' family (a list must be of one family) and its solver by name;
3. what the solver must be able to do: be installed, model each instance,
   take warm starts when some are given, honour each stopping criterion;
4. the warm starts: each must be a solution of its instance (it may break
   constraints; only feasible ones count below).

Then a batched solver gets the whole list in one call, with the per-instance
time limit times the number of instances; any other solver gets one call per
instance with a fresh stop each. A SIGINT or SIGTERM meanwhile ends the
current search at its next check (:mod:`rota.signals`) and raises
:class:`~rota.signals.Interrupted` with the results so far. Every result leaves with the family
evaluator's report, and is never worse than the best feasible warm start of
its instance: a backend that returns something worse (or nothing) is
replaced by that warm start, with ``stats["solution_from"] = "warm start"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from rota import signals
from rota.errors import UnsupportedError, UnsupportedInstanceError
from rota.problems import problem_of
from rota.problems.base import Problem
from rota.solvers.base import Result, Solver, Status, best_feasible
from rota.solvers.registry import get_solver, unavailable_reason
from rota.solvers.stopping import Stopping

#: Seconds per instance when neither ``time_limit`` nor ``stop`` is given.
DEFAULT_TIME_LIMIT = 10.0


def stopping_of(time_limit: float | None, stop: Stopping | str | Mapping | None) -> Stopping:
    """The criteria of a solve from its ``time_limit`` and ``stop`` arguments.

    ``time_limit`` alone is a time limit; ``stop`` alone is the whole set of
    criteria (no time limit unless it has one); both: ``time_limit`` adds the
    time criterion ``stop`` lacks. Neither: :data:`DEFAULT_TIME_LIMIT`.
    """
    if time_limit is not None:
        if isinstance(time_limit, bool) or not isinstance(time_limit, int | float):
            raise ValueError(f"time_limit must be a number of seconds, got {time_limit!r}")
        if not (time_limit > 0 and math.isfinite(time_limit)):
            raise ValueError(
                f"time_limit must be a positive, finite number of seconds, got {time_limit}"
            )
    if stop is None:
        return Stopping(time=DEFAULT_TIME_LIMIT if time_limit is None else float(time_limit))
    stopping = Stopping.of(stop)
    if time_limit is None:
        return stopping
    if stopping.time is not None and stopping.time != float(time_limit):
        raise ValueError(
            f"two time limits: time_limit={time_limit:g} and stop time={stopping.time:g}; give one"
        )
    return replace(stopping, time=float(time_limit))


def _as_solutions(problem: Problem, value: Any, where: str) -> tuple[Any, ...]:
    """One instance's warm starts: ``None``, a solution, a :class:`Result`, or a list of them."""
    if value is None:
        return ()
    items = list(value) if isinstance(value, list | tuple) else [value]
    solutions = []
    for k, item in enumerate(items):
        if isinstance(item, Result):
            if item.solution is None:
                raise ValueError(
                    f"{where} {k}: a {item.status.value} result of {item.solver} has no solution"
                )
            item = item.solution
        if not isinstance(item, problem.solution_type):
            raise ValueError(
                f"{where} {k} is a {type(item).__name__}, expected a "
                f"{problem.solution_type.__name__} or a Result"
            )
        solutions.append(item)
    return tuple(solutions)


def _warm_starts(problem: Problem, count: int, batch: bool, warm_start: Any) -> list[tuple]:
    if not batch:
        return [_as_solutions(problem, warm_start, "warm start")]
    if warm_start is None:
        return [()] * count
    if not isinstance(warm_start, list | tuple) or len(warm_start) != count:
        raise ValueError(
            f"warm_start for {count} instances must be a list with one entry per instance "
            "(a solution, a list of solutions or None)"
        )
    return [
        _as_solutions(problem, entry, f"warm start of instance {i}")
        for i, entry in enumerate(warm_start)
    ]


def _backend(problem: Problem, solver: str | None, options: Mapping[str, Any]) -> Solver:
    name = solver or problem.default_solver
    if name is None:
        raise ValueError(f"name a solver: {problem.name} has no default")
    backend = get_solver(name, problem.name)
    if options:
        configure = getattr(backend, "configure", None)
        if configure is None:
            raise ValueError(f"solver {name!r} takes no options, got {sorted(options)}")
        backend = configure(**options)
    if not backend.available():
        raise UnsupportedInstanceError(unavailable_reason(backend))
    return backend


def _check_request(backend: Solver, stopping: Stopping, warm: list[tuple]) -> None:
    caps = backend.capabilities
    if any(warm) and not caps.warm_start:
        raise UnsupportedError(
            f"{backend.name} cannot start from given solutions; solvers that can are listed "
            "by `rota solvers` (warm start: yes)"
        )
    for criterion in stopping.criteria:
        if criterion not in caps.stopping:
            raise UnsupportedError(
                f"{backend.name} cannot stop on {criterion.replace('_', '-')}; it honours "
                f"{', '.join(sorted(c.replace('_', '-') for c in caps.stopping))}"
            )


def _never_worse(problem: Problem, instance: Any, result: Result, warm: tuple) -> Result:
    """``result`` with its evaluation, or the best feasible warm start if that is better."""
    if result.solution is not None and result.evaluation is None:
        # a backend that built its Result without finish(): evaluate here, once
        report = problem.evaluate(instance, result.solution)
        stats = dict(result.stats)
        status = result.status
        if report.violations and status.has_solution:
            status = Status.ERROR
            stats["violations"] = [str(v) for v in report.violations]
            stats["error"] = f"{result.solver} returned a solution that breaks constraints"
        result = replace(result, status=status, stats=stats, evaluation=report)
    best = best_feasible(instance, warm)
    if best is None:
        return result
    solution, report = best
    objective = report.objective
    if result.status.has_solution and not problem.sense.better(objective, result.objective):
        return result
    stats = dict(result.stats)
    stats.update(
        solution_from="warm start",
        backend_status=result.status.value,
        backend_objective=result.objective,
    )
    bound = result.bound
    if bound is not None and problem.sense.better(objective, bound):
        # a proven bound cannot be worse than a feasible objective: the backend erred
        stats["invalid_bound"] = bound
        bound = None
    return Result(
        objective, solution, Status.FEASIBLE, result.runtime, result.solver, result.seed, bound,
        stats, report,
    )  # fmt: skip


@dataclass(frozen=True)
class SolvePlan:
    """A checked request to solve: the family, the configured solver, the stop, the starts."""

    problem: Problem
    backend: Solver
    stopping: Stopping
    warm: list[tuple]  # each instance's warm starts


def plan_solve(
    instances: list[Any],
    batch: bool,
    solver: str | None,
    time_limit: float | None,
    seed: int,
    warm_start: Any,
    stop: Stopping | str | Mapping[str, Any] | None,
    options: Mapping[str, Any],
) -> SolvePlan:
    """Every check :func:`solve` makes before any solver time is spent (its steps 1 to 4).

    ``batch`` says whether the caller gave a list (``warm_start`` then holds
    one entry per instance).
    """
    if not instances:
        raise ValueError("no instances to solve")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    stopping = stopping_of(time_limit, stop)
    problem = problem_of(instances[0])
    for i, inst in enumerate(instances):
        if not isinstance(inst, problem.instance_type):
            raise ValueError(
                f"instance {i} is a {type(inst).__name__}; a list to solve must hold "
                f"{problem.instance_type.__name__}s only"
            )
    warm = _warm_starts(problem, len(instances), batch, warm_start)
    backend = _backend(problem, solver, options)
    _check_request(backend, stopping, warm)
    for inst in instances:
        reason = backend.supports(inst)
        if reason is not None:
            raise UnsupportedInstanceError(reason)
    for i, (inst, starts) in enumerate(zip(instances, warm, strict=True)):
        for k, start in enumerate(starts):
            errors = problem.structural_errors(inst, start)
            if errors:
                which = f"warm start {k}" + (f" of instance {i}" if batch else "")
                raise ValueError(f"{which} is not a solution of {inst.name}: {errors[0]}")
    return SolvePlan(problem, backend, stopping, warm)


def solve(
    instance: Any,
    solver: str | None = None,
    time_limit: float | None = None,
    seed: int = 0,
    *,
    warm_start: Any = None,
    stop: Stopping | str | Mapping[str, Any] | None = None,
    **options: Any,
) -> Result | list[Result]:
    """Solve an instance, or a list of instances of one family, with the named solver.

    Parameters
    ----------
    instance
        An instance of any family, or a list of them (then a list of results
        comes back, in order).
    solver
        A solver of the instance's family; default: the family's default
        (``pyvrp`` for routing).
    time_limit
        Seconds per instance; a batched solver given ``k`` instances gets
        ``k * time_limit`` for the batch. Default :data:`DEFAULT_TIME_LIMIT`
        unless ``stop`` is given.
    seed
        Seed of the solver's randomness.
    warm_start
        Starting solutions: a solution, a :class:`Result` or a list of them;
        for a list of instances, a list with one such entry per instance. The
        result is never worse than the best feasible one.
    stop
        Stopping criteria, the first met ending the run: a
        :class:`~rota.solvers.stopping.Stopping`, a string such as
        ``"time=5,iterations=10000,no-improvement=2000"`` or a mapping.
    options
        Solver options (``backend="highs"`` for ``milp``, ...).

    Raises
    ------
    UnknownSolverError
        ``solver`` is not registered for the instance's family.
    UnsupportedInstanceError
        The solver is not installed or cannot model an instance.
    UnsupportedError
        The solver cannot take warm starts or honour a stopping criterion.
    ValueError
        Bad arguments, named.
    rota.signals.Interrupted
        A SIGINT or SIGTERM arrived (a ``KeyboardInterrupt``): the solve ended
        early and ``results`` holds what it has (the interrupted instance's
        best solution; for a list, the instances solved so far).
    """
    batch = isinstance(instance, list | tuple)
    instances = list(instance) if batch else [instance]
    plan = plan_solve(instances, batch, solver, time_limit, seed, warm_start, stop, options)
    problem, backend, stopping, warm = plan.problem, plan.backend, plan.stopping, plan.warm

    with signals.graceful():
        if backend.capabilities.batched and batch:
            stop_ = stopping.start(problem.sense, scale=len(instances))
            results = backend.solve_batch(instances, stop_, seed, warm)
            if len(results) != len(instances):
                raise RuntimeError(
                    f"{backend.name} returned {len(results)} results for {len(instances)} instances"
                )
            results = [
                _never_worse(problem, inst, result, starts)
                for inst, result, starts in zip(instances, results, warm, strict=True)
            ]
        else:
            results = []
            for inst, starts in zip(instances, warm, strict=True):
                result = backend.solve(inst, stopping.start(problem.sense), seed, starts)
                results.append(_never_worse(problem, inst, result, starts))
                if signals.interrupted():
                    break
        if signals.interrupted():
            raise signals.Interrupted(signals.received(), results if batch else results[0])
    return results if batch else results[0]


__all__ = ["DEFAULT_TIME_LIMIT", "SolvePlan", "plan_solve", "solve", "stopping_of"]
