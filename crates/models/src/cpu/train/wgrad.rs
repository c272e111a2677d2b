//! The weight gradient of a convolution (or a linear layer) as a reduction over pixels:
//! `dW[row][co] += sum_p x[p + offset(row)] * dy[p][co]`, where a row is one (tap, input
//! channel) pair of the kernel and `p` runs over the output pixels of every image.
//!
//! It is the forward kernel's outer product with the roles turned: a register tile holds
//! `RC` rows by `NV` vectors of 16 output channels; per pixel the tile loads `NV` vectors of
//! the output gradient (contiguous in NHWC) and broadcasts `RC` input values, fused into
//! `RC * NV` multiply-adds. The tile stays in registers over all pixels of an image, so memory
//! sees one load and one store of it per image.
//!
//! The gradient is accumulated in a kernel-friendly layout, `[row][cout rounded up to 16]`,
//! and converted to PyTorch's `[cout, cin, k, k]` at the end ([`WgradPlan::add_to`]). Each
//! tile of the result is owned by one task that sums over the images in their order, so the
//! result does not depend on how tasks are spread over threads.

use super::super::conv::ConvGeom;
use super::super::isa::Isa;
#[cfg(target_arch = "aarch64")]
use super::super::simd::Neon;
use super::super::simd::Simd;
#[cfg(target_arch = "x86_64")]
use super::super::simd::{Avx2, Avx512};

/// One sweep of the reduction: the output pixels of one image (or the rows of a batch).
#[derive(Clone, Copy)]
pub(crate) struct Sweep {
    /// Input at the first output pixel's receptive field origin (tap (0, 0), channel 0).
    pub x: *const f32,
    /// Floats between the inputs of consecutive output rows.
    pub x_row: isize,
    /// Floats between the inputs of consecutive output pixels of a row.
    pub x_ps: usize,
    /// Output gradient at the first output pixel, channel 0.
    pub dy: *const f32,
    /// Floats between consecutive output rows of the gradient.
    pub dy_row: isize,
    /// Floats between consecutive output pixels of the gradient.
    pub dy_ps: usize,
    /// Output rows and pixels per row.
    pub rows: usize,
    pub cols: usize,
}

impl Sweep {
    /// The sweep in consecutive pieces of about `pixels` pixels (whole rows, or runs within a
    /// row when a row is longer), in pixel order.
    pub(crate) fn pieces(self, pixels: usize) -> impl Iterator<Item = Sweep> {
        let pixels = pixels.max(1);
        let (row_step, col_step) = if self.cols >= pixels {
            (1, pixels)
        } else {
            (pixels / self.cols, self.cols)
        };
        (0..self.rows).step_by(row_step).flat_map(move |r0| {
            (0..self.cols).step_by(col_step).map(move |c0| {
                let rows = row_step.min(self.rows - r0);
                let cols = col_step.min(self.cols - c0);
                // SAFETY (both): a piece starts at a pixel of the sweep.
                Sweep {
                    x: unsafe { self.x.offset(r0 as isize * self.x_row).add(c0 * self.x_ps) },
                    dy: unsafe {
                        self.dy
                            .offset(r0 as isize * self.dy_row)
                            .add(c0 * self.dy_ps)
                    },
                    rows,
                    cols,
                    ..self
                }
            })
        })
    }
}

/// Pixels per piece of a sweep: the gradient and input of a piece stay in L1 while every tile
/// of a thread runs over it.
pub(crate) const PIECE_PIXELS: usize = 64;

type TaskFn = unsafe fn(&WgradPlan, std::ops::Range<usize>, &Sweep, *mut f32, bool);

/// How one layer's weight gradient runs: rows, tile shape, the kernel chosen.
#[derive(Clone)]
pub(crate) struct WgradPlan {
    /// Rows of the result (`taps * cin`).
    depth: usize,
    /// Output channels, and rounded up to whole vectors.
    cout: usize,
    coutp: usize,
    /// Vectors of 16 output channels per tile, rows per tile.
    nv: usize,
    rc: usize,
    /// The tiles hold vectors of 16 rows and broadcast the output gradient instead (for few
    /// output channels, where broadcasting the input would take a load per multiply-add);
    /// the accumulator is then `[cout][rows]`.
    by_rows: bool,
    /// Input offset of each row in floats (`tap offset + channel`), padded with zeros to whole
    /// row tiles.
    offsets: Vec<isize>,
    /// The instruction set, and its tile for this shape.
    isa: Isa,
    kernel: TaskFn,
    /// Kernel size and input channels, for the conversion to PyTorch's layout.
    taps: usize,
    cin: usize,
}

