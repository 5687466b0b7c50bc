"""Stopping criteria: small callables, combined as "the first of".

A backend receives one :class:`Stop` per solve and calls it once per
iteration of its own search with the best objective found so far (in the
instance's units, ``None`` while it has no feasible solution); the call
returns True once any criterion is met. What an iteration is belongs to the
backend and is documented there (an iterated-local-search step for PyVRP, an
accepted solution for OR-Tools and CP-SAT, a MIP solve of the cut loop for
the MILP). A backend whose engine takes a native time limit also passes
:attr:`Stop.remaining` to it, so the time criterion holds even between calls.

The criteria, as PyVRP's ``pyvrp.stop`` has them:

- :class:`MaxRuntime`: wall-clock seconds since the solve started;
- :class:`MaxIterations`: iterations;
- :class:`NoImprovement`: consecutive iterations without a better best objective;
- :class:`TargetObjective`: a best objective at least as good as a target.

Users describe them with :class:`Stopping` (``Stopping(time=5, iterations=10_000)``
or ``Stopping.parse("time=5,no-improvement=2000")``); :func:`rota.solve`
starts a fresh :class:`Stop` from it for every instance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from rota import signals
from rota.problems.base import Sense

#: Longest time limit, in seconds (about 115 days): every engine represents it
#: exactly (OR-Tools takes int64 milliseconds, CP-SAT and CBC doubles, a thread
#: wait at most about 292 years), and no real solve needs more. Longer limits
#: are refused; a solve without a time limit hands engines this one.
MAX_ENGINE_SECONDS = 1e7

#: Criterion names, as in ``--stop`` and :attr:`Stop.stopped_by`.
CRITERIA = ("time", "iterations", "no_improvement", "target")


class MaxRuntime:
    """Stop once ``seconds`` of wall-clock time have passed since :meth:`start`."""

    name = "time"

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.start()

    def start(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __call__(self, best: float | None) -> bool:
        return self.elapsed >= self.seconds


class MaxIterations:
    """Stop after ``count`` iterations."""

    name = "iterations"

    def __init__(self, count: int) -> None:
        self.count = count
        self.done = 0

    def __call__(self, best: float | None) -> bool:
        self.done += 1
        return self.done >= self.count


class NoImprovement:
    """Stop after ``count`` consecutive iterations that did not improve the best objective."""

    name = "no_improvement"

    def __init__(self, count: int, sense: Sense = Sense.MIN) -> None:
        self.count, self.sense = count, sense
        self.best: float | None = None
        self.since = 0

    def __call__(self, best: float | None) -> bool:
        if best is not None and (self.best is None or self.sense.better(best, self.best)):
            self.best, self.since = best, 0
            return False
        self.since += 1
        return self.since >= self.count


class TargetObjective:
    """Stop once the best objective is at least as good as ``value``."""

    name = "target"

    def __init__(self, value: float, sense: Sense = Sense.MIN) -> None:
        self.value, self.sense = float(value), sense

    def __call__(self, best: float | None) -> bool:
        return best is not None and not self.sense.better(self.value, best)


@dataclass(frozen=True)
class Stopping:
    """What to stop on: the first of the criteria that are set.

    Parameters
    ----------
    time
        Wall-clock seconds.
    iterations
        Iterations of the backend's search.
    no_improvement
        Consecutive iterations without a better best objective.
    target
        An objective at least this good (at most it when minimising, at least
        it when maximising).
    """

    time: float | None = None
    iterations: int | None = None
    no_improvement: int | None = None
    target: float | None = None

    def __post_init__(self) -> None:
        if self.time is not None:
            if isinstance(self.time, bool) or not isinstance(self.time, int | float):
                raise ValueError(f"stop time must be a number of seconds, got {self.time!r}")
            if not (self.time > 0 and math.isfinite(self.time)):
                raise ValueError(
                    f"stop time must be a positive, finite number of seconds, got {self.time:.6g}"
                )
            if self.time > MAX_ENGINE_SECONDS:
                raise ValueError(
                    f"time limit {self.time:.3g} s is beyond rota's longest, "
                    f"{MAX_ENGINE_SECONDS:.0e} s (about 115 days); give no time limit and stop "
                    "on another criterion or with Ctrl+C instead"
                )
            object.__setattr__(self, "time", float(self.time))
        for name in ("iterations", "no_improvement"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"stop {name} must be a positive integer, got {value!r}")
        if self.target is not None:
            if isinstance(self.target, bool) or not isinstance(self.target, int | float):
                raise ValueError(f"stop target must be a number, got {self.target!r}")
            if not math.isfinite(self.target):
                raise ValueError(f"stop target must be finite, got {self.target}")
        if self.criteria == ():
            raise ValueError(
                "stop names no criterion; set time, iterations, no_improvement or target"
            )

    @property
    def criteria(self) -> tuple[str, ...]:
        """The names of the criteria that are set."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name) is not None)

    @classmethod
    def parse(cls, text: str) -> Stopping:
        """``"time=5,iterations=10000,no-improvement=2000,target=1e5"`` (any subset).

        Raises
        ------
        ValueError
            A malformed pair, an unknown criterion or a bad value, named.
        """
        values: dict[str, Any] = {}
        for pair in str(text).split(","):
            if not pair.strip():
                continue
            key, sep, raw = (part.strip() for part in pair.partition("="))
            name = key.replace("-", "_")
            if not sep or not raw:
                raise ValueError(f"stop criterion {pair.strip()!r} is not NAME=VALUE")
            if name not in CRITERIA:
                raise ValueError(
                    f"unknown stop criterion {key!r}; valid: time, iterations, no-improvement, "
                    "target"
                )
            if name in values:
                raise ValueError(f"stop criterion {key!r} is given twice")
            try:
                number = float(raw)
                values[name] = int(number) if name in ("iterations", "no_improvement") else number
                if name in ("iterations", "no_improvement") and number != int(number):
                    raise ValueError
            except (ValueError, OverflowError):
                kind = "an integer" if name in ("iterations", "no_improvement") else "a number"
                raise ValueError(f"stop {key}={raw!r} is not {kind}") from None
        return cls(**values)

    @classmethod
    def of(cls, value: Stopping | str | Mapping[str, Any]) -> Stopping:
        """A :class:`Stopping` from itself, a ``parse`` string or a mapping of criteria."""
        if isinstance(value, Stopping):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            names = {str(k).replace("-", "_"): v for k, v in value.items()}
            unknown = sorted(set(names) - set(CRITERIA))
            if unknown:
                raise ValueError(
                    f"unknown stop criterion {unknown[0]!r}; valid: {', '.join(CRITERIA)}"
                )
            return cls(**names)
        raise ValueError(f"stop must be a Stopping, a string or a mapping, got {value!r}")

    def start(self, sense: Sense = Sense.MIN, scale: int = 1) -> Stop:
        """A fresh :class:`Stop` whose clock starts now.

        ``scale`` multiplies the time limit: a batched solver given ``k``
        instances gets ``k`` times the per-instance budget.
        """
        criteria: list[Any] = []
        if self.time is not None:
            criteria.append(MaxRuntime(self.time * scale))
        if self.iterations is not None:
            criteria.append(MaxIterations(self.iterations))
        if self.no_improvement is not None:
            criteria.append(NoImprovement(self.no_improvement, sense))
        if self.target is not None:
            criteria.append(TargetObjective(self.target, sense))
        return Stop(criteria)


