//! A loop instruction (see [`crate::ir::Loop`]): its body, a function of its
//! own planned in its own region of the scratch buffer
//! ([`crate::backend::plan::BodyPlan`]), translated once inside a counted
//! loop of the generated code, so that the code does not grow with the
//! number of steps.
//!
//! The loop's value (the packed results) is its scratch slot: the carried
//! values live in its first parts from the start, and each step reads them
//! there, gathers its new ones in the plan's `next` buffer and copies them
//! back at its end (a step may still read an old carried value after it
//! computed a new one); each stacked value is written to its row. A carried
//! value that starts as a `broadcast` of a constant number, or as zeros
//! around one (an `unslice`), is written there as such, not copied: a
//! value that only loops carry is then never written out of them (`ode`'s
//! state from zeros, its adjoint from a one after zeros, 800 KB each at n
//! = 100,000). The captured values are read where they are. A failure in
//! the body returns the status of the loop of the function being
//! generated, with what failed in the fault slots.

use cranelift_codegen::ir::InstBuilder;

use super::{Ix, Loc, Opnd, Translator};
use crate::backend::plan::layout::needs_slot;
use crate::backend::plan::made_in_place;
use crate::backend::plan::views::is_view;
use crate::ir::{Loop, Op, Value, ValueMap};

/// The scratch offsets of a loop's carried values (the first parts of its
/// value, at `dst`).
fn carried_region(
    dst: Opnd,
    offsets: &[usize],
    parts: &[crate::shape::Shape],
    k: usize,
) -> std::ops::Range<usize> {
    let base = match dst {
        Opnd::Mem { off, .. } => off,
        Opnd::Reg(_) => 0,
    };
    let end = (0..k)
        .map(|c| offsets[c] + parts[c].size())
        .max()
        .unwrap_or(0);
    base..base + end
}

/// The carried values of `body` (whose first `carries` parameters are
/// carried) that a step updates in place, each with its carried position:
/// the new value is a chain of rows put (`index_set`) or added
/// (`index_add`, `scatter_add`) into the old one, each link of which
/// nothing else reads (the old value, each value between, the new one but
/// as the output). Every link is then computed where the old value is,
/// instead of into a copy of it copied back at the end of the step: a
/// gather's reverse adds one row a step.
fn in_place_updates(body: &crate::ir::Function, carries: usize) -> Vec<(Value, usize)> {
    use crate::ir::Op;
    let mut readers = vec![0usize; body.len()];
    for (_, inst) in body.iter() {
        for a in &inst.args {
            readers[a.index()] += 1;
        }
    }
    for o in &body.outputs {
        readers[o.value.index()] += 1;
    }
    let mut updates = Vec::new();
    for (c, o) in body.outputs[..carries].iter().enumerate() {
        // Every reader of the old value (of any instruction naming the
        // parameter) is the chain's first link.
        let old: usize = body
            .iter()
            .filter(|(_, i)| i.op == Op::Param(c))
            .map(|(p, _)| readers[p.index()])
            .sum();
        let mut chain = Vec::new();
        let mut v = o.value;
        loop {
            let inst = body.inst(v);
            let update = matches!(inst.op, Op::IndexAdd | Op::IndexSet | Op::ScatterAdd);
            if !update || readers[v.index()] != 1 {
                break;
            }
            chain.push(v);
            let acc = inst.args[0];
            if body.inst(acc).op == Op::Param(c) {
                if old == 1 {
                    updates.extend(chain.iter().map(|&w| (w, c)));
                }
                break;
            }
            v = acc;
        }
    }
    updates
}

