//! A large run computed in parts on several threads (`translate::parts`,
//! [`kernel::runs`]): in chunks of its elements, in slabs of its first
//! axis, in blocks of its columns when a member reduces along the first
//! axis, or in blocks of the product it joins; the interpreter's bits in
//! each case, with subnormals flushed in the parts when the caller
//! flushes them. The iterations are also run one by one, the last first,
//! so that one that depends on another shows.

use super::*;
use crate::backend::subnormals::FlushSubnormals;

/// Runs `body` with `n` threads allowed, then puts back the default (1);
/// no other test that sets the count runs meanwhile.
fn with_threads(n: usize, body: impl FnOnce()) {
    let _setting = kernel::SETTING_THREADS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    kernel::set_threads(n);
    body();
    kernel::set_threads(1);
}

/// Runs `body` with the iterations of every loop in parts run one by one,
/// the last first ([`kernel::runs::REVERSED`]), then puts back the order.
fn reversed(body: impl FnOnce()) {
    use std::sync::atomic::Ordering;
    let _setting = kernel::SETTING_THREADS
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    kernel::runs::REVERSED.store(true, Ordering::Relaxed);
    body();
    kernel::runs::REVERSED.store(false, Ordering::Relaxed);
}

/// Whether the code of `f` hands a loop to the threads.
fn in_parts(f: &Function) -> bool {
    let text = jit::clif_text(f).expect("compiles");
    text.contains(kernel::runs::IN_PARTS)
}

/// `x * w + x` and `exp(x * w + x)` of two vectors of `n`: one run with
/// two members stored.
fn flat(n: usize) -> Function {
    let shape = Shape::vector(n);
    let (mut f, p, x) = function(std::slice::from_ref(&shape), std::slice::from_ref(&shape));
    let xw = push(&mut f, Op::Binary(Binary::Mul), &[x[0], p[0]]);
    let y = push(&mut f, Op::Binary(Binary::Add), &[xw, x[0]]);
    let e = push(&mut f, Op::Unary(Unary::Exp), &[y]);
    output(&mut f, y);
    output(&mut f, e);
    f
}

/// The program of `src` and its gradient program, each with a run in
/// parts: the interpreter's bits on two threads, and with the iterations
/// one by one from the last.
#[track_caller]
fn agree_in_parts(src: &str) {
    let c = crate::compile(src).expect("the program compiles");
    let g = crate::gradient_program(&c.ir).expect("differentiates");
    for f in [c.ir, g] {
        assert!(in_parts(&f), "{f}");
        with_threads(2, || agree_on_values(&f));
        reversed(|| agree_on_values(&f));
    }
}

#[test]
fn a_large_run_goes_in_chunks_the_rest_after_them() {
    // 128 chunks of 1024, then 1003 elements (an odd number of them); the
    // least a run in parts has is 2^17.
    let n = (1 << 17) + 1003;
    let f = flat(n);
    assert!(in_parts(&f), "{f}");
    with_threads(2, || {
        for salt in 0..3 {
            agree(&f, &tensors(&f, true, salt), &tensors(&f, false, 10 + salt));
        }
    });
    reversed(|| agree(&f, &tensors(&f, true, 3), &tensors(&f, false, 13)));
    // One thread: the same function, called once over every chunk.
    agree(&f, &tensors(&f, true, 4), &tensors(&f, false, 14));
    // A smaller run stays one loop: `exp` counts as 4 more elements, so
    // from 2^17 / 5 elements; without it, from 2^17.
    assert!(in_parts(&flat((1 << 17) / 5 + 1)));
    assert!(!in_parts(&flat((1 << 17) / 5)));
    let n = (1 << 17) - 1;
    let (mut g, p, x) = function(&[Shape::vector(n)], &[Shape::vector(n)]);
    let y = push(&mut g, Op::Binary(Binary::Mul), &[x[0], p[0]]);
    let y = push(&mut g, Op::Binary(Binary::Add), &[y, x[0]]);
    output(&mut g, y);
    assert!(!in_parts(&g), "{g}");
}

#[test]
fn a_runs_sums_in_parts_are_added_up_a_block_at_a_time() {
    // 2^17 / 5 elements and more of `exp`: in parts of four blocks, each
    // part storing its blocks' sums, added up by the caller in order, then
    // two blocks side by side and the rest (1003 elements) after them.
    let n = 30 * 1024 + 1003;
    let f = super::long_sums::flat_sums(n);
    assert!(in_parts(&f), "{f}");
    let finite = |salt| (tensors(&f, true, salt), tensors(&f, false, 100 + salt));
    with_threads(2, || {
        for salt in [1, 3, 5] {
            let (p, x) = finite(salt);
            agree(&f, &p, &x);
        }
    });
    let (p, x) = finite(7);
    reversed(|| agree(&f, &p, &x));
    agree(&f, &p, &x);
}

#[test]
fn a_nest_goes_in_slabs_of_its_first_axis() {
    // A spread along the middle axis, a sum along it: 16 slabs.
    let src = "input x: [16, 40, 256]\nparam c: [16, 256]\n\
               let z = x * reshape(c, [16, 1, 256]) + x\n\
               loss sum(log(1 + sum(z^2, axis = 1)))\n";
    agree_in_parts(src);
}

