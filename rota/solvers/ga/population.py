"""Population management as in HGS-CVRP: broken-pairs diversity, biased fitness, penalties."""

from __future__ import annotations

import torch

from rota.solvers.ga.encoding import Batch


def broken_pairs(batch: Batch, seq: torch.Tensor) -> torch.Tensor:
    """(B, Q, Q): share of clients whose successor differs between two individuals.

    On symmetric instances a successor that became the predecessor (a route
    run backwards) is no break.
    """
    B, Q, M = seq.shape
    N1 = batch.nodes
    succ = torch.zeros((B, Q, N1), dtype=torch.int64, device=seq.device)
    pred = torch.zeros_like(succ)
    succ.scatter_(2, seq[:, :, :-1], seq[:, :, 1:])
    pred.scatter_(2, seq[:, :, 1:], seq[:, :, :-1])
    a = succ[:, :, None, 1:]
    broken = (a != succ[:, None, :, 1:]) & (
        ~batch.symmetric.view(B, 1, 1, 1) | (a != pred[:, None, :, 1:])
    )
    clients = torch.arange(1, N1, device=seq.device) <= batch.n.view(B, 1, 1, 1)
    share = (broken & clients).sum(dim=3).to(torch.float64) / batch.n.view(B, 1, 1)
    return torch.maximum(share, share.transpose(1, 2))


def _rank(values: torch.Tensor) -> torch.Tensor:
    """Rank of each entry along dim 1 (0 = smallest; ties by index), scaled to [0, 1]."""
    order = values.argsort(dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(values.shape[1], device=values.device).expand_as(order))
    return rank.to(torch.float64) / max(1, values.shape[1] - 1)


def biased_fitness(
    cost: torch.Tensor, distance: torch.Tensor, elite: int, close: int
) -> torch.Tensor:
    """HGS's biased fitness (lower is better): cost rank plus weighted diversity rank.

    Diversity is the mean broken-pairs distance to the ``close`` nearest others.
    """
    Q = cost.shape[1]
    others = distance + torch.eye(Q, dtype=distance.dtype, device=cost.device) * 2.0
    nearest = others.topk(min(close, Q - 1), dim=2, largest=False).values.mean(dim=2)
    return _rank(cost) + (1.0 - elite / Q) * _rank(-nearest)


def survivors(
    cost: torch.Tensor, distance: torch.Tensor, keep: int, elite: int, close: int
) -> torch.Tensor:
    """Indices (B, keep) of the survivors by HGS's biased fitness.

    ``cost`` (B, Q) is penalised, ``distance`` (B, Q, Q) broken pairs. Clones
    (at distance 0 from a better individual) go first; the best individual
    always stays (elitism).
    """
    B, Q = cost.shape
    ids = torch.arange(Q, device=cost.device)
    better = (cost[:, None, :] < cost[:, :, None]) | (
        (cost[:, None, :] == cost[:, :, None]) & (ids[None, None, :] < ids[None, :, None])
    )
    clone = ((distance == 0) & better).any(dim=2)
    biased = biased_fitness(cost, distance, elite, close) + 10.0 * clone
    best = cost.argmin(dim=1, keepdim=True)
    biased = biased.scatter(1, best, -1.0)
    return biased.argsort(dim=1, stable=True)[:, :keep]


def adapt(weights: torch.Tensor, feasible_share: torch.Tensor, target: float) -> torch.Tensor:
    """HGS's penalty rule: heavier when too few offspring are feasible, lighter when too many."""
    up = feasible_share < target - 0.05
    down = feasible_share > target + 0.05
    factor = torch.where(up, 1.2, torch.where(down, 0.85, 1.0))
    return (weights * factor).clamp(1e-6, 1e9)


__all__ = ["adapt", "biased_fitness", "broken_pairs", "survivors"]
