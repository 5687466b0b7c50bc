"""Solomon (1987) VRPTW instances (``.txt``).

Layout::

    C101

    VEHICLE
    NUMBER     CAPACITY
      25         200

    CUSTOMER
    CUST NO.  XCOORD.   YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE   TIME

        0      40         50          0          0       1236          0
        1      45         68         10        912        967         90
    ...

Customer 0 is the depot and its window is the planning horizon. Distances
are Euclidean truncated down to one decimal, ``floor(10 d) / 10``: that is
the convention of the published best-known solutions (C101's 827.3 evaluates
exactly and every published route is time-window feasible with it). Travel
time equals distance (``duration`` is left ``None``). The fleet is one
vehicle type with ``count = NUMBER`` and ``capacity = CAPACITY``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import NoReturn

import numpy as np

from rota.errors import FormatError
from rota.files import load_text
from rota.problems.routing.io.vrplib import distance_matrix
from rota.problems.routing.model import RoutingInstance, VehicleType

__all__ = ["read_instance", "looks_like_solomon"]

_COLUMNS = "CUST NO. XCOORD. YCOORD. DEMAND READY TIME DUE DATE SERVICE TIME"


#: Customer counts of the published sets: Solomon (1987) 25, 50 and 100;
#: Gehring and Homberger (1999) 200 to 1000.
STANDARD_SIZES = (25, 50, 100, 200, 400, 600, 800, 1000)


def _content_lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def looks_like_solomon(text: str) -> bool:
    """True when ``text`` opens with a name line then a ``VEHICLE`` / ``NUMBER CAPACITY`` block."""
    lines = [line for _, line in _content_lines(text[:2048])][:4]
    return (
        len(lines) >= 3
        and lines[1].upper() == "VEHICLE"
        and lines[2].upper().split()[:2] == ["NUMBER", "CAPACITY"]
    )


def read_instance(path: str | Path, *, text: str | None = None) -> RoutingInstance:
    """Read a Solomon VRPTW instance.

    Parameters
    ----------
    path
        The file.
    text
        The file's content when the caller already read it.

    Returns
    -------
    RoutingInstance
        Depot 0, time windows, service times, ``floor1`` distances;
        ``metadata`` records ``source``, ``format`` and ``rounding``.

    Raises
    ------
    FormatError
        One line naming the file and the line at fault.
    """
    path = Path(path)
    lines = _content_lines(load_text(path) if text is None else text)

    def fail(line: int, message: str) -> NoReturn:
        raise FormatError(f"{path}: line {line}: {message}")

    def expect(index: int, what: str) -> tuple[int, str]:
        if index >= len(lines):
            last = lines[-1][0] if lines else 1
            fail(last, f"expected {what} (got end of file)")
        return lines[index]

    name = expect(0, "the instance name")[1]
    line, text_ = expect(1, "'VEHICLE'")
    if text_.upper() != "VEHICLE":
        fail(line, f"expected 'VEHICLE' (got {text_!r})")
    line, text_ = expect(2, "'NUMBER CAPACITY'")
    if text_.upper().split() != ["NUMBER", "CAPACITY"]:
        fail(line, f"expected 'NUMBER CAPACITY' (got {text_!r})")
    line, text_ = expect(3, "the vehicle number and capacity")
    fleet = text_.split()
    if len(fleet) != 2:
        fail(line, f"expected 2 numbers 'NUMBER CAPACITY' (got {text_!r})")
    try:
        count, capacity = int(fleet[0]), float(fleet[1])
    except ValueError:
        fail(line, f"expected an integer vehicle number and a capacity (got {text_!r})")
    if count < 1:
        fail(line, f"field NUMBER must be a positive integer (got {count})")
    if not capacity > 0:
        fail(line, f"field CAPACITY must be positive (got {fleet[1]})")
    line, text_ = expect(4, "'CUSTOMER'")
    if text_.upper() != "CUSTOMER":
        fail(line, f"expected 'CUSTOMER' (got {text_!r})")
    line, text_ = expect(5, f"the column header '{_COLUMNS}'")
    if not text_.upper().startswith("CUST"):
        fail(line, f"expected the column header '{_COLUMNS}' (got {text_!r})")

    rows = lines[6:]
    if not rows:
        fail(line, "expected customer rows after the column header (got end of file)")
    table = np.empty((len(rows), 7))
    for k, (line, text_) in enumerate(rows):
        tokens = text_.split()
        if len(tokens) != 7:
            fail(line, f"expected 7 numbers '{_COLUMNS}' (got {len(tokens)})")
        try:
            table[k] = [float(t) for t in tokens]
        except ValueError:
            bad = next(t for t in tokens if not _is_number(t))
            fail(line, f"expected a number (got {bad!r})")
        if not np.isfinite(table[k]).all():
            fail(line, f"expected finite numbers (got {text_!r})")
        if table[k, 0] != k:
            fail(line, f"field CUST NO. should be {k}, numbered from 0 (got {tokens[0]})")
    if len(rows) < 2:
        fail(rows[-1][0], "expected the depot and at least one customer")

    customers = len(rows) - 1
    if customers not in STANDARD_SIZES:
        # Nothing in the format counts the rows: a file cut at a row boundary
        # reads as a smaller instance, so say so rather than solve it quietly.
        warnings.warn(
            f"{path}: {customers} customers, not a standard Solomon or Gehring-Homberger size "
            f"({', '.join(map(str, STANDARD_SIZES))}); check that the file is complete",
            stacklevel=2,
        )
    coords = table[:, 1:3]
    metadata = {"source": str(path), "format": "solomon", "rounding": "floor1"}
    try:
        return RoutingInstance(
            distance=distance_matrix(coords, "floor1"),
            vehicle_types=(VehicleType(capacity=capacity, count=count),),
            depots=(0,),
            demand=table[:, 3],
            service_time=table[:, 6],
            time_windows=table[:, 4:6],
            coords=coords,
            name=name,
            metadata=metadata,
        )
    except ValueError as exc:
        raise FormatError(f"{path}: invalid instance: {exc}") from None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
