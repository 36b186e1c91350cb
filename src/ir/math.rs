//! The exponential, and the logistic sigmoid built on it, as gradc defines
//! them: a fixed sequence of IEEE operations (fused multiply-adds,
//! additions, a floor, exponent bits), which the interpreter runs on one
//! number and the JIT writes out inline on pairs of them
//! (`backend::translate::math`). Both give the same bits, and neither
//! calls the C library's `exp` per element.
//!
//! `exp(x) = 2^k exp(r)`: `k = round(x / ln 2)`, `r = x - k ln 2` by two
//! fused multiply-adds (`ln 2` in two parts), `|r| <= ln(2)/2`; `exp(r)` is
//! its Taylor polynomial to `r^13` (truncation below 0.05 ulp), by Horner's
//! rule. `2^k` is applied as two powers of two, `2^(k/2)` rounded down and
//! the rest, so that results near the overflow and in the subnormals are
//! rounded once, as a correctly rounded `exp` would round them. The error
//! is within 1 ulp of the true value (tested against the C library's
//! `exp`).

/// `1.5 * 2^52`: added to a number below `2^51` in magnitude, it leaves
/// that number rounded to an integer (to nearest) in the low bits.
pub const SHIFT: f64 = 6_755_399_441_055_744.0;
/// `1 / ln 2`.
pub const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// `ln 2` rounded, and the rest of it.
pub const LN2_HI: f64 = std::f64::consts::LN_2;
pub const LN2_LO: f64 = 2.319_046_813_846_299_6e-17;
/// Below this every result is 0, above `HI` infinity: the argument is
/// clamped to `[LO, HI]` first, so `k` stays within what two powers of two
/// can apply.
pub const LO: f64 = -746.0;
pub const HI: f64 = 710.0;

/// `1 / i!` for `i` in `0..14`, the Taylor coefficients of `exp`.
pub const TAYLOR: [f64; 14] = {
    let mut c = [1.0; 14];
    let mut i = 1;
    while i < 14 {
        c[i] = c[i - 1] / i as f64;
        i += 1;
    }
    c
};

/// The bits of `2^k` for an integer `k` in `-1022..=1023` held as a float:
/// `k + SHIFT` has `k` in its low bits, and `k + 1023` shifted to the
/// exponent field is `2^k` (the addition and shift are modulo 2^64, as the
/// JIT's integer instructions are).
fn pow2(k: f64) -> f64 {
    let bits = (k + SHIFT).to_bits();
    f64::from_bits(bits.wrapping_add(1023) << 52)
}

/// The body of [`exp`], inlined into one copy compiled for FMA hardware and
/// one for any x86-64 (`mul_add` is the same correctly rounded operation in
/// both).
#[inline(always)]
fn exp_body(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let c = x.clamp(LO, HI);
    let z = c.mul_add(LOG2_E, SHIFT);
    let k = z - SHIFT;
    let r = k.mul_add(-LN2_HI, c);
    let r = k.mul_add(-LN2_LO, r);
    let mut p = TAYLOR[13];
    for &t in TAYLOR[..13].iter().rev() {
        p = p.mul_add(r, t);
    }
    let k1 = (k * 0.5).floor();
    let k2 = k - k1;
    p * pow2(k1) * pow2(k2)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
fn exp_fma(x: f64) -> f64 {
    exp_body(x)
}

/// `e^x`, as gradc defines it (see the module's documentation). NaN is
/// returned as it came.
pub fn exp(x: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the feature `exp_fma` is compiled for.
        return unsafe { exp_fma(x) };
    }
    exp_body(x)
}

/// `1 / (1 + e^-x)`: with `e = exp(-|x|)`, `1 / (1 + e)` for `x >= 0`, else
/// `e / (1 + e)`, so that neither side overflows.
pub fn sigmoid(x: f64) -> f64 {
    let e = exp(-x.abs());
    if x >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The distance between `a` and `b` in units in the last place of `b`.
    fn ulps(a: f64, b: f64) -> f64 {
        if a == b {
            return 0.0;
        }
        let ulp = if b == 0.0 || b.is_subnormal() {
            f64::from_bits(1)
        } else {
            let e = b.abs().log2().floor();
            2f64.powf(e - 52.0).max(f64::from_bits(1))
        };
        (a - b).abs() / ulp
    }

    #[test]
    fn exp_is_within_one_ulp_of_the_c_library() {
        // A deterministic walk over [-745, 709.7], dense near 0.
        let mut worst: f64 = 0.0;
        let mut s = 0x2545_f491_4f6c_dd1du64;
        for i in 0..400_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            let x = match i % 3 {
                0 => -745.0 + u * (709.78 + 745.0),
                1 => -20.0 + 40.0 * u,
                _ => (u - 0.5) * 1e-3,
            };
            worst = worst.max(ulps(exp(x), x.exp()));
        }
        assert!(worst <= 1.0, "{worst} ulp");
    }

    #[test]
    fn exp_at_the_edges() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(1.0), std::f64::consts::E);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(f64::NEG_INFINITY).to_bits(), 0);
        assert_eq!(exp(-746.0).to_bits(), 0);
        assert!(exp(709.7) < f64::INFINITY && exp(709.7) > 1e308);
        // The subnormals: exp(-740) is about 4.2e-322.
        let s = exp(-740.0);
        assert!(s.is_subnormal() && ulps(s, (-740f64).exp()) <= 1.0, "{s:e}");
        assert_eq!(exp(-745.1), (-745.1f64).exp());
        let nan = f64::from_bits(0x7ff8_0000_0000_1234);
        assert_eq!(exp(nan).to_bits(), nan.to_bits());
    }

    #[test]
    fn the_fma_copy_and_the_plain_copy_agree() {
        for i in -3000..3000 {
            let x = i as f64 * 0.251;
            assert_eq!(exp_body(x).to_bits(), exp(x).to_bits(), "{x}");
        }
    }

    #[test]
    fn sigmoid_is_the_logistic_function() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
        for i in -400..400 {
            let x = i as f64 * 0.1;
            let want = 1.0 / (1.0 + (-x).exp());
            assert!((sigmoid(x) - want).abs() <= 4e-16 * want.max(1e-300), "{x}");
        }
    }
}
