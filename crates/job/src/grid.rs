//! Jobs made of points (surfaces, eigen-ratio maps): the points of a shard computed one by one
//! into that shard's journal, resumed after a kill, and the final table written when every
//! point of every shard is known; [`merge`] joins shards computed elsewhere after checking that
//! they belong to the same job.

use crate::job::{Job, JobMeta, read_meta};
use crate::journal::{self, Journal, Row};
use crate::lock::Lock;
use crate::shard::Shard;
use anyhow::{Result, bail};
use landscape_core::hash::content_hash;
use landscape_core::progress::Progress;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The most points a job may have: 10 million (a 3,162 x 3,162 grid). Larger requests are
/// refused before anything is allocated.
pub const MAX_POINTS: usize = 10_000_000;

/// A job whose work is a list of points.
pub trait GridMeta: JobMeta {
    /// One point's record.
    type Row: Row;
    /// The final table's file name (`surface.csv`, `ratio.csv`).
    const TABLE: &'static str;
    /// Points in all.
    fn points(&self) -> usize;
    /// Points per row: a record `(ix, iy)` is point `iy * nx + ix`.
    fn nx(&self) -> usize;
}

/// Where a grid job stands.
#[derive(Clone, Debug)]
pub struct GridOutcome {
    /// Its directory.
    pub dir: PathBuf,
    /// Points known (all shards).
    pub points_done: usize,
    /// Whether every point is known and the final table written.
    pub complete: bool,
    /// The final table's file name.
    pub table: &'static str,
}

impl GridOutcome {
    /// The line a command prints: the table's path, or how far the shards have come.
    pub fn summary(&self) -> String {
        if self.complete {
            self.dir.join(self.table).display().to_string()
        } else {
            format!(
                "{}: {} points so far; run the other shards, then `landscape merge`",
                self.dir.display(),
                self.points_done
            )
        }
    }
}

/// Refuses grids of no points or of more than [`MAX_POINTS`].
pub fn check_size<M: GridMeta>(meta: &M) -> Result<()> {
    let n = meta.points();
    if n == 0 || n > MAX_POINTS {
        bail!(
            "{}: a grid of {n} points; it must have between 1 and {MAX_POINTS}",
            meta.kind()
        );
    }
    Ok(())
}

/// The outcome of `meta`'s job when its table is written (no waiting, no computing).
pub fn finished<M: GridMeta>(workdir: &Path, meta: &M) -> Result<Option<GridOutcome>> {
    Ok(
        Job::finished(workdir, meta, M::TABLE)?.map(|table| GridOutcome {
            dir: table
                .parent()
                .expect("a table is in its job's directory")
                .into(),
            points_done: meta.points(),
            complete: true,
            table: M::TABLE,
        }),
    )
}

impl<M: GridMeta> Job<M> {
    /// Computes with `point` every point of `shard` that no journal holds yet, appending each
    /// to the shard's journal as it finishes (`describe` says what it found, for the progress
    /// line), then writes the table if every point of the job is known.
    pub fn compute_points(
        &self,
        shard: Shard,
        label: &str,
        mut point: impl FnMut(usize) -> Result<M::Row>,
        describe: impl Fn(&M::Row) -> String,
    ) -> Result<GridOutcome> {
        let meta = self.meta();
        check_size(meta)?;
        let total = meta.points();
        let mut points = journal::read_journals::<M::Row>(self.dir(), meta.nx(), total)?;
        let mine = shard.share(total);
        let known = points.keys().filter(|&&k| shard.owns(k)).count();
        if known < mine {
            let progress = Progress::new(label, mine as u64, known as u64);
            let mut journal = Journal::open(
                &journal::journal_path(self.dir(), shard.index, shard.count),
                <M::Row as Row>::HEADER,
            )?;
            let mut timing = Journal::open(
                &journal::timing_path(self.dir(), shard.index, shard.count),
                journal::TIMING_HEADER,
            )?;
            let mut done = known;
            for k in shard.points(total) {
                if points.contains_key(&k) {
                    continue;
                }
                let started = Instant::now();
                let row = point(k)?;
                journal.append(&row)?;
                timing.append_timing(k, started.elapsed().as_secs_f64())?;
                done += 1;
                progress.update(done as u64, describe(&row));
                points.insert(k, row);
            }
            progress.finish(format!("{mine} points"));
            // Other shards may have finished meanwhile: read everything again before deciding.
            points = journal::read_journals(self.dir(), meta.nx(), total)?;
        }
        self.conclude(&points)
    }

    /// Writes the table when `points` covers the grid.
    fn conclude(&self, points: &BTreeMap<usize, M::Row>) -> Result<GridOutcome> {
        let complete = points.len() == self.meta().points();
        if complete {
            journal::write_table(&self.path(M::TABLE), points)?;
        }
        Ok(GridOutcome {
            dir: self.dir().to_path_buf(),
            points_done: points.len(),
            complete,
            table: M::TABLE,
        })
    }
}

