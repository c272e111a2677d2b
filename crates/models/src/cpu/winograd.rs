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
use super::isa::Isa;
use super::simd::{Simd, dispatch};

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
    /// The transforms' instruction set.
    isa: Isa,
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
    pub(crate) fn new(geom: ConvGeom, isa: Isa) -> Self {
        assert!(Self::covers(&geom), "F(2x2, 3x3) does not cover {geom:?}");
        // V and M of a chunk (16 positions each) in about 1 MiB, the core's L2.
        let floats_per_tile = 16 * (geom.cin + geom.cout_padded());
        let chunk = ((1 << 18) / floats_per_tile).clamp(16, 512) / 16 * 16;
        let gemm = ConvPlan::gemm(geom.cin, geom.cout, chunk, geom.cin, isa);
        debug_assert!(gemm.tile_rows() <= chunk);
        Self {
            geom,
            gemm,
            chunk,
            isa,
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
                    input_transform(self.isa, src, (g.w + 2) * cin, cin, v.add(t * cin), vs);
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
                        self.isa,
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
/// The tile and the 16 destination rows must be valid; `isa` must run on this CPU.
#[inline]
pub(crate) unsafe fn input_transform(
    isa: Isa,
    src: *const f32,
    row: usize,
    c: usize,
    dst: *mut f32,
    pos_stride: usize,
) {
    // SAFETY: the caller guarantees the CPU and the pointers.
    unsafe {
        dispatch!(isa, input_transform_simd::<V>(src: *const f32, row: usize, c: usize, dst: *mut f32, pos_stride: usize))
    }
}

/// [`input_transform`], `V::LANES` channels at a time.
#[inline(always)]
unsafe fn input_transform_simd<V: Simd>(
    src: *const f32,
    row: usize,
    c: usize,
    dst: *mut f32,
    ps: usize,
) {
    let mut ch = 0;
    while ch < c {
        // SAFETY: masked lanes stay inside the tile's channels and the destination rows.
        unsafe {
            let k = V::mask(c - ch);
            let mut t = [[V::zero(); 4]; 4];
            for j in 0..4 {
                let p = src.add(j * c + ch);
                let d0 = V::load_masked(k, p);
                let d1 = V::load_masked(k, p.add(row));
                let d2 = V::load_masked(k, p.add(2 * row));
                let d3 = V::load_masked(k, p.add(3 * row));
                // B^T d: combine rows.
                t[0][j] = V::sub(d0, d2);
                t[1][j] = V::add(d1, d2);
                t[2][j] = V::sub(d2, d1);
                t[3][j] = V::sub(d1, d3);
            }
            // (B^T d) B: combine columns.
            for (i, r) in t.iter().enumerate() {
                let o = dst.add(4 * i * ps + ch);
                V::store_masked(k, o, V::sub(r[0], r[2]));
                V::store_masked(k, o.add(ps), V::add(r[1], r[2]));
                V::store_masked(k, o.add(2 * ps), V::sub(r[2], r[1]));
                V::store_masked(k, o.add(3 * ps), V::sub(r[1], r[3]));
            }
        }
        ch += V::LANES;
    }
}

/// `Y = A^T M A` for one tile, every channel, plus bias and residual, ReLU; `m` position `p`
/// of channel `ch` at `m[p * pos_stride + ch]`; the 2x2 outputs at `y`, rows `row` floats
/// apart, pixels `c` apart (`res` likewise, or null).
///
/// # Safety
/// The 16 source rows, the output tile and the residual tile must be valid; `isa` must run on
/// this CPU.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn output_transform(
    isa: Isa,
    m: *const f32,
    pos_stride: usize,
    bias: &[f32],
    y: *mut f32,
    row: usize,
    c: usize,
    res: *const f32,
    relu: bool,
) {
    // SAFETY: the caller guarantees the CPU and the pointers.
    unsafe {
        dispatch!(isa, output_transform_simd::<V>(m: *const f32, pos_stride: usize, bias: &[f32], y: *mut f32, row: usize, c: usize, res: *const f32, relu: bool))
    }
}

/// [`output_transform`], `V::LANES` channels at a time.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn output_transform_simd<V: Simd>(
    m: *const f32,
    ps: usize,
    bias: &[f32],
    y: *mut f32,
    row: usize,
    c: usize,
    res: *const f32,
    relu: bool,
) {
    let mut ch = 0;
    while ch < c {
        // SAFETY: masked lanes stay inside the channels of the tile, the bias and the
        // residual.
        unsafe {
            let k = V::mask(c - ch);
            let mut s0 = [V::zero(); 4];
            let mut s1 = [V::zero(); 4];
            // A^T M: two rows of 4.
            for j in 0..4 {
                let p = m.add(j * ps + ch);
                let m0 = V::load_masked(k, p);
                let m1 = V::load_masked(k, p.add(4 * ps));
                let m2 = V::load_masked(k, p.add(8 * ps));
                let m3 = V::load_masked(k, p.add(12 * ps));
                s0[j] = V::add(V::add(m0, m1), m2);
                s1[j] = V::sub(V::sub(m1, m2), m3);
            }
            let b = V::load_masked(k, bias.as_ptr().add(ch));
            let out = [
                V::add(V::add(V::add(s0[0], s0[1]), s0[2]), b),
                V::add(V::sub(V::sub(s0[1], s0[2]), s0[3]), b),
                V::add(V::add(V::add(s1[0], s1[1]), s1[2]), b),
                V::add(V::sub(V::sub(s1[1], s1[2]), s1[3]), b),
            ];
            let offsets = [0, c, row, row + c];
            for (v, off) in out.into_iter().zip(offsets) {
                let mut v = v;
                if !res.is_null() {
                    v = V::add(v, V::load_masked(k, res.add(off + ch)));
                }
                if relu {
                    v = V::relu(v);
                }
                V::store_masked(k, y.add(off + ch), v);
            }
        }
        ch += V::LANES;
    }
}
