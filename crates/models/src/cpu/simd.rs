//! One vector type per instruction set, so that each kernel is written once, generic over
//! [`Simd`], and instantiated per [`super::isa::Isa`] inside a function compiled for it.
//!
//! Kernels are `#[inline(always)]` generic functions; each instruction set gets a small entry
//! point with `#[target_feature]` that calls the generic body with its vector type, so the
//! body (and these methods, also `#[inline(always)]`) compile with that entry point's
//! instructions. Kernels work in units of 16 floats (the packed layouts' block), which is one
//! AVX-512 vector, two AVX2 vectors, four NEON vectors or 16 scalars.

/// A vector of `LANES` floats and the operations the kernels use.
///
/// # Safety
/// Every method must be called from code compiled with the type's instructions (see the
/// module's documentation); the pointer methods need `LANES` valid floats (the masked ones:
/// `lanes` of them).
pub(crate) trait Simd: Copy {
    /// Floats per vector.
    const LANES: usize;
    /// Which lanes a masked load or store touches.
    type Mask: Copy;
    /// All zeros.
    unsafe fn zero() -> Self;
    /// `v` in every lane.
    unsafe fn splat(v: f32) -> Self;
    /// Loads `LANES` floats (any alignment).
    unsafe fn load(p: *const f32) -> Self;
    /// Stores `LANES` floats (any alignment).
    unsafe fn store(p: *mut f32, v: Self);
    /// The first `lanes` lanes (`lanes >= LANES`: all).
    unsafe fn mask(lanes: usize) -> Self::Mask;
    /// Loads the lanes of `m`, zeros elsewhere; reads no other float.
    unsafe fn load_masked(m: Self::Mask, p: *const f32) -> Self;
    /// Stores the lanes of `m`; writes no other float.
    unsafe fn store_masked(m: Self::Mask, p: *mut f32, v: Self);
    /// `a + b`.
    unsafe fn add(a: Self, b: Self) -> Self;
    /// `a - b`.
    unsafe fn sub(a: Self, b: Self) -> Self;
    /// `a * b + c`, fused where the instruction set has it.
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;
    /// `max(0, v)`, keeping a NaN (as PyTorch's relu).
    unsafe fn relu(v: Self) -> Self;
}

