"""rota: vehicle routing and scheduling with classical, exact, genetic and neural solvers.

The public API in one place::

    import rota
    inst = rota.read("X-n101-k25.vrp")
    res = rota.solve(inst, solver="pyvrp", time_limit=5, seed=1)
    report = rota.evaluate(inst, res.solution)
    rota.write(res, "sol.json")
"""

from rota.problems.io import FormatError, read, read_solution, write_solution
from rota.problems.routing import (
    Evaluation,
    Route,
    RoutingInstance,
    RoutingSolution,
    VehicleType,
    Violation,
    evaluate,
)
from rota.solvers.base import (
    Result,
    SolverInfo,
    Status,
    Stop,
    UnknownSolverError,
    UnsupportedInstanceError,
    get_solver,
    list_solvers,
    solve,
)

__all__ = [
    "Evaluation", "FormatError", "Result", "Route", "RoutingInstance", "RoutingSolution",
    "SolverInfo", "Status", "Stop", "UnknownSolverError", "UnsupportedInstanceError",
    "VehicleType", "Violation", "evaluate", "get_solver", "list_solvers", "read",
    "read_solution", "solve", "write_solution",
]  # fmt: skip
__version__ = "0.1.0"
