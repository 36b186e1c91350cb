//! Single-example functions: each operation family against the interpreter,
//! buffer checks, and the compiled function's properties.

use super::*;

#[test]
fn unary_ops() {
    for s in shapes() {
        let (mut f, _, x) = function(&[], &[s]);
        for u in Unary::ALL {
            let y = push(&mut f, Op::Unary(u), &[x[0]]);
            output(&mut f, y);
        }
        agree_on_values(&f);
    }
}

#[test]
fn rounding_and_the_new_functions_on_special_values() {
    // Ties (round is to even), signed zeros, values near the limits of each
    // function, in f64x2 pairs and a scalar tail.
    let xs = [
        -2.5,
        -1.5,
        -0.5,
        0.5,
        1.5,
        2.5,
        -0.0,
        0.0,
        4503599627370495.5,
        -1e-310,
        1e-20,
        -1.0,
        -1.0000001,
        709.8,
        -745.2,
        27.0,
        -6.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        709.78,
        -740.0,
        -1000.0,
    ];
    let s = Shape::vector(xs.len());
    let (mut f, _, x) = function(&[], std::slice::from_ref(&s));
    for u in [
        Unary::Floor,
        Unary::Round,
        Unary::Exp,
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::Log1p,
        Unary::Expm1,
        Unary::Erf,
    ] {
        let y = push(&mut f, Op::Unary(u), &[x[0]]);
        output(&mut f, y);
    }
    agree(&f, &[], &[Tensor::new(s, xs.to_vec())]);
}

#[test]
fn the_inline_exp_is_the_interpreters_over_its_whole_range() {
    // 20,001 points over [-750, 720] (both clamps, the subnormals, the
    // overflow), an odd count so the last one is done alone, each fused
    // into a sum and a sigmoid too.
    let n = 20_001;
    let xs: Vec<f64> = (0..n)
        .map(|i| -750.0 + 1470.0 * i as f64 / (n - 1) as f64)
        .collect();
    let s = Shape::vector(n);
    let (mut f, _, x) = function(&[], std::slice::from_ref(&s));
    let e = push(&mut f, Op::Unary(Unary::Exp), &[x[0]]);
    output(&mut f, e);
    let small = push(&mut f, Op::Unary(Unary::Neg), &[e]);
    let g = push(&mut f, Op::Unary(Unary::Sigmoid), &[small]);
    let total = push(&mut f, Op::Sum, &[g]);
    output(&mut f, total);
    let lse = push(&mut f, Op::LogSumExp, &[x[0]]);
    output(&mut f, lse);
    agree(&f, &[], &[Tensor::new(s, xs)]);
}

#[test]
fn a_maximum_read_four_at_a_time_is_the_interpreters() {
    // Sizes around the four-element step, the largest in every position
    // (each lane of each running maximum, and the tail), signed zeros,
    // infinities and a NaN anywhere.
    for n in 4..12 {
        let s = Shape::vector(n);
        let (mut f, _, x) = function(&[], std::slice::from_ref(&s));
        let y = push(&mut f, Op::ReduceMax, &[x[0]]);
        output(&mut f, y);
        let lse = push(&mut f, Op::LogSumExp, &[x[0]]);
        output(&mut f, lse);
        for at in 0..n {
            for big in [5.0, 0.0, f64::INFINITY, f64::NAN] {
                let mut data: Vec<f64> = (0..n).map(|i| -(i as f64) - 1.0).collect();
                data[at] = big;
                agree(&f, &[], &[Tensor::new(s.clone(), data.clone())]);
                if big == 0.0 {
                    data[(at + 1) % n] = -0.0;
                    agree(&f, &[], &[Tensor::new(s.clone(), data)]);
                }
            }
        }
        let zeros = Tensor::new(s.clone(), vec![-0.0; n]);
        agree(&f, &[], &[zeros]);
        let low = Tensor::new(s.clone(), vec![f64::NEG_INFINITY; n]);
        agree(&f, &[], &[low]);
    }
}

