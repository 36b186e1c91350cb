//! Batched products with a matrix fixed over the batch: `W @ x` reading
//! `W`'s transpose, weight gradients as one `G^T X`, products computed a
//! chunk of examples at a time, and the stages they cut the body into.

use super::*;

#[test]
fn matrix_vector_products_of_computed_and_varying_matrices() {
    // W computed from a parameter (fixed over a batch: its transpose is
    // made once per call), used twice; and a matrix that is an input.
    let (mut f, p, x) = function(&[Shape::matrix(7, 9)], &[Shape::vector(9)]);
    let w = push(&mut f, Op::Unary(Unary::Tanh), &[p[0]]);
    let y = push(&mut f, Op::MatMul, &[w, x[0]]);
    output(&mut f, y);
    let z = push(&mut f, Op::MatMul, &[w, x[0]]);
    let z = push(&mut f, Op::Binary(Binary::Mul), &[z, y]);
    output(&mut f, z);
    agree_on_values(&f);
    // W also times a parameter: that product runs before the loop, before
    // W's transpose is made.
    let (mut f, p, x) = function(
        &[Shape::matrix(7, 9), Shape::vector(9)],
        &[Shape::vector(9)],
    );
    let fixed = push(&mut f, Op::MatMul, &[p[0], p[1]]);
    let y = push(&mut f, Op::MatMul, &[p[0], x[0]]);
    let z = push(&mut f, Op::Binary(Binary::Add), &[fixed, y]);
    output(&mut f, z);
    agree_on_values(&f);
    // (Odd salts: finite values only, so that a wrong product shows.)
    let examples: Vec<Vec<Tensor>> = (0..5).map(|s| tensors(&f, false, 201 + 2 * s)).collect();
    agree_batched(&f, &tensors(&f, true, 101), &examples);
    // W times a vector and a matrix of the example: only the first reads
    // the transpose.
    let (mut f, p, x) = function(
        &[Shape::matrix(7, 9)],
        &[Shape::vector(9), Shape::matrix(9, 3)],
    );
    let y = push(&mut f, Op::MatMul, &[p[0], x[0]]);
    output(&mut f, y);
    let y = push(&mut f, Op::MatMul, &[p[0], x[1]]);
    output(&mut f, y);
    agree_on_values(&f);
    let examples: Vec<Vec<Tensor>> = (0..5).map(|s| tensors(&f, false, 201 + 2 * s)).collect();
    agree_batched(&f, &tensors(&f, true, 101), &examples);
    let (mut f, p, x) = function(&[Shape::vector(9)], &[Shape::matrix(10, 9)]);
    let y = push(&mut f, Op::MatMul, &[x[0], p[0]]);
    output(&mut f, y);
    agree_on_values(&f);
}

#[test]
fn outer_products_summed_over_the_batch_as_one_product() {
    for (m, n) in [(2, 3), (7, 9), (1, 1), (5, 1), (1, 6)] {
        // An outer product of a parameter and an input, and one of two
        // values of the example: each only an output (a mean, in place).
        let (mut f, p, x) = function(&[Shape::vector(m)], &[Shape::vector(n)]);
        let y = push(&mut f, Op::Outer, &[p[0], x[0]]);
        output(&mut f, y);
        let e = push(&mut f, Op::Unary(Unary::Exp), &[x[0]]);
        let s = push(&mut f, Op::Unary(Unary::Sin), &[p[0]]);
        let s = push(&mut f, Op::Binary(Binary::Mul), &[s, p[0]]);
        let s = push(&mut f, Op::Sum, &[s]);
        let s = push(&mut f, Op::Binary(Binary::Mul), &[s, x[0]]);
        let z = push(&mut f, Op::Outer, &[e, s]);
        output(&mut f, z);
        // The same value as two outputs (not in place).
        output(&mut f, z);
        agree_on_values(&f);
        let means = as_means(&f);
        // Batches of more than one chunk: the product is added chunk by
        // chunk.
        let p = tensors(&f, true, 100);
        for n in [plan::CHUNK, plan::CHUNK + 1, 2 * plan::CHUNK + 3] {
            let examples: Vec<Vec<Tensor>> =
                (0..n as u64).map(|s| tensors(&f, false, 300 + s)).collect();
            agree_batched(&f, &p, &examples);
        }
        let plan = plan::batch::batch_plan(&means, false);
        let in_place: Vec<Value> = plan.outer_means.iter().map(|o| o.inst).collect();
        assert_eq!(in_place, vec![y]);
    }
}

