//! Figure 1: the loss surface of ResNet-56 without skip connections (left) and with them
//! (right), drawn in 3-D as the paper does (ln(loss + 0.1), clipped). The runs and surfaces are
//! figure 5's depth-56 pair (the specs agree, so a reproduction of either reuses the other's),
//! and so are the checks: claim 5 at depth 56.

use crate::Product;
use crate::collect::Collected;
use crate::figure5::{SkipRun, checks, skip_product, skip_runs};
use crate::panels::{LOSS_CLIP, surface_3d_panel};
use anyhow::Result;
use landscape_figures::{Figure, Panel, SurfacePanel};
use std::path::Path;

/// The runs of `c` with a `2d` surface, without skips first (on the left, as in figures 1 and
/// 4), drawn side by side in 3-D as `path`.png and .svg under `title`.
pub(crate) fn draw_3d<'a>(c: &'a Collected, title: &str, path: &Path) -> Result<Vec<SkipRun<'a>>> {
    let mut runs = skip_runs(c)?;
    runs.sort_by_key(|r| (r.skips, r.depth));
    let panels: Vec<SurfacePanel> = runs
        .iter()
        .map(|r| surface_3d_panel(&r.title(), &r.grid))
        .collect();
    // One height scale for the figure: side by side, the panels compare at a glance.
    let shared = panels
        .iter()
        .filter_map(SurfacePanel::value_range)
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
    let panels: Vec<Panel> = panels
        .into_iter()
        .map(|p| match shared {
            Some((low, high)) => p.with_z_range(low, high).into(),
            None => p.into(),
        })
        .collect();
    Figure::grid(1, runs.len().max(1), panels)
        .with_title(format!(
            "{title}; ln(loss + 0.1), loss clipped at {LOSS_CLIP}"
        ))
        .save(path)?;
    Ok(runs)
}

/// Builds figure 1's panels, summary and checks.
pub fn build(c: &Collected, out: &Path) -> Result<Product> {
    let runs = draw_3d(
        c,
        "Figure 1: without (left) and with (right) skip connections",
        &out.join("figure1"),
    )?;
    Ok(skip_product("figure1", &runs, checks(&runs, "figure 1")))
}
