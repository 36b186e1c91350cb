//! Reductions and broadcasts along axes: a reduction of each slice along
//! some axes (`sum_axes`, `max_axes`, ...), with the faster orders that give
//! the interpreter's bits (a sum or a maximum along leading axes a row at a
//! time, a sum along the last axis four rows side by side, a logsumexp
//! along leading axes by columns), and `broadcast_axes`.

use cranelift_codegen::ir::{self as cl, InstBuilder};

use super::math::PAIRS;
use super::reduce::Walk;
use super::{Ix, Loc, Opnd, Translator};
use crate::ir::{axes, Reduce, Unary, Value};
use crate::shape::Shape;

impl Translator<'_, '_> {
    /// `v`, the reduction `kind` of `a` along `along`: a register for a
    /// scalar result, else one reduction per element, written in order.
    pub(super) fn reduce_axes(&mut self, v: Value, a: Value, kind: Reduce, along: &[usize]) -> Loc {
        if self.f.shape(v).is_scalar() {
            let mut r = None;
            self.slices(a, along, &mut |t, w, _| {
                r = Some(t.reduce_of(kind, &|_| w.clone()));
            });
            return Loc::Reg(r.expect("one slice"));
        }
        let dst = self.dest(v);
        let rank = self.f.shape(a).rank();
        if matches!(kind, Reduce::Sum | Reduce::Max) && !along.contains(&(rank - 1)) {
            self.reduce_rows(dst, a, kind, along);
            return self.dst_loc(dst);
        }
        let len = self.f.shape(a).dims()[rank - 1];
        if kind == Reduce::LogSumExp && !along.contains(&(rank - 1)) && self.pair_math() {
            self.logsumexp_rows(dst, a, along);
            return self.dst_loc(dst);
        }
        if kind == Reduce::Sum && along == [rank - 1] && len > 0 {
            self.sum_last(dst, a);
            return self.dst_loc(dst);
        }
        self.slices(a, along, &mut |t, w, out| {
            let r = t.reduce_of(kind, &|_| w.clone());
            t.write(dst, out, r);
        });
        self.dst_loc(dst)
    }

    /// A sum or a maximum of `a` along axes other than its last, into
    /// `dst`: `a` read in row-major order, each element added to (or
    /// taken into the maximum of) its result in `dst`, a vector of the
    /// last axis at a time. Each result still takes its elements in its
    /// slice's order, from -0 (or -inf): the same bits as a walk of the
    /// slice, whose steps along a leading axis are a whole row apart (8,000
    /// bytes for the sum over axis 1 of a [25, 64, 1000] tensor).
    fn reduce_rows(&mut self, dst: Opnd, a: Value, kind: Reduce, along: &[usize]) {
        let shape = self.f.shape(a).clone();
        let dims = shape.dims().to_vec();
        let src = self.operand(a);
        let size = axes::kept(&shape, along).iter().product();
        let start = if kind == Reduce::Sum {
            -0.0
        } else {
            f64::NEG_INFINITY
        };
        self.fill(dst, size, start);
        let from = shape.strides();
        let to = strides_into(&shape, along);
        let last = dims.len() - 1;
        self.nest(&dims[..last], &mut |t, ix| {
            let (row, out) = (t.at(ix, &from), t.at(ix, &to));
            t.columns(dims[last], &mut |t, col, ty| {
                let (i, o) = (
                    t.lin(&[(row, 1), (col, 1)], 0),
                    t.lin(&[(out, 1), (col, 1)], 0),
                );
                let x = t.read_as(ty, src, i);
                let acc = t.read_as(ty, dst, o);
                let y = if kind == Reduce::Sum {
                    t.b.ins().fadd(acc, x)
                } else {
                    t.maximum(acc, x)
                };
                t.write(dst, o, y);
            });
        });
    }

