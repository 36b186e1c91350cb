//! Fewer passes over memory, the same arithmetic: loop fusion and views.
//!
//! - A *run* is a sequence of consecutive elementwise instructions (unary,
//!   binary, `select`, `broadcast`) of one size, each reading the others
//!   element by element, possibly followed by `sum`s of its members. It is
//!   translated as one loop: every element of every member is computed in
//!   turn, in registers; only the members read outside the run are stored
//!   (the others, *internal*, have no scratch slot), and a `sum` adds the
//!   elements as they come, in the same order as a separate loop would.
//! - A `slice` that selects a contiguous block is a *view*: its value is its
//!   argument's memory from an offset, with no copy.
//!
//! Each element goes through the same operations as without fusion, so the
//! results are the same bits.

use std::collections::HashMap;

use cranelift_codegen::ir::{self as cl, types, InstBuilder};
use cranelift_frontend::Variable;

use super::ops::{lane_wise_binary, lane_wise_unary};
use super::translate::{dst_loc, Ix, Loc, Opnd, Translator};
use crate::ir::interp::slice_offsets;
use crate::ir::{Function, Op, SliceAxis};
use crate::shape::Shape;

/// Whether instruction `i` computes each element of its (non-scalar) result
/// from the same element of each non-scalar argument.
pub fn elementwise(f: &Function, i: usize) -> bool {
    let inst = &f.insts()[i];
    let elementwise_op = match &inst.op {
        Op::Unary(_) | Op::Binary(_) | Op::Select | Op::Broadcast(_) => true,
        Op::Param(_)
        | Op::Input(_)
        | Op::Const(_)
        | Op::MatMul
        | Op::Outer
        | Op::Transpose
        | Op::Sum
        | Op::ReduceMax
        | Op::Norm
        | Op::LogSumExp
        | Op::Softmax
        | Op::LogSoftmax
        | Op::Slice(_)
        | Op::Unslice(..)
        | Op::Pack
        | Op::OneHot(_) => false,
    };
    elementwise_op && !inst.shape.is_scalar()
}

/// If instruction `i` is a `slice` with a non-scalar result whose elements
/// are contiguous in its argument, the offset of the first one.
pub fn view_offset(f: &Function, i: usize) -> Option<usize> {
    let inst = &f.insts()[i];
    let Op::Slice(axes) = &inst.op else {
        return None;
    };
    if inst.shape.is_scalar() {
        return None;
    }
    contiguous(f.shape(inst.args[0]), axes)
}

/// If the elements `Slice(axes)` selects from a tensor of shape `s` are
/// contiguous, the offset of the first one.
pub fn contiguous(s: &Shape, axes: &[SliceAxis]) -> Option<usize> {
    let offsets = slice_offsets(s, axes);
    let first = offsets.first().copied().unwrap_or(0);
    let contiguous = offsets.iter().enumerate().all(|(k, &o)| o == first + k);
    contiguous.then_some(first)
}

/// How far past a run's first instruction [`steps`] looks for members.
const WINDOW: usize = 256;

/// What [`steps`] has decided about an instruction while it grows a run.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// Not looked at yet.
    Open,
    /// In an earlier step, or outside the region.
    Done,
    /// Goes just before the run: it reads nothing from it.
    Hoisted,
    InRun,
    /// Goes after the run, in its original place among the others.
    Deferred,
}

/// Splits `region`, instructions in execution order, into steps: a run of
/// two or more instructions (see the module documentation), or one
/// instruction, in an order that respects every dependency.
///
/// From the first instruction not yet placed, if it is elementwise, a run
/// grows over the next [`WINDOW`] instructions: each joins it if it can
/// (elementwise of the same size, or a `sum` of a member, reading only
/// members and values ready before the run); else it is hoisted before the
/// run if it reads nothing from the run or from what was deferred, and is
/// neither elementwise (so that it can start a run of its own later) nor a
/// `one_hot` (so that failing `one_hot`s keep their order); else it is
/// deferred. What is not placed is looked at again, in order, after the run.
pub fn steps(f: &Function, region: &[usize]) -> Vec<Vec<usize>> {
    let mut state = vec![State::Done; f.insts().len()];
    for &i in region {
        state[i] = State::Open;
    }
    let mut steps = Vec::new();
    for (pos, &head) in region.iter().enumerate() {
        if state[head] != State::Open {
            continue;
        }
        state[head] = State::Done;
        if !elementwise(f, head) {
            steps.push(vec![head]);
            continue;
        }
        // `head` is ready: everything before it is placed.
        state[head] = State::InRun;
        let mut run = vec![head];
        let mut hoisted = Vec::new();
        let mut looked = Vec::new();
        let size = f.insts()[head].shape.size();
        for &i in region[pos + 1..].iter().take(WINDOW) {
            if state[i] != State::Open {
                continue;
            }
            let inst = &f.insts()[i];
            let of = |a: &crate::ir::Value| state[a.index()];
            let ready = |s: State| matches!(s, State::Done | State::Hoisted);
            let member = |a: &crate::ir::Value| of(a) == State::InRun && elementwise(f, a.index());
            let joins = if matches!(inst.op, Op::Sum) {
                member(&inst.args[0])
            } else {
                elementwise(f, i)
                    && inst.shape.size() == size
                    && inst.args.iter().all(|a| member(a) || ready(of(a)))
            };
            state[i] = if joins {
                run.push(i);
                State::InRun
            } else if !elementwise(f, i)
                && !matches!(inst.op, Op::OneHot(_))
                && inst.args.iter().all(|a| ready(of(a)))
            {
                hoisted.push(i);
                State::Hoisted
            } else {
                looked.push(i);
                State::Deferred
            };
        }
        for i in hoisted {
            state[i] = State::Done;
            steps.push(vec![i]);
        }
        for &i in &run {
            state[i] = State::Done;
        }
        steps.push(run);
        for i in looked {
            state[i] = State::Open;
        }
    }
    steps
}

