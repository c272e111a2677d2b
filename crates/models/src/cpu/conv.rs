//! Direct 2-D convolution over padded NHWC activations, as register-blocked outer products.
//!
//! Activations are stored per image as `(h + 2) x (w + 2) x c` floats: channels contiguous, a
//! one-pixel zero border all around, so a convolution with padding up to 1 reads its window
//! without bounds checks. An output tile of `rh x rw` pixels by blocks of 16 output channels is
//! held in vector accumulators: on AVX-512 (32 registers of 16 floats) 16 to 24 pixel-vectors,
//! 1 to 3 blocks wide; on AVX2 (16 registers of 8) and NEON (32 of 4) one block by 6 pixels, 12
//! and 24 registers. The reduction runs over the taps of the kernel and, inside each tap, over
//! the input channels (a contiguous run in NHWC): per step one vector load per vector of output
//! channels and one broadcast input value per pixel, fused into the multiply-adds. Bias, the
//! residual addition and the ReLU happen in the same pass that stores the tile. The weights are
//! packed per point as `[block][tap][cin][16 * nv]`, zero padded to a multiple of 16 output
//! channels. The kernel is written once ([`tile`], generic over [`Simd`]) and instantiated per
//! instruction set.

use super::buffer::Aligned;
use super::isa::Isa;
#[cfg(target_arch = "aarch64")]
use super::simd::Neon;
use super::simd::Simd;
#[cfg(target_arch = "x86_64")]
use super::simd::{Avx2, Avx512};

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
    /// The instruction set, and its kernel for this shape.
    isa: Isa,
    kernel: TileFn,
    /// Input pixel stride of a [`ConvPlan::grid`] plan (what `fast` is specialized for).
    grid_ps: usize,
}

