"""LKH-3 backend: Helsgaun's Lin-Kernighan heuristic for TSP and ATSP, through elkai.

Encode -> run -> decode. The distance matrix is scaled to integers by the
smallest power of ten that makes it whole (:func:`~rota.solvers.scaling.integer_scale`),
or, when none does, by the largest that LKH can hold, and written as a TSPLIB
problem (``TSP`` when the scaled matrix is symmetric, else ``ATSP``, which LKH
turns into a symmetric problem on twice the nodes). LKH keeps arc costs in C
ints multiplied by its ``PRECISION`` (100), and elkai's copy silently caps
every weight above ``INT_MAX / 2 / PRECISION``, so larger scaled distances are
refused rather than solved wrongly. The tour comes back as a cycle of
locations and is cut at the depot; the objective is the evaluator's (LKH's
integer cost, unscaled, when the scaling is exact).

elkai's ``solve_problem`` takes LKH's parameter file as text; this backend
uses it (rather than ``DistanceMatrix.solve_tsp``, which only sets ``RUNS``)
for LKH's seed, trial count and time limit. LKH holds the GIL and ends the
process on a failed internal assertion, so it runs in a forked child
(:mod:`rota.solvers.forked`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from rota.problems.routing import Route, RoutingInstance, RoutingSolution
from rota.solvers.base import RequiresModules, Result, Status, finish
from rota.solvers.forked import run_forked
from rota.solvers.routing import RoutingCapabilities, check_capabilities, per_instance
from rota.solvers.scaling import integer_scale
from rota.solvers.stopping import MaxIterations, Stop

#: LKH's ``PRECISION``, its default: arc costs are multiplied by it inside LKH.
PRECISION = 100
#: The largest arc cost LKH represents exactly: ``INT_MAX / 2 / PRECISION``.
MAX_WEIGHT = (2**31 - 1) // 2 // PRECISION
#: LKH reads counts into C ints; a trial count this large never ends a run.
_INT_MAX = 2**31 - 1


class LKHSolver(RequiresModules):
    """LKH-3 (Helsgaun 2017) for TSP and ATSP: one uncapacitated vehicle visiting every client.

    One LKH run (``RUNS = 1``) of many trials, each a kicked Lin-Kernighan
    search from a tour built around the best so far. Stopping criteria, as
    LKH has them:

    - ``iterations``: LKH's ``MAX_TRIALS``, trials of the run;
    - ``time``: LKH's ``TIME_LIMIT`` and ``TOTAL_TIME_LIMIT``, which count the
      CPU time of its process (from reading the problem on) and are checked
      before each trial. The subgradient ascent that builds LKH's candidate
      edges comes first and runs to its end whatever the limit (about 1.2 s
      for rbg323, whose ATSP becomes 646 nodes): a limit it uses up ends the
      run without a tour (``NO_SOLUTION``). On a busy machine wall-clock time
      also exceeds the limit by what other processes take.

    Without ``iterations`` the trials go on until the time limit, as PyVRP's
    search does. LKH stops at a target only when a tour costs exactly that
    much, so ``target`` is not offered. The seed is LKH's ``SEED``: a run
    that ends on ``iterations`` is reproducible, one cut by time is not. An
    interrupt (Ctrl+C) kills the run, which then has no solution. LKH proves
    nothing here, so results are ``FEASIBLE``; it takes no starting tours.
    """

    name = "lkh"
    problem = "routing"
    description = "LKH-3 Lin-Kernighan-Helsgaun, elkai (heuristic; TSP and ATSP)"
    capabilities = RoutingCapabilities(
        warm_start=False,
        stopping=frozenset({"time", "iterations"}),
        asymmetric=True,
        time_windows=False,
        heterogeneous=False,
        multi_depot=False,
        uncapacitated=True,
    )

    requires = ("elkai",)

    def supports(self, instance: RoutingInstance) -> str | None:
        if reason := check_capabilities(self.name, self.capabilities, instance):
            return reason
        if not instance.is_tsp:
            return (
                f"{self.name} solves TSP and ATSP only (one uncapacitated vehicle visiting all "
                f"clients); {instance.name} has {_fleet(instance)}"
            )
        try:
            _scaled(instance)
        except ValueError as exc:
            return f"{self.name}: {exc}"
        return None

    def solve(
        self, instance: RoutingInstance, stop: Stop, seed: int, warm_start: tuple = ()
    ) -> Result:
        if instance.num_clients < 2:
            # LKH needs three nodes; with fewer clients there is one tour.
            visits = tuple(int(c) for c in instance.clients)
            return finish(
                instance, RoutingSolution((Route(visits),) if visits else ()), Status.FEASIBLE,
                solver=self.name, seed=seed, stop=stop, stats={"note": "one tour"},
            )  # fmt: skip
        encode_start = time.perf_counter()
        matrix, scale, exact = _scaled(instance)
        trials = next((c.count for c in stop.criteria if isinstance(c, MaxIterations)), None)
        parameters = [
            "RUNS = 1",
            f"SEED = {seed % _INT_MAX}",
            f"MAX_TRIALS = {_INT_MAX if trials is None else min(trials, _INT_MAX)}",
            "TRACE_LEVEL = 0",
        ]
        if math.isfinite(stop.time_limit):
            seconds = max(stop.engine_seconds, 1e-3)
            parameters += [f"TIME_LIMIT = {seconds!r}", f"TOTAL_TIME_LIMIT = {seconds!r}"]
        parameters.append("PROBLEM_FILE = :stdin:")
        problem = _tsplib(matrix)
        stats: dict[str, Any] = {
            "distance_scale": scale,
            "scaling_exact": exact,
            "encode_time": time.perf_counter() - encode_start,
        }
        outcome = run_forked(_run_lkh, "\n".join(parameters) + "\n", problem, stop=stop)

        def without_tour(status: Status, **extra: Any) -> Result:
            return finish(
                instance, None, status, solver=self.name, seed=seed, stop=stop,
                stats=stats | extra,
            )  # fmt: skip

        if outcome.ended == "failed":
            return without_tour(Status.ERROR, error=f"LKH failed: {outcome.detail}")
        if outcome.ended == "interrupted":
            note = "LKH was stopped before it ended; it gives its tour only then"
            return without_tour(Status.NO_SOLUTION, stopped_by="interrupted", note=note)
        if not outcome.value:
            reason = "LKH's time limit ran out while it built its candidate edges"
            return without_tour(Status.NO_SOLUTION, reason=reason)
        tour = np.array(outcome.value) - 1  # LKH numbers nodes from 1
        cost = int(matrix[tour, np.roll(tour, -1)].sum())
        stats["engine_objective"] = cost / scale
        if trials is not None and not stop.out_of_time:
            stats["stopped_by"] = "iterations"
        at_depot = int(np.flatnonzero(tour == instance.depots[0])[0])
        visits = tuple(int(v) for v in np.roll(tour, -at_depot)[1:])
        return finish(
            instance, RoutingSolution((Route(visits),)), Status.FEASIBLE, solver=self.name,
            seed=seed, stop=stop, backend_objective=cost / scale if exact else None, stats=stats,
        )  # fmt: skip


def _run_lkh(parameters: str, problem: str) -> list[int]:
    """LKH's tour (nodes numbered from 1); runs in the child."""
    from elkai import _elkai

    return list(_elkai.solve_problem(parameters, problem))


