//! Sharpness measures of a minimum (see `shared/reference/sharpness.md`), each on an abstract
//! [`Objective`] so they can be checked on functions with known answers; [`LossModel`] is the
//! network's mean training loss.
//!
//! | measure | definition | default | scale invariant (Dinh et al. 2017)? |
//! |---|---|---|---|
//! | [`keskar`] | `100 (max_{y in C} f(x + A y) - f(x)) / (1 + f(x))`, box `C: abs(y_i) <= eps (abs((A+ x)_i) + 1)` | eps 1e-3, full space | no |
//! | [`average_case`] | `E[f(w + delta)] - f(w)`, `delta ~ N(0, rho^2 diag(c^2))` | rho 0.05, `c = abs(w)` | yes with `c = abs(w)`; no with `c = 1` |
//! | [`worst_case_adaptive`] | `max_{norm(delta / c) <= rho} f(w + delta) - f(w)` | rho 0.5, `c = abs(w)`, 10 steps | yes |
//! | [`pac_bayes`] | `1 / sigma^2`, largest sigma with `E[err(w + sigma z)] - err(w) <= 0.1` | 10 samples, depth 15 | no; the magnitude-aware variant (`std = sigma abs(w)`) is |
//!
//! Units: the first three are in the loss's units (nats; Keskar's in percent of `1 + f(x)`),
//! PAC-Bayes flatness in 1/(parameter units)^2. Every random draw comes from a ChaCha8 stream
//! seeded by the options (host side: the same numbers on every device).

// `!(x > 0.0)` on purpose: it rejects NaN settings too.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use crate::hvp::LossModel;
use crate::vector::{ParamVec, VecShape, rng};
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// A scalar function of parameter vectors with a point of interest (a minimum).
pub trait Objective {
    /// The shape of its parameter vectors.
    fn shape(&self) -> VecShape;
    /// The point whose sharpness is measured.
    fn point(&self) -> ParamVec;
    /// The value at `w`.
    fn loss(&self, w: &ParamVec) -> f64;
    /// The value and gradient at `w`.
    fn loss_and_gradient(&self, w: &ParamVec) -> (f64, ParamVec);
    /// The classification error (fraction, 0..1) at `w`, for objectives that classify.
    fn error(&self, _w: &ParamVec) -> Option<f64> {
        None
    }
}

impl Objective for LossModel {
    fn shape(&self) -> VecShape {
        LossModel::shape(self)
    }
    fn point(&self) -> ParamVec {
        LossModel::point(self)
    }
    fn loss(&self, w: &ParamVec) -> f64 {
        self.evaluate(w).loss
    }
    fn loss_and_gradient(&self, w: &ParamVec) -> (f64, ParamVec) {
        LossModel::loss_and_gradient(self, w)
    }
    fn error(&self, w: &ParamVec) -> Option<f64> {
        Some(self.evaluate(w).error)
    }
}

/// Settings of Keskar et al.'s epsilon-sharpness.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeskarOptions {
    /// Relative size of the box (Keskar et al. report 1e-3 and 5e-4).
    pub eps: f64,
    /// `None`: the full space (`A = I`); `Some(p)`: a random `p`-dimensional subspace (they use
    /// p = 100), `A` with independent N(0, 1) entries.
    pub subspace: Option<usize>,
    /// Gradient evaluations of the ascent (Keskar et al. run 10 iterations of L-BFGS-B).
    pub iterations: usize,
    /// Sign-ascent step as a fraction of the box's half-width.
    pub step: f64,
    /// Seed of the subspace and of the ascent's start.
    pub seed: u64,
}

impl Default for KeskarOptions {
    fn default() -> Self {
        Self {
            eps: 1e-3,
            subspace: None,
            iterations: 10,
            step: 0.25,
            seed: 0,
        }
    }
}

/// A worst-case search's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AscentResult {
    /// The measure.
    pub value: f64,
    /// `f` at the point.
    pub loss: f64,
    /// The largest `f` found in the region.
    pub max_loss: f64,
    /// Gradient evaluations plus loss evaluations used.
    pub evaluations: usize,
}

