"""``rota bench``: run solvers over instances, budgets and seeds; tabulate and plot gaps.

:func:`run_bench` runs the grid in worker processes and logs each run to
``out/runs.csv`` as it finishes; :func:`write_report` rebuilds ``summary.md``
and the plots from that file at any time.
"""

from rota.bench.report import Reference, Run, pick_reference, read_runs, write_report
from rota.bench.runner import BenchSummary, InstanceRef, expand_instances, run_bench

__all__ = [
    "BenchSummary", "InstanceRef", "Reference", "Run", "expand_instances", "pick_reference",
    "read_runs", "run_bench", "write_report",
]  # fmt: skip
