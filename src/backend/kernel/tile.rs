//! The tile kernels: a tile of `rows` x `cols` of `C` (at most [`MR`] x
//! `NR`) that reads `A` and `B` through strides rather than from packed
//! panels. They serve the products computed without packing (`A` read in
//! place, `B` from its rows) and the edge tiles of the packed ones (the
//! panels are strides too: `A`'s `(1, MR)`, `B`'s `NR`), whose elements
//! then go straight to `C`, with no copy through a tile of the full size.
//!
//! The arithmetic is the micro-kernels' ([`super::micro`]): every element
//! its own chain `c + a * b`, the product rounded then added, in `k` order.
//! A tile of fewer rows is a kernel of fewer rows (the rows are a constant
//! of each instance, so that the accumulators stay in registers); a tile
//! of fewer columns is masked: masked loads (the lanes off the mask are
//! not read, so `B`'s rows and `C`'s may end anywhere) and masked stores.
//! AVX-512F has them for every type, AVX2 as `vmaskmov`; the portable
//! kernel loops over the columns it has.

use super::MR;

/// A tile kernel: `kc` steps into the `rows` x `cols` tile at `c` (rows
/// `ldc` apart, columns contiguous), step `p` adding `A(i, p) B(p, j)`,
/// `A(i, p)` at `a + i * rsa + p * csa` and `B(p, j)` at `b + p * rsb + j`.
/// It loads the tile first if `load` is set, else starts at -0.
///
/// # Safety
///
/// `1 <= rows <= MR`, `1 <= cols <= NR` (the kernel's width); every
/// element of the tile and every `A(i, p)`, `B(p, j)` with `i < rows`,
/// `j < cols`, `p < kc` is in its buffer; the kernel's target features are
/// present.
pub(super) type Tile<T> = unsafe fn(
    rows: usize,
    cols: usize,
    kc: usize,
    a: *const T,
    strides_a: (usize, usize),
    b: *const T,
    rsb: usize,
    c: *mut T,
    ldc: usize,
    load: bool,
);

/// The portable tile kernel, for any element type.
///
/// # Safety
///
/// As [`Tile`], with `NR` = [`super::micro::PORTABLE_NR`].
#[expect(clippy::too_many_arguments, reason = "the operands of a tile")]
pub(super) unsafe fn portable<T: super::Element>(
    rows: usize,
    cols: usize,
    kc: usize,
    a: *const T,
    (rsa, csa): (usize, usize),
    b: *const T,
    rsb: usize,
    c: *mut T,
    ldc: usize,
    load: bool,
) {
    const NR: usize = super::micro::PORTABLE_NR;
    let mut acc = [[T::NEG_ZERO; NR]; MR];
    // SAFETY: the caller's contract: every offset read or written is that
    // of an element of the tile, of `A` or of `B`.
    unsafe {
        if load {
            for (i, row) in acc.iter_mut().enumerate().take(rows) {
                for (j, x) in row.iter_mut().enumerate().take(cols) {
                    *x = *c.add(i * ldc + j);
                }
            }
        }
        for p in 0..kc {
            let bp = b.add(p * rsb);
            for (i, row) in acc.iter_mut().enumerate().take(rows) {
                let u = *a.add(i * rsa + p * csa);
                for (j, x) in row.iter_mut().enumerate().take(cols) {
                    *x = *x + u * *bp.add(j);
                }
            }
        }
        for (i, row) in acc.iter().enumerate().take(rows) {
            for (j, x) in row.iter().enumerate().take(cols) {
                *c.add(i * ldc + j) = *x;
            }
        }
    }
}

/// The instance of `$rows` for `rows` rows (1 to [`MR`]) of `$v` vectors,
/// called with `args`.
macro_rules! by_rows {
    ($rows:ident, $v:literal, $r:expr, $args:expr) => {
        match $r {
            1 => $rows::<1, $v>($args),
            2 => $rows::<2, $v>($args),
            3 => $rows::<3, $v>($args),
            4 => $rows::<4, $v>($args),
            5 => $rows::<5, $v>($args),
            _ => $rows::<MR, $v>($args),
        }
    };
}

