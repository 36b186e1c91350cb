//! The operations that only move elements: `transpose`, `slice` (when it
//! is not a view), `unslice` and `pack`.

use super::{dst_loc, Ix, Loc, Translator};
use crate::backend::plan::fuse;
use crate::ir::interp::slice_offsets;
use crate::ir::{SliceAxis, Value};
use crate::shape::Shape;

impl Translator<'_, '_> {
    /// `v`, the `transpose` of matrix `a`: element `(j, i)` of the result is
    /// `a[i, j]`.
    pub(super) fn transpose(&mut self, v: Value, a: Value) -> Loc {
        let f = self.f;
        let shape = f.shape(v);
        let src = self.operand(a);
        let dst = self.dest(v);
        let (rows, cols) = (shape.dims()[1], shape.dims()[0]);
        // The result is [cols, rows]: element (j, i) is a[i, j].
        self.nest(shape.dims(), &mut |t, ix| {
            let from = t.lin(&[(ix[1], cols), (ix[0], 1)], 0);
            let x = t.read(src, from);
            let to = t.lin(&[(ix[0], rows), (ix[1], 1)], 0);
            t.write(dst, to, x);
        });
        dst_loc(dst)
    }

    /// `v`, the `pack` of `args`: each copied in turn, one after the other.
    pub(super) fn pack(&mut self, v: Value, args: &[Value]) -> Loc {
        let dst = self.dest(v);
        for (k, &a) in args.iter().enumerate() {
            let size = self.f.shape(a).size();
            let src = self.operand(a);
            self.copy(src, dst, k * size, size);
        }
        dst_loc(dst)
    }

    /// `v`, a `slice` of `a` that is not a view: a scalar read, or a copy
    /// element by element.
    pub(super) fn slice(&mut self, v: Value, a: Value, axes: &[SliceAxis]) -> Loc {
        let from = self.f.shape(a).clone();
        let src = self.operand(a);
        let out = self.f.shape(v).clone();
        if out.is_scalar() {
            let at = slice_offsets(&from, axes)[0];
            return Loc::Reg(self.read(src, Ix::c(at)));
        }
        let dst = self.dest(v);
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

    /// `v`, the `unslice` of `a`: zeros around `a`'s elements at their
    /// places.
    pub(super) fn unslice(&mut self, v: Value, a: Value, axes: &[SliceAxis], into: &Shape) -> Loc {
        let src = self.operand(a);
        if into.is_scalar() {
            return Loc::Reg(self.read(src, Ix::c(0)));
        }
        let part = self.f.shape(a).clone();
        let dst = self.dest(v);
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
