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

/// A loop of more than four vectors goes two vectors an iteration, the
/// last alone after it if their number is odd: the same bits, in a flat
/// run with a sum (whose elements keep their order) and in the rows of a
/// nest, each of whose rows reads a spread. (Counted by the divisions in
/// the code, one an element or a pair.)
#[test]
fn a_long_loop_goes_two_vectors_an_iteration() {
    let summed = |n| {
        let (mut f, _, x) = function(&[], &[Shape(vec![n])]);
        let two = push(&mut f, Op::Const(ConstData(Tensor::scalar(2.0))), &[]);
        let d = push(&mut f, Op::Binary(Binary::Add), &[x[0], two]);
        let q = push(&mut f, Op::Binary(Binary::Div), &[x[0], d]);
        let s = push(&mut f, Op::Sum, &[q]);
        output(&mut f, s);
        f
    };
    // 500 pairs: the body twice in the loop; 501: and once after it;
    // four: unrolled whole.
    for (n, twice) in [(1000, 2), (1002, 3), (8, 4)] {
        let f = summed(n);
        agree_on_values(&f);
        assert_eq!(count(&f, "fdiv"), twice, "n = {n}");
    }
    // Rows of 22 and 23 columns: 11 pairs, the second with one more.
    for n in [22, 23] {
        let (mut f, p, x) = function(&[Shape(vec![3])], &[Shape(vec![3, n])]);
        let shape = Shape(vec![3, n]);
        let s = push(&mut f, Op::BroadcastAxes(vec![1], shape), &[p[0]]);
        let d = push(&mut f, Op::Binary(Binary::Div), &[x[0], s]);
        let r = push(
            &mut f,
            Op::ReduceAxes(crate::ir::Reduce::Sum, vec![0]),
            &[d],
        );
        output(&mut f, r);
        output(&mut f, d);
        agree_on_values(&f);
        // Two divisions in the loop, one after it, and the last column's
        // alone.
        assert_eq!(count(&f, "fdiv"), 3 + n % 2, "n = {n}");
    }
}

/// A run with `exp` (or `sigmoid`, `tanh`) goes four pairs a step, each
/// step's `exp` one call of the eight-wide kernel, then the pairs left and
/// the last element alone: the same bits, flat with a sum and in a nest's
/// rows.
#[test]
fn a_run_with_exp_goes_four_pairs_a_step() {
    if !(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"))
    {
        return;
    }
    use crate::backend::kernel::exp::{EXP2, EXP8};
    // The calls of the eight-wide and of the pair kernel: `; u0:1 =
    // gradc_exp8` names a kernel, each `fnK = u0:1 sigJ` refers to it.
    let kernels = |f: &Function| {
        let text = clif_text(f).unwrap();
        let calls = |name: &str| {
            let suffix = format!(" = {name}");
            let named = text
                .lines()
                .find_map(|l| l.strip_prefix("; ")?.strip_suffix(suffix.as_str()));
            let Some(id) = named else {
                return 0;
            };
            let refs: Vec<&str> = text
                .lines()
                .filter_map(|l| {
                    let (fref, callee) = l.trim().split_once(" = ")?;
                    callee.starts_with(&format!("{id} ")).then_some(fref)
                })
                .collect();
            let called = |l: &&str| refs.iter().any(|r| l.contains(&format!("call {r}(")));
            text.lines().filter(called).count()
        };
        (calls(EXP8), calls(EXP2))
    };
    let summed = |n| {
        let (mut f, _, x) = function(&[], &[Shape(vec![n])]);
        let e = push(&mut f, Op::Unary(Unary::Exp), &[x[0]]);
        let m = push(&mut f, Op::Binary(Binary::Mul), &[e, x[0]]);
        let s = push(&mut f, Op::Sum, &[m]);
        output(&mut f, s);
        f
    };
    // 125 steps of four pairs: one call in the loop; 1006: and three
    // pairs after it; 14: one step and three pairs, unrolled.
    for (n, calls) in [(1000, (1, 0)), (1006, (1, 3)), (14, (1, 3))] {
        let f = summed(n);
        agree_on_values(&f);
        assert_eq!(kernels(&f), calls, "n = {n}");
    }
}
