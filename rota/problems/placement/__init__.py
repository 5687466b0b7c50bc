"""The expert-placement family: mixture-of-experts layers placed on GPUs and nodes.

:class:`PlacementProblem` (the instance :data:`PLACEMENT`) is what the rest of
rota knows of this family; the model (:mod:`.model`), the files (:mod:`.io`)
and the traffic plot (:mod:`.plot`) live beside it. The objective, its
weight and the traffic model are documented in :mod:`.model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rota.errors import FormatError
from rota.problems.base import Problem, Sense
from rota.problems.placement import io as placement_io
from rota.problems.placement.model import (
    PlacementEvaluation,
    PlacementInstance,
    PlacementSolution,
    contiguous,
    evaluate,
)

#: Evaluator violations that mean a solution does not even have the instance's shape.
_STRUCTURAL = ("shape", "unknown_gpu")


class PlacementProblem(Problem):
    """Expert placement: minimise the busiest GPU's load plus weighted token traffic."""

    name = "placement"
    sense = Sense.MIN
    instance_type = PlacementInstance
    solution_type = PlacementSolution
    instance_format = placement_io.INSTANCE_FORMAT
    solution_formats = (placement_io.SOLUTION_FORMAT,)
    size_label = "experts"
    items_label = "replicas"
    solvers = {
        "greedy": "rota.solvers.placement.greedy:GreedyPlacement",
        "milp": "rota.solvers.placement.milp:MILPPlacement",
        "cpsat": "rota.solvers.placement.cpsat:CPSATPlacement",
        "ga": "rota.solvers.placement.ga:GAPlacement",
        "neural": "rota.solvers.placement.neural:NeuralPlacement",
    }
    default_solver = "milp"

    def evaluate(
        self, instance: PlacementInstance, solution: PlacementSolution
    ) -> PlacementEvaluation:
        return evaluate(instance, solution)

    def structural_errors(self, instance: PlacementInstance, solution: Any) -> list[str]:
        errors = super().structural_errors(instance, solution)
        if errors:
            return errors
        report = evaluate(instance, solution)
        return [v.message for v in report.violations if v.kind in _STRUCTURAL]

    def summary(self, evaluation: PlacementEvaluation) -> dict[str, float]:
        return {
            "objective": evaluation.objective,
            "load term": evaluation.load_term,
            "comm cost": evaluation.comm_cost,
            "cross-GPU": evaluation.cross_gpu,
            "cross-node": evaluation.cross_node,
            "max imbalance": evaluation.max_imbalance,
            "mean imbalance": evaluation.mean_imbalance,
            "replicas": evaluation.replicas,
        }

    def kind(self, instance: PlacementInstance) -> str:
        return f"moe-top{instance.top_k}"

    def size(self, instance: PlacementInstance) -> int:
        return instance.num_layers * instance.num_experts

    def items(self, solution: PlacementSolution) -> int:
        return solution.replicas

    def sniff(self, path: Path, text: str) -> str | None:
        return "trace" if placement_io.sniff_trace(text) else None

    def read(self, path: Path, text: str) -> Any:
        raise FormatError(
            f"{path}: is a routing trace, not an instance: it has no GPUs; summarise it with "
            f"`rota data placement --trace {path} --gpus G --out instance.json`"
        )

    def instance_from_dict(self, data: Any, where: str) -> PlacementInstance:
        return placement_io.instance_from_dict(data, where)

    def instance_to_dict(self, instance: PlacementInstance) -> dict[str, Any]:
        return placement_io.instance_to_dict(instance)

    def solution_from_dict(self, data: Any, where: str) -> PlacementSolution:
        return placement_io.solution_from_dict(data, where)

    def solution_to_dict(
        self, solution: PlacementSolution, instance_name: str | None = None
    ) -> dict[str, Any]:
        return placement_io.solution_to_dict(solution, instance_name)

    def plot(
        self,
        instance: PlacementInstance,
        solution: PlacementSolution,
        path: Path,
        title: str | None = None,
    ) -> Path:
        from rota.problems.placement.plot import plot_traffic

        return plot_traffic(instance, solution, path, title)


PLACEMENT = PlacementProblem()

__all__ = [
    "PLACEMENT", "PlacementEvaluation", "PlacementInstance", "PlacementProblem",
    "PlacementSolution", "contiguous", "evaluate",
]  # fmt: skip
