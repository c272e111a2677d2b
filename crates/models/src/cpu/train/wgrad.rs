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
    /// The AVX-512 tile (None: the portable one).
    fast: Option<TaskFn>,
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
            .field("avx512", &self.fast.is_some())
            .finish()
    }
}

impl WgradPlan {
    /// The weight gradient of a convolution of `geom` over padded NHWC activations.
    pub(crate) fn conv(geom: &ConvGeom, avx512: bool) -> Self {
        let wp = (geom.w + 2) as isize;
        let cin = geom.cin as isize;
        let offsets = (0..geom.kernel as isize)
            .flat_map(|ky| {
                (0..geom.kernel as isize)
                    .flat_map(move |kx| (0..cin).map(move |ci| (ky * wp + kx) * cin + ci))
            })
            .collect();
        Self::new(
            offsets,
            geom.cout,
            geom.kernel * geom.kernel,
            geom.cin,
            avx512,
        )
    }

    /// The weight gradient of a linear layer `input -> output` over rows of a batch.
    pub(crate) fn dense(input: usize, output: usize, avx512: bool) -> Self {
        Self::new((0..input as isize).collect(), output, 1, input, avx512)
    }

    fn new(mut offsets: Vec<isize>, cout: usize, taps: usize, cin: usize, avx512: bool) -> Self {
        let depth = offsets.len();
        let vectors = cout.div_ceil(16);
        let fast = avx512 && cfg!(target_arch = "x86_64");
        if fast && vectors == 1 && cout.is_multiple_of(ROWS_RC) && cin.is_multiple_of(16) {
            offsets.resize(depth.div_ceil(16 * ROWS_NQ) * 16 * ROWS_NQ, 0);
            return Self {
                depth,
                cout,
                coutp: 16,
                nv: ROWS_NQ,
                rc: ROWS_RC,
                by_rows: true,
                offsets,
                fast: select_rows(),
                taps,
                cin,
            };
        }
        // Wider tiles need fewer broadcasts per multiply-add; 24-28 accumulators of 32 registers.
        let (nv, rc) = if vectors.is_multiple_of(4) {
            (4, 6)
        } else if vectors.is_multiple_of(3) {
            (3, 8)
        } else if vectors.is_multiple_of(2) {
            (2, 12)
        } else {
            (1, 24)
        };
        offsets.resize(depth.div_ceil(rc) * rc, 0);
        let fast = if avx512 { select(nv, rc) } else { None };
        Self {
            depth,
            cout,
            coutp: vectors * 16,
            nv,
            rc,
            by_rows: false,
            offsets,
            fast,
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
        unsafe {
            match self.fast {
                Some(f) => f(self, tasks, s, acc, first),
                None => {
                    for task in tasks {
                        let (tile, block) = self.task(task);
                        portable(self, tile, block, s, acc, first);
                    }
                }
            }
        }
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

/// The portable tile: the same loop order, one row at a time.
///
/// # Safety
/// As [`WgradPlan::run`].
unsafe fn portable(
    plan: &WgradPlan,
    tile: usize,
    block: usize,
    s: &Sweep,
    acc: *mut f32,
    first: bool,
) {
    let width = 16 * plan.nv;
    let lanes = plan.cout.saturating_sub(block * width).min(width);
    let mut sums = [0.0f32; 64];
    for r in 0..plan.rc {
        let row = tile * plan.rc + r;
        let off = plan.offsets[row];
        // SAFETY: the caller guarantees the sweep's pixels and the accumulator.
        unsafe {
            let dst = acc.add(row * plan.coutp + block * width);
            let sums = &mut sums[..width];
            if first {
                sums.fill(0.0);
            } else {
                sums.copy_from_slice(std::slice::from_raw_parts(dst, width));
            }
            for oy in 0..s.rows {
                let xr = s.x.offset(oy as isize * s.x_row + off);
                let dr = s.dy.offset(oy as isize * s.dy_row).add(block * width);
                for ox in 0..s.cols {
                    let xv = *xr.add(ox * s.x_ps);
                    let d = std::slice::from_raw_parts(dr.add(ox * s.dy_ps), lanes);
                    for (a, g) in sums.iter_mut().zip(d) {
                        *a += xv * g;
                    }
                }
            }
            std::ptr::copy_nonoverlapping(sums.as_ptr(), dst, width);
        }
    }
}

/// The transposed tile: vectors of 16 rows, output channels broadcast.
const ROWS_NQ: usize = 3;
const ROWS_RC: usize = 8;

#[cfg(target_arch = "x86_64")]
fn select_rows() -> Option<TaskFn> {
    Some(avx512::tile_rows::<ROWS_NQ, ROWS_RC>)
}

#[cfg(not(target_arch = "x86_64"))]
fn select_rows() -> Option<TaskFn> {
    None
}

#[cfg(target_arch = "x86_64")]
fn select(nv: usize, rc: usize) -> Option<TaskFn> {
    use avx512::tile;
    Some(match (nv, rc) {
        (4, 6) => tile::<4, 6>,
        (3, 8) => tile::<3, 8>,
        (2, 12) => tile::<2, 12>,
        (1, 24) => tile::<1, 24>,
        _ => return None,
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn select(_nv: usize, _rc: usize) -> Option<TaskFn> {
    None
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Sweep, WgradPlan};
    use std::arch::x86_64::*;

    /// Tiles of `RC` rows by `NV` vectors over one sweep, one per task.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; as [`WgradPlan::run`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile<const NV: usize, const RC: usize>(
        plan: &WgradPlan,
        tasks: std::ops::Range<usize>,
        s: &Sweep,
        acc: *mut f32,
        first: bool,
    ) {
        for (tile, block) in tasks.map(|t| plan.task(t)) {
            // SAFETY: forwarded.
            unsafe { one::<NV, RC>(plan, tile, block, s, acc, first) };
        }
    }

    /// Transposed tiles (`NQ` vectors of 16 rows by `RC` output channels), one per task.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; as [`WgradPlan::run`], and the plan's rows of a vector
    /// must be contiguous in the input (whole 16-channel runs of one tap).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile_rows<const NQ: usize, const RC: usize>(
        plan: &WgradPlan,
        tasks: std::ops::Range<usize>,
        s: &Sweep,
        acc: *mut f32,
        first: bool,
    ) {
        for (tile, block) in tasks.map(|t| plan.task(t)) {
            // SAFETY: forwarded.
            unsafe { one_rows::<NQ, RC>(plan, tile, block, s, acc, first) };
        }
    }

    /// One transposed tile over one sweep.
    ///
    /// # Safety
    /// As [`tile_rows`].
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::needless_range_loop)] // (channel, vector) indices name the registers
    unsafe fn one_rows<const NQ: usize, const RC: usize>(
        plan: &WgradPlan,
        tile: usize,
        block: usize,
        s: &Sweep,
        acc: *mut f32,
        first: bool,
    ) {
        let rows = plan.offsets.len();
        let offs: [isize; NQ] = std::array::from_fn(|q| plan.offsets[(tile * NQ + q) * 16]);
        let co0 = block * RC;
        let mut sums = [[_mm512_setzero_ps(); NQ]; RC];
        // SAFETY: the caller guarantees the sweep's pixels (each vector of rows inside the
        // input) and the accumulator; the block's channels are below `cout`.
        unsafe {
            let dst = acc.add(co0 * rows + tile * NQ * 16);
            if !first {
                for j in 0..RC {
                    for q in 0..NQ {
                        sums[j][q] = _mm512_loadu_ps(dst.add(j * rows + 16 * q));
                    }
                }
            }
            for oy in 0..s.rows {
                let xr = s.x.offset(oy as isize * s.x_row);
                let dr = s.dy.offset(oy as isize * s.dy_row).add(co0);
                for ox in 0..s.cols {
                    let xp = xr.add(ox * s.x_ps);
                    let dp = dr.add(ox * s.dy_ps);
                    let mut xv = [_mm512_setzero_ps(); NQ];
                    for q in 0..NQ {
                        xv[q] = _mm512_loadu_ps(xp.offset(offs[q]));
                    }
                    for j in 0..RC {
                        let g = _mm512_set1_ps(*dp.add(j));
                        for q in 0..NQ {
                            sums[j][q] = _mm512_fmadd_ps(g, xv[q], sums[j][q]);
                        }
                    }
                }
            }
            for j in 0..RC {
                for q in 0..NQ {
                    _mm512_storeu_ps(dst.add(j * rows + 16 * q), sums[j][q]);
                }
            }
        }
    }

    /// One tile of `RC` rows by `NV` vectors over one sweep.
    ///
    /// # Safety
    /// As [`tile`].
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::needless_range_loop)] // (row, vector) indices name the registers
    unsafe fn one<const NV: usize, const RC: usize>(
        plan: &WgradPlan,
        tile: usize,
        block: usize,
        s: &Sweep,
        acc: *mut f32,
        first: bool,
    ) {
        let width = 16 * NV;
        let lanes = plan.cout.saturating_sub(block * width).min(width);
        let masks: [__mmask16; NV] = std::array::from_fn(|j| {
            let l = lanes.saturating_sub(16 * j).min(16);
            ((1u32 << l) - 1) as __mmask16
        });
        let full = lanes == width;
        let mut offs = [0isize; RC];
        offs.copy_from_slice(&plan.offsets[tile * RC..][..RC]);
        let mut sums = [[_mm512_setzero_ps(); NV]; RC];
        // SAFETY: the caller guarantees the sweep's pixels and the accumulator; masked lanes
        // stay inside the gradient's channels.
        unsafe {
            let dst = acc.add(tile * RC * plan.coutp + block * width);
            if !first {
                for r in 0..RC {
                    for j in 0..NV {
                        sums[r][j] = _mm512_loadu_ps(dst.add(r * plan.coutp + 16 * j));
                    }
                }
            }
            for oy in 0..s.rows {
                let xr = s.x.offset(oy as isize * s.x_row);
                let dr = s.dy.offset(oy as isize * s.dy_row).add(block * width);
                for ox in 0..s.cols {
                    let xp = xr.add(ox * s.x_ps);
                    let dp = dr.add(ox * s.dy_ps);
                    let mut g = [_mm512_setzero_ps(); NV];
                    for j in 0..NV {
                        g[j] = if full {
                            _mm512_loadu_ps(dp.add(16 * j))
                        } else {
                            _mm512_maskz_loadu_ps(masks[j], dp.add(16 * j))
                        };
                    }
                    for r in 0..RC {
                        let xv = _mm512_set1_ps(*xp.offset(offs[r]));
                        for j in 0..NV {
                            sums[r][j] = _mm512_fmadd_ps(xv, g[j], sums[r][j]);
                        }
                    }
                }
            }
            for r in 0..RC {
                for j in 0..NV {
                    _mm512_storeu_ps(dst.add(r * plan.coutp + 16 * j), sums[r][j]);
                }
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
            for avx512 in [false, true] {
                let plan = WgradPlan::conv(&g, avx512 && crate::cpu::avx512_available());
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
                        "{g:?} avx512 {avx512}: element {i}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
