#!/usr/bin/env bash
# Quality against time (issue 10): pyvrp, hgs, ga, ortools and the EARLI-style hybrid at
# 0.5, 1, 2, 5 and 10 s per instance, in one resumable rota bench, on generated uniform
# CVRP of 100, 200 and 500 clients, on ACVRP100 from the Helsinki map's held-out 'test'
# area, and on the CVRPLIB X instances of ../shared. hybrid runs with greedy seeds
# everywhere, and with the shipped models' decodes as well where a model covers the size
# (CVRP 100 and 200, ACVRP100, X with up to 200 clients). No BKS exists for the generated
# instances: their gaps are to the best objective of any run in the bench; the X instances'
# are to their BKS. The generated sets run one seed an instance, the ten X instances three.
# Usage: bash benchmarks/sweep/run.sh [COUNT] [WORKERS]   (COUNT instances per set, default 4)
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT=${1:-4}
WORKERS=${2:-1}
BUDGETS=0.5,1,2,5,10
CITY=out/helsinki-1000.npz
SETS=out/sweep
OUT=benchmarks/sweep
SHARED=${SHARED:-../shared/instances}
X_SEEDS=3
mkdir -p "$SETS"
[ -f "$CITY" ] || rota data city --points 1000 --seed 0 --out "$CITY"
for n in 100 200 500; do
    [ -f "$SETS/cvrp$n.jsonl" ] || rota generate --problem cvrp --nodes $n --count "$COUNT" \
        --seed 30000 --out "$SETS/cvrp$n.jsonl"
done
[ -f "$SETS/acvrp100.jsonl" ] || rota generate --problem acvrp --city "$CITY" --area test \
    --nodes 100 --count "$COUNT" --seed 30000 --out "$SETS/acvrp100.jsonl"
all=("$SETS"/cvrp100.jsonl "$SETS"/cvrp200.jsonl "$SETS"/cvrp500.jsonl "$SETS"/acvrp100.jsonl)
modelled=("$SETS"/cvrp100.jsonl "$SETS"/cvrp200.jsonl "$SETS"/acvrp100.jsonl)
x=("$SHARED"/cvrp/X-*.vrp)
x_modelled=("$SHARED"/cvrp/X-n101-k25.vrp "$SHARED"/cvrp/X-n153-k22.vrp "$SHARED"/cvrp/X-n200-k36.vrp)
bench() {
    local seeds=$1
    shift
    rota bench "$@" --time-limit "$BUDGETS" --seeds "$seeds" --workers "$WORKERS" --out "$OUT"
}
bench 1 "${all[@]}" --solvers pyvrp,hgs,ga,ortools
bench 1 "${all[@]}" --solvers hybrid -o hybrid.seeds=greedy
bench 1 "${modelled[@]}" --solvers hybrid -o hybrid.seeds=neural,greedy
bench "$X_SEEDS" "${x[@]}" --solvers pyvrp,hgs,ga,ortools
bench "$X_SEEDS" "${x[@]}" --solvers hybrid -o hybrid.seeds=greedy
bench "$X_SEEDS" "${x_modelled[@]}" --solvers hybrid -o hybrid.seeds=neural,greedy
