#!/usr/bin/env bash
# One prepared session on a GPU machine (no Rust there): landscape's CUDA build against the CPU,
# its throughput beside PyTorch's on the same card, and the smoke reproductions on the GPU.
# Usage (from the repository root, with the compressed binary at target/gpu/landscape.xz):
#   OUT=/some/dir bash bench/gpu_session.sh
# Worst case (every step at its timeout) is 90 + 130 + 55 + 85 + 6 x 35 = 570 s, plus a few
# seconds to unpack the binary, under the device tool's 600 s per command. The CPU agreement
# step gets the most slack: it also runs the CPU's bf16 emulation at full width.
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
L=/tmp/landscape
stamp() { echo "[$(date +%T)] $*" | tee -a "$OUT/session.log"; }

stamp "card"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/card.csv" 2>&1
cat "$OUT/card.csv"
python3 -c "import lzma, shutil; shutil.copyfileobj(lzma.open('target/gpu/landscape.xz'), open('$L', 'wb'))" && chmod +x "$L"

stamp "agreement with the CPU (inference and one training step, same parameters and images)"
timeout -k 5 90 "$L" --device cuda bench --compare-cpu --models resnet20,vgg9 --json "$OUT/agreement.json" > "$OUT/agreement.txt" 2>&1
echo "exit $?" >> "$OUT/agreement.txt"; cat "$OUT/agreement.txt"

stamp "landscape throughput on the GPU (f32; batch 8192 is what surfaces use on a GPU)"
timeout -k 5 130 "$L" --device cuda bench --models resnet20,resnet56,vgg9 --images 10000 --eval-batch 1024,8192 \
  --train-batch 128 --repeats 2 --json "$OUT/landscape_cuda.json" > "$OUT/landscape_cuda.txt" 2>&1
echo "exit $?" >> "$OUT/landscape_cuda.txt"; cat "$OUT/landscape_cuda.txt"

stamp "landscape throughput on the GPU in bf16 (inference and grid points only)"
timeout -k 5 55 "$L" --device cuda bench --models resnet56,vgg9 --images 10000 --eval-batch 8192 \
  --train-batch 0 --repeats 2 --precision bf16 --json "$OUT/landscape_cuda_bf16.json" > "$OUT/landscape_cuda_bf16.txt" 2>&1
echo "exit $?" >> "$OUT/landscape_cuda_bf16.txt"; cat "$OUT/landscape_cuda_bf16.txt"

stamp "PyTorch on the same card"
timeout -k 5 85 python3 bench/pytorch_gpu.py --images 10000 --points 3 --json "$OUT/pytorch_gpu.json" > "$OUT/pytorch_gpu.txt" 2>&1
echo "exit $?" >> "$OUT/pytorch_gpu.txt"; cat "$OUT/pytorch_gpu.txt"

for figure in figure3 figure2 figure5 figure1 figure7 figure9; do
  stamp "smoke reproduction of $figure on the GPU"
  timeout -k 5 35 "$L" --device cuda --workdir /tmp/gpu-work reproduce "$figure" --scale smoke --dataset synthetic \
    --results "$OUT/$figure" > "$OUT/$figure.txt" 2>&1
  echo "exit $?" >> "$OUT/$figure.txt"; grep -E "checks pass|^error|exit" "$OUT/$figure.txt"
done
stamp "done"
