//! Figure 2: the small-batch and large-batch VGG-9 minima compared without normalization:
//! (a, d) the loss along the line between them, (b, e) weight norms during training, (c, f)
//! histograms of the final convolution and linear weights; top row without weight decay,
//! bottom with. Checks paper.md claims 1 and 2, over every training seed of the spec.

use crate::Product;
use crate::collect::{Collected, Curve, RunResult};
use crate::measures::{Spread, WIDTH_RISE, basin_width};
use crate::panels::curve_panel;
use crate::paper::vgg9_test_error;
use crate::report::{Check, Table, Verdict, num};
use anyhow::Result;
use landscape_figures::{Figure, HistogramPanel, Labels, LinePanel, Panel, Series, ValueSet};
use std::path::Path;

/// What figure 2's checks read of one minimum.
#[derive(Clone)]
struct Minimum {
    /// Test error, percent.
    test_error: f64,
    /// L2 norm of all learnable parameters after each epoch (`metrics.csv`), the last final.
    norms: Vec<f64>,
    /// Root mean square of the final convolution and linear weights: the spread of the
    /// histogram the figure draws.
    weight_rms: f64,
}

impl Minimum {
    /// Reads `run`'s numbers, with `weights` its final convolution and linear weights.
    fn of(run: &RunResult, weights: &[f64]) -> Self {
        Self {
            test_error: run.test_error(),
            norms: run.metrics.iter().map(|m| m.weight_l2).collect(),
            weight_rms: (weights.iter().map(|w| w * w).sum::<f64>() / weights.len().max(1) as f64)
                .sqrt(),
        }
    }

    /// The weight norm after the last epoch (NaN without epochs).
    fn norm(&self) -> f64 {
        self.norms.last().copied().unwrap_or(f64::NAN)
    }

    /// The share of epochs after which the weight norm did not shrink.
    fn growth(&self) -> f64 {
        let grew = self.norms.windows(2).filter(|w| w[1] >= w[0]).count();
        grew as f64 / (self.norms.len() - 1).max(1) as f64
    }
}

/// The widths of the small-batch (alpha 0) and large-batch (alpha 1) basins along the
/// interpolation, each measured on its inner side, towards the other minimum: between the two,
/// every BatchNorm statistic is a mix of two real ones, while beyond them extrapolated running
/// variances go negative, are clamped at zero, and the loss leaps by orders of magnitude within
/// one step (the quick results' cliffs at alpha -0.055 and 1.015). Claim 2 is about the
/// basins' shape, not about where the extrapolation breaks.
fn inner_widths(curve: &Curve) -> [f64; 2] {
    let (x, loss): (Vec<f64>, Vec<f64>) = curve
        .x
        .iter()
        .zip(&curve.train_loss)
        .filter(|(a, _)| (-1e-9..=1.0 + 1e-9).contains(*a))
        .unzip();
    if x.len() < 2 {
        return [f64::NAN; 2];
    }
    [0.0, 1.0].map(|end| basin_width(&x, &loss, end, WIDTH_RISE))
}

/// Where the extrapolation starts clamping BatchNorm variances, beyond each end: the clamped
/// point nearest to alpha 0 below it, and nearest to alpha 1 above it (`None`: none there).
fn clamp_onsets(curve: &Curve) -> [Option<f64>; 2] {
    let clamped = || {
        curve
            .x
            .iter()
            .zip(&curve.clamped)
            .filter(|(_, n)| **n > 0)
            .map(|(a, _)| *a)
    };
    let below = clamped().filter(|a| *a < 0.0).reduce(f64::max);
    let above = clamped().filter(|a| *a > 1.0).reduce(f64::min);
    [below, above]
}

/// One training seed's small- and large-batch minima, and their basins' inner widths along
/// the interpolation between them.
struct SeedPair {
    small: Minimum,
    large: Minimum,
    widths: [f64; 2],
}