impl std::fmt::Debug for WgradPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgradPlan")
            .field("rows", &self.depth)
            .field("cout", &self.cout)
            .field("tile", &(self.rc, 16 * self.nv))
            .field("by_rows", &self.by_rows)
            .field("isa", &self.isa)
            .finish()
    }
}

impl WgradPlan {
    /// The weight gradient of a convolution of `geom` over padded NHWC activations.
    pub(crate) fn conv(geom: &ConvGeom, isa: Isa) -> Self {
        let wp = (geom.w + 2) as isize;
        let cin = geom.cin as isize;
        let offsets = (0..geom.kernel as isize)
            .flat_map(|ky| {
                (0..geom.kernel as isize)
                    .flat_map(move |kx| (0..cin).map(move |ci| (ky * wp + kx) * cin + ci))
            })
            .collect();
        Self::new(offsets, geom.cout, geom.kernel * geom.kernel, geom.cin, isa)
    }

    /// The weight gradient of a linear layer `input -> output` over rows of a batch.
    pub(crate) fn dense(input: usize, output: usize, isa: Isa) -> Self {
        Self::new((0..input as isize).collect(), output, 1, input, isa)
    }

    fn new(mut offsets: Vec<isize>, cout: usize, taps: usize, cin: usize, isa: Isa) -> Self {
        let depth = offsets.len();
        let vectors = cout.div_ceil(16);
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512
            && vectors == 1
            && cout.is_multiple_of(ROWS_RC)
            && cin.is_multiple_of(16)
        {
            offsets.resize(depth.div_ceil(16 * ROWS_NQ) * 16 * ROWS_NQ, 0);
            return Self {
                depth,
                cout,
                coutp: 16,
                nv: ROWS_NQ,
                rc: ROWS_RC,
                by_rows: true,
                offsets,
                isa,
                kernel: tile_rows_avx512::<ROWS_NQ, ROWS_RC>,
                taps,
                cin,
            };
        }
        let widest = if vectors.is_multiple_of(4) {
            4
        } else if vectors.is_multiple_of(3) {
            3
        } else if vectors.is_multiple_of(2) {
            2
        } else {
            1
        };
        // Wider tiles need fewer broadcasts per multiply-add: 24-28 accumulators of AVX-512's
        // 32 registers, 12 of AVX2's 16 and 24 of NEON's 32 (one block of 16 channels by 6
        // rows); the portable loop keeps one row.
        let (nv, rc) = match isa {
            Isa::Avx512 => (widest, 24 / widest),
            Isa::Avx2 | Isa::Neon => (1, 6),
            Isa::Portable => (widest, 1),
        };
        offsets.resize(depth.div_ceil(rc) * rc, 0);
        Self {
            depth,
            cout,
            coutp: vectors * 16,
            nv,
            rc,
            by_rows: false,
            offsets,
            isa,
            kernel: select(isa, nv, rc),
            taps,
            cin,
        }
    }

    /// Floats of the accumulated gradient (`[rows rounded up to tiles][cout rounded up]`).
    pub(crate) fn acc_len(&self) -> usize {
        if self.by_rows {
            self.offsets.len() * self.cout
        } else {
            self.offsets.len() * self.coutp
        }
    }

    /// Number of independent tasks (tiles of the result).
    pub(crate) fn tasks(&self) -> usize {
        let (tiles, blocks) = self.tiles_and_blocks();
        tiles * blocks
    }

    /// Row tiles and output-channel blocks.
    fn tiles_and_blocks(&self) -> (usize, usize) {
        if self.by_rows {
            (self.offsets.len() / (16 * self.nv), self.cout / self.rc)
        } else {
            (self.offsets.len() / self.rc, self.coutp / (16 * self.nv))
        }
    }

    /// Adds sweep `s` into the tiles of `acc` of the tasks `tasks` (`first`: the tiles start
    /// at zero).
    ///
    /// # Safety
    /// `acc` must hold [`WgradPlan::acc_len`] floats; every row offset of every pixel of the
    /// sweep must lie inside the input, and every pixel's first `cout` gradient floats inside
    /// the gradient.
    pub(crate) unsafe fn run(
        &self,
        tasks: std::ops::Range<usize>,
        s: &Sweep,
        acc: *mut f32,
        first: bool,
    ) {
        // SAFETY: forwarded.
        unsafe { (self.kernel)(self, tasks, s, acc, first) }
    }

    /// The (row tile, output-channel block) of a task.
    fn task(&self, task: usize) -> (usize, usize) {
        let (_, blocks) = self.tiles_and_blocks();
        (task / blocks, task % blocks)
    }

