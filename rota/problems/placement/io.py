"""Placement files: the summary JSON, solution JSON, and routing traces.

Instance (``"rota.placement/1"``)::

    {"format": "rota.placement/1", "name": "mixtral-like", "gpus": 4, "nodes": 1,
     "slots": 2, "top_k": 2, "bandwidth_intra": 450, "bandwidth_inter": 50,
     "comm_weight": 0.125, "loads": [[...E...] x L], "flows": [[[...E...] x E] x (L-1)],
     "metadata": {...}}

``slots`` and ``comm_weight`` may be omitted (their defaults, see
:class:`~rota.problems.placement.model.PlacementInstance`), and so may the
bandwidths (450 and 50 GB/s) and ``nodes`` (1).

Solution (``"rota.placement.solution/1"``): ``{"placement": [[g, g, [g, g], ...] x L]}``,
one entry per expert of every layer: a GPU id, or a list of GPU ids for an
expert with replicas.

Trace: the experts each token was routed to, in every layer, as

* ``.npz``: an integer array ``experts`` of shape ``(tokens, layers, top_k)``
  and optionally a scalar ``num_experts``;
* ``.csv``: a header ``token,layer,expert`` and one row per routing decision
  (``top_k`` rows per token and layer; token ids are any integers, layers
  ``0..L-1``).

:func:`summarise` turns a trace into the counts of an instance: ``loads[l, e]``
counts the tokens at expert ``e`` of layer ``l``, ``flows[l, i, j]`` the
tokens at ``i`` in layer ``l`` and ``j`` in layer ``l + 1`` (``top_k**2``
pairs per token). Without ``num_experts`` the experts are ``0..max id``.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rota.errors import FormatError
from rota.files import atomic_open, load_text, regular_file, require_memory, write_text
from rota.problems.placement.model import PlacementInstance, PlacementSolution, check_marginals

INSTANCE_FORMAT = "rota.placement/1"
SOLUTION_FORMAT = "rota.placement.solution/1"
TRACE_HEADER = ("token", "layer", "expert")
#: Pair counts per chunk when summarising a trace: bounds the temporary arrays (~128 MB).
_CHUNK_PAIRS = 8_000_000

_REQUIRED = ("gpus", "loads", "flows")
_OPTIONAL = ("nodes", "slots", "top_k", "bandwidth_intra", "bandwidth_inter", "comm_weight")


# -- instances ---------------------------------------------------------------------------


def instance_from_dict(data: Any, where: str) -> PlacementInstance:
    """A placement instance from its JSON object; errors name ``where`` and the field."""
    if not isinstance(data, dict):
        raise FormatError(f"{where}: expected a JSON object, got {type(data).__name__}")
    tag = data.get("format")
    if tag != INSTANCE_FORMAT:
        raise FormatError(f"{where}: field 'format' is {tag!r}, expected {INSTANCE_FORMAT!r}")
    for key in _REQUIRED:
        if key not in data:
            raise FormatError(f"{where}: field {key!r} is missing")
    known = {"format", "name", "metadata", *_REQUIRED, *_OPTIONAL}
    unknown = sorted(set(data) - known)
    if unknown:
        raise FormatError(f"{where}: unknown field {unknown[0]!r}")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise FormatError(f"{where}: field 'metadata' must be an object")
    options = {key: data[key] for key in _OPTIONAL if data.get(key) is not None}
    try:
        instance = PlacementInstance(
            loads=data["loads"],
            flows=data["flows"],
            gpus=data["gpus"],
            name=str(data.get("name", "placement")),
            metadata=metadata,
            **options,
        )
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{where}: {exc}") from None
    for message in check_marginals(instance)[:1]:
        warnings.warn(
            f"{where}: {message}: are loads and flows from one trace, with this top_k?",
            stacklevel=2,
        )
    return instance


def _counts_json(array: np.ndarray) -> Any:
    """Whole numbers as ints, so that a summary of a trace reads as counts."""
    if np.array_equal(array, np.round(array)):
        return array.astype(np.int64).tolist()
    return array.tolist()


def instance_to_dict(instance: PlacementInstance) -> dict[str, Any]:
    return {
        "format": INSTANCE_FORMAT,
        "name": instance.name,
        "gpus": instance.gpus,
        "nodes": instance.nodes,
        "slots": instance.slots,
        "top_k": instance.top_k,
        "bandwidth_intra": instance.bandwidth_intra,
        "bandwidth_inter": instance.bandwidth_inter,
        "comm_weight": instance.comm_weight,
        "metadata": dict(instance.metadata),
        "loads": _counts_json(instance.loads),
        "flows": _counts_json(instance.flows),
    }


# -- solutions ---------------------------------------------------------------------------


def _gpu_id(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError(f"{where} is {value!r}, expected a GPU id (an integer)")
    if not -(2**31) <= value < 2**31:
        raise FormatError(f"{where} is {value}, out of range for a GPU id")
    return value


def solution_from_dict(data: Any, where: str) -> PlacementSolution:
    """A solution from its JSON object (or a result file's payload of one)."""
    if not isinstance(data, dict) or not isinstance(data.get("placement"), list):
        raise FormatError(f"{where}: expected an object with a 'placement' list of layers")
    tag = data.get("format")
    if tag not in (None, SOLUTION_FORMAT):
        raise FormatError(f"{where}: field 'format' is {tag!r}, expected {SOLUTION_FORMAT!r}")
    layers = []
    for li, layer in enumerate(data["placement"]):
        if not isinstance(layer, list):
            raise FormatError(f"{where}: placement[{li}] must be a list of experts' GPUs")
        experts = []
        for e, entry in enumerate(layer):
            at = f"{where}: placement[{li}][{e}]"
            if isinstance(entry, list):
                experts.append(tuple(_gpu_id(g, f"{at}[{r}]") for r, g in enumerate(entry)))
            else:
                experts.append((_gpu_id(entry, at),))
        layers.append(tuple(experts))
    return PlacementSolution(tuple(layers))


def solution_to_dict(
    solution: PlacementSolution, instance_name: str | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"format": SOLUTION_FORMAT}
    if instance_name is not None:
        data["instance"] = instance_name
    data["placement"] = [
        [gpus[0] if len(gpus) == 1 else list(gpus) for gpus in layer]
        for layer in solution.placement
    ]
    return data


# -- traces ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """Per-token routing: ``experts[t, l]`` holds the ``top_k`` experts of token ``t`` at ``l``."""

    experts: np.ndarray  # (tokens, layers, top_k) int64
    num_experts: int

    @property
    def top_k(self) -> int:
        return int(self.experts.shape[2])


def check_trace(experts: Any, num_experts: int | None, where: str) -> Trace:
    """``experts`` checked as a trace: a ``(tokens, layers, top_k)`` array of distinct ids."""
    array = np.asarray(experts)
    if array.dtype.kind not in "iu":
        raise FormatError(f"{where}: expert ids must be integers, got dtype {array.dtype}")
    if array.ndim != 3 or 0 in array.shape:
        raise FormatError(
            f"{where}: experts must have a non-empty shape (tokens, layers, top_k), "
            f"got {array.shape}"
        )
    array = array.astype(np.int64, copy=False)
    low = int(array.min())
    if low < 0:
        t, li, _ = (int(i) for i in np.argwhere(array < 0)[0])
        raise FormatError(f"{where}: token {t} layer {li} has expert id {low} < 0")
    high = int(array.max())
    if num_experts is None:
        num_experts = high + 1
    elif high >= num_experts:
        t, li, _ = (int(i) for i in np.argwhere(array >= num_experts)[0])
        raise FormatError(
            f"{where}: token {t} layer {li} has expert id {high}, but the model has "
            f"{num_experts} experts"
        )
    if array.shape[2] > 1:
        ordered = np.sort(array, axis=2)
        twice = np.argwhere(ordered[:, :, 1:] == ordered[:, :, :-1])
        if twice.size:
            t, li, r = (int(i) for i in twice[0])
            raise FormatError(
                f"{where}: token {t} is routed to expert {ordered[t, li, r]} twice in layer {li}"
            )
    return Trace(array, int(num_experts))


def summarise(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    """``(loads, flows)`` of a trace: ``(L, E)`` and ``(L - 1, E, E)`` token counts."""
    experts, e = trace.experts, trace.num_experts
    tokens, layers, k = experts.shape
    require_memory(8.0 * max(layers - 1, 1) * e * e, f"the flows of {layers} layers x {e} experts")
    loads = np.stack([np.bincount(experts[:, li].ravel(), minlength=e) for li in range(layers)])
    flows = np.zeros((max(layers - 1, 0), e, e), dtype=np.int64)
    chunk = max(1, _CHUNK_PAIRS // (k * k))
    for li in range(layers - 1):
        for start in range(0, tokens, chunk):
            here = experts[start : start + chunk, li, :, None] * e
            there = experts[start : start + chunk, li + 1, None, :]
            flows[li] += np.bincount((here + there).ravel(), minlength=e * e).reshape(e, e)
    return loads.astype(np.float64), flows.astype(np.float64)


def _read_npz(path: Path, num_experts: int | None) -> Trace:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "experts" not in archive.files:
                raise FormatError(f"{path}: holds no 'experts' array (found {archive.files})")
            with archive.zip.open("experts.npy") as handle:
                version = np.lib.format.read_magic(handle)
                reader = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape = reader(handle)[0]
            require_memory(8.0 * float(np.prod(shape, dtype=np.float64)) * 3, f"trace {path}")
            experts = archive["experts"]
            if num_experts is None and "num_experts" in archive.files:
                stored = archive["num_experts"]
                if stored.shape != () or stored.dtype.kind not in "iu" or int(stored) < 1:
                    raise FormatError(f"{path}: 'num_experts' must be one positive integer")
                num_experts = int(stored)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{path}: not a readable .npz trace ({exc})") from None
    return check_trace(experts, num_experts, str(path))


def _read_csv(path: Path, text: str, num_experts: int | None) -> Trace:
    first, _, body = text.partition("\n")
    header = tuple(c.strip().lower() for c in first.split(","))
    if header != TRACE_HEADER:
        raise FormatError(f"{path}: line 1: expected the header {','.join(TRACE_HEADER)!r}")
    require_memory(8.0 * len(text), f"trace {path}")
    try:
        rows = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise FormatError(
            f"{path}: {' '.join(str(exc).split())} (rows counted after the header)"
        ) from None
    if rows.size == 0:
        raise FormatError(f"{path}: no routing rows after the header")
    if rows.shape[1] != 3:
        raise FormatError(f"{path}: rows have {rows.shape[1]} columns, expected 3")
    layer_ids = rows[:, 1]
    if layer_ids.min() < 0:
        raise FormatError(f"{path}: layer {layer_ids.min()} < 0")
    layers = int(layer_ids.max()) + 1
    tokens, token_index = np.unique(rows[:, 0], return_inverse=True)
    cell = token_index * layers + layer_ids
    per_cell = np.bincount(cell, minlength=len(tokens) * layers)
    k = int(per_cell.max())
    uneven = np.flatnonzero(per_cell != k)
    if uneven.size:
        t, li = divmod(int(uneven[0]), layers)
        raise FormatError(
            f"{path}: token {tokens[t]} has {per_cell[uneven[0]]} experts in layer {li}, "
            f"others have {k} (every token needs top_k experts in every layer 0..{layers - 1})"
        )
    order = np.argsort(cell, kind="stable")
    experts = rows[order, 2].reshape(len(tokens), layers, k)
    return check_trace(experts, num_experts, str(path))


def read_trace(path: str | Path, num_experts: int | None = None) -> Trace:
    """Read a routing trace (``.npz`` or ``.csv``; see the module docstring).

    Raises
    ------
    FormatError
        One line naming the file and what is wrong.
    """
    path = regular_file(path)
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic.startswith(b"PK"):
        return _read_npz(path, num_experts)
    if path.suffix.lower() == ".npz":
        raise FormatError(f"{path}: not a .npz archive")
    return _read_csv(path, load_text(path), num_experts)


def write_trace(trace: Trace, path: str | Path) -> None:
    """Write a trace as ``.npz`` or ``.csv`` (by suffix), atomically."""
    path = Path(path)
    if path.suffix == ".npz":
        with atomic_open(path, "wb") as handle:
            np.savez_compressed(
                handle, experts=trace.experts, num_experts=np.int64(trace.num_experts)
            )
        return
    if path.suffix != ".csv":
        raise ValueError(f"{path}: a trace is written as .npz or .csv, got {path.suffix!r}")
    tokens, layers, k = trace.experts.shape
    token = np.repeat(np.arange(tokens), layers * k)
    layer = np.tile(np.repeat(np.arange(layers), k), tokens)
    rows = np.column_stack([token, layer, trace.experts.ravel()])
    buffer = io.StringIO()
    buffer.write(",".join(TRACE_HEADER) + "\n")
    np.savetxt(buffer, rows, fmt="%d", delimiter=",")
    write_text(path, buffer.getvalue())


def instance_from_trace(trace: Trace, gpus: int, **options: Any) -> PlacementInstance:
    """The instance summarising ``trace`` on ``gpus`` GPUs (``options``: the other fields)."""
    loads, flows = summarise(trace)
    return PlacementInstance(loads, flows, gpus=gpus, top_k=trace.top_k, **options)


def sniff_trace(text: str) -> bool:
    """Whether ``text`` starts like a CSV trace."""
    first = text.lstrip().split("\n", 1)[0]
    return tuple(c.strip().lower() for c in first.split(",")) == TRACE_HEADER


__all__ = [
    "INSTANCE_FORMAT", "SOLUTION_FORMAT", "Trace", "check_trace", "instance_from_dict",
    "instance_from_trace", "instance_to_dict", "read_trace", "sniff_trace", "solution_from_dict",
    "solution_to_dict", "summarise", "write_trace",
]  # fmt: skip
