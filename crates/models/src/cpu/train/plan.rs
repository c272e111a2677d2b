//! Compiling a layer graph for training: the forward operations (BatchNorm on batch
//! statistics, split at the batch-wide reduction it needs), the backward operations that mirror
//! them in reverse, and the stages the executor runs.
//!
//! An operation either works on one image at a time ([`ImageOp`]) or needs the whole batch
//! ([`BatchOp`]: the end of a BatchNorm's statistics, the linear layers, the loss, the weight
//! gradients). Consecutive image operations form a stage that runs image by image, each image
//! through all of them while its activations are in the core's cache; batch operations are the
//! barriers between stages.

use super::super::conv::{ConvGeom, ConvPlan};
use super::super::isa::Isa;
use super::super::plan::{ConvKernel, Kernels, Shape};
use super::super::winograd::WinogradPlan;
use super::wgrad::WgradPlan;
use super::winograd_grad::WinogradGrad;
use crate::graph::{BatchNorm, Conv, Layer, Linear};
use crate::params::{ParamId, ParamLayout};
use anyhow::{Result, bail, ensure};

/// A value: an index into [`TrainPlan::shapes`]. Its gradient has the same index.
pub(crate) type V = usize;

/// Rows of a linear layer's matrix product per task.
pub(crate) const DENSE_ROWS: usize = 16;

/// Chunks of a batch whose weight gradients are summed apart (in a backward stage, each chunk's
/// images run in order on one thread while their gradients are in its cache) and then added in
/// chunk order. Fixed, so a step gives the same bits for any number of threads.
pub(crate) const WGRAD_CHUNKS: usize = 8;

/// A convolution with its three kernels.
#[derive(Clone, Debug)]
pub(crate) struct TrainConv {
    pub weight: ParamId,
    pub bias: Option<ParamId>,
    pub geom: ConvGeom,
    pub forward: ConvKernel,
    /// The input gradient. None when the input needs no gradient.
    pub data: Option<DataKernel>,
    pub weight_grad: WeightGradKernel,
    /// Where its chunks' weight-gradient partials start in the partial arena (floats; chunk `c`
    /// at `c * acc_len` past it), and its bias partials in the f64 arena.
    pub partial: usize,
    pub bias_partial: usize,
}

/// How a convolution's input gradient (its transpose applied to the output gradient) runs.
#[derive(Clone, Debug)]
pub(crate) enum DataKernel {
    /// A stride-1 convolution with the transposed, flipped kernel.
    Flipped(ConvKernel),
    /// A stride-2 convolution: each of the 4 output phases (input pixels of one row and column
    /// parity) is a small convolution of the output gradient with the taps that reach it,
    /// written at stride 2. No multiply is spent on the zeros a spread-out gradient would hold.
    Phases(Vec<Phase>),
    /// Other strides: the output gradient spread over the input grid (zeros between), then
    /// the flipped kernel at stride 1.
    Spread(ConvKernel),
}

/// One output phase of a stride-2 convolution's transpose.
#[derive(Clone, Debug)]
pub(crate) struct Phase {
    /// Row and column parity of the input pixels it computes.
    pub py: usize,
    pub px: usize,
    /// The kernel taps `(ky, kx)` that reach them (empty: the phase gets no gradient).
    pub taps: Vec<(usize, usize)>,
    /// The convolution over the output gradient's grid (None without taps).
    pub plan: Option<ConvPlan>,
}

/// How a convolution's weight gradient runs.
#[derive(Clone, Debug)]
pub(crate) enum WeightGradKernel {
    /// The direct reduction over pixels.
    Direct(WgradPlan),
    /// Winograd's F(2x2, 3x3) (3x3 stride-1 convolutions).
    Winograd(WinogradGrad),
}

impl WeightGradKernel {
    /// Floats of one chunk's partial.
    pub(crate) fn acc_len(&self) -> usize {
        match self {
            WeightGradKernel::Direct(p) => p.acc_len(),
            WeightGradKernel::Winograd(w) => w.acc_len(),
        }
    }

    /// Adds a summed partial to `grad` in PyTorch's layout.
    pub(crate) fn add_to(&self, acc: &[f32], grad: &mut [f32]) {
        match self {
            WeightGradKernel::Direct(p) => p.add_to(acc, grad),
            WeightGradKernel::Winograd(w) => w.add_to(acc, grad),
        }
    }
}

