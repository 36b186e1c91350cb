//! Simplification of the IR: constant folding, algebraic identities, common
//! subexpression elimination and dead code elimination, run to a fixpoint.
//!
//! Every pass is `pub fn run(f: &mut Function) -> bool` (whether it changed
//! anything). The rewriting passes are built on [`Function::rewrite`], which rebuilds
//! a function instruction by instruction; [`dce`] removes what no output needs
//! with [`Function::retain`].
//!
//! Conventions shared by the passes:
//! - A tensor filled with one number is `broadcast` of a scalar `const`
//!   (a scalar is the bare `const`): see [`splat`]. Folding never expands
//!   such a broadcast into a large constant.
//! - A value that replaces another inherits its name if it has none, and new
//!   instructions take the span of the one they replace.

pub mod algebra;
mod columns;
pub mod cse;
pub mod dce;
pub mod fold;
mod loops;
mod placed;
mod powers;
mod products;
mod rows;
mod siblings;
mod sums;
#[cfg(test)]
mod testing;

use crate::ir::verify::verify;
use crate::ir::{ConstData, Function, Op, Value};
use crate::shape::{Shape, Tensor};
use crate::span::Span;

/// Rounds of all passes before `simplify` gives up on reaching a fixpoint.
const MAX_ROUNDS: usize = 16;

/// A pass: rewrites a function in place and says whether it changed it.
pub type Pass = fn(&mut Function) -> bool;

/// The passes `simplify` runs on a function, in order, with their names,
/// after its loops' bodies have been simplified (see [`simplify`]).
pub const PASSES: [(&str, Pass); 8] = [
    ("fold", fold::run),
    ("columns", columns::run),
    ("algebra", algebra::run),
    ("cse", cse::run),
    ("siblings", siblings::run),
    ("trim", loops::trim),
    ("repeats", loops::repeats),
    ("dce", dce::run),
];

/// Simplifies every loop body of `f` (each a function of its own, and
/// recursively), then `f` itself ([`simplify_rounds`]).
///
/// A body is simplified once: the rewrites that make a new body from a
/// simplified one (a constant copied in, invariant work hoisted out, saved
/// values trimmed, in [`loops`]) simplify it themselves, with
/// [`simplify_rounds`] (the loops inside it are simplified already), so
/// that no body is simplified again at every round of the function around
/// it, a cost that would multiply with every level of nested loops.
pub fn simplify(f: &mut Function) {
    simplify_in(f, None);
}

/// [`simplify`] for `f`, the body of a loop whose step takes the values of
/// `step` (`None`: no loop's body), which [`rows`] needs.
fn simplify_in(f: &mut Function, step: rows::Step) {
    simplify_bodies(f);
    simplify_rounds(f);
    let powers = powers::run(f, step);
    if rows::run(f, step) || powers {
        simplify_rounds(f);
    }
}

/// Runs [`PASSES`] on `f` until none changes anything (at most
/// [`MAX_ROUNDS`] rounds), its loops' bodies taken as simplified. In debug
/// builds the function is verified after each pass.
fn simplify_rounds(f: &mut Function) {
    for _ in 0..MAX_ROUNDS {
        let mut changed = false;
        for (name, pass) in PASSES {
            changed |= pass(f);
            if cfg!(debug_assertions) {
                if let Err(e) = verify(f) {
                    panic!("the {name} pass produced invalid IR: {e}\n{f}");
                }
            }
        }
        if !changed {
            break;
        }
    }
}

/// Simplifies the body of every loop of `f`, in place.
fn simplify_bodies(f: &mut Function) {
    for l in f.loops_mut() {
        let step = (0, l.trips as i64 - 1);
        simplify_in(&mut l.body, Some(step));
    }
}

/// The number every element of `v` holds, if `v` is a constant filled with
/// one number: a scalar `const`, a `const` tensor of equal elements, or a
/// `broadcast` of either.
pub fn splat_value(f: &Function, v: Value) -> Option<f64> {
    let inst = f.inst(v);
    match &inst.op {
        Op::Const(c) => {
            let first = *c.0.data.first()?;
            c.0.data.iter().all(|&x| x == first).then_some(first)
        }
        Op::Broadcast(_) => splat_value(f, inst.args[0]),
        _ => None,
    }
}

/// Pushes the canonical constant of `shape` filled with `x`: `const x`, then
/// `broadcast` unless `shape` is a scalar.
pub fn splat(out: &mut Function, x: f64, shape: &Shape, span: Span) -> Value {
    let c = out.push(Op::Const(ConstData(Tensor::scalar(x))), vec![], span);
    fit(out, c, shape, span)
}

/// Pushes a constant tensor in canonical form: a tensor of bitwise-equal
/// elements becomes a [`splat`].
pub fn constant(out: &mut Function, t: Tensor, span: Span) -> Value {
    match t.data.first() {
        Some(&x) if !t.shape.is_scalar() && t.data.iter().all(|y| y.to_bits() == x.to_bits()) => {
            splat(out, x, &t.shape, span)
        }
        _ => out.push(Op::Const(ConstData(t)), vec![], span),
    }
}

