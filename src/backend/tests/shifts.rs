//! Runs with shifted members: `concat([a], m[0:n - 1])` of a member `m`
//! (a lag, `ode`'s stages) joins the run that computes `m`, each element
//! kept from the one before; `unslice(m[1:n])` into `[0:n - 1]` (a lead,
//! the lag's adjoint) joins a run that goes from the last element down.
//! The slices they shift are not stored when only the shift reads them.
//! The same bits as the interpreter, at sizes unrolled and looped, odd
//! and even, one example and batched, and in f32 within its rounding.

use super::*;

/// `m[lo..lo + len]` of a vector `m`.
fn slice(f: &mut Function, m: Value, lo: usize, len: usize) -> Value {
    push(f, Op::Slice(vec![SliceAxis::Range(lo, lo + len)]), &[m])
}

/// `concat([a], m[0:n - 1])`: `m` shifted up by one, `a` first.
fn lag(f: &mut Function, a: Value, m: Value, n: usize) -> (Value, Value) {
    let s = slice(f, m, 0, n - 1);
    (s, push(f, Op::Concat, &[a, s]))
}

/// `unslice(m[1:n])` into `[0:n - 1]` of `[n]`: `m` shifted down by one,
/// 0 last.
fn lead(f: &mut Function, m: Value, n: usize) -> (Value, Value) {
    let s = slice(f, m, 1, n - 1);
    let into = Op::Unslice(vec![SliceAxis::Range(0, n - 1)], Shape::vector(n));
    (s, push(f, into, &[s]))
}

/// Three stages, each shifting the one before (`m1 = x * p`, `m2 =
/// shift(m1) + x`, `m3 = shift(m2) * p`, `m4 = shift(m3) - x`), up with
/// lags (`a` the first element) or down with leads; the last stage the
/// output, and `also` outputs besides.
struct Chain {
    f: Function,
    stages: Vec<Value>,
    shifts: Vec<Value>,
    slices: Vec<Value>,
}

fn chain(n: usize, up: bool, unary: Option<Unary>) -> Chain {
    let (mut f, p, x) = function(&[Shape::vector(n)], &[Shape::vector(n), Shape::vector(1)]);
    let mut m = push(&mut f, Op::Binary(Binary::Mul), &[x[0], p[0]]);
    if let Some(u) = unary {
        m = push(&mut f, Op::Unary(u), &[m]);
    }
    let mut stages = vec![m];
    let (mut shifts, mut slices) = (Vec::new(), Vec::new());
    for op in [Binary::Add, Binary::Mul, Binary::Sub] {
        let (s, c) = if up {
            lag(&mut f, x[1], m, n)
        } else {
            lead(&mut f, m, n)
        };
        let other = if op == Binary::Mul { p[0] } else { x[0] };
        m = push(&mut f, Op::Binary(op), &[c, other]);
        stages.push(m);
        shifts.push(c);
        slices.push(s);
    }
    output(&mut f, m);
    Chain {
        f,
        stages,
        shifts,
        slices,
    }
}

/// The step of the layout of `f` that computes `v`.
fn step_of(layout: &plan::Layout, v: Value) -> &Vec<Value> {
    layout.steps.iter().find(|s| s.contains(&v)).unwrap()
}

#[test]
fn a_chain_of_shifts_is_one_run_and_stores_only_its_result() {
    // Sizes unrolled (a vector or two), looped, odd and even, in a
    // number of vectors odd (the last alone after the loop) and even.
    for n in [2, 3, 5, 8, 9, 10, 22, 41, 1001, 1003] {
        for up in [true, false] {
            let c = chain(n, up, None);
            let layout = plan::layout::layout(&c.f);
            let run = step_of(&layout, c.stages[0]);
            for &v in c.stages.iter().chain(&c.shifts).chain(&c.slices) {
                assert!(run.contains(&v), "n = {n}, up = {up}: {:?}", layout.steps);
            }
            for &v in c.stages[..3].iter().chain(&c.shifts) {
                assert!(layout.internal[v], "n = {n}, up = {up}: %{}", v.index());
                assert_eq!(layout.slots[v], None);
            }
            agree_on_values(&c.f);
        }
    }
}

/// A member whose elements are calls (`log`, not computed a pair at a
/// time): the run goes one element at a time, and keeps the shifted
/// element as a number.
#[test]
fn a_shift_of_a_run_of_single_elements_keeps_a_number() {
    for n in [3, 10, 41] {
        for up in [true, false] {
            let c = chain(n, up, Some(Unary::Log));
            let layout = plan::layout::layout(&c.f);
            let run = step_of(&layout, c.stages[0]);
            assert!(
                c.shifts.iter().all(|s| run.contains(s)),
                "{:?}",
                layout.steps
            );
            agree_on_values(&c.f);
        }
    }
}

