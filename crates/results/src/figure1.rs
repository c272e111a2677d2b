//! Figure 1: the loss surface of ResNet-56 without skip connections (left) and with them
//! (right), drawn in 3-D as the paper does: z = ln(loss + 0.1), the loss clipped at
//! [`LOSS_CLIP`]. The runs and surfaces are figure 5's depth-56 pair (the specs agree, so a
//! reproduction of either reuses the other's), and so are the checks: claim 5 at depth 56.

use crate::Product;
use crate::collect::Collected;
use crate::figure5::{MEASURES, checks, skip_runs, summary};
use anyhow::Result;
use landscape_figures::{Figure, Labels, Panel, SurfacePanel, ZTransform};
use std::path::Path;

/// Losses above this are drawn at it: the top of the paper's contour levels, above which the
/// no-skip network's walls (1e3 and more at the corners) would flatten the basin to a point.
pub const LOSS_CLIP: f64 = 10.0;

/// Builds figure 1's panels, summary and checks.
pub fn build(c: &Collected, out: &Path) -> Result<Product> {
    let mut runs = skip_runs(c)?;
    // Without skips on the left, as in the paper.
    runs.sort_by_key(|r| (r.skips, r.depth));
    let panels: Vec<Panel> = runs
        .iter()
        .map(|r| {
            SurfacePanel::new(
                Labels::new(r.title(), "x (filter-normalized)", "y (filter-normalized)"),
                r.grid.map(|z| z.min(LOSS_CLIP)),
                "loss",
            )
            .with_transform(ZTransform::PAPER_LOG)
            .into()
        })
        .collect();
    Figure::grid(1, runs.len().max(1), panels)
        .with_title(format!(
            "Figure 1: without (left) and with (right) skip connections; ln(loss + 0.1), loss clipped at {LOSS_CLIP}"
        ))
        .save(&out.join("figure1"))?;
    Ok(Product {
        summary: summary(&runs),
        checks: checks(&runs, "figure 1"),
        measures: MEASURES.to_vec(),
        tables: Vec::new(),
        figures: vec!["figure1.png".into(), "figure1.svg".into()],
    })
}
