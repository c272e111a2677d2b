//! Figure 5: 2-D filter-normalized contours of ResNets of growing depth, with skip
//! connections (top) and without (bottom), and paper.md claim 5.

use crate::Product;
use crate::collect::{Collected, RunResult};
use crate::measures::{
    InView, MIN_VIEW_POINTS, basin_area, local_minima, nonconvex_in_view, nonconvex_points,
    nonconvex_points_where, nonconvex_share,
};
use crate::panels::{LOSS_CLIP, contour_panel};
use crate::paper::resnet_test_errors;
use crate::report::{Check, Table, Verdict, num};
use anyhow::Result;
use landscape_figures::{Figure, Grid2d, Panel};
use landscape_models::Arch;
use std::path::Path;

/// A share of non-convex points below this is "convex-like".
pub(crate) const CONVEX_LIKE: f64 = 10.0;

/// The loss levels that split the points in view into bands for the summary (below 1: around
/// the minimum; 3 to 10: the basin's walls), a reading of where non-convex points lie: each
/// band's column-name suffix and its loss range `[low, high)`.
const LOSS_BANDS: [(&str, f64, f64); 3] = [
    ("below_1", f64::NEG_INFINITY, 1.0),
    ("1_to_3", 1.0, 3.0),
    ("3_to_10", 3.0, LOSS_CLIP),
];

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
        Arch::Vgg9 | Arch::Imported => None,
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
    /// Its non-convexity where the figure looks ([`nonconvex_in_view`] below [`LOSS_CLIP`]):
    /// what claim 5's checks read.
    pub nonconvex: InView,
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
            nonconvex: nonconvex_in_view(&grid, LOSS_CLIP),
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
        "nonconvex_in_view_pct",
    ]);
    summary
        .columns
        .extend(LOSS_BANDS.iter().flat_map(|(band, ..)| {
            [
                format!("nonconvex_loss_{band}"),
                format!("points_loss_{band}"),
            ]
        }));
    for r in runs {
        let (concave, counted) = nonconvex_points(&r.grid, LOSS_CLIP);
        let bands = LOSS_BANDS.iter().flat_map(|&(_, low, high)| {
            let (concave, counted) =
                nonconvex_points_where(&r.grid, LOSS_CLIP, |z| low <= z && z < high);
            [concave.to_string(), counted.to_string()]
        });
        let mut row = vec![
            r.run.record.config.train.model.to_string(),
            r.depth.to_string(),
            r.skips.to_string(),
            num(r.run.test_error()),
            num(r.run.train_loss()),
            num(nonconvex_share(&r.grid)),
            local_minima(&r.grid).to_string(),
            num(basin_area(&r.grid, BASIN_RISE)),
            concave.to_string(),
            counted.to_string(),
            num(r.nonconvex.share.unwrap_or(f64::NAN)),
        ];
        row.extend(bands);
        summary.push(row);
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
            checks.push(less_chaotic_check(
                "claim 5",
                &format!("depth {d}: without skips the landscape is more chaotic than with them"),
                (&with.nonconvex, "with"),
                (&without.nonconvex, "without"),
                "deep -noshort landscapes chaotic, ResNets convex-like",
            ));
        }
        checks.push(convex_like_check(
            &format!("depth {d}: with skips the landscape"),
            &with.nonconvex,
            "convex-like at every depth",
        ));
        if d <= SHALLOW_DEPTH {
            checks.push(Check {
                claim: "claim 5".into(),
                check: format!("depth {d} (shallow): both versions convex-like"),
                measured: format!(
                    "non-convex in view: {} with / {} without",
                    with.nonconvex, without.nonconvex
                ),
                paper: "R20 and R20-noshort both convex".into(),
                verdict: Verdict::of(
                    with.nonconvex.below(CONVEX_LIKE) && without.nonconvex.below(CONVEX_LIKE),
                ),
            });
        }
        let (e_with, e_without) = (with.run.test_error(), without.run.test_error());
        checks.push(Check {
            claim: figure.into(),
            check: format!("depth {d}: skips generalize better"),
            measured: format!("test error {e_with:.2}% with / {e_without:.2}% without"),
            paper: resnet_test_errors(d)
                .map_or("-".into(), |(w, wo)| format!("{w}% with / {wo}% without")),
            verdict: Verdict::of(e_with <= e_without),
        });
    }
    checks
}

/// Claim 5's check that `landscape` (named as the check reads it) is convex-like: its
/// non-convex share where the figure looks is under [`CONVEX_LIKE`] (an unreadable share, too
/// few points below loss 10, fails).
pub(crate) fn convex_like_check(landscape: &str, nonconvex: &InView, paper: &str) -> Check {
    Check {
        claim: "claim 5".into(),
        check: format!(
            "{landscape} is convex-like (non-convex share < {CONVEX_LIKE}% of the points below loss {LOSS_CLIP}, at least {MIN_VIEW_POINTS})"
        ),
        measured: format!("{nonconvex}"),
        paper: paper.into(),
        verdict: Verdict::of(nonconvex.below(CONVEX_LIKE)),
    }
}

