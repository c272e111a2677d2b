//! PCA of an optimization path, exact and memory-light.
//!
//! The rows are `r_e = theta_e - theta_final` for the saved epochs. With `E` rows of `P`
//! parameters, the `E x E` Gram matrix `G = R R^T` holds everything PCA needs: centring is
//! `Gc = H G H` (`H = I - 11^T / E`), its eigenpairs `(lambda_k, u_k)` give the explained
//! variances, the components are `pc_k = R^T H u_k / sqrt(lambda_k)` (unit norm), and the
//! coordinates of each iterate are `<r_e, pc_k> = (G H u_k)_e / sqrt(lambda_k)`. `G` is
//! accumulated slice by slice of the parameters, reading each slice from every checkpoint
//! (safetensors headers say where), so memory is `E` times the slice, never `E x P`.

use anyhow::{Result, bail};
use landscape_core::linalg::symmetric_eigen;
use landscape_core::tensor_file::TensorIndex;
use rayon::prelude::*;

/// A contiguous run of values of one named tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// The tensor's name.
    pub name: String,
    /// First value.
    pub start: usize,
    /// Number of values.
    pub len: usize,
}

/// The vectors a path is made of: for each row, where to read it; all rows are read minus the
/// final point.
pub struct PathSource {
    /// One index per saved epoch (the rows), in epoch order.
    pub rows: Vec<TensorIndex>,
    /// The final point.
    pub last: TensorIndex,
    /// The parameter slices that make up a vector, in order.
    pub segments: Vec<Segment>,
}

/// What the PCA found.
#[derive(Clone, Debug)]
pub struct PathPca {
    /// Share of the path's variance explained by each component, largest first.
    pub explained: Vec<f64>,
    /// Coordinates of each row on the first two components.
    pub coords: Vec<[f64; 2]>,
    /// The first two components, unit norm, concatenated over the segments.
    pub components: [Vec<f32>; 2],
    /// `||r_e||` of each row.
    pub row_norms: Vec<f64>,
    /// Extra vectors' dot products with each row (`dots[k][e] = <r_e, extra_k>`).
    pub dots: Vec<Vec<f64>>,
}

