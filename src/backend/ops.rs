//! The lowering of the operations that are more than one instruction per
//! element: the elementwise functions, reductions, softmax, `@`, slices and
//! `one_hot`, as methods of the [`Translator`].

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{self as cl, types, InstBuilder, MemFlagsData};
use cranelift_frontend::Variable;

use super::abi::{ERROR_SLOT, EXAMPLE_SLOT};
use super::fuse;
use super::libm::Callee;
use super::translate::{dst_loc, offset_bytes, Ix, Loc, Opnd, Translator, UNROLL};
use crate::ir::interp::slice_offsets;
use crate::ir::{Binary, SliceAxis, Unary, Value};
use crate::shape::Shape;

/// How many dot products (or pairs of them) a blocked product computes in
/// one loop: enough independent additions to keep the adders busy, few
/// enough to keep the accumulators in registers.
pub(super) const BLOCK: usize = 4;

impl Translator<'_, '_> {
    pub(super) fn unary(&mut self, u: Unary, x: cl::Value) -> cl::Value {
        match u {
            Unary::Neg => self.b.ins().fneg(x),
            Unary::Sqrt => self.b.ins().sqrt(x),
            Unary::Abs => self.b.ins().fabs(x),
            Unary::Sign => {
                // x > 0: 1, x < 0: -1, x == 0: +0, NaN: x.
                let zero = self.b.ins().f64const(0.0);
                let one = self.b.ins().f64const(1.0);
                let minus = self.b.ins().f64const(-1.0);
                let is_zero = self.b.ins().fcmp(FloatCC::Equal, x, zero);
                let r = self.b.ins().select(is_zero, zero, x);
                let neg = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
                let r = self.b.ins().select(neg, minus, r);
                let pos = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                self.b.ins().select(pos, one, r)
            }
            Unary::Relu => {
                // x if x > 0 or NaN, else +0.
                let zero = self.b.ins().f64const(0.0);
                let keep = self.b.ins().fcmp(FloatCC::UnorderedOrGreaterThan, x, zero);
                self.b.ins().select(keep, x, zero)
            }
            Unary::Exp
            | Unary::Log
            | Unary::Sin
            | Unary::Cos
            | Unary::Tanh
            | Unary::Sigmoid
            | Unary::Softplus => self.call(Callee::Unary(u), &[x]),
        }
    }

    pub(super) fn binary(&mut self, op: Binary, x: cl::Value, y: cl::Value) -> cl::Value {
        let cmp = |t: &mut Self, cc| {
            let c = t.b.ins().fcmp(cc, x, y);
            t.truth(c)
        };
        match op {
            Binary::Add => self.b.ins().fadd(x, y),
            Binary::Sub => self.b.ins().fsub(x, y),
            Binary::Mul => self.b.ins().fmul(x, y),
            Binary::Div => self.b.ins().fdiv(x, y),
            Binary::Max => self.b.ins().fmax(x, y),
            Binary::Min => self.b.ins().fmin(x, y),
            Binary::Eq => cmp(self, FloatCC::Equal),
            Binary::Ne => cmp(self, FloatCC::NotEqual),
            Binary::Lt => cmp(self, FloatCC::LessThan),
            Binary::Le => cmp(self, FloatCC::LessThanOrEqual),
            Binary::Gt => cmp(self, FloatCC::GreaterThan),
            Binary::Ge => cmp(self, FloatCC::GreaterThanOrEqual),
            Binary::Pow | Binary::BceLogits => self.call(Callee::Binary(op), &[x, y]),
        }
    }

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

