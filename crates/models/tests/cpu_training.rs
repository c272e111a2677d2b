//! Training on the CPU kernels ([`landscape_models::cpu::CpuTrainer`]) against burn's autodiff
//! through the interpreter: the loss, every gradient and every updated running statistic of
//! one micro-batch, on each of the paper's networks; directional finite differences for every
//! kind of layer; determinism across thread counts.

use burn::tensor::DType;
use burn::tensor::{Device, Int, Tensor, TensorData};
use landscape_models::cpu::{CpuTrainer, Isa};
use landscape_models::forward::{BatchNormMode, Forward, Gates, correct_count, per_sample_loss};
use landscape_models::graph::{BatchNorm, Conv, Layer, Linear};
use landscape_models::{Network, NetworkSpec, ParamKind, ParamLayout, ParamSet};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};
use std::sync::Arc;

fn net(name: &str, width: f64) -> Network {
    Network::new(NetworkSpec {
        arch: name.parse().unwrap(),
        width,
        classes: 10,
    })
    .unwrap()
}

/// `n` draws from `dist`, from a stream of its own (burn's seeded generator is shared by the
/// tests running at the same time).
fn draws(n: usize, seed: u64, dist: impl Distribution<f64>) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| dist.sample(&mut rng) as f32).collect()
}

/// Parameters away from the initialization (BatchNorm scales and shifts, larger linear
/// weights), so every gradient has something to say.
fn perturbed(p: &ParamSet, seed: u64) -> ParamSet {
    let mut k = 0;
    let values = p
        .layout()
        .entries()
        .iter()
        .zip(p.to_host())
        .map(|(info, v)| {
            k += 1;
            let seed = seed * 1000 + k;
            let n = info.numel();
            match info.kind {
                ParamKind::BnRunningVar => draws(n, seed, Uniform::new(0.5, 2.0).unwrap()),
                ParamKind::BnRunningMean | ParamKind::BnBias | ParamKind::Bias => {
                    draws(n, seed, Normal::new(0.0, 0.3).unwrap())
                }
                ParamKind::BnWeight => draws(n, seed, Uniform::new(0.5, 1.5).unwrap()),
                ParamKind::LinearWeight => draws(n, seed, Normal::new(0.0, 0.1).unwrap()),
                ParamKind::ConvWeight => v,
            }
        })
        .collect();
    ParamSet::from_host(p.layout().clone(), values, &Device::flex()).unwrap()
}

fn images(n: usize, seed: u64) -> Vec<f32> {
    draws(n * 3 * 32 * 32, seed, Normal::new(0.0, 1.0).unwrap())
}

/// What one micro-batch gives: summed loss, correct count, gradients (empty for running
/// statistics), parameters after the running statistics' update.
struct Step {
    loss: f64,
    correct: usize,
    grads: Vec<Vec<f32>>,
    params: Vec<Vec<f32>>,
    /// The ReLU masks and max-pool choices the pass made.
    gates: Gates,
}

/// burn's autodiff through the interpreter in training mode, in `dtype`, replaying `replay`'s
/// piecewise-linear choices where given.
fn burn_step(
    layers: &[Layer],
    params: &ParamSet,
    x: &[f32],
    labels: &[u16],
    scale: f32,
    dtype: DType,
    replay: Option<&Gates>,
) -> Step {
    let device = Device::flex();
    let n = labels.len();
    let options = || burn::tensor::TensorCreationOptions::new(Device::flex()).with_dtype(dtype);
    let leaves: Vec<Tensor<1>> = params
        .layout()
        .entries()
        .iter()
        .zip(params.to_host())
        .map(|(info, v)| {
            let t = Tensor::<1>::from_data(TensorData::new(v, [info.numel()]), options());
            if info.kind.is_learnable() {
                t.autodiff().require_grad()
            } else {
                t
            }
        })
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(x.to_vec(), [n, 3, 32, 32]), options());
    let y = Tensor::<1, Int>::from_data(
        TensorData::new(labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), [n]),
        &device,
    );
    let mut pass = match replay {
        Some(g) => Forward::replaying(&leaves, BatchNormMode::Batch, g),
        None => Forward::recording(&leaves, BatchNormMode::Batch),
    };
    let logits = pass.logits(layers, x);
    let (updates, gates) = pass.into_parts();
    let losses = per_sample_loss(logits.clone(), y.clone());
    let grads = losses.clone().sum().mul_scalar(scale).backward();
    let host = |t: Tensor<1>| {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    };
    let mut values = params.to_host();
    for (id, value) in updates {
        values[id.0] = host(value);
    }
    Step {
        loss: losses.inner().sum().into_scalar::<f64>(),
        correct: correct_count(logits.inner(), y).into_scalar::<i64>() as usize,
        grads: leaves
            .iter()
            .map(|l| l.grad(&grads).map(host).unwrap_or_default())
            .collect(),
        params: values,
        gates: replay.cloned().unwrap_or(gates),
    }
}