#[test]
fn binary_ops_with_broadcasting() {
    let v = Shape::vector(12);
    let cases = [
        (Shape::scalar(), Shape::scalar()),
        (v.clone(), v.clone()),
        (Shape::scalar(), v.clone()),
        (v.clone(), Shape::scalar()),
        (Shape::vector(5), Shape::vector(5)),
        (Shape::matrix(2, 3), Shape::scalar()),
    ];
    for (a, b) in cases {
        let (mut f, p, x) = function(&[a], &[b]);
        for op in Binary::ALL {
            let y = push(&mut f, Op::Binary(op), &[p[0], x[0]]);
            output(&mut f, y);
        }
        agree_on_values(&f);
    }
}

#[test]
fn signed_zeros_in_max_min_and_comparisons() {
    let (mut f, p, x) = function(&[Shape::vector(4)], &[Shape::vector(4)]);
    for op in [Binary::Max, Binary::Min, Binary::Eq, Binary::Lt] {
        let y = push(&mut f, Op::Binary(op), &[p[0], x[0]]);
        output(&mut f, y);
    }
    let a = Tensor::new(Shape::vector(4), vec![0.0, -0.0, f64::NAN, 1.0]);
    let b = Tensor::new(Shape::vector(4), vec![-0.0, 0.0, 1.0, f64::NAN]);
    agree(&f, std::slice::from_ref(&a), std::slice::from_ref(&b));
    agree(&f, &[b], &[a]);
}

#[test]
fn select_never_takes_the_untaken_side() {
    for (c, a, b) in [
        (Shape::vector(5), Shape::vector(5), Shape::vector(5)),
        (Shape::scalar(), Shape::vector(5), Shape::scalar()),
        (Shape::vector(5), Shape::scalar(), Shape::vector(5)),
        (Shape::scalar(), Shape::scalar(), Shape::scalar()),
    ] {
        let (mut f, _, x) = function(&[], &[c, a, b]);
        let y = push(&mut f, Op::Select, &[x[0], x[1], x[2]]);
        output(&mut f, y);
        agree_on_values(&f);
        let inputs: Vec<Tensor> = f
            .inputs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let data = match i {
                    0 => [1.0, 0.0, f64::NAN, -0.0, 2.0],
                    1 => [5.0, f64::NAN, 6.0, f64::INFINITY, 7.0],
                    _ => [f64::NAN, 8.0, f64::NAN, 9.0, f64::NAN],
                };
                Tensor::new(s.shape.clone(), data[..s.shape.size()].to_vec())
            })
            .collect();
        agree(&f, &[], &inputs);
        let out = compile(&f).unwrap().run(&[], &inputs).unwrap();
        if f.inputs.iter().all(|s| s.shape.size() == 5) {
            assert!(out[0].data.iter().all(|x| !x.is_nan()), "{}", out[0]);
        }
    }
}

