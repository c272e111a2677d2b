//! Figure 3: filter-normalized 1-D (top) and 2-D (bottom) plots of the four VGG-9 minima
//! (small and large batch, without and with weight decay), and paper.md claim 3. When the `1d`
//! analysis has `repeats`, claim 3's checks read the mean width and curvature over its random
//! directions (one direction's spread can exceed the small/large-batch difference: claim 9),
//! and the figure draws every direction (the first as the paper does, the others in grey).
//! Beside it, `figure3_normalizations` draws the same minima along raw and layer-normalized
//! directions (`1d_raw`, `1d_layer`), where claim 3 says the order by sharpness breaks.

use crate::Product;
use crate::collect::Curve;
use crate::collect::{Collected, RunResult};
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

impl Shape {
    /// `width` (3 decimals) and `curvature` (2) as a check's measured text: the means, with
    /// their range over directions when there are several.
    fn describe(&self) -> (String, String) {
        let show = |s: &Spread, d: usize| {
            if self.directions > 1 {
                format!("{:.d$} ({:.d$}-{:.d$})", s.mean, s.lo, s.hi)
            } else {
                format!("{:.d$}", s.mean)
            }
        };
        (show(&self.width, 3), show(&self.curvature, 2))
    }
}

/// Whether the minimum that generalizes worse has the strictly narrower basin, from the small-
/// and large-batch (test error, width); equal test errors say nothing, so they are `false`.
fn worse_is_narrower((sb_error, sb_width): (f64, f64), (lb_error, lb_width): (f64, f64)) -> bool {
    if lb_error == sb_error {
        return false;
    }
    let (worse, better) = if lb_error > sb_error {
        (lb_width, sb_width)
    } else {
        (sb_width, lb_width)
    };
    worse < better
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

/// One weight decay's small- and large-batch minima: `(wd, (SB test error, SB width), (LB test
/// error, LB width))`.
type SettingPair = (f64, (f64, f64), (f64, f64));

/// Claim 3's other half: along raw or layer-normalized directions (`norm`), the order by
/// sharpness does not follow test error. `pairs` holds, per weight decay, the small- and
/// large-batch (test error, mean width) measured along those directions. Passes when, in at
/// least one of the two settings, the worse minimum is not the strictly narrower one.
fn order_breaks_check(norm: &str, pairs: &[SettingPair]) -> Check {
    let follows: Vec<bool> = pairs
        .iter()
        .map(|&(_, sb, lb)| worse_is_narrower(sb, lb))
        .collect();
    let measured = pairs
        .iter()
        .zip(&follows)
        .map(|(&(wd, (_, sb), (_, lb)), follows)| {
            format!(
                "WD={wd}: width SB {sb:.4} / LB {lb:.4} ({})",
                if *follows {
                    "follows error"
                } else {
                    "does not"
                }
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Check {
        claim: "claim 3".into(),
        check: format!(
            "{norm} directions: the order by 1-D basin width does not follow test error in both WD settings"
        ),
        measured,
        paper: "raw or layer-normalized plots break the order".into(),
        verdict: Verdict::of(pairs.len() == 2 && follows.contains(&false)),
    }
}

/// Claim 3's checks at weight decay `wd` from the small- and large-batch minima (test error in
/// percent, and shape) and the paper's test errors:
/// - the minimum that generalizes worse has the narrower filter-normalized basin: it must be
///   strictly narrower, so equal minima, or equal test errors, fail;
/// - the large batch generalizes worse, with the narrower basin and the higher curvature.
fn claim3_checks(
    wd: f64,
    (sb_error, s): (f64, &Shape),
    (lb_error, l): (f64, &Shape),
    paper: Option<(f64, f64)>,
) -> [Check; 2] {
    let lb_worse = lb_error > sb_error;
    let ((s_width, s_curv), (l_width, l_curv)) = (s.describe(), l.describe());
    let lb_narrower = l.width.mean < s.width.mean;
    let lb_more_curved = l.curvature.mean > s.curvature.mean;
    let sharpness_follows_error =
        worse_is_narrower((sb_error, s.width.mean), (lb_error, l.width.mean));
    [
        Check {
            claim: "claim 3".into(),
            check: format!(
                "WD={wd}: the minimum that generalizes worse has the narrower filter-normalized 1-D basin"
            ),
            measured: format!(
                "test error SB {sb_error:.2}% / LB {lb_error:.2}%; width SB {s_width} / LB {l_width}; curvature SB {s_curv} / LB {l_curv}",
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
                "LB-SB test error {:+.2} pts; width ratio LB/SB {:.2}; curvature ratio LB/SB {:.2}",
                lb_error - sb_error,
                l.width.mean / s.width.mean,
                l.curvature.mean / s.curvature.mean
            ),
            paper: "LB sharper and worse in both WD settings".into(),
            verdict: Verdict::of(lb_worse && lb_narrower && lb_more_curved),
        },
    ]
}

/// Builds figure 3's panels, summary and checks.
pub fn build(c: &Collected, out: &Path) -> Result<Product> {
    let mut runs: Vec<&RunResult> = c
        .runs
        .iter()
        .filter(|r| c.surface("1d", &r.record.id).is_some())
        .collect();
    runs.sort_by(|a, b| {
        let key = |r: &RunResult| (r.record.config.train.weight_decay, r.batch_size());
        key(a).partial_cmp(&key(b)).expect("finite")
    });
    let mut top: Vec<Panel> = Vec::new();
    let mut bottom: Vec<Panel> = Vec::new();
    let mut summary = Table::new(&[
        "model",
        "batch_size",
        "weight_decay",
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
    let mut shapes = Vec::new();
    // Per normalization (NORMALIZATIONS' rows), a panel and a mean width per run.
    let mut by_norm: Vec<(Vec<Panel>, Vec<f64>)> = vec![Default::default(); NORMALIZATIONS.len()];
    for run in &runs {
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
        top.push(curves_panel(&run_title(run), NORMALIZATIONS[FILTER].1, curves).into());
        if let Some(grid) = &two {
            bottom.push(contour_panel(&run_title(run), grid.clone()).into());
        }
        for (((_, x_label), these), (panels, widths_of_runs)) in
            NORMALIZATIONS.iter().zip(&curves_by_norm).zip(&mut by_norm)
        {
            widths_of_runs.push(widths(these).mean);
            panels.push(curves_panel(&run_title(run), x_label, these).into());
        }
        let shape = Shape {
            width: widths(curves),
            curvature: over_directions(curves, |x, loss| curvature(x, loss, 0.0)),
            directions: curves.len(),
            area: two.as_ref().map_or(f64::NAN, |g| basin_area(g, 1.0)),
            nonconvex: two.as_ref().map_or(f64::NAN, nonconvex_share),
        };
        summary.push(vec![
            run.record.config.train.model.to_string(),
            run.batch_size().to_string(),
            run.record.config.train.weight_decay.to_string(),
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
            num(by_norm[LAYER].1[shapes.len()]),
            num(by_norm[RAW].1[shapes.len()]),
        ]);
        shapes.push(shape);
    }
    let cols = runs.len().max(1);
    let rows = if bottom.len() == top.len() { 2 } else { 1 };
    let mut panels = top;
    if rows == 2 {
        panels.extend(bottom);
    }
    Figure::grid(rows, cols, panels)
        .with_title("Figure 3: VGG-9 minima, filter-normalized 1-D (top) and 2-D (bottom)")
        .save(&out.join("figure3"))?;
    let mut figures = vec!["figure3.png".to_string(), "figure3.svg".to_string()];
    if by_norm
        .iter()
        .all(|(_, widths)| widths.iter().all(|w| w.is_finite()))
    {
        let panels = by_norm
            .iter()
            .flat_map(|(panels, _)| panels.clone())
            .collect();
        Figure::grid(NORMALIZATIONS.len(), cols, panels)
            .with_title("Figure 3, beside it: the same minima along raw (top), layer-normalized (middle) and filter-normalized (bottom) random directions")
            .save(&out.join("figure3_normalizations"))?;
        figures.extend([
            "figure3_normalizations.png".into(),
            "figure3_normalizations.svg".into(),
        ]);
    }

    let mut checks = Vec::new();
    // Per normalization, the (test error, mean width) pairs of each weight decay.
    let mut pairs: Vec<Vec<SettingPair>> = vec![Vec::new(); NORMALIZATIONS.len()];
    for wd in [0.0, 5e-4] {
        // Sorted by (weight decay, batch size): the small batch first.
        let pair: Vec<usize> = (0..runs.len())
            .filter(|&i| runs[i].record.config.train.weight_decay == wd)
            .collect();
        let [small, large] = pair[..] else {
            continue;
        };
        let (sb_error, lb_error) = (runs[small].test_error(), runs[large].test_error());
        let paper = vgg9_test_error(wd, true).zip(vgg9_test_error(wd, false));
        checks.extend(claim3_checks(
            wd,
            (sb_error, &shapes[small]),
            (lb_error, &shapes[large]),
            paper,
        ));
        for (pairs, (_, widths)) in pairs.iter_mut().zip(&by_norm) {
            pairs.push((wd, (sb_error, widths[small]), (lb_error, widths[large])));
        }
    }
    for (k, norm) in [(RAW, "raw"), (LAYER, "layer-normalized")] {
        if by_norm[k].1.iter().all(|w| w.is_finite()) {
            checks.push(order_breaks_check(norm, &pairs[k]));
        }
    }
    let tables = match sharpness_table(c, &runs, &mut checks) {
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

/// `sharpness.csv` for the four minima (when the spec measured sharpness), and the check that
/// Keskar's epsilon-sharpness separates small and large batch without weight decay.
fn sharpness_table(c: &Collected, runs: &[&RunResult], checks: &mut Vec<Check>) -> Option<Table> {
    let mut table = Table::new(&[
        "batch_size",
        "weight_decay",
        "measure",
        "setting",
        "value",
        "units",
        "scale_invariant",
    ]);
    let mut keskar = Vec::new();
    for run in runs {
        let report = c.sharpness(&run.record.id)?;
        for row in &report.rows {
            table.push(vec![
                run.batch_size().to_string(),
                run.record.config.train.weight_decay.to_string(),
                row.measure.clone(),
                row.setting.clone(),
                num(row.value),
                row.units.clone(),
                row.scale_invariant.to_string(),
            ]);
        }
        let first = report
            .rows
            .iter()
            .find(|r| r.measure.starts_with("keskar") && !r.setting.contains("subspace"))?;
        keskar.push((
            run.record.config.train.weight_decay,
            run.batch_size(),
            first.setting.clone(),
            first.value,
        ));
    }
    for wd in [0.0, 5e-4] {
        let pair: Vec<_> = keskar.iter().filter(|k| k.0 == wd).collect();
        let [small, large] = pair[..] else { continue };
        let ratio = large.3 / small.3;
        checks.push(Check {
            claim: "Keskar et al.".into(),
            check: format!("WD={wd}: epsilon-sharpness ({}) of the large-batch minimum over the small-batch one", small.2),
            measured: format!("SB {:.3} / LB {:.3}: ratio {ratio:.1}", small.3, large.3),
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

    fn shape(width: f64, curvature: f64) -> Shape {
        Shape {
            width: Spread::of(&[width]),
            curvature: Spread::of(&[curvature]),
            directions: 1,
            area: f64::NAN,
            nonconvex: f64::NAN,
        }
    }

    fn verdicts(sb: (f64, Shape), lb: (f64, Shape)) -> [Verdict; 2] {
        claim3_checks(0.0, (sb.0, &sb.1), (lb.0, &lb.1), None).map(|c| c.verdict)
    }

    #[test]
    fn claim_3_fails_on_minima_that_contradict_it() {
        let (flat, sharp) = (shape(1.0, 2.0), shape(0.5, 8.0));
        // The paper's case: LB worse, narrower and more curved.
        assert_eq!(
            verdicts((7.0, flat), (11.0, sharp)),
            [Verdict::Pass, Verdict::Pass]
        );
        // Equal minima where LB is claimed sharper: both checks fail.
        assert_eq!(
            verdicts((7.0, shape(1.0, 2.0)), (11.0, shape(1.0, 2.0))),
            [Verdict::Fail, Verdict::Fail]
        );
        // Equal minima with LB the better one: nothing separates them (the check once read
        // `lb_narrower == lb_worse` and passed this).
        assert_eq!(
            verdicts((11.0, shape(1.0, 2.0)), (7.0, shape(1.0, 2.0)))[0],
            Verdict::Fail
        );
        // Equal test errors tell nothing about which minimum generalizes worse.
        assert_eq!(
            verdicts((9.0, shape(1.0, 2.0)), (9.0, shape(0.5, 8.0)))[0],
            Verdict::Fail
        );
        // LB worse but wider: sharpness does not follow error, and LB is not sharper.
        assert_eq!(
            verdicts((7.0, shape(0.5, 8.0)), (11.0, shape(1.0, 2.0))),
            [Verdict::Fail, Verdict::Fail]
        );
        // LB better and wider: sharpness follows error (SB is the worse and narrower), but the
        // paper's large-batch claim fails.
        assert_eq!(
            verdicts((11.0, shape(0.5, 8.0)), (7.0, shape(1.0, 2.0))),
            [Verdict::Pass, Verdict::Fail]
        );
    }

    #[test]
    fn the_order_must_break_somewhere_along_raw_directions() {
        // Widths that follow test error in both settings: "the order breaks" fails.
        let follows = [
            (0.0, (7.0, 0.05), (11.0, 0.03)),
            (5e-4, (6.0, 0.02), (10.0, 0.01)),
        ];
        assert_eq!(order_breaks_check("raw", &follows).verdict, Verdict::Fail);
        // With weight decay the large batch looks wider, as the paper's raw plots show.
        let flips = [
            (0.0, (7.0, 0.05), (11.0, 0.03)),
            (5e-4, (6.0, 0.02), (10.0, 0.04)),
        ];
        assert_eq!(order_breaks_check("raw", &flips).verdict, Verdict::Pass);
        // One setting alone cannot show the order breaking between settings.
        assert_eq!(
            order_breaks_check("raw", &flips[1..]).verdict,
            Verdict::Fail
        );
    }
}
