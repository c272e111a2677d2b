//! Eigen-ratio maps (the paper's figure 7): `abs(lambda_min / lambda_max)` of the Hessian of
//! the mean training loss at every point of a 1-D or 2-D grid around a trained point, along the
//! same filter-normalized directions as its loss surface (`Direction::random(base, Weights,
//! Filter, Biasbn, seed, 2)` with the surface's seed gives the same plane).
//!
//! Like a surface, a grid job of the job engine ([`landscape_job`]): keyed by a content hash of
//! everything that determines it (`eigratio-<hash>`), locked, each finished point journaled at
//! once (`points.<k>-of-<n>.csv`), resumable, splittable into shards that
//! [`landscape_job::grid::merge`] joins, and `ratio.csv` written when the grid is complete.

use crate::hvp::{Batch, CurvatureScope, HvpOptions, LossHessian, LossModel};
use crate::job::{CURVATURE_VERSION, CurvatureInput};
use crate::lanczos::extreme_eigenvalues;
use anyhow::{Context, Result, bail};
use landscape_job::grid::{self as grid_job, GridMeta, GridOutcome};
use landscape_job::job::{Job, JobMeta};
use landscape_job::journal::{Row, same_f64};
use landscape_job::shard::Shard;
use landscape_models::graph::Layer;
use landscape_models::{ParamScope, ParamSet};
use landscape_surface::direction::{
    self, DirNorm, Direction, DirectionRecipe, Ignore, check_directions, displaced,
};
use landscape_surface::grid::{AxisRange, Grid};
use landscape_surface::surface::PointRef;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An eigen-ratio map around a point, as a command or a spec block asks for it.
#[derive(Clone, Debug, PartialEq)]
pub struct EigenRatioRequest {
    /// First axis.
    pub x: AxisRange,
    /// Second axis (2-D).
    pub y: Option<AxisRange>,
    /// Seed of the random filter-normalized directions and of the Lanczos start vector.
    pub seed: u64,
    /// Directions from a file (a surface's `directions.safetensors`) instead of random ones.
    pub directions: Option<PathBuf>,
    /// Lanczos steps at each point.
    pub lanczos_steps: usize,
    /// Which tensors the Hessian is over.
    pub scope: CurvatureScope,
    /// Central-difference step of the HVPs.
    pub eps: f64,
    /// Training examples (the run's fixed subset; 0: all): for whoever loads the data.
    pub subset: usize,
    /// Examples per backward pass: for whoever builds the [`CurvatureInput`].
    pub micro_batch: usize,
}

/// Computes (or finds, or resumes) the map `request` around `input`'s point: the directions are
/// `Direction::random(base, Weights, Filter, Biasbn, seed, 1 or 2)`, exactly those of a loss
/// surface with the same seed and the defaults (`--norm filter --ignore biasbn --dir-type
/// weights`), or read from `request.directions`.
pub fn compute(
    workdir: &Path,
    input: &CurvatureInput<'_>,
    request: &EigenRatioRequest,
    shard: Shard,
    label: &str,
) -> Result<GridOutcome> {
    let count = 1 + request.y.is_some() as usize;
    let directions = match &request.directions {
        Some(path) => {
            let loaded = direction::load(path, input.params.layout(), &input.params.device())?;
            if loaded.len() < count {
                bail!(
                    "{}: holds {} direction(s), a {count}-D map needs {count}",
                    path.display(),
                    loaded.len()
                );
            }
            loaded.into_iter().take(count).collect()
        }
        None => Direction::random(
            &input.params,
            ParamScope::Weights,
            DirNorm::Filter,
            Ignore::Biasbn,
            request.seed,
            count,
        ),
    };
    let meta = EigenRatioMeta {
        engine: CURVATURE_VERSION,
        base: input.point.clone(),
        directions: directions.iter().map(|d| d.recipe.clone()).collect(),
        grid: Grid {
            x: request.x,
            y: request.y,
        },
        train_examples: input.train_examples,
        scope: request.scope,
        lanczos_steps: request.lanczos_steps,
        eps: request.eps,
        seed: request.seed,
    };
    let job = EigenRatioJob {
        meta,
        layers: input.layers,
        base: input.params.clone(),
        directions,
        batches: input.batches,
        micro_batch: input.micro_batch,
    };
    job.run(workdir, shard, label)
}

/// What determines an eigen-ratio map: `meta.toml`, and the source of its id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EigenRatioMeta {
    /// [`crate::job::CURVATURE_VERSION`].
    pub engine: u32,
    /// The point at coordinates (0, 0).
    pub base: PointRef,
    /// How each direction was made (x first).
    pub directions: Vec<DirectionRecipe>,
    /// The grid.
    pub grid: Grid,
    /// Training examples (0: the run's training set).
    pub train_examples: usize,
    /// Which tensors the Hessian is over.
    pub scope: CurvatureScope,
    /// Lanczos steps at each point.
    pub lanczos_steps: usize,
    /// Central-difference step of the HVPs.
    pub eps: f64,
    /// Seed of the Lanczos start vector (the same at every point).
    pub seed: u64,
}

impl JobMeta for EigenRatioMeta {
    fn kind(&self) -> &'static str {
        "eigratio"
    }
}

