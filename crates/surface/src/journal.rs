//! Surface points on disk. While a surface computes, each finished point is appended to a
//! journal (`points.<k>-of-<n>.csv`, one per shard) and flushed, so a killed run loses at most
//! the point in flight; a torn last line is cut off when the journal is reopened. When every
//! point is known, `surface.csv` is written atomically, sorted by grid index.

use anyhow::{Context, Result, bail};
use landscape_core::atomic::write_atomic_with;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The header of journals and of `surface.csv`.
pub const HEADER: &str = "ix,iy,x,y,train_loss,train_acc,test_loss,test_acc,negative_var";

/// The measurements at one grid point.
#[derive(Clone, Debug, PartialEq)]
pub struct PointRow {
    /// Index along x.
    pub ix: usize,
    /// Index along y (0 for 1-D).
    pub iy: usize,
    /// Coordinate along the first direction.
    pub x: f64,
    /// Coordinate along the second direction (0 for 1-D).
    pub y: f64,
    /// Mean training loss (NaN or inf recorded as such).
    pub train_loss: f64,
    /// Training accuracy, percent.
    pub train_acc: f64,
    /// Mean test loss, when measured.
    pub test_loss: Option<f64>,
    /// Test accuracy, percent, when measured.
    pub test_acc: Option<f64>,
    /// BatchNorm running-variance entries below zero at this point (extrapolated statistics),
    /// clamped to zero for the evaluation.
    pub negative_var: u64,
}

impl PointRow {
    fn to_line(&self) -> String {
        let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        format!(
            "{},{},{},{},{},{},{},{},{}\n",
            self.ix,
            self.iy,
            self.x,
            self.y,
            self.train_loss,
            self.train_acc,
            opt(self.test_loss),
            opt(self.test_acc),
            self.negative_var
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 9 {
            return None;
        }
        let opt = |s: &str| {
            if s.is_empty() {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        };
        Some(Self {
            ix: f[0].parse().ok()?,
            iy: f[1].parse().ok()?,
            x: f[2].parse().ok()?,
            y: f[3].parse().ok()?,
            train_loss: f[4].parse().ok()?,
            train_acc: f[5].parse().ok()?,
            test_loss: opt(f[6])?,
            test_acc: opt(f[7])?,
            negative_var: f[8].parse().ok()?,
        })
    }
}

/// The journal file of a shard.
pub fn journal_path(dir: &Path, index: usize, count: usize) -> PathBuf {
    dir.join(format!("points.{index}-of-{count}.csv"))
}

/// An open journal, ready to append.
pub struct Journal {
    file: File,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, cutting off a torn last line.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
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
            file.seek(SeekFrom::Start(0))?;
            file.write_all(format!("{HEADER}\n").as_bytes())?;
        } else if keep < text.len() {
            file.set_len(keep as u64)?;
        }
        file.seek(SeekFrom::End(0))?;
        file.sync_data()?;
        Ok(Self { file })
    }

    /// Appends one point and flushes it to disk.
    pub fn append(&mut self, row: &PointRow) -> Result<()> {
        self.file.write_all(row.to_line().as_bytes())?;
        self.file.sync_data()?;
        Ok(())
    }
}

/// Reads rows from a journal or a `surface.csv`, skipping a torn last line.
pub fn read_rows(path: &Path) -> Result<Vec<PointRow>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.split_inclusive('\n');
    match lines.next() {
        Some(h) if h.trim_end() == HEADER => {}
        Some(h) => bail!(
            "{}: header is `{}`, expected `{HEADER}`",
            path.display(),
            h.trim_end()
        ),
        None => return Ok(Vec::new()),
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        if !line.ends_with('\n') {
            break; // a torn last line from a kill: the point is computed again
        }
        let row = PointRow::parse(line.trim_end()).with_context(|| {
            format!(
                "{}: line {} is not a surface point: `{}`",
                path.display(),
                i + 2,
                line.trim_end()
            )
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Every point recorded by any journal in `dir`, keyed by grid index `iy * nx + ix`. Two
/// journals that disagree about a point are an error.
pub fn read_journals(dir: &Path, nx: usize) -> Result<BTreeMap<usize, PointRow>> {
    let mut points: BTreeMap<usize, PointRow> = BTreeMap::new();
    if !dir.exists() {
        return Ok(points);
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with("points.") && n.to_string_lossy().ends_with(".csv")
            })
        })
        .collect();
    paths.sort();
    for path in paths {
        for row in read_rows(&path)? {
            let k = row.iy * nx + row.ix;
            if let Some(old) = points.get(&k) {
                if !same_point(old, &row) {
                    bail!(
                        "{}: point ({}, {}) disagrees with another journal: {:?} vs {:?}",
                        path.display(),
                        row.ix,
                        row.iy,
                        old,
                        row
                    );
                }
            }
            points.insert(k, row);
        }
    }
    Ok(points)
}

/// Whether two records of a point agree (NaN equals NaN).
pub fn same_point(a: &PointRow, b: &PointRow) -> bool {
    let eq = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan());
    let eq_opt = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => eq(x, y),
        (None, None) => true,
        _ => false,
    };
    a.ix == b.ix
        && a.iy == b.iy
        && eq(a.train_loss, b.train_loss)
        && eq(a.train_acc, b.train_acc)
        && eq_opt(a.test_loss, b.test_loss)
        && eq_opt(a.test_acc, b.test_acc)
}

/// Writes `surface.csv` atomically, rows in grid order.
pub fn write_surface(path: &Path, points: &BTreeMap<usize, PointRow>) -> Result<()> {
    write_atomic_with(path, |w| {
        writeln!(w, "{HEADER}")?;
        for row in points.values() {
            w.write_all(row.to_line().as_bytes())?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ix: usize, loss: f64) -> PointRow {
        PointRow {
            ix,
            iy: 0,
            x: ix as f64,
            y: 0.0,
            train_loss: loss,
            train_acc: 50.0,
            test_loss: None,
            test_acc: None,
            negative_var: 0,
        }
    }

    #[test]
    fn torn_lines_are_dropped_and_cut_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_path(dir.path(), 1, 1);
        let mut j = Journal::open(&path).unwrap();
        j.append(&row(0, 1.5)).unwrap();
        j.append(&row(1, f64::NAN)).unwrap();
        drop(j);
        // A kill in the middle of a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"2,0,2,0,0.7").unwrap();
        drop(f);
        assert_eq!(read_rows(&path).unwrap().len(), 2);
        let mut j = Journal::open(&path).unwrap();
        j.append(&row(2, 0.5)).unwrap();
        let rows = read_rows(&path).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows[1].train_loss.is_nan());
        assert_eq!(rows[2], row(2, 0.5));
    }

    #[test]
    fn disagreeing_journals_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        Journal::open(&journal_path(dir.path(), 1, 2))
            .unwrap()
            .append(&row(0, 1.0))
            .unwrap();
        Journal::open(&journal_path(dir.path(), 2, 2))
            .unwrap()
            .append(&row(0, 2.0))
            .unwrap();
        assert!(read_journals(dir.path(), 5).is_err());
    }
}