#[test]
fn matmul_outer_transpose() {
    let cases = [
        (Shape::matrix(2, 3), Shape::matrix(3, 4)),
        (Shape::matrix(5, 7), Shape::matrix(7, 6)),
        (Shape::matrix(4, 3), Shape::vector(3)),
        (Shape::matrix(9, 10), Shape::vector(10)),
        (Shape::vector(3), Shape::matrix(3, 2)),
        (Shape::vector(11), Shape::matrix(11, 5)),
        (Shape::vector(3), Shape::vector(3)),
        (Shape::vector(13), Shape::vector(13)),
        // Blocked: rows by four, columns by eight, the rest in one block.
        (Shape::matrix(6, 20), Shape::matrix(20, 19)),
        (Shape::vector(20), Shape::matrix(20, 19)),
        (Shape::matrix(16, 5), Shape::vector(5)),
        (Shape::matrix(2, 6), Shape::vector(6)),
        (Shape::matrix(19, 9), Shape::vector(9)),
        // Large enough for the kernel: edge tiles, and k over a block.
        (Shape::matrix(13, 21), Shape::matrix(21, 35)),
        (Shape::matrix(7, 300), Shape::matrix(300, 3)),
        // A row times a matrix of 2^17 numbers or more, in passes over its
        // rows: a last pass of one row, pairs and a single column after the
        // blocks; then passes of whole rows only.
        (Shape::vector(1000), Shape::matrix(1000, 151)),
        (Shape::vector(1024), Shape::matrix(1024, 128)),
    ];
    for (a, b) in cases {
        let (mut f, p, x) = function(&[a], &[b]);
        let y = push(&mut f, Op::MatMul, &[p[0], x[0]]);
        output(&mut f, y);
        agree_on_values(&f);
    }
    // Transposes by the generated loops, and from 1024 numbers by the
    // kernel's blocks: edges of every width, a single column, and the
    // special values (NaN's bits too) moved as they are.
    for (m, n) in [
        (2, 3),
        (7, 9),
        (1, 1),
        (32, 32),
        (37, 45),
        (1500, 1),
        (3, 1021),
    ] {
        let (mut f, p, x) = function(&[Shape::vector(m)], &[Shape::vector(n)]);
        let y = push(&mut f, Op::Outer, &[p[0], x[0]]);
        output(&mut f, y);
        let t = push(&mut f, Op::Transpose, &[y]);
        output(&mut f, t);
        agree_on_values(&f);
    }
    let (mut f, _, x) = function(&[], &[Shape::matrix(40, 30)]);
    let t = push(&mut f, Op::Transpose, &[x[0]]);
    output(&mut f, t);
    let mut values: Vec<f64> = (0..1200).map(|i| i as f64 * 0.5 - 7.0).collect();
    values[..SPECIAL.len()].copy_from_slice(&SPECIAL);
    values[13] = f64::from_bits(0x7ff8_0000_dead_beef);
    let jit = compile(&f).unwrap();
    let got = jit
        .run(&[], &[Tensor::new(Shape::matrix(40, 30), values.clone())])
        .unwrap();
    for i in 0..40 {
        for j in 0..30 {
            let (x, y) = (values[i * 30 + j], got[0].data[j * 40 + i]);
            assert_eq!(x.to_bits(), y.to_bits(), "({i}, {j})");
        }
    }
}

#[test]
fn reductions() {
    for s in shapes() {
        let (mut f, _, x) = function(&[], &[s]);
        for op in [Op::Sum, Op::ReduceMax, Op::Norm, Op::LogSumExp] {
            let y = push(&mut f, op, &[x[0]]);
            output(&mut f, y);
        }
        agree_on_values(&f);
    }
    // The special cases of norm and logsumexp.
    let (mut f, _, x) = function(&[], &[Shape::vector(3)]);
    for op in [Op::Sum, Op::ReduceMax, Op::Norm, Op::LogSumExp] {
        let y = push(&mut f, op, &[x[0]]);
        output(&mut f, y);
    }
    for data in [
        [0.0, -0.0, 0.0],
        [-0.0, -0.0, -0.0],
        [3e200, 4e200, 0.0],
        [1e-320, -3e-320, 0.0],
        [f64::NEG_INFINITY; 3],
        [f64::NEG_INFINITY, 2.0, f64::NEG_INFINITY],
        [f64::INFINITY, 1.0, 2.0],
        [f64::NAN, 1.0, 2.0],
        [1000.0, 1000.0, -1000.0],
    ] {
        agree(&f, &[], &[Tensor::new(Shape::vector(3), data.to_vec())]);
    }
}

#[test]
fn softmax_and_log_softmax() {
    for n in [1, 3, 12] {
        let (mut f, _, x) = function(&[], &[Shape::vector(n)]);
        let y = push(&mut f, Op::Softmax(0), &[x[0]]);
        output(&mut f, y);
        let y = push(&mut f, Op::LogSoftmax(0), &[x[0]]);
        output(&mut f, y);
        agree_on_values(&f);
    }
    let (mut f, _, x) = function(&[], &[Shape::vector(2)]);
    let y = push(&mut f, Op::Softmax(0), &[x[0]]);
    output(&mut f, y);
    let y = push(&mut f, Op::LogSoftmax(0), &[x[0]]);
    output(&mut f, y);
    let far = Tensor::new(Shape::vector(2), vec![1000.0, 1000.0 + 3f64.ln()]);
    agree(&f, &[], &[far]);
}

