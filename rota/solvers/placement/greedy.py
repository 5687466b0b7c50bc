"""Constructive placements: contiguous (Megatron-LM) and EPLB-style hierarchical balancing.

``method="eplb"`` (the default) is DeepSeek EPLB's hierarchical policy, layer
by layer (see :func:`~rota.solvers.placement.common.eplb_layer`): experts to
nodes by balanced packing, hot experts replicated into spare slots, copies to
GPUs by balanced packing. It balances load and ignores traffic.
``method="contiguous"`` is Megatron-LM's default, experts in id order in equal
blocks, which ignores both: the baseline the benchmarks compare against.

``replicas`` is the number of extra copies per layer (EPLB only); the
default, ``None``, fills every spare slot (``G * slots - E``), as EPLB fills
its redundant slots; instances with ``slots = E / G`` have none.
"""

from __future__ import annotations

from typing import Any

from rota.errors import UnsupportedInstanceError
from rota.problems.placement import PlacementInstance, PlacementSolution, contiguous, evaluate
from rota.solvers.base import ALL_CRITERIA, Capabilities, Result, Status, finish, reconfigured
from rota.solvers.placement.common import eplb, objective
from rota.solvers.stopping import Stop

METHODS = ("eplb", "contiguous")
_OPTION_NAMES = ("method", "replicas")


class GreedyPlacement:
    """Contiguous or EPLB-style placement in one pass; see the module docstring.

    Parameters
    ----------
    method
        ``"eplb"`` (default) or ``"contiguous"``.
    replicas
        Extra copies per layer for ``eplb``; ``None`` fills the spare slots.

    One construction is one iteration of the stop.
    """

    name = "greedy"
    problem = "placement"
    description = "EPLB-style hierarchical balancing with replicas, or contiguous (Megatron-LM)"
    capabilities = Capabilities(stopping=ALL_CRITERIA)

    def __init__(self, method: str = "eplb", replicas: int | None = None) -> None:
        if method not in METHODS:
            raise ValueError(f"greedy option method={method!r} is not one of {', '.join(METHODS)}")
        if replicas is not None and (
            isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0
        ):
            raise ValueError(f"greedy option replicas={replicas!r} must be an integer >= 0 or None")
        if method == "contiguous" and replicas:
            raise ValueError("greedy option replicas is for method=eplb; contiguous has none")
        self.method = method
        self.replicas = replicas

    def configure(self, **options: Any) -> GreedyPlacement:
        """A copy of this solver with ``options`` changed (unknown names fail, named)."""
        return reconfigured(self, _OPTION_NAMES, options)

    def available(self) -> bool:
        return True

    def supports(self, instance: PlacementInstance) -> str | None:
        if self.replicas is not None and self.replicas > instance.spare_slots:
            return (
                f"greedy: {self.replicas} replicas per layer do not fit: {instance.name} has "
                f"{instance.spare_slots} spare slot(s) per layer ({instance.gpus} GPUs x "
                f"{instance.slots} slots for {instance.num_experts} experts)"
            )
        return None

    def solve(
        self,
        instance: PlacementInstance,
        stop: Stop,
        seed: int,
        warm_start: tuple[PlacementSolution, ...] = (),
    ) -> Result:
        reason = self.supports(instance)
        if reason is not None:
            raise UnsupportedInstanceError(reason)
        if self.method == "contiguous":
            solution = contiguous(instance)
            stats: dict[str, Any] = {"method": "contiguous"}
        else:
            replicas = instance.spare_slots if self.replicas is None else self.replicas
            solution = eplb(instance, replicas)
            stats = {"method": "eplb", "replicas_per_layer": replicas}
        array = solution.as_array()
        # the one construction is the one iteration; replicas need the evaluator's figures
        stop(
            objective(instance, array)
            if array is not None
            else evaluate(instance, solution).objective
        )
        return finish(
            instance, solution, Status.FEASIBLE, solver=self.name, seed=seed, stop=stop,
            stats=stats,
        )  # fmt: skip
