//! Figure 5: 2-D filter-normalized contours of ResNets of growing depth, with skip
//! connections (top) and without (bottom), and paper.md claim 5.

use crate::collect::{Collected, RunResult};
use crate::measures::{basin_area, local_minima, nonconvex_points, nonconvex_share};
use crate::panels::{LOSS_CLIP, contour_panel};
use crate::report::{Check, Table, Verdict, num};
use crate::{Product, paper_depth_error};
use anyhow::Result;
use landscape_figures::{Figure, Grid2d, Panel};
use landscape_models::Arch;
use std::path::Path;

/// A share of non-convex points below this is "convex-like".
pub(crate) const CONVEX_LIKE: f64 = 10.0;

/// How far above the centre's loss the basin area of the summary reaches.
pub(crate) const BASIN_RISE: f64 = 1.0;

/// The paper's shallow depth: ResNet-20 looks convex with and without skips (claim 5); deeper
/// networks without skips do not.
const SHALLOW_DEPTH: usize = 20;

/// Depth, whether the network has skip connections (DenseNet's dense connections are) and its
/// Wide-ResNet width factor.
fn shape(run: &RunResult) -> Option<(usize, bool, usize)> {
    match run.record.config.train.model {
        Arch::ResNet {
            depth,
            skips,
            widen,
        } => Some((depth, skips, widen)),
        Arch::DenseNet121 => Some((121, true, 1)),
        Arch::Vgg9 => None,
    }
}

/// A ResNet or DenseNet with its 2-D surface and the numbers claim 5 is checked on (figures 1,
/// 4 and 5).
pub(crate) struct SkipRun<'a> {
    /// The run.
    pub run: &'a RunResult,
    /// 20, 56, 110, ...
    pub depth: usize,
    /// With skip connections.
    pub skips: bool,
    /// Width factor k (Wide-ResNet-56-k; 1 otherwise).
    pub widen: usize,
    /// Its `2d` surface's training loss.
    pub grid: Grid2d,
    /// [`nonconvex_share`] of the grid.
    pub nonconvex: f64,
}

impl SkipRun<'_> {
    /// `resnet56 (test error 5.89%)`.
    pub fn title(&self) -> String {
        format!(
            "{} (test error {:.2}%)",
            self.run.record.config.train.model,
            self.run.test_error()
        )
    }
}

/// The ResNets and DenseNets of `c` with a `2d` surface, those with skips first, by depth.
pub(crate) fn skip_runs(c: &Collected) -> Result<Vec<SkipRun<'_>>> {
    let mut runs = Vec::new();
    for run in &c.runs {
        let (Some((depth, skips, widen)), Some(surface)) =
            (shape(run), c.surface("2d", &run.record.id))
        else {
            continue;
        };
        let grid = surface.loss_grid()?;
        runs.push(SkipRun {
            run,
            depth,
            skips,
            widen,
            nonconvex: nonconvex_share(&grid),
            grid,
        });
    }
    runs.sort_by_key(|r| (!r.skips, r.depth, r.widen));
    Ok(runs)
}

/// The distinct depths of `runs`, ascending.
pub(crate) fn depths(runs: &[SkipRun]) -> Vec<usize> {
    let mut d: Vec<usize> = runs.iter().map(|r| r.depth).collect();
    d.sort_unstable();
    d.dedup();
    d
}

/// One row per run: model, depth, skips, test error, training loss and the surface measures.
pub(crate) fn summary(runs: &[SkipRun]) -> Table {
    let mut summary = Table::new(&[
        "model",
        "depth",
        "skips",
        "test_error_pct",
        "train_loss",
        "nonconvex_2d_pct",
        "local_minima_2d",
        "basin_area_2d_pct",
        "nonconvex_points_below_10",
        "interior_points_below_10",
    ]);
    for r in runs {
        let (concave, counted) = nonconvex_points(&r.grid, LOSS_CLIP);
        summary.push(vec![
            r.run.record.config.train.model.to_string(),
            r.depth.to_string(),
            r.skips.to_string(),
            num(r.run.test_error()),
            num(r.run.train_loss()),
            num(r.nonconvex),
            local_minima(&r.grid).to_string(),
            num(basin_area(&r.grid, BASIN_RISE)),
            concave.to_string(),
            counted.to_string(),
        ]);
    }
    summary
}