/// Claims 1 and 2 at weight decay `wd` from the small- and large-batch minima of each seed;
/// every comparison must separate the seeds' ranges (for one seed, a strict inequality):
/// - the small batch's weights (norm and histogram) end larger without weight decay and smaller
///   with it, and without it the norm grows all run, in every seed;
/// - along the interpolation the small-batch basin looks wider without weight decay and the
///   large-batch one with it, and the small batch generalizes better in both.
fn checks(wd: f64, seeds: &[SeedPair]) -> Vec<Check> {
    let over = |f: &dyn Fn(&SeedPair) -> f64| Spread::of(&seeds.iter().map(f).collect::<Vec<_>>());
    let no_decay = wd == 0.0;
    let larger = if no_decay { "larger" } else { "smaller" };
    let sb_ends_larger =
        |s: &Spread, l: &Spread| Verdict::of(if no_decay { l.below(s) } else { s.below(l) });
    let of_seeds = if seeds.len() > 1 {
        format!(" (mean and range over {} seeds)", seeds.len())
    } else {
        String::new()
    };
    let (norm_s, norm_l) = (over(&|p| p.small.norm()), over(&|p| p.large.norm()));
    let mut checks = vec![Check {
        claim: "claim 1".into(),
        check: format!("WD={wd}: the small-batch weights end {larger} than the large-batch ones"),
        measured: format!(
            "weight norm SB {} / LB {}{of_seeds}",
            norm_s.show(2),
            norm_l.show(2)
        ),
        paper: format!(
            "SB {larger} {}",
            if no_decay {
                "without WD"
            } else {
                "with WD 5e-4"
            }
        ),
        verdict: sb_ends_larger(&norm_s, &norm_l),
    }];
    let (rms_s, rms_l) = (over(&|p| p.small.weight_rms), over(&|p| p.large.weight_rms));
    checks.push(Check {
        claim: "claim 1".into(),
        check: format!(
            "WD={wd}: the small-batch weights' histogram is {} (RMS of the convolution and linear weights)",
            if no_decay { "wider" } else { "narrower" }
        ),
        measured: format!("RMS SB {} / LB {}{of_seeds}", rms_s.show(4), rms_l.show(4)),
        paper: "the histograms show the weight norms' flip".into(),
        verdict: sb_ends_larger(&rms_s, &rms_l),
    });
    if no_decay {
        let (grow_s, grow_l) = (over(&|p| p.small.growth()), over(&|p| p.large.growth()));
        checks.push(Check {
            claim: "claim 1".into(),
            check: "WD=0: the weight norm grows all run (share of epochs where it did not shrink, the least over seeds)"
                .into(),
            measured: format!(
                "SB {:.0}% / LB {:.0}% of epochs",
                100.0 * grow_s.lo,
                100.0 * grow_l.lo
            ),
            paper: "grows throughout training".into(),
            verdict: Verdict::of(grow_s.lo >= 0.9 && grow_l.lo >= 0.9),
        });
    }
    let wider = if no_decay {
        "small-batch"
    } else {
        "large-batch"
    };
    let (width_s, width_l) = (over(&|p| p.widths[0]), over(&|p| p.widths[1]));
    checks.push(Check {
        claim: "claim 2".into(),
        check: format!(
            "WD={wd}: without normalization the {wider} basin looks wider along the interpolation (inner side)"
        ),
        measured: format!(
            "width around SB {} / around LB {} (alpha units){of_seeds}",
            width_s.show(3),
            width_l.show(3)
        ),
        paper: if no_decay {
            "SB looks wider".into()
        } else {
            "LB looks wider".into()
        },
        verdict: Verdict::of(if no_decay {
            width_l.below(&width_s)
        } else {
            width_s.below(&width_l)
        }),
    });
    let (error_s, error_l) = (over(&|p| p.small.test_error), over(&|p| p.large.test_error));
    let paper = vgg9_test_error(wd, true).zip(vgg9_test_error(wd, false));
    checks.push(Check {
        claim: "claim 2".into(),
        check: format!("WD={wd}: small batch generalizes better whatever the plot suggests"),
        measured: format!(
            "test error SB {}% / LB {}%{of_seeds}",
            error_s.show(2),
            error_l.show(2)
        ),
        paper: paper.map_or("SB better".into(), |(s, l)| format!("SB {s}% / LB {l}%")),
        verdict: Verdict::of(error_s.below(&error_l)),
    });
    checks
}

