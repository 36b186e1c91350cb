//! Sums of tensors placed into zeros at places that do not meet, the
//! adjoints of slices of one value (a gradient adds one `unslice` per
//! slice read: the four gates an LSTM slices from one row of weights): they
//! are the pieces side by side, a `concat`, with no addition (`x + 0 ->
//! x` on each element, so the sign of a zero aside, as
//! [`super::algebra`]'s identities). And a slice of a `concat` at exactly
//! one part is that part.

use super::splat;
use crate::ir::{Function, Op, SliceAxis, Value};
use crate::shape::Shape;
use crate::span::Span;

/// `unslice(a) + unslice(b)` into the same shape `s` at ranges of its
/// leading axis that do not overlap (the other axes whole): one `unslice` of
/// `concat(a, b)` (zeros between them if the ranges do not meet), or the
/// `concat` itself when the two cover `s`.
pub fn joined(out: &mut Function, x: Value, y: Value, s: &Shape, span: Span) -> Option<Value> {
    let (a, (a0, a1)) = leading_range(out, x, s, span)?;
    let (b, (b0, b1)) = leading_range(out, y, s, span)?;
    let ((first, (lo, mid0)), (second, (mid1, hi))) = if a0 <= b0 {
        ((a, (a0, a1)), (b, (b0, b1)))
    } else {
        ((b, (b0, b1)), (a, (a0, a1)))
    };
    if mid0 > mid1 {
        return None;
    }
    let mut parts = vec![first];
    if mid0 < mid1 {
        let mut gap = s.dims().to_vec();
        gap[0] = mid1 - mid0;
        parts.push(splat(out, 0.0, &Shape(gap), span));
    }
    parts.push(second);
    let pieces = out.push(Op::Concat, parts, span);
    let mut axes = vec![SliceAxis::Range(lo, hi)];
    axes.extend(s.dims()[1..].iter().map(|&n| SliceAxis::Range(0, n)));
    Some(out.push(Op::Unslice(axes, s.clone()), vec![pieces], span))
}

/// `concat(p, concat(q, r), ...)` is `concat(p, q, r, ...)`: the parts of
/// an inner `concat` listed in its place.
pub fn flattened(f: &mut Function, args: &[Value], span: Span) -> Option<Value> {
    let inner = |v: Value| matches!(f.inst(v).op, Op::Concat);
    if !args.iter().any(|&a| inner(a)) {
        return None;
    }
    let parts: Vec<Value> = args
        .iter()
        .flat_map(|&a| match f.inst(a).op {
            Op::Concat => f.inst(a).args.clone(),
            _ => vec![a],
        })
        .collect();
    Some(f.push(Op::Concat, parts, span))
}

/// `concat(p0, p1, ...)[lo..hi, :, ...]` is the part `pk` that lies at
/// exactly `lo..hi` of the leading axis.
pub fn concat_part(f: &Function, x: Value, axes: &[SliceAxis]) -> Option<Value> {
    let inst = f.inst(x);
    if inst.op != Op::Concat {
        return None;
    }
    let (SliceAxis::Range(lo, hi), rest) = axes.split_first()? else {
        return None;
    };
    let whole = rest
        .iter()
        .zip(&f.shape(x).dims()[1..])
        .all(|(ax, &n)| *ax == SliceAxis::Range(0, n));
    let mut at = 0;
    for &p in &inst.args {
        let n = f.shape(p).dims()[0];
        if whole && (at, at + n) == (*lo, *hi) {
            return Some(p);
        }
        at += n;
    }
    None
}

