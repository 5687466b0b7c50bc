"""The two MILP backends, CBC and HiGHS, and the process control around them.

PuLP is imported on first use (:func:`load_pulp`): importing it loads
highspy, whose ``libhighs.so.1`` clashes with the one bundled in OR-Tools, so
merely listing solvers (or using cpsat's helpers from this package) must not
import it.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from rota import signals
from rota.solvers.milp.formulation import Formulation

#: Above this many columns two backend steps ignore the time limit: HiGHS's
#: presolve (50 s on a 300-city ATSP with a few dense subtour cuts, removing
#: nothing) and CBC's processing of a MIP start (13 s there). Larger models are
#: solved without them; the loop keeps its own incumbent either way.
_LARGE_MODEL_COLS = 20_000
#: A CBC run that used this share of its time limit may have been stopped by it
#: anywhere, preprocessing included, so its optimality or infeasibility verdict
#: is not taken as a proof.
_CBC_LIMIT_SHARE = 0.95

pulp: Any = None


def load_pulp() -> bool:
    """Import PuLP into the module global; False when it cannot be imported."""
    global pulp
    if pulp is None:
        try:
            import pulp as module
        except ImportError:
            return False
        pulp = module
    return True


@dataclass
class Outcome:
    status: str  # "optimal", "feasible", "infeasible", "none"
    has_values: bool
    bound: float | None  # model units
    solver_time: float
    detail: str


def cbc_path() -> str:
    return pulp.PULP_CBC_CMD.pulp_cbc_path


def printed_lower(text: str) -> float | None:
    """A number printed by CBC, lowered by half a unit of its last printed digit."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    return float(value) - 0.5 * 10.0 ** value.as_tuple().exponent


def _children_running(marker: str) -> list[int]:
    """Ids of this process's children whose command line contains ``marker`` (Linux)."""
    found = []
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != me:  # fields: state, ppid, ...
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if marker.encode() in fh.read():
                    found.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return found


class Watchdog:
    """Interrupts this solve's CBC process once it runs ``limit + grace`` seconds,
    or at once when rota is interrupted (:mod:`rota.signals`).

    CBC checks its ``-sec`` limit during branching but not while it processes
    the root of a large model; a SIGINT makes it stop there too and still write
    its best solution. Inside the simplex of the root LP it ignores SIGINT (a
    placement model's root LP ran 35 s past a 4 s limit), so a process still
    running ``kill_after`` seconds after the SIGINT is killed: the run then
    gives nothing, and the caller keeps its start. PuLP starts the process
    itself, so it is found among this process's children by the unique work
    folder on its command line. Where ``/proc`` does not exist the watchdog
    finds nothing and does nothing.
    """

    def __init__(
        self, marker: str, limit: float, grace: float = 0.3, kill_after: float = 1.0
    ) -> None:
        self.marker = marker
        self.fired = False
        self.limit = limit + grace
        self.kill_after = kill_after
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Watchdog:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def _watch(self) -> None:
        pids: list[int] = []
        while not pids:  # PuLP first writes the model, then starts CBC
            if self.done.wait(0.05):
                return
            pids = _children_running(self.marker)
        deadline = time.monotonic() + self.limit
        while not self.done.wait(0.05):
            if time.monotonic() >= deadline or signals.interrupted():
                break
        else:
            return
        self.fired = True
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)
        if self.done.wait(self.kill_after):
            return
        for pid in _children_running(self.marker):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


