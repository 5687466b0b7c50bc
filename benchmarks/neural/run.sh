#!/usr/bin/env bash
# Neural routing against PyVRP (10 s), OR-Tools (1 s) and greedy on held-out test sets:
# ATSP, ACVRP and ACVRPTW with 100 nodes from the Helsinki map's 'test' area (never
# trained on), CVRP100 uniform (a seed no training batch draws). neural runs with the
# shipped models, greedy / multistart / multistart x8. Resumable.
# Usage: bash benchmarks/neural/run.sh [COUNT] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT=${1:-128}
WORKERS=${2:-1}
CITY=out/helsinki-1000.npz
SETS=out/neural
OUT=benchmarks/neural
mkdir -p out
[ -f "$CITY" ] || rota data city --points 1000 --seed 0 --out "$CITY"
bash benchmarks/neural/sets.sh "$CITY" "$SETS" "$COUNT"
sets=("$SETS"/atsp.jsonl "$SETS"/acvrp.jsonl "$SETS"/acvrptw.jsonl "$SETS"/cvrp.jsonl)
bench() { rota bench "${sets[@]}" --seeds 1 --workers "$WORKERS" --out "$OUT" "$@"; }
bench --solvers pyvrp --time-limit 10
bench --solvers ortools,greedy --time-limit 1
for decoding in "greedy -o neural.augment=1" "multistart -o neural.augment=1" "multistart"; do
    set -- $decoding
    bench --solvers neural --time-limit 1 -o neural.decoding="$1" "${@:2}"
done
