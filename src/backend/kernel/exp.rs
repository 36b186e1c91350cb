//! `exp`, `sigmoid` and `tanh` on pairs of f64s, for the generated code to
//! call: the sequences of [`crate::ir::math`] in SSE4.1 and FMA instructions,
//! so they give the interpreter's bits, two at a time. Out of line, the
//! constants are memory operands of the instructions that use them; written
//! inline in the generated code, they were hoisted out of its loops and
//! held registers across a whole model's step.

use std::arch::x86_64::*;

use crate::ir::math::{
    self, exp_polynomial, FAST, POW2, SCALE, SHIFT, STEP_HI, STEP_LO, TANH_ONE, TAYLOR,
};

/// The symbols of [`exp2`], [`sigmoid2`] and [`tanh2`].
pub(crate) const EXP2: &str = "gradc_exp2";
pub(crate) const SIGMOID2: &str = "gradc_sigmoid2";
pub(crate) const TANH2: &str = "gradc_tanh2";

/// The operations of [`exp_polynomial`] on pairs.
struct Pd;

impl Pd {
    #[inline]
    #[target_feature(enable = "fma")]
    fn taylor(&self, i: usize) -> __m128d {
        _mm_set1_pd(TAYLOR[i])
    }

    #[inline]
    #[target_feature(enable = "fma")]
    fn mul(&self, a: __m128d, b: __m128d) -> __m128d {
        _mm_mul_pd(a, b)
    }

    #[inline]
    #[target_feature(enable = "fma")]
    fn fma(&self, a: __m128d, b: __m128d, c: __m128d) -> __m128d {
        _mm_fmadd_pd(a, b, c)
    }
}

/// `2^k` for integers `k` (as floats) below 2^51: `k + SHIFT`'s low bits,
/// plus the exponent's bias, shifted to the exponent field.
#[inline]
#[target_feature(enable = "fma,sse4.1")]
fn pow2(k: __m128d) -> __m128d {
    let bits = _mm_castpd_si128(_mm_add_pd(k, _mm_set1_pd(SHIFT)));
    let bits = _mm_add_epi64(bits, _mm_set1_epi64x(1023));
    _mm_castsi128_pd(_mm_slli_epi64::<52>(bits))
}

/// `ir::math`'s reduction of `x` (`|x| <= FAST`) on a pair: `exp(r) - 1`,
/// the table's two parts for `j`, and `2^m`, where `x = (128 m + j) ln(2)/128 + r`.
#[inline]
#[target_feature(enable = "fma,sse4.1")]
fn reduce_pd(x: __m128d) -> (__m128d, [__m128d; 2], __m128d) {
    let shift = _mm_set1_pd(SHIFT);
    let z = _mm_fmadd_pd(x, _mm_set1_pd(SCALE), shift);
    let k = _mm_sub_pd(z, shift);
    let r = _mm_fmadd_pd(k, _mm_set1_pd(-STEP_HI), x);
    let r = _mm_fmadd_pd(k, _mm_set1_pd(-STEP_LO), r);
    let p = exp_polynomial!(Pd, r);
    // The table's rows for the two lanes' `j`, the low bits of `z`.
    let bits = _mm_castpd_si128(z);
    let j0 = (_mm_cvtsi128_si64(bits) & 127) as usize;
    let j1 = (_mm_extract_epi64::<1>(bits) & 127) as usize;
    let hi = _mm_set_pd(POW2[j1][0], POW2[j0][0]);
    let lo = _mm_set_pd(POW2[j1][1], POW2[j0][1]);
    let s = pow2(_mm_floor_pd(_mm_mul_pd(k, _mm_set1_pd(1.0 / 128.0))));
    (p, [hi, lo], s)
}

#[inline]
#[target_feature(enable = "fma,sse4.1")]
fn exp_pd(x: __m128d) -> __m128d {
    let magnitude = _mm_andnot_pd(_mm_set1_pd(-0.0), x);
    if _mm_movemask_pd(_mm_cmple_pd(magnitude, _mm_set1_pd(FAST))) != 0b11 {
        // A NaN, or beyond `FAST`: the definition, lane by lane.
        let (a, b) = (_mm_cvtsd_f64(x), _mm_cvtsd_f64(_mm_unpackhi_pd(x, x)));
        return _mm_set_pd(math::exp(b), math::exp(a));
    }
    let (p, [hi, lo], s) = reduce_pd(x);
    let (hi, lo) = (_mm_mul_pd(hi, s), _mm_mul_pd(lo, s));
    _mm_add_pd(hi, _mm_fmadd_pd(hi, p, lo))
}

