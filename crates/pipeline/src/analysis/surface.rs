//! `kind = "surface"` and `landscape surface`: the loss around a run along random normalized
//! directions (the paper's 1-D and 2-D plots), along directions from a file, or on the plane
//! through two other runs.

use super::{Analysis, AnalysisOutput, Artifact, Kind, at_least, default_from_args, per_run, read};
use crate::Context;
use crate::cache::DataCache;
use crate::runs::{OpenRun, TrainedRun};
use anyhow::{Context as _, Result, bail};
use clap::Args;
use landscape_job::grid::GridOutcome;
use landscape_job::shard::Shard;
use landscape_models::eval::Precision;
use landscape_models::{ParamScope, ParamSet};
use landscape_surface::direction::{self, DirNorm, Direction, Ignore};
use landscape_surface::grid::{AxisRange, Grid};
use landscape_surface::surface::{ENGINE_VERSION, PointRef, SurfaceJob, SurfaceKind, SurfaceMeta};
use serde::Deserialize;
use std::path::PathBuf;

/// The settings of a surface: the `[[analysis]]` block `kind = "surface"` and the options of
/// `landscape surface`.
#[derive(Args, Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SurfaceSettings {
    /// First axis, start:stop:points.
    #[arg(long, allow_hyphen_values = true, default_value = "-1:1:51")]
    pub x: AxisRange,
    /// Second axis, for a 2-D surface.
    #[arg(long, allow_hyphen_values = true)]
    pub y: Option<AxisRange>,
    /// Normalization of the random directions: filter, layer, weight, dfilter, dlayer or none.
    #[arg(long, value_enum, default_value = "filter")]
    pub norm: DirNorm,
    /// biasbn: biases and BatchNorm do not move; none: they move by their own values (random
    /// directions).
    #[arg(long, value_enum, default_value = "biasbn")]
    pub ignore: Ignore,
    /// weights (learnable parameters) or states (also BatchNorm running statistics).
    #[arg(long, value_enum, default_value = "weights")]
    pub dir_type: ParamScope,
    /// Seed of the random directions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Surfaces per run, along random directions drawn with seeds seed, seed + 1, ... (the
    /// paper's repeatability plots use ten).
    #[arg(long, default_value_t = 1)]
    pub repeats: u64,
    /// Training examples evaluated at each point (the run's fixed subset; 0: all of them).
    #[arg(long, default_value_t = 0)]
    pub subset: usize,
    /// Also measure test loss and accuracy.
    #[arg(long)]
    pub test: bool,
    /// Inference number format: f32, or bf16 (mixed precision: bf16 storage, f32 sums; on the
    /// CPU it is emulated through burn's operations, slowly).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
}

default_from_args!(SurfaceSettings);

/// Where a surface's directions come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Directions {
    /// Random, normalized as the settings say, one surface per seed.
    Random,
    /// The first one or two directions of a safetensors file (an earlier surface's).
    File(PathBuf),
    /// The plane through the centre run and these two: the first at (1, 0), the second at
    /// (0, 1).
    Plane([String; 2]),
}

/// `landscape surface ...`
#[derive(Args, Debug)]
pub struct SurfaceCommand {
    /// The run whose minimum is the centre (see `landscape runs`).
    #[arg(long)]
    pub run: String,
    /// The checkpoint's epoch (default: the last).
    #[arg(long)]
    pub epoch: Option<u32>,
    /// What to compute.
    #[command(flatten)]
    pub settings: SurfaceSettings,
    /// Use the directions in this safetensors file (written by an earlier surface) instead of
    /// random ones.
    #[arg(long, conflicts_with_all = ["norm", "ignore", "seed", "repeats"])]
    pub directions: Option<PathBuf>,
    /// The plane through this run and two others: `--plane RUN_B RUN_C` puts RUN_B at (1, 0) and
    /// RUN_C at (0, 1) (directions over --dir-type, unnormalized).
    #[arg(
        long,
        num_args = 2,
        value_names = ["RUN_B", "RUN_C"],
        conflicts_with_all = ["directions", "norm", "ignore", "seed", "repeats"]
    )]
    pub plane: Option<Vec<String>>,
    /// Compute only part k of n of the grid (merge the parts with `landscape merge`).
    #[arg(long, default_value = "1/1")]
    pub shard: Shard,
}

impl SurfaceCommand {
    /// Computes (or finds) the surfaces; what the command prints.
    pub fn run(&self, ctx: &Context) -> Result<String> {
        let directions = match (&self.directions, &self.plane) {
            (Some(path), _) => Directions::File(path.clone()),
            (None, Some(p)) => Directions::Plane([p[0].clone(), p[1].clone()]),
            (None, None) => Directions::Random,
        };
        let outcomes = compute(
            ctx,
            &mut DataCache::default(),
            &self.run,
            self.epoch,
            &self.settings,
            &directions,
            self.shard,
        )
        .with_context(|| format!("surface around run {}", self.run))?;
        Ok(outcomes.iter().map(|o| o.summary() + "\n").collect())
    }
}

/// `kind = "surface"`.
pub const KIND: Kind = Kind {
    name: "surface",
    parse: |block, _spec| read::<SurfaceSettings>(block, check),
};