/// Input channels from which a 3x3 stride-1 convolution's weight gradient runs by Winograd's
/// F(2x2, 3x3) (where Winograd is allowed at all).
const WINOGRAD_GRAD_MIN_CHANNELS: usize = 64;

/// A linear layer: forward and input-gradient products over rows of the batch, and its weight
/// gradient.
#[derive(Clone, Debug)]
pub(crate) struct TrainDense {
    pub weight: ParamId,
    pub bias: ParamId,
    pub input: usize,
    pub output: usize,
    pub forward: ConvPlan,
    pub data: ConvPlan,
    pub weight_grad: WgradPlan,
}

/// A BatchNorm's tensors.
#[derive(Clone, Debug)]
pub(crate) struct TrainBn {
    pub weight: ParamId,
    pub bias: ParamId,
    pub mean: ParamId,
    pub var: ParamId,
    pub channels: usize,
    /// Pixels per image of its input (1 for feature vectors).
    pub pixels: usize,
}

/// An operation on one image. Gradient writes say whether they start the gradient (`add:
/// false`) or add to what other consumers wrote.
#[derive(Clone, Debug)]
pub(crate) enum ImageOp {
    /// `y = conv(x) + bias`.
    Conv {
        x: V,
        y: V,
        conv: usize,
    },
    /// The image's share of a BatchNorm's batch statistics of `x`.
    BnStats {
        x: V,
        bn: usize,
    },
    /// `y = relu?(bn(x) + res)` with the batch's statistics.
    BnApply {
        x: V,
        y: V,
        bn: usize,
        res: Option<V>,
        relu: bool,
    },
    Relu {
        x: V,
        y: V,
    },
    Pool {
        x: V,
        y: V,
        k: usize,
        s: usize,
        max: bool,
    },
    GlobalAvg {
        x: V,
        y: V,
    },
    Flatten {
        x: V,
        y: V,
    },
    Add {
        a: V,
        b: V,
        y: V,
        relu: bool,
    },
    Concat {
        new: V,
        old: V,
        y: V,
    },
    /// `dx (+)= conv^T(dy)`.
    ConvData {
        y: V,
        x: V,
        conv: usize,
        add: bool,
    },
    /// The image's weight (and bias) gradient, added to its chunk's partial.
    ConvWeightGrad {
        x: V,
        y: V,
        conv: usize,
    },
    /// The gradient of `y = relu?(bn(x) + res)` through the ReLU (in place), passed on to
    /// `res`, and the image's share of the BatchNorm's parameter gradients.
    BnGrad {
        x: V,
        y: V,
        bn: usize,
        relu: bool,
        res: Option<(V, bool)>,
    },
    /// `dx (+)=` the BatchNorm's input gradient from `dy` (already through the ReLU).
    BnInputGrad {
        x: V,
        y: V,
        bn: usize,
        add: bool,
    },
    ReluGrad {
        x: V,
        y: V,
        add: bool,
    },
    PoolGrad {
        x: V,
        y: V,
        k: usize,
        s: usize,
        max: bool,
        add: bool,
    },
    GlobalAvgGrad {
        x: V,
        y: V,
        add: bool,
    },
    FlattenGrad {
        x: V,
        y: V,
        add: bool,
    },
    AddGrad {
        a: (V, bool),
        b: (V, bool),
        y: V,
        relu: bool,
    },
    ConcatGrad {
        new: (V, bool),
        old: (V, bool),
        y: V,
    },
}

/// An operation on the whole batch.
#[derive(Clone, Debug)]
pub(crate) enum BatchOp {
    /// Batch statistics, the affine map they give, the running statistics' update.
    BnFinalize { bn: usize },
    /// `y = x W^T + b` over the rows of the batch.
    Dense { x: V, y: V, dense: usize },
    /// Softmax cross-entropy of the logits: loss, correct count, the logits' gradient.
    Loss,
    /// The chunks' weight (and bias) gradient partials of a convolution, added in order.
    ConvWeightSum { conv: usize },
    /// The BatchNorm's parameter gradients and the coefficients of its input gradient.
    BnGradFinalize { bn: usize },
    /// The weight and bias gradients of a linear layer, and `dx =` the input gradient.
    DenseGrad { x: V, y: V, dense: usize },
}

