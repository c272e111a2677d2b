//! Compiling a (folded) layer graph into a flat list of operations on numbered values, with
//! the ReLUs and residual additions fused into the layer before them and every value assigned
//! to one of a few reusable buffers.

use super::conv::{ConvGeom, ConvPlan};
use super::isa::Isa;
use super::winograd::WinogradPlan;
use crate::graph::{Conv, Layer, Linear};
use crate::params::ParamId;
use anyhow::{Result, bail, ensure};

/// A value: an index into [`Plan::shapes`].
pub(crate) type V = usize;

/// The shape of a value for one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `h x w x c`, stored with a one-pixel zero border: `(h + 2) x (w + 2) x c` floats.
    Spatial { c: usize, h: usize, w: usize },
    /// A feature vector.
    Flat(usize),
}

impl Shape {
    /// Floats one image of this value occupies.
    pub(crate) fn floats(self) -> usize {
        match self {
            Shape::Spatial { c, h, w } => (h + 2) * (w + 2) * c,
            Shape::Flat(n) => n,
        }
    }

    /// Channels (spatial) or features (flat).
    pub(crate) fn channels(self) -> usize {
        match self {
            Shape::Spatial { c, .. } => c,
            Shape::Flat(n) => n,
        }
    }
}

/// One operation of the compiled graph.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// `y = relu?(conv(x) + bias + res)`.
    Conv {
        x: V,
        y: V,
        res: Option<V>,
        relu: bool,
        conv: usize,
    },
    /// `y = relu?(x W^T + b)`, over all images of a group at once.
    Dense {
        x: V,
        y: V,
        relu: bool,
        dense: usize,
    },
    /// BatchNorm with running statistics: `y = relu?(x * scale + shift)` per channel.
    Affine {
        x: V,
        y: V,
        bn: usize,
        relu: bool,
    },
    Relu {
        x: V,
        y: V,
    },
    MaxPool {
        x: V,
        y: V,
        k: usize,
        s: usize,
    },
    AvgPool {
        x: V,
        y: V,
        k: usize,
        s: usize,
    },
    GlobalAvg {
        x: V,
        y: V,
    },
    /// Spatial to flat in PyTorch's channel-major order.
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
    /// `y = cat(new, old)` along channels.
    Concat {
        new: V,
        old: V,
        y: V,
    },
}

impl Op {
    pub(crate) fn output(&self) -> V {
        match *self {
            Op::Conv { y, .. }
            | Op::Dense { y, .. }
            | Op::Affine { y, .. }
            | Op::Relu { y, .. }
            | Op::MaxPool { y, .. }
            | Op::AvgPool { y, .. }
            | Op::GlobalAvg { y, .. }
            | Op::Flatten { y, .. }
            | Op::Add { y, .. }
            | Op::Concat { y, .. } => y,
        }
    }

    pub(crate) fn inputs(&self) -> Vec<V> {
        match *self {
            Op::Conv { x, res, .. } => std::iter::once(x).chain(res).collect(),
            Op::Dense { x, .. }
            | Op::Affine { x, .. }
            | Op::Relu { x, .. }
            | Op::MaxPool { x, .. }
            | Op::AvgPool { x, .. }
            | Op::GlobalAvg { x, .. }
            | Op::Flatten { x, .. } => vec![x],
            Op::Add { a, b, .. } => vec![a, b],
            Op::Concat { new, old, .. } => vec![new, old],
        }
    }

    /// Elementwise: may write its output over its (dying) input.
    fn in_place(&self) -> bool {
        matches!(self, Op::Affine { .. } | Op::Relu { .. })
    }
}

/// How a convolution runs.
#[derive(Clone, Debug)]
pub(crate) enum ConvKernel {
    /// The direct kernel.
    Direct(ConvPlan),
    /// Winograd's F(2x2, 3x3) (3x3 stride-1 convolutions).
    Winograd(WinogradPlan),
}

/// A convolution and where its tensors come from.
#[derive(Clone, Debug)]
pub(crate) struct ConvLayer {
    pub weight: ParamId,
    pub bias: Option<ParamId>,
    pub kernel: ConvKernel,
}

/// Which kernels a plan may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kernels {
    /// The instruction set of the kernels.
    pub isa: Isa,
    /// Winograd's F(2x2, 3x3) for 3x3 stride-1 convolutions with at least this many input
    /// channels (`usize::MAX`: never).
    pub winograd_from: usize,
}

