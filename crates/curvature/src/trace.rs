//! The trace of a Hessian from products alone: Hutchinson's estimator and Hutch++.

use crate::operator::HessianOperator;
use crate::vector::{ParamVec, orthogonalize, rng};
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// A trace estimate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceEstimate {
    /// The estimate of `tr H` (the sum of the eigenvalues; the units of the loss per
    /// parameter squared).
    pub trace: f64,
    /// Its standard error from the spread of the random part (NaN with a single probe).
    pub stderr: f64,
    /// Hessian-vector products used.
    pub products: usize,
}

/// Hutchinson's estimator: `tr H ~ (1/m) sum_i z_i^T H z_i` over `probes` Rademacher vectors
/// drawn from `seed`. Unbiased; variance `2 (||H||_F^2 - sum_i H_ii^2) / m`.
pub fn hutchinson<O: HessianOperator + ?Sized>(
    op: &O,
    probes: usize,
    seed: u64,
) -> Result<TraceEstimate> {
    if probes == 0 {
        bail!("Hutchinson's estimator needs at least one probe");
    }
    let shape = op.shape();
    let mut stream = rng(seed);
    let samples: Vec<f64> = (0..probes)
        .map(|_| {
            let z = shape.rademacher(&mut stream);
            op.apply(&z).dot(&z)
        })
        .collect();
    if samples.iter().any(|s| !s.is_finite()) {
        bail!("Hutchinson's estimator: a product is not finite");
    }
    let (mean, stderr) = mean_and_stderr(&samples);
    Ok(TraceEstimate {
        trace: mean,
        stderr,
        products: probes,
    })
}

/// Hutch++ (Meyer, Musco, Musco and Woodruff 2021) with `products` Hessian-vector products
/// (at least 3): a third of them sketch the top of the spectrum (`Q = orth(H S)`), whose trace
/// `tr(Q^T H Q)` is taken exactly, and the last third estimate the trace of the rest,
/// `(I - QQ^T) H (I - QQ^T)`, with Hutchinson. Its error falls like `1/m` instead of
/// `1/sqrt(m)` when the spectrum decays, as a network's Hessian's does.
pub fn hutch_plus_plus<O: HessianOperator + ?Sized>(
    op: &O,
    products: usize,
    seed: u64,
) -> Result<TraceEstimate> {
    if products < 3 {
        bail!("Hutch++ needs at least 3 products, got {products}");
    }
    let shape = op.shape();
    let k = products / 3;
    let rest = products - 2 * k;
    let mut stream = rng(seed);
    let mut q: Vec<ParamVec> = Vec::new();
    for _ in 0..k {
        let y = op.apply(&shape.rademacher(&mut stream));
        let y = orthogonalize(&y, &q);
        let n = y.norm();
        if n > 1e-12 {
            q.push(y.scale(1.0 / n));
        }
    }
    let mut low = 0.0;
    for v in &q {
        low += op.apply(v).dot(v);
    }
    let samples: Vec<f64> = (0..rest)
        .map(|_| {
            let g = orthogonalize(&shape.rademacher(&mut stream), &q);
            op.apply(&g).dot(&g)
        })
        .collect();
    let (mean, stderr) = mean_and_stderr(&samples);
    let trace = low + mean;
    if !trace.is_finite() {
        bail!("Hutch++: a product is not finite");
    }
    Ok(TraceEstimate {
        trace,
        stderr,
        products: k + q.len() + rest,
    })
}

fn mean_and_stderr(samples: &[f64]) -> (f64, f64) {
    let m = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / m;
    if samples.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (m - 1.0);
    (mean, (var / m).sqrt())
}
