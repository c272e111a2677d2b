//! Direct 2-D convolution over padded NHWC activations, as register-blocked outer products.
//!
//! Activations are stored per image as `(h + 2) x (w + 2) x c` floats: channels contiguous, a
//! one-pixel zero border all around, so a convolution with padding up to 1 reads its window
//! without bounds checks. An output tile of `rh x rw` pixels and `nv` vectors of 16 output
//! channels is held in `rh * rw * nv` AVX-512 accumulators (16 to 24 of the 32 registers); the
//! reduction runs over the taps of the kernel and, inside each tap, over the input channels (a
//! contiguous run in NHWC): per step one vector load per 16 output channels and one broadcast
//! input value per pixel, fused into the multiply-adds. Bias, the residual addition and the
//! ReLU happen in the same pass that stores the tile. The weights are packed per point as
//! `[block][tap][cin][16 * nv]`, zero padded to a multiple of 16 output channels.

use super::buffer::Aligned;

/// Shape of one convolution on one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeom {
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    /// Input height and width (without the border).
    pub h: usize,
    pub w: usize,
    /// Output height and width (without the border).
    pub ho: usize,
    pub wo: usize,
}

impl ConvGeom {
    /// Output channels rounded up to whole vectors.
    pub(crate) fn cout_padded(&self) -> usize {
        self.cout.div_ceil(16) * 16
    }

    /// Length of the reduction: taps times input channels.
    pub(crate) fn depth(&self) -> usize {
        self.kernel * self.kernel * self.cin
    }
}

/// Arguments of one tile.
pub(crate) struct Tile<'a> {
    /// Input at the tile's first pixel, tap (0, 0), channel 0.
    a: *const f32,
    /// Floats between the inputs of consecutive output rows.
    row_stride: isize,
    /// Floats between the inputs of consecutive output pixels of a row.
    ps: usize,
    /// Offset of each tap from `a`, in floats.
    taps: &'a [isize],
    cin: usize,
    /// Packed weights of this block, `[tap][cin][16 * nv]`.
    w: *const f32,
    /// Bias of this block, `16 * nv` floats.
    bias: *const f32,
    /// Output at the tile's first pixel, first channel of the block.
    out: *mut f32,
    out_row: isize,
    out_ps: usize,
    /// Residual to add, laid out like `out` (null: none).
    res: *const f32,
    relu: bool,
    /// Output channels of this block that exist (the rest are padding).
    nvalid: usize,
}

type TileFn = unsafe fn(&Tile<'_>);

/// How one convolution runs: the geometry, the tile shape and the kernel chosen for it.
#[derive(Clone)]
pub(crate) struct ConvPlan {
    pub geom: ConvGeom,
    nv: usize,
    rh: usize,
    rw: usize,
    /// Tap offsets in floats (`(ky * (w + 2) + kx) * cin`).
    taps: Vec<isize>,
    /// The AVX-512 kernel for this shape (None: the portable one).
    fast: Option<TileFn>,
    /// Input pixel stride of a [`ConvPlan::grid`] plan (what `fast` is specialized for).
    grid_ps: usize,
}

impl std::fmt::Debug for ConvPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConvPlan")
            .field("geom", &self.geom)
            .field("tile", &(self.rh, self.rw, 16 * self.nv))
            .field("avx512", &self.fast.is_some())
            .finish()
    }
}

/// Packed weights and bias of one convolution at one parameter point.
#[derive(Clone, Debug, Default)]
pub(crate) struct PackedConv {
    w: Aligned,
    bias: Aligned,
}

impl ConvPlan {
    /// Plans `geom` (padding at most 1). `avx512`: whether the AVX-512 kernels may be used.
    pub(crate) fn new(geom: ConvGeom, avx512: bool) -> Self {
        Self::with_stride(geom, avx512, geom.stride * geom.cin)
    }

    /// Plans a linear layer `input -> output` over the `rows` images of a group, run by
    /// [`ConvPlan::run_dense`].
    pub(crate) fn dense(input: usize, output: usize, rows: usize, avx512: bool) -> Self {
        let geom = ConvGeom {
            cin: input,
            cout: output,
            kernel: 1,
            stride: 1,
            pad: 0,
            h: 1,
            w: rows,
            ho: 1,
            wo: rows,
        };
        // The row stride is only known at run time.
        Self::with_stride(geom, avx512, usize::MAX)
    }

