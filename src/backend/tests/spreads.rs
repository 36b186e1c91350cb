//! Runs with spreads: a `broadcast_axes` of a tensor joins the run of the
//! elementwise instructions of its shape, which becomes a loop nest over
//! that shape, each row read from the spread's argument in place (or its
//! one element, splat, when the row repeats it). The same bits as the
//! interpreter, one example and batched; the spread is never stored when
//! only the run reads it.

use super::*;

/// `exp(p - broadcast_axes(x, along)) * p`, with `p: shape`, `x` the shape
/// without the axes `along`, and the sum of the product.
pub(super) fn spread_run(shape: &[usize], along: &[usize]) -> (Function, Value, Value) {
    let kept: Vec<usize> = (0..shape.len())
        .filter(|a| !along.contains(a))
        .map(|a| shape[a])
        .collect();
    let s = Shape(shape.to_vec());
    let (mut f, p, x) = function(std::slice::from_ref(&s), &[Shape(kept)]);
    let b = push(&mut f, Op::BroadcastAxes(along.to_vec(), s), &[x[0]]);
    let d = push(&mut f, Op::Binary(Binary::Sub), &[p[0], b]);
    let e = push(&mut f, Op::Unary(Unary::Exp), &[d]);
    let m = push(&mut f, Op::Binary(Binary::Mul), &[e, p[0]]);
    let total = push(&mut f, Op::Sum, &[m]);
    output(&mut f, m);
    output(&mut f, total);
    (f, b, m)
}

#[test]
fn a_spread_joins_the_run_of_its_shape() {
    let (f, b, m) = spread_run(&[3, 4, 5], &[2]);
    let layout = plan::layout::layout(&f);
    let run = layout.steps.iter().find(|s| s.contains(&m)).unwrap();
    assert!(run.contains(&b), "{:?}", layout.steps);
    assert!(layout.internal[b]);
    assert_eq!(layout.slots[b], None);
}

#[test]
fn spreads_along_every_axis_agree_with_the_interpreter() {
    // Along the last axis (each row one element, splat), a middle one and
    // the first (each row read from the argument's row), two at once; rows
    // of one element, an odd number, shorter than a vector, and long.
    let cases: [(&[usize], &[usize]); 9] = [
        (&[3, 4, 5], &[2]),
        (&[3, 4, 5], &[1]),
        (&[3, 4, 5], &[0]),
        (&[3, 4, 5], &[0, 2]),
        (&[2, 3, 1], &[1]),
        (&[2, 3, 1], &[2]),
        (&[5, 37], &[0]),
        (&[5, 37], &[1]),
        (&[7], &[]),
    ];
    for (shape, along) in cases {
        let (f, _, _) = spread_run(shape, along);
        agree_on_values(&f);
    }
}

/// A spread read by two members, and stored because the function returns
/// it.
#[test]
fn a_spread_read_outside_its_run_is_stored() {
    let (mut f, b, _) = spread_run(&[4, 6], &[1]);
    output(&mut f, b);
    let layout = plan::layout::layout(&f);
    assert!(!layout.internal[b]);
    assert!(layout.slots[b].is_some());
    agree_on_values(&f);
}

/// `kind_axes(exp(p - broadcast_axes(x, along)) * p, summed)`: the sum
/// (or maximum) of rows joins the run, each row of the product added into
/// the result's row (or its maximum taken), the product never stored.
fn reduced_run(
    shape: &[usize],
    along: &[usize],
    summed: &[usize],
    kind: crate::ir::Reduce,
) -> (Function, Value, Value) {
    let (mut f, _, m) = spread_run(shape, along);
    f.outputs.clear();
    let s = push(&mut f, Op::ReduceAxes(kind, summed.to_vec()), &[m]);
    output(&mut f, s);
    (f, m, s)
}

fn summed_run(shape: &[usize], along: &[usize], summed: &[usize]) -> (Function, Value, Value) {
    reduced_run(shape, along, summed, crate::ir::Reduce::Sum)
}

