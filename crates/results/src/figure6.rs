//! Figure 6: 2-D filter-normalized contours of Wide-ResNet-56 with width factor k, with skip
//! connections (top row) and without (bottom row), and paper.md claim 6: width makes minima
//! flatter and the convex region wider. k = 1 is ResNet-56 (figure 5's runs and surfaces).
//! Each check compares the narrowest network of a row with the widest.

use crate::Product;
use crate::collect::Collected;
use crate::figure5::{BASIN_RISE, SkipRun, less_chaotic_check, skip_product, skip_runs};
use crate::measures::basin_area;
use crate::panels::contour_panel;
use crate::report::{Check, Verdict};
use anyhow::Result;
use landscape_figures::{Figure, Panel};
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
        let name = |r: &SkipRun| r.run.record.config.train.model.to_string();
        let pair = format!("{} vs {}", name(wide), name(narrow));
        let (area_n, area_w) = (
            basin_area(&narrow.grid, BASIN_RISE),
            basin_area(&wide.grid, BASIN_RISE),
        );
        checks.push(Check {
            claim: "claim 6".into(),
            check: format!("{pair}: the wider minimum is flatter (larger basin area)"),
            measured: format!("basin area {area_w:.1}% wide / {area_n:.1}% narrow"),
            paper: "minima flatter as k grows".into(),
            verdict: Verdict::of(area_w > area_n),
        });
        checks.push(less_chaotic_check(
            "claim 6",
            &format!("{pair}: the wider landscape is more convex (lower non-convex share in view)"),
            (&wide.nonconvex, "wide"),
            (&narrow.nonconvex, "narrow"),
            "convex region wider as k grows",
        ));
        let (e_n, e_w) = (narrow.run.test_error(), wide.run.test_error());
        checks.push(Check {
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
        });
    }
    Ok(skip_product("figure6", &runs, checks))
}
