//! What the binary's test suites share: the binary in a work directory, a small spec, training
//! it, and the checks every suite makes. (Each suite uses a part of it.)
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary on `workdir`, offline, with no data sets but the system's.
pub fn landscape(workdir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_landscape"));
    cmd.arg("--workdir")
        .arg(workdir)
        .env("LANDSCAPE_DATA", workdir.join("no-datasets"))
        .arg("--offline");
    cmd
}

/// Runs `cmd`, which must succeed, and returns its standard output.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed:\n{}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A ResNet-20 of width 1/4 on 512 synthetic images for 6 epochs: seconds to train.
pub const SPEC: &str = r#"
[experiment]
name = "cli-test"
title = "A small run for the command-line tests"
dataset = "synthetic"

[train]
model = "resnet20"
width = 0.25
optimizer = "sgd"
nesterov = true
lr = 0.05
epochs = 6
batch_size = 64
weight_decay = 5e-4
train_subset = 512
test_subset = 128
save_every = 2

[scale.smoke]
"#;

/// [`SPEC`] trained for one epoch with a checkpoint kept every epoch, `extra` added to its
/// `[train]` table (a sweep such as `seed = [0, 1, 2]`, or nothing).
pub fn one_epoch_spec(extra: &str) -> String {
    SPEC.replace("epochs = 6", "epochs = 1")
        .replace("save_every = 2", &format!("save_every = 1\n{extra}"))
}

/// Copies run `id` of `workdir` into `into`, to compute the same artifact elsewhere.
pub fn copy_run(workdir: &Path, id: &str, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(workdir.join(id))
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success(), "copying run {id}");
}

/// Writes `text` as `spec.toml` in `dir`.
pub fn write_spec(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `landscape train <spec> --scale smoke` in `workdir`, to be run.
pub fn train_command(workdir: &Path, spec: &Path) -> Command {
    let mut cmd = landscape(workdir);
    cmd.args(["train", spec.to_str().unwrap(), "--scale", "smoke"]);
    cmd
}

/// Trains the spec in `workdir` and returns the run id.
pub fn train(workdir: &Path, spec: &Path) -> String {
    let out = run_ok(&mut train_command(workdir, spec));
    out.lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The one line a failed command printed (it must have failed, with one line).
pub fn one_line_failure(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "not one line:\n{err}");
    err
}
