//! Subnormal numbers flushed to zero, as an option, while compiled code
//! runs: x86-64's MXCSR register has a bit that makes a result too small
//! to be a normal number zero (flush-to-zero) and one that reads such an
//! operand as zero (denormals-are-zero). XLA's CPU runtime, and so JAX,
//! sets both; PyTorch leaves them off, as gradc does by default.
//!
//! It is a matter of speed: an x86 core takes on the order of a hundred
//! cycles for an arithmetic instruction whose operand or result is
//! subnormal, and a product whose operands are 2% subnormal runs at half
//! speed or less. It changes results only where a value's magnitude is
//! below 2^-1022 (about 2.2e-308), which becomes a zero of the same sign;
//! the interpreter run on the same thread computes the same (Rust's
//! floating-point arithmetic uses the same instructions).

/// The MXCSR bits: flush-to-zero (15) and denormals-are-zero (6).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

/// Subnormals flushed to zero on this thread until dropped, when the
/// previous mode comes back.
pub struct FlushSubnormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl FlushSubnormals {
    /// Whether this CPU has the mode (x86-64).
    pub const SUPPORTED: bool = cfg!(target_arch = "x86_64");

    /// Turns the mode on, or `None` where the CPU has none
    /// ([`FlushSubnormals::SUPPORTED`]).
    pub fn on() -> Option<FlushSubnormals> {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = read();
            // SAFETY: the two bits change how results and operands that are
            // subnormal are rounded, nothing the Rust code relies on for
            // safety; the other bits (masks, rounding) are kept.
            unsafe { write(saved | FTZ_DAZ) };
            Some(FlushSubnormals { saved })
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    }
}

impl FlushSubnormals {
    /// Whether subnormals are flushed on this thread now: code that hands
    /// part of a computation to other threads turns the mode on there too
    /// (the kernel's products in parts), so that the results are those of
    /// one thread.
    pub fn is_on() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            read() & FTZ_DAZ == FTZ_DAZ
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }
}

impl Drop for FlushSubnormals {
    fn drop(&mut self) {
        // SAFETY: the register as it was before `on`.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            write(self.saved)
        };
    }
}

/// This thread's MXCSR.
#[cfg(target_arch = "x86_64")]
fn read() -> u32 {
    let mut csr: u32 = 0;
    // SAFETY: `stmxcsr` stores the register's 4 bytes at the address of
    // `csr`, a live, aligned u32.
    unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
    csr
}

/// Sets this thread's MXCSR.
///
/// # Safety
///
/// `csr` masks every floating-point exception, as the Rust ABI assumes.
#[cfg(target_arch = "x86_64")]
unsafe fn write(csr: u32) {
    // SAFETY: `ldmxcsr` loads 4 bytes from the address of `csr`, a live,
    // aligned u32; the caller keeps the exceptions masked.
    unsafe { std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly)) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    const SUBNORMAL: f64 = 1e-310;

    #[test]
    fn subnormals_are_zeros_while_on_and_come_back_after() {
        assert_eq!(black_box(SUBNORMAL) * black_box(1.0), SUBNORMAL);
        let normal = black_box(1e-300f64) * black_box(1e-7);
        assert!(normal.is_normal());
        let flush = FlushSubnormals::on();
        assert_eq!(flush.is_some(), FlushSubnormals::SUPPORTED);
        if let Some(flush) = flush {
            // An operand read as zero, and a result too small made zero,
            // with its sign.
            assert_eq!(
                (black_box(SUBNORMAL) * black_box(1.0)).to_bits(),
                0.0f64.to_bits()
            );
            assert_eq!(
                (black_box(-1e-160f64) * black_box(1e-160)).to_bits(),
                (-0.0f64).to_bits()
            );
            // Normal numbers are untouched.
            assert_eq!(black_box(1e-300f64) * black_box(1e-7), normal);
            assert!(FlushSubnormals::is_on());
            drop(flush);
        }
        assert!(!FlushSubnormals::is_on());
        assert_eq!(black_box(SUBNORMAL) * black_box(1.0), SUBNORMAL);
        assert_eq!(black_box(1e-160f64) * black_box(1e-160), 1e-320);
    }
}
