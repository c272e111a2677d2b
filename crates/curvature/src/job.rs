//! `landscape hessian` and `landscape sharpness` as library calls: each computes its report at
//! a trained point as a job of the job engine ([`landscape_job`]): under
//! `<workdir>/<kind>-<hash>/`, keyed by a content hash of everything that determines it (the
//! checkpoint's bytes, data subset, settings, engine version), locked while it computes, and
//! found there next time instead of computed again.

use crate::hvp::{Batch, CurvatureScope, GRADIENT_PASSES, HvpOptions, LossHessian, LossModel};
use crate::lanczos::{DensityOptions, ExtremeEigen, extreme_eigenvalues, spectral_density};
use crate::power::{PowerResult, power_iteration};
use crate::sharpness::{
    self, AverageOptions, KeskarOptions, PacBayesOptions, Scaling, WorstCaseOptions,
};
use crate::trace::{TraceEstimate, hutch_plus_plus, hutchinson};
use anyhow::{Context, Result, bail};
use landscape_core::atomic::write_atomic_with;
use landscape_core::progress::Progress;
use landscape_job::job::{Job, JobMeta};
use landscape_job::shard::Shard;
use landscape_job::toml_file::{read_toml, write_toml};
use landscape_models::ParamSet;
use landscape_models::graph::Layer;
use landscape_surface::surface::PointRef;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Bumped whenever what the curvature commands compute changes (cached reports are then
/// recomputed).
pub const CURVATURE_VERSION: u32 = 1;

/// A trained point and the data its loss is measured on.
pub struct CurvatureInput<'a> {
    /// The network's layer graph.
    pub layers: &'a [Layer],
    /// The parameters (every tensor, BatchNorm statistics included).
    pub params: ParamSet,
    /// Which run and epoch they are.
    pub point: PointRef,
    /// Training examples used (the run's fixed subset of this size; 0: its whole training
    /// set): part of the identity of every result.
    pub train_examples: usize,
    /// Those examples on the device.
    pub batches: &'a [Batch],
    /// Examples per backward pass (memory only: results do not depend on it, up to rounding).
    pub micro_batch: usize,
}

/// Settings of `landscape hessian`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HessianOptions {
    /// Largest eigenvalues reported.
    pub top_k: usize,
    /// Lanczos steps for the extreme eigenvalues (lambda_min comes from the same run).
    pub lanczos_steps: usize,
    /// Hutchinson probes for the trace (0: skip).
    pub trace_probes: usize,
    /// Hutch++ products for the trace (0: skip).
    pub hutchpp_products: usize,
    /// Power iterations for lambda_max as a cross-check (0: skip).
    pub power_iterations: usize,
    /// Spectral density by stochastic Lanczos quadrature (`None`: skip).
    pub density: Option<DensityOptions>,
    /// Which tensors.
    pub scope: CurvatureScope,
    /// Central-difference step of the HVPs (parameter units, along unit vectors).
    pub eps: f64,
    /// Replay ReLU masks and max-pool choices (exact HVPs; off only for comparisons).
    pub replay: bool,
    /// Seed of every random vector.
    pub seed: u64,
}

impl Default for HessianOptions {
    fn default() -> Self {
        Self {
            top_k: 5,
            lanczos_steps: 30,
            trace_probes: 20,
            hutchpp_products: 0,
            power_iterations: 0,
            density: None,
            scope: CurvatureScope::Weights,
            eps: HvpOptions::default().eps,
            replay: true,
            seed: 0,
        }
    }
}

/// What determines a Hessian report: `meta.toml`, and the source of its id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HessianMeta {
    /// [`CURVATURE_VERSION`].
    pub engine: u32,
    /// The point.
    pub base: PointRef,
    /// Training examples (0: the run's training set).
    pub train_examples: usize,
    /// The settings.
    pub options: HessianOptions,
}

impl JobMeta for HessianMeta {
    fn kind(&self) -> &'static str {
        "hessian"
    }
}

