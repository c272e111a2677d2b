//! Eigenvalues and eigenvectors of small dense symmetric matrices on the host (cyclic Jacobi
//! rotations in f64): the tridiagonal matrices of Lanczos, the projected matrices of Hutch++,
//! and reference Hessians in tests. Accurate to a few ulps of the largest eigenvalue; fine up to
//! a few hundred rows.

/// A symmetric eigendecomposition: eigenvalues ascending, eigenvectors as columns.
#[derive(Clone, Debug)]
pub struct SymEigen {
    /// Eigenvalues in ascending order.
    pub values: Vec<f64>,
    /// Row-major `n x n`: column `j` is the unit eigenvector of `values[j]`.
    pub vectors: Vec<f64>,
    /// Order of the matrix.
    pub n: usize,
}

impl SymEigen {
    /// Component `i` of eigenvector `j`.
    pub fn vector(&self, i: usize, j: usize) -> f64 {
        self.vectors[i * self.n + j]
    }
}

/// The eigendecomposition of the symmetric `n x n` matrix `a` (row-major; only its symmetric
/// part is used).
pub fn symmetric_eigen(a: &[f64], n: usize) -> SymEigen {
    assert_eq!(
        a.len(),
        n * n,
        "matrix of {} values is not {n} x {n}",
        a.len()
    );
    let mut m: Vec<f64> = (0..n * n)
        .map(|k| 0.5 * (a[k] + a[(k % n) * n + k / n]))
        .collect();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale = m.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j].powi(2))
            .sum();
        if off.sqrt() <= 1e-15 * scale || scale == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let (app, aqq) = (m[p * n + p], m[q * n + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[i * n + i].total_cmp(&m[j * n + j]));
    let values = order.iter().map(|&i| m[i * n + i]).collect();
    let mut vectors = vec![0.0; n * n];
    for (new, &old) in order.iter().enumerate() {
        for k in 0..n {
            vectors[k * n + new] = v[k * n + old];
        }
    }
    SymEigen { values, vectors, n }
}

/// The eigendecomposition of the symmetric tridiagonal matrix with diagonal `alpha` and
/// off-diagonal `beta` (`beta.len() == alpha.len() - 1`).
pub fn tridiagonal_eigen(alpha: &[f64], beta: &[f64]) -> SymEigen {
    let n = alpha.len();
    assert!(
        n == 0 || beta.len() == n - 1,
        "tridiagonal needs {} off-diagonal values, got {}",
        n.saturating_sub(1),
        beta.len()
    );
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        a[i * n + i] = alpha[i];
        if i + 1 < n {
            a[i * n + i + 1] = beta[i];
            a[(i + 1) * n + i] = beta[i];
        }
    }
    symmetric_eigen(&a, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_spectrum() {
        // Q diag(d) Q^T with Q a product of rotations.
        let n = 6;
        let d = [-2.0, -0.5, 0.0, 1.0, 3.0, 10.0];
        let mut q = vec![0.0; n * n];
        for i in 0..n {
            q[i * n + i] = 1.0;
        }
        for (p, r, angle) in [(0, 3, 0.4), (1, 5, 1.1), (2, 4, -0.7), (0, 5, 0.3)] {
            let (c, s) = (f64::cos(angle), f64::sin(angle));
            for k in 0..n {
                let (a, b) = (q[k * n + p], q[k * n + r]);
                q[k * n + p] = c * a - s * b;
                q[k * n + r] = s * a + c * b;
            }
        }
        let a: Vec<f64> = (0..n * n)
            .map(|k| {
                (0..n)
                    .map(|j| q[(k / n) * n + j] * d[j] * q[(k % n) * n + j])
                    .sum()
            })
            .collect();
        let e = symmetric_eigen(&a, n);
        for (got, want) in e.values.iter().zip(d) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        // A v = lambda v for every pair.
        for j in 0..n {
            for i in 0..n {
                let av: f64 = (0..n).map(|k| a[i * n + k] * e.vector(k, j)).sum();
                assert!((av - e.values[j] * e.vector(i, j)).abs() < 1e-12);
            }
        }
        let t = tridiagonal_eigen(&[2.0, 2.0, 2.0], &[1.0, 1.0]);
        let s2 = 2f64.sqrt();
        for (got, want) in t.values.iter().zip([2.0 - s2, 2.0, 2.0 + s2]) {
            assert!((got - want).abs() < 1e-12);
        }
    }
}