/// The carried values of `body` that a step computes element by element in
/// place, each with its carried position: the new value is computed by an
/// elementwise operation (alone or in a fused run), and every reader of
/// the old value is an elementwise operation of that same step, which
/// reads each element of it only to compute the same element of its own
/// (the old value is not an output, a view's argument or a spread's), and
/// the new value is the output of that carried value alone; or a lag
/// of it in that step (`concat([a], old[0:n - 1])`), which reads each
/// element at its place and keeps it for the next (`ode`'s stages). Each
/// element of the old value is then read before the new one is written
/// over it. `det`'s gradient adds into a carried [2^L, L] table each step,
/// which was computed beside it and copied back.
fn elementwise_updates(
    body: &crate::ir::Function,
    layout: &crate::backend::plan::Layout,
    carries: usize,
) -> Vec<(Value, usize)> {
    use crate::backend::plan::fuse::{elementwise, lag, Member};
    use crate::ir::Op;
    let step_of = |v: Value| layout.steps.iter().position(|s| s.contains(&v));
    let mut updates = Vec::new();
    for (c, o) in body.outputs[..carries].iter().enumerate() {
        let new = o.value;
        let size = body.shape(new).size();
        let Some(step) = step_of(new) else { continue };
        let olds: Vec<Value> = body
            .iter()
            .filter(|(_, i)| i.op == Op::Param(c))
            .map(|(p, _)| p)
            .collect();
        let outputs_read_old = body.outputs.iter().any(|o| olds.contains(&o.value));
        // One value given to two carried values (or stacked too) has to be
        // copied to each: it is not computed in one's place.
        let once = body.outputs.iter().filter(|o| o.value == new).count() == 1;
        // A lag of the old value in the step's run reads each element at
        // its place and keeps it for the next: its slice reads nothing.
        let members = &layout.steps[step];
        let lags_old = |w: Value| {
            let lag_member = Member::in_run(body, w, |m| members.contains(&m)) == Some(Member::Lag);
            lag_member && lag(body, w).is_some_and(|(_, m)| olds.contains(&m))
        };
        let shifted = |s: Value| {
            body.iter()
                .all(|(c, i)| !i.args.contains(&s) || (step_of(c) == Some(step) && lags_old(c)))
        };
        let readers_in_step = body.iter().all(|(r, i)| {
            !i.args.iter().any(|a| olds.contains(a))
                || (step_of(r) == Some(step)
                    && elementwise(body, r)
                    && body.shape(r).size() == size)
                || (matches!(i.op, Op::Slice(_)) && shifted(r))
        });
        let shaped = olds.iter().all(|&p| body.shape(p).size() == size);
        // A run loads an element of the old value at its first reader and
        // keeps it for the others: that reader must come no later than the
        // new value, written over it.
        let at = |v: Value| members.iter().position(|&w| w == v);
        let first_read = members
            .iter()
            .position(|&w| body.inst(w).args.iter().any(|a| olds.contains(a)) || lags_old(w));
        let read_first = first_read.is_some_and(|r| Some(r) <= at(new));
        if elementwise(body, new)
            && once
            && !outputs_read_old
            && readers_in_step
            && shaped
            && read_first
        {
            updates.push((new, c));
        }
    }
    updates
}

