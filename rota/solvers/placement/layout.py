"""Placements as expert copies, for the layer-by-layer decomposition.

A layer of a :class:`Layout` is a list of *copies*: ``owner[c]`` is the expert
of copy ``c`` and ``gpu[c]`` its GPU. An expert with ``r`` copies gives each
``1 / r`` of its tokens and of its flows in and out (the evaluator's replica
model), so with the copies of every layer fixed in number, moving copies is
linear in each layer once its neighbours are fixed: a copy of expert ``e`` on
GPU ``g`` costs ``layer_costs[e, g] / r`` and carries ``loads[e] / r``.
Without replicas a layer has one copy per expert, in expert order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rota.problems.placement import PlacementInstance, PlacementSolution


@dataclass
class Layout:
    """Per layer: ``owner`` (expert of each copy) and ``gpu`` (GPU of each copy)."""

    owner: list[np.ndarray]
    gpu: list[np.ndarray]

    @classmethod
    def of(cls, solution: PlacementSolution) -> Layout:
        owner, gpu = [], []
        for layer in solution.placement:
            experts = [e for e, gpus in enumerate(layer) for _ in gpus]
            owner.append(np.array(experts, dtype=np.int64))
            gpu.append(np.array([g for gpus in layer for g in gpus], dtype=np.int64))
        return cls(owner, gpu)

    @classmethod
    def of_array(cls, placement: np.ndarray) -> Layout:
        experts = np.arange(placement.shape[1])
        return cls([experts.copy() for _ in placement], [row.copy() for row in placement])

    def copy(self) -> Layout:
        return Layout([o.copy() for o in self.owner], [g.copy() for g in self.gpu])

    def solution(self) -> PlacementSolution:
        layers = []
        for owner, gpu in zip(self.owner, self.gpu, strict=True):
            experts = int(owner.max()) + 1 if owner.size else 0
            gpus: list[list[int]] = [[] for _ in range(experts)]
            for e, g in zip(owner, gpu, strict=True):
                gpus[e].append(int(g))
            layers.append(tuple(tuple(sorted(g)) for g in gpus))
        return PlacementSolution(tuple(layers))

    @property
    def replicated(self) -> bool:
        return any(len(o) != len(np.unique(o)) for o in self.owner)

    def counts(self, instance: PlacementInstance, li: int) -> np.ndarray:
        """``(C,)`` copies of each copy's expert."""
        owner = self.owner[li]
        return np.bincount(owner, minlength=instance.num_experts)[owner]

    def shares(self, instance: PlacementInstance, li: int) -> np.ndarray:
        """``(E, G)`` share of each expert's tokens on each GPU."""
        share = np.zeros((instance.num_experts, instance.gpus))
        np.add.at(share, (self.owner[li], self.gpu[li]), 1.0 / self.counts(instance, li))
        return share

    def item_loads(self, instance: PlacementInstance, li: int) -> np.ndarray:
        """``(C,)`` tokens each copy computes."""
        return instance.loads[li][self.owner[li]] / self.counts(instance, li)

    def gpu_loads(self, instance: PlacementInstance, li: int, gpu: np.ndarray) -> np.ndarray:
        """``(G,)`` tokens on each GPU of layer ``li`` if its copies were on ``gpu``."""
        return np.bincount(gpu, weights=self.item_loads(instance, li), minlength=instance.gpus)

    def item_costs(self, instance: PlacementInstance, li: int, right: bool = True) -> np.ndarray:
        """``(C, G)`` weighted communication of each copy of layer ``li`` on each GPU, with
        the neighbour layers as they are (the next one only if ``right``)."""
        cost = np.zeros((instance.num_experts, instance.gpus))
        if li > 0:  # sum_i flows[l-1][i, e] * sum_h S[l-1][i, h] hop[h, g]
            cost += instance.flows[li - 1].T @ (self.shares(instance, li - 1) @ instance.hop)
        if right and li < instance.num_layers - 1:  # the hop matrix is symmetric
            cost += instance.flows[li] @ (self.shares(instance, li + 1) @ instance.hop)
        owner = self.owner[li]
        return instance.comm_weight * cost[owner] / self.counts(instance, li)[:, None]

    def part(
        self,
        instance: PlacementInstance,
        li: int,
        gpu: np.ndarray,
        costs: np.ndarray,
        joint: bool,
    ) -> float:
        """What a layer solve minimises with layer ``li``'s copies on ``gpu``: the
        communication at ``costs``, plus (``joint``) the busiest GPU."""
        comm = float(costs[np.arange(len(gpu)), gpu].sum())
        return comm + (float(self.gpu_loads(instance, li, gpu).max()) if joint else 0.0)

    def busiest(self, instance: PlacementInstance) -> np.ndarray:
        """``(L,)`` the busiest GPU's load of every layer."""
        return np.array(
            [self.gpu_loads(instance, li, g).max() for li, g in enumerate(self.gpu)], dtype=float
        )


