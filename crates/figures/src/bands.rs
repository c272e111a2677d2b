//! Filled contours: the regions of a [`Grid2d`] between consecutive levels, as polygons.
//!
//! Each cell is split into four triangles around its centre (valued at the cell mean, the same
//! rule [`crate::marching_squares`] uses for saddles), values are linear on each triangle, and a
//! band is the triangle clipped to `low <= z <= high`, which is exact for linear values.

use crate::grid::Grid2d;
use crate::marching_squares::Point;

/// A polygon filled with band `band`, the region between `levels[band]` and `levels[band + 1]`.
pub(crate) struct BandPolygon {
    pub band: usize,
    pub points: Vec<Point>,
}

/// A vertex with its value, so clipping can interpolate both.
type Vertex = (f64, f64, f64);

/// Polygons covering every band between consecutive `levels` (ascending). Values outside
/// `[levels[0], levels[last]]` and cells with a non-finite corner are left unfilled.
pub(crate) fn band_polygons(grid: &Grid2d, levels: &[f64]) -> Vec<BandPolygon> {
    let band_of = |v: f64| {
        let band = levels.partition_point(|&l| l <= v).checked_sub(1)?;
        (band + 1 < levels.len()).then_some(band)
    };
    let (x, y) = (grid.x(), grid.y());
    let mut polygons = Vec::new();
    for iy in 0..grid.ny() - 1 {
        // Consecutive cells wholly inside one band become one rectangle: fewer SVG elements and
        // no anti-aliasing seams between them.
        let mut run: Option<(usize, usize)> = None; // (band, first ix)
        for ix in 0..grid.nx() - 1 {
            let corners = [
                (x[ix], y[iy], grid.get(ix, iy)),
                (x[ix + 1], y[iy], grid.get(ix + 1, iy)),
                (x[ix + 1], y[iy + 1], grid.get(ix + 1, iy + 1)),
                (x[ix], y[iy + 1], grid.get(ix, iy + 1)),
            ];
            let bands = corners.map(|c| if c.2.is_finite() { band_of(c.2) } else { None });
            let uniform = bands[0].filter(|_| bands.iter().all(|b| *b == bands[0]));
            if uniform.is_some() && uniform == run.map(|r| r.0) {
                continue;
            }
            if let Some((band, start)) = run.take() {
                polygons.push(rectangle(band, (x[start], x[ix]), (y[iy], y[iy + 1])));
            }
            match uniform {
                Some(band) => run = Some((band, ix)),
                None if corners.iter().all(|c| c.2.is_finite()) => {
                    split_cell(&corners, levels, &mut polygons)
                }
                None => {}
            }
        }
        if let Some((band, start)) = run {
            polygons.push(rectangle(
                band,
                (x[start], x[grid.nx() - 1]),
                (y[iy], y[iy + 1]),
            ));
        }
    }
    polygons
}

fn rectangle(band: usize, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> BandPolygon {
    BandPolygon {
        band,
        points: vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)],
    }
}

/// Band polygons of one cell whose corners span several bands (or lie partly outside them).
fn split_cell(corners: &[Vertex; 4], levels: &[f64], out: &mut Vec<BandPolygon>) {
    let centre = corners.iter().fold((0.0, 0.0, 0.0), |a, c| {
        (a.0 + c.0 / 4.0, a.1 + c.1 / 4.0, a.2 + c.2 / 4.0)
    });
    for k in 0..4 {
        let triangle = [corners[k], corners[(k + 1) % 4], centre];
        let low = triangle.iter().map(|v| v.2).fold(f64::INFINITY, f64::min);
        let high = triangle
            .iter()
            .map(|v| v.2)
            .fold(f64::NEG_INFINITY, f64::max);
        for band in 0..levels.len() - 1 {
            let (lo, hi) = (levels[band], levels[band + 1]);
            if hi < low || lo > high {
                continue;
            }
            let clipped = clip(&clip(&triangle, |v| v - lo), |v| hi - v);
            if clipped.len() >= 3 {
                out.push(BandPolygon {
                    band,
                    points: clipped.iter().map(|v| (v.0, v.1)).collect(),
                });
            }
        }
    }
}

/// Sutherland-Hodgman: the part of convex `polygon` where `inside(value) >= 0`, with
/// `inside` linear in the value so crossings are interpolated exactly.
fn clip(polygon: &[Vertex], inside: impl Fn(f64) -> f64) -> Vec<Vertex> {
    let mut out = Vec::with_capacity(polygon.len() + 2);
    for (i, &a) in polygon.iter().enumerate() {
        let b = polygon[(i + 1) % polygon.len()];
        let (da, db) = (inside(a.2), inside(b.2));
        if da >= 0.0 {
            out.push(a);
        }
        if (da >= 0.0) != (db >= 0.0) {
            let t = da / (da - db);
            out.push((
                a.0 + t * (b.0 - a.0),
                a.1 + t * (b.1 - a.1),
                a.2 + t * (b.2 - a.2),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::linspace;

    fn area(points: &[Point]) -> f64 {
        let n = points.len();
        (0..n)
            .map(|i| points[i].0 * points[(i + 1) % n].1 - points[(i + 1) % n].0 * points[i].1)
            .sum::<f64>()
            .abs()
            / 2.0
    }

    #[test]
    fn bands_of_a_plane_have_the_exact_areas() {
        // z = x on [0, 4] x [0, 1]: band [1, 2] is the unit square 1 <= x <= 2.
        let grid = Grid2d::from_fn(linspace(0.0, 4.0, 9), linspace(0.0, 1.0, 3), |x, _| x).unwrap();
        let levels = [1.0, 2.0, 3.5];
        let polygons = band_polygons(&grid, &levels);
        let band_area = |band| {
            polygons
                .iter()
                .filter(|p| p.band == band)
                .map(|p| area(&p.points))
                .sum::<f64>()
        };
        assert!(
            (band_area(0) - 1.0).abs() < 1e-9,
            "band 0 area {}",
            band_area(0)
        );
        assert!(
            (band_area(1) - 1.5).abs() < 1e-9,
            "band 1 area {}",
            band_area(1)
        );
        for p in &polygons {
            let lo = levels[p.band];
            let hi = levels[p.band + 1];
            assert!(
                p.points
                    .iter()
                    .all(|&(x, _)| x >= lo - 1e-12 && x <= hi + 1e-12)
            );
        }
    }

    #[test]
    fn non_finite_cells_stay_unfilled() {
        let grid = Grid2d::new(
            vec![0.0, 1.0, 2.0],
            vec![0.0, 1.0],
            vec![0.5, f64::NAN, 0.5, 0.5, 0.5, 0.5],
        )
        .unwrap();
        let polygons = band_polygons(&grid, &[0.0, 1.0]);
        let total: f64 = polygons.iter().map(|p| area(&p.points)).sum();
        assert!(
            total.abs() < 1e-12,
            "both cells touch the NaN corner, got area {total}"
        );
    }
}
