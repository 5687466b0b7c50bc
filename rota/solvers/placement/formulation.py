"""The placement MILPs, built with PuLP: two encodings of the whole placement, and one layer.

Assignment encoding
-------------------
``x[l, e, g] = 1`` when expert ``e`` of layer ``l`` is on GPU ``g``::

    sum_g x[l, e, g] = 1                    every expert on one GPU
    sum_e x[l, e, g] <= slots               a GPU's memory
    M[l] >= sum_e loads[l, e] x[l, e, g]    the busiest GPU of layer l

Communication is linearised by co-location variables, one per flow pair
``(i, j)`` of a transition ``l`` (pairs without flow have none) and GPU ``g``
(``z``), and, with several nodes, per pair and node (``w``; ``X[l, e, n]`` is
``sum_{g in n} x[l, e, g]``)::

    z[l, i, j, g] <= x[l, i, g],   z <= x[l + 1, j, g],   z <= w[l, i, j, node(g)]
    w[l, i, j, n] <= X[l, i, n],   w <= X[l + 1, j, n]
    sum_i z[l, i, j, g] <= slots * x[l + 1, j, g],   sum_j z[l, i, j, g] <= slots * x[l, i, g]
    sum_i w[l, i, j, n] <= slots * G/N * X[l + 1, j, n],   and likewise over j

so that ``sum_g z`` is 1 exactly when ``i`` and ``j`` share a GPU and ``sum_n
w`` when they share a node (the objective pushes both up). A pair's hop cost
is ``1 - sum_g z + (inter_cost - 1) * (1 - sum_n w)``: 0 on one GPU, 1 within
a node, ``inter_cost`` across nodes. The aggregated inequalities are what
make the LP relaxation useful: without them, spreading every expert evenly
over all GPUs co-locates every pair for free. Layer 0 is restricted by
:func:`~rota.solvers.placement.common.first_layer_allowed` (GPU symmetry).

Block encoding (one node, every slot used)
------------------------------------------
A GPU's experts in a layer form a *block*, a ``slots``-subset of the experts;
GPUs are interchangeable, so a placement is, per layer, a partition of the
experts into ``G`` blocks, plus which block follows which on the same GPU.
``y[l, S] = 1`` when block ``S`` is used in layer ``l``; ``u[l, S, T]`` is
the share of a GPU holding ``S`` in layer ``l`` and ``T`` in layer ``l + 1``::

    sum_{S contains e} y[l, S] = 1                  the blocks partition the experts
    sum_T u[l, S, T] = y[l, S],   sum_S u[l, S, T] = y[l + 1, T]
    M[l] >= sum_{S contains e} load_l(S) y[l, S]    for every e: the load of e's block

The co-located flow of a transition is ``sum_{S, T} flows_l(S, T) u[l, S, T]``.
Every integer ``y`` with the best ``u`` for it is a placement (GPUs are the
paths of blocks through the layers), so the model is exact; it has no GPU
symmetry, and its LP relaxation is far tighter (on the 8-expert, 32-layer,
4-GPU benchmark instance within 0.6 % of the optimum, against 9 % for the
assignment encoding). It has ``C(E, slots)**2`` ``u`` per transition, so it is
used only for small ``E`` (:data:`MAX_BLOCK_PAIRS`).

Formulations
------------
``joint`` (MoETuner): minimise ``sum_l M[l] + comm_weight * communication``,
the family's objective.
``hops`` (ExFlow): minimise the bandwidth-weighted cross-GPU hops alone, with
every GPU holding ``floor(E / G)`` to ``ceil(E / G)`` experts of each layer
(ExFlow balances expert counts, not tokens).

The constant part of the communication (every pair at full cost) is kept out
of the PuLP objective and returned as ``offset``: CBC's log reports bounds
without objective constants, so every bound here is ``offset + model bound``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rota.problems.placement import PlacementInstance
from rota.solvers.placement.common import first_layer_allowed, load_lower_bound

FORMULATIONS = ("joint", "hops")
ENCODINGS = ("auto", "assignment", "blocks")
#: Largest number of block-pair variables ``u`` of the block encoding: 8 experts
#: on 4 GPUs over 32 layers have 24,304; 16 experts on 8 GPUs would have 446,400.
MAX_BLOCK_PAIRS = 100_000


@dataclass
class Model:
    """A PuLP model and what is needed to start it and read its solution."""

    problem: Any
    integer_vars: list[Any]
    offset: float  # objective constant kept out of the PuLP objective
    set_start: Callable[[np.ndarray], None]  # give every variable its value in a placement
    decode: Callable[[np.ndarray], np.ndarray]  # a placement: the model's layers, rest as given
    x: dict[tuple[int, int, int], Any] | None = None  # the assignment encoding's binaries

    def assignment_values(self, li: int, shape: tuple[int, int]) -> np.ndarray:
        """``(E, G)`` values of layer ``li``'s assignment binaries after a solve."""
        values = np.zeros(shape)
        for (layer, e, g), var in (self.x or {}).items():
            if layer == li:
                values[e, g] = var.varValue or 0.0
        return values


