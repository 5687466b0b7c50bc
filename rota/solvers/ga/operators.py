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
    B = first.shape[0]
    n = n.view(B, 1, 1)
    begin = (u[:, :, :1] * n).long().clamp(max=n - 1)
    length = 1 + (u[:, :, 1:] * (n - 1)).long().clamp(max=(n - 2).clamp(min=0))
    return _slice_crossover(first, second, n, begin, length)


def route_crossover(
    first_seq: torch.Tensor,
    first: torch.Tensor,
    second: torch.Tensor,
    n: torch.Tensor,
    u: torch.Tensor,
) -> torch.Tensor:
    """OX whose slice is whole routes: consecutive routes of the first parent kept intact.

    ``first_seq`` (B, C, M) are the first parents' flat sequences, ``first``
    and ``second`` (B, C, N) the two parents' giant tours; ``u`` (B, C, 2) choose the first
    route and how many follow it (1 to all but one, cyclically, so both parents
    contribute when the first has two routes or more). A selective route
    exchange in giant-tour form: the child inherits routes, not only a run of
    visits, and split may keep them.
    """
    B, C, M = first_seq.shape
    n = n.view(B, 1, 1)
    depot = first_seq == 0
    route = (torch.cumsum(depot.long(), dim=2) - 1).clamp(min=0)
    sizes = torch.zeros((B, C, M), dtype=torch.int64, device=first_seq.device)
    sizes.scatter_add_(2, route, (~depot).long())
    # non-empty routes first, in visiting order: their starts in the giant tour
    order = (sizes == 0).to(torch.int8).argsort(dim=2, stable=True)
    sizes = sizes.gather(2, order)
    routes = (sizes > 0).sum(dim=2, keepdim=True)
    starts = torch.cumsum(sizes, dim=2) - sizes
    pick = (u[:, :, :1] * routes).long().clamp(max=(routes - 1).clamp(min=0))
    count = 1 + (u[:, :, 1:] * (routes - 1)).long().clamp(max=(routes - 2).clamp(min=0))
    index = torch.arange(M, device=first_seq.device).view(1, 1, M)
    chosen = ((index - pick) % routes.clamp(min=1)) < count
    length = torch.where(chosen & (index < routes), sizes, 0).sum(dim=2, keepdim=True)
    begin = starts.gather(2, pick)
    return _slice_crossover(first, second, n, begin, length)


def _slice_crossover(
    first: torch.Tensor,
    second: torch.Tensor,
    n: torch.Tensor,
    begin: torch.Tensor,
    length: torch.Tensor,
) -> torch.Tensor:
    """``first``'s cyclic slice of ``length`` from ``begin``, the rest in ``second``'s order."""
    B, C, N = first.shape
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


__all__ = ["order_crossover", "route_crossover", "swap_mutation"]