#[test]
fn sums_and_maxima_of_rows_join_the_run_and_agree_with_the_interpreter() {
    // gmm's `sum(Qx^2, axis = 1)` of [K, D, N], a leading axis, two axes,
    // rows shorter than a vector and of one element.
    let cases: [(&[usize], &[usize], &[usize]); 6] = [
        (&[3, 4, 5], &[2], &[1]),
        (&[3, 4, 5], &[1], &[0]),
        (&[3, 4, 5], &[2], &[0, 1]),
        (&[4, 3, 1], &[0], &[1]),
        (&[5, 37], &[1], &[0]),
        (&[2, 3, 2, 3], &[1, 3], &[0, 2]),
    ];
    // Maxima alike (`kmeans`' nearest centroid), NaNs and signed zeros
    // among the values.
    for kind in [crate::ir::Reduce::Sum, crate::ir::Reduce::Max] {
        for (shape, along, summed) in cases {
            let (f, m, s) = reduced_run(shape, along, summed, kind);
            let layout = plan::layout::layout(&f);
            let run = layout.steps.iter().find(|st| st.contains(&m)).unwrap();
            assert!(run.contains(&s), "{:?}", layout.steps);
            assert!(layout.internal[m]);
            agree_on_values(&f);
        }
    }
    // Other reductions are steps of their own.
    let (f, m, s) = reduced_run(&[3, 4, 5], &[2], &[1], crate::ir::Reduce::LogSumExp);
    let layout = plan::layout::layout(&f);
    let run = layout.steps.iter().find(|st| st.contains(&m)).unwrap();
    assert!(!run.contains(&s), "{:?}", layout.steps);
    agree_on_values(&f);
    // Along the last axis it is a sum of its own.
    let (f, m, s) = summed_run(&[3, 4, 5], &[1], &[2]);
    let layout = plan::layout::layout(&f);
    let run = layout.steps.iter().find(|st| st.contains(&m)).unwrap();
    assert!(!run.contains(&s), "{:?}", layout.steps);
    agree_on_values(&f);
}

/// A sum of rows starts from -0, as alone: the sum of a column of -0s is
/// -0, not 0.
#[test]
fn a_sum_of_rows_of_negative_zeros_is_negative_zero() {
    let (f, _, _) = summed_run(&[3, 4, 5], &[2], &[1]);
    let p = Tensor::new(Shape(vec![3, 4, 5]), vec![-0.0; 60]);
    let x = Tensor::new(Shape(vec![3, 4]), vec![1.0; 12]);
    agree(&f, &[p], std::slice::from_ref(&x));
    let jit = compile(&f).unwrap();
    let got = jit
        .run(&[Tensor::new(Shape(vec![3, 4, 5]), vec![-0.0; 60])], &[x])
        .unwrap();
    assert!(
        got[0]
            .data
            .iter()
            .all(|v| v.to_bits() == (-0.0f64).to_bits()),
        "{:?}",
        got[0].data
    );
}

/// In f32 (four lanes a vector), the same runs are the interpreter's f64
/// arithmetic within f32's rounding, one example after the other.
#[test]
fn runs_with_spreads_in_f32_are_the_f64_arithmetic_within_rounding() {
    let max = crate::ir::Reduce::Max;
    let runs = [
        spread_run(&[3, 4, 9], &[2]).0,
        spread_run(&[3, 4, 9], &[0, 1]).0,
        summed_run(&[2, 3, 9], &[2], &[1]).0,
        reduced_run(&[4, 9], &[1], &[0], max).0,
    ];
    let small = |n: usize, salt: usize| -> Vec<f64> {
        (0..n)
            .map(|i| f64::from(((i * 7 + salt) % 13) as f32 / 8.0 - 0.75))
            .collect()
    };
    for f in runs {
        let p: Vec<Tensor> = f
            .params
            .iter()
            .map(|s| Tensor::new(s.shape.clone(), small(s.shape.size(), 1)))
            .collect();
        let examples: Vec<Vec<Tensor>> = (0..3)
            .map(|e| {
                let s = &f.inputs[0].shape;
                vec![Tensor::new(s.clone(), small(s.size(), 5 + e))]
            })
            .collect();
        agree_f32(&f, &p, &examples);
    }
}

