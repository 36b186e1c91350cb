//! Gathers: an index computed at run time (`logits[y]`, `E[tok]`), and a
//! tensor of indices (`E[toks]`, NumPy's fancy indexing), their gradients
//! (a scatter-add: repeated indices sum), and an index out of range.

use gradc::autodiff::check;
use gradc::eval::{Evaluator, Mode};
use gradc::shape::{Shape, Tensor};

use crate::common::compile;

const MODES: [Mode; 3] = [Mode::Interp, Mode::PerExample, Mode::Batched];

const EMBEDDING: &str = "param E: [6, 3] = normal(0, 1)\n\
                         param W: [4, 3] = normal(0, 0.5)\n\
                         input toks: [2, 2]\ninput y\n\
                         let e = E[toks]\n\
                         let logits = W @ (sum(e[0]) + e[1][1])\n\
                         loss -log_softmax(logits)[y]\n\
                         output emb = e\n";

fn inputs(toks: [f64; 4], y: f64) -> Vec<Tensor> {
    vec![
        Tensor::new(Shape::matrix(2, 2), toks.to_vec()),
        Tensor::scalar(y),
    ]
}

/// `E[toks]` has shape `toks.shape + E.shape[1:]` and holds the rows named,
/// on every engine, the same bits.
#[test]
fn a_tensor_of_indices_gathers_rows_in_its_shape() {
    let c = compile(EMBEDDING);
    let params = c.initial_params(0);
    let x = inputs([0.0, 5.0, 5.0, 2.0], 1.0);
    let mut results = Vec::new();
    for mode in MODES {
        let e = Evaluator::compile(&c.ir, mode).unwrap();
        let outs = e.outputs(&params, &x).unwrap();
        let emb = &outs[1];
        assert_eq!(emb.shape, Shape(vec![2, 2, 3]), "{mode:?}");
        let row = |r: usize| &params[0].data[3 * r..3 * r + 3];
        for (k, r) in [0, 5, 5, 2].into_iter().enumerate() {
            assert_eq!(&emb.data[3 * k..3 * k + 3], row(r), "{mode:?}");
        }
        results.push(outs);
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
}

/// The gradient of a gather adds each row's cotangent to the row it came
/// from (twice for an index given twice), against central differences, and
/// every engine gives the interpreter's bits.
#[test]
fn the_gradient_of_a_gather_is_a_scatter_add() {
    let c = compile(EMBEDDING);
    let g = c.gradient().unwrap();
    let params = c.initial_params(0);
    let x = inputs([0.0, 5.0, 5.0, 2.0], 3.0);
    let errors = check::check(&c.ir, &g, &params, &x).unwrap();
    for e in &errors {
        assert!(e.max_rel_error < 1e-6, "{e:?}");
    }
    let want = Evaluator::compile(&g, Mode::Interp)
        .unwrap()
        .outputs(&params, &x)
        .unwrap();
    for mode in MODES {
        let got = Evaluator::compile(&g, mode)
            .unwrap()
            .outputs(&params, &x)
            .unwrap();
        let bits = |ts: &[Tensor]| -> Vec<u64> {
            ts.iter()
                .flat_map(|t| t.data.iter().map(|v| v.to_bits()))
                .collect()
        };
        assert_eq!(bits(&got), bits(&want), "{mode:?}");
    }
    // Rows never named get no gradient.
    let de = g
        .outputs
        .iter()
        .position(|o| o.name == "E" && matches!(o.role, gradc::ir::Role::Grad(_)))
        .unwrap();
    for r in [1, 3, 4] {
        assert!(want[de].data[3 * r..3 * r + 3].iter().all(|&v| v == 0.0));
    }
}

/// An index out of range, from an input, is a fault at the gather's line,
/// from every engine.
#[test]
fn an_index_out_of_range_is_a_fault_at_the_gather() {
    let c = compile(EMBEDDING);
    let params = c.initial_params(0);
    for (toks, y) in [([0.0, 6.0, 1.0, 1.0], 0.0), ([0.0, 1.0, 1.0, 1.0], 4.0)] {
        let x = inputs(toks, y);
        let want = Evaluator::compile(&c.ir, Mode::Interp)
            .unwrap()
            .outputs(&params, &x)
            .unwrap_err();
        let msg = want.to_string();
        assert!(msg.contains("out of range for an axis of length"), "{msg}");
        for mode in [Mode::PerExample, Mode::Batched] {
            let got = Evaluator::compile(&c.ir, mode)
                .unwrap()
                .outputs(&params, &x)
                .unwrap_err();
            assert_eq!(got, want, "{mode:?}");
        }
    }
}
