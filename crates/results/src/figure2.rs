//! Figure 2: the small-batch and large-batch VGG-9 minima compared without normalization:
//! (a, d) the loss along the line between them, (b, e) weight norms during training, (c, f)
//! histograms of the final weights; top row without weight decay, bottom with. Checks
//! paper.md claims 1 and 2.

use crate::Product;
use crate::collect::{Collected, RunResult};
use crate::measures::{WIDTH_RISE, basin_width};
use crate::panels::curve_panel;
use crate::paper::vgg9_test_error;
use crate::report::{Check, Table, Verdict, num};
use anyhow::Result;
use landscape_figures::{Figure, HistogramPanel, Labels, LinePanel, Panel, Series, ValueSet};
use std::path::Path;

/// Builds figure 2's panels, summary and checks.
pub fn build(c: &Collected, workdir: &Path, out: &Path) -> Result<Product> {
    let mut panels: Vec<Panel> = Vec::new();
    let mut summary = Table::new(&[
        "model",
        "batch_size",
        "weight_decay",
        "test_error_pct",
        "train_loss",
        "weight_l2",
        "weight_l2_epoch0",
        "interp_width_at_plus_0.5",
    ]);
    let mut checks = Vec::new();
    let mut rows = 0;
    for wd in [0.0, 5e-4] {
        let Some(interp) = c.surfaces.iter().find(|s| {
            s.analysis == "interp"
                && c.run(&s.runs[0])
                    .is_some_and(|r| r.record.config.train.weight_decay == wd)
        }) else {
            continue;
        };
        let (Some(small), Some(large)) = (c.run(&interp.runs[0]), c.run(&interp.runs[1])) else {
            continue;
        };
        rows += 1;
        let curve = interp.curve();
        let title = |what: &str| format!("WD={wd}: {what}");
        panels.push(
            curve_panel(
                &title(&format!(
                    "BS {} (0) to BS {} (1)",
                    small.batch_size(),
                    large.batch_size()
                )),
                "alpha (interpolation)",
                &curve,
            )
            .into(),
        );
        panels.push(norm_panel(&title("weight L2 norm"), &[small, large]).into());
        panels.push(
            HistogramPanel::new(
                Labels::new(title("weights"), "weight value", "count"),
                vec![
                    ValueSet::new(
                        format!("BS {}", small.batch_size()),
                        small.final_weights(workdir)?,
                    ),
                    ValueSet::new(
                        format!("BS {}", large.batch_size()),
                        large.final_weights(workdir)?,
                    ),
                ],
                80,
            )
            .into(),
        );
        let widths = [
            basin_width(&curve.x, &curve.train_loss, 0.0, WIDTH_RISE),
            basin_width(&curve.x, &curve.train_loss, 1.0, WIDTH_RISE),
        ];
        for (run, width) in [(small, widths[0]), (large, widths[1])] {
            summary.push(vec![
                run.record.config.train.model.to_string(),
                run.batch_size().to_string(),
                wd.to_string(),
                num(run.test_error()),
                num(run.train_loss()),
                num(run.weight_norm()),
                num(run.metrics.first().map_or(f64::NAN, |m| m.weight_l2)),
                num(width),
            ]);
        }
        let (ns, nl) = (small.weight_norm(), large.weight_norm());
        let expect_small_larger = wd == 0.0;
        checks.push(Check {
            claim: "claim 1".into(),
            check: format!(
                "WD={wd}: the small-batch weights end {} than the large-batch ones",
                if expect_small_larger {
                    "larger"
                } else {
                    "smaller"
                }
            ),
            measured: format!("weight norm SB {ns:.2} / LB {nl:.2}"),
            paper: if expect_small_larger {
                "SB larger without WD".into()
            } else {
                "SB smaller with WD 5e-4".into()
            },
            verdict: Verdict::of((ns > nl) == expect_small_larger),
        });
        if wd == 0.0 {
            let grows = |r: &RunResult| {
                r.metrics
                    .windows(2)
                    .filter(|w| w[1].weight_l2 >= w[0].weight_l2)
                    .count() as f64
                    / (r.metrics.len() - 1).max(1) as f64
            };
            checks.push(Check {
                claim: "claim 1".into(),
                check:
                    "WD=0: the weight norm grows all run (share of epochs where it did not shrink)"
                        .into(),
                measured: format!(
                    "SB {:.0}% / LB {:.0}% of epochs",
                    100.0 * grows(small),
                    100.0 * grows(large)
                ),
                paper: "grows throughout training".into(),
                verdict: Verdict::of(grows(small) >= 0.9 && grows(large) >= 0.9),
            });
        }
        let sb_wider_expected = wd == 0.0;
        checks.push(Check {
            claim: "claim 2".into(),
            check: format!(
                "WD={wd}: without normalization the {} basin looks wider along the interpolation",
                if sb_wider_expected {
                    "small-batch"
                } else {
                    "large-batch"
                }
            ),
            measured: format!(
                "width around SB {:.3} / around LB {:.3} (alpha units)",
                widths[0], widths[1]
            ),
            paper: if sb_wider_expected {
                "SB looks wider".into()
            } else {
                "LB looks wider".into()
            },
            verdict: Verdict::of((widths[0] > widths[1]) == sb_wider_expected),
        });
        let paper = vgg9_test_error(wd, true).zip(vgg9_test_error(wd, false));
        checks.push(Check {
            claim: "claim 2".into(),
            check: format!("WD={wd}: small batch generalizes better whatever the plot suggests"),
            measured: format!(
                "test error SB {:.2}% / LB {:.2}%",
                small.test_error(),
                large.test_error()
            ),
            paper: paper.map_or("SB better".into(), |(s, l)| format!("SB {s}% / LB {l}%")),
            verdict: Verdict::of(small.test_error() < large.test_error()),
        });
    }
    Figure::grid(rows.max(1), 3, panels)
        .with_title("Figure 2: small vs large batch, interpolation (left), weight norm (middle), weights (right)")
        .save(&out.join("figure2"))?;
    Ok(Product {
        summary,
        checks,
        measures: vec![
            (
                "weight_l2",
                "L2 norm of all learnable parameters after the last epoch (metrics.csv)",
            ),
            (
                "interp_width_at_plus_0.5",
                "length of the interval of alpha around the run's end of the interpolation (0 for small batch, 1 for large) where the training loss stays within 0.5 of its value there",
            ),
            (
                "weight norm growth",
                "share of epochs in which the weight norm did not decrease",
            ),
        ],
        tables: Vec::new(),
        figures: vec!["figure2.png".into(), "figure2.svg".into()],
    })
}

fn norm_panel(title: &str, runs: &[&RunResult]) -> LinePanel {
    let series = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let epochs = r.metrics.iter().map(|m| m.epoch as f64).collect();
            let norms = r.metrics.iter().map(|m| m.weight_l2).collect();
            Series::new(format!("BS {}", r.batch_size()), epochs, norms).colour(i)
        })
        .collect();
    LinePanel::new(
        Labels::new(title, "epoch", "L2 norm of the weights"),
        series,
    )
}
