//! 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray
//! 2016): each 2x2 block of outputs comes from a 4x4 block of inputs with 16 multiplies per
//! (input, output) channel pair instead of 36, so 2.25 times fewer multiply-adds than the
//! direct kernel.
//!
//! Per chunk of 2x2 output tiles (spanning the images of a group): the input tiles are
//! transformed (`V = B^T d B`, additions only), then for each of the 16 positions of the 4x4
//! transformed tile a matrix product `M[pos] = V[pos] U[pos]` over the channels runs on the
//! direct kernel's register-blocked tile (`U = G g G^T`, the transformed weights, packed per
//! point), then the outputs are transformed back (`Y = A^T M A`) with the bias, the residual
//! and the ReLU fused into the store. The transforms' coefficients are 0, +-1 and +-1/2, so
//! the rounding error stays at the level of the direct convolution's.

// The transforms index tiles by (row, column) as the formulas write them.
#![allow(clippy::needless_range_loop)]

use super::buffer::Aligned;
use super::conv::{ConvGeom, ConvPlan, zero_border};

/// Working memory of the transforms: `V` and `M` of one chunk.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    v: Aligned,
    m: Aligned,
}

impl Scratch {
    pub(crate) fn new(v: usize, m: usize) -> Self {
        Self {
            v: Aligned::zeros(v),
            m: Aligned::zeros(m),
        }
    }
}

/// The transformed weights of one convolution at one parameter point: 16 matrices
/// `[cin x cout]` packed for the kernel, and the bias.
#[derive(Clone, Debug, Default)]
pub(crate) struct PackedWinograd {
    u: Aligned,
    zero: Aligned,
    bias: Vec<f32>,
}

/// How one 3x3 stride-1 convolution runs by F(2x2, 3x3).
#[derive(Clone, Debug)]
pub(crate) struct WinogradPlan {
    pub geom: ConvGeom,
    /// The per-position product: `chunk` rows of `cin` by `[cin x cout]`.
    gemm: ConvPlan,
    /// Output tiles per chunk.
    chunk: usize,
    /// Whether the transforms use AVX-512.
    avx512: bool,
}

impl WinogradPlan {
    /// Whether F(2x2, 3x3) covers `geom`: 3x3, stride 1, padding 1, even sizes (whole 2x2
    /// output tiles whose 4x4 input tiles stay inside the zero border).
    pub(crate) fn covers(geom: &ConvGeom) -> bool {
        geom.kernel == 3
            && geom.stride == 1
            && geom.pad == 1
            && geom.h.is_multiple_of(2)
            && geom.w.is_multiple_of(2)
            && geom.h >= 2
            && geom.w >= 2
    }

    /// Plans `geom` (which [`WinogradPlan::covers`]).
    pub(crate) fn new(geom: ConvGeom, avx512: bool) -> Self {
        assert!(Self::covers(&geom), "F(2x2, 3x3) does not cover {geom:?}");
        // V and M of a chunk (16 positions each) in about 1 MiB, the core's L2.
        let floats_per_tile = 16 * (geom.cin + geom.cout_padded());
        let chunk = ((1 << 18) / floats_per_tile).clamp(16, 512) / 16 * 16;
        let gemm = ConvPlan::gemm(geom.cin, geom.cout, chunk, geom.cin, avx512);
        debug_assert!(gemm.tile_rows() <= chunk);
        Self {
            geom,
            gemm,
            chunk,
            avx512,
        }
    }

    /// Floats of scratch this plan needs: (V, M).
    pub(crate) fn scratch_len(&self) -> (usize, usize) {
        (
            16 * self.chunk * self.geom.cin,
            16 * self.chunk * self.geom.cout_padded(),
        )
    }