impl PathSource {
    /// Number of values in a vector.
    pub fn len(&self) -> usize {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// Whether vectors are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cuts the segments into chunks of at most `values` values each (a tensor may be split).
    fn chunks(&self, values: usize) -> Vec<Vec<Segment>> {
        let mut chunks = vec![Vec::new()];
        let mut room = values;
        for seg in &self.segments {
            let mut start = seg.start;
            let mut left = seg.len;
            while left > 0 {
                if room == 0 {
                    chunks.push(Vec::new());
                    room = values;
                }
                let take = left.min(room);
                chunks.last_mut().expect("non-empty").push(Segment {
                    name: seg.name.clone(),
                    start,
                    len: take,
                });
                start += take;
                left -= take;
                room -= take;
            }
        }
        chunks
    }

    /// The rows' values over `chunk` (`rows x values`, row-major).
    fn read(&self, chunk: &[Segment]) -> Result<Vec<Vec<f32>>> {
        let last: Vec<f32> = chunk
            .iter()
            .map(|s| self.last.read(&s.name, s.start, s.len))
            .collect::<Result<Vec<_>>>()?
            .concat();
        self.rows
            .par_iter()
            .map(|row| {
                let values = chunk
                    .iter()
                    .map(|s| row.read(&s.name, s.start, s.len))
                    .collect::<Result<Vec<_>>>()?
                    .concat();
                Ok(values.iter().zip(&last).map(|(a, b)| a - b).collect())
            })
            .collect()
    }
}

/// The eigenpairs of a centred Gram matrix, largest first, and the share of the variance each
/// explains.
struct CentredSpectrum {
    /// Eigenvalues of `H G H`, largest first.
    values: Vec<f64>,
    /// The matching unit eigenvectors.
    vectors: Vec<Vec<f64>>,
    /// Each eigenvalue's share of their positive sum; empty when nothing varies.
    explained: Vec<f64>,
}

/// Centres the `e x e` Gram matrix `gram` (`H G H`) and solves it.
fn centred_spectrum(gram: &[f64], e: usize) -> CentredSpectrum {
    let row_mean: Vec<f64> = (0..e)
        .map(|i| gram[i * e..(i + 1) * e].iter().sum::<f64>() / e as f64)
        .collect();
    let all_mean = row_mean.iter().sum::<f64>() / e as f64;
    let centred: Vec<f64> = (0..e * e)
        .map(|k| gram[k] - row_mean[k / e] - row_mean[k % e] + all_mean)
        .collect();
    // Ascending from the solver; largest first here.
    let eigen = symmetric_eigen(&centred, e);
    let values: Vec<f64> = eigen.values.iter().rev().copied().collect();
    let vectors = (0..e)
        .rev()
        .map(|j| (0..e).map(|i| eigen.vector(i, j)).collect())
        .collect();
    let total: f64 = values.iter().filter(|v| **v > 0.0).sum();
    let explained = if total > 0.0 {
        values.iter().map(|v| v.max(0.0) / total).collect()
    } else {
        Vec::new()
    };
    CentredSpectrum {
        values,
        vectors,
        explained,
    }
}

/// The share of the variance each principal component explains for a random walk of `points`
/// iterates (independent isotropic steps) in the limit of many dimensions, largest first: the
/// baseline a real path's PCA is compared with. There the Gram matrix of the iterates is
/// `min(i, j)` times the step variance (iterate `i` has taken `i` steps), so the shares are
/// exact, near `6 / (pi^2 k^2)` for the `k`-th component of a long walk (Antognini and
/// Sohl-Dickstein 2018); two components hold about 76 %.
pub fn random_walk_explained(points: usize) -> Vec<f64> {
    let gram: Vec<f64> = (0..points * points)
        .map(|k| (k / points).min(k % points) as f64)
        .collect();
    centred_spectrum(&gram, points).explained
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// PCA of the rows of `source`; `extras` are vectors (concatenated over the segments) whose dot
/// products with each row are wanted too (random directions for comparison). Reads each
/// checkpoint slice by slice, `memory_values` values at a time in all.
pub fn path_pca(source: &PathSource, extras: &[Vec<f32>], memory_values: usize) -> Result<PathPca> {
    let e = source.rows.len();
    if e < 3 {
        bail!("a path PCA needs at least 3 saved epochs, got {e}");
    }
    for extra in extras {
        if extra.len() != source.len() {
            bail!(
                "an extra vector has {} values for a path of {}",
                extra.len(),
                source.len()
            );
        }
    }
    let chunk_values = (memory_values / e).max(1024);
    let chunks = source.chunks(chunk_values);
    let mut gram = vec![0.0f64; e * e];
    let mut dots = vec![vec![0.0f64; e]; extras.len()];
    let mut offset = 0;
    for chunk in &chunks {
        let rows = source.read(chunk)?;
        let n: usize = chunk.iter().map(|s| s.len).sum();
        let block: Vec<f64> = (0..e * e)
            .into_par_iter()
            .map(|k| {
                if k % e >= k / e {
                    dot(&rows[k / e], &rows[k % e])
                } else {
                    0.0
                }
            })
            .collect();
        for i in 0..e {
            for j in i..e {
                gram[i * e + j] += block[i * e + j];
                if i != j {
                    gram[j * e + i] += block[i * e + j];
                }
            }
        }
        for (k, extra) in extras.iter().enumerate() {
            for (i, row) in rows.iter().enumerate() {
                dots[k][i] += dot(row, &extra[offset..offset + n]);
            }
        }
        offset += n;
    }
    let CentredSpectrum {
        values,
        vectors,
        explained,
    } = centred_spectrum(&gram, e);
    if explained.is_empty() {
        bail!("the path does not move: every saved point is the same");
    }
    // w_k = H u_k / sigma_k, so pc_k = R^T w_k and <r_e, pc_k> = (G w_k)_e.
    let weights: Vec<Vec<f64>> = (0..2)
        .map(|k| {
            let u = &vectors[k];
            let mean = u.iter().sum::<f64>() / e as f64;
            let sigma = values[k].max(f64::MIN_POSITIVE).sqrt();
            u.iter().map(|x| (x - mean) / sigma).collect()
        })
        .collect();
    let coords = (0..e).map(|i| {
        let c = |w: &Vec<f64>| (0..e).map(|j| gram[i * e + j] * w[j]).sum::<f64>();
        [c(&weights[0]), c(&weights[1])]
    });
    let coords: Vec<[f64; 2]> = coords.collect();
    let mut components = [
        Vec::with_capacity(source.len()),
        Vec::with_capacity(source.len()),
    ];
    for chunk in &chunks {
        let rows = source.read(chunk)?;
        let n = rows[0].len();
        for (k, component) in components.iter_mut().enumerate() {
            component.extend((0..n).map(|i| {
                rows.iter()
                    .zip(&weights[k])
                    .map(|(r, w)| r[i] as f64 * w)
                    .sum::<f64>() as f32
            }));
        }
    }
    let row_norms = (0..e).map(|i| gram[i * e + i].max(0.0).sqrt()).collect();
    Ok(PathPca {
        explained,
        coords,
        components,
        row_norms,
        dots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_random_walk_puts_six_over_pi_squared_k_squared_in_component_k() {
        let shares = random_walk_explained(400);
        let pi2 = std::f64::consts::PI.powi(2);
        for (k, share) in shares.iter().take(3).enumerate() {
            let expected = 6.0 / (pi2 * ((k + 1) * (k + 1)) as f64);
            assert!(
                (share - expected).abs() < 0.01,
                "component {}: {share} vs {expected}",
                k + 1
            );
        }
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let short = random_walk_explained(10);
        assert!(short[0] + short[1] > shares[0] + shares[1], "{short:?}");
    }
}