    /// Where row `row`, output channel `co` of the result lies in the accumulator.
    pub(crate) fn index(&self, row: usize, co: usize) -> usize {
        if self.by_rows {
            co * self.offsets.len() + row
        } else {
            row * self.coutp + co
        }
    }

    /// Output channels rounded up to whole vectors (the row length of a gradient pixel the
    /// tiles may read).
    pub(crate) fn cout_padded(&self) -> usize {
        self.coutp
    }

    /// Adds the accumulated gradient to `grad` in PyTorch's `[cout, cin, k, k]` layout (or
    /// `[output, input]` for a linear layer).
    pub(crate) fn add_to(&self, acc: &[f32], grad: &mut [f32]) {
        assert_eq!(grad.len(), self.cout * self.depth, "weight gradient size");
        let at = |row: usize, co: usize| self.index(row, co);
        for co in 0..self.cout {
            for ci in 0..self.cin {
                let dst = &mut grad[(co * self.cin + ci) * self.taps..][..self.taps];
                for (tap, d) in dst.iter_mut().enumerate() {
                    *d += acc[at(tap * self.cin + ci, co)];
                }
            }
        }
    }
}

/// The transposed tile (AVX-512 only): vectors of 16 rows, output channels broadcast.
#[cfg(target_arch = "x86_64")]
const ROWS_NQ: usize = 3;
#[cfg(target_arch = "x86_64")]
const ROWS_RC: usize = 8;

/// The tile of `nv` blocks of 16 output channels by `rc` rows on `isa`.
fn select(isa: Isa, nv: usize, rc: usize) -> TaskFn {
    match (isa, nv, rc) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 4, 6) => tile_avx512::<4, 6>,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 3, 8) => tile_avx512::<3, 8>,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 2, 12) => tile_avx512::<2, 12>,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, 1, 24) => tile_avx512::<1, 24>,
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, 1, 6) => tile_avx2::<6>,
        #[cfg(target_arch = "aarch64")]
        (Isa::Neon, 1, 6) => tile_neon::<6>,
        (Isa::Portable, 1, 1) => tile_portable::<16>,
        (Isa::Portable, 2, 1) => tile_portable::<32>,
        (Isa::Portable, 3, 1) => tile_portable::<48>,
        (Isa::Portable, 4, 1) => tile_portable::<64>,
        _ => unreachable!("a planned tile shape"),
    }
}

/// The tiles of the tasks `tasks`, `RC` rows by `VB` vectors each, over one sweep.
///
/// # Safety
/// The CPU must run `V`'s instructions; as [`WgradPlan::run`].
#[inline(always)]
unsafe fn tiles<V: Simd, const VB: usize, const RC: usize>(
    plan: &WgradPlan,
    tasks: std::ops::Range<usize>,
    s: &Sweep,
    acc: *mut f32,
    first: bool,
) {
    for (tile, block) in tasks.map(|t| plan.task(t)) {
        // SAFETY: forwarded.
        unsafe { one::<V, VB, RC>(plan, tile, block, s, acc, first) };
    }
}

/// [`tiles`] on AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F; as [`WgradPlan::run`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512<const NV: usize, const RC: usize>(
    plan: &WgradPlan,
    tasks: std::ops::Range<usize>,
    s: &Sweep,
    acc: *mut f32,
    first: bool,
) {
    // SAFETY: forwarded.
    unsafe { tiles::<Avx512, NV, RC>(plan, tasks, s, acc, first) }
}

/// [`tiles`] on AVX2, one block of 16 channels (two vectors) wide.
///
/// # Safety
/// The CPU must support AVX2 and FMA; as [`WgradPlan::run`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const RC: usize>(
    plan: &WgradPlan,
    tasks: std::ops::Range<usize>,
    s: &Sweep,
    acc: *mut f32,
    first: bool,
) {
    // SAFETY: forwarded.
    unsafe { tiles::<Avx2, 2, RC>(plan, tasks, s, acc, first) }
}

/// [`tiles`] on NEON, one block of 16 channels (four vectors) wide.
///
/// # Safety
/// As [`WgradPlan::run`].
#[cfg(target_arch = "aarch64")]
unsafe fn tile_neon<const RC: usize>(
    plan: &WgradPlan,
    tasks: std::ops::Range<usize>,
    s: &Sweep,
    acc: *mut f32,
    first: bool,
) {
    // SAFETY: forwarded.
    unsafe { tiles::<Neon, 4, RC>(plan, tasks, s, acc, first) }
}

