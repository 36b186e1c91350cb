//! `gather` and `scatter_add`: rows at a tensor of indices, and rows added
//! at them, against the interpreter bit for bit on rows of one element and
//! more, indices of any rank, repeated, none; an index that is not an
//! integer in range is the interpreter's fault, at the instruction's span,
//! one example at a time and batched.

use super::*;

/// The shapes of `x` (a row of one element, a vector, a matrix) and of
/// the indices (a scalar, one, several, a matrix of them, none).
fn cases() -> Vec<(Shape, Shape)> {
    let xs = [Shape::vector(5), Shape::matrix(5, 3), Shape(vec![4, 2, 3])];
    let is = [
        Shape::scalar(),
        Shape::vector(1),
        Shape::vector(7),
        Shape::matrix(3, 4),
        Shape::vector(0),
        Shape(vec![2, 0]),
    ];
    xs.iter()
        .flat_map(|x| is.iter().map(move |i| (x.clone(), i.clone())))
        .collect()
}

/// `size` indices in `0..n`, repeated (every third one is the last row).
fn indices(size: usize, n: usize, salt: usize) -> Vec<f64> {
    (0..size)
        .map(|k| if k % 3 == 2 { n - 1 } else { (k * 7 + salt) % n } as f64)
        .collect()
}

/// `[x, i] -> x[i]`, at a span of its own.
fn gather_fn(x: &Shape, i: &Shape) -> (Function, Value) {
    let (mut f, p, idx) = function(std::slice::from_ref(x), std::slice::from_ref(i));
    let y = f.push(Op::Gather, vec![p[0], idx[0]], Span::new(3, 9));
    output(&mut f, y);
    (f, y)
}

/// `[acc, g, i] -> acc with g's rows added at i`, at a span of its own.
fn scatter_fn(x: &Shape, i: &Shape) -> (Function, Value) {
    let g = Shape([i.dims(), &x.dims()[1..]].concat());
    let (mut f, p, inp) = function(std::slice::from_ref(x), &[g, i.clone()]);
    let y = f.push(Op::ScatterAdd, vec![p[0], inp[0], inp[1]], Span::new(3, 9));
    output(&mut f, y);
    (f, y)
}

#[test]
fn gather_agrees_at_every_shape_one_example_and_batched() {
    for (x, i) in cases() {
        let (f, _) = gather_fn(&x, &i);
        let n = x.dims()[0];
        let params = tensors(&f, true, 100);
        let examples: Vec<Vec<Tensor>> = (0..3)
            .map(|s| vec![Tensor::new(i.clone(), indices(i.size(), n, s))])
            .collect();
        for ex in &examples {
            agree(&f, &params, ex);
        }
        agree_batched(&f, &params, &examples);
    }
}

#[test]
fn gather_reads_the_rows_named_in_the_indices_order() {
    let (f, _) = gather_fn(&Shape::matrix(3, 2), &Shape::matrix(2, 2));
    let x = Tensor::new(Shape::matrix(3, 2), vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0]);
    let i = Tensor::new(Shape::matrix(2, 2), vec![2.0, 0.0, -0.0, 2.0]);
    let out = compile(&f).unwrap().run(&[x], &[i]).unwrap();
    assert_eq!(out[0].shape, Shape(vec![2, 2, 2]));
    let want = [20.0, 21.0, 0.0, 1.0, 0.0, 1.0, 20.0, 21.0];
    assert_eq!(out[0].data, want);
}

/// Constant indices, all in range, are read without a check, from a table
/// of the rows' offsets: the same bits, in f64 and f32 (whose offsets are
/// half as many bytes).
#[test]
fn gather_at_constant_indices_agrees() {
    for (x, i) in cases() {
        let n = x.dims()[0];
        let (mut f, p, _) = function(std::slice::from_ref(&x), &[]);
        let data = indices(i.size(), n, 1);
        let c = push(
            &mut f,
            Op::Const(ConstData(Tensor::new(i.clone(), data))),
            &[],
        );
        let y = push(&mut f, Op::Gather, &[p[0], c]);
        output(&mut f, y);
        agree_on_values(&f);
        agree_f32(&f, &tensors(&f, true, 3), &[vec![]]);
    }
}

