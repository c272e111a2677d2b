//! Vectors in parameter space: one flat device tensor per varying parameter tensor, with the
//! few operations the Krylov methods need (dot products, `axpy`, norms), computed on the device
//! and read back as `f64`. Random vectors are drawn on the host from a ChaCha8 stream and
//! uploaded, so a seed gives the same vectors on every device.

use burn::tensor::{DType, Device, Tensor, TensorCreationOptions, TensorData};
use rand::RngExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// The shape of a [`ParamVec`]: the length of each part, the device and the float type.
#[derive(Clone, Debug)]
pub struct VecShape {
    /// Values per part.
    pub sizes: Vec<usize>,
    /// Where the parts live.
    pub device: Device,
    /// Their float type (`F32` normally; `F64` for reference computations on the CPU).
    pub dtype: DType,
}

impl VecShape {
    /// A shape of `sizes` on `device` in f32.
    pub fn new(sizes: Vec<usize>, device: Device) -> Self {
        Self {
            sizes,
            device,
            dtype: DType::F32,
        }
    }

    /// Total number of values.
    pub fn numel(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// The zero vector.
    pub fn zeros(&self) -> ParamVec {
        ParamVec::new(
            self.sizes
                .iter()
                .map(|&n| Tensor::<1>::zeros([n], self.options()))
                .collect(),
        )
    }

    /// Uploads host values (one `Vec<f32>` per part).
    pub fn from_host(&self, parts: Vec<Vec<f32>>) -> ParamVec {
        assert_eq!(
            parts.len(),
            self.sizes.len(),
            "host vector has {} parts, shape {}",
            parts.len(),
            self.sizes.len()
        );
        ParamVec::new(
            parts
                .into_iter()
                .zip(&self.sizes)
                .map(|(v, &n)| {
                    assert_eq!(
                        v.len(),
                        n,
                        "host part of {} values for a part of {n}",
                        v.len()
                    );
                    Tensor::<1>::from_data(TensorData::new(v, [n]), self.options())
                })
                .collect(),
        )
    }

    /// A vector of independent random signs (Rademacher), the next draws of `rng`.
    pub fn rademacher(&self, rng: &mut ChaCha8Rng) -> ParamVec {
        let parts = self
            .sizes
            .iter()
            .map(|&n| {
                (0..n)
                    .map(|_| if rng.random::<bool>() { 1.0f32 } else { -1.0 })
                    .collect()
            })
            .collect();
        self.from_host(parts)
    }

    /// A vector of independent standard normal values, the next draws of `rng`.
    pub fn gaussian(&self, rng: &mut ChaCha8Rng) -> ParamVec {
        let parts = self
            .sizes
            .iter()
            .map(|&n| (0..n).map(|_| StandardNormal.sample(rng)).collect())
            .collect();
        self.from_host(parts)
    }

    fn options(&self) -> TensorCreationOptions {
        TensorCreationOptions::new(self.device.clone()).with_dtype(self.dtype)
    }
}

/// The random stream of a computation: ChaCha8 seeded with `seed` (host side, device independent).
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A vector in parameter space, one flat tensor per part, on the device.
#[derive(Clone, Debug)]
pub struct ParamVec {
    parts: Vec<Tensor<1>>,
}

impl ParamVec {
    /// A vector made of `parts`.
    pub fn new(parts: Vec<Tensor<1>>) -> Self {
        Self { parts }
    }

    /// The parts.
    pub fn parts(&self) -> &[Tensor<1>] {
        &self.parts
    }

    /// The parts, consuming the vector.
    pub fn into_parts(self) -> Vec<Tensor<1>> {
        self.parts
    }

    /// Total number of values.
    pub fn numel(&self) -> usize {
        self.parts.iter().map(|t| t.dims()[0]).sum()
    }

    /// The zero vector of the same shape.
    pub fn zeros_like(&self) -> Self {
        self.map(|t| t.zeros_like())
    }

    /// `f` applied to every part.
    pub fn map(&self, f: impl Fn(Tensor<1>) -> Tensor<1>) -> Self {
        Self::new(self.parts.iter().map(|t| f(t.clone())).collect())
    }

    /// `f` applied to every pair of parts.
    pub fn zip(&self, other: &Self, f: impl Fn(Tensor<1>, Tensor<1>) -> Tensor<1>) -> Self {
        assert_eq!(
            self.parts.len(),
            other.parts.len(),
            "vectors of different shapes"
        );
        Self::new(
            self.parts
                .iter()
                .zip(&other.parts)
                .map(|(a, b)| f(a.clone(), b.clone()))
                .collect(),
        )
    }

    /// `self * a`.
    pub fn scale(&self, a: f64) -> Self {
        self.map(|t| t.mul_scalar(a))
    }

    /// `self + a * x`.
    pub fn axpy(&self, a: f64, x: &Self) -> Self {
        self.zip(x, |s, x| s + x.mul_scalar(a))
    }

