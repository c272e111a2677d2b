//! `landscape diff`: compares two result tables, or two result folders table by table, and
//! reports every cell that differs beyond a tolerance (numbers: `|a - b| <= atol + rtol * |b|`;
//! text: exactly; NaN equals NaN).

use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How close two numbers must be to count as the same.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self {
            rtol: 1e-4,
            atol: 1e-8,
        }
    }
}

impl Tolerance {
    fn same(&self, a: &str, b: &str) -> bool {
        match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
            (Ok(x), Ok(y)) => {
                (x.is_nan() && y.is_nan())
                    || x == y
                    || (x - y).abs() <= self.atol + self.rtol * y.abs()
            }
            _ => a.trim() == b.trim(),
        }
    }
}

/// One difference.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The table (relative path within the folders).
    pub table: String,
    /// Row number (1 = first data row) or `-` for a table-level difference.
    pub row: String,
    /// Column name, or what is different about the table.
    pub column: String,
    /// Value in the first.
    pub a: String,
    /// Value in the second.
    pub b: String,
}

/// Every difference between `a` and `b` (two CSV files, or two folders of them).
pub fn diff(a: &Path, b: &Path, tol: Tolerance) -> Result<Vec<Change>> {
    match (a.is_dir(), b.is_dir()) {
        (true, true) => {
            let (ta, tb) = (tables(a)?, tables(b)?);
            let mut changes = Vec::new();
            for name in ta.union(&tb) {
                match (ta.contains(name), tb.contains(name)) {
                    (true, true) => {
                        changes.extend(diff_tables(&a.join(name), &b.join(name), name, tol)?)
                    }
                    (in_a, _) => changes.push(Change {
                        table: name.clone(),
                        row: "-".into(),
                        column: "(file)".into(),
                        a: if in_a { "present" } else { "missing" }.into(),
                        b: if in_a { "missing" } else { "present" }.into(),
                    }),
                }
            }
            Ok(changes)
        }
        (false, false) => {
            let name = a
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            diff_tables(a, b, &name, tol)
        }
        _ => bail!(
            "cannot compare a folder with a file: {} and {}",
            a.display(),
            b.display()
        ),
    }
}

/// The CSV files under `dir`, as paths relative to it.
fn tables(dir: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "csv") {
                out.insert(
                    path.strip_prefix(dir)
                        .expect("under dir")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    Ok(out)
}

fn read(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let header = reader
        .headers()
        .with_context(|| format!("{}: no header", path.display()))?
        .iter()
        .map(String::from)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.map(|r| r.iter().map(String::from).collect()))
        .collect::<std::result::Result<Vec<Vec<String>>, _>>()
        .with_context(|| format!("{}: not a CSV table", path.display()))?;
    Ok((header, rows))
}

fn diff_tables(a: &Path, b: &Path, name: &str, tol: Tolerance) -> Result<Vec<Change>> {
    let (ha, ra) = read(a)?;
    let (hb, rb) = read(b)?;
    let mut changes = Vec::new();
    let table_change = |column: &str, x: String, y: String| Change {
        table: name.into(),
        row: "-".into(),
        column: column.into(),
        a: x,
        b: y,
    };
    if ha != hb {
        changes.push(table_change("(columns)", ha.join(","), hb.join(",")));
        return Ok(changes);
    }
    if ra.len() != rb.len() {
        changes.push(table_change(
            "(rows)",
            ra.len().to_string(),
            rb.len().to_string(),
        ));
    }
    for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
        for (c, column) in ha.iter().enumerate() {
            let (va, vb) = (
                x.get(c).cloned().unwrap_or_default(),
                y.get(c).cloned().unwrap_or_default(),
            );
            if !tol.same(&va, &vb) {
                changes.push(Change {
                    table: name.into(),
                    row: (i + 1).to_string(),
                    column: column.clone(),
                    a: va,
                    b: vb,
                });
            }
        }
    }
    Ok(changes)
}

/// The changes as an aligned text table.
pub fn render(changes: &[Change]) -> String {
    let header = ["table", "row", "column", "a", "b"];
    let rows: Vec<[&str; 5]> = changes
        .iter()
        .map(|c| [c.table.as_str(), &c.row, &c.column, &c.a, &c.b])
        .collect();
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_within_tolerance_are_equal_others_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::create_dir_all(b.join("sub")).unwrap();
        std::fs::write(a.join("sub/t.csv"), "run,loss,acc\nx,1.0,NaN\ny,2.0,50\n").unwrap();
        std::fs::write(
            b.join("sub/t.csv"),
            "run,loss,acc\nx,1.00001,NaN\ny,2.5,50\n",
        )
        .unwrap();
        std::fs::write(a.join("only.csv"), "k\n1\n").unwrap();
        let tol = Tolerance {
            rtol: 1e-4,
            atol: 0.0,
        };
        let changes = diff(&a, &b, tol).unwrap();
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(
            (changes[0].table.as_str(), changes[0].column.as_str()),
            ("only.csv", "(file)")
        );
        assert_eq!(
            (
                changes[1].row.as_str(),
                changes[1].column.as_str(),
                changes[1].b.as_str()
            ),
            ("2", "loss", "2.5")
        );
        assert!(
            diff(
                &a.join("sub/t.csv"),
                &b.join("sub/t.csv"),
                Tolerance {
                    rtol: 0.3,
                    atol: 0.0
                }
            )
            .unwrap()
            .is_empty()
        );
        assert!(render(&changes).lines().count() == 3);
    }
}