/// `exp` of both lanes of `x`.
///
/// # Safety
/// The CPU must have FMA and SSE4.1 (`translate::math::pair_math`).
// The System V ABI passes and returns an `__m128d` in `xmm0`, as Cranelift
// does an `f64x2` (the JIT's tests check the bits through the call). The
// entries have the sequences' features, so that the sequences are inlined
// there: called across the difference, they took and returned the pair
// through memory (`lse`'s primal at n = 80,000 a third slower).
#[allow(improper_ctypes_definitions)]
#[target_feature(enable = "fma,sse4.1")]
pub(crate) unsafe extern "C" fn exp2(x: __m128d) -> __m128d {
    exp_pd(x)
}

#[target_feature(enable = "fma,sse4.1")]
fn sigmoid_pd(x: __m128d) -> __m128d {
    let magnitude = _mm_andnot_pd(_mm_set1_pd(-0.0), x);
    let e = exp_pd(_mm_xor_pd(magnitude, _mm_set1_pd(-0.0)));
    let one = _mm_set1_pd(1.0);
    let positive = _mm_cmpge_pd(x, _mm_setzero_pd());
    let numerator = _mm_blendv_pd(e, one, positive);
    _mm_div_pd(numerator, _mm_add_pd(one, e))
}

/// `sigmoid` of both lanes of `x`.
///
/// # Safety
/// As for [`exp2`].
#[allow(improper_ctypes_definitions)]
#[target_feature(enable = "fma,sse4.1")]
pub(crate) unsafe extern "C" fn sigmoid2(x: __m128d) -> __m128d {
    sigmoid_pd(x)
}

/// `ir::math::tanh` of both lanes: `expm1_tanh`'s steps on the pair.
#[target_feature(enable = "fma,sse4.1")]
fn tanh_pd(x: __m128d) -> __m128d {
    let sign = _mm_set1_pd(-0.0);
    let a = _mm_andnot_pd(sign, x);
    if _mm_movemask_pd(_mm_cmple_pd(a, _mm_set1_pd(TANH_ONE))) != 0b11 {
        // A NaN, or +-1: the definition, lane by lane.
        let (l0, l1) = (_mm_cvtsd_f64(x), _mm_cvtsd_f64(_mm_unpackhi_pd(x, x)));
        return _mm_set_pd(math::tanh(l1), math::tanh(l0));
    }
    let y = _mm_mul_pd(_mm_set1_pd(-2.0), a);
    let (p, [hi, lo], s) = reduce_pd(y);
    let v = _mm_mul_pd(hi, s);
    let e = _mm_add_pd(
        _mm_sub_pd(v, _mm_set1_pd(1.0)),
        _mm_mul_pd(_mm_fmadd_pd(hi, p, lo), s),
    );
    let t = _mm_div_pd(_mm_xor_pd(e, sign), _mm_add_pd(_mm_set1_pd(2.0), e));
    // The sign of `x` on the magnitude `t`.
    _mm_or_pd(_mm_andnot_pd(sign, t), _mm_and_pd(sign, x))
}

/// `tanh` of both lanes of `x`.
///
/// # Safety
/// As for [`exp2`].
#[allow(improper_ctypes_definitions)]
#[target_feature(enable = "fma,sse4.1")]
pub(crate) unsafe extern "C" fn tanh2(x: __m128d) -> __m128d {
    tanh_pd(x)
}

/// The symbols of [`exp8`], [`sigmoid8`] and [`tanh8`].
pub(crate) const EXP8: &str = "gradc_exp8";
pub(crate) const SIGMOID8: &str = "gradc_sigmoid8";
pub(crate) const TANH8: &str = "gradc_tanh8";

/// The operations of [`exp_polynomial`] on fours.
struct Pd4;