/// A comparison `check` of `claim`: the landscape `smooth` names is measurably less
/// non-convex, where the figure looks, than the one `chaotic` names (each a measure and its
/// label); an unreadable share fails it.
pub(crate) fn less_chaotic_check(
    claim: &str,
    check: &str,
    smooth: (&InView, &str),
    chaotic: (&InView, &str),
    paper: &str,
) -> Check {
    Check {
        claim: claim.into(),
        check: check.into(),
        measured: format!(
            "non-convex in view: {} {} / {} {}",
            chaotic.0, chaotic.1, smooth.0, smooth.1
        ),
        paper: paper.into(),
        verdict: Verdict::of(smooth.0.less_than(chaotic.0)),
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
pub(crate) const MEASURES: [(&str, &str); 6] = [
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
        "of the interior points whose 3 x 3 neighbourhood stays below loss 10 (the region the paper's contours and 3-D plots show; interior_points_below_10 of them), those non-convex by the nonconvex_2d_pct test",
    ),
    (
        "nonconvex_in_view_pct",
        "nonconvex_points_below_10 as a share of interior_points_below_10, read only from 25 points up (empty below): what claim 5's checks compare; the whole grid's nonconvex_2d_pct is a reading, dominated by the walls above loss 10",
    ),
    (
        "nonconvex_loss_below_1",
        "the points in view (interior_points_below_10) split by the loss at the point, below 1 (around the minimum), 1 to 3 and 3 to 10 (the basin's walls): nonconvex_loss_<band> of points_loss_<band> are non-convex; a reading of where the non-convex points lie, not a check",
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

#[cfg(test)]
pub(crate) mod tests {
    //! Claim 5's and 6's convexity checks (figures 1, 4, 5, 6) fed landscapes whose answer is
    //! known: each must fail where the landscape contradicts the claim.
    use super::*;
    use landscape_figures::linspace;

    /// A 21x21 grid over [-1, 1]^2 of `f(x, y)`.
    pub(crate) fn grid(f: impl Fn(f64, f64) -> f64) -> Grid2d {
        let a = linspace(-1.0, 1.0, 21);
        Grid2d::from_fn(a.clone(), a, f).unwrap()
    }

    /// A convex bowl, in view.
    pub(crate) fn bowl() -> InView {
        nonconvex_in_view(&grid(|x, y| x * x + y * y), LOSS_CLIP)
    }

    /// A bowl under an egg-crate ripple: non-convex almost everywhere, in view.
    pub(crate) fn chaos() -> InView {
        nonconvex_in_view(
            &grid(|x, y| 1.0 + x * x + y * y + 0.3 * (12.0 * x).sin() * (12.0 * y).sin()),
            LOSS_CLIP,
        )
    }

    fn more_chaotic_without(with: &InView, without: &InView) -> Verdict {
        less_chaotic_check("claim 5", "-", (with, "with"), (without, "without"), "-").verdict
    }

    #[test]
    fn a_claim_the_landscapes_contradict_fails() {
        // The right shapes pass...
        assert_eq!(more_chaotic_without(&bowl(), &chaos()), Verdict::Pass);
        assert_eq!(convex_like_check("-", &bowl(), "-").verdict, Verdict::Pass);
        // ... a convex bowl where chaos is claimed fails, and so does chaos called convex-like.
        assert_eq!(more_chaotic_without(&bowl(), &bowl()), Verdict::Fail);
        assert_eq!(more_chaotic_without(&chaos(), &bowl()), Verdict::Fail);
        assert_eq!(convex_like_check("-", &chaos(), "-").verdict, Verdict::Fail);
    }

    #[test]
    fn convexity_is_read_where_the_figure_looks_and_only_from_enough_points() {
        // A bowl below loss 10 inside walls that fold above it (non-convex, off the plot):
        // convex-like where the figure looks, though the whole grid's share says otherwise.
        let walled = grid(|x, y| {
            let r2 = x * x + y * y;
            if r2 < 0.5 {
                4.0 * r2
            } else {
                100.0 - 50.0 * r2
            }
        });
        assert!(
            nonconvex_share(&walled) > CONVEX_LIKE,
            "{}",
            nonconvex_share(&walled)
        );
        let view = nonconvex_in_view(&walled, LOSS_CLIP);
        assert_eq!(
            convex_like_check("-", &view, "-").verdict,
            Verdict::Pass,
            "{view}"
        );
        // A minimum so sharp that almost nothing is below loss 10 cannot be read: the checks
        // fail rather than pass on a handful of points.
        let sharp = nonconvex_in_view(&grid(|x, y| 200.0 * (x * x + y * y)), LOSS_CLIP);
        assert!(
            sharp.share.is_none() && sharp.points < MIN_VIEW_POINTS,
            "{sharp}"
        );
        assert_eq!(convex_like_check("-", &sharp, "-").verdict, Verdict::Fail);
        assert_eq!(more_chaotic_without(&sharp, &chaos()), Verdict::Fail);
        assert!(sharp.to_string().contains("unreadable"));
    }
}
