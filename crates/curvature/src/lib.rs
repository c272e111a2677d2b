//! Curvature and sharpness of the loss at a trained point (GitHub issue 7).
//!
//! - [`hvp`]: the mean training loss of a network as a function of its learnable tensors
//!   ([`hvp::LossModel`]), and its Hessian-vector products ([`hvp::LossHessian`]) by central
//!   differences of gradients with the ReLU masks and max-pool choices of the point replayed,
//!   which makes them exact up to `O(e^2)` (burn has no double backward);
//! - [`vector`]: parameter vectors (one device tensor per tensor) and seeded random ones;
//! - [`operator`]: the [`operator::HessianOperator`] trait the algorithms work on, and explicit
//!   matrices for checks;
//! - [`lanczos`]: Lanczos with full reorthogonalization (top-k eigenvalues and lambda_min from
//!   one run) and stochastic Lanczos quadrature (spectral density);
//! - [`power`]: power iteration (optionally shifted); [`trace`]: Hutchinson and Hutch++;
//! - [`sharpness`]: Keskar's epsilon-sharpness (full space and random subspace), average-case
//!   and adaptive worst-case sharpness, PAC-Bayes flatness;
//! - [`eigen_ratio`]: `abs(lambda_min / lambda_max)` maps over a surface's plane (figure 7),
//!   resumable and sharded like surfaces;
//! - [`job`]: Hessian reports and sharpness tables as cached, content-hashed jobs (their
//!   settings, as spec blocks and commands, are `landscape-pipeline`'s `analysis` kinds).
//!
//! Everything random is drawn on the host from ChaCha8 streams and uploaded, so a seed gives
//! the same numbers on every device.
//!
//! ```
//! use burn::tensor::Device;
//! use landscape_curvature::lanczos::extreme_eigenvalues;
//! use landscape_curvature::operator::DenseOperator;
//! use landscape_curvature::vector::VecShape;
//! let op = DenseOperator::diagonal(&[3.0, -1.0, 0.5, 2.0], VecShape::new(vec![4], Device::flex()));
//! let e = extreme_eigenvalues(&op, 2, 4, 0).unwrap();
//! assert!((e.top[0] - 3.0).abs() < 1e-4 && (e.top[1] - 2.0).abs() < 1e-4);
//! assert!((e.lambda_min + 1.0).abs() < 1e-4);
//! ```

pub mod eigen_ratio;
pub mod hvp;
pub mod job;
pub mod lanczos;
pub mod operator;
pub mod power;
pub mod sharpness;
pub mod trace;
pub mod vector;

pub use hvp::{Batch, CurvatureScope, HvpOptions, LossHessian, LossModel};
pub use operator::HessianOperator;
pub use vector::{ParamVec, VecShape};
