//! A symmetric linear operator given only by its products `v -> H v`: what every algorithm here
//! (Lanczos, power iteration, traces, densities) works on. [`crate::hvp::LossHessian`] is the
//! Hessian of a network's loss; [`DenseOperator`] is an explicit matrix (tests, references).

use crate::vector::{ParamVec, VecShape};
use burn::tensor::{Tensor, TensorCreationOptions, TensorData};

/// A symmetric operator on parameter vectors.
pub trait HessianOperator {
    /// The shape of the vectors it acts on.
    fn shape(&self) -> VecShape;
    /// `H v`.
    fn apply(&self, v: &ParamVec) -> ParamVec;
}

/// `H - shift * I`.
pub struct Shifted<'a, O: HessianOperator + ?Sized> {
    /// The operator.
    pub op: &'a O,
    /// The shift.
    pub shift: f64,
}

impl<O: HessianOperator + ?Sized> HessianOperator for Shifted<'_, O> {
    fn shape(&self) -> VecShape {
        self.op.shape()
    }

    fn apply(&self, v: &ParamVec) -> ParamVec {
        self.op.apply(v).axpy(-self.shift, v)
    }
}

/// An explicit symmetric matrix acting on vectors of a given shape (the parts concatenated).
pub struct DenseOperator {
    matrix: Tensor<2>,
    shape: VecShape,
}

impl DenseOperator {
    /// The `n x n` row-major `matrix` (n = `shape.numel()`), uploaded in the shape's dtype.
    pub fn new(matrix: &[f64], shape: VecShape) -> Self {
        let n = shape.numel();
        assert_eq!(
            matrix.len(),
            n * n,
            "a {n}-dimensional operator needs {} values",
            n * n
        );
        let values: Vec<f32> = matrix.iter().map(|&v| v as f32).collect();
        let options = TensorCreationOptions::new(shape.device.clone()).with_dtype(shape.dtype);
        Self {
            matrix: Tensor::<2>::from_data(TensorData::new(values, [n, n]), options),
            shape,
        }
    }

    /// A diagonal operator.
    pub fn diagonal(diagonal: &[f64], shape: VecShape) -> Self {
        let n = diagonal.len();
        let mut m = vec![0.0; n * n];
        for (i, d) in diagonal.iter().enumerate() {
            m[i * n + i] = *d;
        }
        Self::new(&m, shape)
    }
}

impl HessianOperator for DenseOperator {
    fn shape(&self) -> VecShape {
        self.shape.clone()
    }

    fn apply(&self, v: &ParamVec) -> ParamVec {
        let n = self.shape.numel();
        let flat = Tensor::cat(v.parts().to_vec(), 0).reshape([1, n]);
        let out = flat.matmul(self.matrix.clone()).reshape([n]);
        let mut offset = 0;
        ParamVec::new(
            self.shape
                .sizes
                .iter()
                .map(|&len| {
                    let part = out.clone().narrow(0, offset, len);
                    offset += len;
                    part
                })
                .collect(),
        )
    }
}
