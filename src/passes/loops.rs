//! Rewrites of a loop instruction seen from the function around it: a
//! captured constant is copied into the body (where folding and the
//! algebraic rules can use it), a captured value the body does not read is
//! no longer captured, and the body's loop-invariant work is hoisted out of
//! it ([`hoist`]); unread saved values at the end of a loop's results are
//! trimmed ([`trim`]). Each simplifies the new body it makes (see
//! [`super::simplify`]).

use crate::ir::fault::can_fail_at;
use crate::ir::{Function, Inst, Loop, Op, SliceAxis, Value};
use crate::shape::Shape;

use super::{splat, splat_value};

/// The loop `inst` without its constant and unread captures, if it has any.
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
    // Per capture: dropped (unread), a constant copied in, or kept.
    enum Fate {
        Keep,
        Drop,
        Splat(f64),
        Const(Inst),
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

/// The loop `inst` with the work of its body that is the same at every step
/// done once, before it: each instruction that reads only captured values,
/// constants and other such instructions (and cannot fail, but for a
/// gather or a scatter before anything that can) is computed in the
/// function around the loop, and captured.
pub fn hoist(out: &mut Function, inst: &Inst, l: &Loop) -> Option<Value> {
    let body = &l.body;
    let k = l.carries;
    if l.trips == 0 {
        return None;
    }
    // Invariant: a captured parameter, a constant, or computed from those.
    // One that can fail is hoisted only if it is a gather or a scatter and
    // every instruction before it that can fail is hoisted too: the first
    // step would run it anyway, and the first failure stays the first.
    let mut invariant = vec![false; body.len()];
    let mut failing_before = false;
    for (v, i) in body.iter() {
        invariant[v.index()] = match &i.op {
            Op::Param(p) => *p >= k,
            Op::Input(_) => false,
            Op::Const(_) => true,
            op => {
                let of_invariants = i.args.iter().all(|a| invariant[a.index()]);
                if !can_fail_at(body, i) {
                    of_invariants
                } else {
                    let hoisted = of_invariants
                        && !failing_before
                        && matches!(op, Op::Gather | Op::ScatterAdd);
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
