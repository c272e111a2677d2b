//! The engine on a small job kind: a value per point of an `nx` x `ny` grid.

use crate::grid::{self, GridMeta, MAX_POINTS};
use crate::job::{Job, JobMeta, META_FILE, read_meta};
use crate::journal::{self, Journal, Row, read_rows, same_f64};
use crate::shard::Shard;
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Squares {
    /// Stands for the content hash of an input (a checkpoint).
    input: String,
    nx: usize,
    ny: usize,
}

#[derive(Clone, Debug, PartialEq)]
struct Value {
    ix: usize,
    iy: usize,
    v: f64,
}

impl Row for Value {
    const HEADER: &'static str = "ix,iy,v";
    fn to_line(&self) -> String {
        format!("{},{},{}\n", self.ix, self.iy, self.v)
    }
    fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split(',').collect();
        let [ix, iy, v] = f[..] else { return None };
        Some(Self {
            ix: ix.parse().ok()?,
            iy: iy.parse().ok()?,
            v: v.parse().ok()?,
        })
    }
    fn index(&self) -> (usize, usize) {
        (self.ix, self.iy)
    }
    fn same(&self, other: &Self) -> bool {
        self.index() == other.index() && same_f64(self.v, other.v)
    }
}

impl JobMeta for Squares {
    fn kind(&self) -> &'static str {
        "squares"
    }
}

impl GridMeta for Squares {
    type Row = Value;
    const TABLE: &'static str = "squares.csv";
    fn points(&self) -> usize {
        self.nx.saturating_mul(self.ny)
    }
    fn nx(&self) -> usize {
        self.nx
    }
}

fn meta(input: &str) -> Squares {
    Squares {
        input: input.into(),
        nx: 4,
        ny: 3,
    }
}

/// The value of point `k` for `input` (different inputs, different values).
fn value(m: &Squares, k: usize) -> Value {
    Value {
        ix: k % m.nx,
        iy: k / m.nx,
        v: (k * k) as f64 + m.input.len() as f64,
    }
}

/// Computes `shard` of `m` under `workdir`, counting evaluations; fails after `fail_after`.
fn compute(
    workdir: &Path,
    m: &Squares,
    shard: Shard,
    calls: &AtomicUsize,
    fail_after: Option<usize>,
) -> anyhow::Result<grid::GridOutcome> {
    if let Some(done) = grid::finished(workdir, m)? {
        return Ok(done);
    }
    let job = Job::open(workdir, m.clone(), shard, "squares")?;
    job.compute_points(
        shard,
        "squares",
        |k| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if fail_after.is_some_and(|f| n >= f) {
                anyhow::bail!("killed");
            }
            Ok(value(m, k))
        },
        |r| format!("{}", r.v),
    )
}

#[test]
fn a_job_resumes_where_it_stopped_and_is_found_when_done() {
    let dir = tempfile::tempdir().unwrap();
    let m = meta("a");
    let calls = AtomicUsize::new(0);
    assert!(compute(dir.path(), &m, Shard::WHOLE, &calls, Some(5)).is_err());
    let out = compute(dir.path(), &m, Shard::WHOLE, &calls, None).unwrap();
    assert!(out.complete && out.points_done == 12);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        5 + 1 + 7,
        "only the missing points recomputed"
    );
    let rows: Vec<Value> = read_rows(&out.dir.join("squares.csv")).unwrap();
    assert_eq!(rows, (0..12).map(|k| value(&m, k)).collect::<Vec<_>>());
    let again = compute(dir.path(), &m, Shard::WHOLE, &calls, Some(0)).unwrap();
    assert!(again.complete, "a finished job is found, not computed");
    let mut timed: Vec<usize> = journal::read_timings(&out.dir)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    timed.sort_unstable();
    assert_eq!(
        timed,
        (0..12).collect::<Vec<_>>(),
        "both sittings timed each point they computed, the failed call none"
    );
}

#[test]
fn a_jobs_seconds_sum_every_sitting() {
    let dir = tempfile::tempdir().unwrap();
    let m = meta("a");
    let slow = |fail_after: Option<usize>| {
        let calls = AtomicUsize::new(0);
        let job = Job::open(dir.path(), m.clone(), Shard::WHOLE, "squares").unwrap();
        job.compute_points(
            Shard::WHOLE,
            "squares",
            |k| {
                if fail_after.is_some_and(|f| calls.fetch_add(1, Ordering::SeqCst) >= f) {
                    anyhow::bail!("killed");
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                Ok(value(&m, k))
            },
            |r| format!("{}", r.v),
        )
    };
    assert!(slow(Some(4)).is_err());
    let out = slow(None).unwrap();
    let seconds = journal::computed_seconds(&out.dir).unwrap();
    assert!(
        (0.24..2.0).contains(&seconds),
        "12 points of 20 ms over two sittings: {seconds} s"
    );
}

#[test]
fn another_input_is_another_job() {
    let dir = tempfile::tempdir().unwrap();
    let calls = AtomicUsize::new(0);
    let a = compute(dir.path(), &meta("a"), Shard::WHOLE, &calls, None).unwrap();
    let b = compute(dir.path(), &meta("bb"), Shard::WHOLE, &calls, None).unwrap();
    assert_ne!(a.dir, b.dir);
    assert_eq!(calls.load(Ordering::SeqCst), 24);
}

#[test]
fn two_processes_on_one_job_compute_each_point_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = meta("a");
    let calls = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| s.spawn(|| compute(dir.path(), &m, Shard::WHOLE, &calls, None).unwrap()))
            .collect();
        for w in workers {
            assert!(w.join().unwrap().complete);
        }
    });
    assert_eq!(calls.load(Ordering::SeqCst), 12);
}

