//! The `[[analysis]]` blocks of experiment specs for curvature, as the spec crate embeds them:
//! `kind = "hessian"`, `kind = "sharpness"` and `kind = "eigen_ratio"`. Every key has a
//! default, so `{ name = "curv", kind = "hessian" }` is a complete block; unknown keys are
//! refused.
//!
//! ```toml
//! [[analysis]]
//! name = "hessian"
//! kind = "hessian"
//! top_k = 5              # largest eigenvalues reported
//! lanczos_steps = 30     # lambda_max, top k and lambda_min from one Lanczos run
//! trace_probes = 20      # Hutchinson (0: skip)
//! hutchpp = 0            # Hutch++ products (0: skip)
//! density = true         # spectral density (spectrum.csv)
//! subset = 4096          # training examples (the run's fixed subset; 0: all)
//!
//! [[analysis]]
//! name = "sharp"
//! kind = "sharpness"
//! keskar_eps = [1e-3, 5e-4]
//! average_rho = [0.05]
//! worst_rho = [0.5]
//!
//! [[analysis]]
//! name = "ratio"
//! kind = "eigen_ratio"
//! x = "-1:1:11"
//! y = "-1:1:11"
//! seed = 0               # the loss surface's seed: the same plane
//! ```

use crate::eigen_ratio::EigenRatioRequest;
use crate::hvp::{CurvatureScope, HvpOptions};
use crate::job::{HessianOptions, SharpnessOptions};
use crate::lanczos::DensityOptions;
use landscape_surface::grid::AxisRange;
use serde::{Deserialize, Serialize};

/// Training examples a curvature analysis averages over by default (PyHessian: about 4,096
/// samples give stable top eigenvalues on CIFAR-10).
pub const DEFAULT_SUBSET: usize = 4096;

fn d_subset() -> usize {
    DEFAULT_SUBSET
}
fn d_micro() -> usize {
    128
}
fn d_top_k() -> usize {
    5
}
fn d_lanczos() -> usize {
    30
}
fn d_probes() -> usize {
    20
}
fn d_eps() -> f64 {
    HvpOptions::default().eps
}
fn d_density_probes() -> usize {
    DensityOptions::default().probes
}
fn d_density_steps() -> usize {
    DensityOptions::default().steps
}
fn d_density_sigma() -> f64 {
    DensityOptions::default().sigma_rel
}
fn d_keskar_eps() -> Vec<f64> {
    SharpnessOptions::default().keskar_eps
}
fn d_keskar_subspace() -> usize {
    SharpnessOptions::default().keskar_subspace
}
fn d_keskar_iterations() -> usize {
    SharpnessOptions::default().keskar_iterations
}
fn d_average_rho() -> Vec<f64> {
    SharpnessOptions::default().average_rho
}
fn d_samples() -> usize {
    SharpnessOptions::default().average_samples
}
fn d_worst_rho() -> Vec<f64> {
    SharpnessOptions::default().worst_rho
}
fn d_worst_steps() -> usize {
    SharpnessOptions::default().worst_steps
}
fn d_true() -> bool {
    true
}
fn d_pb_samples() -> usize {
    SharpnessOptions::default().pac_bayes_samples
}
fn d_pb_depth() -> usize {
    SharpnessOptions::default().pac_bayes_depth
}
fn d_lambda_steps() -> usize {
    SharpnessOptions::default().lambda_max_steps
}
fn d_ratio_steps() -> usize {
    20
}

/// `kind = "hessian"`: the Hessian report of each selected run (`hessian-<hash>/`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HessianAnalysis {
    /// Largest eigenvalues reported.
    #[serde(default = "d_top_k")]
    pub top_k: usize,
    /// Lanczos steps.
    #[serde(default = "d_lanczos")]
    pub lanczos_steps: usize,
    /// Hutchinson probes (0: skip).
    #[serde(default = "d_probes")]
    pub trace_probes: usize,
    /// Hutch++ products (0: skip).
    #[serde(default)]
    pub hutchpp: usize,
    /// Power iterations as a cross-check (0: skip).
    #[serde(default)]
    pub power: usize,
    /// Spectral density by stochastic Lanczos quadrature.
    #[serde(default)]
    pub density: bool,
    /// Probes of the density.
    #[serde(default = "d_density_probes")]
    pub density_probes: usize,
    /// Lanczos steps per density probe.
    #[serde(default = "d_density_steps")]
    pub density_steps: usize,
    /// Broadening of the density (fraction of the spectrum's width).
    #[serde(default = "d_density_sigma")]
    pub density_sigma: f64,
    /// `weights` or `weights-no-biasbn`.
    #[serde(default)]
    pub scope: CurvatureScope,
    /// Central-difference step of the HVPs.
    #[serde(default = "d_eps")]
    pub eps: f64,
    /// Seed of the random vectors.
    #[serde(default)]
    pub seed: u64,
    /// Training examples (0: the run's training set).
    #[serde(default = "d_subset")]
    pub subset: usize,
    /// Examples per backward pass (memory only).
    #[serde(default = "d_micro")]
    pub micro_batch: usize,
}

impl HessianAnalysis {
    /// The settings of the report.
    pub fn options(&self) -> HessianOptions {
        HessianOptions {
            top_k: self.top_k,
            lanczos_steps: self.lanczos_steps,
            trace_probes: self.trace_probes,
            hutchpp_products: self.hutchpp,
            power_iterations: self.power,
            density: self.density.then_some(DensityOptions {
                probes: self.density_probes,
                steps: self.density_steps,
                sigma_rel: self.density_sigma,
                ..DensityOptions::default()
            }),
            scope: self.scope,
            eps: self.eps,
            replay: true,
            seed: self.seed,
        }
    }
}