impl<'a> Translator<'a, '_> {
    /// The start `v` of a carried value ([`made_in_place`]) written to
    /// `dst`, its place in the loop's value.
    fn start_carried(&mut self, dst: Opnd, v: Value) {
        let inst = self.f.inst(v);
        match &inst.op {
            Op::Unslice(axes, into) => self.unslice_to(dst, inst.args[0], axes, into),
            _ => {
                let x = self.operand(inst.args[0]);
                let x = self.read(x, Ix::c(0));
                self.fill_with(dst, inst.shape.size(), x);
            }
        }
    }

    /// Row `step` of the stacked value at `offset` (of rows of `n`
    /// elements) of a loop's value `dst`.
    fn stacked_row(&mut self, dst: Opnd, step: Ix, offset: usize, n: usize) -> Opnd {
        let row = self.lin(&[(step, n)], offset);
        self.moved(dst, row)
    }

    /// The loop `v` with arguments `args`.
    pub(super) fn loop_op(&mut self, v: Value, args: &[Value], l: &'a Loop) -> Result<Loc, String> {
        let layout: &'a crate::backend::plan::Layout = self.layout;
        let plan = layout
            .body_of(v)
            .ok_or_else(|| format!("no plan for the body of loop %{}", v.index()))?;
        let (offsets, _) = l.offsets();
        let parts = l.parts();
        let dst = self.dest(v);
        let k = l.carries;
        for c in 0..k {
            if !parts[c].is_scalar() && made_in_place(self.f, args[c]) {
                self.start_carried(dst.at(offsets[c]), args[c]);
                continue;
            }
            let src = self.operand(args[c]);
            self.copy(src, dst, offsets[c], parts[c].size());
        }
        let captured: Vec<Loc> = args[k..].iter().map(|&a| self.loc(a)).collect();
        let frame = Frame {
            body: &l.body,
            plan,
            offsets,
            parts,
            carries: k,
        };
        let in_place = match self.dst_loc(dst) {
            Loc::Scratch(off) => in_place_updates(&l.body, k)
                .into_iter()
                .chain(elementwise_updates(&l.body, &plan.layout, k))
                .map(|(v, c)| (v, off + frame.offsets[c]))
                .collect(),
            _ => Vec::new(),
        };
        if self.cuts_body(l, dst, &captured) {
            self.body_in_pieces(v, l.trips, &frame, dst, &captured, in_place)?;
            return Ok(self.dst_loc(dst));
        }
        let body = &l.body;
        // The body's values, translated in its own context.
        let outer = (self.f, self.layout);
        let fault_at = self.fault_at.or(Some(v));
        let saved_fault = std::mem::replace(&mut self.fault_at, fault_at);
        let outer_in_place = std::mem::replace(&mut self.in_place, in_place);
        let outer_stacked = std::mem::take(&mut self.stacked);
        let outer_written = std::mem::take(&mut self.written);
        let mut failed = Ok(());
        self.for_each_rolled(l.trips, &mut |t, step| {
            if failed.is_err() {
                return;
            }
            let outer_locs = std::mem::replace(&mut t.locs, ValueMap::new(body, None));
            t.f = body;
            t.layout = &plan.layout;
            t.place_params(&frame, dst, Some(&captured), step);
            let rows = t.stack_rows(&frame, dst, step);
            for s in &plan.layout.steps {
                if placed(body, s) {
                    continue;
                }
                if let Err(e) = t.step(s) {
                    failed = Err(e);
                    break;
                }
            }
            if failed.is_ok() {
                t.end_step(&frame, dst, &rows);
            }
            t.locs = outer_locs;
            (t.f, t.layout) = outer;
        });
        self.fault_at = saved_fault;
        self.in_place = outer_in_place;
        self.stacked = outer_stacked;
        self.written = outer_written;
        failed?;
        Ok(self.dst_loc(dst))
    }

    /// Places the parameters of `frame`'s body and its step (`step`)
    /// before its steps run: each carried value in its part of the loop's
    /// value `dst` (a scalar read into a register), each captured value
    /// where `captured` says, if given (else where it is already).
    pub(super) fn place_params(
        &mut self,
        frame: &Frame,
        dst: Opnd,
        captured: Option<&[Loc]>,
        step: Ix,
    ) {
        let k = frame.carries;
        for (p, inst) in frame.body.iter() {
            let loc = match inst.op {
                Op::Param(i) if i < k => {
                    let at = frame.offsets[i];
                    if inst.shape.is_scalar() {
                        Loc::Reg(self.read(dst, Ix::c(at)))
                    } else {
                        self.dst_loc(dst).offset(at)
                    }
                }
                Op::Param(i) => match captured {
                    Some(captured) => captured[i - k],
                    None => continue,
                },
                Op::Input(_) => {
                    let x = match step.dynamic {
                        Some(i) => self.b.ins().fcvt_from_sint(self.st, i),
                        None => self.fconst(step.konst as f64),
                    };
                    Loc::Reg(x)
                }
                _ => continue,
            };
            self.locs[p] = Some(loc);
        }
    }

    /// Each stacked value's row of the loop's value `dst` at `step`; a
    /// value the step computes into a destination of its own (not a view,
    /// not an update in place) is to be computed there (`stacked`).
    pub(super) fn stack_rows(&mut self, frame: &Frame, dst: Opnd, step: Ix) -> Vec<Opnd> {
        let (body, k) = (frame.body, frame.carries);
        let rows: Vec<Opnd> = body.outputs[k..]
            .iter()
            .enumerate()
            .map(|(s, o)| {
                let n = body.shape(o.value).size();
                self.stacked_row(dst, step, frame.offsets[k + s], n)
            })
            .collect();
        self.stacked = Vec::new();
        for (o, &row) in body.outputs[k..].iter().zip(&rows) {
            let w = o.value;
            let own = needs_slot(body, w)
                && !is_view(body, w)
                && !self.in_place.iter().any(|&(u, _)| u == w)
                && !self.stacked.iter().any(|&(u, _)| u == w);
            if own {
                self.stacked.push((w, row));
            }
        }
        rows
    }

    /// The end of a step of `frame`'s body: each stacked value to its row
    /// (`rows`; it may read an old carried value), then the new carried
    /// values, gathered and put in place in the loop's value `dst`.
    pub(super) fn end_step(&mut self, frame: &Frame, dst: Opnd, rows: &[Opnd]) {
        let (body, k) = (frame.body, frame.carries);
        // (One computed in its row is there already.)
        for (o, &row) in body.outputs[k..].iter().zip(rows) {
            let there = match (self.loc(o.value), row) {
                (Loc::Row(p, off), Opnd::Mem { ptr, off: at, .. }) => p == ptr && off == at,
                (Loc::Scratch(off), Opnd::Mem { ptr, off: at, .. }) => {
                    ptr == self.scratch && off == at
                }
                _ => false,
            };
            if !there {
                let src = self.operand(o.value);
                self.copy(src, row, 0, body.shape(o.value).size());
            }
        }
        // The new carried values go straight to their places when none of
        // them is in the carried values' memory (a carried value passed
        // on, or a view of one); else through the plan's `next`. (A value
        // updated in place is in its place already.)
        let carried = carried_region(dst, &frame.offsets, &frame.parts, k);
        let moved: Vec<(usize, &crate::ir::Output)> = body.outputs[..k]
            .iter()
            .enumerate()
            .filter(|(_, o)| !self.in_place.iter().any(|&(w, _)| w == o.value))
            .collect();
        // (A row chosen when it runs may be anywhere.)
        let in_place = moved.iter().any(|(_, o)| match self.loc(o.value) {
            Loc::Scratch(off) => carried.contains(&off),
            Loc::Row(..) => true,
            _ => false,
        });
        if in_place {
            let next = self.opnd_of(Loc::Scratch(frame.plan.next));
            let mut at = 0;
            for (_, o) in &moved {
                let n = body.shape(o.value).size();
                let src = self.operand(o.value);
                self.copy(src, next, at, n);
                at += n;
            }
            let mut at = 0;
            for &(c, o) in &moved {
                let n = body.shape(o.value).size();
                let src = next.at(at);
                self.copy(src, dst, frame.offsets[c], n);
                at += n;
            }
        } else {
            for &(c, o) in &moved {
                let n = body.shape(o.value).size();
                let src = self.operand(o.value);
                self.copy(src, dst, frame.offsets[c], n);
            }
        }
    }
}

/// Whether `step` of a body is a parameter or its step, which
/// [`Translator::place_params`] places before the steps run.
pub(super) fn placed(body: &crate::ir::Function, step: &[Value]) -> bool {
    matches!(step, [p] if matches!(body.inst(*p).op, Op::Param(_) | Op::Input(_)))
}

/// What every step of a loop's body reads: the body and its plan, the
/// offsets and shapes of the loop value's parts, and how many are carried.
pub(super) struct Frame<'a> {
    pub body: &'a crate::ir::Function,
    pub plan: &'a crate::backend::plan::BodyPlan,
    pub offsets: Vec<usize>,
    pub parts: Vec<crate::shape::Shape>,
    pub carries: usize,
}
