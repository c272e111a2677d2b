//! `kind = "sharpness"` and `landscape sharpness`: the sharpness of a run's minimum: Keskar's
//! epsilon-sharpness, adaptive average and worst case, PAC-Bayes flatness, lambda_max.

use super::{
    Artifact, CURVATURE_SUBSET, Kind, MICRO_BATCH, PerRunReport, ReportCommand, default_from_args,
    read,
};
use anyhow::Result;
use clap::{ArgAction, Args};
use landscape_curvature::CurvatureScope;
use landscape_curvature::job::{self, CurvatureInput, Outcome, SharpnessOptions, SharpnessReport};
use serde::Deserialize;
use std::path::Path;

/// The settings of a sharpness table: the `[[analysis]]` block `kind = "sharpness"` and the
/// options of `landscape sharpness`.
#[derive(Args, Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SharpnessSettings {
    /// Keskar box sizes (comma separated; an empty list skips them).
    #[arg(long, value_delimiter = ',', default_values_t = SharpnessOptions::default().keskar_eps)]
    pub keskar_eps: Vec<f64>,
    /// Dimension of Keskar's random subspace (0: full space only).
    #[arg(long, default_value_t = SharpnessOptions::default().keskar_subspace)]
    pub keskar_subspace: usize,
    /// Gradient evaluations of Keskar's ascent (the paper ran 10 L-BFGS-B iterations).
    #[arg(long, default_value_t = SharpnessOptions::default().keskar_iterations)]
    pub keskar_iterations: usize,
    /// Average-case noise scales rho (comma separated; adaptive and plain rows each).
    #[arg(long, value_delimiter = ',', default_values_t = SharpnessOptions::default().average_rho)]
    pub average_rho: Vec<f64>,
    /// Monte Carlo samples of average-case sharpness.
    #[arg(long, default_value_t = SharpnessOptions::default().average_samples)]
    pub average_samples: usize,
    /// Adaptive worst-case radii rho (comma separated).
    #[arg(long, value_delimiter = ',', default_values_t = SharpnessOptions::default().worst_rho)]
    pub worst_rho: Vec<f64>,
    /// Gradient evaluations of the worst-case ascent.
    #[arg(long, default_value_t = SharpnessOptions::default().worst_steps)]
    pub worst_steps: usize,
    /// PAC-Bayes flatness, plain and magnitude-aware (`--no-pac-bayes` skips it).
    #[arg(long = "no-pac-bayes", action = ArgAction::SetFalse)]
    pub pac_bayes: bool,
    /// Monte Carlo samples per sigma of PAC-Bayes flatness.
    #[arg(long, default_value_t = SharpnessOptions::default().pac_bayes_samples)]
    pub pac_bayes_samples: usize,
    /// Bisection steps of PAC-Bayes flatness.
    #[arg(long, default_value_t = SharpnessOptions::default().pac_bayes_depth)]
    pub pac_bayes_depth: usize,
    /// Lanczos steps of a lambda_max row for comparison (0: skip).
    #[arg(long, default_value_t = SharpnessOptions::default().lambda_max_steps)]
    pub lambda_max_steps: usize,
    /// Which tensors are perturbed: weights or weights-no-biasbn.
    #[arg(long, value_enum, default_value_t = SharpnessOptions::default().scope)]
    pub scope: CurvatureScope,
    /// Seed of every random draw.
    #[arg(long, default_value_t = SharpnessOptions::default().seed)]
    pub seed: u64,
    /// Training examples (the run's fixed subset; 0: all of them).
    #[arg(long, default_value_t = CURVATURE_SUBSET)]
    pub subset: usize,
    /// Examples per backward pass (memory only).
    #[arg(long, default_value_t = MICRO_BATCH)]
    pub micro_batch: usize,
}

default_from_args!(SharpnessSettings);

impl SharpnessSettings {
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
            seed: self.seed,
            ..SharpnessOptions::default()
        }
    }
}

/// `landscape sharpness ...`
pub type SharpnessCommand = ReportCommand<SharpnessSettings>;

/// `kind = "sharpness"`: the sharpness table of each selected run (`sharpness-<hash>/`).
pub const KIND: Kind = Kind {
    name: "sharpness",
    parse: |block, _spec| read::<SharpnessSettings>(block, |_, _| Ok(())),
};

impl PerRunReport for SharpnessSettings {
    type Report = SharpnessReport;
    const ARTIFACT: Artifact = Artifact::Sharpness;
    const WHAT: &'static str = "sharpness";

    fn data(&self) -> (usize, usize) {
        (self.subset, self.micro_batch)
    }

    fn report(
        &self,
        workdir: &Path,
        input: &CurvatureInput<'_>,
    ) -> Result<Outcome<SharpnessReport>> {
        job::sharpness(workdir, input, &self.options())
    }

    /// The lines `landscape sharpness` prints.
    fn summary(outcome: &Outcome<SharpnessReport>) -> String {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        command: SharpnessCommand,
    }

    #[test]
    fn the_block_and_the_command_share_every_default() {
        let block: SharpnessSettings = toml::from_str("").unwrap();
        let command = Cli::parse_from(["s", "--run", "r"]).command;
        assert_eq!(block, command.settings);
        assert_eq!(block.options(), SharpnessOptions::default());
        let s: SharpnessSettings =
            toml::from_str("keskar_eps = [1e-3]\npac_bayes = false").unwrap();
        let flags = Cli::parse_from(["s", "--run", "r", "--keskar-eps", "1e-3", "--no-pac-bayes"]);
        assert_eq!(s, flags.command.settings);
        assert!(!s.options().pac_bayes);
    }
}