/// If `v` is an `unslice` into `s` at one position or a range of its
/// leading axis, the other axes whole: what it placed, with a leading axis
/// (a position's row reshaped to one row), and the range.
fn leading_range(
    f: &mut Function,
    v: Value,
    s: &Shape,
    span: Span,
) -> Option<(Value, (usize, usize))> {
    let inst = f.inst(v);
    let Op::Unslice(axes, to) = &inst.op else {
        return None;
    };
    let (first, rest) = axes.split_first()?;
    let whole = rest
        .iter()
        .zip(&s.dims()[1..])
        .all(|(ax, &n)| *ax == SliceAxis::Range(0, n));
    if to != s || axes.len() != s.rank() || !whole {
        return None;
    }
    let x = inst.args[0];
    match *first {
        SliceAxis::Range(lo, hi) => Some((x, (lo, hi))),
        SliceAxis::At(i) => {
            let mut row = s.dims().to_vec();
            row[0] = 1;
            let x = f.push(Op::Reshape(Shape(row)), vec![x], span);
            Some((x, (i, i + 1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_same_outputs, parse, sexpr};
    use crate::ir::{Binary, Function, Op, SliceAxis, Value};
    use crate::shape::Shape;
    use crate::span::Span;

    /// `x` (a [3] parameter) squared, placed at `lo..lo + 3` of a [n].
    fn placed(f: &mut Function, x: Value, lo: usize, n: usize) -> Value {
        let sp = Span::default();
        let sq = f.push(Op::Binary(Binary::Mul), vec![x, x], sp);
        let axes = vec![SliceAxis::Range(lo, lo + 3)];
        f.push(Op::Unslice(axes, Shape::vector(n)), vec![sq], sp)
    }

    /// The sum of `parts`, the last first, as a reverse pass adds them, and
    /// simplified.
    fn simplified_sum(mut f: Function, parts: &[Value]) -> Function {
        let sp = Span::default();
        let mut total = parts[parts.len() - 1];
        for &p in parts[..parts.len() - 1].iter().rev() {
            total = f.push(Op::Binary(Binary::Add), vec![total, p], sp);
        }
        f.outputs[0].value = total;
        let before = f.clone();
        super::super::simplify(&mut f);
        assert_same_outputs(&before, &f);
        f
    }

    /// The gradient of four slices of one vector: one `concat`.
    #[test]
    fn pieces_that_cover_a_vector_are_their_concat() {
        let mut f = parse("x");
        let x = f.outputs[0].value;
        let parts: Vec<Value> = (0..4).map(|k| placed(&mut f, x, 3 * k, 12)).collect();
        let f = simplified_sum(f, &parts);
        assert_eq!(
            sexpr(&f, f.outputs[0].value),
            "(concat (mul x x) (mul x x) (mul x x) (mul x x))"
        );
    }

    #[test]
    fn pieces_apart_have_zeros_between_them() {
        let mut f = parse("x");
        let x = f.outputs[0].value;
        let parts = [placed(&mut f, x, 0, 9), placed(&mut f, x, 5, 9)];
        let f = simplified_sum(f, &parts);
        let out = f.outputs[0].value;
        assert_eq!(
            sexpr(&f, out),
            "(unslice (concat (mul x x) (broadcast 0) (mul x x)))"
        );
        assert_eq!(
            f.inst(out).op,
            Op::Unslice(vec![SliceAxis::Range(0, 8)], Shape::vector(9))
        );
    }

    #[test]
    fn overlapping_pieces_are_added() {
        let mut f = parse("x");
        let x = f.outputs[0].value;
        let parts = [placed(&mut f, x, 0, 6), placed(&mut f, x, 2, 6)];
        let f = simplified_sum(f, &parts);
        assert_eq!(
            sexpr(&f, f.outputs[0].value),
            "(add (unslice (mul x x)) (unslice (mul x x)))"
        );
    }

    /// A slice of a `concat` at exactly one part is that part; one across
    /// two parts stays.
    #[test]
    fn a_slice_of_a_concat_at_a_part_is_the_part() {
        let sp = Span::default();
        let mut f = parse("x");
        let x = f.outputs[0].value;
        let sq = f.push(Op::Binary(Binary::Mul), vec![x, x], sp);
        let joined = f.push(Op::Concat, vec![x, sq], sp);
        for (lo, hi, want) in [
            (3, 6, "(mul x x)"),
            (0, 3, "x"),
            (2, 5, "(slice (concat x (mul x x)))"),
        ] {
            let mut g = f.clone();
            let part = g.push(Op::Slice(vec![SliceAxis::Range(lo, hi)]), vec![joined], sp);
            g.outputs[0].value = part;
            let before = g.clone();
            super::super::simplify(&mut g);
            assert_same_outputs(&before, &g);
            assert_eq!(sexpr(&g, g.outputs[0].value), want);
        }
    }
}
