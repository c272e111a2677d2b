//! A network: an architecture at a width for a number of classes, with its layer graph and
//! parameter layout.

use crate::arch::{Arch, build};
use crate::forward::{BatchNormMode, Forward};
use crate::graph::{Layer, for_each_layer};
use crate::params::{ParamKind, ParamLayout, ParamScope, ParamSet};
use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Bumped whenever a definition or initialization changes, so cached runs trained under the
/// old definition are never reused.
pub const DEFINITION_VERSION: u32 = 1;

/// Standard deviation of the fully connected weights at initialization (the reference code's).
const LINEAR_INIT_STD: f64 = 1e-3;

/// The widest multiplier accepted (before any layer is built, so channel counts cannot
/// overflow).
pub const MAX_WIDTH: f64 = 1024.0;

/// The most parameters a network may have: 2^30 (4 GiB per copy in f32; training keeps several
/// copies).
pub const MAX_PARAMETERS: usize = 1 << 30;

/// What determines a network: architecture, width multiplier, classes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// The architecture.
    pub arch: Arch,
    /// Channel multiplier (1.0 is the paper's network; 0.25 a quarter of every width).
    pub width: f64,
    /// Number of output classes.
    pub classes: usize,
}

/// A network ready to initialize, run and count.
#[derive(Clone, Debug)]
pub struct Network {
    spec: NetworkSpec,
    layers: Vec<Layer>,
    layout: Arc<ParamLayout>,
}

impl Network {
    /// Builds the graph for `spec`.
    pub fn new(spec: NetworkSpec) -> Result<Self> {
        if !(spec.width > 0.0 && spec.width <= MAX_WIDTH) {
            bail!(
                "model width must be a positive number up to {MAX_WIDTH}, got {}",
                spec.width
            );
        }
        let Some((layers, layout)) = build(spec.arch, spec.width, spec.classes) else {
            bail!(
                "an imported network is read from its file (`landscape import`), not built by name"
            );
        };
        Self::checked(spec, layers, layout)
    }

    /// A network of a graph read from elsewhere (an ONNX model): `layers` over `layout`, with
    /// `classes` outputs, as [`Arch::Imported`].
    pub fn from_graph(layers: Vec<Layer>, layout: ParamLayout, classes: usize) -> Result<Self> {
        let spec = NetworkSpec {
            arch: Arch::Imported,
            width: 1.0,
            classes,
        };
        Self::checked(spec, layers, layout)
    }

    /// Writes the graph and its layout to `path` (JSON), for [`Network::load_graph`].
    pub fn save_graph(&self, path: &std::path::Path) -> Result<()> {
        let graph =
            serde_json::to_vec_pretty(&(&self.layers, self.layout.as_ref(), self.spec.classes))?;
        landscape_core::atomic::write_atomic(path, &graph)
    }

    /// The imported network [`Network::save_graph`] wrote to `path`.
    pub fn load_graph(path: &std::path::Path) -> Result<Self> {
        let text =
            std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let (layers, layout, classes): (Vec<Layer>, ParamLayout, usize) =
            serde_json::from_slice(&text)
                .map_err(|e| anyhow::anyhow!("{}: not a network graph ({e})", path.display()))?;
        Self::from_graph(layers, layout, classes)
    }

    fn checked(spec: NetworkSpec, layers: Vec<Layer>, layout: ParamLayout) -> Result<Self> {
        if spec.classes < 2 {
            bail!(
                "a classifier needs at least 2 classes, got {}",
                spec.classes
            );
        }
        let parameters = layout.numel(crate::ParamScope::States);
        if parameters > MAX_PARAMETERS {
            bail!(
                "a {} of width {} has {parameters} parameters, more than the {MAX_PARAMETERS} supported",
                spec.arch,
                spec.width
            );
        }
        Ok(Self {
            spec,
            layers,
            layout: Arc::new(layout),
        })
    }

    /// What determines this network.
    pub fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    /// The layer graph.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The parameter layout.
    pub fn layout(&self) -> &Arc<ParamLayout> {
        &self.layout
    }

    /// Number of learnable parameters (what papers report; BatchNorm buffers excluded).
    pub fn parameter_count(&self) -> usize {
        self.layout.numel(ParamScope::Weights)
    }

