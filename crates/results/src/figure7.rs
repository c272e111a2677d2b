//! Figure 7: where the loss surface of ResNets with and without skip connections is convex,
//! mapped by abs(lambda_min / lambda_max) of the Hessian at every point of the same
//! filter-normalized plane as the loss contours (top row: contours; bottom row: ratio maps).
//! Checks paper.md claim 7.

use crate::Product;
use crate::collect::{Collected, RunResult};
use crate::measures::nonconvex_share;
use crate::panels::contour_panel;
use crate::report::{Check, Table, Verdict, num};
use anyhow::{Context, Result};
use landscape_figures::{Figure, Grid2d, HeatmapPanel, Labels, Panel};
use std::path::Path;

/// A ratio below this counts as "near 0" (convex).
const NEAR_ZERO: f64 = 0.1;

/// Builds figure 7's panels, summary and checks.
pub fn build(c: &Collected, out: &Path) -> Result<Product> {
    let mut runs: Vec<&RunResult> = c
        .runs
        .iter()
        .filter(|r| c.ratio_map(&r.record.id).is_some())
        .collect();
    runs.sort_by_key(|r| r.record.config.train.model.to_string());
    let mut top: Vec<Panel> = Vec::new();
    let mut bottom: Vec<Panel> = Vec::new();
    let mut summary = Table::new(&[
        "model",
        "test_error_pct",
        "ratio_at_minimum",
        "mean_ratio",
        "share_ratio_above_0.1_pct",
        "nonconvex_2d_pct",
    ]);
    let mut rows = Vec::new();
    for run in &runs {
        let id = &run.record.id;
        let map = c.ratio_map(id).expect("filtered");
        let xs = dedup(map.iter().map(|r| r.x));
        let ys = dedup(map.iter().map(|r| r.y));
        let ratio = Grid2d::new(xs, ys, map.iter().map(|r| r.ratio).collect())
            .context("the eigen-ratio grid")?;
        let name = run.record.config.train.model.to_string();
        let loss = c.surface("2d", id).map(|s| s.loss_grid()).transpose()?;
        if let Some(grid) = &loss {
            top.push(contour_panel(&format!("{name}: loss"), grid.clone()).into());
        }
        bottom.push(
            HeatmapPanel::new(
                Labels::new(
                    format!("{name}: abs(lambda_min / lambda_max)"),
                    "x (filter-normalized)",
                    "y (filter-normalized)",
                ),
                ratio.clone(),
                "ratio",
            )
            .with_range(0.0, 1.0)
            .into(),
        );
        let finite: Vec<f64> = map
            .iter()
            .map(|r| r.ratio)
            .filter(|r| r.is_finite())
            .collect();
        let centre = ratio.get(ratio.nx() / 2, ratio.ny() / 2);
        let mean = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
        let above = 100.0 * finite.iter().filter(|r| **r > NEAR_ZERO).count() as f64
            / finite.len().max(1) as f64;
        let nonconvex = loss.as_ref().map_or(f64::NAN, nonconvex_share);
        summary.push(vec![
            name.clone(),
            num(run.test_error()),
            num(centre),
            num(mean),
            num(above),
            num(nonconvex),
        ]);
        rows.push((name, centre, mean));
    }
    let cols = runs.len().max(1);
    let mut panels = Vec::new();
    let has_top = top.len() == bottom.len() && !top.is_empty();
    if has_top {
        panels.extend(top);
    }
    panels.extend(bottom);
    Figure::grid(if has_top { 2 } else { 1 }, cols, panels)
        .with_title(
            "Figure 7: loss contours (top) and abs(lambda_min/lambda_max) of the Hessian (bottom)",
        )
        .save(&out.join("figure7"))?;

    let mut checks = Vec::new();
    for (name, centre, _) in &rows {
        checks.push(Check {
            claim: "claim 7".into(),
            check: format!("{name}: at the minimum the Hessian is nearly positive definite (ratio < {NEAR_ZERO})"),
            measured: format!("{centre:.3}"),
            paper: "near 0 at convex-looking minima".into(),
            verdict: Verdict::of(*centre < NEAR_ZERO),
        });
    }
    for (name, _, mean) in rows.iter().filter(|r| r.0.ends_with("-noshort")) {
        let with = name.trim_end_matches("-noshort");
        if let Some((_, _, mean_with)) = rows.iter().find(|r| r.0 == with) {
            checks.push(Check {
                claim: "claim 7".into(),
                check: format!(
                    "{with}: removing the skips raises the non-convexity of the plane (mean ratio)"
                ),
                measured: format!("{mean:.3} without / {mean_with:.3} with"),
                paper: "large ratios where the -noshort plots are non-convex".into(),
                verdict: Verdict::of(mean > mean_with),
            });
        }
    }
    Ok(Product {
        summary,
        checks,
        measures: vec![
            (
                "ratio",
                "abs(lambda_min / lambda_max) of the Hessian of the mean training loss (BatchNorm in inference mode) at each grid point, from Lanczos with full reorthogonalization on Hessian-vector products by central differences with the ReLU and max-pool choices replayed",
            ),
            (
                "share_ratio_above_0.1_pct",
                "share of the plane where the ratio exceeds 0.1",
            ),
            (
                "nonconvex_2d_pct",
                "share of interior 2-D grid points of the loss surface whose finite-difference Hessian has lambda_min < -0.1 |lambda_max|",
            ),
        ],
        tables: Vec::new(),
        figures: vec!["figure7.png".into(), "figure7.svg".into()],
    })
}

fn dedup(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}
