//! A fused run over an odd number of elements ends with one more pair,
//! overlapping the pair before it, in place of a single element, when
//! computing an element twice gives the same bits: the run adds nothing up
//! and stores nowhere it reads.

use super::*;

/// `exp(x) * x + x` of one input of `n` elements, fused into one run.
fn chain(n: usize) -> Function {
    let (mut f, _, x) = function(&[], &[Shape(vec![n])]);
    let e = push(&mut f, Op::Unary(Unary::Exp), &[x[0]]);
    let m = push(&mut f, Op::Binary(Binary::Mul), &[e, x[0]]);
    let y = push(&mut f, Op::Binary(Binary::Add), &[m, x[0]]);
    output(&mut f, y);
    f
}

/// Whether `f`'s code ends a loop with the overlapping pair (the clamp of
/// its index to `n - 2`).
fn overlaps(f: &Function) -> bool {
    clif_text(f).unwrap().contains("umin")
}

#[test]
fn odd_runs_end_with_an_overlapping_pair() {
    for n in [3, 5, 9, 11, 37] {
        let f = chain(n);
        agree_on_values(&f);
        // Short runs are unrolled, their last pair too.
        assert_eq!(overlaps(&f), n > 8, "n = {n}");
    }
    // An even run has no tail.
    assert!(!overlaps(&chain(38)));
}

/// A run's results take slots free at its step (`plan::layout`), none a
/// tensor it reads: a run over a transpose (which no run computes) in
/// the scratch buffer, kept alive as an output too, still ends with the
/// overlapping pair.
#[test]
fn a_run_beside_what_it_reads_overlaps() {
    let (mut f, _, x) = function(&[], &[Shape(vec![3, 7])]);
    let c = push(&mut f, Op::Transpose, &[x[0]]);
    let e = push(&mut f, Op::Unary(Unary::Exp), &[c]);
    let y = push(&mut f, Op::Binary(Binary::Mul), &[e, c]);
    output(&mut f, y);
    output(&mut f, c);
    agree_on_values(&f);
    assert!(overlaps(&f));
}

/// A sum in the run would add the overlapped elements twice.
#[test]
fn a_run_with_a_sum_keeps_its_tail() {
    let (mut f, _, x) = function(&[], &[Shape(vec![21])]);
    let e = push(&mut f, Op::Unary(Unary::Exp), &[x[0]]);
    let m = push(&mut f, Op::Binary(Binary::Mul), &[e, x[0]]);
    let s = push(&mut f, Op::Sum, &[m]);
    output(&mut f, s);
    output(&mut f, m);
    agree_on_values(&f);
    assert!(!overlaps(&f));
}

/// The calls the code of `f` makes (of `exp`'s pair kernel, in these).
fn calls(f: &Function) -> usize {
    let text = clif_text(f).unwrap();
    text.lines().filter(|l| l.contains("= call fn")).count()
}

/// A loop of more than four vectors goes two vectors an iteration, the
/// last alone after it if their number is odd: the same bits, in a flat
/// run with a sum (whose elements keep their order) and in the rows of a
/// nest, each of whose rows reads a spread.
#[test]
fn a_long_loop_goes_two_vectors_an_iteration() {
    let summed = |n| {
        let (mut f, _, x) = function(&[], &[Shape(vec![n])]);
        let e = push(&mut f, Op::Unary(Unary::Exp), &[x[0]]);
        let m = push(&mut f, Op::Binary(Binary::Mul), &[e, x[0]]);
        let s = push(&mut f, Op::Sum, &[m]);
        output(&mut f, s);
        f
    };
    // 500 pairs: the body twice in the loop; 501: and once after it;
    // four: unrolled whole.
    for (n, twice) in [(1000, 2), (1002, 3), (8, 4)] {
        let f = summed(n);
        agree_on_values(&f);
        assert_eq!(calls(&f), twice, "n = {n}");
    }
    // Rows of 22 and 23 columns: 11 pairs, the second with one more.
    for n in [22, 23] {
        let (mut f, p, x) = function(&[Shape(vec![3])], &[Shape(vec![3, n])]);
        let shape = Shape(vec![3, n]);
        let s = push(&mut f, Op::BroadcastAxes(vec![1], shape), &[p[0]]);
        let d = push(&mut f, Op::Binary(Binary::Sub), &[x[0], s]);
        let e = push(&mut f, Op::Unary(Unary::Exp), &[d]);
        let r = push(
            &mut f,
            Op::ReduceAxes(crate::ir::Reduce::Sum, vec![0]),
            &[e],
        );
        output(&mut f, r);
        output(&mut f, e);
        agree_on_values(&f);
        // Two calls in the loop, one after it, and `exp` of the last
        // column alone.
        assert_eq!(calls(&f), 3 + n % 2, "n = {n}");
    }
}
