//! Rewrites of a loop instruction seen from the function around it: a
//! captured constant is copied into the body (where folding and the
//! algebraic rules can use it), a captured value the body does not read,
//! or captures already, is no longer captured, and the body's
//! loop-invariant work is hoisted out of it ([`hoist`]); unread saved
//! values at the end of a loop's results are trimmed ([`trim`]), and saved
//! values stacked twice are stacked once, a constant not at all
//! ([`repeats`]). Each simplifies the new body it makes (see
//! [`super::simplify`]).

use crate::ir::fault::can_fail_at;
use crate::ir::{Function, Inst, Loop, Op, SliceAxis, Value};
use crate::shape::Shape;

use super::{splat, splat_value};

/// The loop `inst` without its constant, unread and repeated captures, if
/// it has any.
pub fn captures(out: &mut Function, inst: &Inst, l: &Loop) -> Option<Value> {
    let body = &l.body;
    let k = l.carries;
    let mut read = vec![false; body.params.len()];
    let mut uses = vec![0usize; body.len()];
    for i in body.insts() {
        for a in &i.args {
            uses[a.index()] += 1;
        }
    }
    for o in &body.outputs {
        uses[o.value.index()] += 1;
    }
    for (v, i) in body.iter() {
        if let Op::Param(p) = i.op {
            read[p] |= uses[v.index()] > 0;
        }
    }
    // Per capture: dropped (unread), a constant copied in, read as an
    // earlier capture of the same value, or kept.
    enum Fate {
        Keep,
        Drop,
        Splat(f64),
        Const(Inst),
        Same(usize),
    }
    let fates: Vec<Fate> = (k..body.params.len())
        .map(|p| {
            let arg = inst.args[p];
            if !read[p] {
                Fate::Drop
            } else if let Some(x) = splat_value(out, arg) {
                Fate::Splat(x)
            } else if let Op::Const(_) = out.inst(arg).op {
                Fate::Const(out.inst(arg).clone())
            } else if let Some(q) = (k..p).find(|&q| inst.args[q] == arg && read[q]) {
                Fate::Same(q)
            } else {
                Fate::Keep
            }
        })
        .collect();
    if fates.iter().all(|f| matches!(f, Fate::Keep)) {
        return None;
    }
    let mut renumber = (0..k).map(Some).collect::<Vec<_>>();
    let mut slots = body.params[..k].to_vec();
    let mut args = inst.args[..k].to_vec();
    for (n, fate) in fates.iter().enumerate() {
        let p = k + n;
        if let Fate::Keep = fate {
            renumber.push(Some(slots.len()));
            slots.push(body.params[p].clone());
            args.push(inst.args[p]);
        } else {
            renumber.push(None);
        }
    }
    let mut new = body.clone();
    new.params = slots;
    new.rewrite(|b, i| {
        let Op::Param(p) = i.op else { return None };
        Some(match (renumber[p], p.checked_sub(k).map(|n| &fates[n])) {
            (Some(q), _) => b.push(Op::Param(q), vec![], i.span),
            (None, Some(Fate::Splat(x))) => splat(b, *x, &i.shape, i.span),
            (None, Some(Fate::Const(c))) => b.push(c.op.clone(), vec![], i.span),
            (None, Some(Fate::Same(q))) => {
                let q = renumber[*q].expect("an earlier capture kept");
                b.push(Op::Param(q), vec![], i.span)
            }
            // Unread: a placeholder that dead code elimination removes.
            _ => splat(b, 0.0, &i.shape, i.span),
        })
    });
    super::simplify_rounds(&mut new);
    let l = Loop {
        trips: l.trips,
        carries: k,
        body: new,
        recompute: l.recompute,
    };
    Some(out.push(Op::Loop(Box::new(l)), args, inst.span))
}

