//! A loop of the generated code split over threads: the translator makes
//! a large run's loop (a fused run of elementwise work, see
//! `translate::parts`) a function of its own over a range of its
//! iterations, and the code calls [`in_parts`] with it in place of the
//! loop. The iterations write disjoint elements and nothing carries from
//! one to the next, so each element is computed as by the whole loop, on
//! any thread, to the same bits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::split::threads;
use crate::backend::subnormals::FlushSubnormals;

/// The symbol [`in_parts`] is registered and imported under.
pub(crate) const IN_PARTS: &str = "gradc_in_parts";

/// A loop's iterations `lo..hi` (`lo < hi`), as the translator defines
/// them: the entry's four pointers (`crate::backend::abi::EntryFn`), then
/// the values the loop reads from the function that calls it (stored by
/// that function, 16 bytes each).
pub(crate) type Part = unsafe extern "C" fn(
    params: *const *const f64,
    inputs: *const *const f64,
    outputs: *const *mut f64,
    scratch: *mut f64,
    captured: *const u8,
    lo: usize,
    hi: usize,
);

/// The arguments of a [`Part`] but its range, sent to the threads.
#[derive(Copy, Clone)]
struct Call {
    part: Part,
    params: *const *const f64,
    inputs: *const *const f64,
    outputs: *const *mut f64,
    scratch: *mut f64,
    captured: *const u8,
}

// SAFETY: the pointers are only passed on to `part`, whose iterations
// write disjoint elements and only read what no iteration writes (the
// translator's contract), and only while `in_parts` waits for them.
unsafe impl Send for Call {}
// SAFETY: as for `Send`; a `&Call` only gives a copy of the pointers.
unsafe impl Sync for Call {}

impl Call {
    /// Iterations `lo..hi`.
    ///
    /// # Safety
    ///
    /// As [`in_parts`].
    unsafe fn run(self, lo: usize, hi: usize) {
        let Call {
            part,
            params,
            inputs,
            outputs,
            scratch,
            captured,
        } = self;
        // SAFETY: the caller's contract.
        unsafe { part(params, inputs, outputs, scratch, captured, lo, hi) }
    }
}

/// In tests: every iteration alone on the calling thread, the last first,
/// so that an iteration that depends on another one shows.
#[cfg(test)]
pub(crate) static REVERSED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Runs iterations `0..count` of `part`, `grain` at a time, on the
/// calling thread and on as many more as the threads allowed
/// ([`super::set_threads`]) and the grains give work to, each a task of
/// rayon's global pool that takes subnormals' mode from the caller.
/// Every thread claims the next grain until none is left, so that a thread
/// that starts late (one woken from sleep) takes less; the call returns
/// when every grain is done.
///
/// # Safety
///
/// `part` and its arguments are as the translator defines them: a loop
/// whose iterations each read memory no iteration writes and write
/// elements no other iteration touches, its pointers valid for the whole
/// call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe extern "C" fn in_parts(
    part: Part,
    params: *const *const f64,
    inputs: *const *const f64,
    outputs: *const *mut f64,
    scratch: *mut f64,
    captured: *const u8,
    count: usize,
    grain: usize,
) {
    let call = Call {
        part,
        params,
        inputs,
        outputs,
        scratch,
        captured,
    };
    #[cfg(test)]
    if REVERSED.load(Ordering::Relaxed) {
        for i in (0..count).rev() {
            // SAFETY: the caller's contract.
            unsafe { call.run(i, i + 1) };
        }
        return;
    }
    let grain = grain.max(1);
    let helpers = threads().min(count.div_ceil(grain)).saturating_sub(1);
    if helpers == 0 {
        if count > 0 {
            // SAFETY: the caller's contract.
            unsafe { call.run(0, count) };
        }
        return;
    }
    let shared = Arc::new(Shared {
        call,
        count,
        grain,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
    });
    let flush = FlushSubnormals::is_on();
    for _ in 0..helpers {
        let shared = Arc::clone(&shared);
        rayon::spawn(move || {
            let _flush = flush.then(FlushSubnormals::on);
            // SAFETY: the caller's contract; a helper that starts after
            // every grain is claimed (the call may have returned) runs
            // nothing.
            unsafe { shared.work() };
        });
    }
    // SAFETY: the caller's contract.
    unsafe { shared.work() };
    // The grains the helpers claimed: a few microseconds' work each.
    let mut spins = 0u32;
    while shared.done.load(Ordering::Acquire) < count {
        if spins < 1 << 12 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

/// What the threads of one call of [`in_parts`] share: the next iteration
/// to claim, and how many are done.
struct Shared {
    call: Call,
    count: usize,
    grain: usize,
    next: AtomicUsize,
    done: AtomicUsize,
}

impl Shared {
    /// Claims `grain` iterations at a time and runs them, until none is
    /// left.
    ///
    /// # Safety
    ///
    /// As [`in_parts`], while any iteration is left to claim.
    unsafe fn work(&self) {
        loop {
            let lo = self.next.fetch_add(self.grain, Ordering::Relaxed);
            if lo >= self.count {
                return;
            }
            let hi = (lo + self.grain).min(self.count);
            // SAFETY: the caller's contract; each range is claimed once.
            unsafe { self.call.run(lo, hi) };
            // Release: the iterations' stores are seen by the caller once
            // it sees them counted.
            self.done.fetch_add(hi - lo, Ordering::Release);
        }
    }
}
