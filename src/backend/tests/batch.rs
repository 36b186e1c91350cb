//! Batched functions: the loop over the examples inside the machine code,
//! its plan (hoisting, fusion) and its errors. The products with a matrix
//! fixed over the batch are in `products`.

use super::*;

#[test]
fn batched_one_hot_fails_at_the_example_the_interpreter_fails() {
    let (mut f, _, x) = function(&[], &[Shape::scalar(), Shape::vector(2)]);
    let y = push(&mut f, Op::OneHot(3), &[x[0]]);
    let z = push(&mut f, Op::Sum, &[y]);
    output(&mut f, z);
    let g = as_means(&f);
    let jit = compile_batched(&g).unwrap();
    let pairs = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    for (classes, bad) in [
        ([0.0, 2.0, 1.0], None),
        ([1.0, 1.0, 3.0], Some(2)),
        ([0.5, 7.0, 1.0], Some(0)),
    ] {
        let got = jit.run(&[], &[&classes, &pairs], 3);
        match bad {
            None => assert_eq!(got.unwrap()[0].item(), 1.0),
            Some(b) => {
                let inputs = [Tensor::scalar(classes[b]), Tensor::zeros(Shape::vector(2))];
                let want = interp::run_outputs(&g, &[], &inputs).unwrap_err();
                assert!(matches!(want, RunError::Fault { at, .. } if at == y));
                assert_eq!(got.unwrap_err(), want.in_example(Some(b)));
            }
        }
    }
    // A one_hot of something that does not depend on the example still runs
    // per example, and still fails.
    let (mut f, p, _) = function(&[Shape::scalar()], &[Shape::scalar()]);
    let y = push(&mut f, Op::OneHot(2), &[p[0]]);
    let z = push(&mut f, Op::Sum, &[y]);
    output(&mut f, z);
    let jit = compile_batched(&as_means(&f)).unwrap();
    let err = jit
        .run(&[Tensor::scalar(5.0)], &[&[0.0, 0.0]], 2)
        .unwrap_err();
    assert_eq!(
        err,
        RunError::Fault {
            at: y,
            span: Span::default(),
            example: Some(0),
            fault: Fault::ClassIndex {
                class: 5.0,
                classes: 2
            },
        }
    );
    assert_eq!(
        err.to_string(),
        "example 0: class index 5 is out of range for 2 classes (0 to 1)"
    );
}

