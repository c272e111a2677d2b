//! Repeatability (the paper's appendix, paper.md claim 9): 1-D filter-normalized curves of one
//! minimum along several random directions (the `1d` analysis with `repeats`) nearly coincide,
//! so a single random direction is a fair picture. Checked by the spread of the curves' basin
//! width and curvature across directions.

use crate::Product;
use crate::collect::Collected;
use crate::measures::{Spread, WIDTH_RISE, basin_width, curvature};
use crate::panels::{LOSS_AXIS_MAX, run_title};
use crate::report::{Check, Table, Verdict, num};
use anyhow::Result;
use landscape_figures::{Figure, Labels, LinePanel, Panel, Series};
use landscape_surface::direction::DirectionRecipe;
use std::path::Path;

/// Largest relative spread, `(max - min) / mean` across directions, of the basin width for
/// curves that "nearly coincide".
const MAX_WIDTH_SPREAD: f64 = 0.2;

/// Largest relative spread of the curvature at the minimum (a second derivative, noisier than
/// a width).
const MAX_CURVATURE_SPREAD: f64 = 0.5;

impl Spread {
    /// Claim 9's check that `directions` directions give nearly the same `what` (relative
    /// spread at most `bound`); the values, called `label`, written with `digits` decimals.
    fn check(
        &self,
        directions: usize,
        what: &str,
        label: &str,
        digits: usize,
        bound: f64,
    ) -> Check {
        Check {
            claim: "claim 9".into(),
            check: format!(
                "{directions} random directions give nearly the same {what} (spread <= {:.0}%)",
                100.0 * bound
            ),
            measured: format!(
                "{label} {:.digits$}-{:.digits$}, spread {:.1}%",
                self.lo,
                self.hi,
                100.0 * self.relative()
            ),
            paper: "ten random directions give overlapping curves".into(),
            verdict: Verdict::of(self.relative() <= bound),
        }
    }
}

/// Builds the repeatability figure (one panel per run), summary (one row per run),
/// `directions.csv` (one row per curve) and checks.
pub fn build(c: &Collected, out: &Path) -> Result<Product> {
    let mut summary = Table::new(&[
        "model",
        "test_error_pct",
        "directions",
        "width_1d_mean",
        "width_1d_spread_pct",
        "curvature_1d_mean",
        "curvature_1d_spread_pct",
    ]);
    let mut directions = Table::new(&[
        "model",
        "direction",
        "seed",
        "centre_loss",
        "width_1d_at_plus_0.5",
        "curvature_1d",
    ]);
    let mut panels: Vec<Panel> = Vec::new();
    let mut checks = Vec::new();
    for run in &c.runs {
        let surfaces = c.surfaces_of("1d", &run.record.id);
        if surfaces.len() < 2 {
            continue;
        }
        let (mut widths, mut curvatures, mut series) = (Vec::new(), Vec::new(), Vec::new());
        for (k, s) in surfaces.iter().enumerate() {
            let curve = s.curve();
            let width = basin_width(&curve.x, &curve.train_loss, 0.0, WIDTH_RISE);
            let curv = curvature(&curve.x, &curve.train_loss, 0.0);
            let centre = curve
                .x
                .iter()
                .position(|x| *x == 0.0)
                .map_or(f64::NAN, |i| curve.train_loss[i]);
            directions.push(vec![
                run.record.config.train.model.to_string(),
                (k + 1).to_string(),
                match &s.meta.directions[0] {
                    DirectionRecipe::Random { seed, .. } => seed.to_string(),
                    _ => "-".into(),
                },
                num(centre),
                num(width),
                num(curv),
            ]);
            widths.push(width);
            curvatures.push(curv);
            series.push(
                Series::new(format!("direction {}", k + 1), curve.x, curve.train_loss).colour(k),
            );
        }
        panels.push(
            LinePanel::new(
                Labels::new(run_title(run), "x (filter-normalized)", "training loss"),
                series,
            )
            .with_left_max(LOSS_AXIS_MAX)
            .into(),
        );
        let n = widths.len();
        let (w, k) = (Spread::of(&widths), Spread::of(&curvatures));
        summary.push(vec![
            run.record.config.train.model.to_string(),
            num(run.test_error()),
            n.to_string(),
            num(w.mean),
            num(100.0 * w.relative()),
            num(k.mean),
            num(100.0 * k.relative()),
        ]);
        checks.push(w.check(n, "basin width", "width", 3, MAX_WIDTH_SPREAD));
        checks.push(k.check(
            n,
            "curvature at the minimum",
            "curvature",
            2,
            MAX_CURVATURE_SPREAD,
        ));
    }
    let count = panels.len().max(1);
    Figure::grid(1, count, panels)
        .with_title("Claim 9: independent random directions")
        .save(&out.join("repeatability"))?;
    Ok(Product {
        summary,
        checks,
        measures: vec![
            (
                "width_1d_at_plus_0.5",
                "length of the interval around x = 0 where the training loss stays within 0.5 of its value at 0",
            ),
            (
                "curvature_1d",
                "second derivative at x = 0 of a least-squares parabola through the 1-D training-loss points with |x| <= 0.2",
            ),
        ],
        tables: vec![("directions.csv", directions)],
        figures: vec!["repeatability.png".into(), "repeatability.svg".into()],
    })
}

#[cfg(test)]
mod tests {
    use super::Spread;

    #[test]
    fn spread_is_range_over_mean() {
        assert_eq!(Spread::of(&[1.0, 1.0, 1.0]).relative(), 0.0);
        assert!((Spread::of(&[0.9, 1.0, 1.1]).relative() - 0.2).abs() < 1e-12);
        let check = Spread::of(&[0.9, 1.0, 1.3]).check(3, "basin width", "width", 3, 0.2);
        assert_eq!(check.measured, "width 0.900-1.300, spread 37.5%");
        assert_eq!(check.verdict, crate::report::Verdict::Fail);
    }
}