    /// `self + x`.
    pub fn add(&self, x: &Self) -> Self {
        self.zip(x, |a, b| a + b)
    }

    /// `self - x`.
    pub fn sub(&self, x: &Self) -> Self {
        self.zip(x, |a, b| a - b)
    }

    /// Elementwise product.
    pub fn mul(&self, x: &Self) -> Self {
        self.zip(x, |a, b| a * b)
    }

    /// Elementwise absolute value.
    pub fn abs(&self) -> Self {
        self.map(|t| t.abs())
    }

    /// The inner product, accumulated on the device and read as `f64`.
    pub fn dot(&self, other: &Self) -> f64 {
        let sums: Vec<Tensor<1>> = self
            .parts
            .iter()
            .zip(&other.parts)
            .map(|(a, b)| (a.clone() * b.clone()).sum())
            .collect();
        read_sum(sums)
    }

    /// The inner products with each of `others`, read back in one transfer.
    pub fn dots(&self, others: &[ParamVec]) -> Vec<f64> {
        if others.is_empty() {
            return Vec::new();
        }
        let rows: Vec<Tensor<1>> = others
            .iter()
            .map(|o| {
                let sums: Vec<Tensor<1>> = self
                    .parts
                    .iter()
                    .zip(&o.parts)
                    .map(|(a, b)| (a.clone() * b.clone()).sum())
                    .collect();
                Tensor::cat(sums, 0).sum()
            })
            .collect();
        read(Tensor::cat(rows, 0))
    }

    /// The squared L2 norm.
    pub fn norm_sq(&self) -> f64 {
        read_sum(
            self.parts
                .iter()
                .map(|t| t.clone().square().sum())
                .collect(),
        )
    }

    /// The L2 norm.
    pub fn norm(&self) -> f64 {
        self.norm_sq().sqrt()
    }

    /// `sum_i coefficients[i] * vectors[i]`.
    pub fn combination(vectors: &[ParamVec], coefficients: &[f64]) -> ParamVec {
        assert!(
            !vectors.is_empty() && vectors.len() == coefficients.len(),
            "a combination needs matching vectors and coefficients"
        );
        let mut out = vectors[0].scale(coefficients[0]);
        for (v, &c) in vectors.iter().zip(coefficients).skip(1) {
            out = out.axpy(c, v);
        }
        out
    }

    /// The host values, one `Vec<f64>` per part.
    pub fn to_host(&self) -> Vec<Vec<f64>> {
        self.parts
            .iter()
            .map(|t| {
                t.to_data()
                    .convert::<f64>()
                    .try_into_vec::<f64>()
                    .expect("float tensor")
            })
            .collect()
    }

    /// All values in one host vector, parts in order.
    pub fn to_host_flat(&self) -> Vec<f64> {
        self.to_host().concat()
    }
}

fn read_sum(sums: Vec<Tensor<1>>) -> f64 {
    if sums.is_empty() {
        return 0.0;
    }
    read(Tensor::cat(sums, 0)).iter().sum()
}

fn read(t: Tensor<1>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("float tensor")
}

/// `v` with its components along the orthonormal `basis` removed (classical Gram-Schmidt,
/// twice, which is enough in floating point); not normalized.
pub fn orthogonalize(v: &ParamVec, basis: &[ParamVec]) -> ParamVec {
    let mut v = v.clone();
    for _ in 0..2 {
        if basis.is_empty() {
            break;
        }
        let c = v.dots(basis);
        v = v.sub(&ParamVec::combination(basis, &c));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algebra_and_seeded_draws() {
        let shape = VecShape::new(vec![3, 2], Device::flex());
        let a = shape.from_host(vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0]]);
        let b = shape.from_host(vec![vec![1.0, 0.0, -1.0], vec![2.0, 0.5]]);
        assert_eq!(a.dot(&b), 1.0 - 3.0 + 8.0 + 2.5);
        assert_eq!(a.norm_sq(), 55.0);
        assert_eq!(
            a.axpy(2.0, &b).to_host_flat(),
            vec![3.0, 2.0, 1.0, 8.0, 6.0]
        );
        assert_eq!(a.dots(&[a.clone(), b.clone()]), vec![55.0, 8.5]);
        let r1 = shape.rademacher(&mut rng(7)).to_host_flat();
        assert_eq!(r1, shape.rademacher(&mut rng(7)).to_host_flat());
        assert!(r1.iter().all(|v| v.abs() == 1.0));
        assert_ne!(
            shape.gaussian(&mut rng(1)).to_host_flat(),
            shape.gaussian(&mut rng(2)).to_host_flat()
        );
        let o = orthogonalize(&b, &[a.scale(1.0 / a.norm())]);
        assert!(o.dot(&a).abs() < 1e-5);
    }
}
