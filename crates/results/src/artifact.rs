//! One finished artifact directory, read by what it holds, for `landscape plot` and `landscape
//! export`: a surface or an interpolation (`surface.csv`), an eigen-ratio map (`ratio.csv`), or
//! an optimization path and its PCA (`path.csv`).

use crate::collect::SurfaceResult;
use anyhow::{Result, bail};
use landscape_curvature::eigen_ratio::{EigenRatioMeta, RatioRow, read_map};
use landscape_job::job::read_meta;
use landscape_surface::points::PointRow;
use landscape_surface::surface::SurfaceKind;
use landscape_train::run::{RunDir, RunRecord};
use landscape_trajectory::trajectory::TrajectoryOutcome;
use std::path::Path;

/// A finished artifact.
pub enum Artifact {
    /// A surface (1-D or 2-D) or an interpolation.
    Surface(SurfaceResult),
    /// An eigen-ratio map and what determined it.
    EigenRatio(EigenRatioMeta, Vec<RatioRow>),
    /// An optimization path projected on its first two principal components.
    Trajectory(TrajectoryOutcome),
}

impl Artifact {
    /// Reads the finished artifact in `dir`; one line says what is wrong with any other
    /// directory.
    pub fn read(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            bail!("{}: no such directory", dir.display());
        }
        if dir.join("path.csv").exists() {
            return Ok(Self::Trajectory(landscape_trajectory::trajectory::read(
                dir,
            )?));
        }
        if dir.join(landscape_job::job::META_FILE).exists() {
            if let Ok(meta) = read_meta::<EigenRatioMeta>(dir) {
                let rows = read_map(dir)?;
                if rows.len() != meta.grid.len() {
                    bail!(
                        "{}: {} of the map's {} points are computed (run it again to finish it)",
                        dir.display(),
                        rows.len(),
                        meta.grid.len()
                    );
                }
                return Ok(Self::EigenRatio(meta, rows));
            }
            let surface = SurfaceResult::read(dir, String::new(), Vec::new())?;
            let runs = vec![surface.meta.base.run.clone()];
            let analysis = match surface.meta.kind {
                SurfaceKind::Surface => "surface",
                SurfaceKind::Interpolation => "interpolation",
            };
            return Ok(Self::Surface(SurfaceResult {
                analysis: analysis.into(),
                runs,
                ..surface
            }));
        }
        bail!(
            "{}: not a surface, interpolation, eigen-ratio or trajectory directory (no meta.toml or path.csv)",
            dir.display()
        )
    }
}

/// The record of run `id` when its directory sits beside the artifact's (the work directory
/// layout), for titles; `None` for an artifact copied elsewhere.
pub fn neighbour_run(dir: &Path, id: &str) -> Option<RunRecord> {
    let workdir = dir.parent()?;
    RunDir::new(workdir, id).read_record().ok()
}

/// A quantity measured at every point of a surface, named as the reference code's HDF5 files
/// name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Quantity {
    /// Mean training loss.
    TrainLoss,
    /// Training accuracy, percent.
    TrainAcc,
    /// Training error, percent (100 - accuracy).
    TrainErr,
    /// Mean test loss.
    TestLoss,
    /// Test accuracy, percent.
    TestAcc,
    /// Test error, percent.
    TestErr,
}

impl Quantity {
    /// Every quantity, in the reference's order.
    pub const ALL: [Self; 6] = [
        Self::TrainLoss,
        Self::TrainAcc,
        Self::TrainErr,
        Self::TestLoss,
        Self::TestAcc,
        Self::TestErr,
    ];

    /// `train_loss`, ...: the reference's dataset name.
    pub fn name(self) -> &'static str {
        match self {
            Self::TrainLoss => "train_loss",
            Self::TrainAcc => "train_acc",
            Self::TrainErr => "train_err",
            Self::TestLoss => "test_loss",
            Self::TestAcc => "test_acc",
            Self::TestErr => "test_err",
        }
    }

    /// Words for an axis: "train loss", "test error (%)".
    pub fn label(self) -> &'static str {
        match self {
            Self::TrainLoss => "train loss",
            Self::TrainAcc => "train accuracy (%)",
            Self::TrainErr => "train error (%)",
            Self::TestLoss => "test loss",
            Self::TestAcc => "test accuracy (%)",
            Self::TestErr => "test error (%)",
        }
    }

    /// Whether it is a loss (drawn with the paper's loss levels and log heights).
    pub fn is_loss(self) -> bool {
        matches!(self, Self::TrainLoss | Self::TestLoss)
    }

    /// Its value at `row`; `None` for a test quantity of a surface measured without test data.
    pub fn of(self, row: &PointRow) -> Option<f64> {
        match self {
            Self::TrainLoss => Some(row.train_loss),
            Self::TrainAcc => Some(row.train_acc),
            Self::TrainErr => Some(100.0 - row.train_acc),
            Self::TestLoss => row.test_loss,
            Self::TestAcc => row.test_acc,
            Self::TestErr => row.test_acc.map(|a| 100.0 - a),
        }
    }

    /// Its values over `rows` in their order, or one line saying the surface lacks it.
    pub fn values(self, rows: &[PointRow], dir: &Path) -> Result<Vec<f64>> {
        rows.iter()
            .map(|r| self.of(r))
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: has no {} (computed without test data; rerun the surface with `--test`)",
                    dir.display(),
                    self.name()
                )
            })
    }
}
