#!/usr/bin/env bash
# landscape's CPU engine beside PyTorch on the same CPU and thread counts, in one run so the
# ratios compare numbers taken under the same conditions: training steps (ResNet-20, ResNet-56,
# VGG-9 at batch 128 and 1,024, on 1 and on all threads), burn's own training for reference,
# and inference and grid points (all threads). Writes the raw logs and JSON, then
# summary.csv (bench/cpu_summary.py). Needs the release binary (cargo build --release) and
# bench/.venv (see bench/README.md).
# Usage (repository root): OUT=bench/results/cpu-$(date +%F) bash bench/cpu_session.sh
#   SECTIONS="train burn inference" selects parts; THREADS="1 2" the thread counts; ROUNDS=2
#   interleaves that many rounds of the training section (landscape, PyTorch, landscape, ...):
#   on a shared host each side's best round is the summary's (cpu_summary.py).
set -euo pipefail
OUT=${OUT:-bench/results/cpu-$(date +%F)}
IMAGES=${IMAGES:-1000}
ALL=$(nproc)
THREADS=${THREADS:-"1 $ALL"}
ROUNDS=${ROUNDS:-2}
SECTIONS=${SECTIONS:-"train burn inference"}
MODELS=${MODELS:-resnet20,resnet56,vgg9}
L=${LANDSCAPE:-target/release/landscape}
PY=${PYTHON:-bench/.venv/bin/python}
mkdir -p "$OUT"
stamp() { echo "[$(date +%T)] $*" | tee -a "$OUT/session.log"; }
has() { [[ " $SECTIONS " == *" $1 "* ]]; }
torch_configs() { local out=""; for m in ${MODELS//,/ }; do out+="${out:+,}$m:1:$1"; done; echo "$out"; }

if has train; then
  for r in $(seq 1 "$ROUNDS"); do
    for t in $THREADS; do
      stamp "round $r: landscape training steps, CPU kernels, $t thread(s)"
      "$L" --threads "$t" bench --models "$MODELS" --images 1024 --eval-batch 0 --train-batch 128,1024 \
        --repeats 3 --json "$OUT/landscape_train_t${t}_r$r.json" 2>&1 | tee "$OUT/landscape_train_t${t}_r$r.txt"
      stamp "round $r: PyTorch training steps, $t thread(s)"
      "$PY" bench/pytorch_cpu.py --threads "$t" --repeats 3 --configs "$(torch_configs train)" \
        --json "$OUT/pytorch_train_t${t}_r$r.json" 2>&1 | tee "$OUT/pytorch_train_t${t}_r$r.txt"
    done
  done
fi

if has burn; then
  stamp "landscape training steps on burn's autodiff (LANDSCAPE_CPU_KERNELS=off), $ALL threads"
  LANDSCAPE_CPU_KERNELS=off "$L" --threads "$ALL" bench --models "$MODELS" --images 128 --eval-batch 0 \
    --train-batch 128 --repeats 1 --json "$OUT/landscape_burn_t$ALL.json" 2>&1 | tee "$OUT/landscape_burn_t$ALL.txt"
fi

if has inference; then
  stamp "landscape inference and grid points, CPU kernels, $ALL threads"
  "$L" --threads "$ALL" bench --models "$MODELS" --images "$IMAGES" --eval-batch 128,500 --train-batch 0 \
    --repeats 3 --json "$OUT/landscape_inference_t$ALL.json" 2>&1 | tee "$OUT/landscape_inference_t$ALL.txt"
  stamp "PyTorch: the reference surface loop, a tuned loop, eval, $ALL threads"
  "$PY" bench/pytorch_cpu.py --threads "$ALL" --images "$IMAGES" --points 2 --repeats 3 \
    --configs "$(torch_configs eval+surface)" --json "$OUT/pytorch_inference_t$ALL.json" 2>&1 \
    | tee "$OUT/pytorch_inference_t$ALL.txt"
fi

stamp "summary"
python3 bench/cpu_summary.py "$OUT" | tee "$OUT/summary.txt"
stamp "done"
