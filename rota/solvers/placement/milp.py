"""Expert placement by mixed-integer programming, through PuLP with CBC or HiGHS.

Models are in :mod:`rota.solvers.placement.formulation`: ``joint`` (MoETuner's
load balance plus inter-layer token routing, the family's objective; the
default) and ``hops`` (ExFlow's bandwidth-weighted cross-GPU hops with equal
expert counts per GPU).

Sizes
-----
The monolithic model has one co-location variable per flow pair and GPU (and
node): up to :data:`MAX_MONOLITHIC` of them. Larger instances are solved by
the layer-by-layer decomposition of :mod:`rota.solvers.placement.decompose`,
one exact MILP per layer (``E * G`` binaries, at most :data:`MAX_LAYER_VARS`);
``decomposition="auto"`` (the default) picks by size, ``"none"`` refuses what
the monolithic model cannot hold, ``"layers"`` always decomposes. Larger
layers are refused.

Status and bound
----------------
Monolithic, ``joint``: ``OPTIMAL`` when the backend proves the model optimal
(CBC's verdict read from its log, as for routing), else ``FEASIBLE`` with the
backend's bound. ``hops`` optimises traffic, not the family's objective: never
``OPTIMAL``; its bound is the traffic bound plus the load bound. The
decomposition is never ``OPTIMAL`` and reports ``stats["decomposition"] =
"layers"``; its bound is the combinatorial one of
:func:`~rota.solvers.placement.common.lower_bound`. With spare slots the
models place no replicas while the family allows them: results are then
``FEASIBLE`` without a bound (``stats["scope"]`` says so).

Starts
------
The best feasible warm start without replicas, else (``greedy_start``) the
better of EPLB without replicas and contiguous placement, is the MIP start
(the decomposition's starting point) and is returned if the backend finds
nothing better. Without either the decomposition starts from contiguous
placement. An iteration of the stop is one MIP solve (one layer when
decomposed).
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
from rota.solvers.placement import common
from rota.solvers.placement.decompose import sweep
from rota.solvers.placement.formulation import (
    ENCODINGS,
    FORMULATIONS,
    build_layer,
    build_monolithic,
    choose_encoding,
    model_size,
)
from rota.solvers.stopping import Stop

BACKENDS = ("cbc", "highs")
DECOMPOSITIONS = ("auto", "none", "layers")
#: Co-location variables of the largest monolithic model: 8 experts x 32 layers
#: on 8 GPUs has 15,872; CBC and HiGHS rarely prove models far above 50,000
#: within minutes on two cores, while a layer at a time keeps improving.
MAX_MONOLITHIC = 50_000
#: Binaries of the largest one-layer model (256 experts on 64 GPUs: 16,384).
MAX_LAYER_VARS = 40_000
#: Largest objective the backends handle exactly (doubles, tolerances near 1e-9).
MAX_OBJECTIVE = 1e12
#: Relative tolerance of the backends' optimality arithmetic; float bounds are lowered by it.
BOUND_TOLERANCE = 1e-6

_OPTION_NAMES = ("backend", "formulation", "encoding", "decomposition", "threads", "greedy_start")


def check_options(
    solver: str,
    formulation: str,
    encoding: str,
    decomposition: str,
    threads: int | None,
    greedy_start: bool,
) -> None:
    """Validate the options ``milp`` and ``cpsat`` share; the message names the bad one."""
    if formulation not in FORMULATIONS:
        raise ValueError(
            f"{solver} option formulation={formulation!r} is not one of {', '.join(FORMULATIONS)}"
        )
    if encoding not in ENCODINGS:
        raise ValueError(
            f"{solver} option encoding={encoding!r} is not one of {', '.join(ENCODINGS)}"
        )
    if decomposition not in DECOMPOSITIONS:
        raise ValueError(
            f"{solver} option decomposition={decomposition!r} is not one of "
            f"{', '.join(DECOMPOSITIONS)}"
        )
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(f"{solver} option threads={threads!r} must be a positive integer or None")
    if not isinstance(greedy_start, bool):
        raise ValueError(f"{solver} option greedy_start={greedy_start!r} must be True or False")


def size_refusal(
    solver: str,
    instance: PlacementInstance,
    encoding: str,
    decomposition: str,
    max_monolithic: int,
) -> str | None:
    """Why ``instance`` is beyond the models' sizes or number ranges, or ``None``."""
    try:
        size = model_size(instance, encoding)
    except ValueError as exc:
        return f"{solver}: {exc}"
    if decomposition == "none" and size > max_monolithic:
        return (
            f"{solver}: the monolithic model of {instance.name} would have {size} co-location "
            f"variables (limit {max_monolithic}); use decomposition=auto or layers"
        )
    layer = instance.num_experts * instance.gpus
    if (decomposition == "layers" or size > max_monolithic) and layer > MAX_LAYER_VARS:
        return (
            f"{solver}: one layer of {instance.name} has {instance.num_experts} experts x "
            f"{instance.gpus} GPUs = {layer} binaries (limit {MAX_LAYER_VARS}); use greedy"
        )
    largest = float(instance.loads.sum()) + instance.comm_weight * instance.inter_cost * float(
        instance.flows.sum()
    )
    if not largest <= MAX_OBJECTIVE:
        return (
            f"{solver}: objectives of {instance.name} reach {largest:.3g}, beyond "
            f"{MAX_OBJECTIVE:.0e} where the engines stop being exact; scale the counts down "
            "or use greedy"
        )
    return None