    /// Plans a product of `rows` rows of `input` floats, `stride` floats apart, by an
    /// `input x output` matrix ([`ConvPlan::run_gemm`]).
    pub(crate) fn gemm(
        input: usize,
        output: usize,
        rows: usize,
        stride: usize,
        avx512: bool,
    ) -> Self {
        let mut plan = Self::dense(input, output, rows, avx512);
        if avx512 {
            plan.fast = select(plan.nv, plan.rh, plan.rw, stride);
        }
        plan
    }

    /// Output channels per packed block (`16 * nv`).
    pub(crate) fn block_width(&self) -> usize {
        16 * self.nv
    }

    /// Rows of one kernel tile (a [`ConvPlan::run_gemm`] may touch this many rows).
    pub(crate) fn tile_rows(&self) -> usize {
        self.rw
    }

    fn with_stride(geom: ConvGeom, avx512: bool, ps: usize) -> Self {
        assert!(geom.pad <= 1, "the activation border is one pixel");
        let vectors = geom.cout_padded() / 16;
        let nv = if vectors.is_multiple_of(2) {
            2
        } else if vectors.is_multiple_of(3) {
            3
        } else {
            1
        };
        let shapes: &[(usize, usize)] = if nv == 1 {
            &[
                (1, 16),
                (2, 8),
                (4, 4),
                (1, 8),
                (2, 4),
                (1, 4),
                (2, 2),
                (1, 2),
                (1, 1),
            ]
        } else {
            &[(1, 8), (2, 4), (1, 4), (2, 2), (1, 2), (1, 1)]
        };
        let (rh, rw) = *shapes
            .iter()
            .find(|(rh, rw)| *rh <= geom.ho && *rw <= geom.wo)
            .expect("(1, 1) always fits");
        let wp = (geom.w + 2) as isize;
        let cin = geom.cin as isize;
        let taps = (0..geom.kernel as isize)
            .flat_map(|ky| (0..geom.kernel as isize).map(move |kx| (ky * wp + kx) * cin))
            .collect();
        let fast = if avx512 { select(nv, rh, rw, ps) } else { None };
        Self {
            geom,
            nv,
            rh,
            rw,
            taps,
            fast,
            grid_ps: ps,
        }
    }

