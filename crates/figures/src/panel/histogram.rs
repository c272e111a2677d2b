//! Overlaid histograms on shared bins (e.g. weights of a small-batch and a large-batch model).

use super::Labels;
use super::frame::{self, Area, Backend};
use crate::colour;
use crate::grid::linspace;
use anyhow::{Result, ensure};
use plotters::element::{EmptyElement, PathElement, Rectangle};
use plotters::style::Color;

/// One set of values to histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSet {
    /// Legend text.
    pub label: String,
    /// The values; non-finite ones are ignored.
    pub values: Vec<f64>,
}

impl ValueSet {
    /// A set named `label`.
    pub fn new(label: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            label: label.into(),
            values,
        }
    }
}

/// Several histograms drawn semi-transparent over the same bins.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramPanel {
    /// Title, value axis label and count axis label.
    pub labels: Labels,
    /// The sets, each in its palette colour.
    pub sets: Vec<ValueSet>,
    /// Number of equal-width bins spanning all finite values of all sets.
    pub bins: usize,
    /// Divide counts by (finite values x bin width), so sets of different sizes compare.
    pub density: bool,
}

/// Opacity of a histogram's bars, so overlapping ones stay visible.
const BAR_OPACITY: f64 = 0.35;

impl HistogramPanel {
    /// Count histograms of `sets` over `bins` shared bins.
    pub fn new(labels: Labels, sets: Vec<ValueSet>, bins: usize) -> Self {
        Self {
            labels,
            sets,
            bins,
            density: false,
        }
    }

    /// The same histograms normalized to unit area.
    pub fn as_density(self) -> Self {
        Self {
            density: true,
            ..self
        }
    }

    pub(crate) fn draw<DB: Backend>(&self, area: &Area<DB>) -> Result<()> {
        ensure!(
            self.bins > 0,
            "histogram '{}' needs at least one bin",
            self.labels.title
        );
        let range = frame::finite_range(self.sets.iter().flat_map(|s| s.values.iter().copied()));
        let x = frame::padded(range, 0.0);
        let edges = linspace(x.start, x.end, self.bins + 1);
        let heights: Vec<Vec<f64>> = self
            .sets
            .iter()
            .map(|s| self.heights(&s.values, &edges))
            .collect();
        let top = heights.iter().flatten().copied().fold(0.0, f64::max);
        let area = frame::titled(area, &self.labels.title)?;
        let mut chart = frame::chart_2d(&area, x, 0.0..if top > 0.0 { top * 1.08 } else { 1.0 })?;
        frame::draw_axes(&mut chart, &self.labels.x, &self.labels.y)?;
        for (i, (set, heights)) in self.sets.iter().zip(&heights).enumerate() {
            let colour = colour::series(i);
            let bars = heights.iter().enumerate().filter(|(_, h)| **h > 0.0);
            chart.draw_series(bars.map(|(b, &h)| {
                Rectangle::new(
                    [(edges[b], 0.0), (edges[b + 1], h)],
                    colour.mix(BAR_OPACITY).filled(),
                )
            }))?;
            // A step outline keeps each set's shape readable where bars overlap.
            let mut outline = vec![(edges[0], 0.0)];
            for (b, &h) in heights.iter().enumerate() {
                outline.extend([(edges[b], h), (edges[b + 1], h)]);
            }
            outline.push((edges[self.bins], 0.0));
            chart
                .draw_series([PathElement::new(outline, colour.stroke_width(2))])?
                .label(&set.label)
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + Rectangle::new(
                            [(0, -6), (frame::LEGEND_LINE, 6)],
                            colour.mix(BAR_OPACITY).filled(),
                        )
                        + Rectangle::new([(0, -6), (frame::LEGEND_LINE, 6)], colour.stroke_width(2))
                });
        }
        // Bars are solid from the axis up, so sample each one's whole height.
        let (x, y) = (chart.x_range(), chart.y_range());
        let bars = heights.iter().flat_map(|h| h.iter().enumerate());
        let covered: Vec<(f64, f64)> = bars
            .flat_map(|(b, &h)| {
                let centre = (edges[b] + edges[b + 1]) / 2.0;
                (0..=4).map(move |k| (centre, h * k as f64 / 4.0))
            })
            .map(|(px, py)| (frame::fraction(px, &x), frame::fraction(py, &y)))
            .collect();
        frame::draw_legend(
            &mut chart,
            frame::legend_position(&covered, self.sets.len()),
        )
    }

    /// Bar heights of `values` over `edges` (counts, or densities).
    fn heights(&self, values: &[f64], edges: &[f64]) -> Vec<f64> {
        let (low, width) = (edges[0], edges[1] - edges[0]);
        let mut counts = vec![0.0; self.bins];
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        for v in &finite {
            // The top edge belongs to the last bin.
            let bin = (((v - low) / width) as usize).min(self.bins - 1);
            counts[bin] += 1.0;
        }
        if self.density && !finite.is_empty() {
            let scale = 1.0 / (finite.len() as f64 * width);
            counts.iter_mut().for_each(|c| *c *= scale);
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_share_edges_and_density_has_unit_area() {
        let labels = Labels::new("t", "v", "n");
        let panel = HistogramPanel::new(labels, vec![], 4);
        let edges = linspace(0.0, 4.0, 5);
        assert_eq!(
            panel.heights(&[0.0, 0.5, 1.0, 3.9, 4.0, f64::NAN], &edges),
            vec![2.0, 1.0, 0.0, 2.0]
        );
        let density = panel.as_density().heights(&[0.0, 1.5, 2.5, 3.5], &edges);
        assert!((density.iter().sum::<f64>() * 1.0 - 1.0).abs() < 1e-12);
    }
}
