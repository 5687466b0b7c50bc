"""Readers and writers for routing instances and solutions.

:func:`read` picks the reader from the file's content (with the extension as
a hint), so a Solomon file named ``.vrp`` or a JSON file without a suffix
still reads correctly:

- a JSON object: rota's JSON instance (:mod:`rota.problems.io.json`); a
  JSON-lines file (one object per line, or a ``.jsonl`` suffix) holding one
  instance;
- a name line followed by a ``VEHICLE`` / ``NUMBER CAPACITY`` block: Solomon
  (:mod:`rota.problems.io.solomon`);
- ``KEY : value`` header lines (``NAME``, ``TYPE``, ``DIMENSION``, ...):
  VRPLIB/TSPLIB (:mod:`rota.problems.io.vrplib`).

Every malformed or unreadable file raises :class:`FormatError` (a
``ValueError``) with a one-line message naming the file and the line or field.
"""

from __future__ import annotations

import re
from json import JSONDecodeError
from json import loads as json_loads
from pathlib import Path

from rota.problems.io import solomon, vrplib
from rota.problems.io.json import (
    FormatError,
    dumps_instance,
    write_result,
)
from rota.problems.io.json import (
    read_instance as read_json_instance,
)
from rota.problems.io.json import (
    read_instances as read_json_lines,
)
from rota.problems.io.json import (
    read_solution as read_json_solution,
)
from rota.problems.io.json import (
    write_instance as write_json_instance,
)
from rota.problems.io.json import (
    write_solution as write_json_solution,
)
from rota.problems.io.vrplib import load_text
from rota.problems.routing import RoutingInstance, RoutingSolution
from rota.solvers.base import Result

__all__ = [
    "FormatError", "read", "read_set", "read_solution", "write_solution", "write_instance",
    "sniff",
]  # fmt: skip

_VRPLIB_KEY = re.compile(
    r"(NAME|TYPE|DIMENSION|COMMENT|CAPACITY|EDGE_WEIGHT_TYPE|EDGE_WEIGHT_FORMAT|VEHICLES)\s*:",
    re.IGNORECASE,
)


def _is_json_lines(path: Path, text: str) -> bool:
    if path.suffix == ".jsonl":
        return True
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        return isinstance(json_loads(lines[0]), dict)
    except JSONDecodeError:
        return False


def sniff(path: str | Path, text: str | None = None) -> str:
    """The format of an instance file: ``json``, ``jsonl``, ``solomon`` or ``vrplib``.

    Raises
    ------
    FormatError
        When the file is missing, empty, binary or in none of these formats.
    """
    path = Path(path)
    text = load_text(path) if text is None else text
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return "jsonl" if _is_json_lines(path, text) else "json"
    if solomon.looks_like_solomon(text):
        return "solomon"
    head = [line.strip() for line in text[:4096].splitlines() if line.strip()][:20]
    if any(_VRPLIB_KEY.match(line) for line in head):
        return "vrplib"
    first = head[0] if head else ""
    raise FormatError(
        f"{path}: line 1: expected a JSON instance, a Solomon file or a VRPLIB/TSPLIB header "
        f"(got {first[:40]!r})"
    )


def read(path: str | Path) -> RoutingInstance:
    """Read one routing instance, choosing the reader from the content.

    Parameters
    ----------
    path
        A rota JSON (or one-instance JSON-lines) file, a Solomon ``.txt``, or
        a VRPLIB/TSPLIB file (``.vrp``, ``.tsp``, ``.atsp``).

    Returns
    -------
    RoutingInstance
        Validated; ``metadata`` records the source file and the distance convention.

    Raises
    ------
    FormatError
        One line naming the file and the line or field at fault.
    """
    path = Path(path)
    text = load_text(path)
    kind = sniff(path, text)
    if kind == "jsonl":
        instances = read_json_lines(path)
        if len(instances) != 1:
            raise FormatError(f"{path}: holds {len(instances)} instances, expected 1; use read_set")
        return instances[0]
    if kind == "json":
        return read_json_instance(path)
    if kind == "solomon":
        return solomon.read_instance(path, text=text)
    return vrplib.read_instance(path, text=text)


def read_set(path: str | Path) -> list[RoutingInstance]:
    """Every instance of a JSON-lines set, or the single instance of any other file.

    Raises
    ------
    FormatError
        When the file is malformed or a JSON-lines file holds no instance.
    """
    path = Path(path)
    text = load_text(path)
    if sniff(path, text) == "jsonl":
        instances = read_json_lines(path)
        if not instances:
            raise FormatError(f"{path}: holds no instance")
        return instances
    return [read(path)]


def read_solution(path: str | Path, instance: RoutingInstance | None = None) -> RoutingSolution:
    """Read a solution: rota JSON (solution or result) or VRPLIB ``.sol``.

    Parameters
    ----------
    path
        The file.
    instance
        For ``.sol`` files of a fleet with several vehicle types: route ``i``
        is vehicle slot ``i`` of the instance. Without it every route is
        vehicle type 0.

    Raises
    ------
    FormatError
        One line naming the file and the line or field at fault.
    """
    path = Path(path)
    text = load_text(path)
    if text.lstrip().startswith("{"):
        return read_json_solution(path)
    return vrplib.read_solution(path, instance, text=text)[0]


def write_solution(
    solution: RoutingSolution | Result,
    path: str | Path,
    instance: RoutingInstance | None = None,
    cost: float | None = None,
) -> None:
    """Write a solution (or a whole :class:`Result`), the format chosen by extension.

    Parameters
    ----------
    solution
        The routes, or a result (its solution, objective and status).
    path
        ``.json``: rota JSON (a result file when ``solution`` is a
        :class:`Result`, else a solution file; ``cost`` is not stored there).
        ``.sol``: VRPLIB routes with a ``Cost`` line.
    instance
        Names the instance in JSON files; for ``.sol`` files places routes in
        the vehicle slots of their type and gives the default cost.
    cost
        ``Cost`` line of a ``.sol`` file; defaults to the result's objective
        or, given the instance, the evaluator's objective.

    Raises
    ------
    ValueError
        For an unknown extension, or a solution the ``.sol`` format cannot
        represent (see :func:`rota.problems.io.vrplib.write_solution`).
    """
    path = Path(path)
    name = None if instance is None else instance.name
    if isinstance(solution, Result):
        if path.suffix == ".json":
            write_result(solution, path, name)
            return
        if solution.solution is None:
            raise ValueError(f"{path}: result has no solution (status {solution.status.value})")
        cost = solution.objective if cost is None else cost
        solution = solution.solution
    if path.suffix == ".json":
        write_json_solution(solution, path, name)
    elif path.suffix == ".sol":
        vrplib.write_solution(solution, path, instance, cost)
    else:
        raise ValueError(
            f"{path}: unknown solution extension {path.suffix!r}, expected .json or .sol"
        )


def write_instance(instance: RoutingInstance, path: str | Path) -> None:
    """Write ``instance`` as rota JSON (``.json``) or as a one-line JSON-lines set (``.jsonl``).

    Raises
    ------
    ValueError
        For another extension: only JSON keeps every field of an instance.
    """
    path = Path(path)
    if path.suffix == ".json":
        write_json_instance(instance, path)
    elif path.suffix == ".jsonl":
        path.write_text(dumps_instance(instance) + "\n")
    else:
        raise ValueError(
            f"{path}: unknown instance extension {path.suffix!r}, expected .json or .jsonl"
        )
