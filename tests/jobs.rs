//! The job engine as users meet it through the binary: a result is never stale or mixed when a
//! checkpoint changes, one job is computed by one process at a time, sizes beyond the limits or
//! the data are refused before anything starts, a damaged resumable state stops the resume, and
//! `landscape runs` shows live progress with every job beside the runs.

mod common;

use common::{SPEC, landscape, one_line_failure, run_ok, train, train_command, write_spec};
use landscape_core::tensor_file::TensorFile;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A two-epoch run with a checkpoint every epoch, trained in `work`.
fn trained(dir: &Path, work: &Path) -> String {
    let spec = write_spec(
        dir,
        &SPEC
            .replace("epochs = 6", "epochs = 2")
            .replace("save_every = 2", "save_every = 1"),
    );
    train(work, &spec)
}

/// The directory a surface command printed: the table's parent, or the partial job's.
fn job_dir(printed: &str) -> PathBuf {
    let line = printed.trim();
    match line.split_once(": ") {
        Some((dir, _)) => PathBuf::from(dir),
        None => PathBuf::from(line).parent().unwrap().to_path_buf(),
    }
}

/// Rewrites a checkpoint in place with its first tensor scaled, its metadata kept.
fn perturb(checkpoint: &Path) {
    let mut file = TensorFile::read(checkpoint).unwrap();
    for v in &mut file.tensors[0].values {
        *v *= 1.5;
    }
    file.write(checkpoint).unwrap();
}

#[test]
fn a_checkpoint_replaced_in_place_is_a_new_point() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let id = trained(dir.path(), &work);
    let surface = |grid: &str, shard: &str| {
        run_ok(landscape(&work).args([
            "surface", "--run", &id, "--x", grid, "--subset", "64", "--shard", shard,
        ]))
    };
    // Half of a grid before the checkpoint changes, a whole one, then the change.
    let half = job_dir(&surface("-1:1:5", "1/2"));
    let before = job_dir(&surface("-1:1:3", "1/1"));
    perturb(&work.join(&id).join("checkpoints/epoch_0002.safetensors"));
    let after = job_dir(&surface("-1:1:3", "1/1"));
    assert_ne!(
        before, after,
        "the surface of the old checkpoint was reused"
    );
    let table = |d: &Path| std::fs::read_to_string(d.join("surface.csv")).unwrap();
    assert_ne!(table(&before), table(&after));
    // The other half after the change belongs to another job: the merge refuses it.
    let other_half = job_dir(&surface("-1:1:5", "2/2"));
    assert_ne!(half, other_half);
    let err = one_line_failure(
        &landscape(&work)
            .arg("merge")
            .arg(&half)
            .arg(&other_half)
            .output()
            .unwrap(),
    );
    assert!(err.contains("refusing to merge"), "{err}");
    assert!(!half.join("surface.csv").exists());
}

#[test]
fn a_checkpoint_of_another_epoch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let id = trained(dir.path(), &work);
    let checkpoints = work.join(&id).join("checkpoints");
    std::fs::copy(
        checkpoints.join("epoch_0001.safetensors"),
        checkpoints.join("epoch_0002.safetensors"),
    )
    .unwrap();
    let err = one_line_failure(
        &landscape(&work)
            .args(["surface", "--run", &id, "--x", "-1:1:3", "--subset", "64"])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("epoch_0002.safetensors") && err.contains("at epoch 1"),
        "{err}"
    );
}

#[test]
fn two_processes_on_one_surface_compute_each_point_once() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let id = trained(dir.path(), &work);
    let args = ["surface", "--run", &id, "--x", "-1:1:9", "--subset", "128"];
    let children: Vec<_> = (0..2)
        .map(|_| {
            landscape(&work)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let printed: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        })
        .collect();
    assert_eq!(printed[0], printed[1]);
    let job = job_dir(&printed[0]);
    let journaled: usize = std::fs::read_dir(&job)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("points.")
        })
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count() - 1)
        .sum();
    assert_eq!(journaled, 9, "points computed twice (or lost)");
}

