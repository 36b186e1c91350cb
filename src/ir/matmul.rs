//! `@` as `numpy.matmul` on operands of any rank, lowered onto the IR's
//! `MatMul` (vectors and matrices): an operand of rank 3 or more is a stack
//! of matrices over its leading (batch) axes, and the two operands' batch
//! axes broadcast; a vector on the left is a row (a 1 put before its length,
//! taken out of the result), on the right a column (a 1 put after it).
//!
//! A stack times one matrix or vector is one `MatMul` of the stack's rows
//! (`[N, m, k]` as `[N m, k]`), a matrix or vector times a stack one of its
//! columns (`[N, k, n]` as `[k, N n]`), and a batch of one matrix pair one
//! `MatMul`; otherwise both operands are broadcast to the common batch shape, flattened to `[N, m, k]` and `[N, k, n]`, and a loop
//! of `N` steps multiplies one pair of matrices a step.

use crate::ir::{broadcast, Function, Loop, Op, Output, Role, SliceAxis, Slot, Value};
use crate::shape::Shape;
use crate::span::Span;

/// Why two shapes cannot be multiplied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// An operand is a scalar.
    Scalar,
    /// The contracted lengths: the left operand's last, the right's
    /// second-to-last (its only one for a vector).
    Inner(usize, usize),
    /// The batch axes (all but the last two of each operand) do not broadcast.
    Batch(Shape, Shape, broadcast::Conflict),
}

/// The shape of `a @ b`, as `numpy.matmul`.
pub fn shape(a: &Shape, b: &Shape) -> Result<Shape, Mismatch> {
    if a.is_scalar() || b.is_scalar() {
        return Err(Mismatch::Scalar);
    }
    let (a2, b2) = (as_matrix(a, true), as_matrix(b, false));
    let (ba, [m, k]) = split(&a2);
    let (bb, [k2, n]) = split(&b2);
    if k != k2 {
        return Err(Mismatch::Inner(k, k2));
    }
    let mut dims = broadcast::dims(ba, bb)
        .map_err(|c| Mismatch::Batch(Shape(ba.to_vec()), Shape(bb.to_vec()), c))?;
    if a.rank() > 1 {
        dims.push(m);
    }
    if b.rank() > 1 {
        dims.push(n);
    }
    Ok(Shape(dims))
}

/// A vector as a row (`left`) or a column; a matrix or stack as it is.
fn as_matrix(s: &Shape, left: bool) -> Shape {
    match (s.dims(), left) {
        ([k], true) => Shape(vec![1, *k]),
        ([k], false) => Shape(vec![*k, 1]),
        _ => s.clone(),
    }
}

/// The batch axes and the matrix axes of a shape of rank 2 or more.
fn split(s: &Shape) -> (&[usize], [usize; 2]) {
    let d = s.dims();
    let r = d.len();
    (&d[..r - 2], [d[r - 2], d[r - 1]])
}

/// `a @ b` in IR instructions; a single `MatMul` when both have rank 1 or 2.
/// The shapes must have passed [`shape`].
pub fn lower(f: &mut Function, a: Value, b: Value, span: Span) -> Value {
    let (sa, sb) = (f.shape(a).clone(), f.shape(b).clone());
    if sa.rank() <= 2 && sb.rank() <= 2 {
        return f.push(Op::MatMul, vec![a, b], span);
    }
    let out = shape(&sa, &sb).expect("checked shapes of `@`");
    if sb.rank() <= 2 {
        // The stack's matrices side by side as the rows of one.
        let k = sa.dims()[sa.rank() - 1];
        let rows = f.push(Op::Reshape(Shape::matrix(sa.size() / k, k)), vec![a], span);
        let y = f.push(Op::MatMul, vec![rows, b], span);
        return f.push(Op::Reshape(out), vec![y], span);
    }
    if sa.rank() <= 2 {
        return times_stack(f, a, b, out, span);
    }
    let (a2, b2) = (as_matrix(&sa, true), as_matrix(&sb, false));
    let (ba, [m, k]) = split(&a2);
    let (bb, [_, n]) = split(&b2);
    let batch = broadcast::dims(ba, bb).expect("checked batch axes");
    let count: usize = batch.iter().product();
    if count == 1 {
        // One pair of matrices: no loop.
        let x = f.push(Op::Reshape(Shape::matrix(m, k)), vec![a], span);
        let w = f.push(Op::Reshape(Shape::matrix(k, n)), vec![b], span);
        let y = f.push(Op::MatMul, vec![x, w], span);
        return f.push(Op::Reshape(out), vec![y], span);
    }
    let stack = |f: &mut Function, v: Value, from: &Shape, rows: usize, cols: usize| {
        let v = if f.shape(v) == from {
            v
        } else {
            f.push(Op::Reshape(from.clone()), vec![v], span)
        };
        let mut full = batch.clone();
        full.extend([rows, cols]);
        let v = broadcast::to(f, v, &Shape(full), span);
        f.push(Op::Reshape(Shape(vec![count, rows, cols])), vec![v], span)
    };
    let a3 = stack(f, a, &a2, m, k);
    let b3 = stack(f, b, &b2, k, n);
    let y = products(f, a3, b3, span);
    f.push(Op::Reshape(out), vec![y], span)
}

