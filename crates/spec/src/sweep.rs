//! Sweeps: every list value in `[train]` is an axis, and the runs are the cartesian product of
//! the axes (in key order, the last key varying fastest).

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
                table.insert(k.clone(), v.clone());
            }
            let config: TrainConfig = deserialize_at(Value::Table(table), "train")?;
            config.validate().map_err(|e| anyhow::anyhow!("train.{e:#}"))?;
            Ok(SweepRun { config, sweep })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((runs, axes.into_iter().map(|(k, _)| k).collect()))
}
