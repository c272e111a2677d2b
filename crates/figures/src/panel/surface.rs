//! A grid drawn as a colour-mapped 3-D surface mesh (the paper's 3-D loss surfaces).

use super::Labels;
use super::frame::{self, Area, Backend};
use crate::grid::Grid2d;
use crate::levels::format_value;
use crate::transform::ZTransform;
use crate::{colour, font};
use anyhow::Result;
use plotters::chart::{ChartBuilder, ChartContext};
use plotters::coord::ranged3d::Cartesian3d;
use plotters::coord::types::RangedCoordf64;
use plotters::element::{EmptyElement, PathElement, Polygon, Text};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{BLACK, Color, FontTransform, RGBColor};

/// Viewing angles (radians) and zoom: looking down on the surface from a corner, so a basin's
/// walls and floor are both visible.
const YAW: f64 = 0.65;
const PITCH: f64 = 0.45;
const SCALE: f64 = 0.72;

/// A 3-D surface of a grid; cells with a non-finite corner are left out.
#[derive(Debug, Clone, PartialEq)]
pub struct SurfacePanel {
    /// Title and the labels of the grid's x and y axes.
    pub labels: Labels,
    /// Name of the plotted quantity, before the transform (the axis shows the transform).
    pub z_label: String,
    /// The surface.
    pub grid: Grid2d,
    /// Applied to z before drawing.
    pub z_transform: ZTransform,
    /// The height axis and colour range, after the transform (`None`: the grid's own), so the
    /// panels of one figure can share one scale.
    pub z_range: Option<(f64, f64)>,
}

/// A 3-D chart: grid x across, value up, grid y in depth.
type Chart3d<'a, DB> =
    ChartContext<'a, DB, Cartesian3d<RangedCoordf64, RangedCoordf64, RangedCoordf64>>;

/// A drawable cell: its corners (x, z, y) in the chart's axis order, and its mean value.
struct Cell {
    corners: [(f64, f64, f64); 4],
    value: f64,
}

impl SurfacePanel {
    /// A surface of `grid` with values drawn as they are.
    pub fn new(labels: Labels, grid: Grid2d, z_label: impl Into<String>) -> Self {
        Self {
            labels,
            z_label: z_label.into(),
            grid,
            z_transform: ZTransform::Identity,
            z_range: None,
        }
    }

    /// The finite range of the transformed values (`None` when there are none).
    pub fn value_range(&self) -> Option<(f64, f64)> {
        let grid = self.z_transform.apply_to(&self.grid);
        grid.min().zip(grid.max())
    }

    /// The same surface drawn on the height axis and colours of `low..=high` (transformed
    /// values), e.g. the range of every panel of a figure.
    pub fn with_z_range(self, low: f64, high: f64) -> Self {
        Self {
            z_range: Some((low, high)),
            ..self
        }
    }

    /// The same surface with `transform` applied to z.
    pub fn with_transform(self, transform: ZTransform) -> Self {
        Self {
            z_transform: transform,
            ..self
        }
    }

    pub(crate) fn draw<DB: Backend>(&self, area: &Area<DB>) -> Result<()> {
        let grid = self.z_transform.apply_to(&self.grid);
        let (low, high) = self
            .z_range
            .or_else(|| self.value_range())
            .unwrap_or((0.0, 1.0));
        let (x, y) = (grid.x_range(), grid.y_range());
        let area = frame::titled(area, &self.labels.title)?;
        let z = frame::padded(Some((low, high)), 0.0);
        let mut chart = ChartBuilder::on(&area)
            .margin(frame::MARGIN)
            .build_cartesian_3d(x.0..x.1, z.clone(), y.0..y.1)?;
        chart.with_projection(|mut p| {
            p.yaw = YAW;
            p.pitch = PITCH;
            p.scale = SCALE;
            p.into_matrix()
        });
        chart
            .configure_axes()
            .label_style(font::text(font::TICK_LABEL))
            .x_formatter(&|v| format_value(*v))
            .y_formatter(&|v| format_value(*v))
            .z_formatter(&|v| format_value(*v))
            .light_grid_style(BLACK.mix(0.06))
            .max_light_lines(3)
            .draw()?;

        paint_cells(&mut chart, cells(&grid), (low, high))?;

        // Axis titles beside the edges plotters puts the tick labels on at this viewing angle:
        // x along the left-front edge, y along the right-front edge, z up the left edge.
        let centred = font::text(font::AXIS_LABEL).pos(Pos::new(HPos::Center, VPos::Center));
        let upright = centred.transform(FontTransform::Rotate270);
        let (x_mid, y_mid, z_mid) = (
            (x.0 + x.1) / 2.0,
            (y.0 + y.1) / 2.0,
            (z.start + z.end) / 2.0,
        );
        let z_title = self.z_transform.describe(&self.z_label);
        chart.draw_series([
            EmptyElement::at((x_mid, z.start, y.1))
                + Text::new(self.labels.x.clone(), (-30, 44), centred.clone()),
            EmptyElement::at((x.1, z.start, y_mid))
                + Text::new(self.labels.y.clone(), (34, 44), centred),
            EmptyElement::at((x.0, z_mid, y.1)) + Text::new(z_title, (-48, 0), upright),
        ])?;
        Ok(())
    }
}

/// Paints `cells` far to near (painter's algorithm), each coloured by its mean value.
fn paint_cells<'a, DB: Backend + 'a>(
    chart: &mut Chart3d<'a, DB>,
    mut cells: Vec<Cell>,
    range: (f64, f64),
) -> Result<()> {
    let coord = chart.as_coord_spec();
    let depth = |c: &Cell| {
        let sum = c
            .corners
            .iter()
            .fold((0.0, 0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1, a.2 + p.2));
        coord.projected_depth(&(sum.0 / 4.0), &(sum.1 / 4.0), &(sum.2 / 4.0))
    };
    cells.sort_by_cached_key(|c| std::cmp::Reverse(depth(c)));
    for cell in cells {
        // Each cell's fill and outline go out together to keep the painter's order; the
        // outline, a little darker, shows the mesh and hides seams between neighbours.
        let fill = colour::viridis(colour::normalize(cell.value, range));
        let darker = |c: u8| (c as f64 * 0.75) as u8;
        let edge = RGBColor(darker(fill.0), darker(fill.1), darker(fill.2));
        let mut outline = cell.corners.to_vec();
        outline.push(cell.corners[0]);
        chart.draw_series([Polygon::new(cell.corners.to_vec(), fill.filled())])?;
        chart.draw_series([PathElement::new(outline, edge.stroke_width(1))])?;
    }
    Ok(())
}

/// The cells with four finite corners.
fn cells(grid: &Grid2d) -> Vec<Cell> {
    let (x, y) = (grid.x(), grid.y());
    let mut cells = Vec::with_capacity((grid.nx() - 1) * (grid.ny() - 1));
    for iy in 0..grid.ny() - 1 {
        for ix in 0..grid.nx() - 1 {
            let at = |dx: usize, dy: usize| (x[ix + dx], grid.get(ix + dx, iy + dy), y[iy + dy]);
            let corners = [at(0, 0), at(1, 0), at(1, 1), at(0, 1)];
            if corners.iter().all(|c| c.1.is_finite()) {
                let value = corners.iter().map(|c| c.1).sum::<f64>() / 4.0;
                cells.push(Cell { corners, value });
            }
        }
    }
    cells
}
