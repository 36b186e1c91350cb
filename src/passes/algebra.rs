//! Algebraic identities: `x + 0`, `x * 1`, `x * 0`, `x ^ 2`, `--x`,
//! `transpose(transpose(x))`, a `permute` moving only axes of one (a
//! `reshape`), `sum(broadcast(s))`, `select` on a constant
//! condition, `select(c, c, 0)`, elementwise operations moved inside `broadcast`, pieces
//! placed side by side as one `concat` ([`super::placed`]); the rules of
//! sums are [`super::sums`]', those of products [`super::products`]'.
//!
//! Two IEEE details are ignored on purpose, as symbolic simplifiers do:
//! - Zero annihilates. `x * 0`, `0 * x`, `0 / x`, `x @ 0`, `outer(x, 0)`
//!   and `unslice(0)` become zeros even where IEEE arithmetic would give NaN
//!   (x infinite or NaN, `0 / 0`). Gradient programs multiply by zero
//!   cotangents everywhere and those products must disappear; the price is
//!   that a NaN or inf in `x` does not poison a product with a literal zero.
//! - The sign of zero: `x + 0 -> x` turns `-0 + 0 = +0` into `-0`, and
//!   `select(c, c, 0) -> c` keeps a `-0` of `c` that the `select` makes `+0`.
//!
//! `x ^ 0 -> 1` is exact (IEEE `pow(x, 0)` is 1 even for NaN).

use super::{fit, splat, splat_value};
use crate::ir::{Binary, Function, Inst, Op, Reduce, SliceAxis, Unary, Value};
use crate::shape::Shape;
use crate::span::Span;

pub fn run(f: &mut Function) -> bool {
    f.rewrite(rule)
}

