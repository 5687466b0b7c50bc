"""Crossover and mutation of giant tours (B, C, N), zero-padded past each instance's ``n``."""

from __future__ import annotations

import torch


def order_crossover(
    first: torch.Tensor, second: torch.Tensor, n: torch.Tensor, u: torch.Tensor
) -> torch.Tensor:
    """OX: a cyclic slice of ``first``, then the other clients in ``second``'s cyclic order.

    ``u`` (B, C, 2) are uniform numbers choosing the slice's start and length
    (1 to ``n - 1`` clients, so both parents contribute when ``n > 1``).
    """
    B, C, N = first.shape
    n = n.view(B, 1, 1)
    begin = (u[:, :, :1] * n).long().clamp(max=n - 1)
    length = 1 + (u[:, :, 1:] * (n - 1)).long().clamp(max=(n - 2).clamp(min=0))
    t = torch.arange(N, device=first.device).view(1, 1, N)
    inside = t < n
    kept = ((t - begin) % n < length) & inside
    taken = torch.zeros((B, C, N + 1), dtype=torch.bool, device=first.device)
    taken.scatter_(2, torch.where(kept, first, 0), kept)
    taken[:, :, 0] = False
    order = torch.where(inside, (begin + length + t) % n, 0)
    candidate = second.gather(2, order)
    fill = inside & ~taken.gather(2, candidate)
    rank = torch.cumsum(fill.long(), dim=2) - 1
    where = torch.where(fill, (begin + length + rank) % n, N)
    child = torch.cat([torch.where(kept, first, 0), torch.zeros_like(first[:, :, :1])], dim=2)
    child.scatter_(2, where, torch.where(fill, candidate, 0))
    return child[:, :, :N]


def swap_mutation(
    tours: torch.Tensor, n: torch.Tensor, u: torch.Tensor, rate: float
) -> torch.Tensor:
    """Swap two random clients of a tour, in a share ``rate`` of the tours; ``u`` (B, C, 3)."""
    B, _, N = tours.shape
    n = n.view(B, 1, 1)
    i = (u[:, :, :1] * n).long().clamp(max=n - 1)
    j = (u[:, :, 1:2] * n).long().clamp(max=n - 1)
    mutate = u[:, :, 2:] < rate
    a, b = tours.gather(2, i), tours.gather(2, j)
    out = tours.clone()
    out.scatter_(2, i, torch.where(mutate, b, a))
    out.scatter_(2, j, torch.where(mutate, a, b))
    return out


__all__ = ["order_crossover", "swap_mutation"]