#[test]
fn shards_merge_only_with_shards_of_the_same_job() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let m = meta("a");
    let calls = AtomicUsize::new(0);
    let first = compute(a.path(), &m, "1/2".parse().unwrap(), &calls, None).unwrap();
    assert!(!first.complete && first.points_done == 6);
    let second = compute(b.path(), &m, "2/2".parse().unwrap(), &calls, None).unwrap();
    // A shard of the same grid computed from another input (a replaced checkpoint).
    let other = compute(c.path(), &meta("b"), "2/2".parse().unwrap(), &calls, None).unwrap();
    let refused = grid::merge::<Squares>(&first.dir, &[other.dir]).unwrap_err();
    assert!(
        format!("{refused:#}").contains("refusing to merge"),
        "{refused:#}"
    );
    let merged = grid::merge::<Squares>(&first.dir, std::slice::from_ref(&second.dir)).unwrap();
    assert!(merged.complete);
    assert_eq!(
        journal::read_timings(&first.dir).unwrap().len(),
        12,
        "the merged shard's timings come with its points"
    );
    let rows = grid::read_points::<Squares>(&first.dir).unwrap();
    assert_eq!(rows, (0..12).map(|k| value(&m, k)).collect::<Vec<_>>());
}

#[test]
fn disagreeing_points_and_points_off_the_grid_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = meta("a");
    let job = Job::open(dir.path(), m.clone(), Shard::WHOLE, "t").unwrap();
    let row = |ix, v| Value { ix, iy: 0, v };
    Journal::open(&journal::journal_path(job.dir(), 1, 2), Value::HEADER)
        .unwrap()
        .append(&row(0, 1.0))
        .unwrap();
    Journal::open(&journal::journal_path(job.dir(), 2, 2), Value::HEADER)
        .unwrap()
        .append(&row(0, 2.0))
        .unwrap();
    assert!(grid::read_points::<Squares>(job.dir()).is_err());
    std::fs::remove_file(journal::journal_path(job.dir(), 2, 2)).unwrap();
    Journal::open(&journal::journal_path(job.dir(), 2, 2), Value::HEADER)
        .unwrap()
        .append(&row(7, 2.0))
        .unwrap();
    let err = grid::read_points::<Squares>(job.dir()).unwrap_err();
    assert!(format!("{err:#}").contains("outside the grid"), "{err:#}");
}

#[test]
fn torn_lines_are_dropped_and_cut_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal::journal_path(dir.path(), 1, 1);
    let mut j = Journal::open(&path, Value::HEADER).unwrap();
    j.append(&Value {
        ix: 0,
        iy: 0,
        v: 1.5,
    })
    .unwrap();
    j.append(&Value {
        ix: 1,
        iy: 0,
        v: f64::NAN,
    })
    .unwrap();
    drop(j);
    // A kill in the middle of a line.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"2,0,0.7").unwrap();
    drop(f);
    assert_eq!(read_rows::<Value>(&path).unwrap().len(), 2);
    let mut j = Journal::open(&path, Value::HEADER).unwrap();
    j.append(&Value {
        ix: 2,
        iy: 0,
        v: 0.5,
    })
    .unwrap();
    let rows = read_rows::<Value>(&path).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows[1].v.is_nan());
    assert_eq!(rows[2].v, 0.5);
}

#[test]
fn grids_beyond_the_limit_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let calls = AtomicUsize::new(0);
    for (nx, ny) in [(1 << 32, 1 << 32), (1_000_000, 1_000_000), (0, 3)] {
        let m = Squares {
            input: "a".into(),
            nx,
            ny,
        };
        assert!(m.points() == 0 || m.points() > MAX_POINTS);
        let err = compute(dir.path(), &m, Shard::WHOLE, &calls, None).unwrap_err();
        assert!(format!("{err:#}").contains("between 1 and"), "{err:#}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn edited_metas_and_renamed_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = meta("a");
    let calls = AtomicUsize::new(0);
    let out = compute(dir.path(), &m, Shard::WHOLE, &calls, None).unwrap();
    let renamed = dir.path().join("squares-000000000000");
    std::fs::rename(&out.dir, &renamed).unwrap();
    assert!(read_meta::<Squares>(&renamed).is_err());
    std::fs::rename(&renamed, &out.dir).unwrap();
    assert!(read_meta::<Squares>(&out.dir).is_ok());
    let text = std::fs::read_to_string(out.dir.join(META_FILE)).unwrap();
    std::fs::write(out.dir.join(META_FILE), text.replace("nx = 4", "nx = 6")).unwrap();
    assert!(compute(dir.path(), &m, Shard::WHOLE, &calls, None).is_err());
}

#[test]
fn temporaries_of_dead_writers_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let m = meta("a");
    let job_dir = Job::dir_in(dir.path(), &m);
    std::fs::create_dir_all(&job_dir).unwrap();
    // pid_max is at most 2^22: no process has this id.
    let host = landscape_core::atomic::host();
    let dead = job_dir.join(format!(".squares.csv.tmp-{host}-999999999-0"));
    let alive = job_dir.join(format!(".squares.csv.tmp-{host}-{}-7", std::process::id()));
    std::fs::write(&dead, "half").unwrap();
    std::fs::write(&alive, "in flight").unwrap();
    let _job = Job::open(dir.path(), m, Shard::WHOLE, "t").unwrap();
    assert!(!dead.exists() && alive.exists());
}