    /// `e = exp(x - max(x))`, then `e / sum(e)`.
    pub(super) fn softmax(&mut self, i: usize, v: Value) -> Loc {
        let n = self.f.shape(v).size();
        let m = self.reduce_max(v, &mut |_, e| e);
        let x = self.operand(v);
        let dst = self.dest(i);
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

    /// The four forms of `@`, each element a dot product summed left to right
    /// from -0, like the interpreter.
    ///
    /// When the dot products are loops (longer than [`UNROLL`]), several
    /// independent ones share one loop, so that their additions overlap
    /// instead of waiting on each other: [`BLOCK`] rows at a time for a
    /// matrix-vector product, [`BLOCK`] f64x2 pairs of columns at a time
    /// otherwise. In a batched function, `W @ x` with `W` fixed over the
    /// batch reads `W`'s transpose, made once per call (see
    /// [`super::abi::Layout::transposed`]), and is computed as `x @ W^T`, two
    /// rows of `W` per f64x2. Each element still adds the same products (a
    /// product of two numbers is the same bits either way round) in the same
    /// order.
    pub(super) fn matmul(&mut self, i: usize, a: Value, b: Value) -> Loc {
        let (m, k) = match self.f.shape(a).dims() {
            [m, k] => (*m, *k),
            d => (1, d[0]),
        };
        let n = match self.f.shape(b).dims() {
            [_, n] => *n,
            _ => 1,
        };
        if self.f.insts()[i].shape.is_scalar() {
            let (x, y) = (self.operand(a), self.operand(b));
            let d = self.dots(x, y, k, n, &[(Ix::c(0), Ix::c(0), types::F64)]);
            return Loc::Reg(d[0]);
        }
        let dst = self.dest(i);
        let blocked = k > UNROLL;
        // The transpose is made before the loop over the examples, for it.
        let transposed = match (self.example, self.f.shape(b).dims()) {
            (Some(_), [_]) => self.layout.transposed_of(a.index()),
            _ => None,
        };
        if let (true, Some(off)) = (blocked, transposed) {
            // x @ W^T: one row of m columns.
            let x = self.operand(b);
            let wt = Opnd::Mem {
                ptr: self.scratch,
                off,
                readonly: false,
            };
            self.row_times(x, wt, Ix::c(0), k, m, dst, true);
            return dst_loc(dst);
        }
        let (x, y) = (self.operand(a), self.operand(b));
        if blocked && n == 1 {
            let whole = m - m % BLOCK;
            self.for_each_step(whole, BLOCK, &mut |t, row| {
                let cells: Vec<(Ix, Ix, cl::Type)> = (0..BLOCK)
                    .map(|r| (row.plus(r), Ix::c(0), types::F64))
                    .collect();
                let d = t.dots(x, y, k, n, &cells);
                for (r, v) in d.into_iter().enumerate() {
                    t.write(dst, row.plus(r), v);
                }
            });
            let cells: Vec<(Ix, Ix, cl::Type)> = (whole..m)
                .map(|r| (Ix::c(r), Ix::c(0), types::F64))
                .collect();
            if !cells.is_empty() {
                let d = self.dots(x, y, k, n, &cells);
                for (r, v) in (whole..m).zip(d) {
                    self.write(dst, Ix::c(r), v);
                }
            }
            return dst_loc(dst);
        }
        self.for_each(m, &mut |t, row| t.row_times(x, y, row, k, n, dst, blocked));
        dst_loc(dst)
    }

    /// Row `row` of `x @ y` (`x` is `[_, k]`, `y` is `[k, n]`) into row `row`
    /// of `dst`: pairs of columns as f64x2, the last one alone if `n` is odd;
    /// if `blocked`, [`BLOCK`] pairs per loop over `k`, and the rest in one
    /// more.
    #[expect(clippy::too_many_arguments, reason = "the operands of a product")]
    fn row_times(
        &mut self,
        x: Opnd,
        y: Opnd,
        row: Ix,
        k: usize,
        n: usize,
        dst: Opnd,
        blocked: bool,
    ) {
        let put = |t: &mut Self, cells: &[(Ix, Ix, cl::Type)]| {
            let d = t.dots(x, y, k, n, cells);
            for (&(_, col, _), v) in cells.iter().zip(d) {
                let at = t.lin(&[(row, n), (col, 1)], 0);
                t.write(dst, at, v);
            }
        };
        if !blocked {
            self.columns(n, &mut |t, col, ty| put(t, &[(row, col, ty)]));
            return;
        }
        let whole = n - n % (2 * BLOCK);
        self.for_each_step(whole, 2 * BLOCK, &mut |t, col| {
            let cells: Vec<(Ix, Ix, cl::Type)> = (0..BLOCK)
                .map(|c| (row, col.plus(2 * c), types::F64X2))
                .collect();
            put(t, &cells);
        });
        let mut cells = Vec::new();
        let mut col = whole;
        while col + 2 <= n {
            cells.push((row, Ix::c(col), types::F64X2));
            col += 2;
        }
        if col < n {
            cells.push((row, Ix::c(col), types::F64));
        }
        if !cells.is_empty() {
            put(self, &cells);
        }
    }

    /// Dot products of rows of `x` (`[_, k]`, row-major) with columns of `y`
    /// (`[k, n]`), all in one loop over `k`: cell `(row, col, ty)` is element
    /// `(row, col)`, or with `ty` f64x2 the pair `(row, col..col + 2)`, each
    /// lane summing its own products from -0 in order. An element of `x` is
    /// loaded once per step for all the cells of its row.
    pub(super) fn dots(
        &mut self,
        x: Opnd,
        y: Opnd,
        k: usize,
        n: usize,
        cells: &[(Ix, Ix, cl::Type)],
    ) -> Vec<cl::Value> {
        let accs: Vec<Variable> = cells
            .iter()
            .map(|&(_, _, ty)| self.var_of(ty, -0.0))
            .collect();
        self.for_each(k, &mut |t, p| {
            // (row, ty) -> the loaded (and splat) element x[row, p].
            let mut loaded: Vec<(Ix, cl::Type, cl::Value)> = Vec::new();
            for (&(row, col, ty), &acc) in cells.iter().zip(&accs) {
                let known = loaded
                    .iter()
                    .find(|(r, rty, _)| r.same(row) && *rty == ty)
                    .map(|&(_, _, u)| u);
                let ia = match known {
                    Some(_) => None,
                    None => Some(t.lin(&[(row, k), (p, 1)], 0)),
                };
                let ib = t.lin(&[(p, n), (col, 1)], 0);
                let u = match (known, ia) {
                    (Some(u), _) => u,
                    (None, ia) => {
                        let u = t.read(x, ia.expect("computed when not loaded"));
                        let u = t.splat_as(ty, u);
                        loaded.push((row, ty, u));
                        u
                    }
                };
                let v = t.read_as(ty, y, ib);
                let prod = t.b.ins().fmul(u, v);
                let s = t.b.use_var(acc);
                let s = t.b.ins().fadd(s, prod);
                t.b.def_var(acc, s);
            }
        });
        accs.iter().map(|&acc| self.b.use_var(acc)).collect()
    }

    /// Runs `body` over the columns `0..n` of a row: pairs as f64x2, then the
    /// last column as f64 if `n` is odd.
    pub(super) fn columns(&mut self, n: usize, body: &mut dyn FnMut(&mut Self, Ix, cl::Type)) {
        self.for_each_step(n - n % 2, 2, &mut |t, col| body(t, col, types::F64X2));
        if n % 2 == 1 {
            body(self, Ix::c(n - 1), types::F64);
        }
    }

    /// `x` as a value of type `ty`: itself, or splat to f64x2.
    pub(super) fn splat_as(&mut self, ty: cl::Type, x: cl::Value) -> cl::Value {
        if ty == types::F64 {
            x
        } else {
            self.b.ins().splat(ty, x)
        }
    }

    pub(super) fn slice(&mut self, i: usize, v: Value, axes: &[SliceAxis]) -> Loc {
        let from = self.f.shape(v).clone();
        let src = self.operand(v);
        let out = self.f.insts()[i].shape.clone();
        if out.is_scalar() {
            let at = slice_offsets(&from, axes)[0];
            return Loc::Reg(self.read(src, Ix::c(at)));
        }
        let dst = self.dest(i);
        let (base, ranges) = strided(&from, axes);
        let out_strides = out.strides();
        self.nest(out.dims(), &mut |t, ix| {
            let terms: Vec<(Ix, usize)> = ix.iter().copied().zip(ranges.iter().copied()).collect();
            let a = t.lin(&terms, base);
            let x = t.read(src, a);
            let terms: Vec<(Ix, usize)> = ix
                .iter()
                .copied()
                .zip(out_strides.iter().copied())
                .collect();
            let b = t.lin(&terms, 0);
            t.write(dst, b, x);
        });
        dst_loc(dst)
    }

    pub(super) fn unslice(&mut self, i: usize, v: Value, axes: &[SliceAxis], into: &Shape) -> Loc {
        let src = self.operand(v);
        if into.is_scalar() {
            return Loc::Reg(self.read(src, Ix::c(0)));
        }
        let part = self.f.shape(v).clone();
        let dst = self.dest(i);
        if let Some(off) = fuse::contiguous(into, axes) {
            // Zeros around one block: filled, and copied two at a time.
            let len = part.size();
            self.fill(dst, off, 0.0);
            self.copy(src, dst, off, len);
            self.fill(dst.at(off + len), into.size() - off - len, 0.0);
            return dst_loc(dst);
        }
        self.fill(dst, into.size(), 0.0);
        let (base, ranges) = strided(into, axes);
        let part_strides = part.strides();
        self.nest(part.dims(), &mut |t, ix| {
            let terms: Vec<(Ix, usize)> = ix
                .iter()
                .copied()
                .zip(part_strides.iter().copied())
                .collect();
            let a = t.lin(&terms, 0);
            let x = t.read(src, a);
            let terms: Vec<(Ix, usize)> = ix.iter().copied().zip(ranges.iter().copied()).collect();
            let b = t.lin(&terms, base);
            t.write(dst, b, x);
        });
        dst_loc(dst)
    }

    /// Zeros with a 1 at the class; a class that is not an integer in
    /// `0..n` leaves it in the error slot and returns `i + 1` at once.
    pub(super) fn one_hot(&mut self, i: usize, c: Value, n: usize) -> Loc {
        let c = match self.operand(c) {
            Opnd::Reg(x) => x,
            mem => self.read(mem, Ix::c(0)),
        };
        let dst = self.dest(i);
        self.fill(dst, n, 0.0);
        // In range and whole: 0 <= c < n and c == (c as i64) as f64. NaN fails
        // the first test; the conversion saturates, never traps.
        let zero = self.b.ins().f64const(0.0);
        let top = self.b.ins().f64const(n as f64);
        let ge = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, c, zero);
        let lt = self.b.ins().fcmp(FloatCC::LessThan, c, top);
        let k = self.b.ins().fcvt_to_sint_sat(self.ptr, c);
        let back = self.b.ins().fcvt_from_sint(types::F64, k);
        let whole = self.b.ins().fcmp(FloatCC::Equal, c, back);
        let ok = self.b.ins().band(ge, lt);
        let ok = self.b.ins().band(ok, whole);
        let good = self.b.create_block();
        let bad = self.b.create_block();
        self.b.ins().brif(ok, good, &[], bad, &[]);
        self.b.switch_to_block(bad);
        let at = offset_bytes(ERROR_SLOT);
        self.b
            .ins()
            .store(MemFlagsData::trusted(), c, self.scratch, at);
        if let Some(example) = self.example {
            let e = self.b.ins().fcvt_from_uint(types::F64, example);
            let at = offset_bytes(EXAMPLE_SLOT);
            self.b
                .ins()
                .store(MemFlagsData::trusted(), e, self.scratch, at);
        }
        let status = self.b.ins().iconst(types::I64, i as i64 + 1);
        self.b.ins().return_(&[status]);
        self.b.switch_to_block(good);
        let one = self.b.ins().f64const(1.0);
        self.write(
            dst,
            Ix {
                dynamic: Some(k),
                konst: 0,
            },
            one,
        );
        dst_loc(dst)
    }
}

