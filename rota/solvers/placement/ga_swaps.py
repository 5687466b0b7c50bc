"""Swap moves of the genetic solver ``ga``: the batched best-swap local search and random swaps.

A swap exchanges the contents of two slots on different GPUs of one layer
(an expert copy with another, or with an empty slot: a move), so every GPU
keeps its slot count and every expert its number of copies. Two copies of
one expert never meet on a GPU, and no GPU's load passes its layer's cap.

With its two neighbour layers fixed, a layer's communication is linear in
where its copies sit: a copy of expert ``e`` on GPU ``g`` costs
``comm_weight * (F_{l-1}^T S_{l-1} h + F_l S_{l+1} h)[e, g] / copies``.
Every swap of a layer is priced at once, as a ``(G, slots, G, slots)``
tensor: its exact change of the objective (communication plus the busiest
GPU, found among the three busiest) and a *safe* change that credits no
lowering of the busiest GPU, so that safe changes of swaps on distinct GPUs
add up (the new busiest GPU is at most the old one plus the largest rise).

A step improves every layer of one parity (even, then odd, so that the
neighbours stay fixed and the gains are exact) of every individual at once.
Each layer takes the better of its best swap and a set of GPU-disjoint swaps
with negative safe change (rounds of mutual best GPU pairs). A layer is
priced again only once it or a neighbour changed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from rota.solvers.placement.ga_slots import (
    Encoded,
    expert_shares,
    per_chunk,
    slot_loads,
    slot_shares,
)

#: A layer's swaps, priced as (G, slots, G, slots) tensors, keep about this many alive.
_TEMPORARIES = 8
#: Precision of the swap prices: they only choose moves (every applied move is checked
#: again in float64), so single precision suffices and halves their memory.
PRICE = torch.float32


def slot_costs(
    enc: Encoded, population: torch.Tensor, who: torch.Tensor, layer: torch.Tensor
) -> torch.Tensor:
    """``(K, M, G)`` weighted communication of the copy in each slot of layer ``layer[k]`` of
    individual ``who[k]`` if it were on each GPU, with the neighbour layers as they are."""
    layers = enc.layers
    cost = torch.zeros(len(who), enc.experts, enc.gpus, dtype=torch.float64, device=enc.device)
    if layers > 1:
        before = (layer - 1).clamp(min=0)
        after = (layer + 1).clamp(max=layers - 1)
        inflow = enc.flows_t[before] @ (expert_shares(enc, population[who, before]) @ enc.hop)
        cost += torch.where((layer > 0)[:, None, None], inflow, 0.0)
        outflow = enc.flows[layer.clamp(max=layers - 2)] @ (
            expert_shares(enc, population[who, after]) @ enc.hop
        )  # the hop matrix is symmetric: flows out of e cost as flows into it would
        cost += torch.where((layer < layers - 1)[:, None, None], outflow, 0.0)
    cost = torch.cat([cost, cost.new_zeros(len(who), 1, enc.gpus)], dim=1)  # empty slots
    rows = population[who, layer]
    per_slot = cost.gather(1, rows[..., None].expand(-1, -1, enc.gpus))
    return enc.instance.comm_weight * per_slot * slot_shares(enc, rows)[..., None]


def _holds(enc: Encoded, rows: torch.Tensor) -> torch.Tensor:
    """``(K, M, G)``: whether the expert in each slot has a copy on each GPU (never if empty)."""
    cells = torch.zeros(
        rows.shape[0], (enc.experts + 1) * enc.gpus, dtype=torch.bool, device=enc.device
    )
    cells.scatter_(1, rows * enc.gpus + enc.slot_gpu, True)
    cells = cells.view(-1, enc.experts + 1, enc.gpus)
    cells[:, enc.experts] = False
    return cells.gather(1, rows[..., None].expand(-1, -1, enc.gpus))


def _rest(load: torch.Tensor) -> torch.Tensor:
    """``(K, G, G)``: the busiest GPU other than ``a`` and ``b`` at ``[k, a, b]``."""
    count, gpus = load.shape
    top, at = load.topk(min(3, gpus), dim=1)
    if gpus < 3:  # too few GPUs for a third: nothing else is busy
        pad = 3 - gpus
        top = torch.cat([top, top.new_full((count, pad), -torch.inf)], dim=1)
        at = torch.cat([at, at.new_full((count, pad), -1)], dim=1)
    g = torch.arange(gpus, device=load.device)
    out = top[:, 2, None, None].expand(count, gpus, gpus)
    for rank in (1, 0):
        other = at[:, rank, None, None]
        keep = (other != g[None, :, None]) & (other != g[None, None, :])
        out = torch.where(keep, top[:, rank, None, None], out)
    return out


def _priced(
    enc: Encoded, moving: torch.Tensor, q: torch.Tensor, load: torch.Tensor, cap: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(K, G, s, G, s)`` exact and safe changes of every swap, in :data:`PRICE` precision."""
    count, gpus, slots, _ = moving.shape
    moving, q, load = moving.to(PRICE), q.to(PRICE), load.to(PRICE)
    busiest = load.amax(-1)
    # [k, ga, sa, gb, sb]: slot a (GPU ga) and slot b (GPU gb) exchanged
    comm = moving[..., None] + moving.permute(0, 3, 1, 2)[:, :, None]
    q5 = q.view(count, gpus, slots)
    shift = q5[:, None, None] - q5[..., None, None]  # tokens GPU ga gains
    over = load - busiest[:, None]  # <= 0
    excess = torch.maximum(
        over[:, :, None, None, None] + shift, over[:, None, None, :, None] - shift
    )  # the busier GPU of the two after the swap, over the busiest now
    del shift
    if enc.capped:
        room = (cap.to(PRICE) - busiest)[:, None, None, None, None]
        comm.masked_fill_(excess > room, torch.inf)
    if not enc.load_weight:  # hops: the busiest GPU only bounds the moves (caps)
        return comm, comm
    others = (_rest(load) - busiest[:, None, None])[:, :, None, :, None]
    exact = comm + torch.maximum(excess, others)
    safe = comm.add_(excess.clamp_(min=0))
    return exact, safe


