//! `kind = "hessian"` and `landscape hessian`: the curvature at a run's minimum: top Hessian
//! eigenvalues and lambda_min (Lanczos), trace (Hutchinson, Hutch++), spectral density.

use super::{
    Artifact, CURVATURE_SUBSET, Kind, MICRO_BATCH, PerRunReport, ReportCommand, default_from_args,
    read,
};
use anyhow::Result;
use clap::{ArgAction, Args};
use landscape_curvature::CurvatureScope;
use landscape_curvature::job::{self, CurvatureInput, HessianOptions, HessianReport, Outcome};
use landscape_curvature::lanczos::DensityOptions;
use serde::Deserialize;
use std::path::Path;

/// The settings of a Hessian report: the `[[analysis]]` block `kind = "hessian"` and the
/// options of `landscape hessian`.
#[derive(Args, Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HessianSettings {
    /// Largest eigenvalues to report.
    #[arg(long, default_value_t = HessianOptions::default().top_k)]
    pub top_k: usize,
    /// Lanczos steps (lambda_max, the top k and lambda_min come from one run).
    #[arg(long, default_value_t = HessianOptions::default().lanczos_steps)]
    pub lanczos_steps: usize,
    /// Hutchinson probes for the trace (0: skip).
    #[arg(long, default_value_t = HessianOptions::default().trace_probes)]
    pub trace_probes: usize,
    /// Hutch++ Hessian-vector products for the trace (0: skip).
    #[arg(long, default_value_t = HessianOptions::default().hutchpp_products)]
    pub hutchpp: usize,
    /// Power iterations as a cross-check of lambda_max (0: skip).
    #[arg(long, default_value_t = HessianOptions::default().power_iterations)]
    pub power: usize,
    /// Also estimate the spectral density (stochastic Lanczos quadrature): spectrum.csv.
    #[arg(long)]
    pub density: bool,
    /// Probe vectors of the density.
    #[arg(long, default_value_t = DensityOptions::default().probes)]
    pub density_probes: usize,
    /// Lanczos steps per density probe.
    #[arg(long, default_value_t = DensityOptions::default().steps)]
    pub density_steps: usize,
    /// Gaussian broadening of the density, as a fraction of the spectrum's width.
    #[arg(long, default_value_t = DensityOptions::default().sigma_rel)]
    pub density_sigma: f64,
    /// weights (every learnable tensor) or weights-no-biasbn (convolution and linear weights).
    #[arg(long, value_enum, default_value_t = HessianOptions::default().scope)]
    pub scope: CurvatureScope,
    /// Central-difference step of the Hessian-vector products (along unit vectors).
    #[arg(long, default_value_t = HessianOptions::default().eps)]
    pub eps: f64,
    /// Replay the point's ReLU masks in the products (exact); `--no-replay`: plain central
    /// differences, inexact, for comparison.
    #[arg(long = "no-replay", action = ArgAction::SetFalse, hide = true)]
    pub replay: bool,
    /// Seed of the random vectors.
    #[arg(long, default_value_t = HessianOptions::default().seed)]
    pub seed: u64,
    /// Training examples the loss averages over (the run's fixed subset; 0: all of them).
    #[arg(long, default_value_t = CURVATURE_SUBSET)]
    pub subset: usize,
    /// Examples per backward pass (memory only; results do not depend on it).
    #[arg(long, default_value_t = MICRO_BATCH)]
    pub micro_batch: usize,
}

default_from_args!(HessianSettings);

impl HessianSettings {
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
            replay: self.replay,
            seed: self.seed,
        }
    }
}

/// `landscape hessian ...`
pub type HessianCommand = ReportCommand<HessianSettings>;

/// `kind = "hessian"`: the Hessian report of each selected run (`hessian-<hash>/`).
pub const KIND: Kind = Kind {
    name: "hessian",
    parse: |block, _spec| read::<HessianSettings>(block, |_, _| Ok(())),
};

impl PerRunReport for HessianSettings {
    type Report = HessianReport;
    const ARTIFACT: Artifact = Artifact::Hessian;
    const WHAT: &'static str = "Hessian";

    fn data(&self) -> (usize, usize) {
        (self.subset, self.micro_batch)
    }

    fn report(&self, workdir: &Path, input: &CurvatureInput<'_>) -> Result<Outcome<HessianReport>> {
        job::hessian(workdir, input, &self.options())
    }

    /// The lines `landscape hessian` prints.
    fn summary(outcome: &Outcome<HessianReport>) -> String {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        command: HessianCommand,
    }

    #[test]
    fn the_block_and_the_command_share_every_default() {
        let block: HessianSettings = toml::from_str("").unwrap();
        let command = Cli::parse_from(["h", "--run", "r"]).command;
        assert_eq!(block, command.settings);
        assert_eq!(block.options(), HessianOptions::default());
        assert_eq!(block.subset, CURVATURE_SUBSET);
        let h: HessianSettings = toml::from_str("density = true\ntop_k = 3").unwrap();
        assert_eq!(h.options().top_k, 3);
        assert_eq!(h.options().density, Some(DensityOptions::default()));
        assert!(toml::from_str::<HessianSettings>("topk = 3").is_err());
        let plain = Cli::parse_from(["h", "--run", "r", "--no-replay"]).command;
        assert!(!plain.settings.options().replay);
    }
}
