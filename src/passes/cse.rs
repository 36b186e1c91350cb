//! Common subexpression elimination: an instruction equal to an earlier one
//! (same operation, same arguments) is replaced by it.
//!
//! Operations are compared whole, so `param`, `input` and `const` (by bit
//! pattern) are shared too. For commutative operations the arguments are
//! compared as a set: `a + b` is `b + a`.

use std::collections::hash_map::Entry;
use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHasher};

use crate::ir::{Binary, Function, Inst, Op, Value};

pub fn run(f: &mut Function) -> bool {
    // Instructions by a fingerprint of their operation and arguments, each
    // candidate then compared whole: a loop is fingerprinted by its shape,
    // not its body, so that neither its body is cloned nor hashed for the
    // table (nested loops made that the cost of the whole pass). The first
    // instruction of each fingerprint is kept apart from the others (most
    // fingerprints have one), so that the table allocates no list for it.
    let mut first: FxHashMap<u64, Value> = FxHashMap::default();
    first.reserve(f.len());
    let mut others: FxHashMap<u64, Vec<Value>> = FxHashMap::default();
    f.rewrite(|out, inst| {
        let key = fingerprint(&inst.op, &inst.args);
        match first.entry(key) {
            Entry::Vacant(e) => {
                e.insert(out.next_value());
                return None;
            }
            Entry::Occupied(e) if same(out.inst(*e.get()), inst) => return Some(*e.get()),
            Entry::Occupied(_) => {}
        }
        let candidates = others.entry(key).or_default();
        if let Some(&v) = candidates.iter().find(|&&v| same(out.inst(v), inst)) {
            return Some(v);
        }
        candidates.push(out.next_value());
        None
    })
}

/// Whether `earlier` computes what `inst` does: the same operation of the
/// same arguments, in either order if it is commutative (a commutative
/// operation has two).
fn same(earlier: &Inst, inst: &Inst) -> bool {
    let swapped =
        || matches!((&earlier.args[..], &inst.args[..]), ([a, b], [c, d]) if a == d && b == c);
    let args = earlier.args == inst.args || (commutative(&inst.op) && swapped());
    args && earlier.op == inst.op
}

/// A hash of an operation and its arguments (a commutative operation's in
/// order of their values); a loop's by its trip count, carried values and
/// body length only.
fn fingerprint(op: &Op, args: &[Value]) -> u64 {
    let mut h = FxHasher::default();
    match op {
        Op::Loop(l) => {
            "loop".hash(&mut h);
            (l.trips, l.carries, l.body.len(), l.recompute).hash(&mut h);
        }
        op => op.hash(&mut h),
    }
    match args {
        [a, b] if commutative(op) => (a.min(b), a.max(b)).hash(&mut h),
        args => args.hash(&mut h),
    }
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

    /// Of three instructions of one fingerprint, the third equal to the
    /// second and not to the first, the third is the second.
    #[test]
    fn a_later_instruction_of_a_fingerprint_is_shared_too() {
        use crate::ir::{Binary, ConstData, Op};
        use crate::shape::{Shape, Tensor};
        let sp = crate::span::Span::default();
        let mut f = parse("a");
        let data: Vec<f64> = (0..1000).map(|k| k as f64).collect();
        let mut other = data.clone();
        other[1] = -1.0;
        let mut constant = |d: &Vec<f64>| {
            let t = Tensor::new(Shape::vector(1000), d.clone());
            f.push(Op::Const(ConstData(t)), vec![], sp)
        };
        let (x, y, z) = (constant(&data), constant(&other), constant(&other));
        let d1 = f.push(Op::Binary(Binary::Sub), vec![x, y], sp);
        let d2 = f.push(Op::Binary(Binary::Sub), vec![y, z], sp);
        let both = f.push(Op::Binary(Binary::Add), vec![d1, d2], sp);
        f.outputs[0].value = both;
        assert!(run(&mut f));
        let [d1, d2] = f.inst(f.outputs[0].value).args[..] else {
            panic!("an add of two");
        };
        let (a, b) = (&f.inst(d1).args, &f.inst(d2).args);
        assert_ne!(a[0], a[1], "the first two differ");
        assert_eq!(b[0], b[1], "the last two are one");
        assert_eq!(a[1], b[0]);
    }
}
