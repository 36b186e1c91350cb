//! Two loops that run the same steps from the same start, made one: a
//! derivative taken of a value a loop computed runs that loop again, keeping
//! what its reverse needs (`grad(c, w)` where `c` came out of a loop), and
//! the two runs are the same numbers. Common subexpression elimination
//! merges equal straight-line code, but not such a pair: the second loop
//! has more results than the first.
//!
//! Loops `a` and, later, `b` with the same trip count and the same carried
//! values' starts become one loop at `a`'s place, whose body is both bodies
//! (`b`'s carried parameters read as `a`'s, its captures as `a`'s where they
//! are the same values), simplified. It is `a`'s and `b`'s loop when, after
//! that, each of `b`'s new carried values is the same value of the body as
//! `a`'s: the two start equal and each step keeps them equal, so each step
//! of `b` computes what it did alone. Otherwise nothing changes. The merged
//! loop's results are the carried values, then `a`'s stacked ones, then
//! `b`'s; each loop's results are a range of them, so a pair of which both
//! stack values after carried ones is left as it is.
//!
//! `b` may read only values computed before `a` (then it cannot depend on
//! `a`, and its captures are there for the merged loop). Two loops without
//! carried values (maps over the same steps) are merged only when their
//! bodies share work. Checkpointed loops (`recompute`) are left alone. A hash of each carried value's computation
//! in each body picks the pairs worth trying.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use crate::ir::{Function, Loop, Op, SliceAxis, Value};

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

/// The loop `a` of `f` is, `b`'s part of their merged loop.
fn as_loop(f: &Function, v: Value) -> &Loop {
    match &f.inst(v).op {
        Op::Loop(l) => l,
        _ => unreachable!("a loop"),
    }
}

/// `a` and `b` merged, with the captures `b` adds, if they are siblings.
struct Merged {
    body: Function,
    /// `b`'s captured values that `a` does not capture, appended.
    extra: Vec<Value>,
}

fn pair(f: &Function, a: Value, b: Value) -> Option<Merged> {
    let (la, lb) = (as_loop(f, a), as_loop(f, b));
    let (ia, ib) = (&f.inst(a).args, &f.inst(b).args);
    let c = la.carries;
    if la.trips != lb.trips || lb.carries != c || ia[..c] != ib[..c] {
        return None;
    }
    // `b` reads nothing computed from `a` on, so it can run at `a`'s place.
    if ib.iter().any(|v| *v >= a) {
        return None;
    }
    // Each of `b`'s parameters as the merged body's: carried ones as `a`'s,
    // a capture as `a`'s parameter of the same value, or a new one.
    let mut extra = Vec::new();
    let mut params = Vec::with_capacity(lb.body.params.len());
    for (p, v) in ib.iter().enumerate() {
        let q = if p < c {
            p
        } else if let Some(q) = ia[c..].iter().position(|w| w == v) {
            c + q
        } else {
            extra.push(*v);
            ia.len() + extra.len() - 1
        };
        params.push(q);
    }
    let (ha, hb) = (
        hashes(&la.body, |p| key(p, ia, c)),
        hashes(&lb.body, |p| key(params[p], ia, c)),
    );
    let same_hash = (0..c)
        .all(|k| ha[la.body.outputs[k].value.index()] == hb[lb.body.outputs[k].value.index()]);
    // Without carried values, only bodies that compute something the same.
    let shared = || {
        let of_a: std::collections::HashSet<u64> = la
            .body
            .iter()
            .filter(|(_, i)| computes(i))
            .map(|(v, _)| ha[v.index()])
            .collect();
        lb.body
            .iter()
            .any(|(v, i)| computes(i) && of_a.contains(&hb[v.index()]))
    };
    if !same_hash || (c == 0 && !shared()) {
        return None;
    }
    let body = merged(la, lb, &params, &extra, ib)?;
    Some(Merged { body, extra })
}

/// A parameter's identity for [`hashes`]: a carried one by its position, a
/// captured one by the merged loop's parameter it becomes.
fn key(p: usize, ia: &[Value], c: usize) -> u64 {
    if p < c {
        p as u64
    } else {
        (ia.len() + p) as u64
    }
}

