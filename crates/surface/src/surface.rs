//! Computing a surface: the loss and accuracy at every point of a grid around a base point
//! along one or two directions, BatchNorm in inference mode. A job of the job engine
//! ([`landscape_job`]): keyed by a content hash of everything that determines it (the
//! checkpoint's bytes among them), locked, resumable point by point, and splittable into shards.

use crate::direction::{self, Direction, DirectionRecipe, check_directions, displaced};
use crate::grid::Grid;
use crate::points::PointRow;
use anyhow::{Result, bail};
use burn::tensor::Tensor;
use landscape_core::hash::ContentHash;
use landscape_job::grid::{self as grid_job, GridMeta, GridOutcome};
use landscape_job::job::{Job, JobMeta};
use landscape_job::shard::Shard;
use landscape_models::eval::{DeviceBatches, Evaluator, Precision};
use landscape_models::{Network, ParamKind, ParamScope, ParamSet};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Bumped whenever the engine changes what it computes.
pub const ENGINE_VERSION: u32 = 1;

/// A parameter point: a run's checkpoint, by name and by content, so that a checkpoint
/// replaced in place is another point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointRef {
    /// The run id.
    pub run: String,
    /// The epoch of the checkpoint.
    pub epoch: u32,
    /// SHA-256 of the checkpoint file's bytes.
    pub checkpoint: ContentHash,
}

impl std::fmt::Display for PointRef {
    /// `run@epoch#<12 hex digits of the checkpoint>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}#{}", self.run, self.epoch, self.checkpoint.short())
    }
}

/// What kind of surface: sets the id's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SurfaceKind {
    /// Around a point along random (or given) directions.
    Surface,
    /// Along the line between two models.
    Interpolation,
}

/// Everything that determines a surface: `meta.toml`, and the source of its id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurfaceMeta {
    /// [`ENGINE_VERSION`].
    pub engine: u32,
    /// Surface or interpolation.
    pub kind: SurfaceKind,
    /// The point at coordinates (0, 0).
    pub base: PointRef,
    /// How each direction was made (x first).
    pub directions: Vec<DirectionRecipe>,
    /// Which tensors move.
    pub scope: ParamScope,
    /// The grid.
    pub grid: Grid,
    /// Training examples evaluated at each point (the run's fixed subset of this size; 0: the
    /// run's whole training set).
    pub train_examples: usize,
    /// Whether test loss and accuracy are measured too.
    pub test: bool,
    /// The number format of the inference (f32 is left out of `meta.toml`, so the ids of f32
    /// surfaces are what they were before bf16 existed).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

impl JobMeta for SurfaceMeta {
    fn kind(&self) -> &'static str {
        match self.kind {
            SurfaceKind::Surface => "surface",
            SurfaceKind::Interpolation => "interp",
        }
    }
}

impl GridMeta for SurfaceMeta {
    type Row = PointRow;
    const TABLE: &'static str = "surface.csv";

    fn points(&self) -> usize {
        self.grid.len()
    }

    fn nx(&self) -> usize {
        self.grid.x.points
    }
}

/// A surface ready to compute: its meta, the base point, the directions and the data.
pub struct SurfaceJob<'a> {
    /// What determines it.
    pub meta: SurfaceMeta,
    /// The network.
    pub network: &'a Network,
    /// The base point.
    pub base: ParamSet,
    /// One direction per grid axis.
    pub directions: Vec<Direction>,
    /// Training data on the device.
    pub train: &'a DeviceBatches,
    /// Test data on the device, when measured.
    pub test: Option<&'a DeviceBatches>,
}

impl SurfaceJob<'_> {
    /// Computes the points of `shard` that no journal in the surface's directory has yet, then
    /// writes `surface.csv` if the whole grid is known. Returns at once for a finished surface.
    pub fn run(&self, workdir: &Path, shard: Shard, label: &str) -> Result<GridOutcome> {
        let expected = self.meta.directions.len();
        if expected != self.directions.len() || self.meta.grid.y.is_some() != (expected == 2) {
            bail!(
                "a {}-D grid needs {} directions, got {expected}",
                1 + self.meta.grid.y.is_some() as usize,
                expected
            );
        }
        grid_job::check_size(&self.meta)?;
        if let Some(done) = grid_job::finished(workdir, &self.meta)? {
            return Ok(done);
        }
        check_directions(&self.directions, label)?;
        let job = Job::open(workdir, self.meta.clone(), shard, label)?;
        let directions_file = job.path("directions.safetensors");
        if !directions_file.exists() {
            direction::save(
                &directions_file,
                self.base.layout(),
                &self.directions,
                &self.meta.base.to_string(),
            )?;
        }
        let evaluator = Evaluator::new(self.network.layers()).with_precision(self.meta.precision);
        job.compute_points(
            shard,
            label,
            |k| Ok(self.point(&evaluator, k)),
            |row| format!("({:.3}, {:.3}) loss {:.4}", row.x, row.y, row.train_loss),
        )
    }

    /// Evaluates grid point `k`.
    fn point(&self, evaluator: &Evaluator, k: usize) -> PointRow {
        let p = self.meta.grid.point(k);
        let coords = [p.x, p.y];
        let tensors = displaced(
            &self.base,
            &self.directions,
            &coords[..self.directions.len()],
        );
        let negative_var = if self.meta.scope == ParamScope::States {
            count_negative_variances(&self.base, &tensors)
        } else {
            0
        };
        let train = evaluator.evaluate(&tensors, self.train);
        let test = self.test.map(|t| evaluator.evaluate(&tensors, t));
        PointRow {
            ix: p.ix,
            iy: p.iy,
            x: p.x,
            y: p.y,
            train_loss: train.loss,
            train_acc: train.accuracy,
            test_loss: test.map(|t| t.loss),
            test_acc: test.map(|t| t.accuracy),
            negative_var,
        }
    }
}

fn count_negative_variances(base: &ParamSet, tensors: &[Tensor<1>]) -> u64 {
    let counts: Vec<_> = base
        .layout()
        .entries()
        .iter()
        .zip(tensors)
        .filter(|(info, _)| info.kind == ParamKind::BnRunningVar)
        .map(|(_, t)| t.clone().lower_elem(0.0).int().sum())
        .collect();
    if counts.is_empty() {
        return 0;
    }
    Tensor::cat(counts, 0).sum().into_scalar::<i64>() as u64
}
