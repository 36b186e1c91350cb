//! Forward values recomputed by the backward pass instead of stored for it:
//! the one part of the plan that changes the function, by adding copies of
//! instructions, before the steps are made.
//!
//! A gradient program's backward pass reads values of the forward pass. A
//! large one computed element by element from values stored anyway (a
//! product's result, an input) and spreads of smaller ones is cheaper to
//! compute again where the backward pass reads it than to store: `gmm`'s
//! `Qx = Qs @ x.T - Qs @ mu`, [K, D, N], whose forward run then writes
//! nothing out of its 16 MB (at d = 64, k = 25 its store took a third of
//! the gradient's generated code's time), while the backward run reads the
//! product's result where it read `Qx`. The copy takes the same operation
//! of the same arguments, so it has the same bits; its spreads are copied
//! with it, so that nothing of the forward run need be stored for it. (The
//! fusion schedule keeps such copies out of the runs of the forward pass,
//! [`super::fuse::copies`]: else a copy would join the run of the value it
//! copies, and be stored.)

use std::collections::HashMap;

use super::fuse::{spread, ElementOp, Member};
use crate::ir::{Function, Value, ValueMap};

/// The fewest numbers of a value worth computing again (512 KiB of f64):
/// a smaller one is read back from the cache.
const RECOMPUTED: usize = 1 << 16;

/// `f` with each forward value that `recomputable` says computed again
/// for its readers in the backward pass, a copy placed before the first of
/// them; `None` if it has none.
pub fn recompute(f: &Function) -> Option<Function> {
    let mut readers: ValueMap<Vec<Value>> = ValueMap::new(f, Vec::new());
    for (v, inst) in f.iter() {
        for &a in &inst.args {
            readers[a].push(v);
        }
    }
    let mut output = ValueMap::new(f, false);
    for o in &f.outputs {
        output[o.value] = true;
    }
    let chosen = ValueMap::from_fn(f, |v| !output[v] && recomputable(f, v, &readers[v]));
    if !chosen.as_slice().contains(&true) {
        return None;
    }
    let mut g = f.clone();
    let mut next = 0;
    // The chosen values as `g` numbers them, and their copies.
    let mut copies: HashMap<Value, Option<Value>> = HashMap::new();
    g.rewrite(|out, inst| {
        let v = f.value(next).expect("one instruction of `f` at a time");
        next += 1;
        if chosen[v] {
            copies.insert(out.next_value(), None);
            return None;
        }
        if inst.backward.is_none() || !inst.args.iter().any(|a| copies.contains_key(a)) {
            return None;
        }
        let args: Vec<Value> = inst
            .args
            .iter()
            .map(|&a| match copies.get(&a) {
                Some(&Some(copy)) => copy,
                Some(None) => {
                    let copy = copy_of(out, a);
                    copies.insert(a, Some(copy));
                    copy
                }
                None => a,
            })
            .collect();
        Some(out.push(inst.op.clone(), args, inst.span))
    });
    Some(g)
}

/// Whether `v`, read by `readers`, is a value of the forward pass worth
/// computing again in the backward pass: elementwise, of at least
/// [`RECOMPUTED`] numbers, from at most one argument of its size that is
/// stored anyway (not computed element by element: a product, an input, a
/// reduction), the others scalars or [`copied`] along; read in the forward
/// pass only by what a run computes with it (so that it need not be
/// stored for them), and in the backward pass only elementwise (so that
/// none of its readers needs it stored).
fn recomputable(f: &Function, v: Value, readers: &[Value]) -> bool {
    let inst = f.inst(v);
    let size = inst.shape.size();
    let map = matches!(
        ElementOp::of(&inst.op),
        Some(ElementOp::Unary(_) | ElementOp::Binary(_) | ElementOp::Select)
    );
    if inst.backward.is_some() || !map || size < RECOMPUTED {
        return false;
    }
    let mut stored = 0;
    for &a in &inst.args {
        if f.shape(a).is_scalar() || copied(f, a) {
            continue;
        }
        if super::fuse::per_element(f, a) || f.shape(a).size() != size {
            return false;
        }
        stored += 1;
    }
    let backward = |r: Value| f.inst(r).backward.is_some();
    let in_run = |r: Value| Member::of(&f.inst(r).op).is_some();
    let elementwise =
        |r: Value| ElementOp::of(&f.inst(r).op).is_some() && f.shape(r).size() == size;
    stored <= 1
        && readers.iter().any(|&r| backward(r))
        && readers.iter().any(|&r| !backward(r))
        && readers.iter().all(|&r| {
            if backward(r) {
                elementwise(r)
            } else {
                in_run(r)
            }
        })
}

/// Whether the argument `a` of a recomputed value is copied with it: a
/// spread of a tensor at least 8 times smaller, or a `broadcast` of a
/// scalar, which a run computes as it goes and so does not store.
fn copied(f: &Function, a: Value) -> bool {
    let inst = f.inst(a);
    let small = |b: Value| f.shape(b).size() * 8 <= inst.shape.size();
    let broadcast = ElementOp::of(&inst.op) == Some(ElementOp::Broadcast);
    (spread(f, a) && small(inst.args[0])) || broadcast
}

/// A copy of the value `v` of `out` (a [`recomputable`] one), its
/// [`copied`] arguments copied too, pushed now.
fn copy_of(out: &mut Function, v: Value) -> Value {
    let inst = out.inst(v).clone();
    let args = inst
        .args
        .iter()
        .map(|&a| {
            if out.shape(a).is_scalar() || !copied(out, a) {
                return a;
            }
            let arg = out.inst(a).clone();
            out.push(arg.op, arg.args, arg.span)
        })
        .collect();
    out.push(inst.op, args, inst.span)
}