/// `kind = "sharpness"`: the sharpness table of each selected run (`sharpness-<hash>/`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharpnessAnalysis {
    /// Keskar box sizes (empty: skip).
    #[serde(default = "d_keskar_eps")]
    pub keskar_eps: Vec<f64>,
    /// Keskar subspace dimension (0: full space only).
    #[serde(default = "d_keskar_subspace")]
    pub keskar_subspace: usize,
    /// Gradient evaluations of Keskar's ascent.
    #[serde(default = "d_keskar_iterations")]
    pub keskar_iterations: usize,
    /// Average-case noise scales (empty: skip).
    #[serde(default = "d_average_rho")]
    pub average_rho: Vec<f64>,
    /// Monte Carlo samples of average-case sharpness.
    #[serde(default = "d_samples")]
    pub average_samples: usize,
    /// Adaptive worst-case radii (empty: skip).
    #[serde(default = "d_worst_rho")]
    pub worst_rho: Vec<f64>,
    /// Gradient evaluations of the worst-case ascent.
    #[serde(default = "d_worst_steps")]
    pub worst_steps: usize,
    /// PAC-Bayes flatness (plain and magnitude-aware).
    #[serde(default = "d_true")]
    pub pac_bayes: bool,
    /// Monte Carlo samples per sigma.
    #[serde(default = "d_pb_samples")]
    pub pac_bayes_samples: usize,
    /// Bisection steps.
    #[serde(default = "d_pb_depth")]
    pub pac_bayes_depth: usize,
    /// Lanczos steps of the lambda_max row (0: skip).
    #[serde(default = "d_lambda_steps")]
    pub lambda_max_steps: usize,
    /// Which tensors are perturbed.
    #[serde(default)]
    pub scope: CurvatureScope,
    /// Seed of every random draw.
    #[serde(default)]
    pub seed: u64,
    /// Training examples (0: the run's training set).
    #[serde(default = "d_subset")]
    pub subset: usize,
    /// Examples per backward pass (memory only).
    #[serde(default = "d_micro")]
    pub micro_batch: usize,
}

impl SharpnessAnalysis {
    /// The settings of the table.
    pub fn options(&self) -> SharpnessOptions {
        SharpnessOptions {
            scope: self.scope,
            keskar_eps: self.keskar_eps.clone(),
            keskar_subspace: self.keskar_subspace,
            keskar_iterations: self.keskar_iterations,
            average_rho: self.average_rho.clone(),
            average_samples: self.average_samples,
            worst_rho: self.worst_rho.clone(),
            worst_steps: self.worst_steps,
            pac_bayes: self.pac_bayes,
            pac_bayes_samples: self.pac_bayes_samples,
            pac_bayes_depth: self.pac_bayes_depth,
            lambda_max_steps: self.lambda_max_steps,
            eps: HvpOptions::default().eps,
            seed: self.seed,
        }
    }
}

/// `kind = "eigen_ratio"`: an eigen-ratio map around each selected run (`eigratio-<hash>/`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EigenRatioAnalysis {
    /// First axis, `start:stop:points`.
    pub x: AxisRange,
    /// Second axis for a 2-D map.
    #[serde(default)]
    pub y: Option<AxisRange>,
    /// Seed of the filter-normalized directions (the loss surface's seed gives its plane).
    #[serde(default)]
    pub seed: u64,
    /// Lanczos steps at each point.
    #[serde(default = "d_ratio_steps")]
    pub lanczos_steps: usize,
    /// Which tensors the Hessian is over.
    #[serde(default)]
    pub scope: CurvatureScope,
    /// Central-difference step of the HVPs.
    #[serde(default = "d_eps")]
    pub eps: f64,
    /// Training examples (0: the run's training set).
    #[serde(default = "d_subset")]
    pub subset: usize,
    /// Examples per backward pass (memory only).
    #[serde(default = "d_micro")]
    pub micro_batch: usize,
}

impl EigenRatioAnalysis {
    /// The map this block asks for.
    pub fn request(&self) -> EigenRatioRequest {
        EigenRatioRequest {
            x: self.x,
            y: self.y,
            seed: self.seed,
            directions: None,
            lanczos_steps: self.lanczos_steps,
            scope: self.scope,
            eps: self.eps,
            subset: self.subset,
            micro_batch: self.micro_batch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_parse_with_defaults_and_refuse_unknown_keys() {
        let h: HessianAnalysis = toml::from_str("density = true\ntop_k = 3").unwrap();
        assert_eq!(h.options().top_k, 3);
        assert!(h.options().density.is_some());
        assert_eq!(h.subset, DEFAULT_SUBSET);
        assert!(toml::from_str::<HessianAnalysis>("topk = 3").is_err());
        let s: SharpnessAnalysis =
            toml::from_str("keskar_eps = [1e-3]\npac_bayes = false").unwrap();
        assert_eq!(s.options().keskar_eps, vec![1e-3]);
        assert!(!s.options().pac_bayes);
        let r: EigenRatioAnalysis =
            toml::from_str("x = \"-1:1:5\"\ny = \"-1:1:5\"\nscope = \"weights-no-biasbn\"")
                .unwrap();
        assert_eq!(r.request().scope, CurvatureScope::WeightsNoBiasbn);
        assert!(
            toml::from_str::<EigenRatioAnalysis>("y = \"-1:1:5\"").is_err(),
            "x is required"
        );
    }
}
