//! Constant folding: an instruction whose arguments are all constants becomes
//! the constant the interpreter computes for it.
//!
//! The evaluation is [`interp::eval_op`], so folding and running agree by
//! construction. A `broadcast` of a constant is left alone: it is the
//! canonical form of a filled tensor (see [`super::splat`]), and results of
//! equal elements are emitted in that form. An evaluation error (a constant
//! `one_hot` class out of range) leaves the instruction for the run to report.
//! Loops are not folded, nor an `unslice` into more than [`MAX_UNSLICE`]
//! numbers: it is a constant placed among zeros, which the algebraic rules
//! read through (a slice of it is the constant, or zeros), where folding
//! would make a constant of every number (the cotangent of a loop's value,
//! its saved states included, would be millions of zeros, copied and
//! sliced again by every pass).

use crate::ir::interp;
use crate::ir::{Function, Op};
use crate::shape::Tensor;

/// The most numbers an `unslice` of a constant is folded into.
pub const MAX_UNSLICE: usize = 1 << 12;

pub fn run(f: &mut Function) -> bool {
    f.rewrite(|out, inst| {
        // A loop is not run at compile time: its body is simplified in
        // place (see `super::simplify`), and compile time must not grow
        // with its trip count.
        if inst.args.is_empty() || matches!(inst.op, Op::Broadcast(_) | Op::Loop(_)) {
            return None;
        }
        if matches!(inst.op, Op::Unslice(..)) && inst.shape.size() > MAX_UNSLICE {
            return None;
        }
        let t = {
            let args: Option<Vec<&Tensor>> = inst
                .args
                .iter()
                .map(|&a| match &out.inst(a).op {
                    Op::Const(c) => Some(&c.0),
                    _ => None,
                })
                .collect();
            interp::eval_op(&inst.op, &args?).ok()?
        };
        Some(super::constant(out, t, inst.span))
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, parse};
    use super::run;
    use crate::ir::{Op, SliceAxis};
    use crate::shape::Shape;
    use crate::span::Span;

    #[test]
    fn folds_constant_instructions() {
        check(run, "(add 1 2)", "3");
        check(run, "(mul (add 1 2) (neg 4))", "-12");
        check(run, "(exp 0)", "1");
        check(run, "(sum [1,2,3.5])", "6.5");
        check(run, "(softmax [0,0])", "(broadcast 0.5)");
        check(run, "(pack 1 2)", "[1, 2]");
        check(run, "(add x (mul 2 3))", "(add x 6)");
    }

    #[test]
    fn leaves_broadcasts_and_errors() {
        check(run, "(broadcast 2)", "(broadcast 2)");
        check(run, "(sum (broadcast 2))", "(sum (broadcast 2))");
        check(run, "(log -1)", "NaN");
    }

    #[test]
    fn leaves_large_unslices() {
        let mut f = parse("1");
        let c = f.value(0).unwrap();
        let n = super::MAX_UNSLICE;
        let at = |n: usize| vec![SliceAxis::At(n - 1)];
        // The last element of a vector of `n`: folded; of `n + 1`: left.
        let small = f.push(
            Op::Unslice(at(n), Shape::vector(n)),
            vec![c],
            Span::default(),
        );
        let large = f.push(
            Op::Unslice(at(n + 1), Shape::vector(n + 1)),
            vec![c],
            Span::default(),
        );
        f.outputs[0].value = small;
        let mut g = f.clone();
        g.outputs[0].value = large;
        assert!(run(&mut f));
        assert!(matches!(f.inst(f.outputs[0].value).op, Op::Const(_)));
        run(&mut g);
        assert!(matches!(g.inst(g.outputs[0].value).op, Op::Unslice(..)));
    }
}