/// The replacement of one instruction, whose arguments are values of `out`.
fn rule(out: &mut Function, inst: &Inst) -> Option<Value> {
    let (s, span) = (&inst.shape, inst.span);
    let arg = |k: usize| inst.args[k];
    match &inst.op {
        Op::Param(_) | Op::Input(_) => None,
        // A tensor of one repeated number becomes its canonical splat.
        Op::Const(c) => {
            let x = *c.0.data.first()?;
            let filled = c.0.data.iter().all(|y| y.to_bits() == x.to_bits());
            (!s.is_scalar() && filled).then(|| splat(out, x, s, span))
        }
        Op::Unary(u) => {
            let x = out.inst(arg(0));
            match (u, &x.op) {
                (Unary::Neg, Op::Unary(Unary::Neg)) => Some(x.args[0]),
                (Unary::Neg, Op::Binary(Binary::Sub)) => {
                    let (a, b) = (x.args[0], x.args[1]);
                    Some(out.push(Op::Binary(Binary::Sub), vec![b, a], span))
                }
                // The derivative of log_softmax meets the softmax again.
                (Unary::Exp, Op::LogSoftmax(axis)) => {
                    let (inner, axis) = (x.args[0], *axis);
                    Some(out.push(Op::Softmax(axis), vec![inner], span))
                }
                (_, Op::Broadcast(_)) => {
                    let inner = x.args[0];
                    let y = out.push(Op::Unary(*u), vec![inner], span);
                    Some(fit(out, y, s, span))
                }
                _ => None,
            }
        }
        Op::Binary(b) => binary(out, *b, arg(0), arg(1), s, span),
        Op::Select => {
            let (c, a, b) = (arg(0), arg(1), arg(2));
            if let Some(k) = splat_value(out, c) {
                let taken = if k != 0.0 { a } else { b };
                Some(fit(out, taken, s, span))
            } else if a == b {
                Some(fit(out, a, s, span))
            } else if a == c && is(splat_value(out, b), 0.0) {
                // A cotangent's guard of itself: `c` where `c` is not zero,
                // and zero where it is.
                Some(fit(out, c, s, span))
            } else {
                // A comparison is already 1 or 0.
                let indicator = is(splat_value(out, a), 1.0) && is(splat_value(out, b), 0.0);
                (indicator && is_comparison(out, c)).then(|| fit(out, c, s, span))
            }
        }
        Op::MatMul | Op::Outer => super::products::product(out, &inst.op, arg(0), arg(1), s, span),
        Op::Transpose => {
            let x = out.inst(arg(0));
            match &x.op {
                Op::Transpose => Some(x.args[0]),
                Op::Outer => {
                    let (a, b) = (x.args[0], x.args[1]);
                    Some(out.push(Op::Outer, vec![b, a], span))
                }
                Op::Broadcast(_) => {
                    let inner = x.args[0];
                    Some(fit(out, inner, s, span))
                }
                _ => None,
            }
        }
        Op::Sum => super::sums::sum(out, arg(0), s, span),
        Op::ReduceMax => {
            let x = arg(0);
            if out.shape(x).is_scalar() {
                return Some(x);
            }
            broadcast_arg(out, x).filter(|_| out.shape(x).size() > 0)
        }
        Op::LogSumExp => out.shape(arg(0)).is_scalar().then(|| arg(0)),
        Op::Norm => out
            .shape(arg(0))
            .is_scalar()
            .then(|| out.push(Op::Unary(Unary::Abs), vec![arg(0)], span)),
        // A filled tensor repeated along axes is filled with the same
        // number; so is a scalar repeated along all of them.
        Op::BroadcastAxes(..) => {
            let x = arg(0);
            let inner = if out.shape(x).is_scalar() {
                x
            } else {
                broadcast_arg(out, x)?
            };
            Some(fit(out, inner, s, span))
        }
        Op::ReduceAxes(Reduce::Sum, axes) => super::sums::sum_axes(out, arg(0), axes, span),
        Op::ReduceAxes(..)
        | Op::Softmax(_)
        | Op::LogSoftmax(_)
        | Op::ArgMax(_)
        | Op::Window(_)
        | Op::Pack
        | Op::OneHot(_) => None,
        // A row of a filled tensor is filled with the same number.
        Op::Index => {
            let inner = broadcast_arg(out, arg(0))?;
            Some(fit(out, inner, s, span))
        }
        // Adding zeros to a row changes nothing.
        Op::IndexAdd => is(splat_value(out, arg(1)), 0.0).then(|| arg(0)),
        // A row of a number put into a tensor filled with it.
        Op::IndexSet => {
            let k = splat_value(out, arg(0))?;
            let same = splat_value(out, arg(1)).is_some_and(|r| r.to_bits() == k.to_bits());
            same.then(|| splat(out, k, s, span))
        }
        // Rows of a filled tensor are filled with the same number.
        Op::Gather => {
            let inner = broadcast_arg(out, arg(0))?;
            Some(fit(out, inner, s, span))
        }
        // Adding rows of zeros changes nothing.
        Op::ScatterAdd => is(splat_value(out, arg(1)), 0.0).then(|| arg(0)),
        Op::Loop(l) => {
            super::loops::captures(out, inst, l).or_else(|| super::loops::hoist(out, inst, l))
        }
        Op::Concat if inst.args.len() == 1 => Some(arg(0)),
        Op::Concat => super::placed::flattened(out, &inst.args, span),
        Op::Permute(perm) => {
            let x = arg(0);
            if perm.iter().enumerate().all(|(i, &p)| i == p) {
                return Some(x);
            }
            // One that moves only axes of one keeps the elements in order.
            let dims = out.shape(x).dims();
            let long = perm.iter().filter(|&&p| dims[p] > 1);
            if long.is_sorted() {
                return Some(out.push(Op::Reshape(s.clone()), vec![x], span));
            }
            // A permutation of a permutation is one permutation.
            match &out.inst(x).op {
                Op::Permute(inner) => {
                    let composed = perm.iter().map(|&p| inner[p]).collect();
                    let y = out.inst(x).args[0];
                    Some(out.push(Op::Permute(composed), vec![y], span))
                }
                _ => broadcast_arg(out, x).map(|inner| fit(out, inner, s, span)),
            }
        }
        Op::Reshape(to) => {
            let x = arg(0);
            if out.shape(x) == to {
                return Some(x);
            }
            if let Some(inner) = broadcast_arg(out, x) {
                return Some(fit(out, inner, s, span));
            }
            // A reshape of a reshape reads the same elements.
            match &out.inst(x).op {
                Op::Reshape(_) => {
                    let inner = out.inst(x).args[0];
                    Some(out.push(Op::Reshape(to.clone()), vec![inner], span))
                }
                _ => None,
            }
        }
        Op::Broadcast(to) => (out.shape(arg(0)) == to).then(|| arg(0)),
        Op::Slice(axes) => {
            let x = arg(0);
            if reads_all(out.shape(x), axes) {
                return Some(x);
            }
            if let Some(part) = packed_part(out, x, axes) {
                return Some(part);
            }
            if let Some(part) = super::placed::concat_part(out, x, axes) {
                return Some(part);
            }
            // A slice of a range of a vector: one slice of the vector,
            // unless the range is a value the user named.
            let named = out.inst(x).name.is_some();
            if let (Op::Slice(outer), [axis], false) = (&out.inst(x).op, axes.as_slice(), named) {
                if let [SliceAxis::Range(lo, _)] = outer.as_slice() {
                    let axis = match *axis {
                        SliceAxis::Range(a, b) => SliceAxis::Range(lo + a, lo + b),
                        SliceAxis::At(i) => SliceAxis::At(lo + i),
                    };
                    let inner = out.inst(x).args[0];
                    return Some(out.push(Op::Slice(vec![axis]), vec![inner], span));
                }
            }
            // What an `unslice` placed, or zeros beside it.
            if let Op::Unslice(placed, _) = &out.inst(x).op {
                let inner = out.inst(x).args[0];
                if placed == axes {
                    return Some(inner);
                }
                if disjoint(placed, axes) {
                    return Some(splat(out, 0.0, s, span));
                }
                // A range inside the one placed, of a vector.
                if let ([SliceAxis::Range(p0, p1)], [SliceAxis::Range(s0, s1)]) =
                    (placed.as_slice(), axes.as_slice())
                {
                    if p0 <= s0 && s1 <= p1 {
                        let within = vec![SliceAxis::Range(s0 - p0, s1 - p0)];
                        return Some(out.push(Op::Slice(within), vec![inner], span));
                    }
                }
            }
            let inner = broadcast_arg(out, x)?;
            Some(fit(out, inner, s, span))
        }
        Op::Unslice(axes, to) => {
            if reads_all(to, axes) {
                Some(arg(0))
            } else {
                is(splat_value(out, arg(0)), 0.0).then(|| splat(out, 0.0, s, span))
            }
        }
    }
}