/// A `softmax` and a `log_softmax` of one value are one step, whose
/// exponentials serve both, with the bits of each computed alone: on the
/// special values (a maximum that is infinite or NaN, where `logsumexp` is
/// the maximum itself), along every axis of a matrix, in either order, and
/// not when the axes differ.
#[test]
fn softmax_pairs() {
    let (mut f, _, x) = function(&[], &[Shape::vector(3)]);
    let l = push(&mut f, Op::LogSoftmax(0), &[x[0]]);
    let e = push(&mut f, Op::Unary(Unary::Exp), &[l]);
    output(&mut f, e);
    let s = push(&mut f, Op::Softmax(0), &[x[0]]);
    output(&mut f, s);
    output(&mut f, l);
    let steps = crate::backend::plan::layout::layout(&f).steps;
    assert!(steps.contains(&vec![l, s]), "{steps:?}");
    for data in [
        [1.0, 2.0, 3.0],
        [-0.0, 0.0, -0.0],
        [1000.0, 1000.0 + 3f64.ln(), -1000.0],
        [f64::NEG_INFINITY; 3],
        [f64::NEG_INFINITY, 2.0, f64::NEG_INFINITY],
        [f64::INFINITY, 1.0, 2.0],
        [f64::NAN, 1.0, 2.0],
        [1e-320, -3e-320, 5e300],
    ] {
        agree(&f, &[], &[Tensor::new(Shape::vector(3), data.to_vec())]);
    }
    agree_on_values(&f);
    let (mut f, _, x) = function(&[], &[Shape::matrix(4, 3)]);
    let mut pairs = Vec::new();
    for axis in 0..2 {
        let s = push(&mut f, Op::Softmax(axis), &[x[0]]);
        output(&mut f, s);
        let l = push(&mut f, Op::LogSoftmax(axis), &[x[0]]);
        output(&mut f, l);
        pairs.push(vec![s, l]);
    }
    let steps = crate::backend::plan::layout::layout(&f).steps;
    for p in &pairs {
        assert!(steps.contains(p), "{steps:?}");
    }
    agree_on_values(&f);
    let (mut f, _, x) = function(&[], &[Shape::matrix(4, 3)]);
    let s = push(&mut f, Op::Softmax(0), &[x[0]]);
    output(&mut f, s);
    let l = push(&mut f, Op::LogSoftmax(1), &[x[0]]);
    output(&mut f, l);
    let steps = crate::backend::plan::layout::layout(&f).steps;
    assert!(
        steps.contains(&vec![s]) && steps.contains(&vec![l]),
        "{steps:?}"
    );
    agree_on_values(&f);
}

#[test]
fn broadcast_slice_unslice_pack() {
    let (mut f, p, x) = function(&[Shape::scalar()], &[Shape(vec![3, 5, 4])]);
    for s in [
        Shape::scalar(),
        Shape::vector(1),
        Shape::vector(7),
        Shape::matrix(3, 3),
    ] {
        let y = push(&mut f, Op::Broadcast(s), &[p[0]]);
        output(&mut f, y);
    }
    let (r, a) = (SliceAxis::Range, SliceAxis::At);
    let slices = [
        vec![a(1), a(2), a(3)],
        vec![r(0, 3), r(0, 5), r(0, 4)],
        vec![a(2), r(1, 5), r(1, 3)],
        vec![r(1, 3), a(4), r(0, 4)],
        vec![r(0, 3), r(2, 3), a(0)],
    ];
    for axes in slices {
        let y = push(&mut f, Op::Slice(axes.clone()), &[x[0]]);
        output(&mut f, y);
        let back = push(&mut f, Op::Unslice(axes, Shape(vec![3, 5, 4])), &[y]);
        output(&mut f, back);
    }
    let v = push(&mut f, Op::Slice(vec![a(0), a(0), r(0, 4)]), &[x[0]]);
    let w = push(&mut f, Op::Slice(vec![a(1), a(0), r(0, 4)]), &[x[0]]);
    let packed = push(&mut f, Op::Pack, &[v, w, v]);
    output(&mut f, packed);
    let packed = push(&mut f, Op::Pack, &[p[0], p[0], p[0]]);
    output(&mut f, packed);
    let e = push(&mut f, Op::Slice(vec![]), &[p[0]]);
    output(&mut f, e);
    agree_on_values(&f);
}

