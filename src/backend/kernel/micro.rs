//! The micro-kernels: an [`MR`] x `NR` tile of `C` in registers, its
//! elements carried on over `kc` steps of `k`, each step adding the
//! products of one packed column of `A` (`MR` numbers) and one packed row
//! of `B` (`NR` numbers). Every accumulator is its own chain `c + a * b`
//! (the product rounded, then added: no fused multiply-add), so the tile's
//! elements are the same bits as the naive loop's, whatever the width of
//! the vectors.
//!
//! One kernel per code path and element type: AVX-512F (two 512-bit
//! vectors per row), AVX2 (two 256-bit vectors per row) and a portable one
//! (plain loops over `NR` = [`PORTABLE_NR`] columns).

use super::MR;

/// A micro-kernel: `kc` steps over the packed `a` (`kc` columns of [`MR`])
/// and `b` (`kc` rows of `NR`), into the tile at `c` (rows `ldc` apart,
/// columns contiguous), which it loads first if `load` is set and else
/// starts at -0.
///
/// # Safety
///
/// `a` holds `kc * MR` numbers, `b` `kc * NR`, `c` an `MR` x `NR` tile with
/// rows `ldc` apart; the kernel's target features are present.
pub(super) type Micro<T> =
    unsafe fn(kc: usize, a: *const T, b: *const T, c: *mut T, ldc: usize, load: bool);

/// The width of the portable kernel's tile.
pub(super) const PORTABLE_NR: usize = 8;

/// The portable kernel, for any element type.
///
/// # Safety
///
/// As [`Micro`].
pub(super) unsafe fn portable<T: super::Element>(
    kc: usize,
    a: *const T,
    b: *const T,
    c: *mut T,
    ldc: usize,
    load: bool,
) {
    const NR: usize = PORTABLE_NR;
    let mut acc = [[T::NEG_ZERO; NR]; MR];
    // SAFETY: the caller's contract: every offset is inside its buffer.
    unsafe {
        if load {
            for (i, row) in acc.iter_mut().enumerate() {
                for (j, x) in row.iter_mut().enumerate() {
                    *x = *c.add(i * ldc + j);
                }
            }
        }
        for p in 0..kc {
            let ap = a.add(p * MR);
            let bp = b.add(p * NR);
            for (i, row) in acc.iter_mut().enumerate() {
                let u = *ap.add(i);
                for (j, x) in row.iter_mut().enumerate() {
                    *x = *x + u * *bp.add(j);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, x) in row.iter().enumerate() {
                *c.add(i * ldc + j) = *x;
            }
        }
    }
}

/// A SIMD kernel: two vectors of `$lanes` per row of the tile.
macro_rules! simd_kernel {
    ($name:ident, $t:ty, $feature:literal, $lanes:expr,
     $loadu:ident, $storeu:ident, $set1:ident, $mul:ident, $add:ident) => {
        /// A SIMD micro-kernel (see the module's doc).
        ///
        /// # Safety
        ///
        /// As [`Micro`], with `NR` twice the vector's lanes.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        pub(super) unsafe fn $name(
            kc: usize,
            a: *const $t,
            b: *const $t,
            c: *mut $t,
            ldc: usize,
            load: bool,
        ) {
            use core::arch::x86_64::*;
            const L: usize = $lanes;
            let mut acc = [[$set1(-0.0); 2]; MR];
            // SAFETY: the caller's contract: every offset is inside its
            // buffer; the loads and stores are unaligned ones.
            unsafe {
                if load {
                    for (i, row) in acc.iter_mut().enumerate() {
                        row[0] = $loadu(c.add(i * ldc));
                        row[1] = $loadu(c.add(i * ldc + L));
                    }
                }
                for p in 0..kc {
                    let b0 = $loadu(b.add(p * 2 * L));
                    let b1 = $loadu(b.add(p * 2 * L + L));
                    let ap = a.add(p * MR);
                    for (i, row) in acc.iter_mut().enumerate() {
                        let u = $set1(*ap.add(i));
                        row[0] = $add(row[0], $mul(u, b0));
                        row[1] = $add(row[1], $mul(u, b1));
                    }
                }
                for (i, row) in acc.iter().enumerate() {
                    $storeu(c.add(i * ldc), row[0]);
                    $storeu(c.add(i * ldc + L), row[1]);
                }
            }
        }
    };
}

simd_kernel!(
    avx512_f64,
    f64,
    "avx512f",
    8,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_set1_pd,
    _mm512_mul_pd,
    _mm512_add_pd
);
simd_kernel!(
    avx512_f32,
    f32,
    "avx512f",
    16,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_mul_ps,
    _mm512_add_ps
);
simd_kernel!(
    avx2_f64,
    f64,
    "avx2",
    4,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_set1_pd,
    _mm256_mul_pd,
    _mm256_add_pd
);
simd_kernel!(
    avx2_f32,
    f32,
    "avx2",
    8,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_mul_ps,
    _mm256_add_ps
);
