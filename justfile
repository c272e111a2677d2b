# landscape: `just --list` shows the recipes.

# Build the release binary and install the Debian data package (Fashion-MNIST, offline data).
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist || echo "could not install dataset-fashion-mnist; synthetic data will stand in"
    fi
    cargo build --release

# Every test (unit, integration, end to end through the binary).
test:
    cargo test --workspace

# Train, analyse, draw and check one of the paper's figures (figure2, figure3, figure5, ...).
reproduce figure scale="quick":
    cargo run --release --quiet -- reproduce {{figure}} --scale {{scale}}

# Benchmarks: grid points per second and training images per second, beside PyTorch on this CPU.
bench:
    cargo bench -p landscape-surface -p landscape-train
    if [ -x bench/.venv/bin/python ]; then bench/.venv/bin/python bench/pytorch_cpu.py --quick; else echo "PyTorch baseline: see bench/README.md to install it"; fi

# Check that the CUDA build still compiles, offline (see scripts/cuda-env.sh).
check-cuda:
    #!/usr/bin/env bash
    set -euo pipefail
    source scripts/cuda-env.sh
    cargo check --features cuda
