//! Sweeps: every list value in `[train]` is an axis, and the runs are the cartesian product of
//! the axes (in key order, the last key varying fastest). A list of tables is an axis of linked
//! settings: `variant = [{ optimizer = "sgd", lr = 0.1 }, { optimizer = "adam", lr = 1e-3 }]`
//! sets both keys of one table in each run (the paper's SGD and Adam runs differ in both).

use crate::{SweepRun, deserialize_at};
use anyhow::{Result, bail};
use landscape_train::TrainConfig;
use std::collections::BTreeMap;
use toml::{Table, Value};

/// The runs of a `[train]` table and the swept keys.
pub fn expand(train: Table) -> Result<(Vec<SweepRun>, Vec<String>)> {
    let mut axes: Vec<(String, Vec<Value>)> = Vec::new();
    for (key, value) in &train {
        if let Value::Array(values) = value {
            if values.is_empty() {
                bail!("train.{key}: an empty list sweeps nothing; give at least one value");
            }
            let tables = values.iter().filter(|v| v.is_table()).count();
            if tables != 0 && tables != values.len() {
                bail!("train.{key}: a sweep is a list of values or a list of tables, not both");
            }
            axes.push((key.clone(), values.clone()));
        }
    }
    let mut combos: Vec<BTreeMap<String, Value>> = vec![BTreeMap::new()];
    for (key, values) in &axes {
        combos = combos
            .into_iter()
            .flat_map(|combo| {
                values.iter().map(move |v| {
                    let mut c = combo.clone();
                    c.insert(key.clone(), v.clone());
                    c
                })
            })
            .collect();
    }
    let runs = combos
        .into_iter()
        .map(|sweep| {
            let mut table = train.clone();
            for (k, v) in &sweep {
                match v {
                    Value::Table(linked) => {
                        table.remove(k);
                        // Linked settings replace the base values for this run.
                        for (lk, lv) in linked {
                            if axes.iter().any(|(axis, _)| axis == lk) {
                                bail!("train.{k}: sets `{lk}`, which is swept too; sweep it in one place");
                            }
                            table.insert(lk.clone(), lv.clone());
                        }
                    }
                    _ => {
                        table.insert(k.clone(), v.clone());
                    }
                }
            }
            let config: TrainConfig = deserialize_at(Value::Table(table), "train")?;
            config.validate().map_err(|e| anyhow::anyhow!("train.{e:#}"))?;
            Ok(SweepRun { config, sweep })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((runs, axes.into_iter().map(|(k, _)| k).collect()))
}
