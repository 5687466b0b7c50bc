"""What the placement solvers share: placements as arrays, their costs, the
constructive placements, symmetry breaking and a proven lower bound.

Inside the solvers a placement without replicas is an ``(L, E)`` integer
array of GPU ids (``P[l, e]``), converted to a
:class:`~rota.problems.placement.PlacementSolution` only at the end. Costs
here are the evaluator's objective, computed directly on that array; the
evaluator stays the source of truth (every result goes through ``finish``).
"""

from __future__ import annotations

import numpy as np

from rota.problems.placement import PlacementInstance, PlacementSolution, contiguous


def layer_loads(instance: PlacementInstance, placement: np.ndarray, li: int) -> np.ndarray:
    """``(G,)`` tokens on each GPU in layer ``li``."""
    return np.bincount(placement[li], weights=instance.loads[li], minlength=instance.gpus)


def transition_cost(instance: PlacementInstance, placement: np.ndarray, li: int) -> float:
    """Hop-weighted flows between layers ``li`` and ``li + 1`` (without ``comm_weight``)."""
    hops = instance.hop[placement[li][:, None], placement[li + 1][None, :]]
    return float((instance.flows[li] * hops).sum())


def objective(instance: PlacementInstance, placement: np.ndarray) -> float:
    """The evaluator's objective of a placement array without replicas."""
    load = sum(float(layer_loads(instance, placement, li).max()) for li in range(len(placement)))
    comm = sum(transition_cost(instance, placement, li) for li in range(len(placement) - 1))
    return load + instance.comm_weight * comm


def traffic(instance: PlacementInstance, placement: np.ndarray) -> float:
    """Hop-weighted flows of all transitions: what ``hops`` minimises."""
    return sum(transition_cost(instance, placement, li) for li in range(len(placement) - 1))


def to_solution(placement: np.ndarray) -> PlacementSolution:
    return PlacementSolution.from_array(placement)


# -- constructions ------------------------------------------------------------------------


def contiguous_array(instance: PlacementInstance) -> np.ndarray:
    """Megatron-LM's default (:func:`~rota.problems.placement.contiguous`) as an array."""
    return contiguous(instance).as_array()


def balanced_packing(weights: np.ndarray, bins: int, capacity: int) -> np.ndarray:
    """Items by decreasing weight, each into the lightest bin with room: the bin of each item.

    EPLB's ``balanced_packing``; ``capacity * bins`` must be at least the item count.
    """
    load = np.zeros(bins)
    count = np.zeros(bins, dtype=np.int64)
    where = np.empty(len(weights), dtype=np.int64)
    for item in np.argsort(-weights, kind="stable"):
        open_ = np.flatnonzero(count < capacity)
        b = open_[np.argmin(load[open_])]
        where[item] = b
        load[b] += weights[item]
        count[b] += 1
    return where


