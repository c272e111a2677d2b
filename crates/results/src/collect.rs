//! What a reproduction gathers after its runs and analyses are done: each run's record,
//! metrics and final weights, each analysis's points, in forms the figures and findings use.

use anyhow::{Context, Result, bail};
use landscape_curvature::eigen_ratio::{RatioRow, read_map};
use landscape_curvature::job::{SharpnessReport, read_sharpness};
use landscape_figures::Grid2d;
use landscape_job::job::read_meta;
use landscape_job::journal::read_rows as read_points;
use landscape_models::{Network, NetworkSpec, ParamKind, checkpoint};
use landscape_pipeline::SpecOutcome;
use landscape_pipeline::analysis::Artifact;
use landscape_surface::points::PointRow;
use landscape_surface::surface::SurfaceMeta;
use landscape_train::metrics::{self, EpochMetrics};
use landscape_train::{RunDir, RunRecord, RunStatus};
use landscape_trajectory::trajectory::TrajectoryOutcome;
use std::path::Path;

/// One trained run.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// `run.toml`.
    pub record: RunRecord,
    /// How it ended.
    pub status: RunStatus,
    /// One row per epoch.
    pub metrics: Vec<EpochMetrics>,
}

impl RunResult {
    /// The swept value of `key` as the spec wrote it (`"128"`, `"0.0005"`).
    pub fn swept(&self, key: &str) -> Option<&str> {
        self.record.sweep.get(key).map(String::as_str)
    }

    /// The batch size in examples.
    pub fn batch_size(&self) -> usize {
        self.record.config.batch_size()
    }

    /// The training seed.
    pub fn seed(&self) -> u64 {
        self.record.config.train.seed
    }

    /// Whether `other` was trained with the same settings, on the same data, but for the seed:
    /// a replicate of this run.
    pub fn replicates(&self, other: &RunResult) -> bool {
        let mut mine = self.record.config.clone();
        mine.train.seed = other.seed();
        mine == other.record.config
    }

    /// Final test error, percent.
    pub fn test_error(&self) -> f64 {
        self.metrics.last().map_or(f64::NAN, |m| 100.0 - m.test_acc)
    }

    /// Final mean training loss.
    pub fn train_loss(&self) -> f64 {
        self.metrics
            .last()
            .and_then(|m| m.train_loss)
            .unwrap_or(f64::NAN)
    }

    /// Final L2 norm of all learnable parameters.
    pub fn weight_norm(&self) -> f64 {
        self.metrics.last().map_or(f64::NAN, |m| m.weight_l2)
    }

    /// The final convolution and linear weights, flattened (for histograms).
    pub fn final_weights(&self, workdir: &Path) -> Result<Vec<f64>> {
        let train = &self.record.config.train;
        let net = Network::new(NetworkSpec {
            arch: train.model,
            width: train.width,
            classes: self.record.config.data.classes,
        })?;
        let dir = RunDir::new(workdir, &self.record.id);
        let path = dir.checkpoint_path(self.status.epochs_done);
        let (params, _) = checkpoint::load(&path, net.layout(), &burn::tensor::Device::flex())?;
        Ok(net
            .layout()
            .entries()
            .iter()
            .zip(params.to_host())
            .filter(|(info, _)| {
                matches!(info.kind, ParamKind::ConvWeight | ParamKind::LinearWeight)
            })
            .flat_map(|(_, v)| v.into_iter().map(f64::from))
            .collect())
    }
}

/// `runs` in groups of replicates (the same settings, seeds apart), each in seed order, the
/// groups in the order of their first runs.
pub fn replicate_groups<'a>(runs: &[&'a RunResult]) -> Vec<Vec<&'a RunResult>> {
    let mut groups: Vec<Vec<&RunResult>> = Vec::new();
    for run in runs {
        match groups.iter_mut().find(|g| g[0].replicates(run)) {
            Some(group) => group.push(run),
            None => groups.push(vec![run]),
        }
    }
    for group in &mut groups {
        group.sort_by_key(|r| r.seed());
    }
    groups
}