fn kernel_step(
    trainer: &CpuTrainer,
    params: &ParamSet,
    x: &[f32],
    labels: &[u16],
    scale: f32,
) -> Step {
    let mut host = params.to_host();
    let mut grads: Vec<Vec<f32>> = params
        .layout()
        .entries()
        .iter()
        .map(|info| {
            if info.kind.is_learnable() {
                vec![0.0; info.numel()]
            } else {
                Vec::new()
            }
        })
        .collect();
    let mut ws = trainer.workspace();
    trainer.load(&mut ws, &host);
    let (loss, correct) = trainer.accumulate(&mut ws, &mut host, x, labels, scale, &mut grads);
    Step {
        loss,
        correct,
        grads,
        params: host,
        gates: trainer.gates(&ws, &Device::flex()),
    }
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

/// The biases of layers followed by a BatchNorm: their gradient is zero in exact arithmetic
/// (the BatchNorm subtracts the mean), float noise in both implementations.
fn zero_in_exact_arithmetic(layers: &[Layer]) -> Vec<usize> {
    let mut out = Vec::new();
    for pair in layers.windows(2) {
        match pair {
            [Layer::Conv(Conv { bias: Some(b), .. }), Layer::BatchNorm(_)]
            | [Layer::Linear(Linear { bias: b, .. }), Layer::BatchNorm(_)] => out.push(b.0),
            _ => {}
        }
    }
    for layer in layers {
        match layer {
            Layer::Residual { body, shortcut } => {
                out.extend(zero_in_exact_arithmetic(body));
                out.extend(zero_in_exact_arithmetic(shortcut));
            }
            Layer::Concat { body } => out.extend(zero_in_exact_arithmetic(body)),
            _ => {}
        }
    }
    out
}

/// Largest difference of each tensor, relative to the larger of the tensor's own largest
/// magnitude and 1e-3 of the largest over all tensors; tensors in `zeros` must be within 1e-4
/// of that global scale instead.
fn worst(layout: &ParamLayout, a: &[Vec<f32>], b: &[Vec<f32>], zeros: &[usize]) -> (f32, String) {
    let global = b.iter().map(|t| max_abs(t)).fold(0.0f32, f32::max);
    let mut worst = (0.0f32, String::new());
    for (i, ((info, a), b)) in layout.entries().iter().zip(a).zip(b).enumerate() {
        assert_eq!(a.len(), b.len(), "{}", info.name);
        let d = if zeros.contains(&i) {
            max_abs(a).max(max_abs(b)) / global
        } else {
            let scale = max_abs(b).max(1e-3 * global).max(f32::MIN_POSITIVE);
            a.iter()
                .zip(b)
                .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
                / scale
        };
        if d > worst.0 {
            worst = (d, info.name.clone());
        }
    }
    worst
}

/// One micro-batch on the kernels against burn's autodiff replaying the kernels' ReLU masks and
/// max-pool choices, in f32 (the flex path) and in f64 (exact arithmetic, to judge rounding):
/// the loss and correct count, every gradient within 1e-4 (relative to its tensor), every
/// running statistic. Where the network's gradient amplifies rounding so much that burn's own
/// f32 pass is further than 1e-5 from f64 (a deep network without skips at a random point), the
/// kernels must be as close to f64 as four times burn's f32. The kernels' choices must be
/// burn's own but for units within rounding of their kink (a handful among millions).
fn compare(name: &str, width: f64, n: usize, isa: Isa, winograd: bool) {
    let network = net(name, width);
    let layers = network.layers();
    let params = perturbed(&network.init(1, &Device::flex()), 2);
    let x = images(n, 3);
    let labels: Vec<u16> = (0..n).map(|i| ((i * 7 + 3) % 10) as u16).collect();
    let scale = 1.0 / n as f32;
    let trainer =
        CpuTrainer::with_kernels(layers, network.layout(), [3, 32, 32], isa, winograd).unwrap();
    let ours = kernel_step(&trainer, &params, &x, &labels, scale);
    let free = burn_step(layers, &params, &x, &labels, scale, DType::F32, None);
    let f32s = burn_step(
        layers,
        &params,
        &x,
        &labels,
        scale,
        DType::F32,
        Some(&ours.gates),
    );
    let exact = burn_step(
        layers,
        &params,
        &x,
        &labels,
        scale,
        DType::F64,
        Some(&ours.gates),
    );
    let what = format!("{name} x{width} ({isa}, winograd {winograd})");

    // Decisions within rounding of a kink go either way in any f32 implementation: count the
    // kernels' departures from exact arithmetic against burn's own.
    let exact_free = burn_step(layers, &params, &x, &labels, scale, DType::F64, None);
    let flips = |g: &Gates| {
        let (relu, pool) = g.differences(&exact_free.gates).expect("the same graph");
        relu + pool
    };
    let (ours_flips, burn_flips) = (flips(&ours.gates), flips(&free.gates));
    assert!(
        ours_flips <= 8 + 4 * burn_flips,
        "{what}: {ours_flips} of {} ReLU units and max-pool windows decide unlike exact arithmetic, burn's f32 {burn_flips}",
        ours.gates.numel()
    );
    assert!(
        (ours.loss - f32s.loss).abs() <= 1e-4 * f32s.loss.abs(),
        "{what}: loss {} vs burn {}",
        ours.loss,
        f32s.loss
    );
    assert_eq!(ours.correct, f32s.correct, "{what}: correct predictions");
    let zeros = zero_in_exact_arithmetic(layers);
    let layout = network.layout();
    let judge =
        |what: &str, ours: &[Vec<f32>], burn: &[Vec<f32>], exact: &[Vec<f32>], zeros: &[usize]| {
            let (burn_error, _) = worst(layout, burn, exact, zeros);
            if burn_error <= 1e-5 {
                let (d, tensor) = worst(layout, ours, burn, zeros);
                assert!(
                    d <= 1e-4,
                    "{what} of {tensor} differs from burn by {d:e} (relative)"
                );
            } else {
                let (e, tensor) = worst(layout, ours, exact, zeros);
                assert!(
                    e <= 4.0 * burn_error,
                    "{what} of {tensor} is {e:e} from f64 (relative), burn's f32 {burn_error:e}"
                );
            }
        };
    judge(
        &format!("{what}: the gradient"),
        &ours.grads,
        &f32s.grads,
        &exact.grads,
        &zeros,
    );
    judge(
        &format!("{what}: the step's update"),
        &ours.params,
        &f32s.params,
        &exact.params,
        &[],
    );
    // The gradient is not trivially small: the comparison means something.
    let norm: f32 = ours
        .grads
        .iter()
        .flatten()
        .map(|g| g * g)
        .sum::<f32>()
        .sqrt();
    assert!(norm > 1e-3, "{what}: gradient norm {norm}");
}

#[test]
fn one_step_matches_burn_on_the_paper_networks() {
    for (name, width) in [
        ("vgg9", 0.25),
        ("vgg9", 0.125),
        ("resnet20", 0.5),
        ("resnet20-noshort", 0.25),
        ("resnet56", 0.25),
        ("resnet56-noshort", 0.25),
        ("wrn56-2", 0.25),
        ("densenet121", 0.125),
    ] {
        compare(name, width, 6, Isa::best(), true);
    }
}

#[test]
fn every_kernel_choice_matches_burn() {
    for (name, width) in [("vgg9", 0.25), ("resnet20", 1.0), ("densenet121", 0.125)] {
        for isa in Isa::available_all() {
            compare(name, width, 3, isa, true);
        }
        compare(name, width, 3, Isa::best(), false);
    }
    eprintln!("instruction sets: {:?}", Isa::available_all());
}

/// A network of one kind of layer, to check each kernel's gradient on its own.
struct Tiny {
    layout: ParamLayout,
    layers: Vec<Layer>,
}

impl Tiny {
    fn new() -> Self {
        Self {
            layout: ParamLayout::default(),
            layers: Vec::new(),
        }
    }

    fn conv(&mut self, cin: usize, cout: usize, kernel: usize, stride: usize, bias: bool) -> Layer {
        let i = self.layout.len();
        Layer::Conv(Conv {
            weight: self.layout.push(
                format!("conv{i}.weight"),
                vec![cout, cin, kernel, kernel],
                ParamKind::ConvWeight,
            ),
            bias: bias.then(|| {
                self.layout
                    .push(format!("conv{i}.bias"), vec![cout], ParamKind::Bias)
            }),
            cin,
            cout,
            kernel,
            stride,
            padding: kernel / 2,
        })
    }

    fn bn(&mut self, channels: usize) -> Layer {
        let i = self.layout.len();
        let c = vec![channels];
        Layer::BatchNorm(BatchNorm {
            weight: self
                .layout
                .push(format!("bn{i}.weight"), c.clone(), ParamKind::BnWeight),
            bias: self
                .layout
                .push(format!("bn{i}.bias"), c.clone(), ParamKind::BnBias),
            running_mean: self.layout.push(
                format!("bn{i}.running_mean"),
                c.clone(),
                ParamKind::BnRunningMean,
            ),
            running_var: self
                .layout
                .push(format!("bn{i}.running_var"), c, ParamKind::BnRunningVar),
            channels,
        })
    }

    fn linear(&mut self, input: usize, output: usize) -> Layer {
        let i = self.layout.len();
        Layer::Linear(Linear {
            weight: self.layout.push(
                format!("fc{i}.weight"),
                vec![output, input],
                ParamKind::LinearWeight,
            ),
            bias: self
                .layout
                .push(format!("fc{i}.bias"), vec![output], ParamKind::Bias),
            input,
            output,
        })
    }

    /// `layers` then global pooling (if still spatial) and a linear classifier.
    fn with_head(mut self, mut layers: Vec<Layer>, channels: usize, spatial: bool) -> Self {
        if spatial {
            layers.push(Layer::GlobalAvgPool);
        }
        layers.push(self.linear(channels, 10));
        self.layers = layers;
        self
    }

    fn params(&self, seed: u64) -> ParamSet {
        let values = self
            .layout
            .entries()
            .iter()
            .enumerate()
            .map(|(k, info)| {
                let v = draws(
                    info.numel(),
                    seed * 1000 + k as u64,
                    Normal::new(0.0, 1.0).unwrap(),
                );
                let fan_in: usize = info.shape[1..].iter().product::<usize>().max(1);
                match info.kind {
                    ParamKind::ConvWeight | ParamKind::LinearWeight => {
                        v.iter().map(|x| x * (2.0 / fan_in as f32).sqrt()).collect()
                    }
                    ParamKind::BnWeight => v.iter().map(|x| 1.0 + 0.3 * x).collect(),
                    ParamKind::BnRunningVar => vec![1.0; v.len()],
                    _ => v.iter().map(|x| 0.3 * x).collect(),
                }
            })
            .collect();
        ParamSet::from_host(Arc::new(self.layout.clone()), values, &Device::flex()).unwrap()
    }
}

/// Side of the images of the finite-difference checks: small, so that few ReLU units lie near
/// their kink.
const SIDE: usize = 8;

/// The directional derivative of the summed loss along a random direction, by central
/// differences of the kernels' own loss, against the kernels' gradient. The segment must cross
/// no kink (the ReLU masks and pooling choices equal at both ends: the loss is smooth on it);
/// where every short segment does (a unit on its kink at the point), the point moves along the
/// direction.
fn finite_difference(what: &str, tiny: &Tiny, n: usize) {
    let trainer = CpuTrainer::new(&tiny.layers, &tiny.layout, [3, SIDE, SIDE]).unwrap();
    let base = tiny.params(4).to_host();
    let dir = tiny.params(6).to_host();
    let x = draws(n * 3 * SIDE * SIDE, 5, Normal::new(0.0, 1.0).unwrap());
    let labels: Vec<u16> = (0..n).map(|i| (i % 10) as u16).collect();
    let learnable: Vec<bool> = tiny
        .layout
        .entries()
        .iter()
        .map(|i| i.kind.is_learnable())
        .collect();
    let step_at = |t: f32| {
        let moved: Vec<Vec<f32>> = base
            .iter()
            .zip(&dir)
            .zip(&learnable)
            .map(|((b, d), &l)| {
                if l {
                    b.iter().zip(d).map(|(b, d)| b + t * d).collect()
                } else {
                    b.clone()
                }
            })
            .collect();
        let p = ParamSet::from_host(Arc::new(tiny.layout.clone()), moved, &Device::flex()).unwrap();
        kernel_step(&trainer, &p, &x, &labels, 1.0)
    };
    for t in [0.0f32, 1e-2, -1e-2, 2e-2, -2e-2, 3e-2] {
        let mut eps = 1e-3f32;
        while eps >= 1e-4 {
            let (plus, minus) = (step_at(t + eps), step_at(t - eps));
            if plus.gates.differences(&minus.gates) == Some((0, 0)) {
                let at = step_at(t);
                let along: f64 = at
                    .grads
                    .iter()
                    .zip(&dir)
                    .zip(&learnable)
                    .filter(|(_, l)| **l)
                    .flat_map(|((g, d), _)| g.iter().zip(d).map(|(g, d)| *g as f64 * *d as f64))
                    .sum();
                let numeric = (plus.loss - minus.loss) / (2.0 * eps as f64);
                assert!(
                    (numeric - along).abs() <= 1e-2 * along.abs().max(1e-2),
                    "{what}: directional derivative {along} vs finite differences {numeric} (at {t}, eps {eps})"
                );
                assert!(
                    along.abs() > 1e-3,
                    "{what}: a vanishing derivative ({along})"
                );
                return;
            }
            eps /= 2.0;
        }
    }
    panic!("{what}: no kink-free segment near the point");
}

#[test]
fn each_kernel_passes_a_finite_difference_check() {
    // 3x3 stride 1 (direct at 3 input channels, Winograd at 16), with bias, BatchNorm, ReLU.
    let mut t = Tiny::new();
    let layers = vec![
        t.conv(3, 16, 3, 1, true),
        t.bn(16),
        Layer::Relu,
        t.conv(16, 16, 3, 1, false),
        t.bn(16),
    ];
    finite_difference(
        "3x3 convolutions, BatchNorm, ReLU",
        &t.with_head(layers, 16, true),
        4,
    );

    // Strided 3x3 and 1x1 convolutions in a residual block with a projection shortcut (no ReLU:
    // the loss is smooth, and ReLU has its own graphs).
    let mut t = Tiny::new();
    let stem = t.conv(3, 8, 3, 1, false);
    let body = vec![
        t.conv(8, 16, 3, 2, false),
        t.bn(16),
        t.conv(16, 16, 3, 1, false),
        t.bn(16),
    ];
    let shortcut = vec![t.conv(8, 16, 1, 2, false), t.bn(16)];
    let layers = vec![stem, Layer::Residual { body, shortcut }];
    finite_difference(
        "strided convolutions, residual block",
        &t.with_head(layers, 16, true),
        3,
    );

    // Max pooling, flattening, a linear layer with BatchNorm1d (VGG's classifier).
    let mut t = Tiny::new();
    let mut layers = vec![
        t.conv(3, 4, 3, 1, true),
        Layer::Relu,
        Layer::MaxPool {
            kernel: 2,
            stride: 2,
        },
        Layer::MaxPool {
            kernel: 2,
            stride: 2,
        },
        Layer::Flatten,
        t.linear(4 * 2 * 2, 12),
        t.bn(12),
        Layer::Relu,
    ];
    layers.push(t.linear(12, 10));
    t.layers = layers;
    finite_difference("max pooling, linear, BatchNorm1d", &t, 5);

    // DenseNet's pieces: pre-activation BatchNorm, concatenation, average pooling.
    let mut t = Tiny::new();
    let stem = t.conv(3, 6, 3, 1, false);
    let body = vec![
        t.bn(6),
        Layer::Relu,
        t.conv(6, 4, 1, 1, false),
        t.bn(4),
        Layer::Relu,
        t.conv(4, 3, 3, 1, false),
    ];
    let layers = vec![
        stem,
        Layer::Concat { body },
        t.bn(9),
        Layer::Relu,
        Layer::AvgPool {
            kernel: 2,
            stride: 2,
        },
    ];
    finite_difference(
        "concatenation, average pooling",
        &t.with_head(layers, 9, true),
        3,
    );

    // An addition that is not fused into a BatchNorm, and a ReLU on its own.
    let mut t = Tiny::new();
    let stem = t.conv(3, 5, 3, 1, false);
    let body = vec![Layer::Relu, t.conv(5, 5, 3, 1, true)];
    let layers = vec![
        stem,
        Layer::Residual {
            body,
            shortcut: Vec::new(),
        },
        Layer::Relu,
    ];
    finite_difference("plain addition and ReLU", &t.with_head(layers, 5, true), 3);
}

#[test]
fn a_step_is_the_same_for_any_thread_count() {
    let network = net("resnet20", 0.25);
    let params = perturbed(&network.init(1, &Device::flex()), 2);
    let x = images(9, 3);
    let labels: Vec<u16> = (0..9).map(|i| (i % 10) as u16).collect();
    let trainer = CpuTrainer::new(network.layers(), network.layout(), [3, 32, 32]).unwrap();
    let runs: Vec<Step> = [1, 2, 3]
        .into_iter()
        .map(|threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| kernel_step(&trainer, &params, &x, &labels, 0.1))
        })
        .collect();
    for r in &runs[1..] {
        assert_eq!(r.loss.to_bits(), runs[0].loss.to_bits());
        assert_eq!(r.grads, runs[0].grads);
        assert_eq!(r.params, runs[0].params);
    }
}
