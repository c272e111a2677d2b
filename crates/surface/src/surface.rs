//! Computing a surface: the loss and accuracy at every point of a grid around a base point
//! along one or two directions, BatchNorm in inference mode. Keyed by a content hash of
//! everything that determines it, resumable point by point, and splittable into shards.

use crate::direction::{self, Direction, DirectionRecipe, displaced};
use crate::grid::{Grid, Shard};
use crate::journal::{self, HEADER, Journal, PointRow, Row};
use anyhow::{Context, Result, bail};
use burn::tensor::Tensor;
use landscape_core::hash::content_hash;
use landscape_core::progress::Progress;
use landscape_models::eval::{DeviceBatches, Evaluator, Precision};
use landscape_models::{Network, ParamKind, ParamScope, ParamSet};
use landscape_train::run::{read_toml, write_toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Bumped whenever the engine changes what it computes.
pub const ENGINE_VERSION: u32 = 1;

/// A parameter point: a run's checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointRef {
    /// The run id.
    pub run: String,
    /// The epoch of the checkpoint.
    pub epoch: u32,
}

impl std::fmt::Display for PointRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.run, self.epoch)
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

impl SurfaceMeta {
    /// The id: kind and 12 hex digits of the content hash.
    pub fn id(&self) -> String {
        let prefix = match self.kind {
            SurfaceKind::Surface => "surface",
            SurfaceKind::Interpolation => "interp",
        };
        format!("{prefix}-{}", content_hash(self).short())
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

/// What a call to [`SurfaceJob::run`] left.
#[derive(Clone, Debug)]
pub struct SurfaceOutcome {
    /// The surface's directory.
    pub dir: PathBuf,
    /// Points known (all shards).
    pub points_done: usize,
    /// Whether every point is known and `surface.csv` is written.
    pub complete: bool,
}

impl SurfaceJob<'_> {
    /// Computes the points of `shard` that no journal in the surface's directory has yet, then
    /// writes `surface.csv` if the whole grid is known. Returns at once for a finished surface.
    pub fn run(&self, workdir: &Path, shard: Shard, label: &str) -> Result<SurfaceOutcome> {
        let expected = self.meta.directions.len();
        if expected != self.directions.len() || self.meta.grid.y.is_some() != (expected == 2) {
            bail!(
                "a {}-D grid needs {} directions, got {expected}",
                1 + self.meta.grid.y.is_some() as usize,
                expected
            );
        }
        let dir = workdir.join(self.meta.id());
        let csv = dir.join("surface.csv");
        let total = self.meta.grid.len();
        if csv.exists() {
            return Ok(SurfaceOutcome {
                dir,
                points_done: total,
                complete: true,
            });
        }
        prepare_dir(&dir, &self.meta)?;
        let directions_file = dir.join("directions.safetensors");
        if !directions_file.exists() {
            direction::save(
                &directions_file,
                self.base.layout(),
                &self.directions,
                &self.meta.base.to_string(),
            )?;
        }
        let nx = self.meta.grid.x.points;
        let mut points = journal::read_journals::<PointRow>(&dir, nx)?;
        let todo: Vec<usize> = (0..total)
            .filter(|k| shard.owns(*k) && !points.contains_key(k))
            .collect();
        if !todo.is_empty() {
            let mine = (0..total).filter(|k| shard.owns(*k)).count();
            let progress = Progress::new(label, mine as u64, (mine - todo.len()) as u64);
            let mut journal = Journal::open(
                &journal::journal_path(&dir, shard.index, shard.count),
                HEADER,
            )?;
            let evaluator =
                Evaluator::new(self.network.layers()).with_precision(self.meta.precision);
            for (i, &k) in todo.iter().enumerate() {
                let row = self.point(&evaluator, k);
                journal.append(&row)?;
                progress.update(
                    (mine - todo.len() + i + 1) as u64,
                    format!("({:.3}, {:.3}) loss {:.4}", row.x, row.y, row.train_loss),
                );
                points.insert(k, row);
            }
            progress.finish(format!("{} points", mine));
            // Another shard may have finished meanwhile: read everything again before deciding.
            points = journal::read_journals(&dir, nx)?;
        }
        let complete = points.len() == total;
        if complete {
            journal::write_table(&csv, &points)?;
        }
        Ok(SurfaceOutcome {
            dir,
            points_done: points.len(),
            complete,
        })
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

/// Creates the surface's directory with its `meta.toml`, or checks that an existing one holds
/// the same surface.
fn prepare_dir(dir: &Path, meta: &SurfaceMeta) -> Result<()> {
    let path = dir.join("meta.toml");
    if path.exists() {
        let existing: SurfaceMeta = read_toml(&path)?;
        if &existing != meta {
            bail!(
                "{}: describes a different surface than its id says (edited by hand?); move it away",
                path.display()
            );
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write_toml(&path, meta)
}

/// Reads the `meta.toml` of a surface directory.
pub fn read_meta(dir: &Path) -> Result<SurfaceMeta> {
    read_toml(&dir.join("meta.toml"))
}

/// Joins the points of surface directories computed elsewhere (shards) into `into`, refusing
/// directories of a different surface or points that disagree, and writes `surface.csv` when
/// the grid is complete. Returns the number of points known and whether the grid is complete.
pub fn merge(into: &Path, others: &[PathBuf]) -> Result<(usize, bool)> {
    let meta = read_meta(into)
        .with_context(|| format!("{} is not a surface directory", into.display()))?;
    let nx = meta.grid.x.points;
    let mut points = journal::read_journals::<PointRow>(into, nx)?;
    for other in others {
        let theirs = read_meta(other)
            .with_context(|| format!("{} is not a surface directory", other.display()))?;
        if theirs != meta {
            bail!(
                "{} holds surface {}, not {} like {}: refusing to merge",
                other.display(),
                theirs.id(),
                meta.id(),
                into.display()
            );
        }
        let incoming = journal::read_journals::<PointRow>(other, nx)?;
        let mut new_rows = Vec::new();
        for (k, row) in incoming {
            match points.get(&k) {
                Some(mine) if !mine.same(&row) => bail!(
                    "{}: point ({}, {}) disagrees with {}: refusing to merge",
                    other.display(),
                    row.ix,
                    row.iy,
                    into.display()
                ),
                Some(_) => {}
                None => new_rows.push((k, row)),
            }
        }
        if !new_rows.is_empty() {
            let name = format!(
                "points.merged-{}.csv",
                content_hash(&other.canonicalize()?.to_string_lossy()).short()
            );
            let mut journal = Journal::open(&into.join(name), HEADER)?;
            for (k, row) in new_rows {
                journal.append(&row)?;
                points.insert(k, row);
            }
        }
    }
    let complete = points.len() == meta.grid.len();
    if complete {
        journal::write_table(&into.join("surface.csv"), &points)?;
    }
    Ok((points.len(), complete))
}