def _pulp() -> Any:
    import pulp  # loaded by now: see rota.solvers.milp.backends.load_pulp

    return pulp


def _lin(terms: list[tuple[Any, float]]) -> Any:
    return _pulp().LpAffineExpression(terms)


def _add(prob: Any, terms: list[tuple[Any, float]], sense: int, rhs: float) -> None:
    pulp = _pulp()
    prob.addConstraint(pulp.LpConstraint(_lin(terms), sense, rhs=rhs))


def block_pairs(instance: PlacementInstance) -> int | None:
    """``u`` variables of the block encoding, or ``None`` where it does not apply."""
    if instance.nodes > 1 or instance.spare_slots:
        return None
    blocks = math.comb(instance.num_experts, instance.slots)
    return max(instance.num_layers - 1, 1) * blocks * blocks


def assignment_size(instance: PlacementInstance) -> int:
    """Co-location variables (``z`` and ``w``) of the assignment encoding."""
    pairs = int(np.count_nonzero(instance.flows))
    return pairs * (instance.gpus + (instance.nodes if instance.nodes > 1 else 0))


def choose_encoding(instance: PlacementInstance, encoding: str) -> str:
    """``blocks`` where it applies and is small enough (for ``auto``), else ``assignment``."""
    if encoding != "auto":
        return encoding
    pairs = block_pairs(instance)
    return "blocks" if pairs is not None and pairs <= MAX_BLOCK_PAIRS else "assignment"


def _count_bounds(instance: PlacementInstance, formulation: str) -> tuple[int, int]:
    if formulation == "hops":
        return instance.num_experts // instance.gpus, -(-instance.num_experts // instance.gpus)
    return 0, instance.slots


def _busiest_start(instance: PlacementInstance, placement: np.ndarray, li: int) -> float:
    return float(
        np.bincount(placement[li], weights=instance.loads[li], minlength=instance.gpus).max()
    )


# -- assignment encoding -------------------------------------------------------------------


