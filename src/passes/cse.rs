//! Common subexpression elimination: an instruction equal to an earlier one
//! (same operation, same arguments) is replaced by it.
//!
//! Operations are compared whole, so `param`, `input` and `const` (by bit
//! pattern) are shared too. For commutative operations the arguments are
//! compared as a set: `a + b` is `b + a`.

use std::collections::HashMap;

use crate::ir::{Binary, Function, Op, Value};

pub fn run(f: &mut Function) -> bool {
    let mut seen: HashMap<(Op, Vec<Value>), Value> = HashMap::new();
    f.rewrite(|out, inst| {
        let mut args = inst.args.clone();
        if commutative(&inst.op) {
            args.sort();
        }
        let key = (inst.op.clone(), args);
        if let Some(&v) = seen.get(&key) {
            return Some(v);
        }
        seen.insert(key, out.next_value());
        None
    })
}

fn commutative(op: &Op) -> bool {
    match op {
        Op::Binary(b) => match b {
            Binary::Add | Binary::Mul | Binary::Max | Binary::Min | Binary::Eq | Binary::Ne => true,
            Binary::Sub
            | Binary::Div
            | Binary::Pow
            | Binary::Lt
            | Binary::Le
            | Binary::Gt
            | Binary::Ge
            | Binary::BceLogits => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, parse};
    use super::run;

    #[test]
    fn shares_equal_instructions() {
        let mut f = parse("(add (exp x) (exp x))");
        assert!(run(&mut f));
        // Two `param x`, two `exp`: one of each is left.
        assert_eq!(f.insts().len(), 3);
        assert_eq!(f.insts()[2].args[0], f.insts()[2].args[1]);
        assert!(!run(&mut f));
    }

    #[test]
    fn commutative_arguments_match_in_any_order() {
        let mut f = parse("(sub (mul a b) (mul b a))");
        run(&mut f);
        let sub = f.outputs[0].value;
        let args = &f.inst(sub).args;
        assert_eq!(args[0], args[1]);
        let mut f = parse("(sub (div a b) (div b a))");
        run(&mut f);
        let args = &f.inst(f.outputs[0].value).args;
        assert_ne!(args[0], args[1]);
    }

    #[test]
    fn constants_match_by_value() {
        let mut f = parse("(add (mul a 2) (mul a 2))");
        run(&mut f);
        assert_eq!(f.insts().len(), 4);
        check(run, "(max (neg x) (neg x))", "(max (neg x) (neg x))");
    }
}
