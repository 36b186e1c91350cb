//! The reductions (`sum`, `max`, `norm`, `logsumexp`) of a whole value or
//! of a slice (`along` walks the slices along axes), `softmax` and
//! `log_softmax` along an axis, and `argmax`, each in the interpreter's
//! order: a slice's elements in row-major order, sums from -0.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{self as cl, InstBuilder};

use super::{Ix, Loc, Opnd, Translator};
use crate::backend::libm::Callee;
use crate::backend::plan::fuse::SoftmaxPair;
use crate::ir::{axes, Reduce, Unary, Value};
use crate::shape::Shape;

/// The elements of one slice, as a reduction reads them: `x` at `base`
/// (terms of the enclosing loops' indices) plus, for every multi-index of
/// `dims` in row-major order, its indices times `strides`.
#[derive(Clone)]
pub(super) struct Walk {
    pub(super) x: Opnd,
    pub(super) base: Vec<(Ix, usize)>,
    pub(super) dims: Vec<usize>,
    pub(super) strides: Vec<usize>,
}

impl Translator<'_, '_> {
    /// All of `v`, as one slice.
    fn whole(&mut self, v: Value) -> Walk {
        Walk {
            x: self.operand(v),
            base: Vec::new(),
            dims: vec![self.f.shape(v).size()],
            strides: vec![1],
        }
    }

    /// Runs `body` on every element of the slice `w`, in row-major order,
    /// with the element's index in `w.x` and its multi-index in `w.dims`.
    fn walk(&mut self, w: &Walk, body: &mut dyn FnMut(&mut Self, Ix, &[Ix])) {
        self.nest(&w.dims, &mut |t, ix| {
            let mut terms = w.base.clone();
            terms.extend(ix.iter().copied().zip(w.strides.iter().copied()));
            let at = t.lin(&terms, 0);
            body(t, at, ix);
        });
    }

    /// The sum of `v`: of one block (`interp::SUM_BLOCK` elements) or
    /// less, `-0 + x0 + x1 + ...`, left to right, like `Iterator::sum`;
    /// else in blocks (`super::sums`).
    pub(super) fn sum(&mut self, v: Value) -> cl::Value {
        if self.f.shape(v).size() > crate::ir::interp::SUM_BLOCK {
            return self.sum_in_blocks(v);
        }
        self.sum_of(&|t| t.whole(v), &mut |_, x| x)
    }

    /// The sum of the slice that `slice` gives. (A reduction asks for its
    /// slice once per pass over it: the whole of a value finds its operand
    /// again at each pass, as a reduction to a scalar always did; a slice
    /// of an operand found once is the same each time.)
    fn sum_of(
        &mut self,
        slice: &dyn Fn(&mut Self) -> Walk,
        g: &mut dyn FnMut(&mut Self, cl::Value) -> cl::Value,
    ) -> cl::Value {
        let w = slice(self);
        let acc = self.var(-0.0);
        self.walk(&w, &mut |t, ix, _| {
            let e = t.read(w.x, ix);
            let e = g(t, e);
            let a = t.b.use_var(acc);
            let s = t.b.ins().fadd(a, e);
            t.b.def_var(acc, s);
        });
        self.b.use_var(acc)
    }

    /// `max(... max(max(-inf, x0), x1) ...)`, NaN-propagating. (A large
    /// one goes in parts: `Translator::max_in_parts`.)
    pub(super) fn reduce_max(&mut self, v: Value) -> cl::Value {
        self.max_of(&|t| t.whole(v))
    }

    /// The maximum of the `n` elements of `x` from its first, as
    /// [`Self::max_of`] takes it.
    pub(super) fn max_from(&mut self, x: Opnd, n: usize) -> cl::Value {
        let w = Walk {
            x,
            base: Vec::new(),
            dims: vec![n],
            strides: vec![1],
        };
        self.max_of(&|_| w.clone())
    }

