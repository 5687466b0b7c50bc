"""Prins' split, batched: the best cut of giant tours into routes, under penalties.

A giant tour is a row of an instance's clients (``n_b`` of them, zero-padded).
Route costs are penalised (load over capacity and time warp, at the given
weights), so split always finds a cut and the genetic search decides how far
to trust it. The dynamic programme runs over tour positions (one step per
position, vectorised over batch, population, route count and route length);
a finite fleet adds the number of routes used as a state, so no cut uses more
than ``K_b`` routes (Vidal 2016's limited-fleet split, with the layers as a
tensor axis).
"""

from __future__ import annotations

import torch

from rota.solvers.ga.encoding import Batch, arc, merge, node, visit


def route_costs(batch: Batch, giant: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B, P, N, W): penalised cost of the route ``giant[i : i + w + 1]``; inf past the tour."""
    B, P, N = giant.shape
    W = int(batch.window.max())
    pad = torch.zeros((B, P, W), dtype=giant.dtype, device=giant.device)
    tour = torch.cat([giant, pad], dim=2)
    start = torch.arange(N, device=giant.device)
    depot = torch.zeros_like(giant)
    first = tour[:, :, :N]
    distance = arc(batch.cost, depot, first)
    load = torch.zeros(giant.shape, dtype=torch.float64, device=giant.device)
    segment = merge(batch, visit(batch, depot), visit(batch, first)) if batch.timed else None
    capacity = batch.capacity[:, None, None]
    n = batch.n[:, None, None]
    out = torch.full((B, P, N, W), torch.inf, dtype=torch.float64, device=giant.device)
    previous = first
    for w in range(W):
        current = tour[:, :, w : w + N]
        if w:
            distance = distance + arc(batch.cost, previous, current)
            if segment is not None:
                segment = merge(batch, segment, visit(batch, current))
        load = load + node(batch.demand, current)
        total = distance + arc(batch.cost, current, depot)
        total = total + weights[:, 0, None, None] * torch.clamp(load - capacity, min=0)
        if segment is not None:
            warp = merge(batch, segment, visit(batch, depot)).warp
            total = total + weights[:, 1, None, None] * warp
        valid = (start + w < n) & (w < batch.window[:, None, None])
        out[:, :, :, w] = torch.where(valid, total, torch.inf)
        previous = current
    return out


def split(batch: Batch, giant: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Flat sequences (B, P, M) of the best cuts of ``giant`` (B, P, N) at ``weights`` (B, 2)."""
    B, P, N = giant.shape
    device = giant.device
    costs = route_costs(batch, giant, weights)
    W = costs.shape[3]
    limited = batch.limited
    layers = int(batch.routes[limited].max()) if bool(limited.any()) else 1
    S = layers + 1  # routes used so far: 0..layers; an unlimited fleet saturates at `layers`
    best = torch.full((B, P, S, N + 1), torch.inf, dtype=torch.float64, device=device)
    best[:, :, 0, 0] = 0.0
    back_w = torch.zeros((B, P, S, N + 1), dtype=torch.int64, device=device)
    back_stay = torch.zeros((B, P, S, N + 1), dtype=torch.bool, device=device)
    lengths = torch.arange(1, W + 1, device=device)
    widths = torch.arange(W, device=device)
    saturate = ~limited[:, None, None]
    for j in range(1, N + 1):
        starts = j - lengths
        ok = starts >= 0
        starts = starts.clamp(min=0)
        route = costs[:, :, starts, widths]  # (B, P, W)
        route = torch.where(ok, route, torch.inf)
        reach = best[:, :, :, starts] + route[:, :, None, :]  # (B, P, S, W) from each state
        stay = torch.where(saturate, reach[:, :, -1, :], torch.inf)
        options = torch.cat(
            [reach[:, :, :-1, :], torch.full_like(reach[:, :, :-1, :], torch.inf)], 3
        )
        options[:, :, -1, W:] = stay
        value, choice = options.min(dim=3)
        best[:, :, 1:, j] = value
        back_w[:, :, 1:, j] = choice % W + 1
        back_stay[:, :, 1:, j] = choice >= W

    n = batch.n
    states = torch.arange(S, device=device)
    allowed = (states[None, :] <= batch.routes[:, None]) | ~limited[:, None]  # (B, S)
    final = best.gather(3, n.view(B, 1, 1, 1).expand(B, P, S, 1)).squeeze(3)
    final = torch.where(allowed[:, None, :], final, torch.inf)
    state = final.argmin(dim=2)  # (B, P)
    position = n.view(B, 1).expand(B, P).clone()
    cut = torch.zeros((B, P, N + 1), dtype=torch.bool, device=device)
    flat_back_w, flat_stay = back_w.view(B, P, -1), back_stay.view(B, P, -1)
    while bool((position > 0).any()):
        at = (state * (N + 1) + position).unsqueeze(2)
        w = flat_back_w.gather(2, at).squeeze(2)
        stay = flat_stay.gather(2, at).squeeze(2)
        active = position > 0
        begin = torch.where(active, position - w, 0)
        # an ended row writes position 0, where its first route starts anyway
        cut.scatter_(2, begin.unsqueeze(2), True)
        state = torch.where(active & ~stay, state - 1, state)
        position = begin
    return flat(batch, giant, cut[:, :, :N])


def flat(batch: Batch, giant: torch.Tensor, cut: torch.Tensor) -> torch.Tensor:
    """Flat sequences of giant tours with a route starting at each ``cut`` position."""
    B, P, N = giant.shape
    M = batch.length
    inside = torch.arange(N, device=giant.device) < batch.n[:, None, None]
    where = torch.arange(N, device=giant.device) + torch.cumsum(cut.long(), dim=2)
    where = torch.where(inside, where, M)
    seq = torch.zeros((B, P, M + 1), dtype=torch.int64, device=giant.device)
    seq.scatter_(2, where, giant)
    return seq[:, :, :M]


def giant_tours(batch: Batch, seq: torch.Tensor) -> torch.Tensor:
    """The clients of flat sequences (B, P, M) in visiting order, zero-padded to N."""
    M = seq.shape[2]
    position = torch.arange(M, device=seq.device).expand_as(seq)
    key = torch.where(seq > 0, position, M + position)
    order = key.argsort(dim=2)
    return seq.gather(2, order)[:, :, : batch.nodes - 1]


__all__ = ["flat", "giant_tours", "route_costs", "split"]
