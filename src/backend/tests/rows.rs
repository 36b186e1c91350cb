//! `index_set`: a row replaced, against the interpreter bit for bit on
//! rows of one element and more, one example at a time and batched; an
//! index that is not an integer in range is the interpreter's fault at the
//! instruction's span; and a carried value whose row a loop replaces step
//! after step.

use super::*;

/// `[x, r, i] -> x with its row i replaced by r`, at a span of its own.
fn index_set_fn(x: &Shape) -> (Function, Value) {
    let row = Shape(x.dims()[1..].to_vec());
    let (mut f, p, inp) = function(std::slice::from_ref(x), &[row, Shape::scalar()]);
    let y = f.push(Op::IndexSet, vec![p[0], inp[0], inp[1]], Span::new(3, 9));
    output(&mut f, y);
    (f, y)
}

fn shapes_of_rows() -> [Shape; 3] {
    [Shape::vector(5), Shape::matrix(4, 3), Shape(vec![3, 2, 5])]
}

#[test]
fn index_set_agrees_at_every_shape_one_example_and_batched() {
    for x in shapes_of_rows() {
        let (f, _) = index_set_fn(&x);
        let n = x.dims()[0];
        let params = tensors(&f, true, 100);
        // The first row, the last, and -0 for row 0.
        let examples: Vec<Vec<Tensor>> = [0.0, (n - 1) as f64, -0.0, 1.0]
            .iter()
            .enumerate()
            .map(|(s, &i)| {
                let r = &f.inputs[0].shape;
                vec![
                    Tensor::new(r.clone(), values(r.size(), 7 + s as u64)),
                    Tensor::scalar(i),
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
fn index_set_replaces_the_row_named() {
    let (f, _) = index_set_fn(&Shape::matrix(3, 2));
    let x = Tensor::new(Shape::matrix(3, 2), vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0]);
    let r = Tensor::new(Shape::vector(2), vec![-5.0, f64::NAN]);
    let out = compile(&f)
        .unwrap()
        .run(&[x], &[r, Tensor::scalar(1.0)])
        .unwrap();
    assert_eq!(out[0].data[..2], [0.0, 1.0]);
    assert_eq!(out[0].data[2], -5.0);
    assert!(out[0].data[3].is_nan());
    assert_eq!(out[0].data[4..], [20.0, 21.0]);
}

#[test]
fn a_bad_index_is_the_interpreters_fault_at_the_instruction() {
    for x in shapes_of_rows() {
        let (f, v) = index_set_fn(&x);
        let n = x.dims()[0];
        let params = tensors(&f, true, 100);
        let jit = compile(&f).unwrap();
        let batched = compile_batched(&as_means(&f)).unwrap();
        for b in [n as f64, -1.0, 0.5, f64::NAN, f64::INFINITY, -1e300] {
            let mut inputs = tensors(&f, false, 300);
            inputs[1] = Tensor::scalar(b);
            let want = interp::run_outputs(&f, &params, &inputs).unwrap_err();
            let expected = RunError::Fault {
                at: v,
                span: Span::new(3, 9),
                example: None,
                fault: Fault::Index { index: b, len: n },
            };
            assert_eq!(want, expected, "{x} at {b}");
            assert_eq!(jit.run(&params, &inputs).unwrap_err(), want);
            // Batched: the second of two examples fails.
            let mut first = inputs.clone();
            first[1] = Tensor::scalar(0.0);
            let rows = rows(&f, &[first, inputs]);
            let rows: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
            let got = batched.run(&params, &rows, 2).unwrap_err();
            assert_eq!(got, want.in_example(Some(1)), "{x} at {b}, batched");
        }
    }
}

/// A loop that carries `x` and at step `t` replaces its row `3 - t`:
/// with its row `t` times 2 (the old value read twice, copied), or with
/// `2 t` (read once: the carried value updated in place by the compiled
/// code); then, in a chain of updates, adds the same row to row `t`. The
/// interpreter's bits every way.
#[test]
fn a_carried_value_whose_rows_a_loop_replaces() {
    for (read_row, chain) in [(true, false), (false, false), (true, true), (false, true)] {
        let x = Shape::matrix(4, 3);
        let slot = |name: &str, shape: &Shape| Slot {
            name: name.into(),
            shape: shape.clone(),
        };
        let mut body = Function::new(vec![slot("x", &x)], vec![slot("t", &Shape::scalar())]);
        let sp = Span::new(2, 4);
        let mut push_in = |op: Op, args: Vec<Value>| body.push(op, args, sp);
        let (carried, t) = (push_in(Op::Param(0), vec![]), push_in(Op::Input(0), vec![]));
        let konst = |x: f64| Op::Const(ConstData(Tensor::scalar(x)));
        let (two, three) = (push_in(konst(2.0), vec![]), push_in(konst(3.0), vec![]));
        let row = if read_row {
            push_in(Op::Index, vec![carried, t])
        } else {
            push_in(Op::Broadcast(Shape::vector(3)), vec![t])
        };
        let doubled = push_in(Op::Binary(Binary::Mul), vec![row, two]);
        let at = push_in(Op::Binary(Binary::Sub), vec![three, t]);
        let mut new = push_in(Op::IndexSet, vec![carried, doubled, at]);
        if chain {
            new = push_in(Op::IndexAdd, vec![new, doubled, t]);
        }
        body.outputs.push(Output {
            role: Role::Output,
            name: "x".into(),
            value: new,
        });
        let (mut f, p, _) = function(std::slice::from_ref(&x), &[]);
        let l = crate::ir::Loop {
            trips: 4,
            carries: 1,
            body,
            recompute: false,
        };
        let y = push(&mut f, Op::Loop(Box::new(l)), &[p[0]]);
        output(&mut f, y);
        agree_on_values(&f);
    }
}

/// A loop whose step stacks a value it computes (written straight into its
/// row of the loop's value), the same value again, a view of it, a value
/// carried as well, its carried parameter and a captured one: each row as
/// the interpreter's, one example at a time and batched.
#[test]
fn stacked_values_computed_in_their_rows() {
    let x = Shape::vector(4);
    let slot = |name: &str, shape: &Shape| Slot {
        name: name.into(),
        shape: shape.clone(),
    };
    let mut body = Function::new(
        vec![slot("c", &x), slot("w", &x)],
        vec![slot("t", &Shape::scalar())],
    );
    let sp = Span::new(2, 4);
    let mut push_in = |op: Op, args: Vec<Value>| body.push(op, args, sp);
    let (c, w, t) = (
        push_in(Op::Param(0), vec![]),
        push_in(Op::Param(1), vec![]),
        push_in(Op::Input(0), vec![]),
    );
    let tw = push_in(Op::Binary(Binary::Mul), vec![w, t]);
    let new = push_in(Op::Binary(Binary::Add), vec![c, tw]);
    let half = push_in(Op::Slice(vec![SliceAxis::Range(1, 3)]), vec![new]);
    for (name, value) in [
        ("c", new),
        ("new", new),
        ("again", new),
        ("half", half),
        ("old", c),
        ("w", w),
    ] {
        body.outputs.push(Output {
            role: Role::Output,
            name: name.into(),
            value,
        });
    }
    let (mut f, p, _) = function(&[x.clone(), x], &[]);
    let l = crate::ir::Loop {
        trips: 5,
        carries: 1,
        body,
        recompute: false,
    };
    let y = push(&mut f, Op::Loop(Box::new(l)), &[p[0], p[1]]);
    output(&mut f, y);
    agree_on_values(&f);
}
