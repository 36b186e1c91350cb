//! A loop of the generated code split over threads: the translator makes
//! a large run's loop (a fused run of elementwise work, see
//! `translate::parts`) a function of its own over a range of its
//! iterations, and the code calls [`in_parts`] with it in place of the
//! loop. The iterations write disjoint elements and nothing carries from
//! one to the next, so each element is computed as by the whole loop, on
//! any thread, to the same bits.

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
// translator's contract); `in_parts` returns when every part is done.
unsafe impl Send for Call {}

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

/// Runs iterations `0..count` of `part` in as many parts as the threads
/// allowed ([`super::set_threads`]), each a task of rayon's global pool,
/// with subnormals flushed if the caller flushes them; on the calling
/// thread if one thread is allowed or `count` is 1.
///
/// # Safety
///
/// `part` and its arguments are as the translator defines them: a loop
/// whose iterations each read memory no iteration writes and write
/// elements no other iteration touches, its pointers valid for the whole
/// call.
pub(crate) unsafe extern "C" fn in_parts(
    part: Part,
    params: *const *const f64,
    inputs: *const *const f64,
    outputs: *const *mut f64,
    scratch: *mut f64,
    captured: *const u8,
    count: usize,
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
    if REVERSED.load(std::sync::atomic::Ordering::Relaxed) {
        for i in (0..count).rev() {
            // SAFETY: the caller's contract.
            unsafe { call.run(i, i + 1) };
        }
        return;
    }
    let parts = threads().min(count);
    if parts <= 1 {
        if count > 0 {
            // SAFETY: the caller's contract.
            unsafe { call.run(0, count) };
        }
        return;
    }
    let each = count.div_ceil(parts);
    let flush = FlushSubnormals::is_on();
    rayon::scope(move |s| {
        for lo in (0..count).step_by(each) {
            let hi = (lo + each).min(count);
            s.spawn(move |_| {
                let _flush = flush.then(FlushSubnormals::on);
                // SAFETY: the caller's contract; the parts' ranges are
                // disjoint.
                unsafe { call.run(lo, hi) };
            });
        }
    });
}
