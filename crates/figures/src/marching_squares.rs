//! Contour lines of a [`Grid2d`] by marching squares (plotters has no contours).
//!
//! A crossing point is identified by the grid edge it lies on, and is always interpolated from
//! the edge's lower-index corner, so the two cells sharing an edge produce bit-identical points
//! and segments chain into lines by edge identity rather than by comparing floats.

use crate::grid::Grid2d;
use std::collections::BTreeMap;

/// A point (x, y) in grid coordinates.
pub type Point = (f64, f64);

/// One connected piece of a contour line; a closed line ends where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ContourLine {
    /// The vertices in order along the line.
    pub points: Vec<Point>,
    /// Whether the line is a loop (its last point repeats its first).
    pub closed: bool,
}

/// A grid edge: `Horizontal` joins (ix, iy) to (ix + 1, iy), `Vertical` joins (ix, iy) to (ix, iy + 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Edge {
    Horizontal(usize, usize),
    Vertical(usize, usize),
}

/// Every segment of the contour at `level`, one or two per grid cell the level crosses.
///
/// Cells with a non-finite corner produce nothing (a gap). Saddle cells (diagonal corners on
/// the same side of the level) are resolved by the cell's mean value: the corners on the other
/// side of the mean from the centre are cut off, so the same data always gives the same lines.
pub fn contour_segments(grid: &Grid2d, level: f64) -> Vec<[Point; 2]> {
    edge_segments(grid, level)
        .into_iter()
        .map(|(a, b)| [crossing(grid, a, level), crossing(grid, b, level)])
        .collect()
}

/// The contour at `level` as connected lines (segments from [`contour_segments`] chained).
pub fn contour_lines(grid: &Grid2d, level: f64) -> Vec<ContourLine> {
    let segments = edge_segments(grid, level);
    // Ordered, so lines start from the same end every time and figures are byte-identical
    // from run to run.
    let mut at_edge: BTreeMap<Edge, Vec<usize>> = BTreeMap::new();
    for (i, &(a, b)) in segments.iter().enumerate() {
        at_edge.entry(a).or_default().push(i);
        at_edge.entry(b).or_default().push(i);
    }
    let mut used = vec![false; segments.len()];
    let mut lines = Vec::new();
    // Open lines must be walked from an end, so start from edges with one segment first.
    let ends = at_edge
        .iter()
        .filter(|(_, s)| s.len() == 1)
        .map(|(&e, s)| (e, s[0]));
    let mut starts: Vec<(Edge, usize)> = ends.collect();
    starts.extend(segments.iter().enumerate().map(|(i, &(a, _))| (a, i)));
    for (edge, segment) in starts {
        if used[segment] {
            continue;
        }
        let edges = walk(&segments, &at_edge, &mut used, edge, segment);
        let closed = edges.len() > 2 && edges.first() == edges.last();
        let points = edges
            .into_iter()
            .map(|e| crossing(grid, e, level))
            .collect();
        lines.push(ContourLine { points, closed });
    }
    lines
}

/// Follows segments from `edge` through `segment` until the line ends or closes.
fn walk(
    segments: &[(Edge, Edge)],
    at_edge: &BTreeMap<Edge, Vec<usize>>,
    used: &mut [bool],
    start: Edge,
    mut segment: usize,
) -> Vec<Edge> {
    let mut edges = vec![start];
    let mut edge = start;
    loop {
        used[segment] = true;
        let (a, b) = segments[segment];
        edge = if a == edge { b } else { a };
        edges.push(edge);
        match at_edge[&edge].iter().find(|&&s| !used[s]) {
            Some(&next) => segment = next,
            None => return edges,
        }
    }
}

/// The contour segments of every cell, as pairs of crossed edges.
fn edge_segments(grid: &Grid2d, level: f64) -> Vec<(Edge, Edge)> {
    let mut segments = Vec::new();
    for iy in 0..grid.ny() - 1 {
        for ix in 0..grid.nx() - 1 {
            cell_segments(grid, ix, iy, level, &mut segments);
        }
    }
    segments
}