/// [`tiles`] in plain floats, one row of `VB` channels at a time.
///
/// # Safety
/// As [`WgradPlan::run`].
unsafe fn tile_portable<const VB: usize>(
    plan: &WgradPlan,
    tasks: std::ops::Range<usize>,
    s: &Sweep,
    acc: *mut f32,
    first: bool,
) {
    // SAFETY: forwarded.
    unsafe { tiles::<f32, VB, 1>(plan, tasks, s, acc, first) }
}

/// Transposed tiles (`NQ` vectors of 16 rows by `RC` output channels), one per task.
///
/// # Safety
/// The CPU must support AVX-512F; as [`WgradPlan::run`], and the plan's rows of a vector
/// must be contiguous in the input (whole 16-channel runs of one tap).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_rows_avx512<const NQ: usize, const RC: usize>(
    plan: &WgradPlan,
    tasks: std::ops::Range<usize>,
    s: &Sweep,
    acc: *mut f32,
    first: bool,
) {
    for (tile, block) in tasks.map(|t| plan.task(t)) {
        // SAFETY: forwarded.
        unsafe { one_rows::<Avx512, NQ, RC>(plan, tile, block, s, acc, first) };
    }
}

/// One transposed tile over one sweep: `NQ` vectors of `V::LANES` rows.
///
/// # Safety
/// As [`tile_rows_avx512`], with `V`'s instructions.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // (channel, vector) indices name the registers
#[cfg(target_arch = "x86_64")]
unsafe fn one_rows<V: Simd, const NQ: usize, const RC: usize>(
    plan: &WgradPlan,
    tile: usize,
    block: usize,
    s: &Sweep,
    acc: *mut f32,
    first: bool,
) {
    let rows = plan.offsets.len();
    let lanes = V::LANES;
    let offs: [isize; NQ] = std::array::from_fn(|q| plan.offsets[(tile * NQ + q) * lanes]);
    let co0 = block * RC;
    // SAFETY: the caller guarantees the sweep's pixels (each vector of rows inside the
    // input) and the accumulator; the block's channels are below `cout`.
    unsafe {
        let mut sums = [[V::zero(); NQ]; RC];
        let dst = acc.add(co0 * rows + tile * NQ * lanes);
        if !first {
            for j in 0..RC {
                for q in 0..NQ {
                    sums[j][q] = V::load(dst.add(j * rows + lanes * q));
                }
            }
        }
        for oy in 0..s.rows {
            let xr = s.x.offset(oy as isize * s.x_row);
            let dr = s.dy.offset(oy as isize * s.dy_row).add(co0);
            for ox in 0..s.cols {
                let xp = xr.add(ox * s.x_ps);
                let dp = dr.add(ox * s.dy_ps);
                let mut xv = [V::zero(); NQ];
                for q in 0..NQ {
                    xv[q] = V::load(xp.offset(offs[q]));
                }
                for j in 0..RC {
                    let g = V::splat(*dp.add(j));
                    for q in 0..NQ {
                        sums[j][q] = V::mul_add(g, xv[q], sums[j][q]);
                    }
                }
            }
        }
        for j in 0..RC {
            for q in 0..NQ {
                V::store(dst.add(j * rows + lanes * q), sums[j][q]);
            }
        }
    }
}

