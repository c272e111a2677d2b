//! Lanczos with full reorthogonalization: the extreme eigenvalues of a Hessian (top k and
//! lambda_min from one run), and stochastic Lanczos quadrature for its spectral density.
//!
//! Every Lanczos vector is kept and each new one is orthogonalized against all of them (twice),
//! so no spurious copies of converged eigenvalues ("ghosts") appear even in f32; memory is
//! `steps` parameter vectors. The tridiagonal matrix is diagonalized on the host in f64.

use crate::operator::HessianOperator;
use crate::vector::{ParamVec, orthogonalize, rng};
use anyhow::{Result, bail};
use landscape_core::linalg::tridiagonal_eigen;
use serde::{Deserialize, Serialize};

/// A Lanczos run: the tridiagonal matrix `T` (diagonal `alpha`, off-diagonal `beta`) of the
/// operator in the Krylov basis of a start vector.
#[derive(Clone, Debug)]
pub struct Lanczos {
    /// Diagonal of `T`.
    pub alpha: Vec<f64>,
    /// Off-diagonal of `T` (`alpha.len() - 1` values).
    pub beta: Vec<f64>,
    /// The norm of the residual after the last step (`beta_m`): bounds the Ritz residuals.
    pub last_beta: f64,
    /// Operator products used (one per step).
    pub products: usize,
    /// Whether the Krylov space closed (an invariant subspace was found) before `steps`.
    pub exhausted: bool,
}

/// Ritz values of a Lanczos run with their quadrature weights and residual bounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ritz {
    /// Ritz values, ascending.
    pub values: Vec<f64>,
    /// Squared first components of the eigenvectors of `T`: the Gauss quadrature weights of
    /// the start vector's spectral measure (they sum to 1).
    pub weights: Vec<f64>,
    /// `|beta_m s_mj|`: the norm of `H y - theta y` for each Ritz pair (0 when the space closed).
    pub residuals: Vec<f64>,
}

impl Lanczos {
    /// Runs `steps` steps from `start` (at most the dimension; stops early when the Krylov
    /// space closes). Errors when a product is not finite.
    pub fn run<O: HessianOperator + ?Sized>(
        op: &O,
        start: &ParamVec,
        steps: usize,
    ) -> Result<Self> {
        let dim = op.shape().numel();
        let steps = steps.min(dim).max(1);
        let norm = start.norm();
        if !(norm > 0.0 && norm.is_finite()) {
            bail!("Lanczos needs a nonzero finite start vector");
        }
        let mut basis = vec![start.scale(1.0 / norm)];
        let (mut alpha, mut beta) = (Vec::<f64>::new(), Vec::<f64>::new());
        let mut last_beta = 0.0;
        let mut exhausted = false;
        let mut scale = 0.0f64;
        for j in 0..steps {
            let q = &basis[j];
            let mut w = op.apply(q);
            let a = w.dot(q);
            if !a.is_finite() {
                bail!(
                    "Lanczos step {j}: the operator product is not finite (the loss blew up at this point?)"
                );
            }
            alpha.push(a);
            w = w.axpy(-a, q);
            if j > 0 {
                w = w.axpy(-beta[j - 1], &basis[j - 1]);
            }
            w = orthogonalize(&w, &basis);
            let b = w.norm();
            scale = scale.max(a.abs()).max(b);
            if j + 1 == steps {
                last_beta = b;
                break;
            }
            // The Krylov space closed: T's eigenvalues are exact eigenvalues of H.
            if b <= 1e-6 * scale.max(f64::MIN_POSITIVE) {
                exhausted = true;
                break;
            }
            beta.push(b);
            basis.push(w.scale(1.0 / b));
        }
        let products = alpha.len();
        Ok(Self {
            alpha,
            beta,
            last_beta,
            products,
            exhausted,
        })
    }

    /// The Ritz values, quadrature weights and residual bounds.
    pub fn ritz(&self) -> Ritz {
        let e = tridiagonal_eigen(&self.alpha, &self.beta);
        let m = e.n;
        let weights = (0..m).map(|j| e.vector(0, j).powi(2)).collect();
        let residuals = (0..m)
            .map(|j| {
                if self.exhausted {
                    0.0
                } else {
                    (self.last_beta * e.vector(m - 1, j)).abs()
                }
            })
            .collect();
        Ritz {
            values: e.values,
            weights,
            residuals,
        }
    }
}

/// The extreme eigenvalues from one Lanczos run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExtremeEigen {
    /// The `k` largest Ritz values, descending (`top[0]` is lambda_max).
    pub top: Vec<f64>,
    /// Residual bound `||H y - theta y||` of each (unit Ritz vectors).
    pub top_residuals: Vec<f64>,
    /// The smallest Ritz value (lambda_min; negative where the loss is non-convex).
    pub lambda_min: f64,
    /// Its residual bound.
    pub lambda_min_residual: f64,
    /// Lanczos steps taken.
    pub steps: usize,
    /// Hessian-vector products used.
    pub products: usize,
}

impl ExtremeEigen {
    /// `|lambda_min / lambda_max|`, the paper's figure 7 (NaN when lambda_max is 0).
    pub fn ratio(&self) -> f64 {
        let max = self.top.first().copied().unwrap_or(f64::NAN);
        if max == 0.0 {
            f64::NAN
        } else {
            (self.lambda_min / max).abs()
        }
    }
}