fn cell_segments(grid: &Grid2d, ix: usize, iy: usize, level: f64, out: &mut Vec<(Edge, Edge)>) {
    // Corners and edges in ring order: edge k joins corner k to corner k + 1.
    let values = [
        grid.get(ix, iy),
        grid.get(ix + 1, iy),
        grid.get(ix + 1, iy + 1),
        grid.get(ix, iy + 1),
    ];
    if !values.iter().all(|v| v.is_finite()) {
        return;
    }
    let edges = [
        Edge::Horizontal(ix, iy),
        Edge::Vertical(ix + 1, iy),
        Edge::Horizontal(ix, iy + 1),
        Edge::Vertical(ix, iy),
    ];
    let above = values.map(|v| v >= level);
    let crossed: Vec<Edge> = (0..4)
        .filter(|&k| above[k] != above[(k + 1) % 4])
        .map(|k| edges[k])
        .collect();
    match crossed.len() {
        2 => out.push((crossed[0], crossed[1])),
        4 => {
            let centre_above = values.iter().sum::<f64>() / 4.0 >= level;
            // Corner k lies between edges k - 1 and k; cut off the corners unlike the centre.
            for k in (0..4).filter(|&k| above[k] != centre_above) {
                out.push((edges[(k + 3) % 4], edges[k]));
            }
        }
        _ => {}
    }
}

/// Where `level` crosses `edge`, by linear interpolation from the edge's lower-index corner.
fn crossing(grid: &Grid2d, edge: Edge, level: f64) -> Point {
    let (x, y) = (grid.x(), grid.y());
    match edge {
        Edge::Horizontal(ix, iy) => {
            let t = fraction(grid.get(ix, iy), grid.get(ix + 1, iy), level);
            (x[ix] + t * (x[ix + 1] - x[ix]), y[iy])
        }
        Edge::Vertical(ix, iy) => {
            let t = fraction(grid.get(ix, iy), grid.get(ix, iy + 1), level);
            (x[ix], y[iy] + t * (y[iy + 1] - y[iy]))
        }
    }
}