impl Kernels {
    /// The kernels of `isa` (an error where this CPU does not run it); Winograd from `winograd_from`
    /// input channels where `winograd`.
    pub(crate) fn choose(isa: Isa, winograd: bool, winograd_from: usize) -> Result<Self> {
        ensure!(isa.available(), "this CPU does not run the {isa} kernels");
        Ok(Self {
            isa,
            winograd_from: if winograd { winograd_from } else { usize::MAX },
        })
    }
}

/// A linear layer, run as a 1x1 convolution over the images of a group.
#[derive(Clone, Debug)]
pub(crate) struct DenseLayer {
    pub weight: ParamId,
    pub bias: ParamId,
    pub plan: ConvPlan,
}

/// An unfolded BatchNorm.
#[derive(Clone, Debug)]
pub(crate) struct BnLayer {
    pub weight: ParamId,
    pub bias: ParamId,
    pub mean: ParamId,
    pub var: ParamId,
    pub channels: usize,
}

/// A compiled graph.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub ops: Vec<Op>,
    pub shapes: Vec<Shape>,
    /// The buffer each value lives in.
    pub buffer_of: Vec<usize>,
    pub buffers: usize,
    /// Floats per image in each buffer (a multiple of 16).
    pub buffer_len: usize,
    pub input: V,
    pub output: V,
    pub convs: Vec<ConvLayer>,
    pub denses: Vec<DenseLayer>,
    pub bns: Vec<BnLayer>,
    /// Images run together through the network (the linear layers share their weights
    /// across them).
    pub group: usize,
    /// Floats of Winograd scratch (V, M) a workspace needs.
    pub scratch: (usize, usize),
    /// The instruction set of the kernels.
    pub isa: Isa,
}

impl Plan {
    /// Compiles `layers` for `[c, h, w]` images. Fails on what the kernels do not cover
    /// (padding above 1, a malformed graph).
    pub(crate) fn compile(layers: &[Layer], input: [usize; 3], kernels: Kernels) -> Result<Self> {
        let [c, h, w] = input;
        // Large linear layers are worth running on several images at once.
        let mut big_linear = false;
        crate::graph::for_each_layer(layers, &mut |l| {
            if let Layer::Linear(l) = l {
                big_linear |= l.input * l.output >= 1 << 16;
            }
        });
        let group = if big_linear { 8 } else { 1 };
        let mut b = Builder {
            ops: Vec::new(),
            shapes: Vec::new(),
            uses: Vec::new(),
            convs: Vec::new(),
            denses: Vec::new(),
            bns: Vec::new(),
            group,
            kernels,
        };
        let x = b.value(Shape::Spatial { c, h, w });
        let mut y = b.seq(layers, x)?;
        if matches!(b.shapes[y], Shape::Spatial { .. }) {
            y = b.flatten(y);
        }
        let (buffer_of, buffers, buffer_len) = allocate(&b.ops, &b.shapes, x, y);
        let scratch = b.convs.iter().fold((0, 0), |(v, m), c| match &c.kernel {
            ConvKernel::Winograd(w) => {
                let (wv, wm) = w.scratch_len();
                (v.max(wv), m.max(wm))
            }
            ConvKernel::Direct(_) => (v, m),
        });
        Ok(Plan {
            ops: b.ops,
            shapes: b.shapes,
            buffer_of,
            buffers,
            buffer_len,
            input: x,
            output: y,
            convs: b.convs,
            denses: b.denses,
            bns: b.bns,
            group,
            scratch,
            isa: kernels.isa,
        })
    }

    /// Number of outputs per image.
    pub(crate) fn classes(&self) -> usize {
        self.shapes[self.output].channels()
    }
}

struct Builder {
    ops: Vec<Op>,
    shapes: Vec<Shape>,
    /// References to each value so far (consumers and pending shortcut/concat operands).
    uses: Vec<usize>,
    convs: Vec<ConvLayer>,
    denses: Vec<DenseLayer>,
    bns: Vec<BnLayer>,
    group: usize,
    kernels: Kernels,
}

impl Builder {
    fn value(&mut self, shape: Shape) -> V {
        self.shapes.push(shape);
        self.uses.push(0);
        self.shapes.len() - 1
    }