#[test]
fn sizes_beyond_the_limits_or_the_data_and_degenerate_directions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let id = trained(dir.path(), &work);
    let fails = |args: &[String], expect: &str| {
        let err = one_line_failure(&landscape(&work).args(args).output().unwrap());
        assert!(err.contains(expect), "{args:?}: {err}");
    };
    let with = |extra: &[&str]| -> Vec<String> {
        ["surface", "--run", &id, "--subset", "64"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    fails(
        &with(&["--x", "-1:1:4294967296"]),
        "needs between 1 and 10000000 points",
    );
    fails(
        &with(&["--x", "-1:1:100000", "--y", "-1:1:100000"]),
        "between 1 and 10000000",
    );
    let threads: Vec<String> = ["--threads".to_string(), "100000".to_string()]
        .into_iter()
        .chain(with(&["--x", "-1:1:3"]))
        .collect();
    fails(&threads, "--threads");
    let too_many: Vec<String> = [
        "surface", "--run", &id, "--x", "-1:1:3", "--subset", "100000",
    ]
    .map(String::from)
    .to_vec();
    fails(&too_many, "at most that many");
    fails(
        &with(&["--x", "-1:1:3", "--y", "-1:1:3", "--plane", &id, &id]),
        "it moves nothing",
    );
    // Directions of zeros (a file edited, or a model minus itself) move nothing.
    let csv = PathBuf::from(run_ok(landscape(&work).args(with(&["--x", "-1:1:3"]))).trim());
    let zeros = dir.path().join("zeros.safetensors");
    let mut file = TensorFile::read(&csv.with_file_name("directions.safetensors")).unwrap();
    for t in &mut file.tensors {
        t.values.iter_mut().for_each(|v| *v = 0.0);
    }
    file.write(&zeros).unwrap();
    let zeros = zeros.to_str().unwrap();
    fails(
        &with(&["--x", "-1:1:3", "--directions", zeros]),
        "moves nothing",
    );
    fails(
        &with(&["--x", "-1:1:3", "--directions", zeros, "--norm", "layer"]),
        "--norm",
    );
    // Legal but suspicious: computed, with a warning.
    let aside = landscape(&work)
        .args(with(&["--x", "0.5:1:2"]))
        .output()
        .unwrap();
    assert!(aside.status.success());
    let warned = String::from_utf8_lossy(&aside.stderr);
    assert!(
        warned.contains("warning:") && warned.contains("not on the grid"),
        "{warned}"
    );
    // Specs: a width beyond any memory, a batch beyond the data; nothing starts.
    let fresh = dir.path().join("fresh");
    for (from, to, key) in [
        ("width = 0.25", "width = 1e9", "train.width"),
        ("batch_size = 64", "batch_size = 100000", "train.batch_size"),
        (
            "train_subset = 512",
            "train_subset = 100000000",
            "train.train_subset",
        ),
    ] {
        let spec = write_spec(dir.path(), &SPEC.replace(from, to));
        let err = one_line_failure(&train_command(&fresh, &spec).output().unwrap());
        assert!(err.contains("spec.toml") && err.contains(key), "{err}");
        assert!(
            !fresh.exists() || std::fs::read_dir(&fresh).unwrap().next().is_none(),
            "{key}: something started"
        );
    }
}

#[test]
fn a_damaged_optimizer_state_stops_the_resume() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let id = trained(dir.path(), &work);
    let spec = dir.path().join("spec.toml");
    // As if killed before its end: the run resumes from last.safetensors.
    let status = work.join(&id).join("status.toml");
    let text = std::fs::read_to_string(&status).unwrap();
    std::fs::write(&status, text.replace("\"complete\"", "\"running\"")).unwrap();
    let last = work.join(&id).join("last.safetensors");
    let mut file = TensorFile::read(&last).unwrap();
    let dropped = file
        .tensors
        .iter()
        .position(|t| t.name.starts_with("optim.first."))
        .expect("momentum buffers are saved");
    let name = file.tensors.remove(dropped).name;
    file.write(&last).unwrap();
    let err = one_line_failure(&train_command(&work, &spec).output().unwrap());
    assert!(
        err.contains(&name) && err.contains("last.safetensors"),
        "{err}"
    );
}

