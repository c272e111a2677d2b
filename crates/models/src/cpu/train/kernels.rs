//! The per-image kernels of training besides the convolutions: BatchNorm's statistics and
//! affine map, and the gradients of BatchNorm, ReLU, pooling, global pooling, flattening,
//! addition and concatenation, over padded NHWC activations (or feature vectors).
//!
//! Every loop runs over the channels of one pixel, contiguous in NHWC, so it vectorizes; each
//! kernel is compiled once per instruction set ([`Isa`]) and run with the plan's.

use super::super::conv::zero_border;
use super::super::isa::Isa;
use super::super::plan::Shape;

/// The contiguous runs of an image's interior: `(start, pixels)`, each pixel `c` floats.
fn runs(shape: Shape) -> impl Iterator<Item = (usize, usize)> {
    let (c, h, w, flat) = match shape {
        Shape::Spatial { c, h, w } => (c, h, w, false),
        Shape::Flat(n) => (n, 1, 1, true),
    };
    (0..h).map(move |y| {
        if flat {
            (0, 1)
        } else {
            (((y + 1) * (w + 2) + 1) * c, w)
        }
    })
}

/// Where a BatchNorm's gradient learns which units its ReLU let through.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mask {
    /// No ReLU after the BatchNorm.
    None,
    /// The forward output (`y > 0`): needed when a residual was added before the ReLU.
    Output(*const f32),
    /// The BatchNorm's affine map of its input (`x * scale + shift > 0`), the forward
    /// output recomputed without reading it.
    Affine(*const f32, *const f32),
}

/// Whether a ReLU let its input through (its output is positive; not for 0 or NaN).
#[inline(always)]
pub(crate) fn passes(y: f32) -> bool {
    y > 0.0
}

/// Pixels of an image (1 for a feature vector).
pub(crate) fn pixels(shape: Shape) -> usize {
    match shape {
        Shape::Spatial { h, w, .. } => h * w,
        Shape::Flat(_) => 1,
    }
}

/// Zeroes the border of a spatial image (feature vectors have none).
///
/// # Safety
/// `y` must hold one image of `shape`.
pub(crate) unsafe fn clear_border(shape: Shape, y: *mut f32) {
    if let Shape::Spatial { c, h, w } = shape {
        // SAFETY: forwarded.
        unsafe { zero_border(y, h, w, c) };
    }
}

