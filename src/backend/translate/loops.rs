//! The loop builders of the translator: counted loops (unrolled when
//! short), loop nests over a shape, pairs of columns, and the loops that
//! copy and fill memory two elements at a time.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{self as cl, InstBuilder};

use super::{Bound, Ix, Opnd, Translator};
use crate::backend::plan::UNROLL;

/// A loop over one axis: runs its body for every index in `0..n`.
type Axis<T> = fn(&mut T, usize, &mut dyn FnMut(&mut T, Ix));

impl Translator<'_, '_> {
    /// Runs `body` for every index in `0..n` with a step of `step`: unrolled
    /// when short, else a counted loop (`n` is a multiple of `step`).
    pub(super) fn for_each_step(
        &mut self,
        n: usize,
        step: usize,
        body: &mut dyn FnMut(&mut Self, Ix),
    ) {
        self.stepping(n, step, false, body);
    }

    /// [`Translator::for_each_step`] from the last index (`n - step`) down
    /// to 0; for vectors (`step` above 1) as [`Translator::for_each_vector`]
    /// going down: two steps an iteration, the higher first, and the step
    /// at 0 alone after the loop if their number is odd.
    pub(super) fn for_each_step_down(
        &mut self,
        n: usize,
        step: usize,
        body: &mut dyn FnMut(&mut Self, Ix),
    ) {
        if step == 1 || n / step <= UNROLL {
            return self.stepping(n, step, true, body);
        }
        let pairs = n / (2 * step) * (2 * step);
        let top = (n - 2 * step) as i64;
        self.counted_loop(2 * step, Bound::Const(pairs), &mut |t, ix| {
            let count = ix.dynamic.expect("a counted loop's index");
            let top = t.b.ins().iconst(t.ptr, top);
            let lower = Ix {
                dynamic: Some(t.b.ins().isub(top, count)),
                konst: 0,
            };
            body(t, lower.plus(step));
            body(t, lower);
        });
        if pairs < n {
            body(self, Ix::c(0));
        }
    }

    /// The indices of `0..n` with a step of `step`, up, or `down` from the
    /// last: unrolled when short, else a counted loop.
    fn stepping(&mut self, n: usize, step: usize, down: bool, body: &mut dyn FnMut(&mut Self, Ix)) {
        if n == 0 {
            return;
        }
        if n / step <= UNROLL {
            let mut ks: Vec<usize> = (0..n).step_by(step).collect();
            if down {
                ks.reverse();
            }
            for k in ks {
                body(self, Ix::c(k));
            }
            return;
        }
        if !down {
            return self.counted_loop(step, Bound::Const(n), body);
        }
        let last = (n - step) as i64;
        self.counted_loop(step, Bound::Const(n), &mut |t, ix| {
            let count = ix.dynamic.expect("a counted loop's index");
            let last = t.b.ins().iconst(t.ptr, last);
            let at = t.b.ins().isub(last, count);
            body(
                t,
                Ix {
                    dynamic: Some(at),
                    konst: 0,
                },
            )
        });
    }

    /// [`Translator::for_each_step`] for straight-line code on vectors (an
    /// element of a run, of an elementwise operation, a copy): a counted
    /// loop goes two steps an iteration, the body at `i` then at `i +
    /// step`, and the last step alone after it if their number is odd. The
    /// same elements in the same order, with half the counting and
    /// branching of the loop (`kmeans`' distances and `ode`'s stages 4 to
    /// 6% faster).
    pub(super) fn for_each_vector(
        &mut self,
        n: usize,
        step: usize,
        body: &mut dyn FnMut(&mut Self, Ix),
    ) {
        if n / step <= UNROLL {
            return self.for_each_step(n, step, body);
        }
        let pairs = n / (2 * step) * (2 * step);
        self.counted_loop(2 * step, Bound::Const(pairs), &mut |t, ix| {
            body(t, ix);
            body(t, ix.plus(step));
        });
        if pairs < n {
            body(self, Ix::c(pairs));
        }
    }