fn binary(
    out: &mut Function,
    b: Binary,
    x: Value,
    y: Value,
    s: &Shape,
    span: Span,
) -> Option<Value> {
    let (kx, ky) = (splat_value(out, x), splat_value(out, y));
    let v = match b {
        Binary::Add if is(kx, 0.0) => fit(out, y, s, span),
        Binary::Add | Binary::Sub if is(ky, 0.0) => fit(out, x, s, span),
        Binary::Sub if is(kx, 0.0) => neg(out, y, s, span),
        Binary::Mul if is(kx, 0.0) || is(ky, 0.0) => splat(out, 0.0, s, span),
        Binary::Mul if is(kx, 1.0) => fit(out, y, s, span),
        Binary::Mul if is(kx, -1.0) => neg(out, y, s, span),
        Binary::Mul | Binary::Div if is(ky, 1.0) => fit(out, x, s, span),
        Binary::Mul | Binary::Div if is(ky, -1.0) => neg(out, x, s, span),
        Binary::Div if is(kx, 0.0) => splat(out, 0.0, s, span),
        Binary::Pow if is(ky, 0.0) => splat(out, 1.0, s, span),
        Binary::Pow if is(ky, 1.0) => fit(out, x, s, span),
        Binary::Pow if is(ky, 2.0) => {
            let sq = out.push(Op::Binary(Binary::Mul), vec![x, x], span);
            fit(out, sq, s, span)
        }
        Binary::Add if scatter_into_zeros(out, y, s) && out.shape(x) == s => {
            let scatter = out.inst(y);
            let (op, g, i) = (scatter.op.clone(), scatter.args[1], scatter.args[2]);
            out.push(op, vec![x, g, i], span)
        }
        Binary::Add if scatter_into_zeros(out, x, s) && out.shape(y) == s => {
            let scatter = out.inst(x);
            let (op, g, i) = (scatter.op.clone(), scatter.args[1], scatter.args[2]);
            out.push(op, vec![y, g, i], span)
        }
        Binary::Add => {
            return super::placed::joined(out, x, y, s, span)
                .or_else(|| signs(out, b, x, y, s, span))
                .or_else(|| hoist_broadcast(out, b, x, y, s, span))
        }
        _ => {
            return signs(out, b, x, y, s, span).or_else(|| hoist_broadcast(out, b, x, y, s, span))
        }
    };
    Some(v)
}