/// The line of `landscape runs` about `id`.
fn runs_line(work: &Path, id: &str) -> String {
    let out = run_ok(landscape(work).arg("runs"));
    out.lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{id} not listed:\n{out}"))
        .to_string()
}

/// Starts training `spec` in `work` and returns the process and the run's id once the run has
/// finished two epochs and `status.toml` has followed.
fn training_in_background(work: &Path, spec: &Path) -> (Child, String) {
    let child = train_command(work, spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let id = loop {
        let found = std::fs::read_dir(work).ok().and_then(|entries| {
            entries.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
                std::fs::read_to_string(p.join("metrics.csv")).is_ok_and(|t| t.lines().count() >= 3)
            })
        });
        if let Some(path) = found {
            break path.file_name().unwrap().to_string_lossy().into_owned();
        }
        assert!(Instant::now() < deadline, "training made no progress");
        std::thread::sleep(Duration::from_millis(20));
    };
    // status.toml follows the epochs while it trains.
    while !std::fs::read_to_string(work.join(&id).join("status.toml"))
        .is_ok_and(|t| !t.contains("epochs_done = 0"))
    {
        assert!(Instant::now() < deadline, "status.toml stayed at epoch 0");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, id)
}

#[test]
fn a_nan_test_loss_marks_the_run_diverged() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let spec = write_spec(dir.path(), SPEC);
    let (mut child, id) = training_in_background(&work, &spec);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let status = work.join(&id).join("status.toml");
    assert!(
        std::fs::read_to_string(&status)
            .unwrap()
            .contains("running"),
        "the run finished before the kill; make it longer"
    );
    // Running variances of NaN: training (batch statistics) stays finite, the test loss
    // (running statistics) does not.
    let last = work.join(&id).join("last.safetensors");
    let mut file = TensorFile::read(&last).unwrap();
    let mut poisoned = 0;
    for t in file
        .tensors
        .iter_mut()
        .filter(|t| t.name.ends_with("running_var"))
    {
        t.values.fill(f32::NAN);
        poisoned += 1;
    }
    assert!(poisoned > 0);
    file.write(&last).unwrap();
    run_ok(&mut train_command(&work, &spec));
    let text = std::fs::read_to_string(&status).unwrap();
    assert!(
        text.contains("diverged") && text.contains("test loss NaN"),
        "{text}"
    );
}

#[test]
fn runs_shows_live_progress_stopped_runs_and_every_job() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let spec = write_spec(dir.path(), SPEC);
    let (mut child, id) = training_in_background(&work, &spec);
    let live = runs_line(&work, &id);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        live.contains("running (pid") && live.contains("/6 epochs"),
        "{live}"
    );
    assert!(!live.contains(" 0/6 epochs"), "{live}");
    let killed = runs_line(&work, &id);
    assert!(killed.contains("stopped"), "{killed}");

    // A killed writer's temporary is cleaned up when the run resumes.
    let stale = work.join(&id).join(format!(
        ".metrics.csv.tmp-{}-999999999-0",
        landscape_core::atomic::host()
    ));
    std::fs::write(&stale, "half").unwrap();
    train(&work, &spec);
    assert!(!stale.exists());
    assert!(runs_line(&work, &id).contains("complete"));

    let csv = PathBuf::from(
        run_ok(landscape(&work).args(["surface", "--run", &id, "--x", "-1:1:3", "--subset", "64"]))
            .trim(),
    );
    let surface = csv
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let line = runs_line(&work, &surface);
    assert!(
        line.contains("surface")
            && line.contains("complete")
            && line.contains("3/3 points")
            && line.contains(&format!("{id}@6")),
        "{line}"
    );
}
