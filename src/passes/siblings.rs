//! Two loops that run the same steps from the same start, made one: a
//! derivative taken of a value a loop computed runs that loop again, keeping
//! what its reverse needs (`grad(c, w)` where `c` came out of a loop), or
//! carrying tangents beside its own values (`jvp(c, w, 1)`), and the second
//! run computes the first's numbers again. Common subexpression elimination
//! merges equal straight-line code, but not such a pair: the second loop
//! has more results than the first.
//!
//! Loops `a` and, later, `b` with the same trip count, where the one with
//! fewer carried values (`c` of them) starts them as the other starts its
//! first `c`, become one loop at `a`'s place. Its body is both bodies: the
//! one with more carried values (`a` if as many) as it is, the other's
//! carried parameters read as its first `c`, its captures as its captures
//! of the same values; simplified. It is the two loops' when, after that,
//! each of the other's new carried values is the same value of the body as
//! the first's: they start equal and each step keeps them equal, so each
//! step computes what it did alone. Otherwise nothing changes. The merged
//! loop's results are the carried values, then each loop's stacked ones;
//! each loop's value is its carried values (the first of them) and its
//! stacked ones, a `concat` of ranges unless they meet.
//!
//! `b` may read only values computed before `a`, or constants (made again
//! at `a`'s place): then it does not depend on `a`. Two loops without
//! carried values (maps over the same steps) are merged only when their
//! bodies share work; a map and a loop that carries values, never. Checkpointed loops (`recompute`) are left alone. A
//! hash of each carried value's computation in each body picks the pairs
//! worth trying.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use super::{splat, splat_value};
use crate::ir::{Function, Loop, Op, SliceAxis, Value};
use crate::shape::Shape;

/// Merges the first pair of sibling loops of `f` that computes the same
/// carried values; whether it found one.
pub fn run(f: &mut Function) -> bool {
    let loops: Vec<Value> = f
        .iter()
        .filter(|(_, i)| matches!(&i.op, Op::Loop(l) if !l.recompute))
        .map(|(v, _)| v)
        .collect();
    if loops.len() < 2 {
        return false;
    }
    for (n, &b) in loops.iter().enumerate() {
        for &a in &loops[..n] {
            if let Some(m) = pair(f, a, b) {
                apply(f, a, b, m);
                return true;
            }
        }
    }
    false
}

/// The loop that `v` is.
fn as_loop(f: &Function, v: Value) -> &Loop {
    match &f.inst(v).op {
        Op::Loop(l) => l,
        _ => unreachable!("a loop"),
    }
}

/// Two loops merged into one. The base is the one with more carried values
/// (`a` if as many), the other's carried values being the first of them.
struct Merged {
    /// The merged body: its outputs the base's carried values, then the
    /// base's stacked values, then the other's.
    body: Function,
    carries: usize,
    /// The merged loop's arguments (values of the function before it is
    /// rewritten): the base's, then the other's captures it lacks.
    args: Vec<Value>,
    /// Per loop, `a` then `b`: how many carried values it has (the first
    /// of the merged loop's), and which merged outputs are its stacked
    /// values.
    parts: [(usize, Vec<usize>); 2],
}