/// Drops the stacked values at the end of a loop's results that nothing
/// reads (the states a loop saves for its reverse, when the reverse does not
/// need them): the loop's value becomes shorter, and an `unslice` puts it
/// back in place for the slices that read it, which the algebraic rules
/// then read from the shorter value directly.
pub fn trim(f: &mut Function) -> bool {
    if !f.insts().iter().any(|i| matches!(i.op, Op::Loop(_))) {
        return false;
    }
    // Per loop: the highest packed element read (exclusive).
    let mut read: Vec<usize> = vec![0; f.len()];
    for (_, inst) in f.iter() {
        for a in &inst.args {
            read[a.index()] = match (&inst.op, f.inst(*a).shape.dims()) {
                (Op::Slice(axes), [_]) => match axes.as_slice() {
                    [SliceAxis::Range(_, hi)] => read[a.index()].max(*hi),
                    [SliceAxis::At(i)] => read[a.index()].max(i + 1),
                    _ => usize::MAX,
                },
                _ => usize::MAX,
            };
        }
    }
    for o in &f.outputs {
        read[o.value.index()] = usize::MAX;
    }
    let mut k = 0;
    f.rewrite(|out, inst| {
        let used = read[k];
        k += 1;
        let Op::Loop(l) = &inst.op else { return None };
        let (offsets, total) = l.offsets();
        // Keep the outputs up to the last one read; never a carried one.
        let keep = (0..offsets.len())
            .rev()
            .find(|&j| j < l.carries || offsets[j] < used)
            .map_or(0, |j| j + 1)
            .max(l.carries);
        if keep == offsets.len() {
            return None;
        }
        let mut body = l.body.clone();
        body.outputs.truncate(keep);
        super::simplify_rounds(&mut body);
        let short = Loop {
            trips: l.trips,
            carries: l.carries,
            body,
            recompute: l.recompute,
        };
        let n = short.offsets().1;
        let y = out.push(Op::Loop(Box::new(short)), inst.args.clone(), inst.span);
        if n == 0 {
            return Some(splat(out, 0.0, &inst.shape, inst.span));
        }
        Some(out.push(
            Op::Unslice(vec![SliceAxis::Range(0, n)], Shape::vector(total)),
            vec![y],
            inst.span,
        ))
    })
}