/// Whether `v` is a row added into zeros of shape `s` (`index_add(0, g,
/// i)`, the gradient of `x[i]`): added to `a`, it is the row added into
/// `a`, one row's work instead of the whole of `a`'s (a gather's reverse
/// in a loop, adding each step's row into the running sum, is then linear
/// in the steps, not in the steps times the gathered tensor). As `0 + a`
/// is `a`, the sign of a zero of `a` aside. Rows added into zeros
/// (`scatter_add(0, g, i)`, the gradient of a gather) likewise become rows
/// added into `a` in place; where indices repeat, their rows are then
/// added to `a` one after the other rather than to each other first.
fn scatter_into_zeros(f: &Function, v: Value, s: &Shape) -> bool {
    let i = f.inst(v);
    matches!(i.op, Op::IndexAdd | Op::ScatterAdd)
        && &i.shape == s
        && is(splat_value(f, i.args[0]), 0.0)
}

/// Negations move outwards, where they cancel or become subtractions:
/// `a + -b -> a - b`, `-a + b -> b - a`, `a - -b -> a + b`,
/// `-a * b -> -(a * b)`, `a / -b -> -(a / b)`. No rule moves one inwards, so
/// the rewriting ends.
fn signs(
    out: &mut Function,
    b: Binary,
    x: Value,
    y: Value,
    s: &Shape,
    span: Span,
) -> Option<Value> {
    let (nx, ny) = (negated(out, x), negated(out, y));
    let v = match (b, nx, ny) {
        (Binary::Add, _, Some(y)) => out.push(Op::Binary(Binary::Sub), vec![x, y], span),
        (Binary::Add, Some(x), None) => out.push(Op::Binary(Binary::Sub), vec![y, x], span),
        (Binary::Sub, _, Some(y)) => out.push(Op::Binary(Binary::Add), vec![x, y], span),
        (Binary::Mul | Binary::Div, Some(_), _) | (Binary::Mul | Binary::Div, _, Some(_)) => {
            let p = out.push(Op::Binary(b), vec![nx.unwrap_or(x), ny.unwrap_or(y)], span);
            if nx.is_some() && ny.is_some() {
                p
            } else {
                out.push(Op::Unary(Unary::Neg), vec![p], span)
            }
        }
        _ => return None,
    };
    Some(fit(out, v, s, span))
}

/// The operand of a negation.
fn negated(f: &Function, v: Value) -> Option<Value> {
    match f.inst(v).op {
        Op::Unary(Unary::Neg) => Some(f.inst(v).args[0]),
        _ => None,
    }
}

/// `b(broadcast(p), broadcast(q))`, or with one side a scalar, is
/// `broadcast(b(p, q))`: one operation instead of one per element.
fn hoist_broadcast(
    out: &mut Function,
    b: Binary,
    x: Value,
    y: Value,
    s: &Shape,
    span: Span,
) -> Option<Value> {
    let (bx, by) = (broadcast_arg(out, x), broadcast_arg(out, y));
    if bx.is_none() && by.is_none() {
        return None;
    }
    let scalar = |v: Value| out.shape(v).is_scalar().then_some(v);
    let px = bx.or_else(|| scalar(x))?;
    let py = by.or_else(|| scalar(y))?;
    let r = out.push(Op::Binary(b), vec![px, py], span);
    Some(fit(out, r, s, span))
}

