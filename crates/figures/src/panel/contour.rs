//! Contour lines or filled contours of a [`Grid2d`], with level labels, a colour bar and an
//! optional optimizer path (the paper's 2-D loss contours and trajectory plots).

use super::Labels;
use super::colourbar::{self, ColourScale};
use super::frame::{self, Area, Backend, Chart2d};
use crate::bands::band_polygons;
use crate::grid::Grid2d;
use crate::levels::format_value;
use crate::marching_squares::{ContourLine, Point, contour_lines};
use crate::{colour, font};
use anyhow::{Result, ensure};
use plotters::element::{Circle, EmptyElement, PathElement, Polygon, Rectangle, Text};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, WHITE};
use std::ops::Range;

/// How the levels are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContourStyle {
    /// Lines coloured by level; `label_levels` writes each level's value on its lines
    /// (as matplotlib's `clabel`).
    Lines {
        /// Whether to write level values on the lines.
        label_levels: bool,
    },
    /// Flat colours between consecutive levels; values outside the levels stay blank.
    Filled,
}

/// A polyline drawn over the contours, with dots at chosen points (e.g. an optimizer
/// trajectory projected on PCA directions, dotted where the learning rate decays).
#[derive(Debug, Clone, PartialEq)]
pub struct PathOverlay {
    /// The path's vertices in (x, y) plot coordinates; non-finite points are skipped.
    pub points: Vec<Point>,
    /// Indices into `points` that get a dot.
    pub markers: Vec<usize>,
    /// Legend text; empty keeps the path out of the legend.
    pub label: String,
}

/// Contours of a grid at given levels.
#[derive(Debug, Clone, PartialEq)]
pub struct ContourPanel {
    /// Title and axis labels (e.g. "PC1: 62.3 %" for trajectory plots).
    pub labels: Labels,
    /// The surface.
    pub grid: Grid2d,
    /// Contour levels, finite and strictly increasing (see [`crate::paper_levels`]).
    pub levels: Vec<f64>,
    /// Lines or filled bands.
    pub style: ContourStyle,
    /// `Some(label)` draws a colour bar with that label.
    pub colourbar: Option<String>,
    /// An optional path drawn on top.
    pub path: Option<PathOverlay>,
}

/// Level labels need this much line (in pixels, times the label width) to sit on.
const LINE_PER_LABEL_WIDTH: f64 = 3.0;
/// Where along a line a level label is tried, as fractions of its length.
const LABEL_POSITIONS: [f64; 3] = [0.5, 0.25, 0.75];

impl ContourPanel {
    /// Labelled contour lines without a colour bar, as the paper's contour plots.
    pub fn lines(labels: Labels, grid: Grid2d, levels: Vec<f64>) -> Self {
        let style = ContourStyle::Lines { label_levels: true };
        Self {
            labels,
            grid,
            levels,
            style,
            colourbar: None,
            path: None,
        }
    }

    /// Filled contours with a colour bar labelled `colourbar_label`.
    pub fn filled(
        labels: Labels,
        grid: Grid2d,
        levels: Vec<f64>,
        colourbar_label: impl Into<String>,
    ) -> Self {
        let colourbar = Some(colourbar_label.into());
        Self {
            labels,
            grid,
            levels,
            style: ContourStyle::Filled,
            colourbar,
            path: None,
        }
    }

    /// The same panel with a colour bar labelled `label`.
    pub fn with_colourbar(self, label: impl Into<String>) -> Self {
        Self {
            colourbar: Some(label.into()),
            ..self
        }
    }

    /// The same panel with `path` drawn on top.
    pub fn with_path(self, path: PathOverlay) -> Self {
        Self {
            path: Some(path),
            ..self
        }
    }

    pub(crate) fn draw<DB: Backend>(&self, area: &Area<DB>) -> Result<()> {
        self.check_levels()?;
        let area = frame::titled(area, &self.labels.title)?;
        let (chart_area, bar_area) = match self.colourbar {
            Some(_) => {
                let (chart, bar) = colourbar::split(&area);
                (chart, Some(bar))
            }
            None => (area, None),
        };
        let (x, y) = self.ranges();
        let mut chart = frame::chart_2d(&chart_area, x, y)?;
        frame::draw_axes(&mut chart, &self.labels.x, &self.labels.y)?;
        let levels = &self.levels;
        let scale = match self.style {
            ContourStyle::Lines { .. } => {
                ColourScale::Continuous(levels[0], levels[levels.len() - 1])
            }
            ContourStyle::Filled => ColourScale::Bands(levels),
        };
        match self.style {
            ContourStyle::Filled => {
                let polygons = band_polygons(&self.grid, levels);
                chart.draw_series(polygons.into_iter().map(|p| {
                    let middle = (levels[p.band] + levels[p.band + 1]) / 2.0;
                    Polygon::new(p.points, scale.colour(middle).filled())
                }))?;
            }
            ContourStyle::Lines { label_levels } => {
                let lines: Vec<(f64, Vec<ContourLine>)> = levels
                    .iter()
                    .map(|&l| (l, contour_lines(&self.grid, l)))
                    .collect();
                for (level, level_lines) in &lines {
                    let style = scale.colour(*level).stroke_width(1);
                    let paths = level_lines
                        .iter()
                        .map(|l| PathElement::new(l.points.clone(), style));
                    chart.draw_series(paths)?;
                }
                if label_levels {
                    draw_level_labels(&mut chart, &lines)?;
                }
            }
        }
        if let Some(path) = &self.path {
            draw_path(&mut chart, path)?;
        }
        if let (Some(bar_area), Some(label)) = (bar_area, &self.colourbar) {
            colourbar::draw(&bar_area, scale, label)?;
        }
        Ok(())
    }

