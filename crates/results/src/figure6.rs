//! Figure 6: 2-D filter-normalized contours of Wide-ResNet-56 with width factor k, with skip
//! connections (top row) and without (bottom row), and paper.md claim 6: width makes minima
//! flatter and the convex region wider. k = 1 is ResNet-56 (figure 5's runs and surfaces).
//! Each check compares the narrowest network of a row with the widest.

use crate::Product;
use crate::collect::Collected;
use crate::figure5::{BASIN_RISE, SkipRun, less_chaotic_check, skip_product, skip_runs};
use crate::measures::{InView, basin_area};
use crate::panels::contour_panel;
use crate::report::{Check, Verdict};
use anyhow::Result;
use landscape_figures::{Figure, Grid2d, Panel};
use std::path::Path;

/// The paper's test errors (percent) by width factor, with and without skips.
fn paper_error(widen: usize, skips: bool) -> Option<f64> {
    let (with, without) = match widen {
        1 => (5.89, 13.31),
        2 => (5.07, 10.26),
        4 => (4.34, 9.69),
        8 => (3.93, 8.70),
        _ => return None,
    };
    Some(if skips { with } else { without })
}

/// What figure 6's checks read of one network of a row.
struct Wide<'a> {
    /// `wrn56-4`, ...
    name: String,
    /// Width factor k.
    widen: usize,
    /// Its `2d` surface's training loss.
    grid: &'a Grid2d,
    /// Its non-convexity where the figure looks.
    nonconvex: &'a InView,
    /// Test error, percent.
    test_error: f64,
}

impl<'a> Wide<'a> {
    /// What the checks read of `run`.
    fn of(run: &'a SkipRun) -> Self {
        Self {
            name: run.run.record.config.train.model.to_string(),
            widen: run.widen,
            grid: &run.grid,
            nonconvex: &run.nonconvex,
            test_error: run.run.test_error(),
        }
    }
}

/// Claim 6's checks on one row (with or without `skips`), the narrowest network against the
/// widest: the wider minimum is flatter (larger basin area), its landscape more convex, and it
/// generalizes better.
fn row_checks(skips: bool, narrow: &Wide, wide: &Wide) -> Vec<Check> {
    let pair = format!("{} vs {}", wide.name, narrow.name);
    let (area_n, area_w) = (
        basin_area(narrow.grid, BASIN_RISE),
        basin_area(wide.grid, BASIN_RISE),
    );
    let (e_n, e_w) = (narrow.test_error, wide.test_error);
    vec![
        Check {
            claim: "claim 6".into(),
            check: format!("{pair}: the wider minimum is flatter (larger basin area)"),
            measured: format!("basin area {area_w:.1}% wide / {area_n:.1}% narrow"),
            paper: "minima flatter as k grows".into(),
            verdict: Verdict::of(area_w > area_n),
        },
        less_chaotic_check(
            "claim 6",
            &format!("{pair}: the wider landscape is more convex (lower non-convex share in view)"),
            (wide.nonconvex, "wide"),
            (narrow.nonconvex, "narrow"),
            "convex region wider as k grows",
        ),
        Check {
            claim: "figure 6".into(),
            check: format!("{pair}: the wider network generalizes better"),
            measured: format!("test error {e_w:.2}% wide / {e_n:.2}% narrow"),
            paper: match (
                paper_error(wide.widen, skips),
                paper_error(narrow.widen, skips),
            ) {
                (Some(w), Some(n)) => format!("{w}% wide / {n}% narrow"),
                _ => "-".into(),
            },
            verdict: Verdict::of(e_w < e_n),
        },
    ]
}

/// Builds figure 6's panels, summary and checks.
pub fn build(c: &Collected, out: &Path) -> Result<Product> {
    let runs = skip_runs(c)?;
    let widths = {
        let mut w: Vec<usize> = runs.iter().map(|r| r.widen).collect();
        w.sort_unstable();
        w.dedup();
        w
    };
    let panels: Vec<Panel> = runs
        .iter()
        .map(|r| contour_panel(&r.title(), r.grid.clone()).into())
        .collect();
    let rows = 1 + (runs.iter().any(|r| r.skips) && runs.iter().any(|r| !r.skips)) as usize;
    Figure::grid(rows, widths.len().max(1), panels)
        .with_title("Figure 6: Wide-ResNet-56, k growing to the right; with skips (top) and without (bottom)")
        .save(&out.join("figure6"))?;
    let mut checks = Vec::new();
    for skips in [true, false] {
        let row: Vec<&SkipRun> = runs.iter().filter(|r| r.skips == skips).collect();
        let (Some(narrow), Some(wide)) = (row.first(), row.last()) else {
            continue;
        };
        if narrow.widen == wide.widen {
            continue;
        }
        checks.extend(row_checks(skips, &Wide::of(narrow), &Wide::of(wide)));
    }
    Ok(skip_product("figure6", &runs, checks))
}

#[cfg(test)]
mod tests {
    //! Claim 6's checks fed landscapes whose answer is known.
    use super::*;
    use crate::figure5::tests::grid;
    use crate::measures::nonconvex_in_view;
    use crate::panels::LOSS_CLIP;

    fn verdicts(narrow: (&Grid2d, f64), wide: (&Grid2d, f64)) -> Vec<Verdict> {
        let views = [narrow.0, wide.0].map(|g| nonconvex_in_view(g, LOSS_CLIP));
        fn network<'a>(
            grid: &'a Grid2d,
            test_error: f64,
            widen: usize,
            nonconvex: &'a InView,
        ) -> Wide<'a> {
            Wide {
                name: format!("wrn56-{widen}"),
                widen,
                grid,
                nonconvex,
                test_error,
            }
        }
        row_checks(
            true,
            &network(narrow.0, narrow.1, 1, &views[0]),
            &network(wide.0, wide.1, 4, &views[1]),
        )
        .into_iter()
        .map(|c| c.verdict)
        .collect()
    }

    #[test]
    fn a_wider_network_that_is_sharper_or_more_chaotic_fails() {
        use Verdict::{Fail, Pass};
        let sharp_rippled =
            grid(|x, y| 8.0 * (x * x + y * y) + 0.5 * (12.0 * x).sin() * (12.0 * y).sin());
        let flat_bowl = grid(|x, y| x * x + y * y);
        assert_eq!(
            verdicts((&sharp_rippled, 6.0), (&flat_bowl, 4.3)),
            [Pass, Pass, Pass]
        );
        // Width that made the minimum sharper, the landscape chaotic and the network worse.
        assert_eq!(
            verdicts((&flat_bowl, 4.3), (&sharp_rippled, 6.0)),
            [Fail, Fail, Fail]
        );
        // Equal landscapes show no effect of width.
        assert_eq!(
            verdicts((&flat_bowl, 6.0), (&flat_bowl, 4.3)),
            [Fail, Fail, Pass]
        );
    }
}
