"""The Gantt chart of a schedule: one row per antenna, grouped by station."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from rota.files import save_figure
from rota.problems.contacts.model import ContactInstance, ContactSolution, busy, evaluate

#: Figure height per antenna row (inches), and the most the figure grows to.
_ROW_INCHES = 0.28
_MAX_HEIGHT = 60.0


def plot_schedule(
    instance: ContactInstance,
    solution: ContactSolution,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Draw every track on each antenna it uses; write a PNG.

    Tracks are coloured by mission, setup and teardown drawn paler around
    them, maintenance hatched grey. Time runs in hours from the earliest
    request window. Tracks naming an unknown request or resource are not
    drawn (``rota evaluate`` lists them).
    """
    import matplotlib
    from matplotlib.figure import Figure

    origin = min(r.window[0] for r in instance.requests)
    antennas = sorted(instance.antennas, key=lambda a: (a.station or "", a.name))
    row = {a.name: k for k, a in enumerate(antennas)}
    missions = {m: k for k, m in enumerate(instance.missions)}
    cmap = matplotlib.colormaps["tab20"]

    tracks: dict[str, list[tuple[tuple[float, float], tuple[float, float], str]]] = defaultdict(
        list
    )
    for track in solution.tracks:
        r = instance.request_index.get(track.request)
        if r is None:
            continue
        request = instance.requests[r]
        resource = request.resource_named(track.resource)
        if resource is None:
            continue
        b0, b1 = busy(request, track)
        for name in resource.antennas:
            tracks[name].append(((track.start, track.end), (b0, b1), request.mission))

    height = min(_MAX_HEIGHT, 1.8 + _ROW_INCHES * len(antennas))
    # A bare Figure, not pyplot: the caller's backend (a notebook's inline one) and open
    # figures stay as they were.
    fig = Figure(figsize=(14, height), dpi=100)
    ax = fig.subplots()
    for antenna in antennas:
        y = row[antenna.name]
        spans = [((m0 - origin) / 3600, (m1 - m0) / 3600) for m0, m1 in antenna.maintenance]
        if spans:
            ax.broken_barh(spans, (y - 0.4, 0.8), facecolors="0.85", edgecolor="0.5",
                           hatch="///", linewidth=0.3)  # fmt: skip
        for (t0, t1), (b0, b1), mission in tracks.get(antenna.name, []):
            colour = cmap(missions[mission] % 20)
            ax.broken_barh([((b0 - origin) / 3600, (b1 - b0) / 3600)], (y - 0.3, 0.6),
                           facecolors=colour, alpha=0.35, linewidth=0)  # fmt: skip
            ax.broken_barh([((t0 - origin) / 3600, (t1 - t0) / 3600)], (y - 0.4, 0.8),
                           facecolors=colour, edgecolor="black", linewidth=0.3)  # fmt: skip
    ax.set_yticks(range(len(antennas)))
    ax.set_yticklabels(
        [f"{a.station} {a.name}" if a.station else a.name for a in antennas], fontsize=7
    )
    ax.set_ylim(-0.7, len(antennas) - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel("hours from the earliest request window")
    ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    report = evaluate(instance, solution)
    summary = (
        f"{report.hours_scheduled:.1f} of {report.hours_requested:.1f} h scheduled, "
        f"{report.satisfied}/{report.requests} requests, U_max {report.u_max:.2f}, "
        f"U_rms {report.u_rms:.2f}"
    )
    ax.set_title(f"{title or instance.name}\n{summary}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["plot_schedule"]
