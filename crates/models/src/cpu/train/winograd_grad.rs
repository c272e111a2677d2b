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
use super::super::isa::Isa;
use super::super::simd::{Simd, dispatch};
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
    isa: Isa,
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
    pub(crate) fn new(geom: ConvGeom, isa: Isa) -> Self {
        let reduction = WgradPlan::dense(geom.cin, geom.cout, isa);
        // V and dM of a chunk (16 positions each) in about 1 MiB, the core's L2.
        let floats_per_tile = 16 * (geom.cin + reduction.cout_padded());
        let chunk = ((1 << 18) / floats_per_tile).clamp(16, 512);
        Self {
            geom,
            reduction,
            chunk,
            isa,
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
                    input_transform(self.isa, src, (g.w + 2) * cin, cin, v.add(t * cin), vs);
                    let out = dy(image).add(((2 * ty + 1) * (g.w + 2) + 2 * tx + 1) * cout);
                    spread(self.isa, out, (g.w + 2) * cout, cout, m.add(t * coutp), ms);
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
/// The tile and the 16 destination rows of `c` floats must be valid; `isa` must run on this
/// CPU.
#[inline]
unsafe fn spread(
    isa: Isa,
    out: *const f32,
    row: usize,
    c: usize,
    dst: *mut f32,
    pos_stride: usize,
) {
    // SAFETY: the caller guarantees the CPU and the pointers.
    unsafe {
        dispatch!(isa, spread_simd::<V>(out: *const f32, row: usize, c: usize, dst: *mut f32, pos_stride: usize))
    }
}

/// [`spread`], `V::LANES` channels at a time.
#[inline(always)]
unsafe fn spread_simd<V: Simd>(out: *const f32, row: usize, c: usize, dst: *mut f32, ps: usize) {
    let mut ch = 0;
    while ch < c {
        // SAFETY: masked lanes stay inside the tile's channels and the rows.
        unsafe {
            let k = V::mask(c - ch);
            let p = out.add(ch);
            let d00 = V::load_masked(k, p);
            let d01 = V::load_masked(k, p.add(c));
            let d10 = V::load_masked(k, p.add(row));
            let d11 = V::load_masked(k, p.add(row + c));
            let zero = V::zero();
            // A dY: four rows of two.
            let rows = [
                (d00, d01),
                (V::add(d00, d10), V::add(d01, d11)),
                (V::sub(d00, d10), V::sub(d01, d11)),
                (V::sub(zero, d10), V::sub(zero, d11)),
            ];
            for (i, (a, b)) in rows.into_iter().enumerate() {
                let o = dst.add(4 * i * ps + ch);
                V::store_masked(k, o, a);
                V::store_masked(k, o.add(ps), V::add(a, b));
                V::store_masked(k, o.add(2 * ps), V::sub(a, b));
                V::store_masked(k, o.add(3 * ps), V::sub(zero, b));
            }
        }
        ch += V::LANES;
    }
}
