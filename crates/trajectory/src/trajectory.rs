//! A run's optimization path: PCA of its per-epoch checkpoints, the path's coordinates on the
//! first two components, the true loss at each iterate beside the loss of its projection on
//! that plane, and the random-direction baseline (paper.md figures 8 and 9).
//!
//! Output in `<workdir>/trajectory-<hash>/`: `pca.toml` (explained variance), `path.csv`,
//! `directions.safetensors` (the two components, unit norm, which `landscape surface
//! --directions` accepts to draw the loss on the PCA plane).

use crate::pca::{PathPca, PathSource, Segment, path_pca};
use anyhow::{Context, Result, bail};
use burn::tensor::{Tensor, TensorData};
use landscape_core::atomic::{write_atomic, write_atomic_with};
use landscape_core::hash::ContentHash;
use landscape_core::tensor_file::TensorIndex;
use landscape_job::job::{Job, JobMeta};
use landscape_job::shard::Shard;
use landscape_models::eval::{DeviceBatches, Evaluator};
use landscape_models::{Network, ParamLayout, ParamScope, ParamSet, checkpoint};
use landscape_surface::direction::{self, DirNorm, Direction, DirectionRecipe, Ignore};
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Bumped whenever the trajectory computation changes.
pub const TRAJECTORY_VERSION: u32 = 1;

/// Values read at a time from all checkpoints together (about 256 MB of f32).
const MEMORY_VALUES: usize = 64 << 20;

/// Everything that determines a trajectory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryMeta {
    /// [`TRAJECTORY_VERSION`].
    pub version: u32,
    /// The run.
    pub run: String,
    /// The saved epochs used, ascending; the last is the final point.
    pub epochs: Vec<u32>,
    /// SHA-256 of each epoch's checkpoint file (a checkpoint replaced in place is another path).
    pub checkpoints: Vec<ContentHash>,
    /// Which tensors the vectors cover.
    pub scope: ParamScope,
    /// `biasbn` leaves biases and BatchNorm out of the vectors (zeroed), as the reference can.
    pub ignore: Ignore,
    /// Seed of the two random filter-normalized directions of the baseline.
    pub seed: u64,
    /// Training examples the losses along the path are measured on (0: all of the run's).
    pub train_examples: usize,
}

impl JobMeta for TrajectoryMeta {
    fn kind(&self) -> &'static str {
        "trajectory"
    }
}

/// A trajectory ready to compute.
pub struct TrajectoryJob<'a> {
    /// What determines it.
    pub meta: TrajectoryMeta,
    /// The network.
    pub network: &'a Network,
    /// The checkpoint of each epoch in `meta.epochs`.
    pub checkpoints: Vec<PathBuf>,
    /// The learning rate of each epoch in `meta.epochs` (for marking decays).
    pub lrs: Vec<f64>,
    /// Training data for the losses along the path.
    pub train: &'a DeviceBatches,
}

/// One row of `path.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathPoint {
    /// The epoch.
    pub epoch: u32,
    /// Its learning rate.
    pub lr: f64,
    /// Coordinate on the first component.
    pub pc1: f64,
    /// Coordinate on the second component.
    pub pc2: f64,
    /// `||theta_e - theta_final||`.
    pub distance: f64,
    /// Share of `||theta_e - theta_final||^2` the PCA plane captures, percent.
    pub in_plane_pct: f64,
    /// Training loss at the iterate itself.
    pub true_train_loss: f64,
    /// Training loss at its projection on the PCA plane (what a contour plot shows there).
    pub projected_train_loss: f64,
    /// Cosine between `theta_e - theta_final` and the first random direction.
    pub random_cos1: f64,
    /// Cosine with the second random direction.
    pub random_cos2: f64,
}

/// `pca.toml`: the summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PcaSummary {
    /// Share of the variance explained by each component, percent (the first ten).
    pub explained_pct: Vec<f64>,
    /// Number of values in a vector.
    pub dimensions: usize,
    /// `sqrt(2 / (pi n))`: the expected |cosine| of a vector with a random direction in `n`
    /// dimensions.
    pub random_cos_expected: f64,
    /// Mean |cosine| of the path's steps with the random directions.
    pub random_cos_mean: f64,
}

/// What a finished trajectory left.
#[derive(Clone, Debug)]
pub struct TrajectoryOutcome {
    /// Its directory.
    pub dir: PathBuf,
    /// The summary.
    pub summary: PcaSummary,
    /// The path.
    pub path: Vec<PathPoint>,
}