/// Keskar et al. (2017) epsilon-sharpness:
///
/// ```text
/// phi(eps, A) = 100 * (max_{y in C} f(x + A y) - f(x)) / (1 + f(x)),
/// C = { y : |y_i| <= eps (|(A+ x)_i| + 1) }
/// ```
///
/// with `A = I` (full space) or a random `n x p` matrix (`A+` its pseudo-inverse
/// `(A^T A)^-1 A^T`). Percent; larger is sharper; not scale invariant (a Dinh rescaling changes
/// it).
///
/// The maximization is projected sign ascent in the box, a documented stand-in for the 10
/// L-BFGS-B iterations of the paper (no public implementation exists): with box coordinates
/// `u in [-1, 1]^d` (`y = r * u`, `r` the half-widths), `u <- clip(u + step * sign(r * grad_y),
/// -1, 1)` for `iterations` gradient evaluations, from a random start at 1 % of the box (an
/// exact stationary point would stall sign ascent at 0), keeping the largest value seen (the
/// final point is evaluated too). The steepest-ascent direction of a box is the sign vector,
/// and a convex bump's maximum over a box is at a corner, which 4 steps of 0.25 reach.
pub fn keskar<O: Objective + ?Sized>(
    objective: &O,
    options: &KeskarOptions,
) -> Result<AscentResult> {
    if !(options.eps > 0.0) || options.iterations == 0 {
        bail!("Keskar sharpness needs eps > 0 and at least one iteration");
    }
    let x = objective.point();
    let shape = objective.shape();
    let mut stream = rng(options.seed);
    let base = objective.loss(&x);
    let mut best = base;
    let mut evaluations = 1;
    match options.subspace {
        None => {
            let r = x.abs().map(|t| t.add_scalar(1.0).mul_scalar(options.eps));
            let mut u = shape.rademacher(&mut stream).scale(0.01);
            for _ in 0..options.iterations {
                let (f, g) = objective.loss_and_gradient(&x.add(&r.mul(&u)));
                evaluations += 1;
                best = best.max(f);
                let step = r.mul(&g).map(|t| t.sign().mul_scalar(options.step));
                u = u.add(&step).map(|t| t.clamp(-1.0, 1.0));
            }
            best = best.max(objective.loss(&x.add(&r.mul(&u))));
            evaluations += 1;
        }
        Some(p) => {
            if p == 0 || p > shape.numel() {
                bail!(
                    "Keskar subspace dimension must be in 1..={}, got {p}",
                    shape.numel()
                );
            }
            let a: Vec<ParamVec> = (0..p).map(|_| shape.gaussian(&mut stream)).collect();
            let gram: Vec<Vec<f64>> = a.iter().map(|col| col.dots(&a)).collect();
            let atx = x.dots(&a);
            let pinv_x = cholesky_solve(&gram, &atx)?;
            let r: Vec<f64> = pinv_x
                .iter()
                .map(|v| options.eps * (v.abs() + 1.0))
                .collect();
            let mut u: Vec<f64> = shape_host_signs(p, &mut stream)
                .into_iter()
                .map(|s| 0.01 * s)
                .collect();
            let at = |u: &[f64]| {
                let y: Vec<f64> = u.iter().zip(&r).map(|(u, r)| u * r).collect();
                x.add(&ParamVec::combination(&a, &y))
            };
            for _ in 0..options.iterations {
                let (f, g) = objective.loss_and_gradient(&at(&u));
                evaluations += 1;
                best = best.max(f);
                let gy = g.dots(&a);
                for i in 0..p {
                    let s = if gy[i] > 0.0 {
                        1.0
                    } else if gy[i] < 0.0 {
                        -1.0
                    } else {
                        0.0
                    };
                    u[i] = (u[i] + options.step * s).clamp(-1.0, 1.0);
                }
            }
            best = best.max(objective.loss(&at(&u)));
            evaluations += 1;
        }
    }
    check_finite(base, "Keskar sharpness")?;
    Ok(AscentResult {
        value: 100.0 * (best - base) / (1.0 + base),
        loss: base,
        max_loss: best,
        evaluations,
    })
}

fn shape_host_signs(p: usize, stream: &mut rand_chacha::ChaCha8Rng) -> Vec<f64> {
    use rand::RngExt;
    (0..p)
        .map(|_| if stream.random::<bool>() { 1.0 } else { -1.0 })
        .collect()
}

/// Solves `G x = b` for a symmetric positive definite `G` (Cholesky, f64).
fn cholesky_solve(g: &[Vec<f64>], b: &[f64]) -> Result<Vec<f64>> {
    let n = b.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = g[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if s <= 0.0 {
                    bail!("the random subspace is degenerate (A^T A not positive definite)");
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    Ok(x)
}

/// The per-coordinate scale `c` of a perturbation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// `c = abs(w)`: adaptive, invariant to rescalings that keep the function.
    #[default]
    Adaptive,
    /// `c = 1`: plain (not scale invariant).
    Plain,
}

/// Settings of average-case sharpness.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AverageOptions {
    /// Noise scale `rho` (relative to `abs(w)` when adaptive).
    pub rho: f64,
    /// `c`.
    pub scaling: Scaling,
    /// Monte Carlo samples.
    pub samples: usize,
    /// Seed of the noise.
    pub seed: u64,
}