impl Pd4 {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn taylor(&self, i: usize) -> __m256d {
        _mm256_set1_pd(TAYLOR[i])
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn mul(&self, a: __m256d, b: __m256d) -> __m256d {
        _mm256_mul_pd(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn fma(&self, a: __m256d, b: __m256d, c: __m256d) -> __m256d {
        _mm256_fmadd_pd(a, b, c)
    }
}

/// [`pow2`] on four.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn pow2_4(k: __m256d) -> __m256d {
    let bits = _mm256_castpd_si256(_mm256_add_pd(k, _mm256_set1_pd(SHIFT)));
    let bits = _mm256_add_epi64(bits, _mm256_set1_epi64x(1023));
    _mm256_castsi256_pd(_mm256_slli_epi64::<52>(bits))
}

/// [`reduce_pd`] on four: the table's two parts gathered by `j`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn reduce_pd4(x: __m256d) -> (__m256d, [__m256d; 2], __m256d) {
    let shift = _mm256_set1_pd(SHIFT);
    let z = _mm256_fmadd_pd(x, _mm256_set1_pd(SCALE), shift);
    let k = _mm256_sub_pd(z, shift);
    let r = _mm256_fmadd_pd(k, _mm256_set1_pd(-STEP_HI), x);
    let r = _mm256_fmadd_pd(k, _mm256_set1_pd(-STEP_LO), r);
    let p = exp_polynomial!(Pd4, r);
    // Row `j` of the table is at f64 `2 j`.
    let j = _mm256_and_si256(_mm256_castpd_si256(z), _mm256_set1_epi64x(127));
    let at = _mm256_slli_epi64::<1>(j);
    let table = POW2.as_ptr().cast::<f64>();
    // SAFETY: `at` is at most 254, and the table has 256 f64s.
    let (hi, lo) = unsafe {
        (
            _mm256_i64gather_pd::<8>(table, at),
            _mm256_i64gather_pd::<8>(table.add(1), at),
        )
    };
    let s = pow2_4(_mm256_floor_pd(_mm256_mul_pd(
        k,
        _mm256_set1_pd(1.0 / 128.0),
    )));
    (p, [hi, lo], s)
}

/// Whether every lane of `a` (magnitudes) is at most `bound` (no NaN).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn all_within(a: __m256d, bound: f64) -> bool {
    _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LE_OQ>(a, _mm256_set1_pd(bound))) == 0b1111
}

/// Four lanes of `x` by the one-number definition `f`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn lane_by_lane(x: __m256d, f: fn(f64) -> f64) -> __m256d {
    let mut lanes = [0.0; 4];
    // SAFETY: `lanes` has four f64s.
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), x) };
    let [a, b, c, d] = lanes.map(f);
    _mm256_set_pd(d, c, b, a)
}

#[target_feature(enable = "avx2,fma")]
fn exp_pd4(x: __m256d) -> __m256d {
    let magnitude = _mm256_andnot_pd(_mm256_set1_pd(-0.0), x);
    if !all_within(magnitude, FAST) {
        return lane_by_lane(x, math::exp);
    }
    let (p, [hi, lo], s) = reduce_pd4(x);
    let (hi, lo) = (_mm256_mul_pd(hi, s), _mm256_mul_pd(lo, s));
    _mm256_add_pd(hi, _mm256_fmadd_pd(hi, p, lo))
}

#[target_feature(enable = "avx2,fma")]
fn sigmoid_pd4(x: __m256d) -> __m256d {
    let magnitude = _mm256_andnot_pd(_mm256_set1_pd(-0.0), x);
    let e = exp_pd4(_mm256_xor_pd(magnitude, _mm256_set1_pd(-0.0)));
    let one = _mm256_set1_pd(1.0);
    let positive = _mm256_cmp_pd::<_CMP_GE_OQ>(x, _mm256_setzero_pd());
    let numerator = _mm256_blendv_pd(e, one, positive);
    _mm256_div_pd(numerator, _mm256_add_pd(one, e))
}

#[target_feature(enable = "avx2,fma")]
fn tanh_pd4(x: __m256d) -> __m256d {
    let sign = _mm256_set1_pd(-0.0);
    let a = _mm256_andnot_pd(sign, x);
    if !all_within(a, TANH_ONE) {
        return lane_by_lane(x, math::tanh);
    }
    let y = _mm256_mul_pd(_mm256_set1_pd(-2.0), a);
    let (p, [hi, lo], s) = reduce_pd4(y);
    let v = _mm256_mul_pd(hi, s);
    let e = _mm256_add_pd(
        _mm256_sub_pd(v, _mm256_set1_pd(1.0)),
        _mm256_mul_pd(_mm256_fmadd_pd(hi, p, lo), s),
    );
    let t = _mm256_div_pd(
        _mm256_xor_pd(e, sign),
        _mm256_add_pd(_mm256_set1_pd(2.0), e),
    );
    _mm256_or_pd(_mm256_andnot_pd(sign, t), _mm256_and_pd(sign, x))
}

