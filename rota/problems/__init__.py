"""Problem families, and reading, writing and evaluating any family's files.

Each family is a folder (``routing/``, ...) with one :class:`~rota.problems.base.Problem`
description, registered in :data:`FAMILIES`. The functions here serve every
family through that description:

- :func:`read` asks each family's sniffer in turn, after rota's JSON formats,
  whose ``format`` tag names the family (``"rota.routing/1"``);
- :func:`evaluate` calls the evaluator of the instance's own family;
- :func:`read_solution` / :func:`write_solution` / :func:`write_instance`
  handle rota JSON for every family and hand other formats to the family.

Every malformed or unreadable file raises :class:`~rota.errors.FormatError`
with a one-line message naming the file and the line or field.
"""

from __future__ import annotations

import functools
import importlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rota.errors import FormatError
from rota.files import load_text, write_text
from rota.problems.base import Evaluation, Problem, Sense, Violation

#: family name -> ``"module:attribute"`` of its :class:`Problem`; imported on first use.
FAMILIES: dict[str, str] = {
    "routing": "rota.problems.routing:ROUTING",
    "contacts": "rota.problems.contacts:CONTACTS",
    "placement": "rota.problems.placement:PLACEMENT",
}

#: ``format`` tag of a result file (written by :mod:`rota.solvers.results`);
#: a solution is read out of one whatever the family.
RESULT_FORMAT = "rota.result/1"


def register_problem(name: str, target: str) -> None:
    """Register a family at run time (``"module:attribute"`` of its :class:`Problem`).

    A family that is part of rota is a line in :data:`FAMILIES` instead; this
    is for families that live elsewhere (a plug-in, a test).
    """
    FAMILIES[name] = target
    problem_named.cache_clear()


@functools.cache
def problem_named(name: str) -> Problem:
    """The family registered as ``name``."""
    if name not in FAMILIES:
        raise ValueError(f"unknown problem {name!r}; known problems: {', '.join(FAMILIES)}")
    module, attribute = FAMILIES[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def problems() -> Iterator[Problem]:
    """Every registered family, in registration order."""
    return (problem_named(name) for name in FAMILIES)


def problem_of(thing: Any) -> Problem:
    """The family whose instance or solution type ``thing`` is."""
    for problem in problems():
        if isinstance(thing, problem.instance_type | problem.solution_type):
            return problem
    raise ValueError(f"{type(thing).__name__} is not an instance or solution of a rota problem")


def _problem_of_format(tag: Any, where: str, *, solution: bool = False) -> Problem:
    for problem in problems():
        tags = problem.solution_formats if solution else (problem.instance_format,)
        if tag in tags:
            return problem
    known = [
        t
        for p in problems()
        for t in ((*p.solution_formats, RESULT_FORMAT) if solution else (p.instance_format,))
    ]
    raise FormatError(f"{where}: field 'format' is {tag!r}, expected one of {', '.join(known)}")


def evaluate(instance: Any, solution: Any) -> Evaluation:
    """The objective of ``solution`` and every constraint it breaks, by the instance's family."""
    return problem_of(instance).evaluate(instance, solution)


# -- instances ------------------------------------------------------------------------


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{where}: line {exc.lineno}: invalid JSON ({exc.msg})") from None


def _is_json_lines(path: Path, text: str) -> bool:
    if path.suffix == ".jsonl":
        return True
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        return isinstance(json.loads(lines[0]), dict)
    except json.JSONDecodeError:
        return False


def instance_from_dict(data: Any, where: str) -> Any:
    """An instance of any family from a decoded JSON object, by its ``format`` tag.

    An object without a tag is taken as routing, rota's first format.
    """
    if not isinstance(data, dict):
        raise FormatError(f"{where}: expected a JSON object, got {type(data).__name__}")
    tag = data.get("format")
    problem = problem_named("routing") if tag is None else _problem_of_format(tag, where)
    return problem.instance_from_dict(data, where)


def sniff(path: str | Path, text: str | None = None) -> str:
    """The format of an instance file: ``json``, ``jsonl`` or a family's own
    (``solomon``, ``vrplib``, ...).

    Raises
    ------
    FormatError
        When the file is missing, empty, binary or in no family's format.
    """
    return _sniff(Path(path), load_text(path) if text is None else text)[0]


def _sniff(path: Path, text: str) -> tuple[str, Problem | None]:
    """The format of a file and its family (``None`` for a set: each line names its own)."""
    if text.lstrip().startswith("{"):
        if _is_json_lines(path, text):
            return "jsonl", None
        data = _json(text, str(path))
        tag = data.get("format") if isinstance(data, dict) else None
        if tag is not None:
            return "json", _problem_of_format(tag, str(path))
        # JSON without a rota tag: a family's own JSON format (SatNet weeks), else routing
        for problem in problems():
            name = problem.sniff(path, text)
            if name is not None:
                return name, problem
        return "json", problem_named("routing")
    for problem in problems():
        name = problem.sniff(path, text)
        if name is not None:
            return name, problem
    head = [line.strip() for line in text[:4096].splitlines() if line.strip()]
    first = head[0] if head else ""
    raise FormatError(
        f"{path}: line 1: expected a rota JSON instance or a file of a known format "
        f"(Solomon, VRPLIB/TSPLIB, SatNet) (got {first[:40]!r})"
    )


def _read_lines(path: Path, text: str) -> list[Any]:
    instances = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}: line {lineno}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{where}: invalid JSON ({exc.msg})") from None
        instances.append(instance_from_dict(data, where))
    return instances


