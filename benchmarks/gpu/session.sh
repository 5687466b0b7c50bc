#!/usr/bin/env bash
# A lent GPU's work for issues 9 and 10, as one call of the device tool (README.md beside
# this file): `bash benchmarks/gpu/session.sh`, carrying gpu-carry/ (prepare.sh). Runs on
# the device machine, which sets $OUT; every phase is bounded and writes under $OUT as it
# goes, so a cut-off call still returns what was done:
#   1. batched neural decoding of the 128-instance test sets on the GPU (issue 9's timing),
#      then x64 and x128 on ATSP and ACVRP (measured; run again only when PHASES names it);
#   2. ga on 1,024 CVRP100 in one call on the GPU, with 8 and 32 children a generation,
#      then PyVRP in one process per core (issue 10's throughput);
#   3. the ATSP100 and ACVRP100 models trained on, from the shipped ones, on varied roads
#      (as on the CPU), side by side on the GPU until the call's budget is spent
#      (snapshots in $OUT/runs-PROBLEM.tar.gz).
set -uo pipefail
: "${OUT:?run this through the device tool, which sets OUT}"
BUDGET=${BUDGET:-560}   # seconds for the whole call, as its timeout_s allows
PROBLEMS=${PROBLEMS:-atsp acvrp}
# smaller sets and DEVICE=cpu rehearse the script on a machine without a GPU
TEST_COUNT=${TEST_COUNT:-128}
GA_COUNT=${GA_COUNT:-1024}
DEVICE=${DEVICE:-cuda}
# phase 1's figures were measured on 2026-11-30 (benchmarks/neural/throughput-gpu.md):
# PHASES="1 2 3" measures them again
PHASES=${PHASES:-2 3}
CARRY=gpu-carry
CITY=$CARRY/helsinki-1000.npz
RUNS=/tmp/runs
began=$SECONDS
log() { echo "[$((SECONDS - began)) s] $*" | tee -a "$OUT/log.txt"; }
left() { echo $((BUDGET - (SECONDS - began))); }

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$CARRY"/whl/*.whl || { log "wheels did not install"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
rota() { python3 -c 'from rota.cli.main import main; main()' "$@"; }
export -f rota  # for the scripts it calls
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    nproc
    python3 -c 'import torch; from importlib.metadata import version
for name in ("torch", "lightning", "rl4co", "tensordict", "torchrl", "pyvrp"): print(name, version(name))
print("cuda", torch.cuda.is_available())'
} >"$OUT/env.txt" 2>&1
log "installed: $(tr '\n' ' ' <"$OUT/env.txt")"

phase() { [[ " $PHASES " == *" $1 "* ]]; }

if phase 1; then
    log "phase 1: neural decoding"
    SETS=/tmp/neural
    bash benchmarks/neural/sets.sh $CITY $SETS $TEST_COUNT >>"$OUT/log.txt" 2>&1
    timeout 120 python3 benchmarks/neural/throughput.py --threads 4 --sets $SETS \
        --out "$OUT/neural-throughput.md" >>"$OUT/log.txt" 2>&1
    log "phase 1 ended with $?"
    # more transforms, on the two problems with accuracy targets: cheap on a GPU
    timeout 90 python3 benchmarks/neural/throughput.py --threads 4 --sets $SETS \
        --problems atsp acvrp --no-unaugmented --augments 64 128 \
        --out "$OUT/neural-throughput-x128.md" >>"$OUT/log.txt" 2>&1
    log "phase 1b ended with $?"
fi

if phase 2; then
    log "phase 2: ga throughput"
    rota generate --problem cvrp --nodes 100 --count $GA_COUNT --seed 0 \
        --out /tmp/cvrp-ga.jsonl >>"$OUT/log.txt" 2>&1
    # more children a generation: nearly free while the GPU is not full (throughput-gpu.md)
    timeout 240 python3 benchmarks/ga/throughput.py /tmp/cvrp-ga.jsonl --generations 5,10 \
        --offspring 8,32 --workers "$(nproc)" --device $DEVICE --out "$OUT/ga-throughput.md" \
        >>"$OUT/log.txt" 2>&1
    log "phase 2 ended with $?"
fi

# Training stops on its own clock; the rest of the budget is for its final evaluation
# (32 validation instances, three decodings, on the CPU) and the last snapshot.
train_seconds=$(($(left) - 75))
if phase 3 && [ "$train_seconds" -lt 30 ]; then
    log "phase 3 skipped: $train_seconds s left to train"
elif phase 3; then
    # the varied roads cost about half of a step built in the training process: each run
    # gets its share of the cores to build them in
    share=$(( $(nproc) / $(echo $PROBLEMS | wc -w) - 2 ))
    DATA_WORKERS=${DATA_WORKERS:-$(( share > 1 ? share : 0 ))}
    log "phase 3: training $PROBLEMS for $train_seconds s each, $DATA_WORKERS data workers each"
    mkdir -p $RUNS
    for problem in $PROBLEMS; do
        mkdir -p $RUNS/${problem}100
        cp $CARRY/runs/${problem}100/validation.json $RUNS/${problem}100/
        rota train --problem $problem --nodes 100 --city $CITY --max-time "${train_seconds}s" \
            --vary-roads --pbf $CARRY/Helsinki.osm.pbf \
            --init rota/models/checkpoints/${problem}100.pt --out $RUNS/${problem}100 \
            --batch-size 64 --lr 1e-4 --lr-final 1e-5 --device ${DEVICE/cuda/gpu} --threads 2 \
            --data-workers $DATA_WORKERS --export-minutes 1 \
            >$RUNS/${problem}100.log 2>&1 &
    done
    # one archive a problem: both together, checkpoints with their optimiser state, come
    # close to the 16 MiB the device tool returns of one file
    snapshot() {  # tar's status 1 is a file written while read: the next snapshot has it
        for problem in $PROBLEMS; do
            tar -czf /tmp/runs-$problem.tar.gz --warning=no-file-changed -C /tmp \
                runs/${problem}100 runs/${problem}100.log
            [ $? -le 1 ] && mv /tmp/runs-$problem.tar.gz "$OUT/"
        done
    }
    while [ -n "$(jobs -r)" ] && [ "$(left)" -gt 10 ]; do
        sleep 20
        snapshot
    done
    wait
    snapshot
    log "phase 3 ended: $(grep -h 'validation gap' $RUNS/*.log | tr '\n' ';')"
fi
