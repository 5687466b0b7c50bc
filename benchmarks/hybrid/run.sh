#!/usr/bin/env bash
# EARLI-style hybrid against PyVRP and ga on the CVRPLIB X instances of ../shared, at 1 and
# 5 s per instance, one run at a time:
#   hybrid seeds=greedy          greedy's plan as PyVRP's initial solution, every X instance;
#   hybrid seeds=neural,greedy   the shipped CVRP100 model's 8 best sampled decodes as well,
#                                on the X instances within its size range (50 to 200 clients).
# The seeds' time is charged to each run's limit. Resumable.
# Usage: bash benchmarks/hybrid/run.sh [BUDGETS] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared/instances}
BUDGETS=${1:-1,5}
WORKERS=${2:-1}
OUT=benchmarks/hybrid
X=("$SHARED"/cvrp/X-*.vrp)
rota bench "${X[@]}" --solvers pyvrp,ga --time-limit "$BUDGETS" --seeds 1 --workers "$WORKERS" \
    --out "$OUT"
rota bench "${X[@]}" --solvers hybrid -o hybrid.seeds=greedy --time-limit "$BUDGETS" --seeds 1 \
    --workers "$WORKERS" --out "$OUT"
SMALL=("$SHARED"/cvrp/X-n101-k25.vrp "$SHARED"/cvrp/X-n153-k22.vrp "$SHARED"/cvrp/X-n200-k36.vrp)
rota bench "${SMALL[@]}" --solvers hybrid -o hybrid.seeds=neural,greedy --time-limit "$BUDGETS" \
    --seeds 1 --workers "$WORKERS" --out "$OUT"
