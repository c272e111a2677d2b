//! `[[analysis]]` blocks: what to compute on the trained runs.

use crate::{SweepRun, deserialize_at};
use anyhow::{Result, bail};
use landscape_curvature::spec::{EigenRatioAnalysis, HessianAnalysis, SharpnessAnalysis};
use landscape_models::ParamScope;
use landscape_models::eval::Precision;
use landscape_surface::direction::{DirNorm, Ignore};
use landscape_surface::grid::AxisRange;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::{Table, Value};

fn default_norm() -> DirNorm {
    DirNorm::Filter
}
fn default_ignore() -> Ignore {
    Ignore::Biasbn
}
fn default_states() -> ParamScope {
    ParamScope::States
}
fn default_true() -> bool {
    true
}
fn default_repeats() -> u64 {
    1
}
fn is_one(n: &u64) -> bool {
    *n == 1
}

/// `kind = "surface"`: loss around each selected run along random normalized directions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurfaceAnalysis {
    /// First axis, `start:stop:points`.
    pub x: AxisRange,
    /// Second axis for a 2-D surface.
    #[serde(default)]
    pub y: Option<AxisRange>,
    /// Direction normalization (`filter`, `layer`, `weight`, `dfilter`, `dlayer`, `none`).
    #[serde(default = "default_norm")]
    pub norm: DirNorm,
    /// `biasbn` zeroes biases and BatchNorm in the directions; `none` copies them.
    #[serde(default = "default_ignore")]
    pub ignore: Ignore,
    /// `weights` (learnable) or `states` (plus BatchNorm running statistics).
    #[serde(default)]
    pub dir_type: ParamScope,
    /// Seed of the random directions.
    #[serde(default)]
    pub seed: u64,
    /// Surfaces per run, along directions drawn with seeds `seed`, `seed + 1`, ... (the
    /// paper's repeatability plots use ten).
    #[serde(default = "default_repeats", skip_serializing_if = "is_one")]
    pub repeats: u64,
    /// Training examples evaluated at each point (0: the run's whole training set).
    #[serde(default)]
    pub subset: usize,
    /// Also measure test loss and accuracy.
    #[serde(default)]
    pub test: bool,
    /// Inference number format: `f32` (default) or `bf16` (mixed precision).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

/// `kind = "interpolate"`: loss along the line between pairs of runs that differ only in the
/// swept key `pair` (`from` to `to`), as the paper's figure 2. `from` and `to` default to the
/// first and last values swept, so a scale that changes the values needs no new ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterpolateAnalysis {
    /// The swept key that tells the two ends apart (`batch_size`).
    pub pair: String,
    /// Its value at coordinate 0 (default: the first value swept).
    #[serde(default)]
    pub from: Option<Value>,
    /// Its value at coordinate 1 (default: the last value swept).
    #[serde(default)]
    pub to: Option<Value>,
    /// The coordinates, e.g. `-0.5:1.5:401`.
    pub x: AxisRange,
    /// `states` (the paper's: BatchNorm statistics move too) or `weights`.
    #[serde(default = "default_states")]
    pub dir_type: ParamScope,
    /// Training examples evaluated at each point (0: all).
    #[serde(default)]
    pub subset: usize,
    /// Also measure test loss and accuracy.
    #[serde(default = "default_true")]
    pub test: bool,
    /// Inference number format: `f32` (default) or `bf16` (mixed precision).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

fn default_points() -> usize {
    21
}

/// `kind = "trajectory"`: PCA of each selected run's path over its saved epochs (save every
/// epoch), the path on the plane of the first two components over the loss there, and the
/// random-direction baseline (the paper's figures 8 and 9).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrajectoryAnalysis {
    /// `weights` (learnable) or `states`.
    #[serde(default)]
    pub dir_type: ParamScope,
    /// `biasbn` leaves biases and BatchNorm out of the path vectors.
    #[serde(default = "default_ignore")]
    pub ignore: Ignore,
    /// Seed of the random directions of the baseline.
    #[serde(default)]
    pub seed: u64,
    /// Training examples for the losses along the path and on the plane (0: all).
    #[serde(default)]
    pub subset: usize,
    /// Points per axis of the loss surface on the PCA plane.
    #[serde(default = "default_points")]
    pub points: usize,
}

/// What an analysis computes.
#[derive(Clone, Debug, PartialEq)]
pub enum AnalysisKind {
    /// A 1-D or 2-D surface per run.
    Surface(SurfaceAnalysis),
    /// An interpolation per pair of runs.
    Interpolate(InterpolateAnalysis),
    /// A path PCA and its plane per run.
    Trajectory(TrajectoryAnalysis),
    /// Hessian eigenvalues, trace and spectral density per run (`hessian-<hash>/`).
    Hessian(HessianAnalysis),
    /// Sharpness measures per run (`sharpness-<hash>/sharpness.csv`).
    Sharpness(SharpnessAnalysis),
    /// An abs(lambda_min / lambda_max) map per run (`eigratio-<hash>/ratio.csv`, figure 7).
    EigenRatio(EigenRatioAnalysis),
}

