//! `kind = "eigen_ratio"` and `landscape eigen-ratio`: abs(lambda_min / lambda_max) over a
//! surface's plane (the paper's figure 7), resumable and shardable like surfaces.

use super::{
    Analysis, AnalysisOutput, Artifact, CURVATURE_SUBSET, Kind, MICRO_BATCH, default_from_args,
    per_run, read, with_curvature_input,
};
use crate::Context;
use crate::cache::DataCache;
use crate::runs::TrainedRun;
use anyhow::{Context as _, Result};
use clap::Args;
use landscape_curvature::eigen_ratio::{self, EigenRatioRequest};
use landscape_curvature::{CurvatureScope, HvpOptions};
use landscape_job::grid::GridOutcome;
use landscape_job::shard::Shard;
use landscape_surface::grid::AxisRange;
use serde::Deserialize;
use std::path::PathBuf;

/// The settings of an eigen-ratio map: the `[[analysis]]` block `kind = "eigen_ratio"` and the
/// options of `landscape eigen-ratio`.
#[derive(Args, Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EigenRatioSettings {
    /// First axis, start:stop:points (each point is a Lanczos run: keep grids coarse).
    #[arg(long, allow_hyphen_values = true, default_value = "-1:1:11")]
    pub x: AxisRange,
    /// Second axis, for a 2-D map.
    #[arg(long, allow_hyphen_values = true)]
    pub y: Option<AxisRange>,
    /// Seed of the filter-normalized directions: the loss surface's seed gives its plane.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Lanczos steps at each point.
    #[arg(long, default_value_t = 20)]
    pub lanczos_steps: usize,
    /// Which tensors the Hessian is over: weights or weights-no-biasbn.
    #[arg(long, value_enum, default_value = "weights")]
    pub scope: CurvatureScope,
    /// Central-difference step of the Hessian-vector products.
    #[arg(long, default_value_t = HvpOptions::default().eps)]
    pub eps: f64,
    /// Training examples (the run's fixed subset; 0: all of them).
    #[arg(long, default_value_t = CURVATURE_SUBSET)]
    pub subset: usize,
    /// Examples per backward pass (memory only).
    #[arg(long, default_value_t = MICRO_BATCH)]
    pub micro_batch: usize,
}

default_from_args!(EigenRatioSettings);

impl EigenRatioSettings {
    /// The map these settings ask for, along `directions` (a surface's file) or random ones.
    pub fn request(&self, directions: Option<PathBuf>) -> EigenRatioRequest {
        EigenRatioRequest {
            x: self.x,
            y: self.y,
            seed: self.seed,
            directions,
            lanczos_steps: self.lanczos_steps,
            scope: self.scope,
            eps: self.eps,
            subset: self.subset,
            micro_batch: self.micro_batch,
        }
    }
}

/// `landscape eigen-ratio ...`
#[derive(Args, Debug)]
pub struct EigenRatioCommand {
    /// The run at the centre.
    #[arg(long)]
    pub run: String,
    /// The checkpoint's epoch (default: the last).
    #[arg(long)]
    pub epoch: Option<u32>,
    /// What to compute.
    #[command(flatten)]
    pub settings: EigenRatioSettings,
    /// Use the directions in this safetensors file (a surface's directions.safetensors).
    #[arg(long)]
    pub directions: Option<PathBuf>,
    /// Compute only part k of n of the grid (join the parts with `landscape merge`).
    #[arg(long, default_value = "1/1")]
    pub shard: Shard,
}

impl EigenRatioCommand {
    /// Computes (or resumes, or finds) the map; what the command prints.
    pub fn run(&self, ctx: &Context) -> Result<String> {
        let outcome = compute(
            ctx,
            &mut DataCache::default(),
            &self.run,
            self.epoch,
            &self.settings.request(self.directions.clone()),
            self.shard,
        )
        .with_context(|| format!("eigen-ratio map around run {}", self.run))?;
        Ok(outcome.summary() + "\n")
    }
}

/// `kind = "eigen_ratio"`: an eigen-ratio map around each selected run (`eigratio-<hash>/`).
pub const KIND: Kind = Kind {
    name: "eigen_ratio",
    parse: |block, _spec| read::<EigenRatioSettings>(block, |_, _| Ok(())),
};

impl Analysis for EigenRatioSettings {
    fn run(
        &self,
        ctx: &Context,
        cache: &mut DataCache,
        name: &str,
        runs: &[&TrainedRun],
        shard: Shard,
    ) -> Result<Vec<AnalysisOutput>> {
        let request = self.request(None);
        per_run(name, runs, |id| {
            let done = compute(ctx, cache, id, None, &request, shard)?;
            Ok(vec![(Artifact::EigenRatio, done.dir, done.complete)])
        })
    }
}

/// Computes (or resumes, or finds) shard `shard` of the eigen-ratio map `request` around run
/// `run_id` at `epoch` (default: the last).
pub fn compute(
    ctx: &Context,
    cache: &mut DataCache,
    run_id: &str,
    epoch: Option<u32>,
    request: &EigenRatioRequest,
    shard: Shard,
) -> Result<GridOutcome> {
    let label = format!("eigen-ratio {run_id} {}", request.x);
    with_curvature_input(
        ctx,
        cache,
        run_id,
        epoch,
        request.subset,
        request.micro_batch,
        |input| eigen_ratio::compute(&ctx.workdir, input, request, shard, &label),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        command: EigenRatioCommand,
    }

    #[test]
    fn the_block_and_the_command_share_every_default() {
        let block: EigenRatioSettings = toml::from_str("").unwrap();
        let command = Cli::parse_from(["e", "--run", "r"]).command;
        assert_eq!(block, command.settings);
        let r: EigenRatioSettings =
            toml::from_str("x = \"-1:1:5\"\ny = \"-1:1:5\"\nscope = \"weights-no-biasbn\"")
                .unwrap();
        assert_eq!(r.request(None).scope, CurvatureScope::WeightsNoBiasbn);
        assert!(toml::from_str::<EigenRatioSettings>("lanczos = 3").is_err());
    }
}
