"""Expert placement with OR-Tools CP-SAT: the same models as ``milp``, in integers.

Monolithic model (assignment encoding, see
:mod:`rota.solvers.placement.formulation`): Booleans ``x[l, e, g]``, one
co-location Boolean per flow pair and GPU (``z``, implying both ``x``) and,
with several nodes, per pair and node (``w``), the same aggregated
inequalities, an integer busiest-GPU load per layer (``joint``), layer 0
restricted by GPU symmetry, and ``formulation="hops"`` / ``max_imbalance``
as for ``milp``. Larger instances (``decomposition``) go layer by layer
(:mod:`rota.solvers.placement.decompose`), each layer a CP-SAT model over its
expert copies.

Integer data
------------
The objective is scaled to integers exactly: token counts by the smallest
power of ten making them integral (:func:`~rota.solvers.scaling.integer_scale`),
``comm_weight`` and ``comm_weight * (inter_cost - 1)`` as fractions with
denominators up to ``10**6`` (1/48, 1/6, ...). Instances where that is not
exact, or where the scaled objective passes ``2**50``, are refused with the
reason (``milp`` takes them). One layer's model of the decomposition is
scaled to about ``10**6`` integer steps and rounded; its verdicts only steer
the decomposition, whose acceptance tests and result are in the instance's
own numbers.

Status, bound and starts are those of ``milp`` (see :mod:`rota.solvers.placement.milp`):
``OPTIMAL`` only for a proven monolithic ``joint`` model without a cap on an
instance without spare slots; the start is CP-SAT's hint and the fallback.
An iteration of the stop is a solution CP-SAT reports (a layer solve when
decomposed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from rota import signals
from rota.errors import UnsupportedInstanceError
from rota.problems.placement import PlacementInstance, PlacementSolution
from rota.solvers.base import (
    ALL_CRITERIA,
    Capabilities,
    RequiresModules,
    Result,
    Status,
    finish,
    reconfigured,
)
from rota.solvers.placement import common, exact
from rota.solvers.placement.decompose import sweep
from rota.solvers.placement.formulation import Blocks, choose_encoding
from rota.solvers.placement.layout import Layout, load_caps
from rota.solvers.scaling import integer_scale
from rota.solvers.stopping import MAX_ENGINE_SECONDS, Stop

#: Co-location Booleans of the largest monolithic model (8 experts x 32 layers on
#: 8 GPUs has 15,872); CP-SAT's presolve alone takes seconds far beyond that.
MAX_MONOLITHIC = 40_000
#: Largest denominator of ``comm_weight`` (and its product with the hop costs).
MAX_DENOMINATOR = 10**6
#: Scaled objectives stay far below int64 overflow in CP-SAT's sums.
MAX_SCALED = 2**50
#: Integer steps of one layer's scaled objective in the decomposition.
LAYER_RESOLUTION = 10**6

_OPTION_NAMES = (
    "formulation", "encoding", "decomposition", "max_imbalance", "num_workers", "greedy_start",
)  # fmt: skip


@dataclass(frozen=True)
class _Scale:
    """Integer objective = ``loads_scale * denominator * objective``."""

    loads: int  # token counts x loads: integers
    denominator: int  # comm_weight x denominator: an integer
    comm: int  # comm_weight x denominator
    extra: int  # comm_weight x (inter_cost - 1) x denominator (0 with one node)

    @property
    def total(self) -> int:
        return self.loads * self.denominator


def _fraction(value: float) -> Fraction | None:
    fraction = Fraction(value).limit_denominator(MAX_DENOMINATOR)
    exact_enough = abs(float(fraction) - value) <= 4 * np.finfo(float).eps * abs(value)
    return fraction if exact_enough else None


def _scale(instance: PlacementInstance) -> _Scale | str:
    """The exact integer scaling of ``instance``'s objective, or why there is none."""
    loads_scale, ok = integer_scale(instance.loads, instance.flows)
    if not ok:
        return "cpsat needs token counts that powers of ten up to 10**4 make integral"
    extra_cost = instance.inter_cost - 1.0 if instance.nodes > 1 else 0.0
    comm = _fraction(instance.comm_weight)
    extra = _fraction(instance.comm_weight * extra_cost)
    if comm is None or extra is None:
        return (
            f"cpsat needs comm_weight ({instance.comm_weight:g}) and comm_weight x "
            f"(bandwidth_intra / bandwidth_inter - 1) as fractions with denominators up to "
            f"{MAX_DENOMINATOR}; use milp"
        )
    denominator = math.lcm(comm.denominator, extra.denominator)
    scale = _Scale(loads_scale, denominator, int(comm * denominator), int(extra * denominator))
    largest = scale.total * (
        float(instance.loads.sum())
        + instance.comm_weight * instance.inter_cost * float(instance.flows.sum())
    )
    if not largest <= MAX_SCALED:
        return f"cpsat: the scaled objective of {instance.name} reaches {largest:.3g}, past 2**50"
    return scale