/// Stacked values a loop's body gives twice, the same value of the body,
/// stacked once, and stacked values that are one number throughout (a
/// filled constant of the body) not stacked: a reverse names the states
/// it keeps before the body is simplified, and two of them may become one
/// value (a derivative's copies of one computation, merged by CSE), or a
/// constant (`gmm`'s reverse kept a vector of ones for every component).
/// Only for a loop that nothing reads but slices within one of its parts
/// (or within its carried values): each such slice then reads the part
/// kept, or is the constant, and the loop's old value is left to dead code
/// elimination.
pub fn repeats(f: &mut Function) -> bool {
    if !f.insts().iter().any(|i| matches!(i.op, Op::Loop(_))) {
        return false;
    }
    // Per loop with a repeated or constant stacked value: per output, what
    // becomes of it.
    let mut fates: Vec<Option<Vec<Part>>> = vec![None; f.len()];
    for (v, inst) in f.iter() {
        let Op::Loop(l) = &inst.op else { continue };
        let outs = &l.body.outputs;
        let parts: Vec<Part> = (0..outs.len())
            .map(|k| {
                let same = |j: &usize| *j >= l.carries && outs[*j].value == outs[k].value;
                if k < l.carries {
                    Part::Kept
                } else if let Some(x) = splat_value(&l.body, outs[k].value) {
                    Part::Filled(x)
                } else {
                    (l.carries..k).find(same).map_or(Part::Kept, Part::As)
                }
            })
            .collect();
        let kept = parts.iter().filter(|p| matches!(p, Part::Kept)).count();
        if kept < parts.len() && kept > 0 {
            fates[v.index()] = Some(parts);
        }
    }
    if fates.iter().all(Option::is_none) {
        return false;
    }
    // A loop read otherwise than by slices within one part is left; per
    // slice of one that is not, the loop, the part and the range.
    let mut readers_ok = vec![true; f.len()];
    let mut reads: Vec<Option<(usize, usize, SliceAxis)>> = vec![None; f.len()];
    for (v, inst) in f.iter() {
        for a in &inst.args {
            if fates[a.index()].is_some() {
                let part = within_one_part(f, inst, *a);
                readers_ok[a.index()] &= part.is_some();
                if let Some((p, axis)) = part {
                    reads[v.index()] = Some((a.index(), p, axis));
                }
            }
        }
    }
    for o in &f.outputs {
        readers_ok[o.value.index()] = false;
    }
    let mut moved: Vec<Option<Moved>> = vec![None; f.len()];
    let mut k = 0;
    f.rewrite(|out, inst| {
        let here = k;
        k += 1;
        if let Op::Loop(l) = &inst.op {
            let parts = fates[here].as_ref().filter(|_| readers_ok[here])?;
            let (offsets, _) = l.offsets();
            let is_kept = |j: &usize| matches!(parts[*j], Part::Kept);
            let mut body = l.body.clone();
            body.outputs = (0..parts.len())
                .filter(is_kept)
                .map(|j| l.body.outputs[j].clone())
                .collect();
            let short = Loop {
                trips: l.trips,
                carries: l.carries,
                body,
                recompute: l.recompute,
            };
            let (short_offsets, _) = short.offsets();
            let mut kept_at = vec![0; parts.len()];
            for (n, j) in (0..parts.len()).filter(is_kept).enumerate() {
                kept_at[j] = short_offsets[n];
            }
            let to = (0..parts.len())
                .map(|j| match parts[j] {
                    Part::Kept => Ok(kept_at[j]),
                    Part::As(i) => Ok(kept_at[i]),
                    Part::Filled(x) => Err(x),
                })
                .collect();
            let y = out.push(Op::Loop(Box::new(short)), inst.args.clone(), inst.span);
            moved[here] = Some(Moved {
                short: y,
                offsets,
                to,
            });
            // Only the slices below read it: a placeholder, left dead.
            return Some(splat(out, 0.0, &inst.shape, inst.span));
        }
        let (src, part, axis) = reads[here].as_ref()?;
        let m = moved[*src].as_ref()?;
        let at = match m.to[*part] {
            Ok(at) => at,
            Err(x) => return Some(splat(out, x, &inst.shape, inst.span)),
        };
        let shift = |i: usize| i - m.offsets[*part] + at;
        let axes = match *axis {
            SliceAxis::Range(lo, hi) => vec![SliceAxis::Range(shift(lo), shift(hi))],
            SliceAxis::At(i) => vec![SliceAxis::At(shift(i))],
        };
        Some(out.push(Op::Slice(axes), vec![m.short], inst.span))
    })
}

/// What [`repeats`] makes of a loop's output: kept, read as an earlier
/// one, or the constant it holds at every step.
#[derive(Clone, Copy)]
enum Part {
    Kept,
    As(usize),
    Filled(f64),
}

/// A loop [`repeats`] rewrote: the shorter loop, each part's old offset,
/// and where each part is now (an offset of the shorter loop's value, or
/// the number it holds).
#[derive(Clone)]
struct Moved {
    short: Value,
    offsets: Vec<usize>,
    to: Vec<Result<usize, f64>>,
}

/// If `reader` is a slice of the loop `l`'s value within one of its parts,
/// or within its carried values (then the first part): the part and the
/// slice's range.
fn within_one_part(f: &Function, reader: &Inst, l: Value) -> Option<(usize, SliceAxis)> {
    let Op::Slice(axes) = &reader.op else {
        return None;
    };
    let [axis] = axes.as_slice() else {
        return None;
    };
    let Op::Loop(lp) = &f.inst(l).op else {
        return None;
    };
    let (lo, hi) = match *axis {
        SliceAxis::Range(lo, hi) => (lo, hi),
        SliceAxis::At(i) => (i, i + 1),
    };
    let (offsets, total) = lp.offsets();
    let carried = offsets.get(lp.carries).copied().unwrap_or(total);
    if hi <= carried {
        return Some((0, *axis));
    }
    let part = offsets.iter().rposition(|&o| o <= lo)?;
    let end = offsets.get(part + 1).copied().unwrap_or(total);
    (hi <= end).then_some((part, *axis))
}