/// `hessian.toml`: the curvature of the mean training loss at a point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HessianReport {
    /// What was computed.
    pub meta: HessianMeta,
    /// Parameters in the scope (the Hessian's order).
    pub parameters: usize,
    /// Examples the loss averages over.
    pub examples: usize,
    /// Mean training loss at the point (nats).
    pub loss: f64,
    /// Training error at the point (fraction).
    pub error: f64,
    /// Largest eigenvalues (descending), smallest eigenvalue, residuals (Lanczos).
    pub eigen: ExtremeEigen,
    /// `abs(lambda_min / lambda_max)` (figure 7's quantity).
    pub ratio: f64,
    /// Power iteration's lambda_max, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<PowerResult>,
    /// Hutchinson trace, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hutchinson: Option<TraceEstimate>,
    /// Hutch++ trace, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hutchpp: Option<TraceEstimate>,
    /// The trace implied by the spectral density's quadratures, when computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density_trace: Option<f64>,
    /// The density's Gaussian broadening, when computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density_sigma: Option<f64>,
    /// Hessian-vector products used in all.
    pub products: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Where a report is.
#[derive(Clone, Debug)]
pub struct Outcome<R> {
    /// Its directory.
    pub dir: PathBuf,
    /// The report.
    pub report: R,
    /// Whether it was found rather than computed.
    pub cached: bool,
}

/// Computes (or finds) the Hessian report of `input` under `workdir`: `hessian-<hash>/` with
/// `meta.toml`, `hessian.toml` and, with a density, `spectrum.csv` (`lambda,density`) and
/// `quadrature.csv` (`probe,node,weight`).
pub fn hessian(
    workdir: &Path,
    input: &CurvatureInput<'_>,
    options: &HessianOptions,
) -> Result<Outcome<HessianReport>> {
    let meta = HessianMeta {
        engine: CURVATURE_VERSION,
        base: input.point.clone(),
        train_examples: input.train_examples,
        options: options.clone(),
    };
    if let Some(found) = Job::finished(workdir, &meta, "hessian.toml")? {
        let report: HessianReport = read_toml(&found)?;
        if report.meta != meta {
            bail!(
                "{}: describes another computation than its id says (edited by hand?); move it away",
                found.display()
            );
        }
        return Ok(Outcome {
            dir: Job::dir_in(workdir, &meta),
            report,
            cached: true,
        });
    }
    if options.top_k == 0 || options.lanczos_steps == 0 {
        bail!("hessian: top_k and lanczos_steps must be positive");
    }
    let label = format!("hessian {}", input.point.run);
    let job = Job::open(workdir, meta.clone(), Shard::WHOLE, &label)?;
    let (dir, report_path) = (job.dir().to_path_buf(), job.path("hessian.toml"));
    let started = Instant::now();
    let progress = Arc::new(Progress::new(label, hessian_passes(options), 0));
    let model = LossModel::new(
        input.layers,
        input.params.clone(),
        options.scope,
        input.batches,
        input.micro_batch.max(1),
    )?
    .reporting_to(progress.clone(), 0);
    let at = model.evaluate(&model.point());
    let op = LossHessian::new(
        &model,
        HvpOptions {
            eps: options.eps,
            replay: options.replay,
            ..HvpOptions::default()
        },
    )?;
    let eigen = extreme_eigenvalues(&op, options.top_k, options.lanczos_steps, options.seed)?;
    let power = (options.power_iterations > 0)
        .then(|| power_iteration(&op, 0.0, options.power_iterations, 1e-4, options.seed))
        .transpose()?;
    let hutch = (options.trace_probes > 0)
        .then(|| hutchinson(&op, options.trace_probes, options.seed.wrapping_add(1)))
        .transpose()?;
    let hpp = (options.hutchpp_products > 0)
        .then(|| hutch_plus_plus(&op, options.hutchpp_products, options.seed.wrapping_add(2)))
        .transpose()?;
    let density = options
        .density
        .as_ref()
        .map(|d| spectral_density(&op, d, options.seed.wrapping_add(3)))
        .transpose()?;
    if let Some(d) = &density {
        write_atomic_with(&dir.join("spectrum.csv"), |w| {
            writeln!(w, "lambda,density")?;
            for (l, p) in d.grid.iter().zip(&d.density) {
                writeln!(w, "{l},{p}")?;
            }
            Ok(())
        })?;
        write_atomic_with(&dir.join("quadrature.csv"), |w| {
            writeln!(w, "probe,node,weight")?;
            for (p, (nodes, weights)) in d.nodes.iter().zip(&d.weights).enumerate() {
                for (n, wt) in nodes.iter().zip(weights) {
                    writeln!(w, "{p},{n},{wt}")?;
                }
            }
            Ok(())
        })?;
    }
    let report = HessianReport {
        meta,
        parameters: model.shape().numel(),
        examples: model.examples(),
        loss: at.loss,
        error: at.error,
        ratio: eigen.ratio(),
        eigen,
        power,
        hutchinson: hutch,
        hutchpp: hpp,
        density_trace: density.as_ref().map(|d| d.trace),
        density_sigma: density.as_ref().map(|d| d.sigma),
        products: op.products(),
        seconds: started.elapsed().as_secs_f64(),
    };
    write_toml(&report_path, &report)?;
    progress.finish(format!("{} Hessian-vector products", report.products));
    Ok(Outcome {
        dir,
        report,
        cached: false,
    })
}

