"""Readers and writers for routing instances and solutions.

:func:`read` picks the reader from the file's content (with the extension as
a hint), so a Solomon file named ``.vrp`` or a JSON file without a suffix
still reads correctly.
"""

from __future__ import annotations

from pathlib import Path

from rota.problems.io.json import (
    FormatError,
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
    write_solution as write_json_solution,
)
from rota.problems.routing import RoutingInstance, RoutingSolution

__all__ = ["FormatError", "read", "read_solution", "write_solution"]


def _sniff(path: Path) -> str:
    try:
        head = path.read_bytes()[:4096].decode("utf-8", errors="replace")
    except OSError as exc:
        raise FormatError(f"{path}: cannot read file ({exc.strerror})") from None
    stripped = head.lstrip()
    if not stripped:
        raise FormatError(f"{path}: file is empty")
    if stripped.startswith("{"):
        return "jsonl" if path.suffix == ".jsonl" else "json"
    raise FormatError(f"{path}: unrecognised instance format")


def read(path: str | Path) -> RoutingInstance:
    """Read one routing instance, choosing the reader from the content."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    kind = _sniff(path)
    if kind == "jsonl":
        instances = read_json_lines(path)
        if len(instances) != 1:
            raise FormatError(f"{path}: holds {len(instances)} instances; use read_set")
        return instances[0]
    return read_json_instance(path)


def read_solution(path: str | Path, instance: RoutingInstance | None = None) -> RoutingSolution:
    """Read a solution (rota JSON solution or result)."""
    return read_json_solution(path)


def write_solution(solution: RoutingSolution, path: str | Path, instance=None) -> None:
    write_json_solution(solution, path, None if instance is None else instance.name)
