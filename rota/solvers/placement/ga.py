"""``ga``: an evolutionary algorithm over expert placements, in torch (on CUDA when present).

A placement is a tensor of slots (:mod:`.ga_slots`): every layer lists the
expert in each of the ``G * slots`` slots, so every GPU keeps its slot count
by construction, and the fitness is the evaluator's objective computed for
the whole population at once. Variation keeps that structure:

- the local search (:mod:`.ga_swaps`) prices every swap of two slots on
  different GPUs in a layer, for all layers of one parity of all individuals
  at once, and applies the best swap or a set of GPU-disjoint improving ones;
- random swaps mutate;
- crossover (:mod:`.ga_search`) puts a block of layers of one parent into the
  other, the block's GPUs renumbered to fit its boundaries.

Starts are contiguous placement, EPLB without replicas, EPLB with replicas in
the spare slots (when there are some) and every feasible warm start; the
result is never worse than the best of them. Each layer keeps the number of
copies of every expert of the start it descends from, so EPLB's replicas are
kept and moved; none are added or removed.

``formulation`` is what the search minimises, as for ``milp``: ``joint``
(the family's objective; the default) or ``hops`` (ExFlow: the weighted
traffic alone; equal expert counts per GPU hold by construction).
``max_imbalance`` caps every layer's busiest GPU at that multiple of the
mean load, or at the start's where that is higher (the start as ``milp``
picks it: the best feasible warm start, else the better of EPLB and
contiguous placement); starts above the caps are left out, and no move
breaks them, so ``hops`` with ``max_imbalance=1`` is "the least traffic at
EPLB's balance". Results are ``FEASIBLE`` without a bound: a genetic search
proves nothing. An iteration of the stop is one generation.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from rota.problems.placement import PlacementInstance, PlacementSolution, contiguous, evaluate
from rota.solvers.base import ALL_CRITERIA, Capabilities, Result, Status, finish, reconfigured
from rota.solvers.placement import common, exact
from rota.solvers.placement.formulation import FORMULATIONS
from rota.solvers.placement.layout import Layout, load_caps
from rota.solvers.stopping import Stop

#: Devices the ``device`` option accepts.
DEVICES = ("auto", "cpu", "cuda")
_OPTION_NAMES = ("population", "offspring", "formulation", "max_imbalance", "device")


class GAPlacement:
    """Evolutionary placement search in torch; see the module docstring.

    Parameters
    ----------
    population
        Individuals kept between generations.
    offspring
        Children made per generation.
    formulation
        ``"joint"`` (the family's objective) or ``"hops"`` (traffic alone).
    max_imbalance
        Cap on every layer's busiest GPU, as a multiple of the mean; ``None``: no cap.
    device
        ``"auto"`` (CUDA when torch finds it), ``"cpu"`` or ``"cuda"``.
    """

    name = "ga"
    problem = "placement"
    description = (
        "Evolutionary search in torch (GPU when present): batched best-swap local search, "
        "layer-block crossover"
    )
    capabilities = Capabilities(warm_start=True, stopping=ALL_CRITERIA, gpu=True)

    def __init__(
        self,
        population: int = 16,
        offspring: int = 8,
        formulation: str = "joint",
        max_imbalance: float | None = None,
        device: str = "auto",
    ) -> None:
        for option, value, low in (("population", population, 1), ("offspring", offspring, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"ga option {option}={value!r} must be an integer >= {low}")
        if formulation not in FORMULATIONS:
            raise ValueError(
                f"ga option formulation={formulation!r} is not one of {', '.join(FORMULATIONS)}"
            )
        if max_imbalance is not None and (
            isinstance(max_imbalance, bool)
            or not isinstance(max_imbalance, int | float)
            or not 1 <= max_imbalance <= 1e6
        ):
            raise ValueError(
                f"ga option max_imbalance={max_imbalance!r} must be a number >= 1 or None"
            )
        if device not in DEVICES:
            raise ValueError(f"ga option device={device!r} is not one of {', '.join(DEVICES)}")
        self.population = population
        self.offspring = offspring
        self.formulation = formulation
        self.max_imbalance = max_imbalance
        self.device = device

    def configure(self, **options: Any) -> GAPlacement:
        """A copy of this solver with ``options`` changed (unknown names fail, named)."""
        return reconfigured(self, _OPTION_NAMES, options)

    def available(self) -> bool:
        # finding torch, not importing it: an import takes seconds, and listing
        # solvers must stay quick
        return importlib.util.find_spec("torch") is not None

    def supports(self, instance: PlacementInstance) -> str | None:
        return None

    def solve(
        self,
        instance: PlacementInstance,
        stop: Stop,
        seed: int,
        warm_start: tuple[PlacementSolution, ...] = (),
    ) -> Result:
        import torch

        from rota.solvers.placement.ga_search import Settings, evolve
        from rota.solvers.placement.ga_slots import decode, encode, encode_solution, objective

        device = self._device(torch)
        caps, origin = None, None
        if self.max_imbalance is not None:
            reference, origin = exact.starting_solution(instance, warm_start, True, replicas=True)
            caps = load_caps(instance, Layout.of(reference), self.max_imbalance)
        enc = encode(instance, device, caps, traffic_only=self.formulation == "hops")
        names, rows = [], []
        for name, solution in self._candidates(instance, warm_start):
            report = evaluate(instance, solution)
            if not report.feasible:
                continue
            if caps is not None and (report.gpu_load.max(axis=1) > caps * (1 + 1e-9)).any():
                continue
            names.append(name)
            rows.append(encode_solution(enc, solution))
        starts = torch.tensor(np.stack(rows), device=device)
        start_values = objective(enc, starts).objective.tolist()
        settings = Settings(population=self.population, offspring=self.offspring)
        outcome = evolve(enc, starts, stop, seed % 2**63, settings)
        stats: dict[str, Any] = {
            "device": str(device),
            "formulation": self.formulation,
            "population": self.population,
            "offspring": self.offspring,
            "generations": outcome.generations,
            "improving_generations": outcome.improved,
            "local_search_steps": outcome.local_search_steps,
            "starts": dict(zip(names, start_values, strict=True)),
        }
        if caps is not None:
            stats["max_imbalance"] = self.max_imbalance
            stats["restricted"] = (
                f"every layer's busiest GPU capped at max_imbalance times the mean, or the "
                f"{origin}'s where higher"
            )
        solution = decode(enc, outcome.best.cpu().numpy())
        return finish(
            instance, solution, Status.FEASIBLE, solver=self.name, seed=seed, stop=stop,
            stats=stats,
        )  # fmt: skip

    @staticmethod
    def _candidates(
        instance: PlacementInstance, warm_start: tuple[PlacementSolution, ...]
    ) -> list[tuple[str, PlacementSolution]]:
        found = [(f"warm start {k}", s) for k, s in enumerate(warm_start)]
        found += [("contiguous", contiguous(instance)), ("eplb", common.eplb(instance, 0))]
        if instance.spare_slots:
            found.append(("eplb with replicas", common.eplb(instance, instance.spare_slots)))
        return found

    def _device(self, torch: Any) -> Any:
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("ga option device='cuda', but torch finds no CUDA device")
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


__all__ = ["DEVICES", "GAPlacement"]