    /// Packs `weight` (PyTorch's `[cout, cin, k, k]`) and `bias` (`[cout]`, or none) into
    /// `packed`, reusing its storage.
    pub(crate) fn pack(&self, weight: &[f32], bias: Option<&[f32]>, packed: &mut PackedConv) {
        let g = &self.geom;
        let taps = self.taps.len();
        let (nr, depth) = (16 * self.nv, taps * g.cin);
        assert_eq!(weight.len(), g.cout * depth, "convolution weight size");
        let blocks = g.cout_padded() / nr;
        packed.w.resize(blocks * depth * nr);
        packed.bias.resize(blocks * nr);
        let w = packed.w.as_mut_slice();
        for block in 0..blocks {
            for tap in 0..taps {
                for ci in 0..g.cin {
                    let row = (block * depth + tap * g.cin + ci) * nr;
                    for j in 0..nr {
                        let co = block * nr + j;
                        w[row + j] = if co < g.cout {
                            weight[(co * g.cin + ci) * taps + tap]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
        let b = packed.bias.as_mut_slice();
        b.fill(0.0);
        if let Some(bias) = bias {
            assert_eq!(bias.len(), g.cout, "convolution bias size");
            b[..g.cout].copy_from_slice(bias);
        }
    }

    /// Runs the convolution on one image: `x` the padded input, `y` the padded output (its
    /// border is zeroed), `res` a residual laid out like `y` to add before the ReLU.
    ///
    /// # Safety
    /// `x` must hold `(h + 2) * (w + 2) * cin` floats, `y` and `res` (when not null)
    /// `(ho + 2) * (wo + 2) * cout`; `y` must not overlap `x` or `res`.
    pub(crate) unsafe fn run(
        &self,
        packed: &PackedConv,
        x: *const f32,
        y: *mut f32,
        res: *const f32,
        relu: bool,
    ) {
        let g = &self.geom;
        let (wp_in, wp_out) = (g.w + 2, g.wo + 2);
        let origin = 1 - g.pad;
        let out0 = (wp_out + 1) * g.cout;
        // SAFETY: the planned geometry keeps every tap of every output pixel inside the padded
        // input (padding <= the border), and every output pixel inside the padded output.
        unsafe {
            self.run_tiles(
                packed,
                x.add((origin * wp_in + origin) * g.cin),
                (g.stride * wp_in * g.cin) as isize,
                g.stride * g.cin,
                y.add(out0),
                (wp_out * g.cout) as isize,
                g.cout,
                if res.is_null() { res } else { res.add(out0) },
                relu,
            );
            zero_border(y, g.ho, g.wo, g.cout);
        }
    }

    /// A plan over a grid of `rows x cols` output pixels with its own taps (offsets in floats
    /// from an output pixel's input origin), run by [`ConvPlan::run_grid`]: one output phase of
    /// a strided convolution's transpose. Input pixels are `in_ps` floats apart.
    pub(crate) fn grid(
        cin: usize,
        cout: usize,
        rows: usize,
        cols: usize,
        taps: Vec<isize>,
        in_ps: usize,
        avx512: bool,
    ) -> Self {
        let geom = ConvGeom {
            cin,
            cout,
            kernel: 1,
            stride: 1,
            pad: 0,
            h: rows,
            w: cols,
            ho: rows,
            wo: cols,
        };
        let mut plan = Self::with_stride(geom, avx512, in_ps);
        plan.taps = taps;
        plan
    }

    /// Runs a plan made by [`ConvPlan::grid`]: output pixel `(r, c)` at
    /// `y0 + r * out_row + c * out_ps`, its input origin at `x0 + r * in_row + c * in_ps`
    /// (`in_ps` as planned); `res` (when not null) laid out like the output.
    ///
    /// # Safety
    /// Every tap of every output pixel must lie inside the input, every output pixel (and its
    /// residual) inside theirs; the output must not overlap the input.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn run_grid(
        &self,
        packed: &PackedConv,
        x0: *const f32,
        in_row: isize,
        y0: *mut f32,
        out_row: isize,
        out_ps: usize,
        res: *const f32,
    ) {
        let ps = self.grid_ps;
        // SAFETY: forwarded.
        unsafe { self.run_tiles(packed, x0, in_row, ps, y0, out_row, out_ps, res, false) }
    }

    /// The tiles of every output-channel block over the output grid: output `(oy, ox)` at
    /// `y0 + oy * out_row + ox * out_ps`, reading the input from `x0 + oy * row_stride + ox * ps`
    /// plus each tap's offset.
    ///
    /// # Safety
    /// As [`ConvPlan::run`] for the addresses this computes.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run_tiles(
        &self,
        packed: &PackedConv,
        x0: *const f32,
        row_stride: isize,
        ps: usize,
        y0: *mut f32,
        out_row: isize,
        out_ps: usize,
        res0: *const f32,
        relu: bool,
    ) {
        let g = &self.geom;
        let nr = 16 * self.nv;
        let depth = self.taps.len() * g.cin;
        let blocks = g.cout_padded() / nr;
        let tiles_y = g.ho.div_ceil(self.rh);
        let tiles_x = g.wo.div_ceil(self.rw);
        for block in 0..blocks {
            // SAFETY (all pointer arithmetic below): the tile origins are clamped so that
            // every tile lies inside the output grid; the caller guarantees the addresses.
            unsafe {
                let w = packed.w.as_slice().as_ptr().add(block * depth * nr);
                let bias = packed.bias.as_slice().as_ptr().add(block * nr);
                let nvalid = (g.cout - block * nr).min(nr);
                for ty in 0..tiles_y {
                    let oy = (ty * self.rh).min(g.ho - self.rh);
                    for tx in 0..tiles_x {
                        let ox = (tx * self.rw).min(g.wo - self.rw);
                        let a = x0.offset(oy as isize * row_stride).add(ox * ps);
                        let o = oy as isize * out_row + (ox * out_ps + block * nr) as isize;
                        let tile = Tile {
                            a,
                            row_stride,
                            ps,
                            taps: &self.taps,
                            cin: g.cin,
                            w,
                            bias,
                            out: y0.offset(o),
                            out_row,
                            out_ps,
                            res: if res0.is_null() { res0 } else { res0.offset(o) },
                            relu,
                            nvalid,
                        };
                        match self.fast {
                            Some(f) => f(&tile),
                            None => portable(&tile, self.nv, self.rh, self.rw),
                        }
                    }
                }
            }
        }
    }
}

impl ConvPlan {
    /// Runs a plan made by [`ConvPlan::dense`]: `y[r] = relu?(W x[r] + b)` for every row `r`
    /// of the group, rows `x_stride` and `y_stride` floats apart.
    ///
    /// # Safety
    /// `x` must hold the group's rows of `input` floats, `y` of `output`; they must not
    /// overlap.
    pub(crate) unsafe fn run_dense(
        &self,
        packed: &PackedConv,
        x: *const f32,
        x_stride: usize,
        y: *mut f32,
        y_stride: usize,
        relu: bool,
    ) {
        // SAFETY: forwarded.
        unsafe { self.run_rows(packed, x, x_stride, y, y_stride, self.geom.wo, relu) }
    }

    /// [`ConvPlan::run_gemm`] with the weights of `packed`.
    ///
    /// # Safety
    /// As [`ConvPlan::run_gemm`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn run_rows(
        &self,
        packed: &PackedConv,
        x: *const f32,
        x_stride: usize,
        y: *mut f32,
        y_stride: usize,
        rows: usize,
        relu: bool,
    ) {
        // SAFETY: forwarded.
        unsafe {
            self.run_gemm(
                packed.w.as_slice().as_ptr(),
                packed.bias.as_slice().as_ptr(),
                x,
                x_stride,
                y,
                y_stride,
                rows,
                relu,
            )
        }
    }

    /// Whether every output pixel is written by one tile only, so that the residual may be
    /// the output itself (an accumulation in place).
    pub(crate) fn tiles_disjoint(&self) -> bool {
        self.geom.ho.is_multiple_of(self.rh) && self.geom.wo.is_multiple_of(self.rw)
    }

    /// A matrix product with the plan's kernel: `y[r] = relu?(W x[r] + b)` for the first
    /// `rows` rows (at most the planned `wo`), `W` packed as [`ConvPlan::pack`] packs a 1x1
    /// convolution (`w`, `bias` as in [`PackedConv`]). Rows past `rows` up to the kernel's row
    /// tile may be read and written as well.
    ///
    /// # Safety
    /// `x` and `y` must hold `max(rows, tile rows)` rows and not overlap; `w` and `bias` must
    /// be packed for this plan.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn run_gemm(
        &self,
        w: *const f32,
        bias: *const f32,
        x: *const f32,
        x_stride: usize,
        y: *mut f32,
        y_stride: usize,
        rows: usize,
        relu: bool,
    ) {
        let g = &self.geom;
        debug_assert!(g.kernel == 1 && rows <= g.wo);
        let nr = 16 * self.nv;
        let blocks = g.cout_padded() / nr;
        let tiles = rows.div_ceil(self.rw);
        for block in 0..blocks {
            // SAFETY: as in `run`, over rows instead of pixels.
            unsafe {
                let w = w.add(block * g.cin * nr);
                let bias = bias.add(block * nr);
                let nvalid = (g.cout - block * nr).min(nr);
                for t in 0..tiles {
                    let r = (t * self.rw).min(rows.saturating_sub(self.rw));
                    let tile = Tile {
                        a: x.add(r * x_stride),
                        row_stride: 0,
                        ps: x_stride,
                        taps: &self.taps,
                        cin: g.cin,
                        w,
                        bias,
                        out: y.add(r * y_stride + block * nr),
                        out_row: 0,
                        out_ps: y_stride,
                        res: std::ptr::null(),
                        relu,
                        nvalid,
                    };
                    match self.fast {
                        Some(f) => f(&tile),
                        None => portable(&tile, self.nv, self.rh, self.rw),
                    }
                }
            }
        }
    }
}

/// `dst[c][r] = src[r][c]` for a `rows x cols` matrix, in 16 x 16 blocks so that neither side
/// is walked a power of two apart element by element.
pub(crate) fn transpose_blocked(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const B: usize = 16;
    assert!(
        src.len() >= rows * cols && dst.len() >= rows * cols,
        "matrix sizes"
    );
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    dst[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
}

/// Zeroes the one-pixel border of a padded `h x w x c` image.
///
/// # Safety
/// `y` must hold `(h + 2) * (w + 2) * c` floats.
pub(crate) unsafe fn zero_border(y: *mut f32, h: usize, w: usize, c: usize) {
    let row = (w + 2) * c;
    // SAFETY: every range below lies inside the padded image.
    unsafe {
        std::ptr::write_bytes(y, 0, row);
        std::ptr::write_bytes(y.add((h + 1) * row), 0, row);
        for yy in 1..=h {
            std::ptr::write_bytes(y.add(yy * row), 0, c);
            std::ptr::write_bytes(y.add(yy * row + (w + 1) * c), 0, c);
        }
    }
}

/// The portable kernel (any CPU): the same tile, one pixel at a time.
///
/// # Safety
/// As [`ConvPlan::run`] sets up the tile.
unsafe fn portable(t: &Tile<'_>, nv: usize, rh: usize, rw: usize) {
    let nr = 16 * nv;
    let mut acc = [0.0f32; 48];
    // SAFETY: the tile's pointers cover the tile (see `ConvPlan::run`).
    unsafe {
        for r in 0..rh {
            for c in 0..rw {
                let acc = &mut acc[..nr];
                acc.copy_from_slice(std::slice::from_raw_parts(t.bias, nr));
                let mut wp = t.w;
                for &off in t.taps {
                    let a = t.a.offset(off + r as isize * t.row_stride).add(c * t.ps);
                    for ci in 0..t.cin {
                        let x = *a.add(ci);
                        let w = std::slice::from_raw_parts(wp, nr);
                        for (s, w) in acc.iter_mut().zip(w) {
                            *s += x * w;
                        }
                        wp = wp.add(nr);
                    }
                }
                let o = r as isize * t.out_row + (c * t.out_ps) as isize;
                for (j, &s) in acc[..t.nvalid].iter().enumerate() {
                    let mut v = s;
                    if !t.res.is_null() {
                        v += *t.res.offset(o + j as isize);
                    }
                    if t.relu && v < 0.0 {
                        v = 0.0;
                    }
                    *t.out.offset(o + j as isize) = v;
                }
            }
        }
    }
}

/// The AVX-512 kernel for a tile shape and input pixel stride, if one is compiled in.
#[cfg(target_arch = "x86_64")]
fn select(nv: usize, rh: usize, rw: usize, ps: usize) -> Option<TileFn> {
    use avx512::tile;
    macro_rules! by_stride {
        ($nv:literal, $rh:literal, $rw:literal) => {
            match ps {
                3 => tile::<$nv, $rh, $rw, 3> as TileFn,
                16 => tile::<$nv, $rh, $rw, 16>,
                32 => tile::<$nv, $rh, $rw, 32>,
                64 => tile::<$nv, $rh, $rw, 64>,
                128 => tile::<$nv, $rh, $rw, 128>,
                256 => tile::<$nv, $rh, $rw, 256>,
                512 => tile::<$nv, $rh, $rw, 512>,
                _ => tile::<$nv, $rh, $rw, 0>,
            }
        };
    }
    Some(match (nv, rh, rw) {
        (1, 1, 16) => by_stride!(1, 1, 16),
        (1, 2, 8) => by_stride!(1, 2, 8),
        (1, 4, 4) => by_stride!(1, 4, 4),
        (1, 1, 8) => tile::<1, 1, 8, 0>,
        (1, 2, 4) => tile::<1, 2, 4, 0>,
        (1, 1, 4) => tile::<1, 1, 4, 0>,
        (1, 2, 2) => tile::<1, 2, 2, 0>,
        (1, 1, 2) => tile::<1, 1, 2, 0>,
        (1, 1, 1) => tile::<1, 1, 1, 0>,
        (2, 1, 8) => by_stride!(2, 1, 8),
        (2, 2, 4) => by_stride!(2, 2, 4),
        (2, 1, 4) => tile::<2, 1, 4, 0>,
        (2, 2, 2) => tile::<2, 2, 2, 0>,
        (2, 1, 2) => tile::<2, 1, 2, 0>,
        (2, 1, 1) => tile::<2, 1, 1, 0>,
        (3, 1, 8) => by_stride!(3, 1, 8),
        (3, 2, 4) => by_stride!(3, 2, 4),
        (3, 1, 4) => tile::<3, 1, 4, 0>,
        (3, 2, 2) => tile::<3, 2, 2, 0>,
        (3, 1, 2) => tile::<3, 1, 2, 0>,
        (3, 1, 1) => tile::<3, 1, 1, 0>,
        _ => return None,
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn select(_nv: usize, _rh: usize, _rw: usize, _ps: usize) -> Option<TileFn> {
    None
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Tile;
    use std::arch::x86_64::*;

    /// One tile: `RH x RW` pixels, `NV` vectors of output channels; `PS` the input pixel
    /// stride when known at compile time (0: read it from the tile), so the broadcasts of a
    /// row address one base register plus constant displacements.
    ///
    /// # Safety
    /// The CPU must support AVX-512F, and the tile's pointers must cover the tile (see
    /// `ConvPlan::run`).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::needless_range_loop)] // (row, column, vector) indices name the registers
    pub(super) unsafe fn tile<
        const NV: usize,
        const RH: usize,
        const RW: usize,
        const PS: usize,
    >(
        t: &Tile<'_>,
    ) {
        let ps = if PS == 0 { t.ps } else { PS };
        let mut acc = [[[_mm512_setzero_ps(); NV]; RW]; RH];
        // SAFETY: the caller guarantees the pointers; the weight rows are 64-byte aligned
        // (the packed buffer is aligned and every row is a multiple of 16 floats).
        unsafe {
            for j in 0..NV {
                let b = _mm512_loadu_ps(t.bias.add(16 * j));
                for row in acc.iter_mut() {
                    for px in row.iter_mut() {
                        px[j] = b;
                    }
                }
            }
            let mut wp = t.w;
            for &off in t.taps {
                let base = t.a.offset(off);
                let mut rows = [base; RH];
                for (r, p) in rows.iter_mut().enumerate() {
                    *p = base.offset(r as isize * t.row_stride);
                }
                for ci in 0..t.cin {
                    let mut wv = [_mm512_setzero_ps(); NV];
                    for (j, v) in wv.iter_mut().enumerate() {
                        *v = _mm512_load_ps(wp.add(16 * j));
                    }
                    for r in 0..RH {
                        for c in 0..RW {
                            let x = _mm512_set1_ps(*rows[r].add(c * ps + ci));
                            for j in 0..NV {
                                acc[r][c][j] = _mm512_fmadd_ps(x, wv[j], acc[r][c][j]);
                            }
                        }
                    }
                    wp = wp.add(16 * NV);
                }
            }
            let zero = _mm512_setzero_ps();
            for j in 0..NV {
                let lanes = t.nvalid.saturating_sub(16 * j).min(16);
                if lanes == 0 {
                    continue;
                }
                let mask = ((1u32 << lanes) - 1) as __mmask16;
                for (r, row) in acc.iter().enumerate() {
                    for (c, px) in row.iter().enumerate() {
                        let o = r as isize * t.out_row + (c * t.out_ps + 16 * j) as isize;
                        let mut v = px[j];
                        if !t.res.is_null() {
                            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, t.res.offset(o)));
                        }
                        if t.relu {
                            // max(0, v) keeps a NaN, like PyTorch's relu.
                            v = _mm512_max_ps(zero, v);
                        }
                        _mm512_mask_storeu_ps(t.out.offset(o), mask, v);
                    }
                }
            }
        }
    }
}
