//! Panels shared by the paper's figures.

use crate::collect::{Curve, RunResult};
use landscape_figures::{
    ContourPanel, Grid2d, Labels, LinePanel, Series, SurfacePanel, ZTransform, paper_levels,
};

/// Top of the loss axis of 1-D plots, as in the paper's figures 2 and 3 (the tables keep every
/// value; extrapolated BatchNorm statistics can send the loss to 1e19 at the ends).
pub const LOSS_AXIS_MAX: f64 = 5.0;

/// A 1-D plot as the paper draws it: loss on the left axis (0 to [`LOSS_AXIS_MAX`] at most),
/// accuracy on the right, train solid, test dashed.
pub fn curve_panel(title: &str, x_label: &str, curve: &Curve) -> LinePanel {
    let mut series =
        vec![Series::new("train loss", curve.x.clone(), curve.train_loss.clone()).colour(0)];
    if !curve.test_loss.is_empty() {
        series.push(
            Series::new("test loss", curve.x.clone(), curve.test_loss.clone())
                .dashed()
                .colour(0),
        );
    }
    series.push(
        Series::new("train accuracy", curve.x.clone(), curve.train_acc.clone())
            .on_right()
            .colour(1),
    );
    if !curve.test_acc.is_empty() {
        series.push(
            Series::new("test accuracy", curve.x.clone(), curve.test_acc.clone())
                .on_right()
                .dashed()
                .colour(1),
        );
    }
    LinePanel::new(Labels::new(title, x_label, "loss"), series)
        .with_right_label("accuracy (%)")
        .with_left_max(LOSS_AXIS_MAX)
}

/// A 1-D plot of several random directions through one minimum: the first as
/// [`curve_panel`] draws it, and the others' training losses beside it in grey, so the panel
/// shows every curve a check averages over.
pub fn curves_panel(title: &str, x_label: &str, curves: &[Curve]) -> LinePanel {
    let Some((first, others)) = curves.split_first() else {
        return LinePanel::new(Labels::new(title, x_label, "loss"), Vec::new());
    };
    let mut panel = curve_panel(title, x_label, first);
    for (k, curve) in others.iter().enumerate() {
        let label = match k {
            0 => format!("train loss, directions 2-{}", curves.len()),
            _ => String::new(),
        };
        panel
            .series
            .push(Series::new(label, curve.x.clone(), curve.train_loss.clone()).colour(GREY));
    }
    panel
}

/// The palette index (tab10's grey) the other directions are drawn in.
const GREY: usize = 7;

/// Contour lines at the paper's levels (0.1 to 10 in steps of 0.5).
pub fn contour_panel(title: &str, grid: Grid2d) -> ContourPanel {
    ContourPanel::lines(
        Labels::new(title, "x (filter-normalized)", "y (filter-normalized)"),
        grid,
        paper_levels(),
    )
}

/// Losses above this are drawn at it in the 3-D figures: the top of the paper's contour levels,
/// above which the walls of a no-skip network (1e3 and more at the corners) would flatten its
/// basin to a point.
pub const LOSS_CLIP: f64 = 10.0;

/// A 3-D surface as the paper's figures 1 and 4 draw it: z = ln(loss + 0.1), the loss clipped
/// at [`LOSS_CLIP`] (a diverged, NaN loss is drawn at the clip too: it is a wall, not a gap).
pub fn surface_3d_panel(title: &str, grid: &Grid2d) -> SurfacePanel {
    SurfacePanel::new(
        Labels::new(title, "x (filter-normalized)", "y (filter-normalized)"),
        grid.map(|z| z.min(LOSS_CLIP)),
        "loss",
    )
    .with_transform(ZTransform::PAPER_LOG)
}

/// `WD=0.0005, BS=128, test error 6.00%`: how the paper titles each run's panel.
pub fn run_title(run: &RunResult) -> String {
    format!(
        "WD={}, BS={}, test error {:.2}%",
        run.record.config.train.weight_decay,
        run.batch_size(),
        run.test_error()
    )
}