/// One computed surface or interpolation.
#[derive(Clone, Debug)]
pub struct SurfaceResult {
    /// The analysis's name in the spec.
    pub analysis: String,
    /// The run ids (one; or from and to).
    pub runs: Vec<String>,
    /// What determined it.
    pub meta: SurfaceMeta,
    /// Its points in grid order.
    pub rows: Vec<PointRow>,
    /// For a trajectory analysis: the path and its PCA (the surface is its plane).
    pub trajectory: Option<TrajectoryOutcome>,
}

/// A 1-D curve: coordinates and the four measured series.
#[derive(Clone, Debug)]
pub struct Curve {
    /// Coordinates.
    pub x: Vec<f64>,
    /// Training loss.
    pub train_loss: Vec<f64>,
    /// Training accuracy, percent.
    pub train_acc: Vec<f64>,
    /// Test loss (empty when not measured).
    pub test_loss: Vec<f64>,
    /// Test accuracy (empty when not measured).
    pub test_acc: Vec<f64>,
    /// BatchNorm running-variance entries clamped at zero at each point: extrapolated
    /// statistics (an interpolation beyond its ends) can go negative, and a clamped variance
    /// divides its channel by sqrt(eps).
    pub clamped: Vec<u64>,
}

impl SurfaceResult {
    /// Reads the finished surface in `dir` (its `meta.toml` and `surface.csv`), as analysis
    /// `analysis` of `runs`.
    pub fn read(dir: &Path, analysis: String, runs: Vec<String>) -> Result<Self> {
        let meta: SurfaceMeta = read_meta(dir)
            .with_context(|| format!("{} is not a surface directory", dir.display()))?;
        let csv = dir.join("surface.csv");
        if !csv.exists() {
            bail!(
                "{}: missing (the surface is not finished; run it again to complete it)",
                csv.display()
            );
        }
        let rows = read_points(&csv)?;
        if rows.len() != meta.grid.len() {
            bail!(
                "{}: {} points for a grid of {}",
                csv.display(),
                rows.len(),
                meta.grid.len()
            );
        }
        Ok(Self {
            analysis,
            runs,
            meta,
            rows,
            trajectory: None,
        })
    }

    /// The points of a 1-D surface as a curve.
    pub fn curve(&self) -> Curve {
        let col = |f: fn(&PointRow) -> Option<f64>| -> Vec<f64> {
            self.rows.iter().filter_map(f).collect()
        };
        Curve {
            x: col(|r| Some(r.x)),
            train_loss: col(|r| Some(r.train_loss)),
            train_acc: col(|r| Some(r.train_acc)),
            test_loss: col(|r| r.test_loss),
            test_acc: col(|r| r.test_acc),
            clamped: self.rows.iter().map(|r| r.negative_var).collect(),
        }
    }

    /// The training loss of a 2-D surface as a grid.
    pub fn loss_grid(&self) -> Result<Grid2d> {
        loss_grid(&self.meta, self.train_loss())
    }

    /// The training loss at every point, in grid order.
    pub fn train_loss(&self) -> Vec<f64> {
        self.rows.iter().map(|r| r.train_loss).collect()
    }
}

/// Values `z` (in grid order) of the 2-D surface `meta` describes, as a grid.
pub fn loss_grid(meta: &SurfaceMeta, z: Vec<f64>) -> Result<Grid2d> {
    let y = meta.grid.y.context("not a 2-D surface")?;
    Grid2d::new(meta.grid.x.values(), y.values(), z)
}

/// A curvature analysis of one run.
#[derive(Clone, Debug)]
pub struct CurvatureResult {
    /// The analysis's name in the spec.
    pub analysis: String,
    /// The run.
    pub run: String,
    /// What was measured.
    pub measured: Curvature,
}