/// A division by a constant power of two is compiled as a product by its
/// reciprocal when the type holds that exactly: the same bits as the
/// interpreter's division, overflow, underflow to subnormals and ties to
/// even among them; any other divisor stays a division.
#[test]
fn a_division_by_a_power_of_two_is_the_divisions_bits() {
    let tiny = f64::from_bits(1); // 2^-1074
    let divisors = [
        (2.0, true),
        (0.5, true),
        (-4.0, true),
        (1.0, true),
        (2f64.powi(1023), true),
        (2f64.powi(-1022), true),
        (2f64.powi(-1023), true),
        (tiny, false),
        (3.0, false),
        (-6.0, false),
        (0.0, false),
        (f64::INFINITY, false),
        (f64::NAN, false),
        (1e-310, false),
    ];
    // Subnormal quotients, ties among them, overflow, and the specials.
    let xs = vec![
        tiny,
        3.0 * tiny,
        -5.0 * tiny,
        3e-308,
        f64::MIN_POSITIVE,
        1e300,
        f64::MAX,
        -0.0,
        f64::NAN,
        f64::NEG_INFINITY,
        7.0,
    ];
    for (c, product) in divisors {
        let (mut f, _, x) = function(&[], &[Shape::vector(xs.len()), Shape::scalar()]);
        let k = push(&mut f, Op::Const(ConstData(Tensor::scalar(c))), &[]);
        let y = push(&mut f, Op::Binary(Binary::Div), &[x[0], k]);
        let z = push(&mut f, Op::Binary(Binary::Div), &[x[1], k]);
        output(&mut f, y);
        output(&mut f, z);
        for &one in &xs {
            let v = Tensor::new(Shape::vector(xs.len()), xs.clone());
            agree(&f, &[], &[v, Tensor::scalar(one)]);
        }
        let text = clif_text(&f).unwrap();
        assert_eq!(!text.contains("fdiv"), product, "1 / {c:e}:\n{text}");
    }
}

#[test]
fn constants_and_outputs_that_are_not_computed() {
    let (mut f, p, x) = function(&[Shape::vector(3)], &[Shape::scalar()]);
    let c = push(&mut f, Op::Const(ConstData(Tensor::scalar(-0.0))), &[]);
    let k = Tensor::new(
        Shape::matrix(2, 3),
        vec![1.5, -0.0, 3.0, f64::NAN, 5.0, 6.25],
    );
    let t = push(&mut f, Op::Const(ConstData(k)), &[]);
    let y = push(&mut f, Op::MatMul, &[t, p[0]]);
    for v in [c, t, y, p[0], x[0], p[0], y] {
        output(&mut f, v);
    }
    agree_on_values(&f);
}