impl ImageOp {
    /// Forward values and gradients this operation reads and writes: (value reads, gradient
    /// reads, gradient writes).
    fn grad_access(&self) -> (Vec<V>, Vec<V>) {
        match *self {
            ImageOp::ConvData { y, x, .. } => (vec![y], vec![x]),
            ImageOp::ConvWeightGrad { y, .. } => (vec![y], Vec::new()),
            ImageOp::BnGrad { y, res, .. } => {
                (vec![y], res.map(|r| r.0).into_iter().chain([y]).collect())
            }
            ImageOp::BnInputGrad { x, y, .. }
            | ImageOp::ReluGrad { x, y, .. }
            | ImageOp::PoolGrad { x, y, .. }
            | ImageOp::GlobalAvgGrad { x, y, .. }
            | ImageOp::FlattenGrad { x, y, .. } => (vec![y], vec![x]),
            ImageOp::AddGrad { a, b, y, .. } => (vec![y], vec![a.0, b.0]),
            ImageOp::ConcatGrad { new, old, y } => (vec![y], vec![new.0, old.0]),
            _ => (Vec::new(), Vec::new()),
        }
    }

    /// Writes its single gradient output elementwise from its single gradient input, so the
    /// output may take the input's buffer.
    fn grad_in_place(&self) -> bool {
        matches!(
            self,
            ImageOp::BnInputGrad { add: false, .. } | ImageOp::ReluGrad { add: false, .. }
        )
    }
}

impl BatchOp {
    fn grad_access(&self) -> (Vec<V>, Vec<V>) {
        match *self {
            BatchOp::DenseGrad { x, y, .. } => (vec![y], vec![x]),
            _ => (Vec::new(), Vec::new()),
        }
    }
}

/// What the executor runs: image operations image by image, or one batch operation.
#[derive(Clone, Debug)]
pub(crate) enum Stage {
    Images(Vec<ImageOp>),
    Batch(BatchOp),
}

/// A graph compiled for training.
#[derive(Clone, Debug)]
pub(crate) struct TrainPlan {
    pub shapes: Vec<Shape>,
    pub input: V,
    pub output: V,
    pub convs: Vec<TrainConv>,
    pub denses: Vec<TrainDense>,
    pub bns: Vec<TrainBn>,
    pub forward: Vec<Stage>,
    pub backward: Vec<Stage>,
    /// The gradient buffer of each value (usize::MAX: none) and the number of buffers.
    pub grad_buffer: Vec<usize>,
    pub grad_buffers: usize,
    /// The graph's ReLUs in execution order, by the value holding each one's output.
    pub relus: Vec<V>,
    /// The graph's max pools in execution order: (input, output, window, stride).
    pub max_pools: Vec<(V, V, usize, usize)>,
    /// Floats and f64s of the weight- and bias-gradient partial arenas.
    pub partials: (usize, usize),
    pub kernels: Kernels,
}

impl TrainPlan {
    /// Compiles `layers` for images `[c, h, w]`, checking that the tensors it names fit `layout`.
    pub(crate) fn compile(
        layers: &[Layer],
        layout: &ParamLayout,
        input: [usize; 3],
        kernels: Kernels,
    ) -> Result<Self> {
        let [c, h, w] = input;
        let mut b = Builder {
            ops: Vec::new(),
            shapes: Vec::new(),
            uses: Vec::new(),
            convs: Vec::new(),
            denses: Vec::new(),
            bns: Vec::new(),
            relus: Vec::new(),
            max_pools: Vec::new(),
            kernels,
        };
        let x = b.value(Shape::Spatial { c, h, w });
        let mut y = b.seq(layers, x)?;
        if matches!(b.shapes[y], Shape::Spatial { .. }) {
            y = b.flatten(y);
        }
        for conv in &b.convs {
            check(layout, conv.weight, conv.geom.cout * conv.geom.depth())?;
            if let Some(bias) = conv.bias {
                check(layout, bias, conv.geom.cout)?;
            }
        }
        for d in &b.denses {
            check(layout, d.weight, d.input * d.output)?;
            check(layout, d.bias, d.output)?;
        }
        for bn in &b.bns {
            for id in [bn.weight, bn.bias, bn.mean, bn.var] {
                check(layout, id, bn.channels)?;
            }
        }
        let backward = b.backward(x, y)?;
        let forward = stages(b.ops);
        let partials = place_partials(&backward, &mut b.convs);
        let (grad_buffer, grad_buffers) = allocate_grads(&backward, b.shapes.len(), y);
        Ok(TrainPlan {
            shapes: b.shapes,
            input: x,
            output: y,
            convs: b.convs,
            denses: b.denses,
            bns: b.bns,
            forward,
            backward,
            grad_buffer,
            grad_buffers,
            relus: b.relus,
            max_pools: b.max_pools,
            partials,
            kernels,
        })
    }

