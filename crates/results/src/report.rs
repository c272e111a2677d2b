//! The tables and the findings a reproduction writes: `summary.csv` (one row per run),
//! `findings.csv` (one row per check) and `findings.md` (the same, for people).

use anyhow::Result;
use landscape_core::atomic::{write_atomic, write_atomic_with};
use std::fmt::Write as _;
use std::path::Path;

/// A table with a fixed column order (units in the column names).
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows of cells, as many as columns.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(columns: &[&str]) -> Self {
        Self {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    /// Writes the table as CSV, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic_with(path, |w| {
            let mut writer = csv::Writer::from_writer(w);
            writer.write_record(&self.columns)?;
            for row in &self.rows {
                writer.write_record(row)?;
            }
            writer.flush()?;
            Ok(())
        })
    }
}

/// A number for a table: 4 significant decimals, `NaN`/`inf` spelled out.
pub fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{:.4}", v)
    } else {
        v.to_string()
    }
}

/// The verdict of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The measurement agrees with the paper's claim.
    Pass,
    /// It does not.
    Fail,
}

impl Verdict {
    /// PASS for true, FAIL for false.
    pub fn of(ok: bool) -> Self {
        if ok { Verdict::Pass } else { Verdict::Fail }
    }

    fn text(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One automatic check of a claim of the paper.
#[derive(Clone, Debug)]
pub struct Check {
    /// The claim, as paper.md numbers it (`claim 3`).
    pub claim: String,
    /// What is checked, in one sentence.
    pub check: String,
    /// What was measured.
    pub measured: String,
    /// What the paper reports or claims.
    pub paper: String,
    /// The verdict.
    pub verdict: Verdict,
}

/// Writes `findings.csv` and `findings.md`: a header saying how each quantity is measured and
/// under which conditions, then each check with its numbers and verdict.
pub fn write_findings(
    dir: &Path,
    title: &str,
    conditions: &[String],
    measures: &[(&str, &str)],
    checks: &[Check],
) -> Result<()> {
    let mut table = Table::new(&["claim", "check", "measured", "paper", "verdict"]);
    for c in checks {
        table.push(vec![
            c.claim.clone(),
            c.check.clone(),
            c.measured.clone(),
            c.paper.clone(),
            c.verdict.text().into(),
        ]);
    }
    table.write(&dir.join("findings.csv"))?;
    let mut md = String::new();
    let _ = writeln!(md, "# Findings: {title}\n");
    for line in conditions {
        let _ = writeln!(md, "- {line}");
    }
    let passed = checks.iter().filter(|c| c.verdict == Verdict::Pass).count();
    let _ = writeln!(md, "\n{passed} of {} checks pass.\n", checks.len());
    let _ = writeln!(md, "## How each quantity is measured\n");
    for (name, how) in measures {
        let _ = writeln!(md, "- **{name}**: {how}");
    }
    let _ = writeln!(md, "\n## Checks\n");
    let _ = writeln!(md, "| claim | check | measured | paper | verdict |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for c in checks {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | **{}** |",
            c.claim,
            c.check,
            c.measured,
            c.paper,
            c.verdict.text()
        );
    }
    let failed: Vec<&Check> = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(md, "\n## Failed at this scale\n");
        for c in failed {
            let _ = writeln!(
                md,
                "- {}: {} (measured {}; paper: {}).",
                c.claim, c.check, c.measured, c.paper
            );
        }
        let _ = writeln!(md, "\nSee NOTES.md, where present, for a reading of why.");
    }
    write_atomic(&dir.join("findings.md"), md.as_bytes())
}