#[test]
fn a_nest_reduced_along_its_first_axis_goes_in_blocks_of_columns() {
    // A maximum and a sum along the first axis: each column's elements
    // in order, in one part; two blocks of 500 columns, then 6. (The
    // gradient reads each sum's bits through `log(1 + s^2)`.)
    let src = "input x: [4, 33, 1006]\nparam c: [4, 1006]\n\
               let z = x * reshape(c, [4, 1, 1006])\n\
               let s = sum(z, axis = 0)\n\
               loss sum(max(z, axis = 0)) + sum(log(1 + s^2))\n";
    agree_in_parts(src);
}

#[test]
fn the_parts_flush_subnormals_when_the_caller_does() {
    let f = flat(1 << 17);
    assert!(in_parts(&f));
    // `x * w` subnormal: zero when flushed, and then `x * w + x` is `x`.
    let tiny = |t: Tensor, scale: f64| {
        let data = t.data.iter().map(|&v| v * scale).collect();
        Tensor::new(t.shape, data)
    };
    let w = tiny(tensors(&f, true, 1).remove(0), 1e-10);
    let x = tiny(tensors(&f, false, 3).remove(0), 1e-300);
    with_threads(2, || {
        agree(&f, std::slice::from_ref(&w), std::slice::from_ref(&x));
        if let Some(_flush) = FlushSubnormals::on() {
            let jit = compile(&f).expect("compiles");
            let out = jit.run(std::slice::from_ref(&w), std::slice::from_ref(&x));
            let out = out.expect("the JIT runs");
            assert!(out[0].data.iter().zip(&x.data).all(|(y, x)| y == x));
            agree(&f, &[w], &[x]);
        }
    });
}

#[test]
fn a_joined_product_goes_in_parts_each_with_a_block_of_its_own() {
    // `kmeans`' distances, 300 x 7012: 146 blocks of 48 columns in parts,
    // each part's on its stack, then 4 columns; 2000 x 150: 9 blocks of
    // 16 columns (250 KiB each, more than the 2^14 numbers aimed at),
    // then 6.
    for (m, n, k) in [(300, 7012, 6), (2000, 150, 5)] {
        let (f, _) = super::blocks::distances(m, n, k, false);
        assert!(in_parts(&f), "{f}");
        let params = tensors(&f, true, 4);
        let x = tensors(&f, false, 6);
        with_threads(2, || agree(&f, &params, &x));
        reversed(|| agree(&f, &params, &x));
    }
}

#[test]
fn a_product_read_through_a_reshape_joins_its_run_in_parts() {
    // `gmm`'s objective: the [40 16, 1024] product seen as [40, 16, 1024]
    // (a reshape that keeps its rows), a spread subtracted, the squares
    // summed along the middle axis.
    let src = "input x: [1024, 16]\nparam W: [40, 16, 16]\nparam c: [40, 16]\n\
               let Z = W @ x.T - reshape(c, [40, 16, 1])\n\
               loss sum(logsumexp(-0.5 * sum(Z^2, axis = 1), axis = 0))\n";
    let f = crate::compile(src).expect("the program compiles").ir;
    let layout = plan::layout::layout(&f);
    let joined = layout.steps.iter().find(|s| f.inst(s[0]).op == Op::MatMul);
    let run = joined.expect("a step begins with the product");
    assert!(
        matches!(f.inst(run[1]).op, Op::Reshape(_)) && run.len() > 3,
        "{run:?}\n{f}"
    );
    assert!(in_parts(&f), "{f}");
    // Odd salts: no special values, whose NaN would hide every other bit
    // of the loss.
    let params = tensors(&f, true, 3);
    let x = tensors(&f, false, 7);
    agree(&f, &params, &x);
    with_threads(2, || agree(&f, &params, &x));
    reversed(|| agree(&f, &params, &x));
}

#[test]
fn a_large_maximum_goes_in_parts_of_slices() {
    // 2^17 elements and more: slices of 2^14 in parts, each's maximum on
    // the caller's stack, then the 1003 elements after the last slice.
    let n = (1 << 17) + 1003;
    let (mut f, _, x) = function(&[], &[Shape::vector(n)]);
    let m = push(&mut f, Op::ReduceMax, &[x[0]]);
    output(&mut f, m);
    assert!(in_parts(&f), "{f}");
    let base = tensors(&f, false, 7).remove(0);
    // The largest element in a slice (each of the last three's), in the
    // rest, at the first and the last element; -0 against +0; a NaN,
    // which wins wherever it is.
    let with = |changes: &[(usize, f64)]| {
        let mut t = base.clone();
        t.data.iter_mut().for_each(|v| *v = -v.abs() - 1.0);
        for &(i, v) in changes {
            t.data[i] = v;
        }
        t
    };
    let cases = [
        with(&[(40_000, 5.0)]),
        with(&[(100_000, 5.0), (40_000, 4.0)]),
        with(&[(120_000, f64::NAN)]),
        with(&[(n - 3, 5.0)]),
        with(&[(0, 5.0), (n - 1, 4.0)]),
        with(&[(20_000, -0.0), (n - 2, 0.0)]),
        with(&[(70_000, 0.0), (n - 2, -0.0)]),
        with(&[(3, f64::NAN), (50_000, 9.0)]),
        with(&[(n - 5, f64::NAN)]),
    ];
    for x in &cases {
        with_threads(2, || agree(&f, &[], std::slice::from_ref(x)));
        reversed(|| agree(&f, &[], std::slice::from_ref(x)));
        agree(&f, &[], std::slice::from_ref(x));
    }
    // A smaller one stays one loop.
    let (mut g, _, x) = function(&[], &[Shape::vector((1 << 17) - 1)]);
    let m = push(&mut g, Op::ReduceMax, &[x[0]]);
    output(&mut g, m);
    assert!(!in_parts(&g));
}