pub(super) fn is(k: Option<f64>, c: f64) -> bool {
    k == Some(c)
}

/// `-v`, broadcast to `s`.
fn neg(out: &mut Function, v: Value, s: &Shape, span: Span) -> Value {
    let n = out.push(Op::Unary(Unary::Neg), vec![v], span);
    fit(out, n, s, span)
}

/// The scalar that `v` broadcasts, if `v` is a `broadcast`.
pub(super) fn broadcast_arg(f: &Function, v: Value) -> Option<Value> {
    match f.inst(v).op {
        Op::Broadcast(_) => Some(f.inst(v).args[0]),
        _ => None,
    }
}

/// Whether `Slice(axes)` of a tensor of shape `s` reads all of it unchanged.
/// Whether two selections of the same tensor share no element: on some
/// axis, they select different positions or ranges that do not meet.
fn disjoint(a: &[SliceAxis], b: &[SliceAxis]) -> bool {
    let span = |ax: &SliceAxis| match *ax {
        SliceAxis::At(i) => (i, i + 1),
        SliceAxis::Range(lo, hi) => (lo, hi),
    };
    a.iter().zip(b).any(|(x, y)| {
        let ((a0, a1), (b0, b1)) = (span(x), span(y));
        a1 <= b0 || b1 <= a0
    })
}

fn reads_all(s: &Shape, axes: &[SliceAxis]) -> bool {
    axes.len() == s.rank()
        && axes
            .iter()
            .zip(s.dims())
            .all(|(ax, &n)| *ax == SliceAxis::Range(0, n))
}

/// Whether `v` is a comparison, so 0 or 1.
fn is_comparison(f: &Function, v: Value) -> bool {
    matches!(
        f.inst(v).op,
        Op::Binary(Binary::Eq | Binary::Ne | Binary::Lt | Binary::Le | Binary::Gt | Binary::Ge)
    )
}

