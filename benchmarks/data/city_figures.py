"""Figures of a city built from OpenStreetMap: build time, memory, asymmetry, and a map.

Usage (from the repository root)::

    python benchmarks/data/city_figures.py                 # Helsinki, 1000 points, seed 0
    python benchmarks/data/city_figures.py --pbf city.osm.pbf --points 500 --name mycity

Writes ``<name>_city.md`` and ``<name>_city.csv`` (the figures), ``<name>_points.png``
(the sampled points over the drivable road network) into ``--out-dir``, and the
city file itself to ``--city`` (not committed: a few megabytes).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from rota.data import build_city, city_summary, helsinki_pbf
from rota.data.osm import read_osm, road_graph

HERE = Path(__file__).resolve().parent


def draw_map(pbf: Path, city, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    full = road_graph(read_osm(pbf))
    core = full.largest_component()
    fig, ax = plt.subplots(figsize=(8, 10), dpi=130)

    def segments(graph, mask=None):
        tail, head = graph.tail, graph.head
        if mask is not None:
            tail, head = tail[mask], head[mask]
        start = np.stack((graph.lon[tail], graph.lat[tail]), 1)
        end = np.stack((graph.lon[head], graph.lat[head]), 1)
        return np.stack((start, end), 1)

    oneway = ~(core.forward & core.backward)
    ax.add_collection(LineCollection(segments(full), colors="0.85", linewidths=0.6))
    ax.add_collection(LineCollection(segments(core, ~oneway), colors="0.45", linewidths=0.8))
    ax.add_collection(LineCollection(segments(core, oneway), colors="tab:blue", linewidths=0.8))
    ax.scatter(city.lon, city.lat, s=4, c="crimson", zorder=3)
    ax.plot([], [], c="0.45", label="two-way street")
    ax.plot([], [], c="tab:blue", label="one-way street")
    ax.plot([], [], c="0.85", label="drivable, outside the largest SCC")
    ax.scatter([], [], s=8, c="crimson", label=f"{city.points} sampled points")
    ax.set_aspect(1 / np.cos(np.radians(city.lat.mean())))
    ax.autoscale()
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pbf", type=Path, default=None)
    parser.add_argument("--name", default="helsinki")
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    parser.add_argument("--city", type=Path, default=Path("out/helsinki-1000.npz"))
    args = parser.parse_args(argv)

    pbf = args.pbf or helsinki_pbf()
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        city = build_city(pbf, args.points, args.seed)
        times.append(time.perf_counter() - started)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.city.parent.mkdir(parents=True, exist_ok=True)
    city.save(args.city)
    summary = city_summary(city)
    summary["build_seconds"] = round(statistics.median(times), 2)
    summary["build_seconds_runs"] = " ".join(f"{t:.2f}" for t in times)
    summary["peak_rss_mib"] = round(peak_mib)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    with open(args.out_dir / f"{args.name}_city.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["figure", "value"])
        writer.writerows(summary.items())
    command = "python benchmarks/data/city_figures.py " + " ".join(argv or sys.argv[1:])
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU"
    lines = [
        f"# {city.name}: {args.points} points on the drivable road network",
        "",
        f"Command: `{command.strip()}`  ",
        f"Date: {datetime.date.today().isoformat()}  ",
        f"Machine: {machine} (shared and noisy: times drift between runs)",
        "",
        "Distances are shortest-path lengths (m), durations fastest-path travel times (s),",
        "both rounded up from exact millimetres/milliseconds. Asymmetric share: unordered",
        "pairs with d(i,j) != d(j,i); relative asymmetry: mean |d(i,j) - d(j,i)| / d(i,j)",
        "over ordered pairs.",
        "",
        "| figure | value |",
        "| --- | --- |",
        *(f"| {key} | {value} |" for key, value in summary.items()),
        "",
        f"![sampled points]({args.name}_points.png)",
        "",
    ]
    (args.out_dir / f"{args.name}_city.md").write_text("\n".join(lines))
    draw_map(
        Path(pbf),
        city,
        args.out_dir / f"{args.name}_points.png",
        f"{city.metadata['source']}: {city.points} points (seed {args.seed}), "
        f"{summary['road_km']} km of road",
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