    /// Transforms and packs `weight` (`[cout, cin, 3, 3]`) and `bias` into `packed`.
    pub(crate) fn pack(&self, weight: &[f32], bias: Option<&[f32]>, packed: &mut PackedWinograd) {
        let g = &self.geom;
        let (cin, cout, coutp) = (g.cin, g.cout, g.cout_padded());
        assert_eq!(weight.len(), cout * cin * 9, "convolution weight size");
        let nr = self.gemm.block_width();
        let per_pos = coutp * cin;
        packed.u.resize(16 * per_pos);
        let u = packed.u.as_mut_slice();
        // One (block, input channel) at a time: its 16 transformed rows of `nr` output channels
        // are made in `tile`, then copied out whole. (Writing them straight into `u`, 16 rows
        // a power of two apart, thrashes the L1 set they all map to.)
        let mut tile = vec![0.0f32; 16 * nr];
        for block in 0..coutp / nr {
            for ci in 0..cin {
                tile.fill(0.0);
                for j in 0..nr.min(cout - block * nr) {
                    let co = block * nr + j;
                    let k = &weight[(co * cin + ci) * 9..][..9];
                    // G g: 4 rows of 3.
                    let mut gg = [[0.0f32; 3]; 4];
                    for c in 0..3 {
                        let (g0, g1, g2) = (k[c], k[3 + c], k[6 + c]);
                        gg[0][c] = g0;
                        gg[1][c] = 0.5 * (g0 + g1 + g2);
                        gg[2][c] = 0.5 * (g0 - g1 + g2);
                        gg[3][c] = g2;
                    }
                    for (r, q) in gg.iter().enumerate() {
                        let row_values = [
                            q[0],
                            0.5 * (q[0] + q[1] + q[2]),
                            0.5 * (q[0] - q[1] + q[2]),
                            q[2],
                        ];
                        for (c, v) in row_values.into_iter().enumerate() {
                            tile[(4 * r + c) * nr + j] = v;
                        }
                    }
                }
                let row = (block * cin + ci) * nr;
                for pos in 0..16 {
                    u[pos * per_pos + row..][..nr].copy_from_slice(&tile[pos * nr..][..nr]);
                }
            }
        }
        packed.zero.resize(coutp);
        packed.bias.clear();
        match bias {
            Some(b) => {
                assert_eq!(b.len(), cout, "convolution bias size");
                packed.bias.extend_from_slice(b);
            }
            None => packed.bias.resize(cout, 0.0),
        }
    }

    /// Runs the convolution on `n` images: `x(i)`, `y(i)`, `res(i)` the padded input, output
    /// and residual (null: none) of image `i`.
    ///
    /// # Safety
    /// As [`ConvPlan::run`] for every image; `scratch` must be at least
    /// [`WinogradPlan::scratch_len`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn run(
        &self,
        packed: &PackedWinograd,
        scratch: &mut Scratch,
        n: usize,
        x: impl Fn(usize) -> *const f32,
        y: impl Fn(usize) -> *mut f32,
        res: impl Fn(usize) -> *const f32,
        relu: bool,
    ) {
        let g = &self.geom;
        let (cin, cout, coutp) = (g.cin, g.cout, g.cout_padded());
        let tx_count = g.w / 2;
        let total = n * (g.h / 2) * tx_count;
        let (vs, ms) = (self.chunk * cin, self.chunk * coutp);
        let v = scratch.v.as_mut_slice().as_mut_ptr();
        let m = scratch.m.as_mut_slice().as_mut_ptr();
        // The tile after (image, tile row, tile column).
        let step = |(i, ty, tx): (usize, usize, usize)| {
            if tx + 1 < tx_count {
                (i, ty, tx + 1)
            } else if ty + 1 < g.h / 2 {
                (i, ty + 1, 0)
            } else {
                (i + 1, 0, 0)
            }
        };
        let mut first = (0, 0, 0);
        let mut start = 0;
        while start < total {
            let rows = self.chunk.min(total - start);
            // SAFETY: the tiles' 4x4 input windows lie inside the padded inputs (even sizes,
            // border 1), the scratch holds `chunk` rows per position, and every output
            // pixel written is inside its image.
            unsafe {
                let mut at = first;
                for t in 0..rows {
                    let (i, ty, tx) = at;
                    let src = x(i).add((2 * ty * (g.w + 2) + 2 * tx) * cin);
                    input_transform(self.avx512, src, (g.w + 2) * cin, cin, v.add(t * cin), vs);
                    at = step(at);
                }
                let u = packed.u.as_slice().as_ptr();
                let zero = packed.zero.as_slice().as_ptr();
                for pos in 0..16 {
                    self.gemm.run_gemm(
                        u.add(pos * coutp * cin),
                        zero,
                        v.add(pos * vs),
                        cin,
                        m.add(pos * ms),
                        coutp,
                        rows,
                        false,
                    );
                }
                let mut at = first;
                for t in 0..rows {
                    let (i, ty, tx) = at;
                    let o = ((2 * ty + 1) * (g.w + 2) + 2 * tx + 1) * cout;
                    let r = res(i);
                    output_transform(
                        self.avx512,
                        m.add(t * coutp),
                        ms,
                        &packed.bias,
                        y(i).add(o),
                        (g.w + 2) * cout,
                        cout,
                        if r.is_null() { r } else { r.add(o) },
                        relu,
                    );
                    at = step(at);
                }
                first = at;
            }
            start += rows;
        }
        for i in 0..n {
            // SAFETY: `y(i)` holds the padded output.
            unsafe { zero_border(y(i), g.h, g.w, cout) };
        }
    }
}