/// Estimated passes over the data ([`LossModel::passes`]) of a Hessian report, for its
/// progress bar: a Hessian-vector product is two replayed gradients.
fn hessian_passes(options: &HessianOptions) -> u64 {
    let density = options.density.as_ref().map_or(0, |d| d.probes * d.steps);
    let products = options.lanczos_steps
        + options.power_iterations
        + options.trace_probes
        + options.hutchpp_products
        + density;
    2 + 2 * GRADIENT_PASSES * products as u64
}

/// Settings of `landscape sharpness`: which measures, with which parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharpnessOptions {
    /// Which tensors are perturbed.
    pub scope: CurvatureScope,
    /// Keskar boxes (relative sizes); each gives a full-space row and, with a subspace, a
    /// subspace row. Empty: skip.
    pub keskar_eps: Vec<f64>,
    /// Dimension of Keskar's random subspace (0: full space only).
    pub keskar_subspace: usize,
    /// Gradient evaluations of Keskar's ascent.
    pub keskar_iterations: usize,
    /// Average-case noise scales (each gives an adaptive and a plain row). Empty: skip.
    pub average_rho: Vec<f64>,
    /// Monte Carlo samples of average-case sharpness.
    pub average_samples: usize,
    /// Adaptive worst-case radii. Empty: skip.
    pub worst_rho: Vec<f64>,
    /// Gradient evaluations of the worst-case ascent.
    pub worst_steps: usize,
    /// PAC-Bayes flatness, plain and magnitude-aware.
    pub pac_bayes: bool,
    /// Monte Carlo samples per sigma of PAC-Bayes flatness.
    pub pac_bayes_samples: usize,
    /// Bisection steps of PAC-Bayes flatness.
    pub pac_bayes_depth: usize,
    /// Lanczos steps for a lambda_max row beside them (0: skip).
    pub lambda_max_steps: usize,
    /// Central-difference step of the HVPs for lambda_max.
    pub eps: f64,
    /// Seed of every random draw.
    pub seed: u64,
}

impl Default for SharpnessOptions {
    fn default() -> Self {
        Self {
            scope: CurvatureScope::Weights,
            keskar_eps: vec![1e-3, 5e-4],
            keskar_subspace: 100,
            keskar_iterations: KeskarOptions::default().iterations,
            average_rho: vec![AverageOptions::default().rho],
            average_samples: AverageOptions::default().samples,
            worst_rho: vec![WorstCaseOptions::default().rho],
            worst_steps: WorstCaseOptions::default().steps,
            pac_bayes: true,
            pac_bayes_samples: PacBayesOptions::default().samples,
            pac_bayes_depth: PacBayesOptions::default().depth,
            lambda_max_steps: 20,
            eps: HvpOptions::default().eps,
            seed: 0,
        }
    }
}