fn pair(f: &Function, a: Value, b: Value) -> Option<Merged> {
    let (la, lb) = (as_loop(f, a), as_loop(f, b));
    let (ia, ib) = (&f.inst(a).args, &f.inst(b).args);
    let c = la.carries.min(lb.carries);
    let empty = la.body.outputs.is_empty() || lb.body.outputs.is_empty();
    // A map (no carried values) merges with maps only.
    let map_and_loop = c == 0 && la.carries + lb.carries > 0;
    if la.trips != lb.trips || ia[..c] != ib[..c] || empty || map_and_loop {
        return None;
    }
    // `b` reads nothing computed from `a` on but constants (a derivative's
    // zero tangents, made where it is taken), so it can run at `a`'s
    // place, its constants made there again.
    if ib.iter().any(|v| *v >= a && constant(f, *v).is_none()) {
        return None;
    }
    let a_base = la.carries >= lb.carries;
    let (base, other, i0, i1) = if a_base {
        (la, lb, ia, ib)
    } else {
        (lb, la, ib, ia)
    };
    let cb = base.carries;
    // Each of the other's parameters as the merged body's: carried ones as
    // the base's first, a capture as the base's parameter of the same
    // value, or a new one.
    let mut extra = Vec::new();
    let mut params = Vec::with_capacity(other.body.params.len());
    for (p, v) in i1.iter().enumerate() {
        let q = if p < c {
            p
        } else if let Some(q) = i0[cb..].iter().position(|w| w == v) {
            cb + q
        } else {
            extra.push(*v);
            i0.len() + extra.len() - 1
        };
        params.push(q);
    }
    // A parameter is known by the merged body's parameter it becomes.
    let (h0, h1) = (
        hashes(&base.body, |p| p),
        hashes(&other.body, |p| params[p]),
    );
    let at = |body: &Function, k: usize| body.outputs[k].value.index();
    let same_hash = (0..c).all(|k| h0[at(&base.body, k)] == h1[at(&other.body, k)]);
    // Without carried values, only bodies that compute something the same.
    let shared = || {
        let of_base: std::collections::HashSet<u64> = base
            .body
            .iter()
            .filter(|(_, i)| computes(i))
            .map(|(v, _)| h0[v.index()])
            .collect();
        other
            .body
            .iter()
            .any(|(v, i)| computes(i) && of_base.contains(&h1[v.index()]))
    };
    if !same_hash || (c == 0 && !shared()) {
        return None;
    }
    let body = merged(base, other, &params, c)?;
    let n0 = base.body.outputs.len();
    let base_parts = (cb, (cb..n0).collect());
    let other_parts = (c, (n0..body.outputs.len()).collect());
    let parts = if a_base {
        [base_parts, other_parts]
    } else {
        [other_parts, base_parts]
    };
    let mut args = i0.clone();
    args.extend(extra);
    Some(Merged {
        body,
        carries: cb,
        args,
        parts,
    })
}

/// `v` made again elsewhere, if it is a constant: the instruction (a
/// `const`), or the number it is filled with.
fn constant(f: &Function, v: Value) -> Option<Result<Op, f64>> {
    match &f.inst(v).op {
        op @ Op::Const(_) => Some(Ok(op.clone())),
        _ => splat_value(f, v).map(Err),
    }
}

/// A hash of what each value of `body` computes, its parameters identified
/// by `param`: equal computations hash equal (a loop by its trip count,
/// carried values and body length only, as CSE compares loops).
fn hashes(body: &Function, param: impl Fn(usize) -> usize) -> Vec<u64> {
    let mut hs: Vec<u64> = Vec::with_capacity(body.len());
    for (_, i) in body.iter() {
        let mut h = DefaultHasher::new();
        match &i.op {
            Op::Param(p) => ("param", param(*p)).hash(&mut h),
            Op::Loop(l) => ("loop", l.trips, l.carries, l.body.len()).hash(&mut h),
            op => op.hash(&mut h),
        }
        let mut args: Vec<u64> = i.args.iter().map(|a| hs[a.index()]).collect();
        if super::cse::commutative(&i.op) {
            args.sort_unstable();
        }
        args.hash(&mut h);
        hs.push(h.finish());
    }
    hs
}

/// The base's body with the other's appended (its parameter `p` read as
/// the merged body's `params[p]`), simplified; its outputs the base's, then
/// the other's stacked ones; `None` unless the other's `c` carried values
/// came out as the base's first.
fn merged(base: &Loop, other: &Loop, params: &[usize], c: usize) -> Option<Function> {
    let mut m = base.body.clone();
    for (p, &q) in params.iter().enumerate().skip(c) {
        if q >= m.params.len() {
            m.params.push(other.body.params[p].clone());
        }
    }
    let span = crate::span::Span::default();
    let read = |m: &mut Function, op: Op| {
        let found = m.iter().find(|(_, i)| i.op == op).map(|(v, _)| v);
        found.unwrap_or_else(|| m.push(op, vec![], span))
    };
    let ps: Vec<Value> = params.iter().map(|&q| read(&mut m, Op::Param(q))).collect();
    let inputs: Vec<Value> = (0..other.body.inputs.len())
        .map(|i| read(&mut m, Op::Input(i)))
        .collect();
    let outs = m.inline(&other.body, &ps, &inputs);
    let n0 = m.outputs.len();
    m.outputs
        .extend(other.body.outputs.iter().zip(&outs).map(|(o, &value)| {
            let mut o = o.clone();
            o.value = value;
            o
        }));
    super::simplify_rounds(&mut m);
    if (0..c).any(|k| m.outputs[k].value != m.outputs[n0 + k].value) {
        return None;
    }
    // Without carried values, the two are maps over the same steps: worth
    // one loop only when they compute something the same.
    if c == 0 && work(&m) >= work(&base.body) + work(&other.body) {
        return None;
    }
    m.outputs.drain(n0..n0 + c);
    super::dce::run(&mut m);
    Some(m)
}

