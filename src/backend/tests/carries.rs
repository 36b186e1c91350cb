//! A loop's carried values that start as a `broadcast` of a constant or an
//! `unslice` of one (zeros around it): the loop writes them in its value,
//! and such a start that only loops carry writes nothing of its own; one of
//! a number of the example is copied, as any other start. The
//! interpreter's bits, one example and batched, at sizes of vectors and of
//! tails; and the start's own loop gone from the code.

use super::*;

/// What else reads the start `a` of [`carrying`].
#[derive(Copy, Clone, Debug, PartialEq)]
enum Also {
    /// Nothing: only the loop carries it.
    Nothing,
    /// It is the start of `c` too, and an output.
    Output,
    /// The loop captures it as its `x`.
    Captured,
}

/// A loop of three steps over `[n]` vectors carrying `a = broadcast(s)`,
/// `b = unslice(t)` into `[at..at + 1]` and `c` (`x * x`, computed
/// `first` or after `a`, or `a` itself read as [`Also`] says), capturing
/// `x`: each step `a' = a * x + b`, `b' = b - a * c`, `c' = c + x`. The
/// loop's value is the output, and `x + x`, computed after `a`. `s` and
/// `t` are the constants -2.5 and 3 if `constant`, else inputs.
fn carrying(n: usize, at: usize, also: Also, first: bool, constant: bool) -> Function {
    let vector = Shape::vector(n);
    let (mut f, _, x) = function(&[], &[vector.clone(), Shape::scalar(), Shape::scalar()]);
    let xs = x[0];
    let number = |f: &mut Function, c: f64, shape: Shape| {
        push(f, Op::Const(ConstData(Tensor::new(shape, vec![c]))), &[])
    };
    let (s, t1) = if constant {
        let s = number(&mut f, -2.5, Shape::scalar());
        (s, number(&mut f, 3.0, Shape::vector(1)))
    } else {
        let t1 = push(&mut f, Op::Reshape(Shape::vector(1)), &[x[2]]);
        (x[1], t1)
    };
    // `x * x` before `a`, so that `a` could join its run, or after it, so
    // that a run headed by `a` could take it (and `x + x` after it).
    let mut square = None;
    let mut squared = |f: &mut Function| {
        *square.get_or_insert_with(|| push(f, Op::Binary(Binary::Mul), &[xs, xs]))
    };
    if first {
        squared(&mut f);
    }
    let a = push(&mut f, Op::Broadcast(vector.clone()), &[s]);
    let twice = push(&mut f, Op::Binary(Binary::Add), &[xs, xs]);
    let square = squared(&mut f);
    let into = Op::Unslice(vec![SliceAxis::Range(at, at + 1)], vector.clone());
    let b = push(&mut f, into, &[t1]);
    let c = match also {
        Also::Output => a,
        _ => square,
    };
    let captured = if also == Also::Captured { a } else { xs };
    let slot = |name: &str, shape: &Shape| Slot {
        name: name.into(),
        shape: shape.clone(),
    };
    let params = ["a", "b", "c", "x"].map(|p| slot(p, &vector));
    let mut body = Function::new(params.to_vec(), vec![slot("t", &Shape::scalar())]);
    let [ba, bb, bc, bx] = [0, 1, 2, 3].map(|k| push(&mut body, Op::Param(k), &[]));
    push(&mut body, Op::Input(0), &[]);
    let ax = push(&mut body, Op::Binary(Binary::Mul), &[ba, bx]);
    let a2 = push(&mut body, Op::Binary(Binary::Add), &[ax, bb]);
    let ac = push(&mut body, Op::Binary(Binary::Mul), &[ba, bc]);
    let b2 = push(&mut body, Op::Binary(Binary::Sub), &[bb, ac]);
    let c2 = push(&mut body, Op::Binary(Binary::Add), &[bc, bx]);
    for v in [a2, b2, c2] {
        output(&mut body, v);
    }
    let l = crate::ir::Loop {
        trips: 3,
        carries: 3,
        body,
        recompute: false,
    };
    let y = push(&mut f, Op::Loop(Box::new(l)), &[a, b, c, captured]);
    output(&mut f, y);
    output(&mut f, twice);
    if also == Also::Output {
        output(&mut f, a);
    }
    f
}

#[test]
fn a_carried_value_that_starts_as_a_number_everywhere_or_around_one() {
    for n in [2, 3, 8, 9, 1001] {
        for at in [0, n / 2, n - 1] {
            for (also, first, constant) in cases() {
                let f = carrying(n, at, also, first, constant);
                agree_on_values(&f);
                let inputs = [
                    Tensor::new(Shape::vector(n), values(n, 7)),
                    Tensor::scalar(-2.5),
                    Tensor::scalar(3.0),
                ];
                agree(&f, &[], &inputs);
            }
        }
    }
}

/// Every case of [`carrying`] but its sizes: what else reads `a`, whether
/// `x * x` comes first, whether the starts are constants.
fn cases() -> Vec<(Also, bool, bool)> {
    let mut cases = Vec::new();
    for also in [Also::Nothing, Also::Output, Also::Captured] {
        for first in [false, true] {
            for constant in [false, true] {
                cases.push((also, first, constant));
            }
        }
    }
    cases
}

