"""PyVRP's own test files: every one PyVRP reads, rota reads and solves; the rest it refuses."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import rota
from rota.problems.reference import reference_cost
from rota.problems.routing.io.vrplib import read_solution
from rota.solvers.ortools import ORToolsSolver

DATA = Path(__file__).resolve().parents[1] / "data" / "pyvrp"

#: file -> the features rota finds in it.
READABLE = {
    "50pr439.gtsp": ("prizes", "groups"),
    "C201R0.25.vrp": ("release_times", "reloads"),
    "E-n22-k4.txt": (),
    "OkSmall.txt": (),
    "OkSmallAllowedClients.txt": ("allowed_clients",),
    "OkSmallMaxDistance.txt": ("max_distance",),
    "OkSmallMultipleDepots.txt": (),
    "OkSmallMultipleLoad.txt": ("multi_load",),
    "OkSmallMultipleReloadDepots.txt": ("reloads",),
    "OkSmallMultipleTrips.txt": ("reloads",),
    "OkSmallMutuallyExclusiveGroups.txt": ("prizes", "groups"),
    "OkSmallPrizes.txt": ("prizes",),
    "OkSmallReleaseTimes.txt": ("release_times",),
    "OkSmallUnitDistanceCost.txt": (),
    "OkSmallWaitTime.txt": (),
    "PR01.vrp": ("max_duration", "allowed_clients"),
    "PR11A.vrp": ("max_duration",),
    "RC208.vrp": (),
    "ServiceTimeSpecification.txt": (),
    "SmallShipments.txt": ("shipments",),
    "SmallVRPSPD.vrp": ("pickups",),
    "X-n101-50-k13.vrp": ("pickups", "linehaul_first"),
    "X115-HVRP.vrp": (),
    "lrc206.vrp": ("shipments",),
    "p06-2-50.vrp": ("prizes",),
    "pr107.tsp": (),
}

#: Files PyVRP refuses too (or that describe infeasible instances), and why.
REFUSED = {
    "DepotNotOne.txt": "EDGE_WEIGHT_SECTION",
    "DepotsNotLowerIndices.txt": "EDGE_WEIGHT_SECTION",
    "EdgeWeightsNoExplicit.txt": "field EDGE_WEIGHT_TYPE must be one of",
    "EdgeWeightsNotFullMatrix.txt": "field EDGE_WEIGHT_FORMAT must be one of",
    "MissingVehicleData.txt": "VEHICLES is 3 but 1 rows are given",
    "TimeWindowOpenLargerThanClose.txt": "closes at 5.0 before it opens at 10.0",
    "UnknownEdgeWeightFmt.txt": "EDGE_WEIGHT_SECTION",
    "UnknownEdgeWeightType.txt": "got EUC_3D",
    # infeasible as given: no vehicle may serve client 4, and client 4 is out of reach
    "CastDataSection2D.txt": "no vehicle type's allowed_clients includes it",
    "ReallyLargeDistance.txt": "cannot be served within its time window",
}


def _read(name: str) -> rota.RoutingInstance:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # lrc206's node ids start at 0
        return rota.read(DATA / name)


def test_every_file_is_listed():
    instances = {p.name for p in DATA.iterdir() if p.suffix not in (".sol", ".md")}
    assert instances == set(READABLE) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(READABLE))
def test_reads_with_its_features(name: str):
    assert _read(name).features == READABLE[name]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refuses_with_one_line(name: str):
    with pytest.raises(rota.FormatError) as info:
        _read(name)
    message = str(info.value)
    assert "\n" not in message and REFUSED[name] in message, message


@pytest.mark.parametrize(
    ("name", "cost", "feasible"),
    [
        ("SmallShipments", 65128.0, True),
        ("C201R0.25", 1068.7, True),  # Solomon's one-decimal distances, as published
        ("RC208", 776.1, True),
        ("OkSmall", 9725.0, True),
        ("OkSmallMultipleDepots", 7748.0, True),
        ("OkSmallMultipleReloadDepots", 7639.0, False),  # late at client 3, as PyVRP says
    ],
)
def test_solutions_evaluate_to_their_cost(name: str, cost: float, feasible: bool):
    instance = _read(next(n for n in READABLE if n.startswith(name + ".")))
    solution, stated = read_solution(DATA / f"{name}.sol", instance)
    report = rota.evaluate(instance, solution)
    assert report.objective == pytest.approx(cost, abs=1e-6)
    assert stated in (None, cost) and report.feasible is feasible


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # the file's Cost line is 1941256006, PyVRP's scaled units; its routes cost this
        ("X115-HVRP.vrp", pytest.approx(19412.5602, abs=1e-4)),
        ("OkSmall.txt", 9725.0),  # routes and no Cost line
        ("OkSmallMultipleReloadDepots.txt", None),  # infeasible routes are no reference
        ("C201R0.25.vrp", pytest.approx(1068.7, abs=1e-9)),
    ],
)
def test_references_are_the_evaluated_routes_of_the_sol(name: str, expected):
    path = DATA / name
    found = reference_cost(path, _read(name))
    assert (found.value if found else None) == expected
    if found is not None:
        assert found.kind == "bks" and found.source == str(path.with_suffix(".sol"))


@pytest.mark.parametrize("name", sorted(READABLE))
def test_pyvrp_solves_it_and_the_evaluator_agrees(name: str):
    instance = _read(name)
    result = rota.solve(instance, solver="pyvrp", stop="time=10,iterations=300", seed=1)
    assert result.status is rota.Status.FEASIBLE, result.stats
    report = rota.evaluate(instance, result.solution)
    assert report.feasible and report.objective == pytest.approx(result.objective, rel=1e-12)
    engine = result.stats["engine_objective"] / (
        result.stats["distance_scale"] * result.stats["cost_scale"]
    )
    # PyVRP's own cost of the same routes: exact where the data scales to integers exactly
    tolerance = 1e-12 if result.stats["scaling_exact"] else 1e-4
    assert report.objective == pytest.approx(engine, rel=tolerance)


ORTOOLS_REFUSES = {
    "C201R0.25.vrp": "release times, reloads",
    "OkSmallMultipleReloadDepots.txt": "reloads",
    "OkSmallMultipleTrips.txt": "reloads",
    "OkSmallReleaseTimes.txt": "release times",
    "SmallVRPSPD.vrp": "deliveries from the depot together with pickups",
    "X-n101-50-k13.vrp": "linehaul first",
}


@pytest.mark.parametrize("name", sorted(READABLE))
def test_ortools_solves_what_it_models_and_the_evaluator_agrees(name: str):
    instance = _read(name)
    reason = ORToolsSolver().supports(instance)
    if name in ORTOOLS_REFUSES:
        assert reason is not None and ORTOOLS_REFUSES[name] in reason
        return
    assert reason is None
    if instance.num_clients > 150:
        pytest.skip("too large to solve in a unit test")
    result = rota.solve(instance, solver="ortools", stop="time=2,iterations=300", seed=1)
    assert result.status is rota.Status.FEASIBLE, result.stats
    report = rota.evaluate(instance, result.solution)
    assert report.feasible and report.objective == pytest.approx(result.objective, rel=1e-12)
    engine = result.stats["engine_objective"] / (
        result.stats["distance_scale"] * result.stats["cost_scale"]
    )
    tolerance = 1e-12 if result.stats["scaling_exact"] else 1e-4
    assert report.objective == pytest.approx(engine, rel=tolerance)