/// Defines `name(isa, args)`: the `#[inline(always)]` loop `body` compiled for `isa`.
macro_rules! per_isa {
    ($(#[$doc:meta])* $name:ident => $body:ident ($($arg:ident : $ty:ty),* $(,)?)) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// Every pointer must hold one image of its shape; outputs may alias inputs only where
        /// the operation says so; `isa` must run on this CPU.
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe fn $name(isa: Isa, $($arg: $ty),*) {
            // SAFETY: as the caller's.
            unsafe { super::super::simd::dispatch!(isa, $body($($arg: $ty),*)) }
        }
    };
}

/// The rows of an image's interior as slices of whole pixels (`c` floats each).
///
/// # Safety
/// `p` must hold one image of `shape`, and the slices must not outlive it or overlap a
/// mutable use of the same floats.
unsafe fn rows<'a>(shape: Shape, p: *const f32) -> impl Iterator<Item = &'a [f32]> {
    let c = shape.channels();
    // SAFETY: every run lies inside the image.
    runs(shape)
        .map(move |(start, count)| unsafe { std::slice::from_raw_parts(p.add(start), count * c) })
}

/// [`rows`], mutable.
///
/// # Safety
/// As [`rows`], and no other reference to the image may be alive.
unsafe fn rows_mut<'a>(shape: Shape, p: *mut f32) -> impl Iterator<Item = &'a mut [f32]> {
    let c = shape.channels();
    // SAFETY: the runs are disjoint and inside the image.
    runs(shape).map(move |(start, count)| unsafe {
        std::slice::from_raw_parts_mut(p.add(start), count * c)
    })
}

/// Floats after which the channel pattern of a row repeats in whole 16-lane vectors:
/// `lcm(c, 16)`. A BatchNorm's per-channel coefficients are kept expanded to this length, so
/// its passes run over rows in chunks of this many floats (vectorized, whatever the channel
/// count) instead of pixel by pixel.
pub(crate) fn period(c: usize) -> usize {
    let gcd = |mut a: usize, mut b: usize| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    c / gcd(c, 16) * 16
}

/// Folds per-lane sums of period `acc.len()` into per-channel sums `out` (`c` channels).
fn fold(acc: &[f32], out: &mut [f32]) {
    let c = out.len();
    out.fill(0.0);
    for (k, v) in acc.iter().enumerate() {
        out[k % c] += v;
    }
}

/// A row in chunks of `period` floats (the last one may be shorter: it pairs with the
/// coefficients' first floats, as a row starts at channel 0).
#[inline(always)]
fn periodic(row: &[f32], period: usize) -> impl Iterator<Item = &[f32]> {
    row.chunks(period)
}

per_isa!(
    /// The image's share of a BatchNorm's statistics of `x`: per channel the image's mean
    /// (`mean`) and the sum of squared deviations from it (`m2`). `scratch` holds `2 period`
    /// floats.
    bn_stats => bn_stats_any(
        shape: Shape,
        x: *const f32,
        mean: *mut f32,
        m2: *mut f32,
        period: usize,
        scratch: *mut f32,
    )
);

#[inline(always)]
unsafe fn bn_stats_any(
    shape: Shape,
    x: *const f32,
    mean: *mut f32,
    m2: *mut f32,
    period: usize,
    scratch: *mut f32,
) {
    let c = shape.channels();
    // SAFETY: `mean` and `m2` hold `c` floats, `scratch` `2 period`, `x` one image.
    unsafe {
        let mean = std::slice::from_raw_parts_mut(mean, c);
        let m2 = std::slice::from_raw_parts_mut(m2, c);
        let acc = std::slice::from_raw_parts_mut(scratch, period);
        let lanes = std::slice::from_raw_parts_mut(scratch.add(period), period);
        acc.fill(0.0);
        for row in rows(shape, x) {
            for run in periodic(row, period) {
                for (s, v) in acc.iter_mut().zip(run) {
                    *s += v;
                }
            }
        }
        fold(acc, mean);
        let inv = 1.0 / pixels(shape) as f32;
        for s in mean.iter_mut() {
            *s *= inv;
        }
        for (k, l) in lanes.iter_mut().enumerate() {
            *l = mean[k % c];
        }
        acc.fill(0.0);
        for row in rows(shape, x) {
            for run in periodic(row, period) {
                for ((q, v), m) in acc.iter_mut().zip(run).zip(lanes.iter()) {
                    let d = v - m;
                    *q += d * d;
                }
            }
        }
        fold(acc, m2);
    }
}

per_isa!(
    /// `y = relu?(x * scale + shift + res)` per channel (`res` null: none); `y` is not `x`;
    /// `scale` and `shift` expanded to `period` floats.
    bn_apply => bn_apply_any(
        shape: Shape,
        x: *const f32,
        y: *mut f32,
        scale: *const f32,
        shift: *const f32,
        period: usize,
        res: *const f32,
        relu: bool,
    )
);

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn bn_apply_any(
    shape: Shape,
    x: *const f32,
    y: *mut f32,
    scale: *const f32,
    shift: *const f32,
    period: usize,
    res: *const f32,
    relu: bool,
) {
    // SAFETY: the caller guarantees the images and the `period` coefficients.
    unsafe {
        let scale = std::slice::from_raw_parts(scale, period);
        let shift = std::slice::from_raw_parts(shift, period);
        let clamp = |v: f32| if relu && v < 0.0 { 0.0 } else { v };
        if res.is_null() {
            for (out, inp) in rows_mut(shape, y).zip(rows(shape, x)) {
                for (o, i) in out.chunks_mut(period).zip(periodic(inp, period)) {
                    for (((o, i), a), b) in o.iter_mut().zip(i).zip(scale).zip(shift) {
                        *o = clamp(i * a + b);
                    }
                }
            }
        } else {
            for ((out, inp), r) in rows_mut(shape, y).zip(rows(shape, x)).zip(rows(shape, res)) {
                for ((o, i), r) in out
                    .chunks_mut(period)
                    .zip(periodic(inp, period))
                    .zip(periodic(r, period))
                {
                    for ((((o, i), r), a), b) in o.iter_mut().zip(i).zip(r).zip(scale).zip(shift) {
                        *o = clamp(i * a + b + r);
                    }
                }
            }
        }
    }
}

per_isa!(
    /// The gradient `g` of `y = relu?(bn(x) + res)` through the ReLU (in place, 0 where the
    /// `mask` says the unit was off), copied or added to `res_grad` (null: none), and the
    /// image's share of the BatchNorm's parameter gradients: per channel `sum g` and
    /// `sum g * (x - mean)`. `mean` (and the mask's coefficients) expanded to `period`
    /// floats; `scratch` holds `2 period`.
    bn_grad => bn_grad_any(
        shape: Shape,
        x: *const f32,
        mask: Mask,
        g: *mut f32,
        res_grad: *mut f32,
        res_add: bool,
        mean: *const f32,
        period: usize,
        sum_g: *mut f32,
        sum_gx: *mut f32,
        scratch: *mut f32,
    )
);

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn bn_grad_any(
    shape: Shape,
    x: *const f32,
    mask: Mask,
    g: *mut f32,
    res_grad: *mut f32,
    res_add: bool,
    mean: *const f32,
    period: usize,
    sum_g: *mut f32,
    sum_gx: *mut f32,
    scratch: *mut f32,
) {
    let c = shape.channels();
    // SAFETY: the caller guarantees the images, the `period`-float coefficients, the
    // `c`-float sums and the scratch.
    unsafe {
        let mean = std::slice::from_raw_parts(mean, period);
        let acc_g = std::slice::from_raw_parts_mut(scratch, period);
        let acc_gx = std::slice::from_raw_parts_mut(scratch.add(period), period);
        acc_g.fill(0.0);
        acc_gx.fill(0.0);
        let outputs = match mask {
            Mask::Output(y) => Some(y),
            _ => None,
        };
        for (j, (gr, xr)) in rows_mut(shape, g).zip(rows(shape, x)).enumerate() {
            match mask {
                Mask::None => {}
                Mask::Output(_) => {
                    let (start, count) = runs(shape).nth(j).expect("the same runs");
                    let y = outputs.expect("an output mask");
                    let yr = std::slice::from_raw_parts(y.add(start), count * c);
                    for (g, y) in gr.iter_mut().zip(yr) {
                        *g = if passes(*y) { *g } else { 0.0 };
                    }
                }
                Mask::Affine(scale, shift) => {
                    let (scale, shift) = (
                        std::slice::from_raw_parts(scale, period),
                        std::slice::from_raw_parts(shift, period),
                    );
                    for (gp, xp) in gr.chunks_mut(period).zip(periodic(xr, period)) {
                        for (((g, x), a), b) in gp.iter_mut().zip(xp).zip(scale).zip(shift) {
                            // The forward pass's output, recomputed bit for bit.
                            *g = if passes(x * a + b) { *g } else { 0.0 };
                        }
                    }
                }
            }
            for (gp, xp) in periodic(gr, period).zip(periodic(xr, period)) {
                for ((((g, x), m), s), sx) in gp
                    .iter()
                    .zip(xp)
                    .zip(mean)
                    .zip(acc_g.iter_mut())
                    .zip(acc_gx.iter_mut())
                {
                    *s += g;
                    *sx += g * (x - m);
                }
            }
        }
        fold(acc_g, std::slice::from_raw_parts_mut(sum_g, c));
        fold(acc_gx, std::slice::from_raw_parts_mut(sum_gx, c));
        if !res_grad.is_null() {
            for (dst, src) in rows_mut(shape, res_grad).zip(rows(shape, g)) {
                if res_add {
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d += s;
                    }
                } else {
                    dst.copy_from_slice(src);
                }
            }
            if !res_add {
                clear_border(shape, res_grad);
            }
        }
    }
}

