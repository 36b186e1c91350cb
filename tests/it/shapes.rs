//! Shape operations: `reshape` (row-major, one -1) and `transpose(x, axes)`
//! (`numpy.transpose`): values, gradients against central differences, and
//! every engine with the interpreter's bits.

use gradc::autodiff::check;
use gradc::eval::{Evaluator, Mode};
use gradc::shape::Tensor;

use crate::common::compile;

const MODES: [Mode; 3] = [Mode::Interp, Mode::PerExample, Mode::Batched];

const PROGRAM: &str = "param A: [2, 3, 4] = normal(0, 1)\n\
                       param M: [2, 3] = normal(0, 1)\n\
                       input x: [6]\n\
                       let B = transpose(A, axes = [2, 0, -2])\n\
                       let R = reshape(x, [3, -1])\n\
                       loss sum(B[3] * M) + sum(transpose(B, [1, 2, 0]) * A) \
                         + sum(transpose(R) * M) + sum(tanh(transpose(A)[1]))\n\
                       output b = B\n\
                       output r = R\n";

/// The values are NumPy's: `transpose(A, [2, 0, 1])[k, i, j]` is
/// `A[i, j, k]`, and `reshape` keeps the row-major order.
#[test]
fn transpose_and_reshape_give_numpys_values() {
    let c = compile(PROGRAM);
    let params = c.initial_params(0);
    let x = Tensor::new(
        gradc::shape::Shape::vector(6),
        (0..6).map(f64::from).collect(),
    );
    let outs = Evaluator::compile(&c.ir, Mode::Interp)
        .unwrap()
        .outputs(&params, std::slice::from_ref(&x))
        .unwrap();
    let (a, b) = (&params[0].data, &outs[1]);
    assert_eq!(b.shape.dims(), [4, 2, 3]);
    for i in 0..2 {
        for j in 0..3 {
            for k in 0..4 {
                assert_eq!(b.data[k * 6 + i * 3 + j], a[i * 12 + j * 4 + k]);
            }
        }
    }
    assert_eq!(outs[2].shape.dims(), [3, 2]);
    assert_eq!(outs[2].data, x.data);
}

/// Gradients against central differences; the forward and gradient
/// programs give the interpreter's bits on every engine.
#[test]
fn transpose_and_reshape_differentiate_on_every_engine() {
    let c = compile(PROGRAM);
    let g = c.gradient().unwrap();
    let params = c.initial_params(0);
    let mut rng = <rand_xoshiro::Xoshiro256PlusPlus as rand::SeedableRng>::seed_from_u64(5);
    let inputs = check::random_inputs(&c.ir, &mut rng);
    for e in check::check(&c.ir, &g, &params, &inputs).unwrap() {
        assert!(e.max_rel_error < 1e-6, "{e:?}");
    }
    for f in [&c.ir, &g] {
        let run = |mode| {
            let outs = Evaluator::compile(f, mode)
                .unwrap()
                .outputs(&params, &inputs)
                .unwrap();
            outs.iter()
                .flat_map(|t| t.data.iter().map(|v| v.to_bits()))
                .collect::<Vec<u64>>()
        };
        let want = run(Mode::Interp);
        for mode in MODES {
            assert_eq!(run(mode), want, "{mode:?}");
        }
    }
}
