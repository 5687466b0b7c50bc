"""Batched granular local search on flat sequences.

One round evaluates, for every individual of every instance at once, each
client ``u`` against its ``k`` nearest clients ``v`` under seven moves:
relocate ``u`` (or the two or three clients from ``u`` on: or-opt) after
``v``, relocate ``u`` before ``v``, swap ``u`` and ``v``, 2-opt* (``u``'s
route continues with ``v`` and ``v``'s former predecessor with ``u``'s
tail: tails are exchanged, never reversed, so asymmetric matrices are safe),
2-opt inside a route (symmetric instances only: it reverses a segment), and
``u`` into an empty route. Each client keeps its best move; the moves applied
are chosen greedily by gain on pairwise disjoint routes (:func:`_disjoint`),
so their gains add up exactly and the penalised cost falls by their sum.
Rounds repeat until nothing improves.

Gains are penalised costs: distance, plus weights on load over capacity and
on time warp (HGS-CVRP's time-window segments, concatenated in O(1) from
each position's forward and backward segments). A relocate or swap inside
one route of an instance with time windows also needs the segment of the
clients between the two positions: a table holds the segment of every run
of up to :data:`MAX_INTRA_SPAN` consecutive positions, built in as many
steps, and moves whose clients lie further apart in their route are not
evaluated. 2-opt reverses a segment, which time windows (and asymmetric
matrices) do not survive in O(1), so it stays off there.

Applying moves needs no loop over them: each move renumbers one or two
ranges of positions (a moved client, a tail, a reversed segment) with sort
keys placed just after its anchor, and one argsort rebuilds the sequences.
"""

from __future__ import annotations

import torch

from rota.solvers.ga.encoding import Batch, Segment, merge, node, take, visit

#: Smallest penalised gain (in normalised cost) that counts as an improvement.
EPSILON = 1e-12

#: Rounds per call at most; a local optimum is usually reached far sooner.
MAX_ROUNDS = 1000

#: Most clients between the two ends of a relocate or swap inside one route that
#: time windows let the search evaluate: the table of inner segments costs one
#: segment merge over the whole population per client of span. Granular
#: neighbours are close in space, so in a route they are rarely further apart.
MAX_INTRA_SPAN = 16


