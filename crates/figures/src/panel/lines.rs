//! Curves against a shared x axis, optionally on twin y axes: loss on the left and accuracy on
//! the right, train solid and test dashed (the paper's figures 2 and 3), or weight norms per epoch.

use super::Labels;
use super::frame::{self, Area, Backend};
use crate::levels::format_value;
use crate::{colour, font};
use anyhow::{Result, ensure};
use plotters::chart::{DualCoordChartContext, SeriesAnno};
use plotters::coord::types::RangedCoordf64;
use plotters::element::{DashedPathElement, Drawable, PathElement, PointCollection};
use plotters::prelude::Cartesian2d;
use plotters::style::{BLACK, Color, RGBColor};
use std::ops::Range;

/// A chart with a left and a right y axis over one x axis.
type DualChart<'a, DB> = DualCoordChartContext<
    'a,
    DB,
    Cartesian2d<RangedCoordf64, RangedCoordf64>,
    Cartesian2d<RangedCoordf64, RangedCoordf64>,
>;

/// Dash and gap lengths of dashed lines, in pixels.
const DASH: i32 = 9;
const GAP: i32 = 6;

/// How a series' line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineStyle {
    /// A continuous line (the paper's training curves).
    #[default]
    Solid,
    /// A dashed line (the paper's test curves).
    Dashed,
}

/// Which y axis a series is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YAxis {
    /// The left axis (e.g. loss).
    #[default]
    Left,
    /// The right axis (e.g. accuracy in %); drawn only when some series uses it.
    Right,
}

/// One curve: y against x, with how and where to draw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text; an empty label keeps the series out of the legend.
    pub label: String,
    /// Abscissae, as many as `y`.
    pub x: Vec<f64>,
    /// Ordinates; non-finite values leave a gap in the line.
    pub y: Vec<f64>,
    /// Solid or dashed.
    pub style: LineStyle,
    /// Left or right y axis.
    pub axis: YAxis,
    /// Palette colour number; `None` uses the series' position in the panel.
    pub colour: Option<usize>,
}

impl Series {
    /// A solid series on the left axis with the default colour.
    pub fn new(label: impl Into<String>, x: Vec<f64>, y: Vec<f64>) -> Self {
        Self {
            label: label.into(),
            x,
            y,
            style: LineStyle::Solid,
            axis: YAxis::Left,
            colour: None,
        }
    }

    /// The same series drawn dashed.
    pub fn dashed(self) -> Self {
        Self {
            style: LineStyle::Dashed,
            ..self
        }
    }

    /// The same series measured on the right axis.
    pub fn on_right(self) -> Self {
        Self {
            axis: YAxis::Right,
            ..self
        }
    }

    /// The same series in palette colour `index` (so train and test curves can share a colour).
    pub fn colour(self, index: usize) -> Self {
        Self {
            colour: Some(index),
            ..self
        }
    }
}

/// Curves on a left axis and optionally a right one, with vertical marker lines.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePanel {
    /// Title, x label and left y label.
    pub labels: Labels,
    /// Label of the right y axis, used when some series is on the right.
    pub right_label: String,
    /// The curves.
    pub series: Vec<Series>,
    /// x positions of thin vertical lines (e.g. epochs where the learning rate decays).
    pub markers: Vec<f64>,
    /// Legend text for the marker lines; empty keeps them out of the legend.
    pub marker_label: String,
    /// Top of the left axis: curves on it above this leave the frame there (`None`: the
    /// data's range).
    pub left_max: Option<f64>,
}

impl LinePanel {
    /// A panel of `series` with a single (left) y axis and no markers.
    pub fn new(labels: Labels, series: Vec<Series>) -> Self {
        Self {
            labels,
            right_label: String::new(),
            series,
            markers: Vec::new(),
            marker_label: String::new(),
            left_max: None,
        }
    }

    /// The same panel with the left axis ending at `max`, as the paper's 1-D plots end their
    /// loss axis: a curve above it is drawn up to where it crosses the top of the frame.
    pub fn with_left_max(self, max: f64) -> Self {
        Self {
            left_max: Some(max),
            ..self
        }
    }

