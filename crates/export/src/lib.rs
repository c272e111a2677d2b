//! landscape's artifacts in the reference code's HDF5 layout, so its scripts (`plot_2D.py`,
//! `plot_1D.py`, `h52vtp.py`) and the ParaView workflow built on them read them as they are.
//!
//! | artifact | datasets |
//! |---|---|
//! | surface, interpolation | `xcoordinates`, `ycoordinates` (2-D), `train_loss`, `train_acc`, and `test_loss`, `test_acc` when measured |
//! | eigen-ratio map | `xcoordinates`, `ycoordinates` (2-D), `min_eig`, `max_eig`, `train_loss` |
//! | trajectory | `proj_xcoord`, `proj_ycoord`, `explained_variance_ratio_` |
//!
//! A 2-D quantity has shape `(len(y), len(x))` and element `[i, j]` holds y index `i` and x
//! index `j`: `np.meshgrid(x, y)`'s shape and order, which is how the reference fills its
//! arrays and how `plot_2D.py` draws them. A trajectory file serves as both `--dir_file` and
//! `--proj_file` of `plot_2D.py`.

#![warn(missing_docs)]

use anyhow::{Context, Result};
use hdf5_metno::File;
use landscape_core::atomic::write_atomic_at;
use landscape_curvature::eigen_ratio::RatioRow;
use landscape_results::artifact::{Artifact, Quantity};
use std::path::Path;

/// One array of the file: its name, shape and values in row-major order.
struct Dataset {
    name: &'static str,
    shape: Vec<usize>,
    values: Vec<f64>,
}

/// Writes the artifact in `dir` to the HDF5 file `file` (atomically) and returns the names of
/// the datasets written.
pub fn write_h5(dir: &Path, file: &Path) -> Result<Vec<&'static str>> {
    let datasets = datasets(&Artifact::read(dir)?, dir)?;
    write_atomic_at(file, |tmp| {
        let h5 = File::create(tmp).with_context(|| format!("creating {}", tmp.display()))?;
        for d in &datasets {
            h5.new_dataset::<f64>()
                .shape(d.shape.as_slice())
                .create(d.name)
                .and_then(|set| set.write_raw(&d.values))
                .with_context(|| format!("writing dataset {}", d.name))?;
        }
        Ok(h5.close()?)
    })?;
    Ok(datasets.iter().map(|d| d.name).collect())
}

/// The datasets of `artifact`, in the reference's names and order.
fn datasets(artifact: &Artifact, dir: &Path) -> Result<Vec<Dataset>> {
    let axes = |x: Vec<f64>, y: Option<Vec<f64>>| {
        let shape = match &y {
            Some(y) => vec![y.len(), x.len()],
            None => vec![x.len()],
        };
        let mut sets = vec![Dataset {
            name: "xcoordinates",
            shape: vec![x.len()],
            values: x,
        }];
        if let Some(y) = y {
            sets.push(Dataset {
                name: "ycoordinates",
                shape: vec![y.len()],
                values: y,
            });
        }
        (sets, shape)
    };
    Ok(match artifact {
        Artifact::Surface(s) => {
            let grid = &s.meta.grid;
            let (mut sets, shape) = axes(grid.x.values(), grid.y.map(|y| y.values()));
            let measured = [Quantity::TrainLoss, Quantity::TrainAcc].into_iter().chain(
                s.meta
                    .test
                    .then_some([Quantity::TestLoss, Quantity::TestAcc])
                    .into_iter()
                    .flatten(),
            );
            for q in measured {
                sets.push(Dataset {
                    name: q.name(),
                    shape: shape.clone(),
                    values: q.values(&s.rows, dir)?,
                });
            }
            sets
        }
        Artifact::EigenRatio(meta, rows) => {
            let (mut sets, shape) = axes(meta.grid.x.values(), meta.grid.y.map(|y| y.values()));
            let column = |name, f: fn(&RatioRow) -> f64| Dataset {
                name,
                shape: shape.clone(),
                values: rows.iter().map(f).collect(),
            };
            sets.push(column("min_eig", |r| r.lambda_min));
            sets.push(column("max_eig", |r| r.lambda_max));
            sets.push(column("train_loss", |r| r.loss));
            sets
        }
        Artifact::Trajectory(t) => {
            let n = t.path.len();
            vec![
                Dataset {
                    name: "proj_xcoord",
                    shape: vec![n],
                    values: t.path.iter().map(|p| p.pc1).collect(),
                },
                Dataset {
                    name: "proj_ycoord",
                    shape: vec![n],
                    values: t.path.iter().map(|p| p.pc2).collect(),
                },
                Dataset {
                    name: "explained_variance_ratio_",
                    shape: vec![t.summary.explained_pct.len()],
                    values: t.summary.explained_pct.iter().map(|p| p / 100.0).collect(),
                },
            ]
        }
    })
}