per_isa!(
    /// `dx (+)= a * g + b * (x - mean) + c` per channel, BatchNorm's input gradient; `dx` may
    /// be `g` (then `add` is false); the coefficients expanded to `period` floats.
    bn_input_grad => bn_input_grad_any(
        shape: Shape,
        x: *const f32,
        g: *const f32,
        dx: *mut f32,
        add: bool,
        mean: *const f32,
        a: *const f32,
        b: *const f32,
        c0: *const f32,
        period: usize,
    )
);

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn bn_input_grad_any(
    shape: Shape,
    x: *const f32,
    g: *const f32,
    dx: *mut f32,
    add: bool,
    mean: *const f32,
    a: *const f32,
    b: *const f32,
    c0: *const f32,
    period: usize,
) {
    let c = shape.channels();
    // SAFETY: the caller guarantees the images and the `period`-float coefficients; `g` is
    // read through `dx` when they are the same.
    unsafe {
        let coef = |p: *const f32| std::slice::from_raw_parts(p, period);
        let (mean, a, b, c0) = (coef(mean), coef(a), coef(b), coef(c0));
        let in_place = std::ptr::eq(g, dx);
        assert!(!(in_place && add), "an in-place gradient starts it");
        for (j, (out, xr)) in rows_mut(shape, dx).zip(rows(shape, x)).enumerate() {
            if in_place {
                for (o, xp) in out.chunks_mut(period).zip(periodic(xr, period)) {
                    for ((((o, x), m), a), (b, c0)) in
                        o.iter_mut().zip(xp).zip(mean).zip(a).zip(b.iter().zip(c0))
                    {
                        *o = a * *o + b * (x - m) + c0;
                    }
                }
            } else {
                let (start, count) = runs(shape).nth(j).expect("the same runs");
                let gr = std::slice::from_raw_parts(g.add(start), count * c);
                for ((o, xp), gp) in out
                    .chunks_mut(period)
                    .zip(periodic(xr, period))
                    .zip(periodic(gr, period))
                {
                    for (((((o, x), g), m), a), (b, c0)) in o
                        .iter_mut()
                        .zip(xp)
                        .zip(gp)
                        .zip(mean)
                        .zip(a)
                        .zip(b.iter().zip(c0))
                    {
                        let v = a * g + b * (x - m) + c0;
                        *o = if add { *o + v } else { v };
                    }
                }
            }
        }
        if !add {
            clear_border(shape, dx);
        }
    }
}

