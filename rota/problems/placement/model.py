"""Mixture-of-experts expert placement: instances, solutions and the evaluator.

A model has ``L`` MoE layers of ``E`` experts each. Serving it with expert
parallelism places every layer's experts on ``G`` GPUs, grouped in ``N``
nodes of ``G / N`` GPUs; each GPU holds at most ``slots`` experts of each
layer (its memory). Two things slow a layer down (MoETuner, ExFlow):

* the busiest GPU: a layer finishes when the GPU with the most tokens to
  compute does, so its load is what counts, not the mean;
* tokens that move between GPUs: a token processed by expert ``i`` of layer
  ``l`` next goes to expert ``j`` of layer ``l + 1``; when the two sit on
  different GPUs its hidden state crosses a link, slower across nodes.

Data
----
``loads[l, e]``
    Tokens routed to expert ``e`` of layer ``l`` (with top-``k`` routing a
    token counts once at each of its ``k`` experts).
``flows[l, i, j]``
    Tokens routed to expert ``i`` of layer ``l`` and to expert ``j`` of layer
    ``l + 1``. With top-``k`` routing a token contributes to every pair of
    its ``k`` experts at ``l`` and ``k`` experts at ``l + 1`` (``k**2``
    pairs), so that every next-layer expert receives the token's state from
    each of its previous experts, as in the token routing dependency of
    MoETuner. Top-1: one pair per token, the token's path.

Placement
---------
Every (layer, expert) has one or more GPUs. Several GPUs are *replicas*
(DeepSeek's EPLB replicates hot experts): the expert's tokens are split
evenly between them, and so is every flow into and out of it, independently
of where the tokens come from (so a replica does not attract the tokens of
its own GPU; an expert on GPUs ``A`` and ``B`` receives half of each
predecessor's tokens on each).

Objective (minimised)
---------------------
With ``S_l`` the ``(E, G)`` matrix of shares (``1 / r`` on each of the
``r`` GPUs of an expert) and ``h`` the hop cost between two GPUs::

    load[l, g]  = sum_e loads[l, e] * S_l[e, g]
    comm        = sum_l sum_{i, j} flows[l, i, j] * (S_l h S_{l+1}^T)[i, j]
    objective   = sum_l max_g load[l, g]  +  comm_weight * comm

``h(g, g) = 0``; two GPUs of one node cost ``1``; two nodes cost
``bandwidth_intra / bandwidth_inter`` (a token over a link ``b`` times
slower costs ``b`` times as much: the inverse bandwidth, relative to the
intra-node link). The first term is the compute time of the busiest GPU,
summed over layers, in tokens. ``comm_weight`` turns communication into the
same unit. Its default, ``1 / (top_k * gpus)``, reads: a token moved between
two GPUs of a node takes as long as one expert computing one token; the
``k**2`` pairs of a top-``k`` token count as ``k`` moves (one per expert
copy of the token); and an all-to-all moves data on all ``G`` GPUs' links at
once, so the layer waits for ``1 / G`` of the total. That is the regime
ExFlow and MoETuner address (all-to-all time comparable to expert compute);
set ``comm_weight`` to the ratio measured on your hardware.

Also reported (not in the objective): the imbalance of each layer, ``max_g
load / mean_g load`` (1 is perfect), and the cross-GPU and cross-node
traffic, the flows between experts on different GPUs / nodes, unweighted.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from rota.problems.base import Violation

#: Largest token count accepted anywhere: sums of such counts over all flows of a
#: 256-expert, 60-layer model stay exact in float64 (below 2**53).
MAX_COUNT = 1e12


def _boolean_at(value: Any) -> list[int] | None:
    """Index of the first boolean in a nested list (``[]`` for a bare boolean)."""
    if isinstance(value, bool | np.bool_):
        return []
    if isinstance(value, np.ndarray):
        if value.dtype == bool and value.size:
            return [int(i) for i in np.argwhere(value)[0]] if value.any() else [0] * value.ndim
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            inner = _boolean_at(item)
            if inner is not None:
                return [i, *inner]
    return None


def _counts(name: str, value: Any, shape: tuple[int, ...] | None, ndim: int) -> np.ndarray:
    """``value`` as a read-only float64 array of finite, non-negative counts."""
    where = _boolean_at(value)
    if where is not None:
        index = "".join(f"[{i}]" for i in where)
        raise ValueError(f"{name}{index} is a boolean, expected a token count")
    try:
        array = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {type(value).__name__}: {exc}") from None
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {array.shape}")
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape}, expected {shape}")
    bad = np.argwhere(~np.isfinite(array) | (array < 0) | (array > MAX_COUNT))
    if bad.size:
        index = tuple(int(i) for i in bad[0])
        text = "".join(f"[{i}]" for i in index)
        raise ValueError(
            f"{name}{text} is {array[index]}: token counts must be finite, >= 0 "
            f"and <= {MAX_COUNT:g}"
        )
    array.setflags(write=False)
    return array


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} is {value!r}, expected a positive integer")
    return int(value)


def _positive_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name} is {value!r}, expected a positive number")
    value = float(value)
    if not (math.isfinite(value) and 0 < value <= MAX_COUNT):
        raise ValueError(f"{name} is {value!r}, expected a positive, finite number")
    return value


@dataclass(frozen=True, eq=False)
class PlacementInstance:
    """An expert-placement instance; validated and immutable.

    Parameters
    ----------
    loads
        ``(L, E)`` tokens routed to each expert of each layer.
    flows
        ``(L - 1, E, E)`` tokens routed to expert ``i`` of layer ``l`` and
        expert ``j`` of layer ``l + 1`` (see the module docstring for top-k).
    gpus
        GPUs ``G``.
    nodes
        Nodes ``N``; ``G`` must be a multiple of ``N``. GPU ``g`` is in node
        ``g // (G / N)``.
    slots
        Experts of one layer a GPU holds at most; default ``ceil(E / G)``.
        ``G * slots - E`` spare slots per layer can hold replicas.
    top_k
        Experts per token and layer in the routing that produced the counts.
    bandwidth_intra, bandwidth_inter
        Link bandwidths within and between nodes (GB/s per GPU); only their
        ratio matters. Inter-node links may not be faster than intra-node ones.
    comm_weight
        Weight of communication in the objective; default ``1 / (top_k * gpus)``
        (see the module docstring).
    name
        Instance name.
    metadata
        Provenance (generator parameters, trace file); not used by solvers.
    """

    loads: np.ndarray
    flows: np.ndarray
    gpus: int
    nodes: int = 1
    slots: int | None = None
    top_k: int = 1
    bandwidth_intra: float = 450.0
    bandwidth_inter: float = 50.0
    comm_weight: float | None = None
    name: str = "placement"
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        loads = _counts("loads", self.loads, None, 2)
        layers, experts = loads.shape
        if layers < 1 or experts < 1:
            raise ValueError(f"loads has shape {loads.shape}: at least one layer and one expert")
        set_(self, "loads", loads)
        set_(self, "flows", _counts("flows", self.flows, (layers - 1, experts, experts), 3))
        gpus = _positive_int("gpus", self.gpus)
        nodes = _positive_int("nodes", self.nodes)
        if gpus % nodes:
            raise ValueError(f"gpus is {gpus}, not a multiple of nodes {nodes}")
        slots = -(-experts // gpus) if self.slots is None else _positive_int("slots", self.slots)
        if gpus * slots < experts:
            raise ValueError(
                f"{experts} experts per layer do not fit on {gpus} GPUs x {slots} slots "
                f"= {gpus * slots} slots"
            )
        top_k = _positive_int("top_k", self.top_k)
        if top_k > experts:
            raise ValueError(f"top_k is {top_k}, more than the {experts} experts of a layer")
        intra = _positive_float("bandwidth_intra", self.bandwidth_intra)
        inter = _positive_float("bandwidth_inter", self.bandwidth_inter)
        if inter > intra:
            raise ValueError(
                f"bandwidth_inter {inter:g} is above bandwidth_intra {intra:g}; nodes linked "
                "faster than GPUs within a node are not modelled"
            )
        weight = 1.0 / (top_k * gpus) if self.comm_weight is None else self.comm_weight
        if isinstance(weight, bool) or not isinstance(weight, int | float | np.number):
            raise ValueError(f"comm_weight is {weight!r}, expected a number >= 0")
        if not (math.isfinite(float(weight)) and 0 <= float(weight) <= MAX_COUNT):
            raise ValueError(f"comm_weight is {weight!r}, expected a finite number >= 0")
        for name, value in (("gpus", gpus), ("nodes", nodes), ("slots", slots)):
            set_(self, name, value)
        set_(self, "top_k", top_k)
        set_(self, "bandwidth_intra", intra)
        set_(self, "bandwidth_inter", inter)
        set_(self, "comm_weight", float(weight))
        set_(self, "name", str(self.name))
        set_(self, "metadata", MappingProxyType(dict(self.metadata)))

    # -- shape --------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return int(self.loads.shape[0])

    @property
    def num_experts(self) -> int:
        return int(self.loads.shape[1])

    @property
    def gpus_per_node(self) -> int:
        return self.gpus // self.nodes

    @property
    def spare_slots(self) -> int:
        """Slots per layer beyond one copy of every expert: room for replicas."""
        return self.gpus * self.slots - self.num_experts

    @property
    def inter_cost(self) -> float:
        """Hop cost between two nodes, relative to two GPUs of one node."""
        return self.bandwidth_intra / self.bandwidth_inter

    @functools.cached_property
    def node_of(self) -> np.ndarray:
        """``(G,)`` node of every GPU."""
        array = np.arange(self.gpus) // self.gpus_per_node
        array.setflags(write=False)
        return array

    @functools.cached_property
    def hop(self) -> np.ndarray:
        """``(G, G)`` cost of a token between two GPUs (0 on one GPU)."""
        node = self.node_of
        cost = np.where(node[:, None] == node[None, :], 1.0, self.inter_cost)
        np.fill_diagonal(cost, 0.0)
        cost.setflags(write=False)
        return cost

    def describe(self) -> str:
        return (
            f"{self.num_experts} experts x {self.num_layers} layers, top-{self.top_k}, on "
            f"{self.gpus} GPUs in {self.nodes} node(s), {self.slots} slot(s) per GPU"
        )


@dataclass(frozen=True)
class PlacementSolution:
    """The GPUs of every (layer, expert): ``placement[l][e]`` is a tuple of GPU ids.

    One GPU is the usual case; several are replicas that split the expert's
    tokens evenly. :meth:`from_array` builds a solution without replicas.
    """

    placement: tuple[tuple[tuple[int, ...], ...], ...]

    def __post_init__(self) -> None:
        layers = []
        for layer in self.placement:
            layers.append(tuple(tuple(int(g) for g in gpus) for gpus in layer))
        object.__setattr__(self, "placement", tuple(layers))

    @classmethod
    def from_array(cls, gpu: Any) -> PlacementSolution:
        """A solution without replicas from an ``(L, E)`` array of GPU ids."""
        array = np.asarray(gpu)
        if array.ndim != 2:
            raise ValueError(f"a placement array must be (layers, experts), got {array.shape}")
        return cls(tuple(tuple((int(g),) for g in row) for row in array))

    @property
    def replicas(self) -> int:
        """Copies beyond the first, over all layers and experts."""
        return sum(max(0, len(g) - 1) for layer in self.placement for g in layer)

    def as_array(self) -> np.ndarray | None:
        """``(L, E)`` GPU ids when every expert has exactly one GPU, else ``None``."""
        if any(len(g) != 1 for layer in self.placement for g in layer):
            return None
        return np.array([[g[0] for g in layer] for layer in self.placement], dtype=np.int64)


@dataclass(frozen=True)
class PlacementEvaluation:
    """What :func:`evaluate` reports.

    ``objective`` is ``load_term + comm_weight * comm_cost``; ``inf`` when
    the solution does not have the instance's shape. ``gpu_load`` is
    ``(L, G)``; ``traffic`` is ``(G, G)``, the flows from each GPU to each
    other one summed over layer transitions (diagonal: tokens that stay).
    """

    objective: float
    violations: tuple[Violation, ...]
    load_term: float = math.inf
    comm_cost: float = math.inf
    cross_gpu: float = math.inf
    cross_node: float = math.inf
    imbalance: tuple[float, ...] = ()
    replicas: int = 0
    gpu_load: np.ndarray | None = field(default=None, repr=False, compare=False)
    traffic: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def max_imbalance(self) -> float:
        return max(self.imbalance, default=math.inf)

    @property
    def mean_imbalance(self) -> float:
        return float(np.mean(self.imbalance)) if self.imbalance else math.inf


def shares(instance: PlacementInstance, solution: PlacementSolution) -> list[np.ndarray]:
    """``(E, G)`` share matrices per layer; GPU ids outside the instance are ignored."""
    result = []
    for layer in solution.placement:
        share = np.zeros((instance.num_experts, instance.gpus))
        for e, gpus in enumerate(layer[: instance.num_experts]):
            valid = sorted({g for g in gpus if 0 <= g < instance.gpus})
            if valid:
                share[e, valid] = 1.0 / len(valid)
        result.append(share)
    return result


def _shape_violations(instance: PlacementInstance, solution: Any) -> list[Violation]:
    if not isinstance(solution, PlacementSolution):
        return [Violation("shape", f"expected a PlacementSolution, got {type(solution).__name__}")]
    found = []
    if len(solution.placement) != instance.num_layers:
        found.append(
            Violation(
                "shape",
                f"placement has {len(solution.placement)} layers, the instance "
                f"{instance.num_layers}",
            )
        )
    for li, layer in enumerate(solution.placement):
        if len(layer) != instance.num_experts:
            found.append(
                Violation(
                    "shape",
                    f"layer {li} places {len(layer)} experts, the instance has "
                    f"{instance.num_experts}",
                )
            )
            break
    for li, layer in enumerate(solution.placement):
        for e, gpus in enumerate(layer):
            bad = [g for g in gpus if not 0 <= g < instance.gpus]
            if bad:
                found.append(
                    Violation(
                        "unknown_gpu",
                        f"layer {li} expert {e} is on GPU {bad[0]}, not in [0, {instance.gpus})",
                    )
                )
                return found
    return found


def evaluate(instance: PlacementInstance, solution: PlacementSolution) -> PlacementEvaluation:
    """The objective of ``solution`` and every constraint it breaks.

    Violation kinds: ``shape`` (wrong number of layers or experts),
    ``unknown_gpu`` (a GPU id the instance lacks), ``unplaced`` (an expert
    on no GPU), ``duplicate_gpu`` (an expert twice on one GPU) and
    ``capacity`` (a GPU holding more than ``slots`` experts of a layer).
    The figures are computed even for an infeasible solution, except for
    ``shape`` and ``unknown_gpu`` ones, whose objective is ``inf``.
    """
    structural = _shape_violations(instance, solution)
    if structural:
        return PlacementEvaluation(math.inf, tuple(structural))
    violations: list[Violation] = []
    counts = np.zeros((instance.num_layers, instance.gpus), dtype=np.int64)
    for li, layer in enumerate(solution.placement):
        for e, gpus in enumerate(layer):
            if not gpus:
                violations.append(Violation("unplaced", f"layer {li} expert {e} is on no GPU"))
            if len(set(gpus)) != len(gpus):
                violations.append(
                    Violation("duplicate_gpu", f"layer {li} expert {e} lists a GPU twice: {gpus}")
                )
            for g in set(gpus):
                counts[li, g] += 1
    over = np.argwhere(counts > instance.slots)
    for li, g in over:
        violations.append(
            Violation(
                "capacity",
                f"layer {li}: GPU {g} holds {counts[li, g]} experts, more than its "
                f"{instance.slots} slot(s)",
            )
        )
    share = shares(instance, solution)
    gpu_load = np.stack([instance.loads[li] @ share[li] for li in range(instance.num_layers)])
    busiest = gpu_load.max(axis=1)
    mean = instance.loads.sum(axis=1) / instance.gpus
    imbalance = tuple(float(b / m) if m > 0 else 1.0 for b, m in zip(busiest, mean, strict=True))
    traffic = np.zeros((instance.gpus, instance.gpus))
    for li in range(instance.num_layers - 1):
        traffic += share[li].T @ instance.flows[li] @ share[li + 1]
    comm = float((traffic * instance.hop).sum())
    cross_gpu = float(traffic.sum() - np.trace(traffic))
    same_node = instance.node_of[:, None] == instance.node_of[None, :]
    cross_node = float(traffic[~same_node].sum())
    load_term = float(busiest.sum())
    return PlacementEvaluation(
        objective=load_term + instance.comm_weight * comm,
        violations=tuple(violations),
        load_term=load_term,
        comm_cost=comm,
        cross_gpu=cross_gpu,
        cross_node=cross_node,
        imbalance=imbalance,
        replicas=solution.replicas,
        gpu_load=gpu_load,
        traffic=traffic,
    )


def contiguous(instance: PlacementInstance) -> PlacementSolution:
    """Megatron-LM's default placement: experts in id order, in equal blocks, on GPUs 0, 1, ...

    Expert ``e`` goes on GPU ``e * G // E`` in every layer: blocks of
    ``E / G`` experts when ``G`` divides ``E`` (and sizes differing by one
    otherwise), always within ``slots``.
    """
    layer = np.arange(instance.num_experts) * instance.gpus // instance.num_experts
    return PlacementSolution.from_array(np.tile(layer, (instance.num_layers, 1)))


def check_marginals(instance: PlacementInstance) -> list[str]:
    """Where ``flows`` disagrees with ``loads`` (more than 1 %), as one message per layer.

    For counts summarised from one trace, flows out of expert ``i`` of layer
    ``l`` sum to ``top_k * loads[l, i]`` and flows into ``j`` to ``top_k *
    loads[l + 1, j]``; counts from different batches need not agree.
    """
    messages = []
    k = instance.top_k
    for li in range(instance.num_layers - 1):
        out = instance.flows[li].sum(axis=1)
        into = instance.flows[li].sum(axis=0)
        for side, got, expected in (
            ("out of", out, k * instance.loads[li]),
            ("into", into, k * instance.loads[li + 1]),
        ):
            diff = np.abs(got - expected) > 0.01 * np.maximum(expected, 1.0)
            if diff.any():
                e = int(np.argmax(diff))
                layer = li if side == "out of" else li + 1
                messages.append(
                    f"flows {side} layer {layer} expert {e} sum to {got[e]:g}, but top_k x its "
                    f"load is {expected[e]:g}"
                )
                break
    return messages


__all__ = [
    "MAX_COUNT", "PlacementEvaluation", "PlacementInstance", "PlacementSolution",
    "check_marginals", "contiguous", "evaluate", "shares",
]  # fmt: skip
