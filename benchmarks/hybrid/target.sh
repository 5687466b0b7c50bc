#!/usr/bin/env bash
# The hybrid's 1 s target (issue 10) on instances of 400 clients or more: hybrid (greedy
# seeds, refined by PyVRP) at 1 s against PyVRP at 1 s, two seeds each, and HGS-CVRP at
# 5 s, on the CVRPLIB X instances of ../shared with n >= 400 and on generated uniform
# CVRP500 (a seed the sweep does not use). One run at a time; resumable.
# Usage: bash benchmarks/hybrid/target.sh [COUNT]   (COUNT generated instances, default 32)
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared/instances}
COUNT=${1:-32}
OUT=benchmarks/hybrid/large
SET=out/hybrid/cvrp500.jsonl
mkdir -p out/hybrid
[ -f "$SET" ] || rota generate --problem cvrp --nodes 500 --count "$COUNT" --seed 31000 \
    --out "$SET"
LARGE=("$SHARED"/cvrp/X-n401-k29.vrp "$SHARED"/cvrp/X-n502-k39.vrp "$SHARED"/cvrp/X-n685-k75.vrp
       "$SHARED"/cvrp/X-n801-k40.vrp "$SHARED"/cvrp/X-n1001-k43.vrp)
rota bench "${LARGE[@]}" "$SET" --solvers pyvrp,hybrid -o hybrid.seeds=greedy --time-limit 1 \
    --seeds 2 --workers 1 --out "$OUT"
rota bench "${LARGE[@]}" "$SET" --solvers hgs --time-limit 5 --seeds 1 --workers 1 --out "$OUT"
