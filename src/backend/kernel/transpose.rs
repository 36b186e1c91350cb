//! The transpose the generated code makes of a small weight matrix once per
//! call of a batched function (see
//! [`crate::backend::plan::Layout::transposed`]), so that its products with
//! the examples' rows read it by rows.
//!
//! It only copies numbers, so every way of ordering the copies gives the
//! same result. The portable path goes in square blocks of [`BLOCK`], so
//! that both the rows read and the rows written of a block stay in the L1
//! cache; on a CPU with AVX (every one the kernel's AVX2 and AVX-512 paths
//! run on), f64s go four rows at a time, a 4 x 4 block transposed in
//! registers. (The generated code's own loop nest, one element per
//! iteration with a strided read, took about a sixth of the digits MLP's
//! training step.)

use super::Isa;

/// The side of a block: 8 x 8 f64s are eight lines of 64 bytes read and
/// eight written.
const BLOCK: usize = 8;

/// `dst` (`cols` x `rows`, row-major) = the transpose of `src` (`rows` x
/// `cols`, row-major).
///
/// # Panics
///
/// If either slice is not `rows * cols` long.
pub fn transpose<T: Copy>(src: &[T], rows: usize, cols: usize, dst: &mut [T]) {
    assert_eq!(src.len(), rows * cols, "the source is rows x cols");
    assert_eq!(dst.len(), rows * cols, "the destination is cols x rows");
    for i0 in (0..rows).step_by(BLOCK) {
        let i1 = (i0 + BLOCK).min(rows);
        for j0 in (0..cols).step_by(BLOCK) {
            let j1 = (j0 + BLOCK).min(cols);
            for j in j0..j1 {
                let out = &mut dst[j * rows + i0..j * rows + i1];
                for (o, i) in out.iter_mut().zip(i0..i1) {
                    *o = src[i * cols + j];
                }
            }
        }
    }
}

/// [`transpose`] of f64s on the code path `isa` (the portable one if this
/// CPU lacks it), so that the tests can force each one.
pub fn transpose_f64_on(isa: Isa, src: &[f64], rows: usize, cols: usize, dst: &mut [f64]) {
    assert_eq!(src.len(), rows * cols, "the source is rows x cols");
    assert_eq!(dst.len(), rows * cols, "the destination is cols x rows");
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx2 if isa.available() => {
            // SAFETY: the CPU has AVX (AVX2 and AVX-512F imply it), checked
            // just above; the lengths are checked above.
            unsafe { avx_f64(src, rows, cols, dst) }
        }
        _ => transpose(src, rows, cols, dst),
    }
}

/// [`transpose`] of f64s with AVX: each 4 x 4 block of whole rows and
/// columns by four loads, eight shuffles and four stores, the edges one
/// number at a time.
///
/// # Safety
///
/// The CPU has AVX; `src` and `dst` are `rows * cols` long.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn avx_f64(src: &[f64], rows: usize, cols: usize, dst: &mut [f64]) {
    use std::arch::x86_64::{
        _mm256_loadu_pd, _mm256_permute2f128_pd, _mm256_storeu_pd, _mm256_unpackhi_pd,
        _mm256_unpacklo_pd,
    };
    let (r4, c4) = (rows - rows % 4, cols - cols % 4);
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    for i in (0..r4).step_by(4) {
        for j in (0..c4).step_by(4) {
            // SAFETY: rows i..i+4 and columns j..j+4 are inside `src`, and
            // rows j..j+4 and columns i..i+4 inside `dst`.
            unsafe {
                let p = s.add(i * cols + j);
                let [a, b, c, e] = [0, 1, 2, 3].map(|r| _mm256_loadu_pd(p.add(r * cols)));
                // (a0 b0 a2 b2), (a1 b1 a3 b3), (c0 e0 c2 e2), (c1 e1 c3 e3).
                let (ab0, ab1) = (_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b));
                let (ce0, ce1) = (_mm256_unpacklo_pd(c, e), _mm256_unpackhi_pd(c, e));
                let q = d.add(j * rows + i);
                _mm256_storeu_pd(q, _mm256_permute2f128_pd::<0x20>(ab0, ce0));
                _mm256_storeu_pd(q.add(rows), _mm256_permute2f128_pd::<0x20>(ab1, ce1));
                _mm256_storeu_pd(q.add(2 * rows), _mm256_permute2f128_pd::<0x31>(ab0, ce0));
                _mm256_storeu_pd(q.add(3 * rows), _mm256_permute2f128_pd::<0x31>(ab1, ce1));
            }
        }
    }
    for i in 0..rows {
        let from = if i < r4 { c4 } else { 0 };
        for j in from..cols {
            dst[j * rows + i] = src[i * cols + j];
        }
    }
}

/// [`transpose`] as the generated code calls it, one entry point per
/// element type.
macro_rules! entry {
    ($name:ident, $t:ty, $f:expr) => {
        /// [`transpose`] of `rows` x `cols` numbers at `src` into `dst`.
        ///
        /// # Safety
        ///
        /// `src` and `dst` each hold `rows * cols` numbers and do not
        /// overlap; the generated code passes buffers checked against their
        /// shapes before it runs.
        pub(crate) unsafe extern "C" fn $name(
            src: *const $t,
            rows: usize,
            cols: usize,
            dst: *mut $t,
        ) {
            let len = rows * cols;
            // SAFETY: the caller's contract.
            let (src, dst) = unsafe {
                (
                    std::slice::from_raw_parts(src, len),
                    std::slice::from_raw_parts_mut(dst, len),
                )
            };
            $f(src, rows, cols, dst);
        }
    };
}

/// [`transpose`] of f64s on the host's path.
fn transpose_f64_host(src: &[f64], rows: usize, cols: usize, dst: &mut [f64]) {
    transpose_f64_on(Isa::host(), src, rows, cols, dst);
}

entry!(transpose_f64, f64, transpose_f64_host);
entry!(transpose_f32, f32, transpose);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape around the block's edges, against the definition.
    #[test]
    fn transposes_every_shape() {
        for rows in [1, 2, 4, 7, 8, 9, 17, 32] {
            for cols in [1, 3, 4, 8, 10, 16, 31, 64] {
                let src: Vec<f64> = (0..rows * cols).map(|x| x as f64 + 0.5).collect();
                let mut dst = vec![f64::NAN; rows * cols];
                transpose(&src, rows, cols, &mut dst);
                for i in 0..rows {
                    for j in 0..cols {
                        assert_eq!(dst[j * rows + i], src[i * cols + j], "{rows}x{cols}");
                    }
                }
                // And back: the transpose of the transpose.
                let mut back = vec![0.0; rows * cols];
                transpose(&dst, cols, rows, &mut back);
                assert_eq!(back, src);
                // Every code path this CPU has gives the same.
                for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
                    let mut on = vec![f64::NAN; rows * cols];
                    transpose_f64_on(isa, &src, rows, cols, &mut on);
                    assert_eq!(on, dst, "{isa:?} {rows}x{cols}");
                }
            }
        }
    }
}
