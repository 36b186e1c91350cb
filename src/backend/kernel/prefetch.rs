//! A prefetch the generated code calls: a loop going backwards over the
//! rows a forward loop saved (a reverse-mode gradient's loop over its
//! steps) asks for the row of its next step while it computes this one's,
//! when it reads the row in pieces. Going down through memory a row at a
//! time, each piece read by a short loop of its own, the rows were cache
//! misses that the hardware's prefetchers did not see coming: `lstm`'s
//! saved states at l = 4, c = 4096 (19 MB, 4.6 KB a step, 40 pieces).

/// The symbol the prefetch is registered and imported under.
pub(crate) const PREFETCH: &str = "gradc_prefetch";

/// Asks for the cache lines of the `bytes` bytes from `p` to be brought
/// into the L2 cache, beside the current step's row (the L1's and the
/// L2's hints measured alike on `lstm`).
///
/// A prefetch never faults and changes nothing but the cache, so `p` may
/// be any address (the row before a loop's first is outside its buffer).
pub(crate) extern "C" fn prefetch(p: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    for off in (0..bytes).step_by(64) {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        // SAFETY: a prefetch reads nothing a program sees and never faults,
        // whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(off).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}
