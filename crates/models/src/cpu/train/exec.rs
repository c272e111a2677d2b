//! Running a training plan on a micro-batch: the forward stages, the loss, the backward
//! stages, with every activation and gradient of the batch in memory (NHWC, one-pixel zero
//! border, as the inference kernels keep them).
//!
//! Image stages run the images in parallel (rayon), each through all operations of the stage;
//! batch operations run between them. Every reduction over the batch (BatchNorm statistics,
//! parameter gradients, the loss) sums the images in their order, so the result is the same
//! whatever the number of threads.

use super::super::buffer::Aligned;
use super::super::conv::{ConvPlan, PackedConv, transpose_blocked, zero_border};
use super::super::exec::{PackedAny, pool};
use super::super::plan::{ConvKernel, Shape};
use super::super::winograd::Scratch;
use super::kernels::{self, Mask};
use super::plan::{
    BatchOp, DENSE_ROWS, DataKernel, ImageOp, Stage, TrainPlan, V, WGRAD_CHUNKS, WeightGradKernel,
};
use super::wgrad::Sweep;
use super::winograd_grad::GradScratch;
use crate::forward::{BN_EPS, BN_MOMENTUM};
use rayon::prelude::*;
use std::sync::Mutex;

/// Floats between consecutive images of a value (a whole number of cache lines).
fn stride(shape: Shape) -> usize {
    shape.floats().div_ceil(16) * 16
}

/// Images a value's buffer holds for a batch of `n`: feature vectors get room for the matrix
/// product's last row tile.
fn rows(shape: Shape, n: usize) -> usize {
    match shape {
        Shape::Spatial { .. } => n,
        Shape::Flat(_) => n + DENSE_ROWS,
    }
}

/// The activations, gradients and packed weights of training, sized for the largest
/// micro-batch seen so far.
#[derive(Debug, Default)]
pub(crate) struct TrainBuffers {
    capacity: usize,
    /// Images of the last micro-batch.
    last: usize,
    values: Vec<Aligned>,
    grads: Vec<Aligned>,
    bns: Vec<BnBuffers>,
    /// Per convolution its packings; per linear layer the forward and input-gradient packings
    /// and its transposed weight.
    convs: Vec<Packing>,
    denses: Vec<(PackedConv, PackedConv, Vec<f32>)>,
    /// A weight gradient in the kernel's layout.
    wgrad: Aligned,
    /// The chunks' weight- and bias-gradient partials of the convolutions of one stage.
    partials: Aligned,
    bias_partials: Vec<f64>,
    scratch: Mutex<Vec<ImageScratch>>,
}

/// One convolution's weights packed for its forward and input-gradient kernels.
#[derive(Debug)]
struct Packing {
    forward: PackedAny,
    data: Option<PackedData>,
    /// The transposed, flipped kernel the input gradient is packed from.
    rearranged: Vec<f32>,
}

/// A convolution's input-gradient weights, as its [`DataKernel`] runs them.
#[derive(Debug)]
enum PackedData {
    Kernel(PackedAny),
    /// One per phase (empty for a phase without taps).
    Phases(Vec<PackedConv>),
}

/// A BatchNorm's per-image shares (`[n][c]`: the statistics in the forward pass, the gradient
/// sums in the backward pass) and the per-channel coefficients made from them.
#[derive(Debug, Default)]
struct BnBuffers {
    part_a: Vec<f32>,
    part_b: Vec<f32>,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    scale: Vec<f32>,
    shift: Vec<f32>,
    /// The input gradient is `ga * g + gb * (x - mean) + gc`.
    ga: Vec<f32>,
    gb: Vec<f32>,
    gc: Vec<f32>,
}

/// One thread's working memory for image operations.
#[derive(Debug)]
struct ImageScratch {
    winograd: Scratch,
    /// A strided convolution's output gradient spread over the input grid.
    up: Aligned,
    /// An input gradient computed before it is added.
    tmp: Aligned,
    /// Winograd weight gradients' transforms.
    grad: GradScratch,
    /// BatchNorm sums over one period (two of them).
    bn: Vec<f32>,
}

/// A pointer shared by the image tasks, each of which touches its own image only.
#[derive(Clone, Copy)]
struct Ptr(*mut f32);
// SAFETY: the tasks that share a `Ptr` write disjoint images (see `Ctx`).
unsafe impl Send for Ptr {}
// SAFETY: as above.
unsafe impl Sync for Ptr {}

impl Ptr {
    fn null() -> Self {
        Ptr(std::ptr::null_mut())
    }
}

/// What one image operation needs: where every value and gradient lives.
struct Ctx<'a> {
    plan: &'a TrainPlan,
    values: Vec<Ptr>,
    grads: Vec<Ptr>,
    /// Per BatchNorm: part_a, part_b, mean, scale, shift, ga, gb, gc.
    bns: Vec<[Ptr; 8]>,
    convs: &'a [Packing],
    partials: Ptr,
    bias_partials: Ptr64,
}

/// [`Ptr`] for f64.
#[derive(Clone, Copy)]
struct Ptr64(*mut f64);
// SAFETY: as `Ptr`: each chunk's task writes its own partials.
unsafe impl Send for Ptr64 {}
// SAFETY: as above.
unsafe impl Sync for Ptr64 {}

/// Repeats the first `c` floats of `v` over all of it (a coefficient vector expanded to its
/// period, see [`kernels::period`]).
fn expand(v: &mut [f32], c: usize) {
    for k in c..v.len() {
        v[k] = v[k % c];
    }
}

/// Chunks of a batch of `n` for the weight-gradient partials.
fn chunks(n: usize) -> usize {
    WGRAD_CHUNKS.min(n).max(1)
}

impl TrainPlan {
    /// Buffers for this plan (they grow with the first batch).
    pub(crate) fn buffers(&self) -> TrainBuffers {
        TrainBuffers::default()
    }