/// Whether `i`, an instruction of the body of a loop of `trips` steps,
/// reads the step's number where every step is in range: a `one_hot` of it
/// into `trips` classes or more, or a row of a tensor of `trips` rows or
/// more. Its operation can fail, but it cannot. (The checker rejects such
/// an index out of range in a program; the rule holds of any body.)
fn at_the_step(body: &Function, i: &Inst, trips: usize) -> bool {
    let step = |v: Value| matches!(body.inst(v).op, Op::Input(_));
    match i.op {
        Op::OneHot(classes) => step(i.args[0]) && trips <= classes,
        Op::Index => {
            let rows = body.shape(i.args[0]).dims().first().copied();
            step(i.args[1]) && rows.is_some_and(|n| trips <= n)
        }
        _ => false,
    }
}

/// The loop `inst` with the work of its body that is the same at every step
/// done once, before it: each instruction that reads only captured values,
/// constants and other such instructions (and cannot fail, or comes before
/// anything left in the body that can) is computed in the function around
/// the loop, and captured. A loop in the body is such an instruction too:
/// the primal work of a `jvp` or a `grad` in a comprehension (the chain of
/// `ht`'s bones, for every column of its Jacobian) is done once.
pub fn hoist(out: &mut Function, inst: &Inst, l: &Loop) -> Option<Value> {
    let body = &l.body;
    let k = l.carries;
    if l.trips == 0 {
        return None;
    }
    // Invariant: a captured parameter, a constant, or computed from those.
    // One that can fail (an index, a gather, a loop) is hoisted only if
    // every instruction before it that can fail is hoisted too: the first
    // step would run it anyway, and the first failure stays the first. A
    // `one_hot` or a row of the step's number in range cannot fail.
    let mut invariant = vec![false; body.len()];
    let mut failing_before = false;
    for (v, i) in body.iter() {
        invariant[v.index()] = match &i.op {
            Op::Param(p) => *p >= k,
            Op::Input(_) => false,
            Op::Const(_) => true,
            _ => {
                let of_invariants = i.args.iter().all(|a| invariant[a.index()]);
                if !can_fail_at(body, i) || at_the_step(body, i, l.trips) {
                    of_invariants
                } else {
                    let hoisted = of_invariants && !failing_before;
                    failing_before |= !hoisted;
                    hoisted
                }
            }
        };
    }
    // A filled constant is not worth hoisting: `captures` would copy it
    // back in, and the two would undo each other round after round.
    let computed = |v: Value| {
        invariant[v.index()]
            && !matches!(body.inst(v).op, Op::Param(_) | Op::Const(_))
            && splat_value(body, v).is_none()
    };
    if !body.values().any(computed) {
        return None;
    }
    // The invariant values, computed outside: captured parameters are the
    // loop's arguments.
    let mut outside: Vec<Option<Value>> = vec![None; body.len()];
    for (v, i) in body.iter() {
        if !invariant[v.index()] {
            continue;
        }
        outside[v.index()] = Some(match &i.op {
            Op::Param(p) => inst.args[*p],
            _ => {
                let args = i
                    .args
                    .iter()
                    .map(|a| outside[a.index()].expect("invariant"))
                    .collect();
                let w = out.push(i.op.clone(), args, i.span);
                if let Some(n) = &i.name {
                    out.set_name(w, n);
                }
                w
            }
        });
    }
    // The body reads each hoisted value as a new captured parameter.
    let mut new = body.clone();
    let mut args = inst.args.clone();
    let mut param_of: Vec<Option<usize>> = vec![None; body.len()];
    for v in body.values().filter(|&v| computed(v)) {
        param_of[v.index()] = Some(new.params.len());
        new.params.push(crate::ir::Slot {
            name: body
                .inst(v)
                .name
                .clone()
                .unwrap_or_else(|| format!("inv{}", v.index())),
            shape: body.shape(v).clone(),
        });
        args.push(outside[v.index()].expect("invariant"));
    }
    let mut k2 = 0;
    new.rewrite(|b, i| {
        let old = k2;
        k2 += 1;
        let p = param_of[old]?;
        let w = b.push(Op::Param(p), vec![], i.span);
        Some(w)
    });
    super::simplify_rounds(&mut new);
    let l = Loop {
        trips: l.trips,
        carries: k,
        body: new,
        recompute: l.recompute,
    };
    Some(out.push(Op::Loop(Box::new(l)), args, inst.span))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_same_bits_at, lowered_and_simplified};
    use crate::ir::{Binary, ConstData, Function, Loop, Op, Output, Role, SliceAxis, Slot, Unary};
    use crate::shape::{Shape, Tensor};
    use crate::span::Span;

    /// Per loop of `f`, its stacked outputs and its captured values.
    fn loops(f: &Function) -> Vec<(Vec<crate::ir::Value>, Vec<crate::ir::Value>)> {
        f.insts()
            .iter()
            .filter_map(|i| match &i.op {
                Op::Loop(l) => {
                    let stacked = l.body.outputs[l.carries..].iter().map(|o| o.value);
                    Some((stacked.collect(), i.args[l.carries..].to_vec()))
                }
                _ => None,
            })
            .collect()
    }

    fn repeated(values: &[crate::ir::Value]) -> bool {
        (0..values.len()).any(|j| values[..j].contains(&values[j]))
    }

    /// What [`stacked_twice`] stacks twice.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Stacked {
        /// A value of the body.
        Other,
        /// The new carried value.
        Carried,
        /// A constant.
        Filled,
    }

    /// What [`stacked_twice`] stacks and reads.
    struct Twice {
        stacked: Stacked,
        /// The slice `value[lo..hi]` summed.
        lo: usize,
        hi: usize,
        /// The loop's whole value an output too.
        whole: bool,
    }

    /// `a` through a loop of three steps that stacks one value of its
    /// body twice (its value [7]: the carried value, then the two stacked
    /// parts), and the sum of a slice of its value.
    fn stacked_twice(t: &Twice) -> Function {
        let sp = Span::default();
        let scalar = |n: &str| Slot {
            name: n.to_string(),
            shape: Shape::scalar(),
        };
        let out = |name: &str, value| Output {
            role: Role::Output,
            name: name.to_string(),
            value,
        };
        let mut body = Function::new(vec![scalar("x")], vec![scalar("t")]);
        let x = body.push(Op::Param(0), vec![], sp);
        let step = body.push(Op::Input(0), vec![], sp);
        let xt = body.push(Op::Binary(Binary::Mul), vec![x, step], sp);
        let z = body.push(Op::Unary(Unary::Sin), vec![xt], sp);
        let next = body.push(Op::Binary(Binary::Add), vec![x, z], sp);
        let kept = match t.stacked {
            Stacked::Other => z,
            Stacked::Carried => next,
            Stacked::Filled => body.push(Op::Const(ConstData(Tensor::scalar(2.5))), vec![], sp),
        };
        body.outputs = vec![out("x", next), out("state 1", kept), out("state 2", kept)];
        let l = Loop {
            trips: 3,
            carries: 1,
            body,
            recompute: false,
        };
        let mut f = Function::new(vec![scalar("a")], vec![]);
        let a = f.push(Op::Param(0), vec![], sp);
        let v = f.push(Op::Loop(Box::new(l)), vec![a], sp);
        let piece = f.push(Op::Slice(vec![SliceAxis::Range(t.lo, t.hi)]), vec![v], sp);
        let total = f.push(Op::Sum, vec![piece], sp);
        f.outputs = vec![out("s", total)];
        if t.whole {
            f.outputs.push(out("whole", v));
        }
        f
    }

    /// A `one_hot` of the step's number or a row at it cannot fail when
    /// every step is in range, and can when one is not; a row at another
    /// index can.
    #[test]
    fn reading_at_the_step_fails_only_past_the_end() {
        let sp = Span::default();
        let slot = |name: &str, shape| Slot {
            name: name.to_string(),
            shape,
        };
        let mut body = Function::new(
            vec![slot("m", Shape::matrix(3, 2))],
            vec![slot("t", Shape::scalar())],
        );
        let m = body.push(Op::Param(0), vec![], sp);
        let step = body.push(Op::Input(0), vec![], sp);
        let row = body.push(Op::Index, vec![m, step], sp);
        let hot = body.push(Op::OneHot(3), vec![step], sp);
        let two = body.push(Op::Const(ConstData(Tensor::scalar(2.0))), vec![], sp);
        let other = body.push(Op::Index, vec![m, two], sp);
        for (trips, safe) in [(1, true), (3, true), (4, false)] {
            for v in [row, hot] {
                assert_eq!(
                    super::at_the_step(&body, body.inst(v), trips),
                    safe,
                    "{trips}"
                );
            }
        }
        assert!(!super::at_the_step(&body, body.inst(other), 1));
    }

    /// A value stacked twice is stacked once (a constant not at all) when
    /// every slice of the loop lies in one part (or in the carried values),
    /// and reads the same numbers; a slice across two parts, or the loop's
    /// value an output, leaves the loop as it is.
    #[test]
    fn a_value_stacked_twice_is_stacked_once_under_slices_of_one_part() {
        for (lo, hi, whole, once) in [
            (1, 4, false, true),
            (4, 7, false, true),
            (5, 6, false, true),
            (0, 1, false, true),
            (2, 6, false, false),
            (0, 4, false, false),
            (0, 2, false, false),
            (4, 7, true, false),
        ] {
            for stacked in [Stacked::Other, Stacked::Carried, Stacked::Filled] {
                let t = Twice {
                    stacked,
                    lo,
                    hi,
                    whole,
                };
                let f = stacked_twice(&t);
                let mut g = f.clone();
                assert_eq!(super::repeats(&mut g), once, "{lo}..{hi}: {g}");
                let stacked = g.insts().iter().find_map(|i| match &i.op {
                    Op::Loop(l) => Some(l.body.outputs.len() - l.carries),
                    _ => None,
                });
                let want = match (once, t.stacked) {
                    (false, _) => 2,
                    (true, Stacked::Filled) => 0,
                    (true, _) => 1,
                };
                assert_eq!(stacked, Some(want), "{lo}..{hi}, {:?}", t.stacked);
                assert_same_bits_at(&f, &g, &[Tensor::scalar(0.3)], &[]);
            }
        }
    }

    /// Two forward derivatives of one function in a loop's step (a force
    /// by coordinates), the loop differentiated: the reverse keeps the
    /// function's values once each, though each derivative computed them,
    /// and its loop reads each once.
    #[test]
    fn a_value_the_reverse_keeps_twice_is_kept_once() {
        let src = "param w = 0.7\n\
                   fn p(x) = 1 / sqrt(sum((x - w)^2) + 1)\n\
                   fn run(w) = loop x = [1, 0.5] for t in 0..6 {\n\
                     x - 0.1 * [jvp(p(x), x, [1, 0]), jvp(p(x), x, [0, 1])]\n\
                   }\n\
                   output d = grad(sum(run(w)), w)\n\
                   loss 0\n";
        let (raw, ir) = lowered_and_simplified(src);
        let (before, after) = (loops(&raw), loops(&ir));
        let kept = |ls: &[(Vec<_>, Vec<_>)]| ls.iter().map(|l| l.0.len()).max();
        assert!(kept(&after) < kept(&before), "{ir}");
        for (stacked, captured) in &after {
            assert!(!repeated(stacked) && !repeated(captured), "{ir}");
        }
        for w in [0.7, -1.3] {
            assert_same_bits_at(&raw, &ir, &[Tensor::scalar(w)], &[]);
        }
    }
}
