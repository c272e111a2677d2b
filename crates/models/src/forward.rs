//! The one interpreter that runs a layer graph: training mode (BatchNorm on batch statistics,
//! running statistics collected) and inference mode (running statistics), on any device, with
//! or without autodiff.

use crate::graph::{BatchNorm, Conv, Layer, Linear};
use crate::params::ParamId;
use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Int, Tensor};

/// BatchNorm's epsilon (PyTorch's default).
pub const BN_EPS: f64 = 1e-5;
/// BatchNorm's running-average momentum (PyTorch's default).
pub const BN_MOMENTUM: f64 = 0.1;

/// An activation between layers: images or feature vectors.
#[derive(Clone, Debug)]
pub enum Activation {
    /// `[n, c, h, w]`.
    Spatial(Tensor<4>),
    /// `[n, features]`.
    Flat(Tensor<2>),
}

impl Activation {
    fn spatial(self, layer: &str) -> Tensor<4> {
        match self {
            Activation::Spatial(x) => x,
            Activation::Flat(_) => panic!("{layer} needs a [n, c, h, w] input; the graph is malformed"),
        }
    }

    fn flat(self) -> Tensor<2> {
        match self {
            Activation::Flat(x) => x,
            Activation::Spatial(x) => {
                let [n, c, h, w] = x.dims();
                x.reshape([n, c * h * w])
            }
        }
    }

    fn map(self, f4: impl FnOnce(Tensor<4>) -> Tensor<4>) -> Self {
        match self {
            Activation::Spatial(x) => Activation::Spatial(f4(x)),
            Activation::Flat(x) => {
                let [n, c] = x.dims();
                Activation::Flat(f4(x.reshape([n, c, 1, 1])).reshape([n, c]))
            }
        }
    }

    fn add(self, other: Activation) -> Self {
        match (self, other) {
            (Activation::Spatial(a), Activation::Spatial(b)) => Activation::Spatial(a + b),
            (Activation::Flat(a), Activation::Flat(b)) => Activation::Flat(a + b),
            _ => panic!("residual branches disagree in rank; the graph is malformed"),
        }
    }
}

/// How BatchNorm layers normalize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchNormMode {
    /// Inference: running statistics (a negative extrapolated running variance is clamped to 0).
    Running,
    /// Training: statistics of the batch; updated running statistics are collected.
    Batch,
}

/// One pass through a graph with a given set of parameter tensors.
pub struct Forward<'a> {
    params: &'a [Tensor<1>],
    mode: BatchNormMode,
    running_updates: Vec<(ParamId, Tensor<1>)>,
}

impl<'a> Forward<'a> {
    /// A pass over `params` (one flat tensor per layout entry) in `mode`.
    pub fn new(params: &'a [Tensor<1>], mode: BatchNormMode) -> Self {
        Self { params, mode, running_updates: Vec::new() }
    }

    /// Runs `layers` on images `x` and returns the logits.
    pub fn logits(&mut self, layers: &[Layer], x: Tensor<4>) -> Tensor<2> {
        self.run(layers, Activation::Spatial(x)).flat()
    }

    /// The running statistics a [`BatchNormMode::Batch`] pass computed, as (tensor, new value),
    /// detached from autodiff.
    pub fn into_running_updates(self) -> Vec<(ParamId, Tensor<1>)> {
        self.running_updates
    }

    fn param(&self, id: ParamId) -> Tensor<1> {
        self.params[id.0].clone()
    }

    fn run(&mut self, layers: &[Layer], mut x: Activation) -> Activation {
        for layer in layers {
            x = self.layer(layer, x);
        }
        x
    }

    fn layer(&mut self, layer: &Layer, x: Activation) -> Activation {
        match layer {
            Layer::Conv(c) => Activation::Spatial(self.conv(c, x.spatial("conv"))),
            Layer::BatchNorm(bn) => self.batch_norm(bn, x),
            Layer::Relu => x.map(relu),
            Layer::MaxPool { kernel, stride } => Activation::Spatial(max_pool2d(
                x.spatial("max pool"),
                MaxPoolOptions::new([*kernel, *kernel]).with_stride([*stride, *stride]),
            )),
            Layer::AvgPool { kernel, stride } => Activation::Spatial(avg_pool2d(
                x.spatial("average pool"),
                AvgPoolOptions::new([*kernel, *kernel]).with_stride([*stride, *stride]),
            )),
            Layer::GlobalAvgPool => {
                let x = x.spatial("global pool");
                let [n, c, _, _] = x.dims();
                Activation::Flat(x.mean_dims(&[2, 3]).reshape([n, c]))
            }
            Layer::Flatten => Activation::Flat(x.flat()),
            Layer::Linear(l) => Activation::Flat(self.linear(l, x.flat())),
            Layer::Residual { body, shortcut } => {
                let skip = self.run(shortcut, x.clone());
                self.run(body, x).add(skip)
            }
            Layer::Concat { body } => {
                let new = self.run(body, x.clone()).spatial("dense block");
                Activation::Spatial(Tensor::cat(vec![new, x.spatial("dense block")], 1))
            }
        }
    }

