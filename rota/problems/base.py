"""What every problem family declares: the :class:`Problem` description.

A family (routing, contact scheduling, expert placement, ...) is one folder
under ``rota/problems/`` holding its instance and solution types, its
evaluator, its readers and writers and its plot, and one :class:`Problem`
subclass that tells the rest of rota how to use them. Everything outside the
folder (``rota.read``, ``rota.solve``, the CLI, ``rota bench``) talks to a
family only through this description, so a new family is a folder plus one
line in :data:`rota.problems.FAMILIES`.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from rota.errors import FormatError, UnsupportedError


class Sense(enum.StrEnum):
    """Whether a family minimises or maximises its objective."""

    MIN = "min"
    MAX = "max"

    def better(self, a: float, b: float) -> bool:
        """True when objective ``a`` is strictly better than ``b``."""
        return a < b if self is Sense.MIN else a > b

    def best(self, values: Iterable[float]) -> float:
        return min(values) if self is Sense.MIN else max(values)

    def gap_pct(self, value: float, reference: float) -> float | None:
        """How much worse ``value`` is than ``reference``, in percent of the reference.

        Positive means worse, whatever the sense: ``100 * (value - ref) / |ref|``
        when minimising, ``100 * (ref - value) / |ref|`` when maximising.
        ``None`` when the reference is 0 and the value is not.
        """
        if reference == 0:
            return 0.0 if value == 0 else None
        worse = value - reference if self is Sense.MIN else reference - value
        return 100.0 * worse / abs(reference)


@dataclass(frozen=True)
class Violation:
    """One broken constraint: ``kind`` is a stable tag, ``message`` says where."""

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


class Evaluation(Protocol):
    """What a family's evaluator returns: the objective and every violation."""

    objective: float
    violations: tuple[Violation, ...]

    @property
    def feasible(self) -> bool: ...


class Problem(ABC):
    """The description of one problem family.

    Class attributes name the family and its types; the methods are the only
    way the rest of rota reads, writes, evaluates, describes and plots its
    instances and solutions.
    """

    #: Family name, as in ``rota solvers`` and the ``problem`` column of a bench.
    name: ClassVar[str]
    #: Whether the objective is minimised or maximised.
    sense: ClassVar[Sense]
    instance_type: ClassVar[type]
    solution_type: ClassVar[type]
    #: ``format`` tag of the family's JSON instances, e.g. ``"rota.routing/1"``.
    instance_format: ClassVar[str]
    #: ``format`` tags of the family's JSON solutions (the first is written).
    solution_formats: ClassVar[tuple[str, ...]]
    #: File suffixes ``rota bench`` picks up when it walks a folder.
    suffixes: ClassVar[tuple[str, ...]] = (".json", ".jsonl")
    #: Column headings for :meth:`size` and :meth:`items` in tables.
    size_label: ClassVar[str] = "size"
    items_label: ClassVar[str] = "items"
    #: Solvers of this family: name -> ``"module:attribute"`` of a zero-argument
    #: factory, imported only when the solver is used.
    solvers: ClassVar[Mapping[str, str]] = {}
    default_solver: ClassVar[str | None] = None

    # -- the model ------------------------------------------------------------------
    @abstractmethod
    def evaluate(self, instance: Any, solution: Any) -> Evaluation:
        """The objective of ``solution`` and every constraint it violates."""

    def structural_errors(self, instance: Any, solution: Any) -> list[str]:
        """Why ``solution`` is not even a solution of ``instance`` (not merely infeasible).

        Used to refuse a warm start that names things the instance does not
        have; constraint violations are the evaluator's business.
        """
        if not isinstance(solution, self.solution_type):
            return [f"expected a {self.solution_type.__name__}, got {type(solution).__name__}"]
        return []

    def summary(self, evaluation: Evaluation) -> dict[str, float]:
        """The figures ``rota evaluate`` prints for an evaluation, by column heading."""
        return {"objective": evaluation.objective}

    @abstractmethod
    def kind(self, instance: Any) -> str:
        """A short label of the instance's variant (``cvrp``, ``atsp``, ...)."""

    @abstractmethod
    def size(self, instance: Any) -> int:
        """The instance's size in the family's own unit (clients, requests, experts)."""

    @abstractmethod
    def items(self, solution: Any) -> int:
        """A count that describes a solution (routes, scheduled tracks, ...)."""

    # -- files ------------------------------------------------------------------------
    @abstractmethod
    def sniff(self, path: Path, text: str) -> str | None:
        """The name of the family's own format ``text`` (read from ``path``) is in, or None.

        Asked for every file that is not rota JSON, including JSON without a
        rota ``format`` tag (a family's own JSON format, such as SatNet weeks).
        """

    @abstractmethod
    def read(self, path: Path, text: str) -> Any:
        """The instance in a file :meth:`sniff` accepted."""

    @abstractmethod
    def instance_from_dict(self, data: Any, where: str) -> Any:
        """An instance from a decoded JSON object; errors name ``where`` and the field."""

    @abstractmethod
    def instance_to_dict(self, instance: Any) -> dict[str, Any]: ...

    @abstractmethod
    def solution_from_dict(self, data: Any, where: str) -> Any: ...

    @abstractmethod
    def solution_to_dict(self, solution: Any, instance_name: str | None = None) -> dict[str, Any]:
        """The solution as a JSON object with its ``format`` tag."""

    def solution_payload(self, solution: Any) -> Any:
        """What a result file stores as its ``solution`` field."""
        return self.solution_to_dict(solution)

    def solution_from_payload(self, data: Any, where: str) -> Any:
        return self.solution_from_dict(data, where)

    def read_solution(self, path: Path, text: str, instance: Any | None) -> Any:
        """A solution in one of the family's non-JSON formats."""
        raise FormatError(f"{path}: expected a JSON solution of a {self.name} instance")

    def write_solution(
        self, solution: Any, path: Path, instance: Any | None, cost: float | None
    ) -> None:
        """Write ``solution`` in a non-JSON format chosen by ``path``'s suffix."""
        raise ValueError(
            f"{path}: unknown solution extension {path.suffix!r} for {self.name}, expected .json"
        )

    def plot(self, instance: Any, solution: Any, path: Path, title: str | None = None) -> Path:
        """Draw ``solution`` to a PNG file."""
        raise UnsupportedError(f"{self.name} solutions have no plot")


__all__ = ["Evaluation", "Problem", "Sense", "Violation"]