#[test]
fn batched_buffers_are_checked_before_the_call() {
    let (mut f, p, x) = function(&[Shape::vector(3)], &[Shape::matrix(2, 3), Shape::scalar()]);
    let y = push(&mut f, Op::MatMul, &[x[0], p[0]]);
    let s = push(&mut f, Op::Sum, &[y]);
    let l = push(&mut f, Op::Binary(Binary::Mul), &[s, x[1]]);
    f.outputs.push(Output {
        role: Role::Loss,
        name: "loss".into(),
        value: l,
    });
    f.outputs.push(Output {
        role: Role::Output,
        name: "y".into(),
        value: y,
    });
    let means = compile_batched(&f).unwrap();
    assert_eq!(
        means.outputs(),
        &[BatchOutput {
            index: 0,
            reduce: Reduce::Mean
        }]
    );
    let per = compile_batched_with(
        &f,
        BatchOptions {
            per_example_outputs: true,
            ..BatchOptions::default()
        },
    )
    .unwrap();
    assert_eq!(per.outputs().len(), 2);
    assert_eq!(per.output_shape(1, 5), Shape::matrix(5, 2));

    let w = [1.0; 3];
    let m = [0.5; 12];
    let c = [2.0; 2];
    let mut s = means.scratch();
    let mut loss = [0.0];
    let ok = means.run_batch(&mut s, &[&w], &[&m, &c], 2, &mut [&mut loss]);
    assert_eq!(ok, Ok(()));
    assert_eq!(loss[0], 6.0);
    let mut run = |params: &[&[f64]], inputs: &[&[f64]], n, out: &mut [&mut [f64]]| {
        means.run_batch(&mut s, params, inputs, n, out)
    };
    // n = 0, inputs of another n, missing or extra buffers, wrong lengths.
    assert_eq!(
        run(&[&w], &[&[], &[]], 0, &mut [&mut loss]).unwrap_err(),
        RunError::Misuse("a batch needs at least one example".into())
    );
    assert_eq!(
        run(&[&w], &[&m, &c], 3, &mut [&mut loss])
            .unwrap_err()
            .to_string(),
        "input x0 has shape [2, 3]: 3 examples need 3 x 6 numbers but its buffer holds 12"
    );
    assert!(run(&[&w], &[&m[..11], &c], 2, &mut [&mut loss]).is_err());
    assert!(run(&[&w], &[&m, &c[..1]], 2, &mut [&mut loss]).is_err());
    assert!(run(&[&w], &[&m], 2, &mut [&mut loss]).is_err());
    assert!(run(&[&w[..2]], &[&m, &c], 2, &mut [&mut loss]).is_err());
    assert!(run(&[], &[&m, &c], 2, &mut [&mut loss]).is_err());
    assert!(run(&[&w], &[&m, &c], 2, &mut []).is_err());
    let mut two = [0.0; 2];
    assert!(run(&[&w], &[&m, &c], 2, &mut [&mut two]).is_err());
    assert!(run(&[&w], &[&m, &c], 2, &mut [&mut loss, &mut two]).is_err());
    // n so large that n rows overflow.
    assert!(run(&[&w], &[&m, &c], usize::MAX / 2, &mut [&mut loss]).is_err());
    // Per-example buffers hold n rows.
    let mut ps = per.scratch();
    let mut rows = [0.0; 4];
    let ok = per.run_batch(&mut ps, &[&w], &[&m, &c], 2, &mut [&mut loss, &mut rows]);
    assert_eq!(ok, Ok(()));
    assert_eq!(rows, [1.5; 4]);
    let mut short = [0.0; 2];
    let err = per.run_batch(&mut ps, &[&w], &[&m, &c], 2, &mut [&mut loss, &mut short]);
    assert_eq!(
        err.unwrap_err(),
        RunError::Misuse(
            "output y of 2 examples has shape [2, 2] but its buffer holds 2 numbers".into()
        )
    );
    // A scratch made for another function is refused.
    let err = per.run_batch(
        &mut means.scratch(),
        &[&w],
        &[&m, &c],
        2,
        &mut [&mut loss, &mut rows],
    );
    assert!(err.is_err());
    let err = means.run_batch(&mut jit_scratch(), &[&w], &[&m, &c], 2, &mut [&mut loss]);
    assert!(err.is_err());
}

/// A scratch buffer of an unrelated single-example function.
fn jit_scratch() -> Scratch {
    let (mut g, _, x) = function(&[], &[Shape::vector(40)]);
    let e = push(&mut g, Op::Unary(Unary::Exp), &[x[0]]);
    output(&mut g, e);
    compile(&g).unwrap().scratch()
}

