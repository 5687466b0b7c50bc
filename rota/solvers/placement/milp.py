"""Expert placement by mixed-integer programming, through PuLP with CBC or HiGHS.

Models are in :mod:`rota.solvers.placement.formulation`: ``joint`` (MoETuner's
load balance plus inter-layer token routing, the family's objective; the
default) and ``hops`` (ExFlow's bandwidth-weighted cross-GPU hops with equal
expert counts per GPU), in the block or assignment encoding (``encoding``:
``auto`` takes blocks where they apply and are small).

Sizes
-----
The monolithic model has at most :data:`MAX_MONOLITHIC` co-location
variables. Larger instances are solved by the layer-by-layer decomposition
of :mod:`rota.solvers.placement.decompose`, one model per layer (copies x
GPUs binaries, at most :data:`~rota.solvers.placement.exact.MAX_LAYER_VARS`):
first its LP relaxation, rounded and repaired
(:func:`~rota.solvers.placement.layout.round_layer`), until a sweep changes
nothing; then, with the time left and for layers of at most
:data:`MAX_EXACT_LAYER` binaries, the layer MIPs, until a sweep changes
nothing again.
``decomposition="auto"`` (the default) picks by size, ``"none"`` refuses what
the monolithic model cannot hold, ``"layers"`` always decomposes.

``max_imbalance`` caps every layer's busiest GPU at that multiple of the mean
load (or at the start's busiest GPU where that is higher, so the start always
fits): with ``hops``, "the least traffic at this balance".

Status and bound
----------------
Monolithic ``joint`` without a cap: ``OPTIMAL`` when the backend proves the
model optimal (CBC's verdict read from its log, as for routing), else
``FEASIBLE`` with the backend's bound. ``hops`` optimises traffic, not the
family's objective: never ``OPTIMAL``; its bound is its traffic bound plus
the load bound. A capped model's proofs and bounds cover the capped
placements only, so only the combinatorial bound
(:func:`~rota.solvers.placement.common.lower_bound`) is reported. The
decomposition is never ``OPTIMAL``, records ``stats["decomposition"] =
"layers"`` and reports the combinatorial bound. Monolithic models place no
replicas, and where the instance has spare slots their results are
``FEASIBLE`` without a bound (``stats["scope"]``); the decomposition keeps
the start's replicas.

Starts
------
The monolithic model starts (MIP start) from the best feasible warm start
without replicas, else (``greedy_start``) the better of EPLB without
replicas and contiguous placement, and returns it when the backend finds
nothing better. The decomposition starts from the best feasible warm start,
else the better of EPLB (with replicas in spare slots) and contiguous
placement (contiguous without ``greedy_start``). An iteration of the stop
is one MIP solve (one layer when decomposed).
"""

from __future__ import annotations

import math
import tempfile
import time
from typing import Any

import numpy as np

from rota.errors import UnsupportedInstanceError
from rota.problems.placement import PlacementInstance, PlacementSolution
from rota.solvers.base import ALL_CRITERIA, Capabilities, Result, Status, finish, reconfigured
from rota.solvers.milp.backends import CBCRunner, HiGHSRunner, load_pulp
from rota.solvers.placement import common, exact
from rota.solvers.placement.decompose import sweep
from rota.solvers.placement.formulation import build_layer, build_monolithic, choose_encoding
from rota.solvers.placement.layout import Layout, load_caps, round_layer
from rota.solvers.stopping import Stop

BACKENDS = ("cbc", "highs")
#: Co-location variables of the largest monolithic model. The block encoding of
#: 8 experts x 32 layers on 4 GPUs has 24,304 and CBC proves it in about 3 s;
#: assignment encodings far above 50,000 rarely close their gap within minutes.
MAX_MONOLITHIC = 50_000
#: Layers with more binaries than this are only ever solved as LPs and rounded:
#: a 256-expert, 64-GPU layer's MIP improved nothing on its start within 2 s and
#: did not prove its optimum in 30 s; its LP takes 0.2 s (HiGHS) and leaves
#: about 50 experts fractional. On 64 experts x 8 GPUs the rounded LPs converge
#: in 2 s where the MIPs need a minute for one sweep, to much the same traffic.
MAX_EXACT_LAYER = 2048
#: Relative tolerance of the backends' optimality arithmetic; float bounds are lowered by it.
BOUND_TOLERANCE = 1e-6

_OPTION_NAMES = (
    "backend", "formulation", "encoding", "decomposition", "max_imbalance", "threads",
    "greedy_start",
)  # fmt: skip


