//! Reverse mode through a loop, as a loop: the forward loop keeps, for each
//! step, the values the body's vector-Jacobian product reads (see
//! [`save_states`]), and a reverse loop runs that product from the last
//! step to the first, carrying the cotangents of the carried values and
//! summing those of the captured ones.
//!
//! The body's vector-Jacobian product is itself made by this module's
//! transformation ([`super::differentiate`] on the body with seeds as
//! inputs), so loops nest, and the reverse loop is an ordinary loop that can
//! be differentiated again (Hessians through a loop).

use super::{differentiate_from, Ad, AdError, Cot};
use crate::ir::{
    Binary, ConstData, Function, Inst, Loop, Op, Output, Role, SliceAxis, Slot, Value,
};
use crate::shape::{Shape, Tensor};
use crate::span::Span;

/// Makes every loop that depends on a parameter keep what its reverse
/// needs: its body also returns, as stacked values (named [`Loop::STATE`]),
/// each value of a step that the body's vector-Jacobian product reads (the
/// carried values a step starts with, the results of its nonlinear
/// functions), so that the reverse loop reads them rather than computing
/// the step again. A row of a captured tensor read at the step (`x[t]`) is
/// read again instead. Loops inside the body are treated first. The loop's
/// value grows at its end, so the values read from it before are read from
/// a slice of the new one.
pub fn save_states(f: &mut Function) -> Result<(), AdError> {
    if !f.insts().iter().any(|i| matches!(i.op, Op::Loop(_))) {
        return Ok(());
    }
    let mut active = vec![false; f.len()];
    for (v, inst) in f.iter() {
        active[v.index()] =
            matches!(inst.op, Op::Param(_)) || inst.args.iter().any(|a| active[a.index()]);
    }
    // Per loop: its captured values that depend on no parameter.
    let frozen: Vec<Vec<usize>> = f
        .insts()
        .iter()
        .map(|inst| match &inst.op {
            Op::Loop(l) => (l.carries..inst.args.len())
                .filter(|&p| !active[inst.args[p].index()])
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    let mut k = 0;
    let mut failed = None;
    f.rewrite(|out, inst: &Inst| {
        let is_active = active[k];
        let frozen = &frozen[k];
        k += 1;
        let Op::Loop(l) = &inst.op else { return None };
        // A loop of no steps has nothing to save: its value is its
        // initial values.
        if !is_active || failed.is_some() || l.trips == 0 {
            return None;
        }
        let saving = match saving(l, frozen, inst.span) {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => {
                failed = Some(e);
                return None;
            }
        };
        let n = inst.shape.size();
        let y = out.push(Op::Loop(Box::new(saving)), inst.args.clone(), inst.span);
        Some(out.push(Op::Slice(vec![SliceAxis::Range(0, n)]), vec![y], inst.span))
    });
    failed.map_or(Ok(()), Err)
}

/// The loop `l` saving what its reverse needs, if it does not already.
fn saving(l: &Loop, frozen: &[usize], span: Span) -> Result<Option<Loop>, AdError> {
    let mut body = l.body.clone();
    // (The body of a loop that recomputes its steps is computed again in
    // the reverse, where its loops save what they need.)
    if !l.recompute {
        save_states(&mut body)?;
    }
    let have: Vec<Value> = saved(&Loop {
        body: body.clone(),
        ..l.clone()
    })
    .into_iter()
    .map(|(_, v)| v)
    .collect();
    // A loop that recomputes its steps saves the carried values only.
    let needed = if l.recompute {
        (0..l.carries).map(|c| param(&mut body, c, span)).collect()
    } else {
        residuals(&body, l.carries, frozen, span)?
    };
    let missing: Vec<Value> = needed.into_iter().filter(|r| !have.contains(r)).collect();
    if missing.is_empty() && body == l.body {
        return Ok(None);
    }
    for r in missing {
        body.outputs.push(Output {
            role: Role::Output,
            name: format!("{STATE}{}", r.index()),
            value: r,
        });
    }
    Ok(Some(Loop { body, ..l.clone() }))
}

/// The value of parameter `p` in `body` (pushed if the body has none).
fn param(body: &mut Function, p: usize, span: Span) -> Value {
    let found = body
        .iter()
        .find(|(_, i)| i.op == Op::Param(p))
        .map(|(v, _)| v);
    found.unwrap_or_else(|| body.push(Op::Param(p), vec![], span))
}

/// The stacked values of a loop that are saved for its reverse: each with
/// its output's position and the body's value.
fn saved(l: &Loop) -> Vec<(usize, Value)> {
    let b = &l.body;
    b.outputs
        .iter()
        .enumerate()
        .skip(l.carries)
        .filter(|(_, o)| o.name.starts_with(STATE))
        .map(|(j, o)| (j, o.value))
        .collect()
}

/// The values of a step of `body` (whose first `carries` parameters are
/// carried) that its vector-Jacobian product reads: the forward values its
/// backward instructions use, but not captured values, the step, constants
/// or rows of captured tensors at the step (read again in the reverse).
fn residuals(
    body: &Function,
    carries: usize,
    frozen: &[usize],
    span: Span,
) -> Result<Vec<Value>, AdError> {
    let g = raw_vjp(body, None, false, frozen, span)?;
    let n = body.len();
    let mut read = vec![false; n];
    for inst in g.insts().iter().filter(|i| i.backward.is_some()) {
        for (k, a) in inst.args.iter().enumerate() {
            // (A reverse loop captures forward values its body may not
            // read: those are not read.)
            let unread = matches!(&inst.op, Op::Loop(l) if !reads_param(&l.body, k));
            if a.index() < n && g.inst(*a).backward.is_none() && !unread {
                read[a.index()] = true;
            }
        }
    }
    // The step, and arithmetic of it with constants.
    let mut stepwise = vec![false; n];
    for (v, i) in body.iter() {
        stepwise[v.index()] = match i.op {
            Op::Input(_) | Op::Const(_) => true,
            Op::Binary(_) => i.args.iter().all(|a| stepwise[a.index()]),
            _ => false,
        };
    }
    // From the last value to the first: a value the reverse needs is
    // saved, unless it can be computed again from what the reverse has
    // at no more cost than reading it back. The step's arithmetic is; so
    // is a part of another value (an index at the step, a slice, a
    // reshape), which then needs that value in turn: a captured one is
    // there, a carried one saved (the reverse reads the carried values
    // from the saved ones only). So the row of a captured tensor at the
    // step, or a slice of a carried state, is read again, not kept per
    // step, which would only make the saved states larger (and a long
    // loop's reverse slower, for the memory they take). But a carried
    // value of which the reverse needs only parts smaller than itself (an
    // LSTM's two rows of its layers' state) has those parts saved instead.
    let mut needed = read.clone();
    let mut save = vec![false; n];
    let mut parts: Vec<Vec<Value>> = vec![Vec::new(); n];
    for (v, i) in body.iter().rev() {
        if !needed[v.index()] || stepwise[v.index()] {
            continue;
        }
        match &i.op {
            Op::Param(p) if *p < carries => {
                let of = &parts[v.index()];
                let size = |v: &Value| body.shape(*v).size();
                if !read[v.index()] && of.iter().map(size).sum::<usize>() < size(&v) {
                    for part in of {
                        save[part.index()] = true;
                    }
                } else {
                    save[v.index()] = true;
                }
            }
            Op::Param(_) => {}
            Op::Index | Op::Slice(_) | Op::Reshape(_)
                if i.args[1..].iter().all(|a| stepwise[a.index()]) =>
            {
                needed[i.args[0].index()] = true;
                parts[i.args[0].index()].push(v);
            }
            // Rows at a tensor of indices: gathered again from the rows
            // and the indices, which the reverse then reads (captured
            // ones are there, carried ones saved whole).
            Op::Gather => {
                needed[i.args[0].index()] = true;
                needed[i.args[1].index()] = true;
                read[i.args[1].index()] = true;
                parts[i.args[0].index()].push(v);
            }
            _ => save[v.index()] = true,
        }
    }
    Ok(body
        .iter()
        .filter(|(v, _)| save[v.index()])
        .map(|(v, _)| v)
        .collect())
}

/// Whether `body` reads its parameter `p`: an instruction or an output
/// uses it.
fn reads_param(body: &Function, p: usize) -> bool {
    body.iter().any(|(v, i)| {
        i.op == Op::Param(p)
            && (body.insts().iter().any(|j| j.args.contains(&v))
                || body.outputs.iter().any(|o| o.value == v))
    })
}

use crate::ir::Loop as L;
const STATE: &str = L::STATE;

/// The part `k` of a loop's packed value `y`, in its own shape.
pub(super) fn part(f: &mut Function, y: Value, l: &Loop, k: usize, span: Span) -> Value {
    let (offsets, _) = l.offsets();
    let shape = l.parts()[k].clone();
    let lo = offsets[k];
    let flat = f.push(
        Op::Slice(vec![SliceAxis::Range(lo, lo + shape.size())]),
        vec![y],
        span,
    );
    f.push(Op::Reshape(shape), vec![flat], span)
}

/// -0 in every element of a shape.
fn negative_zeros(f: &mut Function, shape: &Shape, span: Span) -> Value {
    let z = f.push(Op::Const(ConstData(Tensor::scalar(-0.0))), vec![], span);
    if shape.is_scalar() {
        z
    } else {
        f.push(Op::Broadcast(shape.clone()), vec![z], span)
    }
}

/// Zeros of a shape.
fn zeros(f: &mut Function, shape: &Shape, span: Span) -> Value {
    let z = f.push(Op::Const(ConstData(Tensor::scalar(0.0))), vec![], span);
    if shape.is_scalar() {
        z
    } else {
        f.push(Op::Broadcast(shape.clone()), vec![z], span)
    }
}

/// The body's vector-Jacobian product as a function, not simplified: the
/// body's instructions first (the same values), then the backward ones. Its
/// parameters are the body's; its inputs `(t, seed for each output...)`,
/// then, with `sums` the first captured parameter, the running sum of the
/// cotangent of each captured value, which the step's contributions
/// continue; its outputs, the cotangent of every parameter (carried, then
/// captured: the sums continued). With `masked`, the seeds are masked
/// cotangents (zeros kept exact where a branch was not taken).
fn raw_vjp(
    body: &Function,
    sums: Option<usize>,
    masked: bool,
    frozen: &[usize],
    span: Span,
) -> Result<Function, AdError> {
    let mut h = body.clone();
    let outputs = std::mem::take(&mut h.outputs);
    let mut total = None;
    for (k, o) in outputs.iter().enumerate() {
        let shape = h.shape(o.value).clone();
        h.inputs.push(Slot {
            name: format!("seed{k}"),
            shape: shape.clone(),
        });
        let seed = h.push(Op::Input(k + 1), vec![], span);
        let prod = h.push(Op::Binary(Binary::Mul), vec![o.value, seed], span);
        let s = if shape.is_scalar() {
            prod
        } else {
            h.push(Op::Sum, vec![prod], span)
        };
        total = Some(match total {
            None => s,
            Some(acc) => h.push(Op::Binary(Binary::Add), vec![acc, s], span),
        });
    }
    let total = match total {
        Some(t) => t,
        None => h.push(Op::Const(ConstData(Tensor::scalar(0.0))), vec![], span),
    };
    let mut start = Vec::new();
    if let Some(first) = sums {
        for p in (first..body.params.len()).filter(|p| !frozen.contains(p)) {
            start.push((p, h.inputs.len()));
            h.inputs.push(Slot {
                name: format!("sum_{}", body.params[p].name),
                shape: body.params[p].shape.clone(),
            });
        }
    }
    let mut g = differentiate_from(&h, total, &start, masked, frozen)?;
    g.outputs.retain(|o| matches!(o.role, Role::Grad(_)));
    Ok(g)
}

/// The body's vector-Jacobian product reading the saved values: the inputs
/// of [`raw_vjp`] (with the running sums of the captured values), then one
/// per saved value (in `saved` order), which replaces the body's
/// computation of it; simplified, so that only the backward work is left.
fn body_vjp(
    body: &Function,
    carries: usize,
    frozen: &[usize],
    saved: &[Value],
    masked: bool,
    span: Span,
) -> Result<Function, AdError> {
    let mut g = raw_vjp(body, Some(carries), masked, frozen, span)?;
    let base = g.inputs.len();
    for &r in saved {
        g.inputs.push(Slot {
            name: format!("saved{}", r.index()),
            shape: body.shape(r).clone(),
        });
    }
    let mut k = 0;
    g.rewrite(|out, inst| {
        let i = k;
        k += 1;
        let n = saved.iter().position(|r| r.index() == i)?;
        Some(out.push(Op::Input(base + n), vec![], inst.span))
    });
    crate::passes::simplify(&mut g);
    Ok(g)
}

/// The cotangents of a loop's arguments from the cotangent `g` of its
/// packed value `y` (a loop that saves its states; see [`save_states`]).
pub fn vjp(ad: &mut Ad, y: Value, g: Cot) -> Result<(), super::AdError> {
    let inst = ad.f.inst(y).clone();
    let Op::Loop(l) = &inst.op else {
        unreachable!("a loop")
    };
    let span = inst.span;
    let (k, t) = (l.carries, l.trips);
    let body = &l.body;
    let outs = body.outputs.len();
    if t == 0 {
        // No steps: the results are the initial values.
        for c in 0..k {
            let d = part(&mut ad.f, g.value, l, c, span);
            ad.contribute(inst.args[c], ad.like(g, d));
        }
        return Ok(());
    }
    let captures: Vec<Value> = inst.args[k..].to_vec();
    let active_caps: Vec<usize> = (0..captures.len())
        .filter(|&i| ad.is_active(captures[i]))
        .collect();

    // Outside: the cotangents of the final carried values and of each
    // stacked value (the saved ones too: a second derivative reads them),
    // and the saved values, read from `g` and `y`.
    let gfinal: Vec<Value> = (0..k)
        .map(|c| part(&mut ad.f, g.value, l, c, span))
        .collect();
    let gstack: Vec<Value> = (k..outs)
        .map(|j| part(&mut ad.f, g.value, l, j, span))
        .collect();
    let saved = saved(l);
    let states: Vec<Value> = saved
        .iter()
        .map(|&(j, _)| part(&mut ad.f, y, l, j, span))
        .collect();
    let saved_values: Vec<Value> = saved.iter().map(|&(_, r)| r).collect();

    // The reverse body: carried, the cotangents of the carried values and
    // the sums of those of the active captured values; captured, the saved
    // values, the forward loop's captured values and the stacked
    // cotangents; the input, the reverse step r, for t = trips - 1 - r.
    let frozen: Vec<usize> = (0..captures.len())
        .filter(|i| !active_caps.contains(i))
        .map(|i| k + i)
        .collect();
    let vjp_fn = body_vjp(body, k, &frozen, &saved_values, g.masked, span)?;
    // Names: `dh` the cotangent of `h`, `h_steps` its saved values, `dW`
    // the sum for a captured `W`, `dys_steps` the cotangents of a stacked
    // value.
    let slot = |name: String, shape: &Shape| Slot {
        name,
        shape: shape.clone(),
    };
    let mut slots = Vec::new();
    for c in 0..k {
        let p = &body.params[c];
        slots.push(slot(format!("d{}", p.name), &p.shape));
    }
    for &i in &active_caps {
        let p = &body.params[k + i];
        slots.push(slot(format!("d{}", p.name), &p.shape));
    }
    let captured: Vec<Value> = states
        .iter()
        .chain(&captures)
        .chain(&gstack)
        .copied()
        .collect();
    for (&r, &s) in saved_values.iter().zip(&states) {
        let name = match (&body.inst(r).name, &body.inst(r).op) {
            (Some(n), _) => n.clone(),
            (None, op) => format!("{}{}", crate::ir::printer::mnemonic(op), r.index()),
        };
        slots.push(slot(format!("{name}_steps"), ad.f.shape(s)));
    }
    for (i, &v) in captures.iter().enumerate() {
        slots.push(slot(body.params[k + i].name.clone(), ad.f.shape(v)));
    }
    for (j, &v) in gstack.iter().enumerate() {
        let name = &body.outputs[k + j].name;
        let name = if name.is_empty() {
            format!("out{j}")
        } else {
            name.clone()
        };
        slots.push(slot(
            format!("d{}_steps", name.replace(' ', "")),
            ad.f.shape(v),
        ));
    }
    let mut rb = Function::new(
        slots,
        vec![Slot {
            name: "r".into(),
            shape: Shape::scalar(),
        }],
    );
    let params: Vec<Value> = (0..rb.params.len())
        .map(|p| {
            let v = rb.push(Op::Param(p), vec![], span);
            let name = rb.params[p].name.clone();
            rb.set_name(v, &name);
            v
        })
        .collect();
    let carried_cots = &params[..k];
    let cap_sums = &params[k..k + active_caps.len()];
    let inside = &params[k + active_caps.len()..];
    let (state_ps, rest) = inside.split_at(states.len());
    let (cap_ps, gstack_ps) = rest.split_at(captures.len());
    let r = rb.push(Op::Input(0), vec![], span);
    rb.set_name(r, "r");
    let last = rb.push(
        Op::Const(ConstData(Tensor::scalar((t.max(1) - 1) as f64))),
        vec![],
        span,
    );
    let step = rb.push(Op::Binary(Binary::Sub), vec![last, r], span);
    rb.set_name(step, "t");
    // The carried values a step starts with are not read by the product
    // (what it reads of them is saved): zeros stand for them.
    let mut vjp_params = Vec::new();
    for p in &body.params[..k] {
        vjp_params.push(zeros(&mut rb, &p.shape, span));
    }
    vjp_params.extend_from_slice(cap_ps);
    let mut inputs = vec![step];
    inputs.extend_from_slice(carried_cots);
    for &gs in gstack_ps {
        inputs.push(rb.push(Op::Index, vec![gs, step], span));
    }
    // The running sums of the active captured values' cotangents.
    inputs.extend_from_slice(cap_sums);
    for &s in state_ps {
        inputs.push(rb.push(Op::Index, vec![s, step], span));
    }
    let grads = rb.inline(&vjp_fn, &vjp_params, &inputs);
    for (p, &g) in body.params.iter().zip(&grads[..k]) {
        rb.outputs.push(Output {
            role: Role::Output,
            name: format!("d{}", p.name),
            value: g,
        });
    }
    for &i in &active_caps {
        rb.outputs.push(Output {
            role: Role::Output,
            name: format!("d{}", body.params[k + i].name),
            value: grads[k + i],
        });
    }
    crate::passes::simplify(&mut rb);

    // The reverse loop, and its results to the loop's arguments: linear in
    // the cotangent, so zero where it is (masked as it is).
    // Each running sum starts from the contributions its value has
    // received so far (from uses after the loop), as the unrolled program
    // would sum them: so the bits are the unrolled program's. With none,
    // it starts from -0, which adds nothing (-0 + x is x, -0 included).
    let mut args = gfinal;
    for &i in &active_caps {
        let start = match ad.take_partial(captures[i]) {
            Some(partial) => partial,
            None => {
                let shape = ad.f.shape(captures[i]).clone();
                negative_zeros(&mut ad.f, &shape, span)
            }
        };
        args.push(start);
    }
    args.extend_from_slice(&captured);
    let reverse = Loop {
        trips: t,
        carries: k + active_caps.len(),
        body: rb,
        recompute: false,
    };
    let rl = ad.f.push(Op::Loop(Box::new(reverse.clone())), args, span);
    for c in 0..k {
        let d = part(&mut ad.f, rl, &reverse, c, span);
        ad.contribute(inst.args[c], ad.like(g, d));
    }
    for (n, &i) in active_caps.iter().enumerate() {
        let d = part(&mut ad.f, rl, &reverse, k + n, span);
        ad.contribute(captures[i], ad.like(g, d));
    }
    Ok(())
}
