//! Packing: a block of `A` or `B`, read through its strides (so a
//! transposed operand costs nothing more), copied into panels in the order
//! the micro-kernels read them, the panels of a block's edge padded with
//! zeros (their products land in tile elements that are never stored).

use super::{Element, MR};

/// Packs the `mc` x `kc` block of `A` at `a` (element `(i, p)` at
/// `a + i * rsa + p * csa`) into panels of [`MR`] rows: panel `q` holds,
/// for each `p`, rows `q * MR..(q + 1) * MR` of column `p`.
///
/// # Safety
///
/// Every element of the block is readable; `dst` holds `mc` rounded up to
/// [`MR`] times `kc` numbers.
pub(super) unsafe fn pack_a<T: Element>(
    dst: &mut [T],
    a: *const T,
    (rsa, csa): (usize, usize),
    mc: usize,
    kc: usize,
) {
    for (q, panel) in dst
        .chunks_exact_mut(MR * kc)
        .take(mc.div_ceil(MR))
        .enumerate()
    {
        let rows = MR.min(mc - q * MR);
        // SAFETY: rows `q * MR..q * MR + rows` and columns `0..kc` are in
        // the block.
        unsafe {
            let a = a.add(q * MR * rsa);
            if rsa == 1 {
                for (p, col) in panel.chunks_exact_mut(MR).enumerate() {
                    for (i, x) in col.iter_mut().enumerate() {
                        *x = if i < rows {
                            *a.add(i + p * csa)
                        } else {
                            T::ZERO
                        };
                    }
                }
            } else {
                for i in 0..MR {
                    for p in 0..kc {
                        panel[p * MR + i] = if i < rows {
                            *a.add(i * rsa + p * csa)
                        } else {
                            T::ZERO
                        };
                    }
                }
            }
        }
    }
}

/// Packs the `kc` x `nc` block of `B` at `b` (element `(p, j)` at
/// `b + p * rsb + j * csb`) into panels of `nr` columns: panel `q` holds,
/// for each `p`, columns `q * nr..(q + 1) * nr` of row `p`.
///
/// # Safety
///
/// Every element of the block is readable; `dst` holds `kc` times `nc`
/// rounded up to `nr` numbers.
pub(super) unsafe fn pack_b<T: Element>(
    dst: &mut [T],
    b: *const T,
    (rsb, csb): (usize, usize),
    kc: usize,
    nc: usize,
    nr: usize,
) {
    for (q, panel) in dst
        .chunks_exact_mut(nr * kc)
        .take(nc.div_ceil(nr))
        .enumerate()
    {
        let cols = nr.min(nc - q * nr);
        // SAFETY: rows `0..kc` and columns `q * nr..q * nr + cols` are in
        // the block.
        unsafe {
            let b = b.add(q * nr * csb);
            if csb == 1 || rsb != 1 {
                for (p, row) in panel.chunks_exact_mut(nr).enumerate() {
                    for (j, x) in row.iter_mut().enumerate() {
                        *x = if j < cols {
                            *b.add(p * rsb + j * csb)
                        } else {
                            T::ZERO
                        };
                    }
                }
            } else {
                for j in 0..nr {
                    for p in 0..kc {
                        panel[p * nr + j] = if j < cols {
                            *b.add(p + j * csb)
                        } else {
                            T::ZERO
                        };
                    }
                }
            }
        }
    }
}