#[test]
fn matrix_vector_products_computed_a_chunk_at_a_time() {
    for (m, k) in [(2, 5), (7, 9), (8, 5), (9, 12), (17, 6), (16, 20)] {
        // W (a parameter, and W computed from it) times an input; the same
        // product twice; and W times a computed vector, in a second stage.
        let (mut f, p, x) = function(&[Shape::matrix(m, k)], &[Shape::vector(k)]);
        let w = push(&mut f, Op::Unary(Unary::Tanh), &[p[0]]);
        let y = push(&mut f, Op::MatMul, &[p[0], x[0]]);
        output(&mut f, y);
        let z = push(&mut f, Op::MatMul, &[w, x[0]]);
        let z2 = push(&mut f, Op::MatMul, &[w, x[0]]);
        let s = push(&mut f, Op::Binary(Binary::Mul), &[z, z2]);
        output(&mut f, s);
        let e = push(&mut f, Op::Unary(Unary::Exp), &[x[0]]);
        let v = push(&mut f, Op::MatMul, &[w, e]);
        output(&mut f, v);
        agree_on_values(&f);
        let params = tensors(&f, true, 101);
        for n in [1, 7, plan::CHUNK, plan::CHUNK + 1, 600] {
            // (Odd salts: finite values only, so that a wrong product shows.)
            let examples: Vec<Vec<Tensor>> = (0..n as u64)
                .map(|s| tensors(&f, false, 201 + 2 * s))
                .collect();
            agree_batched(&f, &params, &examples);
        }
        let plan = plan::batch::batch_plan(&as_means(&f), false);
        let chunked: Vec<Value> = plan.products.iter().map(|o| o.inst).collect();
        assert_eq!(chunked, vec![y, z, z2, v], "{m} x {k}");
        // W @ exp(x) in a second stage, exp(x) kept per example for it.
        assert_eq!(plan.stage[v], 1);
        assert_eq!(plan.layout.stages.len(), 2);
        assert!(plan.kept_of(e).is_some());
    }
}

#[test]
fn staged_batches_fail_at_the_example_the_interpreter_fails() {
    // one_hot of an input: in the first stage, before W @ exp(x).
    let (mut f, p, x) = function(&[Shape::matrix(7, 9)], &[Shape::scalar(), Shape::vector(9)]);
    let oh = push(&mut f, Op::OneHot(7), &[x[0]]);
    let e = push(&mut f, Op::Unary(Unary::Exp), &[x[1]]);
    let v = push(&mut f, Op::MatMul, &[p[0], e]);
    let y = push(&mut f, Op::Binary(Binary::Mul), &[oh, v]);
    let z = push(&mut f, Op::Sum, &[y]);
    output(&mut f, z);
    let g = as_means(&f);
    let plan = plan::batch::batch_plan(&g, false);
    assert_eq!(plan.layout.stages.len(), 2);
    let jit = compile_batched(&g).unwrap();
    let params = tensors(&g, true, 101);
    let n = 600;
    let xs: Vec<f64> = (0..n * 9).map(|i| (i % 13) as f64 / 13.0).collect();
    for bad in [None, Some(0), Some(5), Some(300), Some(599)] {
        let mut classes: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
        if let Some(b) = bad {
            // The last example fails too, later.
            classes[n - 1] = 8.0;
            classes[b] = 7.0;
        }
        let got = jit.run(&params, &[&classes, &xs], n);
        match bad {
            None => {
                let examples: Vec<Vec<Tensor>> = (0..n)
                    .map(|i| {
                        vec![
                            Tensor::scalar(classes[i]),
                            Tensor::new(Shape::vector(9), xs[i * 9..i * 9 + 9].to_vec()),
                        ]
                    })
                    .collect();
                agree_batched(&f, &params, &examples);
                got.unwrap();
            }
            Some(b) => {
                let inputs = [
                    Tensor::scalar(classes[b]),
                    Tensor::new(Shape::vector(9), xs[b * 9..b * 9 + 9].to_vec()),
                ];
                let want = interp::run_outputs(&g, &params, &inputs).unwrap_err();
                assert!(matches!(want, RunError::Fault { at, .. } if at == oh));
                assert_eq!(got.unwrap_err(), want.in_example(Some(b)));
            }
        }
    }
    // A one_hot of a value of the second stage: no stages.
    let c = push(&mut f, Op::Sum, &[v]);
    let oh2 = push(&mut f, Op::OneHot(3), &[c]);
    let s = push(&mut f, Op::Sum, &[oh2]);
    output(&mut f, s);
    let plan = plan::batch::batch_plan(&as_means(&f), false);
    assert_eq!(plan.layout.stages.len(), 1);
}

