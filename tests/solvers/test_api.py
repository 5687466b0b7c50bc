"""``rota.solve`` itself: stopping criteria, warm starts and lists of instances."""

from __future__ import annotations

import pytest

import rota
from rota.problems.routing import RoutingInstance, RoutingSolution
from rota.solvers import registry
from rota.solvers.api import DEFAULT_TIME_LIMIT, stopping_of
from rota.solvers.base import Result, Status, finish
from rota.solvers.routing import RoutingCapabilities
from rota.solvers.stopping import (
    MaxIterations,
    NoImprovement,
    Stopping,
    TargetObjective,
)

from .conformance import tiny_instance

# -- stopping criteria -----------------------------------------------------------------


def test_each_criterion_on_its_own():
    iterations = MaxIterations(3)
    assert [iterations(None) for _ in range(3)] == [False, False, True]
    stale = NoImprovement(2)
    assert [stale(v) for v in (10, 9, 9, 9)] == [False, False, False, True]
    assert NoImprovement(1, rota.Sense.MAX)(5) is False  # a first value is an improvement
    assert TargetObjective(5)(None) is False
    assert (TargetObjective(5)(5), TargetObjective(5)(6)) == (True, False)
    at_least = TargetObjective(5, rota.Sense.MAX)
    assert (at_least(5), at_least(4)) == (True, False)


def test_stop_is_the_first_of_its_criteria_and_records_which():
    stop = Stopping(iterations=5, target=3).start()
    assert stop.time_limit == float("inf") and stop.remaining == float("inf")
    assert [stop(v) for v in (9, 8, 3)] == [False, False, True]
    assert stop.stats() == {"stop_iterations": 3, "stopped_by": "target"}
    timed = Stopping(time=0.01).start()
    assert 0 < timed.engine_seconds <= 0.01 and timed.time_limit == 0.01


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("time=5", Stopping(time=5)),
        ("time=5,iterations=10000,no-improvement=2000", Stopping(5, 10_000, 2000)),
        (" target = -1.5 , iterations=1e3", Stopping(iterations=1000, target=-1.5)),
    ],
)
def test_parse(text, expected):
    assert Stopping.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time=0", "stop time must be a positive, finite number of seconds, got 0"),
        ("time=inf", "finite"),
        ("iterations=2.5", "stop iterations='2.5' is not an integer"),
        ("speed=3", "unknown stop criterion 'speed'"),
        ("time", "stop criterion 'time' is not NAME=VALUE"),
        ("time=1,time=2", "given twice"),
        ("target=nan", "finite"),
        ("", "names no criterion"),
    ],
)
def test_parse_errors_name_the_criterion(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Stopping.parse(text)


def test_time_limit_and_stop_combine():
    assert stopping_of(None, None) == Stopping(time=DEFAULT_TIME_LIMIT)
    assert stopping_of(2, None) == Stopping(time=2)
    assert stopping_of(None, "iterations=5") == Stopping(iterations=5)  # no time limit
    assert stopping_of(3, "iterations=5") == Stopping(time=3, iterations=5)
    assert stopping_of(3, {"time": 3}) == Stopping(time=3)
    with pytest.raises(ValueError, match="two time limits"):
        stopping_of(3, "time=4")
    with pytest.raises(ValueError, match="time_limit must be a positive, finite number"):
        stopping_of(float("nan"), None)
    with pytest.raises(ValueError, match="time_limit must be a number of seconds, got True"):
        stopping_of(True, None)


# -- warm starts -------------------------------------------------------------------------


class _WorseThanItsStart:
    """A backend that claims warm starts but returns one route per client."""

    name = "worse"
    problem = "routing"
    description = "test-only"
    capabilities = RoutingCapabilities(warm_start=True)

    def available(self) -> bool:
        return True

    def supports(self, instance: RoutingInstance) -> str | None:
        return None

    def solve(self, instance, stop, seed, warm_start=()):
        solution = RoutingSolution.from_lists([[int(c)] for c in instance.clients])
        return finish(instance, solution, Status.FEASIBLE, solver=self.name, seed=seed, stop=stop)


@pytest.fixture
def worse(monkeypatch):
    monkeypatch.setitem(registry._EXTRA, ("routing", "worse"), _WorseThanItsStart)


def test_a_result_worse_than_its_start_is_replaced_by_the_start(worse):
    instance = tiny_instance("cvrp")
    start = rota.solve(instance, solver="greedy")
    own = rota.solve(instance, solver="worse")
    assert own.objective > start.objective
    result = rota.solve(instance, solver="worse", warm_start=[own, start])
    assert result.objective == start.objective and result.solution == start.solution
    assert result.stats["solution_from"] == "warm start"
    assert result.stats["backend_objective"] == own.objective
    assert result.evaluation.objective == start.objective


def test_infeasible_starts_are_allowed_but_never_returned(worse):
    instance = tiny_instance("cvrp")
    overloaded = RoutingSolution.from_lists([instance.clients.tolist()])
    assert not rota.evaluate(instance, overloaded).feasible
    result = rota.solve(instance, solver="worse", warm_start=overloaded)
    assert "solution_from" not in result.stats and result.evaluation.feasible


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (RoutingSolution.from_lists([[1, 99]]), "warm start 0 is not a solution of tiny-cvrp: "),
        (RoutingSolution.from_lists([[1]], [4]), "vehicle type 4"),
        ("routes", "warm start 0 is a str, expected a RoutingSolution or a Result"),
    ],
)
def test_a_start_that_is_not_a_solution_is_refused(start, message):
    with pytest.raises(ValueError, match=message):
        rota.solve(tiny_instance("cvrp"), solver="pyvrp", time_limit=1, warm_start=start)


