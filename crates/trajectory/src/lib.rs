//! Optimization paths (paper.md, "PCA trajectory"; figures 8 and 9): random directions see
//! almost none of an optimizer's motion, while two principal components of the path capture
//! most of it.
//!
//! - [`pca`]: exact PCA of `theta_e - theta_final` over saved epochs through the Gram matrix
//!   of the checkpoints, streamed slice by slice from disk;
//! - [`trajectory`]: a run's path: components saved as directions, coordinates of each
//!   iterate, the true loss beside the loss of its projection, cosines with random directions.
//!
//! ```
//! use landscape_trajectory::eigen::symmetric_eigen;
//! let (values, _) = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
//! assert!((values[0] - 3.0).abs() < 1e-12 && (values[1] - 1.0).abs() < 1e-12);
//! ```

pub mod eigen;
pub mod pca;
pub mod trajectory;