/// A shift read outside its run, and a slice read by something else too:
/// both stored, the slice a view of its member after the run, the same
/// bits.
#[test]
fn a_shift_or_slice_read_elsewhere_is_stored() {
    for n in [4, 9, 40] {
        for up in [true, false] {
            let mut c = chain(n, up, None);
            output(&mut c.f, c.shifts[0]);
            let again = push(&mut c.f, Op::Unary(Unary::Neg), &[c.slices[1]]);
            output(&mut c.f, again);
            let layout = plan::layout::layout(&c.f);
            let run = step_of(&layout, c.stages[0]);
            assert!(run.contains(&c.shifts[0]) && !layout.internal[c.shifts[0]]);
            assert!(!run.contains(&c.slices[1]), "{:?}", layout.steps);
            assert!(
                !layout.internal[c.stages[1]],
                "the slice's member is stored"
            );
            agree_on_values(&c.f);
        }
    }
}

/// A sum adds in order, so it does not join a run that goes down: the
/// run of leads is one step, the sum another; a run that goes up takes
/// both.
#[test]
fn a_sum_does_not_join_a_run_that_goes_down() {
    for up in [true, false] {
        let mut c = chain(11, up, None);
        let last = *c.stages.last().unwrap();
        let total = push(&mut c.f, Op::Sum, &[last]);
        output(&mut c.f, total);
        let layout = plan::layout::layout(&c.f);
        let run = step_of(&layout, c.stages[0]);
        assert_eq!(run.contains(&total), up, "up = {up}: {:?}", layout.steps);
        assert!(run.contains(&last));
        agree_on_values(&c.f);
    }
}

/// A lag and a lead of the same member go in opposite orders: the second
/// starts a run of its own. And a lag beside a `concat` of inputs (`ode`'s
/// first stage shifts the state it starts from) is in the loop over the
/// parts, the kept element passed from one part to the next.
#[test]
fn shifts_up_and_down_split_and_a_lag_goes_over_parts() {
    for n in [5, 12, 33] {
        let (mut f, p, x) = function(&[Shape::vector(n)], &[Shape::vector(n), Shape::vector(1)]);
        let s = slice(&mut f, x[0], 0, n - 1);
        let pieces = push(&mut f, Op::Concat, &[x[1], s]);
        let m = push(&mut f, Op::Binary(Binary::Mul), &[pieces, p[0]]);
        let (_, up) = lag(&mut f, x[1], m, n);
        let (_, down) = lead(&mut f, m, n);
        let both = push(&mut f, Op::Binary(Binary::Add), &[up, down]);
        output(&mut f, both);
        let layout = plan::layout::layout(&f);
        let run = step_of(&layout, m);
        assert!(
            run.contains(&pieces) && run.contains(&up),
            "{:?}",
            layout.steps
        );
        assert!(!run.contains(&down), "{:?}", layout.steps);
        agree_on_values(&f);
    }
}

/// In f32 (four lanes a vector), shifted runs are the interpreter's f64
/// arithmetic within f32's rounding: a wrong lane would be another
/// element, far off.
#[test]
fn shifted_runs_in_f32_are_the_f64_arithmetic_within_rounding() {
    let numbers = |n: usize, salt: usize| -> Vec<f64> {
        (0..n)
            .map(|i| f64::from(((i * 7 + salt) % 13) as f32 / 4.0 + 1.0))
            .collect()
    };
    for n in [3, 6, 9, 42] {
        for up in [true, false] {
            let f = chain(n, up, None).f;
            let p = vec![Tensor::new(Shape::vector(n), numbers(n, 1))];
            let examples: Vec<Vec<Tensor>> = (0..3)
                .map(|e| {
                    vec![
                        Tensor::new(Shape::vector(n), numbers(n, 5 + e)),
                        Tensor::new(Shape::vector(1), vec![e as f64 + 0.5]),
                    ]
                })
                .collect();
            agree_f32(&f, &p, &examples);
        }
    }
}

/// A lag of a tensor the run reads from memory (an input): the run reads
/// each of its elements once, at its place, and keeps it for the next;
/// the `concat` is a member, not stored, and its slice reads nothing.
#[test]
fn a_lag_of_a_tensor_from_memory_joins_the_run() {
    for n in [2, 3, 8, 9, 41, 1001] {
        for unary in [None, Some(Unary::Log)] {
            let (mut f, p, x) =
                function(&[Shape::vector(n)], &[Shape::vector(n), Shape::vector(1)]);
            let (s, c) = lag(&mut f, x[1], x[0], n);
            let mut m = push(&mut f, Op::Binary(Binary::Mul), &[c, p[0]]);
            if let Some(u) = unary {
                m = push(&mut f, Op::Unary(u), &[m]);
            }
            let y = push(&mut f, Op::Binary(Binary::Add), &[m, x[0]]);
            output(&mut f, y);
            let layout = plan::layout::layout(&f);
            let run = step_of(&layout, y);
            assert!(run.contains(&c), "n = {n}: {:?}", layout.steps);
            assert!(
                layout.internal[c] && !run.contains(&s),
                "{:?}",
                layout.steps
            );
            // Pairs: the element kept and the pair read side by side (a
            // `concat` read in place would load the pair before instead).
            if unary.is_none() && n >= 8 {
                assert!(clif_text(&f).unwrap().contains("shuffle"), "n = {n}");
            }
            agree_on_values(&f);
        }
    }
}