/// The `k` largest eigenvalues and the smallest one of `op` by `steps` steps of Lanczos from a
/// Rademacher start vector drawn from `seed`.
///
/// Lanczos finds both ends of the spectrum at once (the smallest Ritz value converges to
/// lambda_min like the largest to lambda_max), so no shifted second solve is needed (the
/// reference code runs ARPACK again on `H - 0.51 lambda_max I`). Well-separated extreme
/// eigenvalues converge in a few tens of steps; check the residuals.
pub fn extreme_eigenvalues<O: HessianOperator + ?Sized>(
    op: &O,
    k: usize,
    steps: usize,
    seed: u64,
) -> Result<ExtremeEigen> {
    let start = op.shape().rademacher(&mut rng(seed));
    let run = Lanczos::run(op, &start, steps.max(k))?;
    let ritz = run.ritz();
    let m = ritz.values.len();
    let k = k.min(m);
    Ok(ExtremeEigen {
        top: (0..k).map(|i| ritz.values[m - 1 - i]).collect(),
        top_residuals: (0..k).map(|i| ritz.residuals[m - 1 - i]).collect(),
        lambda_min: ritz.values[0],
        lambda_min_residual: ritz.residuals[0],
        steps: run.alpha.len(),
        products: run.products,
    })
}

/// A spectral density estimated by stochastic Lanczos quadrature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpectralDensity {
    /// Per probe, the Ritz values (quadrature nodes).
    pub nodes: Vec<Vec<f64>>,
    /// Per probe, the quadrature weights (each probe's sum to 1).
    pub weights: Vec<Vec<f64>>,
    /// Standard deviation of the Gaussian each node is broadened by.
    pub sigma: f64,
    /// Evenly spaced eigenvalues where the density is given.
    pub grid: Vec<f64>,
    /// The density at each grid value (integrates to 1 over the grid).
    pub density: Vec<f64>,
    /// The trace estimate these quadratures give: `n * mean_p sum_j w_pj theta_pj`.
    pub trace: f64,
    /// Hessian-vector products used.
    pub products: usize,
}

impl SpectralDensity {
    /// The trapezoid integral of the density over the grid (about 1).
    pub fn integral(&self) -> f64 {
        self.grid
            .windows(2)
            .zip(self.density.windows(2))
            .map(|(x, d)| 0.5 * (x[1] - x[0]) * (d[0] + d[1]))
            .sum()
    }

    /// The probability mass the quadratures put within `radius` of `lambda`.
    pub fn mass_near(&self, lambda: f64, radius: f64) -> f64 {
        let p = self.nodes.len() as f64;
        self.nodes
            .iter()
            .zip(&self.weights)
            .flat_map(|(n, w)| n.iter().zip(w))
            .filter(|(n, _)| (**n - lambda).abs() <= radius)
            .map(|(_, w)| w / p)
            .sum()
    }
}

/// Settings of stochastic Lanczos quadrature.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DensityOptions {
    /// Random probe vectors (Rademacher, normalized).
    pub probes: usize,
    /// Lanczos steps per probe.
    pub steps: usize,
    /// Points of the output grid.
    pub grid_points: usize,
    /// Gaussian broadening as a fraction of the spectrum's width (max node - min node).
    pub sigma_rel: f64,
}

impl Default for DensityOptions {
    fn default() -> Self {
        Self {
            probes: 3,
            steps: 80,
            grid_points: 1000,
            sigma_rel: 0.01,
        }
    }
}

/// The spectral density `phi(t) = (1/n) sum_i delta(t - lambda_i)` of `op`, estimated by
/// stochastic Lanczos quadrature (Lin, Saad and Yang 2016; Ghorbani et al. 2019): each probe's
/// Lanczos run gives a Gauss quadrature (Ritz values, weights) of its spectral measure, whose
/// average over probes estimates the density; each node is broadened into a Gaussian of
/// standard deviation `sigma_rel * (max - min)`. The grid extends 5 sigma past the extreme
/// nodes, so the density integrates to 1 on it. Probes are Rademacher vectors from `seed`.
pub fn spectral_density<O: HessianOperator + ?Sized>(
    op: &O,
    options: &DensityOptions,
    seed: u64,
) -> Result<SpectralDensity> {
    if options.probes == 0 || options.grid_points < 2 {
        bail!("a spectral density needs at least one probe and two grid points");
    }
    let shape = op.shape();
    let n = shape.numel() as f64;
    let mut stream = rng(seed);
    let (mut nodes, mut weights) = (Vec::new(), Vec::new());
    let mut products = 0;
    let mut trace = 0.0;
    for _ in 0..options.probes {
        let v = shape.rademacher(&mut stream);
        let run = Lanczos::run(op, &v, options.steps)?;
        products += run.products;
        let ritz = run.ritz();
        trace += n * ritz
            .values
            .iter()
            .zip(&ritz.weights)
            .map(|(t, w)| t * w)
            .sum::<f64>()
            / options.probes as f64;
        nodes.push(ritz.values);
        weights.push(ritz.weights);
    }
    let lo = nodes
        .iter()
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let hi = nodes
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let width = hi - lo;
    let sigma = if width > 0.0 {
        options.sigma_rel * width
    } else {
        options.sigma_rel * hi.abs().max(1.0)
    };
    let (start, stop) = (lo - 5.0 * sigma, hi + 5.0 * sigma);
    let grid: Vec<f64> = (0..options.grid_points)
        .map(|i| start + (stop - start) * i as f64 / (options.grid_points - 1) as f64)
        .collect();
    let norm = 1.0 / (options.probes as f64 * sigma * (2.0 * std::f64::consts::PI).sqrt());
    let density = grid
        .iter()
        .map(|&t| {
            norm * nodes
                .iter()
                .zip(&weights)
                .flat_map(|(n, w)| n.iter().zip(w))
                .map(|(theta, w)| w * (-0.5 * ((t - theta) / sigma).powi(2)).exp())
                .sum::<f64>()
        })
        .collect();
    Ok(SpectralDensity {
        nodes,
        weights,
        sigma,
        grid,
        density,
        trace,
        products,
    })
}
