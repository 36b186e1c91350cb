//! The exponential, and the logistic sigmoid and `tanh` built on it, as
//! gradc defines them: a fixed sequence of IEEE operations (fused multiply-adds,
//! additions, a table lookup, exponent bits), which the interpreter runs on
//! one number and the JIT's kernel on pairs of them
//! (`backend::kernel::exp`). Both give the same bits.
//!
//! `exp(x) = 2^m 2^(j/128) exp(r)`: `k = round(128 x / ln 2) = 128 m + j`,
//! `r = x - k ln(2)/128` by two fused multiply-adds (`ln 2` in two parts),
//! `|r| <= ln(2)/256`; `exp(r) - 1` is its Taylor polynomial to `r^5`
//! (truncation below 2^-60), and `2^(j/128)`, held to 106 bits in two
//! parts, takes it as `hi + (lo + hi p)`, rounded once at the end, both
//! parts first scaled by `2^m` (exact while `|x| <= 708`). Beyond that,
//! `2^m` is applied afterwards as two powers of two, `2^(m/2)` rounded down
//! and the rest, so that results near the overflow and in the subnormals
//! are rounded once, as a correctly rounded `exp` would round them. It is
//! within 1 ulp of the C library's `exp` (tested), and a call
//! costs about what the C library's does: the lookup keeps the polynomial,
//! and so the chain of dependent operations, short.

/// `1.5 * 2^52`: added to a number below `2^51` in magnitude, it leaves
/// that number rounded to an integer (to nearest) in the low bits.
pub const SHIFT: f64 = 6_755_399_441_055_744.0;
/// `128 / ln 2`.
pub const SCALE: f64 = std::f64::consts::LOG2_E * 128.0;
/// `ln(2) / 128` rounded, and the rest of it.
pub const STEP_HI: f64 = std::f64::consts::LN_2 / 128.0;
pub const STEP_LO: f64 = 2.319_046_813_846_299_6e-17 / 128.0;
/// Below this every result is 0, above `HI` infinity: the argument is
/// clamped to `[LO, HI]` first, so `m` stays within what two powers of two
/// can apply.
const LO: f64 = -746.0;
const HI: f64 = 710.0;

/// `1 / i!` for `i` in `0..6`, the Taylor coefficients of `exp`.
pub const TAYLOR: [f64; 6] = [1.0, 1.0, 0.5, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0];