/// `f` on the eight f64s at `x`, in place, four at a time. They are read
/// and written a pair at a time (volatile accesses, which the compiler
/// does not merge), as the generated code writes and reads them, so that
/// each load takes its numbers from the store before it: a load of four
/// from two stores of two waits for both to reach the cache (`lse`'s
/// primal a third slower than by pairs).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn eight(x: *mut f64, f: impl Fn(__m256d) -> __m256d) {
    let pairs = x.cast::<__m128d>();
    for half in 0..2 {
        // SAFETY: the caller's `x` holds eight f64s, aligned to 16 bytes.
        unsafe {
            let (lo, hi) = (pairs.add(2 * half), pairs.add(2 * half + 1));
            let v = _mm256_set_m128d(hi.read_volatile(), lo.read_volatile());
            let y = f(v);
            lo.write_volatile(_mm256_castpd256_pd128(y));
            hi.write_volatile(_mm256_extractf128_pd::<1>(y));
        }
    }
}

/// The operations of [`exp_polynomial`] on eights (AVX-512F).
struct Pd8;

impl Pd8 {
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn taylor(&self, i: usize) -> __m512d {
        _mm512_set1_pd(TAYLOR[i])
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn mul(&self, a: __m512d, b: __m512d) -> __m512d {
        _mm512_mul_pd(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn fma(&self, a: __m512d, b: __m512d, c: __m512d) -> __m512d {
        _mm512_fmadd_pd(a, b, c)
    }
}

/// [`pow2`] on eight.
#[inline]
#[target_feature(enable = "avx512f")]
fn pow2_8(k: __m512d) -> __m512d {
    let bits = _mm512_castpd_si512(_mm512_add_pd(k, _mm512_set1_pd(SHIFT)));
    let bits = _mm512_add_epi64(bits, _mm512_set1_epi64(1023));
    _mm512_castsi512_pd(_mm512_slli_epi64::<52>(bits))
}

/// [`reduce_pd`] on eight: the table's two parts gathered by `j`.
#[inline]
#[target_feature(enable = "avx512f")]
fn reduce_pd8(x: __m512d) -> (__m512d, [__m512d; 2], __m512d) {
    let shift = _mm512_set1_pd(SHIFT);
    let z = _mm512_fmadd_pd(x, _mm512_set1_pd(SCALE), shift);
    let k = _mm512_sub_pd(z, shift);
    let r = _mm512_fmadd_pd(k, _mm512_set1_pd(-STEP_HI), x);
    let r = _mm512_fmadd_pd(k, _mm512_set1_pd(-STEP_LO), r);
    let p = exp_polynomial!(Pd8, r);
    // Row `j` of the table is at f64 `2 j`.
    let j = _mm512_and_si512(_mm512_castpd_si512(z), _mm512_set1_epi64(127));
    let at = _mm512_slli_epi64::<1>(j);
    let table = POW2.as_ptr().cast::<f64>();
    // SAFETY: `at` is at most 254, and the table has 256 f64s.
    let (hi, lo) = unsafe {
        (
            _mm512_i64gather_pd::<8>(at, table),
            _mm512_i64gather_pd::<8>(at, table.add(1)),
        )
    };
    // Rounded toward -inf: `floor`.
    let m = _mm512_roundscale_pd::<0x09>(_mm512_mul_pd(k, _mm512_set1_pd(1.0 / 128.0)));
    (p, [hi, lo], pow2_8(m))
}

/// The sign bit of every lane.
#[inline]
#[target_feature(enable = "avx512f")]
fn signs8() -> __m512i {
    _mm512_set1_epi64(i64::MIN)
}

/// Eight lanes of `x` by the one-number definition `f`.
#[inline]
#[target_feature(enable = "avx512f")]
fn lanes8(x: __m512d, f: fn(f64) -> f64) -> __m512d {
    let mut lanes = [0.0; 8];
    // SAFETY: `lanes` has eight f64s.
    unsafe {
        _mm512_storeu_pd(lanes.as_mut_ptr(), x);
        _mm512_loadu_pd(lanes.map(f).as_ptr())
    }
}

#[target_feature(enable = "avx512f")]
fn exp_pd8(x: __m512d) -> __m512d {
    let fast = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(_mm512_abs_pd(x), _mm512_set1_pd(FAST));
    if fast != 0xff {
        return lanes8(x, math::exp);
    }
    let (p, [hi, lo], s) = reduce_pd8(x);
    let (hi, lo) = (_mm512_mul_pd(hi, s), _mm512_mul_pd(lo, s));
    _mm512_add_pd(hi, _mm512_fmadd_pd(hi, p, lo))
}

#[target_feature(enable = "avx512f")]
fn sigmoid_pd8(x: __m512d) -> __m512d {
    let negative = _mm512_or_si512(_mm512_castpd_si512(_mm512_abs_pd(x)), signs8());
    let e = exp_pd8(_mm512_castsi512_pd(negative));
    let one = _mm512_set1_pd(1.0);
    let positive = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(x, _mm512_setzero_pd());
    let numerator = _mm512_mask_blend_pd(positive, e, one);
    _mm512_div_pd(numerator, _mm512_add_pd(one, e))
}

#[target_feature(enable = "avx512f")]
fn tanh_pd8(x: __m512d) -> __m512d {
    let a = _mm512_abs_pd(x);
    if _mm512_cmp_pd_mask::<_CMP_LE_OQ>(a, _mm512_set1_pd(TANH_ONE)) != 0xff {
        return lanes8(x, math::tanh);
    }
    let y = _mm512_mul_pd(_mm512_set1_pd(-2.0), a);
    let (p, [hi, lo], s) = reduce_pd8(y);
    let v = _mm512_mul_pd(hi, s);
    let e = _mm512_add_pd(
        _mm512_sub_pd(v, _mm512_set1_pd(1.0)),
        _mm512_mul_pd(_mm512_fmadd_pd(hi, p, lo), s),
    );
    let minus_e = _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(e), signs8()));
    let t = _mm512_div_pd(minus_e, _mm512_add_pd(_mm512_set1_pd(2.0), e));
    // The sign of `x` on the magnitude `t`.
    let sign = _mm512_and_si512(_mm512_castpd_si512(x), signs8());
    let magnitude = _mm512_andnot_si512(signs8(), _mm512_castpd_si512(t));
    _mm512_castsi512_pd(_mm512_or_si512(magnitude, sign))
}

/// `f` on the eight f64s at `x`, in place, at once; read and written a
/// pair at a time, as for [`eight`].
#[inline]
#[target_feature(enable = "avx512f")]
fn eight_at_once(x: *mut f64, f: impl Fn(__m512d) -> __m512d) {
    let pairs = x.cast::<__m128d>();
    // SAFETY: the caller's `x` holds eight f64s, aligned to 16 bytes.
    unsafe {
        let [a, b, c, d] = [0, 1, 2, 3].map(|k| pairs.add(k).read_volatile());
        let low = _mm512_castpd256_pd512(_mm256_set_m128d(b, a));
        let y = f(_mm512_insertf64x4::<1>(low, _mm256_set_m128d(d, c)));
        let (low, high) = (_mm512_castpd512_pd256(y), _mm512_extractf64x4_pd::<1>(y));
        pairs.write_volatile(_mm256_castpd256_pd128(low));
        pairs.add(1).write_volatile(_mm256_extractf128_pd::<1>(low));
        pairs.add(2).write_volatile(_mm256_castpd256_pd128(high));
        pairs
            .add(3)
            .write_volatile(_mm256_extractf128_pd::<1>(high));
    }
}

/// [`exp8`] with AVX-512F, eight lanes an instruction.
///
/// # Safety
/// As for [`exp8`], and the CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe extern "C" fn exp8_avx512(x: *mut f64) {
    eight_at_once(x, |v| exp_pd8(v))
}

