"""Layer-by-layer decomposition for placements too large for one model.

The objective couples a layer only to its two neighbours, and with both of
them fixed a layer's communication is linear in where its expert copies go
(:meth:`~rota.solvers.placement.layout.Layout.item_costs`). So a layer's own
problem (its busiest GPU plus that linear cost) is small and exact. The
decomposition solves it for one layer after another:

1. *Construction*: layer 0 keeps the start's placement; every later layer is
   solved against the layer before it alone (the next one is not placed yet),
   so that experts follow their predecessors' tokens from the first layer to
   the last. A start placed without regard to traffic (EPLB, contiguous) would
   otherwise pull every layer back towards its arbitrary GPUs.
2. *Sweeps*: backward, forward, ... with both neighbours fixed, a block
   coordinate descent in which each layer is replaced only when it strictly
   lowers the objective. They end when a whole sweep changes nothing (when
   every layer's solve also proved its optimum, no single layer can improve:
   ``stats["local_optimum"]``, a local optimum, not a global one), when a
   criterion of the stop is met, or when no time is left for another layer.

Each layer keeps the start's number of copies of every expert: EPLB's
replicas stay replicas, and only where they sit changes. With ``joint`` the
result is never worse than the start: if the construction ends worse and the
sweeps do not recover, the start is returned (``stats["kept_start"]``).
``hops`` minimises traffic, and its result may have a worse objective than its
start. The engine solving one layer is passed in (a MILP backend or CP-SAT).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rota.problems.placement import PlacementInstance, evaluate
from rota.solvers.placement.layout import Layout
from rota.solvers.stopping import Stop

#: Below this many seconds for a layer, another layer solve cannot do anything useful.
MIN_LAYER_SECONDS = 0.05
#: Relative improvement a layer must bring to be accepted (float noise is no improvement).
_IMPROVEMENT = 1e-9

#: ``(layer, layout, costs, seconds) -> (new GPUs of the layer's copies or None, proven)``;
#: ``costs[c, g]`` is copy ``c``'s weighted communication on GPU ``g``.
LayerSolver = Callable[[int, Layout, np.ndarray, float], tuple[np.ndarray | None, bool]]


@dataclass
class SweepResult:
    layout: Layout
    objective: float
    sweeps: int = 0  # sweeps started after the construction
    layer_solves: int = 0
    accepted: int = 0  # layer solves that changed a layer
    converged: bool = False  # a whole sweep improved nothing
    local_optimum: bool = False  # ... and every layer solve in it was proven optimal
    kept_start: bool = False

    def stats(self) -> dict[str, Any]:
        return {
            "decomposition": "layers",
            "sweeps": self.sweeps,
            "layer_solves": self.layer_solves,
            "layers_changed": self.accepted,
            "converged": self.converged,
            "local_optimum": self.local_optimum,
            "kept_start": self.kept_start,
        }


class _Sweeper:
    def __init__(
        self,
        instance: PlacementInstance,
        stop: Stop,
        start: Layout,
        solve_layer: LayerSolver,
        joint: bool,
        construct: bool,
    ) -> None:
        self.instance, self.stop, self.solve_layer, self.joint = instance, stop, solve_layer, joint
        self.construct = construct
        self.start = start
        self.start_value = evaluate(instance, start.solution()).objective
        self.layout = start.copy()
        self.best = self.start_value  # the objective of ``layout``, kept up to date
        self.result = SweepResult(start, self.start_value)

    def seconds(self, left: int) -> float:
        return self.stop.engine_seconds / max(1, left)

    def layer(self, li: int, left: int, right: bool) -> bool | None:
        """Solve layer ``li``; True if it changed, None when out of time or stopped."""
        limit = self.seconds(left)
        if limit < MIN_LAYER_SECONDS:
            return None
        inst, layout = self.instance, self.layout
        costs = layout.item_costs(inst, li, right=right)
        row, proven = self.solve_layer(li, layout, costs, limit)
        self.result.layer_solves += 1
        self.all_proven &= proven
        changed = False
        if row is not None and not np.array_equal(row, layout.gpu[li]):
            old = layout.part(inst, li, layout.gpu[li], costs, self.joint)
            new = layout.part(inst, li, row, costs, self.joint)
            if new < old - _IMPROVEMENT * max(1.0, abs(old)):
                # the objective moves by the layer's busiest GPU and its communication
                # with both neighbours, whatever ``right`` was
                both = costs if right else layout.item_costs(inst, li)
                before = layout.part(inst, li, layout.gpu[li], both, True)
                layout.gpu[li] = row
                self.best += layout.part(inst, li, row, both, True) - before
                self.result.accepted += 1
                changed = True
        if self.stop(min(self.start_value, self.best)):
            return None
        return changed

    def run(self) -> SweepResult:
        layers = self.instance.num_layers
        self.all_proven = True
        for li in range(1, layers) if self.construct else ():  # 1. construction
            if self.layer(li, layers - li, right=False) is None:
                return self.done()
        forward = False
        while True:  # 2. sweeps with both neighbours fixed
            self.result.sweeps += 1
            self.all_proven, improved = True, False
            order = range(layers) if forward else range(layers - 1, -1, -1)
            for position, li in enumerate(order):
                changed = self.layer(li, layers - position, right=True)
                if changed is None:
                    return self.done()
                improved |= changed
            if not improved:
                self.result.converged, self.result.local_optimum = True, self.all_proven
                return self.done()
            forward = not forward

    def done(self) -> SweepResult:
        value = evaluate(self.instance, self.layout.solution()).objective
        if self.joint and value > self.start_value:
            self.result.kept_start = True
        else:
            self.result.layout, self.result.objective = self.layout, value
        return self.result


def sweep(
    instance: PlacementInstance,
    stop: Stop,
    start: Layout,
    solve_layer: LayerSolver,
    formulation: str,
    construct: bool = True,
) -> SweepResult:
    """Improve ``start`` layer by layer until converged or stopped (see the module docstring).

    Each layer solve is one iteration of ``stop``, shown the best objective so far.
    ``construct=False`` skips the construction: sweeps only, to polish a result.
    """
    return _Sweeper(instance, stop, start, solve_layer, formulation == "joint", construct).run()


__all__ = ["MIN_LAYER_SECONDS", "LayerSolver", "SweepResult", "sweep"]
