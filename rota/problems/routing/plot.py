"""Route plots.

Instances without coordinates (ATSP, road matrices) are drawn on a layout from
classical multidimensional scaling of the symmetrised distance matrix, so
every instance can be plotted; the title says when that is the case.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rota.files import save_figure
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

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions, real = layout(instance)
    fig, ax = plt.subplots(figsize=(8, 8), dpi=120)
    clients = instance.clients
    ax.scatter(positions[clients, 0], positions[clients, 1], s=12, c="0.35", zorder=3)
    depots = list(instance.depots)
    ax.scatter(
        positions[depots, 0], positions[depots, 1], s=90, marker="s", c="crimson", zorder=4,
        label="depot",
    )  # fmt: skip
    routes = solution.nonempty_routes
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(routes), 1)))
    arrows = not instance.is_symmetric
    for colour, route in zip(colours, routes, strict=False):
        depot = instance.vehicle_types[route.vehicle_type].depot
        path_nodes = [depot, *route.visits, depot]
        xy = positions[path_nodes]
        if arrows:
            for a, b in zip(xy[:-1], xy[1:], strict=True):
                ax.annotate(
                    "", xy=b, xytext=a,
                    arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.1},
                )  # fmt: skip
        else:
            ax.plot(xy[:, 0], xy[:, 1], "-", color=colour, lw=1.3)
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
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)