impl std::fmt::Debug for ConvPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConvPlan")
            .field("geom", &self.geom)
            .field("tile", &(self.rh, self.rw, 16 * self.nv))
            .field("isa", &self.isa)
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
    /// Plans `geom` (padding at most 1) for the kernels of `isa`.
    pub(crate) fn new(geom: ConvGeom, isa: Isa) -> Self {
        Self::with_stride(geom, isa, geom.stride * geom.cin)
    }

    /// Plans a linear layer `input -> output` over the `rows` images of a group, run by
    /// [`ConvPlan::run_dense`].
    pub(crate) fn dense(input: usize, output: usize, rows: usize, isa: Isa) -> Self {
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
        Self::with_stride(geom, isa, usize::MAX)
    }

    /// Plans a product of `rows` rows of `input` floats, `stride` floats apart, by an
    /// `input x output` matrix ([`ConvPlan::run_gemm`]).
    pub(crate) fn gemm(input: usize, output: usize, rows: usize, stride: usize, isa: Isa) -> Self {
        let mut plan = Self::dense(input, output, rows, isa);
        plan.kernel = select(isa, plan.nv, plan.rh, plan.rw, stride);
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

    fn with_stride(geom: ConvGeom, isa: Isa, ps: usize) -> Self {
        assert!(geom.pad <= 1, "the activation border is one pixel");
        let (nv, rh, rw) = tile_shape(isa, &geom);
        let wp = (geom.w + 2) as isize;
        let cin = geom.cin as isize;
        let taps = (0..geom.kernel as isize)
            .flat_map(|ky| (0..geom.kernel as isize).map(move |kx| (ky * wp + kx) * cin))
            .collect();
        Self {
            geom,
            nv,
            rh,
            rw,
            taps,
            isa,
            kernel: select(isa, nv, rh, rw, ps),
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
        isa: Isa,
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
        let mut plan = Self::with_stride(geom, isa, in_ps);
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
                        (self.kernel)(&tile);
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
                    (self.kernel)(&tile);
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

/// Writes [`NARROW_SHAPES`]' list once, for the constant and for the kernels `select`
/// instantiates: `with_narrow_shapes!(m!(args,))` is `m!(args, [(2, 3), ...])`.
macro_rules! with_narrow_shapes {
    ($then:ident!($($args:tt)*)) => {
        $then!($($args)* [(2, 3), (3, 2), (1, 6), (1, 4), (2, 2), (1, 3), (1, 2), (1, 1)])
    };
}

/// The list itself, as an array.
macro_rules! shape_list {
    ([$(($rh:literal, $rw:literal)),*]) => {
        [$(($rh, $rw)),*]
    };
}

/// The kernel for a tile shape and input pixel stride on `isa`: `tile` instantiated with its
/// vector type (`nv` blocks of 16 output channels, `rh x rw` pixels), on AVX-512 specialized
/// for the common pixel strides.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
fn select(isa: Isa, nv: usize, rh: usize, rw: usize, ps: usize) -> TileFn {
    macro_rules! shapes {
        ($f:ident, $vb:literal, [$(($rh:literal, $rw:literal)),*]) => {
            match (rh, rw) {
                $(($rh, $rw) => $f::<$vb, $rh, $rw> as TileFn,)*
                _ => unreachable!("a planned tile shape"),
            }
        };
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            macro_rules! by_stride {
                ($nv:literal, $rh:literal, $rw:literal) => {
                    match ps {
                        3 => tile_avx512::<$nv, $rh, $rw, 3> as TileFn,
                        16 => tile_avx512::<$nv, $rh, $rw, 16>,
                        32 => tile_avx512::<$nv, $rh, $rw, 32>,
                        64 => tile_avx512::<$nv, $rh, $rw, 64>,
                        128 => tile_avx512::<$nv, $rh, $rw, 128>,
                        256 => tile_avx512::<$nv, $rh, $rw, 256>,
                        512 => tile_avx512::<$nv, $rh, $rw, 512>,
                        _ => tile_avx512::<$nv, $rh, $rw, 0>,
                    }
                };
            }
            match (nv, rh, rw) {
                (1, 1, 16) => by_stride!(1, 1, 16),
                (1, 2, 8) => by_stride!(1, 2, 8),
                (1, 4, 4) => by_stride!(1, 4, 4),
                (1, 1, 8) => tile_avx512::<1, 1, 8, 0>,
                (1, 2, 4) => tile_avx512::<1, 2, 4, 0>,
                (1, 1, 4) => tile_avx512::<1, 1, 4, 0>,
                (1, 2, 2) => tile_avx512::<1, 2, 2, 0>,
                (1, 1, 2) => tile_avx512::<1, 1, 2, 0>,
                (1, 1, 1) => tile_avx512::<1, 1, 1, 0>,
                (2, 1, 8) => by_stride!(2, 1, 8),
                (2, 2, 4) => by_stride!(2, 2, 4),
                (2, 1, 4) => tile_avx512::<2, 1, 4, 0>,
                (2, 2, 2) => tile_avx512::<2, 2, 2, 0>,
                (2, 1, 2) => tile_avx512::<2, 1, 2, 0>,
                (2, 1, 1) => tile_avx512::<2, 1, 1, 0>,
                (3, 1, 8) => by_stride!(3, 1, 8),
                (3, 2, 4) => by_stride!(3, 2, 4),
                (3, 1, 4) => tile_avx512::<3, 1, 4, 0>,
                (3, 2, 2) => tile_avx512::<3, 2, 2, 0>,
                (3, 1, 2) => tile_avx512::<3, 1, 2, 0>,
                (3, 1, 1) => tile_avx512::<3, 1, 1, 0>,
                _ => unreachable!("a planned tile shape"),
            }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => with_narrow_shapes!(shapes!(tile_avx2, 2,)),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => with_narrow_shapes!(shapes!(tile_neon, 4,)),
        _ => match nv {
            1 => tile_portable::<16>,
            2 => tile_portable::<32>,
            3 => tile_portable::<48>,
            _ => unreachable!("a planned block width"),
        },
    }
}

/// The tile shapes (`rh`, `rw`) of the 16-register instruction sets' kernels, one block of 16
/// output channels wide: 6 pixels (12 AVX2 or 24 NEON accumulators) where they fit.
const NARROW_SHAPES: [(usize, usize); 8] = with_narrow_shapes!(shape_list!());

/// `(nv, rh, rw)` for `geom` on `isa`: blocks of `16 * nv` output channels, tiles of
/// `rh x rw` output pixels, as many accumulators as the instruction set has registers for.
fn tile_shape(isa: Isa, geom: &ConvGeom) -> (usize, usize, usize) {
    let vectors = geom.cout_padded() / 16;
    let fits = |&&(rh, rw): &&(usize, usize)| rh <= geom.ho && rw <= geom.wo;
    match isa {
        Isa::Avx512 | Isa::Portable => {
            let nv = if vectors.is_multiple_of(2) {
                2
            } else if vectors.is_multiple_of(3) {
                3
            } else {
                1
            };
            if isa == Isa::Portable {
                return (nv, 1, 1);
            }
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
            let (rh, rw) = *shapes.iter().find(fits).expect("(1, 1) always fits");
            (nv, rh, rw)
        }
        Isa::Avx2 | Isa::Neon => {
            // The most useful pixels per tile: clamped tiles at the edges compute some pixels
            // twice.
            let useful = |&(rh, rw): &(usize, usize)| {
                let computed = geom.ho.div_ceil(rh) * rh * geom.wo.div_ceil(rw) * rw;
                (geom.ho * geom.wo * rh * rw) as f64 / computed as f64
            };
            let (rh, rw) = NARROW_SHAPES
                .iter()
                .filter(fits)
                .fold(None::<(usize, usize)>, |best, s| match best {
                    Some(b) if useful(&b) >= useful(s) => Some(b),
                    _ => Some(*s),
                })
                .expect("(1, 1) always fits");
            (1, rh, rw)
        }
    }
}

/// One tile: `RH x RW` pixels, `VB` vectors of output channels (`16 * nv` floats); `PS` the
/// input pixel stride when known at compile time (0: read it from the tile), so the
/// broadcasts of a row address one base register plus constant displacements.
///
/// # Safety
/// The CPU must run `V`'s instructions (see [`super::simd`]), and the tile's pointers must
/// cover the tile (see `ConvPlan::run`).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // (row, column, vector) indices name the registers
unsafe fn tile<V: Simd, const VB: usize, const RH: usize, const RW: usize, const PS: usize>(
    t: &Tile<'_>,
) {
    let ps = if PS == 0 { t.ps } else { PS };
    let lanes = V::LANES;
    // SAFETY: the caller guarantees the instructions and the pointers.
    unsafe {
        let mut bias = [V::zero(); VB];
        for j in 0..VB {
            bias[j] = V::load(t.bias.add(lanes * j));
        }
        let mut acc = [[bias; RW]; RH];
        let mut wp = t.w;
        for &off in t.taps {
            let base = t.a.offset(off);
            let rows: [*const f32; RH] =
                std::array::from_fn(|r| base.offset(r as isize * t.row_stride));
            for ci in 0..t.cin {
                let wv: [V; VB] = std::array::from_fn(|j| V::load(wp.add(lanes * j)));
                for r in 0..RH {
                    for c in 0..RW {
                        let x = V::splat(*rows[r].add(c * ps + ci));
                        for j in 0..VB {
                            acc[r][c][j] = V::mul_add(x, wv[j], acc[r][c][j]);
                        }
                    }
                }
                wp = wp.add(lanes * VB);
            }
        }
        // One straight store sequence per (residual, ReLU) case: without branches inside, it
        // unrolls fully, so `acc` is only ever indexed by constants and stays in registers
        // (a loop over it would keep a copy in memory, stored at every multiply-add).
        match (t.res.is_null(), t.relu) {
            (true, false) => store::<V, VB, RH, RW, false, false>(t, &acc),
            (true, true) => store::<V, VB, RH, RW, false, true>(t, &acc),
            (false, false) => store::<V, VB, RH, RW, true, false>(t, &acc),
            (false, true) => store::<V, VB, RH, RW, true, true>(t, &acc),
        }
    }
}

/// Stores a tile's accumulators with the residual (`RES`) and the ReLU (`RELU`); vectors past
/// `nvalid` get an empty mask and touch no memory.
///
/// # Safety
/// As [`tile`].
#[inline(always)]
#[allow(clippy::needless_range_loop)] // (row, column, vector) indices name the registers
unsafe fn store<
    V: Simd,
    const VB: usize,
    const RH: usize,
    const RW: usize,
    const RES: bool,
    const RELU: bool,
>(
    t: &Tile<'_>,
    acc: &[[[V; VB]; RW]; RH],
) {
    let lanes = V::LANES;
    // SAFETY: the caller guarantees the instructions and the pointers.
    unsafe {
        for j in 0..VB {
            let mask = V::mask(t.nvalid.saturating_sub(lanes * j).min(lanes));
            for r in 0..RH {
                for c in 0..RW {
                    let o = r as isize * t.out_row + (c * t.out_ps + lanes * j) as isize;
                    let mut v = acc[r][c][j];
                    if RES {
                        v = V::add(v, V::load_masked(mask, t.res.offset(o)));
                    }
                    if RELU {
                        v = V::relu(v);
                    }
                    V::store_masked(mask, t.out.offset(o), v);
                }
            }
        }
    }
}

/// [`tile`] on AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F; as [`tile`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512<const NV: usize, const RH: usize, const RW: usize, const PS: usize>(
    t: &Tile<'_>,
) {
    // SAFETY: forwarded.
    unsafe { tile::<Avx512, NV, RH, RW, PS>(t) }
}

/// [`tile`] on AVX2 (two vectors per block of 16 channels).
///
/// # Safety
/// The CPU must support AVX2 and FMA; as [`tile`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const VB: usize, const RH: usize, const RW: usize>(t: &Tile<'_>) {
    // SAFETY: forwarded.
    unsafe { tile::<Avx2, VB, RH, RW, 0>(t) }
}

/// [`tile`] on NEON (four vectors per block of 16 channels).
///
/// # Safety
/// As [`tile`].
#[cfg(target_arch = "aarch64")]
unsafe fn tile_neon<const VB: usize, const RH: usize, const RW: usize>(t: &Tile<'_>) {
    // SAFETY: forwarded.
    unsafe { tile::<Neon, VB, RH, RW, 0>(t) }
}

/// [`tile`] in plain floats, one pixel of `VB` channels at a time.
///
/// # Safety
/// As [`tile`].
unsafe fn tile_portable<const VB: usize>(t: &Tile<'_>) {
    // SAFETY: forwarded.
    unsafe { tile::<f32, VB, 1, 1, 0>(t) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape the planner may choose for the narrow instruction sets has its kernel.
    #[test]
    fn every_narrow_shape_has_a_kernel() {
        for isa in Isa::available_all() {
            if matches!(isa, Isa::Avx2 | Isa::Neon) {
                for (rh, rw) in NARROW_SHAPES {
                    select(isa, 1, rh, rw, 0);
                }
            }
        }
    }
}
