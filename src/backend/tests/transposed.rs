//! Transposes. The transpose of a `concat` of matrices, its only reader: one
//! step writing each part's columns straight into the result (`ba`'s
//! Jacobian, 31 columns of [P]), the `concat` never written. The
//! interpreter's bits; the pair a step of its own with no slot for the
//! `concat`; and a `concat` read elsewhere too, or too wide, written as
//! before. A transpose into a few long rows: one loop.

use super::*;

/// `t = transpose(concat(reshape(a), m, a * m + 1, zeros, ...))` of
/// `[rows, n]` parts (rows 1, 2, 3, 1 and `more` rows of `m` again), for
/// `a` of [n] and `m` of [2, n]; `t` an output, or read by `t * 2` (then
/// the output); the `concat` an output too if `also`. The `concat` and
/// `t`.
fn transposed(n: usize, more: usize, read: bool, also: bool) -> (Function, Value, Value) {
    let (mut f, p, _) = function(&[Shape::vector(n), Shape::matrix(2, n)], &[]);
    let (a, m) = (p[0], p[1]);
    let row = push(&mut f, Op::Reshape(Shape::matrix(1, n)), &[a]);
    let rows = push(
        &mut f,
        Op::BroadcastAxes(vec![0], Shape::matrix(3, n)),
        &[a],
    );
    let one = push(&mut f, Op::Const(ConstData(Tensor::scalar(1.0))), &[]);
    let times = push(&mut f, Op::Binary(Binary::Mul), &[rows, one]);
    let sum = push(&mut f, Op::Binary(Binary::Add), &[times, one]);
    let zero = push(&mut f, Op::Const(ConstData(Tensor::scalar(0.0))), &[]);
    let zeros = push(&mut f, Op::Broadcast(Shape::matrix(1, n)), &[zero]);
    let mut parts = vec![row, m, sum, zeros];
    parts.extend(std::iter::repeat_n(m, more / 2));
    let cols: usize = parts.iter().map(|&v| f.shape(v).dims()[0]).sum();
    let c = push(&mut f, Op::Concat, &parts);
    assert_eq!(f.shape(c), &Shape::matrix(cols, n));
    let t = push(&mut f, Op::Permute(vec![1, 0]), &[c]);
    if read {
        let two = push(&mut f, Op::Const(ConstData(Tensor::scalar(2.0))), &[]);
        let twice = push(&mut f, Op::Binary(Binary::Mul), &[t, two]);
        output(&mut f, twice);
    } else {
        output(&mut f, t);
    }
    if also {
        output(&mut f, c);
    }
    (f, c, t)
}

#[test]
fn a_transposed_concat_writes_its_parts_into_the_result() {
    for n in [1, 2, 3, 7, 64] {
        for (read, also) in [(false, false), (true, false), (false, true)] {
            let (f, c, t) = transposed(n, 0, read, also);
            agree_on_values(&f);
            let layout = plan::layout::layout(&f);
            let paired = layout.steps.contains(&vec![c, t]);
            assert_eq!(paired, !also, "n = {n}, read {read}, also {also}");
            assert_eq!(layout.slots[c].is_none(), paired);
        }
    }
}

/// Up to [`plan::fuse::TRANSPOSED_COLUMNS`] columns, each row's code
/// unrolled: wider, the `concat` is written and transposed as before.
#[test]
fn a_wide_transposed_concat_is_written_first() {
    let most = plan::fuse::TRANSPOSED_COLUMNS;
    // 7 columns, then two more for each `m` added.
    for (more, paired) in [(most - 7, true), (most - 5, false)] {
        let (f, c, t) = transposed(5, more, false, false);
        agree_on_values(&f);
        let layout = plan::layout::layout(&f);
        assert_eq!(layout.steps.contains(&vec![c, t]), paired, "{more}");
    }
}

/// `x` of [n, k] transposed (`permute [1, 0]`), an output.
fn permuted(n: usize, k: usize) -> Function {
    let (mut f, p, _) = function(&[Shape::matrix(n, k)], &[]);
    let t = push(&mut f, Op::Permute(vec![1, 0]), &[p[0]]);
    output(&mut f, t);
    f
}

/// A transpose into a few long rows (at most four) is one loop over the
/// source's rows, each read in order: as many loops in the code for three
/// rows as for one, more for five (a loop over the result's rows).
#[test]
fn a_transpose_into_a_few_rows_is_one_loop() {
    for k in 1..=6 {
        for n in [1, 2, 5, 9, 1000] {
            agree_on_values(&permuted(n, k));
        }
    }
    let loops = |k| count(&permuted(1000, k), "brif");
    for k in 2..=4 {
        assert_eq!(loops(k), loops(1), "{k} rows");
    }
    assert!(loops(5) > loops(1), "{} loops for 5 rows", loops(5));
}
