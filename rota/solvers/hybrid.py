"""``hybrid``: seeds from fast producers, refined by a search that takes warm starts (EARLI).

``seeds`` names the producers, run in order: ``neural`` (the trained policy's
``seed_count`` best distinct decodes, :mod:`rota.solvers.neural`) and
``greedy`` (the constructive). ``refine`` names the backend that takes every
feasible seed (and the user's warm starts) as its starting solutions:
``pyvrp`` (initial solution), ``ortools`` (initial routes) or ``ga`` (initial
population), or any registered routing solver with warm starts.

Everything runs under the one stop the caller gave: the producers' time is
charged to the time limit, and the refining backend gets what is left. The
result is never worse than the best seed: the refining backend returns its
best, and rota's never-worse rule covers the warm starts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rota.problems.routing import RoutingInstance
from rota.solvers.base import Result, Status, best_feasible, finish, preload, reconfigured
from rota.solvers.routing import RoutingCapabilities
from rota.solvers.stopping import Stop, Stopping

OPTIONS = ("seeds", "refine", "seed_count", "checkpoint", "decoding", "augment")
PRODUCERS = ("neural", "greedy")


def _names(value: str | Sequence[str], what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in value.split(",")) if isinstance(value, str) else tuple(value)
    if not names or any(not n for n in names):
        raise ValueError(f"{what} is {value!r}, expected comma-separated solver names")
    return names


class HybridSolver:
    """Seed, then refine (see the module docstring)."""

    name = "hybrid"
    problem = "routing"
    description = "EARLI-style: neural and greedy seeds refined by pyvrp, ortools or ga"

    def __init__(
        self,
        seeds: str | Sequence[str] = "neural,greedy",
        refine: str = "pyvrp",
        seed_count: int = 8,
        checkpoint: str | None = None,
        decoding: str = "sampling",
        augment: int = 1,
    ):
        from rota.solvers.registry import get_solver

        self.seeds = _names(seeds, "seeds")
        for name in self.seeds:
            if name not in PRODUCERS:
                raise ValueError(f"seeds: {name!r} is not a producer; use {', '.join(PRODUCERS)}")
        if int(seed_count) < 1:
            raise ValueError(f"seed_count must be a positive integer, got {seed_count!r}")
        self.refine, self.seed_count = refine, int(seed_count)
        self.checkpoint, self.decoding = checkpoint, decoding
        self._refiner = get_solver(refine, "routing")
        if not self._refiner.capabilities.warm_start:
            raise ValueError(f"refine: {refine} takes no warm start, so it cannot refine seeds")
        self._neural = None
        if "neural" in self.seeds:
            from rota.solvers.neural import NeuralSolver

            self._neural = NeuralSolver(checkpoint, decoding, augment, samples=4 * self.seed_count)
        # the neural solver checks the count; without neural seeds it is not used
        self.augment = self._neural.augment if self._neural else augment
        caps = self._refiner.capabilities
        self.capabilities = RoutingCapabilities(
            warm_start=True, stopping=caps.stopping, asymmetric=caps.asymmetric,
            time_windows=caps.time_windows, heterogeneous=caps.heterogeneous,
            multi_depot=caps.multi_depot, uncapacitated=caps.uncapacitated,
            max_clients=caps.max_clients, features=caps.features,
        )  # fmt: skip

    def configure(self, **options) -> HybridSolver:
        return reconfigured(self, OPTIONS, options)

    def available(self) -> bool:
        producers_ok = self._neural is None or self._neural.available()
        return producers_ok and self._refiner.available()

    def preload(self) -> None:
        if self._neural is not None:
            preload(self._neural)
        preload(self._refiner)

    def supports(self, instance: RoutingInstance) -> str | None:
        from rota.solvers.greedy import GreedySolver

        reason = self._refiner.supports(instance)
        if reason is not None:
            return reason
        if self._neural is not None:
            reason = self._neural.supports(instance)
            if reason is not None:
                return f"seeds: {reason}"
        if "greedy" in self.seeds:
            reason = GreedySolver().supports(instance)
            if reason is not None:
                return f"seeds: {reason}"
        return None

    def _seeds(self, instance: RoutingInstance, stop: Stop, seed: int) -> tuple[list, dict]:
        from rota.envs.routing import to_solution
        from rota.solvers.greedy import GreedySolver

        found, timings = [], {}
        for name in self.seeds:
            started = time.perf_counter()
            if name == "neural":
                candidates = self._neural.candidates([instance], self.seed_count, seed)[0]
                found += [to_solution(actions) for actions, _ in candidates]
            else:
                budget = Stopping(time=max(stop.remaining, 1e-3)).start()
                result = GreedySolver().solve(instance, budget, seed)
                if result.status.has_solution:
                    found.append(result.solution)
            timings[name] = round(time.perf_counter() - started, 4)
        return found, timings

    def solve(
        self, instance: RoutingInstance, stop: Stop, seed: int, warm_start: Sequence = ()
    ) -> Result:
        seeds, timings = self._seeds(instance, stop, seed)
        starts = [*warm_start, *seeds]
        best_seed = best_feasible(instance, seeds)
        stats = {
            "seeds": len(seeds), "seed_seconds": timings, "refine": self.refine,
            "best_seed": None if best_seed is None else best_seed[1].objective,
        }  # fmt: skip
        refined = self._refiner.solve(instance, stop, seed, tuple(starts))
        stats["refine_stats"] = dict(refined.stats)
        if refined.status.has_solution:
            return finish(instance, refined.solution, refined.status, solver=self.name,
                          seed=seed, stop=stop, bound=refined.bound, stats=stats)  # fmt: skip
        if best_seed is not None:
            stats["reason"] = f"{self.refine} ended with {refined.status.value}; best seed kept"
            return finish(instance, best_seed[0], Status.FEASIBLE, solver=self.name, seed=seed,
                          stop=stop, stats=stats)  # fmt: skip
        return finish(instance, None, refined.status, solver=self.name, seed=seed, stop=stop,
                      stats=stats)  # fmt: skip