/// The segments a vector is made of: every tensor of `scope`, minus the 1-D ones when biases
/// and BatchNorm are ignored.
pub fn segments(layout: &ParamLayout, scope: ParamScope, ignore: Ignore) -> Vec<Segment> {
    layout
        .entries()
        .iter()
        .filter(|e| scope.includes(e.kind) && !(ignore == Ignore::Biasbn && e.shape.len() <= 1))
        .map(|e| Segment {
            name: e.name.clone(),
            start: 0,
            len: e.numel(),
        })
        .collect()
}

impl TrajectoryJob<'_> {
    /// Computes the trajectory, or reads it back when it is already there.
    pub fn run(&self, workdir: &Path) -> Result<TrajectoryOutcome> {
        if let Some(path) = Job::finished(workdir, &self.meta, "path.csv")? {
            return read(path.parent().expect("path.csv is in its job's directory"));
        }
        if self.checkpoints.len() != self.meta.epochs.len()
            || self.meta.checkpoints.len() != self.meta.epochs.len()
            || self.lrs.len() != self.meta.epochs.len()
        {
            bail!(
                "{} epochs but {} checkpoints and {} rates",
                self.meta.epochs.len(),
                self.checkpoints.len(),
                self.lrs.len()
            );
        }
        let job = Job::open(
            workdir,
            self.meta.clone(),
            Shard::WHOLE,
            &format!("trajectory {}", self.meta.run),
        )?;
        let dir = job.dir().to_path_buf();
        let layout = self.network.layout();
        let last_path = self.checkpoints.last().context("no checkpoints")?;
        let (last, _) = checkpoint::load(last_path, layout, &self.train_device())?;
        let segs = segments(layout, self.meta.scope, self.meta.ignore);
        let source = PathSource {
            rows: self
                .checkpoints
                .iter()
                .map(|p| TensorIndex::open(p))
                .collect::<Result<Vec<_>>>()?,
            last: TensorIndex::open(last_path)?,
            segments: segs.clone(),
        };
        let random = Direction::random(
            &last,
            self.meta.scope,
            DirNorm::Filter,
            self.meta.ignore,
            self.meta.seed,
            2,
        );
        let extras: Vec<Vec<f32>> = random
            .iter()
            .map(|d| flatten_over(d, layout, &segs))
            .collect();
        let pca = path_pca(&source, &extras, MEMORY_VALUES)?;
        let components = self.components(&pca, &last, &segs)?;
        direction::save(
            &dir.join("directions.safetensors"),
            layout,
            &components,
            &self.meta.run,
        )?;
        let path = self.path(&pca, &extras, &last, &components)?;
        let n = source.len() as f64;
        let cos_mean = path
            .iter()
            .filter(|p| p.distance > 0.0)
            .flat_map(|p| [p.random_cos1.abs(), p.random_cos2.abs()])
            .sum::<f64>()
            / (2 * path.iter().filter(|p| p.distance > 0.0).count()).max(1) as f64;
        let summary = PcaSummary {
            explained_pct: pca.explained.iter().take(10).map(|v| 100.0 * v).collect(),
            dimensions: source.len(),
            random_cos_expected: (2.0 / (std::f64::consts::PI * n)).sqrt(),
            random_cos_mean: cos_mean,
        };
        write_atomic(
            &dir.join("pca.toml"),
            toml::to_string_pretty(&summary)?.as_bytes(),
        )?;
        write_atomic_with(&dir.join("path.csv"), |w| {
            writeln!(w, "{HEADER}")?;
            for p in &path {
                w.write_all(p.to_line().as_bytes())?;
            }
            Ok(())
        })?;
        Ok(TrajectoryOutcome { dir, summary, path })
    }

    fn train_device(&self) -> burn::tensor::Device {
        self.train
            .batches()
            .first()
            .map(|(x, _)| x.device())
            .unwrap_or_else(burn::tensor::Device::flex)
    }

    /// The two components as directions on the device (zero on ignored tensors).
    fn components(
        &self,
        pca: &PathPca,
        last: &ParamSet,
        segs: &[Segment],
    ) -> Result<Vec<Direction>> {
        let device = self.train_device();
        (0..2)
            .map(|k| {
                let mut offset = 0;
                let tensors = last
                    .layout()
                    .entries()
                    .iter()
                    .map(|info| {
                        if !self.meta.scope.includes(info.kind) {
                            return None;
                        }
                        let values = if segs.iter().any(|s| s.name == info.name) {
                            let v = pca.components[k][offset..offset + info.numel()].to_vec();
                            offset += info.numel();
                            v
                        } else {
                            vec![0.0; info.numel()]
                        };
                        Some(Tensor::<1>::from_data(
                            TensorData::new(values, [info.numel()]),
                            &device,
                        ))
                    })
                    .collect();
                Ok(Direction {
                    scope: self.meta.scope,
                    tensors,
                    recipe: DirectionRecipe::Pca {
                        run: self.meta.run.clone(),
                        component: k,
                        explained: pca.explained[k],
                    },
                })
            })
            .collect()
    }

    /// The rows of `path.csv`: coordinates, in-plane share, true and projected losses, and the
    /// cosines with the random directions.
    fn path(
        &self,
        pca: &PathPca,
        extras: &[Vec<f32>],
        last: &ParamSet,
        components: &[Direction],
    ) -> Result<Vec<PathPoint>> {
        let evaluator = Evaluator::new(self.network.layers());
        let device = self.train_device();
        let extra_norms: Vec<f64> = extras
            .iter()
            .map(|x| x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt())
            .collect();
        self.meta
            .epochs
            .iter()
            .enumerate()
            .map(|(i, &epoch)| {
                let [x, y] = pca.coords[i];
                let distance = pca.row_norms[i];
                let (params, _) =
                    checkpoint::load(&self.checkpoints[i], self.network.layout(), &device)?;
                let true_loss = evaluator.evaluate(params.tensors(), self.train).loss;
                let projected = direction::displaced(last, components, &[x, y]);
                let projected_loss = evaluator.evaluate(&projected, self.train).loss;
                let cos = |k: usize| {
                    if distance > 0.0 {
                        pca.dots[k][i] / (distance * extra_norms[k])
                    } else {
                        0.0
                    }
                };
                Ok(PathPoint {
                    epoch,
                    lr: self.lrs[i],
                    pc1: x,
                    pc2: y,
                    distance,
                    in_plane_pct: if distance > 0.0 {
                        100.0 * (x * x + y * y) / (distance * distance)
                    } else {
                        100.0
                    },
                    true_train_loss: true_loss,
                    projected_train_loss: projected_loss,
                    random_cos1: cos(0),
                    random_cos2: cos(1),
                })
            })
            .collect()
    }
}

