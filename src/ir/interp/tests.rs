//! Tests of the interpreter: every operation on ordinary and special values,
//! and the errors of running a function.

use super::*;
use crate::ir::{ConstData, Role, Value};
use crate::span::Span;

fn t(dims: &[usize], data: &[f64]) -> Tensor {
    Tensor::new(Shape(dims.to_vec()), data.to_vec())
}

fn s(x: f64) -> Tensor {
    Tensor::scalar(x)
}

fn eval(op: Op, args: &[&Tensor]) -> Tensor {
    eval_op(&op, args).unwrap()
}

fn close(a: &Tensor, b: &Tensor) -> bool {
    a.shape == b.shape
        && a.data.iter().zip(&b.data).all(|(x, y)| {
            (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-12 * x.abs().max(1.0)
        })
}

#[track_caller]
fn assert_close(a: Tensor, b: Tensor) {
    assert!(close(&a, &b), "{a} != {b}");
}

#[test]
fn log1p_expm1_erf_floor_round() {
    let u = |u: Unary, xs: &[f64]| eval(Op::Unary(u), &[&t(&[xs.len()], xs)]).data;
    // Accurate near 0, where log(1 + x) and exp(x) - 1 lose every digit.
    assert_eq!(
        u(Unary::Log1p, &[1e-20, 0.0, -1.0]),
        [1e-20, 0.0, f64::NEG_INFINITY]
    );
    assert!(u(Unary::Log1p, &[-2.0])[0].is_nan());
    assert_eq!(u(Unary::Expm1, &[1e-20, f64::NEG_INFINITY]), [1e-20, -1.0]);
    assert_close(
        eval(Op::Unary(Unary::Log1p), &[&s(std::f64::consts::E - 1.0)]),
        s(1.0),
    );
    // erf(0.5), erf(1) to 16 digits (Abramowitz and Stegun, table 7.1).
    let e = u(Unary::Erf, &[0.5, 1.0, -1.0, 0.0, f64::INFINITY, -40.0]);
    assert!((e[0] - 0.520_499_877_813_046_5).abs() < 2e-16, "{}", e[0]);
    assert!((e[1] - 0.842_700_792_949_714_9).abs() < 2e-16, "{}", e[1]);
    assert_eq!(e[2], -e[1]);
    assert_eq!(e[3..], [0.0, 1.0, -1.0]);
    // Floor, and round with ties to even; signed zeros kept.
    let x = [-2.5, -1.5, -0.5, -0.2, 0.5, 1.5, 2.5, 2.6, -0.0, 1e300];
    assert_eq!(
        u(Unary::Floor, &x),
        [-3.0, -2.0, -1.0, -1.0, 0.0, 1.0, 2.0, 2.0, -0.0, 1e300]
    );
    let r = u(Unary::Round, &x);
    assert_eq!(r, [-2.0, -2.0, -0.0, -0.0, 0.0, 2.0, 2.0, 3.0, -0.0, 1e300]);
    assert!(r[2].is_sign_negative() && r[3].is_sign_negative() && r[8].is_sign_negative());
    assert!(u(Unary::Round, &[f64::NAN])[0].is_nan());
    assert_eq!(u(Unary::Floor, &[f64::NEG_INFINITY]), [f64::NEG_INFINITY]);
}

#[test]
fn unary_ops() {
    let x = t(&[3], &[-2.0, 0.0, 3.0]);
    let u = |u| eval(Op::Unary(u), &[&x]);
    assert_eq!(u(Unary::Neg), t(&[3], &[2.0, 0.0, -3.0]));
    assert_eq!(u(Unary::Abs), t(&[3], &[2.0, 0.0, 3.0]));
    assert_eq!(u(Unary::Sign), t(&[3], &[-1.0, 0.0, 1.0]));
    assert_eq!(u(Unary::Relu), t(&[3], &[0.0, 0.0, 3.0]));
    let e = std::f64::consts::E;
    assert_close(u(Unary::Exp), t(&[3], &[1.0 / (e * e), 1.0, e * e * e]));
    let y = t(&[2], &[1.0, e]);
    assert_eq!(eval(Op::Unary(Unary::Log), &[&y]), t(&[2], &[0.0, 1.0]));
    let q = t(&[2], &[4.0, 2.25]);
    assert_eq!(eval(Op::Unary(Unary::Sqrt), &[&q]), t(&[2], &[2.0, 1.5]));
    let pi = std::f64::consts::PI;
    let a = t(&[2], &[0.0, pi / 2.0]);
    assert_close(eval(Op::Unary(Unary::Sin), &[&a]), t(&[2], &[0.0, 1.0]));
    assert_close(eval(Op::Unary(Unary::Cos), &[&a]), t(&[2], &[1.0, 0.0]));
    // tanh(ln 2) = (2 - 1/2) / (2 + 1/2) = 0.6.
    let l2 = s(2f64.ln());
    assert_close(eval(Op::Unary(Unary::Tanh), &[&l2]), s(0.6));
    // sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4.
    let l3 = t(&[2], &[3f64.ln(), -(3f64.ln())]);
    assert_close(
        eval(Op::Unary(Unary::Sigmoid), &[&l3]),
        t(&[2], &[0.75, 0.25]),
    );
    // softplus(ln 3) = ln 4, softplus(-ln 3) = ln(4/3).
    assert_close(
        eval(Op::Unary(Unary::Softplus), &[&l3]),
        t(&[2], &[4f64.ln(), (4.0f64 / 3.0).ln()]),
    );
}

#[test]
fn unary_ops_are_stable_at_extremes() {
    let x = t(&[3], &[-1000.0, 1000.0, f64::NAN]);
    let sig = eval(Op::Unary(Unary::Sigmoid), &[&x]);
    assert_eq!(&sig.data[..2], &[0.0, 1.0]);
    assert!(sig.data[2].is_nan());
    let sp = eval(Op::Unary(Unary::Softplus), &[&x]);
    assert_eq!(&sp.data[..2], &[0.0, 1000.0]);
    assert!(sp.data[2].is_nan());
    assert!(eval(Op::Unary(Unary::Relu), &[&x]).data[2].is_nan());
    assert!(eval(Op::Unary(Unary::Sign), &[&s(f64::NAN)]).data[0].is_nan());
    assert_eq!(
        eval(Op::Unary(Unary::Sign), &[&s(-0.0)]).data[0].to_bits(),
        0
    );
}

#[test]
fn binary_ops_broadcast_scalars() {
    let a = t(&[3], &[1.0, 2.0, 3.0]);
    let b = t(&[3], &[2.0, 2.0, 2.0]);
    let bin = |op, x: &Tensor, y: &Tensor| eval(Op::Binary(op), &[x, y]);
    assert_eq!(bin(Binary::Add, &a, &b), t(&[3], &[3.0, 4.0, 5.0]));
    assert_eq!(bin(Binary::Sub, &a, &s(1.0)), t(&[3], &[0.0, 1.0, 2.0]));
    assert_eq!(bin(Binary::Sub, &s(1.0), &a), t(&[3], &[0.0, -1.0, -2.0]));
    assert_eq!(bin(Binary::Mul, &a, &b), t(&[3], &[2.0, 4.0, 6.0]));
    assert_eq!(bin(Binary::Div, &a, &b), t(&[3], &[0.5, 1.0, 1.5]));
    assert_eq!(bin(Binary::Pow, &a, &b), t(&[3], &[1.0, 4.0, 9.0]));
    assert_eq!(bin(Binary::Pow, &s(4.0), &s(0.5)), s(2.0));
    assert_eq!(bin(Binary::Max, &a, &b), t(&[3], &[2.0, 2.0, 3.0]));
    assert_eq!(bin(Binary::Min, &a, &b), t(&[3], &[1.0, 2.0, 2.0]));
    assert_eq!(bin(Binary::Eq, &a, &b), t(&[3], &[0.0, 1.0, 0.0]));
    assert_eq!(bin(Binary::Ne, &a, &b), t(&[3], &[1.0, 0.0, 1.0]));
    assert_eq!(bin(Binary::Lt, &a, &b), t(&[3], &[1.0, 0.0, 0.0]));
    assert_eq!(bin(Binary::Le, &a, &b), t(&[3], &[1.0, 1.0, 0.0]));
    assert_eq!(bin(Binary::Gt, &a, &b), t(&[3], &[0.0, 0.0, 1.0]));
    assert_eq!(bin(Binary::Ge, &a, &b), t(&[3], &[0.0, 1.0, 1.0]));
}

#[test]
fn max_and_min_propagate_nan_and_order_zeros() {
    let nan = f64::NAN;
    assert!(binary(Binary::Max, nan, 1.0).is_nan());
    assert!(binary(Binary::Max, 1.0, nan).is_nan());
    assert!(binary(Binary::Min, 1.0, nan).is_nan());
    assert!(binary(Binary::Eq, nan, nan) == 0.0 && binary(Binary::Ne, nan, nan) == 1.0);
    assert!(binary(Binary::Max, -0.0, 0.0).is_sign_positive());
    assert!(binary(Binary::Max, 0.0, -0.0).is_sign_positive());
    assert!(binary(Binary::Min, 0.0, -0.0).is_sign_negative());
    let r = eval(Op::ReduceMax, &[&t(&[3], &[1.0, nan, 2.0])]);
    assert!(r.data[0].is_nan());
}

#[test]
fn bce_logits() {
    // z = 0: ln 2 whatever y is.
    let l2 = 2f64.ln();
    assert_close(
        eval(Op::Binary(Binary::BceLogits), &[&s(0.0), &s(1.0)]),
        s(l2),
    );
    // z = ln 3, y = 1: -ln sigmoid(ln 3) = ln(4/3); y = 0: -ln(1/4) = ln 4.
    let z = s(3f64.ln());
    let ys = t(&[2], &[1.0, 0.0]);
    assert_close(
        eval(Op::Binary(Binary::BceLogits), &[&z, &ys]),
        t(&[2], &[(4.0f64 / 3.0).ln(), 4f64.ln()]),
    );
    // Large logits neither overflow nor lose the loss.
    let big = t(&[2], &[1000.0, -1000.0]);
    assert_eq!(
        eval(Op::Binary(Binary::BceLogits), &[&big, &s(0.0)]),
        t(&[2], &[1000.0, 0.0])
    );
}

#[test]
fn select_never_reads_the_untaken_side() {
    let c = t(&[3], &[1.0, 0.0, -2.0]);
    let a = t(&[3], &[f64::NAN, 10.0, 20.0]);
    let b = t(&[3], &[1.0, f64::INFINITY, f64::NAN]);
    assert_eq!(
        eval(Op::Select, &[&c, &a, &b]).data[1..],
        [f64::INFINITY, 20.0]
    );
    let r = eval(Op::Select, &[&t(&[3], &[0.0, 1.0, 0.0]), &a, &s(7.0)]);
    assert_eq!(r.data, [7.0, 10.0, 7.0]);
    assert_eq!(eval(Op::Select, &[&s(0.0), &s(1.0), &s(2.0)]), s(2.0));
    let r = eval(Op::Select, &[&s(1.0), &s(5.0), &b]);
    assert_eq!(r, t(&[3], &[5.0, 5.0, 5.0]));
}

#[test]
fn matmul_four_forms() {
    let m = t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let n = t(&[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let v3 = t(&[3], &[1.0, 0.0, -1.0]);
    let v2 = t(&[2], &[1.0, 2.0]);
    // [[1,2,3],[4,5,6]] @ [[1,0],[0,1],[1,1]] = [[4,5],[10,11]].
    assert_eq!(
        eval(Op::MatMul, &[&m, &n]),
        t(&[2, 2], &[4.0, 5.0, 10.0, 11.0])
    );
    assert_eq!(eval(Op::MatMul, &[&m, &v3]), t(&[2], &[-2.0, -2.0]));
    assert_eq!(eval(Op::MatMul, &[&v2, &m]), t(&[3], &[9.0, 12.0, 15.0]));
    assert_eq!(eval(Op::MatMul, &[&v3, &v3]), s(2.0));
    assert!(eval_op(&Op::MatMul, &[&m, &m]).is_err());
}

#[test]
fn outer_and_transpose() {
    let a = t(&[2], &[1.0, 2.0]);
    let b = t(&[3], &[1.0, 10.0, 100.0]);
    assert_eq!(
        eval(Op::Outer, &[&a, &b]),
        t(&[2, 3], &[1.0, 10.0, 100.0, 2.0, 20.0, 200.0])
    );
    let m = t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(
        eval(Op::Transpose, &[&m]),
        t(&[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0])
    );
}

#[test]
fn a_sum_adds_blocks_of_1024_then_their_sums() {
    use crate::ir::interp::{sum, SUM_BLOCK};
    // 2^53 then ones: in one chain each 1 is lost (2^53 + 1 rounds to
    // 2^53); in blocks, the second block's 1024 ones are added first.
    let mut x = vec![1.0; 2 * SUM_BLOCK];
    x[0] = 2f64.powi(53);
    let in_order: f64 = x.iter().sum();
    assert_eq!(in_order, 2f64.powi(53));
    assert_eq!(sum(&x), 2f64.powi(53) + 1024.0);
    assert_eq!(
        eval(Op::Sum, &[&t(&[2, SUM_BLOCK], &x)]),
        s(2f64.powi(53) + 1024.0)
    );
    // A third block of 5 ones: added after the second block's sum.
    x.extend([1.0; 5]);
    assert_eq!(sum(&x), 2f64.powi(53) + 1024.0 + 4.0);
    // One block or less: the elements in order (the last ones lost).
    assert_eq!(sum(&x[..SUM_BLOCK]), 2f64.powi(53));
    // Nothing: -0, as in one chain; -0s: -0.
    assert_eq!(sum(&[]).to_bits(), (-0.0f64).to_bits());
    assert_eq!(sum(&[-0.0; 3000]).to_bits(), (-0.0f64).to_bits());
}

#[test]
fn reductions() {
    let m = t(&[2, 2], &[1.0, -2.0, 3.0, 0.5]);
    assert_eq!(eval(Op::Sum, &[&m]), s(2.5));
    assert_eq!(eval(Op::ReduceMax, &[&m]), s(3.0));
    assert_eq!(eval(Op::Norm, &[&t(&[2], &[3.0, -4.0])]), s(5.0));
    assert_eq!(eval(Op::Norm, &[&t(&[2], &[0.0, 0.0])]), s(0.0));
    // No overflow: |(3e200, 4e200)| = 5e200.
    assert_close(eval(Op::Norm, &[&t(&[2], &[3e200, 4e200])]), s(5e200));
    // logsumexp([ln 1, ln 3]) = ln 4, also far from zero.
    let l = t(&[2], &[0.0, 3f64.ln()]);
    assert_close(eval(Op::LogSumExp, &[&l]), s(4f64.ln()));
    let far = t(&[2], &[1000.0, 1000.0 + 3f64.ln()]);
    assert_close(eval(Op::LogSumExp, &[&far]), s(1000.0 + 4f64.ln()));
    let ninf = t(&[2], &[f64::NEG_INFINITY; 2]);
    assert_eq!(eval(Op::LogSumExp, &[&ninf]), s(f64::NEG_INFINITY));
    let one = t(&[2], &[f64::NEG_INFINITY, 2.0]);
    assert_eq!(eval(Op::LogSumExp, &[&one]), s(2.0));
}

#[test]
fn softmax_and_log_softmax() {
    let x = t(&[2], &[1000.0, 1000.0 + 3f64.ln()]);
    assert_close(eval(Op::Softmax(0), &[&x]), t(&[2], &[0.25, 0.75]));
    assert_close(
        eval(Op::LogSoftmax(0), &[&x]),
        t(&[2], &[-(4f64.ln()), (0.75f64).ln()]),
    );
    assert!(eval_op(&Op::Softmax(2), &[&t(&[1, 2], &[1.0, 2.0])]).is_err());
    assert!(eval_op(&Op::Softmax(0), &[&s(1.0)]).is_err());
}

/// `[[1, 5, -1], [0.5, 2, 0.5]]`
fn w() -> Tensor {
    t(&[2, 3], &[1.0, 5.0, -1.0, 0.5, 2.0, 0.5])
}

/// `np.arange(1, 13).reshape(2, 3, 2)`
fn cube() -> Tensor {
    t(&[2, 3, 2], &(1..=12).map(f64::from).collect::<Vec<_>>())
}

#[test]
fn reductions_along_axes_as_numpy() {
    let r = |k: Reduce, axes: &[usize], x: &Tensor| eval(Op::ReduceAxes(k, axes.to_vec()), &[x]);
    // np.sum(w, axis=0), np.sum(w, axis=1)
    assert_eq!(r(Reduce::Sum, &[0], &w()), t(&[3], &[1.5, 7.0, -0.5]));
    assert_eq!(r(Reduce::Sum, &[1], &w()), t(&[2], &[5.0, 3.0]));
    // np.sum(cube, axis=(0, 2)) = [1+2+7+8, 3+4+9+10, 5+6+11+12]
    assert_eq!(
        r(Reduce::Sum, &[0, 2], &cube()),
        t(&[3], &[18.0, 26.0, 34.0])
    );
    // np.max(cube, axis=1) = [[5, 6], [11, 12]]
    assert_eq!(
        r(Reduce::Max, &[1], &cube()),
        t(&[2, 2], &[5.0, 6.0, 11.0, 12.0])
    );
    // Every axis: a scalar, the bits of the whole-tensor reduction.
    for (k, whole) in [
        (Reduce::Sum, Op::Sum),
        (Reduce::Max, Op::ReduceMax),
        (Reduce::Norm, Op::Norm),
        (Reduce::LogSumExp, Op::LogSumExp),
    ] {
        let x = t(&[2, 3], &[0.1, 0.7, -0.3, 1e-3, 2.9, 0.25]);
        assert_eq!(
            r(k, &[0, 1], &x).data[0].to_bits(),
            eval(whole, &[&x]).data[0].to_bits()
        );
    }
    // No axes: each element alone.
    assert_eq!(r(Reduce::Max, &[], &w()), w());
    // np.linalg.norm(w, axis=0) = [sqrt(1.25), sqrt(29), sqrt(1.25)]
    assert_close(
        r(Reduce::Norm, &[0], &w()),
        t(&[3], &[1.25f64.sqrt(), 29f64.sqrt(), 1.25f64.sqrt()]),
    );
    // scipy.special.logsumexp(w, axis=1), stable far from 0
    let lse = |xs: &[f64]| xs.iter().map(|x| x.exp()).sum::<f64>().ln();
    assert_close(
        r(Reduce::LogSumExp, &[1], &w()),
        t(&[2], &[lse(&[1.0, 5.0, -1.0]), lse(&[0.5, 2.0, 0.5])]),
    );
    let far = t(&[2, 2], &[1000.0, 1000.0, -1000.0, f64::NEG_INFINITY]);
    assert_close(r(Reduce::LogSumExp, &[0], &far), t(&[2], &[1000.0, 1000.0]));
    // A NaN reaches the maximum of its slice only.
    let nan = t(&[2, 2], &[f64::NAN, 1.0, 2.0, 3.0]);
    let m = r(Reduce::Max, &[1], &nan);
    assert!(m.data[0].is_nan() && m.data[1] == 3.0);
    assert!(eval_op(&Op::ReduceAxes(Reduce::Sum, vec![2]), &[&w()]).is_err());
    assert!(eval_op(&Op::ReduceAxes(Reduce::Sum, vec![1, 0]), &[&w()]).is_err());
    assert!(eval_op(&Op::ReduceAxes(Reduce::Sum, vec![0, 0]), &[&w()]).is_err());
}

#[test]
fn broadcast_along_axes_repeats_each_element() {
    let b = |axes: &[usize], into: &[usize], x: &Tensor| {
        eval(Op::BroadcastAxes(axes.to_vec(), Shape(into.to_vec())), &[x])
    };
    assert_eq!(
        b(&[0], &[2, 3], &t(&[3], &[1.0, 2.0, 3.0])),
        t(&[2, 3], &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    );
    assert_eq!(
        b(&[1], &[2, 3], &t(&[2], &[1.0, 2.0])),
        t(&[2, 3], &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
    );
    // np.broadcast_to(v[None, :, None], (2, 3, 2))
    let v = t(&[3], &[1.0, 2.0, 3.0]);
    let want: Vec<f64> = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0].repeat(2);
    assert_eq!(b(&[0, 2], &[2, 3, 2], &v), t(&[2, 3, 2], &want));
    assert!(eval_op(
        &Op::BroadcastAxes(vec![0], Shape(vec![2, 3])),
        &[&t(&[2], &[1.0, 2.0])]
    )
    .is_err());
}

#[test]
fn softmax_along_an_axis_as_numpy() {
    // scipy.special.softmax(w, axis=0): each column on its own.
    let col = |a: f64, b: f64| {
        let (ea, eb) = (a.exp(), b.exp());
        (ea / (ea + eb), eb / (ea + eb))
    };
    let (c0, c1, c2) = (col(1.0, 0.5), col(5.0, 2.0), col(-1.0, 0.5));
    assert_close(
        eval(Op::Softmax(0), &[&w()]),
        t(&[2, 3], &[c0.0, c1.0, c2.0, c0.1, c1.1, c2.1]),
    );
    // Along the last axis, each row is the vector softmax, bit for bit.
    let sm = eval(Op::Softmax(1), &[&w()]);
    let row = eval(Op::Softmax(0), &[&t(&[3], &[0.5, 2.0, 0.5])]);
    assert_eq!(sm.data[3..], row.data[..]);
    // log_softmax(cube, axis=1): x - logsumexp of each (i, :, k).
    let ls = eval(Op::LogSoftmax(1), &[&cube()]);
    let l = (1f64.exp() + 3f64.exp() + 5f64.exp()).ln();
    assert_close(t(&[1], &[ls.data[0]]), t(&[1], &[1.0 - l]));
    let l = (8f64.exp() + 10f64.exp() + 12f64.exp()).ln();
    assert_close(t(&[1], &[ls.data[11]]), t(&[1], &[12.0 - l]));
}

#[test]
fn argmax_first_of_ties_and_first_nan() {
    let am = |axis: usize, x: &Tensor| eval(Op::ArgMax(axis), &[x]);
    // np.argmax(w, axis=0) = [0, 0, 1]; axis=1: [1, 1]
    assert_eq!(am(0, &w()), t(&[3], &[0.0, 0.0, 1.0]));
    assert_eq!(am(1, &w()), t(&[2], &[1.0, 1.0]));
    // Ties: the first. np.argmax([[1, 1], [2, 2]], axis=0) = [1, 1]
    assert_eq!(
        am(1, &t(&[2, 2], &[1.0, 1.0, 2.0, 2.0])),
        t(&[2], &[0.0, 0.0])
    );
    // NaN counts as the largest: the first NaN, as NumPy.
    let nan = f64::NAN;
    assert_eq!(am(0, &t(&[4], &[1.0, nan, 5.0, nan])), s(1.0));
    assert_eq!(am(0, &t(&[2], &[nan, 5.0])), s(0.0));
    // All -inf: the first; -0 and +0 tie.
    assert_eq!(am(0, &t(&[2], &[f64::NEG_INFINITY; 2])), s(0.0));
    assert_eq!(am(0, &t(&[2], &[-0.0, 0.0])), s(0.0));
    // np.argmax(cube, axis=2) = all 1
    assert_eq!(am(2, &cube()), t(&[2, 3], &[1.0; 6]));
}

#[test]
fn broadcast_slice_unslice_pack() {
    let b = eval(Op::Broadcast(Shape::matrix(2, 2)), &[&s(1.5)]);
    assert_eq!(b, t(&[2, 2], &[1.5; 4]));
    // m = [[0,1,2,3],[4,5,6,7],[8,9,10,11]].
    let m = t(&[3, 4], &(0..12).map(f64::from).collect::<Vec<_>>());
    let rows = vec![SliceAxis::Range(1, 3), SliceAxis::Range(1, 3)];
    assert_eq!(
        eval(Op::Slice(rows.clone()), &[&m]),
        t(&[2, 2], &[5.0, 6.0, 9.0, 10.0])
    );
    let col = vec![SliceAxis::Range(0, 3), SliceAxis::At(2)];
    assert_eq!(
        eval(Op::Slice(col.clone()), &[&m]),
        t(&[3], &[2.0, 6.0, 10.0])
    );
    let one = vec![SliceAxis::At(2), SliceAxis::At(3)];
    assert_eq!(eval(Op::Slice(one), &[&m]), s(11.0));
    let v = t(&[3], &[1.0, 2.0, 3.0]);
    assert_eq!(
        eval(Op::Unslice(col, Shape::matrix(3, 4)), &[&v]),
        t(
            &[3, 4],
            &[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 0.0]
        )
    );
    let at = vec![SliceAxis::At(1)];
    assert_eq!(
        eval(Op::Unslice(at, Shape::vector(3)), &[&s(4.0)]),
        t(&[3], &[0.0, 4.0, 0.0])
    );
    let w = t(&[3], &[4.0, 5.0, 6.0]);
    assert_eq!(
        eval(Op::Pack, &[&v, &w]),
        t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    );
    assert_eq!(eval(Op::Pack, &[&s(1.0), &s(2.0)]), t(&[2], &[1.0, 2.0]));
}

#[test]
fn one_hot_requires_a_class_in_range() {
    assert_eq!(eval(Op::OneHot(3), &[&s(1.0)]), t(&[3], &[0.0, 1.0, 0.0]));
    assert_eq!(
        eval_op(&Op::OneHot(3), &[&s(5.0)]).unwrap_err(),
        OpError::Fault(Fault::ClassIndex {
            class: 5.0,
            classes: 3
        })
    );
    assert!(eval_op(&Op::OneHot(3), &[&s(-1.0)]).is_err());
    assert!(eval_op(&Op::OneHot(3), &[&s(0.5)]).is_err());
    assert!(eval_op(&Op::OneHot(3), &[&s(f64::NAN)]).is_err());
}

#[test]
fn const_and_ill_shaped_args() {
    let c = t(&[2], &[1.0, 2.0]);
    assert_eq!(eval(Op::Const(ConstData(c.clone())), &[]), c);
    let a = t(&[2], &[1.0, 2.0]);
    let b = t(&[3], &[1.0, 2.0, 3.0]);
    assert!(eval_op(&Op::Binary(Binary::Add), &[&a, &b]).is_err());
    assert!(eval_op(&Op::Param(0), &[]).is_err());
    let bad = Tensor {
        shape: Shape::vector(3),
        data: vec![1.0],
    };
    assert!(eval_op(&Op::Unary(Unary::Neg), &[&bad]).is_err());
}

fn tiny() -> Function {
    let sp = Span::default();
    let slot = |n: &str, s| Slot {
        name: n.to_string(),
        shape: s,
    };
    let mut f = Function::new(
        vec![slot("w", Shape::vector(2))],
        vec![slot("x", Shape::vector(2))],
    );
    let w = f.push(Op::Param(0), vec![], sp);
    let x = f.push(Op::Input(0), vec![], sp);
    let d = f.push(Op::MatMul, vec![w, x], sp);
    let e = f.push(Op::Unary(Unary::Exp), vec![d], sp);
    f.outputs.push(Output {
        role: Role::Loss,
        name: "loss".to_string(),
        value: d,
    });
    f.outputs.push(Output {
        role: Role::Output,
        name: "e".to_string(),
        value: e,
    });
    f
}

#[test]
fn runs_a_function() {
    let f = tiny();
    let w = t(&[2], &[1.0, 2.0]);
    let x = t(&[2], &[3.0, -1.5]);
    let values = run(&f, std::slice::from_ref(&w), std::slice::from_ref(&x)).unwrap();
    assert_eq!(values.len(), 4);
    assert_eq!(values[Value(2).index()], s(0.0));
    let outs = run_outputs(&f, &[w], &[x]).unwrap();
    assert_eq!(outs[0].0.role, Role::Loss);
    assert_eq!(outs[0].1, s(0.0));
    assert_eq!(outs[1].1, s(1.0));
}

#[test]
fn a_bad_class_is_a_fault_at_its_instruction() {
    let c = Slot {
        name: "c".to_string(),
        shape: Shape::scalar(),
    };
    let mut f = Function::new(vec![], vec![c]);
    let c = f.push(Op::Input(0), vec![], Span::new(0, 7));
    let oh = f.push(Op::OneHot(3), vec![c], Span::new(10, 22));
    f.outputs.push(Output {
        role: Role::Output,
        name: "o".to_string(),
        value: oh,
    });
    let e = run_outputs(&f, &[], &[s(3.0)]).unwrap_err();
    assert_eq!(
        e,
        RunError::Fault {
            at: oh,
            span: Span::new(10, 22),
            example: None,
            fault: Fault::ClassIndex {
                class: 3.0,
                classes: 3
            },
        }
    );
    assert_eq!(
        e.to_string(),
        "class index 3 is out of range for 3 classes (0 to 2)"
    );
}

#[test]
fn rejects_wrong_params_and_inputs() {
    let f = tiny();
    let w = t(&[2], &[1.0, 2.0]);
    let x3 = t(&[3], &[1.0, 2.0, 3.0]);
    assert_eq!(
        run(&f, std::slice::from_ref(&w), &[x3]).unwrap_err(),
        RunError::Misuse("input x has shape [3] but the function expects [2]".into())
    );
    assert!(run(&f, &[], std::slice::from_ref(&w)).is_err());
    assert!(run(&f, std::slice::from_ref(&w), &[w.clone(), w.clone()]).is_err());
}