/// [`sigmoid8`] with AVX-512F.
///
/// # Safety
/// As for [`exp8_avx512`].
#[target_feature(enable = "avx512f")]
pub(crate) unsafe extern "C" fn sigmoid8_avx512(x: *mut f64) {
    eight_at_once(x, |v| sigmoid_pd8(v))
}

/// [`tanh8`] with AVX-512F.
///
/// # Safety
/// As for [`exp8_avx512`].
#[target_feature(enable = "avx512f")]
pub(crate) unsafe extern "C" fn tanh8_avx512(x: *mut f64) {
    eight_at_once(x, |v| tanh_pd8(v))
}

/// `exp` of the eight f64s at `x`, in place: the generated code's four
/// pairs of a run's elements, stored side by side.
///
/// # Safety
/// `x` must hold eight f64s and be aligned to 16 bytes; the CPU must have
/// AVX2 and FMA (`translate::math::eight_wide`).
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe extern "C" fn exp8(x: *mut f64) {
    eight(x, |v| exp_pd4(v))
}

/// `sigmoid` of the eight f64s at `x`, in place.
///
/// # Safety
/// As for [`exp8`].
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe extern "C" fn sigmoid8(x: *mut f64) {
    eight(x, |v| sigmoid_pd4(v))
}

/// `tanh` of the eight f64s at `x`, in place.
///
/// # Safety
/// As for [`exp8`].
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe extern "C" fn tanh8(x: *mut f64) {
    eight(x, |v| tanh_pd4(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(improper_ctypes_definitions)]
    fn both(f: unsafe extern "C" fn(__m128d) -> __m128d, a: f64, b: f64) -> [f64; 2] {
        let mut out = [0.0; 2];
        // SAFETY: the tests run only where the features are.
        unsafe { _mm_storeu_pd(out.as_mut_ptr(), f(_mm_set_pd(b, a))) };
        out
    }

    #[test]
    fn eights_are_the_interpreters_bits() {
        if !(is_x86_feature_detected!("fma") && is_x86_feature_detected!("avx2")) {
            return;
        }
        let mut xs: Vec<f64> = (0..40_000).map(|i| -760.0 + i as f64 * 0.0371).collect();
        xs.extend((0..4000).map(|i| -30.0 + i as f64 * 0.0151));
        // A NaN, the edges of the fast paths and infinities among ordinary
        // numbers: each lane of four by the definition.
        xs.extend([0.5, -1e-300, f64::NAN, 708.0, 708.1, -708.1, 21.99, 22.01]);
        xs.extend([
            -0.0,
            1.0,
            f64::INFINITY,
            -2.0,
            f64::NEG_INFINITY,
            3.0,
            709.78,
            -745.14,
        ]);
        // A pair at a time, 16-byte aligned, as the generated code stores.
        #[repr(align(16))]
        struct Eight([f64; 8]);
        type Kernel = (unsafe extern "C" fn(*mut f64), fn(f64) -> f64, &'static str);
        let mut kernels: Vec<Kernel> = vec![
            (exp8, math::exp, "exp"),
            (sigmoid8, math::sigmoid, "sigmoid"),
            (tanh8, math::tanh, "tanh"),
        ];
        if is_x86_feature_detected!("avx512f") {
            kernels.extend([
                (exp8_avx512 as _, math::exp as _, "exp (AVX-512)"),
                (
                    sigmoid8_avx512 as _,
                    math::sigmoid as _,
                    "sigmoid (AVX-512)",
                ),
                (tanh8_avx512 as _, math::tanh as _, "tanh (AVX-512)"),
            ]);
        }
        for w in xs.chunks(8).filter(|w| w.len() == 8) {
            for &(kernel, want, name) in &kernels {
                let mut x = Eight(w.try_into().unwrap());
                // SAFETY: eight f64s, aligned; the features are checked.
                unsafe { kernel(x.0.as_mut_ptr()) };
                for (&a, y) in w.iter().zip(x.0) {
                    let z = want(a);
                    assert!(
                        y.to_bits() == z.to_bits() || (y.is_nan() && z.is_nan()),
                        "{name}({a:e}): {y:e}, not {z:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn pairs_are_the_interpreters_bits() {
        if !(is_x86_feature_detected!("fma") && is_x86_feature_detected!("sse4.1")) {
            return;
        }
        let mut xs: Vec<f64> = (0..40_000).map(|i| -760.0 + i as f64 * 0.0371).collect();
        xs.extend((0..4000).map(|i| -30.0 + i as f64 * 0.0151));
        xs.extend([1e-300, -1e-12, 21.99, 22.0, 22.01, -22.0]);
        xs.extend([0.0, -0.0, 1e-300, -1e-300, 709.78, 709.79, -745.13, -745.14]);
        xs.extend([
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            1.0,
            -1.0,
        ]);
        let nan = f64::from_bits(0x7ff8_0000_0000_0042);
        xs.push(nan);
        for w in xs.windows(2) {
            let [a, b] = [w[0], w[1]];
            let e = both(exp2, a, b);
            let s = both(sigmoid2, a, b);
            let t = both(tanh2, a, b);
            for (i, x) in [a, b].into_iter().enumerate() {
                assert_eq!(e[i].to_bits(), math::exp(x).to_bits(), "exp({x:e})");
                assert_eq!(s[i].to_bits(), math::sigmoid(x).to_bits(), "sigmoid({x:e})");
                assert_eq!(t[i].to_bits(), math::tanh(x).to_bits(), "tanh({x:e})");
            }
        }
    }
}
