//! Figures for landscape, drawn from plain numbers: curves on twin axes, contour lines and
//! filled contours (by our own marching squares), heat maps, 3-D surfaces and histograms, laid
//! out in multi-panel [`Figure`]s saved as PNG and SVG; plus an interactive, self-contained
//! HTML surface viewer ([`write_surface_html`]) and a ParaView export ([`write_vtp`]).
//!
//! The crate knows nothing about networks: it takes [`Grid2d`]s, [`Series`] and value sets.
//! Every file is written atomically, and text uses an embedded DejaVu Sans, so figures render
//! the same on machines without fonts. Non-finite values (diverged evaluations) never fail a
//! plot: they leave gaps.
//!
//! ```
//! use landscape_figures::{ContourPanel, Figure, Grid2d, Labels, linspace, paper_levels};
//!
//! let axis = linspace(-1.0, 1.0, 41);
//! let grid = Grid2d::from_fn(axis.clone(), axis, |x, y| 5.0 * (x * x + y * y))?;
//! let contour = ContourPanel::lines(Labels::new("bowl", "x", "y"), grid, paper_levels());
//! let dir = tempfile::tempdir()?;
//! Figure::single(contour).save(&dir.path().join("bowl"))?; // bowl.png and bowl.svg
//! assert!(dir.path().join("bowl.svg").exists());
//! # Ok::<(), anyhow::Error>(())
//! ```

#![warn(missing_docs)]

mod bands;
mod colour;
mod figure;
mod font;
mod grid;
mod html;
mod levels;
mod marching_squares;
mod panel;
mod transform;
mod vtp;

pub use figure::{DEFAULT_PANEL_SIZE, Figure};
pub use grid::{Grid2d, linspace};
pub use html::write_surface_html;
pub use levels::{linear_levels, paper_levels};
pub use marching_squares::{ContourLine, Point, contour_lines, contour_segments};
pub use panel::{
    ContourPanel, ContourStyle, HeatmapPanel, HistogramPanel, Labels, LinePanel, LineStyle, Panel,
    PathOverlay, Series, SurfacePanel, ValueSet, YAxis,
};
pub use transform::ZTransform;
pub use vtp::{VtpOptions, write_vtp};
