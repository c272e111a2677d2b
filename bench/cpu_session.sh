#!/usr/bin/env bash
# landscape's CPU engine beside PyTorch on the same CPU and thread counts, in one run so the
# ratios compare numbers taken under the same conditions: training steps (ResNet-20, ResNet-56,
# VGG-9 at batch 128 and 1,024, on 1 and on all threads), burn's own training for reference,
# and inference and grid points (all threads), once per instruction set: landscape's kernels
# forced to it (LANDSCAPE_CPU_KERNELS) beside PyTorch held to it (ATEN_CPU_CAPABILITY,
# ONEDNN_MAX_CPU_ISA). Writes the raw logs and JSON, then summary.csv (bench/cpu_summary.py).
# Needs the release binary (cargo build --release) and bench/.venv (see bench/README.md).
# Usage (repository root): OUT=bench/results/cpu-$(date +%F) bash bench/cpu_session.sh
#   SECTIONS="train burn inference" selects parts; THREADS="1 2" the thread counts; ROUNDS=2
#   interleaves that many rounds of the training section (landscape, PyTorch, landscape, ...):
#   on a shared host each side's best round is the summary's (cpu_summary.py). ISAS="avx512
#   avx2" the instruction sets (default: those of avx512 and avx2 this CPU has, else neon).
set -euo pipefail
OUT=${OUT:-bench/results/cpu-$(date +%F)}
IMAGES=${IMAGES:-1000}
ALL=$(nproc)
THREADS=${THREADS:-"1 $ALL"}
ROUNDS=${ROUNDS:-2}
SECTIONS=${SECTIONS:-"train burn inference"}
flags=$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo || true)
default_isas=""
[[ " $flags " == *" avx512f "* ]] && default_isas+=" avx512"
[[ " $flags " == *" avx2 "* && " $flags " == *" fma "* ]] && default_isas+=" avx2"
[[ $(uname -m) == aarch64 ]] && default_isas+=" neon"
default_isas=${default_isas# }
ISAS=${ISAS:-${default_isas:-portable}}
MODELS=${MODELS:-resnet20,resnet56,vgg9}
L=${LANDSCAPE:-target/release/landscape}
PY=${PYTHON:-bench/.venv/bin/python}
mkdir -p "$OUT"
stamp() { echo "[$(date +%T)] $*" | tee -a "$OUT/session.log"; }
has() { [[ " $SECTIONS " == *" $1 "* ]]; }
# PyTorch held to an instruction set (its default is the best the CPU has).
torch_env() {
  case $1 in
    avx2) echo "ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2" ;;
    portable) echo "ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41" ;;
    *) echo "" ;;
  esac
}
torch_configs() { local out=""; for m in ${MODELS//,/ }; do out+="${out:+,}$m:1:$1"; done; echo "$out"; }

if has train; then
  for r in $(seq 1 "$ROUNDS"); do
    for isa in $ISAS; do
      for t in $THREADS; do
        stamp "round $r: landscape training steps, $isa kernels, $t thread(s)"
        LANDSCAPE_CPU_KERNELS=$isa "$L" --threads "$t" bench --models "$MODELS" --images 1024 --eval-batch 0 \
          --train-batch 128,1024 --repeats 3 --json "$OUT/landscape_train_${isa}_t${t}_r$r.json" 2>&1 \
          | tee "$OUT/landscape_train_${isa}_t${t}_r$r.txt"
        stamp "round $r: PyTorch training steps ($isa), $t thread(s)"
        env $(torch_env "$isa") "$PY" bench/pytorch_cpu.py --threads "$t" --repeats 3 \
          --configs "$(torch_configs train)" --json "$OUT/pytorch_train_${isa}_t${t}_r$r.json" 2>&1 \
          | tee "$OUT/pytorch_train_${isa}_t${t}_r$r.txt"
      done
    done
  done
fi

read -r best _ <<< "$ISAS" # burn's step beside PyTorch on the best instruction set
if has burn; then
  stamp "landscape training steps on burn's autodiff (LANDSCAPE_CPU_KERNELS=off), $ALL threads"
  LANDSCAPE_CPU_KERNELS=off "$L" --threads "$ALL" bench --models "$MODELS" --images 128 --eval-batch 0 \
    --train-batch 128 --repeats 1 --json "$OUT/landscape_burn_${best}_t$ALL.json" 2>&1 \
    | tee "$OUT/landscape_burn_${best}_t$ALL.txt"
fi

if has inference; then
  for isa in $ISAS; do
    stamp "landscape inference and grid points, $isa kernels, $ALL threads"
    LANDSCAPE_CPU_KERNELS=$isa "$L" --threads "$ALL" bench --models "$MODELS" --images "$IMAGES" \
      --eval-batch 128,500 --train-batch 0 --repeats 3 --json "$OUT/landscape_inference_${isa}_t$ALL.json" \
      2>&1 | tee "$OUT/landscape_inference_${isa}_t$ALL.txt"
    stamp "PyTorch ($isa): the reference surface loop, a tuned loop, eval, $ALL threads"
    env $(torch_env "$isa") "$PY" bench/pytorch_cpu.py --threads "$ALL" --images "$IMAGES" --points 2 \
      --repeats 3 --configs "$(torch_configs eval+surface)" --json "$OUT/pytorch_inference_${isa}_t$ALL.json" \
      2>&1 | tee "$OUT/pytorch_inference_${isa}_t$ALL.txt"
  done
fi

stamp "summary"
python3 bench/cpu_summary.py "$OUT" | tee "$OUT/summary.txt"
stamp "done"
