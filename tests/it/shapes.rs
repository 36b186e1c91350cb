//! Shape operations: `reshape` (row-major, one -1) and `transpose(x, axes)`
//! (`numpy.transpose`): values, gradients against central differences, and
//! every engine with the interpreter's bits.

use gradc::autodiff::check;
use gradc::eval::{Evaluator, Mode};
use gradc::shape::Tensor;

use crate::common::{compile, same_bits_on_every_engine};

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
        same_bits_on_every_engine(f, &params, &inputs);
    }
}

const JOIN: &str = "param a: [2, 3] = [[1, 2, 3], [4, 5, 6]]\n\
                    param b: [2, 3] = [[7, 8, 9], [10, 11, 12]]\n\
                    param c: [2, 1] = [[-1], [-2]]\n\
                    output s1 = stack(a, b, axis = 1)\n\
                    output s2 = stack(a, b, axis = -1)\n\
                    output c0 = concat(a, b)\n\
                    output c1 = concat(a, c, b, axis = 1)\n\
                    loss sum(stack(a, b, axis = 2)[1][0:2] * concat(a, b, axis = -1)[0:2, 0:2]) \
                      + sum(tanh(concat(c, a, axis = 1)))\n";

/// `stack` and `concat` give NumPy's values along every axis, their
/// gradients match central differences, and every engine gives the
/// interpreter's bits.
#[test]
fn stack_and_concat_join_along_any_axis() {
    let c = compile(JOIN);
    let params = c.initial_params(0);
    let outs = Evaluator::compile(&c.ir, Mode::Interp)
        .unwrap()
        .outputs(&params, &[])
        .unwrap();
    let data = |k: usize| outs[k].data.iter().map(|&v| v as i64).collect::<Vec<_>>();
    assert_eq!(outs[1].shape.dims(), [2, 2, 3]);
    assert_eq!(data(1), [1, 2, 3, 7, 8, 9, 4, 5, 6, 10, 11, 12]);
    assert_eq!(outs[2].shape.dims(), [2, 3, 2]);
    assert_eq!(data(2), [1, 7, 2, 8, 3, 9, 4, 10, 5, 11, 6, 12]);
    assert_eq!(outs[3].shape.dims(), [4, 3]);
    assert_eq!(data(3), (1..=12).collect::<Vec<_>>());
    assert_eq!(outs[4].shape.dims(), [2, 7]);
    assert_eq!(data(4), [1, 2, 3, -1, 7, 8, 9, 4, 5, 6, -2, 10, 11, 12]);
    let g = c.gradient().unwrap();
    for e in check::check(&c.ir, &g, &params, &[]).unwrap() {
        assert!(e.max_rel_error < 1e-6, "{e:?}");
    }
    for f in [&c.ir, &g] {
        same_bits_on_every_engine(f, &params, &[]);
    }
}

/// `tril`, `triu` (with an offset `k`) and `diag` (of a vector, of a
/// matrix) give NumPy's values, exact zeros where they drop elements, and
/// gradients that match central differences.
#[test]
fn triangles_and_diagonals_are_numpys() {
    let src = "param M: [3, 4] = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]\n\
               param v: [3] = [1, -2, 3]\n\
               output l = tril(M)\noutput u = triu(M, k = 1)\noutput l2 = tril(M, -1)\n\
               output dm = diag(M)\noutput dv = diag(v)\n\
               loss sum(tanh(tril(M))) + sum(diag(v) @ M) + sum(diag(M) * v)\n";
    let c = compile(src);
    let params = c.initial_params(0);
    let outs = Evaluator::compile(&c.ir, Mode::Interp)
        .unwrap()
        .outputs(&params, &[])
        .unwrap();
    let data = |k: usize| outs[k].data.iter().map(|&v| v as i64).collect::<Vec<_>>();
    assert_eq!(data(1), [1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0]);
    assert_eq!(data(2), [0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12]);
    assert_eq!(data(3), [0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0]);
    assert_eq!(data(4), [1, 6, 11]);
    assert_eq!(data(5), [1, 0, 0, 0, -2, 0, 0, 0, 3]);
    // Exact zeros, not -0: the dropped elements are chosen, not multiplied.
    assert!(outs[1]
        .data
        .iter()
        .all(|v| v.to_bits() != (-0.0f64).to_bits()));
    let g = c.gradient().unwrap();
    for e in check::check(&c.ir, &g, &params, &[]).unwrap() {
        assert!(e.max_rel_error < 1e-6, "{e:?}");
    }
}
