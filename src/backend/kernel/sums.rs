//! The sums along the rows of a product's left operand, computed with the
//! product ([`super::gemm`]'s `sums`): `gmm`'s gradient adds up `dQx` along
//! its last axis and multiplies it by the points, `dQx @ x`, and the two
//! read the same 16 MB (at d = 20, k = 100).
//!
//! The kernel computes `A [B | 1]`, `B` with a column of ones: the last
//! column of the result is each row of `A` added in order from -0 (`a * 1`
//! is `a`, and every element of a product is its own chain in `k` order),
//! the bits of a sum. Where that column falls in a lane the tiles compute
//! anyway (a masked one: `B` of 20 columns in three vectors of 8), the
//! sums cost nothing more than copying `B` and `C`; elsewhere they are
//! added apart ([`row_sums`]).

use super::split::{in_parts, Product};
use super::{direct_on, tile_width, Element, Isa, Route};

/// Whether the product of this shape (`B`'s columns `csb` apart) would add
/// up `A`'s rows in lanes it computes anyway: no more lanes a row of `A`
/// with a column more, on `B` copied into rows.
pub fn summing_is_free<T: Element>(
    (isa, route): (Isa, Route),
    (m, n, k): (usize, usize, usize),
    csb: usize,
) -> bool {
    let lanes = |n: usize, csb: usize| {
        let (_, nr) = T::micro(isa);
        if !direct_on::<T>(isa, route, (m, n, k), csb) {
            return n.div_ceil(nr) * nr;
        }
        let wide = T::wide_tiles(isa).is_some();
        let (mut jr, mut lanes) = (0, 0);
        while jr < n {
            let width = tile_width(n - jr, nr, wide);
            lanes += width;
            jr += width.min(n - jr);
        }
        lanes
    };
    lanes(n + 1, 1) <= lanes(n, csb)
}

/// The product `p` (`p.sums` not null) in `parts` parts, and the sums of
/// `A`'s rows: as the last column of `A [B | 1]` where that is free
/// ([`summing_is_free`]), else apart.
///
/// # Safety
///
/// As [`super::gemm`].
pub(super) unsafe fn summed<T: Element>(parts: usize, path: (Isa, Route), p: Product<T>) {
    let (m, n, k) = p.shape;
    let (rsb, csb) = p.sb;
    let alone = Product {
        sums: std::ptr::null_mut(),
        ..p
    };
    if !summing_is_free::<T>(path, p.shape, csb) {
        // SAFETY: the caller's contract.
        unsafe {
            row_sums((m, k), p.a, p.sa, p.sums);
            in_parts(parts, path, alone);
        }
        return;
    }
    let w = n + 1;
    let mut ones = Vec::with_capacity(k * w);
    for q in 0..k {
        // SAFETY: `(q, j)` is an element of `B`.
        ones.extend((0..n).map(|j| unsafe { *p.b.add(q * rsb + j * csb) }));
        ones.push(T::ONE);
    }
    // The ones' column starts at -0 however `C` does.
    let mut c = vec![T::NEG_ZERO; m * w];
    if p.resume {
        for i in 0..m {
            for j in 0..n {
                // SAFETY: `(i, j)` is an element of `C`.
                c[i * w + j] = unsafe { *p.c.add(i * p.rsc + j) };
            }
        }
    }
    let wider = Product {
        shape: (m, w, k),
        b: ones.as_ptr(),
        sb: (w, 1),
        c: c.as_mut_ptr(),
        rsc: w,
        ..alone
    };
    // SAFETY: the caller's contract for `A`; `B` and `C` are the buffers
    // just made, of `w` columns.
    unsafe { in_parts(parts, path, wider) };
    for i in 0..m {
        for j in 0..n {
            // SAFETY: `(i, j)` is an element of `C`.
            unsafe { *p.c.add(i * p.rsc + j) = c[i * w + j] };
        }
        // SAFETY: `sums` holds a number for each row.
        unsafe { *p.sums.add(i) = c[i * w + n] };
    }
}

/// The sum along each of the `m` rows of `A` (`k` elements, `(i, p)` at
/// `a + i * rsa + p * csa`), added in order from -0, into `sums`: four rows
/// at a time, so that their chains of additions overlap.
///
/// # Safety
///
/// As [`super::gemm`]'s for `A` and `sums`.
unsafe fn row_sums<T: Element>(
    (m, k): (usize, usize),
    a: *const T,
    (rsa, csa): (usize, usize),
    sums: *mut T,
) {
    const ROWS: usize = 4;
    for first in (0..m).step_by(ROWS) {
        let rows = ROWS.min(m - first);
        let mut acc = [T::NEG_ZERO; ROWS];
        for p in 0..k {
            for (i, s) in acc.iter_mut().enumerate().take(rows) {
                // SAFETY: `(first + i, p)` is an element of `A`.
                *s = *s + unsafe { *a.add((first + i) * rsa + p * csa) };
            }
        }
        for (i, s) in acc.iter().enumerate().take(rows) {
            // SAFETY: `sums` holds a number for each row.
            unsafe { *sums.add(first + i) = *s };
        }
    }
}
