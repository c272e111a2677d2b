//! The CUDA path against the CPU path. Without the `cuda` feature the test is reported as
//! ignored (not run); built with it on a machine without an NVIDIA GPU it fails, so it never
//! passes without having compared anything. Run it where a GPU is:
//! `cargo test --release --features cuda --test cuda`.

use std::process::Command;

/// Inference loss and accuracy of the same parameters on the same images, and one identical
/// training step, on both devices (`landscape bench --compare-cpu`, which exits non-zero when
/// they differ beyond float tolerance: losses 1e-3 relative, accuracy 0.5 points, a step 1e-3).
#[test]
#[cfg_attr(
    not(feature = "cuda"),
    ignore = "needs the cuda feature and an NVIDIA GPU: cargo test --release --features cuda --test cuda"
)]
fn cuda_computes_what_the_cpu_computes() {
    let workdir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_landscape"))
        .args(["--device", "cuda", "--workdir"])
        .arg(workdir.path())
        .args([
            "bench",
            "--compare-cpu",
            "--models",
            "resnet20,resnet20-noshort,vgg9",
            "--width",
            "0.5",
            "--images",
            "512",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches(": agrees").count(), 3, "{text}");
}