    /// The maximum of a slice, NaN-propagating with -0 below +0. Under
    /// those rules `max` is associative and commutative, so the order it is
    /// taken in does not change the result (a NaN's payload aside): a
    /// whole value is read four vectors at a time into four running
    /// maxima, whose chains of dependent maxima then overlap (with two,
    /// `lse`'s maximum took as long as its exponentials), and the lanes
    /// are combined at the end.
    fn max_of(&mut self, slice: &dyn Fn(&mut Self) -> Walk) -> cl::Value {
        let w = slice(self);
        let (lanes, vt) = (self.lanes, self.vt);
        let step = 4 * lanes;
        if !(w.base.is_empty() && w.strides == [1] && w.dims[0] >= step) {
            let acc = self.var(f64::NEG_INFINITY);
            self.walk(&w, &mut |t, ix, _| {
                let e = t.read(w.x, ix);
                let a = t.b.use_var(acc);
                let m = t.maximum(a, e);
                t.b.def_var(acc, m);
            });
            return self.b.use_var(acc);
        }
        let n = w.dims[0];
        let accs = [0; 4].map(|_| self.var_of(vt, f64::NEG_INFINITY));
        self.for_each_step(n - n % step, step, &mut |t, ix| {
            for (j, &acc) in accs.iter().enumerate() {
                let e = t.read_as(vt, w.x, ix.plus(j * lanes));
                let a = t.b.use_var(acc);
                let m = t.maximum(a, e);
                t.b.def_var(acc, m);
            }
        });
        let [a0, a1, a2, a3] = accs.map(|acc| self.b.use_var(acc));
        let (m01, m23) = (self.maximum(a0, a1), self.maximum(a2, a3));
        let both = self.maximum(m01, m23);
        let mut m = self.b.ins().extractlane(both, 0);
        for lane in 1..lanes {
            let e = self.b.ins().extractlane(both, lane as u8);
            m = self.maximum(m, e);
        }
        for k in n - n % step..n {
            let e = self.read(w.x, Ix::c(k));
            m = self.maximum(m, e);
        }
        m
    }

    /// `scale * sqrt(sum((x / scale)^2))` with `scale = max|x|` (from 0), or
    /// `scale` itself when it is 0, infinite or NaN.
    pub(super) fn norm(&mut self, v: Value) -> cl::Value {
        self.norm_of(&|t| t.whole(v))
    }

    fn norm_of(&mut self, slice: &dyn Fn(&mut Self) -> Walk) -> cl::Value {
        let w = slice(self);
        let acc = self.var(0.0);
        self.walk(&w, &mut |t, ix, _| {
            let e = t.read(w.x, ix);
            let e = t.b.ins().fabs(e);
            let a = t.b.use_var(acc);
            let m = t.maximum(a, e);
            t.b.def_var(acc, m);
        });
        let scale = self.b.use_var(acc);
        let s = self.sum_of(slice, &mut |t, e| {
            let q = t.b.ins().fdiv(e, scale);
            t.b.ins().fmul(q, q)
        });
        let root = self.b.ins().sqrt(s);
        let r = self.b.ins().fmul(scale, root);
        let zero = self.fconst(0.0);
        let inf = self.fconst(f64::INFINITY);
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
        self.logsumexp_of(&|t| t.whole(v))
    }

    pub(super) fn logsumexp_of(&mut self, slice: &dyn Fn(&mut Self) -> Walk) -> cl::Value {
        let m = self.max_of(slice);
        let w = slice(self);
        if let Some(s) = self.exp_sum_pairs(&w, m, None) {
            return self.log_sum(m, s);
        }
        let s = self.sum_of(slice, &mut |t, e| {
            let d = t.b.ins().fsub(e, m);
            t.exp(d)
        });
        self.log_sum(m, s)
    }

    /// For a whole value (contiguous), when `exp` works on pairs: the sum
    /// of `exp(x - m)` over it, each exponential written to `dst` if given,
    /// two exponentials computed at a time and added one after the other,
    /// in the order of a loop of one at a time (so the same sum). `None`
    /// for any other slice.
    fn exp_sum_pairs(&mut self, w: &Walk, m: cl::Value, dst: Option<Opnd>) -> Option<cl::Value> {
        let n = *w.dims.first()?;
        if !(w.base.is_empty() && w.strides == [1] && n >= 2 && self.pair_math()) {
            return None;
        }
        let vt = self.vt;
        let ms = self.b.ins().splat(vt, m);
        let acc = self.var(-0.0);
        let add = |t: &mut Self, e: cl::Value| {
            let a = t.b.use_var(acc);
            let s = t.b.ins().fadd(a, e);
            t.b.def_var(acc, s);
        };
        self.for_each_step(n - n % 2, 2, &mut |t, ix| {
            let x = t.read_as(vt, w.x, ix);
            let d = t.b.ins().fsub(x, ms);
            let e = t.exp(d);
            if let Some(dst) = dst {
                t.write(dst, ix, e);
            }
            for lane in 0..2 {
                let e = t.b.ins().extractlane(e, lane);
                add(t, e);
            }
        });
        if n % 2 == 1 {
            let ix = Ix::c(n - 1);
            let x = self.read(w.x, ix);
            let d = self.b.ins().fsub(x, m);
            let e = self.exp(d);
            if let Some(dst) = dst {
                self.write(dst, ix, e);
            }
            add(self, e);
        }
        Some(self.b.use_var(acc))
    }

