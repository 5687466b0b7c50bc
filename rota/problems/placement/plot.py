"""Placement plot: the GPU-to-GPU token traffic before (contiguous) and after (the solution).

Each panel is a ``G x G`` matrix: row ``g``, column ``h`` holds the tokens
moving from an expert on GPU ``g`` to one on GPU ``h`` in the next layer,
summed over all layer transitions. The diagonal is traffic that stays on a
GPU; everything else crosses a link, and lines mark the node boundaries.
The colour scale is shared and logarithmic, so both panels compare directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rota.files import save_figure
from rota.problems.placement.model import (
    PlacementInstance,
    PlacementSolution,
    contiguous,
    evaluate,
)


def plot_traffic(
    instance: PlacementInstance,
    solution: PlacementSolution,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Draw the traffic matrices of contiguous placement and of ``solution``; write a PNG."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    before = evaluate(instance, contiguous(instance))
    after = evaluate(instance, solution)
    if after.traffic is None:
        raise ValueError(f"cannot plot: {after.violations[0]}")
    matrices = [before.traffic, after.traffic]
    positive = [m[m > 0] for m in matrices if (m > 0).any()]
    low = min((float(p.min()) for p in positive), default=1.0)
    high = max((float(p.max()) for p in positive), default=1.0)
    norm = LogNorm(vmin=low, vmax=max(high, low * 1.0001))
    # A bare Figure, not pyplot: the caller's backend (a notebook's inline one) and open
    # figures stay as they were.
    fig = Figure(figsize=(12, 5.6), dpi=120)
    axes = fig.subplots(1, 2)
    labels = ("contiguous (Megatron-LM default)", "this placement")
    for ax, matrix, report, label in zip(axes, matrices, (before, after), labels, strict=True):
        image = ax.imshow(np.where(matrix > 0, matrix, np.nan), cmap="viridis", norm=norm)
        for boundary in range(instance.gpus_per_node, instance.gpus, instance.gpus_per_node):
            ax.axhline(boundary - 0.5, color="white", lw=1)
            ax.axvline(boundary - 0.5, color="white", lw=1)
        ax.set_title(
            f"{label}\ncross-GPU {report.cross_gpu:,.0f}, cross-node {report.cross_node:,.0f}, "
            f"max imbalance {report.max_imbalance:.3f}",
            fontsize=9,
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("to GPU (layer l + 1)")
        ax.set_ylabel("from GPU (layer l)")
    fig.colorbar(image, ax=axes, shrink=0.8, label="tokens, summed over layers")
    fig.suptitle(title or f"{instance.name}: {instance.describe()}", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path)
