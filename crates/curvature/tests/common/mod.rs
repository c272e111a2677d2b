//! Tiny networks and data sets for the curvature tests (seconds on a CPU).
#![allow(dead_code)]

use burn::tensor::{DType, Device, Int, Tensor, TensorCreationOptions, TensorData};
use landscape_curvature::Batch;
use landscape_models::graph::{Conv, Layer, Linear};
use landscape_models::{ParamKind, ParamLayout, ParamSet};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, StandardNormal};
use std::sync::Arc;

/// A layer graph with its layout and host parameter values.
pub struct TinyNet {
    pub layers: Vec<Layer>,
    pub layout: Arc<ParamLayout>,
    pub values: Vec<Vec<f32>>,
    /// Input `[c, h, w]`.
    pub input: [usize; 3],
    pub classes: usize,
}

fn gaussian(n: usize, std: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let d = Normal::new(0.0, std).unwrap();
    (0..n).map(|_| d.sample(rng) as f32).collect()
}

fn linear(layout: &mut ParamLayout, name: &str, input: usize, output: usize) -> Layer {
    Layer::Linear(Linear {
        weight: layout.push(
            format!("{name}.weight"),
            vec![output, input],
            ParamKind::LinearWeight,
        ),
        bias: layout.push(format!("{name}.bias"), vec![output], ParamKind::Bias),
        input,
        output,
    })
}

fn init(layout: &ParamLayout, seed: u64, scale: f64) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    layout
        .entries()
        .iter()
        .map(|info| {
            let fan_in: usize = if info.shape.len() > 1 {
                info.shape[1..].iter().product()
            } else {
                1
            };
            let std = if info.shape.len() > 1 {
                scale * (2.0 / fan_in as f64).sqrt()
            } else {
                0.1
            };
            gaussian(info.numel(), std, &mut rng)
        })
        .collect()
}

/// conv(2->4, 3x3, bias) - ReLU - maxpool 2 - flatten - linear(16->8) - ReLU - linear(8->3),
/// on 2x4x4 inputs.
pub fn relu_net(seed: u64) -> TinyNet {
    let mut layout = ParamLayout::default();
    let conv = Layer::Conv(Conv {
        weight: layout.push("conv.weight", vec![4, 2, 3, 3], ParamKind::ConvWeight),
        bias: Some(layout.push("conv.bias", vec![4], ParamKind::Bias)),
        cin: 2,
        cout: 4,
        kernel: 3,
        stride: 1,
        padding: 1,
    });
    let layers = vec![
        conv,
        Layer::Relu,
        Layer::MaxPool {
            kernel: 2,
            stride: 2,
        },
        Layer::Flatten,
        linear(&mut layout, "fc1", 16, 8),
        Layer::Relu,
        linear(&mut layout, "fc2", 8, 3),
    ];
    let values = init(&layout, seed, 1.0);
    TinyNet {
        layers,
        layout: Arc::new(layout),
        values,
        input: [2, 4, 4],
        classes: 3,
    }
}

/// Softmax regression: flatten - linear(8 -> 3) on 2x2x2 inputs.
pub fn softmax_regression(seed: u64) -> TinyNet {
    let mut layout = ParamLayout::default();
    let layers = vec![Layer::Flatten, linear(&mut layout, "fc", 8, 3)];
    let values = init(&layout, seed, 1.0);
    TinyNet {
        layers,
        layout: Arc::new(layout),
        values,
        input: [2, 2, 2],
        classes: 3,
    }
}

/// flatten - linear(8 -> 6) - ReLU - linear(6 -> 3) on 2x2x2 inputs.
pub fn mlp(seed: u64) -> TinyNet {
    let mut layout = ParamLayout::default();
    let layers = vec![
        Layer::Flatten,
        linear(&mut layout, "fc1", 8, 6),
        Layer::Relu,
        linear(&mut layout, "fc2", 6, 3),
    ];
    let values = init(&layout, seed, 1.0);
    TinyNet {
        layers,
        layout: Arc::new(layout),
        values,
        input: [2, 2, 2],
        classes: 3,
    }
}

pub fn options(dtype: DType) -> TensorCreationOptions {
    TensorCreationOptions::new(Device::flex()).with_dtype(dtype)
}

impl TinyNet {
    /// The parameters on the CPU in `dtype`.
    pub fn params(&self, dtype: DType) -> ParamSet {
        let tensors = self
            .values
            .iter()
            .map(|v| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), options(dtype)))
            .collect();
        ParamSet::new(self.layout.clone(), tensors).unwrap()
    }

    /// `n` random examples (inputs N(0,1), labels from a random linear teacher) in batches of
    /// `batch`, with their host copies.
    pub fn data(
        &self,
        n: usize,
        batch: usize,
        seed: u64,
        dtype: DType,
    ) -> (Vec<Batch>, Vec<f32>, Vec<usize>) {
        let [c, h, w] = self.input;
        let per = c * h * w;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let images: Vec<f32> = (0..n * per)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        let teacher: Vec<f32> = gaussian(per * self.classes, 1.0, &mut rng);
        let labels: Vec<usize> = (0..n)
            .map(|i| {
                let x = &images[i * per..(i + 1) * per];
                (0..self.classes)
                    .map(|k| {
                        (
                            k,
                            x.iter()
                                .zip(&teacher[k * per..(k + 1) * per])
                                .map(|(a, b)| a * b)
                                .sum::<f32>(),
                        )
                    })
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap()
                    .0
            })
            .collect();
        (
            batches(&images, &labels, self.input, batch, dtype),
            images,
            labels,
        )
    }
}

/// Cuts host examples into device batches.
pub fn batches(
    images: &[f32],
    labels: &[usize],
    input: [usize; 3],
    batch: usize,
    dtype: DType,
) -> Vec<Batch> {
    let [c, h, w] = input;
    let per = c * h * w;
    images
        .chunks(batch * per)
        .zip(labels.chunks(batch))
        .map(|(x, y)| {
            let n = y.len();
            let x =
                Tensor::<4>::from_data(TensorData::new(x.to_vec(), [n, c, h, w]), options(dtype));
            let y = Tensor::<1, Int>::from_data(
                TensorData::new(y.iter().map(|&l| l as i64).collect::<Vec<_>>(), [n]),
                &Device::flex(),
            );
            (x, y)
        })
        .collect()
}

/// The relative L2 difference `|a - b| / |b|`.
pub fn rel(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    d / b.iter().map(|y| y * y).sum::<f64>().sqrt()
}