    /// `m + log(s)`, the logsumexp of a slice of maximum `m` whose
    /// exponentials `exp(x - m)` add up to `s`; `m` itself if it is not
    /// finite.
    pub(super) fn log_sum(&mut self, m: cl::Value, s: cl::Value) -> cl::Value {
        let l = self.call(Callee::Unary(Unary::Log), &[s]);
        let r = self.b.ins().fadd(m, l);
        let inf = self.fconst(f64::INFINITY);
        let mag = self.b.ins().fabs(m);
        let finite = self.b.ins().fcmp(FloatCC::LessThan, mag, inf);
        self.b.ins().select(finite, r, m)
    }

    /// The reduction `kind` of one slice.
    pub(super) fn reduce_of(
        &mut self,
        kind: Reduce,
        slice: &dyn Fn(&mut Self) -> Walk,
    ) -> cl::Value {
        match kind {
            Reduce::Sum => self.sum_of(slice, &mut |_, x| x),
            Reduce::Max => self.max_of(slice),
            Reduce::Norm => self.norm_of(slice),
            Reduce::LogSumExp => self.logsumexp_of(slice),
        }
    }

    /// Runs `body` once per slice of `a` along `axes`, in row-major order of
    /// the other axes: with the slice and the index of its result in a
    /// tensor of the other axes' dimensions.
    pub(super) fn slices(
        &mut self,
        a: Value,
        along: &[usize],
        body: &mut dyn FnMut(&mut Self, &Walk, Ix),
    ) {
        let shape = self.f.shape(a).clone();
        let x = self.operand(a);
        self.slices_of(&shape, x, along, body);
    }

    /// Runs `body` once per slice along `along` of `x`, of shape `shape`,
    /// as [`Translator::slices`].
    fn slices_of(
        &mut self,
        shape: &Shape,
        x: Opnd,
        along: &[usize],
        body: &mut dyn FnMut(&mut Self, &Walk, Ix),
    ) {
        let (dims, strides) = axes::others(shape, along);
        let (rdims, rstrides) = axes::reduced(shape, along);
        let out_strides = Shape(dims.clone()).strides();
        self.nest(&dims, &mut |t, ix| {
            let w = Walk {
                x,
                base: ix.iter().copied().zip(strides.iter().copied()).collect(),
                dims: rdims.clone(),
                strides: rstrides.clone(),
            };
            let terms: Vec<(Ix, usize)> = ix
                .iter()
                .copied()
                .zip(out_strides.iter().copied())
                .collect();
            let out = t.lin(&terms, 0);
            body(t, &w, out);
        });
    }

    /// `v`, the index along `axis` of the first largest element of each
    /// slice of `a`, a NaN counting as the largest (see
    /// [`crate::ir::interp::argmax`]).
    pub(super) fn argmax(&mut self, v: Value, a: Value, axis: usize) -> Loc {
        let scalar = self.f.shape(v).is_scalar();
        let dst = if scalar { None } else { Some(self.dest(v)) };
        let mut r = None;
        self.slices(a, &[axis], &mut |t, w, out| {
            let best = t.var(f64::NEG_INFINITY);
            let at = t.var(0.0);
            t.walk(w, &mut |t, ix, k| {
                let e = t.read(w.x, ix);
                let b = t.b.use_var(best);
                let above = t.b.ins().fcmp(FloatCC::GreaterThan, e, b);
                let nan = t.b.ins().fcmp(FloatCC::Unordered, e, e);
                let ordered = t.b.ins().fcmp(FloatCC::Ordered, b, b);
                let first_nan = t.b.ins().band(nan, ordered);
                let take = t.b.ins().bor(above, first_nan);
                let i = t.index_f64(k[0]);
                let nb = t.b.ins().select(take, e, b);
                t.b.def_var(best, nb);
                let old = t.b.use_var(at);
                let ni = t.b.ins().select(take, i, old);
                t.b.def_var(at, ni);
            });
            let i = t.b.use_var(at);
            match dst {
                Some(dst) => t.write(dst, out, i),
                None => r = Some(i),
            }
        });
        match dst {
            Some(dst) => self.dst_loc(dst),
            None => Loc::Reg(r.expect("one slice")),
        }
    }

