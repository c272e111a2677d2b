//! `kind = "interpolate"` and `landscape interpolate`: the loss along the line between two
//! trained runs (the paper's figure 2). In a spec the two ends are the runs that differ only in
//! the swept key `pair`, `from` one value to `to` another.

use super::{Analysis, AnalysisOutput, Artifact, Kind, default_from_args};
use crate::Context;
use crate::cache::DataCache;
use crate::runs::{OpenRun, TrainedRun};
use anyhow::{Context as _, Result, bail};
use clap::{ArgAction, Args};
use landscape_job::grid::GridOutcome;
use landscape_job::shard::Shard;
use landscape_models::ParamScope;
use landscape_models::eval::Precision;
use landscape_spec::analysis::same_value;
use landscape_spec::{AnalysisBlock, Spec};
use landscape_surface::direction::Direction;
use landscape_surface::grid::{AxisRange, Grid};
use landscape_surface::surface::{ENGINE_VERSION, SurfaceJob, SurfaceKind, SurfaceMeta};
use serde::Deserialize;
use toml::Value;

/// The settings of an interpolation: the `[[analysis]]` block `kind = "interpolate"` (beside
/// `pair`, `from` and `to`) and the options of `landscape interpolate`.
#[derive(Args, Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InterpolateSettings {
    /// Coordinates, start:stop:points (0 is the first run, 1 the second).
    #[arg(long, allow_hyphen_values = true, default_value = "-0.5:1.5:401")]
    pub x: AxisRange,
    /// states (the paper's: BatchNorm statistics move too) or weights.
    #[arg(long, value_enum, default_value = "states")]
    pub dir_type: ParamScope,
    /// Training examples evaluated at each point (the run's fixed subset; 0: all of them).
    #[arg(long, default_value_t = 0)]
    pub subset: usize,
    /// Also measure test loss and accuracy (`--no-test` skips them).
    #[arg(long = "no-test", action = ArgAction::SetFalse)]
    pub test: bool,
    /// Inference number format: f32, or bf16 (mixed precision: bf16 storage, f32 sums; on the
    /// CPU it is emulated through burn's operations, slowly).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
}

default_from_args!(InterpolateSettings);

/// `landscape interpolate ...`
#[derive(Args, Debug)]
pub struct InterpolateCommand {
    /// The run at coordinate 0.
    #[arg(long)]
    pub from: String,
    /// The run at coordinate 1.
    #[arg(long)]
    pub to: String,
    /// What to compute.
    #[command(flatten)]
    pub settings: InterpolateSettings,
    /// Compute only part k of n.
    #[arg(long, default_value = "1/1")]
    pub shard: Shard,
}

impl InterpolateCommand {
    /// Computes (or finds) the interpolation; what the command prints.
    pub fn run(&self, ctx: &Context) -> Result<String> {
        let outcome = compute(
            ctx,
            &mut DataCache::default(),
            &self.from,
            &self.to,
            &self.settings,
            self.shard,
        )
        .with_context(|| format!("interpolation {} -> {}", self.from, self.to))?;
        Ok(outcome.summary() + "\n")
    }
}

/// A spec's interpolation block: which runs pair up, and the settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Interpolate {
    /// The swept key that tells the two ends apart (`batch_size`).
    pub pair: String,
    /// Its value at coordinate 0 (default: the first value swept).
    pub from: Value,
    /// Its value at coordinate 1 (default: the last value swept).
    pub to: Value,
    /// What to compute.
    pub settings: InterpolateSettings,
}

/// `kind = "interpolate"`: `pair`, `from` and `to` beside the settings. `from` and `to`
/// default to the first and last values swept, so a scale that changes the values needs no
/// new ends.
pub const KIND: Kind = Kind {
    name: "interpolate",
    parse: |block, spec| Ok(Box::new(Interpolate::parse(block, spec)?)),
};

impl Interpolate {
    /// Reads `block` against the runs of `spec`.
    pub fn parse(block: &AnalysisBlock, spec: &Spec) -> Result<Self> {
        let at = block.at();
        let mut table = block.settings.clone();
        let pair = match table.remove("pair") {
            Some(Value::String(p)) => p,
            Some(_) => bail!("{at}.pair: expected the name of a swept key"),
            None => bail!("{at}.pair: missing (the swept key telling the ends apart)"),
        };
        if !spec.swept.contains(&pair) {
            bail!(
                "{at}.pair: `{pair}` is not a swept key (swept: {})",
                spec.swept.join(", ")
            );
        }
        let values: Vec<&Value> = spec
            .runs
            .iter()
            .filter_map(|r| r.sweep.get(&pair))
            .collect();
        let mut end = |key: &str, default: Option<&&Value>| -> Result<Value> {
            let value = table
                .remove(key)
                .or_else(|| default.map(|v| (*v).clone()))
                .expect("a swept key has values");
            if !values.iter().any(|v| same_value(v, &value)) {
                bail!("{at}.{key}: no run has {pair} = {value}");
            }
            Ok(value)
        };
        let from = end("from", values.first())?;
        let to = end("to", values.last())?;
        if same_value(&from, &to) {
            bail!("{at}: from and to are the same {pair}; nothing to interpolate");
        }
        Ok(Self {
            settings: super::settings(&table, &at)?,
            pair,
            from,
            to,
        })
    }
}

