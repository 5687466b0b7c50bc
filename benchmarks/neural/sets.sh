#!/usr/bin/env bash
# The neural bench's held-out test sets (100 nodes, seed 20000): ATSP, ACVRP and ACVRPTW
# from the city's 'test' area, uniform CVRP. Writes the missing ones; the batched decoding
# on a lent GPU (benchmarks/gpu/session.sh) decodes the same instances as runs.csv holds.
# Usage: bash benchmarks/neural/sets.sh CITY SETS COUNT
set -euo pipefail
CITY=$1
SETS=$2
COUNT=$3
mkdir -p "$SETS"
for problem in atsp acvrp acvrptw; do
    [ -f "$SETS/$problem.jsonl" ] || rota generate --problem $problem --city "$CITY" \
        --area test --nodes 100 --count "$COUNT" --seed 20000 --out "$SETS/$problem.jsonl"
done
[ -f "$SETS/cvrp.jsonl" ] || rota generate --problem cvrp --nodes 100 --count "$COUNT" \
    --seed 20000 --out "$SETS/cvrp.jsonl"