/// `v` itself if it has `shape`, else `v` (a scalar) broadcast to `shape`.
pub fn fit(out: &mut Function, v: Value, shape: &Shape, span: Span) -> Value {
    if out.shape(v) == shape {
        v
    } else {
        out.push(Op::Broadcast(shape.clone()), vec![v], span)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{
        all_finite, assert_same_outputs, check, parse, random_function, sexpr, Rng,
    };
    use super::*;
    use crate::ir::{Binary, Output, Role, Slot, Unary};

    fn simplified(f: &mut Function) -> bool {
        simplify(f);
        true
    }

    #[test]
    fn simplify_reaches_a_fixpoint() {
        check(simplified, "(add (mul x 1) (mul 0 y))", "x");
        check(simplified, "(sum (mul (broadcast (add 1 1)) (exp 0)))", "6");
        check(
            simplified,
            "(add (mul a 2) (mul 2 a))",
            "(add (mul a 2) (mul a 2))",
        );
        check(simplified, "(neg (mul -1 (pow x 1)))", "x");
        check(simplified, "(select (gt 2 1) (log x) (exp x))", "(log x)");
    }

    #[test]
    fn simplify_keeps_names_and_outputs() {
        let sp = Span::new(3, 4);
        let slot = |n: &str| Slot {
            name: n.to_string(),
            shape: Shape::vector(2),
        };
        let mut f = Function::new(vec![slot("w")], vec![slot("x")]);
        let w = f.push(Op::Param(0), vec![], sp);
        f.set_name(w, "w");
        let x = f.push(Op::Input(0), vec![], sp);
        f.set_name(x, "x");
        let one = f.push(Op::Const(ConstData(Tensor::scalar(1.0))), vec![], sp);
        let wx = f.push(Op::Binary(Binary::Mul), vec![w, x], sp);
        let y = f.push(Op::Binary(Binary::Mul), vec![wx, one], sp);
        f.set_name(y, "y");
        let unused = f.push(Op::Unary(Unary::Exp), vec![y], sp);
        f.set_name(unused, "unused");
        let x2 = f.push(Op::Input(0), vec![], sp);
        let z = f.push(Op::Binary(Binary::Mul), vec![w, x2], sp);
        let s = f.push(Op::Sum, vec![z], sp);
        f.set_name(s, "s");
        f.outputs.push(Output {
            role: Role::Output,
            name: "y".to_string(),
            value: y,
        });
        f.outputs.push(Output {
            role: Role::Loss,
            name: "loss".to_string(),
            value: s,
        });
        let w0 = Tensor::new(Shape::vector(2), vec![0.5, -2.0]);
        let x0 = Tensor::new(Shape::vector(2), vec![3.0, 1.0]);
        let before = crate::ir::interp::run_outputs(
            &f,
            std::slice::from_ref(&w0),
            std::slice::from_ref(&x0),
        )
        .unwrap();
        simplify(&mut f);
        let after = crate::ir::interp::run_outputs(&f, &[w0], &[x0]).unwrap();
        let tensors =
            |outs: Vec<(Output, Tensor)>| outs.into_iter().map(|o| o.1).collect::<Vec<_>>();
        assert_eq!(tensors(before), tensors(after));
        let expected = "\
fn params(w: [2]) inputs(x: [2]) {
  %w = param w : [2]
  %x = input x : [2]
  %y = mul %w, %x : [2]
  %s = sum %y : []
  return
    output y %y
    loss %s
}
";
        assert_eq!(f.to_string(), expected);
        assert!(f.insts().iter().all(|i| i.span == sp));
    }

    #[test]
    fn simplify_keeps_random_programs_equal() {
        let mut rng = Rng::new(7);
        let mut tried = 0;
        while tried < 500 {
            let f = random_function(&mut rng, 24);
            // Zero annihilating a NaN or inf changes numbers on purpose.
            if !all_finite(&f) {
                continue;
            }
            tried += 1;
            let mut g = f.clone();
            simplify(&mut g);
            assert_same_outputs(&f, &g);
            assert!(g.insts().len() <= f.insts().len(), "{f}\n{g}");
            // A fixpoint: no pass finds anything more.
            for (name, pass) in PASSES {
                assert!(!pass(&mut g), "{name} finds more:\n{f}\n{g}");
            }
        }
    }

    #[test]
    fn helpers_build_canonical_constants() {
        let mut f = parse("x");
        let v = splat(&mut f, 0.0, &Shape::vector(3), Span::default());
        assert_eq!(sexpr(&f, v), "(broadcast 0)");
        assert_eq!(splat_value(&f, v), Some(0.0));
        let t = Tensor::new(Shape::vector(2), vec![2.0, 2.0]);
        let c = constant(&mut f, t, Span::default());
        assert_eq!(sexpr(&f, c), "(broadcast 2)");
        let t = Tensor::new(Shape::vector(2), vec![1.0, 2.0]);
        let c = constant(&mut f, t, Span::default());
        assert_eq!(sexpr(&f, c), "[1, 2]");
        assert_eq!(splat_value(&f, c), None);
    }
}