impl GridMeta for EigenRatioMeta {
    type Row = RatioRow;
    const TABLE: &'static str = "ratio.csv";

    fn points(&self) -> usize {
        self.grid.len()
    }

    fn nx(&self) -> usize {
        self.grid.x.points
    }
}

/// The curvature at one grid point.
#[derive(Clone, Debug, PartialEq)]
pub struct RatioRow {
    /// Index along x.
    pub ix: usize,
    /// Index along y (0 for 1-D).
    pub iy: usize,
    /// Coordinate along the first direction.
    pub x: f64,
    /// Coordinate along the second direction.
    pub y: f64,
    /// Mean training loss there.
    pub loss: f64,
    /// Largest eigenvalue.
    pub lambda_max: f64,
    /// Smallest eigenvalue.
    pub lambda_min: f64,
    /// `abs(lambda_min / lambda_max)`.
    pub ratio: f64,
    /// Lanczos residual bound of lambda_max.
    pub residual_max: f64,
    /// Lanczos residual bound of lambda_min.
    pub residual_min: f64,
}

impl Row for RatioRow {
    const HEADER: &'static str =
        "ix,iy,x,y,loss,lambda_max,lambda_min,ratio,residual_max,residual_min";

    fn to_line(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            self.ix,
            self.iy,
            self.x,
            self.y,
            self.loss,
            self.lambda_max,
            self.lambda_min,
            self.ratio,
            self.residual_max,
            self.residual_min
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 10 {
            return None;
        }
        Some(Self {
            ix: f[0].parse().ok()?,
            iy: f[1].parse().ok()?,
            x: f[2].parse().ok()?,
            y: f[3].parse().ok()?,
            loss: f[4].parse().ok()?,
            lambda_max: f[5].parse().ok()?,
            lambda_min: f[6].parse().ok()?,
            ratio: f[7].parse().ok()?,
            residual_max: f[8].parse().ok()?,
            residual_min: f[9].parse().ok()?,
        })
    }

    fn index(&self) -> (usize, usize) {
        (self.ix, self.iy)
    }

    fn same(&self, o: &Self) -> bool {
        self.ix == o.ix
            && self.iy == o.iy
            && [
                (self.loss, o.loss),
                (self.lambda_max, o.lambda_max),
                (self.lambda_min, o.lambda_min),
                (self.ratio, o.ratio),
            ]
            .iter()
            .all(|(a, b)| same_f64(*a, *b))
    }
}

/// An eigen-ratio map ready to compute.
pub struct EigenRatioJob<'a> {
    /// What determines it.
    pub meta: EigenRatioMeta,
    /// The network's layer graph.
    pub layers: &'a [Layer],
    /// The base point.
    pub base: ParamSet,
    /// One direction per grid axis.
    pub directions: Vec<Direction>,
    /// Training data on the device.
    pub batches: &'a [Batch],
    /// Examples per backward pass (memory only).
    pub micro_batch: usize,
}

impl EigenRatioJob<'_> {
    /// Computes the points of `shard` no journal has yet, then writes `ratio.csv` when the
    /// whole grid is known. Returns at once for a finished map.
    pub fn run(&self, workdir: &Path, shard: Shard, label: &str) -> Result<GridOutcome> {
        let expected = 1 + self.meta.grid.y.is_some() as usize;
        if self.directions.len() != expected || self.meta.directions.len() != expected {
            bail!(
                "a {expected}-D grid needs {expected} directions, got {}",
                self.directions.len()
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
        let model = LossModel::new(
            self.layers,
            self.base.clone(),
            self.meta.scope,
            self.batches,
            self.micro_batch.max(1),
        )?;
        job.compute_points(
            shard,
            label,
            |k| self.point(&model, k),
            |row| format!("({:.3}, {:.3}) ratio {:.4}", row.x, row.y, row.ratio),
        )
    }

    /// The curvature at grid point `k`.
    fn point(&self, model: &LossModel, k: usize) -> Result<RatioRow> {
        let p = self.meta.grid.point(k);
        let coords = [p.x, p.y];
        let tensors = displaced(
            &self.base,
            &self.directions,
            &coords[..self.directions.len()],
        );
        let here = model.at(ParamSet::new(self.base.layout().clone(), tensors)?);
        let loss = here.evaluate(&here.point()).loss;
        let op = LossHessian::new(
            &here,
            HvpOptions {
                eps: self.meta.eps,
                ..HvpOptions::default()
            },
        )?;
        let e = extreme_eigenvalues(&op, 1, self.meta.lanczos_steps, self.meta.seed)
            .with_context(|| format!("eigenvalues at ({}, {})", p.x, p.y))?;
        Ok(RatioRow {
            ix: p.ix,
            iy: p.iy,
            x: p.x,
            y: p.y,
            loss,
            lambda_max: e.top[0],
            lambda_min: e.lambda_min,
            ratio: e.ratio(),
            residual_max: e.top_residuals[0],
            residual_min: e.lambda_min_residual,
        })
    }
}

/// The rows of a finished map's `ratio.csv` (or of its journals so far).
pub fn read_map(dir: &Path) -> Result<Vec<RatioRow>> {
    grid_job::read_points::<EigenRatioMeta>(dir)
}