/// A hash of what each value of `body` computes, its parameters identified
/// by `param`: equal computations hash equal (a loop by its trip count,
/// carried values and body length only, as CSE compares loops).
fn hashes(body: &Function, param: impl Fn(usize) -> u64) -> Vec<u64> {
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

/// `a`'s body with `b`'s appended (its parameter `p` read as the merged
/// body's `params[p]`), simplified; its outputs `a`'s, then `b`'s stacked
/// ones; `None` unless `b`'s carried values came out as `a`'s.
fn merged(
    la: &Loop,
    lb: &Loop,
    params: &[usize],
    extra: &[Value],
    ib: &[Value],
) -> Option<Function> {
    let c = la.carries;
    let mut m = la.body.clone();
    for (p, _) in ib.iter().enumerate().skip(c) {
        if params[p] >= m.params.len() {
            m.params.push(lb.body.params[p].clone());
        }
    }
    debug_assert_eq!(m.params.len(), la.body.params.len() + extra.len());
    let span = crate::span::Span::default();
    let read = |m: &mut Function, op: Op| {
        let found = m.iter().find(|(_, i)| i.op == op).map(|(v, _)| v);
        found.unwrap_or_else(|| m.push(op, vec![], span))
    };
    let ps: Vec<Value> = params.iter().map(|&q| read(&mut m, Op::Param(q))).collect();
    let inputs: Vec<Value> = (0..lb.body.inputs.len())
        .map(|i| read(&mut m, Op::Input(i)))
        .collect();
    let outs = m.inline(&lb.body, &ps, &inputs);
    let na = m.outputs.len();
    m.outputs
        .extend(lb.body.outputs.iter().zip(&outs).map(|(o, &value)| {
            let mut o = o.clone();
            o.value = value;
            o
        }));
    super::simplify_rounds(&mut m);
    if (0..c).any(|k| m.outputs[k].value != m.outputs[na + k].value) {
        return None;
    }
    // Without carried values, the two are maps over the same steps: worth
    // one loop only when they compute something the same.
    if c == 0 && work(&m) >= work(&la.body) + work(&lb.body) {
        return None;
    }
    m.outputs.drain(na..na + c);
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
/// results: `a`'s the first of them, `b`'s the carried values and its
/// stacked ones (a `concat` of them unless they meet).
fn apply(f: &mut Function, a: Value, b: Value, m: Merged) {
    let la = as_loop(f, a);
    let (c, na, a_len) = (la.carries, la.body.outputs.len(), la.offsets().1);
    let merged = Loop {
        trips: la.trips,
        carries: c,
        body: m.body,
        recompute: false,
    };
    let (offsets, total) = merged.offsets();
    let end = |j: usize| offsets.get(j + 1).copied().unwrap_or(total);
    let mut b_ranges: Vec<(usize, usize)> = Vec::new();
    if c > 0 {
        b_ranges.push((0, end(c - 1)));
    }
    b_ranges.extend((na..offsets.len()).map(|j| (offsets[j], end(j))));
    // One range when they meet, else one slice a part (each then read
    // from the merged loop by the slices that read that part).
    if b_ranges.windows(2).all(|w| w[0].1 == w[1].0) {
        b_ranges = vec![(b_ranges[0].0, b_ranges[b_ranges.len() - 1].1)];
    }
    debug_assert_eq!(
        b_ranges.iter().map(|r| r.1 - r.0).sum::<usize>(),
        as_loop(f, b).offsets().1
    );
    let mut merged = Some(merged);
    let mut map: Vec<Value> = Vec::with_capacity(f.len());
    let mut at = None;
    f.rewrite(|out, inst| {
        let k = map.len();
        let range = |out: &mut Function, m: Value, (lo, hi): (usize, usize)| {
            if (lo, hi) == (0, total) {
                m
            } else {
                let axes = vec![SliceAxis::Range(lo, hi)];
                out.push(Op::Slice(axes), vec![m], inst.span)
            }
        };
        let new = if k == a.index() {
            let mut args = inst.args.clone();
            args.extend(m.extra.iter().map(|v| map[v.index()]));
            let l = merged.take().expect("one merged loop");
            let v = out.push(Op::Loop(Box::new(l)), args, inst.span);
            at = Some(v);
            Some(range(out, v, (0, a_len)))
        } else if k == b.index() {
            let v = at.expect("a before b");
            let parts: Vec<Value> = b_ranges.iter().map(|&r| range(out, v, r)).collect();
            Some(match parts[..] {
                [one] => one,
                _ => out.push(Op::Concat, parts, inst.span),
            })
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
    use crate::ir::{Loop, Op, Value};
    use crate::shape::Tensor;

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
            let (raw, ir) = compiled(&src);
            assert_eq!((loops(&raw), loops(&ir)), (3, 2), "{ir}");
            for w in [0.7, -1.3] {
                assert_same_bits_at(&raw, &ir, &[Tensor::scalar(w)], &[]);
            }
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
    fn two_loops(src: &str) -> (Loop, Loop, Vec<Value>, Vec<Value>) {
        let (raw, _) = compiled(src);
        let mut ls = raw.iter().filter_map(|(_, i)| match &i.op {
            Op::Loop(l) => Some(((**l).clone(), i.args.clone())),
            _ => None,
        });
        let ((a, ia), (b, ib)) = (ls.next().expect("a"), ls.next().expect("b"));
        (a, b, ia, ib)
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
            let (a, b, _, ib) = two_loops(&step(s));
            let params: Vec<usize> = (0..b.body.params.len()).collect();
            let m = merged(&a, &b, &params, &[], &ib);
            assert_eq!(m.is_some(), same, "{s}");
        }
    }

    /// Maps over the same steps (no carried values) are one loop when they
    /// share work (`th[k] * n`, `sin` of it), and stay apart when not, or
    /// when one reads the other.
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
        for (src, want) in [(maps, 1), (apart, 2), (after, 2)] {
            let (raw, ir) = compiled(src);
            assert_eq!(loops(&ir), want, "{ir}");
            let th = Tensor::new(crate::shape::Shape::vector(3), vec![0.5, -1.2, 0.8]);
            assert_same_bits_at(&raw, &ir, &[th], &[Tensor::scalar(1.7)]);
        }
    }
}