/// `2^(j/128)` for `j` in `0..128`, as the bits of its nearest f64 and of
/// the rest (`hi + lo` is within 2^-106 of it; computed to 60 digits).
#[rustfmt::skip]
const POW2_BITS: [[u64; 2]; 128] = [
    [0x3ff0000000000000, 0x0000000000000000],
    [0x3ff0163da9fb3335, 0x3c9b61299ab8cdb7],
    [0x3ff02c9a3e778061, 0xbc719083535b085d],
    [0x3ff04315e86e7f85, 0xbc90a31c1977c96e],
    [0x3ff059b0d3158574, 0x3c8d73e2a475b465],
    [0x3ff0706b29ddf6de, 0xbc8c91dfe2b13c27],
    [0x3ff0874518759bc8, 0x3c6186be4bb284ff],
    [0x3ff09e3ecac6f383, 0x3c91487818316136],
    [0x3ff0b5586cf9890f, 0x3c98a62e4adc610b],
    [0x3ff0cc922b7247f7, 0x3c901edc16e24f71],
    [0x3ff0e3ec32d3d1a2, 0x3c403a1727c57b53],
    [0x3ff0fb66affed31b, 0xbc6b9bedc44ebd7b],
    [0x3ff11301d0125b51, 0xbc96c51039449b3a],
    [0x3ff12abdc06c31cc, 0xbc51b514b36ca5c7],
    [0x3ff1429aaea92de0, 0xbc932fbf9af1369e],
    [0x3ff15a98c8a58e51, 0x3c82406ab9eeab0a],
    [0x3ff172b83c7d517b, 0xbc819041b9d78a76],
    [0x3ff18af9388c8dea, 0xbc911023d1970f6c],
    [0x3ff1a35beb6fcb75, 0x3c8e5b4c7b4968e4],
    [0x3ff1bbe084045cd4, 0xbc995386352ef607],
    [0x3ff1d4873168b9aa, 0x3c9e016e00a2643c],
    [0x3ff1ed5022fcd91d, 0xbc91df98027bb78c],
    [0x3ff2063b88628cd6, 0x3c8dc775814a8495],
    [0x3ff21f49917ddc96, 0x3c82a97e9494a5ee],
    [0x3ff2387a6e756238, 0x3c99b07eb6c70573],
    [0x3ff251ce4fb2a63f, 0x3c8ac155bef4f4a4],
    [0x3ff26b4565e27cdd, 0x3c82bd339940e9d9],
    [0x3ff284dfe1f56381, 0xbc9a4c3a8c3f0d7e],
    [0x3ff29e9df51fdee1, 0x3c8612e8afad1255],
    [0x3ff2b87fd0dad990, 0xbc410adcd6381aa4],
    [0x3ff2d285a6e4030b, 0x3c90024754db41d5],
    [0x3ff2ecafa93e2f56, 0x3c71ca0f45d52383],
    [0x3ff306fe0a31b715, 0x3c86f46ad23182e4],
    [0x3ff32170fc4cd831, 0x3c8a9ce78e18047c],
    [0x3ff33c08b26416ff, 0x3c932721843659a6],
    [0x3ff356c55f929ff1, 0xbc8b5cee5c4e4628],
    [0x3ff371a7373aa9cb, 0xbc963aeabf42eae2],
    [0x3ff38cae6d05d866, 0xbc9e958d3c9904bd],
    [0x3ff3a7db34e59ff7, 0xbc75e436d661f5e3],
    [0x3ff3c32dc313a8e5, 0xbc9efff8375d29c3],
    [0x3ff3dea64c123422, 0x3c8ada0911f09ebc],
    [0x3ff3fa4504ac801c, 0xbc97d023f956f9f3],
    [0x3ff4160a21f72e2a, 0xbc5ef3691c309278],
    [0x3ff431f5d950a897, 0xbc81c7dde35f7999],
    [0x3ff44e086061892d, 0x3c489b7a04ef80d0],
    [0x3ff46a41ed1d0057, 0x3c9c944bd1648a76],
    [0x3ff486a2b5c13cd0, 0x3c73c1a3b69062f0],
    [0x3ff4a32af0d7d3de, 0x3c99cb62f3d1be56],
    [0x3ff4bfdad5362a27, 0x3c7d4397afec42e2],
    [0x3ff4dcb299fddd0d, 0x3c98ecdbbc6a7833],
    [0x3ff4f9b2769d2ca7, 0xbc94b309d25957e3],
    [0x3ff516daa2cf6642, 0xbc8f768569bd93ef],
    [0x3ff5342b569d4f82, 0xbc807abe1db13cad],
    [0x3ff551a4ca5d920f, 0xbc8d689cefede59b],
    [0x3ff56f4736b527da, 0x3c99bb2c011d93ad],
    [0x3ff58d12d497c7fd, 0x3c8295e15b9a1de8],
    [0x3ff5ab07dd485429, 0x3c96324c054647ad],
    [0x3ff5c9268a5946b7, 0x3c3c4b1b816986a2],
    [0x3ff5e76f15ad2148, 0x3c9ba6f93080e65e],
    [0x3ff605e1b976dc09, 0xbc93e2429b56de47],
    [0x3ff6247eb03a5585, 0xbc9383c17e40b497],
    [0x3ff6434634ccc320, 0xbc8c483c759d8933],
    [0x3ff6623882552225, 0xbc9bb60987591c34],
    [0x3ff68155d44ca973, 0x3c6038ae44f73e65],
    [0x3ff6a09e667f3bcd, 0xbc9bdd3413b26456],
    [0x3ff6c012750bdabf, 0xbc72895667ff0b0d],
    [0x3ff6dfb23c651a2f, 0xbc6bbe3a683c88ab],
    [0x3ff6ff7df9519484, 0xbc883c0f25860ef6],
    [0x3ff71f75e8ec5f74, 0xbc816e4786887a99],
    [0x3ff73f9a48a58174, 0xbc90a8d96c65d53c],
    [0x3ff75feb564267c9, 0xbc90245957316dd3],
    [0x3ff780694fde5d3f, 0x3c9866b80a02162d],
    [0x3ff7a11473eb0187, 0xbc841577ee04992f],
    [0x3ff7c1ed0130c132, 0x3c9f124cd1164dd6],
    [0x3ff7e2f336cf4e62, 0x3c705d02ba15797e],
    [0x3ff80427543e1a12, 0xbc927c86626d972b],
    [0x3ff82589994cce13, 0xbc9d4c1dd41532d8],
    [0x3ff8471a4623c7ad, 0xbc88d684a341cdfb],
    [0x3ff868d99b4492ed, 0xbc9fc6f89bd4f6ba],
    [0x3ff88ac7d98a6699, 0x3c9994c2f37cb53a],
    [0x3ff8ace5422aa0db, 0x3c96e9f156864b27],
    [0x3ff8cf3216b5448c, 0xbc70d55e32e9e3aa],
    [0x3ff8f1ae99157736, 0x3c85cc13a2e3976c],
    [0x3ff9145b0b91ffc6, 0xbc9dd6792e582524],
    [0x3ff93737b0cdc5e5, 0xbc675fc781b57ebc],
    [0x3ff95a44cbc8520f, 0xbc764b7c96a5f039],
    [0x3ff97d829fde4e50, 0xbc9d185b7c1b85d1],
    [0x3ff9a0f170ca07ba, 0xbc9173bd91cee632],
    [0x3ff9c49182a3f090, 0x3c7c7c46b071f2be],
    [0x3ff9e86319e32323, 0x3c7824ca78e64c6e],
    [0x3ffa0c667b5de565, 0xbc9359495d1cd533],
    [0x3ffa309bec4a2d33, 0x3c96305c7ddc36ab],
    [0x3ffa5503b23e255d, 0xbc9d2f6edb8d41e1],
    [0x3ffa799e1330b358, 0x3c9bcb7ecac563c7],
    [0x3ffa9e6b5579fdbf, 0x3c90fac90ef7fd31],
    [0x3ffac36bbfd3f37a, 0xbc8f9234cae76cd0],
    [0x3ffae89f995ad3ad, 0x3c97a1cd345dcc81],
    [0x3ffb0e07298db666, 0xbc9bdef54c80e425],
    [0x3ffb33a2b84f15fb, 0xbc62805e3084d708],
    [0x3ffb59728de5593a, 0xbc9c71dfbbba6de3],
    [0x3ffb7f76f2fb5e47, 0xbc75584f7e54ac3b],
    [0x3ffba5b030a1064a, 0xbc9efcd30e54292e],
    [0x3ffbcc1e904bc1d2, 0x3c823dd07a2d9e84],
    [0x3ffbf2c25bd71e09, 0xbc9efdca3f6b9c73],
    [0x3ffc199bdd85529c, 0x3c811065895048dd],
    [0x3ffc40ab5fffd07a, 0x3c9b4537e083c60a],
    [0x3ffc67f12e57d14b, 0x3c92884dff483cad],
    [0x3ffc8f6d9406e7b5, 0x3c71acbc48805c44],
    [0x3ffcb720dcef9069, 0x3c7503cbd1e949db],
    [0x3ffcdf0b555dc3fa, 0xbc8dd83b53829d72],
    [0x3ffd072d4a07897c, 0xbc9cbc3743797a9c],
    [0x3ffd2f87080d89f2, 0xbc9d487b719d8578],
    [0x3ffd5818dcfba487, 0x3c82ed02d75b3707],
    [0x3ffd80e316c98398, 0xbc911ec18beddfe8],
    [0x3ffda9e603db3285, 0x3c9c2300696db532],
    [0x3ffdd321f301b460, 0x3c92da5778f018c3],
    [0x3ffdfc97337b9b5f, 0xbc91a5cd4f184b5c],
    [0x3ffe264614f5a129, 0xbc97b627817a1496],
    [0x3ffe502ee78b3ff6, 0x3c839e8980a9cc8f],
    [0x3ffe7a51fbc74c83, 0x3c92d522ca0c8de2],
    [0x3ffea4afa2a490da, 0xbc9e9c23179c2893],
    [0x3ffecf482d8e67f1, 0xbc9c93f3b411ad8c],
    [0x3ffefa1bee615a27, 0x3c9dc7f486a4b6b0],
    [0x3fff252b376bba97, 0x3c93a1a5bf0d8e43],
    [0x3fff50765b6e4540, 0x3c99d3e12dd8a18b],
    [0x3fff7bfdad9cbe14, 0xbc9dbb12d006350a],
    [0x3fffa7c1819e90d8, 0x3c874853f3a5931e],
    [0x3fffd3c22b8f71f1, 0x3c62eb74966579e7],
];

