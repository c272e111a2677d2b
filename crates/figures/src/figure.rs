//! A figure: panels on a grid under an optional title, saved as PNG and SVG from the same
//! drawing code.

use crate::font;
use crate::panel::Panel;
use crate::panel::frame::{Area, Backend};
use anyhow::{Context, Result, ensure};
use landscape_core::atomic::write_atomic;
use plotters::prelude::{IntoDrawingArea, SVGBackend, Text};
use plotters::style::WHITE;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Panel size when none is given: large enough for readable labels, small enough for a grid.
pub const DEFAULT_PANEL_SIZE: (u32, u32) = (640, 480);
/// Height of the band holding the figure title, when there is one.
const TITLE_BAND: u32 = 48;

/// Panels laid out row-major on a `rows` x `cols` grid, each `panel_size` pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Drawn above all panels.
    pub title: Option<String>,
    /// Number of panel rows.
    pub rows: usize,
    /// Number of panel columns.
    pub cols: usize,
    /// At most `rows * cols` panels, row-major; missing ones leave blank cells.
    pub panels: Vec<Panel>,
    /// (width, height) of each panel in pixels.
    pub panel_size: (u32, u32),
}

impl Figure {
    /// A figure of one panel.
    pub fn single(panel: impl Into<Panel>) -> Self {
        Self::grid(1, 1, vec![panel.into()])
    }

    /// A figure of `panels` on `rows` x `cols`, row-major.
    pub fn grid(rows: usize, cols: usize, panels: Vec<Panel>) -> Self {
        Self {
            title: None,
            rows,
            cols,
            panels,
            panel_size: DEFAULT_PANEL_SIZE,
        }
    }

    /// The same figure with a title above its panels.
    pub fn with_title(self, title: impl Into<String>) -> Self {
        Self {
            title: Some(title.into()),
            ..self
        }
    }

    /// The same figure with panels of `width` x `height` pixels.
    pub fn with_panel_size(self, width: u32, height: u32) -> Self {
        Self {
            panel_size: (width, height),
            ..self
        }
    }

    /// (width, height) of the whole picture in pixels.
    pub fn size(&self) -> (u32, u32) {
        let title = if self.title.is_some() { TITLE_BAND } else { 0 };
        (
            self.cols as u32 * self.panel_size.0,
            self.rows as u32 * self.panel_size.1 + title,
        )
    }

    /// Writes `<stem>.png` and `<stem>.svg` (each atomically), creating parent directories.
    /// The figure is drawn once: the PNG is its SVG rasterized.
    pub fn save(&self, stem: &Path) -> Result<()> {
        let (png, svg) = (with_suffix(stem, ".png"), with_suffix(stem, ".svg"));
        let text = self
            .render_svg()
            .with_context(|| format!("drawing {}", svg.display()))?;
        let bytes = self
            .rasterize(&text)
            .with_context(|| format!("drawing {}", png.display()))?;
        write_atomic(&png, &bytes)?;
        write_atomic(&svg, text.as_bytes())
    }

    /// The figure as an SVG document.
    pub fn render_svg(&self) -> Result<String> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, self.size()).into_drawing_area();
            self.draw(&root)?;
            root.present()?;
        }
        Ok(svg)
    }

    /// `svg`, this figure's SVG, rasterized by resvg with the embedded font, so the PNG shows
    /// what the SVG shows (plotters' own bitmap text set rotated axis labels upright and raised
    /// decimal points a pixel or two).
    fn rasterize(&self, svg: &str) -> Result<Vec<u8>> {
        let tree = resvg::usvg::Tree::from_str(svg, &font::svg_options())
            .context("reading back the figure's SVG")?;
        let (width, height) = self.size();
        let mut pixmap =
            resvg::tiny_skia::Pixmap::new(width, height).context("a figure of zero size")?;
        resvg::render(
            &tree,
            resvg::tiny_skia::Transform::identity(),
            &mut pixmap.as_mut(),
        );
        pixmap.encode_png().context("encoding the PNG")
    }

    fn draw<DB: Backend>(&self, root: &Area<DB>) -> Result<()> {
        ensure!(
            self.rows > 0 && self.cols > 0,
            "a figure needs at least one row and one column"
        );
        ensure!(
            self.panels.len() <= self.rows * self.cols,
            "{} panels do not fit on {} x {}",
            self.panels.len(),
            self.rows,
            self.cols
        );
        root.fill(&WHITE)?;
        let body = match &self.title {
            Some(title) => {
                let (band, body) = root.split_vertically(TITLE_BAND);
                let style =
                    font::text(font::FIGURE_TITLE).pos(Pos::new(HPos::Center, VPos::Center));
                let centre = (band.dim_in_pixel().0 as i32 / 2, TITLE_BAND as i32 / 2);
                band.draw(&Text::new(title.as_str(), centre, style))?;
                body
            }
            None => root.clone(),
        };
        for (panel, cell) in self
            .panels
            .iter()
            .zip(body.split_evenly((self.rows, self.cols)))
        {
            panel
                .draw(&cell)
                .with_context(|| format!("drawing panel '{}'", panel.title()))?;
        }
        Ok(())
    }
}

/// `stem` with `suffix` appended (not replacing an extension: "fig.lr0.1" stays whole).
fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(stem.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_appended_not_substituted() {
        assert_eq!(
            with_suffix(Path::new("out/fig.lr0.1"), ".png"),
            PathBuf::from("out/fig.lr0.1.png")
        );
    }
}
