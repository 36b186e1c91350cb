//! Work the same at every step of a loop leaves its body, loops included:
//! a loop in a comprehension's body that reads nothing of the step (the
//! primal work of a `jvp` taken in a comprehension, a forward-mode
//! Jacobian's columns) runs once, before the comprehension. An operation
//! that can fail leaves only if nothing before it in the body that can fail
//! stays, so that the first fault is still the first in the program's
//! order; a `one_hot` or a row of the step's number in range cannot fail.

use gradc::eval::{Evaluator, Mode};
use gradc::ir::{Function, Op};
use gradc::shape::{Shape, Tensor};

use crate::common::{compile, same_bits_on_every_engine, same_fault_on_every_engine};

/// How many loops each comprehension of `f` (a loop of `trips` steps) holds
/// in its body.
fn loops_inside(f: &Function, trips: usize) -> Vec<usize> {
    f.insts()
        .iter()
        .filter_map(|i| match &i.op {
            Op::Loop(l) if l.trips == trips => Some(
                l.body
                    .insts()
                    .iter()
                    .filter(|j| matches!(j.op, Op::Loop(_)))
                    .count(),
            ),
            _ => None,
        })
        .collect()
}

/// A forward-mode Jacobian by a comprehension of `jvp`s, its directions
/// rows of a matrix (`D[k]`, a row of the step in range, which cannot
/// fail): the tangent of `sin(P @ x)` reads `P`, a batched product (a loop
/// over the batch) that the `jvp` computes again in the body; that loop
/// leaves the comprehension, the tangent's stays. The Jacobian is the one
/// written out a column at a time, on every engine, with the interpreter's
/// bits, and the loss's gradient is right.
#[test]
fn a_jvps_primal_loop_leaves_the_comprehension_of_its_columns() {
    let body = "param R: [4, 2, 2] = uniform(-1, 1)\nparam th: [4] = uniform(-1, 1)\n\
        input x: [2, 3]\n\
        let D = [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 1, 0]]\n\
        let S = R * reshape(th, [4, 1, 1])\n\
        let e = sin(sum(S @ S, axis = 0) @ x)\n";
    let c = compile(&format!(
        "{body}output J = [jvp(e, th, D[k]) for k in 0..3]\nloss sum(e^2)\n"
    ));
    let f = &c.ir;
    // The comprehension's body keeps the tangent's batched product alone.
    assert_eq!(loops_inside(f, 3), vec![1], "{f}");
    let columns = compile(&format!(
        "{body}output J = stack(jvp(e, th, D[0]), jvp(e, th, D[1]), jvp(e, th, D[2]))\n\
         loss sum(e^2)\n"
    ));
    let x = [Tensor::new(
        Shape::matrix(2, 3),
        vec![0.3, -0.7, 0.1, 0.5, 0.2, -0.4],
    )];
    for seed in [1, 2] {
        let params = c.initial_params(seed);
        same_bits_on_every_engine(f, &params, &x);
        let run = |f: &Function| {
            Evaluator::compile(f, Mode::PerExample)
                .unwrap()
                .outputs(&params, &x)
                .unwrap()
        };
        let (got, want) = (run(f), run(&columns.ir));
        assert_eq!(got[1].shape, Shape(vec![3, 2, 3]));
        for (g, w) in got[1].data.iter().zip(&want[1].data) {
            assert!(
                (g - w).abs() <= 1e-15 * w.abs().max(1.0),
                "{got:?} {want:?}"
            );
        }
        assert!(got[1].data.iter().all(|&v| v != 0.0), "{got:?}");
    }
    let g = c.gradient().unwrap();
    let params = c.initial_params(3);
    for e in gradc::autodiff::check::check(f, &g, &params, &x).unwrap() {
        assert!(e.max_rel_error < 1e-6, "{e:?}");
    }
    same_bits_on_every_engine(&g, &params, &x);
}

/// A loop that can fail (it reads `A[bad]`) leaves a comprehension's body
/// when nothing before it there can fail; after an index that can
/// (`A[at[k]]`), it stays, and the first bad index in the program's order
/// is the fault every engine reports.
#[test]
fn a_loop_that_can_fail_leaves_only_before_anything_that_can_fail() {
    let loop_first = "param A: [3] = uniform(-1, 1)\ninput at: [2]\ninput bad\n\
        let s = [(loop acc = 0 for i in 0..4 { acc + A[bad] * i }) + A[at[k]] for k in 0..2]\n\
        loss sum(s^2)\n";
    let index_first = "param A: [3] = uniform(-1, 1)\ninput at: [2]\ninput bad\n\
        let s = [A[at[k]] + (loop acc = 0 for i in 0..4 { acc + A[bad] * i }) for k in 0..2]\n\
        loss sum(s^2)\n";
    let (a, b) = (compile(loop_first), compile(index_first));
    assert_eq!(loops_inside(&a.ir, 2), vec![0], "{}", a.ir);
    assert_eq!(loops_inside(&b.ir, 2), vec![1], "{}", b.ir);
    let v = |x: &[f64]| Tensor::new(Shape::vector(x.len()), x.to_vec());
    for (c, at, bad, first) in [
        (&a, [7.0, 0.0], 5.0, "index 5 "),
        (&b, [7.0, 0.0], 5.0, "index 7 "),
        (&b, [1.0, 0.0], 5.0, "index 5 "),
        (&a, [1.0, 9.0], 2.0, "index 9 "),
    ] {
        let params = c.initial_params(1);
        let x = [v(&at), Tensor::scalar(bad)];
        let fault = same_fault_on_every_engine(&c.ir, &params, &x);
        assert!(fault.to_string().contains(first), "{fault}");
    }
    let x = [v(&[2.0, 0.0]), Tensor::scalar(1.0)];
    for c in [&a, &b] {
        let params = c.initial_params(2);
        same_bits_on_every_engine(&c.ir, &params, &x);
    }
}

/// A `one_hot` of the step into fewer classes than the steps can fail (at
/// the last step here): before an invariant loop, it keeps the loop in the
/// body; into as many classes, it cannot, and the loop leaves.
#[test]
fn a_one_hot_of_the_step_blocks_only_when_a_step_is_out_of_range() {
    let src = |classes: usize| {
        format!(
            "param A: [3] = uniform(-1, 1)\ninput bad\n\
             let s = [dot(one_hot(k, {classes}), A[0:{classes}]) + (loop acc = 0 for i in 0..2 {{ acc + A[bad] }}) for k in 0..3]\n\
             loss sum(s^2)\n"
        )
    };
    let (short, enough) = (compile(&src(2)), compile(&src(3)));
    assert_eq!(loops_inside(&short.ir, 3), vec![1], "{}", short.ir);
    assert_eq!(loops_inside(&enough.ir, 3), vec![0], "{}", enough.ir);
    let params = short.initial_params(1);
    let err = Evaluator::compile(&short.ir, Mode::Interp)
        .unwrap()
        .outputs(&params, &[Tensor::scalar(1.0)])
        .unwrap_err();
    assert!(err.to_string().contains("class index 2 "), "{err}");
}