    /// The same panel with a right y axis labelled `label`.
    pub fn with_right_label(self, label: impl Into<String>) -> Self {
        Self {
            right_label: label.into(),
            ..self
        }
    }

    /// The same panel with vertical lines at `positions`, named `label` in the legend.
    pub fn with_markers(self, positions: Vec<f64>, label: impl Into<String>) -> Self {
        Self {
            markers: positions,
            marker_label: label.into(),
            ..self
        }
    }

    pub(crate) fn draw<DB: Backend>(&self, area: &Area<DB>) -> Result<()> {
        for s in &self.series {
            ensure!(
                s.x.len() == s.y.len(),
                "series '{}' has {} x but {} y values",
                s.label,
                s.x.len(),
                s.y.len()
            );
        }
        let runs: Vec<Vec<Vec<(f64, f64)>>> = self
            .series
            .iter()
            .map(|s| {
                let cap = match s.axis {
                    YAxis::Left => self.left_max.unwrap_or(f64::INFINITY),
                    YAxis::Right => f64::INFINITY,
                };
                finite_runs(s, cap)
            })
            .collect();
        let points = |axis| {
            let on_axis = self
                .series
                .iter()
                .zip(&runs)
                .filter(move |(s, _)| s.axis == axis);
            on_axis.flat_map(|(_, r)| r.iter().flatten().copied())
        };
        let has_right = self.series.iter().any(|s| s.axis == YAxis::Right);
        let all_x = points(YAxis::Left).chain(points(YAxis::Right)).map(|p| p.0);
        let x_data = frame::finite_range(all_x.chain(self.markers.iter().copied()));
        let x = frame::padded(x_data, 0.0);
        let left = frame::padded(frame::finite_range(points(YAxis::Left).map(|p| p.1)), 0.05);
        let right = frame::padded(frame::finite_range(points(YAxis::Right).map(|p| p.1)), 0.05);

        let area = frame::titled(area, &self.labels.title)?;
        let mut chart = frame::builder(&area)
            .right_y_label_area_size(if has_right { frame::Y_LABEL_AREA } else { 0 })
            .build_cartesian_2d(x.clone(), left.clone())?
            .set_secondary_coord(x.clone(), right.clone());
        frame::draw_axes(&mut chart, &self.labels.x, &self.labels.y)?;
        if has_right {
            chart
                .configure_secondary_axes()
                .y_desc(&self.right_label)
                .y_label_formatter(&|v| format_value(*v))
                .label_style(font::text(font::TICK_LABEL))
                .axis_desc_style(font::text(font::AXIS_LABEL))
                .draw()?;
        }
        self.draw_markers(&mut chart, &left)?;
        for (i, (s, runs)) in self.series.iter().zip(&runs).enumerate() {
            draw_series(&mut chart, s, runs, colour::series(s.colour.unwrap_or(i)))?;
        }

        let entries = self.series.iter().filter(|s| !s.label.is_empty()).count()
            + usize::from(!self.marker_label.is_empty());
        if entries > 0 {
            let mut covered = Vec::new();
            for (s, runs) in self.series.iter().zip(&runs) {
                let y = if s.axis == YAxis::Left { &left } else { &right };
                let dense = runs.iter().flat_map(|run| frame::densify(run));
                covered.extend(
                    dense.map(|(px, py)| (frame::fraction(px, &x), frame::fraction(py, y))),
                );
            }
            frame::draw_legend(&mut chart, frame::legend_position(&covered, entries))?;
        }
        Ok(())
    }

    /// Thin vertical lines spanning the left axis' range.
    fn draw_markers<'a, DB: Backend + 'a>(
        &self,
        chart: &mut DualChart<'a, DB>,
        left: &Range<f64>,
    ) -> Result<()> {
        let style = BLACK.mix(0.35).stroke_width(1);
        let markers = self.markers.iter().filter(|m| m.is_finite());
        let lines = markers.map(|&m| PathElement::new(vec![(m, left.start), (m, left.end)], style));
        let drawn = chart.draw_series(lines)?;
        if !self.marker_label.is_empty() {
            drawn.label(&self.marker_label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + frame::LEGEND_LINE, y)], style)
            });
        }
        Ok(())
    }
}