class CPSATPlacement(RequiresModules):
    """Expert placement with CP-SAT; see the module docstring.

    Parameters
    ----------
    formulation
        ``"joint"`` (MoETuner; the family's objective) or ``"hops"`` (ExFlow).
    encoding
        ``"auto"``, ``"blocks"`` or ``"assignment"`` (monolithic models).
    decomposition
        ``"auto"``, ``"none"`` or ``"layers"``.
    max_imbalance
        Cap on every layer's busiest GPU, as a multiple of the mean; ``None``: no cap.
    num_workers
        CP-SAT search workers; ``None``: every core this process may use.
    greedy_start
        Without a warm start, hint EPLB or contiguous placement.
    """

    name = "cpsat"
    problem = "placement"
    requires = ("ortools.sat.python.cp_model",)
    description = "CP-SAT (OR-Tools): MoETuner joint or ExFlow hops; layer decomposition"
    capabilities = Capabilities(warm_start=True, stopping=ALL_CRITERIA)

    def __init__(
        self,
        formulation: str = "joint",
        encoding: str = "auto",
        decomposition: str = "auto",
        max_imbalance: float | None = None,
        num_workers: int | None = None,
        greedy_start: bool = True,
    ) -> None:
        exact.check_options(
            "cpsat", formulation, encoding, decomposition, max_imbalance, greedy_start
        )
        if num_workers is not None and (
            isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1
        ):
            raise ValueError(
                f"cpsat option num_workers={num_workers!r} must be a positive integer or None"
            )
        self.formulation = formulation
        self.encoding = encoding
        self.decomposition = decomposition
        self.max_imbalance = max_imbalance
        self.num_workers = num_workers
        self.greedy_start = greedy_start

    def configure(self, **options: Any) -> CPSATPlacement:
        """A copy of this solver with ``options`` changed (unknown names fail, named)."""
        return reconfigured(self, _OPTION_NAMES, options)

    def supports(self, instance: PlacementInstance) -> str | None:
        reason = exact.size_refusal(
            self.name, instance, self.encoding, self.decomposition, MAX_MONOLITHIC
        )
        if reason is not None:
            return reason
        scale = _scale(instance)
        return scale if isinstance(scale, str) else None

    def solve(
        self,
        instance: PlacementInstance,
        stop: Stop,
        seed: int,
        warm_start: tuple[PlacementSolution, ...] = (),
    ) -> Result:
        """Solve within ``stop``; see the module docstring for the status and bound."""
        reason = self.supports(instance)
        if reason is not None:
            raise UnsupportedInstanceError(reason)
        decomposed = exact.decomposes(instance, self.encoding, self.decomposition, MAX_MONOLITHIC)
        start, origin = exact.starting_solution(
            instance, warm_start, self.greedy_start, replicas=decomposed
        )
        if decomposed:
            return self._decomposed(instance, stop, seed, start, origin)
        return self._monolithic(instance, stop, seed, start, origin)

    def _parameters(self, solver: Any, seconds: float, seed: int) -> None:
        from rota.solvers.cpsat import machine_workers

        params = solver.parameters
        params.max_time_in_seconds = max(0.01, min(seconds, MAX_ENGINE_SECONDS))
        params.num_workers = self.num_workers or machine_workers()
        params.random_seed = seed % 2_147_483_647
        params.log_search_progress = False
        # rota.signals decides what a Ctrl+C means (see rota.solvers.cpsat)
        params.catch_sigint_signal = False

    # -- one model ---------------------------------------------------------------------------
    def _monolithic(
        self,
        instance: PlacementInstance,
        stop: Stop,
        seed: int,
        start_solution: PlacementSolution | None,
        origin: str | None,
    ) -> Result:
        from ortools.sat.python import cp_model

        scale = _scale(instance)
        if isinstance(scale, str):  # supports() refuses these; a direct call gets the reason
            raise UnsupportedInstanceError(scale)
        start = None if start_solution is None else start_solution.as_array()
        fallback = common.contiguous_array(instance) if start is None else start
        caps = load_caps(instance, Layout.of_array(fallback), self.max_imbalance)
        encoding = choose_encoding(instance, self.encoding)
        kind = _BlockModel if encoding == "blocks" else _Monolithic
        builder = kind(cp_model, instance, scale, self.formulation, caps)
        if start is not None:
            builder.hint(common.canonical(instance, start))
        solver = cp_model.CpSolver()
        self._parameters(solver, stop.remaining - 0.05, seed)
        callback = _StopCallback.make(cp_model, stop, scale.total, builder.offset)
        with signals.on_interrupt(solver.stop_search):
            code = solver.solve(builder.model, callback)
        stats: dict[str, Any] = {
            "formulation": self.formulation,
            **exact.base_stats(instance, origin, self.max_imbalance, False),
            "decomposition": "none",
            "encoding": encoding,
            "cpsat_status": solver.status_name(code),
            "num_workers": solver.parameters.num_workers,
            "wall_time": solver.wall_time,
            "objective_scale": scale.total,
        }
        common_args = {"solver": self.name, "seed": seed, "stop": stop}
        if code == cp_model.MODEL_INVALID:
            stats["error"] = f"CP-SAT rejected the model: {builder.model.validate()}"
            return finish(instance, None, Status.ERROR, stats=stats, **common_args)
        if code == cp_model.INFEASIBLE:
            stats["error"] = "CP-SAT called a placement model infeasible; it never is"
            return finish(instance, None, Status.ERROR, stats=stats, **common_args)
        candidates = []
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            candidates.append((builder.decode(solver), "backend"))
        if start is not None:
            candidates.append((start, "start"))
        measure = common.objective if self.formulation == "joint" else common.traffic
        best = min(candidates, key=lambda c: measure(instance, c[0]), default=None)
        known = code != cp_model.UNKNOWN
        bound = self._bound(instance, solver, known, scale, caps)
        proven = (
            code == cp_model.OPTIMAL
            and self.formulation == "joint"
            and caps is None
            and not instance.spare_slots
        )
        if best is None:
            return finish(instance, None, Status.NO_SOLUTION, bound=bound, stats=stats,
                          **common_args)  # fmt: skip
        placement, source = best
        value = common.objective(instance, placement)
        stats["solution_from"] = source
        backend_objective = None
        if source == "backend" and self.formulation == "joint":
            stats["engine_objective"] = solver.objective_value / scale.total
            if proven:  # a proof must be about this placement's exact objective
                backend_objective = stats["engine_objective"]
        if proven and source == "backend" or bound is not None and bound > value:
            bound = value
        if bound is not None and value:
            stats["gap"] = (value - bound) / abs(value)
        status = Status.OPTIMAL if proven and source == "backend" else Status.FEASIBLE
        return finish(
            instance, common.to_solution(placement), status, bound=bound, stats=stats,
            backend_objective=backend_objective, **common_args,
        )  # fmt: skip

    def _bound(
        self,
        instance: PlacementInstance,
        solver: Any,
        known: bool,
        scale: _Scale,
        caps: np.ndarray | None,
    ) -> float | None:
        if instance.spare_slots:
            return None
        combinatorial = common.lower_bound(instance)
        raw = float(solver.best_objective_bound)
        if caps is not None or not known or not math.isfinite(raw):
            return combinatorial
        # integral objective: the bound rounds up; the offset is part of CP-SAT's objective
        engine = math.ceil(raw - 1e-6) / scale.total
        if self.formulation == "hops":
            engine += float(common.load_lower_bound(instance).sum())
        return max(engine, combinatorial)

    # -- one layer at a time -----------------------------------------------------------------
    def _decomposed(
        self,
        instance: PlacementInstance,
        stop: Stop,
        seed: int,
        start_solution: PlacementSolution | None,
        origin: str | None,
    ) -> Result:
        from ortools.sat.python import cp_model

        if start_solution is None:
            start, origin = Layout.of_array(common.contiguous_array(instance)), "contiguous"
        else:
            start = Layout.of(start_solution)
        caps = load_caps(instance, start, self.max_imbalance)
        stats = {
            "formulation": self.formulation,
            **exact.base_stats(instance, origin, self.max_imbalance, start.replicated),
        }

        def solve_layer(
            li: int, layout: Layout, costs: np.ndarray, seconds: float
        ) -> tuple[np.ndarray | None, bool]:
            model = _layer_model(
                cp_model, instance, layout, li, costs, self.formulation,
                None if caps is None else float(caps[li]),
            )  # fmt: skip
            build, x = model
            solver = cp_model.CpSolver()
            self._parameters(solver, seconds, seed)
            with signals.on_interrupt(solver.stop_search):
                code = solver.solve(build)
            if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                return None, False
            row = np.array([int(np.argmax([solver.value(v) for v in xs])) for xs in x])
            if caps is not None:  # the model's loads are rounded: check the cap in tokens
                load = layout.gpu_loads(instance, li, row)
                if (load > max(caps[li], layout.gpu_loads(instance, li, layout.gpu[li]).max())
                        * (1 + 1e-9)).any():  # fmt: skip
                    return None, False
            return row, False

        outcome = sweep(instance, stop, start, solve_layer, self.formulation)
        return exact.decomposed_result(
            instance, outcome, stats, solver=self.name, seed=seed, stop=stop
        )