class MILPPlacement:
    """Expert placement by MILP (PuLP with CBC or HiGHS); see the module docstring.

    Parameters
    ----------
    backend
        ``"cbc"`` (bundled with PuLP) or ``"highs"`` (highspy).
    formulation
        ``"joint"`` (MoETuner; the family's objective) or ``"hops"`` (ExFlow).
    encoding
        ``"auto"``, ``"blocks"`` or ``"assignment"`` (monolithic models).
    decomposition
        ``"auto"``, ``"none"`` or ``"layers"``.
    max_imbalance
        Cap on every layer's busiest GPU, as a multiple of the mean; ``None``: no cap.
    threads
        Threads the backend may use; ``None``: the backend's default.
    greedy_start
        Without a warm start, start from EPLB or contiguous placement.
    """

    name = "milp"
    problem = "placement"
    description = "MILP (PuLP: CBC or HiGHS): MoETuner joint or ExFlow hops; layer decomposition"
    capabilities = Capabilities(warm_start=True, stopping=ALL_CRITERIA)

    def __init__(
        self,
        backend: str = "cbc",
        formulation: str = "joint",
        encoding: str = "auto",
        decomposition: str = "auto",
        max_imbalance: float | None = None,
        threads: int | None = None,
        greedy_start: bool = True,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"milp option backend={backend!r} is not one of {', '.join(BACKENDS)}")
        exact.check_options(
            "milp", formulation, encoding, decomposition, max_imbalance, greedy_start
        )
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ValueError(f"milp option threads={threads!r} must be a positive integer or None")
        self.backend = backend
        self.formulation = formulation
        self.encoding = encoding
        self.decomposition = decomposition
        self.max_imbalance = max_imbalance
        self.threads = threads
        self.greedy_start = greedy_start
        self.import_error: str | None = None

    def configure(self, **options: Any) -> MILPPlacement:
        """A copy of this solver with ``options`` changed (unknown names fail, named)."""
        return reconfigured(self, _OPTION_NAMES, options)

    def available(self) -> bool:
        """True when PuLP and the chosen backend run; never raises (the reason is kept)."""
        from rota.solvers.milp import MILPSolver

        probe = MILPSolver(backend=self.backend)
        ok = probe.available()
        self.import_error = probe.import_error
        return ok

    def supports(self, instance: PlacementInstance) -> str | None:
        return exact.size_refusal(
            self.name, instance, self.encoding, self.decomposition, MAX_MONOLITHIC
        )

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
        if not load_pulp():
            raise UnsupportedInstanceError("solver 'milp' is not installed: PuLP does not import")
        decomposed = exact.decomposes(instance, self.encoding, self.decomposition, MAX_MONOLITHIC)
        start, origin = exact.starting_solution(
            instance, warm_start, self.greedy_start, replicas=decomposed
        )
        backend_seed = seed % 2_147_483_646 + 1  # CBC reads 0 as "seed from the clock"
        with tempfile.TemporaryDirectory(prefix="rota-placement-") as workdir:
            if self.backend == "cbc":
                runner: Any = CBCRunner(self.threads, backend_seed, workdir)
            else:
                runner = HiGHSRunner(self.threads, backend_seed)
            if decomposed:
                return self._decomposed(instance, stop, seed, runner, start, origin)
            return self._monolithic(instance, stop, seed, runner, start, origin)

    def _stats(self, base: dict[str, Any]) -> dict[str, Any]:
        return {"backend": self.backend, "formulation": self.formulation, **base}

    # -- one model ---------------------------------------------------------------------------
    def _monolithic(
        self,
        instance: PlacementInstance,
        stop: Stop,
        seed: int,
        runner: Any,
        start_solution: PlacementSolution | None,
        origin: str | None,
    ) -> Result:
        start = None if start_solution is None else start_solution.as_array()
        fallback = common.contiguous_array(instance) if start is None else start
        caps = load_caps(instance, Layout.of_array(fallback), self.max_imbalance)
        began = time.perf_counter()
        model = build_monolithic(instance, self.formulation, self.encoding, caps)
        build_time = time.perf_counter() - began
        if start is not None:
            model.set_start(common.canonical(instance, start))
        # writing and loading the model costs about as much as building it (twice for CBC)
        limit = stop.engine_seconds - (2.0 if self.backend == "cbc" else 1.0) * build_time - 0.05
        stats = self._stats(exact.base_stats(instance, origin, self.max_imbalance, False))
        stats.update(
            decomposition="none",
            encoding=choose_encoding(instance, self.encoding),
            build_time=build_time,
            binaries=len(model.integer_vars),
        )
        outcome = None
        if limit > 0.01:
            outcome = runner.run(model, mip=True, time_limit=limit, warm=start is not None)
            stats["last_status"] = outcome.detail
        candidates = []
        if outcome is not None and outcome.has_values:
            empty = np.zeros((instance.num_layers, instance.num_experts), dtype=np.int64)
            candidates.append((model.decode(empty), "backend"))
        if start is not None:
            candidates.append((start, "start"))
        # hops minimises traffic: the family's objective would prefer a balanced start
        measure = common.objective if self.formulation == "joint" else common.traffic
        best = min(candidates, key=lambda c: measure(instance, c[0]), default=None)
        value = None if best is None else common.objective(instance, best[0])
        stop(value)
        common_args = {"solver": self.name, "seed": seed, "stop": stop}
        if outcome is not None and outcome.status == "infeasible":
            stats["error"] = "the backend called a placement model infeasible; it never is"
            return finish(instance, None, Status.ERROR, stats=stats, **common_args)
        bound = self._bound(instance, model.offset, outcome, caps)
        proven = (
            outcome is not None
            and outcome.status == "optimal"
            and self.formulation == "joint"
            and caps is None
            and not instance.spare_slots
        )
        if best is None:
            return finish(instance, None, Status.NO_SOLUTION, bound=bound, stats=stats,
                          **common_args)  # fmt: skip
        placement, source = best
        stats["solution_from"] = source
        backend_objective = None
        if source == "backend" and self.formulation == "joint":
            # at a proven optimum the model's own value is the objective: a check of the model
            stats["backend_objective"] = model.offset + float(model.problem.objective.value())
            if proven:
                backend_objective = stats["backend_objective"]
        if proven and source == "backend":
            bound = value
        elif bound is not None and bound > value:
            bound = value  # tolerance noise past a feasible objective
        if bound is not None and value:
            stats["gap"] = (value - bound) / abs(value)
        status = Status.OPTIMAL if proven and source == "backend" else Status.FEASIBLE
        return finish(
            instance, common.to_solution(placement), status, bound=bound, stats=stats,
            backend_objective=backend_objective, **common_args,
        )  # fmt: skip

    def _bound(
        self, instance: PlacementInstance, offset: float, outcome: Any, caps: np.ndarray | None
    ) -> float | None:
        """A proven lower bound on the family's objective, or ``None``."""
        if instance.spare_slots:
            return None
        combinatorial = common.lower_bound(instance)
        if caps is not None or outcome is None or outcome.bound is None:
            return combinatorial
        if not math.isfinite(outcome.bound):
            return combinatorial
        engine = offset + outcome.bound
        if self.formulation == "hops":
            engine += float(common.load_lower_bound(instance).sum())
        engine -= BOUND_TOLERANCE * max(1.0, abs(engine))
        return max(engine, combinatorial)

    # -- one layer at a time -----------------------------------------------------------------
    def _decomposed(
        self,
        instance: PlacementInstance,
        stop: Stop,
        seed: int,
        runner: Any,
        start_solution: PlacementSolution | None,
        origin: str | None,
    ) -> Result:
        if start_solution is None:
            start = Layout.of_array(common.contiguous_array(instance))
            origin = "contiguous"
        else:
            start = Layout.of(start_solution)
        caps = load_caps(instance, start, self.max_imbalance)
        stats = self._stats(
            exact.base_stats(instance, origin, self.max_imbalance, start.replicated)
        )

        def relaxed(
            li: int, layout: Layout, costs: np.ndarray, seconds: float
        ) -> tuple[np.ndarray | None, bool]:
            model = self._layer(instance, li, layout, costs, caps)
            outcome = runner.run(model, mip=False, time_limit=seconds, warm=False)
            if outcome.status != "optimal":
                return None, False
            values = model.assignment_values(li, costs.shape)
            # without a cap, rounding may not unbalance the layer beyond where it is
            current = float(layout.gpu_loads(instance, li, layout.gpu[li]).max())
            limit = current if caps is None else float(caps[li])
            row = round_layer(instance, layout, li, values, costs, limit)
            if row is None or _over(instance, layout, li, row, limit):
                return None, False
            return row, False

        def integral(
            li: int, layout: Layout, costs: np.ndarray, seconds: float
        ) -> tuple[np.ndarray | None, bool]:
            model = self._layer(instance, li, layout, costs, caps)
            model.set_start(layout.gpu[li])
            outcome = runner.run(model, mip=True, time_limit=seconds, warm=True)
            if not outcome.has_values:
                return None, False
            return model.decode(layout.gpu[li]), outcome.status == "optimal"

        outcome = sweep(instance, stop, start, relaxed, self.formulation)
        polish = instance.gpus * len(start.owner[0]) <= MAX_EXACT_LAYER
        stats["layer_models"] = "LP, rounded" + (", then MIP" if polish else "")
        if polish and outcome.converged and stop.stopped_by is None:
            first = outcome
            outcome = sweep(instance, stop, first.layout, integral, self.formulation, False)
            outcome.layer_solves += first.layer_solves
            outcome.accepted += first.accepted
            outcome.sweeps += first.sweeps
            outcome.kept_start = first.kept_start
        return exact.decomposed_result(
            instance, outcome, stats, solver=self.name, seed=seed, stop=stop
        )

    def _layer(
        self,
        instance: PlacementInstance,
        li: int,
        layout: Layout,
        costs: np.ndarray,
        caps: np.ndarray | None,
    ) -> Any:
        cap = None if caps is None else float(caps[li])
        loads = layout.item_loads(instance, li)
        return build_layer(instance, li, costs, loads, layout.owner[li], self.formulation, cap)


def _over(
    instance: PlacementInstance, layout: Layout, li: int, row: np.ndarray, cap: float
) -> bool:
    """Whether a rounded layer breaks its load cap (which the model's solutions respect)."""
    return bool((layout.gpu_loads(instance, li, row) > cap * (1 + 1e-9)).any())