    /// Number of outputs per image.
    pub(crate) fn classes(&self) -> usize {
        self.shapes[self.output].channels()
    }
}

fn check(layout: &ParamLayout, id: ParamId, numel: usize) -> Result<()> {
    ensure!(id.0 < layout.len(), "tensor {} is not in the layout", id.0);
    let info = layout.get(id);
    ensure!(
        info.numel() == numel,
        "`{}` has {} values, the graph needs {numel}",
        info.name,
        info.numel()
    );
    Ok(())
}

/// A forward operation in the order the graph runs it.
#[derive(Clone, Debug)]
enum Fwd {
    Image(ImageOp),
    Batch(BatchOp),
}

struct Builder {
    ops: Vec<Fwd>,
    shapes: Vec<Shape>,
    /// Readers of each value so far (and pins by pending shortcut and concat operands).
    uses: Vec<usize>,
    convs: Vec<TrainConv>,
    denses: Vec<TrainDense>,
    bns: Vec<TrainBn>,
    relus: Vec<V>,
    max_pools: Vec<(V, V, usize, usize)>,
    kernels: Kernels,
}

impl Builder {
    fn value(&mut self, shape: Shape) -> V {
        self.shapes.push(shape);
        self.uses.push(0);
        self.shapes.len() - 1
    }

    fn image(&mut self, op: ImageOp, reads: &[V]) {
        for &v in reads {
            self.uses[v] += 1;
        }
        self.ops.push(Fwd::Image(op));
    }

    fn spatial(&self, x: V, what: &str) -> Result<(usize, usize, usize)> {
        match self.shapes[x] {
            Shape::Spatial { c, h, w } => Ok((c, h, w)),
            Shape::Flat(_) => bail!("{what} needs a spatial input; the graph is malformed"),
        }
    }

    fn seq(&mut self, layers: &[Layer], mut x: V) -> Result<V> {
        for layer in layers {
            x = self.layer(layer, x)?;
        }
        Ok(x)
    }

