//! A sum along the last axis of a value that a product by the kernel takes
//! as its left operand, or reshaped into it (`gmm`'s `sum(dQx, axis = 2)`
//! and `dQx @ x`), is added up by the kernel as it reads the rows for the
//! product: the same bits as the interpreter's sum, whether the sum comes
//! before the product or after it, on the direct route (its tiles of two,
//! three and four vectors) and the packed one.

use super::*;

/// `X` (an input of shape `dims`), `B` (a parameter, `k` x `n`, `k` the
/// last of `dims`), `P = X' @ B` with `X'` `X` reshaped to rows of `k`
/// (`X` itself if it is a matrix), `S = sum(X, axis = last)` pushed before
/// `P` if `sum_first`, and `2 S`; outputs `P` and `2 S`. With `between`,
/// the sum comes first and the product is `X' @ (B sum(S))`, which needs
/// the sum before it.
fn summed(dims: &[usize], n: usize, sum_first: bool, between: bool) -> (Function, Value, Value) {
    let k = *dims.last().unwrap();
    let x_shape = Shape(dims.to_vec());
    let (mut f, p, x) = function(&[Shape::matrix(k, n)], std::slice::from_ref(&x_shape));
    let rows = x_shape.size() / k;
    let a = if dims.len() == 2 {
        x[0]
    } else {
        let to = Shape::matrix(rows, k);
        push(&mut f, Op::Reshape(to), &[x[0]])
    };
    let last = dims.len() - 1;
    let sum_op = || Op::ReduceAxes(crate::ir::Reduce::Sum, vec![last]);
    let two = push(&mut f, Op::Const(ConstData(Tensor::scalar(2.0))), &[]);
    let (product, sum, twice);
    if sum_first {
        sum = push(&mut f, sum_op(), &[x[0]]);
        if between {
            let total = push(&mut f, Op::Sum, &[sum]);
            let b = push(&mut f, Op::Binary(Binary::Mul), &[p[0], total]);
            product = push(&mut f, Op::MatMul, &[a, b]);
            twice = push(&mut f, Op::Binary(Binary::Mul), &[two, sum]);
        } else {
            product = push(&mut f, Op::MatMul, &[a, p[0]]);
            twice = push(&mut f, Op::Binary(Binary::Mul), &[two, sum]);
        }
    } else {
        product = push(&mut f, Op::MatMul, &[a, p[0]]);
        sum = push(&mut f, sum_op(), &[x[0]]);
        twice = push(&mut f, Op::Binary(Binary::Mul), &[two, sum]);
    }
    output(&mut f, product);
    output(&mut f, twice);
    (f, product, sum)
}

/// Whether this machine's kernel adds up the rows of `A` for nothing in a
/// product of this shape.
fn is_free(shape: (usize, usize, usize)) -> bool {
    use crate::backend::kernel::{summing_is_free, Isa, Route};
    summing_is_free::<f64>((Isa::host(), Route::Auto), shape, 1)
}

/// Whether the layout of `f` computes `sum` in the step of `product`.
fn joined(f: &Function, product: Value, sum: Value) -> bool {
    let layout = plan::layout::layout(f);
    let step = layout.steps.iter().find(|s| s.contains(&product)).unwrap();
    step.contains(&sum) && plan::products::summed_product(f, step) == Some((product, sum))
}

#[test]
fn a_sum_of_a_products_rows_is_the_kernels() {
    // (dims, n), each with the sums in a lane the tiles compute anyway:
    // through a reshape, B 20 columns wide (a tile of three vectors); a
    // matrix of 13 rows (a tile of one row at the end), 40 columns (four
    // vectors and two); 10 columns (two vectors); 300-long rows, 100
    // columns (packed).
    let cases: [(&[usize], usize); 4] = [
        (&[3, 4, 50], 20),
        (&[13, 50], 40),
        (&[4, 3, 40], 10),
        (&[2, 7, 300], 100),
    ];
    for (dims, n) in cases {
        let k = dims[dims.len() - 1];
        let free = is_free((dims.iter().product::<usize>() / k, n, k));
        // 20 columns take three vectors of 8 (AVX-512), six of 4 (AVX2).
        assert!(free || n != 20, "{dims:?} {n}");
        for sum_first in [true, false] {
            let (f, product, sum) = summed(dims, n, sum_first, false);
            assert_eq!(joined(&f, product, sum), free, "{dims:?} {n} {sum_first}");
            agree_on_values(&f);
        }
    }
    let (f, ..) = summed(&[3, 4, 50], 20, true, false);
    let params = tensors(&f, true, 3);
    agree_f32(&f, &params, &[tensors(&f, false, 5), tensors(&f, false, 7)]);
}

/// A sum read before the product, a product too small for the kernel or
/// whose tiles have no lane to spare, or a sum along another axis, is a
/// step of its own.
#[test]
fn a_sum_read_first_or_of_a_small_product_stays_alone() {
    let (f, product, sum) = summed(&[3, 4, 50], 20, true, true);
    assert!(!joined(&f, product, sum));
    agree_on_values(&f);
    // 16 columns: two vectors, where 17 would take three.
    let (f, product, sum) = summed(&[4, 3, 40], 16, false, false);
    assert_eq!(joined(&f, product, sum), is_free((12, 16, 40)));
    agree_on_values(&f);
    // 3 x 2 x 6: below the kernel's work.
    let (f, product, sum) = summed(&[3, 6], 2, false, false);
    assert!(!joined(&f, product, sum));
    agree_on_values(&f);
    // The sum along the first axis of a matrix is not a row's.
    let (mut f, product, _) = summed(&[13, 50], 40, false, false);
    let x = f.inst(product).args[0];
    let down = push(
        &mut f,
        Op::ReduceAxes(crate::ir::Reduce::Sum, vec![0]),
        &[x],
    );
    output(&mut f, down);
    assert!(!joined(&f, product, down));
    agree_on_values(&f);
}