/// `2^(j/128)` for `j` in `0..128`: its nearest f64 and the rest.
pub static POW2: [[f64; 2]; 128] = {
    let mut t = [[0.0; 2]; 128];
    let mut j = 0;
    while j < 128 {
        t[j] = [
            f64::from_bits(POW2_BITS[j][0]),
            f64::from_bits(POW2_BITS[j][1]),
        ];
        j += 1;
    }
    t
};

/// `exp(r) - 1` for `|r| <= ln(2)/256`: `r + r^2 (1/2 + r/6 + r^2/24 +
/// r^3/120)`, the inner terms paired by Estrin's scheme.
///
/// A macro over `ops`, anything with `mul(a, b)`, `fma(a, b, c)` (`a b + c`
/// rounded once) and `taylor(i)` (`TAYLOR[i]`): f64s here and the kernel's
/// SIMD registers, which so compute the same sequence, each with its own
/// instructions inlined.
macro_rules! exp_polynomial {
    ($ops:expr, $r:expr) => {{
        let r = $r;
        let r2 = $ops.mul(r, r);
        let (c5, c4, c3, c2) = (
            $ops.taylor(5),
            $ops.taylor(4),
            $ops.taylor(3),
            $ops.taylor(2),
        );
        let a = $ops.fma(c5, r, c4);
        let b = $ops.fma(c3, r, c2);
        let q = $ops.fma(a, r2, b);
        $ops.fma(q, r2, r)
    }};
}
pub(crate) use exp_polynomial;

