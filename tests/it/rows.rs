//! A comprehension that rebuilds a tensor with rows replaced, `[if r == i
//! then a else ... else s[r] for r in 0..n]` (an LSTM's state, a layer's
//! rows at a time), is `index_set`s when every index is provably a row:
//! the same numbers as the comprehension (the program as lowered, in the
//! interpreter), its gradient against central differences, every engine
//! with the interpreter's bits. Where an index may name no row, the
//! comprehension stays.

use gradc::autodiff::check::{gradients, numeric_gradients, relative_error};
use gradc::ir::interp::run_outputs;

use crate::common::{compile, same_bits_on_every_engine};

/// Two layers of a recurrence whose state holds each layer's two rows.
const LAYERS: &str = "param w: [4, 3] = uniform(-1, 1)\n\
    param s0: [4, 3] = uniform(-1, 1)\n\
    let s = loop s1 = s0 for i in 0..2 {\n\
      let h = tanh(s1[2 * i] * w[2 * i] + s1[2 * i + 1])\n\
      let c = sigmoid(s1[2 * i + 1] * w[2 * i + 1] - h)\n\
      [if r == 2 * i then h else if r == 2 * i + 1 then c else s1[r] for r in 0..4]\n\
    }\n\
    loss sum(s * s * [1, 2, 3, 4][0])\n";

/// The loss of `c`'s program as lowered (the comprehension, in the
/// interpreter) and as simplified, at `params`.
fn losses(c: &gradc::Compiled, params: &[gradc::shape::Tensor]) -> (f64, f64) {
    let loss = |f: &gradc::ir::Function| run_outputs(f, params, &[]).unwrap()[0].1.data[0];
    (loss(&c.raw), loss(&c.ir))
}

#[test]
fn replaced_rows_are_index_sets() {
    let c = compile(LAYERS);
    let text = c.ir.to_string();
    assert_eq!(text.matches("= index_set ").count(), 2, "{text}");
    assert!(!text.contains("select"), "{text}");
    let g = c.gradient().unwrap();
    let params = c.initial_params(5);
    let (raw, simplified) = losses(&c, &params);
    assert_eq!(raw.to_bits(), simplified.to_bits());
    let (_, got) = gradients(&g, &params, &[]).unwrap();
    let numeric = numeric_gradients(&c.ir, &params, &[]).unwrap();
    for (a, n) in got.iter().zip(&numeric) {
        for (&x, &y) in a.data.iter().zip(&n.data) {
            assert!(relative_error(x, y) < 1e-6, "{x} against {y}:\n{g}");
        }
    }
    same_bits_on_every_engine(&c.ir, &params, &[]);
    same_bits_on_every_engine(&g, &params, &[]);
}

/// Two conditions on the same row: the first one's value, as `if` says.
#[test]
fn the_first_of_two_replacements_of_a_row_wins() {
    let c = compile(
        "param a: [2] = uniform(-1, 1)\n\
         param s0: [3, 2] = uniform(-1, 1)\n\
         let s = [if r == 1 then a else if r == 3 - 2 then 2 * a else s0[r] for r in 0..3]\n\
         loss sum(s * [[1, 2], [3, 4], [5, 6]])\n",
    );
    assert_eq!(
        c.ir.to_string().matches("= index_set ").count(),
        2,
        "{}",
        c.ir
    );
    let params = c.initial_params(2);
    let (a, s0) = (&params[0].data, &params[1].data);
    let want = s0[0] + 2.0 * s0[1] + 3.0 * a[0] + 4.0 * a[1] + 5.0 * s0[4] + 6.0 * s0[5];
    let (raw, simplified) = losses(&c, &params);
    assert!(
        relative_error(simplified, want) < 1e-15,
        "{simplified} against {want}"
    );
    assert_eq!(raw.to_bits(), simplified.to_bits());
    same_bits_on_every_engine(&c.gradient().unwrap(), &params, &[]);
}