/// A loop of three steps over `[n]` adding `x` to its one carried value,
/// which starts as a `broadcast` of a constant, or as the caller's input
/// `x` itself.
fn adding(n: usize, constant: bool) -> Function {
    let vector = Shape::vector(n);
    let (mut f, _, x) = function(&[], std::slice::from_ref(&vector));
    let start = if constant {
        let c = push(&mut f, Op::Const(ConstData(Tensor::scalar(0.5))), &[]);
        push(&mut f, Op::Broadcast(vector.clone()), &[c])
    } else {
        x[0]
    };
    let slot = |name: &str| Slot {
        name: name.into(),
        shape: vector.clone(),
    };
    let scalar = Slot {
        name: "t".into(),
        shape: Shape::scalar(),
    };
    let mut body = Function::new(vec![slot("a"), slot("x")], vec![scalar]);
    let [a, bx] = [0, 1].map(|k| push(&mut body, Op::Param(k), &[]));
    push(&mut body, Op::Input(0), &[]);
    let sum = push(&mut body, Op::Binary(Binary::Add), &[a, bx]);
    output(&mut body, sum);
    let l = crate::ir::Loop {
        trips: 3,
        carries: 1,
        body,
        recompute: false,
    };
    let y = push(&mut f, Op::Loop(Box::new(l)), &[start, x[0]]);
    output(&mut f, y);
    f
}

/// A start that only the loop carries has no loop of its own: the loop
/// writes it where it copies a start from the caller (the same number of
/// loops); one that is also an output, or that the loop also captures, is
/// written out by its own step (the loop still writes its carried value,
/// not a copy of it). Counted by the loops' branches, and read off the
/// plan.
#[test]
fn a_start_only_a_loop_carries_is_written_only_there() {
    let n = 1000;
    for constant in [true, false] {
        agree_on_values(&adding(n, constant));
    }
    let made = count(&adding(n, true), "brif");
    let copied = count(&adding(n, false), "brif");
    assert_eq!(
        made, copied,
        "{made} loops from a constant, {copied} copying"
    );
    for (also, first, constant) in cases() {
        let f = carrying(n, 3, also, first, constant);
        let plan = plan::layout::layout(&f);
        let starts: Vec<Value> = f.values().filter(|&v| plan.carried[v]).collect();
        // `b`, and `a` when nothing else reads it (`c = x * x` is copied);
        // neither when they are numbers of the example.
        let want = match (constant, also) {
            (false, _) => 0,
            (true, Also::Nothing) => 2,
            (true, _) => 1,
        };
        let case = format!("{also:?}, first {first}, constant {constant}");
        assert_eq!(starts.len(), want, "{case}\n{f}");
        // Each a step of its own, out of the runs of `x * x` and `x + x`.
        for step in &plan.steps {
            let start = step.iter().any(|&v| plan.carried[v]);
            assert!(!start || step.len() == 1, "{case}: {step:?}\n{f}");
        }
    }
}

/// A loop over `[n]` whose step computes `y' = x * concat([1], y[0:n -
/// 1])`, and adds `y` if `plus` (`ode`'s stage: a lag of the carried `y`),
/// with `y` also stacked if `stacked`: the old `y` is read at each
/// element's place, before the new one is written there, so `y` is
/// updated in place (no copy back) unless a stacked row reads it after
/// the step.
fn lagging(n: usize, stacked: bool, plus: bool) -> Function {
    let vector = Shape::vector(n);
    let (mut f, _, x) = function(&[], std::slice::from_ref(&vector));
    let zero = push(&mut f, Op::Const(ConstData(Tensor::scalar(0.0))), &[]);
    let y0 = push(&mut f, Op::Broadcast(vector.clone()), &[zero]);
    let slot = |name: &str, shape: &Shape| Slot {
        name: name.into(),
        shape: shape.clone(),
    };
    let params = [slot("y", &vector), slot("x", &vector)];
    let mut body = Function::new(params.to_vec(), vec![slot("t", &Shape::scalar())]);
    let [y, bx] = [0, 1].map(|k| push(&mut body, Op::Param(k), &[]));
    push(&mut body, Op::Input(0), &[]);
    let one = push(
        &mut body,
        Op::Const(ConstData(Tensor::new(Shape::vector(1), vec![1.0]))),
        &[],
    );
    let s = push(&mut body, Op::Slice(vec![SliceAxis::Range(0, n - 1)]), &[y]);
    let c = push(&mut body, Op::Concat, &[one, s]);
    let k = push(&mut body, Op::Binary(Binary::Mul), &[bx, c]);
    let new = if plus {
        push(&mut body, Op::Binary(Binary::Add), &[k, y])
    } else {
        k
    };
    output(&mut body, new);
    if stacked {
        output(&mut body, y);
    }
    let l = crate::ir::Loop {
        trips: 4,
        carries: 1,
        body,
        recompute: false,
    };
    let v = push(&mut f, Op::Loop(Box::new(l)), &[y0, x[0]]);
    output(&mut f, v);
    f
}

#[test]
fn a_carried_value_read_shifted_by_one_is_updated_in_place() {
    for n in [2, 3, 8, 9, 1001] {
        for stacked in [false, true] {
            for plus in [false, true] {
                agree_on_values(&lagging(n, stacked, plus));
            }
        }
    }
    // In place, the step has no loop copying `y` back; stacked, it has
    // that and the row's copy.
    let n = 1000;
    for plus in [false, true] {
        let (alone, stacked) = (
            count(&lagging(n, false, plus), "brif"),
            count(&lagging(n, true, plus), "brif"),
        );
        assert_eq!(
            alone + 2,
            stacked,
            "{alone} loops in place, {stacked} stacked"
        );
    }
}