/// Builds figure 2's panels, summary and checks. With several training seeds, each seed's
/// small and large batch are interpolated; the figure draws the first seed's, and the checks
/// read every seed.
pub fn build(c: &Collected, workdir: &Path, out: &Path) -> Result<Product> {
    let mut panels: Vec<Panel> = Vec::new();
    let mut summary = Table::new(&[
        "model",
        "batch_size",
        "weight_decay",
        "seed",
        "test_error_pct",
        "train_loss",
        "weight_l2",
        "weight_l2_epoch0",
        "weight_rms",
        "interp_width_inner",
        "bn_clamped_from",
    ]);
    let mut checks = Vec::new();
    let mut rows = 0;
    for wd in [0.0, 5e-4] {
        // This weight decay's interpolations, one per seed, in seed order.
        let mut ends: Vec<(&RunResult, &RunResult, Curve)> = c
            .surfaces
            .iter()
            .filter(|s| s.analysis == "interp")
            .filter_map(|s| Some((c.run(&s.runs[0])?, c.run(&s.runs[1])?, s.curve())))
            .filter(|(small, _, _)| small.record.config.train.weight_decay == wd)
            .collect();
        ends.sort_by_key(|(small, _, _)| small.seed());
        let mut seeds = Vec::new();
        for (small, large, curve) in &ends {
            let onsets = clamp_onsets(curve);
            let weights = [small.final_weights(workdir)?, large.final_weights(workdir)?];
            let pair = SeedPair {
                small: Minimum::of(small, &weights[0]),
                large: Minimum::of(large, &weights[1]),
                widths: inner_widths(curve),
            };
            for (side, (run, m)) in [(small, &pair.small), (large, &pair.large)]
                .into_iter()
                .enumerate()
            {
                summary.push(vec![
                    run.record.config.train.model.to_string(),
                    run.batch_size().to_string(),
                    wd.to_string(),
                    run.seed().to_string(),
                    num(m.test_error),
                    num(run.train_loss()),
                    num(m.norm()),
                    num(m.norms.first().copied().unwrap_or(f64::NAN)),
                    num(m.weight_rms),
                    num(pair.widths[side]),
                    num(onsets[side].unwrap_or(f64::NAN)),
                ]);
            }
            seeds.push(pair);
            if seeds.len() > 1 {
                continue;
            }
            // The first seed's minima, drawn.
            rows += 1;
            let title = |what: &str| format!("WD={wd}: {what}");
            panels.push(
                curve_panel(
                    &title(&format!(
                        "BS {} (0) to BS {} (1)",
                        small.batch_size(),
                        large.batch_size()
                    )),
                    "alpha (interpolation)",
                    curve,
                )
                .with_markers(
                    onsets.into_iter().flatten().collect(),
                    "BatchNorm variances clamped beyond",
                )
                .into(),
            );
            panels.push(norm_panel(&title("weight L2 norm"), &[small, large]).into());
            let [sb_weights, lb_weights] = weights;
            panels.push(
                HistogramPanel::new(
                    Labels::new(
                        title("convolution and linear weights"),
                        "weight value",
                        "count",
                    ),
                    vec![
                        ValueSet::new(format!("BS {}", small.batch_size()), sb_weights),
                        ValueSet::new(format!("BS {}", large.batch_size()), lb_weights),
                    ],
                    80,
                )
                .into(),
            );
        }
        if !seeds.is_empty() {
            checks.extend(self::checks(wd, &seeds));
        }
    }
    Figure::grid(rows.max(1), 3, panels)
        .with_title("Figure 2: small vs large batch, interpolation (left), weight norm (middle), weights (right)")
        .save(&out.join("figure2"))?;
    Ok(Product {
        summary,
        checks,
        measures: vec![
            (
                "weight_l2",
                "L2 norm of all learnable parameters after the last epoch (metrics.csv)",
            ),
            (
                "weight_rms",
                "root mean square of the final convolution and linear weights (the histogram's spread)",
            ),
            (
                "interp_width_inner",
                "length of the interval of alpha from the run's end of the interpolation (0 for small batch, 1 for large) towards the other where the training loss stays within 0.5 of its value there; measured between the ends, where BatchNorm statistics are mixes of real ones",
            ),
            (
                "bn_clamped_from",
                "the alpha nearest the run's end, beyond it, where extrapolated BatchNorm running variances first go negative and are clamped at zero (NaN: none on the grid)",
            ),
            (
                "weight norm growth",
                "share of epochs in which the weight norm did not decrease",
            ),
        ],
        tables: Vec::new(),
        figures: vec!["figure2.png".into(), "figure2.svg".into()],
    })
}