    fn layer(&mut self, layer: &Layer, x: V) -> Result<V> {
        Ok(match layer {
            Layer::Conv(c) => self.conv(c, x)?,
            Layer::BatchNorm(bn) => self.batch_norm(bn, x)?,
            Layer::Relu => {
                let y = if self.fuse_relu(x) {
                    x
                } else {
                    let y = self.value(self.shapes[x]);
                    self.image(ImageOp::Relu { x, y }, &[x]);
                    y
                };
                self.relus.push(y);
                y
            }
            Layer::MaxPool { kernel, stride } | Layer::AvgPool { kernel, stride } => {
                let (c, h, w) = self.spatial(x, "pooling")?;
                ensure!(
                    *kernel >= 1 && *stride >= 1 && *kernel <= h && *kernel <= w,
                    "pooling window {kernel} on {h}x{w}"
                );
                let y = self.value(Shape::Spatial {
                    c,
                    h: (h - kernel) / stride + 1,
                    w: (w - kernel) / stride + 1,
                });
                let max = matches!(layer, Layer::MaxPool { .. });
                let (k, s) = (*kernel, *stride);
                if max {
                    self.max_pools.push((x, y, k, s));
                }
                self.image(ImageOp::Pool { x, y, k, s, max }, &[x]);
                y
            }
            Layer::GlobalAvgPool => {
                let (c, _, _) = self.spatial(x, "global pooling")?;
                let y = self.value(Shape::Flat(c));
                self.image(ImageOp::GlobalAvg { x, y }, &[x]);
                y
            }
            Layer::Flatten => match self.shapes[x] {
                Shape::Spatial { .. } => self.flatten(x),
                Shape::Flat(_) => x,
            },
            Layer::Linear(l) => self.linear(l, x)?,
            Layer::Residual { body, shortcut } => {
                self.uses[x] += 1;
                let skip = self.seq(shortcut, x)?;
                self.uses[skip] += 1;
                let out = self.seq(body, x)?;
                self.uses[x] -= 1;
                self.uses[skip] -= 1;
                ensure!(
                    self.shapes[out] == self.shapes[skip],
                    "residual branches disagree: {:?} and {:?}",
                    self.shapes[out],
                    self.shapes[skip]
                );
                let fusable = self.uses[out] == 0
                    && matches!(self.ops.last(),
                        Some(Fwd::Image(ImageOp::BnApply { y, res: None, relu: false, .. })) if *y == out);
                if fusable {
                    if let Some(Fwd::Image(ImageOp::BnApply { res, .. })) = self.ops.last_mut() {
                        *res = Some(skip);
                    }
                    self.uses[skip] += 1;
                    out
                } else {
                    let y = self.value(self.shapes[out]);
                    self.image(
                        ImageOp::Add {
                            a: out,
                            b: skip,
                            y,
                            relu: false,
                        },
                        &[out, skip],
                    );
                    y
                }
            }
            Layer::Concat { body } => {
                let (c, h, w) = self.spatial(x, "a dense block")?;
                self.uses[x] += 1;
                let new = self.seq(body, x)?;
                self.uses[x] -= 1;
                let (cn, hn, wn) = self.spatial(new, "a dense block")?;
                ensure!(
                    (hn, wn) == (h, w),
                    "dense block changes the size {h}x{w} to {hn}x{wn}"
                );
                let y = self.value(Shape::Spatial { c: cn + c, h, w });
                self.image(ImageOp::Concat { new, old: x, y }, &[new, x]);
                y
            }
        })
    }

    /// Folds a ReLU into the operation that just produced `x`, when nothing else reads `x`.
    fn fuse_relu(&mut self, x: V) -> bool {
        if self.uses[x] != 0 {
            return false;
        }
        match self.ops.last_mut() {
            Some(Fwd::Image(ImageOp::BnApply { y, relu, .. } | ImageOp::Add { y, relu, .. }))
                if *y == x && !*relu =>
            {
                *relu = true;
                true
            }
            _ => false,
        }
    }

    fn flatten(&mut self, x: V) -> V {
        let Shape::Spatial { c, h, w } = self.shapes[x] else {
            return x;
        };
        let y = self.value(Shape::Flat(c * h * w));
        self.image(ImageOp::Flatten { x, y }, &[x]);
        y
    }

    fn batch_norm(&mut self, bn: &BatchNorm, x: V) -> Result<V> {
        ensure!(
            self.shapes[x].channels() == bn.channels,
            "BatchNorm over {} channels on {:?}",
            bn.channels,
            self.shapes[x]
        );
        self.bns.push(TrainBn {
            weight: bn.weight,
            bias: bn.bias,
            mean: bn.running_mean,
            var: bn.running_var,
            channels: bn.channels,
            pixels: super::kernels::pixels(self.shapes[x]),
        });
        let index = self.bns.len() - 1;
        self.image(ImageOp::BnStats { x, bn: index }, &[x]);
        self.ops.push(Fwd::Batch(BatchOp::BnFinalize { bn: index }));
        let y = self.value(self.shapes[x]);
        // Reading `x` again is not a new use: the same consumer.
        self.ops.push(Fwd::Image(ImageOp::BnApply {
            x,
            y,
            bn: index,
            res: None,
            relu: false,
        }));
        Ok(y)
    }