    /// Packs the weights of the point `params` (one vector per layout entry) for the kernels.
    pub(crate) fn pack(&self, bufs: &mut TrainBuffers, params: &[Vec<f32>]) {
        if bufs.convs.len() != self.convs.len() {
            bufs.convs = self
                .convs
                .iter()
                .map(|c| Packing {
                    forward: c.forward.packed(),
                    data: c.data.as_ref().map(|d| match d {
                        DataKernel::Flipped(k) | DataKernel::Spread(k) => {
                            PackedData::Kernel(k.packed())
                        }
                        DataKernel::Phases(p) => {
                            PackedData::Phases(p.iter().map(|_| PackedConv::default()).collect())
                        }
                    }),
                    rearranged: Vec::new(),
                })
                .collect();
        }
        // Each layer on its own: the big ones' Winograd transforms take a millisecond.
        self.convs
            .par_iter()
            .zip(&mut bufs.convs)
            .for_each(|(c, packing)| {
                let weight = &params[c.weight.0];
                let bias = c.bias.map(|b| &params[b.0][..]);
                c.forward.pack(weight, bias, &mut packing.forward);
                let g = &c.geom;
                let taps = g.kernel * g.kernel;
                let rearranged = &mut packing.rearranged;
                match (&c.data, &mut packing.data) {
                    (
                        Some(DataKernel::Flipped(kernel) | DataKernel::Spread(kernel)),
                        Some(PackedData::Kernel(packed)),
                    ) => {
                        // [cin, cout, k, k] with the taps reversed: the kernel of the
                        // transposed convolution, written in order.
                        rearranged.resize(weight.len(), 0.0);
                        for ci in 0..g.cin {
                            for co in 0..g.cout {
                                let src = &weight[(co * g.cin + ci) * taps..][..taps];
                                let dst = &mut rearranged[(ci * g.cout + co) * taps..][..taps];
                                for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                                    *d = *s;
                                }
                            }
                        }
                        kernel.pack(rearranged, None, packed);
                    }
                    (Some(DataKernel::Phases(phases)), Some(PackedData::Phases(packed))) => {
                        for (phase, packed) in phases.iter().zip(packed) {
                            let Some(plan) = &phase.plan else { continue };
                            // [cin, cout, the phase's taps].
                            let n = phase.taps.len();
                            rearranged.resize(g.cin * g.cout * n, 0.0);
                            for ci in 0..g.cin {
                                for co in 0..g.cout {
                                    for (t, &(ky, kx)) in phase.taps.iter().enumerate() {
                                        rearranged[(ci * g.cout + co) * n + t] =
                                            weight[(co * g.cin + ci) * taps + ky * g.kernel + kx];
                                    }
                                }
                            }
                            plan.pack(rearranged, None, packed);
                        }
                    }
                    (None, None) => {}
                    _ => unreachable!("packed for another plan"),
                }
            });
        bufs.denses.resize_with(self.denses.len(), Default::default);
        self.denses
            .par_iter()
            .zip(&mut bufs.denses)
            .for_each(|(d, (fwd, data, transposed))| {
                let weight = &params[d.weight.0];
                d.forward.pack(weight, Some(&params[d.bias.0]), fwd);
                transposed.resize(weight.len(), 0.0);
                transpose_blocked(weight, d.output, d.input, transposed);
                d.data.pack(transposed, None, data);
            });
    }

    /// Makes `bufs` hold a batch of `n`.
    fn reserve(&self, bufs: &mut TrainBuffers, n: usize) {
        if bufs.capacity >= n && bufs.values.len() == self.shapes.len() {
            return;
        }
        bufs.capacity = n;
        bufs.values = self
            .shapes
            .iter()
            .map(|&s| Aligned::zeros(rows(s, n) * stride(s)))
            .collect();
        // Each gradient buffer as large as the largest gradient it holds.
        let mut grad_len = vec![0; self.grad_buffers];
        for (v, &b) in self.grad_buffer.iter().enumerate() {
            if b != usize::MAX {
                grad_len[b] = grad_len[b].max(rows(self.shapes[v], n) * stride(self.shapes[v]));
            }
        }
        bufs.grads = grad_len.into_iter().map(Aligned::zeros).collect();
        bufs.bns = self
            .bns
            .iter()
            .map(|bn| {
                let (c, l) = (bn.channels, kernels::period(bn.channels));
                BnBuffers {
                    part_a: vec![0.0; n * c],
                    part_b: vec![0.0; n * c],
                    mean: vec![0.0; l],
                    invstd: vec![0.0; c],
                    scale: vec![0.0; l],
                    shift: vec![0.0; l],
                    ga: vec![0.0; l],
                    gb: vec![0.0; l],
                    gc: vec![0.0; l],
                }
            })
            .collect();
        let wgrad = self
            .convs
            .iter()
            .map(|c| c.weight_grad.acc_len())
            .chain(self.denses.iter().map(|d| d.weight_grad.acc_len()))
            .max()
            .unwrap_or(0);
        bufs.wgrad = Aligned::zeros(wgrad);
        bufs.partials = Aligned::zeros(self.partials.0);
        bufs.bias_partials = vec![0.0; self.partials.1];
    }

    fn scratch(&self) -> ImageScratch {
        let (mut v, mut m, mut up, mut tmp) = (0, 0, 0, 0);
        for c in &self.convs {
            let data = match &c.data {
                Some(DataKernel::Flipped(k) | DataKernel::Spread(k)) => Some(k),
                _ => None,
            };
            for kernel in std::iter::once(&c.forward).chain(data) {
                if let ConvKernel::Winograd(w) = kernel {
                    let (wv, wm) = w.scratch_len();
                    v = v.max(wv);
                    m = m.max(wm);
                }
            }
            let g = &c.geom;
            let grid = (g.h + 2) * (g.w + 2);
            if g.stride > 1 {
                up = up.max(grid * g.cout);
            }
            tmp = tmp.max(grid * g.cin);
        }
        ImageScratch {
            winograd: Scratch::new(v, m),
            up: Aligned::zeros(up),
            tmp: Aligned::zeros(tmp),
            grad: GradScratch::default(),
            bn: vec![
                0.0;
                2 * self
                    .bns
                    .iter()
                    .map(|b| kernels::period(b.channels))
                    .max()
                    .unwrap_or(0)
            ],
        }
    }

    /// Forward and backward of the micro-batch `images` (`n x c x h x w`, NCHW as the data
    /// sets give them) with `labels`: adds `scale` times the gradient of the summed
    /// cross-entropy to `grads` (learnable tensors), replaces the running statistics in
    /// `params` by their updates, and returns the summed loss and the number of correct
    /// predictions. The weights must have been packed from `params` ([`TrainPlan::pack`]).
    pub(crate) fn step(
        &self,
        bufs: &mut TrainBuffers,
        params: &mut [Vec<f32>],
        images: &[f32],
        labels: &[u16],
        scale: f32,
        grads: &mut [Vec<f32>],
    ) -> (f64, usize) {
        let n = labels.len();
        let Shape::Spatial { c, h, w } = self.shapes[self.input] else {
            unreachable!("the input is an image")
        };
        assert!(n > 0, "an empty batch");
        assert_eq!(images.len(), n * c * h * w, "images of the planned shape");
        assert!(
            labels.iter().all(|&l| (l as usize) < self.classes()),
            "a label beyond the network's classes"
        );
        self.reserve(bufs, n);
        bufs.last = n;
        let input = Ptr(bufs.values[self.input].as_mut_slice().as_mut_ptr());
        let image_stride = stride(self.shapes[self.input]);
        images
            .par_chunks(c * h * w)
            .enumerate()
            .for_each(|(i, image)| {
                // SAFETY: image `i` of the input value lies inside its buffer.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(
                        { input }.0.add(i * image_stride),
                        (h + 2) * (w + 2) * c,
                    )
                };
                let plane = h * w;
                for ch in 0..c {
                    for p in 0..plane {
                        let (y, x) = (p / w, p % w);
                        dst[((y + 1) * (w + 2) + x + 1) * c + ch] = image[ch * plane + p];
                    }
                }
            });
        let mut stats = (0.0, 0);
        for stage in self.forward.iter().chain(&self.backward) {
            match stage {
                Stage::Images(ops) => self.images(ops, bufs, n),
                Stage::Batch(op) => {
                    self.batch(op, bufs, n, params, labels, scale, grads, &mut stats)
                }
            }
        }
        stats
    }

    /// The ReLU masks (units off, `[n, c, h, w]`) and max-pool choices (flat index into the
    /// input plane, `[n, c, ho, wo]`) of the last micro-batch, in the graph's order.
    #[allow(clippy::type_complexity)]
    pub(crate) fn gates(
        &self,
        bufs: &TrainBuffers,
    ) -> (Vec<([usize; 4], Vec<bool>)>, Vec<([usize; 4], Vec<i64>)>) {
        let n = bufs.last;
        let nchw = |v: V| -> ([usize; 4], Box<dyn Fn(usize, usize, usize, usize) -> usize>) {
            let s = stride(self.shapes[v]);
            match self.shapes[v] {
                Shape::Spatial { c, h, w } => (
                    [n, c, h, w],
                    Box::new(move |i, ch, y, x| i * s + ((y + 1) * (w + 2) + x + 1) * c + ch),
                ),
                Shape::Flat(c) => ([n, c, 1, 1], Box::new(move |i, ch, _, _| i * s + ch)),
            }
        };
        let walk = |dims: [usize; 4], mut f: Box<dyn FnMut(usize, usize, usize, usize) + '_>| {
            for i in 0..dims[0] {
                for ch in 0..dims[1] {
                    for y in 0..dims[2] {
                        for x in 0..dims[3] {
                            f(i, ch, y, x);
                        }
                    }
                }
            }
        };
        let relus = self
            .relus
            .iter()
            .map(|&v| {
                let (dims, at) = nchw(v);
                let data = bufs.values[v].as_slice();
                let mut off = Vec::with_capacity(dims.iter().product());
                walk(
                    dims,
                    Box::new(|i, ch, y, x| off.push(!kernels::passes(data[at(i, ch, y, x)]))),
                );
                (dims, off)
            })
            .collect();
        let pools = self
            .max_pools
            .iter()
            .map(|&(xv, yv, k, s)| {
                let ((_, at_x), (dims, at_y)) = (nchw(xv), nchw(yv));
                let Shape::Spatial { w, .. } = self.shapes[xv] else {
                    unreachable!("pooling is spatial")
                };
                let (xd, yd) = (bufs.values[xv].as_slice(), bufs.values[yv].as_slice());
                let mut index = Vec::with_capacity(dims.iter().product());
                walk(
                    dims,
                    Box::new(|i, ch, oy, ox| {
                        let target = yd[at_y(i, ch, oy, ox)];
                        let (iy, ix) = (0..k * k)
                            .map(|t| (oy * s + t / k, ox * s + t % k))
                            .find(|&(iy, ix)| xd[at_x(i, ch, iy, ix)] == target)
                            .unwrap_or((oy * s, ox * s));
                        index.push((iy * w + ix) as i64);
                    }),
                );
                (dims, index)
            })
            .collect();
        (relus, pools)
    }

    /// Runs image operations on every image of the batch.
    fn images(&self, ops: &[ImageOp], bufs: &mut TrainBuffers, n: usize) {
        let values = bufs
            .values
            .iter_mut()
            .map(|b| Ptr(b.as_mut_slice().as_mut_ptr()))
            .collect();
        let grad_ptrs: Vec<Ptr> = bufs
            .grads
            .iter_mut()
            .map(|b| Ptr(b.as_mut_slice().as_mut_ptr()))
            .collect();
        let grads = self
            .grad_buffer
            .iter()
            .map(|&b| {
                if b == usize::MAX {
                    Ptr::null()
                } else {
                    grad_ptrs[b]
                }
            })
            .collect();
        let bns = bufs
            .bns
            .iter_mut()
            .map(|b| {
                [
                    &mut b.part_a,
                    &mut b.part_b,
                    &mut b.mean,
                    &mut b.scale,
                    &mut b.shift,
                    &mut b.ga,
                    &mut b.gb,
                    &mut b.gc,
                ]
                .map(|v| Ptr(v.as_mut_ptr()))
            })
            .collect();
        let ctx = Ctx {
            plan: self,
            values,
            grads,
            bns,
            convs: &bufs.convs,
            partials: Ptr(bufs.partials.as_mut_slice().as_mut_ptr()),
            bias_partials: Ptr64(bufs.bias_partials.as_mut_ptr()),
        };
        let pool = &bufs.scratch;
        let with_scratch = |f: &mut dyn FnMut(&mut ImageScratch)| {
            let taken = pool.lock().expect("scratch pool").pop();
            let mut scratch = taken.unwrap_or_else(|| self.scratch());
            f(&mut scratch);
            pool.lock().expect("scratch pool").push(scratch);
        };
        // SAFETY (both loops): the plan's shapes size every buffer for the batch, and a group's
        // operations touch only its images of each value and gradient, their rows of the
        // BatchNorm shares, and their chunk's weight-gradient partials (one task per chunk).
        let group = self.group(ops);
        let run =
            |images: std::ops::Range<usize>, chunk: (usize, usize), scratch: &mut ImageScratch| {
                for op in ops {
                    unsafe { ctx.run_group(op, images.clone(), chunk, scratch) };
                }
            };
        if ops
            .iter()
            .any(|op| matches!(op, ImageOp::ConvWeightGrad { .. }))
        {
            let chunks = chunks(n);
            (0..chunks).into_par_iter().for_each(|c| {
                with_scratch(&mut |scratch| {
                    let images = c * n / chunks..(c + 1) * n / chunks;
                    for g0 in images.clone().step_by(group) {
                        run(g0..(g0 + group).min(images.end), (c, images.start), scratch);
                    }
                })
            });
        } else {
            (0..n.div_ceil(group)).into_par_iter().for_each(|k| {
                with_scratch(&mut |scratch| {
                    run(k * group..((k + 1) * group).min(n), (0, 0), scratch)
                })
            });
        }
    }

    /// Images a stage runs together: one, unless it has a Winograd convolution, whose matrix
    /// products then take the tiles of several images (each weight read for more rows), as
    /// many as keep a group's largest activations within about 512 KiB.
    fn group(&self, ops: &[ImageOp]) -> usize {
        let winograd = |conv: usize| {
            let c = &self.convs[conv];
            matches!(c.forward, ConvKernel::Winograd(_))
                || matches!(c.data, Some(DataKernel::Flipped(ConvKernel::Winograd(_))))
                || matches!(c.weight_grad, WeightGradKernel::Winograd(_))
        };
        let mut floats = 1;
        let mut any = false;
        for op in ops {
            if let ImageOp::Conv { x, y, conv }
            | ImageOp::ConvData { y, x, conv, .. }
            | ImageOp::ConvWeightGrad { x, y, conv } = *op
            {
                any |= winograd(conv);
                floats = floats
                    .max(stride(self.shapes[x]))
                    .max(stride(self.shapes[y]));
            }
        }
        if any {
            ((1 << 17) / floats).clamp(1, 8)
        } else {
            1
        }
    }

    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    fn batch(
        &self,
        op: &BatchOp,
        bufs: &mut TrainBuffers,
        n: usize,
        params: &mut [Vec<f32>],
        labels: &[u16],
        scale: f32,
        grads: &mut [Vec<f32>],
        stats: &mut (f64, usize),
    ) {
        match *op {
            BatchOp::BnFinalize { bn } => {
                let layer = &self.bns[bn];
                let b = &mut bufs.bns[bn];
                let c = layer.channels;
                let count = (n * layer.pixels) as f64;
                let per_image = layer.pixels as f64;
                for ch in 0..c {
                    let mean = (0..n).map(|i| b.part_a[i * c + ch] as f64).sum::<f64>() / n as f64;
                    let m2 = (0..n)
                        .map(|i| {
                            let d = b.part_a[i * c + ch] as f64 - mean;
                            b.part_b[i * c + ch] as f64 + per_image * d * d
                        })
                        .sum::<f64>();
                    let var = m2 / count;
                    let unbiased = m2 / (count - 1.0).max(1.0);
                    let invstd = 1.0 / (var + BN_EPS).sqrt();
                    let gamma = params[layer.weight.0][ch] as f64;
                    let beta = params[layer.bias.0][ch] as f64;
                    b.mean[ch] = mean as f32;
                    b.invstd[ch] = invstd as f32;
                    b.scale[ch] = (gamma * invstd) as f32;
                    b.shift[ch] = (beta - mean * gamma * invstd) as f32;
                    let m = BN_MOMENTUM as f32;
                    let rm = &mut params[layer.mean.0][ch];
                    *rm = *rm * (1.0 - m) + mean as f32 * m;
                    let rv = &mut params[layer.var.0][ch];
                    *rv = *rv * (1.0 - m) + unbiased as f32 * m;
                }
                for v in [&mut b.mean, &mut b.scale, &mut b.shift] {
                    expand(v, c);
                }
            }
            BatchOp::BnGradFinalize { bn } => {
                let layer = &self.bns[bn];
                let b = &mut bufs.bns[bn];
                let c = layer.channels;
                let count = (n * layer.pixels) as f64;
                for ch in 0..c {
                    let dbeta = (0..n).map(|i| b.part_a[i * c + ch] as f64).sum::<f64>();
                    let sgx = (0..n).map(|i| b.part_b[i * c + ch] as f64).sum::<f64>();
                    let invstd = b.invstd[ch] as f64;
                    let dgamma = invstd * sgx;
                    grads[layer.weight.0][ch] += dgamma as f32;
                    grads[layer.bias.0][ch] += dbeta as f32;
                    let a = params[layer.weight.0][ch] as f64 * invstd;
                    b.ga[ch] = a as f32;
                    b.gb[ch] = (-a * invstd * dgamma / count) as f32;
                    b.gc[ch] = (-a * dbeta / count) as f32;
                }
                for v in [&mut b.ga, &mut b.gb, &mut b.gc] {
                    expand(v, c);
                }
            }
            BatchOp::Dense { x, y, dense } => {
                let d = &self.denses[dense];
                let (sx, sy) = (stride(self.shapes[x]), stride(self.shapes[y]));
                let xp = Ptr(bufs.values[x].as_mut_slice().as_mut_ptr());
                let yp = Ptr(bufs.values[y].as_mut_slice().as_mut_ptr());
                let packed = &bufs.denses[dense].0;
                (0..n.div_ceil(DENSE_ROWS))
                    .into_par_iter()
                    .for_each(|chunk| {
                        let r = chunk * DENSE_ROWS;
                        // SAFETY: the rows of the chunk (and the last tile's slack) lie inside
                        // the buffers, and chunks write disjoint rows.
                        unsafe {
                            d.forward.run_rows(
                                packed,
                                { xp }.0.add(r * sx),
                                sx,
                                { yp }.0.add(r * sy),
                                sy,
                                DENSE_ROWS.min(n - r),
                                false,
                            )
                        };
                    });
            }
            BatchOp::Loss => {
                let out = self.output;
                let classes = self.classes();
                let s = stride(self.shapes[out]);
                let logits = bufs.values[out].as_slice();
                let g = bufs.grads[self.grad_buffer[out]].as_mut_slice();
                let (mut loss, mut correct) = (0.0f64, 0usize);
                for (i, &label) in labels.iter().enumerate() {
                    let row = &logits[i * s..][..classes];
                    let label = label as usize;
                    let (l, right, max, sum) = super::super::softmax_loss(row, label);
                    loss += l;
                    correct += right as usize;
                    for (j, (d, &v)) in g[i * s..][..classes].iter_mut().zip(row).enumerate() {
                        let p = (v as f64 - max).exp() / sum;
                        let onehot = if j == label { 1.0 } else { 0.0 };
                        *d = ((p - onehot) * scale as f64) as f32;
                    }
                }
                *stats = (loss, correct);
            }
            BatchOp::ConvWeightSum { conv } => {
                let c = &self.convs[conv];
                let plan = &c.weight_grad;
                let (len, chunks) = (plan.acc_len(), chunks(n));
                let arena = &mut bufs.partials.as_mut_slice()[c.partial..][..chunks * len];
                let (first, rest) = arena.split_at_mut(len);
                // Chunk 0 += chunks 1.., in order, each thread over its own range of floats.
                let part = len.div_ceil(rayon::current_num_threads()).div_ceil(16) * 16;
                first
                    .par_chunks_mut(part.max(16))
                    .enumerate()
                    .for_each(|(k, dst)| {
                        let start = k * part.max(16);
                        for r in rest.chunks(len) {
                            for (d, v) in dst.iter_mut().zip(&r[start..]) {
                                *d += v;
                            }
                        }
                    });
                plan.add_to(first, &mut grads[c.weight.0]);
                if let Some(bias) = c.bias {
                    let cout = c.geom.cout;
                    let parts = &bufs.bias_partials[c.bias_partial..][..chunks * cout];
                    for (co, d) in grads[bias.0].iter_mut().enumerate() {
                        *d += (0..chunks).map(|k| parts[k * cout + co]).sum::<f64>() as f32;
                    }
                }
            }
            BatchOp::DenseGrad { x, y, dense } => {
                let d = &self.denses[dense];
                let (sx, sy) = (stride(self.shapes[x]), stride(self.shapes[y]));
                let xp = Ptr(bufs.values[x].as_mut_slice().as_mut_ptr());
                let gy = Ptr(bufs.grads[self.grad_buffer[y]].as_mut_slice().as_mut_ptr());
                let sweep = |_| Sweep {
                    x: { xp }.0,
                    x_row: 0,
                    x_ps: sx,
                    dy: { gy }.0,
                    dy_row: 0,
                    dy_ps: sy,
                    rows: 1,
                    cols: n,
                };
                self.weight_grad(&d.weight_grad, bufs, 1, sweep, &mut grads[d.weight.0]);
                {
                    let gys = bufs.grads[self.grad_buffer[y]].as_slice();
                    let db = &mut grads[d.bias.0];
                    let mut total = vec![0.0f64; d.output];
                    for i in 0..n {
                        for (t, v) in total.iter_mut().zip(&gys[i * sy..][..d.output]) {
                            *t += *v as f64;
                        }
                    }
                    for (g, t) in db.iter_mut().zip(&total) {
                        *g += *t as f32;
                    }
                }
                let gx = Ptr(bufs.grads[self.grad_buffer[x]].as_mut_slice().as_mut_ptr());
                let packed = &bufs.denses[dense].1;
                (0..n.div_ceil(DENSE_ROWS))
                    .into_par_iter()
                    .for_each(|chunk| {
                        let r = chunk * DENSE_ROWS;
                        // SAFETY: as in the forward product.
                        unsafe {
                            d.data.run_rows(
                                packed,
                                { gy }.0.add(r * sy),
                                sy,
                                { gx }.0.add(r * sx),
                                sx,
                                DENSE_ROWS.min(n - r),
                                false,
                            )
                        };
                    });
            }
        }
    }

    /// Sums the weight gradient of `plan` over the `sweeps` sweeps into `grad`: each thread
    /// takes a share of the tiles and runs all of them over each piece of each sweep in order,
    /// so a piece's data is read from memory once per thread.
    fn weight_grad(
        &self,
        plan: &super::wgrad::WgradPlan,
        bufs: &mut TrainBuffers,
        sweeps: usize,
        sweep: impl Fn(usize) -> Sweep + Sync,
        grad: &mut [f32],
    ) {
        let acc = Ptr(bufs.wgrad.as_mut_slice().as_mut_ptr());
        let tasks = plan.tasks();
        let groups = rayon::current_num_threads().clamp(1, tasks);
        (0..groups).into_par_iter().for_each(|group| {
            let range = group * tasks / groups..(group + 1) * tasks / groups;
            for i in 0..sweeps {
                for (j, piece) in sweep(i).pieces(super::wgrad::PIECE_PIXELS).enumerate() {
                    // SAFETY: the accumulator holds the plan's tiles, each task owns its tile,
                    // and the sweeps cover the batch's buffers.
                    unsafe { plan.run(range.clone(), &piece, { acc }.0, i == 0 && j == 0) };
                }
            }
        });
        plan.add_to(&bufs.wgrad.as_slice()[..plan.acc_len()], grad);
    }
}

