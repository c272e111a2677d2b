//! The one interpreter that runs a layer graph: training mode (BatchNorm on batch statistics,
//! running statistics collected) and inference mode (running statistics), on any device, with
//! or without autodiff.
//!
//! A pass can also record its piecewise-linear choices ([`Gates`]: which ReLU units were on,
//! which element each max-pool window took) and a later pass can replay them at another
//! parameter point ([`Forward::recording`], [`Forward::replaying`]). Replayed, the network is a
//! smooth function of its parameters around the recording point (ReLU becomes `x * mask`,
//! max pooling a gather), which is what makes central differences of gradients give exact
//! Hessian-vector products (see the `landscape-curvature` crate).

use crate::graph::{BatchNorm, Conv, Layer, Linear};
use crate::params::ParamId;
use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d, max_pool2d_with_indices};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Bool, Int, Tensor};

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
            Activation::Flat(_) => {
                panic!("{layer} needs a [n, c, h, w] input; the graph is malformed")
            }
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

/// The piecewise-linear choices of one forward pass on one batch, in execution order: for each
/// ReLU the units it switched off (input `<= 0`), for each max pool the element each window
/// took (a flat index into the window's `h * w` plane, as
/// [`burn::tensor::module::max_pool2d_with_indices`] returns it). Held on the device, without
/// autodiff. Valid only for the graph and the batch (shape and content) that recorded it.
#[derive(Clone, Debug, Default)]
pub struct Gates {
    relu_off: Vec<Tensor<4, Bool>>,
    pool_argmax: Vec<Tensor<4, Int>>,
}

impl Gates {
    /// Choices made elsewhere (by the CPU training kernels), in execution order: for each ReLU
    /// its input's shape `[n, c, h, w]` (`[n, c, 1, 1]` for feature vectors) and which units
    /// were off, for each max pool its output's shape and the flat index into the input plane
    /// each window took.
    pub fn from_host(
        relu_off: Vec<([usize; 4], Vec<bool>)>,
        pool_argmax: Vec<([usize; 4], Vec<i64>)>,
        device: &burn::tensor::Device,
    ) -> Self {
        Self {
            relu_off: relu_off
                .into_iter()
                .map(|(dims, v)| {
                    Tensor::<4, Bool>::from_data(burn::tensor::TensorData::new(v, dims), device)
                })
                .collect(),
            pool_argmax: pool_argmax
                .into_iter()
                .map(|(dims, v)| {
                    Tensor::<4, Int>::from_data(burn::tensor::TensorData::new(v, dims), device)
                })
                .collect(),
        }
    }

    /// How many recorded choices differ from `other`'s (ReLU units, max-pool windows); `None`
    /// when the two were recorded on different graphs or batches.
    pub fn differences(&self, other: &Gates) -> Option<(usize, usize)> {
        if self.relu_off.len() != other.relu_off.len()
            || self.pool_argmax.len() != other.pool_argmax.len()
        {
            return None;
        }
        let mut relu = 0;
        for (a, b) in self.relu_off.iter().zip(&other.relu_off) {
            if a.dims() != b.dims() {
                return None;
            }
            relu += a
                .clone()
                .not_equal(b.clone())
                .int()
                .sum()
                .into_scalar::<i64>() as usize;
        }
        let mut pool = 0;
        for (a, b) in self.pool_argmax.iter().zip(&other.pool_argmax) {
            if a.dims() != b.dims() {
                return None;
            }
            pool += a
                .clone()
                .not_equal(b.clone())
                .int()
                .sum()
                .into_scalar::<i64>() as usize;
        }
        Some((relu, pool))
    }

    /// Number of ReLU masks recorded.
    pub fn relu_count(&self) -> usize {
        self.relu_off.len()
    }

    /// Number of max-pool choices recorded.
    pub fn pool_count(&self) -> usize {
        self.pool_argmax.len()
    }

    /// Number of recorded values (mask entries plus pool indices): what holding them costs.
    pub fn numel(&self) -> usize {
        let relu: usize = self
            .relu_off
            .iter()
            .map(|t| t.dims().iter().product::<usize>())
            .sum();
        let pool: usize = self
            .pool_argmax
            .iter()
            .map(|t| t.dims().iter().product::<usize>())
            .sum();
        relu + pool
    }
}

/// What a pass does at its ReLUs and max pools.
enum Gating<'a> {
    /// The ordinary network.
    Free,
    /// The ordinary network, keeping its choices.
    Record(Gates),
    /// The choices of another pass, at positions `relu` and `pool` of the tape.
    Replay {
        gates: &'a Gates,
        relu: usize,
        pool: usize,
    },
}

/// One pass through a graph with a given set of parameter tensors.
pub struct Forward<'a> {
    params: &'a [Tensor<1>],
    mode: BatchNormMode,
    running_updates: Vec<(ParamId, Tensor<1>)>,
    gating: Gating<'a>,
}

