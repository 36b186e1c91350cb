//! Sums of more than one block ([`interp::sum`]: blocks of
//! [`interp::SUM_BLOCK`] elements, each added in order, then the blocks'
//! sums in order) in the JIT: a sum alone (two blocks side by side), a
//! sum in a flat run (four blocks side by side, then two, then one; one
//! at a time beside a shift), in a nest and beside a `concat` (a count of the elements left
//! in the block, a pair of elements across two blocks), one example at a
//! time, batched and in f32. (In parts: `parts.rs`.) The data are finite
//! (odd salts), and their sum in one chain has other bits than in blocks,
//! so that a sum in the wrong order shows.

use super::*;
use crate::ir::interp::SUM_BLOCK;

/// One block less one, one, one and one more, two, three and some, five
/// and some, seven and some: blocks four side by side, then two, then one,
/// with and without elements after them.
const SIZES: [usize; 7] = [
    SUM_BLOCK - 1,
    SUM_BLOCK,
    SUM_BLOCK + 1,
    2 * SUM_BLOCK,
    3 * SUM_BLOCK + 5,
    5 * SUM_BLOCK + 1000,
    7 * SUM_BLOCK + 3,
];

/// Requires the interpreter's bits for `f` at finite values (odd salts),
/// one example at a time and as a batch of three, where the sum of the
/// first input, in one chain, differs from its sum in blocks if its last
/// block has two elements or more (with one, `s + x` is both).
#[track_caller]
fn agree_in_blocks(f: &Function) {
    let mut examples = Vec::new();
    for salt in 0..3 {
        let (p, x) = (
            tensors(f, true, 2 * salt + 1),
            tensors(f, false, 2 * salt + 101),
        );
        let data = &x[0].data;
        if data.len() > SUM_BLOCK + 1 {
            let chain: f64 = data.iter().sum();
            assert_ne!(chain.to_bits(), interp::sum(data).to_bits());
        }
        agree(f, &p, &x);
        examples.push(x);
    }
    agree_batched(f, &tensors(f, true, 1), &examples);
}

#[test]
fn a_sum_alone_goes_two_blocks_side_by_side() {
    for n in SIZES {
        let (mut f, _, x) = function(&[], &[Shape::vector(n)]);
        let s = push(&mut f, Op::Sum, &[x[0]]);
        output(&mut f, s);
        agree_in_blocks(&f);
        agree_on_values(&f);
    }
}

/// `sum(exp(x * w))` and `sum(exp(x * w) * x)` of two vectors of `n`: one
/// flat run with two sums.
pub(super) fn flat_sums(n: usize) -> Function {
    let shape = Shape::vector(n);
    let (mut f, p, x) = function(std::slice::from_ref(&shape), std::slice::from_ref(&shape));
    let xw = push(&mut f, Op::Binary(Binary::Mul), &[x[0], p[0]]);
    let e = push(&mut f, Op::Unary(Unary::Exp), &[xw]);
    let s = push(&mut f, Op::Sum, &[e]);
    let ex = push(&mut f, Op::Binary(Binary::Mul), &[e, x[0]]);
    let t = push(&mut f, Op::Sum, &[ex]);
    output(&mut f, s);
    output(&mut f, t);
    f
}

/// Whether the layout of `f` computes the `sum` `s` in a run.
fn in_run(f: &Function, s: Value) -> bool {
    let layout = plan::layout::layout(f);
    let step = layout.steps.iter().find(|st| st.contains(&s)).unwrap();
    step.len() > 1
}

#[test]
fn a_flat_runs_sums_go_blocks_side_by_side() {
    for n in SIZES {
        let f = flat_sums(n);
        let last = f.outputs[1].value;
        assert!(in_run(&f, last), "{f}");
        agree_in_blocks(&f);
        agree_on_values(&f);
        let examples: Vec<Vec<Tensor>> = (0..3).map(|s| tensors(&f, false, 301 + 2 * s)).collect();
        agree_f32(&f, &tensors(&f, true, 3), &examples);
    }
}