fn check(settings: &SurfaceSettings, at: &str) -> Result<()> {
    at_least(settings.repeats, 1, at, "repeats")
}

impl Analysis for SurfaceSettings {
    fn run(
        &self,
        ctx: &Context,
        cache: &mut DataCache,
        name: &str,
        runs: &[&TrainedRun],
        shard: Shard,
    ) -> Result<Vec<AnalysisOutput>> {
        per_run(name, runs, |id| {
            let outcomes = compute(ctx, cache, id, None, self, &Directions::Random, shard)?;
            Ok(outcomes
                .into_iter()
                .map(|o| (Artifact::Surface, o.dir, o.complete))
                .collect())
        })
    }
}

/// Computes (or finds) the surfaces `settings` asks for around run `run_id` at `epoch`
/// (default: the last): one per seed for random directions, else one.
pub fn compute(
    ctx: &Context,
    cache: &mut DataCache,
    run_id: &str,
    epoch: Option<u32>,
    settings: &SurfaceSettings,
    directions: &Directions,
    shard: Shard,
) -> Result<Vec<GridOutcome>> {
    check(settings, "surface")?;
    let seeds = match directions {
        Directions::Random => settings.seed..settings.seed + settings.repeats,
        _ if settings.repeats != 1 => {
            bail!("repeats: directions from a file or a plane are one surface; leave repeats at 1")
        }
        _ => settings.seed..settings.seed + 1,
    };
    // The run, its checkpoint and its data are read once for all the seeds.
    let run = OpenRun::open(&ctx.workdir, run_id)?;
    let centre = run.point(epoch, &ctx.device)?;
    seeds
        .map(|seed| one(ctx, cache, &run, &centre, settings, directions, seed, shard))
        .collect()
}

/// The surface along the directions of `seed` around `centre`, a point of `run`.
#[allow(clippy::too_many_arguments)]
fn one(
    ctx: &Context,
    cache: &mut DataCache,
    run: &OpenRun,
    (base_ref, base): &(PointRef, ParamSet),
    settings: &SurfaceSettings,
    directions: &Directions,
    seed: u64,
    shard: Shard,
) -> Result<GridOutcome> {
    let run_id = &run.record.id;
    let count = 1 + settings.y.is_some() as usize;
    let directions = match directions {
        Directions::Plane(through) => {
            if count != 2 {
                bail!("a plane through three runs needs a 2-D grid (--y)");
            }
            through
                .iter()
                .map(|other| {
                    let theirs = OpenRun::open(&ctx.workdir, other)?;
                    let (their_ref, point) = theirs.point(None, &ctx.device)?;
                    Direction::difference(
                        base,
                        &point,
                        settings.dir_type,
                        &base_ref.to_string(),
                        &their_ref.to_string(),
                    )
                })
                .collect::<Result<Vec<_>>>()?
        }
        Directions::File(path) => {
            let loaded = direction::load(path, run.network.layout(), &ctx.device)?;
            if loaded.len() < count {
                bail!(
                    "{}: holds {} direction(s), a {count}-D surface needs {count}",
                    path.display(),
                    loaded.len()
                );
            }
            loaded.into_iter().take(count).collect()
        }
        Directions::Random => Direction::random(
            base,
            settings.dir_type,
            settings.norm,
            settings.ignore,
            seed,
            count,
        ),
    };
    let scope = directions[0].scope;
    let (train, test) = cache.batches(ctx, run, settings.subset, settings.test)?;
    let grid = Grid {
        x: settings.x,
        y: settings.y,
    };
    for warning in grid.warnings() {
        eprintln!("warning: surface of run {run_id}: {warning}");
    }
    let meta = SurfaceMeta {
        engine: ENGINE_VERSION,
        kind: SurfaceKind::Surface,
        base: base_ref.clone(),
        directions: directions.iter().map(|d| d.recipe.clone()).collect(),
        scope,
        grid,
        train_examples: settings.subset,
        test: settings.test,
        precision: settings.precision,
    };
    let label = format!("surface {} {}", run.record.id, meta.grid.x);
    let job = SurfaceJob {
        meta,
        network: &run.network,
        base: base.clone(),
        directions,
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
        command: SurfaceCommand,
    }

    #[test]
    fn the_block_and_the_command_share_every_default() {
        let block: SurfaceSettings = toml::from_str("").unwrap();
        let command = Cli::parse_from(["surface", "--run", "r"]).command;
        assert_eq!(block, command.settings);
        assert_eq!(block.x, "-1:1:51".parse().unwrap());
        assert_eq!(
            (block.norm, block.repeats, block.test),
            (DirNorm::Filter, 1, false)
        );
        let set: SurfaceSettings = toml::from_str("y = \"-1:1:5\"\ntest = true").unwrap();
        let flags = Cli::parse_from(["surface", "--run", "r", "--y", "-1:1:5", "--test"]);
        assert_eq!(set, flags.command.settings);
        assert!(toml::from_str::<SurfaceSettings>("nrom = \"layer\"").is_err());
        assert!(
            Cli::try_parse_from(["s", "--run", "r", "--directions", "d", "--seed", "3"]).is_err()
        );
    }
}