/// Rows added at constant indices, repeated ones in order: the same bits.
#[test]
fn scatter_add_at_constant_indices_agrees() {
    for (x, i) in cases() {
        let n = x.dims()[0];
        let g = Shape([i.dims(), &x.dims()[1..]].concat());
        let (mut f, p, inp) = function(std::slice::from_ref(&x), &[g]);
        let data = indices(i.size(), n, 2);
        let c = push(
            &mut f,
            Op::Const(ConstData(Tensor::new(i.clone(), data))),
            &[],
        );
        let y = push(&mut f, Op::ScatterAdd, &[p[0], inp[0], c]);
        output(&mut f, y);
        agree_on_values(&f);
        let params = tensors(&f, true, 3);
        agree_f32(&f, &params, &[tensors(&f, false, 5), tensors(&f, false, 7)]);
    }
}

#[test]
fn scatter_add_agrees_at_every_shape_repeated_indices_in_order() {
    for (x, i) in cases() {
        let (f, _) = scatter_fn(&x, &i);
        let n = x.dims()[0];
        let params = tensors(&f, true, 100);
        // The rows added: special values (NaN, infinities, -0, huge and
        // tiny ones) among ordinary ones, so that the order of the
        // additions into a repeated row shows in the bits.
        let examples: Vec<Vec<Tensor>> = (0..3u64)
            .map(|s| {
                let g = &f.inputs[0].shape;
                vec![
                    Tensor::new(g.clone(), values(g.size(), 2 * s)),
                    Tensor::new(i.clone(), indices(i.size(), n, s as usize)),
                ]
            })
            .collect();
        for ex in &examples {
            agree(&f, &params, ex);
        }
        agree_batched(&f, &params, &examples);
    }
}

#[test]
fn scatter_add_adds_repeated_rows_one_after_the_other() {
    let (f, _) = scatter_fn(&Shape::vector(2), &Shape::vector(3));
    let acc = Tensor::new(Shape::vector(2), vec![1.0, 5.0]);
    // (1 + 1e16) + -1e16 is 0, not 1 + (1e16 + -1e16).
    let g = Tensor::new(Shape::vector(3), vec![1e16, 2.0, -1e16]);
    let i = Tensor::new(Shape::vector(3), vec![0.0, 1.0, 0.0]);
    let inputs = [g, i];
    let out = compile(&f)
        .unwrap()
        .run(std::slice::from_ref(&acc), &inputs)
        .unwrap();
    assert_eq!(out[0].data, [0.0, 7.0]);
    agree(&f, &[acc], &inputs);
}

/// Bad indices at every place: out of range either side, not integers,
/// NaN, infinite; the first in row-major order is the fault, with its
/// index, the axis' length and the instruction's span.
#[test]
fn a_bad_index_is_the_interpreters_fault_at_the_instruction() {
    let bad = [5.0, -1.0, 0.5, f64::NAN, f64::INFINITY, -1e300, 1e30];
    for (x, i) in cases().into_iter().filter(|(_, i)| i.size() > 0) {
        for make in [gather_fn, scatter_fn] {
            let (f, v) = make(&x, &i);
            let n = x.dims()[0];
            let params = tensors(&f, true, 100);
            let jit = compile(&f).unwrap();
            let batched = compile_batched(&as_means(&f)).unwrap();
            for (k, &b) in bad.iter().enumerate() {
                let at = k % i.size();
                let mut data = indices(i.size(), n, k);
                data[at] = b;
                // A second bad index after the first is not the one reported.
                if at + 1 < data.len() {
                    data[at + 1] = -7.0;
                }
                let mut inputs = tensors(&f, false, 300);
                *inputs.last_mut().unwrap() = Tensor::new(i.clone(), data);
                let want = interp::run_outputs(&f, &params, &inputs).unwrap_err();
                let fault = Fault::Index { index: b, len: n };
                let expected = RunError::Fault {
                    at: v,
                    span: Span::new(3, 9),
                    example: None,
                    fault,
                };
                assert_eq!(want, expected, "{x} by {i}, {b} at {at}");
                assert_eq!(jit.run(&params, &inputs).unwrap_err(), want);
                // Batched: the second of two examples fails.
                let good = Tensor::new(i.clone(), indices(i.size(), n, 0));
                let mut first = inputs.clone();
                *first.last_mut().unwrap() = good;
                let rows = rows(&f, &[first, inputs]);
                let rows: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
                let got = batched.run(&params, &rows, 2).unwrap_err();
                assert_eq!(got, want.in_example(Some(1)), "{x} by {i}, batched");
            }
        }
    }
}

