//! Common subexpression elimination: an instruction equal to an earlier one
//! (same operation, same arguments) is replaced by it.
//!
//! Operations are compared whole, so `param`, `input` and `const` (by bit
//! pattern) are shared too. For commutative operations the arguments are
//! compared as a set: `a + b` is `b + a`.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use crate::ir::{Binary, Function, Op, Value};

pub fn run(f: &mut Function) -> bool {
    // Instructions by a fingerprint of their operation and arguments, each
    // candidate then compared whole: a loop is fingerprinted by its shape,
    // not its body, so that neither its body is cloned nor hashed for the
    // table (nested loops made that the cost of the whole pass).
    let mut seen: HashMap<u64, Vec<Value>> = HashMap::new();
    f.rewrite(|out, inst| {
        let mut args = inst.args.clone();
        if commutative(&inst.op) {
            args.sort();
        }
        let key = fingerprint(&inst.op, &args);
        let candidates = seen.entry(key).or_default();
        let same = |v: &Value| {
            let earlier = out.inst(*v);
            let mut earlier_args = earlier.args.clone();
            if commutative(&earlier.op) {
                earlier_args.sort();
            }
            earlier_args == args && earlier.op == inst.op
        };
        if let Some(&v) = candidates.iter().find(|v| same(v)) {
            return Some(v);
        }
        candidates.push(out.next_value());
        None
    })
}

/// A hash of an operation and its arguments; a loop's by its trip count,
/// carried values and body length only.
fn fingerprint(op: &Op, args: &[Value]) -> u64 {
    let mut h = DefaultHasher::new();
    match op {
        Op::Loop(l) => {
            "loop".hash(&mut h);
            (l.trips, l.carries, l.body.len(), l.recompute).hash(&mut h);
        }
        op => op.hash(&mut h),
    }
    args.hash(&mut h);
    h.finish()
}

pub(super) fn commutative(op: &Op) -> bool {
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

    /// Large constants hash a sample of their numbers: two that differ
    /// only where the hash does not look stay two, two equal ones are one.
    #[test]
    fn large_constants_match_whole() {
        use crate::ir::{Binary, ConstData, Op};
        use crate::shape::{Shape, Tensor};
        let sp = crate::span::Span::default();
        for (at, same) in [(None, true), (Some(1), false), (Some(999), false)] {
            let mut f = parse("a");
            let data: Vec<f64> = (0..1000).map(|k| k as f64).collect();
            let mut other = data.clone();
            if let Some(k) = at {
                other[k] = -1.0;
            }
            let constant = |f: &mut crate::ir::Function, d: Vec<f64>| {
                let t = Tensor::new(Shape::vector(1000), d);
                f.push(Op::Const(ConstData(t)), vec![], sp)
            };
            let (x, y) = (constant(&mut f, data), constant(&mut f, other));
            let sum = f.push(Op::Binary(Binary::Sub), vec![x, y], sp);
            f.outputs[0].value = sum;
            run(&mut f);
            let args = &f.inst(f.outputs[0].value).args;
            assert_eq!(args[0] == args[1], same, "{at:?}");
        }
    }
}