/// What determines a sharpness table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharpnessMeta {
    /// [`CURVATURE_VERSION`].
    pub engine: u32,
    /// The point.
    pub base: PointRef,
    /// Training examples (0: the run's training set).
    pub train_examples: usize,
    /// The settings.
    pub options: SharpnessOptions,
}

impl JobMeta for SharpnessMeta {
    fn kind(&self) -> &'static str {
        "sharpness"
    }
}

/// One row of `sharpness.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharpnessRow {
    /// `keskar`, `keskar_subspace`, `average_adaptive`, `average_plain`, `worst_adaptive`,
    /// `pacbayes_flatness`, `pacbayes_mag_flatness`, `lambda_max`.
    pub measure: String,
    /// Its main parameter (eps, rho, or empty).
    pub setting: String,
    /// The value.
    pub value: f64,
    /// Standard error where sampled (else empty).
    pub stderr: Option<f64>,
    /// Units.
    pub units: String,
    /// Whether the measure is invariant to rescalings that keep the function (Dinh et al.).
    pub scale_invariant: bool,
    /// Loss or error evaluations (Hessian-vector products for lambda_max).
    pub evaluations: usize,
}

/// The sharpness table of a point.
#[derive(Clone, Debug, PartialEq)]
pub struct SharpnessReport {
    /// Loss at the point.
    pub loss: f64,
    /// Error at the point.
    pub error: f64,
    /// The rows.
    pub rows: Vec<SharpnessRow>,
}

const SHARPNESS_HEADER: &str = "measure,setting,value,stderr,units,scale_invariant,evaluations";

/// Computes (or finds) `sharpness-<hash>/sharpness.csv` for `input`.
pub fn sharpness(
    workdir: &Path,
    input: &CurvatureInput<'_>,
    options: &SharpnessOptions,
) -> Result<Outcome<SharpnessReport>> {
    let meta = SharpnessMeta {
        engine: CURVATURE_VERSION,
        base: input.point.clone(),
        train_examples: input.train_examples,
        options: options.clone(),
    };
    if let Some(csv) = Job::finished(workdir, &meta, "sharpness.csv")? {
        return Ok(Outcome {
            dir: Job::dir_in(workdir, &meta),
            report: read_sharpness(&csv)?,
            cached: true,
        });
    }
    let label = format!("sharpness {}", input.point.run);
    let job = Job::open(workdir, meta.clone(), Shard::WHOLE, &label)?;
    let (dir, csv) = (job.dir().to_path_buf(), job.path("sharpness.csv"));
    let steps = sharpness_steps(options);
    let journal = dir.join("partial.toml");
    let mut done: SharpnessJournal = if journal.exists() {
        read_toml(&journal)?
    } else {
        SharpnessJournal::default()
    };
    let total: u64 = 1 + steps.iter().map(|s| s.passes).sum::<u64>();
    let finished: u64 = steps.iter().take(done.steps).map(|s| s.passes).sum();
    let progress = Arc::new(Progress::new(label, total, finished));
    let model = LossModel::new(
        input.layers,
        input.params.clone(),
        options.scope,
        input.batches,
        input.micro_batch.max(1),
    )?
    .reporting_to(progress.clone(), finished);
    let at = model.evaluate(&model.point());
    for step in steps.iter().skip(done.steps) {
        done.rows.extend((step.run)(&model)?);
        done.steps += 1;
        write_toml(&journal, &done)?;
    }
    let rows = done.rows;
    progress.finish(format!("{} measures", rows.len()));
    write_toml(
        &dir.join("point.toml"),
        &PointValues {
            loss: at.loss,
            error: at.error,
        },
    )?;
    write_atomic_with(&csv, |w| {
        writeln!(w, "{SHARPNESS_HEADER}")?;
        for r in &rows {
            writeln!(
                w,
                "{},{},{},{},{},{},{}",
                r.measure,
                r.setting,
                r.value,
                r.stderr.map(|s| s.to_string()).unwrap_or_default(),
                r.units,
                r.scale_invariant,
                r.evaluations
            )?;
        }
        Ok(())
    })?;
    std::fs::remove_file(&journal).with_context(|| format!("removing {}", journal.display()))?;
    Ok(Outcome {
        dir,
        report: SharpnessReport {
            loss: at.loss,
            error: at.error,
            rows,
        },
        cached: false,
    })
}