/// A matrix or a vector times a stack `[..., k, n]`: the stack's matrices
/// side by side as the columns of one `[k, N n]`, one product, and the
/// result's axes put back in order (`[m, N, n]` to `[N, m, n]`).
fn times_stack(f: &mut Function, a: Value, b: Value, out: Shape, span: Span) -> Value {
    let sb = f.shape(b).clone();
    let [k, n] = [sb.dims()[sb.rank() - 2], sb.dims()[sb.rank() - 1]];
    let count = sb.size() / (k * n);
    let b = f.push(Op::Reshape(Shape(vec![count, k, n])), vec![b], span);
    let b = f.push(Op::Permute(vec![1, 0, 2]), vec![b], span);
    let b = f.push(Op::Reshape(Shape::matrix(k, count * n)), vec![b], span);
    let y = f.push(Op::MatMul, vec![a, b], span);
    let y = match *f.shape(a).dims() {
        [m, _] if count > 1 => {
            let y = f.push(Op::Reshape(Shape(vec![m, count, n])), vec![y], span);
            f.push(Op::Permute(vec![1, 0, 2]), vec![y], span)
        }
        _ => y,
    };
    f.push(Op::Reshape(out), vec![y], span)
}

/// `[N, m, k]` by `[N, k, n]`: a loop whose step `i` multiplies the `i`-th
/// matrices, stacked into `[N, m, n]`.
fn products(f: &mut Function, a: Value, b: Value, span: Span) -> Value {
    let slot = |name: &str, s: &Shape| Slot {
        name: name.to_string(),
        shape: s.clone(),
    };
    let trips = f.shape(a).dims()[0];
    let mut body = Function::new(
        vec![slot("lhs", f.shape(a)), slot("rhs", f.shape(b))],
        vec![slot("i", &Shape::scalar())],
    );
    let lhs = body.push(Op::Param(0), vec![], span);
    let rhs = body.push(Op::Param(1), vec![], span);
    let i = body.push(Op::Input(0), vec![], span);
    let x = body.push(Op::Index, vec![lhs, i], span);
    let w = body.push(Op::Index, vec![rhs, i], span);
    let p = body.push(Op::MatMul, vec![x, w], span);
    body.outputs.push(Output {
        role: Role::Output,
        name: "product".into(),
        value: p,
    });
    let l = Loop {
        trips,
        carries: 0,
        body,
        recompute: false,
    };
    let stacked = l.parts()[0].clone();
    let y = f.push(Op::Loop(Box::new(l)), vec![a, b], span);
    let all = f.push(
        Op::Slice(vec![SliceAxis::Range(0, stacked.size())]),
        vec![y],
        span,
    );
    f.push(Op::Reshape(stacked), vec![all], span)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(d: &[usize]) -> Shape {
        Shape(d.to_vec())
    }

    #[test]
    fn shapes_as_numpy() {
        let ok = |a: &[usize], b: &[usize]| shape(&s(a), &s(b)).unwrap();
        assert_eq!(ok(&[2, 3], &[3, 4]), s(&[2, 4]));
        assert_eq!(ok(&[3], &[3]), s(&[]));
        assert_eq!(ok(&[5, 2, 3], &[3, 4]), s(&[5, 2, 4]));
        assert_eq!(ok(&[5, 2, 3], &[3]), s(&[5, 2]));
        assert_eq!(ok(&[3], &[5, 3, 4]), s(&[5, 4]));
        assert_eq!(ok(&[6, 1, 2, 3], &[5, 3, 4]), s(&[6, 5, 2, 4]));
        assert_eq!(ok(&[2, 3], &[7, 3, 4]), s(&[7, 2, 4]));
        assert_eq!(
            shape(&s(&[5, 2, 3]), &s(&[2, 4])),
            Err(Mismatch::Inner(3, 2))
        );
        assert_eq!(
            shape(&s(&[5, 2, 3]), &s(&[4, 3, 2])),
            Err(Mismatch::Batch(
                s(&[5]),
                s(&[4]),
                broadcast::Conflict {
                    from_end: 1,
                    lengths: (5, 4)
                }
            ))
        );
        assert_eq!(shape(&s(&[]), &s(&[2])), Err(Mismatch::Scalar));
    }
}
