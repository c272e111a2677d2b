//! Running a compiled plan on a group of images, and the small operations besides the
//! convolutions (pooling, BatchNorm, flattening, concatenation).

use super::buffer::Aligned;
use super::conv::{PackedConv, zero_border};
use super::isa::Isa;
use super::plan::{ConvKernel, Op, Plan, Shape};
use super::simd::dispatch;
use super::winograd::{PackedWinograd, Scratch};

/// The weights of one convolution, packed for its kernel.
#[derive(Clone, Debug)]
pub(crate) enum PackedAny {
    Direct(PackedConv),
    Winograd(PackedWinograd),
}

impl ConvKernel {
    /// An empty packing for this kernel.
    pub(crate) fn packed(&self) -> PackedAny {
        match self {
            ConvKernel::Direct(_) => PackedAny::Direct(Default::default()),
            ConvKernel::Winograd(_) => PackedAny::Winograd(Default::default()),
        }
    }

    /// Packs `weight` (`[cout, cin, k, k]`) and `bias` into `packed` (made by
    /// [`ConvKernel::packed`]), reusing its storage.
    pub(crate) fn pack(&self, weight: &[f32], bias: Option<&[f32]>, packed: &mut PackedAny) {
        match (self, packed) {
            (ConvKernel::Direct(p), PackedAny::Direct(packed)) => p.pack(weight, bias, packed),
            (ConvKernel::Winograd(p), PackedAny::Winograd(packed)) => p.pack(weight, bias, packed),
            _ => unreachable!("weights packed for another kernel"),
        }
    }

    /// Whether the residual may be the output itself (each output written once, after its
    /// residual is read).
    pub(crate) fn adds_in_place(&self) -> bool {
        match self {
            ConvKernel::Direct(p) => p.tiles_disjoint(),
            ConvKernel::Winograd(_) => true,
        }
    }

    /// Runs the convolution on `n` images: `x(i)`, `y(i)`, `res(i)` the padded input, output
    /// and residual (null: none) of image `i`.
    ///
    /// # Safety
    /// As [`super::conv::ConvPlan::run`] for every image; `scratch` must be large enough for a
    /// Winograd kernel.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn run(
        &self,
        packed: &PackedAny,
        scratch: &mut Scratch,
        n: usize,
        x: impl Fn(usize) -> *const f32,
        y: impl Fn(usize) -> *mut f32,
        res: impl Fn(usize) -> *const f32,
        relu: bool,
    ) {
        // SAFETY: forwarded.
        unsafe {
            match (self, packed) {
                (ConvKernel::Direct(plan), PackedAny::Direct(packed)) => {
                    for g in 0..n {
                        plan.run(packed, x(g), y(g), res(g), relu);
                    }
                }
                (ConvKernel::Winograd(plan), PackedAny::Winograd(packed)) => {
                    plan.run(packed, scratch, n, x, y, res, relu)
                }
                _ => unreachable!("weights packed for another kernel"),
            }
        }
    }
}

/// The tensors of one parameter point, packed for the kernels.
#[derive(Clone, Debug, Default)]
pub(crate) struct Weights {
    pub convs: Vec<PackedAny>,
    pub denses: Vec<PackedConv>,
    /// Per unfolded BatchNorm: (scale, shift).
    pub bns: Vec<(Vec<f32>, Vec<f32>)>,
}

/// Activation buffers for one group of images.
#[derive(Debug)]
pub(crate) struct Workspace {
    buffers: Vec<Aligned>,
    scratch: Scratch,
}

impl Workspace {
    pub(crate) fn new(plan: &Plan) -> Self {
        Self {
            buffers: (0..plan.buffers)
                .map(|_| Aligned::zeros(plan.group * plan.buffer_len))
                .collect(),
            scratch: Scratch::new(plan.scratch.0, plan.scratch.1),
        }
    }
}

