//! Grids of points: an axis is `start:stop:points` (`-1:1:51`), a grid is one axis (1-D) or two
//! (2-D, any `nx` and `ny`), and point `k` has a fixed place, so shards and resumed runs agree
//! on which point is which. Shards are the job engine's ([`landscape_job::shard`]).

use anyhow::{Result, bail};
use landscape_job::grid::MAX_POINTS;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Evenly spaced coordinates from `start` to `stop` inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AxisRange {
    /// First coordinate.
    pub start: f64,
    /// Last coordinate.
    pub stop: f64,
    /// Number of coordinates (1: just `start`).
    pub points: usize,
}

impl AxisRange {
    /// Coordinate `i`.
    pub fn value(&self, i: usize) -> f64 {
        if self.points == 1 {
            self.start
        } else {
            self.start + (self.stop - self.start) * i as f64 / (self.points - 1) as f64
        }
    }

    /// All coordinates.
    pub fn values(&self) -> Vec<f64> {
        (0..self.points).map(|i| self.value(i)).collect()
    }
}

impl FromStr for AxisRange {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        let [start, stop, points] = parts[..] else {
            bail!("expected start:stop:points such as -1:1:51, got `{s}`");
        };
        let (Ok(start), Ok(stop), Ok(points)) = (
            start.trim().parse::<f64>(),
            stop.trim().parse::<f64>(),
            points.trim().parse::<usize>(),
        ) else {
            bail!("expected start:stop:points such as -1:1:51, got `{s}`");
        };
        if !start.is_finite() || !stop.is_finite() {
            bail!("axis `{s}`: start and stop must be finite");
        }
        if points == 0 || points > MAX_POINTS {
            bail!("axis `{s}`: needs between 1 and {MAX_POINTS} points");
        }
        if points > 1 && start >= stop {
            bail!("axis `{s}`: start must be below stop");
        }
        Ok(Self {
            start,
            stop,
            points,
        })
    }
}

impl fmt::Display for AxisRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.start, self.stop, self.points)
    }
}

impl TryFrom<String> for AxisRange {
    type Error = anyhow::Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<AxisRange> for String {
    fn from(a: AxisRange) -> String {
        a.to_string()
    }
}

/// One point of a grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridPoint {
    /// Index along x.
    pub ix: usize,
    /// Index along y (0 on a 1-D grid).
    pub iy: usize,
    /// Coordinate along the first direction.
    pub x: f64,
    /// Coordinate along the second direction (0 on a 1-D grid).
    pub y: f64,
}

/// A 1-D or 2-D grid.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// The first axis.
    pub x: AxisRange,
    /// The second axis, for 2-D surfaces.
    pub y: Option<AxisRange>,
}

impl Grid {
    /// What is legal but probably not meant: an axis whose range leaves out 0, so the trained
    /// point is not on the grid (one sentence each).
    pub fn warnings(&self) -> Vec<String> {
        [("x", Some(self.x)), ("y", self.y)]
            .into_iter()
            .filter_map(|(name, axis)| Some((name, axis?)))
            .filter(|(_, a)| a.start > 0.0 || a.stop < 0.0)
            .map(|(name, a)| {
                format!("axis {name} = {a} leaves out 0: the trained point is not on the grid")
            })
            .collect()
    }

    /// Number of points (saturating: the job engine refuses grids beyond its limit).
    pub fn len(&self) -> usize {
        self.x.points.saturating_mul(self.y.map_or(1, |y| y.points))
    }

    /// Whether the grid has no points (never, for a parsed axis).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Point `k`: rows of constant y, x varying fastest, so `k = iy * nx + ix`.
    pub fn point(&self, k: usize) -> GridPoint {
        let nx = self.x.points;
        let (ix, iy) = (k % nx, k / nx);
        GridPoint {
            ix,
            iy,
            x: self.x.value(ix),
            y: self.y.map_or(0.0, |y| y.value(iy)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_and_space_evenly() {
        let a: AxisRange = "-1:1:51".parse().unwrap();
        assert_eq!(a.value(0), -1.0);
        assert_eq!(a.value(25), 0.0);
        assert_eq!(a.value(50), 1.0);
        assert_eq!("-0.5:1.5:401".parse::<AxisRange>().unwrap().value(100), 0.0);
        for bad in [
            "1:-1:3",
            "-1:1:0",
            "-1:1",
            "a:b:c",
            "-1:1:2:3",
            "-1:1:4294967296",
            "nan:1:3",
        ] {
            assert!(bad.parse::<AxisRange>().is_err(), "{bad}");
        }
        assert_eq!(a.to_string().parse::<AxisRange>().unwrap(), a);
    }

    #[test]
    fn non_square_grids_index_both_axes_correctly() {
        let g = Grid {
            x: "-1:1:5".parse().unwrap(),
            y: Some("0:2:3".parse().unwrap()),
        };
        assert_eq!(g.len(), 15);
        let p = g.point(7); // row 1, column 2
        assert_eq!((p.ix, p.iy, p.x, p.y), (2, 1, 0.0, 1.0));
        let last = g.point(14);
        assert_eq!((last.ix, last.iy, last.x, last.y), (4, 2, 1.0, 2.0));
        let line = Grid {
            x: "-1:1:3".parse().unwrap(),
            y: None,
        };
        assert_eq!(line.point(2).y, 0.0);
        assert!(g.warnings().is_empty() && line.warnings().is_empty());
        let aside = Grid {
            x: "-1:1:3".parse().unwrap(),
            y: Some("0.5:1:3".parse().unwrap()),
        };
        assert_eq!(aside.warnings().len(), 1);
        assert!(aside.warnings()[0].contains("axis y"));
    }
}