    fn push(&mut self, op: Op) -> V {
        for v in op.inputs() {
            self.uses[v] += 1;
        }
        let y = op.output();
        self.ops.push(op);
        y
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
            Layer::BatchNorm(bn) => {
                ensure!(
                    self.shapes[x].channels() == bn.channels,
                    "BatchNorm over {} channels on {:?}",
                    bn.channels,
                    self.shapes[x]
                );
                self.bns.push(BnLayer {
                    weight: bn.weight,
                    bias: bn.bias,
                    mean: bn.running_mean,
                    var: bn.running_var,
                    channels: bn.channels,
                });
                let y = self.value(self.shapes[x]);
                self.push(Op::Affine {
                    x,
                    y,
                    bn: self.bns.len() - 1,
                    relu: false,
                })
            }
            Layer::Relu => {
                if self.fuse_relu(x) {
                    x
                } else {
                    let y = self.value(self.shapes[x]);
                    self.push(Op::Relu { x, y })
                }
            }
            Layer::MaxPool { kernel, stride } | Layer::AvgPool { kernel, stride } => {
                let (c, h, w) = self.spatial(x, "pooling")?;
                ensure!(
                    *kernel >= 1 && *stride >= 1 && *kernel <= h && *kernel <= w,
                    "pooling window {kernel} on {h}x{w}"
                );
                let shape = Shape::Spatial {
                    c,
                    h: (h - kernel) / stride + 1,
                    w: (w - kernel) / stride + 1,
                };
                let y = self.value(shape);
                let (k, s) = (*kernel, *stride);
                self.push(if matches!(layer, Layer::MaxPool { .. }) {
                    Op::MaxPool { x, y, k, s }
                } else {
                    Op::AvgPool { x, y, k, s }
                })
            }
            Layer::GlobalAvgPool => {
                let (c, _, _) = self.spatial(x, "global pooling")?;
                let y = self.value(Shape::Flat(c));
                self.push(Op::GlobalAvg { x, y })
            }
            Layer::Flatten => match self.shapes[x] {
                Shape::Spatial { .. } => self.flatten(x),
                Shape::Flat(_) => x,
            },
            Layer::Linear(l) => self.linear(l, x)?,
            Layer::Residual { body, shortcut } => {
                // Pin the input: the shortcut and the body both read it.
                self.uses[x] += 1;
                let skip = self.seq(shortcut, x)?;
                self.uses[skip] += 1;
                let out = self.seq(body, x)?;
                ensure!(
                    self.shapes[out] == self.shapes[skip],
                    "residual branches disagree: {:?} and {:?}",
                    self.shapes[out],
                    self.shapes[skip]
                );
                let fusable = self.uses[out] == 0
                    && matches!(self.ops.last(),
                        Some(Op::Conv { y, res: None, relu: false, .. }) if *y == out);
                if fusable {
                    if let Some(Op::Conv { res, .. }) = self.ops.last_mut() {
                        *res = Some(skip);
                    }
                    self.uses[skip] += 1;
                    out
                } else {
                    let y = self.value(self.shapes[out]);
                    self.push(Op::Add {
                        a: out,
                        b: skip,
                        y,
                        relu: false,
                    })
                }
            }
            Layer::Concat { body } => {
                let (c, h, w) = self.spatial(x, "a dense block")?;
                self.uses[x] += 1;
                let new = self.seq(body, x)?;
                let (cn, hn, wn) = self.spatial(new, "a dense block")?;
                ensure!(
                    (hn, wn) == (h, w),
                    "dense block changes the size {h}x{w} to {hn}x{wn}"
                );
                let y = self.value(Shape::Spatial { c: cn + c, h, w });
                self.push(Op::Concat { new, old: x, y })
            }
        })
    }

    /// Folds a ReLU into the operation that just produced `x`, when nothing else reads `x`.
    fn fuse_relu(&mut self, x: V) -> bool {
        if self.uses[x] != 0 {
            return false;
        }
        match self.ops.last_mut() {
            Some(
                Op::Conv { y, relu, .. }
                | Op::Dense { y, relu, .. }
                | Op::Affine { y, relu, .. }
                | Op::Add { y, relu, .. },
            ) if *y == x && !*relu => {
                *relu = true;
                true
            }
            _ => false,
        }
    }

    fn flatten(&mut self, x: V) -> V {
        let y = self.value(Shape::Flat(self.shapes[x].floats_unpadded()));
        self.push(Op::Flatten { x, y })
    }

    fn conv(&mut self, c: &Conv, x: V) -> Result<V> {
        let (cin, h, w) = self.spatial(x, "a convolution")?;
        ensure!(
            cin == c.cin,
            "convolution expects {} channels, gets {cin}",
            c.cin
        );
        ensure!(
            c.padding <= 1,
            "convolution padding {} (the CPU kernels cover at most 1)",
            c.padding
        );
        ensure!(
            c.kernel >= 1 && c.stride >= 1 && h + 2 * c.padding >= c.kernel,
            "convolution {}x{} stride {} on {h}x{w}",
            c.kernel,
            c.kernel,
            c.stride
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
        let kernel = if WinogradPlan::covers(&geom) && cin >= self.kernels.winograd_from {
            ConvKernel::Winograd(WinogradPlan::new(geom, self.kernels.isa))
        } else {
            ConvKernel::Direct(ConvPlan::new(geom, self.kernels.isa))
        };
        self.convs.push(ConvLayer {
            weight: c.weight,
            bias: c.bias,
            kernel,
        });
        let y = self.value(Shape::Spatial {
            c: c.cout,
            h: geom.ho,
            w: geom.wo,
        });
        Ok(self.push(Op::Conv {
            x,
            y,
            res: None,
            relu: false,
            conv: self.convs.len() - 1,
        }))
    }

    fn linear(&mut self, l: &Linear, x: V) -> Result<V> {
        let x = match self.shapes[x] {
            Shape::Spatial { .. } => self.flatten(x),
            Shape::Flat(_) => x,
        };
        ensure!(
            self.shapes[x].channels() == l.input,
            "linear layer expects {} features, gets {}",
            l.input,
            self.shapes[x].channels()
        );
        // The images of a group as a 1 x group image, features as channels.
        self.denses.push(DenseLayer {
            weight: l.weight,
            bias: l.bias,
            plan: ConvPlan::dense(l.input, l.output, self.group, self.kernels.isa),
        });
        let y = self.value(Shape::Flat(l.output));
        Ok(self.push(Op::Dense {
            x,
            y,
            relu: false,
            dense: self.denses.len() - 1,
        }))
    }
}

