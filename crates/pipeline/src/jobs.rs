//! The jobs of a work directory as one registry: every kind of artifact directory by its id's
//! prefix, listed beside the training runs (`landscape runs`), and the one merge of grid
//! shards (`landscape merge`), chosen by kind.

use anyhow::{Result, bail};
use landscape_curvature::eigen_ratio::EigenRatioMeta;
use landscape_job::grid::{self as grid_job, GridMeta, GridOutcome, ShardProgress};
use landscape_job::lock::Lock;
use landscape_surface::surface::SurfaceMeta;
use landscape_train::{RunDir, RunState};
use std::path::{Path, PathBuf};

/// How a kind of job shows its progress and joins its shards.
enum Kind {
    /// Points of a grid: progress in points, shards merged.
    Grid {
        /// `(points known, points in all)`.
        progress: fn(&Path) -> Result<(usize, usize)>,
        /// [`grid_job::merge`] for the kind's meta.
        merge: fn(&Path, &[PathBuf]) -> Result<GridOutcome>,
        /// [`grid_job::shard_progress`] for the kind's meta.
        shards: fn(&Path) -> Result<Vec<ShardProgress>>,
    },
    /// One report, finished when its file is there.
    Report {
        /// The file.
        output: &'static str,
    },
}

/// Every kind of job directory, by the prefix of its id.
const KINDS: &[(&str, Kind)] = &[
    ("surface", grid::<SurfaceMeta>()),
    ("interp", grid::<SurfaceMeta>()),
    ("eigratio", grid::<EigenRatioMeta>()),
    (
        "hessian",
        Kind::Report {
            output: "hessian.toml",
        },
    ),
    (
        "sharpness",
        Kind::Report {
            output: "sharpness.csv",
        },
    ),
    ("trajectory", Kind::Report { output: "path.csv" }),
];

const fn grid<M: GridMeta>() -> Kind {
    Kind::Grid {
        progress: grid_progress::<M>,
        merge: grid_job::merge::<M>,
        shards: grid_job::shard_progress::<M>,
    }
}

fn grid_progress<M: GridMeta>(dir: &Path) -> Result<(usize, usize)> {
    let meta: M = landscape_job::job::read_meta(dir)?;
    Ok((grid_job::read_points::<M>(dir)?.len(), meta.points()))
}

fn kind_of(dir: &Path) -> Option<&'static Kind> {
    let name = dir.file_name()?.to_string_lossy().into_owned();
    let (prefix, _) = name.rsplit_once('-')?;
    KINDS.iter().find(|(p, _)| *p == prefix).map(|(_, k)| k)
}

/// Joins shard directories `others` into the grid job `into` (a surface, interpolation or
/// eigen-ratio map), refusing shards of another job.
pub fn merge(into: &Path, others: &[PathBuf]) -> Result<GridOutcome> {
    match kind_of(into) {
        Some(Kind::Grid { merge, .. }) => merge(into, others),
        _ => bail!(
            "{} is not a surface, interpolation or eigen-ratio directory",
            into.display()
        ),
    }
}

/// What `landscape status` prints for a grid job's directory (a surface, interpolation or
/// eigen-ratio map): each shard's points, and whether a process computes it now or it stopped
/// (rerunning the shard, or submitting again, resumes it).
pub fn shard_status(dir: &Path) -> Result<String> {
    let Some(Kind::Grid {
        shards, progress, ..
    }) = kind_of(dir)
    else {
        bail!(
            "{}: neither a submission (landscape submit) nor a surface, interpolation or eigen-ratio directory",
            dir.display()
        );
    };
    let (done, total) = progress(dir)?;
    let mut out = format!("{}: {done}/{total} points\n", dir.display());
    for p in shards(dir)? {
        let state = match (&p.holder, p.done) {
            (_, n) if n >= p.share => "done".to_string(),
            (Some(holder), _) => format!("running ({holder})"),
            (None, 0) => "not started".to_string(),
            (None, _) => "stopped: run this shard again to resume".to_string(),
        };
        out += &format!(
            "  shard {}  {}/{} points  {state}\n",
            p.shard, p.done, p.share
        );
    }
    Ok(out)
}