#[test]
fn vector_matrix_products_computed_a_chunk_at_a_time() {
    for (k, m) in [(5, 2), (9, 7), (12, 9), (6, 17), (20, 16)] {
        // x @ W of an input, and of a computed vector in a second stage.
        let (mut f, p, x) = function(&[Shape::matrix(k, m)], &[Shape::vector(k)]);
        let y = push(&mut f, Op::MatMul, &[x[0], p[0]]);
        output(&mut f, y);
        let e = push(&mut f, Op::Unary(Unary::Sin), &[x[0]]);
        let v = push(&mut f, Op::MatMul, &[e, p[0]]);
        let s = push(&mut f, Op::Sum, &[v]);
        output(&mut f, s);
        agree_on_values(&f);
        let params = tensors(&f, true, 103);
        for n in [1, 7, plan::CHUNK, plan::CHUNK + 1, 600] {
            let examples: Vec<Vec<Tensor>> = (0..n as u64)
                .map(|s| tensors(&f, false, 401 + 2 * s))
                .collect();
            agree_batched(&f, &params, &examples);
        }
        let plan = plan::batch::batch_plan(&as_means(&f), false);
        let chunked: Vec<(Value, usize)> =
            plan.products.iter().map(|o| (o.inst, o.stage)).collect();
        assert_eq!(chunked, vec![(y, 0), (v, 1)], "{k} x {m}");
    }
}

#[test]
fn values_too_large_to_keep_per_example_run_in_one_stage() {
    let k = plan::MAX_KEPT / plan::CHUNK + 1;
    let (mut f, p, x) = function(&[Shape::matrix(2, k)], &[Shape::vector(k)]);
    let e = push(&mut f, Op::Unary(Unary::Sin), &[x[0]]);
    let v = push(&mut f, Op::MatMul, &[p[0], e]);
    output(&mut f, v);
    let plan = plan::batch::batch_plan(&as_means(&f), false);
    assert_eq!(plan.layout.stages.len(), 1);
    assert!(plan.products.is_empty() && plan.kept.is_empty());
    let examples: Vec<Vec<Tensor>> = (0..3).map(|s| tensors(&f, false, 501 + 2 * s)).collect();
    agree_batched(&f, &tensors(&f, true, 105), &examples);
}

/// A product of short dot products (four terms or fewer) is the kernel's
/// when its numbers are in `plan::SHORT_KERNEL` (`ht`'s skinning), the
/// generated code's below and above: the interpreter's bits either way, on
/// one example and in batches, whether the operands are parameters or
/// inputs.
#[test]
fn short_dot_products_of_a_mid_sized_product_are_the_kernels() {
    for (m, k, n, kernel) in [
        (66, 4, 544, true),
        (64, 1, 256, true),
        (127, 3, 1031, true),
        (63, 4, 260, false),
        (128, 2, 1024, false),
        (64, 5, 256, true),
    ] {
        let (mut f, p, x) = function(&[Shape::matrix(m, k)], &[Shape::matrix(k, n)]);
        let y = push(&mut f, Op::MatMul, &[p[0], x[0]]);
        output(&mut f, y);
        assert_eq!(plan::kernel_product(&f, y), kernel, "{m} x {k} x {n}");
        agree_on_values(&f);
    }
}
