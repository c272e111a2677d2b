//! Running experiments: a spec's data found (or stood in for, loudly), its runs trained, its
//! analyses computed, each step cached by content hash under the work directory.
//!
//! ```no_run
//! # fn demo(ctx: landscape_pipeline::Context) -> anyhow::Result<()> {
//! use landscape_job::shard::Shard;
//! use landscape_spec::{Scale, Spec};
//! let spec = Spec::load("experiments/figure3.toml".as_ref(), Scale::Smoke, &[])?;
//! let outcome = landscape_pipeline::run_spec(&ctx, &spec, None, true, Shard::WHOLE)?;
//! println!("{} runs, {} analyses", outcome.runs.len(), outcome.analyses.len());
//! # Ok(()) }
//! ```

pub mod analysis;
pub mod bench;
pub mod cache;
pub mod data;
pub mod import;
pub mod jobs;
pub mod runs;

use anyhow::{Result, bail};
use burn::tensor::Device;
use landscape_core::device::DeviceKind;
use landscape_data::{DataLocations, DatasetName};
use landscape_job::shard::Shard;
use landscape_spec::Spec;
use std::path::PathBuf;

/// Where artifacts go and what computes them.
pub struct Context {
    /// The work directory holding every run and surface.
    pub workdir: PathBuf,
    /// The compute device.
    pub device: Device,
    /// Which kind of device, for records.
    pub device_kind: DeviceKind,
    /// Where data sets are found and downloaded to.
    pub locations: DataLocations,
}

/// What running a spec produced.
pub struct SpecOutcome {
    /// The data used.
    pub data: data::ResolvedData,
    /// The runs, trained or found.
    pub runs: Vec<runs::TrainedRun>,
    /// The analyses, computed or found.
    pub analyses: Vec<analysis::AnalysisOutput>,
}

/// Trains the runs of `spec` in `share` (run `i`, counted from 0 in sweep order, is in shard
/// `k/n` when `i % n == k - 1`; [`Shard::WHOLE`]: every run) and, when `analyse` is set,
/// computes its analyses (which need every run). `dataset` replaces the spec's data set (no
/// stand-in is then allowed). Every analysis block is read first, so a mistake in one stops
/// the spec before anything is trained.
pub fn run_spec(
    ctx: &Context,
    spec: &Spec,
    dataset: Option<DatasetName>,
    analyse: bool,
    share: Shard,
) -> Result<SpecOutcome> {
    if analyse && share != Shard::WHOLE {
        bail!(
            "--shard {share}: the analyses need every run; train the shards, then run the spec whole"
        );
    }
    let blocks = analysis::plan(spec)?;
    let allow_stand_in = dataset.is_none();
    let named = dataset.unwrap_or_else(|| spec.experiment.dataset.clone());
    let data = data::resolve(&named, &ctx.locations, allow_stand_in)?;
    let planned: Vec<_> = runs::plan(ctx, spec, &data)?
        .into_iter()
        .enumerate()
        .filter(|(i, _)| share.owns(*i))
        .map(|(_, run)| run)
        .collect();
    let runs = runs::train_all(ctx, spec, &data, &planned)?;
    let analyses = if analyse {
        let mut cache = cache::DataCache::with(data.dataset.clone());
        analysis::run_all(ctx, &mut cache, &blocks, &runs, Shard::WHOLE)?
    } else {
        Vec::new()
    };
    Ok(SpecOutcome {
        data,
        runs,
        analyses,
    })
}