per_isa!(
    /// `dx (+)= g` where `y > 0`, else 0 (ReLU's gradient; `dx` may be `g`, then `add` is
    /// false). With `db` not null, the same for a second gradient (an addition's operands).
    relu_grad => relu_grad_any(
        shape: Shape,
        y: *const f32,
        g: *const f32,
        relu: bool,
        dx: *mut f32,
        add: bool,
        db: *mut f32,
        add_b: bool,
    )
);

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn relu_grad_any(
    shape: Shape,
    y: *const f32,
    g: *const f32,
    relu: bool,
    dx: *mut f32,
    add: bool,
    db: *mut f32,
    add_b: bool,
) {
    let c = shape.channels();
    // SAFETY: the caller guarantees the images; a destination equal to `g` is written only
    // with its own masked value.
    unsafe {
        for (start, count) in runs(shape) {
            for i in start..start + count * c {
                let v = if relu && !passes(*y.add(i)) {
                    0.0
                } else {
                    *g.add(i)
                };
                let d = dx.add(i);
                *d = if add { *d + v } else { v };
                if !db.is_null() {
                    let d = db.add(i);
                    *d = if add_b { *d + v } else { v };
                }
            }
        }
        if !add {
            clear_border(shape, dx);
        }
        if !db.is_null() && !add_b {
            clear_border(shape, db);
        }
    }
}