impl Plan {
    /// Logits of `n <= group` images (`images`: `n x h x w x c`, unpadded) into `out`
    /// (`n x classes`).
    pub(crate) fn forward(
        &self,
        weights: &Weights,
        ws: &mut Workspace,
        images: &[f32],
        out: &mut [f32],
    ) {
        let Shape::Spatial { c, h, w } = self.shapes[self.input] else {
            unreachable!("the input is an image")
        };
        let n = images.len() / (c * h * w);
        assert!(n <= self.group && images.len() == n * c * h * w);
        assert_eq!(out.len(), n * self.classes());
        let len = self.buffer_len;
        let ptrs: Vec<*mut f32> = ws
            .buffers
            .iter_mut()
            .map(|b| b.as_mut_slice().as_mut_ptr())
            .collect();
        // The start of image `g` of value `v`.
        let at = |v: usize, g: usize| -> *mut f32 {
            // SAFETY: each buffer holds `group * len` floats and g < group.
            unsafe { ptrs[self.buffer_of[v]].add(g * len) }
        };
        let floats = |v: usize| self.shapes[v].floats();
        // SAFETY (every block below): each value's image lies inside its buffer (`len` is
        // the largest value), outputs only alias inputs for elementwise operations, and the
        // slices made from the pointers do not outlive one operation on one image.
        unsafe {
            for (g, image) in images.chunks_exact(c * h * w).enumerate() {
                let x = std::slice::from_raw_parts_mut(at(self.input, g), floats(self.input));
                pad_image(image, x, c, h, w);
            }
            for op in &self.ops {
                match *op {
                    Op::Conv {
                        x,
                        y,
                        res,
                        relu,
                        conv,
                    } => {
                        let r = |g: usize| res.map_or(std::ptr::null(), |r| at(r, g).cast_const());
                        self.convs[conv].kernel.run(
                            &weights.convs[conv],
                            &mut ws.scratch,
                            n,
                            |g| at(x, g).cast_const(),
                            |g| at(y, g),
                            r,
                            relu,
                        );
                    }
                    Op::Dense { x, y, relu, dense } => {
                        // All `group` rows: rows past `n` hold stale values nobody reads.
                        let layer = &self.denses[dense];
                        layer.plan.run_dense(
                            &weights.denses[dense],
                            at(x, 0),
                            len,
                            at(y, 0),
                            len,
                            relu,
                        );
                    }
                    Op::Affine { x, y, bn, relu } => {
                        let (scale, shift) = &weights.bns[bn];
                        for g in 0..n {
                            affine(self.shapes[x], at(x, g), at(y, g), scale, shift, relu);
                        }
                    }
                    Op::Relu { x, y } => {
                        for g in 0..n {
                            let (src, dst) = (at(x, g), at(y, g));
                            for i in 0..floats(x) {
                                let v = *src.add(i);
                                *dst.add(i) = if v < 0.0 { 0.0 } else { v };
                            }
                        }
                    }
                    Op::MaxPool { x, y, k, s } | Op::AvgPool { x, y, k, s } => {
                        let max = matches!(op, Op::MaxPool { .. });
                        for g in 0..n {
                            pool(
                                self.isa,
                                self.shapes[x],
                                self.shapes[y],
                                at(x, g),
                                at(y, g),
                                k,
                                s,
                                max,
                            );
                        }
                    }
                    Op::GlobalAvg { x, y } => {
                        let Shape::Spatial { c, h, w } = self.shapes[x] else {
                            unreachable!()
                        };
                        for g in 0..n {
                            let src = std::slice::from_raw_parts(at(x, g), floats(x));
                            let dst = std::slice::from_raw_parts_mut(at(y, g), c);
                            dst.fill(0.0);
                            for yy in 1..=h {
                                for xx in 1..=w {
                                    let p = &src[(yy * (w + 2) + xx) * c..][..c];
                                    for (d, v) in dst.iter_mut().zip(p) {
                                        *d += v;
                                    }
                                }
                            }
                            let inv = 1.0 / (h * w) as f32;
                            for d in dst.iter_mut() {
                                *d *= inv;
                            }
                        }
                    }
                    Op::Flatten { x, y } => {
                        let Shape::Spatial { c, h, w } = self.shapes[x] else {
                            unreachable!()
                        };
                        for g in 0..n {
                            let src = std::slice::from_raw_parts(at(x, g), floats(x));
                            let dst = std::slice::from_raw_parts_mut(at(y, g), c * h * w);
                            for yy in 0..h {
                                for xx in 0..w {
                                    let p = &src[((yy + 1) * (w + 2) + xx + 1) * c..][..c];
                                    for (ch, v) in p.iter().enumerate() {
                                        dst[(ch * h + yy) * w + xx] = *v;
                                    }
                                }
                            }
                        }
                    }
                    Op::Add { a, b, y, relu } => {
                        for g in 0..n {
                            let (pa, pb, py) = (at(a, g), at(b, g), at(y, g));
                            for i in 0..floats(y) {
                                let v = *pa.add(i) + *pb.add(i);
                                *py.add(i) = if relu && v < 0.0 { 0.0 } else { v };
                            }
                        }
                    }
                    Op::Concat { new, old, y } => {
                        let (cn, co) = (self.shapes[new].channels(), self.shapes[old].channels());
                        let pixels = floats(y) / (cn + co);
                        for g in 0..n {
                            let (pn, po, py) = (at(new, g), at(old, g), at(y, g));
                            for p in 0..pixels {
                                std::ptr::copy_nonoverlapping(
                                    pn.add(p * cn),
                                    py.add(p * (cn + co)),
                                    cn,
                                );
                                std::ptr::copy_nonoverlapping(
                                    po.add(p * co),
                                    py.add(p * (cn + co) + cn),
                                    co,
                                );
                            }
                        }
                    }
                }
            }
            let classes = self.classes();
            for (g, row) in out.chunks_exact_mut(classes).enumerate() {
                row.copy_from_slice(std::slice::from_raw_parts(at(self.output, g), classes));
            }
        }
    }
}

