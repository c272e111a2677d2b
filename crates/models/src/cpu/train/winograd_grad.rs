//! The weight gradient of a 3x3 stride-1 convolution by Winograd's F(2x2, 3x3), the forward
//! pass's transform run backwards (Lavin and Gray 2016).
//!
//! The forward pass computes each 2x2 output tile as `Y = A^T [sum_ci (G g G^T) . (B^T d B)] A`.
//! So the gradient of the transformed weights `U = G g G^T` at each of the 16 positions of the
//! 4x4 tile is a reduction over tiles, `dU[pos][ci][co] = sum_t V[t][pos][ci] dM[t][pos][co]`
//! with `V = B^T d B` (the forward input transform) and `dM = A dY A^T` (the output gradient
//! spread back over the tile), and the weight gradient is `dg = G^T dU G`. Per tile that is
//! 16 multiply-adds per channel pair instead of the direct reduction's 36, and each of the 16
//! reductions runs on the direct weight-gradient kernel with tiles for pixels.

use super::super::buffer::Aligned;
use super::super::conv::ConvGeom;
use super::super::winograd::input_transform;
use super::wgrad::{Sweep, WgradPlan};

/// How one convolution's weight gradient runs by F(2x2, 3x3).
#[derive(Clone, Debug)]
pub(crate) struct WinogradGrad {
    geom: ConvGeom,
    /// The per-position reduction: rows are input channels, "pixels" are tiles.
    reduction: WgradPlan,
    /// Tiles transformed at a time.
    chunk: usize,
    avx512: bool,
}

/// Working memory of one image's transforms: `V` and `dM` of a chunk of tiles.
#[derive(Debug, Default)]
pub(crate) struct GradScratch {
    v: Aligned,
    m: Aligned,
}

impl WinogradGrad {
    /// Plans `geom` (3x3, stride 1, padding 1, even sizes: what
    /// [`super::super::winograd::WinogradPlan::covers`] covers).
    pub(crate) fn new(geom: ConvGeom, avx512: bool) -> Self {
        let reduction = WgradPlan::dense(geom.cin, geom.cout, avx512);
        // V and dM of a chunk (16 positions each) in about 1 MiB, the core's L2.
        let floats_per_tile = 16 * (geom.cin + reduction.cout_padded());
        let chunk = ((1 << 18) / floats_per_tile).clamp(16, 512);
        Self {
            geom,
            reduction,
            chunk,
            avx512,
        }
    }

    /// Floats of one chunk's partial (16 reductions).
    pub(crate) fn acc_len(&self) -> usize {
        16 * self.reduction.acc_len()
    }

    /// Floats of scratch (V, dM) an image needs.
    pub(crate) fn scratch_len(&self) -> (usize, usize) {
        (
            16 * self.chunk * self.geom.cin,
            16 * self.chunk * self.reduction.cout_padded(),
        )
    }

    /// Adds the gradients `dy(i)` (padded output gradients) times the inputs `x(i)` (padded
    /// inputs) of `n` images to the 16 reductions in `acc` (`first`: they start at zero); the
    /// tiles of all the images are reduced together, a chunk at a time.
    ///
    /// # Safety
    /// `x(i)` and `dy(i)` must hold one padded image of the planned geometry, `acc`
    /// [`WinogradGrad::acc_len`] floats.
    pub(crate) unsafe fn run(
        &self,
        n: usize,
        x: impl Fn(usize) -> *const f32,
        dy: impl Fn(usize) -> *const f32,
        acc: *mut f32,
        first: bool,
        scratch: &mut GradScratch,
    ) {
        let g = &self.geom;
        let (cin, cout) = (g.cin, g.cout);
        let coutp = self.reduction.cout_padded();
        let (tx_count, per_image) = (g.w / 2, (g.h / 2) * (g.w / 2));
        let total = n * per_image;
        let (vs, ms) = (self.chunk * cin, self.chunk * coutp);
        let (vlen, mlen) = self.scratch_len();
        if scratch.v.as_slice().len() < vlen {
            scratch.v = Aligned::zeros(vlen);
        }
        if scratch.m.as_slice().len() < mlen {
            scratch.m = Aligned::zeros(mlen);
        }
        let v = scratch.v.as_mut_slice().as_mut_ptr();
        let m = scratch.m.as_mut_slice().as_mut_ptr();
        let per_pos = self.reduction.acc_len();
        let mut start = 0;
        while start < total {
            let rows = self.chunk.min(total - start);
            // SAFETY: each tile's 4x4 input window and 2x2 output lie inside the padded
            // images (even sizes, border 1); the scratch holds `chunk` tiles per position.
            unsafe {
                for t in 0..rows {
                    let (image, tile) = ((start + t) / per_image, (start + t) % per_image);
                    let (ty, tx) = (tile / tx_count, tile % tx_count);
                    let src = x(image).add((2 * ty * (g.w + 2) + 2 * tx) * cin);
                    input_transform(self.avx512, src, (g.w + 2) * cin, cin, v.add(t * cin), vs);
                    let out = dy(image).add(((2 * ty + 1) * (g.w + 2) + 2 * tx + 1) * cout);
                    spread(
                        self.avx512,
                        out,
                        (g.w + 2) * cout,
                        cout,
                        m.add(t * coutp),
                        ms,
                    );
                }
                for pos in 0..16 {
                    let sweep = Sweep {
                        x: v.add(pos * vs),
                        x_row: 0,
                        x_ps: cin,
                        dy: m.add(pos * ms),
                        dy_row: 0,
                        dy_ps: coutp,
                        rows: 1,
                        cols: rows,
                    };
                    self.reduction.run(
                        0..self.reduction.tasks(),
                        &sweep,
                        acc.add(pos * per_pos),
                        first && start == 0,
                    );
                }
            }
            start += rows;
        }
    }

