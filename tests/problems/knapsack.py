"""A toy problem family for tests: 0/1 knapsack, which maximises.

It shows that everything outside a family's folder is family-neutral: this
module is a whole family (instance, solution, evaluator, JSON format and two
solvers), and one registry line (:func:`rota.problems.register_problem`)
makes ``rota.read``, ``rota.solve``, the CLI and ``rota bench`` serve it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rota.errors import FormatError
from rota.problems.base import Problem, Sense, Violation
from rota.solvers.base import ALL_CRITERIA, Capabilities, Result, Status, finish
from rota.solvers.stopping import Stop

INSTANCE_FORMAT = "rota.knapsack/1"
SOLUTION_FORMAT = "rota.knapsack.solution/1"


@dataclass(frozen=True, eq=False)
class KnapsackInstance:
    values: tuple[float, ...]
    weights: tuple[int, ...]
    capacity: int
    name: str = "knapsack"

    def __post_init__(self) -> None:
        if len(self.values) != len(self.weights) or not self.values:
            raise ValueError("values and weights must be non-empty and of one length")
        if self.capacity < 0 or any(w < 0 for w in self.weights):
            raise ValueError("weights and capacity must be >= 0")


@dataclass(frozen=True)
class KnapsackSolution:
    items: tuple[int, ...]


@dataclass(frozen=True)
class KnapsackEvaluation:
    objective: float
    violations: tuple[Violation, ...]

    @property
    def feasible(self) -> bool:
        return not self.violations


def evaluate(instance: KnapsackInstance, solution: KnapsackSolution) -> KnapsackEvaluation:
    violations = []
    n = len(instance.values)
    known = [i for i in solution.items if 0 <= i < n]
    for i in solution.items:
        if not 0 <= i < n:
            violations.append(Violation("unknown_item", f"item {i} does not exist"))
    if len(set(known)) != len(known):
        violations.append(Violation("repeated", "an item is packed twice"))
    weight = sum(instance.weights[i] for i in known)
    if weight > instance.capacity:
        violations.append(Violation("capacity", f"weight {weight} > capacity {instance.capacity}"))
    return KnapsackEvaluation(float(sum(instance.values[i] for i in known)), tuple(violations))


class KnapsackProblem(Problem):
    name = "knapsack"
    sense = Sense.MAX
    instance_type = KnapsackInstance
    solution_type = KnapsackSolution
    instance_format = INSTANCE_FORMAT
    solution_formats = (SOLUTION_FORMAT,)
    size_label = "items"
    items_label = "packed"
    solvers = {
        "greedy": f"{__name__}:GreedyKnapsack",
        "dp": f"{__name__}:DPKnapsack",
    }
    default_solver = "dp"

    def evaluate(self, instance: Any, solution: Any) -> KnapsackEvaluation:
        return evaluate(instance, solution)

    def structural_errors(self, instance: Any, solution: Any) -> list[str]:
        errors = super().structural_errors(instance, solution)
        n = len(instance.values)
        return errors or [f"item {i} does not exist" for i in solution.items if not 0 <= i < n]

    def kind(self, instance: KnapsackInstance) -> str:
        return "01kp"

    def size(self, instance: KnapsackInstance) -> int:
        return len(instance.values)

    def items(self, solution: KnapsackSolution) -> int:
        return len(solution.items)

    def sniff(self, path: Path, text: str) -> str | None:
        return None  # JSON only

    def read(self, path: Path, text: str) -> Any:
        raise FormatError(f"{path}: knapsack instances are JSON only")

    def instance_from_dict(self, data: Any, where: str) -> KnapsackInstance:
        try:
            return KnapsackInstance(
                tuple(float(v) for v in data["values"]),
                tuple(int(w) for w in data["weights"]),
                int(data["capacity"]),
                str(data.get("name", "knapsack")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{where}: {exc}") from None

    def instance_to_dict(self, instance: KnapsackInstance) -> dict[str, Any]:
        return {
            "format": INSTANCE_FORMAT, "name": instance.name, "values": list(instance.values),
            "weights": list(instance.weights), "capacity": instance.capacity,
        }  # fmt: skip

    def solution_from_dict(self, data: Any, where: str) -> KnapsackSolution:
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise FormatError(f"{where}: expected an object with an 'items' list")
        return KnapsackSolution(tuple(int(i) for i in data["items"]))

    def solution_to_dict(self, solution: KnapsackSolution, instance_name: str | None = None):
        data: dict[str, Any] = {"format": SOLUTION_FORMAT, "items": list(solution.items)}
        if instance_name is not None:
            data["instance"] = instance_name
        return data


KNAPSACK = KnapsackProblem()


class GreedyKnapsack:
    """Items by value per unit of weight, while they fit."""

    name = "greedy"
    problem = "knapsack"
    description = "value density greedy"
    capabilities = Capabilities(stopping=ALL_CRITERIA)

    def available(self) -> bool:
        return True

    def supports(self, instance: KnapsackInstance) -> str | None:
        return None

    def solve(self, instance: KnapsackInstance, stop: Stop, seed: int, warm_start=()) -> Result:
        order = sorted(
            range(len(instance.values)),
            key=lambda i: -instance.values[i] / max(instance.weights[i], 1e-9),
        )
        packed, load = [], 0
        for i in order:
            if load + instance.weights[i] <= instance.capacity:
                packed.append(i)
                load += instance.weights[i]
        stop(float(sum(instance.values[i] for i in packed)))  # one iteration, its objective
        solution = KnapsackSolution(tuple(sorted(packed)))
        return finish(instance, solution, Status.FEASIBLE, solver=self.name, seed=seed, stop=stop)


class DPKnapsack:
    """Exact dynamic programme over integer weights; proves optimality, so no start is better."""

    name = "dp"
    problem = "knapsack"
    description = "exact dynamic programme"
    capabilities = Capabilities(warm_start=True, stopping=frozenset({"time"}))

    def available(self) -> bool:
        return True

    def supports(self, instance: KnapsackInstance) -> str | None:
        return None if instance.capacity <= 10_000 else "dp handles capacities up to 10000"

    def solve(self, instance: KnapsackInstance, stop: Stop, seed: int, warm_start=()) -> Result:
        cap = instance.capacity
        best = np.zeros(cap + 1)
        keep = np.zeros((len(instance.values), cap + 1), dtype=bool)
        for i, (v, w) in enumerate(zip(instance.values, instance.weights, strict=True)):
            if w <= cap:
                take = np.full(cap + 1, -np.inf)
                take[w:] = best[: cap + 1 - w] + v
                keep[i] = take > best
                best = np.maximum(best, take)
        packed, c = [], cap
        for i in reversed(range(len(instance.values))):
            if keep[i, c]:
                packed.append(i)
                c -= instance.weights[i]
        solution = KnapsackSolution(tuple(sorted(packed)))
        return finish(
            instance, solution, Status.OPTIMAL, solver=self.name, seed=seed, stop=stop,
            bound=float(best[cap]),
        )  # fmt: skip