    fn conv(&mut self, c: &Conv, x: V) -> Result<V> {
        let (cin, h, w) = self.spatial(x, "a convolution")?;
        ensure!(
            cin == c.cin,
            "convolution expects {} channels, gets {cin}",
            c.cin
        );
        ensure!(
            c.kernel >= 1 && c.stride >= 1 && h + 2 * c.padding >= c.kernel,
            "convolution {}x{} stride {} on {h}x{w}",
            c.kernel,
            c.kernel,
            c.stride
        );
        // The input gradient's convolution pads by k - 1 - p: both must fit the border of 1.
        ensure!(
            c.padding <= 1 && c.kernel <= c.padding + 2,
            "convolution {}x{} with padding {} (the CPU training kernels cover 3x3 with padding 1 and 1x1 without)",
            c.kernel,
            c.kernel,
            c.padding
        );
        let out = |s: usize| (s + 2 * c.padding - c.kernel) / c.stride + 1;
        let geom = ConvGeom {
            cin,
            cout: c.cout,
            kernel: c.kernel,
            stride: c.stride,
            pad: c.padding,
            h,
            w,
            ho: out(h),
            wo: out(w),
        };
        // A strided convolution's gradient is spread over a grid of the input's size.
        ensure!(
            geom.stride * (geom.ho - 1) < h && geom.stride * (geom.wo - 1) < w,
            "convolution geometry {geom:?}"
        );
        let data_geom = ConvGeom {
            cin: c.cout,
            cout: cin,
            stride: 1,
            pad: c.kernel - 1 - c.padding,
            ho: h,
            wo: w,
            ..geom
        };
        let needs_grad = x != 0;
        self.convs.push(TrainConv {
            weight: c.weight,
            bias: c.bias,
            geom,
            forward: self.kernel(geom),
            data: needs_grad.then(|| match geom.stride {
                1 => DataKernel::Flipped(self.kernel(data_geom)),
                2 => DataKernel::Phases(phases(&geom, self.kernels.isa)),
                _ => DataKernel::Spread(self.kernel(data_geom)),
            }),
            weight_grad: if WinogradPlan::covers(&geom)
                && self.kernels.winograd_from != usize::MAX
                && cin >= WINOGRAD_GRAD_MIN_CHANNELS
            {
                WeightGradKernel::Winograd(WinogradGrad::new(geom, self.kernels.isa))
            } else {
                WeightGradKernel::Direct(WgradPlan::conv(&geom, self.kernels.isa))
            },
            partial: 0,
            bias_partial: 0,
        });
        let y = self.value(Shape::Spatial {
            c: c.cout,
            h: geom.ho,
            w: geom.wo,
        });
        let conv = self.convs.len() - 1;
        self.image(ImageOp::Conv { x, y, conv }, &[x]);
        Ok(y)
    }

    fn kernel(&self, geom: ConvGeom) -> ConvKernel {
        if WinogradPlan::covers(&geom) && geom.cin >= self.kernels.winograd_from {
            ConvKernel::Winograd(WinogradPlan::new(geom, self.kernels.isa))
        } else {
            ConvKernel::Direct(ConvPlan::new(geom, self.kernels.isa))
        }
    }

    fn linear(&mut self, l: &Linear, x: V) -> Result<V> {
        let x = self.flatten(x);
        ensure!(
            self.shapes[x].channels() == l.input,
            "linear layer expects {} features, gets {}",
            l.input,
            self.shapes[x].channels()
        );
        let isa = self.kernels.isa;
        let stride = |n: usize| n.div_ceil(16) * 16;
        self.denses.push(TrainDense {
            weight: l.weight,
            bias: l.bias,
            input: l.input,
            output: l.output,
            forward: ConvPlan::gemm(l.input, l.output, DENSE_ROWS, stride(l.input), isa),
            data: ConvPlan::gemm(l.output, l.input, DENSE_ROWS, stride(l.output), isa),
            weight_grad: WgradPlan::dense(l.input, l.output, isa),
        });
        let y = self.value(Shape::Flat(l.output));
        self.uses[x] += 1;
        self.ops.push(Fwd::Batch(BatchOp::Dense {
            x,
            y,
            dense: self.denses.len() - 1,
        }));
        Ok(y)
    }