class CBCRunner:
    def __init__(self, threads: int | None, seed: int, workdir: str) -> None:
        self.threads = threads
        self.seed = seed
        self.workdir = workdir

    def run(self, form: Formulation, *, mip: bool, time_limit: float, warm: bool) -> Outcome:
        log = os.path.join(self.workdir, "cbc.log")
        solver = pulp.COIN_CMD(
            path=cbc_path(),
            mip=mip,
            msg=False,
            timeLimit=max(time_limit, 0.01),
            gapRel=0,
            warmStart=warm and mip and len(form.integer_vars) <= _LARGE_MODEL_COLS,
            threads=self.threads,
            logPath=log,
            options=[f"randomCbcSeed {self.seed}"],
        )
        solver.tmpDir = self.workdir
        with Watchdog(self.workdir, solver.timeLimit) as watchdog:
            try:
                form.problem.solve(solver)
            except pulp.PulpSolverError:
                # CBC stopped by a signal while it read the model, or killed in
                # its root LP, writes no solution; that run simply gives nothing,
                # anything else is a fault
                if not (watchdog.fired or signals.interrupted()):
                    raise
                return Outcome("none", False, None, 0.0, "interrupted without a solution")
        with open(log, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        problem = form.problem
        return cbc_verdict(
            text,
            mip=mip,
            time_limit=float(solver.timeLimit),
            interrupted=watchdog.fired,
            claims_infeasible=problem.status == pulp.LpStatusInfeasible,
            solution_optimal=problem.sol_status == pulp.LpSolutionOptimal,
            solution_feasible=problem.sol_status == pulp.LpSolutionIntegerFeasible,
            objective=pulp.value(problem.objective),
        )


def cbc_verdict(
    text: str,
    *,
    mip: bool,
    time_limit: float,
    interrupted: bool,
    claims_infeasible: bool,
    solution_optimal: bool,
    solution_feasible: bool,
    objective: float | None,
) -> Outcome:
    """What one CBC run proved, from its log and PuLP's reading of its solution file.

    CBC's verdicts are trusted only from a run that ended on its own: when its
    time limit strikes inside preprocessing, CBC 2.10 reports "Integer
    infeasible" for a feasible model ("Pre-processing says infeasible"), and
    PuLP reports "Optimal" for a run stopped on time.
    """
    wall = re.findall(r"\(Wallclock seconds\):\s*([0-9.eE+-]+)", text)
    solver_time = float(wall[-1]) if wall else 0.0
    result = re.search(r"Result - (.*)", text)
    result_line = result.group(1).strip() if result else ""
    cut_short = (
        interrupted
        or solver_time >= _CBC_LIMIT_SHARE * time_limit
        or "maximum time" in text
        or "ctrl-c" in text.lower()
        or "Stopped" in result_line
    )
    detail = result_line or ("cut short" if cut_short else "finished")
    if claims_infeasible:
        if cut_short:
            return Outcome("none", False, None, solver_time, f"unproven: {detail}")
        return Outcome("infeasible", False, None, solver_time, detail)
    if not mip:
        ok = solution_optimal and not cut_short
        return Outcome(
            "optimal" if ok else "none", ok, objective if ok else None, solver_time, "lp"
        )
    bound = None
    match = re.search(r"Lower bound:\s+(\S+)", text)
    if match and result_line.startswith(("Stopped on time", "User ctrl-c")):
        bound = printed_lower(match.group(1))
    optimal = solution_optimal and result_line.startswith("Optimal solution found")
    if optimal and not cut_short:
        return Outcome("optimal", True, objective, solver_time, result_line)
    if optimal or (solution_feasible and "No feasible solution" not in text):
        return Outcome("feasible", True, bound, solver_time, detail)
    return Outcome("none", False, bound, solver_time, detail)


def _warm_highs_class() -> type:
    import highspy

    class WarmHiGHS(pulp.HiGHS):
        """PuLP's HiGHS interface with a bulk model load and a MIP start.

        PuLP passes columns, integrality flags and rows to highspy one call at
        a time, and each ``changeColIntegrality`` call costs tens of
        microseconds: seconds for a 300-city ATSP, paid again on every solve
        of the lazy loop. Here the same model goes in as three arrays calls.
        """

        start: list[tuple[Any, float]] | None = None

        def buildSolverModel(self, lp: Any) -> None:  # noqa: N802 - PuLP's name
            inf = highspy.kHighsInf
            sense = -1.0 if lp.sense == pulp.LpMaximize else 1.0
            variables = lp.variables()
            num = len(variables)
            cost = np.empty(num)
            lower = np.empty(num)
            upper = np.empty(num)
            integer = []
            objective = lp.objective
            for i, var in enumerate(variables):
                var.index = i
                cost[i] = sense * objective.get(var, 0.0)
                lower[i] = -inf if var.lowBound is None else var.lowBound
                upper[i] = inf if var.upBound is None else var.upBound
                if self.mip and var.cat == pulp.LpInteger:
                    integer.append(i)
            no_entries = np.zeros(0, dtype=np.int32)
            starts = np.zeros(num, dtype=np.int32)
            lp.solverModel.addCols(num, cost, lower, upper, 0, starts, no_entries, np.zeros(0))
            if integer:
                kinds = np.full(len(integer), int(highspy.HighsVarType.kInteger), dtype=np.uint8)
                lp.solverModel.changeColsIntegrality(
                    len(integer), np.array(integer, dtype=np.int32), kinds
                )
            constraints = list(lp._constraints.values())
            row_lower = np.empty(len(constraints))
            row_upper = np.empty(len(constraints))
            row_start = np.empty(len(constraints), dtype=np.int32)
            index: list[int] = []
            value: list[float] = []
            for r, constraint in enumerate(constraints):
                constraint.index = r
                row_start[r] = len(index)
                for var, coefficient in constraint.items():
                    if coefficient != 0:
                        index.append(var.index)
                        value.append(coefficient)
                lb, ub = constraint.getLb(), constraint.getUb()
                row_lower[r] = -inf if lb is None else lb
                row_upper[r] = inf if ub is None else ub
            if constraints:
                lp.solverModel.addRows(
                    len(constraints),
                    row_lower,
                    row_upper,
                    len(index),
                    row_start,
                    np.array(index, dtype=np.int32),
                    np.array(value, dtype=np.float64),
                )

        def callSolver(self, lp: Any) -> None:  # noqa: N802 - PuLP's name
            h = lp.solverModel
            if self.timeLimit is not None:
                # HiGHS checks its time limit rarely during presolve and the root
                # node of a large model; the interrupt callbacks run far more often
                deadline = time.perf_counter() + float(self.timeLimit)

                def stop_at_deadline(event: Any) -> None:
                    if time.perf_counter() > deadline or signals.interrupted():
                        event.interrupt()

                h.cbMipInterrupt += stop_at_deadline
                h.cbSimplexInterrupt += stop_at_deadline
                h.cbIpmInterrupt += stop_at_deadline
            if self.start:
                index = np.array([var.index for var, _ in self.start], dtype=np.int32)
                value = np.array([val for _, val in self.start], dtype=np.float64)
                h.setSolution(len(index), index, value)
            h.run()

    return WarmHiGHS


class HiGHSRunner:
    def __init__(self, threads: int | None, seed: int) -> None:
        self.threads = threads
        self.seed = seed
        self.cls = _warm_highs_class()

    def run(
        self,
        form: Formulation,
        *,
        mip: bool,
        time_limit: float,
        warm: bool,
    ) -> Outcome:
        import highspy

        extra = {}
        if len(form.integer_vars) > _LARGE_MODEL_COLS:
            extra["presolve"] = "off"
        solver = self.cls(
            mip=mip,
            msg=False,
            timeLimit=max(time_limit, 0.01),
            gapRel=0.0,
            threads=self.threads,
            random_seed=self.seed,
            **extra,
        )
        if warm and mip:
            solver.start = [(v, float(v.varValue or 0.0)) for v in form.integer_vars]
        form.problem.solve(solver)
        h = form.problem.solverModel
        status = h.getModelStatus()
        info = h.getInfo()
        solver_time = float(h.getRunTime())
        ms = highspy.HighsModelStatus
        detail = h.modelStatusToString(status)
        if status == ms.kInfeasible:
            return Outcome("infeasible", False, None, solver_time, detail)
        if not mip:
            ok = status == ms.kOptimal
            bound = float(info.objective_function_value) if ok else None
            return Outcome("optimal" if ok else "none", ok, bound, solver_time, detail)
        dual = float(info.mip_dual_bound)
        bound = dual if math.isfinite(dual) else None
        if status == ms.kOptimal:
            return Outcome("optimal", True, bound, solver_time, detail)
        if info.primal_solution_status == 2:  # kSolutionStatusFeasible
            return Outcome("feasible", True, bound, solver_time, detail)
        return Outcome("none", False, bound, solver_time, detail)