impl Default for AverageOptions {
    fn default() -> Self {
        Self {
            rho: 0.05,
            scaling: Scaling::Adaptive,
            samples: 10,
            seed: 0,
        }
    }
}

/// A Monte Carlo measure.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampledResult {
    /// The measure (the sample mean).
    pub value: f64,
    /// Its standard error over the samples (NaN with one sample).
    pub stderr: f64,
    /// `f` at the point.
    pub loss: f64,
    /// Loss evaluations used.
    pub evaluations: usize,
}

fn scale_vector(w: &ParamVec, scaling: Scaling) -> ParamVec {
    match scaling {
        Scaling::Adaptive => w.abs(),
        Scaling::Plain => w.map(|t| t.ones_like()),
    }
}

/// Average-case sharpness (Andriushchenko et al. 2023): `E[f(w + delta)] - f(w)` with
/// `delta ~ N(0, rho^2 diag(c^2))`, `c = abs(w)` (adaptive: scale invariant, since a rescaled
/// net's noise rescales with it) or `c = 1`. Loss units (nats); `samples` draws from `seed`.
pub fn average_case<O: Objective + ?Sized>(
    objective: &O,
    options: &AverageOptions,
) -> Result<SampledResult> {
    if options.samples == 0 || !(options.rho >= 0.0) {
        bail!("average-case sharpness needs rho >= 0 and at least one sample");
    }
    let w = objective.point();
    let c = scale_vector(&w, options.scaling).scale(options.rho);
    let base = objective.loss(&w);
    let shape = objective.shape();
    let mut stream = rng(options.seed);
    let rises: Vec<f64> = (0..options.samples)
        .map(|_| objective.loss(&w.add(&c.mul(&shape.gaussian(&mut stream)))) - base)
        .collect();
    check_finite(base, "average-case sharpness")?;
    let (value, stderr) = mean_and_stderr(&rises);
    Ok(SampledResult {
        value,
        stderr,
        loss: base,
        evaluations: options.samples + 1,
    })
}

/// Settings of adaptive worst-case sharpness.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorstCaseOptions {
    /// Radius `rho` of the ball `norm(delta / c) <= rho` (ASAM's CIFAR default for adaptive L2 is 0.5).
    pub rho: f64,
    /// `c`.
    pub scaling: Scaling,
    /// Gradient evaluations of the ascent.
    pub steps: usize,
    /// Step length as a fraction of `rho`.
    pub step: f64,
}

impl Default for WorstCaseOptions {
    fn default() -> Self {
        Self {
            rho: 0.5,
            scaling: Scaling::Adaptive,
            steps: 10,
            step: 0.5,
        }
    }
}

/// Adaptive worst-case sharpness (ASAM, Kwon et al. 2021; Andriushchenko et al. 2023):
/// `max_{norm_2(delta / c) <= rho} f(w + delta) - f(w)`, `c = abs(w)`.
///
/// Approximated by projected normalized gradient ascent in `u = delta / c`: `u <- P(u + step *
/// rho * g_u / norm(g_u))`, `g_u = c * grad f(w + c u)`, `P` the projection on the ball, from
/// `u = 0` (the first step is SAM's), `steps` gradient evaluations, keeping the largest value
/// seen (the final point is evaluated too). A lower bound of the true maximum. Loss units
/// (nats); scale invariant with `c = abs(w)` (the ascent itself is: `u`, `g_u` and the ball are
/// unchanged by a rescaling that keeps the function).
pub fn worst_case_adaptive<O: Objective + ?Sized>(
    objective: &O,
    options: &WorstCaseOptions,
) -> Result<AscentResult> {
    if options.steps == 0 || !(options.rho >= 0.0) {
        bail!("worst-case sharpness needs rho >= 0 and at least one step");
    }
    let w = objective.point();
    let c = scale_vector(&w, options.scaling);
    let mut u = w.zeros_like();
    let mut base = f64::NAN;
    let mut best = f64::NEG_INFINITY;
    for i in 0..options.steps {
        let (f, g) = objective.loss_and_gradient(&w.add(&c.mul(&u)));
        if i == 0 {
            base = f;
        }
        best = best.max(f);
        let gu = c.mul(&g);
        let norm = gu.norm();
        if !(norm > 0.0) {
            break;
        }
        u = u.axpy(options.step * options.rho / norm, &gu);
        let un = u.norm();
        if un > options.rho {
            u = u.scale(options.rho / un);
        }
    }
    best = best.max(objective.loss(&w.add(&c.mul(&u))));
    check_finite(base, "worst-case sharpness")?;
    Ok(AscentResult {
        value: best - base,
        loss: base,
        max_loss: best,
        evaluations: options.steps + 1,
    })
}

