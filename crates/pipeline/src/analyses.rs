//! Surfaces and interpolations of trained runs: one code path for `landscape surface`,
//! `landscape interpolate` and the `[[analysis]]` blocks of specs.

use crate::Context;
use crate::data;
use crate::runs::{OpenRun, TrainedRun};
use anyhow::{Result, bail};
use landscape_data::{Dataset, DatasetName};
use landscape_job::grid::GridOutcome;
use landscape_job::shard::Shard;
use landscape_models::ParamScope;
use landscape_models::eval::{DeviceBatches, Precision};
use landscape_spec::{AnalysisKind, Spec, analysis::same_value};
use landscape_surface::direction::{self, DirNorm, Direction, Ignore};
use landscape_surface::grid::{AxisRange, Grid};
use landscape_surface::surface::{ENGINE_VERSION, SurfaceJob, SurfaceKind, SurfaceMeta};
use landscape_train::data::{fixed_subset, upload};
use landscape_trajectory::trajectory::{
    PathPoint, TRAJECTORY_VERSION, TrajectoryJob, TrajectoryMeta, TrajectoryOutcome,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// A surface around one run.
#[derive(Clone, Debug)]
pub struct SurfaceRequest {
    /// First axis.
    pub x: AxisRange,
    /// Second axis (2-D).
    pub y: Option<AxisRange>,
    /// Direction normalization.
    pub norm: DirNorm,
    /// Treatment of 1-D tensors.
    pub ignore: Ignore,
    /// Which tensors move.
    pub scope: ParamScope,
    /// Seed of the random directions.
    pub seed: u64,
    /// Directions from a file instead of random ones.
    pub directions: Option<PathBuf>,
    /// The plane through the run and two other runs: x points to the first (at x = 1), y to
    /// the second, instead of random directions.
    pub plane: Option<[String; 2]>,
    /// Training examples per point (0: the run's training set).
    pub subset: usize,
    /// Measure test loss and accuracy too.
    pub test: bool,
    /// The number format of the inference.
    pub precision: Precision,
}

/// An interpolation between two runs.
#[derive(Clone, Debug)]
pub struct InterpolationRequest {
    /// Coordinates (0 is `from`, 1 is `to`).
    pub x: AxisRange,
    /// Which tensors move.
    pub scope: ParamScope,
    /// Training examples per point (0: the run's training set).
    pub subset: usize,
    /// Measure test loss and accuracy too.
    pub test: bool,
    /// The number format of the inference.
    pub precision: Precision,
}

/// Data sets and device-resident evaluation sets, loaded once per process.
#[derive(Default)]
pub struct DataCache {
    datasets: HashMap<DatasetName, Dataset>,
    batches: HashMap<(String, &'static str, usize, usize), DeviceBatches>,
}

impl DataCache {
    /// A cache that already holds `dataset`.
    pub fn with(dataset: Dataset) -> Self {
        let mut cache = Self::default();
        cache.datasets.insert(dataset.name, dataset);
        cache
    }

    fn dataset(&mut self, ctx: &Context, run: &OpenRun) -> Result<&Dataset> {
        let identity = &run.record.config.data;
        if let std::collections::hash_map::Entry::Vacant(e) = self.datasets.entry(identity.name) {
            e.insert(data::load(identity.name, &ctx.locations)?);
        }
        let ds = &self.datasets[&identity.name];
        if ds.fingerprint != identity.fingerprint {
            bail!(
                "run {} trained on a different `{}` than the one found now ({}): the data changed",
                run.record.id,
                identity.name,
                ds.source
            );
        }
        Ok(ds)
    }

    /// The run's training examples (its fixed subset, then the first `subset` of them) and its
    /// test examples, on the device.
    pub(crate) fn batches(
        &mut self,
        ctx: &Context,
        run: &OpenRun,
        subset: usize,
        test: bool,
    ) -> Result<(DeviceBatches, Option<DeviceBatches>)> {
        let train_cfg = run.record.config.train.clone();
        let key_train = (
            run.record.config.data.fingerprint.to_string(),
            "train",
            train_cfg.train_subset,
            subset,
        );
        let key_test = (
            run.record.config.data.fingerprint.to_string(),
            "test",
            train_cfg.test_subset,
            0,
        );
        if !self.batches.contains_key(&key_train) || (test && !self.batches.contains_key(&key_test))
        {
            let ds = self.dataset(ctx, run)?.clone();
            let have = fixed_subset(&ds.train, train_cfg.train_subset).len();
            if subset > have {
                bail!(
                    "subset {subset}: run {} trained on {have} examples; ask for at most that many (0: all)",
                    run.record.id
                );
            }
            if !self.batches.contains_key(&key_train) {
                let train = fixed_subset(&fixed_subset(&ds.train, train_cfg.train_subset), subset);
                self.batches.insert(
                    key_train.clone(),
                    upload(&train, &ds.normalization, &ctx.device)?,
                );
            }
            if test && !self.batches.contains_key(&key_test) {
                let set = fixed_subset(&ds.test, train_cfg.test_subset);
                self.batches.insert(
                    key_test.clone(),
                    upload(&set, &ds.normalization, &ctx.device)?,
                );
            }
        }
        Ok((
            self.batches[&key_train].clone(),
            test.then(|| self.batches[&key_test].clone()),
        ))
    }
}

/// Computes (or finds) the surface `request` around run `run_id` at `epoch` (default: last).
pub fn surface(
    ctx: &Context,
    cache: &mut DataCache,
    run_id: &str,
    epoch: Option<u32>,
    request: &SurfaceRequest,
    shard: Shard,
) -> Result<GridOutcome> {
    let run = OpenRun::open(&ctx.workdir, run_id)?;
    let (base_ref, base) = run.point(epoch, &ctx.device)?;
    let count = 1 + request.y.is_some() as usize;
    let directions = match (&request.directions, &request.plane) {
        (Some(_), Some(_)) => {
            bail!("give directions from a file or a plane through runs, not both")
        }
        (None, Some(through)) => {
            if count != 2 {
                bail!("a plane through three runs needs a 2-D grid (--y)");
            }
            through
                .iter()
                .map(|other| {
                    let theirs = OpenRun::open(&ctx.workdir, other)?;
                    let (their_ref, point) = theirs.point(None, &ctx.device)?;
                    Direction::difference(
                        &base,
                        &point,
                        request.scope,
                        &base_ref.to_string(),
                        &their_ref.to_string(),
                    )
                })
                .collect::<Result<Vec<_>>>()?
        }
        (Some(path), None) => {
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
        (None, None) => Direction::random(
            &base,
            request.scope,
            request.norm,
            request.ignore,
            request.seed,
            count,
        ),
    };
    let scope = directions[0].scope;
    let (train, test) = cache.batches(ctx, &run, request.subset, request.test)?;
    let grid = Grid {
        x: request.x,
        y: request.y,
    };
    for warning in grid.warnings() {
        eprintln!("warning: surface of run {run_id}: {warning}");
    }
    let meta = SurfaceMeta {
        engine: ENGINE_VERSION,
        kind: SurfaceKind::Surface,
        base: base_ref,
        directions: directions.iter().map(|d| d.recipe.clone()).collect(),
        scope,
        grid,
        train_examples: request.subset,
        test: request.test,
        precision: request.precision,
    };
    let label = format!("surface {} {}", run.record.id, meta.grid.x);
    let job = SurfaceJob {
        meta,
        network: &run.network,
        base,
        directions,
        train: &train,
        test: test.as_ref(),
    };
    job.run(&ctx.workdir, shard, &label)
}

/// Computes (or finds) the interpolation from run `from_id` to run `to_id` (last epochs).
pub fn interpolation(
    ctx: &Context,
    cache: &mut DataCache,
    from_id: &str,
    to_id: &str,
    request: &InterpolationRequest,
    shard: Shard,
) -> Result<GridOutcome> {
    let from = OpenRun::open(&ctx.workdir, from_id)?;
    let to = OpenRun::open(&ctx.workdir, to_id)?;
    if from.record.config.data != to.record.config.data {
        bail!(
            "runs {from_id} and {to_id} trained on different data; interpolating between them means little"
        );
    }
    let (from_ref, a) = from.point(None, &ctx.device)?;
    let (to_ref, b) = to.point(None, &ctx.device)?;
    let direction = Direction::difference(
        &a,
        &b,
        request.scope,
        &from_ref.to_string(),
        &to_ref.to_string(),
    )?;
    let (train, test) = cache.batches(ctx, &from, request.subset, request.test)?;
    let meta = SurfaceMeta {
        engine: ENGINE_VERSION,
        kind: SurfaceKind::Interpolation,
        base: from_ref,
        directions: vec![direction.recipe.clone()],
        scope: request.scope,
        grid: Grid {
            x: request.x,
            y: None,
        },
        train_examples: request.subset,
        test: request.test,
        precision: request.precision,
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

/// A trajectory of one run.
#[derive(Clone, Debug)]
pub struct TrajectoryRequest {
    /// Which tensors the path vectors cover.
    pub scope: ParamScope,
    /// `biasbn` leaves biases and BatchNorm out.
    pub ignore: Ignore,
    /// Seed of the random baseline directions.
    pub seed: u64,
    /// Training examples for the losses (0: the run's training set).
    pub subset: usize,
    /// Points per axis of the surface on the PCA plane.
    pub points: usize,
}

/// The PCA of run `run_id`'s path over every saved epoch, then the loss surface on the plane of
/// its first two components, spanning the path with a margin.
pub fn trajectory(
    ctx: &Context,
    cache: &mut DataCache,
    run_id: &str,
    request: &TrajectoryRequest,
    shard: Shard,
) -> Result<(TrajectoryOutcome, GridOutcome)> {
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
    let (train, _) = cache.batches(ctx, &run, request.subset, false)?;
    let job = TrajectoryJob {
        meta: TrajectoryMeta {
            version: TRAJECTORY_VERSION,
            run: run_id.into(),
            epochs: epochs.clone(),
            checkpoints: epochs
                .iter()
                .map(|&e| run.checkpoint_hash(e))
                .collect::<Result<_>>()?,
            scope: request.scope,
            ignore: request.ignore,
            seed: request.seed,
            train_examples: request.subset,
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
        format!("{}:{}:{}", lo - margin, hi + margin, request.points).parse()
    };
    let surface_request = SurfaceRequest {
        x: span(|p| p.pc1)?,
        y: Some(span(|p| p.pc2)?),
        norm: DirNorm::None,
        ignore: request.ignore,
        scope: request.scope,
        seed: request.seed,
        directions: Some(outcome.dir.join("directions.safetensors")),
        plane: None,
        subset: request.subset,
        test: false,
        precision: Precision::F32,
    };
    let plane = surface(ctx, cache, run_id, None, &surface_request, shard)?;
    Ok((outcome, plane))
}

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

/// Computes every analysis of `spec` over its trained runs (diverged runs are skipped).
pub fn run_all(
    ctx: &Context,
    cache: &mut DataCache,
    spec: &Spec,
    trained: &[TrainedRun],
    shard: Shard,
) -> Result<Vec<AnalysisOutput>> {
    let usable: Vec<&TrainedRun> = trained
        .iter()
        .filter(|t| t.status.state == landscape_train::RunState::Complete)
        .collect();
    let mut outputs = Vec::new();
    for analysis in &spec.analyses {
        let selected: Vec<&&TrainedRun> = usable
            .iter()
            .filter(|t| analysis.selects(&t.planned.sweep))
            .collect();
        match &analysis.kind {
            AnalysisKind::Surface(s) => {
                for run in selected {
                    let id = &run.planned.record.id;
                    for seed in s.seed..s.seed + s.repeats {
                        let request = SurfaceRequest {
                            x: s.x,
                            y: s.y,
                            norm: s.norm,
                            ignore: s.ignore,
                            scope: s.dir_type,
                            seed,
                            directions: None,
                            plane: None,
                            subset: s.subset,
                            test: s.test,
                            precision: s.precision,
                        };
                        let outcome = surface(ctx, cache, id, None, &request, shard)?;
                        outputs.push(AnalysisOutput {
                            analysis: analysis.name.clone(),
                            runs: vec![id.clone()],
                            sweep: run.planned.record.sweep.clone(),
                            artifact: Artifact::Surface,
                            dir: outcome.dir,
                            complete: outcome.complete,
                        });
                    }
                }
            }
            AnalysisKind::Trajectory(t) => {
                let request = TrajectoryRequest {
                    scope: t.dir_type,
                    ignore: t.ignore,
                    seed: t.seed,
                    subset: t.subset,
                    points: t.points,
                };
                for run in selected {
                    let id = &run.planned.record.id;
                    let (path, outcome) = trajectory(ctx, cache, id, &request, shard)?;
                    outputs.push(AnalysisOutput {
                        analysis: analysis.name.clone(),
                        runs: vec![id.clone()],
                        sweep: run.planned.record.sweep.clone(),
                        artifact: Artifact::Trajectory { path: path.dir },
                        dir: outcome.dir,
                        complete: outcome.complete,
                    });
                }
            }
            AnalysisKind::Hessian(h) => {
                for run in selected {
                    let id = &run.planned.record.id;
                    let done = crate::curvature::hessian(
                        ctx,
                        cache,
                        id,
                        None,
                        h.subset,
                        h.micro_batch,
                        &h.options(),
                    )?;
                    outputs.push(AnalysisOutput {
                        analysis: analysis.name.clone(),
                        runs: vec![id.clone()],
                        sweep: run.planned.record.sweep.clone(),
                        artifact: Artifact::Hessian,
                        dir: done.dir,
                        complete: true,
                    });
                }
            }
            AnalysisKind::Sharpness(s) => {
                for run in selected {
                    let id = &run.planned.record.id;
                    let done = crate::curvature::sharpness(
                        ctx,
                        cache,
                        id,
                        None,
                        s.subset,
                        s.micro_batch,
                        &s.options(),
                    )?;
                    outputs.push(AnalysisOutput {
                        analysis: analysis.name.clone(),
                        runs: vec![id.clone()],
                        sweep: run.planned.record.sweep.clone(),
                        artifact: Artifact::Sharpness,
                        dir: done.dir,
                        complete: true,
                    });
                }
            }
            AnalysisKind::EigenRatio(r) => {
                let request = r.request();
                for run in selected {
                    let id = &run.planned.record.id;
                    let done =
                        crate::curvature::eigen_ratio(ctx, cache, id, None, &request, shard)?;
                    outputs.push(AnalysisOutput {
                        analysis: analysis.name.clone(),
                        runs: vec![id.clone()],
                        sweep: run.planned.record.sweep.clone(),
                        artifact: Artifact::EigenRatio,
                        dir: done.dir,
                        complete: done.complete,
                    });
                }
            }
            AnalysisKind::Interpolate(a) => {
                let request = InterpolationRequest {
                    x: a.x,
                    scope: a.dir_type,
                    subset: a.subset,
                    test: a.test,
                    precision: a.precision,
                };
                for from in selected.iter().filter(|t| {
                    t.planned
                        .sweep
                        .sweep
                        .get(&a.pair)
                        .is_some_and(|v| same_value(v, a.from_value()))
                }) {
                    let partner = selected.iter().find(|t| {
                        t.planned.sweep.sweep.iter().all(|(k, v)| {
                            let other = &from.planned.sweep.sweep[k];
                            if k == &a.pair {
                                same_value(v, a.to_value())
                            } else {
                                same_value(v, other)
                            }
                        })
                    });
                    let Some(to) = partner else {
                        eprintln!(
                            "analysis {}: no finished partner run for {}; skipped",
                            analysis.name,
                            from.planned.sweep.label()
                        );
                        continue;
                    };
                    let outcome = interpolation(
                        ctx,
                        cache,
                        &from.planned.record.id,
                        &to.planned.record.id,
                        &request,
                        shard,
                    )?;
                    let mut sweep = from.planned.record.sweep.clone();
                    sweep.remove(&a.pair);
                    outputs.push(AnalysisOutput {
                        analysis: analysis.name.clone(),
                        runs: vec![from.planned.record.id.clone(), to.planned.record.id.clone()],
                        sweep,
                        artifact: Artifact::Surface,
                        dir: outcome.dir,
                        complete: outcome.complete,
                    });
                }
            }
        }
    }
    Ok(outputs)
}