/// Where `level` lies between `a` and `b`; they straddle it, so they differ.
fn fraction(a: f64, b: f64, level: f64) -> f64 {
    (level - a) / (b - a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::linspace;

    fn bowl(n: usize) -> Grid2d {
        Grid2d::from_fn(linspace(-1.0, 1.0, n), linspace(-1.0, 1.0, n), |x, y| {
            x * x + y * y
        })
        .unwrap()
    }

    #[test]
    fn the_same_grid_gives_the_same_lines_every_time() {
        // Open lines (a bowl cut by the frame): which end a line starts from must not vary.
        let grid = Grid2d::from_fn(linspace(0.0, 1.0, 9), linspace(0.0, 1.0, 9), |x, y| {
            x * x + y * y
        })
        .unwrap();
        let first = contour_lines(&grid, 0.5);
        assert!(first.iter().any(|l| !l.closed));
        for _ in 0..20 {
            assert_eq!(contour_lines(&grid, 0.5), first);
        }
    }

    #[test]
    fn bowl_contour_is_one_closed_circle() {
        let n = 101;
        let spacing = 2.0 / (n - 1) as f64;
        let grid = bowl(n);
        for r in [0.3, 0.55, 0.9] {
            let lines = contour_lines(&grid, r * r);
            assert_eq!(lines.len(), 1, "radius {r}: one connected line");
            let line = &lines[0];
            assert!(line.closed, "radius {r}: the circle closes");
            assert!(line.points.len() > 20);
            let worst = line
                .points
                .iter()
                .map(|&(x, y)| ((x * x + y * y).sqrt() - r).abs())
                .fold(0.0, f64::max);
            assert!(worst < spacing, "a point is {worst} off radius {r}");
            // Linear interpolation along edges does far better; taking edge midpoints would not.
            assert!(
                worst < spacing / 10.0,
                "a point is {worst} off radius {r}: crossings not interpolated"
            );
            // The circle goes all the way round: every quadrant is visited.
            for (sx, sy) in [(1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0), (1.0, -1.0)] {
                assert!(
                    line.points
                        .iter()
                        .any(|&(x, y)| x * sx > 0.0 && y * sy > 0.0)
                );
            }
        }
    }

    #[test]
    fn plane_gives_one_straight_open_line() {
        // z = x + 2y: the contour at 0.5 is the line x + 2y = 0.5 across the grid.
        let grid = Grid2d::from_fn(linspace(-1.0, 1.0, 21), linspace(-1.0, 1.0, 21), |x, y| {
            x + 2.0 * y
        })
        .unwrap();
        let lines = contour_lines(&grid, 0.5);
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].closed);
        for &(x, y) in &lines[0].points {
            assert!((x + 2.0 * y - 0.5).abs() < 1e-12, "({x}, {y}) off the line");
        }
        let segments = contour_segments(&grid, 0.5);
        assert_eq!(segments.len(), lines[0].points.len() - 1);
    }

    #[test]
    fn non_square_grid_contour_of_z_equals_x_lies_at_that_x() {
        let grid =
            Grid2d::from_fn(linspace(0.0, 3.0, 7), linspace(-1.0, 1.0, 4), |x, _| x).unwrap();
        let lines = contour_lines(&grid, 1.1);
        assert_eq!(lines.len(), 1);
        let ys: Vec<f64> = lines[0].points.iter().map(|p| p.1).collect();
        assert!(
            lines[0]
                .points
                .iter()
                .all(|&(x, _)| (x - 1.1).abs() < 1e-12)
        );
        assert_eq!(ys.len(), 4, "one point per row");
        assert!(ys.contains(&-1.0) && ys.contains(&1.0));
    }

    #[test]
    fn saddle_cell_is_resolved_by_the_cell_mean() {
        // Corners in ring order (0,0)=1, (1,0)=0, (1,1)=1, (0,1)=0 at level 0.5: a saddle.
        let saddle = |centre_bias: f64| {
            Grid2d::new(
                vec![0.0, 1.0],
                vec![0.0, 1.0],
                vec![1.0 + centre_bias, 0.0, 0.0, 1.0 + centre_bias],
            )
            .unwrap()
        };
        let cut_corners = |grid: &Grid2d| {
            let mut corners: Vec<(i32, i32)> = contour_segments(grid, 0.5)
                .iter()
                .map(|[a, b]| {
                    // The corner a segment cuts off is where its two edge points' fixed coordinates meet.
                    let x = if a.0 == 0.0 || a.0 == 1.0 { a.0 } else { b.0 };
                    let y = if a.1 == 0.0 || a.1 == 1.0 { a.1 } else { b.1 };
                    (x as i32, y as i32)
                })
                .collect();
            corners.sort();
            corners
        };
        // High corners on the (0,0)-(1,1) diagonal; mean above the level joins them, cutting off the low corners.
        assert_eq!(cut_corners(&saddle(0.2)), vec![(0, 1), (1, 0)]);
        // Mean below the level: the high corners are isolated instead.
        assert_eq!(cut_corners(&saddle(-0.2)), vec![(0, 0), (1, 1)]);
        // Every run gives the same answer, and lines chain without panicking.
        assert_eq!(
            contour_segments(&saddle(0.0), 0.5),
            contour_segments(&saddle(0.0), 0.5)
        );
        assert_eq!(contour_lines(&saddle(0.0), 0.5).len(), 2);
    }

    #[test]
    fn cells_with_non_finite_corners_produce_no_segments() {
        let mut z: Vec<f64> = bowl(11).z().to_vec();
        let all = contour_segments(&bowl(11), 0.5).len();
        z[5 * 11 + 8] = f64::NAN; // on the circle of radius ~0.7: touches 4 cells
        z[5 * 11 + 2] = f64::INFINITY;
        let holed = Grid2d::new(linspace(-1.0, 1.0, 11), linspace(-1.0, 1.0, 11), z).unwrap();
        let segments = contour_segments(&holed, 0.5);
        assert!(segments.len() < all);
        assert!(
            segments
                .iter()
                .flatten()
                .all(|p| p.0.is_finite() && p.1.is_finite())
        );
        let lines = contour_lines(&holed, 0.5);
        assert!(
            lines.len() >= 2 && lines.iter().all(|l| !l.closed),
            "the gaps break the circle"
        );
        let nan_grid = bowl(11).map(|_| f64::NAN);
        assert!(contour_segments(&nan_grid, 0.5).is_empty());
    }
}
