"""Layer-by-layer decomposition for placements too large for one model.

The objective couples a layer only to its two neighbours, and with both of
them fixed a layer's communication is linear in where its experts go
(:func:`~rota.solvers.placement.common.layer_costs`). So a layer's own
problem (its busiest GPU plus that linear cost) is small and exact, and
solving it for one layer after another, forward then backward, is a block
coordinate descent: each accepted layer strictly lowers the objective, and
the sweeps stop when a whole sweep changes nothing (no single layer can
improve, every layer's solve having proven its optimum: a local optimum, not
a global one), when a criterion of the stop is
met, or when no time is left for another layer.

The engine solving one layer is passed in (a MILP backend or CP-SAT); it
starts from the layer's current placement and may return ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rota.problems.placement import PlacementInstance
from rota.solvers.placement.common import layer_costs, layer_part, objective
from rota.solvers.stopping import Stop

#: Below this many seconds for a layer, another layer solve cannot do anything useful.
MIN_LAYER_SECONDS = 0.05
#: Relative improvement a layer must bring to be accepted (float noise is no improvement).
_IMPROVEMENT = 1e-9

#: ``(layer, costs, placement, seconds) -> (new GPUs of the layer or None, proven optimal)``
LayerSolver = Callable[[int, np.ndarray, np.ndarray, float], tuple[np.ndarray | None, bool]]


@dataclass
class SweepResult:
    placement: np.ndarray
    objective: float
    sweeps: int  # sweeps started (forward and backward each count one)
    layer_solves: int
    accepted: int  # layer solves that improved the objective
    converged: bool  # a whole sweep of proven layer optima improved nothing

    def stats(self) -> dict[str, Any]:
        return {
            "decomposition": "layers",
            "sweeps": self.sweeps,
            "layer_solves": self.layer_solves,
            "layers_improved": self.accepted,
            "converged": self.converged,
        }


def layer_objective(formulation: str) -> Callable[[PlacementInstance, np.ndarray, int], float]:
    """What a layer solve minimises: the family's objective (``joint``) or traffic (``hops``)."""
    if formulation == "joint":
        return layer_part

    def traffic(instance: PlacementInstance, placement: np.ndarray, li: int) -> float:
        costs = layer_costs(instance, placement, li)
        return float(costs[np.arange(instance.num_experts), placement[li]].sum())

    return traffic


def sweep(
    instance: PlacementInstance,
    stop: Stop,
    start: np.ndarray,
    solve_layer: LayerSolver,
    formulation: str,
) -> SweepResult:
    """Improve ``start`` layer by layer until converged or stopped (see the module docstring).

    Each layer solve is one iteration of ``stop``, shown the objective so far.
    """
    part = layer_objective(formulation)
    placement = start.copy()
    best = objective(instance, placement)
    layers = instance.num_layers
    result = SweepResult(placement, best, 0, 0, 0, converged=False)
    forward = True
    while True:
        result.sweeps += 1
        order = range(layers) if forward else range(layers - 1, -1, -1)
        improved, all_proven = False, True
        for position, li in enumerate(order):
            seconds = stop.engine_seconds / (layers - position)
            if seconds < MIN_LAYER_SECONDS:
                return _done(instance, result, placement)
            costs = layer_costs(instance, placement, li)
            row, proven = solve_layer(li, costs, placement, seconds)
            result.layer_solves += 1
            all_proven &= proven
            if row is not None and not np.array_equal(row, placement[li]):
                candidate = placement.copy()
                candidate[li] = row
                old, new = part(instance, placement, li), part(instance, candidate, li)
                if new < old - _IMPROVEMENT * max(1.0, abs(old)):
                    placement = candidate
                    best = objective(instance, placement)
                    result.accepted += 1
                    improved = True
            if stop(best):
                return _done(instance, result, placement)
        if not improved and all_proven:
            result.converged = True
            return _done(instance, result, placement)
        forward = not forward


def _done(instance: PlacementInstance, result: SweepResult, placement: np.ndarray) -> SweepResult:
    result.placement = placement
    result.objective = objective(instance, placement)
    return result


__all__ = ["MIN_LAYER_SECONDS", "LayerSolver", "SweepResult", "layer_objective", "sweep"]