    /// Adds the weight gradient `G^T dU G` of the summed reductions `acc` to `grad`
    /// (`[cout, cin, 3, 3]`).
    pub(crate) fn add_to(&self, acc: &[f32], grad: &mut [f32]) {
        let g = &self.geom;
        assert_eq!(grad.len(), g.cout * g.cin * 9, "weight gradient size");
        let per_pos = self.reduction.acc_len();
        // G (4 x 3), rows of the forward weight transform.
        const G: [[f32; 3]; 4] = [
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5],
            [0.0, 0.0, 1.0],
        ];
        for co in 0..g.cout {
            for ci in 0..g.cin {
                let at = self.reduction.index(ci, co);
                let du: [f32; 16] = std::array::from_fn(|pos| acc[pos * per_pos + at]);
                let dst = &mut grad[(co * g.cin + ci) * 9..][..9];
                for a in 0..3 {
                    for b in 0..3 {
                        let mut s = 0.0f32;
                        for i in 0..4 {
                            for j in 0..4 {
                                s += G[i][a] * du[4 * i + j] * G[j][b];
                            }
                        }
                        dst[3 * a + b] += s;
                    }
                }
            }
        }
    }
}

/// `dM = A dY A^T` for one 2x2 tile of output gradients (`out` its top-left pixel, rows `row`
/// floats apart, pixels `c` apart), every channel: position `p` of channel `ch` to
/// `dst[p * pos_stride + ch]`. `A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]`, the forward output
/// transform's.
///
/// # Safety
/// The tile and the 16 destination rows of `c` floats must be valid; `avx512` only where the
/// CPU has it.
#[inline]
unsafe fn spread(
    avx512: bool,
    out: *const f32,
    row: usize,
    c: usize,
    dst: *mut f32,
    pos_stride: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        // SAFETY: the caller guarantees the CPU and the pointers.
        return unsafe { avx512::spread(out, row, c, dst, pos_stride) };
    }
    let _ = avx512;
    // SAFETY: as the caller's.
    unsafe {
        let d = |p: usize| std::slice::from_raw_parts(out.add(p), c);
        let (d00, d01, d10, d11) = (d(0), d(c), d(row), d(row + c));
        let o = |p: usize| std::slice::from_raw_parts_mut(dst.add(p * pos_stride), c);
        let outs: [&mut [f32]; 16] = std::array::from_fn(o);
        for ch in 0..c {
            // A dY: four rows of two.
            let r = [
                [d00[ch], d01[ch]],
                [d00[ch] + d10[ch], d01[ch] + d11[ch]],
                [d00[ch] - d10[ch], d01[ch] - d11[ch]],
                [-d10[ch], -d11[ch]],
            ];
            for (i, [a, b]) in r.into_iter().enumerate() {
                let base = 4 * i;
                outs[base][ch] = a;
                outs[base + 1][ch] = a + b;
                outs[base + 2][ch] = a - b;
                outs[base + 3][ch] = -b;
            }
        }
    }
}

/// [`spread`] 16 channels at a time.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// See `super::spread`.
    ///
    /// # Safety
    /// As `super::spread`, on a CPU with AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn spread(out: *const f32, row: usize, c: usize, dst: *mut f32, ps: usize) {
        let mut ch = 0;
        while ch < c {
            let lanes = (c - ch).min(16);
            let k = ((1u32 << lanes) - 1) as __mmask16;
            // SAFETY: masked lanes stay inside the tile's channels and the rows.
            unsafe {
                let p = out.add(ch);
                let d00 = _mm512_maskz_loadu_ps(k, p);
                let d01 = _mm512_maskz_loadu_ps(k, p.add(c));
                let d10 = _mm512_maskz_loadu_ps(k, p.add(row));
                let d11 = _mm512_maskz_loadu_ps(k, p.add(row + c));
                let zero = _mm512_setzero_ps();
                let rows = [
                    (d00, d01),
                    (_mm512_add_ps(d00, d10), _mm512_add_ps(d01, d11)),
                    (_mm512_sub_ps(d00, d10), _mm512_sub_ps(d01, d11)),
                    (_mm512_sub_ps(zero, d10), _mm512_sub_ps(zero, d11)),
                ];
                for (i, (a, b)) in rows.into_iter().enumerate() {
                    let o = dst.add(4 * i * ps + ch);
                    _mm512_mask_storeu_ps(o, k, a);
                    _mm512_mask_storeu_ps(o.add(ps), k, _mm512_add_ps(a, b));
                    _mm512_mask_storeu_ps(o.add(2 * ps), k, _mm512_sub_ps(a, b));
                    _mm512_mask_storeu_ps(o.add(3 * ps), k, _mm512_sub_ps(zero, b));
                }
            }
            ch += 16;
        }
    }
}