/// `2 * i` for `i in 0..3` names row 4 of 4 at the last step, no row: the
/// comprehension stays, and that step replaces nothing.
#[test]
fn an_index_that_may_name_no_row_keeps_the_comprehension() {
    let c = compile(
        "param s0: [4] = uniform(-1, 1)\n\
         let s = loop s1 = s0 for i in 0..3 {\n\
           [if r == 2 * i then s1[r] + 1 else s1[r] for r in 0..4]\n\
         }\n\
         loss sum(s * [1, 2, 3, 4])\n",
    );
    let text = c.ir.to_string();
    assert!(
        !text.contains("index_set") && text.contains("select"),
        "{text}"
    );
    let params = c.initial_params(3);
    let s0 = &params[0].data;
    let want = (s0[0] + 1.0) + 2.0 * s0[1] + 3.0 * (s0[2] + 1.0) + 4.0 * s0[3];
    let (_, simplified) = losses(&c, &params);
    assert!(
        relative_error(simplified, want) < 1e-15,
        "{simplified} against {want}"
    );
    same_bits_on_every_engine(&c.ir, &params, &[]);
}

/// Forward mode over the gradient program, whose forward and reverse
/// passes both replace rows (`index_set`s): the Hessian times a direction,
/// against central differences of the gradient.
#[test]
fn the_hessian_through_replaced_rows_is_the_gradients_derivative() {
    use gradc::driver::jacobian::hvp;
    use gradc::shape::Tensor;
    let c = compile(LAYERS);
    let g = c.gradient().unwrap();
    assert!(g.to_string().matches("= index_set ").count() >= 4, "{g}");
    let params = c.initial_params(7);
    let direction: Vec<Tensor> = params
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let data = (0..p.data.len()).map(|i| ((i + 3 * k) % 5) as f64 / 4.0 - 0.5);
            Tensor::new(p.shape.clone(), data.collect())
        })
        .collect();
    let jit = gradc::eval::Backend::Jit;
    let hv = hvp(&g, &c.source, &params, &[], &direction, jit).unwrap();
    let h = 1e-5;
    let at = |sign: f64| {
        let moved: Vec<Tensor> = params
            .iter()
            .zip(&direction)
            .map(|(p, d)| {
                let data = p.data.iter().zip(&d.data).map(|(x, e)| x + sign * h * e);
                Tensor::new(p.shape.clone(), data.collect())
            })
            .collect();
        gradients(&g, &moved, &[]).unwrap().1
    };
    let (plus, minus) = (at(1.0), at(-1.0));
    for (k, got) in hv.iter().enumerate() {
        for (i, &x) in got.data.iter().enumerate() {
            let numeric = (plus[k].data[i] - minus[k].data[i]) / (2.0 * h);
            assert!(
                relative_error(x, numeric) < 1e-6,
                "parameter {k}[{i}]: {x} against {numeric}"
            );
        }
    }
}

/// A row `x[t]` is read where it is, not copied: a carried value that is
/// a row of another one (`r = A[t]`, while `A` changes in the same step),
/// a row of a value computed in the step, a row as the program's output.
/// Every engine with the interpreter's bits.
#[test]
fn rows_read_in_place_keep_their_values() {
    let c = compile(
        "param A0: [4, 3] = uniform(-1, 1)\n\
         let (A, r) = loop (A, r) = (A0, A0[0]) for t in 0..4 {\n\
           let B = A * 2 + r\n\
           (B - B[3 - t], A[t])\n\
         }\n\
         let rows = loop s = 0 * A0[0] for t in 0..4 { s + (A0 * t)[t] * r }\n\
         output r = r\n\
         output last = [A0[t] * t for t in 0..4][3]\n\
         loss sum(A * A) + sum(rows)\n",
    );
    let params = c.initial_params(4);
    same_bits_on_every_engine(&c.ir, &params, &[]);
    same_bits_on_every_engine(&c.gradient().unwrap(), &params, &[]);
}