impl Analysis for Interpolate {
    fn run(
        &self,
        ctx: &Context,
        cache: &mut DataCache,
        name: &str,
        runs: &[&TrainedRun],
        shard: Shard,
    ) -> Result<Vec<AnalysisOutput>> {
        let mut outputs = Vec::new();
        let value_of = |t: &TrainedRun| t.planned.sweep.sweep.get(&self.pair).cloned();
        for from in runs
            .iter()
            .filter(|t| value_of(t).is_some_and(|v| same_value(&v, &self.from)))
        {
            let partner = runs.iter().find(|t| {
                t.planned.sweep.sweep.iter().all(|(k, v)| {
                    let other = &from.planned.sweep.sweep[k];
                    same_value(v, if k == &self.pair { &self.to } else { other })
                })
            });
            let Some(to) = partner else {
                eprintln!(
                    "analysis {name}: no finished partner run for {}; skipped",
                    from.planned.sweep.label()
                );
                continue;
            };
            let (from_id, to_id) = (&from.planned.record.id, &to.planned.record.id);
            let outcome = compute(ctx, cache, from_id, to_id, &self.settings, shard)?;
            let mut sweep = from.planned.record.sweep.clone();
            sweep.remove(&self.pair);
            outputs.push(AnalysisOutput {
                analysis: name.to_string(),
                runs: vec![from_id.clone(), to_id.clone()],
                sweep,
                artifact: Artifact::Surface,
                dir: outcome.dir,
                complete: outcome.complete,
            });
        }
        Ok(outputs)
    }
}

/// Computes (or finds) the interpolation from run `from_id` to run `to_id` (last epochs).
pub fn compute(
    ctx: &Context,
    cache: &mut DataCache,
    from_id: &str,
    to_id: &str,
    settings: &InterpolateSettings,
    shard: Shard,
) -> Result<GridOutcome> {
    let from = OpenRun::open(&ctx.workdir, from_id)?;
    let to = OpenRun::open(&ctx.workdir, to_id)?;
    if from.record.config.data.by_content() != to.record.config.data.by_content() {
        bail!(
            "runs {from_id} and {to_id} trained on different data; interpolating between them means little"
        );
    }
    let (from_ref, a) = from.point(None, &ctx.device)?;
    let (to_ref, b) = to.point(None, &ctx.device)?;
    let direction = Direction::difference(
        &a,
        &b,
        settings.dir_type,
        &from_ref.to_string(),
        &to_ref.to_string(),
    )?;
    let (train, test) = cache.batches(ctx, &from, settings.subset, settings.test)?;
    let meta = SurfaceMeta {
        engine: ENGINE_VERSION,
        kind: SurfaceKind::Interpolation,
        base: from_ref,
        directions: vec![direction.recipe.clone()],
        scope: settings.dir_type,
        grid: Grid {
            x: settings.x,
            y: None,
        },
        train_examples: settings.subset,
        test: settings.test,
        precision: settings.precision,
    };
    let label = format!("interpolate {from_id} -> {to_id}");
    let job = SurfaceJob {
        meta,
        network: &from.network,
        base: a,
        directions: vec![direction],
        train: &train,
        test: test.as_ref(),
    };
    job.run(&ctx.workdir, shard, &label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        command: InterpolateCommand,
    }

    #[test]
    fn the_block_and_the_command_share_every_default() {
        let block: InterpolateSettings = toml::from_str("").unwrap();
        let command = Cli::parse_from(["i", "--from", "a", "--to", "b"]).command;
        assert_eq!(block, command.settings);
        assert!(
            block.test,
            "interpolations measure the test set unless told not to"
        );
        assert_eq!(block.dir_type, ParamScope::States);
        let off = Cli::parse_from(["i", "--from", "a", "--to", "b", "--no-test"]).command;
        assert_eq!(off.settings, toml::from_str("test = false").unwrap());
    }
}