/// The sharpness rows finished so far (`partial.toml`): a killed computation resumes after
/// the last finished measure. Every measure draws from its own seeded stream, so a resumed
/// table equals an uninterrupted one.
#[derive(Default, Serialize, Deserialize)]
struct SharpnessJournal {
    /// Measures done, in the order of [`sharpness_steps`].
    steps: usize,
    /// Their rows.
    rows: Vec<SharpnessRow>,
}

/// One measure of a sharpness table (one or two rows) and its estimated cost.
struct SharpnessStep<'o> {
    /// Estimated passes over the data ([`LossModel::passes`]), for the progress bar.
    passes: u64,
    /// Computes the rows.
    run: MeasureFn<'o>,
}

/// Computes one measure's rows of a sharpness table.
type MeasureFn<'o> = Box<dyn Fn(&LossModel) -> Result<Vec<SharpnessRow>> + 'o>;

/// A row of `sharpness.csv`.
fn sharpness_row(
    measure: &str,
    setting: String,
    value: f64,
    stderr: Option<f64>,
    units: &str,
    scale_invariant: bool,
    evaluations: usize,
) -> SharpnessRow {
    SharpnessRow {
        measure: measure.into(),
        setting,
        value,
        stderr,
        units: units.into(),
        scale_invariant,
        evaluations,
    }
}