    /// The logsumexp of `a` along axes other than its last, into `dst`
    /// (`gmm`'s over the components of a [K, N] tensor): the maxima first,
    /// into `dst` ([`Self::reduce_rows`]); then each row of the result a
    /// few columns at a time (four pairs, in one call of the eight-wide
    /// `exp`, then pairs, then one), their slices walked side by side, the
    /// exponentials added into a vector of sums, and `m + log(s)` lane by
    /// lane. Each column still takes its slice's elements in order from -0:
    /// the bits of a walk of the slice.
    fn logsumexp_rows(&mut self, dst: Opnd, a: Value, along: &[usize]) {
        self.reduce_rows(dst, a, Reduce::Max, along);
        let shape = self.f.shape(a).clone();
        let src = self.operand(a);
        let (kdims, kstrides) = axes::others(&shape, along);
        let (rdims, rstrides) = axes::reduced(&shape, along);
        let out_strides = Shape(kdims.clone()).strides();
        let last = kdims.len() - 1;
        let cols = kdims[last];
        let lanes = self.lanes;
        let step = if self.eight_wide(Unary::Exp) {
            PAIRS * lanes
        } else {
            lanes
        };
        self.nest(&kdims[..last], &mut |t, ix| {
            let row = t.at(ix, &kstrides[..last]);
            let out = t.at(ix, &out_strides[..last]);
            let columns = |t: &mut Self, col: Ix, k: usize| {
                let (at, to) = (
                    t.lin(&[(row, 1), (col, 1)], 0),
                    t.lin(&[(out, 1), (col, 1)], 0),
                );
                t.lse_columns((src, at), (dst, to), (&rdims, &rstrides), k);
            };
            let whole = cols - cols % step;
            t.for_each_step(whole, step, &mut |t, col| columns(t, col, step / lanes));
            for col in (whole..cols - cols % lanes).step_by(lanes) {
                columns(t, Ix::c(col), 1);
            }
            for col in cols - cols % lanes..cols {
                let at = t.lin(&[(row, 1)], col);
                let w = Walk {
                    x: src,
                    base: vec![(at, 1)],
                    dims: rdims.clone(),
                    strides: rstrides.clone(),
                };
                let r = t.logsumexp_of(&|_| w.clone());
                let to = t.lin(&[(out, 1)], col);
                t.write(dst, to, r);
            }
        });
    }

    /// `k` pairs of columns of [`Self::logsumexp_rows`]: the slices from
    /// `x` at `at` (dimensions and strides `reduced`), their maxima in `y`
    /// at `to`, where their logsumexps go.
    fn lse_columns(
        &mut self,
        (x, at): (Opnd, Ix),
        (y, to): (Opnd, Ix),
        reduced: (&[usize], &[usize]),
        k: usize,
    ) {
        let (lanes, vt) = (self.lanes, self.vt);
        let ms: Vec<cl::Value> = (0..k)
            .map(|j| self.read_as(vt, y, to.plus(j * lanes)))
            .collect();
        let accs: Vec<_> = (0..k).map(|_| self.var_of(vt, -0.0)).collect();
        let (dims, strides) = reduced;
        self.nest(dims, &mut |t, rix| {
            let mut terms: Vec<(Ix, usize)> =
                rix.iter().copied().zip(strides.iter().copied()).collect();
            terms.push((at, 1));
            let base = t.lin(&terms, 0);
            let ds: Vec<cl::Value> = (0..k)
                .map(|j| {
                    let e = t.read_as(vt, x, base.plus(j * lanes));
                    t.b.ins().fsub(e, ms[j])
                })
                .collect();
            let es = if k == PAIRS {
                t.math_of_pairs(Unary::Exp, &ds)
            } else {
                ds.iter().map(|&d| t.exp(d)).collect()
            };
            for (&acc, e) in accs.iter().zip(es) {
                let s = t.b.use_var(acc);
                let s = t.b.ins().fadd(s, e);
                t.b.def_var(acc, s);
            }
        });
        for (j, &acc) in accs.iter().enumerate() {
            let s = self.b.use_var(acc);
            for lane in 0..lanes {
                let (sl, ml) = (
                    self.b.ins().extractlane(s, lane as u8),
                    self.b.ins().extractlane(ms[j], lane as u8),
                );
                let r = self.log_sum(ml, sl);
                self.write(y, to.plus(j * lanes + lane), r);
            }
        }
    }

