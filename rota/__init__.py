"""rota: vehicle routing and scheduling with classical, exact, genetic and neural solvers.

The public API in one place::

    import rota
    inst = rota.read("X-n101-k25.vrp")
    res = rota.solve(inst, solver="pyvrp", time_limit=5, seed=1)
    report = rota.evaluate(inst, res.solution)
    rota.write(res, "sol.json", inst)
    better = rota.solve(inst, solver="pyvrp", warm_start=res, stop="time=5,no-improvement=2000")
    many = rota.solve_many(rota.read_set("set.jsonl"), solver="pyvrp", time_limit=5, client=client)
"""

from rota.cluster import solve_many
from rota.errors import (
    FormatError,
    UnknownSolverError,
    UnsupportedError,
    UnsupportedInstanceError,
)
from rota.problems import (
    evaluate,
    problem_of,
    read,
    read_set,
    read_solution,
    write_instance,
    write_solution,
)
from rota.problems.base import Problem, Sense, Violation
from rota.problems.routing import (
    Evaluation,
    Route,
    RoutingInstance,
    RoutingSolution,
    VehicleType,
)
from rota.solvers.api import solve
from rota.solvers.base import Result, Status
from rota.solvers.registry import SolverInfo, get_solver, list_solvers, register
from rota.solvers.results import read_result, write
from rota.solvers.stopping import Stop, Stopping

__all__ = [
    "Evaluation", "FormatError", "Problem", "Result", "Route", "RoutingInstance",
    "RoutingSolution", "Sense", "SolverInfo", "Status", "Stop", "Stopping", "UnknownSolverError",
    "UnsupportedError", "UnsupportedInstanceError", "VehicleType", "Violation", "evaluate",
    "get_solver", "list_solvers", "problem_of", "read", "read_result", "read_set",
    "read_solution", "register", "solve", "solve_many", "write", "write_instance", "write_solution",
]  # fmt: skip
__version__ = "0.1.0"
