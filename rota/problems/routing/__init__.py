"""The routing family: TSP/ATSP, (A)CVRP, VRPTW, heterogeneous fleets, several depots.

:class:`RoutingProblem` (the instance :data:`ROUTING`) is what the rest of
rota knows of this family; the model, formats and plot live beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rota.problems.base import Problem, Sense
from rota.problems.routing.evaluation import (
    Evaluation,
    RouteReport,
    check_route,
    evaluate,
    schedule,
    schedules,
)
from rota.problems.routing.io import json as routing_json
from rota.problems.routing.io import read_text, text_format, vrplib
from rota.problems.routing.model import (
    FEATURES,
    TOLERANCE,
    ClientGroup,
    Route,
    RoutingInstance,
    RoutingSolution,
    Shipment,
    VehicleType,
)

#: Evaluator violations that mean a solution names things the instance lacks.
_STRUCTURAL = ("unknown_client", "vehicle_type")


class RoutingProblem(Problem):
    """Routing: minimise fixed plus distance costs over routes that visit every client once."""

    name = "routing"
    sense = Sense.MIN
    instance_type = RoutingInstance
    solution_type = RoutingSolution
    instance_format = routing_json.INSTANCE_FORMAT
    solution_formats = (routing_json.SOLUTION_FORMAT,)
    suffixes = (".vrp", ".txt", ".atsp", ".tsp", ".json", ".jsonl")
    size_label = "clients"
    items_label = "routes"
    solvers = {
        "pyvrp": "rota.solvers.pyvrp:PyVRPSolver",
        "ortools": "rota.solvers.ortools:ORToolsSolver",
        "greedy": "rota.solvers.greedy:GreedySolver",
        "milp": "rota.solvers.milp:MILPSolver",
        "cpsat": "rota.solvers.cpsat:CPSATSolver",
        "ga": "rota.solvers.ga:GASolver",
        "neural": "rota.solvers.neural:NeuralSolver",
        "hybrid": "rota.solvers.hybrid:HybridSolver",
        "hgs": "rota.solvers.hgs:HGSSolver",
        "lkh": "rota.solvers.lkh:LKHSolver",
    }
    default_solver = "pyvrp"

    def evaluate(self, instance: RoutingInstance, solution: RoutingSolution) -> Evaluation:
        return evaluate(instance, solution)

    def structural_errors(self, instance: RoutingInstance, solution: Any) -> list[str]:
        errors = super().structural_errors(instance, solution)
        if errors:
            return errors
        report = evaluate(instance, solution)
        return [v.message for v in report.violations if v.kind in _STRUCTURAL]

    def summary(self, evaluation: Evaluation) -> dict[str, float]:
        figures = {
            "objective": evaluation.objective,
            "distance": evaluation.distance,
            "fixed cost": evaluation.fixed_cost,
        }
        if evaluation.duration_cost:
            figures["duration cost"] = evaluation.duration_cost
        if evaluation.uncollected_prizes:
            figures["uncollected prizes"] = evaluation.uncollected_prizes
        figures["routes"] = evaluation.num_routes
        return figures

    def kind(self, instance: RoutingInstance) -> str:
        return instance.kind

    def size(self, instance: RoutingInstance) -> int:
        return instance.num_clients

    def items(self, solution: RoutingSolution) -> int:
        return len(solution.nonempty_routes)

    def sniff(self, path: Path, text: str) -> str | None:
        return text_format(text)

    def read(self, path: Path, text: str) -> RoutingInstance:
        return read_text(path, text)

    def instance_from_dict(self, data: Any, where: str) -> RoutingInstance:
        return routing_json.instance_from_dict(data, where)

    def instance_to_dict(self, instance: RoutingInstance) -> dict[str, Any]:
        return routing_json.instance_to_dict(instance)

    def solution_from_dict(self, data: Any, where: str) -> RoutingSolution:
        return routing_json.solution_from_dict(data, where)

    def solution_to_dict(
        self, solution: RoutingSolution, instance_name: str | None = None
    ) -> dict[str, Any]:
        return routing_json.solution_to_dict(solution, instance_name)

    def solution_payload(self, solution: RoutingSolution) -> Any:
        # result files store the bare routes list (rota.result/1 since the first release)
        return routing_json.solution_to_dict(solution)["routes"]

    def solution_from_payload(self, data: Any, where: str) -> RoutingSolution:
        return routing_json.solution_from_dict({"routes": data}, where)

    def read_solution(
        self, path: Path, text: str, instance: RoutingInstance | None
    ) -> RoutingSolution:
        return vrplib.read_solution(path, instance, text=text)[0]

    def write_solution(
        self,
        solution: RoutingSolution,
        path: Path,
        instance: RoutingInstance | None,
        cost: float | None,
    ) -> None:
        if path.suffix != ".sol":
            raise ValueError(
                f"{path}: unknown solution extension {path.suffix!r}, expected .json or .sol"
            )
        vrplib.write_solution(solution, path, instance, cost)

    def plot(
        self,
        instance: RoutingInstance,
        solution: RoutingSolution,
        path: Path,
        title: str | None = None,
    ) -> Path:
        from rota.problems.routing.plot import plot_routes

        return plot_routes(instance, solution, path, title)


ROUTING = RoutingProblem()

__all__ = [
    "FEATURES", "ROUTING", "TOLERANCE", "ClientGroup", "Evaluation", "Route", "RouteReport",
    "RoutingInstance", "RoutingProblem", "RoutingSolution", "Shipment", "VehicleType",
    "check_route", "evaluate", "schedule", "schedules",
]  # fmt: skip
