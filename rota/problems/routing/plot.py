"""Route plots: a map of the routes and, for timed instances, their schedule.

Instances without coordinates (ATSP, road matrices) are drawn on a layout from
classical multidimensional scaling of the symmetrised distance matrix, so
every instance can be plotted; the title says when that is the case. Paths
and times come from :func:`~rota.problems.routing.evaluation.schedules`, the
evaluator's own walk of each route, so the picture shows what was evaluated:
end depots, reloads, waits and late arrivals included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rota.files import save_figure
from rota.problems.routing.evaluation import RouteReport, schedules
from rota.problems.routing.model import RoutingInstance, RoutingSolution


def layout(instance: RoutingInstance) -> tuple[np.ndarray, bool]:
    """2-D positions of the locations, and whether they are the real coordinates."""
    if instance.coords is not None:
        return np.asarray(instance.coords), True
    symmetric = (instance.distance + instance.distance.T) / 2
    n = symmetric.shape[0]
    centering = np.eye(n) - np.full((n, n), 1.0 / n)
    gram = -0.5 * centering @ (symmetric**2) @ centering
    values, vectors = np.linalg.eigh(gram)
    top = np.argsort(values)[::-1][:2]
    return vectors[:, top] * np.sqrt(np.maximum(values[top], 0.0)), False


def plot_routes(
    instance: RoutingInstance,
    solution: RoutingSolution,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Draw each route in its own colour with the depots as squares; write a PNG."""
    import matplotlib
    from matplotlib.figure import Figure

    positions, real = layout(instance)
    routes = [
        r for r in solution.nonempty_routes if 0 <= r.vehicle_type < len(instance.vehicle_types)
    ]
    reports = schedules(instance, routes)
    # A bare Figure, not pyplot: the caller's backend (a notebook's inline one) and open
    # figures stay as they were.
    if instance.is_timed:
        fig = Figure(figsize=(15, 7.5), dpi=120)
        ax, timeline = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.1]})
    else:
        fig = Figure(figsize=(8, 8), dpi=120)
        ax = fig.subplots()
    clients = instance.clients
    ax.scatter(positions[clients, 0], positions[clients, 1], s=12, c="0.35", zorder=3)
    depots = list(instance.depots)
    ax.scatter(
        positions[depots, 0], positions[depots, 1], s=90, marker="s", c="crimson", zorder=4,
        label="depot",
    )  # fmt: skip
    colours = matplotlib.colormaps["tab20"](np.linspace(0, 1, max(len(routes), 1)))
    arrows = not instance.is_symmetric
    for colour, report in zip(colours, reports, strict=False):
        xy = positions[list(report.path)]
        if arrows:
            for a, b in zip(xy[:-1], xy[1:], strict=True):
                ax.annotate(
                    "", xy=b, xytext=a,
                    arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.1},
                )  # fmt: skip
        else:
            ax.plot(xy[:, 0], xy[:, 1], "-", color=colour, lw=1.3)
    if instance.is_timed:
        _plot_timeline(timeline, instance, reports, colours)
    heading = title or f"{instance.name}: {len(routes)} routes"
    if not real:
        heading += "\n(layout: MDS of the distance matrix; no coordinates in the instance)"
    ax.set_title(heading)
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper right")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path)


def _plot_timeline(
    ax: Any, instance: RoutingInstance, reports: list[RouteReport], colours: Any
) -> None:
    """One row per route: travel as a thin line, waits hatched, services as bars, and a
    red cross where a service starts after its window closes."""
    service = instance.service_time
    for row, (colour, report) in enumerate(zip(colours, reports, strict=False)):
        visits = report.visits
        ax.hlines(row, visits[0].start, visits[-1].start, color=colour, lw=1.0)
        for visit in visits:
            if visit.wait > 0:
                ax.barh(row, visit.wait, left=visit.arrival, height=0.5, color="none",
                        edgecolor=colour, hatch="///", lw=0.5)  # fmt: skip
            if service[visit.location] > 0:
                ax.barh(row, service[visit.location], left=visit.start, height=0.5, color=colour)
            if visit.late > 0:
                ax.plot(visit.start, row, "x", color="crimson", ms=8, mew=2)
    ax.set_yticks(range(len(reports)), [f"route {r}" for r in range(len(reports))])
    ax.invert_yaxis()
    ax.set_xlabel("time")
    ax.set_title("schedule: service (bars), waiting (hatched), late (x)")