#[test]
fn batch_plan_hoists_what_does_not_depend_on_the_example() {
    // %0 = param w [3], %1 = input x [3], %2 = exp w, %3 = mul %2 x,
    // %4 = sum %3 (loss), %5 = neg x (an output), %6 = sum w (a metric).
    let (mut f, p, x) = function(&[Shape::vector(3)], &[Shape::vector(3)]);
    let e = push(&mut f, Op::Unary(Unary::Exp), &[p[0]]);
    let m = push(&mut f, Op::Binary(Binary::Mul), &[e, x[0]]);
    let l = push(&mut f, Op::Sum, &[m]);
    let o = push(&mut f, Op::Unary(Unary::Neg), &[x[0]]);
    let k = push(&mut f, Op::Sum, &[p[0]]);
    for (role, v) in [(Role::Loss, l), (Role::Output, o), (Role::Metric, k)] {
        f.outputs.push(Output {
            name: format!("{role:?}"),
            role,
            value: v,
        });
    }
    let plan = plan::batch::batch_plan(&f, false);
    let layout = &plan.layout;
    // sum w is hoisted before the run of exp w.
    assert_eq!(layout.steps[..layout.body], [vec![p[0]], vec![k], vec![e]]);
    // mul and sum are one loop; the product is never stored.
    assert_eq!(layout.steps[layout.body..], [vec![x[0]], vec![m, l]]);
    assert!(layout.internal[m]);
    // exp w is read by every example: its slot is never reused.
    assert_eq!(layout.slots[e], Some(plan::FIRST_FREE));
    assert_eq!(layout.slots[m], None);
    assert_eq!(layout.scratch_len, plan::FIRST_FREE + 3);
    let plan = plan::batch::batch_plan(&f, true);
    let layout = &plan.layout;
    assert_eq!(layout.steps[layout.body..], [vec![x[0]], vec![m, l, o]]);
    assert_eq!(layout.slots[o], Some(plan::FIRST_FREE + 3));
    assert_eq!(plan.outputs.len(), 3);
    let examples: Vec<Vec<Tensor>> = (0..5).map(|s| tensors(&f, false, 300 + s)).collect();
    agree_batched(&f, &tensors(&f, true, 7), &examples);
}

#[test]
fn batched_functions_without_inputs_repeat_the_example() {
    let (mut f, p, _) = function(&[Shape::vector(5)], &[]);
    let e = push(&mut f, Op::Unary(Unary::Sin), &[p[0]]);
    let s = push(&mut f, Op::Sum, &[e]);
    output(&mut f, s);
    output(&mut f, e);
    let examples = vec![Vec::new(); 7];
    agree_batched(&f, &tensors(&f, true, 1), &examples);
    both_send_sync::<BatchedFunction>();
}

fn both_send_sync<T: Send + Sync>() {}