    /// The index `ix` as an f64.
    fn index_f64(&mut self, ix: Ix) -> cl::Value {
        match ix.dynamic {
            None => self.fconst(ix.konst as f64),
            Some(d) => {
                let i = self.b.ins().iadd_imm_s(d, ix.konst as i64);
                self.b.ins().fcvt_from_uint(self.st, i)
            }
        }
    }

    /// `v`, the `softmax` of `a` along `axis`: per slice, `e = exp(a -
    /// max(a))`, then `e / sum(e)`.
    pub(super) fn softmax(&mut self, v: Value, a: Value, axis: usize) -> Loc {
        let dst = self.dest(v);
        if self.f.shape(a).rank() == 1 {
            self.softmax_of(&|t| t.whole(a), dst);
        } else {
            self.slices(a, &[axis], &mut |t, w, _| {
                t.softmax_of(&|_| w.clone(), dst);
            });
        }
        self.dst_loc(dst)
    }

    /// The softmax of one slice, written at its places in `dst`; returns
    /// the slice's maximum and the sum of the exponentials.
    fn softmax_of(
        &mut self,
        slice: &dyn Fn(&mut Self) -> Walk,
        dst: Opnd,
    ) -> (cl::Value, cl::Value) {
        let m = self.max_of(slice);
        let w = slice(self);
        let s = match self.exp_sum_pairs(&w, m, Some(dst)) {
            Some(s) => s,
            None => {
                let acc = self.var(-0.0);
                self.walk(&w, &mut |t, ix, _| {
                    let e = t.read(w.x, ix);
                    let d = t.b.ins().fsub(e, m);
                    let e = t.exp(d);
                    t.write(dst, ix, e);
                    let a = t.b.use_var(acc);
                    let s = t.b.ins().fadd(a, e);
                    t.b.def_var(acc, s);
                });
                self.b.use_var(acc)
            }
        };
        if w.base.is_empty() && w.strides == [1] {
            // The whole value: the quotients a vector at a time.
            let n = w.dims[0];
            self.pairwise(dst, Opnd::Reg(s), n, &mut |t, e, s| t.b.ins().fdiv(e, s));
        } else {
            self.walk(&w, &mut |t, ix, _| {
                let e = t.read(dst, ix);
                let q = t.b.ins().fdiv(e, s);
                t.write(dst, ix, q);
            });
        }
        (m, s)
    }

    /// A `softmax` and a `log_softmax` of the same value along the same
    /// axis, per slice in one go: the softmax as [`Self::softmax_of`], then
    /// `x - logsumexp(x)` from its maximum and sum, which are those
    /// `logsumexp` computes (the same exponentials, added in the same
    /// order).
    pub(super) fn softmax_pair(&mut self, p: SoftmaxPair) {
        let (soft, log) = (self.dest(p.softmax), self.dest(p.log_softmax));
        let both = |t: &mut Self, slice: &dyn Fn(&mut Self) -> Walk| {
            let (m, s) = t.softmax_of(slice, soft);
            let l = t.log_sum(m, s);
            let w = slice(t);
            t.walk(&w, &mut |t, ix, _| {
                let x = t.read(w.x, ix);
                let d = t.b.ins().fsub(x, l);
                t.write(log, ix, d);
            });
        };
        if self.f.shape(p.x).rank() == 1 {
            both(self, &|t| t.whole(p.x));
        } else {
            self.slices(p.x, &[p.axis], &mut |t, w, _| both(t, &|_| w.clone()));
        }
        self.set_loc(p.softmax, self.dst_loc(soft));
        self.set_loc(p.log_softmax, self.dst_loc(log));
    }

    /// `v`, the `log_softmax` of `args[0]` along `axis`: per slice, `x -
    /// logsumexp(x)`.
    pub(super) fn log_softmax(&mut self, v: Value, args: &[Value], axis: usize) -> Loc {
        let a = args[0];
        if self.f.shape(a).rank() == 1 {
            let l = self.logsumexp(a);
            return self.map(v, args, &mut |t, x| t.b.ins().fsub(x[0], l));
        }
        let dst = self.dest(v);
        self.slices(a, &[axis], &mut |t, w, _| {
            let l = t.logsumexp_of(&|_| w.clone());
            t.walk(w, &mut |t, ix, _| {
                let x = t.read(w.x, ix);
                let d = t.b.ins().fsub(x, l);
                t.write(dst, ix, d);
            });
        });
        self.dst_loc(dst)
    }
}
