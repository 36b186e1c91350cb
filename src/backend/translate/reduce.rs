//! The reductions (`sum`, `max`, `norm`, `logsumexp`) and `softmax`, each
//! in the interpreter's order: left to right, sums from -0.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{self as cl, InstBuilder};

use super::{dst_loc, Loc, Translator};
use crate::backend::libm::Callee;
use crate::ir::{Unary, Value};

impl Translator<'_, '_> {
    /// `-0 + g(x0) + g(x1) + ...`, left to right, like `Iterator::sum`.
    pub(super) fn sum(
        &mut self,
        v: Value,
        g: &mut dyn FnMut(&mut Self, cl::Value) -> cl::Value,
    ) -> cl::Value {
        let n = self.f.shape(v).size();
        let x = self.operand(v);
        let acc = self.var(-0.0);
        self.for_each(n, &mut |t, ix| {
            let e = t.read(x, ix);
            let e = g(t, e);
            let a = t.b.use_var(acc);
            let s = t.b.ins().fadd(a, e);
            t.b.def_var(acc, s);
        });
        self.b.use_var(acc)
    }

    /// `max(... max(max(-inf, g(x0)), g(x1)) ...)`, NaN-propagating.
    pub(super) fn reduce_max(
        &mut self,
        v: Value,
        g: &mut dyn FnMut(&mut Self, cl::Value) -> cl::Value,
    ) -> cl::Value {
        let n = self.f.shape(v).size();
        let x = self.operand(v);
        let acc = self.var(f64::NEG_INFINITY);
        self.for_each(n, &mut |t, ix| {
            let e = t.read(x, ix);
            let e = g(t, e);
            let a = t.b.use_var(acc);
            let m = t.b.ins().fmax(a, e);
            t.b.def_var(acc, m);
        });
        self.b.use_var(acc)
    }

    /// `scale * sqrt(sum((x / scale)^2))` with `scale = max|x|` (from 0), or
    /// `scale` itself when it is 0, infinite or NaN.
    pub(super) fn norm(&mut self, v: Value) -> cl::Value {
        let n = self.f.shape(v).size();
        let x = self.operand(v);
        let acc = self.var(0.0);
        self.for_each(n, &mut |t, ix| {
            let e = t.read(x, ix);
            let e = t.b.ins().fabs(e);
            let a = t.b.use_var(acc);
            let m = t.b.ins().fmax(a, e);
            t.b.def_var(acc, m);
        });
        let scale = self.b.use_var(acc);
        let s = self.sum(v, &mut |t, e| {
            let q = t.b.ins().fdiv(e, scale);
            t.b.ins().fmul(q, q)
        });
        let root = self.b.ins().sqrt(s);
        let r = self.b.ins().fmul(scale, root);
        let zero = self.b.ins().f64const(0.0);
        let inf = self.b.ins().f64const(f64::INFINITY);
        let is_zero = self.b.ins().fcmp(FloatCC::Equal, scale, zero);
        let not_finite = self
            .b
            .ins()
            .fcmp(FloatCC::UnorderedOrGreaterThanOrEqual, scale, inf);
        let special = self.b.ins().bor(is_zero, not_finite);
        self.b.ins().select(special, scale, r)
    }

    /// `m + ln(sum(exp(x - m)))` with `m = max(x)`, or `m` when it is not finite.
    pub(super) fn logsumexp(&mut self, v: Value) -> cl::Value {
        let m = self.reduce_max(v, &mut |_, e| e);
        let s = self.sum(v, &mut |t, e| {
            let d = t.b.ins().fsub(e, m);
            t.call(Callee::Unary(Unary::Exp), &[d])
        });
        let l = self.call(Callee::Unary(Unary::Log), &[s]);
        let r = self.b.ins().fadd(m, l);
        let inf = self.b.ins().f64const(f64::INFINITY);
        let mag = self.b.ins().fabs(m);
        let finite = self.b.ins().fcmp(FloatCC::LessThan, mag, inf);
        self.b.ins().select(finite, r, m)
    }

    /// `v`, the `softmax` of `a`: `e = exp(a - max(a))`, then `e / sum(e)`.
    pub(super) fn softmax(&mut self, v: Value, a: Value) -> Loc {
        let n = self.f.shape(a).size();
        let m = self.reduce_max(a, &mut |_, e| e);
        let x = self.operand(a);
        let dst = self.dest(v);
        let acc = self.var(-0.0);
        self.for_each(n, &mut |t, ix| {
            let e = t.read(x, ix);
            let d = t.b.ins().fsub(e, m);
            let e = t.call(Callee::Unary(Unary::Exp), &[d]);
            t.write(dst, ix, e);
            let a = t.b.use_var(acc);
            let s = t.b.ins().fadd(a, e);
            t.b.def_var(acc, s);
        });
        let s = self.b.use_var(acc);
        self.for_each(n, &mut |t, ix| {
            let e = t.read(dst, ix);
            let q = t.b.ins().fdiv(e, s);
            t.write(dst, ix, q);
        });
        dst_loc(dst)
    }
}