/// One line of `landscape runs`.
#[derive(Clone, Debug, PartialEq)]
pub struct JobLine {
    /// The directory's name.
    pub id: String,
    /// `run`, `surface`, `hessian`, ...
    pub kind: String,
    /// `complete`, `diverged`, `running (pid N)`, `stopped` (killed; rerunning resumes),
    /// `partial` (shards missing), `new`.
    pub state: String,
    /// How far: `12/160 epochs`, `120/625 points`.
    pub progress: String,
    /// What it is about: a run's experiment, data and sweep; the run a job is of.
    pub about: String,
    /// Final test accuracy (runs).
    pub test_acc: Option<f64>,
}

/// Every run and job under `workdir`, sorted by id.
pub fn list(workdir: &Path) -> Result<Vec<JobLine>> {
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(workdir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect(),
        Err(_) => Vec::new(),
    };
    dirs.sort();
    let mut lines = Vec::new();
    for dir in dirs {
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let holder = Lock::holder(&dir)?;
        let live = holder.map(|h| format!("running (pid {})", h.pid));
        let run = RunDir::new(workdir, &id);
        if run.record_path().exists() {
            lines.push(run_line(&run, id, live)?);
            continue;
        }
        let Some(kind) = kind_of(&dir) else { continue };
        let (finished, progress) = match kind {
            Kind::Grid { progress, .. } => {
                let (done, total) = progress(&dir)?;
                (done == total, format!("{done}/{total} points"))
            }
            Kind::Report { output } => (dir.join(output).exists(), String::new()),
        };
        let state = match (finished, live) {
            (true, _) => "complete".to_string(),
            (false, Some(live)) => live,
            (false, None) if matches!(kind, Kind::Grid { .. }) => "partial".to_string(),
            (false, None) => "stopped".to_string(),
        };
        lines.push(JobLine {
            kind: id.rsplit_once('-').map_or("", |(k, _)| k).to_string(),
            id,
            state,
            progress,
            about: about_job(&dir),
            test_acc: None,
        });
    }
    Ok(lines)
}

fn run_line(run: &RunDir, id: String, live: Option<String>) -> Result<JobLine> {
    let record = run.read_record()?;
    let status = run.read_status()?;
    let data = match record.substituted_for {
        Some(named) => format!("{} (for {named})", record.config.data.name),
        None => record.config.data.name.to_string(),
    };
    let sweep: Vec<String> = record
        .sweep
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let state = match (&status, live) {
        (_, Some(live)) => live,
        (None, None) => "new".into(),
        (Some(s), None) if s.state == RunState::Running => "stopped".into(),
        (Some(s), None) => format!("{:?}", s.state).to_lowercase(),
    };
    Ok(JobLine {
        id,
        kind: "run".into(),
        state,
        progress: match &record.config.imported {
            Some(imported) => format!("imported {}", imported.format),
            None => format!(
                "{}/{} epochs",
                status.as_ref().map_or(0, |s| s.epochs_done),
                record.config.train.epochs
            ),
        },
        about: format!("{} {data} {}", record.experiment, sweep.join(" ")),
        test_acc: status.and_then(|s| s.test_acc),
    })
}

/// The run a job is of, from its `meta.toml` (`base.run`, or `run`).
fn about_job(dir: &Path) -> String {
    let Ok(meta) = landscape_job::toml_file::read_toml::<toml::Value>(&dir.join("meta.toml"))
    else {
        return String::new();
    };
    let base = meta.get("base").unwrap_or(&meta);
    let run = base.get("run").and_then(|v| v.as_str()).unwrap_or("");
    match base.get("epoch").and_then(|v| v.as_integer()) {
        Some(epoch) => format!("{run}@{epoch}"),
        None => run.to_string(),
    }
}