    fn conv(&self, c: &Conv, x: Tensor<4>) -> Tensor<4> {
        let weight = self.param(c.weight).reshape([c.cout, c.cin, c.kernel, c.kernel]);
        let bias = c.bias.map(|b| self.param(b));
        conv2d(x, weight, bias, ConvOptions::new([c.stride; 2], [c.padding; 2], [1, 1], 1))
    }

    fn linear(&self, l: &Linear, x: Tensor<2>) -> Tensor<2> {
        let weight = self.param(l.weight).reshape([l.output, l.input]);
        let bias = self.param(l.bias).reshape([1, l.output]);
        x.matmul(weight.transpose()) + bias
    }

    fn batch_norm(&mut self, bn: &BatchNorm, x: Activation) -> Activation {
        let c = bn.channels;
        match self.mode {
            BatchNormMode::Running => {
                let (scale, shift) = running_affine(
                    self.param(bn.weight),
                    self.param(bn.bias),
                    self.param(bn.running_mean),
                    self.param(bn.running_var),
                );
                x.map(|x| x * scale.reshape([1, c, 1, 1]) + shift.reshape([1, c, 1, 1]))
            }
            BatchNormMode::Batch => {
                let gamma = self.param(bn.weight).reshape([1, c, 1, 1]);
                let beta = self.param(bn.bias).reshape([1, c, 1, 1]);
                let mut stats = None;
                let y = x.map(|x| {
                    let [n, _, h, w] = x.dims();
                    let mean = x.clone().mean_dims(&[0, 2, 3]);
                    let centered = x - mean.clone();
                    let var = centered.clone().square().mean_dims(&[0, 2, 3]);
                    let count = (n * h * w) as f64;
                    stats = Some((mean.reshape([c]), var.clone().reshape([c]), count));
                    centered / (var + BN_EPS).sqrt() * gamma + beta
                });
                let (mean, var, count) = stats.expect("batch norm ran");
                let unbiased = var.mul_scalar(count / (count - 1.0).max(1.0));
                let m = BN_MOMENTUM;
                let old_mean = self.param(bn.running_mean).inner();
                let old_var = self.param(bn.running_var).inner();
                let new_mean = old_mean.mul_scalar(1.0 - m) + mean.detach().inner().mul_scalar(m);
                let new_var = old_var.mul_scalar(1.0 - m) + unbiased.detach().inner().mul_scalar(m);
                self.running_updates.push((bn.running_mean, new_mean));
                self.running_updates.push((bn.running_var, new_var));
                y
            }
        }
    }
}

/// BatchNorm in inference mode as one affine map per channel: `y = x * scale + shift` with
/// `scale = gamma / sqrt(max(var, 0) + eps)`, `shift = beta - mean * scale`.
///
/// A running variance can go negative when a surface extrapolates the BatchNorm statistics
/// (interpolation beyond the endpoints); it is clamped to 0, so the result stays finite.
pub fn running_affine(
    gamma: Tensor<1>,
    beta: Tensor<1>,
    mean: Tensor<1>,
    var: Tensor<1>,
) -> (Tensor<1>, Tensor<1>) {
    let scale = gamma / (var.clamp_min(0.0) + BN_EPS).sqrt();
    let shift = beta - mean * scale.clone();
    (scale, shift)
}

/// Mean cross-entropy of `logits` against `labels`, shape `[1]`.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    per_sample_loss(logits, labels).mean()
}

/// Cross-entropy of each sample, shape `[n]`.
pub fn per_sample_loss(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = logits.dims();
    let log_probs = burn::tensor::activation::log_softmax(logits, 1);
    log_probs.gather(1, labels.reshape([n, 1])).reshape([n]).neg()
}

/// Number of samples whose largest logit is the label, shape `[1]` (stays on the device).
pub fn correct_count(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1, Int> {
    let [n, _] = logits.dims();
    logits.argmax(1).reshape([n]).equal(labels).int().sum()
}
