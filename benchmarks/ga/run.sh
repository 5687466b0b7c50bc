#!/usr/bin/env bash
# ga against pyvrp on one core: quality at 1 and 5 s on the shared CVRPLIB X instances
# with n <= 300 and the 12 Solomon instances (rota bench, resumable: quality/runs.csv),
# then throughput on generated CVRP100 on the same core (throughput.py: ga in one call against
# PyVRP one instance at a time; --workers N compares against N PyVRP processes on N cores).
# Figures: summary.md.
# Usage: bash benchmarks/ga/run.sh [BATCH]   (BATCH: generated instances, default 1024)
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared/instances}
export OMP_NUM_THREADS=1
X=("$SHARED"/cvrp/X-n101-k25.vrp "$SHARED"/cvrp/X-n153-k22.vrp
   "$SHARED"/cvrp/X-n200-k36.vrp "$SHARED"/cvrp/X-n256-k16.vrp)
taskset -c 1 rota bench "${X[@]}" "$SHARED/vrptw" --solvers ga,pyvrp --time-limit 1,5 \
    --seeds 3 --workers 1 --out benchmarks/ga/quality
SET=${TMPDIR:-/tmp}/rota-ga-cvrp100.jsonl
rota generate --problem cvrp --nodes 100 --count "${1:-1024}" --seed 0 --out "$SET"
taskset -c 1 python benchmarks/ga/throughput.py "$SET" --out benchmarks/ga/throughput.md \
    --generations 5 --workers 1
