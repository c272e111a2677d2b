//! Power iteration: the eigenvalue of largest magnitude of `H - shift I` (plus `shift`), with
//! Rayleigh quotients. The textbook way to lambda_max (PyHessian's default) and, with
//! `shift = lambda_max`, to lambda_min.

use crate::operator::{HessianOperator, Shifted};
use crate::vector::rng;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// What power iteration found.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerResult {
    /// The eigenvalue of `H` (the shift added back).
    pub eigenvalue: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Whether successive Rayleigh quotients agreed to `rel_tol` before `max_iter`.
    pub converged: bool,
    /// Hessian-vector products used (one per iteration).
    pub products: usize,
}

/// Power iteration on `H - shift I` from a Rademacher vector drawn from `seed`, stopping when
/// two successive Rayleigh quotients differ by at most `rel_tol` times their magnitude.
///
/// With `shift = 0` it converges to the eigenvalue of largest magnitude (lambda_max at a
/// minimum, where negative eigenvalues are small); with `shift = lambda_max` to lambda_min.
/// Converges like `(lambda_2 / lambda_1)^k`: slow when the top eigenvalues are close, which is
/// why [`crate::lanczos::extreme_eigenvalues`] is the default.
pub fn power_iteration<O: HessianOperator + ?Sized>(
    op: &O,
    shift: f64,
    max_iter: usize,
    rel_tol: f64,
    seed: u64,
) -> Result<PowerResult> {
    let shifted = Shifted { op, shift };
    let mut v = op.shape().rademacher(&mut rng(seed));
    v = v.scale(1.0 / v.norm());
    let mut previous = f64::NAN;
    for it in 1..=max_iter.max(1) {
        let w = shifted.apply(&v);
        let lambda = w.dot(&v);
        let norm = w.norm();
        if !lambda.is_finite() || !norm.is_finite() {
            bail!("power iteration {it}: the operator product is not finite");
        }
        if norm == 0.0 {
            return Ok(PowerResult {
                eigenvalue: shift,
                iterations: it,
                converged: true,
                products: it,
            });
        }
        if (lambda - previous).abs() <= rel_tol * lambda.abs() {
            return Ok(PowerResult {
                eigenvalue: lambda + shift,
                iterations: it,
                converged: true,
                products: it,
            });
        }
        previous = lambda;
        v = w.scale(1.0 / norm);
    }
    Ok(PowerResult {
        eigenvalue: previous + shift,
        iterations: max_iter,
        converged: false,
        products: max_iter,
    })
}