impl Shape {
    fn floats_unpadded(self) -> usize {
        match self {
            Shape::Spatial { c, h, w } => c * h * w,
            Shape::Flat(n) => n,
        }
    }
}

/// Assigns every value a buffer, reusing the buffers of values no longer read. An operation's
/// output never shares a buffer with its inputs, except an elementwise one over an input it
/// reads last. Returns (buffer of each value, number of buffers, floats per image per buffer).
fn allocate(ops: &[Op], shapes: &[Shape], input: V, output: V) -> (Vec<usize>, usize, usize) {
    let mut last = vec![0usize; shapes.len()];
    for (i, op) in ops.iter().enumerate() {
        for v in op.inputs() {
            last[v] = i;
        }
    }
    last[output] = usize::MAX;
    let mut buffer_of = vec![usize::MAX; shapes.len()];
    let mut free: Vec<usize> = Vec::new();
    let mut buffers = 0;
    let mut take = |free: &mut Vec<usize>| {
        free.pop().unwrap_or_else(|| {
            buffers += 1;
            buffers - 1
        })
    };
    buffer_of[input] = take(&mut free);
    if ops.is_empty() {
        last[input] = usize::MAX;
    }
    for (i, op) in ops.iter().enumerate() {
        let mut inputs = op.inputs();
        inputs.sort_unstable();
        inputs.dedup();
        let y = op.output();
        let reuse = if op.in_place() {
            inputs.iter().copied().find(|&v| last[v] == i)
        } else {
            None
        };
        buffer_of[y] = match reuse {
            Some(v) => buffer_of[v],
            None => take(&mut free),
        };
        for v in inputs {
            if last[v] == i && Some(v) != reuse {
                free.push(buffer_of[v]);
            }
        }
    }
    let len = shapes.iter().map(|s| s.floats()).max().unwrap_or(0);
    (buffer_of, buffers, len.div_ceil(16) * 16)
}