    /// Runs `body` at every index in `0..n` with a step of `step`, the last
    /// step at `n - step` (`n` is at least `step`): the elements the steps
    /// before it reached are computed again, in place of a tail of single
    /// elements, for a body that may run twice at one index.
    pub(super) fn for_each_overlapped(
        &mut self,
        n: usize,
        step: usize,
        body: &mut dyn FnMut(&mut Self, Ix),
    ) {
        let last = n - step;
        if n.div_ceil(step) <= UNROLL {
            for k in (0..last).step_by(step).chain([last]) {
                body(self, Ix::c(k));
            }
            return;
        }
        self.loop_clamped(step, Bound::Const(n), Some(last), body);
    }

    /// A loop `for i in (0..bound).step_by(step)` in the generated code, with
    /// the test at the bottom: the bound must be at least 1.
    fn counted_loop(&mut self, step: usize, bound: Bound, body: &mut dyn FnMut(&mut Self, Ix)) {
        self.loop_clamped(step, bound, None, body);
    }

    /// [`Translator::counted_loop`], each next index but the first held to
    /// at most `last` if given (so that the last step starts there).
    fn loop_clamped(
        &mut self,
        step: usize,
        bound: Bound,
        last: Option<usize>,
        body: &mut dyn FnMut(&mut Self, Ix),
    ) {
        let counter = self.b.declare_var(self.ptr);
        let zero = self.b.ins().iconst(self.ptr, 0);
        self.b.def_var(counter, zero);
        let header = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(counter);
        body(
            self,
            Ix {
                dynamic: Some(i),
                konst: 0,
            },
        );
        let next = self.b.ins().iadd_imm_s(i, step as i64);
        let more = match bound {
            Bound::Const(n) => self
                .b
                .ins()
                .icmp_imm_u(IntCC::UnsignedLessThan, next, n as i64),
            Bound::Value(n) => self.b.ins().icmp(IntCC::UnsignedLessThan, next, n),
        };
        let next = match last {
            Some(last) => {
                let last = self.b.ins().iconst(self.ptr, last as i64);
                self.b.ins().umin(next, last)
            }
            None => next,
        };
        self.b.def_var(counter, next);
        self.b.ins().brif(more, header, &[], exit, &[]);
        self.b.switch_to_block(exit);
    }

    /// Runs `body` for every index in `0..n`.
    pub(super) fn for_each(&mut self, n: usize, body: &mut dyn FnMut(&mut Self, Ix)) {
        self.for_each_step(n, 1, body);
    }

    /// [`Translator::for_each`] two indices an iteration, as
    /// [`Translator::for_each_vector`]: for a short body of single numbers.
    pub(super) fn for_each_two(&mut self, n: usize, body: &mut dyn FnMut(&mut Self, Ix)) {
        self.for_each_vector(n, 1, body);
    }

    /// Runs `body` for every index in `0..n` in a counted loop, however
    /// short (`body` once, inline, when `n` is 1): for a body so large that
    /// copies of it would cost more to compile than the loop costs to run.
    pub(super) fn for_each_rolled(&mut self, n: usize, body: &mut dyn FnMut(&mut Self, Ix)) {
        match n {
            0 => {}
            1 => body(self, Ix::c(0)),
            _ => self.counted_loop(1, Bound::Const(n), body),
        }
    }

    /// Runs `body` for every multi-index of `dims`, in row-major order.
    pub(super) fn nest(&mut self, dims: &[usize], body: &mut dyn FnMut(&mut Self, &[Ix])) {
        self.nest_with(dims, Self::for_each, body);
    }

    /// [`Translator::nest`], each axis a loop of `axis` (`for_each`, which
    /// unrolls short ones, or a loop that never does).
    pub(super) fn nest_with(
        &mut self,
        dims: &[usize],
        axis: Axis<Self>,
        body: &mut dyn FnMut(&mut Self, &[Ix]),
    ) {
        let mut idx = Vec::with_capacity(dims.len());
        self.nest_rec(dims, axis, &mut idx, body);
    }