impl Ctx<'_> {
    fn v(&self, v: V, i: usize) -> *mut f32 {
        // SAFETY: image `i` of value `v` lies inside its buffer.
        unsafe { self.values[v].0.add(i * stride(self.plan.shapes[v])) }
    }

    fn g(&self, v: V, i: usize) -> *mut f32 {
        let base = self.grads[v].0;
        debug_assert!(!base.is_null(), "value {v} has no gradient");
        // SAFETY: image `i` of the gradient lies inside its buffer.
        unsafe { base.add(i * stride(self.plan.shapes[v])) }
    }

    fn bn(&self, bn: usize, which: usize, i: usize) -> *mut f32 {
        let c = self.plan.bns[bn].channels;
        let offset = if which < 2 { i * c } else { 0 };
        // SAFETY: the shares hold a row per image, the coefficients one row.
        unsafe { self.bns[bn][which].0.add(offset) }
    }

    /// Runs `op` on the images `images`, of weight-gradient chunk `chunk.0` whose first image
    /// is `chunk.1`: Winograd convolutions on all of them at once, the rest image by image.
    ///
    /// # Safety
    /// As [`TrainPlan::images`] says.
    unsafe fn run_group(
        &self,
        op: &ImageOp,
        images: std::ops::Range<usize>,
        chunk: (usize, usize),
        s: &mut ImageScratch,
    ) {
        let plan = self.plan;
        let (i0, n) = (images.start, images.len());
        let null = std::ptr::null::<f32>();
        // SAFETY: forwarded from the caller.
        unsafe {
            match *op {
                ImageOp::Conv { x, y, conv } => plan.convs[conv].forward.run(
                    &self.convs[conv].forward,
                    &mut s.winograd,
                    n,
                    |g| self.v(x, i0 + g).cast_const(),
                    |g| self.v(y, i0 + g),
                    |_| null,
                    false,
                ),
                ImageOp::ConvData { y, x, conv, add } => match (
                    plan.convs[conv].data.as_ref(),
                    self.convs[conv].data.as_ref(),
                ) {
                    (
                        Some(DataKernel::Flipped(kernel @ ConvKernel::Winograd(_))),
                        Some(PackedData::Kernel(packed)),
                    ) => kernel.run(
                        packed,
                        &mut s.winograd,
                        n,
                        |g| self.g(y, i0 + g).cast_const(),
                        |g| self.g(x, i0 + g),
                        |g| {
                            if add {
                                self.g(x, i0 + g).cast_const()
                            } else {
                                null
                            }
                        },
                        false,
                    ),
                    _ => {
                        for i in images {
                            self.conv_data(y, x, conv, add, i, s);
                        }
                    }
                },
                ImageOp::ConvWeightGrad { x, y, conv } => match &plan.convs[conv].weight_grad {
                    WeightGradKernel::Winograd(w) => {
                        let acc = self
                            .partials
                            .0
                            .add(plan.convs[conv].partial + chunk.0 * w.acc_len());
                        w.run(
                            n,
                            |g| self.v(x, i0 + g).cast_const(),
                            |g| self.g(y, i0 + g).cast_const(),
                            acc,
                            i0 == chunk.1,
                            &mut s.grad,
                        );
                        for i in images {
                            self.conv_bias_grad(y, conv, i, (chunk.0, i == chunk.1));
                        }
                    }
                    WeightGradKernel::Direct(_) => {
                        for i in images {
                            self.run(op, i, (chunk.0, i == chunk.1), s);
                        }
                    }
                },
                _ => {
                    for i in images {
                        self.run(op, i, (chunk.0, i == chunk.1), s);
                    }
                }
            }
        }
    }

    /// Runs `op` on image `i`, of weight-gradient chunk `chunk.0` (`chunk.1`: its first image).
    ///
    /// # Safety
    /// As [`TrainPlan::images`] says.
    unsafe fn run(&self, op: &ImageOp, i: usize, chunk: (usize, bool), s: &mut ImageScratch) {
        let plan = self.plan;
        let shape = |v: V| plan.shapes[v];
        let null = std::ptr::null_mut::<f32>();
        // SAFETY: forwarded from the caller.
        unsafe {
            match *op {
                ImageOp::Conv { x, y, conv } => plan.convs[conv].forward.run(
                    &self.convs[conv].forward,
                    &mut s.winograd,
                    1,
                    |_| self.v(x, i).cast_const(),
                    |_| self.v(y, i),
                    |_| null.cast_const(),
                    false,
                ),
                ImageOp::BnStats { x, bn } => kernels::bn_stats(
                    plan.kernels.isa,
                    shape(x),
                    self.v(x, i),
                    self.bn(bn, 0, i),
                    self.bn(bn, 1, i),
                    kernels::period(plan.bns[bn].channels),
                    s.bn.as_mut_ptr(),
                ),
                ImageOp::BnApply {
                    x,
                    y,
                    bn,
                    res,
                    relu,
                } => kernels::bn_apply(
                    plan.kernels.isa,
                    shape(x),
                    self.v(x, i),
                    self.v(y, i),
                    self.bn(bn, 3, i),
                    self.bn(bn, 4, i),
                    kernels::period(plan.bns[bn].channels),
                    res.map_or(null, |r| self.v(r, i)),
                    relu,
                ),
                ImageOp::Relu { x, y } => kernels::relu(shape(x), self.v(x, i), self.v(y, i)),
                ImageOp::Pool { x, y, k, s, max } => pool(
                    plan.kernels.isa,
                    shape(x),
                    shape(y),
                    self.v(x, i),
                    self.v(y, i),
                    k,
                    s,
                    max,
                ),
                ImageOp::GlobalAvg { x, y } => {
                    kernels::global_avg(shape(x), self.v(x, i), self.v(y, i))
                }
                ImageOp::Flatten { x, y } => kernels::flatten(shape(x), self.v(x, i), self.v(y, i)),
                ImageOp::Add { a, b, y, relu } => {
                    kernels::add(shape(y), self.v(a, i), self.v(b, i), self.v(y, i), relu)
                }
                ImageOp::Concat { new, old, y } => {
                    let Shape::Spatial { h, w, .. } = shape(y) else {
                        unreachable!("concatenation is spatial")
                    };
                    kernels::concat(
                        self.v(new, i),
                        self.v(old, i),
                        self.v(y, i),
                        shape(new).channels(),
                        shape(old).channels(),
                        (h + 2) * (w + 2),
                    )
                }
                ImageOp::ConvData { y, x, conv, add } => self.conv_data(y, x, conv, add, i, s),
                ImageOp::ConvWeightGrad { x, y, conv } => {
                    self.conv_weight_grad(x, y, conv, i, chunk)
                }
                ImageOp::BnGrad {
                    x,
                    y,
                    bn,
                    relu,
                    res,
                } => kernels::bn_grad(
                    plan.kernels.isa,
                    shape(x),
                    self.v(x, i),
                    match (relu, res) {
                        (false, _) => Mask::None,
                        (true, Some(_)) => Mask::Output(self.v(y, i)),
                        (true, None) => Mask::Affine(self.bn(bn, 3, i), self.bn(bn, 4, i)),
                    },
                    self.g(y, i),
                    res.map_or(null, |r| self.g(r.0, i)),
                    res.is_some_and(|r| r.1),
                    self.bn(bn, 2, i),
                    kernels::period(plan.bns[bn].channels),
                    self.bn(bn, 0, i),
                    self.bn(bn, 1, i),
                    s.bn.as_mut_ptr(),
                ),
                ImageOp::BnInputGrad { x, y, bn, add } => kernels::bn_input_grad(
                    plan.kernels.isa,
                    shape(x),
                    self.v(x, i),
                    self.g(y, i),
                    self.g(x, i),
                    add,
                    self.bn(bn, 2, i),
                    self.bn(bn, 5, i),
                    self.bn(bn, 6, i),
                    self.bn(bn, 7, i),
                    kernels::period(plan.bns[bn].channels),
                ),
                ImageOp::ReluGrad { x, y, add } => kernels::relu_grad(
                    plan.kernels.isa,
                    shape(y),
                    self.v(y, i),
                    self.g(y, i),
                    true,
                    self.g(x, i),
                    add,
                    null,
                    false,
                ),
                ImageOp::PoolGrad {
                    x,
                    y,
                    k,
                    s: stride,
                    max,
                    add,
                } => kernels::pool_grad(
                    plan.kernels.isa,
                    shape(x),
                    shape(y),
                    self.v(x, i),
                    self.v(y, i),
                    self.g(y, i),
                    self.g(x, i),
                    add,
                    k,
                    stride,
                    max,
                ),
                ImageOp::GlobalAvgGrad { x, y, add } => kernels::global_avg_grad(
                    plan.kernels.isa,
                    shape(x),
                    self.g(y, i),
                    self.g(x, i),
                    add,
                ),
                ImageOp::FlattenGrad { x, y, add } => {
                    kernels::flatten_grad(shape(x), self.g(y, i), self.g(x, i), add)
                }
                ImageOp::AddGrad { a, b, y, relu } => kernels::relu_grad(
                    plan.kernels.isa,
                    shape(y),
                    self.v(y, i),
                    self.g(y, i),
                    relu,
                    self.g(a.0, i),
                    a.1,
                    self.g(b.0, i),
                    b.1,
                ),
                ImageOp::ConcatGrad { new, old, y } => {
                    let Shape::Spatial { h, w, .. } = shape(y) else {
                        unreachable!("concatenation is spatial")
                    };
                    kernels::concat_grad(
                        self.g(y, i),
                        self.g(new.0, i),
                        new.1,
                        self.g(old.0, i),
                        old.1,
                        shape(new.0).channels(),
                        shape(old.0).channels(),
                        (h + 2) * (w + 2),
                    )
                }
            }
        }
    }

    /// Adds image `i`'s weight and bias gradient to chunk `chunk.0`'s partials (which it starts
    /// when `chunk.1`).
    ///
    /// # Safety
    /// As [`Ctx::run`].
    unsafe fn conv_weight_grad(&self, x: V, y: V, conv: usize, i: usize, chunk: (usize, bool)) {
        let c = &self.plan.convs[conv];
        let g = &c.geom;
        let origin = 1 - g.pad;
        let (wp, wpo) = (g.w + 2, g.wo + 2);
        let (chunk, first) = chunk;
        // SAFETY: the sweep starts at image `i`'s first output pixel; the partials of a chunk
        // are its own.
        unsafe {
            let dy = self.g(y, i);
            let acc = self
                .partials
                .0
                .add(c.partial + chunk * c.weight_grad.acc_len());
            let WeightGradKernel::Direct(plan) = &c.weight_grad else {
                unreachable!("Winograd weight gradients run per group")
            };
            let sweep = Sweep {
                x: self.v(x, i).add((origin * wp + origin) * g.cin),
                x_row: (g.stride * wp * g.cin) as isize,
                x_ps: g.stride * g.cin,
                dy: dy.add((wpo + 1) * g.cout),
                dy_row: (wpo * g.cout) as isize,
                dy_ps: g.cout,
                rows: g.ho,
                cols: g.wo,
            };
            for (j, piece) in sweep.pieces(super::wgrad::PIECE_PIXELS).enumerate() {
                plan.run(0..plan.tasks(), &piece, acc, first && j == 0);
            }
            self.conv_bias_grad(y, conv, i, (chunk, first));
        }
    }

    /// Adds image `i`'s bias gradient (its output gradient summed over pixels) to chunk
    /// `chunk.0`'s partial (which it starts when `chunk.1`); nothing for a convolution without
    /// bias.
    ///
    /// # Safety
    /// As [`Ctx::run`].
    unsafe fn conv_bias_grad(&self, y: V, conv: usize, i: usize, chunk: (usize, bool)) {
        let c = &self.plan.convs[conv];
        if c.bias.is_none() {
            return;
        }
        let g = &c.geom;
        let wpo = g.wo + 2;
        let (chunk, first) = chunk;
        let mut sum = [0.0f32; 512];
        let sum = &mut sum[..g.cout.min(512)];
        assert_eq!(
            sum.len(),
            g.cout,
            "a biased convolution of at most 512 channels"
        );
        // SAFETY: image `i`'s gradient rows, and the chunk's own partial.
        unsafe {
            let dy = self.g(y, i);
            for oy in 0..g.ho {
                let row = std::slice::from_raw_parts(
                    dy.add(((oy + 1) * wpo + 1) * g.cout),
                    g.wo * g.cout,
                );
                for px in row.chunks_exact(g.cout) {
                    for (s, v) in sum.iter_mut().zip(px) {
                        *s += v;
                    }
                }
            }
            let parts = std::slice::from_raw_parts_mut(
                self.bias_partials.0.add(c.bias_partial + chunk * g.cout),
                g.cout,
            );
            for (p, s) in parts.iter_mut().zip(sum.iter()) {
                *p = if first { *s as f64 } else { *p + *s as f64 };
            }
        }
    }

    /// `dx (+)= conv^T(dy)` for image `i` (see [`DataKernel`]).
    ///
    /// # Safety
    /// As [`Ctx::run`].
    unsafe fn conv_data(&self, y: V, x: V, conv: usize, add: bool, i: usize, s: &mut ImageScratch) {
        let c = &self.plan.convs[conv];
        let g = &c.geom;
        let packed = self.convs[conv]
            .data
            .as_ref()
            .expect("packed with the plan");
        let dy = self.g(y, i);
        let dx = self.g(x, i);
        let len = (g.h + 2) * (g.w + 2) * g.cin;
        // SAFETY: the scratch buffers are sized for every convolution of the plan; the
        // gradients hold one padded image each.
        unsafe {
            match (
                c.data.as_ref().expect("an input gradient is planned"),
                packed,
            ) {
                (DataKernel::Phases(phases), PackedData::Phases(packs)) => {
                    let in_place = phases
                        .iter()
                        .all(|p| p.plan.as_ref().is_none_or(ConvPlan::tiles_disjoint));
                    let covered = phases.iter().all(|p| p.plan.is_some());
                    // Accumulate into `dx` itself, or into `tmp` first when a phase's tiles
                    // overlap (a pixel added twice).
                    let out = if add && !in_place {
                        s.tmp.as_mut_slice().as_mut_ptr()
                    } else {
                        dx
                    };
                    let accumulate = add && in_place;
                    if !accumulate && !covered {
                        std::ptr::write_bytes(out, 0, len);
                    }
                    let (wp, wpo) = (g.w + 2, g.wo + 2);
                    for (phase, pack) in phases.iter().zip(packs) {
                        let Some(plan) = &phase.plan else { continue };
                        let y0 = out.add(((phase.py + 1) * wp + phase.px + 1) * g.cin);
                        plan.run_grid(
                            pack,
                            dy.add((wpo + 1) * g.cout),
                            (wpo * g.cout) as isize,
                            y0,
                            (2 * wp * g.cin) as isize,
                            2 * g.cin,
                            if accumulate { y0 } else { std::ptr::null() },
                        );
                    }
                    zero_border(out, g.h, g.w, g.cin);
                    if out != dx {
                        for j in 0..len {
                            *dx.add(j) += *out.add(j);
                        }
                    }
                }
                (
                    DataKernel::Flipped(kernel) | DataKernel::Spread(kernel),
                    PackedData::Kernel(packed),
                ) => {
                    let src = if g.stride == 1 {
                        dy.cast_const()
                    } else {
                        let up = s.up.as_mut_slice();
                        let wp = g.w + 2;
                        up[..(g.h + 2) * wp * g.cout].fill(0.0);
                        for oy in 0..g.ho {
                            for ox in 0..g.wo {
                                let from = dy.add(((oy + 1) * (g.wo + 2) + ox + 1) * g.cout);
                                let to = ((g.stride * oy + 1) * wp + g.stride * ox + 1) * g.cout;
                                std::ptr::copy_nonoverlapping(
                                    from,
                                    up.as_mut_ptr().add(to),
                                    g.cout,
                                );
                            }
                        }
                        up.as_ptr()
                    };
                    if !add || kernel.adds_in_place() {
                        let res = if add {
                            dx.cast_const()
                        } else {
                            std::ptr::null()
                        };
                        kernel.run(packed, &mut s.winograd, 1, |_| src, |_| dx, |_| res, false);
                    } else {
                        let tmp = s.tmp.as_mut_slice().as_mut_ptr();
                        kernel.run(
                            packed,
                            &mut s.winograd,
                            1,
                            |_| src,
                            |_| tmp,
                            |_| std::ptr::null(),
                            false,
                        );
                        for j in 0..len {
                            *dx.add(j) += *tmp.add(j);
                        }
                    }
                }
                _ => unreachable!("packed for another plan"),
            }
        }
    }
}