    fn check_levels(&self) -> Result<()> {
        let needed = if self.style == ContourStyle::Filled {
            2
        } else {
            1
        };
        let title = &self.labels.title;
        ensure!(
            self.levels.len() >= needed,
            "contour panel '{title}' needs at least {needed} levels"
        );
        ensure!(
            self.levels.iter().all(|l| l.is_finite())
                && self.levels.windows(2).all(|w| w[0] < w[1]),
            "contour levels of '{title}' must be finite and strictly increasing"
        );
        Ok(())
    }

    /// The x and y ranges shown: the grid's, stretched to take in the whole path.
    fn ranges(&self) -> (Range<f64>, Range<f64>) {
        let path = self
            .path
            .iter()
            .flat_map(|p| &p.points)
            .filter(|p| p.0.is_finite() && p.1.is_finite());
        let x = frame::union(
            Some(self.grid.x_range()),
            frame::finite_range(path.clone().map(|p| p.0)),
        );
        let y = frame::union(
            Some(self.grid.y_range()),
            frame::finite_range(path.map(|p| p.1)),
        );
        (frame::padded(x, 0.0), frame::padded(y, 0.0))
    }
}

/// The path in red, dots at its markers, and a legend entry placed off the path.
fn draw_path<'a, DB: Backend + 'a>(chart: &mut Chart2d<'a, DB>, path: &PathOverlay) -> Result<()> {
    let colour = colour::series(3);
    let finite = |p: &&Point| p.0.is_finite() && p.1.is_finite();
    let points: Vec<Point> = path.points.iter().filter(finite).copied().collect();
    let drawn = chart.draw_series([PathElement::new(points.clone(), colour.stroke_width(2))])?;
    if !path.label.is_empty() {
        drawn.label(&path.label).legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new(
                    vec![(0, 0), (frame::LEGEND_LINE, 0)],
                    colour.stroke_width(2),
                )
                + Circle::new((frame::LEGEND_LINE / 2, 0), 4, colour.filled())
        });
    }
    let dots = path
        .markers
        .iter()
        .filter_map(|&i| path.points.get(i))
        .filter(finite);
    chart.draw_series(dots.map(|&p| Circle::new(p, 5, colour.filled())))?;
    if !path.label.is_empty() {
        let (x, y) = (chart.x_range(), chart.y_range());
        let along: Vec<Point> = frame::densify(&points)
            .into_iter()
            .map(|(px, py)| (frame::fraction(px, &x), frame::fraction(py, &y)))
            .collect();
        frame::draw_legend(chart, frame::legend_position(&along, 1))?;
    }
    Ok(())
}

/// Writes each level's value on its longer lines, on a white patch that breaks the line, as
/// matplotlib's `clabel` does, skipping places where a label would overlap another or the frame.
fn draw_level_labels<'a, DB: Backend + 'a>(
    chart: &mut Chart2d<'a, DB>,
    lines: &[(f64, Vec<ContourLine>)],
) -> Result<()> {
    let style = font::text(font::TICK_LABEL).pos(Pos::new(HPos::Center, VPos::Center));
    let (frame_x, frame_y) = chart.plotting_area().get_pixel_range();
    let mut taken: Vec<[i32; 4]> = Vec::new();
    let mut labels = Vec::new();
    for (level, level_lines) in lines {
        let text = format_value(*level);
        let (w, h) = chart.plotting_area().estimate_text_size(&text, &style)?;
        let (half_w, half_h) = (w as i32 / 2 + 3, h as i32 / 2 + 2);
        for line in level_lines {
            let pixels: Vec<(i32, i32)> =
                line.points.iter().map(|p| chart.backend_coord(p)).collect();
            let along = cumulative_length(&pixels);
            let total = along.last().copied().unwrap_or(0.0);
            if total < LINE_PER_LABEL_WIDTH * w as f64 {
                continue;
            }
            let spot = LABEL_POSITIONS.iter().find_map(|&f| {
                let i = along
                    .partition_point(|&d| d < f * total)
                    .min(pixels.len() - 1);
                let (cx, cy) = pixels[i];
                let rect = [cx - half_w, cy - half_h, cx + half_w, cy + half_h];
                let inside = frame_x.contains(&rect[0])
                    && frame_x.contains(&rect[2])
                    && frame_y.contains(&rect[1])
                    && frame_y.contains(&rect[3]);
                (inside && !taken.iter().any(|t| overlaps(t, &rect))).then_some((i, rect))
            });
            if let Some((i, rect)) = spot {
                taken.push(rect);
                labels.push((line.points[i], text.clone(), (half_w, half_h)));
            }
        }
    }
    chart.draw_series(labels.into_iter().map(|(at, text, (half_w, half_h))| {
        EmptyElement::at(at)
            + Rectangle::new([(-half_w, -half_h), (half_w, half_h)], WHITE.filled())
            + Text::new(text, (0, 0), style.clone())
    }))?;
    Ok(())
}

fn cumulative_length(pixels: &[(i32, i32)]) -> Vec<f64> {
    let mut total = 0.0;
    let mut along = vec![0.0];
    for w in pixels.windows(2) {
        total += (((w[1].0 - w[0].0) as f64).powi(2) + ((w[1].1 - w[0].1) as f64).powi(2)).sqrt();
        along.push(total);
    }
    along
}

fn overlaps(a: &[i32; 4], b: &[i32; 4]) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}
