//! Reverse mode through a loop, as a loop: the forward loop keeps the
//! carried values it starts each step with (its *states*), and a reverse
//! loop runs the body's vector-Jacobian product from the last step to the
//! first, carrying the cotangents of the carried values and summing those
//! of the captured ones.
//!
//! The body's vector-Jacobian product is itself made by this module's
//! transformation ([`super::differentiate`] on the body with seeds as
//! inputs), so loops nest, and the reverse loop is an ordinary loop that can
//! be differentiated again (Hessians through a loop).

use super::{differentiate, Ad, Cot};
use crate::ir::{
    Binary, ConstData, Function, Inst, Loop, Op, Output, Role, SliceAxis, Slot, Value,
};
use crate::shape::{Shape, Tensor};
use crate::span::Span;

/// Makes every loop that depends on a parameter keep its states: its body
/// also returns, as stacked values, the carried values it starts each step
/// with. The loop's value grows at its end, so the values read from it
/// before are read from a slice of the new one.
pub fn save_states(f: &mut Function) {
    if !f.insts().iter().any(|i| matches!(i.op, Op::Loop(_))) {
        return;
    }
    let mut active = vec![false; f.len()];
    for (v, inst) in f.iter() {
        active[v.index()] =
            matches!(inst.op, Op::Param(_)) || inst.args.iter().any(|a| active[a.index()]);
    }
    let mut k = 0;
    f.rewrite(|out, inst: &Inst| {
        let is_active = active[k];
        k += 1;
        let Op::Loop(l) = &inst.op else { return None };
        if !is_active || saves_states(l) {
            return None;
        }
        let mut body = l.body.clone();
        for c in 0..l.carries {
            let found = body
                .iter()
                .find(|(_, i)| i.op == Op::Param(c))
                .map(|(v, _)| v);
            let p = match found {
                Some(v) => v,
                None => body.push(Op::Param(c), vec![], inst.span),
            };
            body.outputs.push(Output {
                role: Role::Output,
                name: format!("{STATE}{c}"),
                value: p,
            });
        }
        let n = inst.shape.size();
        let saving = Loop {
            trips: l.trips,
            carries: l.carries,
            body,
        };
        let y = out.push(Op::Loop(Box::new(saving)), inst.args.clone(), inst.span);
        Some(out.push(Op::Slice(vec![SliceAxis::Range(0, n)]), vec![y], inst.span))
    });
}

use crate::ir::Loop as L;
const STATE: &str = L::STATE;

/// Whether a loop's body returns its states (see [`save_states`]): its last
/// `carries` outputs. A loop without carried values has none to save.
fn saves_states(l: &Loop) -> bool {
    let b = &l.body;
    l.carries == 0
        || b.outputs.len() >= 2 * l.carries
            && b.outputs[b.outputs.len() - l.carries..]
                .iter()
                .all(|o| o.name.starts_with(STATE))
}

/// The part `k` of a loop's packed value `y`, in its own shape.
fn part(f: &mut Function, y: Value, l: &Loop, k: usize, span: Span) -> Value {
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

/// Zeros of a shape.
fn zeros(f: &mut Function, shape: &Shape, span: Span) -> Value {
    let z = f.push(Op::Const(ConstData(Tensor::scalar(0.0))), vec![], span);
    if shape.is_scalar() {
        z
    } else {
        f.push(Op::Broadcast(shape.clone()), vec![z], span)
    }
}

/// The body's vector-Jacobian product as a function: the body's parameters,
/// then inputs `(t, seed for each output...)`; its outputs, the cotangent of
/// every parameter (carried, then captured).
fn body_vjp(body: &Function, span: Span) -> Result<Function, super::AdError> {
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
    let mut g = differentiate(&h, total)?;
    g.outputs.retain(|o| matches!(o.role, Role::Grad(_)));
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
    assert!(
        saves_states(l),
        "a loop that depends on a parameter saves its states before differentiation"
    );
    let (k, t) = (l.carries, l.trips);
    let body = &l.body;
    let outs = body.outputs.len();
    let captures: Vec<Value> = inst.args[k..].to_vec();
    let active_caps: Vec<usize> = (0..captures.len())
        .filter(|&i| ad.is_active(captures[i]))
        .collect();

    // Outside: the cotangents of the final carried values and of each
    // stacked value, and the states, read from `g` and `y`.
    let gfinal: Vec<Value> = (0..k)
        .map(|c| part(&mut ad.f, g.value, l, c, span))
        .collect();
    let gstack: Vec<Value> = (k..outs)
        .map(|j| part(&mut ad.f, g.value, l, j, span))
        .collect();
    let states: Vec<Value> = (outs - k..outs)
        .map(|j| part(&mut ad.f, y, l, j, span))
        .collect();

    // The reverse body: carried, the cotangents of the carried values and
    // the sums of those of the active captured values; captured, the
    // states, the forward loop's captured values and the stacked
    // cotangents; the input, the reverse step r, for t = trips - 1 - r.
    let vjp_fn = body_vjp(body, span)?;
    // Names: `dh` the cotangent of `h`, `h_steps` its states, `dW` the sum
    // for a captured `W`, `dys_steps` the cotangents of a stacked value.
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
    for (p, &s) in body.params.iter().zip(&states) {
        slots.push(slot(format!("{}_steps", p.name), ad.f.shape(s)));
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
    let (state_ps, rest) = inside.split_at(k);
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
    let mut vjp_params = Vec::new();
    for &s in state_ps {
        vjp_params.push(rb.push(Op::Index, vec![s, step], span));
    }
    vjp_params.extend_from_slice(cap_ps);
    let mut seeds = vec![step];
    seeds.extend_from_slice(carried_cots);
    for &gs in gstack_ps {
        seeds.push(rb.push(Op::Index, vec![gs, step], span));
    }
    let grads = rb.inline(&vjp_fn, &vjp_params, &seeds);
    for (p, &g) in body.params.iter().zip(&grads[..k]) {
        rb.outputs.push(Output {
            role: Role::Output,
            name: format!("d{}", p.name),
            value: g,
        });
    }
    for (n, &i) in active_caps.iter().enumerate() {
        let sum = rb.push(
            Op::Binary(Binary::Add),
            vec![cap_sums[n], grads[k + i]],
            span,
        );
        rb.outputs.push(Output {
            role: Role::Output,
            name: format!("d{}", body.params[k + i].name),
            value: sum,
        });
    }
    crate::passes::simplify(&mut rb);

    // The reverse loop, and its results to the loop's arguments.
    let mut args = gfinal;
    for &i in &active_caps {
        let shape = ad.f.shape(captures[i]).clone();
        args.push(zeros(&mut ad.f, &shape, span));
    }
    args.extend_from_slice(&captured);
    let reverse = Loop {
        trips: t,
        carries: k + active_caps.len(),
        body: rb,
    };
    let rl = ad.f.push(Op::Loop(Box::new(reverse.clone())), args, span);
    for c in 0..k {
        let d = part(&mut ad.f, rl, &reverse, c, span);
        ad.contribute(
            inst.args[c],
            Cot {
                value: d,
                masked: false,
            },
        );
    }
    for (n, &i) in active_caps.iter().enumerate() {
        let d = part(&mut ad.f, rl, &reverse, k + n, span);
        ad.contribute(
            captures[i],
            Cot {
                value: d,
                masked: false,
            },
        );
    }
    Ok(())
}
