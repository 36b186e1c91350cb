//! A product split over threads: parts of the rows of `A` and `C`, each a
//! task of rayon's global pool ([`in_parts`]), when the process allows more
//! than one thread ([`set_threads`], `gradc gradbench --threads`) and the
//! product is large ([`parts`]). Each element is computed as in the whole
//! product, so the bits are the same at any count.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{direct_on, serial, Element, Isa, Route, MR};
use crate::backend::subnormals::FlushSubnormals;

/// [`gemm`] in `parts` parts of the rows of `A` and `C` (at least [`MR`]
/// rows each, as few parts as that leaves), each a task of rayon's global
/// pool, on the route the whole product takes and with subnormals flushed
/// if the caller flushes them; on the calling thread if `parts` is 1. Each
/// element is computed as by the whole product.
///
/// # Safety
///
/// As [`gemm`].
pub(super) unsafe fn in_parts<T: Element>(parts: usize, (isa, route): (Isa, Route), p: Product<T>) {
    let Product {
        shape: (m, n, k),
        sb: (_, csb),
        c,
        rsc,
        resume,
        sums,
        ..
    } = p;
    debug_assert!(isa.available());
    if m == 0 {
        return;
    }
    if !sums.is_null() {
        // SAFETY: the caller's contract.
        unsafe { super::sums::summed(parts, (isa, route), p) };
        return;
    }
    if n == 0 || k == 0 {
        if !resume {
            for i in 0..m {
                for j in 0..n {
                    // SAFETY: `(i, j)` is an element of `C`.
                    unsafe { *c.add(i * rsc + j) = T::NEG_ZERO };
                }
            }
        }
        return;
    }
    if parts > 1 && m > MR {
        let route = if direct_on::<T>(isa, route, (m, n, k), csb) {
            Route::Direct
        } else {
            Route::Packed
        };
        let rows = m.div_ceil(parts).next_multiple_of(MR);
        // The parts run in the caller's mode of subnormals.
        let flush = FlushSubnormals::is_on();
        rayon::scope(|s| {
            for i in (0..m).step_by(rows) {
                let part = rows.min(m - i);
                s.spawn(move |_| {
                    let _flush = flush.then(FlushSubnormals::on);
                    // SAFETY: the caller's contract, for rows `i..i + part`
                    // of `A` and `C`; the parts' rows of `C` are disjoint,
                    // and `A` and `B` are only read.
                    unsafe { serial((isa, route), p.rows(i, part)) };
                });
            }
        });
        return;
    }
    // SAFETY: the caller's contract.
    unsafe { serial((isa, route), p) };
}

/// How many threads a product may use ([`set_threads`]).
static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Lets a product of [`PARALLEL_WORK`] multiply-adds or more, and a large
/// loop of the generated code ([`super::runs`]), use up to `n` threads of
/// rayon's global pool (1, the default: the calling thread alone), for the
/// rest of the process.
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

/// Held by each test that sets the thread count, so that another does not
/// change it meanwhile.
#[cfg(test)]
pub(crate) static SETTING_THREADS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How many threads a product, or a loop of the generated code
/// ([`super::runs`]), may use.
pub(crate) fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// The fewest multiply-adds of a product split over threads: about a
/// millisecond of work, against the tens of microseconds of waking the
/// pool's threads.
const PARALLEL_WORK: usize = 1 << 22;

/// The fewest multiply-adds of a part of a product split over threads, so
/// that a machine of many cores does not cut one into parts smaller than
/// what a task costs to hand over.
const PART_WORK: usize = 1 << 20;

/// How many parts of its rows a product is computed in, each by a thread:
/// 1 below [`PARALLEL_WORK`], else as many as the threads allowed, but
/// none of fewer than [`PART_WORK`] multiply-adds.
pub(super) fn parts((m, n, k): (usize, usize, usize)) -> usize {
    let threads = threads();
    let work = m.saturating_mul(n).saturating_mul(k);
    if work >= PARALLEL_WORK {
        threads.min(work / PART_WORK)
    } else {
        1
    }
}

/// A product as [`super::gemm`] takes it: `C = A B` (or `C += A B` if
/// `resume`) of this `(m, n, k)` shape, element `(i, p)` of `A` at `a + i *
/// sa.0 + p * sa.1`, `(p, j)` of `B` at `b + p * sb.0 + j * sb.1`, `(i, j)`
/// of `C` at `c + i * rsc + j`; and the sums along the rows of `A` into
/// `sums` unless it is null.
#[derive(Copy, Clone)]
pub(super) struct Product<T> {
    pub shape: (usize, usize, usize),
    pub a: *const T,
    pub sa: (usize, usize),
    pub b: *const T,
    pub sb: (usize, usize),
    pub c: *mut T,
    pub rsc: usize,
    pub resume: bool,
    pub sums: *mut T,
}

impl<T> Product<T> {
    /// The product of rows `i..i + rows` of `A` and `C` (and of their
    /// sums; a method, so that a closure captures the whole product, not
    /// its pointers alone).
    ///
    /// # Safety
    ///
    /// The rows are rows of `A` and `C`.
    unsafe fn rows(self, i: usize, rows: usize) -> Product<T> {
        let (_, n, k) = self.shape;
        Product {
            shape: (rows, n, k),
            // SAFETY: the caller's contract.
            a: unsafe { self.a.add(i * self.sa.0) },
            // SAFETY: the caller's contract.
            c: unsafe { self.c.add(i * self.rsc) },
            sums: if self.sums.is_null() {
                self.sums
            } else {
                // SAFETY: the caller's contract.
                unsafe { self.sums.add(i) }
            },
            ..self
        }
    }
}

// SAFETY: the threads that receive a product read `A` and `B` and write
// disjoint rows of `C` and of the sums, within the call of `gemm` that
// owns them, which waits for them all.
unsafe impl<T> Send for Product<T> {}
// SAFETY: as `Send`: shared, it is only copied.
unsafe impl<T> Sync for Product<T> {}