def test_a_start_without_solution_is_refused():
    empty = Result(None, None, Status.NO_SOLUTION, 0.0, "x", 0)
    with pytest.raises(ValueError, match="no_solution result of x has no solution"):
        rota.solve(tiny_instance("cvrp"), solver="pyvrp", warm_start=empty)


# -- lists of instances --------------------------------------------------------------------


class _Batched:
    """Records how it was called; solves each instance of a batch with greedy."""

    name = "batched"
    problem = "routing"
    description = "test-only"
    capabilities = RoutingCapabilities(batched=True, warm_start=True)
    calls: list[tuple[int, float, list[int]]] = []

    def available(self) -> bool:
        return True

    def supports(self, instance: RoutingInstance) -> str | None:
        return None

    def solve_batch(self, instances, stop, seed, warm_starts):
        type(self).calls.append((len(instances), stop.time_limit, [len(w) for w in warm_starts]))
        greedy = registry.get_solver("greedy")
        return [greedy.solve(i, stop, seed) for i in instances]

    def solve(self, instance, stop, seed, warm_start=()):
        type(self).calls.append((1, stop.time_limit, [len(warm_start)]))
        return registry.get_solver("greedy").solve(instance, stop, seed)


@pytest.fixture
def batched(monkeypatch):
    monkeypatch.setitem(registry._EXTRA, ("routing", "batched"), _Batched)
    _Batched.calls = []


def test_a_batched_solver_gets_the_list_in_one_call_with_k_times_the_budget(batched):
    instances = [tiny_instance(k) for k in ("cvrp", "acvrp", "tsp")]
    start = rota.solve(instances[0], solver="greedy")
    results = rota.solve(instances, solver="batched", time_limit=2, warm_start=[start, None, []])
    assert _Batched.calls == [(3, 6.0, [1, 0, 0])]
    assert [r.objective for r in results] == [
        rota.evaluate(i, r.solution).objective for i, r in zip(instances, results, strict=True)
    ]
    # a single instance is one ordinary solve with the per-instance budget
    rota.solve(instances[0], solver="batched", time_limit=2)
    assert _Batched.calls[-1] == (1, 2.0, [0])


def test_other_solvers_loop_over_a_list_with_a_fresh_stop_each():
    instances = [tiny_instance("cvrp"), tiny_instance("tsp")]
    results = rota.solve(instances, solver="pyvrp", stop="iterations=50", seed=3)
    assert [r.stats["stop_iterations"] for r in results] == [50, 50]
    assert all(r.status is Status.FEASIBLE for r in results)


@pytest.mark.parametrize(
    ("instances", "warm", "message"),
    [
        ([], None, "no instances to solve"),
        (["cvrp", "tsp"], [None], "warm_start for 2 instances must be a list with one entry"),
    ],
)
def test_bad_lists_are_refused(instances, warm, message):
    with pytest.raises(ValueError, match=message):
        rota.solve([tiny_instance(k) for k in instances], solver="greedy", warm_start=warm)


def test_requests_a_solver_cannot_honour_are_refused_before_solving(batched):
    instance = tiny_instance("cvrp")
    with pytest.raises(rota.UnsupportedError, match="batched cannot stop on iterations"):
        rota.solve(instance, solver="batched", stop="iterations=3")
    with pytest.raises(ValueError, match="seed must be an integer"):
        rota.solve(instance, solver="greedy", seed=1.5)