class _StopCallback:
    @staticmethod
    def make(cp_model: Any, stop: Stop, scale: int, offset: int) -> Any:
        class Callback(cp_model.CpSolverSolutionCallback):
            """Shows ``stop`` every solution and ends the search on its word."""

            def on_solution_callback(self) -> None:
                if stop(self.objective_value / scale):
                    self.stop_search()

        return Callback()


class _Monolithic:
    """The monolithic CP-SAT model (assignment encoding) and its hint and decoding."""

    def __init__(
        self,
        cp_model: Any,
        instance: PlacementInstance,
        scale: _Scale,
        formulation: str,
        caps: np.ndarray | None,
    ) -> None:
        inst = instance
        self.instance = inst
        model = self.model = cp_model.CpModel()
        allowed = common.first_layer_allowed(inst)
        loads = np.round(inst.loads * scale.loads).astype(np.int64)
        flows = np.round(inst.flows * scale.loads).astype(np.int64)
        low, high = (
            (inst.num_experts // inst.gpus, -(-inst.num_experts // inst.gpus))
            if formulation == "hops"
            else (0, inst.slots)
        )
        self.x: dict[tuple[int, int, int], Any] = {}
        for li in range(inst.num_layers):
            for e in range(inst.num_experts):
                gpus = [g for g in range(inst.gpus) if li or allowed[e, g]]
                for g in gpus:
                    self.x[(li, e, g)] = model.new_bool_var(f"x_{li}_{e}_{g}")
                model.add_exactly_one(self.x[(li, e, g)] for g in gpus)
        x = self.x
        terms: list[Any] = []
        self.busiest: list[Any] = []
        bound = np.ceil(common.load_lower_bound(inst) * scale.loads - 1e-6).astype(np.int64)
        for li in range(inst.num_layers):
            total = int(loads[li].sum())
            if formulation == "joint":
                m = model.new_int_var(int(min(bound[li], total)), total, f"M_{li}")
                self.busiest.append(m)
                terms.append(scale.denominator * m)
            for g in range(inst.gpus):
                members = [e for e in range(inst.num_experts) if (li, e, g) in x]
                model.add_linear_constraint(sum(x[(li, e, g)] for e in members), low, high)
                weighted = sum(int(loads[li, e]) * x[(li, e, g)] for e in members)
                if caps is not None:
                    model.add(weighted <= int(math.floor(caps[li] * scale.loads + 1e-6)))
                if formulation == "joint":
                    model.add(weighted <= self.busiest[li])
        self.offset = 0
        self.z: dict[tuple[int, int, int, int], Any] = {}
        self.w: dict[tuple[int, int, int, int], Any] = {}
        per_node, s = inst.gpus_per_node, inst.slots
        for li in range(inst.num_layers - 1):
            sums: dict[tuple[str, int, int], list[Any]] = {}
            for i, j in zip(*np.nonzero(flows[li]), strict=True):
                i, j, f = int(i), int(j), int(flows[li][i, j])
                self.offset += (scale.comm + scale.extra) * f
                for n in range(inst.nodes) if scale.extra else ():
                    w = self.w[(li, i, j, n)] = model.new_bool_var(f"w_{li}_{i}_{j}_{n}")
                    for layer, e in ((li, i), (li + 1, j)):
                        node_x = [x[(layer, e, g)] for g in range(n * per_node, (n + 1) * per_node)
                                  if (layer, e, g) in x]  # fmt: skip
                        model.add(w <= sum(node_x))
                        sums.setdefault(("node", layer, e * inst.nodes + n), []).append(w)
                    terms.append(-scale.extra * f * w)
                for g in range(inst.gpus):
                    if (li, i, g) not in x or (li + 1, j, g) not in x:
                        continue
                    z = self.z[(li, i, j, g)] = model.new_bool_var(f"z_{li}_{i}_{j}_{g}")
                    model.add_implication(z, x[(li, i, g)])
                    model.add_implication(z, x[(li + 1, j, g)])
                    if scale.extra:
                        model.add_implication(z, self.w[(li, i, j, g // per_node)])
                    sums.setdefault(("gpu", li, i * inst.gpus + g), []).append(z)
                    sums.setdefault(("gpu", li + 1, j * inst.gpus + g), []).append(z)
                    terms.append(-scale.comm * f * z)
            for (level, layer, key), members in sums.items():
                if level == "gpu":
                    e, g = divmod(key, inst.gpus)
                    if len(members) > s:
                        model.add(sum(members) <= s * x[(layer, e, g)])
                else:
                    e, n = divmod(key, inst.nodes)
                    room = s * per_node
                    node_x = [x[(layer, e, g)] for g in range(n * per_node, (n + 1) * per_node)
                              if (layer, e, g) in x]  # fmt: skip
                    if len(members) > room:
                        model.add(sum(members) <= room * sum(node_x))
        model.minimize(sum(terms) + self.offset)

    def hint(self, placement: np.ndarray) -> None:
        inst, model = self.instance, self.model
        for (li, e, g), var in self.x.items():
            model.add_hint(var, bool(placement[li, e] == g))
        for (li, i, j, g), var in self.z.items():
            model.add_hint(var, bool(placement[li, i] == g == placement[li + 1, j]))
        node = inst.node_of
        for (li, i, j, n), var in self.w.items():
            model.add_hint(var, bool(node[placement[li, i]] == n == node[placement[li + 1, j]]))

    def decode(self, solver: Any) -> np.ndarray:
        placement = np.zeros((self.instance.num_layers, self.instance.num_experts), dtype=np.int64)
        for (li, e, g), var in self.x.items():
            if solver.boolean_value(var):
                placement[li, e] = g
        return placement


class _BlockModel:
    """The monolithic CP-SAT model in the block encoding (one node, every slot used)."""

    def __init__(
        self,
        cp_model: Any,
        instance: PlacementInstance,
        scale: _Scale,
        formulation: str,
        caps: np.ndarray | None,
    ) -> None:
        inst = instance
        self.instance = inst
        self.data = data = Blocks.of(inst)
        model = self.model = cp_model.CpModel()
        count = len(data.blocks)
        loads = np.round(inst.loads * scale.loads).astype(np.int64)
        self.y = [
            [model.new_bool_var(f"y_{li}_{b}") for b in range(count)]
            for li in range(inst.num_layers)
        ]
        terms: list[Any] = []
        bound = np.ceil(common.load_lower_bound(inst) * scale.loads - 1e-6).astype(np.int64)
        for li, y in enumerate(self.y):
            block_load = (data.member @ loads[li]).astype(np.int64)
            if caps is not None:
                for b in np.flatnonzero(block_load > caps[li] * scale.loads * (1 + 1e-9)):
                    model.add(y[b] == 0)
            total = int(loads[li].sum())
            m = None
            if formulation == "joint":
                m = model.new_int_var(int(min(bound[li], total)), total, f"M_{li}")
                terms.append(scale.denominator * m)
            for e in range(inst.num_experts):
                holding = np.flatnonzero(data.member[:, e])
                model.add_exactly_one(y[b] for b in holding)
                if m is not None:
                    model.add(sum(int(block_load[b]) * y[b] for b in holding) <= m)
        self.offset = 0
        self.u: list[list[list[Any]]] = []
        for li, together in enumerate(data.together):
            weight = np.round(together * scale.loads).astype(np.int64) * scale.comm
            self.offset += int(np.round(inst.flows[li].sum() * scale.loads)) * scale.comm
            u = [
                [model.new_bool_var(f"u_{li}_{a}_{b}") for b in range(count)] for a in range(count)
            ]
            for a in range(count):
                model.add(sum(u[a]) == self.y[li][a])
                model.add(sum(u[b][a] for b in range(count)) == self.y[li + 1][a])
            terms += [
                -int(weight[a, b]) * u[a][b]
                for a in range(count)
                for b in range(count)
                if weight[a, b]
            ]
            self.u.append(u)
        model.minimize(sum(terms) + self.offset)

    def hint(self, placement: np.ndarray) -> None:
        used = self.data.used(placement)
        for li, y in enumerate(self.y):
            for b, var in enumerate(y):
                self.model.add_hint(var, b in used[li])
        for li, u in enumerate(self.u):
            on = set(zip(used[li], used[li + 1], strict=True))
            for a, row in enumerate(u):
                for b, var in enumerate(row):
                    self.model.add_hint(var, (a, b) in on)

    def decode(self, solver: Any) -> np.ndarray:
        used = [[b for b, var in enumerate(y) if solver.boolean_value(var)] for y in self.y]
        return self.data.chain(used)


def _layer_model(
    cp_model: Any,
    instance: PlacementInstance,
    layout: Layout,
    li: int,
    costs: np.ndarray,
    formulation: str,
    cap: float | None,
) -> tuple[Any, list[list[Any]]]:
    """One layer's copies as a CP-SAT model, scaled to :data:`LAYER_RESOLUTION` steps;
    the current placement is the hint."""
    model = cp_model.CpModel()
    loads = layout.item_loads(instance, li)
    owner, current = layout.owner[li], layout.gpu[li]
    copies, gpus = costs.shape
    largest = max(float(costs.max(initial=0.0)) * copies, float(loads.sum()), 1e-12)
    step = LAYER_RESOLUTION / largest
    int_costs = np.round(costs * step).astype(np.int64)
    int_loads = np.round(loads * step).astype(np.int64)
    x = [[model.new_bool_var(f"x_{c}_{g}") for g in range(gpus)] for c in range(copies)]
    for c in range(copies):
        model.add_exactly_one(x[c])
        for g in range(gpus):
            model.add_hint(x[c][g], bool(current[c] == g))
    low, high = (
        (copies // gpus, -(-copies // gpus)) if formulation == "hops" else (0, instance.slots)
    )
    terms = [int(int_costs[c, g]) * x[c][g] for c in range(copies) for g in range(gpus)]
    m = None
    if formulation == "joint":
        m = model.new_int_var(0, int(int_loads.sum()), "M")
        terms.append(m)
    replicated = [np.flatnonzero(owner == e) for e in np.flatnonzero(np.bincount(owner) > 1)]
    for g in range(gpus):
        model.add_linear_constraint(sum(x[c][g] for c in range(copies)), low, high)
        weighted = sum(int(int_loads[c]) * x[c][g] for c in range(copies))
        if cap is not None:
            # the exact loads of the current placement fit by construction; rounding up keeps it
            fits = np.bincount(current, weights=int_loads, minlength=gpus).max()
            model.add(weighted <= max(int(math.floor(cap * step)), int(fits)))
        if m is not None:
            model.add(weighted <= m)
        for group in replicated:
            model.add_at_most_one(x[c][g] for c in group)
    if m is not None:
        model.add_hint(m, int(np.bincount(current, weights=int_loads, minlength=gpus).max()))
    model.minimize(sum(terms))
    return model, x
