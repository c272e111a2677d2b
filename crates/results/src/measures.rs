//! Numbers that summarize a landscape, each named for how it is measured, so findings can
//! compare minima without looking at pictures.

use landscape_figures::Grid2d;

/// How far the loss may rise above the curve's minimum inside the "basin" a width measures.
pub const WIDTH_RISE: f64 = 0.5;

/// Half-width of the window, in direction units, over which the curvature at a minimum is fit.
pub const CURVATURE_WINDOW: f64 = 0.2;

/// How far apart a measure lands across random directions (an analysis with `repeats`) or
/// training seeds: its least, greatest and mean value.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    /// The smallest value.
    pub lo: f64,
    /// The largest value.
    pub hi: f64,
    /// The mean.
    pub mean: f64,
}

impl Spread {
    /// The spread of `values` (the mean is NaN when there are none).
    pub fn of(values: &[f64]) -> Self {
        Self {
            lo: values.iter().copied().fold(f64::INFINITY, f64::min),
            hi: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            mean: values.iter().sum::<f64>() / values.len() as f64,
        }
    }

    /// `(max - min) / mean`.
    pub fn relative(&self) -> f64 {
        (self.hi - self.lo) / self.mean.abs()
    }

    /// Whether every value of this spread lies below every value of `other`: the comparison
    /// of two settings over training seeds that their seed-to-seed spread cannot explain (for
    /// single values, `<`). Three seeds apart from three by chance with probability 1/10.
    pub fn below(&self, other: &Spread) -> bool {
        self.hi < other.lo
    }

    /// `0.531` for one value, `0.531 (0.502-0.560)` for several, with `decimals` decimals.
    pub fn show(&self, decimals: usize) -> String {
        let d = decimals;
        if self.lo == self.hi {
            format!("{:.d$}", self.mean)
        } else {
            format!("{:.d$} ({:.d$}-{:.d$})", self.mean, self.lo, self.hi)
        }
    }
}

/// The width of a 1-D curve's basin: the length of the interval around the point `centre`
/// (a coordinate on `x`) where `loss <= loss(centre) + rise`, with the crossings found by linear
/// interpolation between grid points. A non-finite loss counts as above any level. The interval
/// stops at the ends of the grid (then the width is a lower bound).
pub fn basin_width(x: &[f64], loss: &[f64], centre: f64, rise: f64) -> f64 {
    let c = nearest(x, centre);
    let level = loss[c] + rise;
    let below = |i: usize| loss[i].is_finite() && loss[i] <= level;
    let crossing = |inside: usize, outside: usize| -> f64 {
        let (a, b) = (loss[inside], loss[outside]);
        if !b.is_finite() || b <= a {
            return x[outside];
        }
        x[inside] + (x[outside] - x[inside]) * ((level - a) / (b - a)).clamp(0.0, 1.0)
    };
    let mut left = c;
    while left > 0 && below(left - 1) {
        left -= 1;
    }
    let mut right = c;
    while right + 1 < x.len() && below(right + 1) {
        right += 1;
    }
    let lo = if left == 0 {
        x[0]
    } else {
        crossing(left, left - 1)
    };
    let hi = if right + 1 == x.len() {
        x[x.len() - 1]
    } else {
        crossing(right, right + 1)
    };
    hi - lo
}

/// The second derivative of a 1-D curve at `centre`: twice the quadratic coefficient of a
/// least-squares parabola through the points within [`CURVATURE_WINDOW`] of it.
pub fn curvature(x: &[f64], loss: &[f64], centre: f64) -> f64 {
    let points: Vec<(f64, f64)> = x
        .iter()
        .zip(loss)
        .filter(|(xi, l)| (**xi - centre).abs() <= CURVATURE_WINDOW + 1e-12 && l.is_finite())
        .map(|(xi, l)| (*xi - centre, *l))
        .collect();
    if points.len() < 3 {
        return f64::NAN;
    }
    // Normal equations for l = a t^2 + b t + c.
    let mut s = [0.0f64; 5];
    let mut r = [0.0f64; 3];
    for &(t, l) in &points {
        for (k, sk) in s.iter_mut().enumerate() {
            *sk += t.powi(k as i32);
        }
        r[0] += l * t * t;
        r[1] += l * t;
        r[2] += l;
    }
    let m = [[s[4], s[3], s[2]], [s[3], s[2], s[1]], [s[2], s[1], s[0]]];
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(m);
    let mut ma = m;
    for row in 0..3 {
        ma[row][0] = r[row];
    }
    2.0 * det(ma) / d
}

