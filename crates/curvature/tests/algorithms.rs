//! The Krylov and trace algorithms on explicit matrices with known spectra.

use burn::tensor::Device;
use landscape_curvature::lanczos::{
    DensityOptions, Lanczos, extreme_eigenvalues, spectral_density,
};
use landscape_curvature::operator::DenseOperator;
use landscape_curvature::power::power_iteration;
use landscape_curvature::trace::{hutch_plus_plus, hutchinson};
use landscape_curvature::vector::{VecShape, rng};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A seeded random orthogonal `n x n` matrix (Gram-Schmidt of Gaussian columns), row-major.
fn orthogonal(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cols: Vec<Vec<f64>> = Vec::new();
    while cols.len() < n {
        let mut v: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
        for _ in 0..2 {
            for c in &cols {
                let d: f64 = v.iter().zip(c).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(c).for_each(|(a, b)| *a -= d * b);
            }
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        cols.push(v.into_iter().map(|a| a / norm).collect());
    }
    (0..n * n).map(|k| cols[k % n][k / n]).collect()
}

/// `Q diag(d) Q^T`.
fn with_spectrum(d: &[f64], seed: u64) -> Vec<f64> {
    let n = d.len();
    let q = orthogonal(n, seed);
    (0..n * n)
        .map(|k| {
            (0..n)
                .map(|j| q[(k / n) * n + j] * d[j] * q[(k % n) * n + j])
                .sum()
        })
        .collect()
}

/// 60 eigenvalues: three large well-separated ones, a bulk in [-2, 5], and -4 at the bottom.
fn spectrum() -> Vec<f64> {
    let mut d = vec![50.0, 30.0, 20.0, -4.0];
    d.extend((0..56).map(|i| -2.0 + 7.0 * i as f64 / 55.0));
    d
}

/// Vectors of two parts (25 + 35 values), so the algorithms see multi-tensor vectors.
fn shape() -> VecShape {
    VecShape::new(vec![25, 35], Device::flex())
}

#[test]
fn lanczos_finds_top_k_and_lambda_min() {
    let op = DenseOperator::new(&with_spectrum(&spectrum(), 1), shape());
    let e = extreme_eigenvalues(&op, 3, 30, 7).unwrap();
    for (got, want) in e.top.iter().zip([50.0, 30.0, 20.0]) {
        assert!(
            (got - want).abs() < 1e-3 * 50.0,
            "top eigenvalue {got} vs {want}"
        );
    }
    assert!(
        (e.lambda_min + 4.0).abs() < 1e-3 * 50.0,
        "lambda_min {}",
        e.lambda_min
    );
    assert!(
        e.top_residuals[0] < 1e-2 && e.lambda_min_residual < 0.1,
        "residuals {:?} {}",
        e.top_residuals,
        e.lambda_min_residual
    );
    assert_eq!(e.products, 30);
    assert!((e.ratio() - 4.0 / 50.0).abs() < 1e-3);
    // Same seed, same numbers.
    assert_eq!(e, extreme_eigenvalues(&op, 3, 30, 7).unwrap());
    // A full run recovers the whole spectrum (full reorthogonalization: no ghosts).
    let full = Lanczos::run(&op, &shape().rademacher(&mut rng(3)), 60)
        .unwrap()
        .ritz();
    let mut want = spectrum();
    want.sort_by(f64::total_cmp);
    assert_eq!(full.values.len(), 60);
    for (got, want) in full.values.iter().zip(&want) {
        assert!(
            (got - want).abs() < 2e-3 * 50.0,
            "Ritz value {got} vs eigenvalue {want}"
        );
    }
    assert!((full.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
}

#[test]
fn power_iteration_finds_both_ends() {
    let op = DenseOperator::new(&with_spectrum(&spectrum(), 2), shape());
    let top = power_iteration(&op, 0.0, 500, 1e-7, 0).unwrap();
    assert!(top.converged);
    assert!((top.eigenvalue - 50.0).abs() < 1e-3 * 50.0, "{top:?}");
    // Shifted by lambda_max, the dominant eigenvalue is lambda_min - lambda_max (ratio 52/54
    // to the next: slow, as expected of power iteration).
    let bottom = power_iteration(&op, top.eigenvalue, 2000, 1e-9, 0).unwrap();
    assert!((bottom.eigenvalue + 4.0).abs() < 0.05, "{bottom:?}");
}

#[test]
fn hutchinson_is_exact_on_diagonals_and_unbiased_in_general() {
    let d: Vec<f64> = (0..60).map(|i| (i as f64 - 20.0) / 3.0).collect();
    let diag = DenseOperator::diagonal(&d, shape());
    let t = hutchinson(&diag, 5, 1).unwrap();
    let exact: f64 = d.iter().sum();
    assert!(
        (t.trace - exact).abs() < 1e-3,
        "Rademacher probes give z^T D z = tr D exactly: {} vs {exact}",
        t.trace
    );
    assert!(t.stderr < 1e-3);
    let op = DenseOperator::new(&with_spectrum(&spectrum(), 3), shape());
    let exact: f64 = spectrum().iter().sum();
    let t = hutchinson(&op, 400, 5).unwrap();
    assert!(t.stderr > 0.5, "a dense matrix has variance: {t:?}");
    assert!(
        (t.trace - exact).abs() < 4.0 * t.stderr,
        "{} vs {exact} (stderr {})",
        t.trace,
        t.stderr
    );
}

#[test]
fn hutch_plus_plus_is_exact_on_low_rank_and_beats_hutchinson() {
    // Rank 5: a sketch of 5 products spans the range, so the estimate is exact.
    let mut d = vec![0.0; 60];
    d[..5].copy_from_slice(&[9.0, -7.0, 5.0, 3.0, 1.0]);
    let op = DenseOperator::new(&with_spectrum(&d, 4), shape());
    let t = hutch_plus_plus(&op, 15, 0).unwrap();
    assert!((t.trace - 11.0).abs() < 1e-3, "{t:?}");
    // A decaying spectrum: over 12 seeds, Hutch++ with 30 products errs less than Hutchinson
    // with 30 probes.
    let decaying: Vec<f64> = (0..60).map(|i| 40.0 * 0.8f64.powi(i)).collect();
    let op = DenseOperator::new(&with_spectrum(&decaying, 5), shape());
    let exact: f64 = decaying.iter().sum();
    let (mut e_h, mut e_pp) = (0.0, 0.0);
    for seed in 0..12 {
        e_h += (hutchinson(&op, 30, seed).unwrap().trace - exact).abs();
        e_pp += (hutch_plus_plus(&op, 30, seed).unwrap().trace - exact).abs();
    }
    assert!(
        e_pp < 0.5 * e_h,
        "mean errors: Hutch++ {} vs Hutchinson {}",
        e_pp / 12.0,
        e_h / 12.0
    );
}

#[test]
fn spectral_density_integrates_to_one_and_sits_on_the_eigenvalues() {
    // Three eigenvalues of multiplicity 20: Lanczos closes after 3 steps, nodes are exact.
    let mut d = vec![-1.0; 20];
    d.extend([2.0; 20]);
    d.extend([6.0; 20]);
    let op = DenseOperator::new(&with_spectrum(&d, 6), shape());
    let density = spectral_density(
        &op,
        &DensityOptions {
            probes: 8,
            steps: 20,
            grid_points: 2000,
            sigma_rel: 0.01,
        },
        3,
    )
    .unwrap();
    assert!(
        (density.integral() - 1.0).abs() < 1e-3,
        "integral {}",
        density.integral()
    );
    let mut total = 0.0;
    for lambda in [-1.0, 2.0, 6.0] {
        let mass = density.mass_near(lambda, 0.01);
        assert!(
            (0.2..0.47).contains(&mass),
            "mass {mass} near {lambda} (expected about 1/3)"
        );
        total += mass;
    }
    assert!(total > 0.999, "all the mass is on the eigenvalues: {total}");
    assert!(
        (density.trace - 140.0).abs() < 0.15 * 140.0,
        "quadrature trace {}",
        density.trace
    );
    // The density peaks at the eigenvalues.
    let peak = density.grid[density
        .density
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0];
    assert!(
        [-1.0, 2.0, 6.0].iter().any(|l| (peak - l).abs() < 0.05),
        "peak at {peak}"
    );
    // A general spectrum: still a probability density.
    let op = DenseOperator::new(&with_spectrum(&spectrum(), 7), shape());
    let density = spectral_density(&op, &DensityOptions::default(), 0).unwrap();
    assert!((density.integral() - 1.0).abs() < 1e-3);
    assert!(density.density.iter().all(|p| *p >= 0.0));
    assert!(
        density.mass_near(50.0, 0.5) > 0.0,
        "the top eigenvalue is a node"
    );
}
