//! Export of a surface as VTK XML PolyData (`.vtp`, ASCII) for ParaView, following the
//! reference code's `h52vtp.py`: points (x, y, z), one quad per grid cell, z as point data and
//! the cell mean as cell data.

use crate::grid::Grid2d;
use crate::transform::ZTransform;
use anyhow::Result;
use landscape_core::atomic::write_atomic_with;
use std::io::Write;
use std::path::Path;

/// How values are turned into heights, as `h52vtp.py`'s options.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VtpOptions {
    /// `--log`: z becomes `ln(z + 0.1)`.
    pub log: bool,
    /// `--zmax`: values above it are set to it, before the log as in the reference.
    pub zmax: Option<f64>,
}

impl VtpOptions {
    /// The height written for value `z`.
    pub fn height(&self, z: f64) -> f64 {
        let clipped = match self.zmax {
            Some(zmax) if z > zmax => zmax,
            _ => z,
        };
        if self.log {
            ZTransform::PAPER_LOG.apply(clipped)
        } else {
            clipped
        }
    }
}

/// Writes `grid` to `path` as a ParaView surface, and `trail` (points `(x, y, value)`, e.g. an
/// optimization path; empty for none) as one polyline over it, its values turned into heights
/// as the surface's are.
///
/// A point whose height is not finite (a diverged evaluation, or a log of a value at or below
/// -0.1) gets the lowest finite height so the file stays parseable, and no quad uses it: the
/// surface has a hole there. Trail points with a non-finite coordinate or height are left out.
pub fn write_vtp(
    path: &Path,
    grid: &Grid2d,
    options: &VtpOptions,
    trail: &[[f64; 3]],
) -> Result<()> {
    let (nx, ny) = (grid.nx(), grid.ny());
    let heights: Vec<f64> = grid.z().iter().map(|&z| options.height(z)).collect();
    let floor = heights
        .iter()
        .copied()
        .filter(|h| h.is_finite())
        .reduce(f64::min)
        .unwrap_or(0.0);
    let point_values: Vec<f64> = heights
        .iter()
        .map(|&h| if h.is_finite() { h } else { floor })
        .collect();
    let mut quads = Vec::new();
    for iy in 0..ny - 1 {
        for ix in 0..nx - 1 {
            let i = iy * nx + ix;
            // Counter-clockwise seen from above, as the reference orders them.
            let quad = [i, i + 1, i + nx + 1, i + nx];
            if quad.iter().all(|&p| heights[p].is_finite()) {
                quads.push(quad);
            }
        }
    }
    let mut trail: Vec<[f64; 3]> = trail
        .iter()
        .map(|&[x, y, z]| [x, y, options.height(z)])
        .filter(|p| p.iter().all(|v| v.is_finite()))
        .collect();
    if trail.len() < 2 {
        trail.clear(); // a line needs two points
    }
    let line = usize::from(!trail.is_empty());
    // VTK orders cells verts, lines, polys: the trail's line comes first in the cell data.
    let line_value = trail.iter().map(|p| p[2]).sum::<f64>() / trail.len().max(1) as f64;
    let cell_values: Vec<f64> = std::iter::repeat_n(line_value, line)
        .chain(
            quads
                .iter()
                .map(|q| q.iter().map(|&p| heights[p]).sum::<f64>() / 4.0),
        )
        .collect();

    write_atomic_with(path, |w| {
        writeln!(w, r#"<?xml version="1.0"?>"#)?;
        writeln!(
            w,
            r#"<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian" header_type="UInt64">"#
        )?;
        writeln!(w, "  <PolyData>")?;
        writeln!(
            w,
            r#"    <Piece NumberOfPoints="{}" NumberOfVerts="0" NumberOfLines="{line}" NumberOfStrips="0" NumberOfPolys="{}">"#,
            nx * ny + trail.len(),
            quads.len()
        )?;
        writeln!(w, r#"      <PointData Scalars="zvalue">"#)?;
        let trail_heights = trail.iter().map(|p| &p[2]);
        data_array(
            w,
            "Float64",
            "zvalue",
            1,
            point_values.iter().chain(trail_heights),
        )?;
        writeln!(w, "      </PointData>")?;
        writeln!(w, r#"      <CellData Scalars="averaged zvalue">"#)?;
        data_array(w, "Float64", "averaged zvalue", 1, cell_values.iter())?;
        writeln!(w, "      </CellData>")?;
        writeln!(w, "      <Points>")?;
        let points = (0..ny).flat_map(|iy| (0..nx).map(move |ix| (ix, iy)));
        let coords =
            points.flat_map(|(ix, iy)| [grid.x()[ix], grid.y()[iy], point_values[iy * nx + ix]]);
        data_array(
            w,
            "Float64",
            "Points",
            3,
            coords.chain(trail.iter().flatten().copied()),
        )?;
        writeln!(w, "      </Points>")?;
        if line == 1 {
            writeln!(w, "      <Lines>")?;
            data_array(
                w,
                "Int64",
                "connectivity",
                1,
                (0..trail.len()).map(|k| nx * ny + k),
            )?;
            data_array(w, "Int64", "offsets", 1, std::iter::once(trail.len()))?;
            writeln!(w, "      </Lines>")?;
        }
        writeln!(w, "      <Polys>")?;
        data_array(w, "Int64", "connectivity", 1, quads.iter().flatten())?;
        data_array(w, "Int64", "offsets", 1, (1..=quads.len()).map(|k| k * 4))?;
        writeln!(w, "      </Polys>")?;
        writeln!(w, "    </Piece>")?;
        writeln!(w, "  </PolyData>")?;
        writeln!(w, "</VTKFile>")?;
        Ok(())
    })
}

/// One ASCII `<DataArray>`, six values to a line.
fn data_array<T: std::fmt::Display>(
    w: &mut impl Write,
    kind: &str,
    name: &str,
    components: usize,
    values: impl Iterator<Item = T>,
) -> Result<()> {
    writeln!(
        w,
        r#"        <DataArray type="{kind}" Name="{name}" NumberOfComponents="{components}" format="ascii">"#
    )?;
    let values: Vec<String> = values.map(|v| v.to_string()).collect();
    for line in values.chunks(6) {
        writeln!(w, "          {}", line.join(" "))?;
    }
    writeln!(w, "        </DataArray>")?;
    Ok(())
}
