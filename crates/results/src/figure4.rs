//! Figure 4: 3-D loss surfaces of two very deep networks, ResNet-110 without skip connections
//! (left) and DenseNet-121 (right), drawn as figure 1's (ln(loss + 0.1), clipped). The point is
//! claim 5 taken further: depth alone makes the landscape chaotic, and DenseNet's dense
//! connections keep a deeper network smooth. ResNet-110-noshort is figure 5's run and surface.

use crate::Product;
use crate::collect::Collected;
use crate::figure1::draw_3d;
use crate::figure5::{convex_like_check, less_chaotic_check, skip_product};
use crate::paper::{DENSENET121_TEST_ERROR, resnet_test_errors};
use crate::report::{Check, Verdict};
use anyhow::Result;
use landscape_models::Arch;
use std::path::Path;

/// Builds figure 4's panels, summary and checks.
pub fn build(c: &Collected, out: &Path) -> Result<Product> {
    let runs = draw_3d(
        c,
        "Figure 4: ResNet-110 without skips (left), DenseNet-121 (right)",
        &out.join("figure4"),
    )?;
    let noshort = runs.iter().find(|r| !r.skips);
    let dense = runs
        .iter()
        .find(|r| r.run.record.config.train.model == Arch::DenseNet121);
    let mut checks = Vec::new();
    if let (Some(noshort), Some(dense)) = (noshort, dense) {
        checks.push(less_chaotic_check(
            "claim 5",
            &format!(
                "DenseNet-121 is less chaotic than {} (non-convex share in view)",
                noshort.run.record.config.train.model
            ),
            (&dense.nonconvex, "DenseNet"),
            (&noshort.nonconvex, "without skips"),
            "DenseNet smooth and convex-like, ResNet-110-noshort chaotic",
        ));
        checks.push(convex_like_check(
            "DenseNet-121's landscape",
            &dense.nonconvex,
            "convex-like",
        ));
        let (e_dense, e_noshort) = (dense.run.test_error(), noshort.run.test_error());
        checks.push(Check {
            claim: "figure 4".into(),
            check: "DenseNet-121 generalizes better than the network without skips".into(),
            measured: format!("test error {e_dense:.2}% DenseNet / {e_noshort:.2}% without skips"),
            paper: format!(
                "{DENSENET121_TEST_ERROR}% DenseNet / {}% ResNet-110-noshort",
                resnet_test_errors(110).map_or(f64::NAN, |e| e.1)
            ),
            verdict: Verdict::of(e_dense < e_noshort),
        });
    }
    Ok(skip_product("figure4", &runs, checks))
}
