//! The colour bar beside a contour, filled contour or heat map: which colour means which value.

use super::frame::{self, Area, Backend};
use crate::colour;
use crate::font;
use crate::levels::format_value;
use anyhow::Result;
use plotters::chart::ChartBuilder;
use plotters::element::Rectangle;
use plotters::style::{BLACK, Color, RGBColor};

/// Width in pixels taken from the right of a panel for its colour bar and its labels.
const WIDTH: u32 = 112;
/// Width of the band right of the bar holding its tick labels and its label.
const LABEL_AREA: u32 = 72;
/// Slices drawn to show a continuous map.
const SLICES: usize = 128;

/// How values map to colours.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ColourScale<'a> {
    /// Viridis stretched over (low, high); values outside take the end colours.
    Continuous(f64, f64),
    /// One flat colour per band between consecutive levels (ascending), as filled contours.
    Bands(&'a [f64]),
}

impl ColourScale<'_> {
    fn range(&self) -> (f64, f64) {
        match *self {
            Self::Continuous(low, high) => (low, high),
            Self::Bands(levels) => (levels[0], levels[levels.len() - 1]),
        }
    }

    /// The colour of `value`: for bands, the colour of the band's middle.
    pub(crate) fn colour(&self, value: f64) -> RGBColor {
        let value = match *self {
            Self::Continuous(..) => value,
            Self::Bands(levels) => {
                let band = levels
                    .partition_point(|&l| l <= value)
                    .clamp(1, levels.len() - 1)
                    - 1;
                (levels[band] + levels[band + 1]) / 2.0
            }
        };
        colour::viridis(colour::normalize(value, self.range()))
    }
}

/// `area` split into the part for the chart and the strip on its right for the colour bar.
pub(crate) fn split<DB: Backend>(area: &Area<DB>) -> (Area<DB>, Area<DB>) {
    let width = area.dim_in_pixel().0;
    area.split_horizontally(width.saturating_sub(WIDTH))
}

/// Draws the bar for `scale` into `area` (from [`split`]), aligned with a chart built by
/// [`frame::chart_2d`] beside it, with tick labels and `label` on its right.
pub(crate) fn draw<DB: Backend>(
    area: &Area<DB>,
    scale: ColourScale<'_>,
    label: &str,
) -> Result<()> {
    let (low, high) = scale.range();
    let y = frame::padded(Some((low, high)), 0.0);
    let mut chart = ChartBuilder::on(area)
        .margin(frame::MARGIN)
        .x_label_area_size(frame::X_LABEL_AREA)
        .right_y_label_area_size(LABEL_AREA)
        .build_cartesian_2d(0.0..1.0, y.clone())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .x_labels(0)
        .y_desc(label)
        .y_label_formatter(&|v| format_value(*v))
        .label_style(font::text(font::TICK_LABEL))
        .axis_desc_style(font::text(font::AXIS_LABEL))
        .draw()?;
    let edges: Vec<f64> = match scale {
        ColourScale::Continuous(..) => crate::grid::linspace(y.start, y.end, SLICES + 1),
        ColourScale::Bands(levels) => levels.to_vec(),
    };
    chart.draw_series(edges.windows(2).map(|w| {
        Rectangle::new(
            [(0.0, w[0]), (1.0, w[1])],
            scale.colour((w[0] + w[1]) / 2.0).filled(),
        )
    }))?;
    chart.draw_series([Rectangle::new(
        [(0.0, y.start), (1.0, y.end)],
        BLACK.stroke_width(1),
    )])?;
    Ok(())
}