#[test]
fn one_hot_in_range_and_out_of_range() {
    let (mut f, _, x) = function(&[], &[Shape::scalar()]);
    let y = push(&mut f, Op::OneHot(6), &[x[0]]);
    output(&mut f, y);
    let jit = compile(&f).unwrap();
    for c in [0.0, -0.0, 1.0, 5.0] {
        agree(&f, &[], &[Tensor::scalar(c)]);
    }
    for c in [6.0, -1.0, 0.5, 2.25, f64::NAN, f64::INFINITY, 1e30, -1e30] {
        let want = interp::run_outputs(&f, &[], &[Tensor::scalar(c)]).unwrap_err();
        let got = jit.run(&[], &[Tensor::scalar(c)]).unwrap_err();
        assert_eq!(got, want);
    }
    // A dead one_hot fails the run too, as in the interpreter; and the first
    // failing instruction is the one reported.
    let (mut f, _, x) = function(&[], &[Shape::scalar(), Shape::scalar()]);
    push(&mut f, Op::OneHot(2), &[x[0]]);
    push(&mut f, Op::OneHot(3), &[x[1]]);
    output(&mut f, x[0]);
    let jit = compile(&f).unwrap();
    for (a, b) in [(7.0, 7.0), (1.0, 7.0), (0.5, 1.0)] {
        let inputs = [Tensor::scalar(a), Tensor::scalar(b)];
        let want = interp::run_outputs(&f, &[], &inputs).unwrap_err();
        assert_eq!(jit.run(&[], &inputs).unwrap_err(), want);
    }
    assert!(jit
        .run(&[], &[Tensor::scalar(1.0), Tensor::scalar(2.0)])
        .is_ok());
}

#[test]
fn buffers_are_checked_before_the_call() {
    let (mut f, p, x) = function(&[Shape::vector(3)], &[Shape::matrix(2, 3)]);
    let y = push(&mut f, Op::MatMul, &[x[0], p[0]]);
    output(&mut f, y);
    let jit = compile(&f).unwrap();
    let w = Tensor::zeros(Shape::vector(3));
    let m = Tensor::zeros(Shape::matrix(2, 3));
    let m32 = Tensor::zeros(Shape::matrix(3, 2));
    assert_eq!(
        jit.run(std::slice::from_ref(&w), std::slice::from_ref(&m32))
            .unwrap_err(),
        interp::run_outputs(&f, std::slice::from_ref(&w), std::slice::from_ref(&m32)).unwrap_err()
    );
    assert!(jit.run(&[], std::slice::from_ref(&m)).is_err());
    let bad = Tensor {
        shape: Shape::vector(3),
        data: vec![1.0],
    };
    assert!(jit.run(&[bad], std::slice::from_ref(&m)).is_err());

    let mut s = jit.scratch();
    let mut out = [0.0; 2];
    let ok = jit.run_into(&mut s, &[&w.data], &[&m.data], &mut [&mut out[..]]);
    assert_eq!(ok, Ok(()));
    let short = [0.0; 2];
    assert!(jit
        .run_into(&mut s, &[&short], &[&m.data], &mut [&mut out[..]])
        .is_err());
    assert!(jit
        .run_into(&mut s, &[&w.data], &[&m.data], &mut [])
        .is_err());
    let mut long = [0.0; 3];
    assert!(jit
        .run_into(&mut s, &[&w.data], &[&m.data], &mut [&mut long[..]])
        .is_err());
    // A scratch made for another function is refused.
    let (mut g, _, x) = function(&[], &[Shape::vector(40)]);
    let e = push(&mut g, Op::Unary(Unary::Exp), &[x[0]]);
    let e = push(&mut g, Op::Unary(Unary::Exp), &[e]);
    output(&mut g, e);
    let mut other = compile(&g).unwrap().scratch();
    let err = jit.run_into(&mut other, &[&w.data], &[&m.data], &mut [&mut out[..]]);
    assert!(err.is_err());
}