fn norm_panel(title: &str, runs: &[&RunResult]) -> LinePanel {
    let series = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let epochs = r.metrics.iter().map(|m| m.epoch as f64).collect();
            let norms = r.metrics.iter().map(|m| m.weight_l2).collect();
            Series::new(format!("BS {}", r.batch_size()), epochs, norms).colour(i)
        })
        .collect();
    LinePanel::new(
        Labels::new(title, "epoch", "L2 norm of the weights"),
        series,
    )
}

#[cfg(test)]
mod tests {
    //! Claims 1 and 2's checks fed minima whose answer is known: each fails where the minima
    //! contradict the claim.
    use super::*;
    use landscape_figures::linspace;

    /// An interpolation from -0.5 to 1.5 through quadratic basins of scale `sb` at 0 and `lb`
    /// at 1 (loss 0.5 at `0.71 sb` and `0.71 lb` from them), with the BatchNorm variances
    /// clamped beyond `clamp` of either end, where the loss leaps to 1e20.
    fn interpolation(sb: f64, lb: f64, clamp: f64) -> Curve {
        let x = linspace(-0.5, 1.5, 401);
        let beyond = |a: f64| a < -clamp || a > 1.0 + clamp;
        let train_loss = x
            .iter()
            .map(|&a| {
                let basins = (a / sb).powi(2).min(((a - 1.0) / lb).powi(2)).min(3.5);
                if beyond(a) { 1e20 } else { basins }
            })
            .collect();
        let clamped = x.iter().map(|&a| 7 * u64::from(beyond(a))).collect();
        Curve {
            x,
            train_loss,
            train_acc: Vec::new(),
            test_loss: Vec::new(),
            test_acc: Vec::new(),
            clamped,
        }
    }

    fn minimum(test_error: f64, norm_from: f64, norm_to: f64, weight_rms: f64) -> Minimum {
        Minimum {
            test_error,
            norms: linspace(norm_from, norm_to, 50),
            weight_rms,
        }
    }

    fn verdicts(wd: f64, small: &Minimum, large: &Minimum, curve: &Curve) -> Vec<Verdict> {
        let pair = SeedPair {
            small: small.clone(),
            large: large.clone(),
            widths: inner_widths(curve),
        };
        checks(wd, &[pair]).into_iter().map(|c| c.verdict).collect()
    }

    #[test]
    fn the_papers_minima_pass() {
        let (sb, lb) = (
            minimum(7.37, 10.0, 80.0, 0.08),
            minimum(11.07, 10.0, 40.0, 0.04),
        );
        let sb_wide = interpolation(0.3, 0.05, 0.015);
        assert!(
            verdicts(0.0, &sb, &lb, &sb_wide)
                .iter()
                .all(|v| *v == Verdict::Pass)
        );
        let (sb, lb) = (
            minimum(6.0, 30.0, 20.0, 0.02),
            minimum(10.19, 30.0, 35.0, 0.05),
        );
        let lb_wide = interpolation(0.05, 0.3, 0.2);
        assert!(
            verdicts(5e-4, &sb, &lb, &lb_wide)
                .iter()
                .all(|v| *v == Verdict::Pass)
        );
    }