/// One `[[analysis]]` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// Its name, unique in the spec (`1d`, `2d`, `interp`).
    pub name: String,
    /// Only runs whose swept values match these (empty: all runs).
    pub runs: BTreeMap<String, Value>,
    /// What it computes.
    pub kind: AnalysisKind,
}

impl InterpolateAnalysis {
    /// The value of `pair` at coordinate 0.
    pub fn from_value(&self) -> &Value {
        self.from.as_ref().expect("resolved when parsed")
    }

    /// The value of `pair` at coordinate 1.
    pub fn to_value(&self) -> &Value {
        self.to.as_ref().expect("resolved when parsed")
    }
}

impl Analysis {
    /// Whether `run` is selected by the `runs` filter.
    pub fn selects(&self, run: &SweepRun) -> bool {
        self.runs
            .iter()
            .all(|(k, v)| run.sweep.get(k).is_some_and(|mine| same_value(mine, v)))
    }

    pub(crate) fn from_table(
        name: &str,
        mut table: Table,
        swept: &[String],
        runs: &[SweepRun],
    ) -> Result<Self> {
        let at = format!("analysis.{name}");
        table.remove("name");
        let kind = match table.remove("kind") {
            Some(Value::String(k)) => k,
            Some(_) => bail!("{at}.kind: expected a string"),
            None => bail!(
                "{at}.kind: missing (surface, interpolate, trajectory, hessian, sharpness or eigen_ratio)"
            ),
        };
        let filter = match table.remove("runs") {
            Some(Value::Table(t)) => t.into_iter().collect::<BTreeMap<_, _>>(),
            Some(_) => {
                bail!("{at}.runs: expected a table of swept keys, such as {{ weight_decay = 0.0 }}")
            }
            None => BTreeMap::new(),
        };
        for key in filter.keys() {
            if !swept.contains(key) {
                bail!(
                    "{at}.runs.{key}: not a swept key (swept: {})",
                    swept.join(", ")
                );
            }
        }
        let kind = match kind.as_str() {
            "surface" => {
                let s: SurfaceAnalysis = deserialize_at(Value::Table(table), &at)?;
                if s.repeats == 0 {
                    bail!("{at}.repeats: expected at least 1, got 0");
                }
                AnalysisKind::Surface(s)
            }
            "interpolate" => {
                let mut a: InterpolateAnalysis = deserialize_at(Value::Table(table), &at)?;
                if !swept.contains(&a.pair) {
                    bail!(
                        "{at}.pair: `{}` is not a swept key (swept: {})",
                        a.pair,
                        swept.join(", ")
                    );
                }
                let values: Vec<&Value> =
                    runs.iter().filter_map(|r| r.sweep.get(&a.pair)).collect();
                a.from = a.from.or_else(|| values.first().map(|v| (*v).clone()));
                a.to = a.to.or_else(|| values.last().map(|v| (*v).clone()));
                for (end, value) in [("from", &a.from), ("to", &a.to)] {
                    let value = value.as_ref().expect("defaulted above");
                    if !values.iter().any(|v| same_value(v, value)) {
                        bail!("{at}.{end}: no run has {} = {value}", a.pair);
                    }
                }
                if a.from
                    .as_ref()
                    .zip(a.to.as_ref())
                    .is_some_and(|(f, t)| same_value(f, t))
                {
                    bail!(
                        "{at}: from and to are the same {}; nothing to interpolate",
                        a.pair
                    );
                }
                AnalysisKind::Interpolate(a)
            }
            "trajectory" => {
                let t: TrajectoryAnalysis = deserialize_at(Value::Table(table), &at)?;
                if t.points < 2 {
                    bail!("{at}.points: expected at least 2, got {}", t.points);
                }
                AnalysisKind::Trajectory(t)
            }
            "hessian" => AnalysisKind::Hessian(deserialize_at(Value::Table(table), &at)?),
            "sharpness" => AnalysisKind::Sharpness(deserialize_at(Value::Table(table), &at)?),
            "eigen_ratio" => AnalysisKind::EigenRatio(deserialize_at(Value::Table(table), &at)?),
            other => bail!(
                "{at}.kind: unknown kind `{other}`, expected surface, interpolate, trajectory, hessian, sharpness or eigen_ratio"
            ),
        };
        Ok(Self {
            name: name.to_string(),
            runs: filter,
            kind,
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