def read(path: str | Path) -> Any:
    """Read one instance of any family, choosing the reader from the content.

    Parameters
    ----------
    path
        A rota JSON file (or a JSON-lines set holding one instance), or a file
        in a family's own format (VRPLIB/TSPLIB, Solomon, ...).

    Returns
    -------
    The validated, immutable instance; for routing a
    :class:`~rota.problems.routing.RoutingInstance` whose ``metadata`` records
    the source file and the distance convention.

    Raises
    ------
    FormatError
        One line naming the file and the line or field at fault.
    """
    path = Path(path)
    text = load_text(path)
    kind, problem = _sniff(path, text)
    if kind == "jsonl":
        instances = _read_lines(path, text)
        if len(instances) != 1:
            raise FormatError(
                f"{path}: holds {len(instances)} instances, expected one here "
                "(`rota solve` and `rota bench` take whole sets)"
            )
        return instances[0]
    if kind == "json":
        return problem.instance_from_dict(_json(text, str(path)), str(path))
    return problem.read(path, text)


def read_set(path: str | Path) -> list[Any]:
    """Every instance of a JSON-lines set, or the single instance of any other file.

    Raises
    ------
    FormatError
        When the file is malformed or a JSON-lines set holds no instance.
    """
    path = Path(path)
    text = load_text(path)
    if _sniff(path, text)[0] == "jsonl":
        instances = _read_lines(path, text)
        if not instances:
            raise FormatError(f"{path}: holds no instance")
        return instances
    return [read(path)]


def dumps_instance(instance: Any) -> str:
    """One-line JSON of ``instance``, as a line of a JSON-lines set."""
    data = problem_of(instance).instance_to_dict(instance)
    return json.dumps(data, separators=(",", ":"))


def write_instance(instance: Any, path: str | Path) -> None:
    """Write ``instance`` as rota JSON (``.json``) or a one-line JSON-lines set (``.jsonl``).

    Raises
    ------
    ValueError
        For another extension: only JSON keeps every field of an instance.
    """
    path = Path(path)
    if path.suffix not in (".json", ".jsonl"):
        raise ValueError(
            f"{path}: unknown instance extension {path.suffix!r}, expected .json or .jsonl"
        )
    # Compact even in .json: an indented (n, n) matrix puts one number per line.
    write_text(path, dumps_instance(instance) + "\n")


