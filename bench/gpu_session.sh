#!/usr/bin/env bash
# One prepared session on a GPU machine (no Rust there): landscape's CUDA build against the CPU,
# the smoke reproductions on the GPU, and landscape's throughput beside PyTorch's on the same card.
# Usage (from the repository root, with the binaries in target/gpu/, xz-compressed or not):
#   OUT=/some/dir bash bench/gpu_session.sh
#   target/gpu/landscape.xz    `cargo build --release --features cuda`, stripped
#   target/gpu/cuda-test.xz    `cargo test --release --features cuda --test cuda --no-run` (optional),
#   target/gpu/cuda-test.exe-path  the landscape binary's path that test was built against
# Everything is written to $WORK/out; after every step it is packed into $OUT/session.tar.gz (the
# device tool returns at most 8 files), so a step that runs out of time loses only itself.
# PHASES (default "checks f32 bf16 pytorch") picks what runs. Worst cases, every step at its
# limit: checks 150 s, f32 370 s, bf16 155 s, pytorch 90 s, plus 5 s to unpack. The limits come
# from the H200 run of 2026-11-27 (bench/results/gpu-2026-11-27-h200-run3/), where autotuning
# the first training step took longer than 60 s: two calls fit the device tool's 600 s per call,
# PHASES="checks pytorch" and PHASES="f32 bf16".
set -u
PHASES=" ${PHASES:-checks f32 bf16 pytorch} "
wants() { [[ "$PHASES" == *" $1 "* ]]; }
OUT=${OUT:-/tmp/gpu-out}
WORK=${WORK:-/tmp/gpu-session}
R="$WORK/out"
mkdir -p "$OUT" "$R"
L="$WORK/landscape"
export PYTHONUNBUFFERED=1
# burn-cuda loads libcuda, and cubecl may compile kernels through NVRTC: make the toolkit's and
# PyTorch's copies of the CUDA libraries findable.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    $(python3 -c "import nvidia, os; print(' '.join(os.path.join(p, q, 'lib') for p in nvidia.__path__ for q in os.listdir(p)))" 2>/dev/null); do
  [ -d "$d" ] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
export LD_LIBRARY_PATH
# With fusion, figure7's smoke once overflowed a spawned thread's default 2 MiB stack: give threads more.
export RUST_MIN_STACK=67108864

stamp() { echo "[$(date +%T)] $*" | tee -a "$R/session.log"; }
pack() { tar -C "$R" -czf "$OUT/session.tar.gz.tmp" . && mv "$OUT/session.tar.gz.tmp" "$OUT/session.tar.gz"; cp "$R/session.log" "$OUT/session.log"; }
# unpack NAME DEST: target/gpu/NAME.xz (as `just gpu-build` leaves it) or target/gpu/NAME as is.
unpack() {
  if [ -f "target/gpu/$1.xz" ]; then
    if command -v xz >/dev/null; then xz -dc "target/gpu/$1.xz" > "$2"
    else python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "target/gpu/$1.xz" "$2"; fi
  else
    cp "target/gpu/$1" "$2"
  fi && chmod +x "$2"
}
# step NAME SECONDS COMMAND...: run with a time limit, output to $R/NAME.txt, exit status appended.
step() {
  local name=$1 limit=$2; shift 2
  stamp "$name (limit ${limit}s): $*"
  local t0=$SECONDS
  timeout -k 5 "$limit" "$@" > "$R/$name.txt" 2>&1
  local rc=$?
  echo "exit $rc after $((SECONDS - t0)) s" >> "$R/$name.txt"
  stamp "$name: exit $rc after $((SECONDS - t0)) s"
  return $rc
}

stamp "card and unpacking"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$R/card.csv" 2>&1
cat "$R/card.csv"
unpack landscape "$L" || { stamp "no binary in target/gpu/ (just gpu-build)"; pack; exit 1; }
pack

# Phase 1, checks (no timings, so all run side by side): the CPU-agreement test and the smokes,
# each with its own work directory. Autotune settles for the first kernel within 60 % of the best
# (minimal) and keeps no shared cache file: these runs time nothing, and share no file.
if wants checks; then (
  export CUBECL_AUTOTUNE_LEVEL=minimal CUBECL_AUTOTUNE_CACHE=false
  if [ -f target/gpu/cuda-test.xz ] || [ -f target/gpu/cuda-test ]; then
    # The test runs the binary cargo built it against, at that machine's absolute path.
    # (Never replaced where it exists: on the build machine that is the real binary.)
    exe=$(cat target/gpu/cuda-test.exe-path)
    [ -e "$exe" ] || { mkdir -p "$(dirname "$exe")" && ln -s "$L" "$exe"; }
    unpack cuda-test "$WORK/cuda-test"
    step cuda_test 150 "$WORK/cuda-test" --nocapture &
  else
    step cuda_test 150 "$L" --device cuda --workdir "$WORK/agree" bench --compare-cpu \
      --models resnet20,resnet20-noshort,vgg9 --width 0.5 --images 512 &
  fi
  for figure in figure3 figure2 figure5 figure1 figure7 figure9; do
    step "smoke_$figure" 150 "$L" --device cuda --workdir "$WORK/smoke_$figure" reproduce "$figure" --scale smoke \
      --dataset synthetic --results "$R/smoke/$figure" &
  done
  wait
); pack; fi

# Phase 2, timings, one process at a time. One model per process, so a slow one costs only itself;
# GPU kernels compile and autotune in each process's untimed warm-up.
# ResNet-56 first: the 3-minute goal is stated for it.
if wants f32; then
  for m in resnet56:150 resnet20:100 vgg9:120; do
    step "landscape_f32_${m%%:*}" "${m##*:}" "$L" --device cuda --workdir "$WORK/bench" bench --models "${m%%:*}" \
      --images 16384 --eval-batch 1024,8192 --train-batch 128 --repeats 2 --json "$R/landscape_f32_${m%%:*}.json"
    pack
  done
fi
if wants bf16; then
  for m in resnet56:60 resnet20:45 vgg9:50; do
    step "landscape_bf16_${m%%:*}" "${m##*:}" "$L" --device cuda --workdir "$WORK/bench" bench --models "${m%%:*}" \
      --images 16384 --eval-batch 8192 --train-batch 0 --repeats 2 --precision bf16 --json "$R/landscape_bf16_${m%%:*}.json"
    pack
  done
fi
if wants pytorch; then
  step pytorch 90 python3 bench/pytorch_gpu.py --images 10000 --points 3 --json "$R/pytorch_gpu.json"
  pack
fi

stamp "summary"
grep -E "agrees|differ|checks pass|images/s|^exit|error|panic" "$R"/*.txt | sed "s|^$R/||" | cut -c1-170
stamp "done"
pack
