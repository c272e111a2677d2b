use super::buffer::Aligned;
use super::conv::{ConvGeom, ConvPlan, PackedConv};
use super::*;

fn rng(seed: u64) -> impl FnMut() -> f32 {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) as f32
    }
}

/// Padded NHWC image from an unpadded NCHW one.
fn padded(x: &[f32], c: usize, h: usize, w: usize) -> Aligned {
    let mut out = Aligned::zeros((h + 2) * (w + 2) * c);
    let o = out.as_mut_slice();
    for ch in 0..c {
        for y in 0..h {
            for xx in 0..w {
                o[((y + 1) * (w + 2) + xx + 1) * c + ch] = x[(ch * h + y) * w + xx];
            }
        }
    }
    out
}

/// The textbook convolution, NCHW, in f64.
fn reference(g: &ConvGeom, x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f64> {
    let mut out = vec![0.0; g.cout * g.ho * g.wo];
    for co in 0..g.cout {
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                let mut s = bias[co] as f64;
                for ci in 0..g.cin {
                    for ky in 0..g.kernel {
                        for kx in 0..g.kernel {
                            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                            let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                            if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                continue;
                            }
                            let v = x[(ci * g.h + iy as usize) * g.w + ix as usize] as f64;
                            let k = weight[((co * g.cin + ci) * g.kernel + ky) * g.kernel + kx];
                            s += v * k as f64;
                        }
                    }
                }
                out[(co * g.ho + oy) * g.wo + ox] = s;
            }
        }
    }
    out
}

fn check_conv(g: ConvGeom, isa: Isa, seed: u64) {
    let mut next = rng(seed);
    let x: Vec<f32> = (0..g.cin * g.h * g.w).map(|_| next()).collect();
    let weight: Vec<f32> = (0..g.cout * g.depth()).map(|_| next()).collect();
    let bias: Vec<f32> = (0..g.cout).map(|_| next()).collect();
    let res: Vec<f32> = (0..g.cout * g.ho * g.wo).map(|_| next()).collect();
    let plan = ConvPlan::new(g, isa);
    let mut packed = PackedConv::default();
    plan.pack(&weight, Some(&bias), &mut packed);
    let xin = padded(&x, g.cin, g.h, g.w);
    let rpad = padded(&res, g.cout, g.ho, g.wo);
    let want = reference(&g, &x, &weight, &bias);
    for (with_res, relu) in [(false, false), (true, true), (false, true)] {
        // Garbage in the output buffer, border included: the run must overwrite it all.
        let mut y = Aligned::zeros((g.ho + 2) * (g.wo + 2) * g.cout);
        y.as_mut_slice().fill(f32::NAN);
        let r = if with_res {
            rpad.as_slice().as_ptr()
        } else {
            std::ptr::null()
        };
        unsafe {
            plan.run(
                &packed,
                xin.as_slice().as_ptr(),
                y.as_mut_slice().as_mut_ptr(),
                r,
                relu,
            )
        };
        let residual = with_res.then_some(res.as_slice());
        let what = format!("{g:?} {isa} res {with_res} relu {relu}");
        assert_conv_output(&g, y.as_slice(), &want, residual, relu, &what);
    }
}

/// Asserts that the padded NHWC output `y` of a convolution is zero on its border and, inside,
/// the textbook answer `want` (NCHW, bias included) plus `residual`, through the ReLU if `relu`.
fn assert_conv_output(
    g: &ConvGeom,
    y: &[f32],
    want: &[f64],
    residual: Option<&[f32]>,
    relu: bool,
    what: &str,
) {
    for co in 0..g.cout {
        for oy in 0..g.ho + 2 {
            for ox in 0..g.wo + 2 {
                let got = y[(oy * (g.wo + 2) + ox) * g.cout + co] as f64;
                let border = oy == 0 || ox == 0 || oy == g.ho + 1 || ox == g.wo + 1;
                let expect = if border {
                    0.0
                } else {
                    let i = (co * g.ho + oy - 1) * g.wo + ox - 1;
                    let v = want[i] + residual.map_or(0.0, |r| r[i] as f64);
                    if relu { v.max(0.0) } else { v }
                };
                assert!(
                    (got - expect).abs() <= 1e-4 * (1.0 + expect.abs()),
                    "{what}: ({co}, {oy}, {ox}) {got} vs {expect}"
                );
            }
        }
    }
}

fn geometries() -> Vec<ConvGeom> {
    let mut out = Vec::new();
    for (cin, cout) in [
        (3, 16),
        (16, 16),
        (16, 32),
        (32, 64),
        (5, 7),
        (8, 20),
        (4, 48),
        (12, 80),
    ] {
        for (kernel, stride, pad) in [(3, 1, 1), (3, 2, 1), (1, 2, 0), (1, 1, 0), (3, 1, 0)] {
            for (h, w) in [(8, 8), (9, 7), (32, 32), (4, 4), (3, 5), (1, 1), (16, 16)] {
                if h + 2 * pad < kernel || w + 2 * pad < kernel {
                    continue;
                }
                let size = |s: usize| (s + 2 * pad - kernel) / stride + 1;
                out.push(ConvGeom {
                    cin,
                    cout,
                    kernel,
                    stride,
                    pad,
                    h,
                    w,
                    ho: size(h),
                    wo: size(w),
                });
            }
        }
    }
    out
}

/// Every instruction set this CPU runs (each is compiled into every x86-64 build, and the
/// aarch64 build runs NEON under emulation in CI).
#[test]
fn convolutions_match_the_textbook() {
    for isa in Isa::available_all() {
        for (i, g) in geometries().into_iter().enumerate() {
            check_conv(g, isa, i as u64);
        }
    }
}

