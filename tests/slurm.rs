//! `landscape submit` on a real Slurm (a one-node cluster of this machine, started by
//! `just test-slurm` through `scripts/slurm-local.sh`): a surface as four shards and a last job
//! equals the surface computed whole; a shard killed mid-run (`scancel`) and submitted again
//! leaves no point computed twice and none lost. Without a running Slurm the tests are ignored,
//! never passed.

mod common;

use common::{copy_run, landscape, one_epoch_spec, run_ok, train, write_spec};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a submission may take here before the test gives up.
const PATIENCE: Duration = Duration::from_secs(240);

/// A trained run, copied into a second work directory for the unsharded surface; returns the
/// run id.
fn trained_twice(dir: &Path, work: &Path, whole: &Path) -> String {
    let id = train(work, &write_spec(dir, &one_epoch_spec("")));
    copy_run(work, &id, whole);
    id
}

/// Submits `args` in `work`; returns the submission's directory (`status: landscape status DIR`).
fn submit(work: &Path, args: &[&str]) -> (PathBuf, String) {
    let out = run_ok(landscape(work).arg("submit").args(args));
    let dir = out
        .lines()
        .find_map(|l| l.strip_prefix("status: landscape status "))
        .unwrap_or_else(|| panic!("{out}"));
    (PathBuf::from(dir), out)
}

fn status(work: &Path, dir: &Path) -> String {
    run_ok(landscape(work).arg("status").arg(dir))
}

/// Waits until `done` holds of the status, or panics with it and the tasks' logs.
fn wait_for(work: &Path, dir: &Path, what: &str, done: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let now = status(work, dir);
        if done(&now) {
            return now;
        }
        if start.elapsed() > PATIENCE {
            let mut logs = String::new();
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "log") {
                    logs += &format!(
                        "--- {}\n{}",
                        path.display(),
                        std::fs::read_to_string(&path).unwrap()
                    );
                }
            }
            panic!("{what}: not after {PATIENCE:?}:\n{now}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn finished(status: &str) -> bool {
    status.contains("finish (1 task") && status.trim_end().ends_with("1/1  done")
}

/// The surface table the last line of a finished `finish` log names.
fn table(dir: &Path) -> PathBuf {
    let log = std::fs::read_to_string(dir.join("finish-1.log")).unwrap();
    PathBuf::from(
        log.lines()
            .rev()
            .find(|l| l.ends_with("surface.csv"))
            .unwrap_or_else(|| panic!("{log}")),
    )
}

#[test]
#[ignore = "needs a running Slurm: `just test-slurm`"]
fn four_shards_and_a_finish_job_equal_the_whole_surface() {
    let dir = tempfile::tempdir().unwrap();
    let (work, whole) = (dir.path().join("work"), dir.path().join("whole"));
    let id = trained_twice(dir.path(), &work, &whole);
    let surface = [
        "surface", "--run", &id, "--x", "-1:1:5", "--y", "-1:1:5", "--subset", "32",
    ];
    let expected = run_ok(landscape(&whole).args(surface));
    let (sub, out) = submit(&work, &[&["--shards", "4"][..], &surface[..]].concat());
    assert!(
        out.contains("shards: job ") && out.contains("(4 tasks)"),
        "{out}"
    );
    let now = wait_for(&work, &sub, "the finish job", finished);
    assert_eq!(now.matches("  done").count(), 5, "{now}");
    let sharded = std::fs::read_to_string(table(&sub)).unwrap();
    assert_eq!(
        sharded,
        std::fs::read_to_string(expected.trim()).unwrap(),
        "sharded and whole surfaces differ"
    );
    // Four journals, one per shard, and the table written once.
    let job = table(&sub).parent().unwrap().to_path_buf();
    for k in 1..=4 {
        assert!(job.join(format!("points.{k}-of-4.csv")).exists());
    }
}