/// The values of `direction` over `segs`, concatenated (host).
fn flatten_over(direction: &Direction, layout: &ParamLayout, segs: &[Segment]) -> Vec<f32> {
    let mut out = Vec::new();
    for seg in segs {
        let i = layout
            .entries()
            .iter()
            .position(|e| e.name == seg.name)
            .expect("segment of this layout");
        let values: Vec<f32> = direction.tensors[i]
            .as_ref()
            .expect("in scope")
            .to_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32");
        out.extend_from_slice(&values[seg.start..seg.start + seg.len]);
    }
    out
}

const HEADER: &str = "epoch,lr,pc1,pc2,distance,in_plane_pct,true_train_loss,projected_train_loss,random_cos1,random_cos2";

impl PathPoint {
    fn to_line(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            self.epoch,
            self.lr,
            self.pc1,
            self.pc2,
            self.distance,
            self.in_plane_pct,
            self.true_train_loss,
            self.projected_train_loss,
            self.random_cos1,
            self.random_cos2
        )
    }
}

/// Reads a finished trajectory directory.
pub fn read(dir: &Path) -> Result<TrajectoryOutcome> {
    let summary: PcaSummary = toml::from_str(
        &std::fs::read_to_string(dir.join("pca.toml"))
            .with_context(|| format!("reading {}", dir.display()))?,
    )
    .with_context(|| format!("{}: pca.toml", dir.display()))?;
    let text = std::fs::read_to_string(dir.join("path.csv"))
        .with_context(|| format!("reading {}/path.csv", dir.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        bail!("{}/path.csv: unexpected header", dir.display());
    }
    let path = lines
        .map(|line| {
            let f: Vec<f64> = line
                .split(',')
                .map(|v| v.parse::<f64>())
                .collect::<std::result::Result<_, _>>()
                .with_context(|| format!("{}/path.csv: `{line}`", dir.display()))?;
            if f.len() != 10 {
                bail!(
                    "{}/path.csv: `{line}` has {} fields",
                    dir.display(),
                    f.len()
                );
            }
            Ok(PathPoint {
                epoch: f[0] as u32,
                lr: f[1],
                pc1: f[2],
                pc2: f[3],
                distance: f[4],
                in_plane_pct: f[5],
                true_train_loss: f[6],
                projected_train_loss: f[7],
                random_cos1: f[8],
                random_cos2: f[9],
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TrajectoryOutcome {
        dir: dir.to_path_buf(),
        summary,
        path,
    })
}