/// A gather of a parameter at constant indices all in range cannot fail:
/// the batched plan computes it once, before the examples; at constant
/// indices of which one is out of range, or at an input's, it runs per
/// example (where it fails, as in the interpreter).
#[test]
fn a_gather_that_cannot_fail_is_hoisted_out_of_the_examples() {
    for (indices, hoisted) in [([2.0, 0.0, 2.0], true), ([2.0, 3.0, 0.0], false)] {
        let (mut f, p, x) = function(&[Shape::matrix(3, 2)], &[Shape::vector(2)]);
        let at = Tensor::new(Shape::vector(3), indices.to_vec());
        let c = push(&mut f, Op::Const(ConstData(at)), &[]);
        let g = push(&mut f, Op::Gather, &[p[0], c]);
        let s = push(&mut f, Op::Sum, &[g]);
        let y = push(&mut f, Op::Binary(Binary::Mul), &[x[0], s]);
        output(&mut f, y);
        let plan = plan::batch::batch_plan(&f, true);
        let layout = &plan.layout;
        let pre: Vec<Value> = layout.steps[..layout.body].concat();
        assert_eq!(pre.contains(&g), hoisted, "{indices:?}: {pre:?}");
        let p = tensors(&f, true, 5);
        let examples: Vec<Vec<Tensor>> = (0..3).map(|s| tensors(&f, false, 30 + s)).collect();
        if hoisted {
            agree_batched(&f, &p, &examples);
        } else {
            let want = interp::run_outputs(&f, &p, &examples[0]).unwrap_err();
            let rows = rows(&f, &examples);
            let rows: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
            let jit = compile_batched(&as_means(&f)).unwrap();
            assert_eq!(jit.run(&p, &rows, 3).unwrap_err(), want.in_example(Some(0)));
        }
    }
    // At an input's indices: per example.
    let (mut f, p, x) = function(&[Shape::matrix(3, 2)], &[Shape::vector(2)]);
    let g = push(&mut f, Op::Gather, &[p[0], x[0]]);
    output(&mut f, g);
    let layout = plan::batch::batch_plan(&f, true).layout;
    assert!(!layout.steps[..layout.body].concat().contains(&g));
}

/// `acc` (a parameter of `n` numbers) with the input's numbers added at
/// the constant `indices`.
fn scatter_at(n: usize, indices: Vec<f64>) -> Function {
    let count = indices.len();
    let (mut f, p, inp) = function(&[Shape::vector(n)], &[Shape::vector(count)]);
    let i = Tensor::new(Shape::vector(count), indices);
    let c = push(&mut f, Op::Const(ConstData(i)), &[]);
    let y = push(&mut f, Op::ScatterAdd, &[p[0], inp[0], c]);
    output(&mut f, y);
    f
}

/// Numbers added at constant indices into a vector are added element by
/// element, each in a register (a table `gradc_sums`): elements taking
/// none, one and up to five numbers, whose positions are far apart, in
/// the order of their positions (special values among them): the same
/// bits. Counts of more kinds than the table takes go through memory
/// position by position, as before.
#[test]
fn numbers_added_at_constant_indices_are_summed_element_by_element() {
    let n = 40;
    // Element k takes k % 6 numbers: position after position, every
    // element that takes more than j numbers once in turn j.
    let spread: Vec<f64> = (0..5)
        .flat_map(|j| (0..n).filter(move |k| k % 6 > j).map(|k| k as f64))
        .collect();
    // Element k takes k numbers: 39 kinds of counts.
    let many: Vec<f64> = (0..n).flat_map(|k| vec![k as f64; k]).collect();
    for (indices, by_element) in [(spread, true), (many, false)] {
        let f = scatter_at(n, indices);
        let text = clif_text(&f).unwrap();
        assert_eq!(text.contains("gradc_sums"), by_element);
        agree_on_values(&f);
        let params = tensors(&f, true, 3);
        agree_f32(&f, &params, &[tensors(&f, false, 5), tensors(&f, false, 7)]);
    }
}

/// Single numbers gathered at constant indices go two an iteration (two
/// offsets read from the table in the loop's body), the last alone after
/// the loop if their number is odd: the same bits.
#[test]
fn numbers_gathered_at_constant_indices_go_two_an_iteration() {
    for (count, offsets) in [(1000, 2), (1001, 3)] {
        let (mut f, p, _) = function(&[Shape::vector(5)], &[]);
        let data = indices(count, 5, 1);
        let i = Tensor::new(Shape::vector(count), data);
        let c = push(&mut f, Op::Const(ConstData(i)), &[]);
        let y = push(&mut f, Op::Gather, &[p[0], c]);
        output(&mut f, y);
        let text = clif_text(&f).unwrap();
        assert_eq!(text.matches("uload32").count(), offsets, "{count}");
        agree_on_values(&f);
    }
}
