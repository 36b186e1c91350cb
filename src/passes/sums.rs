//! Sums: of a scalar, of a negation, of a one-hot vector, of a row added
//! into zeros, of a scalar times a tensor whose sum is computed already,
//! of a filled tensor; and along axes, of a negation.

use super::algebra::{broadcast_arg, is};
use super::{splat, splat_value};
use crate::ir::{Binary, Function, Op, Reduce, Unary, Value};
use crate::shape::Shape;
use crate::span::Span;

/// The replacement of `sum(x)`, of shape `s` (a scalar), if a rule applies.
pub fn sum(out: &mut Function, x: Value, s: &Shape, span: Span) -> Option<Value> {
    if out.shape(x).is_scalar() {
        return Some(x);
    }
    match out.inst(x).op {
        Op::OneHot(_) => return Some(splat(out, 1.0, s, span)),
        Op::Unary(Unary::Neg) => {
            let inner = out.inst(x).args[0];
            let total = out.push(Op::Sum, vec![inner], span);
            return Some(out.push(Op::Unary(Unary::Neg), vec![total], span));
        }
        // A row added into zeros: the sum of the row (the gradient of
        // `-log_softmax(z)[y]`).
        Op::IndexAdd if is(splat_value(out, out.inst(x).args[0]), 0.0) => {
            let row = out.inst(x).args[1];
            if out.shape(row).is_scalar() {
                return Some(row);
            }
            return Some(out.push(Op::Sum, vec![row], span));
        }
        _ => {}
    }
    if let Some(y) = scaled_sum(out, x, span) {
        return Some(y);
    }
    let inner = broadcast_arg(out, x)?;
    Some(match out.shape(x).size() {
        0 => splat(out, 0.0, s, span),
        1 => inner,
        n => {
            let k = splat(out, n as f64, s, span);
            out.push(Op::Binary(Binary::Mul), vec![inner, k], span)
        }
    })
}

/// `sum(-x, axes)` is `-sum(x, axes)` (rounding is symmetric): one tensor
/// fewer written out.
pub fn sum_axes(out: &mut Function, x: Value, axes: &[usize], span: Span) -> Option<Value> {
    let Op::Unary(Unary::Neg) = out.inst(x).op else {
        return None;
    };
    let inner = out.inst(x).args[0];
    let total = out.push(
        Op::ReduceAxes(Reduce::Sum, axes.to_vec()),
        vec![inner],
        span,
    );
    Some(out.push(Op::Unary(Unary::Neg), vec![total], span))
}

/// The sum of `x`, a scalar times a tensor whose sum the function computes
/// already, as the scalar times that sum: one rounding instead of one per
/// element. (The derivative through the maximum of a logsumexp written out,
/// `1 - sum(exp(x - m) * (1 / s))` with `s = sum(exp(x - m))`, is then
/// `1 - (1 / s) * s`, zero to an ulp, where the rounding of the sum of a
/// million terms landed on the largest element's derivative.) Only when
/// that sum exists: a new sum of the tensor alone could overflow where the
/// scaled one does not.
fn scaled_sum(out: &mut Function, x: Value, span: Span) -> Option<Value> {
    let Op::Binary(Binary::Mul) = out.inst(x).op else {
        return None;
    };
    let (a, b) = (out.inst(x).args[0], out.inst(x).args[1]);
    let (k, v) = match (broadcast_arg(out, a), broadcast_arg(out, b)) {
        (Some(k), None) => (k, b),
        (None, Some(k)) => (k, a),
        _ => return None,
    };
    let (total, _) = out
        .iter()
        .find(|(_, i)| i.op == Op::Sum && i.args[..] == [v])?;
    Some(out.push(Op::Binary(Binary::Mul), vec![k, total], span))
}

#[cfg(test)]
mod tests {
    use super::super::algebra::run;
    use super::super::testing::{assert_same_outputs, check, parse, sexpr};
    use crate::ir::Op;
    use crate::shape::Shape;
    use crate::span::Span;

    /// A scalar times a tensor, summed, is the scalar times the tensor's
    /// sum when that sum is there already, and only then.
    #[test]
    fn a_scaled_sum_reuses_the_sum() {
        let sp = Span::default();
        for scalar_first in [true, false] {
            // (add (add (sum x) a) (sum (mul (broadcast a) x))), one `x`.
            let mut f = parse("(add (sum x) a)");
            let first = f.outputs[0].value;
            let (total, a) = (f.inst(first).args[0], f.inst(first).args[1]);
            let x = f.inst(total).args[0];
            let k = f.push(Op::Broadcast(Shape::vector(3)), vec![a], sp);
            let args = if scalar_first { vec![k, x] } else { vec![x, k] };
            let m = f.push(Op::Binary(crate::ir::Binary::Mul), args, sp);
            let scaled = f.push(Op::Sum, vec![m], sp);
            let y = f.push(Op::Binary(crate::ir::Binary::Add), vec![first, scaled], sp);
            f.outputs[0].value = y;
            assert!(run(&mut f));
            let want = "(add (add (sum x) a) (mul a (sum x)))";
            assert_eq!(sexpr(&f, f.outputs[0].value), want);
        }
        // Without the tensor's own sum, no new one.
        check(
            run,
            "(sum (mul (broadcast a) x))",
            "(sum (mul (broadcast a) x))",
        );
        check(
            run,
            "(add (sum y) (sum (mul (broadcast a) x)))",
            "(add (sum y) (sum (mul (broadcast a) x)))",
        );
    }

    #[test]
    fn a_sum_along_axes_of_a_negation_is_negated() {
        let sp = Span::default();
        let mut f = parse("m");
        let m = f.outputs[0].value;
        let neg = f.push(Op::Unary(crate::ir::Unary::Neg), vec![m], sp);
        let sum = f.push(
            Op::ReduceAxes(crate::ir::Reduce::Sum, vec![1]),
            vec![neg],
            sp,
        );
        f.outputs[0].value = sum;
        let before = f.clone();
        assert!(run(&mut f));
        assert_eq!(sexpr(&f, f.outputs[0].value), "(neg (sum_axes m))");
        assert_same_outputs(&before, &f);
    }
}
