//! Curvature and sharpness of trained runs: one code path for `landscape hessian`,
//! `landscape sharpness`, `landscape eigen-ratio` and the `[[analysis]]` kinds `hessian`,
//! `sharpness` and `eigen_ratio`.

use crate::Context;
use crate::analyses::DataCache;
use crate::runs::OpenRun;
use anyhow::Result;
use landscape_curvature::eigen_ratio::{self, EigenRatioRequest};
use landscape_curvature::job::{
    self, CurvatureInput, HessianOptions, HessianReport, Outcome, SharpnessOptions, SharpnessReport,
};
use landscape_job::grid::GridOutcome;
use landscape_job::shard::Shard;

/// Opens run `run_id` at `epoch` (default: the last) with `subset` training examples (its
/// fixed subset; 0: all) on the device, and hands them to `f`.
fn with_input<T>(
    ctx: &Context,
    cache: &mut DataCache,
    run_id: &str,
    epoch: Option<u32>,
    subset: usize,
    micro_batch: usize,
    f: impl FnOnce(&CurvatureInput<'_>) -> Result<T>,
) -> Result<T> {
    let run = OpenRun::open(&ctx.workdir, run_id)?;
    let (point, params) = run.point(epoch, &ctx.device)?;
    let (train, _) = cache.batches(ctx, &run, subset, false)?;
    let input = CurvatureInput {
        layers: run.network.layers(),
        params,
        point,
        train_examples: subset,
        batches: train.batches(),
        micro_batch,
    };
    f(&input)
}

/// Computes (or finds) the Hessian report of run `run_id`.
pub fn hessian(
    ctx: &Context,
    cache: &mut DataCache,
    run_id: &str,
    epoch: Option<u32>,
    subset: usize,
    micro_batch: usize,
    options: &HessianOptions,
) -> Result<Outcome<HessianReport>> {
    with_input(ctx, cache, run_id, epoch, subset, micro_batch, |input| {
        job::hessian(&ctx.workdir, input, options)
    })
}

/// Computes (or finds) the sharpness table of run `run_id`.
pub fn sharpness(
    ctx: &Context,
    cache: &mut DataCache,
    run_id: &str,
    epoch: Option<u32>,
    subset: usize,
    micro_batch: usize,
    options: &SharpnessOptions,
) -> Result<Outcome<SharpnessReport>> {
    with_input(ctx, cache, run_id, epoch, subset, micro_batch, |input| {
        job::sharpness(&ctx.workdir, input, options)
    })
}

/// Computes (or resumes, or finds) shard `shard` of the eigen-ratio map `request` around run
/// `run_id`.
pub fn eigen_ratio(
    ctx: &Context,
    cache: &mut DataCache,
    run_id: &str,
    epoch: Option<u32>,
    request: &EigenRatioRequest,
    shard: Shard,
) -> Result<GridOutcome> {
    let label = format!("eigen-ratio {run_id} {}", request.x);
    with_input(
        ctx,
        cache,
        run_id,
        epoch,
        request.subset,
        request.micro_batch,
        |input| eigen_ratio::compute(&ctx.workdir, input, request, shard, &label),
    )
}
