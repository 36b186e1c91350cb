//! The sliding-window operations ([`Window`]): convolution, pooling and
//! their adjoints as loop nests over the static geometry, in the order of
//! the interpreter's kernels (`crate::ir::interp::window`), term for term,
//! so that the results are the same bits. A tap in the zero padding is
//! skipped: decided when compiling where the indices are constants, else by
//! a branch around the term.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{self as cl, InstBuilder};

use super::{Ix, Loc, Opnd, Translator};
use crate::ir::window::{Geometry, Window};
use crate::ir::Value;

/// Where a tap of a window falls on one axis of the input.
#[derive(Copy, Clone)]
enum Tap {
    /// In the padding, known when compiling: no term.
    Outside,
    /// At this row (or column) of the input.
    At(Ix),
    /// At this row if the condition holds at run time.
    Checked(Ix, cl::Value),
}

impl Translator<'_, '_> {
    /// `v`, the window operation `w` on `args`.
    pub(super) fn window(&mut self, v: Value, args: &[Value], w: Window) -> Loc {
        let shapes: Vec<_> = args.iter().map(|&a| self.f.shape(a)).collect();
        let geo = w
            .geometry(&shapes)
            .expect("the verifier checked the geometry");
        let a: Vec<Opnd> = args.iter().map(|&a| self.operand(a)).collect();
        let dst = self.dest(v);
        match w {
            Window::Conv2d { .. } => self.conv2d(&geo, a[0], a[1], dst),
            Window::Conv2dInput { .. } => self.conv2d_input(&geo, a[0], a[1], dst),
            Window::Conv2dKernel { .. } => self.conv2d_kernel(&geo, a[0], a[1], dst),
            Window::MaxPool2d { .. } => self.maxpool(&geo, a[0], a[0], dst, false),
            Window::MaxPoolGather { .. } => self.maxpool(&geo, a[0], a[1], dst, false),
            Window::MaxPoolScatter { .. } => self.maxpool(&geo, a[0], a[1], dst, true),
            Window::AvgPool2d { .. } => self.avgpool(&geo, a[0], dst),
            Window::AvgPoolAdjoint { .. } => self.avgpool_adjoint(&geo, a[0], dst),
        }
        self.dst_loc(dst)
    }

    /// The input row (or column, `n` of them) of output position `out` at
    /// tap `i` (see [`Geometry::tap`]).
    fn tap(&mut self, geo: &Geometry, out: Ix, i: Ix, n: usize) -> Tap {
        let pos = self.lin(&[(out, geo.stride), (i, 1)], 0);
        let p = geo.padding;
        match pos.dynamic {
            None if pos.konst < p || pos.konst - p >= n => Tap::Outside,
            None => Tap::At(Ix::c(pos.konst - p)),
            // Without padding every tap of a window is inside.
            Some(_) if p == 0 => Tap::At(pos),
            Some(d) => {
                let r = self.b.ins().iadd_imm_s(d, pos.konst as i64 - p as i64);
                let inside = self
                    .b
                    .ins()
                    .icmp_imm_u(IntCC::UnsignedLessThan, r, n as i64);
                Tap::Checked(
                    Ix {
                        dynamic: Some(r),
                        konst: 0,
                    },
                    inside,
                )
            }
        }
    }

    /// Runs `body` at the tap's position, if it is inside the input.
    fn at_tap(&mut self, tap: Tap, body: &mut dyn FnMut(&mut Self, Ix)) {
        match tap {
            Tap::Outside => {}
            Tap::At(ix) => body(self, ix),
            Tap::Checked(ix, inside) => {
                let then = self.b.create_block();
                let join = self.b.create_block();
                self.b.ins().brif(inside, then, &[], join, &[]);
                self.b.switch_to_block(then);
                body(self, ix);
                self.b.ins().jump(join, &[]);
                self.b.switch_to_block(join);
            }
        }
    }

    /// Runs `body(input offset within a channel, i, j)` for every tap of
    /// output position `(oh, ow)` inside the input, `i` then `j`.
    fn taps(
        &mut self,
        geo: &Geometry,
        oh: Ix,
        ow: Ix,
        body: &mut dyn FnMut(&mut Self, Ix, Ix, Ix),
    ) {
        let g = *geo;
        self.for_each(g.kh, &mut |t, i| {
            let row = t.tap(&g, oh, i, g.h);
            t.at_tap(row, &mut |t, h| {
                t.for_each(g.kw, &mut |t, j| {
                    let col = t.tap(&g, ow, j, g.w);
                    t.at_tap(col, &mut |t, w| {
                        let at = t.lin(&[(h, g.w), (w, 1)], 0);
                        body(t, at, i, j);
                    });
                });
            });
        });
    }