/// Copies an unpadded `h x w x c` image into a padded buffer, border zeroed.
pub(crate) fn pad_image(image: &[f32], x: &mut [f32], c: usize, h: usize, w: usize) {
    let row = (w + 2) * c;
    x[..row].fill(0.0);
    x[(h + 1) * row..(h + 2) * row].fill(0.0);
    for yy in 0..h {
        let dst = &mut x[(yy + 1) * row..(yy + 2) * row];
        dst[..c].fill(0.0);
        dst[(w + 1) * c..].fill(0.0);
        dst[c..(w + 1) * c].copy_from_slice(&image[yy * w * c..(yy + 1) * w * c]);
    }
}

/// `y = relu?(x * scale + shift)` per channel, on the interior of a spatial value (the border
/// stays zero) or on a feature vector. `y` may be `x`.
///
/// # Safety
/// `x` and `y` must hold one image of `shape`.
unsafe fn affine(
    shape: Shape,
    x: *const f32,
    y: *mut f32,
    scale: &[f32],
    shift: &[f32],
    relu: bool,
) {
    let apply = |src: *const f32, dst: *mut f32| {
        for (ch, (a, b)) in scale.iter().zip(shift).enumerate() {
            // SAFETY: `src` and `dst` point at one pixel of `scale.len()` channels.
            unsafe {
                let v = *src.add(ch) * a + b;
                *dst.add(ch) = if relu && v < 0.0 { 0.0 } else { v };
            }
        }
    };
    match shape {
        Shape::Flat(_) => apply(x, y),
        Shape::Spatial { c, h, w } => {
            // SAFETY: the pixels addressed are inside the padded image.
            unsafe {
                for yy in 1..=h {
                    for xx in 1..=w {
                        let p = (yy * (w + 2) + xx) * c;
                        apply(x.add(p), y.add(p));
                    }
                }
                if !std::ptr::eq(x, y) {
                    zero_border(y, h, w, c);
                }
            }
        }
    }
}

/// Max or average pooling, `k x k` windows at stride `s`, no padding, on `isa`.
///
/// # Safety
/// `x` and `y` must hold one image of their shapes and not overlap; `isa` must run on this
/// CPU.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn pool(
    isa: Isa,
    from: Shape,
    to: Shape,
    x: *const f32,
    y: *mut f32,
    k: usize,
    s: usize,
    max: bool,
) {
    // SAFETY: the caller guarantees the CPU and the buffers.
    unsafe {
        dispatch!(isa, pool_any(from: Shape, to: Shape, x: *const f32, y: *mut f32, k: usize, s: usize, max: bool))
    }
}

#[inline(always)]
unsafe fn pool_any(
    from: Shape,
    to: Shape,
    x: *const f32,
    y: *mut f32,
    k: usize,
    s: usize,
    max: bool,
) {
    let (Shape::Spatial { c, w, .. }, Shape::Spatial { h: ho, w: wo, .. }) = (from, to) else {
        unreachable!("pooling is spatial")
    };
    let inv = 1.0 / (k * k) as f32;
    // SAFETY: every window lies inside the input's interior, every output pixel inside the
    // output's.
    unsafe {
        for oy in 0..ho {
            for ox in 0..wo {
                let dst =
                    std::slice::from_raw_parts_mut(y.add(((oy + 1) * (wo + 2) + ox + 1) * c), c);
                for dy in 0..k {
                    for dx in 0..k {
                        let p = ((oy * s + dy + 1) * (w + 2) + ox * s + dx + 1) * c;
                        let src = std::slice::from_raw_parts(x.add(p), c);
                        if dy == 0 && dx == 0 {
                            dst.copy_from_slice(src);
                        } else if max {
                            for (d, &v) in dst.iter_mut().zip(src) {
                                // Branch-free, and a NaN stays (as in PyTorch's max pooling).
                                let m = if *d >= v { *d } else { v };
                                *d = if d.is_nan() { *d } else { m };
                            }
                        } else {
                            for (d, v) in dst.iter_mut().zip(src) {
                                *d += v;
                            }
                        }
                    }
                }
                if !max {
                    for d in dst.iter_mut() {
                        *d *= inv;
                    }
                }
            }
        }
        zero_border(y, ho, wo, c);
    }
}
