"""What the two model-based placement solvers (``milp`` and ``cpsat``) share: their
options, the sizes they take, their starting placements and the decomposition's result."""

from __future__ import annotations

from typing import Any

import numpy as np

from rota.problems.placement import PlacementInstance, PlacementSolution, evaluate
from rota.solvers.base import Result, Status, finish
from rota.solvers.placement import common
from rota.solvers.placement.decompose import SweepResult
from rota.solvers.placement.formulation import ENCODINGS, FORMULATIONS, model_size
from rota.solvers.stopping import Stop

DECOMPOSITIONS = ("auto", "none", "layers")
#: Binaries of the largest one-layer model (256 experts on 64 GPUs: 16,384).
MAX_LAYER_VARS = 40_000
#: Largest objective the engines handle exactly (doubles with tolerances near
#: 1e-9 relative; CP-SAT's integers after scaling stay far below 2**53 there).
MAX_OBJECTIVE = 1e12


def check_options(
    solver: str,
    formulation: str,
    encoding: str,
    decomposition: str,
    max_imbalance: float | None,
    greedy_start: bool,
) -> None:
    """Validate the options ``milp`` and ``cpsat`` share; the message names the bad one."""
    for option, value, choices in (
        ("formulation", formulation, FORMULATIONS),
        ("encoding", encoding, ENCODINGS),
        ("decomposition", decomposition, DECOMPOSITIONS),
    ):
        if value not in choices:
            raise ValueError(
                f"{solver} option {option}={value!r} is not one of {', '.join(choices)}"
            )
    if max_imbalance is not None and (
        isinstance(max_imbalance, bool)
        or not isinstance(max_imbalance, int | float)
        or not 1 <= max_imbalance <= 1e6
    ):
        raise ValueError(
            f"{solver} option max_imbalance={max_imbalance!r} must be a number >= 1 or None"
        )
    if not isinstance(greedy_start, bool):
        raise ValueError(f"{solver} option greedy_start={greedy_start!r} must be True or False")


def decomposes(
    instance: PlacementInstance, encoding: str, decomposition: str, max_monolithic: int
) -> bool:
    return decomposition == "layers" or (
        decomposition == "auto" and model_size(instance, encoding) > max_monolithic
    )


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
    layer = instance.gpus * instance.gpus * instance.slots  # copies x GPUs at most
    if decomposes(instance, encoding, decomposition, max_monolithic) and layer > MAX_LAYER_VARS:
        return (
            f"{solver}: one layer of {instance.name} has up to {instance.gpus * instance.slots} "
            f"expert copies x {instance.gpus} GPUs = {layer} binaries (limit {MAX_LAYER_VARS}); "
            "use greedy"
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


def starting_solution(
    instance: PlacementInstance,
    warm_start: tuple[PlacementSolution, ...],
    greedy_start: bool,
    replicas: bool,
) -> tuple[PlacementSolution | None, str | None]:
    """A solve's start and where it came from.

    The best feasible warm start (without replicas unless ``replicas``), else
    with ``greedy_start`` the better of EPLB (filling spare slots with
    replicas if ``replicas``) and contiguous placement, else nothing.
    """
    best, best_value = None, np.inf
    for start in warm_start:
        if not replicas and start.replicas:
            continue
        report = evaluate(instance, start)
        if report.feasible and report.objective < best_value:
            best, best_value = start, report.objective
    if best is not None:
        return best, "warm start"
    if not greedy_start:
        return None, None
    candidates = {
        "eplb": common.eplb(instance, instance.spare_slots if replicas else 0),
        "contiguous": PlacementSolution.from_array(common.contiguous_array(instance)),
    }
    name = min(candidates, key=lambda k: evaluate(instance, candidates[k]).objective)
    return candidates[name], name


def base_stats(
    instance: PlacementInstance,
    origin: str | None,
    max_imbalance: float | None,
    replicated: bool,
) -> dict[str, Any]:
    """What every result of ``milp`` and ``cpsat`` records about its scope."""
    stats: dict[str, Any] = {"start": origin}
    if max_imbalance is not None:
        stats["max_imbalance"] = max_imbalance
        stats["restricted"] = (
            "every layer's busiest GPU capped (max_imbalance times the mean, or the start's "
            "where higher): no optimality proof, and only the combinatorial bound"
        )
    if replicated:
        stats["scope"] = "the start's replicas kept (their number per expert), moved freely"
    elif instance.spare_slots:
        stats["scope"] = (
            f"placements without replicas ({instance.spare_slots} spare slot(s) per layer "
            "unused): no optimality proof or bound covers replicated placements"
        )
    return stats


def decomposed_result(
    instance: PlacementInstance,
    outcome: SweepResult,
    stats: dict[str, Any],
    *,
    solver: str,
    seed: int,
    stop: Stop,
) -> Result:
    """The result of a decomposition: ``FEASIBLE``, with the combinatorial bound if any."""
    stats.update(outcome.stats())
    bound = common.lower_bound(instance)
    if bound is not None:
        bound = min(bound, outcome.objective)
        if outcome.objective:
            stats["gap"] = (outcome.objective - bound) / abs(outcome.objective)
    return finish(
        instance, outcome.layout.solution(), Status.FEASIBLE, solver=solver, seed=seed,
        stop=stop, bound=bound, stats=stats, backend_objective=outcome.objective,
    )  # fmt: skip


__all__ = [
    "DECOMPOSITIONS", "MAX_LAYER_VARS", "MAX_OBJECTIVE", "base_stats", "check_options",
    "decomposed_result", "decomposes", "size_refusal", "starting_solution",
]  # fmt: skip
