//! Figure 1: the loss surface of ResNet-56 without skip connections (left) and with them
//! (right), drawn in 3-D as the paper does ([`surface_3d_panel`]). The runs and surfaces are
//! figure 5's depth-56 pair (the specs agree, so a reproduction of either reuses the other's),
//! and so are the checks: claim 5 at depth 56.

use crate::Product;
use crate::collect::Collected;
use crate::figure5::{MEASURES, checks, skip_runs, summary};
use crate::panels::{LOSS_CLIP, surface_3d_panel};
use anyhow::Result;
use landscape_figures::{Figure, Panel};
use std::path::Path;

/// Builds figure 1's panels, summary and checks.
pub fn build(c: &Collected, out: &Path) -> Result<Product> {
    let mut runs = skip_runs(c)?;
    // Without skips on the left, as in the paper.
    runs.sort_by_key(|r| (r.skips, r.depth));
    let panels: Vec<Panel> = runs
        .iter()
        .map(|r| surface_3d_panel(&r.title(), &r.grid).into())
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