    /// Fresh parameters as the reference code initializes them: convolutions Kaiming-normal
    /// (fan in, gain sqrt 2), linear weights N(0, 1e-3^2), biases 0, BatchNorm gamma 1, beta 0,
    /// running mean 0, running variance 1. Drawn on the host from `seed`, so every device gets
    /// the same numbers.
    pub fn init(&self, seed: u64, device: &Device) -> ParamSet {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let values = self
            .layout
            .entries()
            .iter()
            .map(|info| {
                let n = info.numel();
                let gaussian = |std: f64, rng: &mut ChaCha8Rng| -> Vec<f32> {
                    let normal = Normal::new(0.0, std).expect("finite std");
                    (0..n).map(|_| normal.sample(rng) as f32).collect()
                };
                match info.kind {
                    ParamKind::ConvWeight => {
                        let fan_in: usize = info.shape[1..].iter().product();
                        gaussian((2.0 / fan_in as f64).sqrt(), &mut rng)
                    }
                    ParamKind::LinearWeight => gaussian(LINEAR_INIT_STD, &mut rng),
                    ParamKind::BnWeight | ParamKind::BnRunningVar => vec![1.0; n],
                    ParamKind::Bias | ParamKind::BnBias | ParamKind::BnRunningMean => vec![0.0; n],
                }
            })
            .collect();
        ParamSet::from_host(self.layout.clone(), values, device)
            .expect("layout matches its own values")
    }

    /// Logits of images `x` (`[n, 3, 32, 32]`, normalized) with BatchNorm in inference mode.
    pub fn eval_logits(&self, params: &ParamSet, x: Tensor<4>) -> Tensor<2> {
        Forward::new(params.tensors(), BatchNormMode::Running).logits(&self.layers, x)
    }

    /// Forward multiply-adds per 32x32 image (convolutions and linear layers).
    pub fn macs_per_image(&self) -> u64 {
        count_macs(&self.layers, Shape::Spatial(3, 32, 32)).1
    }
}

#[derive(Clone, Copy)]
enum Shape {
    Spatial(usize, usize, usize),
    Flat(usize),
}

impl Shape {
    fn spatial(self) -> (usize, usize, usize) {
        match self {
            Shape::Spatial(c, h, w) => (c, h, w),
            Shape::Flat(f) => (f, 1, 1),
        }
    }
}

fn count_macs(layers: &[Layer], mut shape: Shape) -> (Shape, u64) {
    let mut macs = 0u64;
    for layer in layers {
        let (next, m) = match layer {
            Layer::Conv(c) => {
                let (_, h, w) = shape.spatial();
                let out = |s: usize| (s + 2 * c.padding - c.kernel) / c.stride + 1;
                let (ho, wo) = (out(h), out(w));
                (
                    Shape::Spatial(c.cout, ho, wo),
                    (ho * wo * c.cout * c.cin * c.kernel * c.kernel) as u64,
                )
            }
            Layer::MaxPool { kernel, stride } | Layer::AvgPool { kernel, stride } => {
                let (c, h, w) = shape.spatial();
                (
                    Shape::Spatial(c, (h - kernel) / stride + 1, (w - kernel) / stride + 1),
                    0,
                )
            }
            Layer::GlobalAvgPool => (Shape::Flat(shape.spatial().0), 0),
            Layer::Flatten => {
                let (c, h, w) = shape.spatial();
                (Shape::Flat(c * h * w), 0)
            }
            Layer::Linear(l) => (Shape::Flat(l.output), (l.input * l.output) as u64),
            Layer::Residual { body, shortcut } => {
                let (out, a) = count_macs(body, shape);
                let (_, b) = count_macs(shortcut, shape);
                (out, a + b)
            }
            Layer::Concat { body } => {
                let (out, a) = count_macs(body, shape);
                let (c, h, w) = shape.spatial();
                (Shape::Spatial(c + out.spatial().0, h, w), a)
            }
            Layer::BatchNorm(_) | Layer::Relu => (shape, 0),
        };
        shape = next;
        macs += m;
    }
    (shape, macs)
}

/// Number of BatchNorm layers in a graph (used by tests and descriptions).
pub fn batch_norm_count(layers: &[Layer]) -> usize {
    let mut n = 0;
    for_each_layer(layers, &mut |l| {
        n += matches!(l, Layer::BatchNorm(_)) as usize
    });
    n
}
