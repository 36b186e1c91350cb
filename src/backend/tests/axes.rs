//! Reductions, softmaxes and argmax along any subset of a tensor's axes,
//! single-example, against the interpreter: short axes and long ones, views
//! at an offset, and the special values.

use super::*;
use crate::ir::Reduce as Kind;

/// Every subset of the axes of a tensor of `rank`, in increasing order.
fn subsets(rank: usize) -> Vec<Vec<usize>> {
    (0..1usize << rank)
        .map(|m| (0..rank).filter(|a| m >> a & 1 == 1).collect())
        .collect()
}

#[test]
fn reductions_softmax_and_argmax_along_axes() {
    // Short axes (unrolled) and long ones (counted loops), a view's offset.
    for s in [
        Shape::vector(5),
        Shape::matrix(2, 3),
        Shape::matrix(19, 3),
        Shape(vec![3, 2, 4]),
        Shape(vec![2, 21, 3]),
        // Rows summed four at a time by counted loops, and the rows left.
        Shape::matrix(39, 41),
        Shape(vec![3, 0]),
    ] {
        let (mut f, _, x) = function(&[], std::slice::from_ref(&s));
        for axes in subsets(s.rank()) {
            for k in [Kind::Sum, Kind::Max, Kind::Norm, Kind::LogSumExp] {
                let y = push(&mut f, Op::ReduceAxes(k, axes.clone()), &[x[0]]);
                output(&mut f, y);
                if k == Kind::Sum {
                    let back = push(&mut f, Op::BroadcastAxes(axes.clone(), s.clone()), &[y]);
                    output(&mut f, back);
                }
            }
        }
        for axis in 0..s.rank() {
            for op in [Op::Softmax(axis), Op::LogSoftmax(axis), Op::ArgMax(axis)] {
                let y = push(&mut f, op, &[x[0]]);
                output(&mut f, y);
            }
        }
        agree_on_values(&f);
    }
    // Of a view: the second matrix of a [2, 21, 3] tensor, read in place.
    let (mut f, _, x) = function(&[], &[Shape(vec![2, 21, 3])]);
    let r = SliceAxis::Range;
    let v = push(
        &mut f,
        Op::Slice(vec![SliceAxis::At(1), r(0, 21), r(0, 3)]),
        &[x[0]],
    );
    for op in [
        Op::ReduceAxes(Kind::Sum, vec![0]),
        Op::Softmax(0),
        Op::ArgMax(0),
    ] {
        let y = push(&mut f, op, &[v]);
        output(&mut f, y);
    }
    agree_on_values(&f);
}

#[test]
fn along_axes_on_special_values() {
    let s = Shape::matrix(4, 3);
    let (mut f, _, x) = function(&[], std::slice::from_ref(&s));
    for axis in [0, 1] {
        for k in [Kind::Sum, Kind::Max, Kind::Norm, Kind::LogSumExp] {
            let y = push(&mut f, Op::ReduceAxes(k, vec![axis]), &[x[0]]);
            output(&mut f, y);
        }
        for op in [Op::Softmax(axis), Op::LogSoftmax(axis), Op::ArgMax(axis)] {
            let y = push(&mut f, op, &[x[0]]);
            output(&mut f, y);
        }
    }
    let (nan, inf) = (f64::NAN, f64::INFINITY);
    let data = vec![
        0.0, -0.0, 0.0, // signed zeros tie
        nan, 1.0, nan, // the first NaN
        -inf, -inf, -inf, // all -inf
        1e300, 3e300, 1000.0, // large
    ];
    agree(&f, &[], &[Tensor::new(s.clone(), data.clone())]);
    let t = Tensor::new(s, data.iter().rev().copied().collect());
    agree(&f, &[], &[t]);
}

#[test]
fn a_logsumexp_along_leading_axes_goes_columns_side_by_side() {
    // Rows of 27: three groups of four pairs (each one call of the
    // eight-wide `exp`), a pair, a last column; 19 after leading axes of
    // two and three, reduced along either or both.
    for (dims, along) in [
        (vec![6, 27], vec![0]),
        (vec![3, 4, 19], vec![0]),
        (vec![3, 4, 19], vec![1]),
        (vec![3, 4, 19], vec![0, 1]),
    ] {
        let s = Shape(dims);
        let (mut f, _, x) = function(&[], std::slice::from_ref(&s));
        let y = push(&mut f, Op::ReduceAxes(Kind::LogSumExp, along), &[x[0]]);
        output(&mut f, y);
        agree_on_values(&f);
        // Columns of -inf (its logsumexp -inf), with a NaN, with +inf, and
        // of numbers far apart, among ordinary ones.
        let n = s.size();
        let cols = s.dims()[s.rank() - 1];
        let data: Vec<f64> = (0..n)
            .map(|i| match (i % cols, i / cols) {
                (0, _) => f64::NEG_INFINITY,
                (3, 1) => f64::NAN,
                (9, 0) => f64::INFINITY,
                (12, r) => 700.0 * r as f64 - 1000.0,
                (c, r) => (c as f64 * 0.37 - r as f64 * 1.3).sin() * 30.0,
            })
            .collect();
        agree(&f, &[], &[Tensor::new(s.clone(), data)]);
    }
}

/// Sums of rows of at most four elements go a row at a time, its
/// elements' additions straight-line (as many `fadd`s in the code as a row
/// has elements, where longer rows go four at a time); each row from -0
/// in order, so a row of negative zeros sums to -0, as the interpreter's
/// (in f32 too, within its rounding).
#[test]
fn short_rows_are_summed_one_at_a_time() {
    for len in 1..=5 {
        for rows in [1, 2, 5, 9, 1000] {
            let s = Shape::matrix(rows, len);
            let (mut f, _, x) = function(&[], std::slice::from_ref(&s));
            let sum = push(&mut f, Op::ReduceAxes(Kind::Sum, vec![1]), &[x[0]]);
            output(&mut f, sum);
            agree_on_values(&f);
            // Negative zeros, every other row, the others from `values`.
            let mut data = values(s.size(), 7);
            for r in (0..rows).step_by(2) {
                data[r * len..(r + 1) * len].fill(-0.0);
            }
            let zeros = Tensor::new(s.clone(), data);
            agree(&f, &[], std::slice::from_ref(&zeros));
            agree_f32(&f, &[], &[vec![zeros], tensors(&f, false, 3)]);
            if rows == 1000 {
                let adds = count(&f, "fadd");
                assert_eq!(adds == len, len <= 4, "{len}: {adds} additions");
            }
        }
    }
}