#[test]
fn a_runs_sums_go_side_by_side_one_element_at_a_time_without_pairs() {
    // `log` is not computed on pairs, so the run goes element by element:
    // `sum(log(x * x + 1))`.
    for n in SIZES {
        let (mut f, _, x) = function(&[], &[Shape::vector(n)]);
        let sq = push(&mut f, Op::Binary(Binary::Mul), &[x[0], x[0]]);
        let one = push(&mut f, Op::Const(ConstData(Tensor::scalar(1.0))), &[]);
        let y = push(&mut f, Op::Binary(Binary::Add), &[sq, one]);
        let l = push(&mut f, Op::Unary(Unary::Log), &[y]);
        let s = push(&mut f, Op::Sum, &[l]);
        output(&mut f, s);
        assert!(in_run(&f, s), "{f}");
        agree_in_blocks(&f);
    }
}

#[test]
fn a_runs_sum_beside_a_shift_goes_a_block_at_a_time() {
    for n in SIZES {
        // `y = x * w`, `z = concat([a], y[0:n - 1]) + y`, its sum.
        let shape = Shape::vector(n);
        let (mut f, p, x) = function(
            &[shape.clone(), Shape::vector(1)],
            std::slice::from_ref(&shape),
        );
        let y = push(&mut f, Op::Binary(Binary::Mul), &[x[0], p[0]]);
        let head = push(&mut f, Op::Slice(vec![SliceAxis::Range(0, n - 1)]), &[y]);
        let lag = push(&mut f, Op::Concat, &[p[1], head]);
        let z = push(&mut f, Op::Binary(Binary::Add), &[lag, y]);
        let s = push(&mut f, Op::Sum, &[z]);
        output(&mut f, s);
        let layout = plan::layout::layout(&f);
        assert!(layout
            .steps
            .iter()
            .any(|st| st.contains(&lag) && st.contains(&s)));
        agree_in_blocks(&f);
    }
}

#[test]
fn a_nests_sum_counts_the_elements_left_in_its_block() {
    // Rows of 301 (odd): a row starts at an odd element, so a pair of
    // elements lies across the first blocks' boundary; rows of 512, whose
    // blocks end with a row; and a single row.
    for shape in [[7, 301], [5, 512], [1, 3000]] {
        let (f, b, m) = super::spreads::spread_run(&shape, &[0]);
        let total = f.outputs[1].value;
        let layout = plan::layout::layout(&f);
        let run = layout.steps.iter().find(|s| s.contains(&m)).unwrap();
        assert!(
            run.contains(&b) && run.contains(&total),
            "{:?}",
            layout.steps
        );
        // The parameter is the run's first tensor: finite values for it,
        // and the sums of its blocks differ from its sum in one chain.
        let mut examples = Vec::new();
        for salt in 0..3 {
            let (p, x) = (
                tensors(&f, true, 2 * salt + 1),
                tensors(&f, false, 2 * salt + 101),
            );
            agree(&f, &p, &x);
            examples.push(x);
        }
        agree_batched(&f, &tensors(&f, true, 5), &examples);
        agree_f32(&f, &tensors(&f, true, 5), &examples);
    }
}

#[test]
fn a_sum_beside_a_concat_counts_the_elements_left_in_its_block() {
    // Parts of 701 and 900 elements: the first block ends in the second.
    let (mut f, p, x) = function(
        &[Shape::vector(1601)],
        &[Shape::vector(701), Shape::vector(900)],
    );
    let c = push(&mut f, Op::Concat, &[x[0], x[1]]);
    let m = push(&mut f, Op::Binary(Binary::Mul), &[c, p[0]]);
    let s = push(&mut f, Op::Sum, &[m]);
    output(&mut f, s);
    let layout = plan::layout::layout(&f);
    assert!(layout
        .steps
        .iter()
        .any(|st| st.contains(&c) && st.contains(&s)));
    agree_in_blocks(&f);
    agree_on_values(&f);
}
