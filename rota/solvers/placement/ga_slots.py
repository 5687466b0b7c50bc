"""Placements as slot tensors, for the genetic solver ``ga``: encoding, decoding, objective.

A layer has ``M = G * slots`` slots, slot ``m`` on GPU ``m // slots``. An
individual is an ``(L, M)`` integer tensor of the expert in every slot, ``E``
marking an empty one; a population is ``(B, L, M)``. Every GPU keeps its
``slots`` slots whatever is swapped, so the capacity holds by construction;
an expert in several slots (on distinct GPUs) has replicas, each carrying
``1 / copies`` of its tokens and flows, as the evaluator has them.

:func:`objective` is the evaluator's formula
(:func:`rota.problems.placement.evaluate`), batched: the busiest GPU of every
layer plus ``comm_weight`` times the hop-weighted traffic ``S_l^T F_l
S_{l+1}`` summed over transitions. Results still go through the evaluator.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from rota.problems.placement import PlacementInstance, PlacementSolution

#: Elements of the largest temporary tensor a batched step builds (float64: 32 MiB),
#: so that a 256-expert, 64-GPU population fits in a few hundred MiB at any size.
CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Encoded:
    """One instance on a torch device, with what every batched step needs."""

    instance: PlacementInstance
    device: torch.device
    loads: torch.Tensor  # (L, E + 1) tokens per expert; the empty column is 0
    flows: torch.Tensor  # (max(L - 1, 1), E, E); zeros for a single layer
    flows_t: torch.Tensor  # flows transposed, contiguous
    hop: torch.Tensor  # (G, G)
    slot_gpu: torch.Tensor  # (M,) GPU of every slot
    caps: torch.Tensor  # (L,) most tokens a GPU may hold per layer; inf without a cap
    capped: bool
    load_weight: float  # 1: the family's objective (joint); 0: traffic alone (hops)
    tolerance: float  # gains smaller than this are float noise, not improvements

    @property
    def layers(self) -> int:
        return self.instance.num_layers

    @property
    def experts(self) -> int:
        return self.instance.num_experts

    @property
    def gpus(self) -> int:
        return self.instance.gpus

    @property
    def slots(self) -> int:
        return self.instance.slots

    @property
    def width(self) -> int:
        """Slots per layer, ``M``."""
        return self.instance.gpus * self.instance.slots


def encode(
    instance: PlacementInstance,
    device: torch.device,
    caps: np.ndarray | None = None,
    traffic_only: bool = False,
) -> Encoded:
    """``instance`` as tensors on ``device``; ``caps`` bounds every GPU's load per layer, and
    ``traffic_only`` makes the search minimise the weighted traffic without the load term."""
    f64 = {"dtype": torch.float64, "device": device}
    layers, experts = instance.num_layers, instance.num_experts
    loads = np.zeros((layers, experts + 1))
    loads[:, :experts] = instance.loads
    flows = instance.flows if layers > 1 else np.zeros((1, experts, experts))
    width = instance.gpus * instance.slots
    caps_array = np.full(layers, np.inf) if caps is None else np.asarray(caps, dtype=float)
    # a layer's objective is at most its tokens plus its weighted flows; 1e-9 of the
    # mean of that separates an improvement from rounding in sums of up to 1e12
    scale = float(instance.loads.sum()) + instance.comm_weight * instance.inter_cost * float(
        instance.flows.sum()
    )
    return Encoded(
        instance=instance,
        device=device,
        loads=torch.tensor(loads, **f64),
        flows=torch.tensor(flows, **f64),
        flows_t=torch.tensor(flows, **f64).transpose(1, 2).contiguous(),
        hop=torch.tensor(instance.hop, **f64),
        slot_gpu=torch.arange(width, device=device) // instance.slots,
        caps=torch.tensor(caps_array * (1 + 1e-9), **f64),
        capped=caps is not None,
        load_weight=0.0 if traffic_only else 1.0,
        tolerance=1e-9 * max(1.0, scale / layers),
    )


def encode_solution(enc: Encoded, solution: PlacementSolution) -> np.ndarray:
    """The ``(L, M)`` slots of a feasible ``solution`` (the evaluator finds no violation)."""
    rows = np.full((enc.layers, enc.width), enc.experts, dtype=np.int64)
    for li, layer in enumerate(solution.placement):
        used = np.zeros(enc.gpus, dtype=np.int64)
        for e, gpus in enumerate(layer):
            for g in gpus:
                rows[li, g * enc.slots + used[g]] = e
                used[g] += 1
    return rows


def decode(enc: Encoded, rows: np.ndarray) -> PlacementSolution:
    """The placement of one individual's ``(L, M)`` slots."""
    layers = []
    for row in rows:
        gpus: list[list[int]] = [[] for _ in range(enc.experts)]
        for m, e in enumerate(row):
            if e < enc.experts:
                gpus[e].append(m // enc.slots)
        layers.append(tuple(tuple(sorted(g)) for g in gpus))
    return PlacementSolution(tuple(layers))


def per_chunk(elements_per_item: int) -> int:
    """Items of a batch processed together so that temporaries stay within budget."""
    return max(1, CHUNK_ELEMENTS // max(1, elements_per_item))


def slot_shares(enc: Encoded, rows: torch.Tensor) -> torch.Tensor:
    """``(..., M)`` share of its expert's tokens each slot carries (0 when empty).

    ``rows`` is ``(..., M)``: layers of any individuals.
    """
    counts = torch.zeros(*rows.shape[:-1], enc.experts + 1, dtype=torch.int64, device=enc.device)
    counts.scatter_add_(-1, rows, torch.ones_like(rows))
    copies = counts.gather(-1, rows).to(torch.float64)
    return torch.where(rows < enc.experts, 1.0 / copies, 0.0)


def slot_loads(enc: Encoded, rows: torch.Tensor, layer: torch.Tensor) -> torch.Tensor:
    """``(K, M)`` tokens each slot computes; ``rows`` is ``(K, M)`` of layers ``layer``."""
    return enc.loads[layer].gather(1, rows) * slot_shares(enc, rows)


def expert_shares(enc: Encoded, rows: torch.Tensor) -> torch.Tensor:
    """``(..., E, G)`` share of each expert's tokens on each GPU.

    No GPU holds two copies of one expert, so every ``(expert, GPU)`` cell is
    written by at most one slot (empty slots all write 0 to a dropped row):
    a plain scatter, deterministic on every device.
    """
    lead = rows.shape[:-1]
    cells = torch.zeros(*lead, (enc.experts + 1) * enc.gpus, dtype=torch.float64, device=enc.device)
    cells.scatter_(-1, rows * enc.gpus + enc.slot_gpu, slot_shares(enc, rows))
    return cells.view(*lead, enc.experts + 1, enc.gpus)[..., : enc.experts, :]


def gpu_loads(enc: Encoded, rows: torch.Tensor, layer: torch.Tensor) -> torch.Tensor:
    """``(K, G)`` tokens on each GPU; ``rows`` is ``(K, M)`` of layers ``layer``."""
    loads = slot_loads(enc, rows, layer)
    return loads.view(*rows.shape[:-1], enc.gpus, enc.slots).sum(-1)


@dataclass
class Scores:
    """The evaluator's figures of a population, ``(B,)`` each, and what the search minimises."""

    objective: torch.Tensor
    load_term: torch.Tensor
    comm: torch.Tensor
    fitness: torch.Tensor  # the objective, or the weighted traffic alone (hops)

    def take(self, index: torch.Tensor) -> Scores:
        return Scores(*(getattr(self, f.name)[index] for f in fields(self)))

    def cat(self, other: Scores) -> Scores:
        return Scores(
            *(torch.cat([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self))
        )


def objective(enc: Encoded, population: torch.Tensor) -> Scores:
    """The evaluator's objective of every individual of ``population`` (``(B, L, M)``)."""
    batch, layers = population.shape[:2]
    per_item = layers * enc.experts * max(enc.experts, enc.gpus)
    parts = [_objective(enc, chunk) for chunk in population.split(per_chunk(per_item))]
    value, load_term, comm = (torch.cat([p[k] for p in parts]) for k in range(3))
    weighted = enc.instance.comm_weight * comm
    fitness = value if enc.load_weight else weighted
    return Scores(value, load_term, comm, fitness)


def _objective(
    enc: Encoded, population: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch, layers, width = population.shape
    layer = torch.arange(layers, device=enc.device).repeat(batch)
    load = gpu_loads(enc, population.reshape(-1, width), layer).view(batch, layers, enc.gpus)
    load_term = load.amax(-1).sum(-1)
    if layers == 1:
        comm = torch.zeros(batch, dtype=torch.float64, device=enc.device)
        return load_term, load_term.clone(), comm
    comm = weighted_traffic(enc.flows, enc.hop, expert_shares(enc, population))
    return load_term + enc.instance.comm_weight * comm, load_term, comm


def weighted_traffic(flows: torch.Tensor, hop: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
    """``(B,)`` hop-weighted traffic ``sum_l sum(S_l^T F_l S_{l+1} * hop)`` of ``B`` placements.

    ``share`` is ``(B, L, E, G)``. ``flows`` is ``(L - 1, E, E)`` when all placements
    are of one instance (the population of ``ga``) or ``(B, L - 1, E, E)``, one
    instance each (a batch of the placement environment); ``hop`` is ``(G, G)``
    or ``(B, G, G)`` likewise.
    """
    batch, layers, experts, gpus = share.shape
    if layers == 1:
        return torch.zeros(batch, dtype=share.dtype, device=share.device)
    if flows.dim() == 3:
        # F_l S_{l+1} for every placement in one product per layer: (L-1, E, B * G)
        following = share[:, 1:].permute(1, 2, 0, 3).reshape(layers - 1, experts, -1)
        onward = torch.bmm(flows, following).view(layers - 1, experts, batch, gpus)
        onward = onward.permute(2, 0, 1, 3)
    else:
        onward = flows @ share[:, 1:]
    traffic = share[:, :-1].transpose(-1, -2) @ onward  # (B, L-1, G, G)
    return (traffic.sum(1) * hop).sum((-1, -2))


def one_hot_shares(gpu: torch.Tensor, gpus: int) -> torch.Tensor:
    """``(..., L, E, G)`` shares of placements without replicas, from ``(..., L, E)`` GPU ids."""
    return torch.nn.functional.one_hot(gpu, gpus).to(torch.float64)


def batch_objective(
    loads: torch.Tensor,
    flows: torch.Tensor,
    hop: torch.Tensor,
    comm_weight: torch.Tensor,
    gpu: torch.Tensor,
) -> torch.Tensor:
    """``(B,)`` evaluator objectives of ``B`` placements without replicas, one instance each.

    ``loads`` ``(B, L, E)``, ``flows`` ``(B, L - 1, E, E)``, ``hop`` ``(B, G, G)``,
    ``comm_weight`` ``(B,)`` and ``gpu`` ``(B, L, E)`` GPU ids, all float64 but ``gpu``.
    """
    share = one_hot_shares(gpu, hop.shape[-1])
    load = (loads.unsqueeze(-2) @ share).squeeze(-2)  # (B, L, G)
    return load.amax(-1).sum(-1) + comm_weight * weighted_traffic(flows, hop, share)


__all__ = [
    "CHUNK_ELEMENTS", "Encoded", "Scores", "batch_objective", "decode", "encode",
    "encode_solution", "expert_shares", "gpu_loads", "objective", "one_hot_shares", "per_chunk",
    "slot_loads", "slot_shares", "weighted_traffic",
]  # fmt: skip