/// Whether `i` computes something: not a parameter, the step, a constant,
/// or a slice or reshape of a value (the merged loop's parts).
fn computes(i: &crate::ir::Inst) -> bool {
    !matches!(
        i.op,
        Op::Param(_) | Op::Input(_) | Op::Const(_) | Op::Slice(_) | Op::Reshape(_)
    )
}

/// The instructions of `body` that compute something.
fn work(body: &Function) -> usize {
    body.insts().iter().filter(|i| computes(i)).count()
}

/// Puts the merged loop at `a`'s place and each of `a` and `b` as its
/// results: its carried values, the first of the merged loop's, and its
/// stacked ones (a `concat` of them unless they meet).
fn apply(f: &mut Function, a: Value, b: Value, m: Merged) {
    let merged = Loop {
        trips: as_loop(f, a).trips,
        carries: m.carries,
        body: m.body,
        recompute: false,
    };
    let (offsets, total) = merged.offsets();
    let end = |j: usize| offsets.get(j + 1).copied().unwrap_or(total);
    let ranges = |(c, stacked): &(usize, Vec<usize>)| {
        let mut r: Vec<(usize, usize)> = Vec::new();
        if *c > 0 {
            r.push((0, end(c - 1)));
        }
        r.extend(stacked.iter().map(|&j| (offsets[j], end(j))));
        // One range when they meet, else one slice a part (each then read
        // from the merged loop by the slices that read that part).
        if r.windows(2).all(|w| w[0].1 == w[1].0) {
            r = vec![(r[0].0, r[r.len() - 1].1)];
        }
        r
    };
    let (ra, rb) = (ranges(&m.parts[0]), ranges(&m.parts[1]));
    let length = |r: &[(usize, usize)]| r.iter().map(|r| r.1 - r.0).sum::<usize>();
    debug_assert_eq!(length(&ra), as_loop(f, a).offsets().1);
    debug_assert_eq!(length(&rb), as_loop(f, b).offsets().1);
    // The arguments made again at `a`'s place, by their value.
    let again: Vec<(Value, Result<Op, f64>, Shape)> = m
        .args
        .iter()
        .filter(|v| **v >= a)
        .map(|&v| (v, constant(f, v).expect("a constant"), f.shape(v).clone()))
        .collect();
    let mut merged = Some(merged);
    let mut map: Vec<Value> = Vec::with_capacity(f.len());
    let mut at = None;
    f.rewrite(|out, inst| {
        let k = map.len();
        let place = |out: &mut Function, v: Value, ranges: &[(usize, usize)]| {
            let parts: Vec<Value> = ranges
                .iter()
                .map(|&(lo, hi)| {
                    if (lo, hi) == (0, total) {
                        v
                    } else {
                        let axes = vec![SliceAxis::Range(lo, hi)];
                        out.push(Op::Slice(axes), vec![v], inst.span)
                    }
                })
                .collect();
            match parts[..] {
                [one] => one,
                _ => out.push(Op::Concat, parts, inst.span),
            }
        };
        let new = if k == a.index() {
            let mut arg = |v: &Value| match again.iter().find(|(w, ..)| w == v) {
                Some((_, Ok(op), _)) => out.push(op.clone(), vec![], inst.span),
                Some((_, Err(x), shape)) => splat(out, *x, shape, inst.span),
                None => map[v.index()],
            };
            let args = m.args.iter().map(&mut arg).collect();
            let l = merged.take().expect("one merged loop");
            let v = out.push(Op::Loop(Box::new(l)), args, inst.span);
            at = Some(v);
            Some(place(out, v, &ra))
        } else if k == b.index() {
            Some(place(out, at.expect("a before b"), &rb))
        } else {
            None
        };
        map.push(new.unwrap_or_else(|| out.next_value()));
        new
    });
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_same_bits_at, loops, lowered_and_simplified as compiled};
    use super::merged;
    use crate::ir::{Loop, Op};
    use crate::shape::Tensor;

    /// `src` (of one parameter `w`) has `lowered` loops as lowered and
    /// `simplified` once simplified, and the same bits either way.
    #[track_caller]
    fn loops_become(src: &str, lowered: usize, simplified: usize) {
        let (raw, ir) = compiled(src);
        assert_eq!((loops(&raw), loops(&ir)), (lowered, simplified), "{ir}");
        for w in [0.7, -1.3] {
            assert_same_bits_at(&raw, &ir, &[Tensor::scalar(w)], &[]);
        }
    }

    /// A loop's value and its forward derivative: the `jvp` runs the loop
    /// again with a tangent carried beside each value (more carried values,
    /// its tangents' zero starts made after the first loop), and the two
    /// runs are one loop, whichever comes first.
    #[test]
    fn a_loop_run_again_with_tangents_is_one_loop() {
        for (first, second) in [("v", "d"), ("d", "v")] {
            let src = format!(
                "param w = 0.7\n\
                 fn run(w) = loop (x, s) = ([1, 0.5], 0) for t in 0..6 {{ (sin(x) * w + x, s + x[0] * w) }}\n\
                 let (c, s) = run(w)\n\
                 output {first} = {}\n\
                 output {second} = {}\n\
                 loss 0\n",
                if first == "v" { "s * c[1]" } else { "jvp(s * c[1], w, 1)" },
                if first == "v" { "jvp(s * c[1], w, 1)" } else { "s * c[1]" },
            );
            loops_become(&src, 2, 1);
        }
    }

    /// A loop's value and its derivative: the derivative runs the loop
    /// again, keeping its states for the reverse, and the two runs are one
    /// loop (with the reverse, two, where lowering gave three).
    #[test]
    fn a_loop_run_again_for_its_derivative_is_one_loop() {
        for (start, body, names, value) in [
            ("x = [1, 0.5]", "sin(x) * w + x", "c", "sum(c)"),
            (
                "(x, s) = ([1, 0.5], 0)",
                "(x * w, s + sum(x^2))",
                "(c, s)",
                "s * c[1]",
            ),
        ] {
            let src = format!(
                "param w = 0.7\n\
                 fn run(w) = loop {start} for t in 0..6 {{ {body} }}\n\
                 let {names} = run(w)\n\
                 output v = {value}\n\
                 output d = grad({value}, w)\n\
                 loss 0\n"
            );
            loops_become(&src, 3, 2);
        }
    }

    /// Two derivatives through one loop with respect to different values
    /// keep different states: their two forward loops are one, which keeps
    /// a state both keep once.
    #[test]
    fn two_loops_that_keep_states_are_one() {
        let src = "param w = 0.7\n\
                   param u = 0.3\n\
                   fn run(w, u) = loop x = [1, 0.5] for t in 0..6 { sin(x * u) * w + x }\n\
                   output a = grad(sum(run(w, u)), w)\n\
                   output b = grad(sum(run(w, u)^2), u)\n\
                   loss 0\n";
        let (raw, ir) = compiled(src);
        // One forward loop and the two derivatives' reverse loops.
        assert_eq!(loops(&ir), 3, "{ir}");
        let kept: Vec<usize> = ir
            .iter()
            .filter_map(|(_, i)| match &i.op {
                Op::Loop(l) => Some(l.saved()),
                _ => None,
            })
            .collect();
        // Three states of [6, 2] (the first keeps two, the second two,
        // one of them the same).
        assert_eq!(kept[0], 36, "{ir}");
        let params = [Tensor::scalar(0.7), Tensor::scalar(0.3)];
        assert_same_bits_at(&raw, &ir, &params, &[]);
    }

    /// Loops over the same steps from the same start that compute other
    /// numbers stay two loops.
    #[test]
    fn loops_that_compute_other_numbers_stay_apart() {
        let src = "param w = 0.7\n\
                   let a = loop x = 1 for t in 0..5 { x * w + 1 }\n\
                   let b = loop x = 1 for t in 0..5 { x * w - 1 }\n\
                   output s = a * b\n\
                   loss 0\n";
        let (raw, ir) = compiled(src);
        assert_eq!(loops(&ir), 2, "{ir}");
        assert_same_bits_at(&raw, &ir, &[Tensor::scalar(0.7)], &[]);
    }

    /// The two loops of `src`'s program as lowered.
    fn two_loops(src: &str) -> (Loop, Loop) {
        let (raw, _) = compiled(src);
        let mut ls = raw.iter().filter_map(|(_, i)| match &i.op {
            Op::Loop(l) => Some((**l).clone()),
            _ => None,
        });
        (ls.next().expect("a"), ls.next().expect("b"))
    }

    /// The merged body is the two loops' only when the second's carried
    /// values come out as the first's, checked apart from the hashes that
    /// pick the pairs to try.
    #[test]
    fn a_merged_body_keeps_equal_carried_values_only() {
        let step = |s: &str| {
            format!(
                "param w = 0.7\n\
                 let a = loop x = 1 for t in 0..5 {{ x * w + 1 }}\n\
                 let b = loop x = 1 for t in 0..5 {{ {s} }}\n\
                 output s = a * b\n\
                 loss 0\n"
            )
        };
        for (s, same) in [
            ("x * w + 1", true),
            ("x * w - 1", false),
            ("(x + 1) * w", false),
        ] {
            let (a, b) = two_loops(&step(s));
            let params: Vec<usize> = (0..b.body.params.len()).collect();
            let m = merged(&a, &b, &params, 1);
            assert_eq!(m.is_some(), same, "{s}");
        }
    }

    /// Maps over the same steps (no carried values) are one loop when they
    /// share work (`th[k] * n`, `sin` of it), and stay apart when not, or
    /// when one reads the other; a map and a loop that carries a value
    /// stay apart.
    #[test]
    fn maps_that_share_work_are_one_loop() {
        let maps = "param th: [3] = [0.5, -1.2, 0.8]\n\
                    input n\n\
                    output p = [sin(th[k] * n) * th[k] for k in 0..3]\n\
                    output q = [sin(th[k] * n) + k for k in 0..3]\n\
                    output r = [cos(th[k] * n) for k in 0..3]\n\
                    loss 0\n";
        let apart = "param th: [3] = [0.5, -1.2, 0.8]\n\
                     input n\n\
                     output p = [sin(th[k]) for k in 0..3]\n\
                     output r = [n * k + 1 for k in 0..3]\n\
                     loss 0\n";
        // The second reads the first's numbers: it runs after it.
        let after = "param th: [3] = [0.5, -1.2, 0.8]\n\
                     input n\n\
                     let p = [sin(th[k] * n) for k in 0..3]\n\
                     output q = [sin(th[k] * n) * p[2 - k] for k in 0..3]\n\
                     loss 0\n";
        // A map beside a loop that carries a value, both reading `th[k]`.
        let carried = "param th: [3] = [0.5, -1.2, 0.8]\n\
                       input n\n\
                       output p = [sin(th[k] * n) for k in 0..3]\n\
                       output s = loop s = n for k in 0..3 { s * sin(th[k] * n) }\n\
                       loss 0\n";
        for (src, want) in [(maps, 1), (apart, 2), (after, 2), (carried, 2)] {
            let (raw, ir) = compiled(src);
            assert_eq!(loops(&ir), want, "{ir}");
            let th = Tensor::new(crate::shape::Shape::vector(3), vec![0.5, -1.2, 0.8]);
            assert_same_bits_at(&raw, &ir, &[th], &[Tensor::scalar(1.7)]);
        }
    }
}