/// Share of a 2-D surface's points (in percent) where the loss is within `rise` of the loss at
/// the centre (the grid point nearest the origin, the base point: on a trajectory's PCA plane
/// it is not the middle of the grid): the area of the basin, as a fraction of the plotted
/// square.
pub fn basin_area(grid: &Grid2d, rise: f64) -> f64 {
    let centre = grid.get(nearest(grid.x(), 0.0), nearest(grid.y(), 0.0));
    let inside = grid
        .z()
        .iter()
        .filter(|z| z.is_finite() && **z <= centre + rise)
        .count();
    100.0 * inside as f64 / grid.z().len() as f64
}

/// How non-convex a 2-D surface looks: the share (percent) of interior grid points where the
/// finite-difference Hessian of the loss has a negative eigenvalue larger than 10 % of the
/// largest one in magnitude (`lambda_min < -0.1 |lambda_max|`). 0 for a bowl.
pub fn nonconvex_share(grid: &Grid2d) -> f64 {
    let (concave, counted) = nonconvex_points(grid, f64::INFINITY);
    if counted == 0 {
        f64::NAN
    } else {
        100.0 * concave as f64 / counted as f64
    }
}

/// The interior points [`nonconvex_share`] finds non-convex, and those it counts, among the
/// points whose 3 x 3 neighbourhood stays below `cap` (`f64::INFINITY`: all of them). A cap
/// at the top contour level keeps the exploding walls, where a coarse grid's curvature is
/// noise, out of the count.
pub fn nonconvex_points(grid: &Grid2d, cap: f64) -> (usize, usize) {
    nonconvex_points_where(grid, cap, |_| true)
}

/// [`nonconvex_points`] among the points whose own loss `keep` accepts (a band of loss levels:
/// near the minimum, or on the basin's walls).
pub fn nonconvex_points_where(
    grid: &Grid2d,
    cap: f64,
    keep: impl Fn(f64) -> bool,
) -> (usize, usize) {
    let (mut counted, mut concave) = (0usize, 0usize);
    for iy in 1..grid.ny().saturating_sub(1) {
        for ix in 1..grid.nx().saturating_sub(1) {
            if !keep(grid.get(ix, iy)) {
                continue;
            }
            if let Some(nonconvex) = looks_nonconvex(grid, ix, iy, cap) {
                counted += 1;
                concave += usize::from(nonconvex);
            }
        }
    }
    (concave, counted)
}

/// Whether the surface looks non-convex at grid point (`ix`, `iy`): its finite-difference
/// Hessian has `lambda_min < -0.1 |lambda_max|`. `None` where that cannot be read: an edge
/// point, a neighbourhood reaching `cap` or beyond, or a non-finite value.
pub fn looks_nonconvex(grid: &Grid2d, ix: usize, iy: usize, cap: f64) -> Option<bool> {
    let (nx, ny) = (grid.nx(), grid.ny());
    if ix == 0 || iy == 0 || ix + 1 >= nx || iy + 1 >= ny {
        return None;
    }
    let (hx, hy) = (grid.x()[1] - grid.x()[0], grid.y()[1] - grid.y()[0]);
    let z =
        |dx: isize, dy: isize| grid.get((ix as isize + dx) as usize, (iy as isize + dy) as usize);
    if cap.is_finite() && !(-1..=1).all(|dy| (-1..=1).all(|dx| z(dx, dy) < cap)) {
        return None;
    }
    let fxx = (z(1, 0) - 2.0 * z(0, 0) + z(-1, 0)) / (hx * hx);
    let fyy = (z(0, 1) - 2.0 * z(0, 0) + z(0, -1)) / (hy * hy);
    let fxy = (z(1, 1) - z(1, -1) - z(-1, 1) + z(-1, -1)) / (4.0 * hx * hy);
    if !(fxx.is_finite() && fyy.is_finite() && fxy.is_finite()) {
        return None;
    }
    let mean = 0.5 * (fxx + fyy);
    let spread = (0.25 * (fxx - fyy).powi(2) + fxy * fxy).sqrt();
    let (lo, hi) = (mean - spread, mean + spread);
    Some(lo < -0.1 * lo.abs().max(hi.abs()))
}