    /// The loops over `dims` inside the loops of `idx`.
    fn nest_rec(
        &mut self,
        dims: &[usize],
        axis: Axis<Self>,
        idx: &mut Vec<Ix>,
        body: &mut dyn FnMut(&mut Self, &[Ix]),
    ) {
        match dims.split_first() {
            None => body(self, idx),
            Some((&d, rest)) => axis(self, d, &mut |t, i| {
                idx.push(i);
                t.nest_rec(rest, axis, idx, body);
                idx.pop();
            }),
        }
    }

    /// Runs `body` for every index in `0..count`, a value of at least 1.
    pub(super) fn for_count(&mut self, count: cl::Value, body: &mut dyn FnMut(&mut Self, Ix)) {
        self.counted_loop(1, Bound::Value(count), body);
    }

    /// Runs `body` over the columns `0..n` of a row: vectors of the
    /// element type's lanes (pairs of f64, fours of f32), then the last
    /// columns one by one.
    pub(super) fn columns(&mut self, n: usize, body: &mut dyn FnMut(&mut Self, Ix, cl::Type)) {
        let (lanes, vt, st) = (self.lanes, self.vt, self.st);
        self.for_each_vector(n - n % lanes, lanes, &mut |t, col| body(t, col, vt));
        for col in n - n % lanes..n {
            body(self, Ix::c(col), st);
        }
    }

    /// Copies `n` elements of `src` to `dst` from element `to` on, two at a
    /// time; a register `src` is one scalar, stored once.
    pub(super) fn copy(&mut self, src: Opnd, dst: Opnd, to: usize, n: usize) {
        if let Opnd::Reg(x) = src {
            self.write(dst, Ix::c(to), x);
            return;
        }
        let (lanes, vt) = (self.lanes, self.vt);
        self.for_each_vector(n - n % lanes, lanes, &mut |t, ix| {
            let x = t.read_as(vt, src, ix);
            let at = t.lin(&[(ix, 1)], to);
            t.write(dst, at, x);
        });
        for k in n - n % lanes..n {
            let x = self.read(src, Ix::c(k));
            self.write(dst, Ix::c(to + k), x);
        }
    }

    /// Sets `n` elements of `dst` to `x`, a vector at a time.
    pub(super) fn fill(&mut self, dst: Opnd, n: usize, x: f64) {
        let v = self.fconst(x);
        self.fill_with(dst, n, v);
    }

    /// Sets `n` elements of `dst` to the element `v`, a vector at a time.
    pub(super) fn fill_with(&mut self, dst: Opnd, n: usize, v: cl::Value) {
        let (lanes, vt) = (self.lanes, self.vt);
        if n >= lanes {
            let v2 = self.b.ins().splat(vt, v);
            self.for_each_vector(n - n % lanes, lanes, &mut |t, ix| t.write(dst, ix, v2));
        }
        for k in n - n % lanes..n {
            self.write(dst, Ix::c(k), v);
        }
    }

    /// `dst[j] = op(dst[j], src[j])` for `j` in `0..n`, two at a time (a
    /// register `src` stands for every element).
    pub(super) fn pairwise(
        &mut self,
        dst: Opnd,
        src: Opnd,
        n: usize,
        op: &mut dyn FnMut(&mut Self, cl::Value, cl::Value) -> cl::Value,
    ) {
        let (lanes, vt) = (self.lanes, self.vt);
        let wide = match src {
            Opnd::Reg(x) if n >= lanes => Opnd::Reg(self.b.ins().splat(vt, x)),
            other => other,
        };
        self.for_each_vector(n - n % lanes, lanes, &mut |t, ix| {
            let a = t.read_as(vt, dst, ix);
            let x = t.read_as(vt, wide, ix);
            let y = op(t, a, x);
            t.write(dst, ix, y);
        });
        for k in n - n % lanes..n {
            let ix = Ix::c(k);
            let a = self.read(dst, ix);
            let x = self.read(src, ix);
            let y = op(self, a, x);
            self.write(dst, ix, y);
        }
    }
}
