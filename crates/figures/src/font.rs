//! The one font every figure uses, embedded so figures render on machines without system fonts.

use plotters::style::{FontFamily, FontStyle, IntoFont, TextStyle, register_font};
use std::sync::Once;

/// DejaVu Sans (Bitstream Vera licence, see `assets/DejaVuSans-LICENSE.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The family name the embedded font is registered under; plotters' `SansSerif` resolves to it.
const FAMILY: &str = "sans-serif";

/// Font sizes in pixels, chosen for panels of roughly 500 to 800 pixels a side.
pub(crate) const FIGURE_TITLE: f64 = 26.0;
pub(crate) const PANEL_TITLE: f64 = 20.0;
pub(crate) const AXIS_LABEL: f64 = 16.0;
pub(crate) const TICK_LABEL: f64 = 13.0;

static REGISTER: Once = Once::new();

/// Registers the embedded font with plotters; cheap after the first call.
pub(crate) fn ensure_registered() {
    REGISTER.call_once(|| {
        // The bytes are compiled in and known to parse, so failure is a build defect.
        register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS)
            .unwrap_or_else(|_| panic!("embedded DejaVuSans.ttf does not parse"));
    });
}

/// A text style in the embedded font at `size` pixels.
pub(crate) fn text(size: f64) -> TextStyle<'static> {
    ensure_registered();
    (FontFamily::SansSerif, size).into_font().into()
}

/// How the figures' SVG is read back for rasterizing: the embedded font is the only one, and
/// every family the SVG names resolves to it, as it does for plotters.
pub(crate) fn svg_options() -> resvg::usvg::Options<'static> {
    let mut options = resvg::usvg::Options {
        font_family: "DejaVu Sans".into(),
        ..Default::default()
    };
    let fonts = options.fontdb_mut();
    fonts.load_font_data(DEJAVU_SANS.to_vec());
    fonts.set_sans_serif_family("DejaVu Sans");
    options
}
