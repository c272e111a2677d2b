//! Command-line arguments of `landscape hessian`, `landscape sharpness` and
//! `landscape eigen-ratio`, and what the commands print: the `landscape` binary embeds these
//! structs in its `Command` enum and calls [`crate::job::hessian`], [`crate::job::sharpness`]
//! and [`crate::eigen_ratio::EigenRatioJob::run`] after opening the run and its data.

use crate::eigen_ratio::EigenRatioRequest;
use crate::hvp::{CurvatureScope, HvpOptions};
use crate::job::{HessianOptions, HessianReport, Outcome, SharpnessOptions, SharpnessReport};
use crate::lanczos::DensityOptions;
use clap::Args;
use landscape_job::shard::Shard;
use landscape_surface::grid::AxisRange;
use std::path::PathBuf;

pub use crate::spec::DEFAULT_SUBSET;

/// `landscape hessian ...`
#[derive(Args, Debug, Clone)]
pub struct HessianArgs {
    /// The run whose minimum is measured (see `landscape runs`).
    #[arg(long)]
    pub run: String,
    /// The checkpoint's epoch (default: the last).
    #[arg(long)]
    pub epoch: Option<u32>,
    /// Largest eigenvalues to report.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Lanczos steps (lambda_max, the top k and lambda_min come from one run).
    #[arg(long, default_value_t = 30)]
    pub lanczos_steps: usize,
    /// Hutchinson probes for the trace (0: skip).
    #[arg(long, default_value_t = 20)]
    pub trace_probes: usize,
    /// Hutch++ Hessian-vector products for the trace (0: skip).
    #[arg(long, default_value_t = 0)]
    pub hutchpp: usize,
    /// Power iterations as a cross-check of lambda_max (0: skip).
    #[arg(long, default_value_t = 0)]
    pub power: usize,
    /// Also estimate the spectral density (stochastic Lanczos quadrature): spectrum.csv.
    #[arg(long)]
    pub density: bool,
    /// Probe vectors of the density.
    #[arg(long, default_value_t = 3)]
    pub density_probes: usize,
    /// Lanczos steps per density probe.
    #[arg(long, default_value_t = 80)]
    pub density_steps: usize,
    /// Gaussian broadening of the density, as a fraction of the spectrum's width.
    #[arg(long, default_value_t = 0.01)]
    pub density_sigma: f64,
    /// weights (every learnable tensor) or weights-no-biasbn (convolution and linear weights).
    #[arg(long, value_enum, default_value = "weights")]
    pub scope: CurvatureScope,
    /// Central-difference step of the Hessian-vector products (along unit vectors).
    #[arg(long, default_value_t = HvpOptions::default().eps)]
    pub eps: f64,
    /// Plain central differences without replaying the ReLU masks (inexact; for comparison).
    #[arg(long, hide = true)]
    pub no_replay: bool,
    /// Seed of the random vectors.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training examples the loss averages over (the run's fixed subset; 0: all of them).
    #[arg(long, default_value_t = DEFAULT_SUBSET)]
    pub subset: usize,
    /// Examples per backward pass (memory only; results do not depend on it).
    #[arg(long, default_value_t = 128)]
    pub micro_batch: usize,
}

impl HessianArgs {
    /// The settings these arguments ask for.
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
            replay: !self.no_replay,
            seed: self.seed,
        }
    }
}

/// `landscape sharpness ...`
#[derive(Args, Debug, Clone)]
pub struct SharpnessArgs {
    /// The run whose minimum is measured.
    #[arg(long)]
    pub run: String,
    /// The checkpoint's epoch (default: the last).
    #[arg(long)]
    pub epoch: Option<u32>,
    /// Keskar box sizes (comma separated; empty to skip).
    #[arg(long, value_delimiter = ',', default_values_t = [1e-3, 5e-4])]
    pub keskar_eps: Vec<f64>,
    /// Dimension of Keskar's random subspace (0: full space only).
    #[arg(long, default_value_t = 100)]
    pub keskar_subspace: usize,
    /// Gradient evaluations of Keskar's ascent (the paper ran 10 L-BFGS-B iterations).
    #[arg(long, default_value_t = 10)]
    pub keskar_iterations: usize,
    /// Average-case noise scales rho (comma separated; adaptive and plain rows each).
    #[arg(long, value_delimiter = ',', default_values_t = [0.05])]
    pub average_rho: Vec<f64>,
    /// Monte Carlo samples of average-case sharpness.
    #[arg(long, default_value_t = 10)]
    pub average_samples: usize,
    /// Adaptive worst-case radii rho (comma separated).
    #[arg(long, value_delimiter = ',', default_values_t = [0.5])]
    pub worst_rho: Vec<f64>,
    /// Gradient evaluations of the worst-case ascent.
    #[arg(long, default_value_t = 10)]
    pub worst_steps: usize,
    /// Skip PAC-Bayes flatness.
    #[arg(long)]
    pub no_pac_bayes: bool,
    /// Monte Carlo samples per sigma of PAC-Bayes flatness.
    #[arg(long, default_value_t = 10)]
    pub pac_bayes_samples: usize,
    /// Bisection steps of PAC-Bayes flatness.
    #[arg(long, default_value_t = 15)]
    pub pac_bayes_depth: usize,
    /// Lanczos steps of a lambda_max row for comparison (0: skip).
    #[arg(long, default_value_t = 20)]
    pub lambda_max_steps: usize,
    /// Which tensors are perturbed.
    #[arg(long, value_enum, default_value = "weights")]
    pub scope: CurvatureScope,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training examples (the run's fixed subset; 0: all of them).
    #[arg(long, default_value_t = DEFAULT_SUBSET)]
    pub subset: usize,
    /// Examples per backward pass (memory only).
    #[arg(long, default_value_t = 128)]
    pub micro_batch: usize,
}

impl SharpnessArgs {
    /// The settings these arguments ask for.
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
            pac_bayes: !self.no_pac_bayes,
            pac_bayes_samples: self.pac_bayes_samples,
            pac_bayes_depth: self.pac_bayes_depth,
            lambda_max_steps: self.lambda_max_steps,
            eps: HvpOptions::default().eps,
            seed: self.seed,
        }
    }
}