/// The points of the grid job in `dir`: its table when finished, else its journals so far.
pub fn read_points<M: GridMeta>(dir: &Path) -> Result<Vec<M::Row>> {
    let table = dir.join(M::TABLE);
    if table.exists() {
        return journal::read_rows(&table);
    }
    let meta: M = read_meta(dir)?;
    Ok(
        journal::read_journals::<M::Row>(dir, meta.nx(), meta.points())?
            .into_values()
            .collect(),
    )
}

/// How far one shard of a grid job has come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardProgress {
    /// The shard.
    pub shard: Shard,
    /// Points in its journal.
    pub done: usize,
    /// Its share of the grid's points.
    pub share: usize,
    /// The process computing it now, if any.
    pub holder: Option<crate::lock::Holder>,
}

/// Every shard of the grid job in `dir`, for each shard count that a journal or a lock shows
/// (shards not begun included), in order.
pub fn shard_progress<M: GridMeta>(dir: &Path) -> Result<Vec<ShardProgress>> {
    let meta: M = read_meta(dir)?;
    let total = meta.points();
    let mut shards: Vec<Shard> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let part = name
                .strip_prefix("points.")
                .and_then(|n| n.strip_suffix(".csv"))
                .or_else(|| name.strip_prefix(".lock."))?;
            part.replace("-of-", "/").parse::<Shard>().ok()
        })
        .collect();
    // Every shard of each way of cutting the grid that has begun, started or not.
    let mut counts: Vec<usize> = shards.iter().map(|s| s.count).collect();
    counts.sort();
    counts.dedup();
    shards = counts
        .into_iter()
        .flat_map(|count| (1..=count).map(move |index| Shard { index, count }))
        .collect();
    let progress = shards
        .into_iter()
        .map(|shard| {
            let journal = journal::journal_path(dir, shard.index, shard.count);
            let done = if journal.exists() {
                journal::read_rows::<M::Row>(&journal)?.len()
            } else {
                0
            };
            Ok(ShardProgress {
                shard,
                done,
                share: shard.share(total),
                holder: Lock::holder_of_named(
                    dir,
                    &format!(
                        "{}.{}-of-{}",
                        crate::lock::LOCK_FILE,
                        shard.index,
                        shard.count
                    ),
                )?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(progress)
}

/// Joins the points of `others` (shards of the same job computed elsewhere) into the job in
/// `into`, refusing directories of another job (other checkpoints, directions, data or
/// settings) and points that disagree; writes the table when the grid is complete.
pub fn merge<M: GridMeta>(into: &Path, others: &[PathBuf]) -> Result<GridOutcome> {
    let meta: M = read_meta(into)?;
    let workdir = into.parent().unwrap_or(Path::new("."));
    let job = Job::open(
        workdir,
        meta.clone(),
        Shard::WHOLE,
        &format!("merge {}", meta.id()),
    )?;
    let (nx, total) = (meta.nx(), meta.points());
    let mut points = journal::read_journals::<M::Row>(into, nx, total)?;
    for other in others {
        let theirs: M = read_meta(other)?;
        if theirs != meta {
            bail!(
                "{} holds job {}, not {} like {}: refusing to merge",
                other.display(),
                theirs.id(),
                meta.id(),
                into.display()
            );
        }
        // A shard still computing elsewhere in this file system would be read half-way.
        if Lock::holder(other)?.is_some() {
            bail!(
                "{} is still being computed: merge it when it is done",
                other.display()
            );
        }
        let mut new_rows = Vec::new();
        for (k, row) in journal::read_journals::<M::Row>(other, nx, total)? {
            match points.get(&k) {
                Some(mine) if !mine.same(&row) => {
                    let (ix, iy) = row.index();
                    bail!(
                        "{}: point ({ix}, {iy}) disagrees with {}: refusing to merge",
                        other.display(),
                        into.display()
                    )
                }
                Some(_) => {}
                None => new_rows.push((k, row)),
            }
        }
        if !new_rows.is_empty() {
            let tag = content_hash(&other.canonicalize()?.to_string_lossy())
                .short()
                .to_string();
            let mut journal = Journal::open(
                &into.join(format!("points.merged-{tag}.csv")),
                <M::Row as Row>::HEADER,
            )?;
            let mut timing = Journal::open(
                &into.join(format!("seconds.merged-{tag}.csv")),
                journal::TIMING_HEADER,
            )?;
            let mut seconds = BTreeMap::<usize, f64>::new();
            for (k, s) in journal::read_timings(other)? {
                *seconds.entry(k).or_default() += s;
            }
            for (k, row) in new_rows {
                journal.append(&row)?;
                if let Some(s) = seconds.get(&k) {
                    timing.append_timing(k, *s)?;
                }
                points.insert(k, row);
            }
        }
    }
    job.conclude(&points)
}
