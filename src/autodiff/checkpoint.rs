//! Checkpointing (the train block's `checkpoint = K`): a loop of more than
//! `K` steps is differentiated as a loop over segments of `K` steps, each an
//! inner loop. The segments' loop saves only the carried values each
//! segment starts with, and its reverse computes the segment again (the
//! inner loop, saving what its own reverse reads) before running back
//! through it: the memory the gradient keeps falls from every step's values
//! to the segments' starts and one segment's values, for about one more
//! forward pass. The steps and their order are those of the loop, so the
//! gradient has the same bits.
//!
//! A loop that stacks values (a comprehension) is left whole, as is one of
//! `K` steps or fewer; steps that do not fill a segment run after the
//! segments, as a loop of their own.

use super::loops::part;
use crate::ir::{Binary, ConstData, Function, Loop, Op, Output, Role, SliceAxis, Slot, Value};
use crate::shape::{Shape, Tensor};
use crate::span::Span;

/// Splits every loop of `f` (and of the loops' bodies) of more than `every`
/// steps into segments of `every` steps.
pub fn split(f: &mut Function, every: usize) {
    if every == 0 || !f.insts().iter().any(|i| matches!(i.op, Op::Loop(_))) {
        return;
    }
    f.rewrite(|out, inst| {
        let Op::Loop(l) = &inst.op else { return None };
        let mut body = l.body.clone();
        split(&mut body, every);
        let l = Loop {
            body,
            ..(**l).clone()
        };
        let stacked = l.body.outputs.len() > l.carries;
        if l.recompute || l.carries == 0 || stacked || l.trips <= every {
            let changed = match &inst.op {
                Op::Loop(old) => **old != l,
                _ => false,
            };
            return changed.then(|| out.push(Op::Loop(Box::new(l)), inst.args.clone(), inst.span));
        }
        Some(segmented(out, &l, &inst.args, every, inst.span))
    });
}

/// The loop `l` (no stacked values) as a loop over `trips / every` segments
/// followed, for the steps left over, by a loop of its own. Its value: the
/// final carried values, packed as `l`'s.
fn segmented(out: &mut Function, l: &Loop, args: &[Value], every: usize, span: Span) -> Value {
    let k = l.carries;
    let (segments, rest) = (l.trips / every, l.trips % every);
    // A segment: `every` steps of the body, its step `s * every + j`.
    let inner = stepped(&l.body, Step::Segment(every), span);
    let mut outer = Function::new(
        l.body.params.clone(),
        vec![Slot {
            name: "segment".into(),
            shape: Shape::scalar(),
        }],
    );
    let mut inner_args: Vec<Value> = (0..l.body.params.len())
        .map(|p| {
            let v = outer.push(Op::Param(p), vec![], span);
            outer.set_name(v, &l.body.params[p].name);
            v
        })
        .collect();
    let s = outer.push(Op::Input(0), vec![], span);
    outer.set_name(s, "segment");
    inner_args.push(s);
    let inner = Loop {
        trips: every,
        carries: k,
        body: inner,
        recompute: false,
    };
    let y = outer.push(Op::Loop(Box::new(inner.clone())), inner_args, span);
    for (c, o) in l.body.outputs.iter().enumerate() {
        let value = part(&mut outer, y, &inner, c, span);
        outer.outputs.push(Output {
            role: Role::Output,
            name: o.name.clone(),
            value,
        });
    }
    let segments_loop = Loop {
        trips: segments,
        carries: k,
        body: outer,
        recompute: true,
    };
    let mut y = out.push(Op::Loop(Box::new(segments_loop)), args.to_vec(), span);
    if rest > 0 {
        let last = Loop {
            trips: rest,
            carries: k,
            body: stepped(&l.body, Step::From(segments * every), span),
            recompute: false,
        };
        let (offsets, _) = l.offsets();
        let mut last_args: Vec<Value> = (0..k)
            .map(|c| {
                let shape = l.parts()[c].clone();
                let flat = out.push(
                    Op::Slice(vec![SliceAxis::Range(
                        offsets[c],
                        offsets[c] + shape.size(),
                    )]),
                    vec![y],
                    span,
                );
                out.push(Op::Reshape(shape), vec![flat], span)
            })
            .collect();
        last_args.extend_from_slice(&args[k..]);
        y = out.push(Op::Loop(Box::new(last)), last_args, span);
    }
    y
}

/// How a rewritten body's step relates to the original's.
#[derive(Copy, Clone)]
enum Step {
    /// `s * n + j`, with the segment `s` a new last parameter, `j` the
    /// input.
    Segment(usize),
    /// `from + j`.
    From(usize),
}

/// `body` with its step computed from a new step, as `how` says.
fn stepped(body: &Function, how: Step, span: Span) -> Function {
    let mut params = body.params.clone();
    if let Step::Segment(_) = how {
        params.push(Slot {
            name: "segment".into(),
            shape: Shape::scalar(),
        });
    }
    let mut f = Function::new(params, body.inputs.clone());
    let ps: Vec<Value> = (0..f.params.len())
        .map(|p| f.push(Op::Param(p), vec![], span))
        .collect();
    let j = f.push(Op::Input(0), vec![], span);
    let konst =
        |f: &mut Function, x: f64| f.push(Op::Const(ConstData(Tensor::scalar(x))), vec![], span);
    let t = match how {
        Step::Segment(n) => {
            let n = konst(&mut f, n as f64);
            let start = f.push(Op::Binary(Binary::Mul), vec![ps[ps.len() - 1], n], span);
            f.push(Op::Binary(Binary::Add), vec![start, j], span)
        }
        Step::From(from) => {
            let from = konst(&mut f, from as f64);
            f.push(Op::Binary(Binary::Add), vec![from, j], span)
        }
    };
    let outs = f.inline(body, &ps[..body.params.len()], &[t]);
    for (o, v) in body.outputs.iter().zip(outs) {
        f.outputs.push(Output {
            role: o.role.clone(),
            name: o.name.clone(),
            value: v,
        });
    }
    f
}
