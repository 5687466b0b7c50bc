#!/usr/bin/env bash
# Heuristic backends on the shared CVRPLIB X (+ E, P, A) and Solomon instances at
# fixed budgets; the table is benchmarks/heuristics/summary.md. Resumable: rerunning
# skips the runs already in runs.csv. Usage: bash benchmarks/heuristics/run.sh [BUDGETS] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared/instances}
rota bench "$SHARED/cvrp" "$SHARED/vrptw" \
    --solvers pyvrp,ortools,greedy --time-limit "${1:-1,5,30}" --seeds 1 \
    --workers "${2:-1}" --out benchmarks/heuristics
