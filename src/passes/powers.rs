//! A constant raised to an integer the step of the loop around provides,
//! `2^j` for `j` in `0..L`, is an entry of a table of those powers: the
//! table's entries are computed here by the interpreter's `pow`, so each
//! is the same bits as the `pow` it replaces, and a loop that ran a `pow`
//! at every step reads a number instead. (`det.grad`'s tables of subsets
//! take the bits of each subset so: 500,000 `pow`s at L = 11, computed
//! when its function is compiled.)
//!
//! Only where the exponent is provably an integer from 0 to [`MOST`]
//! (see [`super::rows`]' ranges): then it names an entry, and reading it
//! cannot fail.

use super::rows::{int_range, Step};
use crate::ir::{interp, Binary, ConstData, Function, Inst, Op, Value};
use crate::shape::{Shape, Tensor};

/// The largest exponent a table holds: 256 numbers at most.
pub const MOST: i64 = 255;

/// Rewrites every such power of `f` (not of its loops' bodies); whether it
/// changed anything.
pub fn run(f: &mut Function, step: Step) -> bool {
    let found = f.iter().any(|(_, inst)| table(f, inst, step).is_some());
    found && f.rewrite(|out, inst| rule(out, inst, step))
}

/// The base and the largest exponent of `inst`, if it is such a power.
fn table(f: &Function, inst: &Inst, step: Step) -> Option<(f64, i64)> {
    if inst.op != Op::Binary(Binary::Pow) || !inst.shape.is_scalar() {
        return None;
    }
    let Op::Const(c) = &f.inst(inst.args[0]).op else {
        return None;
    };
    if !c.0.shape.is_scalar() {
        return None;
    }
    let (lo, hi) = int_range(f, inst.args[1], step)?;
    (lo >= 0 && hi <= MOST).then_some((c.0.data[0], hi))
}

fn rule(out: &mut Function, inst: &Inst, step: Step) -> Option<Value> {
    let (base, hi) = table(out, inst, step)?;
    let powers: Vec<f64> = (0..=hi)
        .map(|k| interp::binary(Binary::Pow, base, k as f64))
        .collect();
    let n = powers.len();
    let t = Tensor::new(Shape(vec![n]), powers);
    let t = out.push(Op::Const(ConstData(t)), vec![], inst.span);
    Some(out.push(Op::Index, vec![t, inst.args[1]], inst.span))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Slot;
    use crate::span::Span;

    /// A loop body `pow(base, e(step))` over steps `0..=last`.
    fn body(base: f64, e: impl Fn(&mut Function, Value) -> Value) -> Function {
        let scalar = Slot {
            name: "i".into(),
            shape: Shape::scalar(),
        };
        let mut f = Function::new(vec![], vec![scalar]);
        let sp = Span::default();
        let i = f.push(Op::Input(0), vec![], sp);
        let b = f.push(Op::Const(ConstData(Tensor::scalar(base))), vec![], sp);
        let x = e(&mut f, i);
        let p = f.push(Op::Binary(Binary::Pow), vec![b, x], sp);
        f.outputs.push(crate::ir::Output {
            role: crate::ir::Role::Output,
            name: "p".into(),
            value: p,
        });
        f
    }

    /// `f`'s output at each step.
    fn values(f: &Function, last: i64) -> Vec<u64> {
        (0..=last)
            .map(|i| {
                let x = Tensor::scalar(i as f64);
                interp::run_outputs(f, &[], &[x]).unwrap()[0].1.data[0].to_bits()
            })
            .collect()
    }

    #[test]
    fn powers_of_the_step_are_entries_of_a_table() {
        for base in [2.0, 0.1, -3.0] {
            // 2^(i + 1) for i in 0..11: a table of 12.
            let mut f = body(base, |f, i| {
                let one = f.push(
                    Op::Const(ConstData(Tensor::scalar(1.0))),
                    vec![],
                    Span::default(),
                );
                f.push(Op::Binary(Binary::Add), vec![i, one], Span::default())
            });
            let want = values(&f, 10);
            assert!(run(&mut f, Some((0, 10))));
            let text = f.to_string();
            assert!(!text.contains("pow"), "{text}");
            assert!(text.contains(": [12]"), "{text}");
            assert_eq!(values(&f, 10), want, "{base}");
        }
    }

    #[test]
    fn other_exponents_keep_their_pow() {
        let negative = |f: &mut Function, i| {
            f.push(Op::Unary(crate::ir::Unary::Neg), vec![i], Span::default())
        };
        // An exponent that may be negative, one past the table's size, one
        // of no known range (not a loop's body), a fractional one.
        for (mut f, step) in [
            (body(2.0, negative), Some((0, 3))),
            (body(2.0, |_, i| i), Some((0, MOST + 1))),
            (body(2.0, |_, i| i), None),
            (
                body(2.0, |f, i| {
                    let half = f.push(
                        Op::Const(ConstData(Tensor::scalar(0.5))),
                        vec![],
                        Span::default(),
                    );
                    f.push(Op::Binary(Binary::Mul), vec![i, half], Span::default())
                }),
                Some((0, 3)),
            ),
        ] {
            assert!(!run(&mut f, step), "{f}");
        }
        // At the largest exponent the table holds, it is one.
        let mut f = body(2.0, |_, i| i);
        assert!(run(&mut f, Some((0, MOST))));
    }
}