per_isa!(
    /// The gradient of a `k x k`, stride `s` pooling from `x` to `y`: each output's gradient
    /// goes to the window element the max took (the first maximum, as `x` and `y` say), or is
    /// spread evenly over the window for an average.
    pool_grad => pool_grad_any(
        from: Shape,
        to: Shape,
        x: *const f32,
        y: *const f32,
        g: *const f32,
        dx: *mut f32,
        add: bool,
        k: usize,
        s: usize,
        max: bool,
    )
);

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pool_grad_any(
    from: Shape,
    to: Shape,
    x: *const f32,
    y: *const f32,
    g: *const f32,
    dx: *mut f32,
    add: bool,
    k: usize,
    s: usize,
    max: bool,
) {
    let (Shape::Spatial { c, w, h }, Shape::Spatial { h: ho, w: wo, .. }) = (from, to) else {
        unreachable!("pooling is spatial")
    };
    let inv = 1.0 / (k * k) as f32;
    // Per channel of one output pixel: 1 until the window's maximum has been found.
    let mut open = vec![0.0f32; c];
    // SAFETY: every window lies inside the input's interior, every output pixel inside the
    // output's; the windows' pixels are `c` floats each.
    unsafe {
        if !add {
            std::ptr::write_bytes(dx, 0, (h + 2) * (w + 2) * c);
        }
        for oy in 0..ho {
            for ox in 0..wo {
                let o = ((oy + 1) * (wo + 2) + ox + 1) * c;
                let gs = std::slice::from_raw_parts(g.add(o), c);
                let ys = std::slice::from_raw_parts(y.add(o), c);
                open.fill(1.0);
                for t in 0..k * k {
                    let at = ((oy * s + t / k + 1) * (w + 2) + ox * s + t % k + 1) * c;
                    let xs = std::slice::from_raw_parts(x.add(at), c);
                    let ds = std::slice::from_raw_parts_mut(dx.add(at), c);
                    if max {
                        // The first element equal to the maximum takes the gradient.
                        for ((((d, &xv), &yv), &gv), o) in
                            ds.iter_mut().zip(xs).zip(ys).zip(gs).zip(open.iter_mut())
                        {
                            let hit = if xv == yv { *o } else { 0.0 };
                            *d += hit * gv;
                            *o -= hit;
                        }
                    } else {
                        for (d, gv) in ds.iter_mut().zip(gs) {
                            *d += gv * inv;
                        }
                    }
                }
            }
        }
    }
}

per_isa!(
    /// `dx (+)= g / (h w)` at every pixel: the gradient of a global average pool.
    global_avg_grad => global_avg_grad_any(shape: Shape, g: *const f32, dx: *mut f32, add: bool)
);

#[inline(always)]
unsafe fn global_avg_grad_any(shape: Shape, g: *const f32, dx: *mut f32, add: bool) {
    let c = shape.channels();
    let inv = 1.0 / pixels(shape) as f32;
    // SAFETY: the caller guarantees the image and the `c` gradients.
    unsafe {
        let g = std::slice::from_raw_parts(g, c);
        for (start, count) in runs(shape) {
            for p in 0..count {
                let d = std::slice::from_raw_parts_mut(dx.add(start + p * c), c);
                for (d, g) in d.iter_mut().zip(g) {
                    *d = if add { *d + g * inv } else { g * inv };
                }
            }
        }
        if !add {
            clear_border(shape, dx);
        }
    }
}

/// `dx (+)= g` reordered from PyTorch's channel-major flattening back to NHWC.
///
/// # Safety
/// `g` must hold `c h w` floats, `dx` one padded image of `shape`.
pub(crate) unsafe fn flatten_grad(shape: Shape, g: *const f32, dx: *mut f32, add: bool) {
    let Shape::Spatial { c, h, w } = shape else {
        unreachable!("flattening is of a spatial value")
    };
    // SAFETY: as the caller's.
    unsafe {
        for yy in 0..h {
            for xx in 0..w {
                let p = ((yy + 1) * (w + 2) + xx + 1) * c;
                for ch in 0..c {
                    let v = *g.add((ch * h + yy) * w + xx);
                    let d = dx.add(p + ch);
                    *d = if add { *d + v } else { v };
                }
            }
        }
        if !add {
            zero_border(dx, h, w, c);
        }
    }
}