def _verified(
    enc: Encoded, gain: torch.Tensor, after: torch.Tensor, cap: torch.Tensor
) -> torch.Tensor:
    """``gain`` where the loads ``after`` a change respect the caps, else ``inf``."""
    if not enc.capped:
        return gain
    return torch.where(after.amax(-1) <= cap, gain, torch.inf)


def improve_layers(
    enc: Encoded, population: torch.Tensor, who: torch.Tensor, layer: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Layers ``layer[k]`` of individuals ``who[k]`` after their best swaps, and which changed.

    The layers must not be neighbours of one another in one individual.
    Swaps are chosen at :data:`PRICE` precision; what is applied is checked
    again in float64 (gain and caps), so rounding never accepts a bad move.
    """
    count, gpus, slots, width = len(who), enc.gpus, enc.slots, enc.width
    rows = population[who, layer]
    cost = slot_costs(enc, population, who, layer).view(count, gpus, slots, gpus)
    q = slot_loads(enc, rows, layer)
    load = q.view(count, gpus, slots).sum(-1)
    busiest = load.amax(-1)
    cap = enc.caps[layer]
    own = cost.diagonal(dim1=1, dim2=3).permute(0, 2, 1)  # (K, G, s): each copy where it is
    # a copy may not go where its expert already is (its own GPU included)
    moving = (cost - own[..., None]).masked_fill(_holds(enc, rows).view(cost.shape), torch.inf)
    moves = moving.view(count, -1)  # [k, slot * G + GPU]: float64, for the checks
    exact, safe = _priced(enc, moving, q, load, cap)
    g = torch.arange(gpus, device=enc.device)
    index = torch.arange(count, device=enc.device)

    # the best single swap
    single = exact.view(count, -1).argmin(1)
    a1, b1 = single // width, single % width
    ga1, gb1 = a1 // slots, b1 // slots
    shift = q[index, b1] - q[index, a1]
    after = load.index_put((index, ga1), shift, accumulate=True)
    after.index_put_((index, gb1), -shift, accumulate=True)
    single_gain = moves[index, a1 * gpus + gb1] + moves[index, b1 * gpus + ga1]
    rise = enc.load_weight * (after.amax(-1) - busiest)
    single_gain = _verified(enc, single_gain + rise, after, cap)
    del exact

    # GPU-disjoint swaps: the best per GPU pair, then rounds of mutual best pairs
    best_b, sub_b = safe.min(-1)  # (K, G, s, G)
    pair_gain, sub_a = best_b.min(2)  # (K, G, G)
    sub_b = sub_b.gather(2, sub_a[:, :, None]).squeeze(2)
    del safe, best_b
    partner = torch.full((count, gpus), -1, dtype=torch.int64, device=enc.device)
    free = torch.ones(count, gpus, dtype=torch.bool, device=enc.device)
    for _ in range(gpus // 2):
        open_ = free[:, :, None] & free[:, None, :]
        value, best = pair_gain.masked_fill(~open_, torch.inf).min(-1)
        mutual = free & (value < 0) & (best.gather(1, best) == g)
        if not bool(mutual.any()):
            break
        partner = torch.where(mutual, best, partner)
        free &= ~mutual
    lead = partner > g  # one entry per pair
    other = partner.clamp(min=0)
    a = g * slots + sub_a.gather(2, other[..., None]).squeeze(-1)
    b = other * slots + sub_b.gather(2, other[..., None]).squeeze(-1)
    pair_comm = moves.gather(1, a * gpus + other) + moves.gather(1, b * gpus + g.expand_as(b))
    moved = torch.where(lead, q.gather(1, b) - q.gather(1, a), 0.0)
    after = (load + moved).scatter_add(1, other, -moved)
    rise = enc.load_weight * (after.amax(-1) - busiest)
    multi_gain = torch.where(lead, pair_comm, 0.0).sum(-1) + rise
    multi_gain = _verified(enc, multi_gain, after, cap)

    use_multi = multi_gain <= single_gain
    changed = torch.minimum(multi_gain, single_gain) < -enc.tolerance
    perm = torch.arange(width, device=enc.device).repeat(count, 1)
    k = (changed & ~use_multi).nonzero().squeeze(1)
    perm[k, a1[k]], perm[k, b1[k]] = b1[k], a1[k]
    k, gk = (lead & (changed & use_multi)[:, None]).nonzero(as_tuple=True)
    perm[k, a[k, gk]], perm[k, b[k, gk]] = b[k, gk], a[k, gk]
    return rows.gather(1, perm), changed


def _mark(dirty: torch.Tensor, who: torch.Tensor, layer: torch.Tensor) -> None:
    """Layers ``layer`` of ``who`` and their neighbours need pricing again."""
    last = dirty.shape[1] - 1
    for shift in (-1, 0, 1):
        dirty[who, (layer + shift).clamp(0, last)] = True


def local_search(
    enc: Encoded,
    population: torch.Tensor,
    dirty: torch.Tensor,
    expired: Callable[[], bool],
) -> int:
    """Improve ``population`` (``(B, L, M)``, in place) until no swap of a dirty layer improves
    it or ``expired()``; ``dirty`` (``(B, L)``) marks the layers to price. Returns the steps."""
    layers = enc.layers
    parity = torch.arange(layers, device=enc.device) % 2
    width = enc.width
    chunk = per_chunk(_TEMPORARIES * max(width * width, enc.experts * enc.experts))
    steps, side = 0, 0
    while bool(dirty.any()) and not expired():
        who, layer = (dirty & (parity == side)[None]).nonzero(as_tuple=True)
        side ^= 1
        if not len(who):
            continue
        steps += 1
        dirty[who, layer] = False
        for w, li in zip(who.split(chunk), layer.split(chunk), strict=True):
            rows, changed = improve_layers(enc, population, w, li)
            population[w, li] = rows
            _mark(dirty, w[changed], li[changed])
    return steps


def random_swaps(
    enc: Encoded,
    population: torch.Tensor,
    dirty: torch.Tensor,
    counts: torch.Tensor,
    generator: torch.Generator,
) -> None:
    """``counts[b]`` random swaps in random layers of individual ``b`` (in place), each
    kept only if it is allowed (no expert twice on a GPU, caps kept, not two empty slots)."""
    batch, layers, width = population.shape
    gpus, slots, empty = enc.gpus, enc.slots, enc.experts
    if gpus < 2:
        return
    index = torch.arange(batch, device=enc.device)

    def draw(high: int) -> torch.Tensor:
        return torch.randint(high, (batch,), generator=generator, device=enc.device)

    for r in range(int(counts.max()) if batch else 0):
        layer, a = draw(layers), draw(width)
        ga = a // slots
        gb = (ga + 1 + draw(gpus - 1)) % gpus
        b = gb * slots + draw(slots)
        rows = population[index, layer]
        ea, eb = rows[index, a], rows[index, b]
        grid = rows.view(batch, gpus, slots)
        clash = ((grid[index, gb] == ea[:, None]).any(-1) & (ea < empty)) | (
            (grid[index, ga] == eb[:, None]).any(-1) & (eb < empty)
        )
        q = slot_loads(enc, rows, layer)
        load = q.view(batch, gpus, slots).sum(-1)
        shift = q[index, b] - q[index, a]
        cap = enc.caps[layer]
        fits = (load[index, ga] + shift <= cap) & (load[index, gb] - shift <= cap)
        ok = (counts > r) & ~((ea == empty) & (eb == empty)) & ~clash & fits
        k = ok.nonzero().squeeze(1)
        population[k, layer[k], a[k]] = eb[k]
        population[k, layer[k], b[k]] = ea[k]
        _mark(dirty, k, layer[k])


__all__ = ["improve_layers", "local_search", "random_swaps", "slot_costs"]
