//! Figure 3: filter-normalized 1-D (top) and 2-D (bottom) plots of the four VGG-9 minima
//! (small and large batch, without and with weight decay), and paper.md claim 3. When the `1d`
//! analysis has `repeats`, claim 3's checks read the mean width and curvature over its random
//! directions (one direction's spread can exceed the small/large-batch difference: claim 9),
//! and the figure draws every direction (the first as the paper does, the others in grey).
//! Beside it, `figure3_normalizations` draws the same minima along raw and layer-normalized
//! directions (`1d_raw`, `1d_layer`), where claim 3 says the order by sharpness breaks.

use crate::Product;
use crate::collect::Curve;
use crate::collect::{Collected, RunResult, replicate_groups};
use crate::measures::{Spread, WIDTH_RISE, basin_area, basin_width, curvature, nonconvex_share};
use crate::panels::{contour_panel, curves_panel, run_title};
use crate::paper::{KESKAR_C2_SHARPNESS, vgg9_test_error};
use crate::report::{Check, Table, Verdict, num};
use anyhow::{Context, Result};
use landscape_figures::{Figure, Panel};
use std::path::Path;

/// Landscape numbers of one run.
struct Shape {
    /// 1-D basin width, over the `1d` analysis's directions.
    width: Spread,
    /// 1-D curvature at the minimum, over the same directions.
    curvature: Spread,
    /// How many 1-D directions were measured.
    directions: usize,
    area: f64,
    nonconvex: f64,
}

/// One setting's minima (a weight decay and batch size) over its training seeds: what claim
/// 3's checks compare. Each spread is over seeds; a seed's width and curvature are its means
/// over the 1-D directions.
struct Minimum {
    /// Test error, percent.
    error: Spread,
    /// Filter-normalized 1-D basin width.
    width: Spread,
    /// 1-D curvature at the minimum.
    curvature: Spread,
    /// The 1-D basin width along each normalization's directions ([`NORMALIZATIONS`]' rows).
    widths: [Spread; 3],
}

impl Minimum {
    /// The setting of `runs` (its seeds), with `shapes` and `widths` (per normalization) of
    /// each run.
    fn of(runs: &[&RunResult], shapes: &[Shape], widths: &[[f64; 3]]) -> Self {
        let over =
            |f: &dyn Fn(usize) -> f64| Spread::of(&(0..runs.len()).map(f).collect::<Vec<_>>());
        Self {
            error: over(&|i| runs[i].test_error()),
            width: over(&|i| shapes[i].width.mean),
            curvature: over(&|i| shapes[i].curvature.mean),
            widths: [0, 1, 2].map(|k| over(&|i| widths[i][k])),
        }
    }
}

/// Whether the minimum that generalizes worse has the narrower basin, from the small- and
/// large-batch (test error, width) over seeds: the test errors must separate (every seed of
/// one setting worse than every seed of the other) and so must the widths, the other way;
/// otherwise nothing is shown, and it is `false`.
fn worse_is_narrower(
    (sb_error, sb_width): (&Spread, &Spread),
    (lb_error, lb_width): (&Spread, &Spread),
) -> bool {
    if sb_error.below(lb_error) {
        lb_width.below(sb_width)
    } else if lb_error.below(sb_error) {
        sb_width.below(lb_width)
    } else {
        false
    }
}

/// Whether the minimum that generalizes worse has the wider basin: the order by sharpness
/// broken, with test errors and widths each separated over seeds.
fn worse_is_wider(
    (sb_error, sb_width): (&Spread, &Spread),
    (lb_error, lb_width): (&Spread, &Spread),
) -> bool {
    worse_is_narrower((sb_error, lb_width), (lb_error, sb_width))
}

/// The 1-D analyses figure 3 reads, one per direction normalization, in the rows of
/// `figure3_normalizations`: the raw and layer-normalized ones the paper's appendix sets
/// beside the filter-normalized curves it plots; with the axis label each is drawn with.
pub(crate) const NORMALIZATIONS: [(&str, &str); 3] = [
    ("1d_raw", "x (raw Gaussian)"),
    ("1d_layer", "x (layer-normalized)"),
    ("1d", "x (filter-normalized)"),
];