/// `pack(a0, a1, ...)[k, :, ...]` is `ak`.
fn packed_part(f: &Function, x: Value, axes: &[SliceAxis]) -> Option<Value> {
    let inst = f.inst(x);
    let (SliceAxis::At(k), rest) = axes.split_first()? else {
        return None;
    };
    let part = *inst.args.get(*k)?;
    let whole = matches!(inst.op, Op::Pack) && reads_all(f.shape(part), rest);
    whole.then_some(part)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_same_outputs, check, parse, sexpr};
    use super::run;
    use crate::ir::{ConstData, Function, Op, Output, Role, SliceAxis};
    use crate::shape::{Shape, Tensor};
    use crate::span::Span;

    #[test]
    fn additive_identities() {
        check(run, "(sum (neg x))", "(neg (sum x))");
        check(run, "(transpose (outer x y))", "(outer y x)");
        check(run, "(exp (log_softmax x))", "(softmax x)");
        check(run, "(add x (neg y))", "(sub x y)");
        check(run, "(add (neg x) y)", "(sub y x)");
        check(run, "(sub x (neg y))", "(add x y)");
        check(run, "(mul (neg x) y)", "(neg (mul x y))");
        check(run, "(div x (neg y))", "(neg (div x y))");
        check(run, "(div (neg x) (neg y))", "(div x y)");
        check(run, "(neg (sub x y))", "(sub y x)");
        check(run, "(add x 0)", "x");
        check(run, "(add 0 x)", "x");
        check(run, "(sub x 0)", "x");
        check(run, "(sub 0 x)", "(neg x)");
        check(run, "(add a (broadcast 0))", "(broadcast a)");
        check(run, "(sub x (broadcast 0))", "x");
        check(run, "(sub x x)", "(sub x x)");
    }

    #[test]
    fn gathers_and_scatters() {
        // Rows added into zeros, then added to `x`: added into `x`.
        let rows = "(scatter_add (broadcast 0) y [0,2,0])";
        check(
            run,
            &format!("(add x {rows})"),
            "(scatter_add x y [0, 2, 0])",
        );
        check(
            run,
            &format!("(add {rows} x)"),
            "(scatter_add x y [0, 2, 0])",
        );
        check(run, "(scatter_add x (broadcast 0) [2,1,2])", "x");
        check(run, "(gather (broadcast a) [2,1,2])", "(broadcast a)");
        check(run, "(gather x [2,1,2])", "(gather x [2, 1, 2])");
    }

    #[test]
    fn multiplicative_identities() {
        check(run, "(mul x 1)", "x");
        check(run, "(mul 1 x)", "x");
        check(run, "(mul x 0)", "(broadcast 0)");
        check(run, "(mul 0 a)", "0");
        check(run, "(mul (broadcast 0) a)", "(broadcast 0)");
        check(run, "(mul x -1)", "(neg x)");
        check(run, "(mul -1 x)", "(neg x)");
        check(run, "(div x 1)", "x");
        check(run, "(div x -1)", "(neg x)");
        check(run, "(div 0 x)", "(broadcast 0)");
        check(run, "(mul x 2)", "(mul x 2)");
    }

    #[test]
    fn powers() {
        check(run, "(pow x 1)", "x");
        check(run, "(pow x 2)", "(mul x x)");
        check(run, "(pow a 2)", "(mul a a)");
        check(run, "(pow x 0)", "(broadcast 1)");
        check(run, "(pow x 3)", "(pow x 3)");
    }

    #[test]
    fn negation_and_transpose_cancel() {
        check(run, "(neg (neg x))", "x");
        check(run, "(neg (mul -1 x))", "x");
        check(run, "(transpose (transpose m))", "m");
        check(run, "(transpose m)", "(transpose m)");
    }

    #[test]
    fn broadcasts_move_out_of_elementwise_operations() {
        check(run, "(exp (broadcast a))", "(broadcast (exp a))");
        check(
            run,
            "(add (broadcast a) (broadcast b))",
            "(broadcast (add a b))",
        );
        check(run, "(max (broadcast a) b)", "(broadcast (max a b))");
        check(run, "(max (broadcast a) x)", "(max (broadcast a) x)");
        check(run, "[2,2,2]", "(broadcast 2)");
    }

    #[test]
    fn reductions_of_splats() {
        check(run, "(sum (broadcast a))", "(mul a 3)");
        check(run, "(sum a)", "a");
        check(run, "(reduce_max (broadcast a))", "a");
        check(run, "(logsumexp a)", "a");
        check(run, "(norm b)", "(abs b)");
        check(run, "(sum x)", "(sum x)");
    }

    fn cse_then_algebra(f: &mut Function) -> bool {
        crate::passes::cse::run(f) | run(f)
    }

    #[test]
    fn select_on_a_known_condition() {
        check(run, "(select 1 x y)", "x");
        check(run, "(select 0 x y)", "y");
        check(run, "(select (broadcast 0) a y)", "y");
        check(run, "(select 2 a y)", "(broadcast a)");
        check(cse_then_algebra, "(select (gt x y) a a)", "(broadcast a)");
        check(run, "(select a x y)", "(select a x y)");
    }

    /// A cotangent's guard of itself, `select(c, c, 0)`, is `c`; of
    /// anything else, or with another value where `c` is zero, it stays.
    #[test]
    fn a_select_of_its_own_condition_and_zero_is_the_condition() {
        check(cse_then_algebra, "(select (exp x) (exp x) 0)", "(exp x)");
        check(cse_then_algebra, "(select a a 0)", "a");
        check(run, "(select x y 0)", "(select x y 0)");
        check(cse_then_algebra, "(select x x 1)", "(select x x 1)");
    }

    #[test]
    fn zeros_annihilate_products() {
        check(run, "(matmul m (broadcast 0))", "(broadcast 0)");
        check(run, "(outer (broadcast 0) x)", "(broadcast 0)");
        check(run, "(matmul m x)", "(matmul m x)");
    }

    #[test]
    fn slices_of_splats_and_whole_slices() {
        let sp = Span::default();
        let mut f = parse("x");
        let x = f.outputs[0].value;
        let whole = f.push(Op::Slice(vec![SliceAxis::Range(0, 3)]), vec![x], sp);
        let zero = super::splat(&mut f, 0.0, &Shape::vector(3), sp);
        let part = f.push(Op::Slice(vec![SliceAxis::Range(1, 3)]), vec![zero], sp);
        let back = f.push(
            Op::Unslice(vec![SliceAxis::Range(1, 3)], Shape::vector(3)),
            vec![part],
            sp,
        );
        let y = f.push(Op::Binary(crate::ir::Binary::Add), vec![whole, back], sp);
        f.outputs[0].value = y;
        let before = f.clone();
        // The arguments are rewritten first, so the sum sees a zero.
        assert!(run(&mut f));
        assert_eq!(sexpr(&f, f.outputs[0].value), "x");
        assert_same_outputs(&before, &f);
    }

    #[test]
    fn a_filled_tensor_broadcast_along_axes_stays_filled() {
        let sp = Span::default();
        let mut f = parse("x");
        let zero = super::splat(&mut f, 0.0, &Shape::vector(3), sp);
        let y = f.push(
            Op::BroadcastAxes(vec![0], Shape::matrix(2, 3)),
            vec![zero],
            sp,
        );
        let one = f.push(Op::Const(ConstData(Tensor::scalar(1.0))), vec![], sp);
        let z = f.push(
            Op::BroadcastAxes(vec![0, 1], Shape::matrix(2, 3)),
            vec![one],
            sp,
        );
        for v in [y, z] {
            f.outputs.push(Output {
                role: Role::Output,
                name: format!("{}", v.index()),
                value: v,
            });
        }
        assert!(run(&mut f));
        let n = f.outputs.len();
        let (y, z) = (f.outputs[n - 2].value, f.outputs[n - 1].value);
        assert_eq!(sexpr(&f, y), "(broadcast 0)");
        assert_eq!(f.shape(y), &Shape::matrix(2, 3));
        assert_eq!(sexpr(&f, z), "(broadcast 1)");
    }

    /// A `permute` that moves only axes of one is a `reshape`: the same
    /// elements in the same order. One that swaps two longer axes stays.
    #[test]
    fn a_permute_of_axes_of_one_is_a_reshape() {
        let sp = Span::default();
        for (perm, stays) in [
            (vec![1, 0, 2], false),
            (vec![0, 2, 1], false),
            (vec![2, 1, 0], true),
            (vec![1, 2, 0], true),
        ] {
            let mut f = parse("m");
            let m = f.outputs[0].value;
            let x = f.push(Op::Reshape(Shape(vec![2, 1, 3])), vec![m], sp);
            let p = f.push(Op::Permute(perm.clone()), vec![x], sp);
            f.outputs[0].value = p;
            let before = f.clone();
            assert_eq!(run(&mut f), !stays);
            let out = f.outputs[0].value;
            let moved = matches!(f.inst(out).op, Op::Permute(_));
            assert_eq!(moved, stays, "{perm:?}: {f}");
            assert_eq!(f.shape(out), before.shape(p));
            assert_same_outputs(&before, &f);
        }
    }

    /// A slice of a range of a vector is one slice of the vector (a range
    /// or a position), unless the range is a named value.
    #[test]
    fn a_slice_of_a_range_is_one_slice() {
        let sp = Span::default();
        for (axis, named, want) in [
            (SliceAxis::Range(1, 2), false, "[2..3]"),
            (SliceAxis::At(1), false, "[2]"),
            (SliceAxis::At(1), true, "[1]"),
        ] {
            let mut f = parse("x");
            let x = f.outputs[0].value;
            let range = f.push(Op::Slice(vec![SliceAxis::Range(1, 3)]), vec![x], sp);
            if named {
                f.set_name(range, "r");
            }
            let piece = f.push(Op::Slice(vec![axis]), vec![range], sp);
            f.outputs[0].value = piece;
            let before = f.clone();
            run(&mut f);
            let out = f.inst(f.outputs[0].value);
            let printed = crate::ir::printer::print(&f);
            assert!(printed.contains(&format!("{want} :")), "{printed}");
            assert_eq!(out.args[0] == x, !named, "{printed}");
            assert_same_outputs(&before, &f);
        }
    }
}