/// `V = B^T d B` for one 4x4 input tile, every channel: `src` the tile's top-left pixel, rows
/// `row` floats apart, pixels `c` apart; position `p` of channel `ch` goes to
/// `dst[p * pos_stride + ch]`.
///
/// # Safety
/// The tile and the 16 destination rows must be valid; `avx512` only where the CPU has it.
#[inline]
pub(crate) unsafe fn input_transform(
    avx512: bool,
    src: *const f32,
    row: usize,
    c: usize,
    dst: *mut f32,
    pos_stride: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        // SAFETY: the caller guarantees the CPU and the pointers.
        return unsafe { avx512::input_transform(src, row, c, dst, pos_stride) };
    }
    let _ = avx512;
    // SAFETY: as above.
    unsafe { input_transform_any(src, row, c, dst, pos_stride) }
}

#[inline(always)]
unsafe fn input_transform_any(src: *const f32, row: usize, c: usize, dst: *mut f32, ps: usize) {
    // SAFETY: the caller guarantees 4 rows of 4 pixels of `c` channels, and 16 rows of `c`.
    unsafe {
        let d = |i: usize, j: usize| std::slice::from_raw_parts(src.add(i * row + j * c), c);
        let out = |p: usize| std::slice::from_raw_parts_mut(dst.add(p * ps), c);
        let rows: [[&[f32]; 4]; 4] = [
            [d(0, 0), d(0, 1), d(0, 2), d(0, 3)],
            [d(1, 0), d(1, 1), d(1, 2), d(1, 3)],
            [d(2, 0), d(2, 1), d(2, 2), d(2, 3)],
            [d(3, 0), d(3, 1), d(3, 2), d(3, 3)],
        ];
        for ch in 0..c {
            let e = |i: usize, j: usize| rows[i][j][ch];
            // B^T d: combine rows.
            let mut t = [[0.0f32; 4]; 4];
            for j in 0..4 {
                t[0][j] = e(0, j) - e(2, j);
                t[1][j] = e(1, j) + e(2, j);
                t[2][j] = e(2, j) - e(1, j);
                t[3][j] = e(1, j) - e(3, j);
            }
            // (B^T d) B: combine columns.
            for (i, r) in t.iter().enumerate() {
                out(4 * i)[ch] = r[0] - r[2];
                out(4 * i + 1)[ch] = r[1] + r[2];
                out(4 * i + 2)[ch] = r[2] - r[1];
                out(4 * i + 3)[ch] = r[1] - r[3];
            }
        }
    }
}

/// `Y = A^T M A` for one tile, every channel, plus bias and residual, ReLU; `m` position `p`
/// of channel `ch` at `m[p * pos_stride + ch]`; the 2x2 outputs at `y`, rows `row` floats
/// apart, pixels `c` apart (`res` likewise, or null).
///
/// # Safety
/// The 16 source rows, the output tile and the residual tile must be valid; `avx512` only
/// where the CPU has it.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn output_transform(
    avx512: bool,
    m: *const f32,
    pos_stride: usize,
    bias: &[f32],
    y: *mut f32,
    row: usize,
    c: usize,
    res: *const f32,
    relu: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        // SAFETY: the caller guarantees the CPU and the pointers.
        return unsafe { avx512::output_transform(m, pos_stride, bias, y, row, c, res, relu) };
    }
    let _ = avx512;
    // SAFETY: as above.
    unsafe { output_transform_any(m, pos_stride, bias, y, row, c, res, relu) }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn output_transform_any(
    m: *const f32,
    pos_stride: usize,
    bias: &[f32],
    y: *mut f32,
    row: usize,
    c: usize,
    res: *const f32,
    relu: bool,
) {
    // SAFETY: the caller guarantees the 16 rows of `c`, and the 2x2 output (and residual)
    // pixels.
    unsafe {
        let mm: [&[f32]; 16] =
            std::array::from_fn(|p| std::slice::from_raw_parts(m.add(p * pos_stride), c));
        let outs: [&mut [f32]; 4] = [
            std::slice::from_raw_parts_mut(y, c),
            std::slice::from_raw_parts_mut(y.add(c), c),
            std::slice::from_raw_parts_mut(y.add(row), c),
            std::slice::from_raw_parts_mut(y.add(row + c), c),
        ];
        let zeros = [0.0f32; 0];
        let rs: [&[f32]; 4] = if res.is_null() {
            [&zeros; 4]
        } else {
            [
                std::slice::from_raw_parts(res, c),
                std::slice::from_raw_parts(res.add(c), c),
                std::slice::from_raw_parts(res.add(row), c),
                std::slice::from_raw_parts(res.add(row + c), c),
            ]
        };
        let [o00, o01, o10, o11] = outs;
        for ch in 0..c {
            let e = |p: usize| mm[p][ch];
            // A^T M: two rows of 4.
            let mut s = [[0.0f32; 4]; 2];
            for j in 0..4 {
                s[0][j] = e(j) + e(4 + j) + e(8 + j);
                s[1][j] = e(4 + j) - e(8 + j) - e(12 + j);
            }
            let b = bias[ch];
            let mut out = [
                s[0][0] + s[0][1] + s[0][2] + b,
                s[0][1] - s[0][2] - s[0][3] + b,
                s[1][0] + s[1][1] + s[1][2] + b,
                s[1][1] - s[1][2] - s[1][3] + b,
            ];
            if !res.is_null() {
                for (o, r) in out.iter_mut().zip(&rs) {
                    *o += r[ch];
                }
            }
            if relu {
                for o in out.iter_mut() {
                    // Keeps a NaN, like PyTorch's relu.
                    *o = if *o < 0.0 { 0.0 } else { *o };
                }
            }
            o00[ch] = out[0];
            o01[ch] = out[1];
            o10[ch] = out[2];
            o11[ch] = out[3];
        }
    }
}