/// The entry point `$name` of the tile kernels `$rows`, `$v` vectors a
/// row: the instance for its number of rows (1 to [`MR`]).
macro_rules! tile_entry {
    ($(#[$doc:meta])* $name:ident, $rows:ident, $t:ty, $feature:literal, $v:literal) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        #[expect(clippy::too_many_arguments, reason = "the operands of a tile")]
        pub(super) unsafe fn $name(
            rows: usize,
            cols: usize,
            kc: usize,
            a: *const $t,
            strides_a: (usize, usize),
            b: *const $t,
            rsb: usize,
            c: *mut $t,
            ldc: usize,
            load: bool,
        ) {
            let args = (cols, kc, a, strides_a, b, rsb, c, ldc, load);
            // SAFETY: the caller's contract, `rows` being 1 to MR.
            unsafe { by_rows!($rows, $v, rows, args) }
        }
    };
}

/// A SIMD tile kernel: `V` vectors of `$lanes` per row (two; three or
/// four in [`wide_tiles`]'), `R` rows (a constant:
/// one instance per number of rows), the columns masked by `$mask`, loaded
/// by `$load(pointer, mask)` and stored by `$store(pointer, mask, vector)`.
macro_rules! simd_tile {
    ($name:ident, $rows:ident, $t:ty, $feature:literal, $lanes:expr,
     $mask:ident, $load:ident, $store:ident, $set1:ident, $mul:ident, $add:ident) => {
        tile_entry!(
            /// A SIMD tile kernel (see the module's doc).
            ///
            /// # Safety
            ///
            /// As [`Tile`], with `NR` twice the vector's lanes.
            $name, $rows, $t, $feature, 2
        );

        /// [`$name`] for `R` rows of `V` vectors.
        ///
        /// # Safety
        ///
        /// As [`Tile`], with `rows` = `R` and `NR` `V` times the vector's
        /// lanes.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        #[allow(clippy::type_complexity, reason = "a tile's arguments")]
        unsafe fn $rows<const R: usize, const V: usize>(
            (cols, kc, a, (rsa, csa), b, rsb, c, ldc, load): (
                usize,
                usize,
                *const $t,
                (usize, usize),
                *const $t,
                usize,
                *mut $t,
                usize,
                bool,
            ),
        ) {
            use core::arch::x86_64::*;
            const L: usize = $lanes;
            let masks: [_; V] = core::array::from_fn(|v| $mask(cols.saturating_sub(v * L).min(L)));
            let mut acc = [[$set1(-0.0); V]; R];
            // SAFETY: the caller's contract: the lanes off the masks are
            // neither read nor written, so every access is to an element
            // of the tile, of `A` or of `B`; the vectors' addresses after
            // the first are computed with wrapping arithmetic as they may
            // lie past `B` or `C` when their masks are empty.
            unsafe {
                if load {
                    for (i, row) in acc.iter_mut().enumerate() {
                        let ci = c.add(i * ldc);
                        for (v, x) in row.iter_mut().enumerate() {
                            *x = $load(ci.wrapping_add(v * L), masks[v]);
                        }
                    }
                }
                let mut bp = b;
                for p in 0..kc {
                    let bv: [_; V] =
                        core::array::from_fn(|v| $load(bp.wrapping_add(v * L), masks[v]));
                    let ap = a.add(p * csa);
                    for (i, row) in acc.iter_mut().enumerate() {
                        let u = $set1(*ap.add(i * rsa));
                        for (x, &bj) in row.iter_mut().zip(&bv) {
                            *x = $add(*x, $mul(u, bj));
                        }
                    }
                    bp = bp.wrapping_add(rsb);
                }
                for (i, row) in acc.iter().enumerate() {
                    let ci = c.add(i * ldc);
                    for (v, &x) in row.iter().enumerate() {
                        $store(ci.wrapping_add(v * L), masks[v], x);
                    }
                }
            }
        }
    };
}

/// The masked loads and stores, with one signature per vector type, and
/// the mask of the first `n` lanes.
#[cfg(target_arch = "x86_64")]
mod masked {
    use core::arch::x86_64::*;

    /// The AVX-512 mask of the first `n` of 8 lanes.
    #[inline]
    pub(super) fn k8(n: usize) -> __mmask8 {
        (0xffu32 >> (8 - n.min(8))) as __mmask8
    }

    /// The AVX-512 mask of the first `n` of 16 lanes.
    #[inline]
    pub(super) fn k16(n: usize) -> __mmask16 {
        (0xffffu32 >> (16 - n.min(16))) as __mmask16
    }

    /// The AVX2 mask of the first `n` of 4 lanes of 64 bits.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn v4(n: usize) -> __m256i {
        _mm256_cmpgt_epi64(_mm256_set1_epi64x(n as i64), _mm256_setr_epi64x(0, 1, 2, 3))
    }

    /// The AVX2 mask of the first `n` of 8 lanes of 32 bits.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn v8(n: usize) -> __m256i {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }

    /// Loads and stores of the lanes on a mask: the others are not
    /// accessed (and loaded as zeros).
    macro_rules! load_store {
        ($load:ident, $store:ident, $feature:literal, $t:ty, $v:ty, $m:ty,
         |$p:ident, $k:ident| $l:expr, |$q:ident, $j:ident, $x:ident| $s:expr) => {
            /// A masked load.
            ///
            /// # Safety
            ///
            /// The lanes on the mask are readable.
            #[inline]
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $load($p: *const $t, $k: $m) -> $v {
                // SAFETY: the caller's contract.
                unsafe { $l }
            }

            /// A masked store.
            ///
            /// # Safety
            ///
            /// The lanes on the mask are writable.
            #[inline]
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $store($q: *mut $t, $j: $m, $x: $v) {
                // SAFETY: the caller's contract.
                unsafe { $s }
            }
        };
    }

    load_store!(
        load512d,
        store512d,
        "avx512f",
        f64,
        __m512d,
        __mmask8,
        |p, k| _mm512_maskz_loadu_pd(k, p),
        |p, k, x| _mm512_mask_storeu_pd(p, k, x)
    );
    load_store!(
        load512s,
        store512s,
        "avx512f",
        f32,
        __m512,
        __mmask16,
        |p, k| _mm512_maskz_loadu_ps(k, p),
        |p, k, x| _mm512_mask_storeu_ps(p, k, x)
    );
    load_store!(
        load256d,
        store256d,
        "avx2",
        f64,
        __m256d,
        __m256i,
        |p, k| _mm256_maskload_pd(p, k),
        |p, k, x| _mm256_maskstore_pd(p, k, x)
    );
    load_store!(
        load256s,
        store256s,
        "avx2",
        f32,
        __m256,
        __m256i,
        |p, k| _mm256_maskload_ps(p, k),
        |p, k, x| _mm256_maskstore_ps(p, k, x)
    );
}

