//! Rewrites of a loop instruction seen from the function around it: a
//! captured constant is copied into the body (where folding and the
//! algebraic rules can use it), and a captured value the body does not read
//! is no longer captured.

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
    let l = Loop {
        trips: l.trips,
        carries: k,
        body: new,
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
        let short = Loop {
            trips: l.trips,
            carries: l.carries,
            body,
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
