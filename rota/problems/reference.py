"""Best-known and optimal objective values stored beside instance files.

For an instance file ``dir/NAME.ext`` the reference is looked up, in order:

1. ``dir/OPTIMA.txt``: proven optima (``kind="optimal"``);
2. ``dir/NAME.sol`` (``kind="bks"``): given the instance, the evaluator's
   objective of its routes, else its last ``Cost`` line;
3. ``dir/BKS.txt``: best-known values (``kind="bks"``).

Evaluating the routes guards against ``Cost`` lines in another convention
(PyVRP's test data states one heterogeneous-fleet cost in its scaled integer
units, 10^5 times the instance's) and gives files with routes and no
``Cost`` line a reference. A ``.sol`` whose routes the evaluator finds
infeasible is no reference at all.

``OPTIMA.txt`` and ``BKS.txt`` hold ``name value`` lines; ``#`` starts a
comment. Names are matched against the file's stem.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rota.errors import FormatError
from rota.files import load_text

__all__ = ["Reference", "read_table", "reference_cost", "reference_files"]

_COST = re.compile(r"Cost\s*:?\s*(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class Reference:
    """A reference objective value for an instance.

    Attributes
    ----------
    value
        The objective, in the units of the instance's own convention.
    kind
        ``"optimal"`` (proven) or ``"bks"`` (best known).
    source
        The file it came from.
    """

    value: float
    kind: str
    source: str


def read_table(path: str | Path) -> dict[str, float]:
    """``name value`` lines of an ``OPTIMA.txt``/``BKS.txt`` file, ``#`` comments skipped."""
    path = Path(path)
    table: dict[str, float] = {}
    for lineno, raw in enumerate(load_text(path).splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        if len(tokens) != 2:
            raise FormatError(f"{path}: line {lineno}: expected 'name value' (got {line!r})")
        name, text = tokens
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise FormatError(
                f"{path}: line {lineno}: value of {name} is not a number (got {text!r})"
            )
        if name in table:
            raise FormatError(f"{path}: line {lineno}: {name} appears twice")
        table[name] = value
    return table


def _last_cost(path: Path) -> float | None:
    cost = None
    for lineno, raw in enumerate(load_text(path).splitlines(), 1):
        match = _COST.fullmatch(raw.strip())
        if match:
            try:
                cost = float(match.group(1))
            except ValueError:
                raise FormatError(
                    f"{path}: line {lineno}: expected a number after Cost (got {match.group(1)!r})"
                ) from None
    return cost


def reference_files(path: str | Path) -> list[Path]:
    """The files :func:`reference_cost` may read for the instance file ``path``.

    Writers refuse them as outputs: overwriting one silently changes every
    later gap.
    """
    path = Path(path)
    return [path.parent / "OPTIMA.txt", path.with_suffix(".sol"), path.parent / "BKS.txt"]


def _solution_cost(solution_path: Path, instance: Any | None) -> float | None:
    """The reference a ``.sol`` file gives ``instance``; ``None`` when it gives none."""
    if instance is not None:
        from rota.problems import evaluate, read_solution

        try:
            solution = read_solution(solution_path, instance)
        except (FormatError, ValueError):
            solution = None  # routes rota cannot read: the Cost line stands alone
        if solution is not None:
            evaluation = evaluate(instance, solution)
            return float(evaluation.objective) if evaluation.feasible else None
    return _last_cost(solution_path)


def reference_cost(path: str | Path, instance: Any | None = None) -> Reference | None:
    """The best-known or optimal objective for the instance file ``path``.

    Parameters
    ----------
    path
        An instance file; its folder is searched as the module docstring says.
    instance
        The instance read from ``path``: when given, a ``.sol`` file's routes
        are evaluated rather than its ``Cost`` line trusted.

    Returns
    -------
    Reference or None
        ``None`` when no reference is stored for this instance.

    Raises
    ------
    FormatError
        When a reference file exists but is malformed.
    """
    path = Path(path)
    folder, name = path.parent, path.stem
    optima = folder / "OPTIMA.txt"
    if optima.is_file():
        table = read_table(optima)
        if name in table:
            return Reference(table[name], "optimal", str(optima))
    solution = folder / f"{name}.sol"
    if solution.is_file() and solution != path:
        cost = _solution_cost(solution, instance)
        if cost is not None:
            return Reference(cost, "bks", str(solution))
    best = folder / "BKS.txt"
    if best.is_file():
        table = read_table(best)
        if name in table:
            return Reference(table[name], "bks", str(best))
    return None