#[cfg(target_arch = "x86_64")]
use masked::*;

simd_tile!(
    avx512_f64,
    avx512_f64_rows,
    f64,
    "avx512f",
    8,
    k8,
    load512d,
    store512d,
    _mm512_set1_pd,
    _mm512_mul_pd,
    _mm512_add_pd
);
simd_tile!(
    avx512_f32,
    avx512_f32_rows,
    f32,
    "avx512f",
    16,
    k16,
    load512s,
    store512s,
    _mm512_set1_ps,
    _mm512_mul_ps,
    _mm512_add_ps
);
simd_tile!(
    avx2_f64,
    avx2_f64_rows,
    f64,
    "avx2",
    4,
    v4,
    load256d,
    store256d,
    _mm256_set1_pd,
    _mm256_mul_pd,
    _mm256_add_pd
);
simd_tile!(
    avx2_f32,
    avx2_f32_rows,
    f32,
    "avx2",
    8,
    v8,
    load256s,
    store256s,
    _mm256_set1_ps,
    _mm256_mul_ps,
    _mm256_add_ps
);

/// The tile kernels of `$rows` three and four vectors wide, for the
/// products computed without packing, whose rows of tiles then read `A`
/// once for up to twice the columns (AVX-512 only: its 32 registers hold
/// the 24 accumulators of six rows). Three vectors serve the columns that
/// a fourth would leave empty: `gmm`'s gradient at d = 20, `B` 20 columns
/// wide, four vectors of which would compute 12 zeros a row.
macro_rules! wide_tiles {
    ($three:ident, $wide:ident, $rows:ident, $t:ty) => {
        tile_entry!(
            /// A tile kernel of three vectors a row (see [`wide_tiles`]).
            ///
            /// # Safety
            ///
            /// As [`Tile`], with `NR` three times the vector's lanes.
            $three, $rows, $t, "avx512f", 3
        );
        tile_entry!(
            /// A tile kernel of four vectors a row (see [`wide_tiles`]).
            ///
            /// # Safety
            ///
            /// As [`Tile`], with `NR` four times the vector's lanes.
            $wide, $rows, $t, "avx512f", 4
        );
    };
}

wide_tiles!(avx512_f64_three, avx512_f64_wide, avx512_f64_rows, f64);
wide_tiles!(avx512_f32_three, avx512_f32_wide, avx512_f32_rows, f32);