def _fleet(instance: RoutingInstance) -> str:
    types = instance.vehicle_types
    if len(types) > 1:
        return f"{len(types)} vehicle types"
    if types[0].capacity is not None:
        return "capacitated vehicles"
    return "an unlimited fleet" if types[0].count is None else f"{types[0].count} vehicles"


@per_instance
def _scaled(instance: RoutingInstance) -> tuple[np.ndarray, int, bool]:
    """The integer matrix LKH gets, its scale, and whether it is exact.

    Raises
    ------
    ValueError
        When even unscaled distances exceed :data:`MAX_WEIGHT`.
    """
    largest = float(instance.distance.max())
    if largest > MAX_WEIGHT:
        raise ValueError(
            f"distances too large for LKH: it takes whole numbers up to {MAX_WEIGHT:,} "
            f"(INT_MAX / 2 / PRECISION) and {instance.name}'s largest is {largest:.6g}"
        )
    # the largest power of ten that keeps every scaled distance within LKH's range
    room = 1
    while 0 < largest * room * 10 <= MAX_WEIGHT:
        room *= 10
    scale, exact = integer_scale(instance.distance, max_scale=room)
    matrix = np.round(instance.distance * scale).astype(np.int64)
    return matrix, scale, exact


def _tsplib(matrix: np.ndarray) -> str:
    kind = "TSP" if np.array_equal(matrix, matrix.T) else "ATSP"
    rows = "\n".join(" ".join(map(str, row)) for row in matrix.tolist())
    return (
        f"TYPE : {kind}\nDIMENSION : {len(matrix)}\nEDGE_WEIGHT_TYPE : EXPLICIT\n"
        f"EDGE_WEIGHT_FORMAT : FULL_MATRIX\nEDGE_WEIGHT_SECTION\n{rows}\nEOF\n"
    )


__all__ = ["MAX_WEIGHT", "LKHSolver"]