#[test]
fn run_into_reuses_its_buffers() {
    let (mut f, p, x) = function(&[Shape::vector(3)], &[Shape::vector(3)]);
    let d = push(&mut f, Op::Binary(Binary::Mul), &[p[0], x[0]]);
    let e = push(&mut f, Op::Unary(Unary::Exp), &[d]);
    let s = push(&mut f, Op::Sum, &[e]);
    output(&mut f, s);
    output(&mut f, e);
    let jit = compile(&f).unwrap();
    let mut scratch = jit.scratch();
    let w = [1.0, 2.0, 3.0];
    for k in 0..3 {
        let xs = [k as f64, 0.5, -1.0];
        let (mut loss, mut ex) = ([0.0], [0.0; 3]);
        jit.run_into(&mut scratch, &[&w], &[&xs], &mut [&mut loss, &mut ex])
            .unwrap();
        let want: Vec<f64> = w.iter().zip(&xs).map(|(a, b)| (a * b).exp()).collect();
        assert_eq!(ex.to_vec(), want);
        assert_eq!(loss[0], want.iter().sum::<f64>());
    }
}

#[test]
fn clif_text_names_the_host_functions() {
    let (mut f, _, x) = function(&[], &[Shape::vector(6)]);
    let y = push(&mut f, Op::Unary(Unary::Tanh), &[x[0]]);
    let k = Tensor::new(Shape::vector(6), vec![1.0; 6]);
    let c = push(&mut f, Op::Const(ConstData(k)), &[]);
    let z = push(&mut f, Op::Binary(Binary::Add), &[y, c]);
    output(&mut f, z);
    let text = clif_text(&f).unwrap();
    assert!(text.contains("gradc_tanh"), "{text}");
    assert!(text.contains("gradc_const"), "{text}");
    assert!(text.contains("function"), "{text}");
    assert!(clif_text(&f).unwrap() == text, "deterministic");
}

#[test]
fn invalid_ir_is_an_error_not_a_crash() {
    let (mut f, _, x) = function(&[], &[Shape::vector(2)]);
    output(&mut f, x[0]);
    // The input slot no longer matches the instruction that reads it.
    f.inputs[0].shape = Shape::vector(3);
    assert!(compile(&f).is_err());
    assert!(clif_text(&f).is_err());
    // Shapes whose strides would overflow are refused before translation.
    let huge = Shape(vec![0, 1 << 40, 1 << 40]);
    let (mut f, _, x) = function(&[], &[huge]);
    output(&mut f, x[0]);
    assert_eq!(
        compile(&f).err().unwrap().to_string(),
        "tensors of shape [0, 1099511627776, 1099511627776] are too large to compile"
    );
}

#[test]
fn compiled_functions_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<JitFunction>();
    both::<Scratch>();
    // Many functions compiled and dropped in turn: the code is freed each time.
    let (mut f, _, x) = function(&[], &[Shape::vector(3)]);
    let y = push(&mut f, Op::Unary(Unary::Exp), &[x[0]]);
    output(&mut f, y);
    for _ in 0..50 {
        let jit = compile(&f).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| jit.run(&[], &[Tensor::zeros(Shape::vector(3))]).unwrap());
        });
    }
}

/// The IR of a program whose loop of `trips` steps nests another loop of
/// two, both with bodies of several operations.
fn nested_loops(trips: usize) -> Function {
    let src = format!(
        "param w: [3, 6]\ninput x: [6]\n\
         let (h2, total) = loop (h, acc) = (x, 0) for t in 0..{trips} {{\n  \
           let g = loop z = h for i in 0..2 {{ tanh(z * w[i] + w[2]) }}\n  \
           (g * w[0], acc + sum(exp(g)))\n\
         }}\n\
         loss sum(h2) + total"
    );
    let c = crate::compile(&src).expect("the program compiles");
    crate::gradient_program(&c.ir).expect("differentiates")
}

#[test]
fn a_loop_body_is_translated_once_however_short_the_loop() {
    // Two, three and five steps: the same code but for the trip counts, so
    // short loops do not multiply their bodies (the nested loop of two
    // steps included).
    let lines = |trips| clif_text(&nested_loops(trips)).unwrap().lines().count();
    assert_eq!(lines(2), lines(5));
    assert_eq!(lines(3), lines(5));
    for trips in [1, 2, 3, 5] {
        let g = nested_loops(trips);
        agree_on_values(&g);
    }
}
