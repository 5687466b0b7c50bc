"""Routing's file formats beside JSON: VRPLIB/TSPLIB, Solomon and VRPLIB ``.sol``.

The format is picked from the content, with the extension only a hint, so a
Solomon file named ``.vrp`` still reads correctly:

- a name line followed by a ``VEHICLE`` / ``NUMBER CAPACITY`` block: Solomon
  (:mod:`rota.problems.routing.io.solomon`);
- ``KEY : value`` header lines (``NAME``, ``TYPE``, ``DIMENSION``, ...):
  VRPLIB/TSPLIB (:mod:`rota.problems.routing.io.vrplib`).

rota's JSON formats are read by :mod:`rota.problems` for every family and
converted by :mod:`rota.problems.routing.io.json`. Every malformed file
raises :class:`~rota.errors.FormatError` with a one-line message naming the
file and the line or field.
"""

from __future__ import annotations

import re
from pathlib import Path

from rota.problems.routing.io import solomon, vrplib, vrplib_model
from rota.problems.routing.model import RoutingInstance

_VRPLIB_KEY = re.compile(
    r"(NAME|TYPE|DIMENSION|COMMENT|CAPACITY|EDGE_WEIGHT_TYPE|EDGE_WEIGHT_FORMAT|VEHICLES)\s*:",
    re.IGNORECASE,
)


def text_format(text: str) -> str | None:
    """``"solomon"`` or ``"vrplib"`` when ``text`` looks like one, else ``None``."""
    if solomon.looks_like_solomon(text):
        return "solomon"
    head = [line.strip() for line in text[:4096].splitlines() if line.strip()][:20]
    if any(_VRPLIB_KEY.match(line) for line in head):
        return "vrplib"
    return None


def read_text(path: Path, text: str) -> RoutingInstance:
    """The instance of a Solomon or VRPLIB/TSPLIB file whose content is ``text``."""
    if text_format(text) == "solomon":
        return solomon.read_instance(path, text=text)
    return vrplib_model.read_instance(path, text=text)


__all__ = ["read_text", "solomon", "text_format", "vrplib"]