class Routes:
    """What a round needs of flat sequences (B, P, M): positions, routes, loads, segments."""

    def __init__(self, batch: Batch, seq: torch.Tensor, weights: torch.Tensor) -> None:
        self.batch, self.seq, self.weights = batch, seq, weights
        B, P, M = seq.shape
        device = seq.device
        self.positions = torch.arange(M, device=device)
        depot = seq == 0
        self.rid = torch.cumsum(depot.long(), dim=2) - 1
        pos = torch.zeros((B, P, batch.nodes), dtype=torch.int64, device=device)
        clients = torch.where(depot, batch.nodes, seq)
        pos = torch.cat([pos, pos[:, :, :1]], dim=2)
        pos.scatter_(2, clients, self.positions.expand(B, P, M).contiguous())
        self.pos = pos[:, :, : batch.nodes]
        start = torch.full((B, P, M + 1), M, dtype=torch.int64, device=device)
        start.scatter_(
            2, torch.where(depot, self.rid, M), self.positions.expand(B, P, M).contiguous()
        )
        self.start = start[:, :, :M]
        self.end = torch.cat([self.start[:, :, 1:], torch.full_like(start[:, :, :1], M)], dim=2)
        demand = node(batch.demand, seq)
        self.load = torch.zeros((B, P, M), dtype=torch.float64, device=device)
        self.load.scatter_add_(2, self.rid, demand)
        cumulative = torch.cumsum(demand, dim=2)
        self.prefix = cumulative - cumulative.gather(2, self.start.gather(2, self.rid))
        capacity = batch.capacity[:, None, None]
        self.capacity = capacity
        self.excess = torch.clamp(self.load - capacity, min=0)
        self.live = self.positions < batch.routes[:, None, None]  # route ids in use
        self.timed = batch.timed
        if self.timed:
            self._segments()
        else:
            self.warp = torch.zeros_like(self.load)

    def _segments(self) -> None:
        # Segments concatenate associatively, so every route's prefixes (and
        # suffixes) come from a scan by doubling: all routes at once, in as
        # many steps as the bits of the longest route's length.
        batch, seq = self.batch, self.seq
        M = seq.shape[2]
        visits = visit(batch, seq)
        depot = seq == 0
        into = self.positions - self.start.gather(2, self.rid)  # steps since the route began
        left = torch.where(depot, 0, self.end.gather(2, self.rid) - self.positions)
        forward, backward = visits, visits
        reach = 1
        while reach <= int(into.max()):
            before = _shifted(forward, -reach)
            forward = merge(batch, before, forward).where(into >= reach, forward)
            reach *= 2
        reach = 1
        while reach <= int(left.max()):
            backward = merge(batch, backward, _shifted(backward, reach)).where(
                left >= reach, backward
            )
            reach *= 2
        self.forward, self.backward = list(forward.fields()), list(backward.fields())
        self.span = min(MAX_INTRA_SPAN, int(into.max()))
        inner, runs = visits, [list(visits.fields())]
        for length in range(1, self.span):
            inner = merge(batch, inner, _shifted(visits, length))
            runs.append(list(inner.fields()))
        # (B, P, span * M) per field: the run of ``d + 1`` positions from ``p`` at d * M + p
        self.runs = [torch.cat([run[k] for run in runs], dim=2) for k in range(6)]
        last = (self.end - 1).clamp(max=M - 1)
        depot_visit = visit(batch, torch.zeros_like(seq))
        closed = merge(batch, self.fwd(last), depot_visit)
        self.warp = torch.where(self.end < M, closed.warp, 0.0)

    def fwd(self, position: torch.Tensor) -> Segment:
        """The route from its depot through ``position``."""
        position = self.clamp(position)
        return Segment(*(take(f, position) for f in self.forward))

    def bwd(self, position: torch.Tensor) -> Segment:
        """The route from ``position`` to its closing depot."""
        position = self.clamp(position)
        return Segment(*(take(f, position) for f in self.backward))

    def between(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[Segment, torch.Tensor]:
        """The segment of positions ``lo`` to ``hi`` of one route, and where the table has it.

        Only runs of at most ``span`` positions are in the table; elsewhere (and
        where ``hi < lo``) the segment returned is meaningless and the mask false.
        """
        M = self.seq.shape[2]
        length = hi - lo
        held = (length >= 0) & (length < self.span)
        index = length.clamp(0, max(self.span - 1, 0)) * M + self.clamp(lo)
        return Segment(*(take(f, index) for f in self.runs)), held

    def clamp(self, position: torch.Tensor) -> torch.Tensor:
        # moves that would reach past the sequence are masked; their lookups must not fail
        return position.clamp(0, self.seq.shape[2] - 1)

    def at(self, values: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """``values`` (B, P, M) at positions (or route ids) ``position``."""
        return take(values, self.clamp(position))

    def change(self, route: torch.Tensor, load: torch.Tensor, warp: torch.Tensor | None):
        """Penalty change of ``route`` when its load and warp become ``load`` and ``warp``."""
        excess = torch.clamp(load - self.capacity.view(-1, *[1] * (load.dim() - 1)), min=0)
        out = self.weights[:, 0].view(-1, *[1] * (load.dim() - 1)) * (
            excess - take(self.excess, route)
        )
        if warp is not None:
            out = out + self.weights[:, 1].view(-1, *[1] * (load.dim() - 1)) * (
                warp - take(self.warp, route)
            )
        return out

    def totals(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(distance, load over capacity, time warp) of each individual, (B, P) each."""
        seq = self.seq
        distance = self.batch.distance(seq[:, :, :-1], seq[:, :, 1:]).sum(dim=2)
        return distance, self.excess.sum(dim=2), self.warp.sum(dim=2)


def _shifted(segment: Segment, steps: int) -> Segment:
    """Each position's field ``steps`` positions on (back where negative), the last (or
    first) position's repeated past the end: callers mask what that padding reaches."""

    def shift(f: torch.Tensor) -> torch.Tensor:
        if steps >= 0:
            return torch.cat([f[:, :, steps:], f[:, :, -1:].expand(-1, -1, steps)], dim=2)
        return torch.cat([f[:, :, :1].expand(-1, -1, -steps), f[:, :, :steps]], dim=2)

    return Segment(*(shift(f) for f in segment.fields()))


def penalised(batch: Batch, seq: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Distance plus weighted load excess and time warp, (B, P)."""
    distance, excess, warp = Routes(batch, seq, weights).totals()
    return distance + weights[:, 0, None] * excess + weights[:, 1, None] * warp


class _Moves:
    """Gains and ranges of every move type for one round.

    Gains are (B, P, N, V, K): client ``u``, variant of the move (the length and
    anchor of a relocate; one for the other moves) and neighbour ``v``. What
    depends on ``u`` alone keeps size 1 in the last two dimensions (ten times
    fewer elements), and the variants of a relocate share one evaluation (a
    quarter of its tensor operations a round: a GPU pays per kernel launch).
    """

    def __init__(self, routes: Routes) -> None:
        self.r = routes
        batch, seq = routes.batch, routes.seq
        B, P, M = seq.shape
        self.S = M + 1  # sort-key spacing: a range of up to M positions fits between two keys
        N = batch.nodes - 1
        clients = torch.arange(1, N + 1, device=seq.device)
        self.u = clients.view(1, 1, N, 1, 1).expand(B, P, N, 1, 1)
        self.pu = take(routes.pos, self.u)
        self.valid_u = self.u <= batch.n.view(B, 1, 1, 1, 1)
        # reversing a segment breaks its time-window segment: 2-opt only without windows
        self.reversible = ~batch.windowed.view(B, 1, 1, 1, 1)

    def seq_at(self, position: torch.Tensor) -> torch.Tensor:
        return take(self.r.seq, position.clamp(0, self.r.seq.shape[2] - 1))

    def cost(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        return self.r.batch.distance(i, j)

    def relocate(self, anchor: torch.Tensor, lengths: tuple[int, ...]) -> tuple[torch.Tensor, dict]:
        """Move the ``lengths[i]`` clients from ``u`` to just after ``anchor[..., i, :]``."""
        r, pu, u = self.r, self.pu, self.u
        span = torch.tensor(lengths, device=pu.device).view(1, 1, 1, -1, 1)
        last_pos = pu + span - 1  # (B, P, N, V, 1)
        inside = torch.ones_like(self.valid_u)
        for step in range(1, max(lengths)):
            inside = inside & ((self.seq_at(pu + step) > 0) | (span <= step))
        pred, last, after = self.seq_at(pu - 1), self.seq_at(last_pos), self.seq_at(last_pos + 1)
        x, y = self.seq_at(anchor), self.seq_at(anchor + 1)
        ok = inside & ((anchor < pu - 1) | (anchor > last_pos)) & (anchor >= 0)
        delta = (
            self.cost(pred, after) - self.cost(pred, u) - self.cost(last, after)
            + self.cost(x, u) + self.cost(last, y) - self.cost(x, y)
        )  # fmt: skip
        ra = r.at(r.rid, anchor)
        ru = r.at(r.rid, pu)
        same = ra == ru
        moved = r.at(r.prefix, last_pos) - r.at(r.prefix, pu - 1)
        warp_u = warp_a = None
        within = 0.0  # penalty change of a move inside one route: none without time windows
        if r.timed:
            b = r.batch
            pieces = [visit(b, u)]  # the first 1, 2, ... clients from u
            for step in range(1, max(lengths)):
                pieces.append(merge(b, pieces[-1], visit(b, self.seq_at(pu + step))))
            piece = Segment(
                *(torch.cat([pieces[n - 1].fields()[k] for n in lengths], dim=3) for k in range(6))
            )
            warp_u = merge(b, r.fwd(pu - 1), r.bwd(last_pos + 1)).warp
            head = merge(b, r.fwd(anchor), piece)
            warp_a = merge(b, head, r.bwd(anchor + 1)).warp
            # inside one route, the clients between the anchor and the piece shift over
            back, back_held = r.between(anchor + 1, pu - 1)
            ahead, ahead_held = r.between(last_pos + 1, anchor)
            earlier = merge(b, merge(b, head, back), r.bwd(last_pos + 1))
            later = merge(b, merge(b, merge(b, r.fwd(pu - 1), ahead), piece), r.bwd(anchor + 1))
            forward = anchor < pu
            warp_same = torch.where(forward, earlier.warp, later.warp)
            within = r.change(ru, take(r.load, ru), warp_same)
            held = torch.where(forward, back_held, ahead_held)
            ok = ok & (~same | held | self.reversible)  # without windows any span is exact
        penalty = r.change(ru, take(r.load, ru) - moved, warp_u)
        penalty = penalty + r.change(ra, take(r.load, ra) + moved, warp_a)
        delta = delta + torch.where(same, within, penalty)
        ranges = {"r1": ru, "r2": ra, "lo1": pu, "hi1": last_pos, "base1": anchor * self.S + 1,
                  "step1": torch.ones_like(pu)}  # fmt: skip
        return self._gain(delta, ok), ranges

    def swap(self, v: torch.Tensor) -> tuple[torch.Tensor, dict]:
        r, u, pu = self.r, self.u, self.pu
        pv = take(r.pos, v)
        pred_u, succ_u = self.seq_at(pu - 1), self.seq_at(pu + 1)
        pred_v, succ_v = self.seq_at(pv - 1), self.seq_at(pv + 1)
        ok = (pv != pu + 1) & (pv != pu - 1)
        delta = (
            self.cost(pred_u, v) + self.cost(v, succ_u) + self.cost(pred_v, u)
            + self.cost(u, succ_v) - self.cost(pred_u, u) - self.cost(u, succ_u)
            - self.cost(pred_v, v) - self.cost(v, succ_v)
        )  # fmt: skip
        ru, rv = r.at(r.rid, pu), r.at(r.rid, pv)
        same = ru == rv
        du, dv = node(r.batch.demand, u), node(r.batch.demand, v)
        warp_u = warp_v = None
        within = 0.0  # penalty change of a move inside one route: none without time windows
        if r.timed:
            b = r.batch
            warp_u = merge(b, merge(b, r.fwd(pu - 1), visit(b, v)), r.bwd(pu + 1)).warp
            warp_v = merge(b, merge(b, r.fwd(pv - 1), visit(b, u)), r.bwd(pv + 1)).warp
            first, second = torch.minimum(pu, pv), torch.maximum(pu, pv)
            inner, held = r.between(first + 1, second - 1)
            swapped = merge(b, r.fwd(first - 1), visit(b, self.seq_at(second)))
            swapped = merge(b, merge(b, swapped, inner), visit(b, self.seq_at(first)))
            within = r.change(ru, take(r.load, ru), merge(b, swapped, r.bwd(second + 1)).warp)
            ok = ok & (~same | held | self.reversible)
        penalty = r.change(ru, take(r.load, ru) - du + dv, warp_u)
        penalty = penalty + r.change(rv, take(r.load, rv) - dv + du, warp_v)
        delta = delta + torch.where(same, within, penalty)
        one = torch.zeros_like(pu)
        ranges = {"r1": ru, "r2": rv, "lo1": pu, "hi1": pu, "base1": pv * self.S, "step1": one,
                  "lo2": pv, "hi2": pv, "base2": pu * self.S, "step2": one}  # fmt: skip
        return self._gain(delta, ok), ranges

    def two_opt_star(self, v: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """``u`` then ``v`` in one route; ``v``'s predecessor ``w`` then ``u``'s old tail."""
        r, u, pu = self.r, self.u, self.pu
        pv = take(r.pos, v)
        pw = pv - 1
        w, succ_u = self.seq_at(pw), self.seq_at(pu + 1)
        ru, rv = r.at(r.rid, pu), r.at(r.rid, pv)
        ok = ru != rv
        delta = self.cost(u, v) + self.cost(w, succ_u) - self.cost(u, succ_u) - self.cost(w, v)
        pre_u, pre_w = r.at(r.prefix, pu), r.at(r.prefix, pw)
        load_u, load_v = take(r.load, ru), take(r.load, rv)
        warp_u = warp_v = None
        if r.timed:
            warp_u = merge(r.batch, r.fwd(pu), r.bwd(pv)).warp
            warp_v = merge(r.batch, r.fwd(pw), r.bwd(pu + 1)).warp
        delta = delta + r.change(ru, pre_u + load_v - pre_w, warp_u)
        delta = delta + r.change(rv, pre_w + load_u - pre_u, warp_v)
        one = torch.ones_like(pu)
        ranges = {"r1": ru, "r2": rv,
                  "lo1": pu + 1, "hi1": r.at(r.end, ru) - 1, "base1": pw * self.S + 1, "step1": one,
                  "lo2": pw + 1, "hi2": r.at(r.end, rv) - 1, "base2": pu * self.S + 1,
                  "step2": one}  # fmt: skip
        return self._gain(delta, ok), ranges

    def two_opt(self, v: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Reverse the part of a route between ``u`` and ``v`` (symmetric instances)."""
        r = self.r
        pu, pv = torch.broadcast_tensors(self.pu, take(r.pos, v))
        a, b = torch.minimum(pu, pv), torch.maximum(pu, pv)
        xa, xb = self.seq_at(a), self.seq_at(b)
        sa, sb = self.seq_at(a + 1), self.seq_at(b + 1)
        ru = r.at(r.rid, pu)
        ok = (ru == r.at(r.rid, pv)) & (b > a + 1) & self.reversible
        ok = ok & r.batch.symmetric.view(-1, 1, 1, 1, 1)
        delta = self.cost(xa, xb) + self.cost(sa, sb) - self.cost(xa, sa) - self.cost(xb, sb)
        ranges = {"r1": ru, "r2": ru, "lo1": a + 1, "hi1": b, "base1": b * self.S,
                  "step1": torch.full_like(a, -self.S)}  # fmt: skip
        return self._gain(delta, ok), ranges

    def empty_route(self) -> tuple[torch.Tensor, dict]:
        """Move ``u`` alone into the first unused route slot, if there is one."""
        r, pu = self.r, self.pu
        M = r.seq.shape[2]
        empty = (r.end == r.start + 1) & r.live & (r.end < M)
        has = empty.any(dim=2, keepdim=True)
        slot = empty.long().argmax(dim=2, keepdim=True)  # (B, P, 1)
        anchor = r.start.gather(2, slot).view(*slot.shape, 1, 1).expand_as(pu)
        gain, ranges = self.relocate(anchor, (1,))
        return torch.where(has.view(*has.shape, 1, 1), gain, -torch.inf), ranges

    def _gain(self, delta: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        return torch.where(ok & self.valid_u, -delta, -torch.inf)


_RANGE_KEYS = ("r1", "r2", "lo1", "hi1", "base1", "step1", "lo2", "hi2", "base2", "step2")


def _best_over_neighbours(gain: torch.Tensor, ranges: dict) -> tuple[torch.Tensor, dict]:
    """Each client's best move of one type: (B, P, N) gains and range fields.

    Ties go to the first variant, then the first neighbour.
    """
    B, P, N, V, K = gain.shape
    best, index = gain.reshape(B, P, N, V * K).max(dim=3, keepdim=True)
    out = {}
    for key in _RANGE_KEYS:
        value = ranges.get(key)
        if value is None:  # a move with one range: the second is empty
            out[key] = torch.zeros_like(index) if key != "hi2" else torch.full_like(index, -1)
            out[key] = out[key].squeeze(3)
            continue
        # a field of size 1 along the variants or the neighbours is read at 0 there
        variants, neighbours = value.shape[3], value.shape[4]
        at = torch.zeros_like(index)
        if variants > 1:
            at = at + index // K * neighbours
        if neighbours > 1:
            at = at + index % K
        value = value.expand(B, P, N, variants, neighbours)
        out[key] = value.reshape(B, P, N, variants * neighbours).gather(3, at).squeeze(3)
    return best.squeeze(3), out


def improve_round(
    batch: Batch, seq: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One round: the sequences after the applied moves, and how many were applied (B, P)."""
    routes = Routes(batch, seq, weights)
    moves = _Moves(routes)
    B, P, M = seq.shape
    N = batch.nodes - 1
    if batch.neighbours.shape[2] == 0 or N < 2:
        return seq, torch.zeros((B, P), dtype=torch.int64, device=seq.device)
    v = batch.neighbours[:, 1:, :].view(B, 1, N, 1, -1).expand(B, P, N, 1, -1)
    valid_v = v != moves.u
    pv = take(routes.pos, v)
    # or-opt of 1, 2 and 3 clients after v, and 1 client before v: one evaluation
    anchors = torch.cat([pv, pv, pv, pv - 1], dim=3)
    candidates = [moves.relocate(anchors, (1, 2, 3, 1))]
    candidates += [moves.swap(v), moves.two_opt_star(v)]
    if bool((batch.symmetric & ~batch.windowed).any()):  # nowhere else may 2-opt reverse
        candidates.append(moves.two_opt(v))
    gains, fields = [], {key: [] for key in _RANGE_KEYS}
    for gain, ranges in candidates:
        best, chosen = _best_over_neighbours(torch.where(valid_v, gain, -torch.inf), ranges)
        gains.append(best)
        for key in _RANGE_KEYS:
            fields[key].append(chosen[key])
    gain, ranges = moves.empty_route()
    best, chosen = _best_over_neighbours(gain, ranges)
    gains.append(best)
    for key in _RANGE_KEYS:
        fields[key].append(chosen[key])

    stacked = torch.stack(gains, dim=3)
    gain, kind = stacked.max(dim=3, keepdim=True)
    f = {
        key: torch.stack(values, dim=3).gather(3, kind).squeeze(3) for key, values in fields.items()
    }
    gain = gain.squeeze(3)
    accept = _disjoint(gain, f["r1"], f["r2"], M)
    return _apply(seq, accept, f, moves.S), accept.sum(dim=2)


def _disjoint(gain: torch.Tensor, r1: torch.Tensor, r2: torch.Tensor, M: int) -> torch.Tensor:
    """Improving moves on pairwise disjoint routes, chosen greedily by gain.

    A pass accepts each move that is the best (then lowest client) of every
    route it touches among the moves still pending; the routes it touches then
    close, with every move that touches them. Passes repeat until no move is
    pending, so the accepted set is maximal: a single pass leaves a route idle
    whenever its best move lost its other route to a better one, and took
    about three moves per individual per round on CVRP100 with thirteen routes.
    Every pass accepts at least the best pending move of each individual, so the
    passes end.
    """
    B, P, N = gain.shape
    ids = torch.arange(N, device=gain.device).expand(B, P, N)
    accept = torch.zeros_like(gain, dtype=torch.bool)
    pending = gain > EPSILON
    while bool(pending.any()):
        score = torch.where(pending, gain, -torch.inf)
        best = torch.full((B, P, M), -torch.inf, dtype=gain.dtype, device=gain.device)
        best.scatter_reduce_(2, r1, score, "amax")
        best.scatter_reduce_(2, r2, score, "amax")
        top1, top2 = score == best.gather(2, r1), score == best.gather(2, r2)
        first = torch.full((B, P, M), N, dtype=torch.int64, device=gain.device)
        first.scatter_reduce_(2, r1, torch.where(top1, ids, N), "amin")
        first.scatter_reduce_(2, r2, torch.where(top2, ids, N), "amin")
        chosen = pending & top1 & top2 & (first.gather(2, r1) == ids) & (first.gather(2, r2) == ids)
        accept |= chosen
        closed = torch.zeros((B, P, M), dtype=torch.int64, device=gain.device)
        closed.scatter_add_(2, r1, chosen.long())
        closed.scatter_add_(2, r2, chosen.long())
        pending &= (closed.gather(2, r1) == 0) & (closed.gather(2, r2) == 0)
    return accept


def _apply(seq: torch.Tensor, accept: torch.Tensor, f: dict, S: int) -> torch.Tensor:
    """Rebuild the sequences after the accepted moves by sorting new keys."""
    B, P, M = seq.shape
    offset = torch.zeros((B, P, M + 2), dtype=torch.int64, device=seq.device)
    slope = torch.zeros_like(offset)
    count = torch.zeros_like(offset)
    for side in ("1", "2"):
        lo, hi = f["lo" + side], f["hi" + side]
        step, base = f["step" + side], f["base" + side]
        use = accept & (lo <= hi)
        start = torch.where(use, lo, M + 1)
        stop = torch.where(use, hi + 1, M + 1)
        const = torch.where(use, base - step * lo, 0)
        step = torch.where(use, step, 0)
        ones = use.long()
        for target, value in ((offset, const), (slope, step), (count, ones)):
            target.scatter_add_(2, start, value)
            target.scatter_add_(2, stop, -value)
    offset = torch.cumsum(offset, dim=2)[:, :, :M]
    slope = torch.cumsum(slope, dim=2)[:, :, :M]
    inside = torch.cumsum(count, dim=2)[:, :, :M] > 0
    q = torch.arange(M, device=seq.device)
    key = torch.where(inside, offset + slope * q, q * S)
    return seq.gather(2, key.argsort(dim=2))


def local_search(
    batch: Batch,
    seq: torch.Tensor,
    weights: torch.Tensor,
    stop=None,
    searched: torch.Tensor | None = None,
) -> torch.Tensor:
    """Rounds of :func:`improve_round` until no individual improves (or ``stop()`` says so).

    ``searched`` (B, P), if given, says which individuals to search; the others
    are returned as they are.

    An individual that applied no move is at a local optimum and stays there,
    so each round works on the individuals that moved in the last one only:
    they become the rows of one batch (:meth:`Batch.rows`), one individual
    each, whatever instance they belong to. Padding each instance to the
    busiest one's count instead spent about half of every round on settled
    individuals when many instances are solved at once.
    """
    B, P, M = seq.shape
    flat = seq.reshape(B * P, M)
    instance = torch.arange(B, device=seq.device).repeat_interleave(P)
    rows = torch.arange(B * P, device=seq.device)
    if searched is not None:
        rows = rows[searched.reshape(-1)]
    for _ in range(MAX_ROUNDS):
        # the stop is asked before a round too: a call begun late costs no round
        if rows.numel() == 0 or (stop is not None and stop()):
            break
        owner = instance.index_select(0, rows)
        moved, applied = improve_round(
            batch.rows(owner),
            flat.index_select(0, rows).unsqueeze(1),
            weights.index_select(0, owner),
        )
        flat = flat.index_copy(0, rows, moved.squeeze(1))
        rows = rows[applied.squeeze(1) > 0]
    return flat.view(B, P, M)


__all__ = ["Routes", "improve_round", "local_search", "penalised"]
