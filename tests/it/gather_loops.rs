//! The reverse of a gather in a loop: each step's row (`x[idx[t]]`, an
//! index at the step) or rows (`x[pairs[t]]`, a tensor of indices) are
//! added in place into the running sum of `x`'s cotangent (`index_add
//! %dx`, `scatter_add %dx`: a row's work a step), not into zeros of `x`'s
//! size added to the sum; a gather outside a loop (`x[idx]`) is one
//! `gather`, its reverse one `scatter_add`. The gradient against the
//! scatter-add written by hand, central differences, and every engine with
//! the interpreter's bits; and the program run again on the buffers of its
//! last run.

use gradc::autodiff::check::{gradients, numeric_gradients, relative_error};

use crate::common::{compile, same_bits_on_every_engine, same_fault_on_every_engine};

const SRC: &str = "param x: [6, 3] = uniform(-1, 1)\n\
    let idx = [4, 0, 4, 2, 4, 0, 5, 1]\n\
    let pairs = [[4, 0], [0, 4], [2, 2]]\n\
    let w = [1, 2, 3, 4, 5, 6, 7, 8]\n\
    let chain = loop s = 0 for t in 0..3 { s + (t + 1) * sum(x[idx[t]] * x[idx[t + 1]]) + sum(x[pairs[t]]^3) }\n\
    loss sum(w * sum(x[idx]^2, axis = 1)) + chain\n";

#[test]
fn a_gathers_reverse_adds_each_row_in_place() {
    let c = compile(SRC);
    let g = c.gradient().unwrap();
    let text = g.to_string();
    for want in ["= gather %x, %idx", "= scatter_add %dx", "= index_add %"] {
        assert!(text.contains(want), "`{want}`:\n{text}");
    }
    assert!(
        !text.contains("= add %dx"),
        "no sum of the size of `x` a step:\n{text}"
    );
    let params = c.initial_params(3);
    let x = &params[0].data;
    let (idx, pairs, w) = (
        [4, 0, 4, 2, 4, 0, 5, 1],
        [[4, 0], [0, 4], [2, 2]],
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
    );
    // By hand: 2 w_t x[idx_t] into row idx_t, then the loop's products
    // and cubes.
    let mut want = [0.0; 18];
    for (t, &r) in idx.iter().enumerate() {
        for j in 0..3 {
            want[r * 3 + j] += 2.0 * w[t] * x[r * 3 + j];
        }
    }
    for t in 0..3 {
        let (a, b) = (idx[t], idx[t + 1]);
        for j in 0..3 {
            want[a * 3 + j] += (t + 1) as f64 * x[b * 3 + j];
            want[b * 3 + j] += (t + 1) as f64 * x[a * 3 + j];
        }
        for r in pairs[t] {
            for j in 0..3 {
                want[r * 3 + j] += 3.0 * x[r * 3 + j] * x[r * 3 + j];
            }
        }
    }
    let (_, got) = gradients(&g, &params, &[]).unwrap();
    let numeric = numeric_gradients(&c.ir, &params, &[]).unwrap();
    for (k, &h) in want.iter().enumerate() {
        let (a, n) = (got[0].data[k], numeric[0].data[k]);
        if k / 3 == 3 {
            // Row 3 is gathered by no index.
            assert_eq!(a, 0.0, "x[3]: {a}");
            continue;
        }
        assert!(
            relative_error(a, h) < 1e-12,
            "x[{k}]: {a} against {h} by hand"
        );
        assert!(
            relative_error(a, n) < 1e-6,
            "x[{k}]: {a} against {n} by differences"
        );
    }
    same_bits_on_every_engine(&g, &params, &[]);
}

/// A program run again on the buffers of its last run (`Evaluator::runner`,
/// as `gradc gradbench` repeats a function) gives, at other parameters,
/// the bits of a run on fresh buffers: nothing of a run is left over for
/// the next.
#[test]
fn a_run_on_the_buffers_of_the_last_gives_a_fresh_runs_bits() {
    use gradc::eval::{Evaluator, Mode};
    let c = compile(SRC);
    let g = c.gradient().unwrap();
    let jit = Evaluator::compile(&g, Mode::PerExample).unwrap();
    let mut runner = jit.runner();
    let bits = |ts: &[gradc::shape::Tensor]| -> Vec<u64> {
        ts.iter()
            .flat_map(|t| t.data.iter().map(|x| x.to_bits()))
            .collect()
    };
    let mut seen = Vec::new();
    for seed in [3, 4, 5] {
        let params = c.initial_params(seed);
        let want = bits(&jit.outputs(&params, &[]).unwrap());
        assert_eq!(bits(runner.run(&params, &[]).unwrap()), want, "seed {seed}");
        assert_eq!(bits(runner.last()), want, "seed {seed}");
        seen.push(want);
    }
    assert!(seen[0] != seen[1] && seen[1] != seen[2], "the runs differ");
}

/// A gather the same at every step (`A[rows]`, its indices an input) is
/// done once, before the loop, when nothing before it in the body can
/// fail; after an index that can (`A[at[t]]`), it stays in the body, so
/// that the first bad index is still the first in the program's order:
/// the same fault from every engine.
#[test]
fn an_invariant_gather_leaves_its_loop_only_before_anything_that_can_fail() {
    use gradc::ir::Op;
    use gradc::shape::{Shape, Tensor};
    let c = compile(
        "param A: [3, 2] = uniform(-1, 1)\ninput rows: [4]\ninput rows2: [4]\ninput at: [2]\n\
         let s = loop acc = 0 for t in 0..2 { acc + sum(A[rows]) * A[at[t]][0] }\n\
         let u = loop acc = 0 for t in 0..2 { acc + A[at[t]][1] * sum(A[rows2]^2) }\n\
         loss s + u\n",
    );
    let f = &c.ir;
    let outside = f.insts().iter().filter(|i| i.op == Op::Gather).count();
    let inside: Vec<usize> = f
        .insts()
        .iter()
        .filter_map(|i| match &i.op {
            Op::Loop(l) => Some(l.body.insts().iter().filter(|j| j.op == Op::Gather).count()),
            _ => None,
        })
        .collect();
    assert_eq!((outside, inside), (1, vec![0, 1]), "{f}");
    let params = c.initial_params(1);
    let v = |x: &[f64]| Tensor::new(Shape::vector(x.len()), x.to_vec());
    let (good, bad) = ([0.0, 2.0, 1.0, 2.0], [0.0, 5.0, 1.0, 9.0]);
    for (rows, at, rows2, first) in [
        (bad, [7.0, 0.0], bad, "index 5 "),
        (good, [7.0, 0.0], bad, "index 7 "),
        (good, [1.0, 0.0], bad, "index 5 "),
        (good, [1.0, 0.0], [0.0, 1.0, 1.0, 3.0], "index 3 "),
    ] {
        let x = [v(&rows), v(&rows2), v(&at)];
        let fault = same_fault_on_every_engine(f, &params, &x);
        assert!(fault.to_string().contains(first), "{fault}");
    }
    let x = [v(&good), v(&[2.0, 2.0, 0.0, 1.0]), v(&[1.0, 0.0])];
    let g = c.gradient().unwrap();
    for e in gradc::autodiff::check::check(f, &g, &params, &x).unwrap() {
        assert!(e.max_rel_error < 1e-6, "{e:?}");
    }
    same_bits_on_every_engine(&g, &params, &x);
}