    /// `dst[at] += x`.
    fn add_to(&mut self, dst: Opnd, at: Ix, x: cl::Value) {
        let old = self.read(dst, at);
        let new = self.b.ins().fadd(old, x);
        self.write(dst, at, new);
    }

    /// The element `at` of a channel whose first element is `base`.
    fn plus(&mut self, base: Ix, at: Ix) -> Ix {
        self.lin(&[(base, 1), (at, 1)], 0)
    }

    fn conv2d(&mut self, geo: &Geometry, x: Opnd, k: Opnd, dst: Opnd) {
        let g = *geo;
        let (plane, taps) = (g.h * g.w, g.kh * g.kw);
        self.loops(&[g.o, g.oh, g.ow], &mut |t, ix| {
            let acc = t.var(-0.0);
            t.each(g.c, &mut |t, c| {
                let x0 = t.lin(&[(c, plane)], 0);
                let k0 = t.lin(&[(ix[0], g.c * taps), (c, taps)], 0);
                t.taps(&g, ix[1], ix[2], &mut |t, at, i, j| {
                    let xa = t.plus(x0, at);
                    let ka = t.lin(&[(k0, 1), (i, g.kw), (j, 1)], 0);
                    let (xv, kv) = (t.read(x, xa), t.read(k, ka));
                    let p = t.b.ins().fmul(xv, kv);
                    let s = t.b.use_var(acc);
                    let s = t.b.ins().fadd(s, p);
                    t.b.def_var(acc, s);
                });
            });
            let out = t.lin(&[(ix[0], g.oh * g.ow), (ix[1], g.ow), (ix[2], 1)], 0);
            let s = t.b.use_var(acc);
            t.write(dst, out, s);
        });
    }

    fn conv2d_input(&mut self, geo: &Geometry, gr: Opnd, k: Opnd, dst: Opnd) {
        let g = *geo;
        let (plane, taps) = (g.h * g.w, g.kh * g.kw);
        self.fill(dst, g.c * plane, 0.0);
        self.loops(&[g.o, g.oh, g.ow], &mut |t, ix| {
            let out = t.lin(&[(ix[0], g.oh * g.ow), (ix[1], g.ow), (ix[2], 1)], 0);
            let gv = t.read(gr, out);
            t.each(g.c, &mut |t, c| {
                let x0 = t.lin(&[(c, plane)], 0);
                let k0 = t.lin(&[(ix[0], g.c * taps), (c, taps)], 0);
                t.taps(&g, ix[1], ix[2], &mut |t, at, i, j| {
                    let ka = t.lin(&[(k0, 1), (i, g.kw), (j, 1)], 0);
                    let kv = t.read(k, ka);
                    let p = t.b.ins().fmul(gv, kv);
                    let xa = t.plus(x0, at);
                    t.add_to(dst, xa, p);
                });
            });
        });
    }

    fn conv2d_kernel(&mut self, geo: &Geometry, x: Opnd, gr: Opnd, dst: Opnd) {
        let g = *geo;
        let plane = g.h * g.w;
        self.loops(&[g.o, g.c, g.kh, g.kw], &mut |t, ix| {
            let (o, c, i, j) = (ix[0], ix[1], ix[2], ix[3]);
            let acc = t.var(-0.0);
            let x0 = t.lin(&[(c, plane)], 0);
            t.each(g.oh, &mut |t, oh| {
                let row = t.tap(&g, oh, i, g.h);
                t.at_tap(row, &mut |t, h| {
                    t.each(g.ow, &mut |t, ow| {
                        let col = t.tap(&g, ow, j, g.w);
                        t.at_tap(col, &mut |t, w| {
                            let ga = t.lin(&[(o, g.oh * g.ow), (oh, g.ow), (ow, 1)], 0);
                            let xa = t.lin(&[(x0, 1), (h, g.w), (w, 1)], 0);
                            let (gv, xv) = (t.read(gr, ga), t.read(x, xa));
                            let p = t.b.ins().fmul(gv, xv);
                            let s = t.b.use_var(acc);
                            let s = t.b.ins().fadd(s, p);
                            t.b.def_var(acc, s);
                        });
                    });
                });
            });
            let out = t.lin(
                &[(o, g.c * g.kh * g.kw), (c, g.kh * g.kw), (i, g.kw), (j, 1)],
                0,
            );
            let s = t.b.use_var(acc);
            t.write(dst, out, s);
        });
    }