# -- solutions -------------------------------------------------------------------------


def solution_from_json(data: Any, where: str, instance: Any | None = None) -> Any:
    """A solution from a decoded solution or result JSON object.

    The family is the instance's when one is given, else the one the object
    names (a result's ``problem`` field, a solution's ``format`` tag).
    """
    if not isinstance(data, dict):
        raise FormatError(f"{where}: expected a JSON object, got {type(data).__name__}")
    named, actual = data.get("instance"), getattr(instance, "name", None)
    if instance is not None and named is not None and named != actual:
        warnings.warn(
            f"{where}: is a solution of {named!r}, read for instance {actual!r}", stacklevel=2
        )
    tag = data.get("format")
    if tag == RESULT_FORMAT:
        name = data.get("problem", "routing")
        problem = problem_of(instance) if instance is not None else problem_named(str(name))
        if name != problem.name:
            raise FormatError(
                f"{where}: holds a {name} result, but the instance is a {problem.name} instance"
            )
        if data.get("solution") is None:
            raise FormatError(f"{where}: result has no solution (status {data.get('status')})")
        return problem.solution_from_payload(data["solution"], where)
    if instance is not None:
        problem = problem_of(instance)
        if tag is not None and tag not in problem.solution_formats:
            raise FormatError(
                f"{where}: field 'format' is {tag!r}, expected "
                f"{' or '.join((*problem.solution_formats, RESULT_FORMAT))}"
            )
    else:
        problem = (
            problem_named("routing")
            if tag is None
            else _problem_of_format(tag, where, solution=True)
        )
    return problem.solution_from_dict(data, where)


def read_solution(path: str | Path, instance: Any | None = None) -> Any:
    """Read a solution: rota JSON (a solution or a whole result) or a family's own format.

    Parameters
    ----------
    path
        The file.
    instance
        The instance it solves: picks the family, and some formats need it
        (VRPLIB ``.sol`` files of a fleet with several vehicle types map route
        ``i`` to vehicle slot ``i``).

    Raises
    ------
    FormatError
        One line naming the file and the line or field at fault.
    """
    path = Path(path)
    text = load_text(path)
    if text.lstrip().startswith("{"):
        return solution_from_json(_json(text, str(path)), str(path), instance)
    problem = problem_of(instance) if instance is not None else problem_named("routing")
    return problem.read_solution(path, text, instance)


def write_solution(
    solution: Any, path: str | Path, instance: Any | None = None, cost: float | None = None
) -> None:
    """Write a solution, the format chosen by extension.

    Parameters
    ----------
    solution
        The solution.
    path
        ``.json``: rota JSON, naming the instance when one is given. Any other
        extension goes to the family (``.sol`` for routing).
    instance
        Names the instance in JSON files; formats such as ``.sol`` need it to
        place routes in vehicle slots and to compute the default cost.
    cost
        Cost recorded by formats that store one (the ``Cost`` line of ``.sol``).

    Raises
    ------
    ValueError
        For an unknown extension, or a solution the format cannot represent.
    """
    path = Path(path)
    problem = problem_of(solution)
    if path.suffix == ".json":
        name = None if instance is None else getattr(instance, "name", None)
        data = problem.solution_to_dict(solution, name)
        write_text(path, json.dumps(data, indent=1) + "\n")
    else:
        problem.write_solution(solution, path, instance, cost)


__all__ = [
    "FAMILIES", "RESULT_FORMAT", "Evaluation", "Problem", "Sense", "Violation", "dumps_instance",
    "evaluate", "instance_from_dict", "problem_named", "problem_of", "problems", "read",
    "read_set", "read_solution", "register_problem", "sniff", "solution_from_json",
    "write_instance",
    "write_solution",
]  # fmt: skip