/// Whether `u` is one instruction that works on f64x2 as on f64, lane by lane.
/// (Relu, sign and the comparisons could be lane-wise too, with a vector
/// `fcmp` and `bitselect`; on the small vectors of the examples that
/// measured slower than the scalar `select`s.)
pub(super) fn lane_wise_unary(u: Unary) -> bool {
    match u {
        Unary::Neg | Unary::Abs | Unary::Sqrt => true,
        Unary::Exp
        | Unary::Log
        | Unary::Sign
        | Unary::Sin
        | Unary::Cos
        | Unary::Tanh
        | Unary::Sigmoid
        | Unary::Relu
        | Unary::Softplus => false,
    }
}

/// Whether `op` is one instruction that works on f64x2 as on f64, lane by lane.
pub(super) fn lane_wise_binary(op: Binary) -> bool {
    match op {
        Binary::Add | Binary::Sub | Binary::Mul | Binary::Div | Binary::Max | Binary::Min => true,
        Binary::Pow
        | Binary::Eq
        | Binary::Ne
        | Binary::Lt
        | Binary::Le
        | Binary::Gt
        | Binary::Ge
        | Binary::BceLogits => false,
    }
}

/// The element offset of `Slice(axes)` of shape `s` at the origin of the
/// result, and the source stride of every kept (range) axis.
fn strided(s: &Shape, axes: &[SliceAxis]) -> (usize, Vec<usize>) {
    let mut base = 0;
    let mut ranges = Vec::new();
    for (ax, stride) in axes.iter().zip(s.strides()) {
        match *ax {
            SliceAxis::At(i) => base += i * stride,
            SliceAxis::Range(lo, _) => {
                base += lo * stride;
                ranges.push(stride);
            }
        }
    }
    (base, ranges)
}