/// The fewest interior points in view (see [`nonconvex_in_view`]) a convexity reading needs: a
/// 5 x 5 patch. Registered with claim 5's checks before the quick-scale figures were
/// regenerated (issue 16); fewer points fail a check rather than pass it.
pub const MIN_VIEW_POINTS: usize = 25;

/// How non-convex a 2-D surface is where its figure looks: [`nonconvex_points`] among the
/// interior points whose 3 x 3 neighbourhood stays below `view` (the top contour level and the
/// 3-D plots' clip, loss 10), the walls above it left out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InView {
    /// The non-convex share of those points (percent); `None` when fewer than
    /// [`MIN_VIEW_POINTS`] are in view.
    pub share: Option<f64>,
    /// How many points are in view.
    pub points: usize,
}

impl InView {
    /// Whether this surface is measurably less non-convex than `other` (both readable).
    pub fn less_than(&self, other: &InView) -> bool {
        matches!((self.share, other.share), (Some(a), Some(b)) if a < b)
    }

    /// Whether it is readable and below `percent`.
    pub fn below(&self, percent: f64) -> bool {
        self.share.is_some_and(|s| s < percent)
    }
}

impl std::fmt::Display for InView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.share {
            Some(share) => write!(f, "{share:.1}% of {} points", self.points),
            None => write!(
                f,
                "unreadable ({} points in view, fewer than {MIN_VIEW_POINTS})",
                self.points
            ),
        }
    }
}

/// [`InView`] of `grid` below loss `view`.
pub fn nonconvex_in_view(grid: &Grid2d, view: f64) -> InView {
    let (concave, points) = nonconvex_points(grid, view);
    InView {
        share: (points >= MIN_VIEW_POINTS).then(|| 100.0 * concave as f64 / points as f64),
        points,
    }
}

/// Strict local minima of a 2-D surface (lower than all 8 neighbours), the centre's included.
pub fn local_minima(grid: &Grid2d) -> usize {
    let (nx, ny) = (grid.nx() as isize, grid.ny() as isize);
    let mut count = 0;
    for iy in 0..ny {
        for ix in 0..nx {
            let v = grid.get(ix as usize, iy as usize);
            if !v.is_finite() {
                continue;
            }
            let lower_than_all = (-1..=1)
                .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
                .filter(|d| *d != (0, 0))
                .all(|(dx, dy)| {
                    let (jx, jy) = (ix + dx, iy + dy);
                    if jx < 0 || jy < 0 || jx >= nx || jy >= ny {
                        return true;
                    }
                    let w = grid.get(jx as usize, jy as usize);
                    !w.is_finite() || v < w
                });
            count += lower_than_all as usize;
        }
    }
    count
}

/// The index of the coordinate in `x` nearest `value`.
pub(crate) fn nearest(x: &[f64], value: f64) -> usize {
    (0..x.len())
        .min_by(|&a, &b| (x[a] - value).abs().total_cmp(&(x[b] - value).abs()))
        .expect("a non-empty curve")
}

#[cfg(test)]
mod tests {
    use super::*;
    use landscape_figures::linspace;

