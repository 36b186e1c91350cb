//! The outputs of the function of one example: each computed straight into
//! the caller's buffer by the step that writes it, not into its slot and
//! copied at the end; an output listed twice, a loop's value and a view
//! copied as before. The interpreter's bits, and the copies gone from the
//! code.

use super::*;

/// `y = x * 2 + p` over `[n]`, an output (twice if `twice`), and a slice
/// of it (a view), also an output if `view`; and `z = y * y`, read after
/// `y` is written (from its buffer), an output too.
fn outputs(n: usize, twice: bool, view: bool) -> Function {
    let (mut f, p, x) = function(&[Shape::vector(n)], &[Shape::vector(n)]);
    let two = push(&mut f, Op::Const(ConstData(Tensor::scalar(2.0))), &[]);
    let doubled = push(&mut f, Op::Binary(Binary::Mul), &[x[0], two]);
    let y = push(&mut f, Op::Binary(Binary::Add), &[doubled, p[0]]);
    // A product of the whole of `y` (not elementwise), so that `z` is a
    // step after `y`'s, reading `y` where it was written.
    let row = push(&mut f, Op::Reshape(Shape::matrix(1, n)), &[y]);
    let column = push(&mut f, Op::Reshape(Shape::matrix(n, 1)), &[y]);
    let z = push(&mut f, Op::MatMul, &[column, row]);
    output(&mut f, y);
    if twice {
        output(&mut f, y);
    }
    if view {
        let head = push(&mut f, Op::Slice(vec![SliceAxis::Range(0, n / 2)]), &[y]);
        output(&mut f, head);
    }
    output(&mut f, z);
    f
}

#[test]
fn outputs_are_computed_in_the_callers_buffers() {
    for n in [2, 3, 8, 9, 64] {
        for (twice, view) in [(false, false), (true, false), (false, true)] {
            agree_on_values(&outputs(n, twice, view));
        }
    }
    // `y`'s run writes the caller's buffer: no loop copies it there. Listed
    // twice, it is copied to both; its view is copied too.
    let n = 64;
    let alone = count(&outputs(n, false, false), "brif");
    let twice = count(&outputs(n, true, false), "brif");
    let view = count(&outputs(n, false, true), "brif");
    assert_eq!(twice, alone + 2, "{alone} loops, {twice} with `y` twice");
    assert_eq!(view, alone + 1, "{alone} loops, {view} with a view of `y`");
}
