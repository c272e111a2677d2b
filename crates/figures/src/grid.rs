//! Values sampled on a rectangular grid: the loss (or accuracy, or curvature) surface.

use anyhow::{Result, ensure};

/// `z` sampled at every (x, y) of a rectangular grid, row-major in y: `z[iy * nx + ix]`.
///
/// Coordinates are finite and strictly increasing; values may be NaN or infinite (a diverged
/// evaluation), and every consumer skips or leaves a gap for those.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid2d {
    x: Vec<f64>,
    y: Vec<f64>,
    z: Vec<f64>,
}

impl Grid2d {
    /// Checks that there are at least 2 coordinates per axis, finite and strictly increasing,
    /// and exactly `x.len() * y.len()` values.
    pub fn new(x: Vec<f64>, y: Vec<f64>, z: Vec<f64>) -> Result<Self> {
        check_axis("x", &x)?;
        check_axis("y", &y)?;
        ensure!(
            z.len() == x.len() * y.len(),
            "grid has {} x and {} y coordinates, so {} values, but got {}",
            x.len(),
            y.len(),
            x.len() * y.len(),
            z.len()
        );
        Ok(Self { x, y, z })
    }

    /// Samples `f(x, y)` at every grid point.
    pub fn from_fn(x: Vec<f64>, y: Vec<f64>, f: impl Fn(f64, f64) -> f64) -> Result<Self> {
        let z = y
            .iter()
            .flat_map(|&yv| x.iter().map(move |&xv| (xv, yv)))
            .map(|(xv, yv)| f(xv, yv))
            .collect();
        Self::new(x, y, z)
    }

    /// The same grid with every value passed through `f` (e.g. a log transform).
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Self {
        Self {
            x: self.x.clone(),
            y: self.y.clone(),
            z: self.z.iter().map(|&v| f(v)).collect(),
        }
    }

    /// The x coordinates (columns).
    pub fn x(&self) -> &[f64] {
        &self.x
    }

    /// The y coordinates (rows).
    pub fn y(&self) -> &[f64] {
        &self.y
    }

    /// All values, row-major in y.
    pub fn z(&self) -> &[f64] {
        &self.z
    }

    /// Number of x coordinates.
    pub fn nx(&self) -> usize {
        self.x.len()
    }

    /// Number of y coordinates.
    pub fn ny(&self) -> usize {
        self.y.len()
    }

    /// The value at column `ix`, row `iy`. Panics when out of range, like slice indexing.
    pub fn get(&self, ix: usize, iy: usize) -> f64 {
        assert!(
            ix < self.nx() && iy < self.ny(),
            "({ix}, {iy}) outside a {}x{} grid",
            self.nx(),
            self.ny()
        );
        self.z[iy * self.nx() + ix]
    }

    /// The smallest finite value, or `None` when no value is finite.
    pub fn min(&self) -> Option<f64> {
        self.finite().reduce(f64::min)
    }

    /// The largest finite value, or `None` when no value is finite.
    pub fn max(&self) -> Option<f64> {
        self.finite().reduce(f64::max)
    }

    /// (smallest, largest) x coordinate.
    pub fn x_range(&self) -> (f64, f64) {
        (self.x[0], self.x[self.nx() - 1])
    }

    /// (smallest, largest) y coordinate.
    pub fn y_range(&self) -> (f64, f64) {
        (self.y[0], self.y[self.ny() - 1])
    }

    fn finite(&self) -> impl Iterator<Item = f64> + '_ {
        self.z.iter().copied().filter(|v| v.is_finite())
    }
}

fn check_axis(name: &str, coords: &[f64]) -> Result<()> {
    ensure!(
        coords.len() >= 2,
        "grid needs at least 2 {name} coordinates, got {}",
        coords.len()
    );
    ensure!(
        coords.iter().all(|c| c.is_finite()),
        "grid {name} coordinates must be finite"
    );
    ensure!(
        coords.windows(2).all(|w| w[0] < w[1]),
        "grid {name} coordinates must be strictly increasing"
    );
    Ok(())
}

/// `n` evenly spaced values from `start` to `stop` inclusive (numpy's `linspace`).
pub fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![start],
        _ => (0..n)
            .map(|i| start + (stop - start) * i as f64 / (n - 1) as f64)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_row_major_in_y_when_not_square() {
        let grid =
            Grid2d::from_fn(linspace(0.0, 2.0, 3), linspace(0.0, 40.0, 5), |x, y| x + y).unwrap();
        assert_eq!((grid.nx(), grid.ny()), (3, 5));
        assert_eq!(grid.get(2, 0), 2.0);
        assert_eq!(grid.get(0, 4), 40.0);
        assert_eq!(grid.get(1, 3), 31.0);
        assert_eq!(grid.z()[3 * 3 + 1], 31.0);
    }

    #[test]
    fn min_and_max_skip_non_finite_values() {
        let grid = Grid2d::new(
            vec![0.0, 1.0],
            vec![0.0, 1.0],
            vec![f64::NAN, 3.0, f64::INFINITY, -2.0],
        )
        .unwrap();
        assert_eq!(grid.min(), Some(-2.0));
        assert_eq!(grid.max(), Some(3.0));
        let empty = grid.map(|_| f64::NAN);
        assert_eq!((empty.min(), empty.max()), (None, None));
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(Grid2d::new(vec![0.0, 1.0], vec![0.0, 1.0], vec![0.0; 3]).is_err());
        assert!(Grid2d::new(vec![0.0], vec![0.0, 1.0], vec![0.0; 2]).is_err());
        assert!(Grid2d::new(vec![1.0, 0.0], vec![0.0, 1.0], vec![0.0; 4]).is_err());
        assert!(Grid2d::new(vec![0.0, f64::NAN], vec![0.0, 1.0], vec![0.0; 4]).is_err());
    }

    #[test]
    fn linspace_includes_both_ends() {
        assert_eq!(linspace(-1.0, 1.0, 5), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
    }
}