/// The measures `options` asks for, in table order.
fn sharpness_steps(options: &SharpnessOptions) -> Vec<SharpnessStep<'_>> {
    let mut steps = Vec::new();
    let gradients = |n: usize| (n as u64 + 1) * GRADIENT_PASSES + 1;
    for &eps in &options.keskar_eps {
        let k = KeskarOptions {
            eps,
            subspace: None,
            iterations: options.keskar_iterations,
            seed: options.seed,
            ..KeskarOptions::default()
        };
        steps.push(SharpnessStep {
            passes: gradients(options.keskar_iterations),
            run: Box::new(move |model| {
                let r = sharpness::keskar(model, &k)?;
                Ok(vec![sharpness_row(
                    "keskar",
                    format!("eps={eps}"),
                    r.value,
                    None,
                    "percent",
                    false,
                    r.evaluations,
                )])
            }),
        });
        if options.keskar_subspace > 0 {
            steps.push(SharpnessStep {
                passes: gradients(options.keskar_iterations),
                run: Box::new(move |model| {
                    let p = options.keskar_subspace.min(model.shape().numel());
                    let r = sharpness::keskar(
                        model,
                        &KeskarOptions {
                            subspace: Some(p),
                            ..k
                        },
                    )?;
                    Ok(vec![sharpness_row(
                        "keskar_subspace",
                        format!("eps={eps};p={p}"),
                        r.value,
                        None,
                        "percent",
                        false,
                        r.evaluations,
                    )])
                }),
            });
        }
    }
    for &rho in &options.average_rho {
        steps.push(SharpnessStep {
            passes: 2 * (options.average_samples as u64 + 1),
            run: Box::new(move |model| {
                [
                    (Scaling::Adaptive, "average_adaptive", true),
                    (Scaling::Plain, "average_plain", false),
                ]
                .into_iter()
                .map(|(scaling, name, invariant)| {
                    let r = sharpness::average_case(
                        model,
                        &AverageOptions {
                            rho,
                            scaling,
                            samples: options.average_samples,
                            seed: options.seed,
                        },
                    )?;
                    Ok(sharpness_row(
                        name,
                        format!("rho={rho}"),
                        r.value,
                        Some(r.stderr),
                        "nats",
                        invariant,
                        r.evaluations,
                    ))
                })
                .collect()
            }),
        });
    }
    for &rho in &options.worst_rho {
        steps.push(SharpnessStep {
            passes: gradients(options.worst_steps),
            run: Box::new(move |model| {
                let r = sharpness::worst_case_adaptive(
                    model,
                    &WorstCaseOptions {
                        rho,
                        steps: options.worst_steps,
                        ..WorstCaseOptions::default()
                    },
                )?;
                Ok(vec![sharpness_row(
                    "worst_adaptive",
                    format!("rho={rho}"),
                    r.value,
                    None,
                    "nats",
                    true,
                    r.evaluations,
                )])
            }),
        });
    }
    if options.pac_bayes {
        let base = PacBayesOptions {
            samples: options.pac_bayes_samples,
            depth: options.pac_bayes_depth,
            seed: options.seed,
            ..PacBayesOptions::default()
        };
        for (name, units, magnitude_eps) in [
            ("pacbayes_flatness", "1/param^2", None),
            ("pacbayes_mag_flatness", "1/relative^2", Some(1e-3)),
        ] {
            steps.push(SharpnessStep {
                passes: (options.pac_bayes_samples * options.pac_bayes_depth) as u64 + 1,
                run: Box::new(move |model| {
                    let r = sharpness::pac_bayes(
                        model,
                        &PacBayesOptions {
                            magnitude_eps,
                            ..base
                        },
                    )?;
                    Ok(vec![sharpness_row(
                        name,
                        format!("sigma={}", r.sigma),
                        r.flatness,
                        None,
                        units,
                        false,
                        r.evaluations,
                    )])
                }),
            });
        }
    }
    if options.lambda_max_steps > 0 {
        steps.push(SharpnessStep {
            passes: 1 + 2 * GRADIENT_PASSES * options.lambda_max_steps as u64,
            run: Box::new(move |model| {
                let op = LossHessian::new(
                    model,
                    HvpOptions {
                        eps: options.eps,
                        ..HvpOptions::default()
                    },
                )?;
                let e = extreme_eigenvalues(&op, 1, options.lambda_max_steps, options.seed)?;
                Ok(vec![sharpness_row(
                    "lambda_max",
                    String::new(),
                    e.top[0],
                    Some(e.top_residuals[0]),
                    "nats/param^2",
                    false,
                    e.products,
                )])
            }),
        });
    }
    steps
}

#[derive(Serialize, Deserialize)]
struct PointValues {
    loss: f64,
    error: f64,
}

/// Reads a `sharpness.csv` (and the `point.toml` beside it).
pub fn read_sharpness(csv: &Path) -> Result<SharpnessReport> {
    let text =
        std::fs::read_to_string(csv).with_context(|| format!("reading {}", csv.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some(SHARPNESS_HEADER) {
        bail!("{}: not a sharpness table", csv.display());
    }
    let rows = lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 7 {
                bail!("{}: malformed line `{line}`", csv.display());
            }
            Ok(SharpnessRow {
                measure: f[0].into(),
                setting: f[1].into(),
                value: f[2].parse()?,
                stderr: if f[3].is_empty() {
                    None
                } else {
                    Some(f[3].parse()?)
                },
                units: f[4].into(),
                scale_invariant: f[5].parse()?,
                evaluations: f[6].parse()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let point: PointValues = read_toml(&csv.with_file_name("point.toml"))?;
    Ok(SharpnessReport {
        loss: point.loss,
        error: point.error,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_keep_nan_through_toml() {
        let t = TraceEstimate {
            trace: 1.5,
            stderr: f64::NAN,
            products: 3,
        };
        let text = toml::to_string(&t).unwrap();
        let back: TraceEstimate = toml::from_str(&text).unwrap();
        assert!(back.stderr.is_nan() && back.trace == 1.5, "{text}");
    }
}
