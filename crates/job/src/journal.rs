//! Points on disk. While a job computes (a surface, an eigen-ratio map), each finished point is
//! appended to a journal (`points.<k>-of-<n>.csv`, one per shard) and flushed, so a killed run
//! loses at most the point in flight; a torn last line is cut off when the journal is reopened.
//! When every point is known, the final table (`surface.csv`, ...) is written atomically, in
//! grid order. Rows of any kind implement [`Row`]. Beside each journal, a timing journal
//! (`seconds.<k>-of-<n>.csv`) holds the seconds each point took, so the time a job cost is
//! known over every sitting and shard ([`computed_seconds`]).

use anyhow::{Context, Result, bail};
use landscape_core::atomic::write_atomic_with;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// One row of a grid table.
pub trait Row: Sized + Clone {
    /// The CSV header.
    const HEADER: &'static str;
    /// The row as one CSV line with its newline.
    fn to_line(&self) -> String;
    /// Parses a line (without its newline); `None` for a malformed one.
    fn parse(line: &str) -> Option<Self>;
    /// `(ix, iy)`.
    fn index(&self) -> (usize, usize);
    /// Whether two records of a point agree (NaN equal to NaN).
    fn same(&self, other: &Self) -> bool;
}

/// The journal of shard `index` of `count`.
pub fn journal_path(dir: &Path, index: usize, count: usize) -> PathBuf {
    dir.join(format!("points.{index}-of-{count}.csv"))
}

/// The timing journal of shard `index` of `count`: one `point,seconds` line per point computed.
pub fn timing_path(dir: &Path, index: usize, count: usize) -> PathBuf {
    dir.join(format!("seconds.{index}-of-{count}.csv"))
}

/// The header of a timing journal.
pub const TIMING_HEADER: &str = "point,seconds";

/// An open journal.
pub struct Journal {
    file: File,
}

impl Journal {
    /// Opens or creates the journal at `path` with `header`, cutting a torn last line.
    pub fn open(path: &Path, header: &str) -> Result<Self> {
        // Append mode: every write lands at the end, whatever else holds the file open.
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .with_context(|| format!("reading {}", path.display()))?;
        let keep = if text.is_empty() {
            0
        } else {
            text.rfind('\n').map_or(0, |i| i + 1)
        };
        if keep == 0 {
            file.set_len(0)?;
            file.write_all(format!("{header}\n").as_bytes())?;
        } else if keep < text.len() {
            file.set_len(keep as u64)?;
        }
        file.sync_data()?;
        Ok(Self { file })
    }

    /// Appends one row and flushes it.
    pub fn append<R: Row>(&mut self, row: &R) -> Result<()> {
        self.file.write_all(row.to_line().as_bytes())?;
        self.file.sync_data()?;
        Ok(())
    }

    /// Appends one timing line (point `k` took `seconds`). It reaches the file at once, so a
    /// killed process keeps it, but is not synced to disk: a point's time is a reading, and a
    /// second sync per point would double what the journal costs.
    pub fn append_timing(&mut self, k: usize, seconds: f64) -> Result<()> {
        self.file
            .write_all(format!("{k},{seconds:.6}\n").as_bytes())?;
        Ok(())
    }
}

/// The rows of a journal or table (a torn last line skipped).
pub fn read_rows<R: Row>(path: &Path) -> Result<Vec<R>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.split_inclusive('\n');
    match lines.next() {
        Some(h) if h.trim_end() == R::HEADER => {}
        Some(h) => bail!(
            "{}: header is `{}`, expected `{}`",
            path.display(),
            h.trim_end(),
            R::HEADER
        ),
        None => return Ok(Vec::new()),
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        if !line.ends_with('\n') {
            break;
        }
        match R::parse(line.trim_end()) {
            Some(row) => rows.push(row),
            None => bail!(
                "{}: line {} is malformed: `{}`",
                path.display(),
                i + 2,
                line.trim_end()
            ),
        }
    }
    Ok(rows)
}

/// The `prefix*.csv` files of `dir`, sorted (none when `dir` does not exist).
fn journals(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(prefix) && n.ends_with(".csv")
            })
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// The seconds each point took, per point, from the timing journals of `dir` (a point computed
/// more than once counts each time it was).
pub fn read_timings(dir: &Path) -> Result<Vec<(usize, f64)>> {
    let mut timings = Vec::new();
    for path in journals(dir, "seconds.")? {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        // Complete lines after the header; a torn last line is a point whose time was lost.
        for (i, line) in text.split_inclusive('\n').enumerate().skip(1) {
            if !line.ends_with('\n') {
                break;
            }
            let parsed = line
                .trim_end()
                .split_once(',')
                .and_then(|(k, s)| Some((k.parse().ok()?, s.parse().ok()?)));
            match parsed {
                Some(timing) => timings.push(timing),
                None => bail!(
                    "{}: line {} is malformed: `{}`",
                    path.display(),
                    i + 1,
                    line.trim_end()
                ),
            }
        }
    }
    Ok(timings)
}

/// Seconds spent computing the points of the job in `dir`, over every sitting and shard (0 for
/// a job computed before timings were kept).
pub fn computed_seconds(dir: &Path) -> Result<f64> {
    Ok(read_timings(dir)?.iter().map(|(_, s)| s).sum())
}

/// Every point in the `points.*.csv` journals of `dir`, keyed `iy * nx + ix`; refuses journals
/// that disagree about a point or hold points outside the `total` points of the grid.
pub fn read_journals<R: Row>(dir: &Path, nx: usize, total: usize) -> Result<BTreeMap<usize, R>> {
    let mut points = BTreeMap::new();
    for path in journals(dir, "points.")? {
        for row in read_rows::<R>(&path)? {
            let (ix, iy) = row.index();
            let k = iy * nx + ix;
            if ix >= nx || k >= total {
                bail!(
                    "{}: point ({ix}, {iy}) is outside the grid of {total} points",
                    path.display()
                );
            }
            if let Some(old) = points.get(&k)
                && !row.same(old)
            {
                bail!(
                    "{}: point ({ix}, {iy}) disagrees with another journal",
                    path.display()
                );
            }
            points.insert(k, row);
        }
    }
    Ok(points)
}

/// Writes the final table atomically, rows in grid order.
pub fn write_table<R: Row>(path: &Path, points: &BTreeMap<usize, R>) -> Result<()> {
    write_atomic_with(path, |w| {
        writeln!(w, "{}", R::HEADER)?;
        for row in points.values() {
            w.write_all(row.to_line().as_bytes())?;
        }
        Ok(())
    })
}

/// Float equality for records: NaN equals NaN.
pub fn same_f64(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}
