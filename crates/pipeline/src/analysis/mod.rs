//! The kinds of analysis, one module each. A kind's settings type is both its spec's
//! `[[analysis]]` block and its command's arguments: it derives `clap::Args` and serde's
//! `Deserialize`, each default is written once, in the clap attribute, and serde's defaults are
//! read from clap ([`default_from_args!`]). A kind has one entry that computes it, which its
//! command and [`run_all`] both call.
//!
//! Adding a measure is one module and one line in [`KINDS`]:
//! 1. `analysis/<kind>.rs` with the settings struct (`#[derive(Args, Deserialize)]`,
//!    `#[serde(default, deny_unknown_fields)]`, `default_from_args!(Settings)`), a type
//!    implementing [`Analysis`] (a parsed block: what it computes over the runs it selects) and
//!    `pub const KIND: Kind`;
//! 2. its line in [`KINDS`];
//! 3. its command (the settings flattened beside `--run`) in the binary's `Command` enum.

pub mod eigen_ratio;
pub mod hessian;
pub mod interpolate;
pub mod sharpness;
pub mod surface;
pub mod trajectory;

use crate::Context;
use crate::cache::DataCache;
use crate::runs::{OpenRun, TrainedRun};
use anyhow::{Context as _, Result, anyhow, bail};
use landscape_curvature::job::{CurvatureInput, Outcome};
use landscape_job::shard::Shard;
use landscape_spec::{AnalysisBlock, Spec};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Table;

/// Every kind of analysis: `kind = "<name>"` in specs.
pub const KINDS: &[Kind] = &[
    surface::KIND,
    interpolate::KIND,
    trajectory::KIND,
    hessian::KIND,
    sharpness::KIND,
    eigen_ratio::KIND,
];

/// One kind of analysis: its name in specs and how a block of it is read.
pub struct Kind {
    /// `kind = "<name>"`.
    pub name: &'static str,
    /// Reads and checks a block of this kind against the spec it is in.
    pub parse: fn(&AnalysisBlock, &Spec) -> Result<Box<dyn Analysis>>,
}

/// A block read and checked: what it computes over the runs it selects.
pub trait Analysis: std::fmt::Debug {
    /// Computes (or finds) the analysis `name` over `runs`, the finished runs its block
    /// selects.
    fn run(
        &self,
        ctx: &Context,
        cache: &mut DataCache,
        name: &str,
        runs: &[&TrainedRun],
        shard: Shard,
    ) -> Result<Vec<AnalysisOutput>>;
}

/// A spec's block with its kind's reading of it.
#[derive(Debug)]
pub struct Planned {
    /// The block as the spec wrote it.
    pub block: AnalysisBlock,
    /// What it computes.
    pub analysis: Box<dyn Analysis>,
}

