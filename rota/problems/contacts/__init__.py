"""The contact-scheduling family: which spacecraft gets which antenna when.

:class:`ContactsProblem` (the instance :data:`CONTACTS`) is what the rest of
rota knows of this family; the model (:mod:`.model`), the formats
(:mod:`.io`: rota JSON and SatNet weeks) and the Gantt chart (:mod:`.plot`)
live beside it. Weeks are oversubscribed, so the family maximises.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rota.problems.base import Problem, Sense
from rota.problems.contacts.io import json as contacts_json
from rota.problems.contacts.io import satnet
from rota.problems.contacts.model import (
    OBJECTIVES,
    TOLERANCE,
    Antenna,
    ContactEvaluation,
    ContactInstance,
    ContactSolution,
    Request,
    Resource,
    Track,
    evaluate,
)

#: Evaluator violations that mean a schedule names things the instance lacks.
_STRUCTURAL = ("unknown_request", "unknown_resource")


class ContactsProblem(Problem):
    """Contact scheduling: maximise hours (or value) scheduled on a ground-station network."""

    name = "contacts"
    sense = Sense.MAX
    instance_type = ContactInstance
    solution_type = ContactSolution
    instance_format = contacts_json.INSTANCE_FORMAT
    solution_formats = (contacts_json.SOLUTION_FORMAT,)
    suffixes = (".json", ".jsonl")
    size_label = "requests"
    items_label = "tracks"
    solvers = {
        "greedy": "rota.solvers.contacts.greedy:GreedyContacts",
        "cpsat": "rota.solvers.contacts.cpsat:CPSATContacts",
        "milp": "rota.solvers.contacts.milp:MILPContacts",
        "ga": "rota.solvers.contacts.ga:GAContacts",
        "neural": "rota.solvers.contacts.neural:NeuralContacts",
    }
    default_solver = "cpsat"

    def evaluate(self, instance: ContactInstance, solution: ContactSolution) -> ContactEvaluation:
        return evaluate(instance, solution)

    def structural_errors(self, instance: ContactInstance, solution: Any) -> list[str]:
        errors = super().structural_errors(instance, solution)
        if errors:
            return errors
        report = evaluate(instance, solution)
        return [v.message for v in report.violations if v.kind in _STRUCTURAL]

    def summary(self, evaluation: ContactEvaluation) -> dict[str, float]:
        return {
            "objective": evaluation.objective,
            "hours scheduled": evaluation.hours_scheduled,
            "hours unsatisfied": evaluation.hours_unsatisfied,
            "requests": evaluation.requests,
            "satisfied": evaluation.satisfied,
            "fully": evaluation.fully_satisfied,
            "partly": evaluation.partly_satisfied,
            "U_max": evaluation.u_max,
            "U_rms": evaluation.u_rms,
        }

    def kind(self, instance: ContactInstance) -> str:
        return instance.objective

    def size(self, instance: ContactInstance) -> int:
        return instance.num_requests

    def items(self, solution: ContactSolution) -> int:
        return len(solution.tracks)

    def sniff(self, path: Path, text: str) -> str | None:
        return "satnet" if satnet.looks_like_satnet(text) else None

    def read(self, path: Path, text: str) -> ContactInstance:
        return satnet.read_week(path, text)

    def instance_from_dict(self, data: Any, where: str) -> ContactInstance:
        return contacts_json.instance_from_dict(data, where)

    def instance_to_dict(self, instance: ContactInstance) -> dict[str, Any]:
        return contacts_json.instance_to_dict(instance)

    def solution_from_dict(self, data: Any, where: str) -> ContactSolution:
        return contacts_json.solution_from_dict(data, where)

    def solution_to_dict(
        self, solution: ContactSolution, instance_name: str | None = None
    ) -> dict[str, Any]:
        return contacts_json.solution_to_dict(solution, instance_name)

    def plot(
        self,
        instance: ContactInstance,
        solution: ContactSolution,
        path: Path,
        title: str | None = None,
    ) -> Path:
        from rota.problems.contacts.plot import plot_schedule

        return plot_schedule(instance, solution, path, title)


CONTACTS = ContactsProblem()

__all__ = [
    "CONTACTS", "OBJECTIVES", "TOLERANCE", "Antenna", "ContactEvaluation", "ContactInstance",
    "ContactSolution", "ContactsProblem", "Request", "Resource", "Track", "evaluate",
]  # fmt: skip
