//! Constant folding: an instruction whose arguments are all constants becomes
//! the constant the interpreter computes for it.
//!
//! The evaluation is [`interp::eval_op`], so folding and running agree by
//! construction. A `broadcast` of a constant is left alone: it is the
//! canonical form of a filled tensor (see [`super::splat`]), and results of
//! equal elements are emitted in that form. An evaluation error (a constant
//! `one_hot` class out of range) leaves the instruction for the run to report.
//! Loops are not folded.

use crate::ir::interp;
use crate::ir::{Function, Op};
use crate::shape::Tensor;

pub fn run(f: &mut Function) -> bool {
    f.rewrite(|out, inst| {
        // A loop is not run at compile time: its body is simplified in
        // place (see `super::simplify`), and compile time must not grow
        // with its trip count.
        if inst.args.is_empty() || matches!(inst.op, Op::Broadcast(_) | Op::Loop(_)) {
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
    use super::super::testing::check;
    use super::run;

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
}
