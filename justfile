# landscape: `just --list` shows the recipes.

# Debian packages: Fashion-MNIST (offline data), the HDF5 library and h5py (`--features hdf5`:
# `landscape export --h5` and its test). The binary has default features, as `just reproduce`.
# Build the release binary and install the Debian packages the project uses.
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dataset-fashion-mnist libhdf5-dev python3-h5py || echo "could not install the Debian packages: synthetic data will stand in, and --features hdf5 will not build"
    fi
    cargo build --release

# target/dist/landscape is stripped of its debug info, which goes beside it in landscape.debug
# (gdb, perf and backtraces find it there).
# The release binary as shipped (with HDF5 export and ONNX import), in target/dist/.
dist:
    cargo build --release --features hdf5,onnx
    scripts/dist.sh target/release/landscape target/dist

# Every test (unit, integration, end to end through the binary), HDF5 export and ONNX import too.
test:
    cargo test --workspace --features hdf5,onnx

# Needs `gcc-aarch64-linux-gnu`, `libc6-dev-arm64-cross`, `qemu-user-static` (Debian) and
# `rustup target add aarch64-unknown-linux-gnu`.
# The CPU kernels' tests cross-compiled for aarch64 (the NEON path), run under qemu, as CI does.
test-aarch64:
    #!/usr/bin/env bash
    set -euo pipefail
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
    arm="cargo test --release -p landscape-models --target aarch64-unknown-linux-gnu"
    # The kernels against textbook loops, then whole networks against burn (emulation is
    # slow: the rest of the suites run natively in `just test`).
    $arm --lib cpu::
    $arm --test cpu_kernels every_instruction_set

# Train, analyse, draw and check one of the paper's figures (figure1, figure2, figure3, figure5, ...).
reproduce figure scale="quick":
    cargo run --release --quiet -- reproduce {{figure}} --scale {{scale}}

# bf16 vs f32 surfaces of the quick figure3 and figure5 reproductions (run those first): contours, measures, claim verdicts in results/precision/.
precision:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release --quiet
    L=target/release/landscape
    $L reproduce figure5 --set analysis.2d.precision=bf16 --results target/precision/figure5
    $L reproduce figure3 --set analysis.1d.precision=bf16 --set analysis.2d.precision=bf16 --results target/precision/figure3
    python3 bench/precision_check.py --workdir runs --landscape $L --out results/precision \
        --claims results/figure5:target/precision/figure5 --claims results/figure3:target/precision/figure3

# Benchmarks: grid points per second and training images per second, beside PyTorch on this CPU.
bench:
    cargo bench -p landscape-models -p landscape-surface -p landscape-train
    if [ -x bench/.venv/bin/python ]; then bench/.venv/bin/python bench/pytorch_cpu.py --quick; else echo "PyTorch baseline: see bench/README.md to install it"; fi

# The CUDA binary and its CPU-agreement test, stripped and xz-compressed in target/gpu/, for a GPU machine without Rust (bench/README.md).
gpu-build:
    #!/usr/bin/env bash
    set -euo pipefail
    source scripts/cuda-env.sh
    target="${CARGO_TARGET_DIR:-target}"
    cargo build --release --features cuda
    test_exe=$(cargo test --release --features cuda --test cuda --no-run --message-format=json \
        | python3 -c 'import json, sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "cuda" and m.get("executable")][0])')
    mkdir -p target/gpu
    strip -o target/gpu/landscape "$target/release/landscape"
    strip -o target/gpu/cuda-test "$test_exe"
    xz -T0 -f target/gpu/landscape target/gpu/cuda-test
    realpath "$target/release/landscape" > target/gpu/cuda-test.exe-path
    ls -l target/gpu

# See scripts/cuda-env.sh; a check needs no LLVM, a build does.
# Check that the CUDA build still compiles, offline.
check-cuda:
    #!/usr/bin/env bash
    set -euo pipefail
    source scripts/cuda-env.sh --check-only
    cargo check --features cuda

# Root; Debian's slurm-wlm and munge. The cluster starts in a temporary directory, the Slurm
# tests run, the daemons stop. Where Slurm cannot start, it says so and runs nothing (the tests
# stay ignored, never passed).
# `landscape submit` on a real one-node Slurm of this machine.
test-slurm:
    #!/usr/bin/env bash
    set -euo pipefail
    dir=$(mktemp -d /tmp/landscape-slurm.XXXXXX)
    if ! scripts/slurm-local.sh start "$dir"; then
        echo "SKIPPED: Slurm could not start here (see above); the Slurm tests did not run"
        exit 0
    fi
    trap 'scripts/slurm-local.sh stop "$dir"' EXIT
    export SLURM_CONF="$dir/slurm.conf"
    # --workspace --features hdf5,onnx: the same feature resolution as `just test`, so nothing is
    # built again.
    cargo test --workspace --features hdf5,onnx --test slurm -- --ignored
