//! Loops that read no parameter and no input are computed once
//! (`backend::precompute`): when their function is compiled, as constants of
//! the code, or, above `precompute::MAX_ELEMENTS` numbers, at the first call
//! of a function compiled for one example, which then holds them. Either
//! way the function computes what the interpreter computes, and a failure
//! of such a loop is still reported at its place, when the function runs.

use gradc::eval::{Evaluator, Mode};
use gradc::ir::{Function, Op, RunError};
use gradc::shape::{Shape, Tensor};

use crate::common::{compile, same_bits_on_every_engine};

/// `det`'s way of naming subsets: bit `j` of `s`, by a comprehension.
const TABLES: &str = "param w: [3] = uniform(-1, 1)\n\
                      fn bit(s, j) = floor(s / 2^j) - 2 * floor(s / 2^(j + 1))\n\
                      let IN = [[bit(s, j) for j in 0..3] for s in 0..8]\n\
                      let big = [s * 0.5 for s in 0..70000]\n\
                      loss sum(exp(IN @ w)) + sum(big) * w[0]\n\
                      output table = IN\n";

fn loops(f: &Function) -> usize {
    f.insts()
        .iter()
        .filter(|i| matches!(i.op, Op::Loop(_)))
        .count()
}

#[test]
fn a_loop_of_constants_is_a_constant_of_the_compiled_function() {
    let c = compile(TABLES);
    // Two loops in the program; the table's is computed at compile time, the
    // one of 70,000 numbers (above `precompute::MAX_ELEMENTS`) is left, to
    // be computed at the first call (and kept).
    assert_eq!(loops(&c.ir), 2, "{}", c.ir);
    for mode in [Mode::PerExample, Mode::Batched] {
        let jit = Evaluator::compile(&c.ir, mode).unwrap();
        assert_eq!(loops(jit.function()), 1, "{mode:?}: {}", jit.function());
        let kept = match &jit {
            Evaluator::Jit(j) => j.kept_loops(),
            Evaluator::Batched(b) => b.kept_loops(),
            Evaluator::Interp(_) => panic!("a compiled function"),
        };
        assert_eq!(kept, 1, "{mode:?}: {}", jit.function());
    }
    let jit = Evaluator::compile(&c.ir, Mode::PerExample).unwrap();
    let params = c.initial_params(0);
    let outs = jit.outputs(&params, &[]).unwrap();
    let want: Vec<f64> = (0..8)
        .flat_map(|s| (0..3).map(move |j| ((s >> j) & 1) as f64))
        .collect();
    assert_eq!(outs[1].data, want);
    same_bits_on_every_engine(&c.ir, &params, &[]);
    let g = c.gradient().unwrap();
    same_bits_on_every_engine(&g, &params, &[]);
    let jit = Evaluator::compile(&g, Mode::PerExample).unwrap();
    assert_eq!(loops(jit.function()), 1, "{}", jit.function());
    // The kept loop's value is read at every call, not recomputed, and gives
    // the same answers each time.
    let Evaluator::Jit(j) = &jit else {
        panic!("a function of one example");
    };
    assert_eq!(j.kept_loops(), 1, "{}", jit.function());
    let first = j.run(&params, &[]).unwrap();
    for _ in 0..3 {
        assert_eq!(j.run(&params, &[]).unwrap(), first);
    }
}

#[test]
fn a_constant_loop_that_fails_fails_when_the_function_runs() {
    let dir = crate::common::temp_dir("precompute-fault");
    let file = dir.join("t.grad");
    std::fs::write(
        &file,
        "param w = 1\nlet v = [1, 2]\nlet bad = [v[k + 1] for k in 0..2]\nloss w * sum(bad)\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    for backend in ["jit", "interp"] {
        let (ok, out, err) = crate::common::gradc(&["eval", path, "--backend", backend]);
        assert!(!ok, "{backend}: {out}");
        assert!(
            err.contains("t.grad:3:14: error: index out of range"),
            "{backend}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_kept_loop_that_fails_fails_every_call_at_its_place() {
    // 70,000 numbers: computed at the first call, which fails from k =
    // 40,000 on, as the interpreter does.
    let c = compile(
        "param w = 1\nlet v = [1, 2]\nlet bad = [v[floor(k / 40000) + 1] for k in 0..70000]\n\
         loss w * sum(bad)\n",
    );
    let want = gradc::ir::interp::run(&c.ir, &[Tensor::scalar(1.0)], &[]).unwrap_err();
    for mode in [Mode::PerExample, Mode::Batched] {
        let jit = Evaluator::compile(&c.ir, mode).unwrap();
        for _ in 0..2 {
            let got = jit.outputs(&[Tensor::scalar(1.0)], &[]).unwrap_err();
            assert_eq!(got.to_string(), want.to_string(), "{mode:?}");
            let (RunError::Fault { span: a, .. }, RunError::Fault { span: b, .. }) = (&got, &want)
            else {
                panic!("{mode:?}: {got:?} {want:?}");
            };
            assert_eq!(a, b, "{mode:?}");
        }
    }
}

#[test]
fn a_batch_reads_a_kept_loop_for_every_example() {
    // A table of 70,000 numbers, kept by the batched function as a hidden
    // parameter, beside an input that changes with the example.
    let c = compile(
        "param w: [3] = [0.5, -1, 2]\ninput x: [3]\n\
         let big = [s * 0.5 for s in 0..70000]\n\
         loss sum(exp(x * w)) + big[69999] * w[0] + sum(big) * 1e-9\n",
    );
    let jit = Evaluator::compile(&c.ir, Mode::Batched).unwrap();
    let Evaluator::Batched(b) = &jit else {
        panic!("a batched function");
    };
    assert_eq!(b.kept_loops(), 1, "{}", jit.function());
    let params = c.initial_params(0);
    let examples: Vec<Vec<Tensor>> = (0..5)
        .map(|k| {
            vec![Tensor::new(
                Shape::vector(3),
                vec![k as f64, 1.0 - k as f64, 0.25],
            )]
        })
        .collect();
    crate::common::batch_agrees(&c.ir, &params, &examples);
    let g = c.gradient().unwrap();
    crate::common::batch_agrees(&g, &params, &examples);
}

#[test]
fn what_depends_on_a_parameter_is_computed_at_each_call() {
    // The loop reads `w`: it is not a constant, and its value follows `w`.
    let c = compile("param w = 2\nlet p = [w^k for k in 0..4]\nloss sum(p)\n");
    let jit = Evaluator::compile(&c.ir, Mode::PerExample).unwrap();
    for w in [2.0, 3.0] {
        let outs = jit.outputs(&[Tensor::scalar(w)], &[]).unwrap();
        assert_eq!(outs[0].data[0], 1.0 + w + w * w + w * w * w);
    }
}