impl<'a> Forward<'a> {
    /// A pass over `params` (one flat tensor per layout entry) in `mode`.
    pub fn new(params: &'a [Tensor<1>], mode: BatchNormMode) -> Self {
        Self {
            params,
            mode,
            running_updates: Vec::new(),
            gating: Gating::Free,
        }
    }

    /// A pass like [`Forward::new`] that also records its ReLU masks and max-pool choices;
    /// take them with [`Forward::into_gates`] after [`Forward::logits`]. The logits are those of
    /// the ordinary network.
    pub fn recording(params: &'a [Tensor<1>], mode: BatchNormMode) -> Self {
        Self {
            gating: Gating::Record(Gates::default()),
            ..Self::new(params, mode)
        }
    }

    /// A pass that replays `gates` (recorded on the same graph and batch, possibly at other
    /// parameters): each ReLU multiplies by its recorded mask and each max pool takes the
    /// recorded elements. At the recording point this gives exactly the ordinary logits;
    /// elsewhere it is the linearization of the network's switching pattern, smooth in the
    /// parameters. Panics when the graph or batch does not match the recording.
    pub fn replaying(params: &'a [Tensor<1>], mode: BatchNormMode, gates: &'a Gates) -> Self {
        Self {
            gating: Gating::Replay {
                gates,
                relu: 0,
                pool: 0,
            },
            ..Self::new(params, mode)
        }
    }