/// `exp(concat(parts...)) * p + 1`, with `p` of the concat's shape and the
/// sum of the product: the `concat` joins the run, each part read in
/// place.
fn concat_run(parts: &[Shape], whole: &Shape) -> (Function, Value, Value) {
    let (mut f, p, x) = function(std::slice::from_ref(whole), parts);
    let c = push(&mut f, Op::Concat, &x);
    let e = push(&mut f, Op::Unary(Unary::Exp), &[c]);
    let m = push(&mut f, Op::Binary(Binary::Mul), &[e, p[0]]);
    let total = push(&mut f, Op::Sum, &[m]);
    output(&mut f, m);
    output(&mut f, total);
    (f, c, m)
}

#[test]
fn a_concat_joins_the_run_and_its_parts_are_read_in_place() {
    // `ode`'s shift (one number, then the rest), parts shorter than a
    // vector, of odd lengths, and rows of matrices along the leading axis.
    let v = |n| Shape(vec![n]);
    let cases = [
        (vec![v(1), v(9)], v(10)),
        (vec![v(3), v(1), v(5), v(2)], v(11)),
        (vec![v(1)], v(1)),
        (
            vec![Shape(vec![2, 3]), Shape(vec![1, 3])],
            Shape(vec![3, 3]),
        ),
    ];
    for (parts, whole) in cases {
        let (f, c, m) = concat_run(&parts, &whole);
        let layout = plan::layout::layout(&f);
        let run = layout.steps.iter().find(|s| s.contains(&m)).unwrap();
        assert!(run.contains(&c), "{:?}", layout.steps);
        assert!(layout.internal[c]);
        assert_eq!(layout.slots[c], None);
        agree_on_values(&f);
    }
}

/// One `concat` a run, and none in a nest: a second one, or a spread, is
/// a step of its own, and the bits are the same.
#[test]
fn a_run_holds_one_concat_and_no_spread_beside_it() {
    let (mut f, p, x) = function(
        &[Shape(vec![4, 3])],
        &[Shape(vec![2, 3]), Shape(vec![2, 3]), Shape(vec![4])],
    );
    let c = push(&mut f, Op::Concat, &[x[0], x[1]]);
    let d = push(&mut f, Op::Concat, &[x[1], x[0]]);
    let b = push(
        &mut f,
        Op::BroadcastAxes(vec![1], Shape(vec![4, 3])),
        &[x[2]],
    );
    let s = push(&mut f, Op::Binary(Binary::Add), &[c, d]);
    let t = push(&mut f, Op::Binary(Binary::Mul), &[s, b]);
    let u = push(&mut f, Op::Binary(Binary::Sub), &[t, p[0]]);
    output(&mut f, u);
    let layout = plan::layout::layout(&f);
    let run = layout.steps.iter().find(|st| st.contains(&c)).unwrap();
    assert!(!run.contains(&d) && !run.contains(&b), "{:?}", layout.steps);
    agree_on_values(&f);
}

/// A spread that cannot join the run growing when it comes (another
/// shape) is not hoisted before it, a step of its own written out: it
/// starts the run of its shape later (`kmeans`' distances, after the runs
/// of the norms).
#[test]
fn a_spread_of_another_shape_starts_its_own_run() {
    let (mut f, p, x) = function(&[Shape(vec![4, 5])], &[Shape(vec![2, 3]), Shape(vec![4])]);
    let other = push(&mut f, Op::Unary(Unary::Exp), &[x[0]]);
    let b = push(
        &mut f,
        Op::BroadcastAxes(vec![1], Shape(vec![4, 5])),
        &[x[1]],
    );
    let m = push(&mut f, Op::Binary(Binary::Mul), &[b, p[0]]);
    output(&mut f, other);
    output(&mut f, m);
    let layout = plan::layout::layout(&f);
    let run = layout.steps.iter().find(|s| s.contains(&m)).unwrap();
    assert!(run.contains(&b), "{:?}", layout.steps);
    assert!(layout.internal[b]);
    agree_on_values(&f);
}