/// The operations of [`exp_polynomial`] on f64s.
struct Scalar;

impl Scalar {
    fn taylor(&self, i: usize) -> f64 {
        TAYLOR[i]
    }
    fn mul(&self, a: f64, b: f64) -> f64 {
        a * b
    }
    fn fma(&self, a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }
}

/// `2^k` for an integer `k` in `-1022..=1023` held as a float: `k + SHIFT`
/// has `k` in its low bits, and `k + 1023` shifted to the exponent field is
/// `2^k` (the addition and shift are modulo 2^64, as the kernel's integer
/// instructions are).
fn pow2(k: f64) -> f64 {
    let bits = (k + SHIFT).to_bits();
    f64::from_bits(bits.wrapping_add(1023) << 52)
}

/// Beyond this magnitude (and for NaN), [`exp`] takes its careful path.
pub const FAST: f64 = 708.0;

/// The reduction of `x`: `exp(r) - 1`, the table's row for `j` and `m` (as
/// a float), where `k = round(128 x / ln 2) = 128 m + j` and
/// `r = x - k ln(2)/128`.
#[inline(always)]
fn reduce(x: f64) -> (f64, [f64; 2], f64) {
    let z = x.mul_add(SCALE, SHIFT);
    let k = z - SHIFT;
    let r = k.mul_add(-STEP_HI, x);
    let r = k.mul_add(-STEP_LO, r);
    let p = exp_polynomial!(Scalar, r);
    (
        p,
        POW2[(z.to_bits() & 127) as usize],
        (k * (1.0 / 128.0)).floor(),
    )
}

/// The body of [`exp`]. For `|x| <= FAST`, `2^m` is a normal number, and
/// scales the table's two parts exactly before they are combined, off the
/// chain of dependent operations; beyond it, [`exp_edge`].
#[inline(always)]
fn exp_body(x: f64) -> f64 {
    if x.is_nan() || x.abs() > FAST {
        return exp_edge(x);
    }
    let (p, [hi, lo], m) = reduce(x);
    let s = pow2(m);
    let (hi, lo) = (hi * s, lo * s);
    hi + hi.mul_add(p, lo)
}

