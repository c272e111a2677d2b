//! `[[analysis]]` blocks: what to compute on the trained runs. The spec reads each block's
//! name, kind and run filter; the kind's own settings (the rest of the table) are read by
//! that kind in `landscape-pipeline` (`analysis::plan`), which owns their types and defaults.

use crate::SweepRun;
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use toml::{Table, Value};

/// One `[[analysis]]` block, its settings not yet read.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisBlock {
    /// Its name, unique in the spec (`1d`, `2d`, `interp`).
    pub name: String,
    /// Its kind (`surface`, `interpolate`, ...).
    pub kind: String,
    /// Only runs whose swept values match these (empty: all runs).
    pub runs: BTreeMap<String, Value>,
    /// The rest of the table: the kind's settings.
    pub settings: Table,
}

impl AnalysisBlock {
    /// Whether `run` is selected by the `runs` filter.
    pub fn selects(&self, run: &SweepRun) -> bool {
        self.runs
            .iter()
            .all(|(k, v)| run.sweep.get(k).is_some_and(|mine| same_value(mine, v)))
    }

    /// `analysis.<name>`: how errors name the block and its keys.
    pub fn at(&self) -> String {
        format!("analysis.{}", self.name)
    }

    pub(crate) fn from_table(name: &str, mut table: Table, swept: &[String]) -> Result<Self> {
        let at = format!("analysis.{name}");
        table.remove("name");
        let kind = match table.remove("kind") {
            Some(Value::String(k)) => k,
            Some(_) => bail!("{at}.kind: expected a string"),
            None => bail!("{at}.kind: missing"),
        };
        let runs = match table.remove("runs") {
            Some(Value::Table(t)) => t.into_iter().collect::<BTreeMap<_, _>>(),
            Some(_) => {
                bail!("{at}.runs: expected a table of swept keys, such as {{ weight_decay = 0.0 }}")
            }
            None => BTreeMap::new(),
        };
        for key in runs.keys() {
            if !swept.contains(key) {
                bail!(
                    "{at}.runs.{key}: not a swept key (swept: {})",
                    swept.join(", ")
                );
            }
        }
        Ok(Self {
            name: name.to_string(),
            kind,
            runs,
            settings: table,
        })
    }
}

/// TOML values compared as numbers where both are numbers (`0` matches `0.0`).
pub fn same_value(a: &Value, b: &Value) -> bool {
    let num = |v: &Value| match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The `[[analysis]]` array as (name, table) pairs, names checked unique.
pub fn analyses_by_name(value: Option<Value>) -> Result<Vec<(String, Table)>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        bail!("analysis: expected [[analysis]] blocks")
    };
    let mut out: Vec<(String, Table)> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Value::Table(table) = item else {
            bail!("analysis[{i}]: expected a table")
        };
        let name = match table.get("name") {
            Some(Value::String(n)) if !n.is_empty() => n.clone(),
            _ => bail!("analysis[{i}].name: missing (every analysis needs a unique name)"),
        };
        if out.iter().any(|(n, _)| n == &name) {
            bail!("analysis.{name}: two analyses share the name `{name}`");
        }
        out.push((name, table));
    }
    Ok(out)
}
