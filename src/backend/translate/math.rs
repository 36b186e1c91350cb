//! `exp` and `sigmoid` written out inline, on pairs of f64s, operation for
//! operation as [`crate::ir::math`] defines them, so they give the
//! interpreter's bits without a host call per element. f32 functions, and
//! CPUs without fused multiply-add, call the host functions instead.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{self as cl, types, Endianness, InstBuilder, MemFlagsData};

use super::Translator;
use crate::backend::libm::Callee;
use crate::ir::math::{HI, LN2_HI, LN2_LO, LO, LOG2_E, SHIFT, TAYLOR};
use crate::ir::Unary;

/// Whether the CPU has fused multiply-add, which Cranelift then uses for
/// its `fma` (`cranelift_native` enables what the CPU has).
fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("fma");
    #[allow(unreachable_code)]
    false
}

impl Translator<'_, '_> {
    /// Whether `exp` and `sigmoid` are written inline, on vectors as on
    /// elements.
    pub(super) fn inline_math(&self) -> bool {
        self.st == types::F64 && has_fma()
    }

    /// `exp(x)`, for an element or a vector of them.
    pub(super) fn exp(&mut self, x: cl::Value) -> cl::Value {
        if !self.inline_math() {
            return self.call(Callee::Unary(Unary::Exp), &[x]);
        }
        self.lanes_of(&[x], &mut |t, v| t.exp_lanes(v[0]))
    }

    /// `sigmoid(x)`, for an element or a vector of them.
    pub(super) fn sigmoid(&mut self, x: cl::Value) -> cl::Value {
        if !self.inline_math() {
            return self.call(Callee::Unary(Unary::Sigmoid), &[x]);
        }
        self.lanes_of(&[x], &mut |t, v| {
            let x = v[0];
            let a = t.b.ins().fabs(x);
            let na = t.b.ins().fneg(a);
            let e = t.exp_lanes(na);
            let one = t.vconst(1.0);
            let d = t.b.ins().fadd(one, e);
            let q1 = t.b.ins().fdiv(one, d);
            let q2 = t.b.ins().fdiv(e, d);
            let zero = t.vconst(0.0);
            let pos = t.mask(FloatCC::GreaterThanOrEqual, x, zero);
            t.b.ins().bitselect(pos, q1, q2)
        })
    }

    /// [`crate::ir::math::exp`] on the lanes of the vector `x`.
    fn exp_lanes(&mut self, x: cl::Value) -> cl::Value {
        let [lo, hi, log2e, shift, ln2_hi, ln2_lo, half] =
            [LO, HI, LOG2_E, SHIFT, -LN2_HI, -LN2_LO, 0.5].map(|c| self.vconst(c));
        let below = self.mask(FloatCC::LessThan, x, lo);
        let c = self.b.ins().bitselect(below, lo, x);
        let above = self.mask(FloatCC::GreaterThan, c, hi);
        let c = self.b.ins().bitselect(above, hi, c);
        let z = self.b.ins().fma(c, log2e, shift);
        let k = self.b.ins().fsub(z, shift);
        let r = self.b.ins().fma(k, ln2_hi, c);
        let r = self.b.ins().fma(k, ln2_lo, r);
        let mut p = self.vconst(TAYLOR[13]);
        for &t in TAYLOR[..13].iter().rev() {
            let t = self.vconst(t);
            p = self.b.ins().fma(p, r, t);
        }
        let hk = self.b.ins().fmul(k, half);
        let k1 = self.b.ins().floor(hk);
        let k2 = self.b.ins().fsub(k, k1);
        let s1 = self.pow2(k1, shift);
        let s2 = self.pow2(k2, shift);
        let y = self.b.ins().fmul(p, s1);
        let y = self.b.ins().fmul(y, s2);
        let nan = self.mask(FloatCC::Unordered, x, x);
        self.b.ins().bitselect(nan, x, y)
    }

    /// `2^k` for the integers `k` (as floats) in the lanes of a vector:
    /// `k + SHIFT`'s low bits, plus the exponent's bias, shifted to the
    /// exponent field (`ir::math::pow2`).
    fn pow2(&mut self, k: cl::Value, shift: cl::Value) -> cl::Value {
        let little = MemFlagsData::new().with_endianness(Endianness::Little);
        let it = types::I64X2;
        let m = self.b.ins().fadd(k, shift);
        let bits = self.b.ins().bitcast(it, little, m);
        let bias = self.b.ins().iconst(types::I64, 1023);
        let bias = self.b.ins().splat(it, bias);
        let bits = self.b.ins().iadd(bits, bias);
        let bits = self.b.ins().ishl_imm_u(bits, 52);
        self.b.ins().bitcast(self.vt, little, bits)
    }
}
