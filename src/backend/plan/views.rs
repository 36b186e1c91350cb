//! Views: values that are their argument's memory at an offset, never
//! computed nor stored: contiguous slices and reshapes at an offset known
//! when compiling ([`view_offset`]), and a row `x[i]` chosen when it runs
//! ([`is_view`]).

use crate::ir::{Function, Op, SliceAxis, Value};
use crate::shape::Shape;

/// If `v` is a view of its argument's memory, the offset of its first
/// element there: a `slice` with a non-scalar result whose elements are
/// contiguous in its argument, or a `reshape` of a tensor to a tensor (the
/// same elements in the same order, from 0). (Every other operation, a new
/// one too, is not a view: the safe answer.)
pub fn view_offset(f: &Function, v: Value) -> Option<usize> {
    let inst = f.inst(v);
    if inst.shape.is_scalar() {
        return None;
    }
    match &inst.op {
        Op::Slice(axes) => contiguous(f.shape(inst.args[0]), axes),
        Op::Reshape(_) => (!f.shape(inst.args[0]).is_scalar()).then_some(0),
        _ => None,
    }
}

/// Whether `v` is a view of its argument's memory: from an offset known
/// when compiling ([`view_offset`]), or from a row chosen when it runs (an
/// `index` with a non-scalar result, `x[i]`: its argument's row `i`).
pub fn is_view(f: &Function, v: Value) -> bool {
    let inst = f.inst(v);
    view_offset(f, v).is_some() || (inst.op == Op::Index && !inst.shape.is_scalar())
}

/// If the elements `Slice(axes)` selects from a tensor of shape `s` are
/// contiguous, the offset of the first one.
/// In row-major order they are when every axis after the first that
/// selects more than one position is read whole: found from the axes alone,
/// without listing the elements (a slice of a loop's saved states can
/// select millions).
pub fn contiguous(s: &Shape, axes: &[SliceAxis]) -> Option<usize> {
    let mut first = 0;
    let mut spread = false;
    for ((ax, stride), &n) in axes.iter().zip(s.strides()).zip(s.dims()) {
        let (lo, count) = match *ax {
            SliceAxis::At(i) => (i, 1),
            SliceAxis::Range(lo, hi) => (lo, hi - lo),
        };
        if spread && count != n {
            return None;
        }
        first += lo * stride;
        spread |= count > 1;
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::interp::slice_offsets;

    /// The elements' offsets listed, as the interpreter reads them.
    fn listed(s: &Shape, axes: &[SliceAxis]) -> Option<usize> {
        let offsets = slice_offsets(s, axes);
        let first = offsets.first().copied().unwrap_or(0);
        let contiguous = offsets.iter().enumerate().all(|(k, &o)| o == first + k);
        contiguous.then_some(first)
    }

    #[test]
    fn contiguity_from_the_axes_is_that_of_the_offsets() {
        let dims = [[1, 3, 4], [2, 1, 3], [3, 2, 2], [4, 4, 1]];
        let mut seen = [0, 0];
        for d in dims {
            let s = Shape(d.to_vec());
            // Every slice of every axis: a position, or a range.
            let choices = |n: usize| {
                let mut c: Vec<SliceAxis> = (0..n).map(SliceAxis::At).collect();
                for lo in 0..n {
                    c.extend((lo + 1..=n).map(|hi| SliceAxis::Range(lo, hi)));
                }
                c
            };
            for a in choices(d[0]) {
                for b in choices(d[1]) {
                    for c in choices(d[2]) {
                        let axes = [a, b, c];
                        let expected = listed(&s, &axes);
                        assert_eq!(contiguous(&s, &axes), expected, "{s} {axes:?}");
                        seen[usize::from(expected.is_some())] += 1;
                    }
                }
            }
        }
        assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
    }
}