/// The portable "vector": one float, in plain arithmetic the compiler may vectorize.
impl Simd for f32 {
    const LANES: usize = 1;
    type Mask = bool;
    #[inline(always)]
    unsafe fn zero() -> Self {
        0.0
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        v
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller's.
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self) {
        // SAFETY: the caller's.
        unsafe { *p = v }
    }
    #[inline(always)]
    unsafe fn mask(lanes: usize) -> bool {
        lanes > 0
    }
    #[inline(always)]
    unsafe fn load_masked(m: bool, p: *const f32) -> Self {
        // SAFETY: the caller's.
        if m { unsafe { *p } } else { 0.0 }
    }
    #[inline(always)]
    unsafe fn store_masked(m: bool, p: *mut f32, v: Self) {
        if m {
            // SAFETY: the caller's.
            unsafe { *p = v }
        }
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        a + b
    }
    #[inline(always)]
    unsafe fn sub(a: Self, b: Self) -> Self {
        a - b
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        a * b + c
    }
    #[inline(always)]
    unsafe fn relu(v: Self) -> Self {
        if v < 0.0 { 0.0 } else { v }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Simd;
    use std::arch::x86_64::*;

    /// AVX-512F: 16 floats.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512(__m512);

    // SAFETY (every method): the caller runs with AVX-512F and passes valid pointers.
    impl Simd for Avx512 {
        const LANES: usize = 16;
        type Mask = __mmask16;
        #[inline(always)]
        unsafe fn zero() -> Self {
            Self(unsafe { _mm512_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            Self(unsafe { _mm512_set1_ps(v) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Self(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: Self) {
            unsafe { _mm512_storeu_ps(p, v.0) }
        }
        #[inline(always)]
        unsafe fn mask(lanes: usize) -> __mmask16 {
            if lanes >= 16 {
                0xFFFF
            } else {
                ((1u32 << lanes) - 1) as __mmask16
            }
        }
        #[inline(always)]
        unsafe fn load_masked(m: __mmask16, p: *const f32) -> Self {
            Self(unsafe { _mm512_maskz_loadu_ps(m, p) })
        }
        #[inline(always)]
        unsafe fn store_masked(m: __mmask16, p: *mut f32, v: Self) {
            unsafe { _mm512_mask_storeu_ps(p, m, v.0) }
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            Self(unsafe { _mm512_add_ps(a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn sub(a: Self, b: Self) -> Self {
            Self(unsafe { _mm512_sub_ps(a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            Self(unsafe { _mm512_fmadd_ps(a.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn relu(v: Self) -> Self {
            // max(0, NaN) is the second operand: the NaN stays.
            Self(unsafe { _mm512_max_ps(_mm512_setzero_ps(), v.0) })
        }
    }

    /// AVX2 with FMA: 8 floats.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx2(__m256);

    // SAFETY (every method): the caller runs with AVX2 and FMA and passes valid pointers.
    impl Simd for Avx2 {
        const LANES: usize = 8;
        /// The lane count and its mask: whole vectors take plain loads and stores
        /// (`vmaskmovps` is slow on AMD's cores, a store of it microcoded).
        type Mask = (usize, __m256i);
        #[inline(always)]
        unsafe fn zero() -> Self {
            Self(unsafe { _mm256_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            Self(unsafe { _mm256_set1_ps(v) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Self(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: Self) {
            unsafe { _mm256_storeu_ps(p, v.0) }
        }
        #[inline(always)]
        unsafe fn mask(lanes: usize) -> (usize, __m256i) {
            let lanes = lanes.min(8);
            let m = unsafe {
                _mm256_cmpgt_epi32(
                    _mm256_set1_epi32(lanes as i32),
                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                )
            };
            (lanes, m)
        }
        #[inline(always)]
        unsafe fn load_masked(m: (usize, __m256i), p: *const f32) -> Self {
            if m.0 == 8 {
                return unsafe { Self::load(p) };
            }
            Self(unsafe { _mm256_maskload_ps(p, m.1) })
        }
        #[inline(always)]
        unsafe fn store_masked(m: (usize, __m256i), p: *mut f32, v: Self) {
            if m.0 == 8 {
                return unsafe { Self::store(p, v) };
            }
            unsafe { _mm256_maskstore_ps(p, m.1, v.0) }
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            Self(unsafe { _mm256_add_ps(a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn sub(a: Self, b: Self) -> Self {
            Self(unsafe { _mm256_sub_ps(a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            Self(unsafe { _mm256_fmadd_ps(a.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn relu(v: Self) -> Self {
            // max(0, NaN) is the second operand: the NaN stays.
            Self(unsafe { _mm256_max_ps(_mm256_setzero_ps(), v.0) })
        }
    }
}

#[cfg(target_arch = "aarch64")]
pub(crate) use arm::Neon;

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::Simd;
    use std::arch::aarch64::*;

    /// NEON: 4 floats.
    #[derive(Clone, Copy)]
    pub(crate) struct Neon(float32x4_t);

    // SAFETY (every method): NEON is part of every aarch64 CPU; the caller passes valid
    // pointers.
    impl Simd for Neon {
        const LANES: usize = 4;
        type Mask = usize;
        #[inline(always)]
        unsafe fn zero() -> Self {
            Self(unsafe { vdupq_n_f32(0.0) })
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> Self {
            Self(unsafe { vdupq_n_f32(v) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Self(unsafe { vld1q_f32(p) })
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: Self) {
            unsafe { vst1q_f32(p, v.0) }
        }
        #[inline(always)]
        unsafe fn mask(lanes: usize) -> usize {
            lanes.min(4)
        }
        #[inline(always)]
        unsafe fn load_masked(m: usize, p: *const f32) -> Self {
            if m == 4 {
                return unsafe { Self::load(p) };
            }
            let mut lanes = [0.0f32; 4];
            unsafe { std::ptr::copy_nonoverlapping(p, lanes.as_mut_ptr(), m) };
            Self(unsafe { vld1q_f32(lanes.as_ptr()) })
        }
        #[inline(always)]
        unsafe fn store_masked(m: usize, p: *mut f32, v: Self) {
            if m == 4 {
                return unsafe { Self::store(p, v) };
            }
            let mut lanes = [0.0f32; 4];
            unsafe {
                vst1q_f32(lanes.as_mut_ptr(), v.0);
                std::ptr::copy_nonoverlapping(lanes.as_ptr(), p, m);
            }
        }
        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            Self(unsafe { vaddq_f32(a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn sub(a: Self, b: Self) -> Self {
            Self(unsafe { vsubq_f32(a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            Self(unsafe { vfmaq_f32(c.0, a.0, b.0) })
        }
        #[inline(always)]
        unsafe fn relu(v: Self) -> Self {
            // vmaxq returns NaN where either operand is NaN: the NaN stays.
            Self(unsafe { vmaxq_f32(vdupq_n_f32(0.0), v.0) })
        }
    }
}

/// Calls a kernel with the instruction set `isa` inside a function compiled for it:
/// `dispatch!(isa, kernel::<V>(a: A, b: B))` instantiates the generic `kernel` with `isa`'s
/// vector type, `dispatch!(isa, kernel(a: A, b: B))` compiles the plain `kernel` (an
/// `#[inline(always)]` loop the compiler vectorizes) for it. Expands to an `unsafe` call: the
/// caller states why its arguments are valid, and `isa` must run on this CPU.
macro_rules! dispatch {
    ($isa:expr, $kernel:ident::<V>($($arg:ident: $ty:ty),* $(,)?)) => {
        $crate::cpu::simd::dispatch!(@ $isa, ($($arg: $ty),*),
            $kernel::<$crate::cpu::simd::Avx512>, $kernel::<$crate::cpu::simd::Avx2>,
            $kernel::<$crate::cpu::simd::Neon>, $kernel::<f32>)
    };
    ($isa:expr, $kernel:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $crate::cpu::simd::dispatch!(@ $isa, ($($arg: $ty),*), $kernel, $kernel, $kernel, $kernel)
    };
    (@ $isa:expr, ($($arg:ident: $ty:ty),*), $avx512:path, $avx2:path, $neon:path, $portable:path) => {
        match $isa {
            #[cfg(target_arch = "x86_64")]
            $crate::cpu::isa::Isa::Avx512 => {
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn run($($arg: $ty),*) {
                    // SAFETY: as the caller's.
                    unsafe { $avx512($($arg),*) }
                }
                run($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            $crate::cpu::isa::Isa::Avx2 => {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn run($($arg: $ty),*) {
                    // SAFETY: as the caller's.
                    unsafe { $avx2($($arg),*) }
                }
                run($($arg),*)
            }
            #[cfg(target_arch = "aarch64")]
            $crate::cpu::isa::Isa::Neon => $neon($($arg),*),
            _ => $portable($($arg),*),
        }
    };
}
pub(crate) use dispatch;
