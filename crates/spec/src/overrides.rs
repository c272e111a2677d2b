//! Overrides: a `[scale.<name>]` table, then `--set key.path=value` options. Each replaces
//! whole values one level below `experiment`, `train` or `analysis.<name>` (so overriding
//! `schedule` replaces the schedule rather than mixing two).

use anyhow::{Result, bail};
use toml::{Table, Value};

/// Applies `[scale.<name>]` (already looked up) to the root tables and the analyses.
pub fn apply_scale(
    root: &mut Table,
    analyses: &mut [(String, Table)],
    over: &Value,
    scale: &str,
) -> Result<()> {
    let Value::Table(over) = over else {
        bail!("scale.{scale}: expected a table")
    };
    for (section, values) in over {
        let Value::Table(values) = values else {
            bail!("scale.{scale}.{section}: expected a table")
        };
        match section.as_str() {
            "experiment" | "train" => {
                for (key, value) in values {
                    set_in_section(root, section, key, value.clone())?;
                }
            }
            "analysis" => {
                for (name, changes) in values {
                    let Value::Table(changes) = changes else {
                        bail!("scale.{scale}.analysis.{name}: expected a table")
                    };
                    let target =
                        find_analysis(analyses, name, &format!("scale.{scale}.analysis.{name}"))?;
                    for (key, value) in changes {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
            other => bail!(
                "scale.{scale}.{other}: unknown table, expected experiment, train or analysis"
            ),
        }
    }
    Ok(())
}

/// Applies one `--set key.path=value`: `train.lr=0.05`, `experiment.dataset=synthetic`,
/// `analysis.2d.x=-1:1:11`. The value is read as TOML (`[128, 8192]`, `0.05`, `true`) and
/// otherwise taken as a string.
pub fn apply_set(root: &mut Table, analyses: &mut [(String, Table)], set: &str) -> Result<()> {
    let Some((path, text)) = set.split_once('=') else {
        bail!("--set {set}: expected key.path=value, such as train.lr=0.05");
    };
    let value = parse_value(text.trim());
    let parts: Vec<&str> = path.trim().split('.').collect();
    match parts[..] {
        [section @ ("experiment" | "train"), key] => set_in_section(root, section, key, value),
        ["analysis", name, key] => {
            find_analysis(analyses, name, &format!("--set {set}"))?.insert(key.to_string(), value);
            Ok(())
        }
        _ => bail!("--set {set}: expected experiment.<key>, train.<key> or analysis.<name>.<key>"),
    }
}

fn parse_value(text: &str) -> Value {
    format!("v = {text}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(text.to_string()))
}

fn set_in_section(root: &mut Table, section: &str, key: &str, value: Value) -> Result<()> {
    match root
        .entry(section.to_string())
        .or_insert_with(|| Value::Table(Table::new()))
    {
        Value::Table(t) => {
            t.insert(key.to_string(), value);
            Ok(())
        }
        _ => bail!("{section}: expected a table"),
    }
}

fn find_analysis<'a>(
    analyses: &'a mut [(String, Table)],
    name: &str,
    context: &str,
) -> Result<&'a mut Table> {
    let known: Vec<String> = analyses.iter().map(|(n, _)| n.clone()).collect();
    match analyses.iter_mut().find(|(n, _)| n == name) {
        Some((_, t)) => Ok(t),
        None => bail!(
            "{context}: no analysis named `{name}` (the spec has: {})",
            known.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_toml_or_fall_back_to_strings() {
        assert_eq!(parse_value("0.05"), Value::Float(0.05));
        assert_eq!(
            parse_value("[128, 8192]"),
            Value::Array(vec![Value::Integer(128), Value::Integer(8192)])
        );
        assert_eq!(parse_value("-1:1:11"), Value::String("-1:1:11".into()));
        assert_eq!(parse_value("synthetic"), Value::String("synthetic".into()));
        assert_eq!(parse_value("\"16.4%\""), Value::String("16.4%".into()));
    }
}
