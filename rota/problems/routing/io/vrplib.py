"""VRPLIB and TSPLIB files: the format's mechanics, and VRPLIB ``.sol`` solutions.

Instances
---------
A file is a header of ``KEY : value`` lines followed by ``*_SECTION`` blocks of
numbers, optionally ending with ``EOF``; lines starting with ``#`` are
comments. :class:`VrplibFile` splits a file into its header and sections and
reads node rows, id lists and explicit matrices (``EDGE_WEIGHT_FORMAT``
``FULL_MATRIX``, ``LOWER_ROW``, ``LOWER_DIAG_ROW``, ``UPPER_ROW``,
``UPPER_DIAG_ROW`` and their ``*_COL`` twins; numbers may wrap over lines
anywhere; the diagonal is set to 0, TSPLIB files store 9999 or 100000000
there, which is not a cost). What the sections mean is
:mod:`rota.problems.routing.io.vrplib_model`'s business.

Solutions
---------
``Route #i: c1 c2 ...`` lines with 0-based location indices and the depot
(location 0) implicit, as CVRPLIB publishes them, optionally followed by a
``Cost X`` or ``Cost: X`` line. For a fleet of several vehicle types with
finite counts, route ``i`` is vehicle slot ``i`` (empty routes allowed) and the
slot determines the vehicle type; :func:`write_solution` writes the same
convention. Instances whose depot is not location 0, or that have several
depots, are refused by the writer: the format cannot say which depot a route
uses. Use rota's JSON solution format for those.

Every malformed file raises :class:`~rota.errors.FormatError` with a
one-line message ``path: line N: ...`` or ``path: field X: ...``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np

from rota.errors import FormatError
from rota.files import load_text, matrix_bytes, require_memory, write_text
from rota.problems.routing.evaluation import evaluate
from rota.problems.routing.io.json import euclidean
from rota.problems.routing.model import Route, RoutingInstance, RoutingSolution

__all__ = ["VrplibFile", "distance_matrix", "read_solution", "write_solution"]
# Triangular formats read in the same order as their row twin: a symmetric
# matrix's upper columns are its lower rows.
_WEIGHT_FORMATS = {
    "FULL_MATRIX": "FULL_MATRIX",
    "LOWER_ROW": "LOWER_ROW",
    "UPPER_COL": "LOWER_ROW",
    "LOWER_DIAG_ROW": "LOWER_DIAG_ROW",
    "UPPER_DIAG_COL": "LOWER_DIAG_ROW",
    "UPPER_ROW": "UPPER_ROW",
    "LOWER_COL": "UPPER_ROW",
    "UPPER_DIAG_ROW": "UPPER_DIAG_ROW",
    "LOWER_DIAG_COL": "UPPER_DIAG_ROW",
}
# Header keys that carry no data rota needs but are harmless to skip.
_IGNORED_KEYS = {"NAME", "COMMENT", "DISPLAY_DATA_TYPE"}
#: Per-vehicle values given once for the whole fleet.
FLEET_KEYS = ("VEHICLES_MAX_DISTANCE", "VEHICLES_MAX_DURATION", "VEHICLES_MAX_RELOADS")
_KNOWN_KEYS = _IGNORED_KEYS | {
    "TYPE", "DIMENSION", "CAPACITY", "EDGE_WEIGHT_TYPE", "EDGE_WEIGHT_FORMAT",
    "NODE_COORD_TYPE", "VEHICLES", "SERVICE_TIME", "DISTANCE", *FLEET_KEYS,
}  # fmt: skip
#: Sections with one row of numbers per vehicle (``id value ...``).
VEHICLE_SECTIONS = (
    "CAPACITY_SECTION",
    "VEHICLES_FIXED_COST_SECTION",
    "VEHICLES_UNIT_DISTANCE_COST_SECTION",
    "VEHICLES_DEPOT_SECTION",
    "VEHICLES_MAX_DISTANCE_SECTION",
    "VEHICLES_MAX_DURATION_SECTION",
    "VEHICLES_MAX_RELOADS_SECTION",
)
#: Sections with one row of node ids per vehicle or group (``id node node ...``).
LIST_SECTIONS = (
    "VEHICLES_ALLOWED_CLIENTS_SECTION",
    "VEHICLES_RELOAD_DEPOT_SECTION",
    "MUTUALLY_EXCLUSIVE_GROUP_SECTION",
)
_NODE_SECTIONS = (
    "NODE_COORD_SECTION",
    "DISPLAY_DATA_SECTION",
    "DEMAND_SECTION",
    "LINEHAUL_SECTION",
    "BACKHAUL_SECTION",
    "SERVICE_TIME_SECTION",
    "TIME_WINDOW_SECTION",
    "RELEASE_TIME_SECTION",
    "PRIZE_SECTION",
    "PICKUP_AND_DELIVERY_SECTION",
)
_SECTIONS = {
    "DEPOT_SECTION", "EDGE_WEIGHT_SECTION", *_NODE_SECTIONS, *VEHICLE_SECTIONS, *LIST_SECTIONS,
}  # fmt: skip

_HEADER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*:(.*)")
_SECTION = re.compile(r"([A-Z][A-Z0-9_]*_SECTION)\s*:?\s*(.*)")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_ROUTE = re.compile(r"Route\s*#\s*(\S+?)\s*:(.*)", re.IGNORECASE)
_COST = re.compile(r"Cost\s*:?\s*(\S+)\s*", re.IGNORECASE)


def distance_matrix(coords: np.ndarray, rounding: str) -> np.ndarray:
    """Pairwise distances between ``coords`` under a TSPLIB/CVRPLIB convention.

    Parameters
    ----------
    coords
        ``(n, 2)`` coordinates.
    rounding
        ``"exact"``, ``"nearest"`` (``floor(d + 0.5)``, CVRPLIB's ``EUC_2D``),
        ``"floor1"`` (down to one decimal, Solomon's BKS), ``"ceil"``
        (``CEIL_2D``) or ``"att"`` (TSPLIB pseudo-Euclidean ``ATT``).
    """
    coords = np.asarray(coords, dtype=np.float64)
    if rounding in ("exact", "nearest", "floor1"):
        return euclidean(coords, rounding)
    n = coords.shape[0]
    require_memory(matrix_bytes(n, 4), f"the distance matrix of {n} locations")
    diff = coords[:, None, :] - coords[None, :, :]
    squared = (diff**2).sum(-1)
    if rounding == "ceil":
        return np.ceil(np.sqrt(squared))
    if rounding == "att":
        r = np.sqrt(squared / 10.0)
        t = np.floor(r + 0.5)
        return np.where(t < r, t + 1, t)
    raise ValueError(f"rounding is {rounding!r}, expected one of exact, nearest, floor1, ceil, att")


# -- instance parsing ----------------------------------------------------------


@dataclass
class _Section:
    line: int  # where the *_SECTION keyword is
    rows: list[tuple[int, list[str]]] = field(default_factory=list)  # (line, tokens)


class VrplibFile:
    """A VRPLIB file split into header fields and raw section rows."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.warned_order = False
        self.header: dict[str, tuple[int, str]] = {}
        self.sections: dict[str, _Section] = {}
        current: _Section | None = None
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):  # comment lines, as PyVRP's files have
                continue
            if line[0] in "0123456789+-.":
                if current is None:
                    self.fail(lineno, f"expected 'KEY : value' or *_SECTION (got {line!r})")
                current.rows.append((lineno, line.split()))
                continue
            if line == "EOF":
                break
            section = _SECTION.fullmatch(line)
            if section:
                name = section.group(1)
                if name not in _SECTIONS:
                    self.fail(lineno, f"unsupported section {name}")
                if name in self.sections:
                    self.fail(lineno, f"{name} appears twice")
                current = self.sections[name] = _Section(lineno)
                if section.group(2):
                    current.rows.append((lineno, section.group(2).split()))
                continue
            header = _HEADER.fullmatch(line)
            if header is None:
                self.fail(
                    lineno,
                    f"expected 'KEY : value', a *_SECTION keyword, numbers or EOF (got {line!r})",
                )
            key, value = header.group(1).upper(), header.group(2).strip()
            if key not in _KNOWN_KEYS:
                self.fail(lineno, f"unknown field {key}")
            if key in self.header:
                self.fail(lineno, f"field {key} appears twice")
            self.header[key] = (lineno, value)
            current = None

    # -- errors ----------------------------------------------------------------
    def fail(self, line: int, message: str) -> NoReturn:
        raise FormatError(f"{self.path}: line {line}: {message}")

    def fail_field(self, name: str, message: str) -> NoReturn:
        raise FormatError(f"{self.path}: field {name}: {message}")

    # -- header values ---------------------------------------------------------
    def text(self, key: str, default: str | None = None) -> str | None:
        return self.header[key][1] if key in self.header else default

    def word(self, key: str) -> str | None:
        """An upper-case keyword value (``TYPE``, ``EDGE_WEIGHT_TYPE``, ...)."""
        value = self.text(key)
        if value is None:
            return None
        if not value:
            self.fail(self.header[key][0], f"field {key} has no value")
        return value.split()[0].upper()

    def number(self, key: str, *, integer: bool = False, positive: bool = True) -> float | None:
        if key not in self.header:
            return None
        line, value = self.header[key]
        what = "a positive integer" if integer else "a positive number"
        if not positive:
            what = "a number >= 0"
        try:
            number = float(value)
        except ValueError:
            self.fail(line, f"field {key} must be {what} (got {value!r})")
        ok = math.isfinite(number) and (number > 0 if positive else number >= 0)
        if not ok or (integer and not number.is_integer()):
            self.fail(line, f"field {key} must be {what} (got {value!r})")
        return int(number) if integer else number

    # -- sections --------------------------------------------------------------
    def numbers(self, name: str) -> np.ndarray:
        """All numbers of a section in order; a bad token fails naming its line."""
        section = self.sections[name]
        tokens = [t for _, row in section.rows for t in row]
        try:
            values = np.array(tokens, dtype=np.float64)
        except ValueError:
            values = None
        if values is None or not np.isfinite(values).all():
            self._locate_bad_token(name)
        return values

    def _locate_bad_token(self, name: str) -> NoReturn:
        section = self.sections[name]
        for line, row in section.rows:
            for token in row:
                if not _NUMBER.fullmatch(token):
                    self.fail(line, f"{name}: expected a finite number (got {token!r})")
        self.fail(section.line, f"{name}: holds a value that is not a finite number")

    def node_rows(
        self,
        name: str,
        columns: Sequence[str] | None,
        n: int,
        count_field: str = "DIMENSION",
    ) -> np.ndarray:
        """A section of ``id value...`` rows, one per id ``1..n``, ordered by id.

        ``columns`` names the values of a row; ``None`` takes as many as the
        first row has (one per load dimension), the same in every row.
        """
        section = self.sections[name]
        if columns is None:
            first = len(section.rows[0][1]) - 1 if section.rows else 1
            columns = tuple(f"value{k + 1}" for k in range(max(first, 1)))
        width = len(columns) + 1
        layout = " ".join(("id", *columns))
        values = self.numbers(name)  # as many as the file holds: safe to allocate
        if len(section.rows) < n:  # before allocating n rows: DIMENSION may claim anything
            ids = {row[0] for _, row in section.rows if row}
            missing = next(i for i in range(1, len(section.rows) + 2) if str(i) not in ids)
            given = len(section.rows)
            self.fail_field(
                name, f"{count_field} is {n} but {given} rows are given (id {missing} missing)"
            )
        out = np.empty((n, len(columns)))
        seen = np.zeros(n, dtype=bool)
        for line, row in section.rows:
            if len(row) != width:
                self.fail(line, f"{name}: expected {width} numbers '{layout}' (got {len(row)})")
        table = values.reshape(-1, width)
        ids = table[:, 0]
        if self._in_file_order(ids, n):
            return table[:, 1:].copy()
        for (line, _), record in zip(section.rows, table, strict=True):
            node = record[0]
            if not node.is_integer() or not 1 <= node <= n:
                self.fail(line, f"{name}: id must be an integer in 1..{n} (got {node:g})")
            i = int(node) - 1
            if seen[i]:
                self.fail(line, f"{name}: id {i + 1} appears twice")
            seen[i] = True
            out[i] = record[1:]
        if not seen.all():
            missing = int(np.flatnonzero(~seen)[0]) + 1
            given = int(seen.sum())
            self.fail_field(
                name, f"{count_field} is {n} but {given} rows are given (id {missing} missing)"
            )
        return out

    def _in_file_order(self, ids: np.ndarray, n: int) -> bool:
        """Whether rows numbered ``0..n-1`` (or ``0, 2..n``, as some converted Li and Lim
        files are) are to be taken in file order, as PyVRP reads them; says so once."""
        if len(ids) != n or ids.min() != 0 or ids.max() > n:
            return False
        if not (np.all(ids == np.floor(ids)) and len(np.unique(ids)) == n):
            return False
        if not self.warned_order:
            warnings.warn(
                f"{self.path}: node ids start at 0, not 1; rows are read in file order, as "
                "PyVRP reads them",
                stacklevel=3,
            )
            self.warned_order = True
        return True

    def id_lists(self, name: str, count: int, n: int) -> list[tuple[int, ...]]:
        """A section of ``id node node ...`` rows (ids ``1..count``), as 0-based node tuples."""
        lists: list[tuple[int, ...] | None] = [None] * count
        for line, row in self.sections[name].rows:
            try:
                values = [int(token) for token in row]
            except ValueError:
                self.fail(line, f"{name}: expected integer ids (got {' '.join(row)[:40]!r})")
            key, nodes = values[0], values[1:]
            if not 1 <= key <= count:
                self.fail(line, f"{name}: row id must be in 1..{count} (got {key})")
            if lists[key - 1] is not None:
                self.fail(line, f"{name}: row id {key} appears twice")
            for node in nodes:
                if not 1 <= node <= n:
                    self.fail(line, f"{name}: node id must be in 1..{n} (got {node})")
            lists[key - 1] = tuple(node - 1 for node in nodes)
        return [() if row is None else row for row in lists]

    def depots(self, n: int) -> list[int]:
        section = self.sections["DEPOT_SECTION"]
        depots: list[int] = []
        ended = False
        for line, row in section.rows:
            for token in row:
                if ended:
                    self.fail(line, f"DEPOT_SECTION: number after the closing -1 (got {token!r})")
                try:
                    node = int(token)
                except ValueError:
                    self.fail(line, f"DEPOT_SECTION: expected a node id or -1 (got {token!r})")
                if node == -1:
                    ended = True
                    continue
                if not 1 <= node <= n:
                    self.fail(line, f"DEPOT_SECTION: node id must be in 1..{n} (got {node})")
                if node - 1 in depots:
                    self.fail(line, f"DEPOT_SECTION: node {node} appears twice")
                depots.append(node - 1)
        if not depots:
            self.fail(section.line, "DEPOT_SECTION names no depot")
        return depots

    def edge_weights(self, n: int) -> tuple[np.ndarray, bool]:
        """The explicit matrix, and whether its file diagonal held nonzero values."""
        fmt_name = self.word("EDGE_WEIGHT_FORMAT")
        if fmt_name is None:
            self.fail_field("EDGE_WEIGHT_FORMAT", "missing; EDGE_WEIGHT_TYPE EXPLICIT needs it")
        if fmt_name not in _WEIGHT_FORMATS:
            self.fail(
                self.header["EDGE_WEIGHT_FORMAT"][0],
                f"field EDGE_WEIGHT_FORMAT must be one of {', '.join(_WEIGHT_FORMATS)} "
                f"(got {fmt_name})",
            )
        if "EDGE_WEIGHT_SECTION" not in self.sections:
            self.fail_field("EDGE_WEIGHT_SECTION", "missing; EDGE_WEIGHT_TYPE EXPLICIT needs it")
        values = self.numbers("EDGE_WEIGHT_SECTION")
        fmt = _WEIGHT_FORMATS[fmt_name]
        needed = {
            "FULL_MATRIX": n * n,
            "LOWER_ROW": n * (n - 1) // 2,
            "LOWER_DIAG_ROW": n * (n + 1) // 2,
            "UPPER_ROW": n * (n - 1) // 2,
            "UPPER_DIAG_ROW": n * (n + 1) // 2,
        }[fmt]
        if values.size != needed:  # before allocating: DIMENSION may claim anything
            self.fail(
                self.sections["EDGE_WEIGHT_SECTION"].line,
                f"EDGE_WEIGHT_SECTION: {fmt_name} with DIMENSION {n} needs {needed} numbers "
                f"(got {values.size})",
            )
        if fmt == "FULL_MATRIX":
            rows, cols = np.indices((n, n)).reshape(2, -1)
        elif fmt == "LOWER_ROW":
            rows, cols = np.tril_indices(n, -1)
        elif fmt == "LOWER_DIAG_ROW":
            rows, cols = np.tril_indices(n)
        elif fmt == "UPPER_ROW":
            rows, cols = np.triu_indices(n, 1)
        else:
            rows, cols = np.triu_indices(n)
        matrix = np.zeros((n, n))
        matrix[rows, cols] = values
        if fmt != "FULL_MATRIX":
            matrix[cols, rows] = values
        nonzero_diagonal = bool(np.diag(matrix).any())
        np.fill_diagonal(matrix, 0.0)
        return matrix, nonzero_diagonal


# -- solutions -----------------------------------------------------------------


def _slot_types(instance: RoutingInstance, where: str) -> list[int] | None:
    """Vehicle type of each slot, or ``None`` when every route is type 0."""
    types = instance.vehicle_types
    if len(types) == 1:
        return None
    unlimited = [k for k, vt in enumerate(types) if vt.count is None]
    if unlimited:
        raise FormatError(
            f"{where}: vehicle type {unlimited[0]} of {instance.name} has no count, so routes "
            "cannot be mapped to vehicle slots; use rota's JSON solution format"
        )
    return [k for k, vt in enumerate(types) for _ in range(vt.count)]


def read_solution(
    path: str | Path, instance: RoutingInstance | None = None, *, text: str | None = None
) -> tuple[RoutingSolution, float | None]:
    """Read a VRPLIB ``.sol`` file.

    Parameters
    ----------
    path
        The file.
    instance
        Needed to give each route its vehicle type when the fleet has
        several types (route ``i`` is vehicle slot ``i``); without it every
        route is vehicle type 0.
    text
        The file's content when the caller already read it.

    Returns
    -------
    tuple
        The solution and the value of the last ``Cost`` line (``None`` if absent).
    """
    path = Path(path)
    text = load_text(path) if text is None else text
    slots = None if instance is None else _slot_types(instance, str(path))
    routes: list[Route] = []
    cost = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        match = _ROUTE.fullmatch(line)
        if match:
            if cost is not None:
                raise FormatError(f"{path}: line {lineno}: route after the Cost line")
            number = match.group(1)
            if number != str(len(routes) + 1):
                raise FormatError(
                    f"{path}: line {lineno}: expected 'Route #{len(routes) + 1}:' (got {number!r})"
                )
            visits = []
            for token in match.group(2).split():
                try:
                    visit = int(token)
                except ValueError:
                    raise FormatError(
                        f"{path}: line {lineno}: expected a client index (got {token[:40]!r})"
                    ) from None
                if not 0 <= visit < 2**62:
                    raise FormatError(
                        f"{path}: line {lineno}: client index {token[:24]}"
                        f"{'…' if len(token) > 24 else ''} is out of range"
                    )
                visits.append(visit)
            vehicle_type = 0
            if slots is not None:
                if len(routes) >= len(slots):
                    raise FormatError(
                        f"{path}: line {lineno}: route #{len(routes) + 1} but {instance.name} "
                        f"has {len(slots)} vehicles"
                    )
                vehicle_type = slots[len(routes)]
            routes.append(Route(tuple(visits), vehicle_type))
            continue
        match = _COST.fullmatch(line)
        if match:
            try:
                cost = float(match.group(1))
            except ValueError:
                cost = math.nan
            if not math.isfinite(cost):
                raise FormatError(
                    f"{path}: line {lineno}: expected a finite cost (got {match.group(1)!r})"
                )
            continue
        raise FormatError(
            f"{path}: line {lineno}: expected 'Route #i: ...' or 'Cost X' (got {line[:40]!r})"
        )
    if not routes:
        raise FormatError(f"{path}: no 'Route #i:' line")
    return RoutingSolution(tuple(routes)), cost


def _format_cost(cost: float) -> str:
    return str(int(cost)) if float(cost).is_integer() else repr(float(cost))


def write_solution(
    solution: RoutingSolution,
    path: str | Path,
    instance: RoutingInstance | None = None,
    cost: float | None = None,
) -> None:
    """Write ``solution`` as a VRPLIB ``.sol`` file.

    Parameters
    ----------
    solution
        The routes.
    path
        Where to write.
    instance
        Needed for fleets of several vehicle types (routes are placed in the
        vehicle slots of their type, in order) and to compute the cost when
        ``cost`` is not given.
    cost
        Value of the ``Cost`` line; defaults to the evaluator's objective
        when ``instance`` is given, else no ``Cost`` line is written.

    Raises
    ------
    ValueError
        When the format cannot represent the solution: a depot other than
        location 0, several depots, or routes that do not fit the vehicle slots.
    """
    path = Path(path)
    where = f"{path}"
    routes = list(solution.routes)
    if instance is None:
        bad = [r for r in routes if r.vehicle_type != 0]
        if bad:
            raise ValueError(
                f"{where}: route uses vehicle type {bad[0].vehicle_type}; pass the instance "
                "so that routes can be placed in vehicle slots"
            )
    else:
        if tuple(instance.depots) != (0,):
            raise ValueError(
                f"{where}: {instance.name} has depots {list(instance.depots)}; the .sol format "
                "assumes depot 0 only, use a .json solution"
            )
        slots = _slot_types(instance, where)
        if slots is None:
            bad = [r for r in routes if r.vehicle_type != 0]
            if bad:
                raise ValueError(
                    f"{where}: route uses vehicle type {bad[0].vehicle_type} but "
                    f"{instance.name} has one vehicle type"
                )
        else:
            routes = _place_in_slots(routes, slots, instance, where)
        if cost is None:
            cost = evaluate(instance, solution).objective
    lines = [
        f"Route #{i}: {' '.join(str(v) for v in route.visits)}".rstrip() + "\n"
        for i, route in enumerate(routes, 1)
    ]
    if cost is not None:
        lines.append(f"Cost {_format_cost(cost)}\n")
    write_text(path, "".join(lines))


def _place_in_slots(
    routes: list[Route], slots: list[int], instance: RoutingInstance, where: str
) -> list[Route]:
    """Routes in slot order; empty routes are kept in place when they fit, else dropped."""
    for candidates in (routes, [r for r in routes if r.visits]):
        placed: list[Route] = [Route((), k) for k in slots]
        free = {k: [i for i, s in enumerate(slots) if s == k] for k in set(slots)}
        for route in candidates:
            k = route.vehicle_type
            if k not in free:
                raise ValueError(
                    f"{where}: route uses vehicle type {k}, which {instance.name} does not have"
                )
            if not free[k]:
                break
            placed[free[k].pop(0)] = route
        else:
            return placed
    count = instance.vehicle_types[k].count
    raise ValueError(
        f"{where}: more than {count} routes use vehicle type {k}; the .sol format "
        "cannot hold them, use a .json solution"
    )
