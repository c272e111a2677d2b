//! A grid's values as colours, with a colour bar (e.g. |lambda_min / lambda_max| maps).

use super::Labels;
use super::colourbar::{self, ColourScale};
use super::frame::{self, Area, Backend};
use crate::grid::Grid2d;
use anyhow::{Result, ensure};
use plotters::element::Rectangle;
use plotters::style::Color;

/// Each grid value painted over the rectangle around its point; non-finite values stay blank.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapPanel {
    /// Title and axis labels.
    pub labels: Labels,
    /// The values.
    pub grid: Grid2d,
    /// Label of the colour bar (what the colours measure).
    pub value_label: String,
    /// (low, high) mapped to the ends of the colour map; `None` uses the grid's finite range.
    /// Values outside take the end colours.
    pub range: Option<(f64, f64)>,
}

impl HeatmapPanel {
    /// A heat map over the grid's own value range.
    pub fn new(labels: Labels, grid: Grid2d, value_label: impl Into<String>) -> Self {
        Self {
            labels,
            grid,
            value_label: value_label.into(),
            range: None,
        }
    }

    /// The same heat map with colours stretched over `low..=high`.
    pub fn with_range(self, low: f64, high: f64) -> Self {
        Self {
            range: Some((low, high)),
            ..self
        }
    }

    pub(crate) fn draw<DB: Backend>(&self, area: &Area<DB>) -> Result<()> {
        let range = match self.range {
            Some((low, high)) => {
                ensure!(
                    low.is_finite() && high.is_finite() && low < high,
                    "heat map range {low}..{high} is empty"
                );
                (low, high)
            }
            None => self.grid.min().zip(self.grid.max()).unwrap_or((0.0, 1.0)),
        };
        let scale = ColourScale::Continuous(range.0, range.1);
        let area = frame::titled(area, &self.labels.title)?;
        let (chart_area, bar_area) = colourbar::split(&area);
        let (x_edges, y_edges) = (cell_edges(self.grid.x()), cell_edges(self.grid.y()));
        let x = x_edges[0]..x_edges[x_edges.len() - 1];
        let y = y_edges[0]..y_edges[y_edges.len() - 1];
        let mut chart = frame::chart_2d(&chart_area, x, y)?;
        frame::draw_axes(&mut chart, &self.labels.x, &self.labels.y)?;
        let cells = (0..self.grid.ny()).flat_map(|iy| (0..self.grid.nx()).map(move |ix| (ix, iy)));
        let painted = cells
            .filter(|&(ix, iy)| self.grid.get(ix, iy).is_finite())
            .map(|(ix, iy)| {
                let corners = [
                    (x_edges[ix], y_edges[iy]),
                    (x_edges[ix + 1], y_edges[iy + 1]),
                ];
                Rectangle::new(corners, scale.colour(self.grid.get(ix, iy)).filled())
            });
        chart.draw_series(painted)?;
        colourbar::draw(&bar_area, scale, &self.value_label)
    }
}

/// Boundaries of the cells around each coordinate: midway between neighbours, and half a
/// spacing beyond the ends.
fn cell_edges(coords: &[f64]) -> Vec<f64> {
    let n = coords.len();
    let mut edges = Vec::with_capacity(n + 1);
    edges.push(coords[0] - (coords[1] - coords[0]) / 2.0);
    edges.extend(coords.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    edges.push(coords[n - 1] + (coords[n - 1] - coords[n - 2]) / 2.0);
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_edges_surround_each_coordinate() {
        assert_eq!(cell_edges(&[0.0, 1.0, 3.0]), vec![-0.5, 0.5, 2.0, 4.0]);
    }
}
