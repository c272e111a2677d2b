//! The paper's numbers, in one place: every value a check compares with or a figure draws
//! because Li et al. (2018) printed it (as `../shared/reference/paper.md` transcribes them).
//! The checks read them from here; none is written anywhere else.

/// VGG-9's test errors (percent) in figures 2 and 3: (weight decay, batch 128, batch 8192).
pub const VGG9_TEST_ERRORS: [(f64, f64, f64); 2] = [(0.0, 7.37, 11.07), (5e-4, 6.00, 10.19)];

/// ResNet test errors (percent) with and without skip connections (figure 5, table 2):
/// (depth, with skips, without).
pub const RESNET_TEST_ERRORS: [(usize, f64, f64); 3] =
    [(20, 7.37, 8.18), (56, 5.89, 13.31), (110, 5.79, 16.44)];

/// DenseNet-121's test error (percent) in figure 4 (read from a secondary summary, not yet
/// confirmed against the PDF; paper.md marks it so).
pub const DENSENET121_TEST_ERROR: f64 = 4.37;

/// The share (percent) of a trajectory's variance two PCA components explain (figure 9).
pub const PCA_SHARE_PCT: (f64, f64) = (40.0, 90.0);

/// Keskar et al.'s epsilon-sharpness of the small- and large-batch minima of their CIFAR-10
/// network C2, which figure 3's sharpness table is read beside.
pub const KESKAR_C2_SHARPNESS: (f64, f64) = (8.7, 925.0);

/// The top of figure 7's colour range for abs(lambda_min / lambda_max), as the reference's
/// `plot_2d_eig_ratio` draws it.
pub const EIGEN_RATIO_COLOUR_MAX: f64 = 0.5;

/// VGG-9's test error (percent) at weight decay `wd`, small (`true`) or large batch.
pub fn vgg9_test_error(wd: f64, small: bool) -> Option<f64> {
    VGG9_TEST_ERRORS
        .iter()
        .find(|(w, _, _)| *w == wd)
        .map(|&(_, sb, lb)| if small { sb } else { lb })
}

/// ResNet-`depth`'s test errors (percent) with and without skip connections.
pub fn resnet_test_errors(depth: usize) -> Option<(f64, f64)> {
    RESNET_TEST_ERRORS
        .iter()
        .find(|(d, _, _)| *d == depth)
        .map(|&(_, with, without)| (with, without))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_read_the_tables() {
        assert_eq!(vgg9_test_error(5e-4, false), Some(10.19));
        assert_eq!(vgg9_test_error(1e-3, true), None);
        assert_eq!(resnet_test_errors(110), Some((5.79, 16.44)));
        assert_eq!(resnet_test_errors(32), None);
    }
}