/// The kinds of curvature results the figures use.
#[derive(Clone, Debug)]
pub enum Curvature {
    /// A sharpness table.
    Sharpness(SharpnessReport),
    /// An eigen-ratio map, in grid order.
    EigenRatio(Vec<RatioRow>),
}

/// Everything a reproduction gathered.
pub struct Collected {
    /// The runs, in sweep order.
    pub runs: Vec<RunResult>,
    /// The analyses' surfaces (and trajectories), in spec order.
    pub surfaces: Vec<SurfaceResult>,
    /// The analyses' curvature results, in spec order.
    pub curvature: Vec<CurvatureResult>,
}

impl Collected {
    /// Reads the files of `outcome`'s runs and (complete) analyses under `workdir`.
    pub fn read(workdir: &Path, outcome: &SpecOutcome) -> Result<Self> {
        let runs = outcome
            .runs
            .iter()
            .map(|t| {
                let dir = RunDir::new(workdir, &t.planned.record.id);
                Ok(RunResult {
                    record: t.planned.record.clone(),
                    status: t.status.clone(),
                    metrics: metrics::read(&dir.metrics_path())?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let surfaces = outcome
            .analyses
            .iter()
            .filter(|a| matches!(a.artifact, Artifact::Surface | Artifact::Trajectory { .. }))
            .map(|a| {
                if !a.complete {
                    bail!(
                        "analysis {} of {} is incomplete",
                        a.analysis,
                        a.runs.join(" -> ")
                    );
                }
                let trajectory = match &a.artifact {
                    Artifact::Trajectory { path } => {
                        Some(landscape_trajectory::trajectory::read(path)?)
                    }
                    _ => None,
                };
                Ok(SurfaceResult {
                    trajectory,
                    ..SurfaceResult::read(&a.dir, a.analysis.clone(), a.runs.clone())?
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let curvature = outcome
            .analyses
            .iter()
            .filter_map(|a| {
                let measured = match a.artifact {
                    Artifact::Sharpness => {
                        read_sharpness(&a.dir.join("sharpness.csv")).map(Curvature::Sharpness)
                    }
                    Artifact::EigenRatio => read_map(&a.dir).map(|mut rows| {
                        rows.sort_by_key(|r| (r.iy, r.ix));
                        Curvature::EigenRatio(rows)
                    }),
                    _ => return None,
                };
                Some(measured.map(|measured| CurvatureResult {
                    analysis: a.analysis.clone(),
                    run: a.runs[0].clone(),
                    measured,
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            runs,
            surfaces,
            curvature,
        })
    }

    /// The run with this id.
    pub fn run(&self, id: &str) -> Option<&RunResult> {
        self.runs.iter().find(|r| r.record.id == id)
    }

    /// The surface of analysis `name` for run `id` (a surface's only run, or an
    /// interpolation's first).
    pub fn surface(&self, name: &str, id: &str) -> Option<&SurfaceResult> {
        self.surfaces_of(name, id).into_iter().next()
    }

    /// Every surface of analysis `name` around run `id`, in seed order (an analysis with
    /// `repeats` has several).
    pub fn surfaces_of(&self, name: &str, id: &str) -> Vec<&SurfaceResult> {
        self.surfaces
            .iter()
            .filter(|s| s.analysis == name && s.runs.first().is_some_and(|r| r == id))
            .collect()
    }

    /// The sharpness report of run `id`.
    pub fn sharpness(&self, id: &str) -> Option<&SharpnessReport> {
        self.curvature.iter().find_map(|c| match &c.measured {
            Curvature::Sharpness(r) if c.run == id => Some(r),
            _ => None,
        })
    }

    /// The eigen-ratio map of run `id`.
    pub fn ratio_map(&self, id: &str) -> Option<&[RatioRow]> {
        self.curvature.iter().find_map(|c| match &c.measured {
            Curvature::EigenRatio(rows) if c.run == id => Some(rows.as_slice()),
            _ => None,
        })
    }
}
