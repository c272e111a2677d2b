//! The compute device: one code path for every device, chosen at run time (burn 0.22 picks the
//! backend through its `Device`).

use anyhow::{Result, bail};
use burn::tensor::Device;

/// The `--device` choice: `cpu`, or `cuda` / `cuda:N` (the N-th NVIDIA GPU, from 0; `cuda` is
/// `cuda:0`). Several GPUs of one machine take one process each (`--device cuda:1 ... --shard
/// 2/4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceKind {
    /// The CPU: burn's flex backend (pure Rust, gemm + rayon; measured fastest here) for
    /// training, landscape's own kernels for inference (surfaces).
    #[default]
    Cpu,
    /// An NVIDIA GPU, by index, through burn-cuda (needs the `cuda` cargo feature).
    Cuda(usize),
}

impl DeviceKind {
    /// The burn device, or a clear error when this build cannot use it.
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceKind::Cpu => Ok(Device::flex()),
            DeviceKind::Cuda(index) => cuda_device(index),
        }
    }

    /// The kind's name in metadata: `cpu` or `cuda` (the index is where, not what).
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda(_) => "cuda",
        }
    }
}

impl std::str::FromStr for DeviceKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(index)) => Ok(DeviceKind::Cuda(index)),
                _ => bail!("expected cpu, cuda or cuda:N (N a GPU's index from 0), got `{s}`"),
            },
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceKind::Cpu => write!(f, "cpu"),
            DeviceKind::Cuda(index) => write!(f, "cuda:{index}"),
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<Device> {
    // burn-cuda loads the driver on a worker thread and panics there when it is missing; look
    // first, so the user gets one clear line instead of two panics.
    let name = c"libcuda.so.1";
    // SAFETY: dlopen with a valid C string; the handle is closed again right away.
    let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
    if handle.is_null() {
        bail!(
            "--device cuda: the NVIDIA driver library libcuda.so.1 is not available on this machine (no GPU driver installed?)"
        );
    }
    // SAFETY: the handle came from dlopen above.
    unsafe { libc::dlclose(handle) };
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_index: usize) -> Result<Device> {
    bail!(
        "--device cuda: this landscape binary was built without CUDA; rebuild with \
         `cargo build --release --features cuda` (see README, \"CUDA\")"
    )
}

/// Images per inference batch on `device`. On the CPU the batch size barely matters (ResNet-20
/// through `landscape bench`: 224-246 images/s from batch 128 to 1000, within the noise of a
/// loaded machine), so 500 keeps the per-batch overhead low. A GPU gets the paper's large
/// batch, 8192 (issue 8): inference keeps only a few activations alive, about 0.5 GB each for
/// ResNet-56 and 2 GB for VGG-9's widest layer at that batch, far below a GPU's memory, and
/// fewer, larger launches keep it busy.
pub fn eval_batch(device: &Device) -> usize {
    if *device == Device::flex() { 500 } else { 8192 }
}

/// `--threads` beyond this many per core is refused: more threads than that only add
/// contention (and tens of thousands exhaust the machine).
pub const MAX_THREADS_PER_CORE: usize = 4;

/// Sets the number of CPU threads the flex backend uses (its rayon pool). Call before any
/// tensor work; `None` keeps rayon's default (one per core).
pub fn set_cpu_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        if n == 0 {
            bail!("--threads: expected a positive number of threads, got 0");
        }
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let most = MAX_THREADS_PER_CORE * cores;
        if n > most {
            bail!(
                "--threads {n}: at most {most} ({MAX_THREADS_PER_CORE} per core of this machine's {cores})"
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_with_an_optional_gpu_index() {
        for (text, kind) in [
            ("cpu", DeviceKind::Cpu),
            ("cuda", DeviceKind::Cuda(0)),
            ("cuda:3", DeviceKind::Cuda(3)),
        ] {
            assert_eq!(text.parse::<DeviceKind>().unwrap(), kind);
        }
        assert_eq!(DeviceKind::Cuda(3).to_string(), "cuda:3");
        assert_eq!(DeviceKind::Cuda(3).name(), "cuda");
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1"] {
            assert!(bad.parse::<DeviceKind>().is_err(), "{bad}");
        }
    }
}