    /// The sums of `a` along its last axis only, into `dst`: `ROWS` rows at
    /// a time, each into an accumulator of its own, so that their chains
    /// of dependent additions overlap instead of following each other
    /// (the sum over the points of a `[K, D, N]` tensor is `K D` chains of
    /// `N`); rows of at most `SHORT` elements one at a time, the loop's
    /// iterations overlapping instead (a quarter of the code: `ba` sums 21
    /// tensors of [P, 3] and [P, 2] along their rows). Each row still adds
    /// its elements in order from -0: the bits of a walk of the row.
    fn sum_last(&mut self, dst: Opnd, a: Value) {
        const ROWS: usize = 4;
        const SHORT: usize = 4;
        let shape = self.f.shape(a).clone();
        let len = shape.dims()[shape.rank() - 1];
        let rows = shape.size() / len;
        let src = self.operand(a);
        if len <= SHORT {
            self.for_each(rows, &mut |t, r| {
                let mut s = t.fconst(-0.0);
                for j in 0..len {
                    let i = t.lin(&[(r, len)], j);
                    let x = t.read(src, i);
                    s = t.b.ins().fadd(s, x);
                }
                t.write(dst, r, s);
            });
            return;
        }
        let group = |t: &mut Self, first: Ix, count: usize| {
            let accs: Vec<_> = (0..count).map(|_| t.var(-0.0)).collect();
            t.for_each(len, &mut |t, j| {
                for (k, &acc) in accs.iter().enumerate() {
                    let i = t.lin(&[(first, len), (j, 1)], k * len);
                    let x = t.read(src, i);
                    let s = t.b.use_var(acc);
                    let s = t.b.ins().fadd(s, x);
                    t.b.def_var(acc, s);
                }
            });
            for (k, &acc) in accs.iter().enumerate() {
                let s = t.b.use_var(acc);
                let o = t.lin(&[(first, 1)], k);
                t.write(dst, o, s);
            }
        };
        let whole = rows - rows % ROWS;
        self.for_each_step(whole, ROWS, &mut |t, first| group(t, first, ROWS));
        if whole < rows {
            group(self, Ix::c(whole), rows - whole);
        }
    }

    /// The offset of the multi-index `ix` (of the leading axes) by
    /// `strides`.
    pub(super) fn at(&mut self, ix: &[Ix], strides: &[usize]) -> Ix {
        let terms: Vec<(Ix, usize)> = ix.iter().copied().zip(strides.iter().copied()).collect();
        self.lin(&terms, 0)
    }

    /// `v`, `a` (the shape of `v` without `along`) repeated along `along`.
    pub(super) fn broadcast_axes(&mut self, v: Value, a: Value, along: &[usize]) -> Loc {
        let src = self.operand(a);
        if self.f.shape(v).is_scalar() {
            return Loc::Reg(self.read(src, Ix::c(0)));
        }
        let shape = self.f.shape(v).clone();
        let dst = self.dest(v);
        // The result in row-major order, a row at a time: a copy of the
        // argument's row, or one of its elements in every column.
        let dims = shape.dims().to_vec();
        let to = shape.strides();
        let from = strides_into(&shape, along);
        let last = dims.len() - 1;
        self.nest(&dims[..last], &mut |t, ix| {
            let (row, out) = (t.at(ix, &from), t.at(ix, &to));
            let x = (from[last] == 0).then(|| t.read(src, row));
            t.columns(dims[last], &mut |t, col, ty| {
                let o = t.lin(&[(out, 1), (col, 1)], 0);
                let y = match x {
                    Some(x) => t.splat_as(ty, x),
                    None => {
                        let i = t.lin(&[(row, 1), (col, 1)], 0);
                        t.read_as(ty, src, i)
                    }
                };
                t.write(dst, o, y);
            });
        });
        self.dst_loc(dst)
    }
}

/// The strides, for each axis of `s`, of the tensor `s` is without the
/// axes `along` (row-major): 0 along those.
pub(super) fn strides_into(s: &Shape, along: &[usize]) -> Vec<usize> {
    let mut strides = Shape(axes::kept(s, along)).strides().into_iter();
    (0..s.rank())
        .map(|ax| {
            if along.contains(&ax) {
                0
            } else {
                strides.next().expect("a stride per kept axis")
            }
        })
        .collect()
}
