//! A comprehension that rebuilds a tensor with some of its rows replaced,
//!
//! ```text
//! [if r == i then a else if r == j then b else s[r] for r in 0..n]
//! ```
//!
//! (an LSTM's new state, one layer's rows at a time), is `s` with its row
//! `j` replaced by `b`, then its row `i` by `a`: two `index_set`s, one row's
//! work each, instead of a `select` of every row, and in the gradient
//! instead of the reverse of every `select`.
//!
//! Only where every index is provably an integer in `0..n`: a constant, or
//! integer arithmetic of constants and of the step of the loop around,
//! whose range is known. Then each index names one row, as the
//! comprehension's comparison does, and the `index_set`s cannot fail.

use crate::ir::{Binary, Function, Inst, Loop, Op, Unary, Value};
use crate::span::Span;

/// The range of the step, for a loop's body; `None` for a function that
/// is no loop's body (its inputs are the program's).
pub type Step = Option<(i64, i64)>;

/// Rewrites every such comprehension of `f` (not of its loops' bodies).
pub fn run(f: &mut Function, step: Step) -> bool {
    let found = f.iter().any(|(_, inst)| match &inst.op {
        Op::Loop(l) => replaced_rows(inst, l).is_some(),
        _ => false,
    });
    found && f.rewrite(|out, inst| rule(out, inst, step))
}

fn rule(out: &mut Function, inst: &Inst, step: Step) -> Option<Value> {
    let Op::Loop(l) = &inst.op else {
        return None;
    };
    let (base, sets) = replaced_rows(inst, l)?;
    let body = &l.body;
    let n = l.trips as i64;
    // Each index's range, before anything is written.
    let range = |k: Value| match body.inst(k).op {
        Op::Param(p) => int_range(out, inst.args[p], step),
        _ => int_range(body, k, None),
    };
    if !sets
        .iter()
        .all(|&(k, _)| range(k).is_some_and(|(lo, hi)| lo >= 0 && hi < n))
    {
        return None;
    }
    let outside = |out: &mut Function, v: Value| outside(out, body, &inst.args, v, inst.span);
    let rows: Vec<(Value, Value)> = sets
        .iter()
        .map(|&(k, row)| (outside(out, k), outside(out, row)))
        .collect();
    // The innermost `select` is the first replacement, so that the
    // outermost one wins where two indices are equal.
    let mut x = outside(out, base);
    for &(k, row) in rows.iter().rev() {
        x = out.push(Op::IndexSet, vec![x, row, k], inst.span);
    }
    Some(out.push(Op::Reshape(inst.shape.clone()), vec![x], inst.span))
}

/// The value of `out` that `v`, a value of the loop's `body` that does not
/// depend on the step, is: a captured one's argument (of `args`), or a
/// constant copied out.
fn outside(out: &mut Function, body: &Function, args: &[Value], v: Value, span: Span) -> Value {
    let inst = body.inst(v);
    match &inst.op {
        Op::Param(p) => args[*p],
        Op::Broadcast(to) => {
            let x = outside(out, body, args, inst.args[0], span);
            out.push(Op::Broadcast(to.clone()), vec![x], span)
        }
        op => out.push(op.clone(), vec![], span),
    }
}

/// If the loop `inst` is a comprehension whose element `r` is a chain of
/// `select(r == i, a, ...)` ending in `s[r]`, with `i`, `a` and `s`
/// captured or constants and `s` of `n` rows, `n` the steps: `s`, and each
/// `(i, a)`, outermost first (as values of the body).
fn replaced_rows(inst: &Inst, l: &Loop) -> Option<(Value, Vec<(Value, Value)>)> {
    let body = &l.body;
    if l.carries != 0 || body.outputs.len() != 1 || l.recompute {
        return None;
    }
    // Computed before the loop: captured, a constant, or one broadcast.
    let invariant = |v: Value| {
        let inst = body.inst(v);
        let leaf = |op: &Op| matches!(op, Op::Param(_) | Op::Const(_));
        match inst.op {
            Op::Broadcast(_) => leaf(&body.inst(inst.args[0]).op),
            ref op => leaf(op),
        }
    };
    let is_step = |v: Value| matches!(body.inst(v).op, Op::Input(0));
    let row_shape = body.shape(body.outputs[0].value).clone();
    let mut v = body.outputs[0].value;
    let mut sets = Vec::new();
    loop {
        let i = body.inst(v);
        match i.op {
            Op::Select => {
                let (c, a, b) = (i.args[0], i.args[1], i.args[2]);
                let cond = body.inst(c);
                if cond.op != Op::Binary(Binary::Eq) || body.shape(a) != &row_shape {
                    return None;
                }
                let index = match (cond.args[0], cond.args[1]) {
                    (r, k) | (k, r) if is_step(r) && !is_step(k) => k,
                    _ => return None,
                };
                if !invariant(index) || !invariant(a) {
                    return None;
                }
                sets.push((index, a));
                v = b;
            }
            Op::Index if is_step(i.args[1]) => {
                let s = i.args[0];
                let dims = body.shape(s).dims();
                let fits = dims.first() == Some(&l.trips) && dims[1..] == *row_shape.dims();
                let whole = inst.shape.size() == l.trips * row_shape.size();
                let ok = fits && whole && !sets.is_empty() && invariant(s);
                return ok.then_some((s, sets));
            }
            _ => return None,
        }
    }
}

/// The integers `v` may hold, as `(lowest, highest)`, if it is provably an
/// integer: a constant, the step, or sums, differences, products and
/// negations of those (exact in floating point while they stay below
/// 2^52).
pub(super) fn int_range(f: &Function, v: Value, step: Step) -> Option<(i64, i64)> {
    const LIMIT: i64 = 1 << 52;
    let inst = f.inst(v);
    let arg = |k: usize| int_range(f, inst.args[k], step);
    let (lo, hi) = match &inst.op {
        Op::Const(c) if c.0.shape.is_scalar() => {
            let x = c.0.data[0];
            let whole = x.fract() == 0.0 && x.abs() < LIMIT as f64;
            whole.then_some((x as i64, x as i64))?
        }
        // A loop body's one input is its step.
        Op::Input(0) => step?,
        Op::Unary(Unary::Neg) => {
            let (lo, hi) = arg(0)?;
            (-hi, -lo)
        }
        Op::Binary(b @ (Binary::Add | Binary::Sub | Binary::Mul)) => {
            let ((a0, a1), (b0, b1)) = (arg(0)?, arg(1)?);
            match b {
                Binary::Add => (a0 + b0, a1 + b1),
                Binary::Sub => (a0 - b1, a1 - b0),
                _ => {
                    let p = [
                        a0.checked_mul(b0)?,
                        a0.checked_mul(b1)?,
                        a1.checked_mul(b0)?,
                        a1.checked_mul(b1)?,
                    ];
                    (*p.iter().min()?, *p.iter().max()?)
                }
            }
        }
        _ => return None,
    };
    (lo.abs() < LIMIT && hi.abs() < LIMIT).then_some((lo, hi))
}
