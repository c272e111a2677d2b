//! Grids of points: an axis is `start:stop:points` (`-1:1:51`), a grid is one axis (1-D) or two
//! (2-D, any `nx` and `ny`), and point `k` has a fixed place, so shards and resumed runs agree
//! on which point is which.

use anyhow::{Result, bail};
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
        if points == 0 {
            bail!("axis `{s}`: needs at least 1 point");
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
    /// Number of points.
    pub fn len(&self) -> usize {
        self.x.points * self.y.map_or(1, |y| y.points)
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

/// Part `index` of `count` (1-based, `--shard 2/4`): the points `k` with `k % count ==
/// index - 1`, interleaved so every shard gets a fair share of the expensive and cheap regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, from 1.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole grid as one shard.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Whether point `k` belongs to this shard.
    pub fn owns(&self, k: usize) -> bool {
        k % self.count == self.index - 1
    }
}

impl FromStr for Shard {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let parsed = s
            .split_once('/')
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if count >= 1 && (1..=count).contains(&index) => {
                Ok(Self { index, count })
            }
            _ => bail!("expected a shard k/n with 1 <= k <= n, such as 2/4, got `{s}`"),
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
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
        for bad in ["1:-1:3", "-1:1:0", "-1:1", "a:b:c", "-1:1:2:3"] {
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
    }

    #[test]
    fn shards_partition_the_grid() {
        let shards: Vec<Shard> = (1..=3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        for k in 0..20 {
            assert_eq!(shards.iter().filter(|s| s.owns(k)).count(), 1);
        }
        assert!("0/3".parse::<Shard>().is_err() && "4/3".parse::<Shard>().is_err());
    }
}