/// [`exp`] of NaN (itself), and of `|x| > FAST`: the argument clamped to
/// `[LO, HI]`, `2^(j/128) exp(r)` combined in `[1, 2)` and then scaled by
/// two powers of two, so that an overflow or a subnormal is rounded once.
#[inline(always)]
fn exp_edge(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let (p, [hi, lo], m) = reduce(x.clamp(LO, HI));
    let y = hi + hi.mul_add(p, lo);
    let m1 = (m * 0.5).floor();
    y * pow2(m1) * pow2(m - m1)
}

/// Beyond this magnitude `tanh` is +-1 (its distance from 1 is below half
/// an ulp of 1).
pub const TANH_ONE: f64 = 22.0;

/// `exp(y) - 1` for `-2 TANH_ONE <= y <= 0`, without the cancellation of
/// subtracting 1 from `exp(y)`: with `v = 2^m 2^(j/128)` (the table's
/// high part scaled), `(v - 1) + 2^m (lo + hi p)`, where `v - 1` is exact
/// for `m` of 0 and -1 (Sterbenz) and, for `m < -1`, far from cancelling;
/// near 0 (`k = 0`) it is the polynomial itself.
#[inline(always)]
fn expm1_tanh(y: f64) -> f64 {
    let (p, [hi, lo], m) = reduce(y);
    let s = pow2(m);
    (hi * s - 1.0) + hi.mul_add(p, lo) * s
}

/// The body of [`tanh`].
#[inline(always)]
fn tanh_body(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    if a > TANH_ONE {
        return 1f64.copysign(x);
    }
    let e = expm1_tanh(-2.0 * a);
    (-e / (2.0 + e)).copysign(x)
}

/// The bodies compiled for FMA hardware. Each body is also compiled for
/// any x86-64, where `mul_add` is the C library's `fma`: the same
/// correctly rounded operation, so the same bits, slower.
#[cfg(target_arch = "x86_64")]
mod fma {
    #[target_feature(enable = "fma")]
    pub(super) fn exp(x: f64) -> f64 {
        super::exp_body(x)
    }

    #[target_feature(enable = "fma")]
    pub(super) fn tanh(x: f64) -> f64 {
        super::tanh_body(x)
    }
}

/// Whether the CPU has FMA (detected once, then a load).
fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("fma");
    #[allow(unreachable_code)]
    false
}

/// `e^x`, as gradc defines it (see the module's documentation). NaN is
/// returned as it came.
pub fn exp(x: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        // SAFETY: the CPU has the feature `fma::exp` is compiled for.
        return unsafe { fma::exp(x) };
    }
    exp_body(x)
}

/// `tanh(x)`: `-e / (2 + e)` with `e = expm1(-2|x|)`, the sign of `x`
/// copied onto it; +-1 beyond [`TANH_ONE`]. Within 3 ulp (tested against
/// the C library's `tanh`), and a call costs about an `exp`.
pub fn tanh(x: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        // SAFETY: the CPU has the feature `fma::tanh` is compiled for.
        return unsafe { fma::tanh(x) };
    }
    tanh_body(x)
}

/// `1 / (1 + e^-x)`: with `e = exp(-|x|)`, `1 / (1 + e)` for `x >= 0`, else
/// `e / (1 + e)`, so that neither side overflows (one division, of the
/// numerator chosen first).
pub fn sigmoid(x: f64) -> f64 {
    let e = exp(-x.abs());
    let numerator = if x >= 0.0 { 1.0 } else { e };
    numerator / (1.0 + e)
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
            let t = x * 0.01;
            assert_eq!(tanh_body(t).to_bits(), tanh(t).to_bits(), "{t}");
        }
    }

    #[test]
    fn tanh_is_within_three_ulp_of_the_c_library() {
        let mut worst: f64 = 0.0;
        for i in 0..200_000 {
            let x = -25.0 + 50.0 * i as f64 / 200_000.0;
            worst = worst.max(ulps(tanh(x), x.tanh()));
        }
        for i in 1..2000 {
            let x = 1e-12 * i as f64;
            worst = worst.max(ulps(tanh(x), x.tanh()));
            worst = worst.max(ulps(tanh(-x * 1e8), (-x * 1e8).tanh()));
        }
        assert!(worst <= 3.0, "{worst} ulp");
        assert_eq!(tanh(0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(tanh(-1e300), -1.0);
        assert!(tanh(f64::NAN).is_nan());
        assert_eq!(tanh(1e-300), 1e-300);
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
