//! Optimization paths (paper.md, "PCA trajectory"; figures 8 and 9): random directions see
//! almost none of an optimizer's motion, while two principal components of the path capture
//! most of it.
//!
//! - [`pca`]: exact PCA of `theta_e - theta_final` over saved epochs through the Gram matrix
//!   of the checkpoints, streamed slice by slice from disk;
//! - [`trajectory`]: a run's path: components saved as directions, coordinates of each
//!   iterate, the true loss beside the loss of its projection, cosines with random directions.
//!
//! ```no_run
//! # fn demo(job: landscape_trajectory::trajectory::TrajectoryJob) -> anyhow::Result<()> {
//! let outcome = job.run(std::path::Path::new("runs"))?;
//! println!("PC1 explains {:.1} %", outcome.summary.explained_pct[0]);
//! # Ok(()) }
//! ```

pub mod pca;
pub mod trajectory;