/// Draws one series (its finite `runs`) in `colour`, with its legend entry.
fn draw_series<'a, DB: Backend + 'a>(
    chart: &mut DualChart<'a, DB>,
    s: &Series,
    runs: &[Vec<(f64, f64)>],
    colour: RGBColor,
) -> Result<()> {
    let style = colour.stroke_width(2);
    let runs = runs.iter().cloned();
    let drawn = match s.style {
        LineStyle::Solid => draw_on(chart, s.axis, runs.map(|run| PathElement::new(run, style)))?,
        LineStyle::Dashed => {
            let dashed = runs.map(|run| DashedPathElement::new(run, DASH, GAP, style));
            draw_on(chart, s.axis, dashed)?
        }
    };
    if s.label.is_empty() {
        return Ok(());
    }
    drawn.label(&s.label);
    let sample = move |(x, y): (i32, i32)| vec![(x, y), (x + frame::LEGEND_LINE, y)];
    match s.style {
        LineStyle::Solid => drawn.legend(move |p| PathElement::new(sample(p), style)),
        LineStyle::Dashed => drawn.legend(move |p| {
            DashedPathElement::new(
                sample(p),
                frame::LEGEND_LINE / 3,
                frame::LEGEND_LINE / 6,
                style,
            )
        }),
    };
    Ok(())
}

/// The series split at non-finite points, so a diverged epoch shows as a gap.
fn finite_runs(s: &Series, cap: f64) -> Vec<Vec<(f64, f64)>> {
    let points: Vec<(f64, f64)> = s.x.iter().zip(&s.y).map(|(&x, &y)| (x, y)).collect();
    points
        .split(|(x, y)| !(x.is_finite() && y.is_finite()))
        .flat_map(|run| runs_below(run, cap))
        .filter(|run| !run.is_empty())
        .collect()
}

/// The stretches of the polyline `points` at or below `cap`, each extended to where the line
/// crosses `cap` (linear between points).
fn runs_below(points: &[(f64, f64)], cap: f64) -> Vec<Vec<(f64, f64)>> {
    let crossing =
        |(x0, y0): (f64, f64), (x1, y1): (f64, f64)| (x0 + (x1 - x0) * (cap - y0) / (y1 - y0), cap);
    let mut runs = vec![Vec::new()];
    for (i, &p) in points.iter().enumerate() {
        let previous = i.checked_sub(1).map(|j| points[j]);
        let current = runs.last_mut().expect("a run");
        match (previous, p.1 <= cap) {
            (Some(q), true) if q.1 > cap => current.push(crossing(q, p)),
            (Some(q), false) if q.1 <= cap => {
                current.push(crossing(q, p));
                runs.push(Vec::new());
            }
            _ => {}
        }
        if p.1 <= cap {
            runs.last_mut().expect("a run").push(p);
        }
    }
    runs
}

/// Draws `elements` against the left or the right y axis.
fn draw_on<'c, 'a, DB, E>(
    chart: &'c mut DualChart<'a, DB>,
    axis: YAxis,
    elements: impl Iterator<Item = E>,
) -> Result<&'c mut SeriesAnno<'a, DB>>
where
    DB: Backend + 'a,
    E: Drawable<DB>,
    for<'b> &'b E: PointCollection<'b, (f64, f64)>,
{
    Ok(match axis {
        YAxis::Left => chart.draw_series(elements)?,
        YAxis::Right => chart.draw_secondary_series(elements)?,
    })
}

#[cfg(test)]
mod tests {
    use super::runs_below;

    #[test]
    fn curves_above_the_cap_end_where_they_cross_it() {
        let points = [(0.0, 1.0), (1.0, 3.0), (2.0, 9.0), (3.0, 1.0), (4.0, 2.0)];
        let runs = runs_below(&points, 5.0);
        assert_eq!(
            runs,
            vec![
                vec![(0.0, 1.0), (1.0, 3.0), (1.0 + 2.0 / 6.0, 5.0)],
                vec![(2.0 + 4.0 / 8.0, 5.0), (3.0, 1.0), (4.0, 2.0)],
            ]
        );
        assert_eq!(runs_below(&points, f64::INFINITY), vec![points.to_vec()]);
    }
}