    #[test]
    fn nonconvex_points_below_a_cap_leave_the_walls_out() {
        // A bowl with a saddle-shaped wall: z = x^2 + y^2 inside r < 0.5, and 100 - x^2 + y^2
        // (non-convex) beyond it.
        let a = linspace(-1.0, 1.0, 21);
        let grid = Grid2d::from_fn(a.clone(), a, |x, y| {
            if x * x + y * y < 0.25 {
                x * x + y * y
            } else {
                100.0 - x * x + y * y
            }
        })
        .unwrap();
        let (all_bad, all) = nonconvex_points(&grid, f64::INFINITY);
        let (bad, inside) = nonconvex_points(&grid, 10.0);
        assert_eq!(all, 19 * 19);
        assert!(all_bad > 0);
        // Inside: the points whose 3 x 3 neighbourhood lies in the bowl; a bowl has none
        // non-convex.
        assert!(inside > 0 && inside < all, "{inside}");
        assert_eq!(bad, 0);
        assert_eq!(nonconvex_share(&grid), 100.0 * all_bad as f64 / all as f64);
        // Split by the loss at the point, the wall (above 50) and the bowl: the two bands add
        // up to the whole, the wall holds non-convex points, and the bowl's points in view
        // none.
        let (wall_bad, wall) = nonconvex_points_where(&grid, f64::INFINITY, |z| z > 50.0);
        let (bowl_bad, bowl) = nonconvex_points_where(&grid, f64::INFINITY, |z| z <= 50.0);
        assert_eq!((wall_bad + bowl_bad, wall + bowl), (all_bad, all));
        assert!(wall_bad > 0 && bowl > 0, "{wall_bad} {bowl}");
        assert_eq!(
            nonconvex_points_where(&grid, 10.0, |z| z <= 50.0),
            (bad, inside)
        );
    }

    #[test]
    fn basin_area_is_measured_around_the_origin_of_an_off_centre_grid() {
        // Loss x^2 + y^2 on x in [-1, 3], y in [-1, 1]: the base point (0, 0) is not the middle.
        let (xs, ys) = (linspace(-1.0, 3.0, 21), linspace(-1.0, 1.0, 11));
        let grid = Grid2d::from_fn(xs, ys, |x, y| x * x + y * y).unwrap();
        // Within 0.5 of 0 at the origin: r^2 <= 0.5, about 1.57 of the 8 square units; the
        // middle of the grid is (1, 0), where the rise would be measured from 1 instead.
        let area = basin_area(&grid, 0.5);
        let inside = grid.z().iter().filter(|z| **z <= 0.5).count();
        assert_eq!(area, 100.0 * inside as f64 / grid.z().len() as f64);
        assert!(area > 0.0 && area < 25.0, "{area}");
    }

    #[test]
    fn width_and_curvature_of_a_parabola() {
        let x = linspace(-1.0, 1.0, 51);
        let sharp: Vec<f64> = x.iter().map(|t| 8.0 * t * t).collect();
        let flat: Vec<f64> = x.iter().map(|t| 2.0 * t * t).collect();
        // 8 t^2 = 0.5 at t = 0.25: width 0.5; 2 t^2 = 0.5 at t = 0.5: width 1.
        assert!((basin_width(&x, &sharp, 0.0, 0.5) - 0.5).abs() < 0.01);
        assert!((basin_width(&x, &flat, 0.0, 0.5) - 1.0).abs() < 0.01);
        assert!((curvature(&x, &sharp, 0.0) - 16.0).abs() < 1e-6);
        // A basin wider than the grid is cut at the ends.
        let very_flat: Vec<f64> = x.iter().map(|t| 0.1 * t * t).collect();
        assert_eq!(basin_width(&x, &very_flat, 0.0, 0.5), 2.0);
        // NaN stops a basin.
        let mut broken = flat.clone();
        broken[30] = f64::NAN;
        assert!(basin_width(&x, &broken, 0.0, 0.5) < 1.0);
    }

    #[test]
    fn bowls_are_convex_saddles_are_not() {
        let a = linspace(-1.0, 1.0, 21);
        let bowl = Grid2d::from_fn(a.clone(), a.clone(), |x, y| x * x + 2.0 * y * y).unwrap();
        let saddle = Grid2d::from_fn(a.clone(), a.clone(), |x, y| x * x - y * y).unwrap();
        let ripples = Grid2d::from_fn(a.clone(), a.clone(), |x, y| {
            x * x + y * y + 0.2 * (12.0 * x).sin() * (12.0 * y).sin()
        })
        .unwrap();
        assert_eq!(nonconvex_share(&bowl), 0.0);
        assert_eq!(nonconvex_share(&saddle), 100.0);
        assert!(nonconvex_share(&ripples) > 20.0);
        assert_eq!(local_minima(&bowl), 1);
        assert!(local_minima(&ripples) > 3);
        assert!((basin_area(&bowl, 0.5) - basin_area(&bowl, 0.5)).abs() < 1e-12);
        assert!(basin_area(&bowl, 0.5) < basin_area(&bowl, 1.0));
    }
}