    /// Max pooling's choice in each window (see
    /// [`crate::ir::interp::window::chosen`]): `u` read there (a gather), or
    /// with `scatter`, `u[c, oh, ow]` added to `dst` there.
    fn maxpool(&mut self, geo: &Geometry, x: Opnd, u: Opnd, dst: Opnd, scatter: bool) {
        let g = *geo;
        let plane = g.h * g.w;
        if scatter {
            self.fill(dst, g.c * plane, 0.0);
        }
        self.loops(&[g.c, g.oh, g.ow], &mut |t, ix| {
            let x0 = t.lin(&[(ix[0], plane)], 0);
            let corner = t.lin(&[(x0, 1), (ix[1], g.stride * g.w), (ix[2], g.stride)], 0);
            let best = t.var(f64::NEG_INFINITY);
            let at = t.b.declare_var(t.ptr);
            let first = t.ix_value(corner);
            t.b.def_var(at, first);
            t.taps(&g, ix[1], ix[2], &mut |t, off, _, _| {
                let xa = t.plus(x0, off);
                let e = t.read(x, xa);
                let b = t.b.use_var(best);
                let above = t.b.ins().fcmp(FloatCC::GreaterThan, e, b);
                let nan = t.b.ins().fcmp(FloatCC::Unordered, e, e);
                let ordered = t.b.ins().fcmp(FloatCC::Ordered, b, b);
                let first_nan = t.b.ins().band(nan, ordered);
                let take = t.b.ins().bor(above, first_nan);
                let nb = t.b.ins().select(take, e, b);
                t.b.def_var(best, nb);
                let here = t.ix_value(xa);
                let old = t.b.use_var(at);
                let na = t.b.ins().select(take, here, old);
                t.b.def_var(at, na);
            });
            let chosen = Ix {
                dynamic: Some(t.b.use_var(at)),
                konst: 0,
            };
            let out = t.lin(&[(ix[0], g.oh * g.ow), (ix[1], g.ow), (ix[2], 1)], 0);
            if scatter {
                let gv = t.read(u, out);
                t.add_to(dst, chosen, gv);
            } else {
                let uv = t.read(u, chosen);
                t.write(dst, out, uv);
            }
        });
    }

    fn avgpool(&mut self, geo: &Geometry, x: Opnd, dst: Opnd) {
        let g = *geo;
        let plane = g.h * g.w;
        self.loops(&[g.c, g.oh, g.ow], &mut |t, ix| {
            let acc = t.var(-0.0);
            let x0 = t.lin(&[(ix[0], plane)], 0);
            t.taps(&g, ix[1], ix[2], &mut |t, off, _, _| {
                let xa = t.plus(x0, off);
                let e = t.read(x, xa);
                let s = t.b.use_var(acc);
                let s = t.b.ins().fadd(s, e);
                t.b.def_var(acc, s);
            });
            let s = t.b.use_var(acc);
            let n = t.fconst((g.kh * g.kw) as f64);
            let mean = t.fdiv(s, n);
            let out = t.lin(&[(ix[0], g.oh * g.ow), (ix[1], g.ow), (ix[2], 1)], 0);
            t.write(dst, out, mean);
        });
    }

    fn avgpool_adjoint(&mut self, geo: &Geometry, gr: Opnd, dst: Opnd) {
        let g = *geo;
        let plane = g.h * g.w;
        self.fill(dst, g.c * plane, 0.0);
        self.loops(&[g.c, g.oh, g.ow], &mut |t, ix| {
            let out = t.lin(&[(ix[0], g.oh * g.ow), (ix[1], g.ow), (ix[2], 1)], 0);
            let gv = t.read(gr, out);
            let n = t.fconst((g.kh * g.kw) as f64);
            let q = t.fdiv(gv, n);
            let x0 = t.lin(&[(ix[0], plane)], 0);
            t.taps(&g, ix[1], ix[2], &mut |t, off, _, _| {
                let xa = t.plus(x0, off);
                t.add_to(dst, xa, q);
            });
        });
    }

    /// Runs `body` for every index in `0..n`: a loop in the generated code
    /// unless `n` is 1. (Only the taps of a window are unrolled, so that
    /// nested short loops do not multiply the code.)
    fn each(&mut self, n: usize, body: &mut dyn FnMut(&mut Self, Ix)) {
        if n == 1 {
            body(self, Ix::c(0));
        } else {
            let count = self.b.ins().iconst(self.ptr, n as i64);
            self.for_count(count, body);
        }
    }

    /// Runs `body` for every multi-index of `dims` in row-major order, each
    /// axis a loop of [`Translator::each`].
    fn loops(&mut self, dims: &[usize], body: &mut dyn FnMut(&mut Self, &[Ix])) {
        self.nest_with(dims, Self::each, body);
    }

    /// The index `ix` as an integer value.
    fn ix_value(&mut self, ix: Ix) -> cl::Value {
        match ix.dynamic {
            None => self.b.ins().iconst(self.ptr, ix.konst as i64),
            Some(d) => self.b.ins().iadd_imm_s(d, ix.konst as i64),
        }
    }
}