#[test]
#[ignore = "needs a running Slurm: `just test-slurm`"]
fn a_killed_shard_is_rerun_by_submitting_again_and_nothing_is_computed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (work, whole) = (dir.path().join("work"), dir.path().join("whole"));
    let id = trained_twice(dir.path(), &work, &whole);
    let surface = [
        "surface", "--run", &id, "--x", "-1:1:31", "--y", "-1:1:31", "--subset", "128",
    ];
    let args = [&["--shards", "3"][..], &surface[..]].concat();
    let (sub, _) = submit(&work, &args);
    let record: toml::Table =
        toml::from_str(&std::fs::read_to_string(sub.join("submission.toml")).unwrap()).unwrap();
    let array = record["rounds"][0][0].as_str().unwrap().to_string();
    // Kill shard 1 once it has computed some points.
    let start = Instant::now();
    let journal = loop {
        let found = std::fs::read_dir(&work)
            .unwrap()
            .map(|e| e.unwrap().path().join("points.1-of-3.csv"))
            .find(|p| p.exists());
        if let Some(path) = found
            && std::fs::read_to_string(&path).unwrap().lines().count() > 5
        {
            break path;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "shard 1 never started:\n{}",
            status(&work, &sub)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        Command::new("scancel")
            .arg(format!("{array}_1"))
            .status()
            .unwrap()
            .success()
    );
    // The other shards finish; the finish job waits on a dependency that can no longer hold.
    let killed = wait_for(&work, &sub, "shard 1 killed, the others done", |s| {
        s.contains("1/3  killed") && s.contains("2/3  done") && s.contains("3/3  done")
    });
    assert!(killed.contains("submit the same command again"), "{killed}");
    let before = std::fs::read_to_string(&journal).unwrap().lines().count();
    // Submitting again replaces the finish job that can no longer start, and reruns the rest.
    let (again, out) = submit(&work, &args);
    assert_eq!(again, sub, "the same command is the same submission");
    assert!(out.contains("cancelled job"), "{out}");
    wait_for(&work, &sub, "the second round", finished);
    let job = journal.parent().unwrap();
    let points = 31 * 31;
    let mut seen = std::collections::BTreeSet::new();
    for k in 1..=3 {
        let text = std::fs::read_to_string(job.join(format!("points.{k}-of-3.csv"))).unwrap();
        let rows: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            rows.len(),
            (points + 3 - k) / 3,
            "shard {k}: points computed twice or lost"
        );
        for row in rows {
            let mut cells = row.split(',');
            let key = (
                cells.next().unwrap().to_string(),
                cells.next().unwrap().to_string(),
            );
            assert!(seen.insert(key), "shard {k}: a point twice");
        }
    }
    assert_eq!(seen.len(), points);
    assert!(
        before > 5 && before - 1 < points.div_ceil(3),
        "shard 1 was killed mid-run ({before} lines)"
    );
    let expected = run_ok(landscape(&whole).args(surface));
    assert_eq!(
        std::fs::read_to_string(table(&sub)).unwrap(),
        std::fs::read_to_string(expected.trim()).unwrap()
    );
}

#[test]
#[ignore = "needs a running Slurm: `just test-slurm`"]
fn a_reproduction_trains_one_run_per_task_then_draws_the_figure() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let results = dir.path().join("figure2");
    let (sub, out) = submit(
        &work,
        &[
            "reproduce",
            "figure2",
            "--scale",
            "smoke",
            "--dataset",
            "synthetic",
            "--results",
            results.to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("train: job ") && out.contains("(4 tasks)"),
        "{out}"
    );
    let now = wait_for(&work, &sub, "the figure", finished);
    assert_eq!(now.matches("  done").count(), 5, "{now}");
    // Each task trained its own run: four run directories, each trained once.
    let runs: Vec<PathBuf> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("run.toml").exists())
        .collect();
    assert_eq!(runs.len(), 4);
    for k in 1..=4 {
        let log = std::fs::read_to_string(sub.join(format!("train-{k}.log"))).unwrap();
        assert_eq!(log.matches("complete").count(), 1, "task {k}: {log}");
    }
    let findings = std::fs::read_to_string(results.join("findings.md")).unwrap();
    assert!(findings.contains("checks pass"), "{findings}");
}