    #[test]
    fn minima_that_contradict_the_claims_fail() {
        use Verdict::{Fail, Pass};
        let (sb, lb) = (
            minimum(7.37, 10.0, 80.0, 0.08),
            minimum(11.07, 10.0, 40.0, 0.04),
        );
        // Norms, histograms, widths and errors the wrong way round; both norms still grow.
        let lb_wide = interpolation(0.05, 0.3, 0.015);
        assert_eq!(
            verdicts(0.0, &lb, &sb, &lb_wide),
            [Fail, Fail, Pass, Fail, Fail]
        );
        // Weight decay expects the flip: the WD 0 picture fails every check there.
        let sb_wide = interpolation(0.3, 0.05, 0.015);
        assert_eq!(verdicts(5e-4, &sb, &lb, &sb_wide), [Fail, Fail, Fail, Pass]);
        // A norm that shrinks, equal test errors and a large-batch basin as wide fail too.
        let shrinking = minimum(7.37, 80.0, 81.0, 0.08);
        let shrinking = Minimum {
            norms: shrinking.norms.into_iter().rev().collect(),
            ..shrinking
        };
        let tie = minimum(7.37, 10.0, 40.0, 0.04);
        assert_eq!(
            verdicts(0.0, &shrinking, &tie, &interpolation(0.1, 0.12, 0.015)),
            [Pass, Pass, Fail, Fail, Fail]
        );
    }

    #[test]
    fn differences_within_the_seeds_spread_fail() {
        let curve = interpolation(0.3, 0.05, 0.015);
        let seed = |sb_error: f64, lb_error: f64| SeedPair {
            small: minimum(sb_error, 10.0, 80.0, 0.08),
            large: minimum(lb_error, 10.0, 40.0, 0.04),
            widths: inner_widths(&curve),
        };
        let generalizes = |seeds: &[SeedPair]| checks(0.0, seeds)[4].verdict;
        // Every small-batch seed better than every large-batch one.
        let apart = [seed(7.0, 11.0), seed(7.5, 10.5), seed(8.0, 11.5)];
        assert_eq!(generalizes(&apart), Verdict::Pass);
        // Better on average, but one large-batch seed beats one small-batch seed.
        let overlap = [seed(7.0, 11.0), seed(7.5, 10.5), seed(10.8, 11.5)];
        assert_eq!(generalizes(&overlap), Verdict::Fail);
        assert!(checks(0.0, &overlap)[4].measured.contains("over 3 seeds"));
    }

    #[test]
    fn the_extrapolation_cliff_does_not_set_the_widths() {
        let cliff = interpolation(0.3, 0.05, 0.015);
        let no_cliff = interpolation(0.3, 0.05, 0.5);
        let [sb, lb] = inner_widths(&cliff);
        assert_eq!([sb, lb], inner_widths(&no_cliff));
        assert!((sb - 0.3 * 0.5f64.sqrt()).abs() < 0.005, "{sb}");
        assert!((lb - 0.05 * 0.5f64.sqrt()).abs() < 0.005, "{lb}");
        // Measured across both sides, the cliff would cut the large batch's basin short.
        let whole = basin_width(&cliff.x, &cliff.train_loss, 1.0, WIDTH_RISE);
        let uncut = basin_width(&no_cliff.x, &no_cliff.train_loss, 1.0, WIDTH_RISE);
        assert!(whole < uncut - 0.01, "{whole} vs {uncut}");
        let [Some(below), Some(above)] = clamp_onsets(&cliff) else {
            panic!("{:?}", clamp_onsets(&cliff))
        };
        assert!(
            (below + 0.015).abs() <= 0.0051 && (above - 1.015).abs() <= 0.0051,
            "{below} {above}"
        );
        assert_eq!(clamp_onsets(&interpolation(0.3, 0.05, 0.6)), [None, None]);
    }
}