def starting_placement(
    instance: PlacementInstance, warm_start: tuple[PlacementSolution, ...], greedy_start: bool
) -> tuple[np.ndarray | None, str | None]:
    """The start of a solve and where it came from (see the module docstring)."""
    start = common.best_array_start(instance, warm_start)
    if start is not None:
        return start, "warm start"
    if not greedy_start:
        return None, None
    candidates = {
        "eplb": common.eplb(instance, replicas=0).as_array(),
        "contiguous": common.contiguous_array(instance),
    }
    name = min(candidates, key=lambda k: common.objective(instance, candidates[k]))
    return candidates[name], name


class MILPPlacement:
    """Expert placement by MILP (PuLP with CBC or HiGHS); see the module docstring.

    Parameters
    ----------
    backend
        ``"cbc"`` (bundled with PuLP) or ``"highs"`` (highspy).
    formulation
        ``"joint"`` (MoETuner; the family's objective) or ``"hops"`` (ExFlow).
    decomposition
        ``"auto"``, ``"none"`` or ``"layers"``.
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
        threads: int | None = None,
        greedy_start: bool = True,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"milp option backend={backend!r} is not one of {', '.join(BACKENDS)}")
        check_options("milp", formulation, encoding, decomposition, threads, greedy_start)
        self.backend = backend
        self.formulation = formulation
        self.encoding = encoding
        self.decomposition = decomposition
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
        return size_refusal(self.name, instance, self.encoding, self.decomposition, MAX_MONOLITHIC)

    def decomposes(self, instance: PlacementInstance) -> bool:
        return self.decomposition == "layers" or (
            self.decomposition == "auto" and model_size(instance, self.encoding) > MAX_MONOLITHIC
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
        start, origin = starting_placement(instance, warm_start, self.greedy_start)
        backend_seed = seed % 2_147_483_646 + 1  # CBC reads 0 as "seed from the clock"
        with tempfile.TemporaryDirectory(prefix="rota-placement-") as workdir:
            if self.backend == "cbc":
                runner: Any = CBCRunner(self.threads, backend_seed, workdir)
            else:
                runner = HiGHSRunner(self.threads, backend_seed)
            if self.decomposes(instance):
                return self._decomposed(instance, stop, seed, runner, start, origin)
            return self._monolithic(instance, stop, seed, runner, start, origin)

    # -- the two ways ------------------------------------------------------------------------
    def _stats(self, instance: PlacementInstance, origin: str | None) -> dict[str, Any]:
        stats: dict[str, Any] = {
            "backend": self.backend,
            "formulation": self.formulation,
            "start": origin,
        }
        if instance.spare_slots:
            stats["scope"] = (
                f"placements without replicas ({instance.spare_slots} spare slot(s) per layer "
                "unused); no optimality proof or bound covers replicated placements"
            )
        return stats

    def _monolithic(
        self,
        instance: PlacementInstance,
        stop: Stop,
        seed: int,
        runner: Any,
        start: np.ndarray | None,
        origin: str | None,
    ) -> Result:
        began = time.perf_counter()
        model = build_monolithic(instance, self.formulation, self.encoding)
        build_time = time.perf_counter() - began
        if start is not None:
            model.set_start(start)
        # writing and loading the model costs about as much as building it (twice for CBC)
        limit = stop.engine_seconds - (2.0 if self.backend == "cbc" else 1.0) * build_time - 0.05
        stats = self._stats(instance, origin)
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
            candidates.append((model.decode(np.zeros((instance.num_layers, instance.num_experts),
                                                     dtype=np.int64)), "backend"))  # fmt: skip
        if start is not None:
            candidates.append((start, "start"))
        best = min(candidates, key=lambda c: common.objective(instance, c[0]), default=None)
        value = None if best is None else common.objective(instance, best[0])
        stop(value)
        if outcome is not None and outcome.status == "infeasible":
            stats["error"] = "the backend called a placement model infeasible; it never is"
            return finish(instance, None, Status.ERROR, solver=self.name, seed=seed, stop=stop,
                          stats=stats)  # fmt: skip
        bound = self._bound(instance, model.offset, outcome)
        proven = (
            outcome is not None
            and outcome.status == "optimal"
            and self.formulation == "joint"
            and not instance.spare_slots
        )
        if best is None:
            return finish(instance, None, Status.NO_SOLUTION, solver=self.name, seed=seed,
                          stop=stop, bound=bound, stats=stats)  # fmt: skip
        placement, source = best
        stats["solution_from"] = source
        backend_objective = None
        if source == "backend" and outcome is not None and self.formulation == "joint":
            # at a proven optimum the model's own value is the objective: a check of the model
            stats["backend_objective"] = model.offset + float(model.problem.objective.value())
            if proven:
                backend_objective = stats["backend_objective"]
        if proven:
            bound = value
        elif bound is not None and bound > value:
            bound = value  # tolerance noise past a feasible objective
        if bound is not None and value:
            stats["gap"] = (value - bound) / abs(value)
        return finish(
            instance, common.to_solution(placement),
            Status.OPTIMAL if proven and source == "backend" else Status.FEASIBLE,
            solver=self.name, seed=seed, stop=stop, bound=bound, stats=stats,
            backend_objective=backend_objective,
        )  # fmt: skip

    def _bound(self, instance: PlacementInstance, offset: float, outcome: Any) -> float | None:
        """A proven lower bound on the family's objective, or ``None``."""
        if instance.spare_slots:
            return None
        combinatorial = common.lower_bound(instance)
        if outcome is None or outcome.bound is None or not math.isfinite(outcome.bound):
            return combinatorial
        engine = offset + outcome.bound
        if self.formulation == "hops":
            engine += float(common.load_lower_bound(instance).sum())
        engine -= BOUND_TOLERANCE * max(1.0, abs(engine))
        return max(engine, combinatorial)

    def _decomposed(
        self,
        instance: PlacementInstance,
        stop: Stop,
        seed: int,
        runner: Any,
        start: np.ndarray | None,
        origin: str | None,
    ) -> Result:
        if start is None:
            start, origin = common.contiguous_array(instance), "contiguous"
        stats = self._stats(instance, origin)

        def solve_layer(
            li: int, costs: np.ndarray, placement: np.ndarray, seconds: float
        ) -> tuple[np.ndarray | None, bool]:
            model = build_layer(instance, li, costs, self.formulation)
            model.set_start(placement)
            outcome = runner.run(model, mip=True, time_limit=seconds, warm=True)
            if not outcome.has_values:
                return None, False
            return model.decode(placement)[li], outcome.status == "optimal"

        result = sweep(instance, stop, start, solve_layer, self.formulation)
        stats.update(result.stats())
        bound = common.lower_bound(instance)
        if bound is not None:
            bound = min(bound, result.objective)
            if result.objective:
                stats["gap"] = (result.objective - bound) / abs(result.objective)
        return finish(
            instance, common.to_solution(result.placement), Status.FEASIBLE, solver=self.name,
            seed=seed, stop=stop, bound=bound, stats=stats, backend_objective=result.objective,
        )  # fmt: skip
