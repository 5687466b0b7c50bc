#!/usr/bin/env bash
# Routing features: pyvrp, ortools and greedy on one set per feature family (see
# make_sets.py): published instances among PyVRP's test files, Solomon with release
# times, X with simultaneous pickup and delivery and with backhauls, and generated
# multi-trip, prize-collecting and pickup-and-delivery sets. Solvers refuse what they do
# not model; gaps are to the .sol files where shipped, else to the best run here.
# Resumable. Usage: bash benchmarks/features/run.sh [BUDGETS] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared/instances}
python benchmarks/features/make_sets.py --shared "$SHARED"
PUBLISHED=tests/data/pyvrp
rota bench \
    "$PUBLISHED"/C201R0.25.vrp "$PUBLISHED"/PR01.vrp "$PUBLISHED"/PR11A.vrp \
    "$PUBLISHED"/lrc206.vrp "$PUBLISHED"/p06-2-50.vrp "$PUBLISHED"/50pr439.gtsp \
    "$PUBLISHED"/X-n101-50-k13.vrp "$PUBLISHED"/SmallVRPSPD.vrp "$PUBLISHED"/X115-HVRP.vrp \
    out/features/*.jsonl \
    --solvers pyvrp,ortools,greedy --time-limit "${1:-1,5}" --seeds 1 \
    --workers "${2:-1}" --out benchmarks/features
