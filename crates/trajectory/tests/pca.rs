//! PCA of paths with known structure, against a direct decomposition.

use landscape_core::linalg::symmetric_eigen;
use landscape_core::tensor_file::{HostTensor, TensorFile, TensorIndex};
use landscape_trajectory::pca::{PathSource, Segment, path_pca};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::Path;

/// Writes one checkpoint per point, the vector split over two tensors `a` (first `split`
/// values) and `b`.
fn write_path(dir: &Path, points: &[Vec<f32>], split: usize) -> PathSource {
    let rows: Vec<TensorIndex> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let path = dir.join(format!("e{i}.safetensors"));
            TensorFile {
                tensors: vec![
                    HostTensor {
                        name: "a".into(),
                        shape: vec![split],
                        values: p[..split].to_vec(),
                    },
                    HostTensor {
                        name: "b".into(),
                        shape: vec![p.len() - split],
                        values: p[split..].to_vec(),
                    },
                ],
                metadata: Default::default(),
            }
            .write(&path)
            .unwrap();
            TensorIndex::open(&path).unwrap()
        })
        .collect();
    let n = points[0].len();
    PathSource {
        last: rows.last().unwrap().clone(),
        rows,
        segments: vec![
            Segment {
                name: "a".into(),
                start: 0,
                len: split,
            },
            Segment {
                name: "b".into(),
                start: 0,
                len: n - split,
            },
        ],
    }
}

fn unit(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter().map(|x| x / n).collect()
}

#[test]
fn a_path_in_a_plane_gives_that_plane_and_all_the_variance() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let n = 300;
    let mut gauss = || -> f64 { StandardNormal.sample(&mut rng) };
    let a: Vec<f64> = unit(&(0..n).map(|_| gauss()).collect::<Vec<_>>());
    let b0: Vec<f64> = (0..n).map(|_| gauss()).collect();
    let ab: f64 = a.iter().zip(&b0).map(|(x, y)| x * y).sum();
    let b = unit(
        &b0.iter()
            .zip(&a)
            .map(|(y, x)| y - ab * x)
            .collect::<Vec<_>>(),
    );
    let start: Vec<f64> = (0..n).map(|_| gauss()).collect();
    // A spiral in the plane of a and b, plus tiny noise.
    let points: Vec<Vec<f32>> = (0..30)
        .map(|t| {
            let s = t as f64 / 29.0;
            let (u, v) = (
                5.0 * (1.0 - s) * (3.0 * s).cos(),
                3.0 * (1.0 - s) * (3.0 * s).sin(),
            );
            (0..n)
                .map(|i| (start[i] + u * a[i] + v * b[i] + 1e-4 * gauss()) as f32)
                .collect()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let source = write_path(dir.path(), &points, 100);
    let pca = path_pca(&source, &[], 64 * 30).unwrap();
    assert!(
        pca.explained[0] + pca.explained[1] > 0.999,
        "{:?}",
        &pca.explained[..3]
    );
    // Both components lie in span(a, b).
    for c in &pca.components {
        let (ca, cb): (f64, f64) = (
            c.iter().zip(&a).map(|(x, y)| *x as f64 * y).sum(),
            c.iter().zip(&b).map(|(x, y)| *x as f64 * y).sum(),
        );
        assert!(
            (ca * ca + cb * cb - 1.0).abs() < 1e-3,
            "component leaves the plane: {ca} {cb}"
        );
    }
    // Projecting the path back reproduces each iterate's offset from the end.
    for (i, p) in points.iter().enumerate() {
        let r: Vec<f64> = p
            .iter()
            .zip(points.last().unwrap())
            .map(|(x, y)| (*x - *y) as f64)
            .collect();
        let dot = |c: &Vec<f32>| r.iter().zip(c).map(|(x, y)| x * *y as f64).sum::<f64>();
        assert!((dot(&pca.components[0]) - pca.coords[i][0]).abs() < 1e-3);
        assert!((dot(&pca.components[1]) - pca.coords[i][1]).abs() < 1e-3);
    }
}

#[test]
fn the_gram_route_equals_a_direct_decomposition() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (n, e) = (40, 12);
    let points: Vec<Vec<f32>> = (0..e)
        .map(|t| {
            (0..n)
                .map(|i| {
                    ((i * t) as f64 * 0.01 + {
                        let g: f64 = StandardNormal.sample(&mut rng);
                        g * 0.3
                    }) as f32
                })
                .collect()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let source = write_path(dir.path(), &points, 17);
    // Tiny memory budget: many chunks, tensors split across them.
    let pca = path_pca(&source, &[], 1).unwrap();
    // Direct: covariance of the centred rows (n x n), eigen-decomposed.
    let rows: Vec<Vec<f64>> = points
        .iter()
        .map(|p| {
            p.iter()
                .zip(points.last().unwrap())
                .map(|(x, y)| (*x - *y) as f64)
                .collect()
        })
        .collect();
    let mean: Vec<f64> = (0..n)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / e as f64)
        .collect();
    let mut cov = vec![0.0; n * n];
    for r in &rows {
        for i in 0..n {
            for j in 0..n {
                cov[i * n + j] += (r[i] - mean[i]) * (r[j] - mean[j]);
            }
        }
    }
    let eigen = symmetric_eigen(&cov, n);
    let total: f64 = eigen.values.iter().filter(|v| **v > 0.0).sum();
    for k in 0..2 {
        let j = n - 1 - k; // ascending order: the largest are last
        assert!(
            (eigen.values[j] / total - pca.explained[k]).abs() < 1e-6,
            "ratio {k}"
        );
        let dot: f64 = (0..n)
            .map(|i| eigen.vector(i, j) * pca.components[k][i] as f64)
            .sum();
        assert!(
            (dot.abs() - 1.0).abs() < 1e-4,
            "component {k} differs: |cos| = {}",
            dot.abs()
        );
    }
}
