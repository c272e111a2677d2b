//! The compute device: one code path for every device, chosen at run time (burn 0.22 picks the
//! backend through its `Device`).

use anyhow::{Result, bail};
use burn::tensor::Device;

/// The `--device` choice.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// The CPU through burn's flex backend (pure Rust, gemm + rayon): measured fastest here.
    #[default]
    Cpu,
    /// The first NVIDIA GPU through burn-cuda (needs the `cuda` cargo feature).
    Cuda,
}

impl DeviceKind {
    /// The burn device, or a clear error when this build cannot use it.
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceKind::Cpu => Ok(Device::flex()),
            DeviceKind::Cuda => cuda_device(),
        }
    }

    /// The name used on the command line and in metadata.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda => "cuda",
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_device() -> Result<Device> {
    Ok(Device::cuda(0))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device() -> Result<Device> {
    bail!(
        "--device cuda: this landscape binary was built without CUDA; rebuild with \
         `cargo build --release --features cuda` (see README, \"CUDA\")"
    )
}

/// Sets the number of CPU threads the flex backend uses (its rayon pool). Call before any
/// tensor work; `None` keeps rayon's default (one per core).
pub fn set_cpu_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        if n == 0 {
            bail!("--threads: expected a positive number of threads, got 0");
        }
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
        {
            bail!("--threads {n}: the CPU thread pool was already started ({e})");
        }
    }
    Ok(())
}
