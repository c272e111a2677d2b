//! An interactive 3-D view of a surface as one self-contained HTML file: no network, no fonts
//! or scripts from elsewhere, so it opens anywhere, offline, for ever.

use crate::grid::Grid2d;
use anyhow::Result;
use landscape_core::atomic::write_atomic;
use serde::Serialize;
use std::path::Path;

/// The page: canvas, inline style and script, and a placeholder where the data goes.
const TEMPLATE: &str = include_str!("../assets/surface_viewer.html");
const DATA_PLACEHOLDER: &str = "/*DATA*/";

/// What the page's script reads.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    title: &'a str,
    z_label: &'a str,
    x: &'a [f64],
    y: &'a [f64],
    /// Row-major in y; `null` where the value is not finite (drawn as a hole).
    z: Vec<Option<f64>>,
    /// A path over the surface (x, y, value), drawn as a line with dots; non-finite points
    /// left out.
    path: Vec<[f64; 3]>,
}

/// Writes `path`: a page drawing `grid` as a shaded, colour-mapped surface on a canvas that
/// rotates when dragged and zooms with the wheel, with axis labels, a colour legend and the
/// value under the cursor, and `trail` (points `(x, y, value)` in the grid's coordinates and
/// values, e.g. an optimization path; empty for none) as a line over it. When drawn, the page
/// sets `data-drawn="true"` and `data-path-points` (the trail's points drawn) on its `<body>`.
pub fn write_surface_html(
    path: &Path,
    grid: &Grid2d,
    title: &str,
    z_label: &str,
    trail: &[[f64; 3]],
) -> Result<()> {
    write_atomic(path, surface_html(grid, title, z_label, trail)?.as_bytes())
}

fn surface_html(grid: &Grid2d, title: &str, z_label: &str, trail: &[[f64; 3]]) -> Result<String> {
    let z = grid
        .z()
        .iter()
        .map(|&v| v.is_finite().then_some(v))
        .collect();
    let payload = Payload {
        title,
        z_label,
        x: grid.x(),
        y: grid.y(),
        z,
        path: trail
            .iter()
            .copied()
            .filter(|p| p.iter().all(|v| v.is_finite()))
            .collect(),
    };
    // '<' only occurs inside JSON strings, where \u003c means the same; escaping it keeps a
    // title like "</script>" from ending the data block.
    let json = serde_json::to_string(&payload)?.replace('<', "\\u003c");
    Ok(TEMPLATE.replacen(DATA_PLACEHOLDER, &json, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_embedded_once_and_cannot_break_out_of_its_script() {
        let grid = Grid2d::new(
            vec![0.0, 1.0],
            vec![0.0, 1.0],
            vec![1.0, f64::NAN, 2.0, 3.0],
        )
        .unwrap();
        let page = surface_html(&grid, "a </script><b>", "loss", &[]).unwrap();
        assert!(!page.contains(DATA_PLACEHOLDER));
        assert!(page.contains(r#""z":[1.0,null,2.0,3.0]"#));
        assert_eq!(
            page.matches("</script>").count(),
            2,
            "only the page's own two script blocks close"
        );
        for forbidden in [
            "http://",
            "https://",
            "src=",
            "<link",
            "fetch(",
            "XMLHttpRequest",
            "import(",
        ] {
            assert!(
                !page.contains(forbidden),
                "page must not reference anything external: found {forbidden}"
            );
        }
    }
}