/// `landscape eigen-ratio ...`
#[derive(Args, Debug, Clone)]
pub struct EigenRatioArgs {
    /// The run at the centre.
    #[arg(long)]
    pub run: String,
    /// The checkpoint's epoch (default: the last).
    #[arg(long)]
    pub epoch: Option<u32>,
    /// First axis, start:stop:points.
    #[arg(long, allow_hyphen_values = true)]
    pub x: AxisRange,
    /// Second axis for a 2-D map.
    #[arg(long, allow_hyphen_values = true)]
    pub y: Option<AxisRange>,
    /// Seed of the filter-normalized directions: the loss surface's seed gives its plane.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use the directions in this safetensors file (a surface's directions.safetensors).
    #[arg(long)]
    pub directions: Option<PathBuf>,
    /// Lanczos steps at each point.
    #[arg(long, default_value_t = 20)]
    pub lanczos_steps: usize,
    /// Which tensors the Hessian is over.
    #[arg(long, value_enum, default_value = "weights")]
    pub scope: CurvatureScope,
    /// Central-difference step of the Hessian-vector products.
    #[arg(long, default_value_t = HvpOptions::default().eps)]
    pub eps: f64,
    /// Training examples (the run's fixed subset; 0: all of them).
    #[arg(long, default_value_t = DEFAULT_SUBSET)]
    pub subset: usize,
    /// Examples per backward pass (memory only).
    #[arg(long, default_value_t = 128)]
    pub micro_batch: usize,
    /// Compute only part k of n of the grid (join the parts with `landscape merge`).
    #[arg(long, default_value = "1/1")]
    pub shard: Shard,
}

impl EigenRatioArgs {
    /// The map these arguments ask for.
    pub fn request(&self) -> EigenRatioRequest {
        EigenRatioRequest {
            x: self.x,
            y: self.y,
            seed: self.seed,
            directions: self.directions.clone(),
            lanczos_steps: self.lanczos_steps,
            scope: self.scope,
            eps: self.eps,
            subset: self.subset,
            micro_batch: self.micro_batch,
        }
    }
}

/// The lines `landscape hessian` prints.
pub fn hessian_summary(outcome: &Outcome<HessianReport>) -> String {
    let r = &outcome.report;
    let mut out = format!(
        "{} ({}): {} parameters, {} examples, loss {:.4}, error {:.2}%\n",
        outcome.dir.display(),
        if outcome.cached { "found" } else { "computed" },
        r.parameters,
        r.examples,
        r.loss,
        100.0 * r.error
    );
    let top: Vec<String> = r.eigen.top.iter().map(|v| format!("{v:.4}")).collect();
    out += &format!("top eigenvalues: {}\n", top.join(" "));
    out += &format!(
        "lambda_min: {:.4}   |lambda_min / lambda_max|: {:.4}\n",
        r.eigen.lambda_min, r.ratio
    );
    if let Some(p) = &r.power {
        out += &format!(
            "power iteration lambda_max: {:.4} ({} iterations{})\n",
            p.eigenvalue,
            p.iterations,
            if p.converged { "" } else { ", not converged" }
        );
    }
    if let Some(t) = &r.hutchinson {
        out += &format!(
            "trace (Hutchinson, {} probes): {:.4} +- {:.4}\n",
            t.products, t.trace, t.stderr
        );
    }
    if let Some(t) = &r.hutchpp {
        out += &format!("trace (Hutch++, {} products): {:.4}\n", t.products, t.trace);
    }
    if let Some(t) = r.density_trace {
        out += &format!(
            "trace (density quadrature): {t:.4}; density in {}\n",
            outcome.dir.join("spectrum.csv").display()
        );
    }
    out += &format!(
        "{} Hessian-vector products, {:.1} s\n",
        r.products, r.seconds
    );
    out
}

/// The lines `landscape sharpness` prints.
pub fn sharpness_summary(outcome: &Outcome<SharpnessReport>) -> String {
    let r = &outcome.report;
    let mut out = format!(
        "{} ({}): loss {:.4}, error {:.2}%\n{:<22} {:<20} {:>14} {:>12} {:<13} {}\n",
        outcome.dir.join("sharpness.csv").display(),
        if outcome.cached { "found" } else { "computed" },
        r.loss,
        100.0 * r.error,
        "measure",
        "setting",
        "value",
        "stderr",
        "units",
        "scale-invariant"
    );
    for row in &r.rows {
        out += &format!(
            "{:<22} {:<20} {:>14.6} {:>12} {:<13} {}\n",
            row.measure,
            row.setting,
            row.value,
            row.stderr.map_or("-".into(), |s| format!("{s:.2e}")),
            row.units,
            if row.scale_invariant { "yes" } else { "no" }
        );
    }
    out
}
