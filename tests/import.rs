//! `landscape import` of a PyTorch checkpoint written by PyTorch (tests/fixtures/pytorch), then
//! the analyses on it as on a trained run.

mod common;

use common::{landscape, one_line_failure, run_ok};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pytorch")
        .join(name)
}

/// `landscape import <file> --model resnet20 --width 0.25 --dataset synthetic` in `work`.
fn import(work: &Path, file: &Path, model: &str) -> std::process::Output {
    landscape(work)
        .arg("import")
        .arg(file)
        .args([
            "--model",
            model,
            "--width",
            "0.25",
            "--dataset",
            "synthetic",
        ])
        .output()
        .unwrap()
}

/// The id of the run a successful `landscape import` printed, which starts with `prefix`.
fn imported(out: std::process::Output, prefix: &str) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let id = line.split_whitespace().next().unwrap().to_string();
    assert!(
        id.starts_with(prefix) && line.contains("(imported): test accuracy"),
        "{line}"
    );
    id
}

#[test]
fn an_imported_checkpoint_is_a_run_every_analysis_takes() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let t7 = fixture("resnet20-w0.25.t7");
    let id = imported(import(&work, &t7, "resnet20"), "resnet20-");

    // The same bytes under another name are the same run; `runs` lists it as complete.
    let copy = dir.path().join("renamed.t7");
    std::fs::copy(&t7, &copy).unwrap();
    let again = String::from_utf8(import(&work, &copy, "resnet20").stdout).unwrap();
    assert!(again.starts_with(&format!("{id} (found)")), "{again}");
    let runs = run_ok(landscape(&work).arg("runs"));
    assert!(
        runs.lines()
            .any(|l| l.starts_with(&id) && l.contains("complete")),
        "{runs}"
    );

    // A surface around it, and its centre is the network as imported.
    let csv =
        run_ok(landscape(&work).args(["surface", "--run", &id, "--x", "-1:1:3", "--subset", "64"]));
    let table = std::fs::read_to_string(csv.trim()).unwrap();
    assert_eq!(table.lines().count(), 1 + 3);
    let centre: Vec<&str> = table.lines().nth(2).unwrap().split(',').collect();
    assert_eq!(centre[2], "0");
    assert!(centre[4].parse::<f64>().unwrap().is_finite());

    // Another file is another run; a checkpoint of another architecture is one line.
    let err = one_line_failure(&import(&work, &t7, "resnet20-noshort"));
    assert!(
        err.contains("resnet20-w0.25.t7") && err.contains("does not have"),
        "{err}"
    );
    let err = one_line_failure(&import(&work, &fixture("vgg9-w0.125.pth"), "resnet20"));
    assert!(err.contains("no tensor `conv1.weight`"), "{err}");
    let listed = std::fs::read_dir(&work)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("resnet20")
        })
        .count();
    assert_eq!(listed, 1, "a refused import left a run behind");
}

/// An ONNX model exported by PyTorch (tests/fixtures/onnx): a run whose graph is its own.
#[cfg(feature = "onnx")]
#[test]
fn an_imported_onnx_model_is_a_run_every_analysis_takes() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/cnn.onnx");
    let onnx = |extra: &[&str]| {
        landscape(&work)
            .arg("import")
            .arg(&model)
            .args(["--dataset", "synthetic"])
            .args(extra)
            .output()
            .unwrap()
    };
    let id = imported(onnx(&[]), "imported-");
    assert!(work.join(&id).join("network.json").exists());
    let again = String::from_utf8(onnx(&[]).stdout).unwrap();
    assert!(again.starts_with(&format!("{id} (found)")), "{again}");
    let err = one_line_failure(&onnx(&["--model", "resnet20"]));
    assert!(
        err.contains("an ONNX model says its own architecture"),
        "{err}"
    );

    // A 2-D surface around it, drawn.
    let csv = run_ok(landscape(&work).args([
        "surface", "--run", &id, "--x", "-1:1:3", "--y", "-1:1:3", "--subset", "64",
    ]));
    let surface = PathBuf::from(csv.trim()).parent().unwrap().to_path_buf();
    let table = std::fs::read_to_string(surface.join("surface.csv")).unwrap();
    assert_eq!(table.lines().count(), 1 + 9);
    let plotted = run_ok(landscape(&work).arg("plot").arg(&surface).args([
        "--kinds", "contour", "--vmin", "1", "--vmax", "4", "--vlevel", "0.25",
    ]));
    assert!(plotted.contains("train_loss_2dcontour.png"), "{plotted}");
}
