//! Transforms applied to surface values before drawing, so both basins and high walls show.

use crate::grid::Grid2d;

/// A monotone map applied to z before drawing a surface or exporting it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ZTransform {
    /// z unchanged.
    #[default]
    Identity,
    /// `ln(z + offset)`; the paper's 3-D plots use an offset of 0.1 ([`ZTransform::PAPER_LOG`]).
    LogOffset(f64),
}

impl ZTransform {
    /// `ln(z + 0.1)`, as the paper and its reference code (`h52vtp.py --log`) do.
    pub const PAPER_LOG: Self = Self::LogOffset(0.1);

    /// The transformed value (NaN where the log is undefined).
    pub fn apply(self, z: f64) -> f64 {
        match self {
            Self::Identity => z,
            Self::LogOffset(offset) => (z + offset).ln(),
        }
    }

    /// The grid with every value transformed.
    pub fn apply_to(self, grid: &Grid2d) -> Grid2d {
        grid.map(|z| self.apply(z))
    }

    /// An axis label for the transformed quantity named `label`, e.g. "ln(loss + 0.1)".
    pub fn describe(self, label: &str) -> String {
        match self {
            Self::Identity => label.to_string(),
            Self::LogOffset(offset) => {
                format!("ln({label} + {})", crate::levels::format_value(offset))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_log_is_ln_z_plus_a_tenth() {
        assert!((ZTransform::PAPER_LOG.apply(0.9) - 0.0).abs() < 1e-15);
        assert_eq!(ZTransform::Identity.apply(3.5), 3.5);
        assert!(ZTransform::PAPER_LOG.apply(-1.0).is_nan());
        assert_eq!(ZTransform::PAPER_LOG.describe("loss"), "ln(loss + 0.1)");
    }
}
