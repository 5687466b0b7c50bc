"""Exact routing by mixed-integer programming, through PuLP with CBC or HiGHS.

Formulations
------------
*One vehicle type* (TSP, ATSP, CVRP, ACVRP, VRPTW, with or without a fixed
cost per route): a two-index model with one binary per allowed arc (see
:func:`allowed_arcs`), in- and out-degree one at every client and between
``ceil(total demand / Q)`` and ``count`` routes at the depot.

*Several vehicle types*: a type-indexed model, one copy of the arc variables
per vehicle type, with flow conservation per type (a route keeps its type),
an integer route count per type bounded by ``count``, "load of type k <=
Q_k times its routes", and MTZ-style loads ``u_j >= u_i + d_j`` (lifted as in
Desrochers and Laporte) capped at the capacity of the type leaving each
client, which bounds every route's load by its own vehicle's capacity.
Offered only for small models (:data:`MAX_VEHICLE_ARCS`).

Subtours and overloaded routes are excluded by rounded capacity inequalities
``x(delta-(S)) >= r(S)`` over client sets ``S``, where ``r(S)`` is the fewest
vehicles of the fleet whose capacities add up to ``d(S)`` (``ceil(d(S) / Q)``
with one type; ``1`` without capacities, the subtour elimination constraint).
They are added lazily: first in rounds on the LP relaxation (subtour cuts
separated exactly by maximum flow; capacity cuts on connected components and
on sets grown greedily from each client), then on each integer solution,
re-solving the MIP until its optimum violates no cut, with LP rounds again
after every MIP that did. For TSP/ATSP a compact single-commodity flow
formulation is available too (``formulation="flow"``);
``benchmarks/exact/summary.md`` measured the lazy loop 5 to 60 times faster
on br17, ftv33, ftv47 and ry48p, so it is the default. Time windows use
big-M start-time constraints.

Proofs
------
Every model solved in the loop is a relaxation of the routing problem, so
its dual bound is a valid lower bound, and an infeasibility proof of any of
them proves the instance infeasible. A result is ``OPTIMAL`` only when the
backend proved a MIP optimal *and* that solution violates no cut, or when a
feasible solution meets the proven bound. A time-out inside the loop returns
the best feasible solution seen (warm start, a patched tour or a cut-free MIP
incumbent) as ``FEASIBLE`` with the best bound, else ``NO_SOLUTION``.
PuLP maps CBC's "stopped on time" to ``Optimal``; this adapter reads CBC's
log and the solution status instead and never relies on the problem status.

Costs are scaled to integers with :func:`~rota.solvers.scaling.integer_scale`
when that is exact (the bound is then rounded up to the next integer, which
is valid because every solution has an integral scaled cost). Otherwise the
model uses the instance's float costs directly, so no rounding ever enters a
bound; the bound is lowered by the solver's tolerance and the objective is
the evaluator's.

Time limits
-----------
The loop tracks the time left across its solves and grants each one that
time minus the measured cost of writing and loading the model. Two backend
steps do not check their limit, so they are guarded: HiGHS runs with
interrupt callbacks at the deadline and, on large models, without presolve;
CBC gets a SIGINT from a watchdog thread once it runs past its limit (it
then still writes its best solution) and, on large models, no MIP start.
"""

from __future__ import annotations

import tempfile
from typing import Any

from rota.errors import UnsupportedInstanceError
from rota.problems.routing import RoutingInstance, RoutingSolution
from rota.solvers.base import ALL_CRITERIA, Result, reconfigured
from rota.solvers.milp import backends
from rota.solvers.milp.backends import cbc_path, load_pulp
from rota.solvers.milp.loop import Loop
from rota.solvers.routing import RoutingCapabilities, check_capabilities, size_family
from rota.solvers.stopping import Stop

BACKENDS = ("cbc", "highs")
FORMULATIONS = ("lazy", "flow")
#: Largest number of clients offered per problem family. The two-index model
#: has ``n^2`` binaries; beyond these sizes the lazy loop rarely closes the gap
#: within minutes on two cores, and a heuristic solver is the right tool.
MAX_CLIENTS = {"tsp": 400, "cvrp": 100, "vrptw": 60, "hf": 30}
#: The compact flow formulation doubles the model and its root LP can run far
#: past the time limit (CBC does not check it there); it is offered up to here.
MAX_FLOW_CLIENTS = 60
#: Type-indexed (heterogeneous fleet) models: vehicle types times arcs, at most.
MAX_VEHICLE_ARCS = 40_000
#: Largest objective (and load sum) the backends handle exactly: CBC and HiGHS
#: work in doubles with tolerances near 1e-9 relative, so larger integer costs
#: lose units, and a wrong "infeasible" or "optimal" can follow.
MAX_OBJECTIVE = 1e12
#: Largest planning horizon for the big-M time-window constraints: an integrality
#: tolerance of 1e-7 on a binary relaxes such a constraint by up to horizon * 1e-7.
MAX_HORIZON = 1e7

_OPTION_NAMES = ("backend", "greedy_start", "threads", "formulation")