/// Reads every `[[analysis]]` block of `spec` through its kind, before anything is computed:
/// errors name the spec file and the block's key.
pub fn plan(spec: &Spec) -> Result<Vec<Planned>> {
    spec.analyses
        .iter()
        .map(|block| {
            let kind = KINDS.iter().find(|k| k.name == block.kind).ok_or_else(|| {
                let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
                anyhow!(
                    "{}.kind: unknown kind `{}`, expected one of {}",
                    block.at(),
                    block.kind,
                    names.join(", ")
                )
            })?;
            Ok(Planned {
                block: block.clone(),
                analysis: (kind.parse)(block, spec)?,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| anyhow!("{}: {e:#}", spec.path.display()))
}

/// Reads a block of a kind whose settings are what it computes: its settings, checked by
/// `check` (given the block's `analysis.<name>` for errors).
pub(crate) fn read<T: DeserializeOwned + Analysis + 'static>(
    block: &AnalysisBlock,
    check: fn(&T, &str) -> Result<()>,
) -> Result<Box<dyn Analysis>> {
    let settings: T = settings(&block.settings, &block.at())?;
    check(&settings, &block.at())?;
    Ok(Box::new(settings))
}

/// A kind that computes one report per run from its settings (`hessian`, `sharpness`); it is
/// an [`Analysis`], and its command is a [`ReportCommand`].
pub trait PerRunReport: std::fmt::Debug {
    /// The report.
    type Report;
    /// What it leaves.
    const ARTIFACT: Artifact;
    /// What errors call it (`Hessian`, `sharpness`).
    const WHAT: &'static str;
    /// Training examples the loss averages over, and examples per backward pass.
    fn data(&self) -> (usize, usize);
    /// Computes (or finds) the report of `input` under `workdir` (the curvature crate's job).
    fn report(&self, workdir: &Path, input: &CurvatureInput<'_>) -> Result<Outcome<Self::Report>>;
    /// What its command prints.
    fn summary(outcome: &Outcome<Self::Report>) -> String;

    /// Computes (or finds) the report of run `run_id` at `epoch` (default: the last).
    fn compute(
        &self,
        ctx: &Context,
        cache: &mut DataCache,
        run_id: &str,
        epoch: Option<u32>,
    ) -> Result<Outcome<Self::Report>> {
        let (subset, micro_batch) = self.data();
        with_curvature_input(ctx, cache, run_id, epoch, subset, micro_batch, |input| {
            self.report(&ctx.workdir, input)
        })
    }
}

impl<S: PerRunReport> Analysis for S {
    fn run(
        &self,
        ctx: &Context,
        cache: &mut DataCache,
        name: &str,
        runs: &[&TrainedRun],
        _shard: Shard,
    ) -> Result<Vec<AnalysisOutput>> {
        per_run(name, runs, |id| {
            let done = self.compute(ctx, cache, id, None)?;
            Ok(vec![(S::ARTIFACT, done.dir, true)])
        })
    }
}

/// `landscape hessian ...`, `landscape sharpness ...`: a run's report with the kind's settings.
#[derive(clap::Args, Debug)]
pub struct ReportCommand<S: clap::Args> {
    /// The run whose minimum is measured (see `landscape runs`).
    #[arg(long)]
    pub run: String,
    /// The checkpoint's epoch (default: the last).
    #[arg(long)]
    pub epoch: Option<u32>,
    /// What to compute.
    #[command(flatten)]
    pub settings: S,
}

impl<S: clap::Args + PerRunReport> ReportCommand<S> {
    /// Computes (or finds) the report; what the command prints.
    pub fn run(&self, ctx: &Context) -> Result<String> {
        let outcome = self
            .settings
            .compute(ctx, &mut DataCache::default(), &self.run, self.epoch)
            .with_context(|| format!("{} of run {}", S::WHAT, self.run))?;
        Ok(S::summary(&outcome))
    }
}

/// Reads a kind's settings from a block's table: a missing key takes the command's default, an
/// unknown key or a wrong type is one line naming `analysis.<name>.<key>`.
pub fn settings<T: DeserializeOwned>(table: &Table, at: &str) -> Result<T> {
    landscape_spec::deserialize_at(toml::Value::Table(table.clone()), at)
}

/// The settings an empty command line gives: every default as the clap attributes write it.
/// Panics if a field has no default (a kind's settings must all have one).
pub fn defaults_from_args<T: clap::Args + clap::FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults").no_binary_name(true));
    let matches = command
        .try_get_matches_from(std::iter::empty::<String>())
        .expect("every setting of an analysis has a default");
    T::from_arg_matches(&matches).expect("defaults parse into their own type")
}

/// `impl Default` for a kind's settings from its clap attributes ([`defaults_from_args`]), so
/// serde's `#[serde(default)]` and the command line share every default.
macro_rules! default_from_args {
    ($settings:ty) => {
        impl Default for $settings {
            fn default() -> Self {
                $crate::analysis::defaults_from_args()
            }
        }
    };
}
pub(crate) use default_from_args;

/// Training examples a curvature analysis averages over by default (PyHessian: about 4,096
/// samples give stable top eigenvalues on CIFAR-10).
pub const CURVATURE_SUBSET: usize = 4096;

/// Examples per backward pass of the curvature analyses (memory only; results do not depend on
/// it).
pub const MICRO_BATCH: usize = 128;

/// What an analysis left on disk.
#[derive(Clone, Debug, PartialEq)]
pub enum Artifact {
    /// A surface or an interpolation: `surface.csv` in its directory.
    Surface,
    /// A trajectory (`path`: its directory); the output's directory is the surface on its PCA
    /// plane.
    Trajectory {
        /// The trajectory's directory (`path.csv`, `pca.toml`, `directions.safetensors`).
        path: PathBuf,
    },
    /// A Hessian report (`hessian.toml`, `spectrum.csv`).
    Hessian,
    /// A sharpness table (`sharpness.csv`).
    Sharpness,
    /// An eigen-ratio map (`ratio.csv`).
    EigenRatio,
}

/// One computed analysis of a spec.
#[derive(Clone, Debug)]
pub struct AnalysisOutput {
    /// The analysis's name in the spec.
    pub analysis: String,
    /// The runs it covers (one; or from and to for an interpolation).
    pub runs: Vec<String>,
    /// The swept values that identify it (`weight_decay = 0.0` for an interpolation pair).
    pub sweep: BTreeMap<String, String>,
    /// What it left.
    pub artifact: Artifact,
    /// Its directory.
    pub dir: PathBuf,
    /// Whether it is finished (a sharded surface may not be).
    pub complete: bool,
}

/// Computes every planned analysis over the finished runs its block selects (diverged runs are
/// skipped).
pub fn run_all(
    ctx: &Context,
    cache: &mut DataCache,
    planned: &[Planned],
    trained: &[TrainedRun],
    shard: Shard,
) -> Result<Vec<AnalysisOutput>> {
    let usable: Vec<&TrainedRun> = trained
        .iter()
        .filter(|t| t.status.state == landscape_train::RunState::Complete)
        .collect();
    let mut outputs = Vec::new();
    for p in planned {
        let selected: Vec<&TrainedRun> = usable
            .iter()
            .copied()
            .filter(|t| p.block.selects(&t.planned.sweep))
            .collect();
        outputs.extend(
            p.analysis
                .run(ctx, cache, &p.block.name, &selected, shard)?,
        );
    }
    Ok(outputs)
}

/// Runs `compute` on each of `runs` (by id), which gives the artifacts (kind, directory,
/// complete) of analysis `name` for that run: the loop of every kind that computes per run.
pub(crate) fn per_run(
    name: &str,
    runs: &[&TrainedRun],
    mut compute: impl FnMut(&str) -> Result<Vec<(Artifact, PathBuf, bool)>>,
) -> Result<Vec<AnalysisOutput>> {
    let mut out = Vec::new();
    for run in runs {
        for (artifact, dir, complete) in compute(&run.planned.record.id)? {
            out.push(AnalysisOutput {
                analysis: name.to_string(),
                runs: vec![run.planned.record.id.clone()],
                sweep: run.planned.record.sweep.clone(),
                artifact,
                dir,
                complete,
            });
        }
    }
    Ok(out)
}

/// Opens run `run_id` at `epoch` (default: the last) with `subset` training examples (its
/// fixed subset; 0: all) on the device, and hands them to `f`: the input of every curvature
/// kind.
pub(crate) fn with_curvature_input<T>(
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

/// Refuses a setting that must be at least `min`.
pub(crate) fn at_least(value: u64, min: u64, at: &str, key: &str) -> Result<()> {
    if value < min {
        bail!("{at}.{key}: expected at least {min}, got {value}");
    }
    Ok(())
}
