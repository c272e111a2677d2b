//! Figure 5: 2-D filter-normalized contours of ResNets of growing depth, with skip
//! connections (top) and without (bottom), and paper.md claim 5.

use crate::collect::{Collected, RunResult};
use crate::measures::{basin_area, local_minima, nonconvex_share};
use crate::panels::contour_panel;
use crate::report::{Check, Table, Verdict, num};
use crate::{Product, paper_depth_error};
use anyhow::Result;
use landscape_figures::{Figure, Panel};
use landscape_models::Arch;
use std::path::Path;

/// A share of non-convex points below this is "convex-like".
const CONVEX_LIKE: f64 = 10.0;

fn depth_and_skips(run: &RunResult) -> Option<(usize, bool)> {
    match run.record.config.train.model {
        Arch::ResNet { depth, skips, .. } => Some((depth, skips)),
        _ => None,
    }
}

/// Builds figure 5's panels, summary and checks.
pub fn build(c: &Collected, out: &Path) -> Result<Product> {
    let mut runs: Vec<(&RunResult, usize, bool)> = c
        .runs
        .iter()
        .filter_map(|r| depth_and_skips(r).map(|(d, s)| (r, d, s)))
        .filter(|(r, _, _)| c.surface("2d", &r.record.id).is_some())
        .collect();
    runs.sort_by_key(|(_, d, s)| (!*s, *d));
    let depths: Vec<usize> = {
        let mut d: Vec<usize> = runs.iter().map(|r| r.1).collect();
        d.sort_unstable();
        d.dedup();
        d
    };
    let mut summary = Table::new(&[
        "model",
        "depth",
        "skips",
        "test_error_pct",
        "train_loss",
        "nonconvex_2d_pct",
        "local_minima_2d",
        "basin_area_2d_pct",
    ]);
    let mut panels: Vec<Panel> = Vec::new();
    let mut shapes: Vec<(usize, bool, f64, f64)> = Vec::new();
    for (run, depth, skips) in &runs {
        let grid = c
            .surface("2d", &run.record.id)
            .expect("filtered")
            .loss_grid()?;
        let (nonconvex, minima) = (nonconvex_share(&grid), local_minima(&grid));
        let title = format!(
            "{} (test error {:.2}%)",
            run.record.config.train.model,
            run.test_error()
        );
        panels.push(contour_panel(&title, grid.clone()).into());
        summary.push(vec![
            run.record.config.train.model.to_string(),
            depth.to_string(),
            skips.to_string(),
            num(run.test_error()),
            num(run.train_loss()),
            num(nonconvex),
            minima.to_string(),
            num(basin_area(&grid, 1.0)),
        ]);
        shapes.push((*depth, *skips, nonconvex, run.test_error()));
    }
    let rows = if runs.iter().any(|r| !r.2) && runs.iter().any(|r| r.2) {
        2
    } else {
        1
    };
    Figure::grid(rows, depths.len().max(1), panels)
        .with_title("Figure 5: ResNets with skip connections (top) and without (bottom)")
        .save(&out.join("figure5"))?;

    let find = |d: usize, s: bool| shapes.iter().find(|x| x.0 == d && x.1 == s);
    let mut checks = Vec::new();
    for &d in &depths {
        let (Some(with), Some(without)) = (find(d, true), find(d, false)) else {
            continue;
        };
        let paper = paper_depth_error(d);
        if d > depths[0] {
            checks.push(Check {
                claim: "claim 5".into(),
                check: format!(
                    "depth {d}: without skips the landscape is more chaotic than with them"
                ),
                measured: format!(
                    "non-convex share {:.1}% without / {:.1}% with",
                    without.2, with.2
                ),
                paper: "deep -noshort landscapes chaotic, ResNets convex-like".into(),
                verdict: Verdict::of(without.2 > with.2),
            });
        }
        checks.push(Check {
            claim: "claim 5".into(),
            check: format!("depth {d}: with skips the landscape is convex-like (non-convex share < {CONVEX_LIKE}%)"),
            measured: format!("{:.1}%", with.2),
            paper: "convex-like at every depth".into(),
            verdict: Verdict::of(with.2 < CONVEX_LIKE),
        });
        if d == depths[0] {
            checks.push(Check {
                claim: "claim 5".into(),
                check: format!("depth {d} (shallowest): both versions convex-like"),
                measured: format!("{:.1}% with / {:.1}% without", with.2, without.2),
                paper: "R20 and R20-noshort both convex".into(),
                verdict: Verdict::of(with.2 < CONVEX_LIKE && without.2 < CONVEX_LIKE),
            });
        }
        checks.push(Check {
            claim: "figure 5".into(),
            check: format!("depth {d}: skips generalize better"),
            measured: format!("test error {:.2}% with / {:.2}% without", with.3, without.3),
            paper: paper.map_or("-".into(), |(w, wo)| format!("{w}% with / {wo}% without")),
            verdict: Verdict::of(with.3 <= without.3),
        });
    }
    Ok(Product {
        summary,
        checks,
        measures: vec![
            (
                "nonconvex_2d_pct",
                "share of interior 2-D grid points whose finite-difference Hessian of the training loss has lambda_min < -0.1 |lambda_max|; below 10% counts as convex-like",
            ),
            ("local_minima_2d", "grid points lower than all 8 neighbours"),
            (
                "basin_area_2d_pct",
                "share of the 2-D grid where the training loss is within 1.0 of its value at the centre",
            ),
        ],
        tables: Vec::new(),
        figures: vec!["figure5.png".into(), "figure5.svg".into()],
    })
}
