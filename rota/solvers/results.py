"""Result files: a :class:`~rota.solvers.base.Result` as rota JSON, and back.

Format ``"rota.result/1"``: ``problem`` (the family; ``routing`` when absent,
as in files from before families), ``instance`` (its name), ``solver``,
``status``, ``objective``, ``bound``, ``runtime``, ``seed``, ``stats`` and
``solution``, the family's solution payload (routing: the routes list) or
``null``. :func:`rota.read_solution` reads the solution out of such a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rota.errors import FormatError
from rota.files import json_safe, load_text, write_text
from rota.problems import RESULT_FORMAT, problem_named, problem_of, write_solution
from rota.solvers.base import Result, Status


def result_to_dict(result: Result, instance: Any) -> dict[str, Any]:
    """The JSON object of ``result``, a result of solving ``instance``."""
    problem = problem_of(instance)
    data = {
        "format": RESULT_FORMAT,
        "problem": problem.name,
        "instance": getattr(instance, "name", None),
        "solver": result.solver,
        "status": result.status.value,
        "objective": result.objective,
        "bound": result.bound,
        "runtime": result.runtime,
        "seed": result.seed,
        "stats": dict(result.stats),
        "solution": None,
    }
    if result.solution is not None:
        data["solution"] = problem.solution_payload(result.solution)
    return json_safe(data)


def result_from_dict(data: Any, where: str = "JSON") -> Result:
    """A :class:`Result` from its JSON object; errors name ``where`` and the field."""
    if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
        raise FormatError(f"{where}: expected a {RESULT_FORMAT!r} object")
    try:
        status = Status(data["status"])
    except (KeyError, ValueError):
        raise FormatError(f"{where}: field 'status' is {data.get('status')!r}") from None
    try:
        problem = problem_named(str(data.get("problem", "routing")))
    except ValueError as exc:
        raise FormatError(f"{where}: field 'problem': {exc}") from None
    payload = data.get("solution")
    solution = None if payload is None else problem.solution_from_payload(payload, where)
    try:
        return Result(
            objective=_number(data.get("objective")),
            solution=solution,
            status=status,
            runtime=float(data.get("runtime", 0.0)),
            solver=str(data.get("solver", "")),
            seed=int(data.get("seed", 0)),
            bound=_number(data.get("bound")),
            stats=data.get("stats") or {},
        )
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{where}: {exc}") from None


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def read_result(path: str | Path) -> Result:
    """A result file written by :func:`write`."""
    path = Path(path)
    try:
        data = json.loads(load_text(path))
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: line {exc.lineno}: invalid JSON ({exc.msg})") from None
    return result_from_dict(data, str(path))


def dumps_result(result: Result, instance: Any) -> str:
    """One-line JSON of a result, as a line of a JSON-lines results file."""
    return json.dumps(result_to_dict(result, instance))


def write(what: Result | Any, path: str | Path, instance: Any, cost: float | None = None) -> None:
    """Write a whole result or a solution; the format is chosen by ``path``'s extension.

    Parameters
    ----------
    what
        A :class:`Result`, or a solution of ``instance``.
    path
        ``.json``: a result file for a result, a solution file for a solution.
        Other extensions are the family's solution formats (``.sol`` for
        routing); a result is then written as its solution.
    instance
        The instance solved: names the family and the instance in the file.
    cost
        For formats that store a cost (``.sol``); default: the result's objective.

    Raises
    ------
    ValueError
        An unknown extension, a result without a solution for a solution
        format, or a solution the format cannot represent.
    """
    path = Path(path)
    if isinstance(what, Result):
        if path.suffix == ".json":
            write_text(path, json.dumps(result_to_dict(what, instance), indent=1) + "\n")
            return
        if what.solution is None:
            raise ValueError(f"{path}: result has no solution (status {what.status.value})")
        cost = what.objective if cost is None else cost
        what = what.solution
    write_solution(what, path, instance, cost)


__all__ = ["dumps_result", "read_result", "result_from_dict", "result_to_dict", "write"]