/// Settings of PAC-Bayes flatness.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PacBayesOptions {
    /// Allowed rise of the training error, as a fraction of the examples (Jiang et al.: 0.1).
    pub target: f64,
    /// Stop when the rise is within this of `target` (Jiang et al.: 1e-2).
    pub tolerance: f64,
    /// Bisection steps (Jiang et al.'s code: 15).
    pub depth: usize,
    /// Monte Carlo samples per sigma (Jiang et al.'s code: 10).
    pub samples: usize,
    /// Upper end of the search (Jiang et al.'s code: 2).
    pub upper: f64,
    /// `None`: noise `sigma z` (pacbayes.flatness). `Some(e)`: magnitude-aware noise with
    /// standard deviation `sqrt(sigma^2 w^2 + e^2)` (pacbayes.mag.flatness, e = 1e-3 there).
    pub magnitude_eps: Option<f64>,
    /// Seed of the noise (the same draws for every sigma: common random numbers make the
    /// error rise monotone in sigma, which bisection needs).
    pub seed: u64,
}

impl Default for PacBayesOptions {
    fn default() -> Self {
        Self {
            target: 0.1,
            tolerance: 1e-2,
            depth: 15,
            samples: 10,
            upper: 2.0,
            magnitude_eps: None,
            seed: 0,
        }
    }
}

/// PAC-Bayes flatness's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PacBayesResult {
    /// `1 / sigma^2` (larger is sharper).
    pub flatness: f64,
    /// The sigma found.
    pub sigma: f64,
    /// The mean training-error rise at that sigma (fraction).
    pub rise: f64,
    /// The training error at the point (fraction).
    pub error: f64,
    /// Error evaluations used.
    pub evaluations: usize,
}

/// PAC-Bayes flatness (Jiang et al. 2020, "Fantastic generalization measures", measures
/// pacbayes.flatness and pacbayes.mag.flatness): the largest `sigma` for which Gaussian weight
/// noise raises the expected training error by at most `target`, found by bisection on
/// `[0, upper]`, reported as `1 / sigma^2`.
///
/// The threshold is Jiang et al.'s `d = 0.1` on the error as a fraction of the examples: a
/// rise of 0.1 means 10 percentage points of accuracy (their code compares accuracies in
/// `[0, 1]`: `abs(mean_acc - acc)` against 0.1 with tolerance 1e-2). Noise std is `sigma`
/// (their public reimplementations pass `sigma^2` as torch's std, a slip this does not copy).
/// Units 1/(parameter units)^2; not scale invariant, the magnitude-aware variant with
/// `magnitude_eps = Some(0)` is.
pub fn pac_bayes<O: Objective + ?Sized>(
    objective: &O,
    options: &PacBayesOptions,
) -> Result<PacBayesResult> {
    let w = objective.point();
    let Some(error) = objective.error(&w) else {
        bail!("PAC-Bayes flatness needs a classification error");
    };
    if options.samples == 0 || options.depth == 0 || !(options.upper > 0.0) {
        bail!("PAC-Bayes flatness needs samples, depth and an upper bound");
    }
    let shape = objective.shape();
    let abs_w = w.abs();
    let mut evaluations = 1;
    let mut rise_at = |sigma: f64| -> f64 {
        let mut total = 0.0;
        for k in 0..options.samples {
            let z = shape.gaussian(&mut rng(options.seed.wrapping_add(k as u64)));
            let noise = match options.magnitude_eps {
                None => z.scale(sigma),
                Some(e) => z.mul(&abs_w.map(|t| {
                    (t.square().mul_scalar(sigma * sigma))
                        .add_scalar(e * e)
                        .sqrt()
                })),
            };
            total += objective.error(&w.add(&noise)).expect("classifier");
            evaluations += 1;
        }
        total / options.samples as f64 - error
    };
    let (mut lower, mut upper) = (0.0, options.upper);
    let (mut sigma, mut rise) = (upper, f64::NAN);
    for _ in 0..options.depth {
        sigma = 0.5 * (lower + upper);
        rise = rise_at(sigma);
        if (rise - options.target).abs() < options.tolerance {
            break;
        }
        if rise > options.target {
            upper = sigma;
        } else {
            lower = sigma;
        }
    }
    Ok(PacBayesResult {
        flatness: 1.0 / (sigma * sigma),
        sigma,
        rise,
        error,
        evaluations,
    })
}

fn check_finite(value: f64, what: &str) -> Result<()> {
    if !value.is_finite() {
        bail!("{what}: the loss at the point is not finite ({value})");
    }
    Ok(())
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