    /// The backward operations of the forward ones, in reverse, as stages. The weight
    /// gradients (which only write parameter gradients) wait for the next barrier, so the image
    /// operations around them share a stage.
    fn backward(&self, input: V, output: V) -> Result<Vec<Stage>> {
        let needs = |v: V| v != input;
        // Whether a gradient has been started (its first writer sets, later ones add).
        let mut started = vec![false; self.shapes.len()];
        started[output] = true;
        let mut write = |v: V| -> bool { std::mem::replace(&mut started[v], true) };
        let mut ops: Vec<Fwd> = vec![Fwd::Batch(BatchOp::Loss)];
        let mut pending: Vec<BatchOp> = Vec::new();
        let flush = |ops: &mut Vec<Fwd>, pending: &mut Vec<BatchOp>| {
            ops.extend(pending.drain(..).map(Fwd::Batch));
        };
        for op in self.ops.iter().rev() {
            match op {
                Fwd::Batch(BatchOp::BnFinalize { .. }) => {}
                Fwd::Batch(BatchOp::Dense { x, y, dense }) => {
                    ensure!(
                        !write(*x),
                        "a linear layer's input is read twice (the CPU training kernels need one reader)"
                    );
                    flush(&mut ops, &mut pending);
                    ops.push(Fwd::Batch(BatchOp::DenseGrad {
                        x: *x,
                        y: *y,
                        dense: *dense,
                    }));
                }
                Fwd::Batch(_) => unreachable!("forward batch operations are BatchNorm and dense"),
                Fwd::Image(op) => match *op {
                    ImageOp::Conv { x, y, conv } => {
                        if needs(x) {
                            let add = write(x);
                            ops.push(Fwd::Image(ImageOp::ConvData { y, x, conv, add }));
                        }
                        ops.push(Fwd::Image(ImageOp::ConvWeightGrad { x, y, conv }));
                        pending.push(BatchOp::ConvWeightSum { conv });
                    }
                    ImageOp::BnStats { .. } => {}
                    ImageOp::BnApply {
                        x,
                        y,
                        bn,
                        res,
                        relu,
                    } => {
                        let res = res.map(|r| (r, write(r)));
                        ops.push(Fwd::Image(ImageOp::BnGrad {
                            x,
                            y,
                            bn,
                            relu,
                            res,
                        }));
                        flush(&mut ops, &mut pending);
                        ops.push(Fwd::Batch(BatchOp::BnGradFinalize { bn }));
                        let add = write(x);
                        ops.push(Fwd::Image(ImageOp::BnInputGrad { x, y, bn, add }));
                    }
                    ImageOp::Relu { x, y } => {
                        let add = write(x);
                        ops.push(Fwd::Image(ImageOp::ReluGrad { x, y, add }));
                    }
                    ImageOp::Pool { x, y, k, s, max } => {
                        let add = write(x);
                        ops.push(Fwd::Image(ImageOp::PoolGrad {
                            x,
                            y,
                            k,
                            s,
                            max,
                            add,
                        }));
                    }
                    ImageOp::GlobalAvg { x, y } => {
                        let add = write(x);
                        ops.push(Fwd::Image(ImageOp::GlobalAvgGrad { x, y, add }));
                    }
                    ImageOp::Flatten { x, y } => {
                        let add = write(x);
                        ops.push(Fwd::Image(ImageOp::FlattenGrad { x, y, add }));
                    }
                    ImageOp::Add { a, b, y, relu } => {
                        let a = (a, write(a));
                        let b = (b, write(b));
                        ops.push(Fwd::Image(ImageOp::AddGrad { a, b, y, relu }));
                    }
                    ImageOp::Concat { new, old, y } => {
                        let new = (new, write(new));
                        let old = (old, write(old));
                        ops.push(Fwd::Image(ImageOp::ConcatGrad { new, old, y }));
                    }
                    _ => unreachable!("backward operations are made here"),
                },
            }
        }
        flush(&mut ops, &mut pending);
        Ok(stages(ops))
    }
}

/// The 4 output phases of the transpose of the stride-2 convolution `g`: input row `2a + py`
/// gets tap row `ky` from output row `a + (py + pad - ky) / 2` when the parities match.
fn phases(g: &ConvGeom, isa: Isa) -> Vec<Phase> {
    let wpo = (g.wo + 2) as isize;
    let reach = |p: usize, k: usize| -> Option<isize> {
        let d = (p + g.pad) as isize - k as isize;
        (d >= 0 && d % 2 == 0).then_some(d / 2)
    };
    let mut out = Vec::new();
    for py in 0..2 {
        for px in 0..2 {
            let mut taps = Vec::new();
            let mut offsets = Vec::new();
            for ky in 0..g.kernel {
                for kx in 0..g.kernel {
                    if let (Some(dy), Some(dx)) = (reach(py, ky), reach(px, kx)) {
                        taps.push((ky, kx));
                        offsets.push((dy * wpo + dx) * g.cout as isize);
                    }
                }
            }
            let (rows, cols) = ((g.h - py).div_ceil(2), (g.w - px).div_ceil(2));
            let plan = (!taps.is_empty())
                .then(|| ConvPlan::grid(g.cout, g.cin, rows, cols, offsets, g.cout, isa));
            out.push(Phase { py, px, taps, plan });
        }
    }
    out
}