impl Translator<'_, '_> {
    /// Translates a run of two or more instructions as one loop. `internal`
    /// marks the members that nothing outside the run reads: they get no
    /// location.
    pub(super) fn fused(&mut self, run: &[usize], internal: &[bool]) {
        let f = self.f;
        let n = f.insts()[run[0]].shape.size();
        let simd = n >= 2
            && run.iter().all(|&i| match &f.insts()[i].op {
                Op::Unary(u) => lane_wise_unary(*u),
                Op::Binary(op) => lane_wise_binary(*op),
                Op::Broadcast(_) | Op::Sum => true,
                _ => false,
            });
        // The arguments from outside the run: scalars loaded once (and
        // splat for pairs), tensors read element by element.
        let mut outside: HashMap<usize, (Opnd, Opnd)> = HashMap::new();
        for &i in run {
            for a in &f.insts()[i].args {
                let a = a.index();
                if run.contains(&a) || outside.contains_key(&a) {
                    continue;
                }
                let o = self.operand(f.value(a).expect("an argument"));
                let pair = if f.insts()[a].shape.is_scalar() {
                    let x = self.read(o, Ix::c(0));
                    let wide = if simd {
                        self.b.ins().splat(types::F64X2, x)
                    } else {
                        x
                    };
                    (Opnd::Reg(x), Opnd::Reg(wide))
                } else {
                    (o, o)
                };
                outside.insert(a, pair);
            }
        }
        let mut dests: HashMap<usize, Opnd> = HashMap::new();
        let mut sums: HashMap<usize, Variable> = HashMap::new();
        for &i in run {
            if matches!(f.insts()[i].op, Op::Sum) {
                sums.insert(i, self.var(-0.0));
            } else if !internal[i] {
                dests.insert(i, self.dest(i));
            }
        }
        let element = |t: &mut Self, ix: Ix, ty: cl::Type| {
            let mut vals: HashMap<usize, cl::Value> = HashMap::new();
            for &i in run {
                let inst = &f.insts()[i];
                let mut xs = Vec::with_capacity(inst.args.len());
                for a in &inst.args {
                    let a = a.index();
                    let x = match vals.get(&a) {
                        Some(&x) => x,
                        None => {
                            let (narrow, wide) = outside[&a];
                            let o = if ty == types::F64 { narrow } else { wide };
                            let x = t.read_as(ty, o, ix);
                            vals.insert(a, x);
                            x
                        }
                    };
                    xs.push(x);
                }
                if let Some(&acc) = sums.get(&i) {
                    // Element by element, in order, as `Translator::sum` does.
                    let lanes = if ty == types::F64 { 1 } else { 2 };
                    for lane in 0..lanes {
                        let x = if ty == types::F64 {
                            xs[0]
                        } else {
                            t.b.ins().extractlane(xs[0], lane as u8)
                        };
                        let s = t.b.use_var(acc);
                        let s = t.b.ins().fadd(s, x);
                        t.b.def_var(acc, s);
                    }
                    continue;
                }
                let y = t.apply(&inst.op, &xs);
                vals.insert(i, y);
                if let Some(&dst) = dests.get(&i) {
                    t.write(dst, ix, y);
                }
            }
        };
        if simd {
            self.for_each_step(n - n % 2, 2, &mut |t, ix| element(t, ix, types::F64X2));
            if n % 2 == 1 {
                element(self, Ix::c(n - 1), types::F64);
            }
        } else {
            self.for_each(n, &mut |t, ix| element(t, ix, types::F64));
        }
        for &i in run {
            if let Some(&acc) = sums.get(&i) {
                let s = self.b.use_var(acc);
                self.set_loc(i, Loc::Reg(s));
            } else if let Some(&dst) = dests.get(&i) {
                self.set_loc(i, dst_loc(dst));
            }
        }
    }

    /// One element of an elementwise operation.
    fn apply(&mut self, op: &Op, xs: &[cl::Value]) -> cl::Value {
        match op {
            Op::Unary(u) => self.unary(*u, xs[0]),
            Op::Binary(b) => self.binary(*b, xs[0], xs[1]),
            Op::Select => self.select_nonzero(xs[0], xs[1], xs[2]),
            Op::Broadcast(_) => xs[0],
            _ => unreachable!("only elementwise operations are fused"),
        }
    }
}
