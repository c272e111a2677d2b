#!/usr/bin/env bash
# landscape's CPU engine beside PyTorch on the same CPU and thread count, in one run so the
# ratios compare numbers taken under the same conditions. Needs the release binary
# (cargo build --release) and bench/.venv (see bench/README.md).
# Usage (repository root): OUT=bench/results/cpu-$(date +%F) bash bench/cpu_session.sh
set -euo pipefail
OUT=${OUT:-bench/results/cpu-$(date +%F)}
IMAGES=${IMAGES:-1000}
THREADS=${THREADS:-$(nproc)}
L=${LANDSCAPE:-target/release/landscape}
mkdir -p "$OUT"
stamp() { echo "[$(date +%T)] $*" | tee -a "$OUT/session.log"; }

stamp "landscape, CPU kernels (what landscape surface runs)"
"$L" --threads "$THREADS" bench --models resnet20,vgg9 --images "$IMAGES" --eval-batch 500 \
  --repeats 3 --json "$OUT/landscape_kernels.json" 2>&1 | tee "$OUT/landscape_kernels.txt"

stamp "landscape, burn's operations for the same folded graph (LANDSCAPE_CPU_KERNELS=off)"
LANDSCAPE_CPU_KERNELS=off "$L" --threads "$THREADS" bench --models resnet20,vgg9 --images "$IMAGES" \
  --eval-batch 500 --repeats 3 --json "$OUT/landscape_burn.json" 2>&1 | tee "$OUT/landscape_burn.txt"

stamp "PyTorch: the reference surface loop, a tuned loop, eval and a training step"
bench/.venv/bin/python bench/pytorch_cpu.py --threads "$THREADS" --images "$IMAGES" --points 2 \
  --repeats 3 --configs resnet20:1:all,vgg9:1:all --json "$OUT/pytorch_cpu.json" 2>&1 | tee "$OUT/pytorch_cpu.txt"
stamp "done"