/// Claim 5 at every depth with both versions: deeper than [`SHALLOW_DEPTH`], the network
/// without skips is the more chaotic; at or below it, both are convex-like; with skips, convex-like at
/// every depth; and skips generalize better (a check of `figure`'s test errors).
pub(crate) fn checks(runs: &[SkipRun], figure: &str) -> Vec<Check> {
    let find = |d: usize, s: bool| runs.iter().find(|r| r.depth == d && r.skips == s);
    let mut checks = Vec::new();
    for d in depths(runs) {
        let (Some(with), Some(without)) = (find(d, true), find(d, false)) else {
            continue;
        };
        if d > SHALLOW_DEPTH {
            checks.push(Check {
                claim: "claim 5".into(),
                check: format!(
                    "depth {d}: without skips the landscape is more chaotic than with them"
                ),
                measured: format!(
                    "non-convex share {:.1}% without / {:.1}% with",
                    without.nonconvex, with.nonconvex
                ),
                paper: "deep -noshort landscapes chaotic, ResNets convex-like".into(),
                verdict: Verdict::of(without.nonconvex > with.nonconvex),
            });
        }
        checks.push(convex_like_check(
            &format!("depth {d}: with skips the landscape"),
            with.nonconvex,
            "convex-like at every depth",
        ));
        if d <= SHALLOW_DEPTH {
            checks.push(Check {
                claim: "claim 5".into(),
                check: format!("depth {d} (shallow): both versions convex-like"),
                measured: format!(
                    "{:.1}% with / {:.1}% without",
                    with.nonconvex, without.nonconvex
                ),
                paper: "R20 and R20-noshort both convex".into(),
                verdict: Verdict::of(
                    with.nonconvex < CONVEX_LIKE && without.nonconvex < CONVEX_LIKE,
                ),
            });
        }
        let (e_with, e_without) = (with.run.test_error(), without.run.test_error());
        checks.push(Check {
            claim: figure.into(),
            check: format!("depth {d}: skips generalize better"),
            measured: format!("test error {e_with:.2}% with / {e_without:.2}% without"),
            paper: paper_depth_error(d)
                .map_or("-".into(), |(w, wo)| format!("{w}% with / {wo}% without")),
            verdict: Verdict::of(e_with <= e_without),
        });
    }
    checks
}

/// Claim 5's check that `landscape` (named as the check reads it) is convex-like: its non-convex
/// share is under [`CONVEX_LIKE`].
pub(crate) fn convex_like_check(landscape: &str, nonconvex: f64, paper: &str) -> Check {
    Check {
        claim: "claim 5".into(),
        check: format!("{landscape} is convex-like (non-convex share < {CONVEX_LIKE}%)"),
        measured: format!("{nonconvex:.1}%"),
        paper: paper.into(),
        verdict: Verdict::of(nonconvex < CONVEX_LIKE),
    }
}

/// The product of a skip-connection figure (1, 4, 5 or 6): the shared summary and measures,
/// `checks`, and `<figure>.png` / `.svg`.
pub(crate) fn skip_product(figure: &str, runs: &[SkipRun], checks: Vec<Check>) -> Product {
    Product {
        summary: summary(runs),
        checks,
        measures: MEASURES.to_vec(),
        tables: Vec::new(),
        figures: vec![format!("{figure}.png"), format!("{figure}.svg")],
    }
}

/// How the summary's surface measures are computed.
pub(crate) const MEASURES: [(&str, &str); 4] = [
    (
        "nonconvex_2d_pct",
        "share of interior 2-D grid points whose finite-difference Hessian of the training loss has lambda_min < -0.1 |lambda_max|; below 10% counts as convex-like",
    ),
    ("local_minima_2d", "grid points lower than all 8 neighbours"),
    (
        "basin_area_2d_pct",
        "share of the 2-D grid where the training loss is within 1.0 of its value at the centre",
    ),
    (
        "nonconvex_points_below_10",
        "of the interior points whose 3 x 3 neighbourhood stays below loss 10 (the region the paper's contours and 3-D plots show; interior_points_below_10 of them), those non-convex by the nonconvex_2d_pct test; a reading, not a check",
    ),
];

/// Builds figure 5's panels, summary and checks.
pub fn build(c: &Collected, out: &Path) -> Result<Product> {
    let runs = skip_runs(c)?;
    let depths = depths(&runs);
    let panels: Vec<Panel> = runs
        .iter()
        .map(|r| contour_panel(&r.title(), r.grid.clone()).into())
        .collect();
    let rows = if runs.iter().any(|r| !r.skips) && runs.iter().any(|r| r.skips) {
        2
    } else {
        1
    };
    Figure::grid(rows, depths.len().max(1), panels)
        .with_title("Figure 5: ResNets with skip connections (top) and without (bottom)")
        .save(&out.join("figure5"))?;
    Ok(skip_product("figure5", &runs, checks(&runs, "figure 5")))
}