/// The transforms 16 channels at a time.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    fn mask(lanes: usize) -> __mmask16 {
        if lanes >= 16 {
            0xFFFF
        } else {
            ((1u32 << lanes) - 1) as __mmask16
        }
    }

    /// See `super::input_transform`.
    ///
    /// # Safety
    /// As `super::input_transform`, on a CPU with AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn input_transform(
        src: *const f32,
        row: usize,
        c: usize,
        dst: *mut f32,
        ps: usize,
    ) {
        let mut ch = 0;
        while ch < c {
            let k = mask(c - ch);
            // SAFETY: masked lanes stay inside the tile's channels.
            unsafe {
                let mut t = [[_mm512_setzero_ps(); 4]; 4];
                for j in 0..4 {
                    let p = src.add(j * c + ch);
                    let d0 = _mm512_maskz_loadu_ps(k, p);
                    let d1 = _mm512_maskz_loadu_ps(k, p.add(row));
                    let d2 = _mm512_maskz_loadu_ps(k, p.add(2 * row));
                    let d3 = _mm512_maskz_loadu_ps(k, p.add(3 * row));
                    t[0][j] = _mm512_sub_ps(d0, d2);
                    t[1][j] = _mm512_add_ps(d1, d2);
                    t[2][j] = _mm512_sub_ps(d2, d1);
                    t[3][j] = _mm512_sub_ps(d1, d3);
                }
                for (i, r) in t.iter().enumerate() {
                    let o = dst.add(4 * i * ps + ch);
                    _mm512_mask_storeu_ps(o, k, _mm512_sub_ps(r[0], r[2]));
                    _mm512_mask_storeu_ps(o.add(ps), k, _mm512_add_ps(r[1], r[2]));
                    _mm512_mask_storeu_ps(o.add(2 * ps), k, _mm512_sub_ps(r[2], r[1]));
                    _mm512_mask_storeu_ps(o.add(3 * ps), k, _mm512_sub_ps(r[1], r[3]));
                }
            }
            ch += 16;
        }
    }

    /// See `super::output_transform`.
    ///
    /// # Safety
    /// As `super::output_transform`, on a CPU with AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn output_transform(
        m: *const f32,
        ps: usize,
        bias: &[f32],
        y: *mut f32,
        row: usize,
        c: usize,
        res: *const f32,
        relu: bool,
    ) {
        let zero = _mm512_setzero_ps();
        let mut ch = 0;
        while ch < c {
            let k = mask(c - ch);
            // SAFETY: masked lanes stay inside the channels of the tile, the bias and the
            // residual.
            unsafe {
                let mut s0 = [zero; 4];
                let mut s1 = [zero; 4];
                for j in 0..4 {
                    let p = m.add(j * ps + ch);
                    let m0 = _mm512_maskz_loadu_ps(k, p);
                    let m1 = _mm512_maskz_loadu_ps(k, p.add(4 * ps));
                    let m2 = _mm512_maskz_loadu_ps(k, p.add(8 * ps));
                    let m3 = _mm512_maskz_loadu_ps(k, p.add(12 * ps));
                    s0[j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                    s1[j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
                }
                let b = _mm512_maskz_loadu_ps(k, bias.as_ptr().add(ch));
                let out = [
                    _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]), b),
                    _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]), b),
                    _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]), b),
                    _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]), b),
                ];
                let offsets = [0, c, row, row + c];
                for (v, off) in out.into_iter().zip(offsets) {
                    let mut v = v;
                    if !res.is_null() {
                        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, res.add(off + ch)));
                    }
                    if relu {
                        // max(0, v) keeps a NaN, like PyTorch's relu.
                        v = _mm512_max_ps(zero, v);
                    }
                    _mm512_mask_storeu_ps(y.add(off + ch), k, v);
                }
            }
            ch += 16;
        }
    }
}
