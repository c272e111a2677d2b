//! `bench/gpu_session.sh` without a GPU: a stand-in for the CUDA binary records how it was called,
//! so the script's plumbing (phases, time limits, one tarball of results, a failing step that
//! does not stop the rest) is checked here rather than on a scarce GPU machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Answers like `landscape --device cuda ...` would, without computing anything; the bf16
/// benchmark of VGG-9 fails, as a step that runs out of memory would.
const STAND_IN: &str = r#"#!/usr/bin/env bash
[ "$1 $2" = "--device cuda" ] || { echo "not asked for the GPU: $*" >&2; exit 4; }
case "$*" in
  *--compare-cpu*) echo "resnet20: agrees"; exit 0 ;;
  *" reproduce "*)
    while [ $# -gt 0 ]; do [ "$1" = --results ] && results=$2; shift; done
    mkdir -p "$results" && echo "1 of 6 checks pass." | tee "$results/findings.md"; exit 0 ;;
  *"--models vgg9"*"--precision bf16"*) echo "error: out of device memory" >&2; exit 1 ;;
  *" bench "*) echo "model eval f32 batch 8192: 1000 images/s"; exit 0 ;;
esac
exit 3
"#;

/// Runs the script in `root` (a stand-in repository) with `phases`; returns its output and
/// the folder its results were unpacked into.
fn run_session(root: &Path, phases: &str) -> (Output, PathBuf) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/gpu_session.sh");
    let out = root.join("out");
    let output = Command::new("bash")
        .arg(&script)
        .current_dir(root)
        .env("OUT", &out)
        .env("WORK", root.join("work"))
        .env("PHASES", phases)
        .output()
        .unwrap();
    let unpacked = root.join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    if out.join("session.tar.gz").exists() {
        let tar = Command::new("tar")
            .arg("-xzf")
            .arg(out.join("session.tar.gz"))
            .arg("-C")
            .arg(&unpacked)
            .status()
            .unwrap();
        assert!(tar.success());
    }
    (output, unpacked)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn session_runs_the_chosen_phases_and_returns_one_tarball() {
    let root = tempfile::tempdir().unwrap();
    let gpu = root.path().join("target/gpu");
    std::fs::create_dir_all(&gpu).unwrap();
    std::fs::write(gpu.join("landscape"), STAND_IN).unwrap();

    let (output, results) = run_session(root.path(), "checks f32 bf16");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");

    // The device tool returns at most 8 files: everything travels in one tarball and its log.
    let mut returned: Vec<String> = std::fs::read_dir(root.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    returned.sort();
    assert_eq!(returned, ["session.log", "session.tar.gz"]);

    // Without a compiled agreement test, the same check runs through the binary.
    assert!(read(&results.join("cuda_test.txt")).contains("agrees"));
    for figure in [
        "figure1", "figure2", "figure3", "figure5", "figure7", "figure9",
    ] {
        assert!(read(&results.join(format!("smoke_{figure}.txt"))).contains("exit 0 after"));
        assert!(
            results
                .join("smoke")
                .join(figure)
                .join("findings.md")
                .exists()
        );
    }
    for model in ["resnet20", "resnet56", "vgg9"] {
        let f32 = read(&results.join(format!("landscape_f32_{model}.txt")));
        assert!(
            f32.contains("images/s") && f32.contains("exit 0 after"),
            "{f32}"
        );
    }
    // A failing step is recorded with its status, and the steps after it still run.
    let failed = read(&results.join("landscape_bf16_vgg9.txt"));
    assert!(
        failed.contains("out of device memory") && failed.contains("exit 1 after"),
        "{failed}"
    );
    assert!(
        printed.contains("landscape_bf16_vgg9.txt:exit 1 after"),
        "{printed}"
    );
    // Phases not asked for do not run.
    assert!(!results.join("pytorch.txt").exists());
}

#[test]
fn session_without_a_binary_fails_and_says_why() {
    let root = tempfile::tempdir().unwrap();
    let (output, results) = run_session(root.path(), "checks");
    assert!(!output.status.success());
    let log = read(&results.join("session.log"));
    assert!(log.contains("no binary in target/gpu/"), "{log}");
    assert!(!results.join("cuda_test.txt").exists());
}
