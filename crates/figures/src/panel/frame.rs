//! What every 2-D panel shares: the backend bound, ranges, title, axes and legend styling.

use crate::font;
use crate::levels::format_value;
use anyhow::Result;
use plotters::chart::{ChartBuilder, ChartContext, SeriesLabelPosition};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::{Cartesian2d, DrawingArea, DrawingBackend};
use plotters::style::{BLACK, Color, TRANSPARENT, WHITE};
use std::ops::Range;

/// A plotters backend whose errors can travel in an `anyhow::Error` (both ours do).
pub(crate) trait Backend: DrawingBackend<ErrorType: 'static> {}
impl<T: DrawingBackend<ErrorType: 'static>> Backend for T {}

/// A rectangle of the picture in pixel coordinates.
pub(crate) type Area<DB> = DrawingArea<DB, Shift>;

/// A 2-D chart with `f64` axes.
pub(crate) type Chart2d<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Gap around every chart, in pixels.
pub(crate) const MARGIN: u32 = 12;
/// Height of the band under a chart holding x tick labels and the x axis label.
pub(crate) const X_LABEL_AREA: u32 = 52;
/// Width of the band beside a chart holding y tick labels and the y axis label.
pub(crate) const Y_LABEL_AREA: u32 = 76;
/// Length of the sample line (or patch) in front of each legend entry, in pixels.
pub(crate) const LEGEND_LINE: i32 = 24;

/// (min, max) of the finite values, or `None` when there are none.
pub(crate) fn finite_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| {
            Some(acc.map_or((v, v), |(lo, hi): (f64, f64)| (lo.min(v), hi.max(v))))
        })
}

/// The union of two optional ranges.
pub(crate) fn union(a: Option<(f64, f64)>, b: Option<(f64, f64)>) -> Option<(f64, f64)> {
    finite_range([a, b].into_iter().flatten().flat_map(|(lo, hi)| [lo, hi]))
}

/// `range` widened by `fraction` of its width on each side, so extreme points are not drawn
/// on the frame; an empty range is widened to something drawable, a missing one becomes [0, 1].
pub(crate) fn padded(range: Option<(f64, f64)>, fraction: f64) -> Range<f64> {
    match range {
        None => 0.0..1.0,
        Some((lo, hi)) if hi > lo => {
            let pad = (hi - lo) * fraction;
            lo - pad..hi + pad
        }
        Some((v, _)) => {
            let pad = if v == 0.0 { 0.5 } else { v.abs() * 0.1 };
            v - pad..v + pad
        }
    }
}

/// The part of `area` under a panel title.
pub(crate) fn titled<DB: Backend>(area: &Area<DB>, title: &str) -> Result<Area<DB>> {
    Ok(area.titled(title, font::text(font::PANEL_TITLE))?)
}

/// A chart builder on `area` with room for tick labels and axis labels below and left.
pub(crate) fn builder<'a, 'b, DB: Backend>(area: &'a Area<DB>) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(MARGIN)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA);
    builder
}

/// A 2-D chart filling `area`, laid out by [`builder`].
pub(crate) fn chart_2d<'a, DB: Backend>(
    area: &'a Area<DB>,
    x: Range<f64>,
    y: Range<f64>,
) -> Result<Chart2d<'a, DB>> {
    Ok(builder(area).build_cartesian_2d(x, y)?)
}

/// Draws the axes, faint grid lines, tick labels and axis labels of `chart`.
pub(crate) fn draw_axes<DB: Backend>(
    chart: &mut Chart2d<'_, DB>,
    x_label: &str,
    y_label: &str,
) -> Result<()> {
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|v| format_value(*v))
        .y_label_formatter(&|v| format_value(*v))
        .label_style(font::text(font::TICK_LABEL))
        .axis_desc_style(font::text(font::AXIS_LABEL))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .draw()?;
    Ok(())
}

/// Where `value` lies in `range`, as a fraction of its width.
pub(crate) fn fraction(value: f64, range: &Range<f64>) -> f64 {
    (value - range.start) / (range.end - range.start)
}

/// The place in the plot (a corner, else the middle of a side) where a legend of `entries`
/// lines hides the fewest of `points`, given as fractions of the plot's width and height.
pub(crate) fn legend_position(points: &[(f64, f64)], entries: usize) -> SeriesLabelPosition {
    // Roughly the legend's share of a panel: 40 % of the width, a line per entry.
    let (width, height) = (0.4, (0.07 * entries as f64 + 0.05).min(1.0));
    let (left, right) = (0.0..width, 1.0 - width..1.0);
    let (top, bottom, middle) = (
        1.0 - height..1.0,
        0.0..height,
        0.5 - height / 2.0..0.5 + height / 2.0,
    );
    let places = [
        (SeriesLabelPosition::UpperRight, &right, &top),
        (SeriesLabelPosition::UpperLeft, &left, &top),
        (SeriesLabelPosition::LowerRight, &right, &bottom),
        (SeriesLabelPosition::LowerLeft, &left, &bottom),
        (SeriesLabelPosition::MiddleRight, &right, &middle),
        (SeriesLabelPosition::MiddleLeft, &left, &middle),
    ];
    let hidden = |x: &Range<f64>, y: &Range<f64>| {
        points
            .iter()
            .filter(|(px, py)| x.contains(px) && y.contains(py))
            .count()
    };
    let best = places
        .iter()
        .min_by_key(|(_, x, y)| hidden(x, y))
        .expect("places to choose from");
    best.0.clone()
}

/// `points` with extra points along each segment, so a line crossing a corner between its
/// vertices still counts as being there.
pub(crate) fn densify(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    const STEPS: usize = 8;
    let mut dense: Vec<(f64, f64)> = points
        .windows(2)
        .flat_map(|w| {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            (0..STEPS).map(move |k| {
                let t = k as f64 / STEPS as f64;
                (x0 + t * (x1 - x0), y0 + t * (y1 - y0))
            })
        })
        .collect();
    dense.extend(points.last());
    dense
}

/// Draws the legend of every labelled series of `chart` at `position`.
pub(crate) fn draw_legend<'a, DB: Backend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(font::text(font::TICK_LABEL))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_skip_non_finite_values_and_pad() {
        assert_eq!(
            finite_range([3.0, f64::NAN, -1.0, f64::INFINITY]),
            Some((-1.0, 3.0))
        );
        assert_eq!(finite_range([f64::NAN]), None);
        assert_eq!(padded(Some((0.0, 10.0)), 0.05), -0.5..10.5);
        assert_eq!(padded(Some((2.0, 2.0)), 0.05), 1.8..2.2);
        assert_eq!(padded(None, 0.05), 0.0..1.0);
        assert_eq!(
            union(Some((0.0, 1.0)), Some((-2.0, 0.5))),
            Some((-2.0, 1.0))
        );
    }

    #[test]
    fn legend_goes_where_the_data_is_not() {
        let falling = densify(&[(0.0, 1.0), (1.0, 0.0)]);
        assert!(matches!(
            legend_position(&falling, 2),
            SeriesLabelPosition::UpperRight
        ));
        let rising = densify(&[(0.0, 0.0), (1.0, 1.0)]);
        assert!(matches!(
            legend_position(&rising, 2),
            SeriesLabelPosition::UpperLeft
        ));
        assert!(matches!(
            legend_position(&[], 2),
            SeriesLabelPosition::UpperRight
        ));
        assert_eq!(densify(&[(0.0, 0.0), (1.0, 2.0)]).len(), 9);
    }
}