fn check_winograd(g: ConvGeom, images: usize, isa: Isa, seed: u64) {
    use super::winograd::{PackedWinograd, Scratch, WinogradPlan};
    let mut next = rng(seed);
    let weight: Vec<f32> = (0..g.cout * g.depth()).map(|_| next()).collect();
    let bias: Vec<f32> = (0..g.cout).map(|_| next()).collect();
    let plan = WinogradPlan::new(g, isa);
    let mut packed = PackedWinograd::default();
    plan.pack(&weight, Some(&bias), &mut packed);
    let (sv, sm) = plan.scratch_len();
    let mut scratch = Scratch::new(sv, sm);
    let xs: Vec<Vec<f32>> = (0..images)
        .map(|_| (0..g.cin * g.h * g.w).map(|_| next()).collect())
        .collect();
    let rs: Vec<Vec<f32>> = (0..images)
        .map(|_| (0..g.cout * g.ho * g.wo).map(|_| next()).collect())
        .collect();
    let xin: Vec<Aligned> = xs.iter().map(|x| padded(x, g.cin, g.h, g.w)).collect();
    let rin: Vec<Aligned> = rs.iter().map(|r| padded(r, g.cout, g.ho, g.wo)).collect();
    for (with_res, relu) in [(false, false), (true, true), (true, false)] {
        let mut ys: Vec<Aligned> = (0..images)
            .map(|_| {
                let mut y = Aligned::zeros((g.ho + 2) * (g.wo + 2) * g.cout);
                y.as_mut_slice().fill(f32::NAN);
                y
            })
            .collect();
        let yp: Vec<*mut f32> = ys
            .iter_mut()
            .map(|y| y.as_mut_slice().as_mut_ptr())
            .collect();
        unsafe {
            plan.run(
                &packed,
                &mut scratch,
                images,
                |i| xin[i].as_slice().as_ptr(),
                |i| yp[i],
                |i| {
                    if with_res {
                        rin[i].as_slice().as_ptr()
                    } else {
                        std::ptr::null()
                    }
                },
                relu,
            )
        };
        for i in 0..images {
            let want = reference(&g, &xs[i], &weight, &bias);
            let residual = with_res.then_some(rs[i].as_slice());
            let what = format!("{g:?} x{images} {isa} res {with_res} relu {relu}: image {i}");
            assert_conv_output(&g, ys[i].as_slice(), &want, residual, relu, &what);
        }
    }
}

#[test]
fn winograd_convolutions_match_the_textbook() {
    let mut seed = 0;
    for isa in Isa::available_all() {
        for (cin, cout) in [(16, 16), (5, 7), (32, 48), (20, 80), (64, 64)] {
            for (h, w) in [(2, 2), (4, 6), (8, 8), (32, 32), (16, 10)] {
                for images in [1, 3] {
                    seed += 1;
                    let g = ConvGeom {
                        cin,
                        cout,
                        kernel: 3,
                        stride: 1,
                        pad: 1,
                        h,
                        w,
                        ho: h,
                        wo: w,
                    };
                    check_winograd(g, images, isa, seed);
                }
            }
        }
    }
}

#[test]
fn dense_layers_match_the_textbook() {
    for isa in Isa::available_all() {
        for (input, output, rows) in [(64, 10, 1), (4096, 256, 8), (37, 19, 8), (16, 48, 3)] {
            let mut next = rng(input as u64);
            let weight: Vec<f32> = (0..input * output).map(|_| next()).collect();
            let bias: Vec<f32> = (0..output).map(|_| next()).collect();
            let (xs, ys) = (input + 5, output + 3);
            let x: Vec<f32> = (0..rows * xs).map(|_| next()).collect();
            let plan = ConvPlan::dense(input, output, rows, isa);
            let mut packed = PackedConv::default();
            plan.pack(&weight, Some(&bias), &mut packed);
            let mut y = vec![f32::NAN; rows * ys];
            unsafe { plan.run_dense(&packed, x.as_ptr(), xs, y.as_mut_ptr(), ys, true) };
            for r in 0..rows {
                for o in 0..output {
                    let mut s = bias[o] as f64;
                    for i in 0..input {
                        s += x[r * xs + i] as f64 * weight[o * input + i] as f64;
                    }
                    let s = s.max(0.0);
                    let got = y[r * ys + o] as f64;
                    assert!((got - s).abs() <= 1e-4 * (1.0 + s.abs()), "{got} vs {s}");
                }
                assert!(y[r * ys + output..(r + 1) * ys].iter().all(|v| v.is_nan()));
            }
        }
    }
}

/// The shapes training's input gradients add (DenseNet's 1x1 convolutions transposed: many
/// output channels from few), on the portable kernel.
#[test]
fn transposed_dense_block_shapes_match_the_textbook() {
    let mut i = 0;
    for (cin, cout) in [
        (36, 16),
        (100, 16),
        (124, 16),
        (16, 36),
        (16, 100),
        (16, 124),
        (4, 16),
        (16, 4),
    ] {
        for (kernel, pad) in [(1, 0), (3, 1)] {
            for h in [8, 4, 16] {
                let g = ConvGeom {
                    cin,
                    cout,
                    kernel,
                    stride: 1,
                    pad,
                    h,
                    w: h,
                    ho: h,
                    wo: h,
                };
                for isa in Isa::available_all() {
                    check_conv(g, isa, i);
                }
                i += 1;
            }
        }
    }
}
