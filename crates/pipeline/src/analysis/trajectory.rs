//! `kind = "trajectory"` and `landscape trajectory`: the PCA of a run's path over its saved
//! epochs, the path on the plane of the first two components over the loss there, and the
//! random-direction baseline (the paper's figures 8 and 9).

use super::surface::{self, Directions, SurfaceSettings};
use super::{Analysis, AnalysisOutput, Artifact, Kind, at_least, default_from_args, per_run, read};
use crate::Context;
use crate::cache::DataCache;
use crate::runs::{OpenRun, TrainedRun};
use anyhow::{Context as _, Result, bail};
use clap::Args;
use landscape_job::grid::GridOutcome;
use landscape_job::shard::Shard;
use landscape_models::ParamScope;
use landscape_surface::direction::{DirNorm, Ignore};
use landscape_surface::grid::AxisRange;
use landscape_trajectory::trajectory::{
    PathPoint, TRAJECTORY_VERSION, TrajectoryJob, TrajectoryMeta, TrajectoryOutcome,
};
use serde::Deserialize;

/// The settings of a trajectory: the `[[analysis]]` block `kind = "trajectory"` and the options
/// of `landscape trajectory`.
#[derive(Args, Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrajectorySettings {
    /// weights (learnable parameters) or states (also BatchNorm running statistics).
    #[arg(long, value_enum, default_value = "weights")]
    pub dir_type: ParamScope,
    /// biasbn: leave biases and BatchNorm out of the path vectors; none: keep them.
    #[arg(long, value_enum, default_value = "biasbn")]
    pub ignore: Ignore,
    /// Seed of the two random directions of the baseline.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training examples for the losses along the path and on the plane (0: all of the run's).
    #[arg(long, default_value_t = 0)]
    pub subset: usize,
    /// Points per axis of the loss surface on the PCA plane.
    #[arg(long, default_value_t = 21)]
    pub points: usize,
}

default_from_args!(TrajectorySettings);

/// `landscape trajectory ...`
#[derive(Args, Debug)]
pub struct TrajectoryCommand {
    /// The run (trained with save_every = 1).
    #[arg(long)]
    pub run: String,
    /// What to compute.
    #[command(flatten)]
    pub settings: TrajectorySettings,
    /// Compute only part k of n of the plane's surface.
    #[arg(long, default_value = "1/1")]
    pub shard: Shard,
}

impl TrajectoryCommand {
    /// Computes (or finds) the trajectory and its plane; what the command prints.
    pub fn run(&self, ctx: &Context) -> Result<String> {
        let (path, plane) = compute(
            ctx,
            &mut DataCache::default(),
            &self.run,
            &self.settings,
            self.shard,
        )
        .with_context(|| format!("trajectory of run {}", self.run))?;
        let pct = &path.summary.explained_pct;
        Ok(format!(
            "PC1 {:.1} %, PC2 {:.1} % of the path's variance; random directions: mean |cos| {:.2e} (expected {:.2e})\n{}\n{}\n",
            pct[0],
            pct[1],
            path.summary.random_cos_mean,
            path.summary.random_cos_expected,
            path.dir.join("path.csv").display(),
            plane.summary()
        ))
    }
}

/// `kind = "trajectory"`.
pub const KIND: Kind = Kind {
    name: "trajectory",
    parse: |block, _spec| read::<TrajectorySettings>(block, check),
};

fn check(settings: &TrajectorySettings, at: &str) -> Result<()> {
    at_least(settings.points as u64, 2, at, "points")
}

impl Analysis for TrajectorySettings {
    fn run(
        &self,
        ctx: &Context,
        cache: &mut DataCache,
        name: &str,
        runs: &[&TrainedRun],
        shard: Shard,
    ) -> Result<Vec<AnalysisOutput>> {
        per_run(name, runs, |id| {
            let (path, plane) = compute(ctx, cache, id, self, shard)?;
            Ok(vec![(
                Artifact::Trajectory { path: path.dir },
                plane.dir,
                plane.complete,
            )])
        })
    }
}

/// The PCA of run `run_id`'s path over every saved epoch, then the loss surface on the plane of
/// its first two components, spanning the path with a margin.
pub fn compute(
    ctx: &Context,
    cache: &mut DataCache,
    run_id: &str,
    settings: &TrajectorySettings,
    shard: Shard,
) -> Result<(TrajectoryOutcome, GridOutcome)> {
    check(settings, "trajectory")?;
    let run = OpenRun::open(&ctx.workdir, run_id)?;
    let epochs = run.dir.checkpoint_epochs()?;
    if epochs.len() < 3 {
        bail!(
            "run {run_id} kept {} checkpoint(s); a trajectory needs one per epoch (train with save_every = 1)",
            epochs.len()
        );
    }
    let metrics = landscape_train::metrics::read(&run.dir.metrics_path())?;
    let lrs = epochs
        .iter()
        .map(|&e| metrics.get(e as usize).map_or(f64::NAN, |m| m.lr))
        .collect();
    let (train, _) = cache.batches(ctx, &run, settings.subset, false)?;
    let job = TrajectoryJob {
        meta: TrajectoryMeta {
            version: TRAJECTORY_VERSION,
            run: run_id.into(),
            epochs: epochs.clone(),
            checkpoints: epochs
                .iter()
                .map(|&e| run.checkpoint_hash(e))
                .collect::<Result<_>>()?,
            scope: settings.dir_type,
            ignore: settings.ignore,
            seed: settings.seed,
            train_examples: settings.subset,
        },
        network: &run.network,
        checkpoints: epochs.iter().map(|&e| run.dir.checkpoint_path(e)).collect(),
        lrs,
        train: &train,
    };
    let outcome = job.run(&ctx.workdir)?;
    let span = |coord: fn(&PathPoint) -> f64| -> Result<AxisRange> {
        let (lo, hi) = outcome
            .path
            .iter()
            .map(coord)
            .fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        let margin = 0.15 * (hi - lo).max(1e-6);
        format!("{}:{}:{}", lo - margin, hi + margin, settings.points).parse()
    };
    let plane_settings = SurfaceSettings {
        x: span(|p| p.pc1)?,
        y: Some(span(|p| p.pc2)?),
        norm: DirNorm::None,
        ignore: settings.ignore,
        dir_type: settings.dir_type,
        seed: settings.seed,
        subset: settings.subset,
        ..SurfaceSettings::default()
    };
    let directions = Directions::File(outcome.dir.join("directions.safetensors"));
    let mut plane = surface::compute(
        ctx,
        cache,
        run_id,
        None,
        &plane_settings,
        &directions,
        shard,
    )?;
    Ok((outcome, plane.remove(0)))
}
