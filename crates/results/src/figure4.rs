//! Figure 4: 3-D loss surfaces of two very deep networks, ResNet-110 without skip connections
//! (left) and DenseNet-121 (right), drawn as figure 1's (ln(loss + 0.1), clipped). The point is
//! claim 5 taken further: depth alone makes the landscape chaotic, and DenseNet's dense
//! connections keep a deeper network smooth. ResNet-110-noshort is figure 5's run and surface.

use crate::Product;
use crate::collect::Collected;
use crate::figure1::draw_3d;
use crate::figure5::{convex_like_check, less_chaotic_check, skip_product};
use crate::measures::InView;
use crate::paper::{DENSENET121_TEST_ERROR, resnet_test_errors};
use crate::report::{Check, Verdict};
use anyhow::Result;
use landscape_models::Arch;
use std::path::Path;

/// Figure 4's checks from DenseNet-121's and the no-skip network's (`noshort`, its name)
/// non-convexity in view and test error (percent): DenseNet is less chaotic, convex-like and
/// generalizes better.
fn checks(dense: (&InView, f64), noshort: (&InView, f64), noshort_name: &str) -> Vec<Check> {
    let ((dense, e_dense), (noshort, e_noshort)) = (dense, noshort);
    vec![
        less_chaotic_check(
            "claim 5",
            &format!("DenseNet-121 is less chaotic than {noshort_name} (non-convex share in view)"),
            (dense, "DenseNet"),
            (noshort, "without skips"),
            "DenseNet smooth and convex-like, ResNet-110-noshort chaotic",
        ),
        convex_like_check("DenseNet-121's landscape", dense, "convex-like"),
        Check {
            claim: "figure 4".into(),
            check: "DenseNet-121 generalizes better than the network without skips".into(),
            measured: format!("test error {e_dense:.2}% DenseNet / {e_noshort:.2}% without skips"),
            paper: format!(
                "{DENSENET121_TEST_ERROR}% DenseNet / {}% ResNet-110-noshort",
                resnet_test_errors(110).map_or(f64::NAN, |e| e.1)
            ),
            verdict: Verdict::of(e_dense < e_noshort),
        },
    ]
}

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
    let checks = match (noshort, dense) {
        (Some(noshort), Some(dense)) => self::checks(
            (&dense.nonconvex, dense.run.test_error()),
            (&noshort.nonconvex, noshort.run.test_error()),
            &noshort.run.record.config.train.model.to_string(),
        ),
        _ => Vec::new(),
    };
    Ok(skip_product("figure4", &runs, checks))
}

#[cfg(test)]
mod tests {
    //! Figure 4's checks fed landscapes whose answer is known.
    use super::*;
    use crate::figure5::tests::{bowl, chaos};

    fn verdicts(dense: (&InView, f64), noshort: (&InView, f64)) -> Vec<Verdict> {
        checks(dense, noshort, "resnet110-noshort")
            .into_iter()
            .map(|c| c.verdict)
            .collect()
    }

    #[test]
    fn a_chaotic_densenet_or_a_smooth_deep_network_fails() {
        use Verdict::{Fail, Pass};
        let (bowl, chaos) = (bowl(), chaos());
        assert_eq!(verdicts((&bowl, 15.0), (&chaos, 90.0)), [Pass, Pass, Pass]);
        // DenseNet as chaotic as the network without skips, and worse.
        assert_eq!(verdicts((&chaos, 91.0), (&chaos, 90.0)), [Fail, Fail, Fail]);
        // A network without skips as smooth as DenseNet: DenseNet is not less chaotic.
        assert_eq!(verdicts((&bowl, 15.0), (&bowl, 90.0)), [Fail, Pass, Pass]);
    }
}