/// Places each convolution's weight-gradient partials in the arenas: the convolutions of one
/// stage side by side (their sums run at the barrier after it, before the next stage reuses
/// the space). Returns the arenas' sizes (floats, f64s).
fn place_partials(stages: &[Stage], convs: &mut [TrainConv]) -> (usize, usize) {
    let (mut floats, mut doubles) = (0, 0);
    for stage in stages {
        let Stage::Images(ops) = stage else { continue };
        let (mut f, mut d) = (0, 0);
        for op in ops {
            if let ImageOp::ConvWeightGrad { conv, .. } = *op {
                let c = &mut convs[conv];
                c.partial = f;
                c.bias_partial = d;
                f += WGRAD_CHUNKS * c.weight_grad.acc_len();
                d += WGRAD_CHUNKS * c.geom.cout;
            }
        }
        floats = floats.max(f);
        doubles = doubles.max(d);
    }
    (floats, doubles)
}

/// Groups consecutive image operations into stages.
fn stages(ops: Vec<Fwd>) -> Vec<Stage> {
    let mut out: Vec<Stage> = Vec::new();
    for op in ops {
        match op {
            Fwd::Batch(b) => out.push(Stage::Batch(b)),
            Fwd::Image(i) => match out.last_mut() {
                Some(Stage::Images(list)) => list.push(i),
                _ => out.push(Stage::Images(vec![i])),
            },
        }
    }
    out
}

/// An operation's gradient reads, gradient writes, and whether it may write in place.
type Access = (Vec<V>, Vec<V>, bool);

/// Assigns every gradient a buffer, reusing the buffers of gradients no longer read. Returns
/// (buffer of each value's gradient, usize::MAX where none, and the number of buffers).
///
/// An image stage runs each image through all its operations before the next (in parallel),
/// so a buffer whose gradient dies inside a stage is free only after the stage: until then
/// other images may still read it. The exception is an elementwise operation writing its output
/// over its dying input, which touches the same image's floats only.
fn allocate_grads(stages: &[Stage], values: usize, output: V) -> (Vec<usize>, usize) {
    // Per stage, its operations' gradient reads, writes and in-place flags.
    let accesses: Vec<Vec<Access>> = stages
        .iter()
        .map(|stage| match stage {
            Stage::Images(ops) => ops
                .iter()
                .map(|op| {
                    let (reads, writes) = op.grad_access();
                    (reads, writes, op.grad_in_place())
                })
                .collect(),
            Stage::Batch(BatchOp::Loss) => vec![(Vec::new(), vec![output], false)],
            Stage::Batch(op) => {
                let (reads, writes) = op.grad_access();
                vec![(reads, writes, false)]
            }
        })
        .collect();
    // The last stage that reads each gradient (a write that adds reads it too).
    let mut last_read = vec![None; values];
    for (i, ops) in accesses.iter().enumerate() {
        for (reads, writes, _) in ops {
            for &v in reads.iter().chain(writes) {
                last_read[v] = Some(i);
            }
        }
    }
    let mut buffer = vec![usize::MAX; values];
    // The gradient that holds each buffer now.
    let mut owner: Vec<V> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    for (i, ops) in accesses.iter().enumerate() {
        for (reads, writes, in_place) in ops {
            for &v in writes {
                if buffer[v] != usize::MAX {
                    continue;
                }
                let dying = reads.iter().copied().find(|&d| {
                    last_read[d] == Some(i) && !writes.contains(&d) && owner[buffer[d]] == d
                });
                buffer[v] = match (in_place, dying) {
                    (true, Some(d)) => buffer[d],
                    _ => free.pop().unwrap_or_else(|| {
                        owner.push(v);
                        owner.len() - 1
                    }),
                };
                owner[buffer[v]] = v;
            }
        }
        // Released after the stage: other images may read them until it ends.
        for (b, &v) in owner.iter().enumerate() {
            if last_read[v] == Some(i) && !free.contains(&b) {
                free.push(b);
            }
        }
    }
    (buffer, owner.len())
}