class Stop:
    """The first of several criteria, as a backend sees it during one solve."""

    def __init__(self, criteria: list[Any]) -> None:
        self.criteria = list(criteria)
        self.started = time.perf_counter()
        self.iterations = 0
        self.stopped_by: str | None = None

    @property
    def time_limit(self) -> float:
        """The time criterion in seconds; ``inf`` without one."""
        limits = [c.seconds for c in self.criteria if isinstance(c, MaxRuntime)]
        return min(limits, default=math.inf)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def remaining(self) -> float:
        """Seconds left before the time criterion (``inf`` without one; 0 once interrupted)."""
        if signals.interrupted():
            return 0.0
        return max(0.0, self.time_limit - self.elapsed)

    @property
    def engine_seconds(self) -> float:
        """:attr:`remaining`, capped at :data:`MAX_ENGINE_SECONDS` for an engine's own limit."""
        return min(self.remaining, MAX_ENGINE_SECONDS)

    @property
    def out_of_time(self) -> bool:
        return self.elapsed >= self.time_limit

    @property
    def interrupted(self) -> bool:
        """A SIGINT or SIGTERM arrived (see :mod:`rota.signals`): stop now."""
        return signals.interrupted()

    def __call__(self, best: float | None = None) -> bool:
        """Count one iteration with the best objective so far; True once a criterion is met.

        Every criterion sees every iteration (so that counts stay right), and
        the first one met is remembered in :attr:`stopped_by`; a signal
        (``"interrupted"``) comes before them all.
        """
        self.iterations += 1
        met = [c.name for c in self.criteria if c(best)]
        if signals.interrupted():
            met.insert(0, "interrupted")
        if met and self.stopped_by is None:
            self.stopped_by = met[0]
        return bool(met)

    def stats(self) -> dict[str, Any]:
        """What a result records about its stop: iterations counted and what ended the run."""
        stopped_by = self.stopped_by
        if stopped_by is None and signals.interrupted():
            stopped_by = "interrupted"
        elif stopped_by is None and self.out_of_time:
            stopped_by = "time"
        return {"stop_iterations": self.iterations, "stopped_by": stopped_by}


__all__ = [
    "CRITERIA", "MAX_ENGINE_SECONDS", "MaxIterations", "MaxRuntime", "NoImprovement", "Stop",
    "Stopping", "TargetObjective",
]  # fmt: skip