class _Assignment:
    """Builds the assignment encoding of some layers (all, or one with costs)."""

    def __init__(self, instance: PlacementInstance, name: str) -> None:
        pulp = _pulp()
        self.instance = instance
        self.prob = pulp.LpProblem(name, pulp.LpMinimize)
        self.x: dict[tuple[int, int, int], Any] = {}
        # continuous variables and their value in a placement, for a MIP start
        self.started: list[tuple[Any, Callable[[np.ndarray], float]]] = []
        self.objective: list[tuple[Any, float]] = []

    def place(
        self,
        layers: list[int],
        formulation: str,
        allowed: dict[int, np.ndarray],
        caps: np.ndarray | None,
    ) -> None:
        pulp, inst = _pulp(), self.instance
        low, high = _count_bounds(inst, formulation)
        for li in layers:
            mask = allowed.get(li)
            for e in range(inst.num_experts):
                row = []
                for g in range(inst.gpus):
                    if mask is None or mask[e, g]:
                        var = self.prob.add_variable(f"x_{li}_{e}_{g}", cat=pulp.LpBinary)
                        self.x[(li, e, g)] = var
                        row.append((var, 1.0))
                _add(self.prob, row, pulp.LpConstraintEQ, 1)
            for g in range(inst.gpus):
                members = self.on_gpu(li, g)
                _add(self.prob, members, pulp.LpConstraintLE, high)
                if low:
                    _add(self.prob, members, pulp.LpConstraintGE, low)
                if caps is not None:
                    weighted = [
                        (self.x[(li, e, g)], float(inst.loads[li, e]))
                        for e in range(inst.num_experts)
                        if (li, e, g) in self.x
                    ]
                    _add(self.prob, weighted, pulp.LpConstraintLE, float(caps[li]))

    def on_gpu(self, li: int, g: int) -> list[tuple[Any, float]]:
        x = self.x
        return [(x[(li, e, g)], 1.0) for e in range(self.instance.num_experts) if (li, e, g) in x]

    def on_gpus(self, li: int, e: int, gpus: range) -> list[tuple[Any, float]]:
        return [(self.x[(li, e, g)], 1.0) for g in gpus if (li, e, g) in self.x]

    def busiest(self, layers: list[int]) -> None:
        pulp, inst = _pulp(), self.instance
        bound = load_lower_bound(inst)
        for li in layers:
            m = self.prob.add_variable(f"M_{li}", lowBound=float(bound[li]))
            self.started.append((m, lambda p, li=li: _busiest_start(inst, p, li)))
            for g in range(inst.gpus):
                terms = [
                    (self.x[(li, e, g)], float(inst.loads[li, e]))
                    for e in range(inst.num_experts)
                    if (li, e, g) in self.x and inst.loads[li, e] > 0
                ]
                _add(self.prob, [*terms, (m, -1.0)], pulp.LpConstraintLE, 0)
            self.objective.append((m, 1.0))

    def communication(self) -> float:
        """Co-location variables of every transition; returns the objective's constant part."""
        inst = self.instance
        offset = 0.0
        extra = inst.inter_cost - 1.0 if inst.nodes > 1 else 0.0
        for li in range(inst.num_layers - 1):
            flows = inst.flows[li]
            offset += inst.comm_weight * (1.0 + extra) * float(flows.sum())
            self._transition(li, flows, extra)
        return offset

    def _same_node(self, placement: np.ndarray, li: int, i: int, j: int, n: int) -> float:
        node = self.instance.node_of
        return float(node[placement[li, i]] == n == node[placement[li + 1, j]])

    def _transition(self, li: int, flows: np.ndarray, extra: float) -> None:
        pulp, inst, prob, x = _pulp(), self.instance, self.prob, self.x
        s, per_node, weight = inst.slots, inst.gpus_per_node, inst.comm_weight
        sums: dict[tuple[str, int, int, int], list[tuple[Any, float]]] = {}
        le = pulp.LpConstraintLE
        for i, j in zip(*np.nonzero(flows), strict=True):
            i, j, f = int(i), int(j), float(flows[i, j])
            same_node = []
            for n in range(inst.nodes) if extra else ():
                gpus = range(n * per_node, (n + 1) * per_node)
                w = prob.add_variable(f"w_{li}_{i}_{j}_{n}", lowBound=0, upBound=1)
                self.started.append(
                    (w, lambda p, li=li, i=i, j=j, n=n: self._same_node(p, li, i, j, n))
                )
                for side in (self.on_gpus(li, i, gpus), self.on_gpus(li + 1, j, gpus)):
                    _add(prob, [*((v, -c) for v, c in side), (w, 1.0)], le, 0)
                sums.setdefault(("in", li + 1, j, n), []).append((w, 1.0))
                sums.setdefault(("out", li, i, n), []).append((w, 1.0))
                self.objective.append((w, -weight * extra * f))
                same_node.append(w)
            for g in range(inst.gpus):
                if (li, i, g) not in x or (li + 1, j, g) not in x:
                    continue
                z = prob.add_variable(f"z_{li}_{i}_{j}_{g}", lowBound=0, upBound=1)
                self.started.append(
                    (z, lambda p, li=li, i=i, j=j, g=g: float(p[li, i] == g == p[li + 1, j]))
                )
                caps = [x[(li, i, g)], x[(li + 1, j, g)]]
                if same_node:
                    caps.append(same_node[g // per_node])
                for cap in caps:
                    _add(prob, [(z, 1.0), (cap, -1.0)], le, 0)
                sums.setdefault(("in", li + 1, j, -1 - g), []).append((z, 1.0))
                sums.setdefault(("out", li, i, -1 - g), []).append((z, 1.0))
                self.objective.append((z, -weight * f))
        # a GPU (node) holds at most s (s * G/N) experts of a layer: aggregated bounds
        for (_, layer, e, where), members in sums.items():
            if where < 0:
                capacity, side = s, [(x[(layer, e, -1 - where)], -float(s))]
            else:
                capacity = s * per_node
                gpus = range(where * per_node, (where + 1) * per_node)
                side = [(v, -float(capacity)) for v, _ in self.on_gpus(layer, e, gpus)]
            if len(members) > capacity:  # else implied by the pairwise bounds
                _add(prob, [*members, *side], le, 0)

    def model(self, offset: float) -> Model:
        self.prob.setObjective(_lin(self.objective))
        x, started = self.x, self.started

        def set_start(placement: np.ndarray) -> None:
            for (li, e, g), var in x.items():
                var.setInitialValue(1 if placement[li, e] == g else 0)
            for var, value in started:
                var.setInitialValue(value(placement))

        def decode(base: np.ndarray) -> np.ndarray:
            placement = base.copy()
            for (li, e, g), var in x.items():
                if (var.varValue or 0.0) > 0.5:
                    placement[li, e] = g
            return placement

        return Model(self.prob, list(x.values()), offset, set_start, decode, x)


def build_assignment(
    instance: PlacementInstance, formulation: str, caps: np.ndarray | None = None
) -> Model:
    """The whole placement in the assignment encoding (see the module docstring);
    ``caps[l]`` bounds every GPU's load in layer ``l``."""
    builder = _Assignment(instance, "placement")
    layers = list(range(instance.num_layers))
    builder.place(layers, formulation, {0: first_layer_allowed(instance)}, caps)
    if formulation == "joint":
        builder.busiest(layers)
    return builder.model(builder.communication())


def build_layer(
    instance: PlacementInstance,
    li: int,
    costs: np.ndarray,
    loads: np.ndarray,
    owner: np.ndarray,
    formulation: str,
    cap: float | None = None,
) -> Model:
    """Layer ``li`` alone, its neighbours fixed, as a model over its expert copies.

    ``costs[c, g]`` is the weighted communication of copy ``c`` on GPU ``g`` and
    ``loads[c]`` its tokens (see :class:`~rota.solvers.placement.layout.Layout`);
    ``owner[c]`` is its expert, and no GPU takes two copies of one expert.
    Products vanish: each copy's GPU is a linear cost, so the model is exact
    for the layer. ``cap`` bounds every GPU's load. ``set_start`` and
    ``decode`` take and give the copies' GPUs (a ``(C,)`` array).
    """
    pulp = _pulp()
    prob = pulp.LpProblem(f"layer_{li}", pulp.LpMinimize)
    items, gpus = costs.shape
    eq, le, ge = pulp.LpConstraintEQ, pulp.LpConstraintLE, pulp.LpConstraintGE
    x = {
        (li, c, g): prob.add_variable(f"x_{c}_{g}", cat=pulp.LpBinary)
        for c in range(items)
        for g in range(gpus)
    }
    objective = [(x[(li, c, g)], float(costs[c, g])) for c in range(items) for g in range(gpus)]
    for c in range(items):
        _add(prob, [(x[(li, c, g)], 1.0) for g in range(gpus)], eq, 1)
    low, high = (items // gpus, -(-items // gpus)) if formulation == "hops" else (0, instance.slots)
    m = prob.add_variable("M", lowBound=0) if formulation == "joint" else None
    for g in range(gpus):
        column = [(x[(li, c, g)], 1.0) for c in range(items)]
        _add(prob, column, le, high)
        if low:
            _add(prob, column, ge, low)
        weighted = [(x[(li, c, g)], float(loads[c])) for c in range(items) if loads[c]]
        if cap is not None:
            _add(prob, weighted, le, cap)
        if m is not None:
            _add(prob, [*weighted, (m, -1.0)], le, 0)
        for e in np.flatnonzero(np.bincount(owner) > 1):
            _add(prob, [(x[(li, c, g)], 1.0) for c in np.flatnonzero(owner == e)], le, 1)
    if m is not None:
        objective.append((m, 1.0))
    prob.setObjective(_lin([(v, c) for v, c in objective if c]))

    def set_start(row: np.ndarray) -> None:
        for (_, c, g), var in x.items():
            var.setInitialValue(1 if row[c] == g else 0)
        if m is not None:
            m.setInitialValue(float(np.bincount(row, weights=loads, minlength=gpus).max()))

    def decode(row: np.ndarray) -> np.ndarray:
        new = row.copy()
        for (_, c, g), var in x.items():
            if (var.varValue or 0.0) > 0.5:
                new[c] = g
        return new

    return Model(prob, list(x.values()), 0.0, set_start, decode, x)


# -- block encoding ------------------------------------------------------------------------


@dataclass
class Blocks:
    """The blocks of an instance (``slots``-subsets of its experts), as both block
    encodings (PuLP here, CP-SAT in :mod:`rota.solvers.placement.cpsat`) use them."""

    blocks: list[tuple[int, ...]]
    member: np.ndarray  # (B, E): 1 where block b holds expert e
    together: list[np.ndarray]  # per transition (B, B): flows_l(S, T)

    @classmethod
    def of(cls, instance: PlacementInstance) -> Blocks:
        blocks = list(itertools.combinations(range(instance.num_experts), instance.slots))
        member = np.zeros((len(blocks), instance.num_experts))
        for b, block in enumerate(blocks):
            member[b, list(block)] = 1.0
        together = [member @ flows @ member.T for flows in instance.flows]
        return cls(blocks, member, together)

    def used(self, placement: np.ndarray) -> list[list[int]]:
        """Per layer, the block on each GPU (every GPU holds ``slots`` experts)."""
        index = {block: b for b, block in enumerate(self.blocks)}
        gpus = int(placement.max()) + 1
        return [[index[tuple(np.flatnonzero(row == g))] for g in range(gpus)] for row in placement]

    def chain(self, used: list[list[int]]) -> np.ndarray:
        """The placement whose layers use these blocks, GPUs chosen by the best matching of
        consecutive layers' blocks (what the ``u`` of an optimal solution describe: an
        assignment polytope has integral optima)."""
        from scipy.optimize import linear_sum_assignment

        placement = np.zeros((len(used), self.member.shape[1]), dtype=np.int64)
        order = used[0]
        for li in range(len(used)):
            if li:
                gain = self.together[li - 1][np.ix_(order, used[li])]
                _, columns = linear_sum_assignment(gain, maximize=True)
                order = [used[li][c] for c in columns]
            for g, b in enumerate(order):
                placement[li, list(self.blocks[b])] = g
        return placement


def build_blocks(
    instance: PlacementInstance, formulation: str, caps: np.ndarray | None = None
) -> Model:
    """The whole placement in the block encoding (see the module docstring); a block
    heavier than ``caps[l]`` is not offered in layer ``l``."""
    pulp, inst = _pulp(), instance
    prob = pulp.LpProblem("placement_blocks", pulp.LpMinimize)
    data = Blocks.of(inst)
    count = len(data.blocks)
    y = [
        [prob.add_variable(f"y_{li}_{b}", cat=pulp.LpBinary) for b in range(count)]
        for li in range(inst.num_layers)
    ]
    objective: list[tuple[Any, float]] = []
    busiest: list[Any] = []
    eq, le = pulp.LpConstraintEQ, pulp.LpConstraintLE
    bound = load_lower_bound(inst)
    for li in range(inst.num_layers):
        block_load = data.member @ inst.loads[li]
        if caps is not None:
            for b in np.flatnonzero(block_load > caps[li]):
                y[li][b].upBound = 0
        if formulation == "joint":
            busiest.append(prob.add_variable(f"M_{li}", lowBound=float(bound[li])))
            objective.append((busiest[li], 1.0))
        for e in range(inst.num_experts):
            holding = np.flatnonzero(data.member[:, e])
            _add(prob, [(y[li][b], 1.0) for b in holding], eq, 1)
            if formulation == "joint":
                terms = [(y[li][b], float(block_load[b])) for b in holding if block_load[b]]
                _add(prob, [*terms, (busiest[li], -1.0)], le, 0)
    u: list[np.ndarray] = []  # per transition: (blocks, blocks) array of variables
    offset = 0.0
    for li, together in enumerate(data.together):
        offset += inst.comm_weight * float(inst.flows[li].sum())
        pairs = np.empty((count, count), dtype=object)
        for a, b in itertools.product(range(count), repeat=2):
            pairs[a, b] = prob.add_variable(f"u_{li}_{a}_{b}", lowBound=0, upBound=1)
            if together[a, b]:
                objective.append((pairs[a, b], -inst.comm_weight * float(together[a, b])))
        for a in range(count):
            _add(prob, [*((v, 1.0) for v in pairs[a]), (y[li][a], -1.0)], eq, 0)
            _add(prob, [*((v, 1.0) for v in pairs[:, a]), (y[li + 1][a], -1.0)], eq, 0)
        u.append(pairs)
    prob.setObjective(_lin(objective))

    def set_start(placement: np.ndarray) -> None:
        used = data.used(placement)
        for li in range(inst.num_layers):
            for b, var in enumerate(y[li]):
                var.setInitialValue(1 if b in used[li] else 0)
        for li, m in enumerate(busiest):
            m.setInitialValue(_busiest_start(inst, placement, li))
        for li, pairs in enumerate(u):
            on = set(zip(used[li], used[li + 1], strict=True))
            for a, b in itertools.product(range(count), repeat=2):
                pairs[a, b].setInitialValue(1 if (a, b) in on else 0)

    def decode(base: np.ndarray) -> np.ndarray:
        return data.chain([[b for b, v in enumerate(row) if (v.varValue or 0) > 0.5] for row in y])

    integer = [var for row in y for var in row]
    return Model(prob, integer, offset, set_start, decode)


def build_monolithic(
    instance: PlacementInstance, formulation: str, encoding: str, caps: np.ndarray | None = None
) -> Model:
    """The whole placement as one MILP, in the chosen encoding (``auto`` resolved here)."""
    if choose_encoding(instance, encoding) == "blocks":
        return build_blocks(instance, formulation, caps)
    return build_assignment(instance, formulation, caps)


def model_size(instance: PlacementInstance, encoding: str) -> int:
    """Co-location variables of the monolithic model in ``encoding``."""
    if choose_encoding(instance, encoding) == "blocks":
        pairs = block_pairs(instance)
        if pairs is None:
            raise ValueError(
                f"the block encoding needs one node and every slot used; {instance.name} has "
                f"{instance.nodes} node(s) and {instance.spare_slots} spare slot(s) per layer"
            )
        return pairs
    return assignment_size(instance)


__all__ = [
    "ENCODINGS", "FORMULATIONS", "MAX_BLOCK_PAIRS", "Blocks", "Model", "assignment_size",
    "block_pairs", "build_assignment", "build_blocks", "build_layer", "build_monolithic",
    "choose_encoding", "model_size",
]  # fmt: skip