def load_caps(
    instance: PlacementInstance, layout: Layout, max_imbalance: float | None
) -> np.ndarray | None:
    """``(L,)`` caps on every GPU's load per layer: ``max_imbalance`` times the mean, or
    the busiest GPU of ``layout`` where that is higher (so ``layout`` always fits)."""
    if max_imbalance is None:
        return None
    mean = instance.loads.sum(axis=1) / instance.gpus
    return np.maximum(max_imbalance * mean, layout.busiest(instance))


def round_layer(
    instance: PlacementInstance,
    layout: Layout,
    li: int,
    values: np.ndarray,
    costs: np.ndarray,
    cap: float,
) -> np.ndarray | None:
    """GPUs of layer ``li``'s copies from a fractional assignment ``values`` (an LP optimum).

    Copies the LP places whole stay there; the others, heaviest first, go to
    the GPU with room (a free slot, no copy of the same expert, load within
    ``cap``) where the LP put most of them, the cheapest among equals; where no
    GPU has room within ``cap``, to one with a free slot. ``None`` when no GPU
    has a free slot for a copy.
    """
    owner, loads = layout.owner[li], layout.item_loads(instance, li)
    row = np.where(values.max(axis=1) >= 1 - 1e-6, values.argmax(axis=1), -1)
    placed = row >= 0
    count = np.bincount(row[placed], minlength=instance.gpus)
    load = np.bincount(row[placed], weights=loads[placed], minlength=instance.gpus)
    holds = np.zeros((instance.num_experts, instance.gpus), dtype=bool)
    holds[owner[placed], row[placed]] = True
    for c in sorted(np.flatnonzero(~placed), key=lambda c: -loads[c]):
        free = (count < instance.slots) & ~holds[owner[c]]
        room = free & (load + loads[c] <= cap * (1 + 1e-9))
        open_ = np.flatnonzero(room if room.any() else free)
        if not open_.size:
            return None
        g = open_[np.lexsort((costs[c, open_], -values[c, open_]))[0]]
        row[c] = g
        count[g] += 1
        load[g] += loads[c]
        holds[owner[c], g] = True
    return repair(row, owner, loads, costs, cap)


def repair(
    row: np.ndarray, owner: np.ndarray, loads: np.ndarray, costs: np.ndarray, cap: float
) -> np.ndarray:
    """``row`` with copies swapped between GPUs until no GPU's load exceeds ``cap``.

    Each step takes the most overloaded GPU and swaps one of its copies with a
    lighter copy elsewhere: the cheapest swap that brings both GPUs within
    ``cap`` if there is one, else the one that lowers their overload most. It
    stops when no swap lowers the overload. Slot counts never change, and no
    GPU gets two copies of one expert.
    """
    row = row.copy()
    gpus = costs.shape[1]
    limit = cap * (1 + 1e-9)
    holds = np.zeros((int(owner.max()) + 1, gpus), dtype=bool)
    holds[owner, row] = True
    for _ in range(len(row)):
        load = np.bincount(row, weights=loads, minlength=gpus)
        g = int(np.argmax(load))
        if load[g] <= limit:
            break
        here, there = np.flatnonzero(row == g), np.flatnonzero(row != g)
        h = row[there]
        delta = loads[here][:, None] - loads[there][None, :]  # load leaving g
        before = (load[g] - limit) + np.maximum(load[h] - limit, 0)[None, :]
        after = np.maximum(load[g] - delta - limit, 0) + np.maximum(load[h] + delta - limit, 0)
        clash = holds[owner[here]][:, h] | holds[owner[there], g][None, :]
        useful = (delta > 0) & ~clash & (after < before - 1e-9)
        if not useful.any():
            break
        extra = (
            costs[here[:, None], h[None, :]] - costs[here, g][:, None]
            + costs[there, g][None, :] - costs[there, h][None, :]
        )  # fmt: skip
        resolved = useful & (after == 0)
        key = np.where(resolved, extra, np.inf)
        if not resolved.any():
            key = np.where(useful, after - before, np.inf)
        a, b = np.unravel_index(int(np.argmin(key)), key.shape)
        c, d = here[a], there[b]
        holds[owner[c], g], holds[owner[d], h[b]] = False, False
        row[c], row[d] = h[b], g
        holds[owner[c], h[b]], holds[owner[d], g] = True, True
    return row


__all__ = ["Layout", "load_caps", "repair", "round_layer"]