class MILPSolver:
    """Exact MILP routing solver (PuLP with CBC or HiGHS); see the module docstring.

    Parameters
    ----------
    backend
        ``"cbc"`` (the CBC binary bundled with PuLP) or ``"highs"`` (highspy,
        through PuLP's ``HiGHS`` class).
    greedy_start
        Without a warm start, start the MIP from a heuristic solution (nearest
        neighbour and Or-opt for tours, :mod:`rota.solvers.greedy` for routes).
    threads
        Threads the backend may use; ``None`` leaves the backend's default.
    formulation
        ``"lazy"`` (cuts added in a loop) or ``"flow"`` (compact single-commodity
        flow, TSP/ATSP only).
    """

    name = "milp"
    problem = "routing"
    description = "exact MILP (PuLP: CBC or HiGHS), lazy subtour and capacity cuts"
    capabilities = RoutingCapabilities(
        warm_start=True,
        stopping=ALL_CRITERIA,
        asymmetric=True,
        time_windows=True,
        heterogeneous=True,
        multi_depot=False,
        uncapacitated=True,
        max_clients=MAX_CLIENTS,
    )

    def __init__(
        self,
        backend: str = "cbc",
        greedy_start: bool = True,
        threads: int | None = None,
        formulation: str = "lazy",
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"milp option backend={backend!r} is not one of {', '.join(BACKENDS)}")
        if not isinstance(greedy_start, bool):
            raise ValueError(f"milp option greedy_start={greedy_start!r} must be True or False")
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
        ):
            raise ValueError(f"milp option threads={threads!r} must be a positive integer or None")
        if formulation not in FORMULATIONS:
            raise ValueError(
                f"milp option formulation={formulation!r} is not one of {', '.join(FORMULATIONS)}"
            )
        self.backend = backend
        self.import_error: str | None = None
        self.greedy_start = greedy_start
        self.threads = threads
        self.formulation = formulation

    def configure(self, **options: Any) -> MILPSolver:
        """A copy of this solver with ``options`` changed.

        Raises
        ------
        ValueError
            An unknown option name or an invalid value; the message names it.
        """
        return reconfigured(self, _OPTION_NAMES, options)

    def available(self) -> bool:
        """True when PuLP and the chosen backend can run; never raises.

        The reason it cannot is kept in ``import_error``: highspy fails to load
        in a process that already loaded OR-Tools' own ``libhighs.so.1`` when
        the two HiGHS versions differ.
        """
        self.import_error = None
        try:
            if not load_pulp():
                self.import_error = "PuLP does not import"
            elif self.backend == "cbc":
                if not backends.pulp.COIN_CMD(path=cbc_path(), msg=False).available():
                    self.import_error = f"the CBC binary bundled with PuLP cannot run: {cbc_path()}"
            elif not backends.pulp.HiGHS(msg=False).available():
                self.import_error = "highspy does not import (PuLP's HiGHS is unavailable)"
        except Exception as exc:
            self.import_error = f"{type(exc).__name__}: {exc}"
        return self.import_error is None

    def supports(self, instance: RoutingInstance) -> str | None:
        """``None`` if the formulations cover ``instance``, else why not."""
        reason = check_capabilities(self.name, self.capabilities, instance) or _range_refusal(
            instance
        )
        if reason is not None:
            return reason
        family = size_family(instance)
        if family == "hf":
            size = (
                len(instance.vehicle_types) * instance.num_locations * (instance.num_locations - 1)
            )
            if size > MAX_VEHICLE_ARCS:
                return (
                    f"milp's type-indexed model of {instance.name} would have {size} arc "
                    f"variables (limit {MAX_VEHICLE_ARCS}); use a heuristic solver such as pyvrp"
                )
        if self.formulation == "flow" and instance.num_clients > MAX_FLOW_CLIENTS:
            return (
                f"milp formulation 'flow' handles at most {MAX_FLOW_CLIENTS} clients, "
                f"{instance.name} has {instance.num_clients}; use the default 'lazy'"
            )
        if self.formulation == "flow" and family != "tsp":
            return (
                f"milp formulation 'flow' is for TSP/ATSP only; {instance.name} is {instance.kind}"
            )
        return None

    def solve(
        self,
        instance: RoutingInstance,
        stop: Stop,
        seed: int,
        warm_start: tuple[RoutingSolution, ...] = (),
    ) -> Result:
        """Solve ``instance`` exactly within ``stop``; see the module docstring for the status."""
        reason = self.supports(instance)
        if reason is not None:
            raise UnsupportedInstanceError(reason)
        if not load_pulp():
            raise UnsupportedInstanceError("solver 'milp' is not installed: PuLP does not import")
        with tempfile.TemporaryDirectory(prefix="rota-milp-") as workdir:
            return Loop(self, instance, stop, seed, workdir, warm_start).run()


def _range_refusal(instance: RoutingInstance) -> str | None:
    """Why the numbers of ``instance`` are beyond what the MILP backends compute exactly."""
    n = instance.num_locations
    types = instance.vehicle_types
    objective = n * max(
        vt.fixed_cost + vt.unit_distance_cost * instance.distance.max() for vt in types
    )
    caps = [vt.capacity for vt in types if vt.capacity is not None]
    checks = [
        ("costs", objective, MAX_OBJECTIVE),
        ("loads", instance.demand.sum() + max(caps, default=0), MAX_OBJECTIVE),
    ]
    if instance.time_windows is not None:
        horizon = (
            instance.time_windows.max() + instance.service_time.max() + instance.travel_time.max()
        )
        checks.append(("times", horizon, MAX_HORIZON))
    for what, value, limit in checks:
        if not value <= limit:
            return (
                f"milp: the {what} of {instance.name} reach {value:.3g}, beyond {limit:.0e} where "
                "CBC and HiGHS stop being exact; rescale the data or use cpsat or pyvrp"
            )
    return None