/// The forward of [`flatten_grad`]: NHWC to PyTorch's channel-major order.
///
/// # Safety
/// `x` must hold one padded image of `shape`, `y` `c h w` floats.
pub(crate) unsafe fn flatten(shape: Shape, x: *const f32, y: *mut f32) {
    let Shape::Spatial { c, h, w } = shape else {
        unreachable!("flattening is of a spatial value")
    };
    // SAFETY: as the caller's.
    unsafe {
        for yy in 0..h {
            for xx in 0..w {
                let p = ((yy + 1) * (w + 2) + xx + 1) * c;
                for ch in 0..c {
                    *y.add((ch * h + yy) * w + xx) = *x.add(p + ch);
                }
            }
        }
    }
}

/// Mean over the interior pixels, per channel, into `y` (`c` floats).
///
/// # Safety
/// `x` must hold one padded image of `shape`, `y` `c` floats.
pub(crate) unsafe fn global_avg(shape: Shape, x: *const f32, y: *mut f32) {
    let c = shape.channels();
    // SAFETY: as the caller's.
    unsafe {
        let y = std::slice::from_raw_parts_mut(y, c);
        y.fill(0.0);
        for (start, count) in runs(shape) {
            for p in 0..count {
                let v = std::slice::from_raw_parts(x.add(start + p * c), c);
                for (s, v) in y.iter_mut().zip(v) {
                    *s += v;
                }
            }
        }
        let inv = 1.0 / pixels(shape) as f32;
        for s in y.iter_mut() {
            *s *= inv;
        }
    }
}

/// `y = max(x, 0)` over the interior (keeping a NaN, like PyTorch's relu).
///
/// # Safety
/// Both pointers must hold one image of `shape`.
pub(crate) unsafe fn relu(shape: Shape, x: *const f32, y: *mut f32) {
    let c = shape.channels();
    // SAFETY: as the caller's.
    unsafe {
        for (start, count) in runs(shape) {
            for i in start..start + count * c {
                let v = *x.add(i);
                *y.add(i) = if v < 0.0 { 0.0 } else { v };
            }
        }
    }
}

/// `y = relu?(a + b)` over the interior (the border stays as it is, zero).
///
/// # Safety
/// The three pointers must hold one image of `shape`.
pub(crate) unsafe fn add(shape: Shape, a: *const f32, b: *const f32, y: *mut f32, relu: bool) {
    let c = shape.channels();
    // SAFETY: as the caller's.
    unsafe {
        for (start, count) in runs(shape) {
            for i in start..start + count * c {
                let v = *a.add(i) + *b.add(i);
                *y.add(i) = if relu && v < 0.0 { 0.0 } else { v };
            }
        }
    }
}

/// `y = cat(new, old)` along channels at every pixel (the border included, zero).
///
/// # Safety
/// `new` and `old` must hold one padded image of `cn` and `co` channels and `pixels` padded
/// pixels, `y` of `cn + co`.
pub(crate) unsafe fn concat(
    new: *const f32,
    old: *const f32,
    y: *mut f32,
    cn: usize,
    co: usize,
    pixels: usize,
) {
    // SAFETY: as the caller's.
    unsafe {
        for p in 0..pixels {
            std::ptr::copy_nonoverlapping(new.add(p * cn), y.add(p * (cn + co)), cn);
            std::ptr::copy_nonoverlapping(old.add(p * co), y.add(p * (cn + co) + cn), co);
        }
    }
}

/// The gradient of [`concat`]: `dnew (+)=` the first `cn` channels of `g`, `dold (+)=` the
/// rest.
///
/// # Safety
/// As [`concat`], with `g` laid out like `y`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn concat_grad(
    g: *const f32,
    dnew: *mut f32,
    add_new: bool,
    dold: *mut f32,
    add_old: bool,
    cn: usize,
    co: usize,
    pixels: usize,
) {
    // SAFETY: as the caller's; the border of `g` is zero, so the parts' borders come out zero.
    unsafe {
        for p in 0..pixels {
            let src = g.add(p * (cn + co));
            for (dst, off, n, add) in [
                (dnew.add(p * cn), 0, cn, add_new),
                (dold.add(p * co), cn, co, add_old),
            ] {
                for i in 0..n {
                    let v = *src.add(off + i);
                    *dst.add(i) = if add { *dst.add(i) + v } else { v };
                }
            }
        }
    }
}