/// [`NORMALIZATIONS`]' rows, by name.
const RAW: usize = 0;
const LAYER: usize = 1;
const FILTER: usize = 2;

/// `measure(x, train loss)` of each curve, as a spread over the directions.
fn over_directions(curves: &[Curve], measure: impl Fn(&[f64], &[f64]) -> f64) -> Spread {
    let values: Vec<f64> = curves
        .iter()
        .map(|k| measure(&k.x, &k.train_loss))
        .collect();
    Spread::of(&values)
}

/// The 1-D basin width of each curve, as a spread over the directions.
fn widths(curves: &[Curve]) -> Spread {
    over_directions(curves, |x, loss| basin_width(x, loss, 0.0, WIDTH_RISE))
}

/// One weight decay's small- and large-batch minima.
type Setting<'a> = (f64, &'a Minimum, &'a Minimum);

/// Claim 3's other half: along raw or layer-normalized directions (`norm`, a row of
/// [`NORMALIZATIONS`]), the order by sharpness does not follow test error. Passes when, in at
/// least one weight-decay setting, the minimum that generalizes worse has the wider basin along
/// those directions, both separated over seeds; a tie in test error shows no break.
fn order_breaks_check((row, norm): (usize, &str), settings: &[Setting]) -> Check {
    let breaks: Vec<bool> = settings
        .iter()
        .map(|(_, sb, lb)| {
            worse_is_wider((&sb.error, &sb.widths[row]), (&lb.error, &lb.widths[row]))
        })
        .collect();
    let measured = settings
        .iter()
        .zip(&breaks)
        .map(|((wd, sb, lb), breaks)| {
            format!(
                "WD={wd}: test error SB {} / LB {}, width SB {} / LB {} ({})",
                sb.error.show(2),
                lb.error.show(2),
                sb.widths[row].show(4),
                lb.widths[row].show(4),
                if *breaks {
                    "the worse is wider"
                } else {
                    "no break"
                }
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Check {
        claim: "claim 3".into(),
        check: format!(
            "{norm} directions: in one WD setting the minimum that generalizes worse has the wider 1-D basin (separated over seeds)"
        ),
        measured,
        paper: "raw or layer-normalized plots break the order".into(),
        verdict: Verdict::of(breaks.contains(&true)),
    }
}

/// Claim 3's checks at weight decay `wd` from the small- and large-batch minima over their
/// seeds and the paper's test errors; every comparison must separate the seeds' ranges:
/// - the minimum that generalizes worse has the narrower filter-normalized basin (a tie in test
///   error or width fails);
/// - the large batch generalizes worse, with the narrower basin and the higher curvature.
fn claim3_checks(
    wd: f64,
    sb: &Minimum,
    lb: &Minimum,
    seeds: usize,
    paper: Option<(f64, f64)>,
) -> [Check; 2] {
    let lb_worse = sb.error.below(&lb.error);
    let lb_narrower = lb.width.below(&sb.width);
    let lb_more_curved = sb.curvature.below(&lb.curvature);
    let sharpness_follows_error = worse_is_narrower((&sb.error, &sb.width), (&lb.error, &lb.width));
    let over = if seeds > 1 {
        format!(" (mean and range over {seeds} seeds)")
    } else {
        String::new()
    };
    [
        Check {
            claim: "claim 3".into(),
            check: format!(
                "WD={wd}: the minimum that generalizes worse has the narrower filter-normalized 1-D basin"
            ),
            measured: format!(
                "test error SB {}% / LB {}%; width SB {} / LB {}; curvature SB {} / LB {}{over}",
                sb.error.show(2),
                lb.error.show(2),
                sb.width.show(3),
                lb.width.show(3),
                sb.curvature.show(2),
                lb.curvature.show(2),
            ),
            paper: match paper {
                Some((sb, lb)) => format!("test error SB {sb}% / LB {lb}%; LB sharper"),
                None => "LB sharper".into(),
            },
            verdict: Verdict::of(sharpness_follows_error),
        },
        Check {
            claim: "claim 3".into(),
            check: format!(
                "WD={wd}: large batch generalizes worse and is sharper (narrower basin, higher curvature)"
            ),
            measured: format!(
                "LB-SB test error {:+.2} pts; width ratio LB/SB {:.2}; curvature ratio LB/SB {:.2} (means{})",
                lb.error.mean - sb.error.mean,
                lb.width.mean / sb.width.mean,
                lb.curvature.mean / sb.curvature.mean,
                if seeds > 1 {
                    format!(" over {seeds} seeds")
                } else {
                    String::new()
                }
            ),
            paper: "LB sharper and worse in both WD settings".into(),
            verdict: Verdict::of(lb_worse && lb_narrower && lb_more_curved),
        },
    ]
}

/// Builds figure 3's panels, summary and checks. With several training seeds per setting,
/// the figure draws the first seed's minima and the checks read every seed.
pub fn build(c: &Collected, out: &Path) -> Result<Product> {
    let mut runs: Vec<&RunResult> = c
        .runs
        .iter()
        .filter(|r| c.surface("1d", &r.record.id).is_some())
        .collect();
    runs.sort_by(|a, b| {
        let key = |r: &RunResult| (r.record.config.train.weight_decay, r.batch_size(), r.seed());
        key(a).partial_cmp(&key(b)).expect("finite")
    });
    let settings = replicate_groups(&runs);
    let mut top: Vec<Panel> = Vec::new();
    let mut bottom: Vec<Panel> = Vec::new();
    let mut summary = Table::new(&[
        "model",
        "batch_size",
        "weight_decay",
        "seed",
        "test_error_pct",
        "train_loss",
        "weight_l2",
        "width_1d_at_plus_0.5",
        "curvature_1d",
        "basin_area_2d_pct",
        "nonconvex_2d_pct",
        "directions_1d",
        "width_1d_min",
        "width_1d_max",
        "curvature_1d_min",
        "curvature_1d_max",
        "width_1d_layer",
        "width_1d_raw",
    ]);
    // Each setting's minimum over its seeds: (weight decay, seeds, minimum).
    let mut minima: Vec<(f64, usize, Minimum)> = Vec::new();
    // Per normalization (NORMALIZATIONS' rows), a panel per setting.
    let mut norm_panels: Vec<Vec<Panel>> = vec![Vec::new(); NORMALIZATIONS.len()];
    // Whether every run's mean width along every normalization is finite.
    let mut all_finite = true;
    for group in &settings {
        // Per seed, its shape and its mean width per normalization.
        let mut shapes: Vec<Shape> = Vec::new();
        let mut widths_by_norm: Vec<[f64; 3]> = Vec::new();
        for (seed, run) in group.iter().enumerate() {
            let id = &run.record.id;
            let curves_by_norm: Vec<Vec<Curve>> = NORMALIZATIONS
                .iter()
                .map(|(analysis, _)| {
                    c.surfaces_of(analysis, id)
                        .iter()
                        .map(|s| s.curve())
                        .collect()
                })
                .collect();
            let curves = &curves_by_norm[FILTER];
            curves.first().context("1-D surface missing")?;
            let two = c.surface("2d", id).map(|s| s.loss_grid()).transpose()?;
            // The first seed's minima are drawn.
            if seed == 0 {
                top.push(curves_panel(&run_title(run), NORMALIZATIONS[FILTER].1, curves).into());
                if let Some(grid) = &two {
                    bottom.push(contour_panel(&run_title(run), grid.clone()).into());
                }
                for (((_, x_label), these), panels) in NORMALIZATIONS
                    .iter()
                    .zip(&curves_by_norm)
                    .zip(&mut norm_panels)
                {
                    panels.push(curves_panel(&run_title(run), x_label, these).into());
                }
            }
            let shape = Shape {
                width: widths(curves),
                curvature: over_directions(curves, |x, loss| curvature(x, loss, 0.0)),
                directions: curves.len(),
                area: two.as_ref().map_or(f64::NAN, |g| basin_area(g, 1.0)),
                nonconvex: two.as_ref().map_or(f64::NAN, nonconvex_share),
            };
            // NORMALIZATIONS' rows; the filter-normalized width is the shape's, measured once.
            let widths_here = [
                widths(&curves_by_norm[RAW]).mean,
                widths(&curves_by_norm[LAYER]).mean,
                shape.width.mean,
            ];
            all_finite &= widths_here.iter().all(|w| w.is_finite());
            summary.push(vec![
                run.record.config.train.model.to_string(),
                run.batch_size().to_string(),
                run.record.config.train.weight_decay.to_string(),
                run.seed().to_string(),
                num(run.test_error()),
                num(run.train_loss()),
                num(run.weight_norm()),
                num(shape.width.mean),
                num(shape.curvature.mean),
                num(shape.area),
                num(shape.nonconvex),
                shape.directions.to_string(),
                num(shape.width.lo),
                num(shape.width.hi),
                num(shape.curvature.lo),
                num(shape.curvature.hi),
                num(widths_here[LAYER]),
                num(widths_here[RAW]),
            ]);
            shapes.push(shape);
            widths_by_norm.push(widths_here);
        }
        minima.push((
            group[0].record.config.train.weight_decay,
            group.len(),
            Minimum::of(group, &shapes, &widths_by_norm),
        ));
    }
    let cols = settings.len().max(1);
    let rows = if bottom.len() == top.len() { 2 } else { 1 };
    let mut panels = top;
    if rows == 2 {
        panels.extend(bottom);
    }
    Figure::grid(rows, cols, panels)
        .with_title("Figure 3: VGG-9 minima, filter-normalized 1-D (top) and 2-D (bottom)")
        .save(&out.join("figure3"))?;
    let mut figures = vec!["figure3.png".to_string(), "figure3.svg".to_string()];
    if all_finite {
        Figure::grid(NORMALIZATIONS.len(), cols, norm_panels.concat())
            .with_title("Figure 3, beside it: the same minima along raw (top), layer-normalized (middle) and filter-normalized (bottom) random directions")
            .save(&out.join("figure3_normalizations"))?;
        figures.extend([
            "figure3_normalizations.png".into(),
            "figure3_normalizations.svg".into(),
        ]);
    }

    let mut checks = Vec::new();
    let mut pairs: Vec<Setting> = Vec::new();
    for wd in [0.0, 5e-4] {
        // Sorted by (weight decay, batch size): the small batch first.
        let pair: Vec<&(f64, usize, Minimum)> = minima.iter().filter(|m| m.0 == wd).collect();
        let [(_, sb_seeds, small), (_, lb_seeds, large)] = pair[..] else {
            continue;
        };
        let paper = vgg9_test_error(wd, true).zip(vgg9_test_error(wd, false));
        checks.extend(claim3_checks(
            wd,
            small,
            large,
            *sb_seeds.min(lb_seeds),
            paper,
        ));
        pairs.push((wd, small, large));
    }
    for (row, norm) in [(RAW, "raw"), (LAYER, "layer-normalized")] {
        if minima.iter().all(|m| m.2.widths[row].mean.is_finite()) {
            checks.push(order_breaks_check((row, norm), &pairs));
        }
    }
    let tables = match sharpness_table(c, &settings, &mut checks) {
        Some(table) => vec![("sharpness.csv", table)],
        None => Vec::new(),
    };
    Ok(Product {
        summary,
        checks,
        measures: vec![
            (
                "width_1d_at_plus_0.5",
                "length of the interval of x around 0 on the filter-normalized 1-D curve where the training loss stays within 0.5 of its value at x = 0 (linear interpolation between grid points; cut at the ends of the plotted range); the mean over the 1-D directions (directions_1d, range in width_1d_min/max), which claim 3's checks read",
            ),
            (
                "curvature_1d",
                "second derivative at x = 0 of a least-squares parabola through the 1-D training-loss points with |x| <= 0.2; the mean over the 1-D directions (range in curvature_1d_min/max)",
            ),
            (
                "width_1d_layer",
                "width_1d_at_plus_0.5 along layer-normalized directions (analysis 1d_layer), the mean over its directions",
            ),
            (
                "width_1d_raw",
                "width_1d_at_plus_0.5 along raw Gaussian directions (analysis 1d_raw, on its own x range), the mean over its directions",
            ),
            (
                "basin_area_2d_pct",
                "share of the 2-D grid where the training loss is within 1.0 of its value at the centre",
            ),
            (
                "nonconvex_2d_pct",
                "share of interior 2-D grid points whose finite-difference Hessian has lambda_min < -0.1 |lambda_max|",
            ),
        ],
        tables,
        figures,
    })
}

/// `sharpness.csv` for the minima whose sharpness the spec measured (every seed, or some),
/// and the check that Keskar's epsilon-sharpness separates small and large batch without
/// weight decay (a setting's sharpness is its mean over the measured seeds). `None` when no
/// run was measured.
fn sharpness_table(
    c: &Collected,
    settings: &[Vec<&RunResult>],
    checks: &mut Vec<Check>,
) -> Option<Table> {
    let mut table = Table::new(&[
        "batch_size",
        "weight_decay",
        "seed",
        "measure",
        "setting",
        "value",
        "units",
        "scale_invariant",
    ]);
    // Per setting: weight decay, Keskar's setting text and its values over measured seeds.
    let mut keskar: Vec<(f64, String, Vec<f64>)> = Vec::new();
    for group in settings {
        let mut values = Vec::new();
        let mut name = String::new();
        for run in group {
            let Some(report) = c.sharpness(&run.record.id) else {
                continue;
            };
            for row in &report.rows {
                table.push(vec![
                    run.batch_size().to_string(),
                    run.record.config.train.weight_decay.to_string(),
                    run.seed().to_string(),
                    row.measure.clone(),
                    row.setting.clone(),
                    num(row.value),
                    row.units.clone(),
                    row.scale_invariant.to_string(),
                ]);
            }
            if let Some(first) = report
                .rows
                .iter()
                .find(|r| r.measure.starts_with("keskar") && !r.setting.contains("subspace"))
            {
                name.clone_from(&first.setting);
                values.push(first.value);
            }
        }
        if !values.is_empty() {
            keskar.push((group[0].record.config.train.weight_decay, name, values));
        }
    }
    if table.rows.is_empty() {
        return None;
    }
    for wd in [0.0, 5e-4] {
        let pair: Vec<_> = keskar.iter().filter(|k| k.0 == wd).collect();
        let [small, large] = pair[..] else { continue };
        let (s, l) = (Spread::of(&small.2), Spread::of(&large.2));
        let ratio = l.mean / s.mean;
        checks.push(Check {
            claim: "Keskar et al.".into(),
            check: format!("WD={wd}: epsilon-sharpness ({}) of the large-batch minimum over the small-batch one", small.1),
            measured: format!("SB {} / LB {}: ratio {ratio:.1}", s.show(3), l.show(3)),
            paper: if wd == 0.0 { format!("10-100x (Keskar: {} vs {} on CIFAR-10 C2)", KESKAR_C2_SHARPNESS.0, KESKAR_C2_SHARPNESS.1) } else { "not reported with weight decay".into() },
            verdict: Verdict::of(if wd == 0.0 { ratio >= 10.0 } else { ratio > 1.0 }),
        });
    }
    Some(table)
}

#[cfg(test)]
mod tests {
    //! Claim 3's checks fed minima whose answer is known.
    use super::*;

    /// A setting's minimum over seeds: test errors, filter-normalized widths (the raw and
    /// layer-normalized ones too) and curvatures.
    fn seeds(errors: &[f64], widths: &[f64], curvatures: &[f64]) -> Minimum {
        Minimum {
            error: Spread::of(errors),
            width: Spread::of(widths),
            curvature: Spread::of(curvatures),
            widths: [Spread::of(widths); 3],
        }
    }

    /// One seed's minimum.
    fn one(error: f64, width: f64, curvature: f64) -> Minimum {
        seeds(&[error], &[width], &[curvature])
    }

    fn verdicts(sb: Minimum, lb: Minimum) -> [Verdict; 2] {
        claim3_checks(0.0, &sb, &lb, 1, None).map(|c| c.verdict)
    }

    #[test]
    fn claim_3_fails_on_minima_that_contradict_it() {
        // The paper's case: LB worse, narrower and more curved.
        assert_eq!(
            verdicts(one(7.0, 1.0, 2.0), one(11.0, 0.5, 8.0)),
            [Verdict::Pass, Verdict::Pass]
        );
        // Equal minima where LB is claimed sharper: both checks fail.
        assert_eq!(
            verdicts(one(7.0, 1.0, 2.0), one(11.0, 1.0, 2.0)),
            [Verdict::Fail, Verdict::Fail]
        );
        // Equal minima with LB the better one: nothing separates them (the check once read
        // `lb_narrower == lb_worse` and passed this).
        assert_eq!(
            verdicts(one(11.0, 1.0, 2.0), one(7.0, 1.0, 2.0))[0],
            Verdict::Fail
        );
        // Equal test errors tell nothing about which minimum generalizes worse.
        assert_eq!(
            verdicts(one(9.0, 1.0, 2.0), one(9.0, 0.5, 8.0))[0],
            Verdict::Fail
        );
        // LB worse but wider: sharpness does not follow error, and LB is not sharper.
        assert_eq!(
            verdicts(one(7.0, 0.5, 8.0), one(11.0, 1.0, 2.0)),
            [Verdict::Fail, Verdict::Fail]
        );
        // LB better and wider: sharpness follows error (SB is the worse and narrower), but the
        // paper's large-batch claim fails.
        assert_eq!(
            verdicts(one(11.0, 0.5, 8.0), one(7.0, 1.0, 2.0)),
            [Verdict::Pass, Verdict::Fail]
        );
    }

    #[test]
    fn differences_within_the_seeds_spread_fail() {
        let sb = || seeds(&[10.3, 10.6, 10.9], &[1.0, 1.05, 1.1], &[2.0, 2.2, 2.4]);
        // Every LB seed worse, narrower and more curved than every SB seed: both pass.
        let lb = seeds(&[11.0, 11.2, 11.5], &[0.6, 0.65, 0.7], &[7.0, 8.0, 9.0]);
        assert_eq!(verdicts(sb(), lb), [Verdict::Pass, Verdict::Pass]);
        // The same mean test errors, but one LB seed better than one SB seed: which
        // minimum generalizes worse is not shown, and both checks fail.
        let lb = seeds(&[10.8, 11.4, 11.5], &[0.6, 0.65, 0.7], &[7.0, 8.0, 9.0]);
        assert_eq!(verdicts(sb(), lb), [Verdict::Fail, Verdict::Fail]);
        // Test errors separate, but the widths overlap: not narrower.
        let lb = seeds(&[11.0, 11.2, 11.5], &[0.6, 0.65, 1.05], &[7.0, 8.0, 9.0]);
        assert_eq!(verdicts(sb(), lb), [Verdict::Fail, Verdict::Fail]);
    }

    #[test]
    fn the_order_must_break_somewhere_along_raw_directions() {
        let raw = (RAW, "raw");
        let check = |settings: &[(f64, Minimum, Minimum)]| {
            let settings: Vec<Setting> = settings.iter().map(|(wd, s, l)| (*wd, s, l)).collect();
            order_breaks_check(raw, &settings).verdict
        };
        // Widths that follow test error in both settings: "the order breaks" fails.
        let follows = [
            (0.0, one(7.0, 0.05, 1.0), one(11.0, 0.03, 1.0)),
            (5e-4, one(6.0, 0.02, 1.0), one(10.0, 0.01, 1.0)),
        ];
        assert_eq!(check(&follows), Verdict::Fail);
        // With weight decay the large batch looks wider, as the paper's raw plots show.
        let flips = [
            (0.0, one(7.0, 0.05, 1.0), one(11.0, 0.03, 1.0)),
            (5e-4, one(6.0, 0.02, 1.0), one(10.0, 0.04, 1.0)),
        ];
        assert_eq!(check(&flips), Verdict::Pass);
        // A tie in test error shows no break, whichever basin is wider (it once passed).
        let tie = [
            (0.0, one(7.0, 0.05, 1.0), one(11.0, 0.03, 1.0)),
            (
                5e-4,
                seeds(&[9.8, 10.0, 10.2], &[0.02; 3], &[1.0; 3]),
                seeds(&[9.9, 10.1, 10.3], &[0.04; 3], &[1.0; 3]),
            ),
        ];
        assert_eq!(check(&tie), Verdict::Fail);
    }
}
