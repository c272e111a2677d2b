//! The record of one surface point: the loss and accuracy there, as a row of the surface's
//! journals and of `surface.csv`.

use landscape_job::journal::{Row, same_f64};

/// The header of surface journals and of `surface.csv`.
pub const HEADER: &str = "ix,iy,x,y,train_loss,train_acc,test_loss,test_acc,negative_var";

/// The measurements at one grid point.
#[derive(Clone, Debug, PartialEq)]
pub struct PointRow {
    /// Index along x.
    pub ix: usize,
    /// Index along y (0 for 1-D).
    pub iy: usize,
    /// Coordinate along the first direction.
    pub x: f64,
    /// Coordinate along the second direction (0 for 1-D).
    pub y: f64,
    /// Mean training loss (NaN or inf recorded as such).
    pub train_loss: f64,
    /// Training accuracy, percent.
    pub train_acc: f64,
    /// Mean test loss, when measured.
    pub test_loss: Option<f64>,
    /// Test accuracy, percent, when measured.
    pub test_acc: Option<f64>,
    /// BatchNorm running-variance entries below zero at this point (extrapolated statistics),
    /// clamped to zero for the evaluation.
    pub negative_var: u64,
}

impl Row for PointRow {
    const HEADER: &'static str = HEADER;

    fn to_line(&self) -> String {
        let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        format!(
            "{},{},{},{},{},{},{},{},{}\n",
            self.ix,
            self.iy,
            self.x,
            self.y,
            self.train_loss,
            self.train_acc,
            opt(self.test_loss),
            opt(self.test_acc),
            self.negative_var
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 9 {
            return None;
        }
        let opt = |s: &str| {
            if s.is_empty() {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        };
        Some(Self {
            ix: f[0].parse().ok()?,
            iy: f[1].parse().ok()?,
            x: f[2].parse().ok()?,
            y: f[3].parse().ok()?,
            train_loss: f[4].parse().ok()?,
            train_acc: f[5].parse().ok()?,
            test_loss: opt(f[6])?,
            test_acc: opt(f[7])?,
            negative_var: f[8].parse().ok()?,
        })
    }

    fn index(&self) -> (usize, usize) {
        (self.ix, self.iy)
    }

    fn same(&self, b: &Self) -> bool {
        let eq_opt = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => same_f64(x, y),
            (None, None) => true,
            _ => false,
        };
        self.ix == b.ix
            && self.iy == b.iy
            && same_f64(self.train_loss, b.train_loss)
            && same_f64(self.train_acc, b.train_acc)
            && eq_opt(self.test_loss, b.test_loss)
            && eq_opt(self.test_acc, b.test_acc)
    }
}
