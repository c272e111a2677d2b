//! The kinds of panel a figure is made of; each draws itself into a rectangle of the picture.

mod colourbar;
mod contour;
pub(crate) mod frame;
mod heatmap;
mod histogram;
mod lines;
mod surface;

pub use contour::{ContourPanel, ContourStyle, PathOverlay};
pub use heatmap::HeatmapPanel;
pub use histogram::{HistogramPanel, ValueSet};
pub use lines::{LinePanel, LineStyle, Series, YAxis};
pub use surface::SurfacePanel;

use anyhow::Result;
use frame::{Area, Backend};

/// A panel's title and the labels of its horizontal and vertical axes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Labels {
    /// Drawn above the panel.
    pub title: String,
    /// Horizontal axis label.
    pub x: String,
    /// Vertical axis label (for surfaces, the grid's y axis).
    pub y: String,
}

impl Labels {
    /// Title `title`, axes labelled `x` and `y`.
    pub fn new(title: impl Into<String>, x: impl Into<String>, y: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            x: x.into(),
            y: y.into(),
        }
    }
}

/// One chart of a figure.
#[derive(Debug, Clone, PartialEq)]
pub enum Panel {
    /// Curves, possibly on twin y axes.
    Lines(LinePanel),
    /// Contour lines or filled contours, possibly with a path on top.
    Contour(ContourPanel),
    /// A heat map with a colour bar.
    Heatmap(HeatmapPanel),
    /// A 3-D surface.
    Surface(SurfacePanel),
    /// Overlaid histograms.
    Histogram(HistogramPanel),
}

impl Panel {
    /// The panel's title, used in error messages.
    pub fn title(&self) -> &str {
        match self {
            Panel::Lines(p) => &p.labels.title,
            Panel::Contour(p) => &p.labels.title,
            Panel::Heatmap(p) => &p.labels.title,
            Panel::Surface(p) => &p.labels.title,
            Panel::Histogram(p) => &p.labels.title,
        }
    }

    pub(crate) fn draw<DB: Backend>(&self, area: &Area<DB>) -> Result<()> {
        match self {
            Panel::Lines(p) => p.draw(area),
            Panel::Contour(p) => p.draw(area),
            Panel::Heatmap(p) => p.draw(area),
            Panel::Surface(p) => p.draw(area),
            Panel::Histogram(p) => p.draw(area),
        }
    }
}

macro_rules! into_panel {
    ($($variant:ident($panel:ty)),* $(,)?) => {$(
        impl From<$panel> for Panel {
            fn from(panel: $panel) -> Self {
                Panel::$variant(panel)
            }
        }
    )*};
}

into_panel!(
    Lines(LinePanel),
    Contour(ContourPanel),
    Heatmap(HeatmapPanel),
    Surface(SurfacePanel),
    Histogram(HistogramPanel),
);
