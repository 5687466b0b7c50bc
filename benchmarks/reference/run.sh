#!/usr/bin/env bash
# The reference solvers against PyVRP at 1 and 5 s, one seed, one run at a time:
#   hgs (HGS-CVRP) on the shared CVRPLIB instances (X, E, P, A: the heuristics set);
#   lkh (LKH-3) and hgs on the shared TSPLIB ATSP instances (milp and cpsat rows for
#   these are in benchmarks/exact/).
# Both reference solvers count their time limit in CPU seconds, as their engines do;
# the table's time column is wall-clock. Resumable: rerunning skips finished runs.
# Usage: bash benchmarks/reference/run.sh [BUDGETS] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared/instances}
BUDGETS=${1:-1,5}
WORKERS=${2:-1}
OUT=benchmarks/reference
export OMP_NUM_THREADS=1
rota bench "$SHARED/cvrp" --solvers hgs,pyvrp --time-limit "$BUDGETS" --seeds 1 \
    --workers "$WORKERS" --out "$OUT"
rota bench "$SHARED/atsp" --solvers lkh,hgs,pyvrp --time-limit "$BUDGETS" --seeds 1 \
    --workers "$WORKERS" --out "$OUT"