#[test]
fn fused_runs_and_views() {
    for s in [
        Shape::vector(1),
        Shape::vector(2),
        Shape::vector(7),
        Shape::vector(12),
        Shape::matrix(2, 3),
    ] {
        let (mut f, p, x) = function(&[s.clone(), Shape::scalar()], std::slice::from_ref(&s));
        // Lane-wise only: a loop over pairs.
        let a = push(&mut f, Op::Binary(Binary::Mul), &[x[0], p[0]]);
        let b = push(&mut f, Op::Binary(Binary::Add), &[a, p[1]]);
        let c = push(&mut f, Op::Unary(Unary::Neg), &[b]);
        let k = push(&mut f, Op::Broadcast(s.clone()), &[p[1]]);
        let d = push(&mut f, Op::Binary(Binary::Max), &[c, k]);
        let e = push(&mut f, Op::Binary(Binary::Mul), &[d, d]);
        let sum = push(&mut f, Op::Sum, &[e]);
        let g = push(&mut f, Op::Unary(Unary::Sqrt), &[e]);
        let sum2 = push(&mut f, Op::Sum, &[g]);
        // Not elementwise, and reading the run: it goes after it, and so
        // does `u`, which reads it. `h` and `t` join the first run, which
        // then has calls and selects and goes one element at a time. It
        // stores `b` and `t` (read by later steps) and `d` (an output).
        let brk = push(&mut f, Op::Norm, &[b]);
        let h = push(&mut f, Op::Unary(Unary::Exp), &[b]);
        let t = push(&mut f, Op::Select, &[x[0], h, g]);
        let u = push(&mut f, Op::Binary(Binary::Pow), &[t, brk]);
        let sum3 = push(&mut f, Op::Sum, &[u]);
        // Independent of the run: hoisted before it.
        let early = push(&mut f, Op::Norm, &[x[0]]);
        output(&mut f, early);
        for v in [sum, sum2, d, sum3] {
            output(&mut f, v);
        }
        let layout = plan::layout::layout(&f);
        let first = vec![a, b, c, k, d, e, sum, g, sum2, h, t];
        let steps = &layout.steps[3..];
        assert_eq!(steps, [vec![early], first, vec![brk], vec![u, sum3]]);
        for v in [a, c, k, e, g, h] {
            assert!(layout.internal[v], "{v:?}");
        }
        for v in [b, d, t] {
            assert!(!layout.internal[v] && layout.slots[v].is_some());
        }
        agree_on_values(&f);
    }
    // Contiguous slices are views, of parameters, inputs, constants and
    // computed values; the others are copies.
    let (mut f, p, x) = function(&[Shape::vector(6)], &[Shape::matrix(3, 4)]);
    let (r, at) = (SliceAxis::Range, SliceAxis::At);
    let row = push(&mut f, Op::Slice(vec![at(1), r(0, 4)]), &[x[0]]);
    let part = push(&mut f, Op::Slice(vec![at(2), r(1, 3)]), &[x[0]]);
    let col = push(&mut f, Op::Slice(vec![r(0, 3), at(1)]), &[x[0]]);
    let tail = push(&mut f, Op::Slice(vec![r(2, 6)]), &[p[0]]);
    let k = Tensor::new(Shape::vector(5), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
    let k = push(&mut f, Op::Const(ConstData(k)), &[]);
    let kv = push(&mut f, Op::Slice(vec![r(1, 5)]), &[k]);
    let e = push(&mut f, Op::Unary(Unary::Exp), &[tail]);
    let ev = push(&mut f, Op::Slice(vec![r(1, 3)]), &[e]);
    let sum = push(&mut f, Op::Binary(Binary::Add), &[row, tail]);
    let sum = push(&mut f, Op::Binary(Binary::Mul), &[sum, kv]);
    for v in [row, part, col, tail, kv, ev, sum] {
        output(&mut f, v);
    }
    let layout = plan::layout::layout(&f);
    for v in [row, part, tail, kv, ev] {
        assert!(plan::views::view_offset(&f, v).is_some(), "{v:?}");
        assert_eq!(layout.slots[v], None);
    }
    assert_eq!(plan::views::view_offset(&f, col), None);
    agree_on_values(&f);
}

#[test]
fn every_elementwise_op_alone() {
    for s in [Shape::vector(12), Shape::vector(5), Shape::matrix(2, 3)] {
        for u in Unary::ALL {
            let (mut f, _, x) = function(&[], std::slice::from_ref(&s));
            let y = push(&mut f, Op::Unary(u), &[x[0]]);
            output(&mut f, y);
            agree_on_values(&f);
        }
        for op in Binary::ALL {
            for (a, b) in [(s.clone(), s.clone()), (Shape::scalar(), s.clone())] {
                let (mut f, p, x) = function(&[a], &[b]);
                let y = push(&mut f, Op::Binary(op), &[p[0], x[0]]);
                output(&mut f, y);
                agree_on_values(&f);
            }
        }
        let (mut f, _, x) = function(&[], &[s.clone(), s.clone(), Shape::scalar()]);
        let y = push(&mut f, Op::Select, &[x[0], x[1], x[2]]);
        output(&mut f, y);
        agree_on_values(&f);
    }
    // Comparisons on ±0, NaN and infinities.
    let (mut f, p, x) = function(&[Shape::vector(8)], &[Shape::vector(8)]);
    for op in [
        Binary::Eq,
        Binary::Ne,
        Binary::Lt,
        Binary::Le,
        Binary::Gt,
        Binary::Ge,
    ] {
        let y = push(&mut f, Op::Binary(op), &[p[0], x[0]]);
        output(&mut f, y);
    }
    let inf = f64::INFINITY;
    let a = [0.0, -0.0, f64::NAN, 1.0, inf, -inf, f64::NAN, 2.0];
    let b = [-0.0, 0.0, 1.0, f64::NAN, inf, inf, f64::NAN, 2.0];
    let t = |d: [f64; 8]| Tensor::new(Shape::vector(8), d.to_vec());
    agree(&f, &[t(a)], &[t(b)]);
    agree(&f, &[t(b)], &[t(a)]);
}