/// One tile of `RC` rows by `VB` vectors (`16 * nv` output channels) over one sweep.
///
/// # Safety
/// As [`tiles`].
#[inline(always)]
#[allow(clippy::needless_range_loop)] // (row, vector) indices name the registers
unsafe fn one<V: Simd, const VB: usize, const RC: usize>(
    plan: &WgradPlan,
    tile: usize,
    block: usize,
    s: &Sweep,
    acc: *mut f32,
    first: bool,
) {
    let n = V::LANES;
    let width = VB * n;
    let lanes = plan.cout.saturating_sub(block * width).min(width);
    let full = lanes == width;
    let mut offs = [0isize; RC];
    offs.copy_from_slice(&plan.offsets[tile * RC..][..RC]);
    // SAFETY: the caller guarantees the instructions, the sweep's pixels and the accumulator;
    // masked lanes stay inside the gradient's channels.
    unsafe {
        let masks: [V::Mask; VB] =
            std::array::from_fn(|j| V::mask(lanes.saturating_sub(n * j).min(n)));
        let mut sums = [[V::zero(); VB]; RC];
        let dst = acc.add(tile * RC * plan.coutp + block * width);
        if !first {
            for r in 0..RC {
                for j in 0..VB {
                    sums[r][j] = V::load(dst.add(r * plan.coutp + n * j));
                }
            }
        }
        for oy in 0..s.rows {
            let xr = s.x.offset(oy as isize * s.x_row);
            let dr = s.dy.offset(oy as isize * s.dy_row).add(block * width);
            for ox in 0..s.cols {
                let xp = xr.add(ox * s.x_ps);
                let dp = dr.add(ox * s.dy_ps);
                let mut g = [V::zero(); VB];
                for j in 0..VB {
                    g[j] = if full {
                        V::load(dp.add(n * j))
                    } else {
                        V::load_masked(masks[j], dp.add(n * j))
                    };
                }
                for r in 0..RC {
                    let xv = V::splat(*xp.offset(offs[r]));
                    for j in 0..VB {
                        sums[r][j] = V::mul_add(xv, g[j], sums[r][j]);
                    }
                }
            }
        }
        for r in 0..RC {
            for j in 0..VB {
                V::store(dst.add(r * plan.coutp + n * j), sums[r][j]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dW[co][ci][ky][kx] = sum dy[oy][ox][co] * x[oy*s + ky - p][ox*s + kx - p][ci]` over
    /// unpadded NHWC arrays, in f64.
    fn naive(g: &ConvGeom, x: &[f32], dy: &[f32]) -> Vec<f64> {
        let k = g.kernel;
        let mut dw = vec![0.0f64; g.cout * g.cin * k * k];
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                for ky in 0..k {
                    for kx in 0..k {
                        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                        let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                        if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                            continue;
                        }
                        for co in 0..g.cout {
                            for ci in 0..g.cin {
                                dw[((co * g.cin + ci) * k + ky) * k + kx] +=
                                    dy[(oy * g.wo + ox) * g.cout + co] as f64
                                        * x[(iy as usize * g.w + ix as usize) * g.cin + ci] as f64;
                            }
                        }
                    }
                }
            }
        }
        dw
    }

    fn pad(v: &[f32], h: usize, w: usize, c: usize) -> Vec<f32> {
        let mut out = vec![0.0; (h + 2) * (w + 2) * c];
        for y in 0..h {
            for x in 0..w {
                out[((y + 1) * (w + 2) + x + 1) * c..][..c]
                    .copy_from_slice(&v[(y * w + x) * c..][..c]);
            }
        }
        out
    }

    #[test]
    fn matches_a_naive_sum() {
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) as f32
        };
        for (cin, cout, kernel, stride, h) in [
            (3, 16, 3, 1, 8),
            (16, 16, 3, 1, 8),
            (16, 32, 3, 2, 8),
            (8, 16, 1, 2, 8),
            (5, 10, 3, 1, 6),
            (32, 64, 3, 1, 4),
            (16, 48, 3, 1, 4),
            (100, 16, 1, 1, 4),
            (16, 100, 1, 1, 4),
            (52, 16, 1, 1, 8),
            (32, 16, 3, 2, 8),
            (16, 8, 1, 1, 4),
        ] {
            let pad = kernel / 2;
            let ho = (h + 2 * pad - kernel) / stride + 1;
            let g = ConvGeom {
                cin,
                cout,
                kernel,
                stride,
                pad,
                h,
                w: h,
                ho,
                wo: ho,
            };
            let x: Vec<f32> = (0..h * h * cin).map(|_| next()).collect();
            let dy: Vec<f32> = (0..ho * ho * cout).map(|_| next()).collect();
            let (xp, dyp) = (pad_fn(&x, h, cin), pad_fn(&dy, ho, cout));
            fn pad_fn(v: &[f32], s: usize, c: usize) -> Vec<f32> {
                super::tests::pad(v, s, s, c)
            }
            let expect = naive(&g, &x, &dy);
            for isa in Isa::available_all() {
                let plan = WgradPlan::conv(&g, isa);
                let mut acc = vec![f32::NAN; plan.acc_len()];
                let origin = 1 - pad;
                let wp = h + 2;
                let s = Sweep {
                    x: xp[(origin * wp + origin) * cin..].as_ptr(),
                    x_row: (stride * wp * cin) as isize,
                    x_ps: stride * cin,
                    dy: dyp[(ho + 3) * cout..].as_ptr(),
                    dy_row: ((ho + 2) * cout) as isize,
                    dy_ps: cout,
                    rows: ho,
                    cols: ho,
                };
                // SAFETY: the sweep covers the padded test arrays.
                unsafe { plan.run(0..plan.tasks(), &s, acc.as_mut_ptr(), true) };
                let mut got = vec![0.0f32; expect.len()];
                plan.add_to(&acc, &mut got);
                for (i, (a, b)) in got.iter().zip(&expect).enumerate() {
                    assert!(
                        (*a as f64 - b).abs() < 1e-4,
                        "{g:?} {isa}: element {i}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
