//! Grid points on disk. While a grid computes (a surface, an eigen-ratio map), each finished
//! point is appended to a journal (`points.<k>-of-<n>.csv`, one per shard) and flushed, so a
//! killed run loses at most the point in flight; a torn last line is cut off when the journal is
//! reopened. When every point is known, the final table (`surface.csv`, ...) is written
//! atomically, in grid order. Rows of any kind implement [`Row`].

use anyhow::{Context, Result, bail};
use landscape_core::atomic::write_atomic_with;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
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

/// An open journal.
pub struct Journal {
    file: File,
}

impl Journal {
    /// Opens or creates the journal at `path` with `header`, cutting a torn last line.
    pub fn open(path: &Path, header: &str) -> Result<Self> {
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
            file.write_all(format!("{header}\n").as_bytes())?;
        } else if keep < text.len() {
            file.set_len(keep as u64)?;
        }
        file.seek(SeekFrom::End(0))?;
        file.sync_data()?;
        Ok(Self { file })
    }

    /// Appends one row and flushes it.
    pub fn append<R: Row>(&mut self, row: &R) -> Result<()> {
        self.file.write_all(row.to_line().as_bytes())?;
        self.file.sync_data()?;
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

/// Every point in the `points.*.csv` journals of `dir`, keyed `iy * nx + ix`; refuses journals
/// that disagree about a point.
pub fn read_journals<R: Row>(dir: &Path, nx: usize) -> Result<BTreeMap<usize, R>> {
    let mut points = BTreeMap::new();
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
        for row in read_rows::<R>(&path)? {
            let (ix, iy) = row.index();
            let k = iy * nx + ix;
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

/// The header of surface journals and of `surface.csv`.
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

impl Row for PointRow {
    const HEADER: &'static str = HEADER;

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

    fn index(&self) -> (usize, usize) {
        (self.ix, self.iy)
    }

    fn same(&self, b: &Self) -> bool {
        let eq_opt = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => same_f64(x, y),
            (None, None) => true,
            _ => false,
        };
        self.ix == b.ix
            && self.iy == b.iy
            && same_f64(self.train_loss, b.train_loss)
            && same_f64(self.train_acc, b.train_acc)
            && eq_opt(self.test_loss, b.test_loss)
            && eq_opt(self.test_acc, b.test_acc)
    }
}

/// The points of a surface journal or `surface.csv`.
pub fn read_points(path: &Path) -> Result<Vec<PointRow>> {
    read_rows(path)
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
        let mut j = Journal::open(&path, HEADER).unwrap();
        j.append(&row(0, 1.5)).unwrap();
        j.append(&row(1, f64::NAN)).unwrap();
        drop(j);
        // A kill in the middle of a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"2,0,2,0,0.7").unwrap();
        drop(f);
        assert_eq!(read_rows::<PointRow>(&path).unwrap().len(), 2);
        let mut j = Journal::open(&path, HEADER).unwrap();
        j.append(&row(2, 0.5)).unwrap();
        let rows = read_rows::<PointRow>(&path).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows[1].train_loss.is_nan());
        assert_eq!(rows[2], row(2, 0.5));
    }

    #[test]
    fn disagreeing_journals_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        Journal::open(&journal_path(dir.path(), 1, 2), HEADER)
            .unwrap()
            .append(&row(0, 1.0))
            .unwrap();
        Journal::open(&journal_path(dir.path(), 2, 2), HEADER)
            .unwrap()
            .append(&row(0, 2.0))
            .unwrap();
        assert!(read_journals::<PointRow>(dir.path(), 5).is_err());
    }
}