    /// The choices a [`Forward::recording`] pass made (empty for any other pass).
    pub fn into_gates(self) -> Gates {
        match self.gating {
            Gating::Record(gates) => gates,
            _ => Gates::default(),
        }
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

    /// The running statistics' updates and the recorded choices, together (see
    /// [`Forward::into_running_updates`] and [`Forward::into_gates`]).
    pub fn into_parts(self) -> (Vec<(ParamId, Tensor<1>)>, Gates) {
        let gates = match self.gating {
            Gating::Record(gates) => gates,
            _ => Gates::default(),
        };
        (self.running_updates, gates)
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
            Layer::Relu => x.map(|x| self.relu(x)),
            Layer::MaxPool { kernel, stride } => {
                Activation::Spatial(self.max_pool(x.spatial("max pool"), *kernel, *stride))
            }
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

    fn relu(&mut self, x: Tensor<4>) -> Tensor<4> {
        match &mut self.gating {
            Gating::Free => relu(x),
            Gating::Record(gates) => {
                gates.relu_off.push(x.clone().inner().lower_equal_elem(0.0));
                relu(x)
            }
            Gating::Replay { gates, relu, .. } => {
                let off = gates.relu_off.get(*relu).unwrap_or_else(|| {
                    panic!(
                        "replay: the recording has {} ReLU masks, the graph more",
                        gates.relu_off.len()
                    )
                });
                assert_eq!(
                    off.dims(),
                    x.dims(),
                    "replay: ReLU {} recorded another shape (other graph or batch)",
                    *relu
                );
                *relu += 1;
                x.mask_fill(off.clone(), 0.0)
            }
        }
    }

    fn max_pool(&mut self, x: Tensor<4>, kernel: usize, stride: usize) -> Tensor<4> {
        let options = MaxPoolOptions::new([kernel, kernel]).with_stride([stride, stride]);
        match &mut self.gating {
            Gating::Free => max_pool2d(x, options),
            Gating::Record(gates) => {
                let (y, argmax) = max_pool2d_with_indices(x, options);
                gates.pool_argmax.push(argmax.inner());
                y
            }
            Gating::Replay { gates, pool, .. } => {
                let argmax = gates.pool_argmax.get(*pool).unwrap_or_else(|| {
                    panic!(
                        "replay: the recording has {} max pools, the graph more",
                        gates.pool_argmax.len()
                    )
                });
                let [n, c, h, w] = x.dims();
                let [an, ac, ho, wo] = argmax.dims();
                assert_eq!(
                    [an, ac],
                    [n, c],
                    "replay: max pool {} recorded another shape (other graph or batch)",
                    *pool
                );
                *pool += 1;
                x.reshape([n, c, h * w])
                    .gather(2, argmax.clone().reshape([n, c, ho * wo]))
                    .reshape([n, c, ho, wo])
            }
        }
    }

    fn conv(&self, c: &Conv, x: Tensor<4>) -> Tensor<4> {
        let weight = self
            .param(c.weight)
            .reshape([c.cout, c.cin, c.kernel, c.kernel]);
        let bias = c.bias.map(|b| self.param(b));
        conv2d(
            x,
            weight,
            bias,
            ConvOptions::new([c.stride; 2], [c.padding; 2], [1, 1], 1),
        )
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
    log_probs
        .gather(1, labels.reshape([n, 1]))
        .reshape([n])
        .neg()
}

/// Number of samples whose largest logit is the label, shape `[1]` (stays on the device).
pub fn correct_count(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1, Int> {
    let [n, _] = logits.dims();
    logits.argmax(1).reshape([n]).equal(labels).int().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{ParamKind, ParamLayout};
    use burn::tensor::{Device, TensorData};

    /// conv(2->3, 3x3) - ReLU - maxpool 2 - flatten - linear(12 -> 3), on 4x4 images.
    fn tiny() -> (Vec<Layer>, Vec<Tensor<1>>, Tensor<4>) {
        let device = Device::flex();
        let mut layout = ParamLayout::default();
        let conv = Conv {
            weight: layout.push("conv.weight", vec![3, 2, 3, 3], ParamKind::ConvWeight),
            bias: Some(layout.push("conv.bias", vec![3], ParamKind::Bias)),
            cin: 2,
            cout: 3,
            kernel: 3,
            stride: 1,
            padding: 1,
        };
        let linear = Linear {
            weight: layout.push("fc.weight", vec![3, 12], ParamKind::LinearWeight),
            bias: layout.push("fc.bias", vec![3], ParamKind::Bias),
            input: 12,
            output: 3,
        };
        let layers = vec![
            Layer::Conv(conv),
            Layer::Relu,
            Layer::MaxPool {
                kernel: 2,
                stride: 2,
            },
            Layer::Flatten,
            Layer::Linear(linear),
        ];
        let mut state = 12345u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) as f32
        };
        let params = layout
            .entries()
            .iter()
            .map(|info| {
                let v: Vec<f32> = (0..info.numel()).map(|_| next()).collect();
                Tensor::<1>::from_data(TensorData::new(v, [info.numel()]), &device)
            })
            .collect();
        let x: Vec<f32> = (0..4 * 2 * 4 * 4).map(|_| 2.0 * next()).collect();
        (
            layers,
            params,
            Tensor::<4>::from_data(TensorData::new(x, [4, 2, 4, 4]), &device),
        )
    }

    fn values(t: Tensor<2>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn replay_at_the_recording_point_is_the_network_and_elsewhere_is_not() {
        let (layers, params, x) = tiny();
        let free = values(Forward::new(&params, BatchNormMode::Running).logits(&layers, x.clone()));
        let mut rec = Forward::recording(&params, BatchNormMode::Running);
        let recorded = values(rec.logits(&layers, x.clone()));
        let gates = rec.into_gates();
        assert_eq!((gates.relu_count(), gates.pool_count()), (1, 1));
        assert_eq!(gates.numel(), 4 * 3 * 4 * 4 + 4 * 3 * 2 * 2);
        let replayed = values(
            Forward::replaying(&params, BatchNormMode::Running, &gates).logits(&layers, x.clone()),
        );
        assert_eq!(free, recorded);
        assert_eq!(
            free, replayed,
            "replay at the recording point must be the network itself"
        );

        // A displaced point where some ReLUs flip: the replay keeps the old pattern, so it
        // differs from the free network there.
        let moved: Vec<Tensor<1>> = params
            .iter()
            .map(|t| t.clone().mul_scalar(-0.7).add_scalar(0.05))
            .collect();
        let mut rec_moved = Forward::recording(&moved, BatchNormMode::Running);
        let free_moved = values(rec_moved.logits(&layers, x.clone()));
        let gates_moved = rec_moved.into_gates();
        let flipped: i64 = gates.relu_off[0]
            .clone()
            .not_equal(gates_moved.relu_off[0].clone())
            .int()
            .sum()
            .into_scalar::<i64>();
        assert!(flipped > 0, "the displacement must flip some ReLUs");
        let replay_moved =
            values(Forward::replaying(&moved, BatchNormMode::Running, &gates).logits(&layers, x));
        let diff = free_moved
            .iter()
            .zip(&replay_moved)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            diff > 1e-3,
            "replay with flipped ReLUs should differ from the free pass, max diff {diff}"
        );
    }

    #[test]
    fn replay_gradients_flow_through_masks_and_pool_choices() {
        let (layers, params, x) = tiny();
        let mut rec = Forward::recording(&params, BatchNormMode::Running);
        rec.logits(&layers, x.clone());
        let gates = rec.into_gates();
        let leaves: Vec<Tensor<1>> = params
            .iter()
            .map(|t| t.clone().autodiff().require_grad())
            .collect();
        let labels =
            Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 0], [4]), &x.device());
        let free = cross_entropy(
            Forward::new(&leaves, BatchNormMode::Running).logits(&layers, x.clone()),
            labels.clone(),
        );
        let free_grads = free.backward();
        let g_free: Vec<Vec<f32>> = leaves
            .iter()
            .map(|l| {
                l.grad(&free_grads)
                    .unwrap()
                    .into_data()
                    .try_into_vec::<f32>()
                    .unwrap()
            })
            .collect();
        let leaves2: Vec<Tensor<1>> = params
            .iter()
            .map(|t| t.clone().autodiff().require_grad())
            .collect();
        let replay = cross_entropy(
            Forward::replaying(&leaves2, BatchNormMode::Running, &gates).logits(&layers, x),
            labels,
        );
        let grads = replay.backward();
        for (l, g) in leaves2.iter().zip(&g_free) {
            let r = l
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_into_vec::<f32>()
                .unwrap();
            for (a, b) in r.iter().zip(g) {
                assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }
}