def eplb_layer(
    instance: PlacementInstance, weights: np.ndarray, replicas: int
) -> list[tuple[int, ...]]:
    """DeepSeek EPLB's hierarchical policy for one layer: the GPUs of every expert.

    1. Experts go to nodes by balanced packing, ``ceil(E / N)`` at most per node.
    2. ``replicas`` extra copies go, one at a time, to the expert with the
       largest load per copy whose node still has a free slot (at most one
       copy per GPU of its node).
    3. Within each node, copies (each carrying its expert's load divided by
       its copies) go to GPUs by balanced packing, never two copies of one
       expert on one GPU. A copy that finds no such GPU with room is dropped.
    """
    inst = instance
    per_node = inst.gpus_per_node
    node = balanced_packing(weights, inst.nodes, -(-inst.num_experts // inst.nodes))
    free = np.full(inst.nodes, per_node * inst.slots) - np.bincount(node, minlength=inst.nodes)
    copies = np.ones(inst.num_experts, dtype=np.int64)
    for _ in range(replicas):
        open_ = (free[node] > 0) & (copies < per_node)
        if not open_.any():
            break
        per_copy = np.where(open_, weights / copies, -np.inf)
        e = int(np.argmax(per_copy))
        copies[e] += 1
        free[node[e]] -= 1
    gpus: list[list[int]] = [[] for _ in range(inst.num_experts)]
    for n in range(inst.nodes):
        members = np.flatnonzero(node == n)
        items = [(e, weights[e] / copies[e]) for e in members for _ in range(copies[e])]
        # replicated experts first: their copies need distinct GPUs while all have room
        items.sort(key=lambda item: (-copies[item[0]], -item[1], item[0]))
        load = np.zeros(per_node)
        count = np.zeros(per_node, dtype=np.int64)
        for e, w in items:
            open_ = [
                g
                for g in range(per_node)
                if count[g] < inst.slots and n * per_node + g not in gpus[e]
            ]
            if not open_:
                continue
            g = min(open_, key=lambda g: (load[g], g))
            gpus[e].append(n * per_node + g)
            load[g] += w
            count[g] += 1
    return [tuple(sorted(g)) for g in gpus]


def eplb(instance: PlacementInstance, replicas: int) -> PlacementSolution:
    """EPLB's policy applied to every layer independently."""
    return PlacementSolution(
        tuple(tuple(eplb_layer(instance, row, replicas)) for row in instance.loads)
    )


# -- symmetry and bounds ------------------------------------------------------------------


def first_layer_allowed(instance: PlacementInstance) -> np.ndarray:
    """``(E, G)`` mask of the GPUs expert ``e`` of layer 0 may use without losing an optimum.

    Nodes are interchangeable, and so are the GPUs of a node: relabel nodes by
    the first expert of layer 0 they hold, and GPUs within a node likewise.
    The ``k``-th node so labelled first appears at an expert id ``>= k``, so
    expert ``e`` of layer 0 needs only nodes ``<= e`` and GPUs whose index
    within their node is ``<= e``. Relabelling applies to all layers at once
    and leaves every load and hop cost unchanged.
    """
    e = np.arange(instance.num_experts)[:, None]
    g = np.arange(instance.gpus)[None, :]
    node, local = np.divmod(g, instance.gpus_per_node)
    return (node <= e) & (local <= e)


def canonical(instance: PlacementInstance, placement: np.ndarray) -> np.ndarray:
    """``placement`` with nodes and GPUs relabelled as :func:`first_layer_allowed` expects.

    Nodes are numbered by the first expert of layer 0 they hold, GPUs within a
    node likewise; GPUs (nodes) that hold none of layer 0 keep their order after
    the others. The relabelling is a symmetry: loads and hop costs are unchanged.
    """
    per_node = instance.gpus_per_node
    node_order: list[int] = []
    local_order: dict[int, list[int]] = {}
    for g in placement[0]:
        node, local = divmod(int(g), per_node)
        if node not in node_order:
            node_order.append(node)
        seen = local_order.setdefault(node, [])
        if local not in seen:
            seen.append(local)
    node_order += [n for n in range(instance.nodes) if n not in node_order]
    relabel = np.empty(instance.gpus, dtype=np.int64)
    for new_node, node in enumerate(node_order):
        seen = local_order.get(node, [])
        for new_local, local in enumerate(seen + [k for k in range(per_node) if k not in seen]):
            relabel[node * per_node + local] = new_node * per_node + new_local
    return relabel[placement]


def _top_sum(values: np.ndarray, count: int, axis: int) -> np.ndarray:
    """Sum of the ``count`` largest values along ``axis``."""
    size = values.shape[axis]
    if count >= size:
        return values.sum(axis=axis)
    part = np.partition(values, size - count, axis=axis)
    return np.take(part, np.arange(size - count, size), axis=axis).sum(axis=axis)


def comm_lower_bound(instance: PlacementInstance) -> np.ndarray:
    """``(L - 1,)`` proven lower bounds on each transition's hop-weighted flows.

    A GPU holds at most ``slots`` experts of layer ``l``, so at most the
    ``slots`` largest inflows of expert ``j`` of layer ``l + 1`` stay on its
    GPU and at most the ``slots * G / N`` largest stay in its node; the rest
    costs at least 1, and beyond its node ``inter_cost``. The same holds for
    outflows; each transition takes the larger of the two sums.
    """
    s = instance.slots
    in_node = s * instance.gpus_per_node
    extra = instance.inter_cost - 1.0
    bounds = []
    for flows in instance.flows:
        sides = []
        for axis in (0, 1):  # inflows of each j, outflows of each i
            total = flows.sum(axis=axis)
            gpu = total - _top_sum(flows, s, axis)
            node = total - _top_sum(flows, in_node, axis) if instance.nodes > 1 else 0.0
            sides.append(float((gpu + extra * node).sum()))
        bounds.append(max(sides))
    return np.array(bounds)


def load_lower_bound(instance: PlacementInstance) -> np.ndarray:
    """``(L,)`` proven lower bounds on each layer's busiest GPU, for placements without replicas.

    The mean load, the hottest expert, and, when every slot is used
    (``E = G * slots``), the hottest expert plus the ``slots - 1`` lightest.
    """
    loads = instance.loads
    bound = np.maximum(loads.sum(axis=1) / instance.gpus, loads.max(axis=1))
    if instance.spare_slots == 0 and instance.slots > 1:
        lightest = np.sort(loads, axis=1)[:, : instance.slots - 1].sum(axis=1)
        bound = np.maximum(bound, loads.max(axis=1) + lightest)
    return bound


def lower_bound(instance: PlacementInstance) -> float | None:
    """A proven lower bound on the objective; ``None`` when replicas could beat it.

    With spare slots a replicated expert splits its load and its flows, which
    the bounds above do not cover, so no bound is claimed.
    """
    if instance.spare_slots:
        return None
    comm = float(comm_lower_bound(instance).sum()) if instance.num_layers > 1 else 0.0
    return float(load_lower_bound(instance).sum()) + instance.comm_weight * comm


__all__ = [
    "balanced_packing", "canonical", "comm_lower_bound", "contiguous_array",
    "eplb", "eplb_layer", "first_layer_allowed", "layer_loads", "load_lower_bound",
    "lower_bound", "objective", "to_solution", "traffic", "transition_cost",
]  # fmt: skip
