//! Contour levels and how their values are written on figures.

/// `start, start + step, ...` up to and including `stop` (MATLAB's `start:step:stop`).
///
/// Each level is computed as `start + i * step`, so long ranges do not accumulate rounding.
/// Panics when `step` is not positive and finite, which is a caller bug.
pub fn linear_levels(start: f64, step: f64, stop: f64) -> Vec<f64> {
    assert!(
        step.is_finite() && step > 0.0,
        "level step must be positive, got {step}"
    );
    if stop < start {
        return Vec::new();
    }
    // The tolerance keeps `stop` itself when (stop - start) / step is an integer up to rounding.
    let count = ((stop - start) / step + 1e-9).floor() as usize + 1;
    (0..count).map(|i| start + i as f64 * step).collect()
}

/// The contour levels of the paper's loss contour figures: `0.1:0.5:10`, i.e. 0.1, 0.6, ..., 9.6.
pub fn paper_levels() -> Vec<f64> {
    linear_levels(0.1, 0.5, 10.0)
}

/// A short human-readable form of a value for labels: at most 3 decimals, no trailing zeros,
/// scientific notation for very large or very small magnitudes.
pub(crate) fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    // Tick positions like 0.1 * 3 - 0.3 land within rounding of zero; they mean zero.
    if magnitude < 1e-12 {
        return "0".to_string();
    }
    if !(1e-3..1e5).contains(&magnitude) {
        return format!("{value:.2e}");
    }
    let fixed = format!("{value:.3}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_levels_are_0_1_to_9_6_by_0_5() {
        let levels = paper_levels();
        assert_eq!(levels.len(), 20);
        for (i, level) in levels.iter().enumerate() {
            assert!((level - (0.1 + 0.5 * i as f64)).abs() < 1e-12);
        }
        assert!((levels[19] - 9.6).abs() < 1e-12);
    }

    #[test]
    fn linear_levels_include_an_exact_stop() {
        assert_eq!(
            linear_levels(0.0, 0.25, 1.0),
            vec![0.0, 0.25, 0.5, 0.75, 1.0]
        );
        assert_eq!(linear_levels(0.0, 0.3, 1.0).len(), 4);
        assert!(linear_levels(1.0, 0.5, 0.0).is_empty());
        // 0.1 is not exact in binary; the stop must still be kept.
        assert_eq!(linear_levels(0.0, 0.1, 1.0).len(), 11);
    }

    #[test]
    fn formats_values_compactly() {
        assert_eq!(format_value(0.6), "0.6");
        assert_eq!(format_value(9.600000000000001), "9.6");
        assert_eq!(format_value(2.0), "2");
        assert_eq!(format_value(-0.0001), "-1.00e-4");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(-2.22e-16), "0");
        assert_eq!(format_value(123456.0), "1.23e5");
    }
}
