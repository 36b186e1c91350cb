//! A loop's body too large for one part of the function of one example
//! (`super::single`) in pieces: functions of their own, each a range of
//! the body's steps, that the loop calls one after the other at each
//! step. Cranelift then compiles the pieces on several threads (the
//! backend's `workers`) beside the parts, none much larger than a part,
//! instead of the whole body in the part that holds the loop (`ht`'s
//! Jacobian: a body of 3,200 instructions, half the function).
//!
//! A piece has the entry's four pointers and the step
//! ([`crate::backend::abi::piece_signature`]) and returns a status: a
//! failure in it returns the loop's, which the loop returns at once.
//! Values pass from one piece to the next as from one part to the next:
//! in memory every piece reaches, or, for a register (a scalar, or the
//! address of a row or view chosen when the step runs), through a slot of
//! the scratch buffer past the layout's. The values the body captures
//! from the loop's function are handed to the first piece so, stored once
//! before the loop; the first piece places the carried values and the
//! step, each piece computes the stacked values' rows, and the last puts
//! the step's results in place. The arithmetic is the inline body's, so
//! the bits are the same.

use cranelift_codegen::ir::{self as cl, types, InstBuilder, UserFuncName};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::FuncId;

use super::body::{placed, Frame};
use super::single::{last_reads, Handed, Rows};
use super::{Ix, Loc, Opnd, Translator};
use crate::backend::abi::piece_signature;
use crate::dtype::Dtype;
use crate::ir::{Loop, Op, Value, ValueMap};

/// The Cranelift instructions an instruction of a loop's body makes, at
/// least about: a body of a part's instructions over this many IR
/// instructions or more is cut (`ht`'s columns make 14 each, `particle`'s
/// 10 to 14, `saddle`'s 8 to 9; `det`'s and `lstm`'s, with their long
/// unrolled rows, 20 to 70, but `ode`'s, as many IR instructions, 4 to 5:
/// a bound that cut the first would cut the second, whose pieces ran
/// slower, a call and a hand-over each of its many short steps).
const INSTS_PER_INST: usize = 6;

impl<'a> Translator<'a, '_> {
    /// Whether the body of loop `l` goes in pieces: this is a part of the
    /// function of one example that may be cut ([`Translator::cut`]), the
    /// loop is in no other's body and runs at least once, its value `dst`
    /// is in the scratch buffer, none of its `captured` values is an
    /// example's row of a batch, and its body is large.
    pub(super) fn cuts_body(&self, l: &Loop, dst: Opnd, captured: &[Loc]) -> bool {
        self.cut != usize::MAX
            && self.example.is_none()
            && self.fault_at.is_none()
            && l.trips > 0
            && matches!(self.dst_loc(dst), Loc::Scratch(_))
            && captured.iter().all(|c| !matches!(c, Loc::Ptr(..)))
            && l.body.len().saturating_mul(INSTS_PER_INST) >= self.cut
    }

    /// Loop `v` of `trips` steps of `frame`'s body, its value at `dst`
    /// (its carried values started), reading `captured`, with the updates
    /// in place `in_place`: the body built in pieces, each called at each
    /// step.
    pub(super) fn body_in_pieces(
        &mut self,
        v: Value,
        trips: usize,
        frame: &Frame<'a>,
        dst: Opnd,
        captured: &[Loc],
        in_place: Vec<(Value, usize)>,
    ) -> Result<(), String> {
        let Loc::Scratch(at) = self.dst_loc(dst) else {
            unreachable!("a body in pieces has its loop's value in the scratch buffer")
        };
        let handed = self.capture(frame, captured);
        let ids = self.pieces(v, frame, at, handed, &in_place)?;
        let pieces: Vec<cl::FuncRef> = ids.iter().map(|&id| self.import_function(id)).collect();
        self.for_each_rolled(trips, &mut |t, step| {
            let step = match step.dynamic {
                Some(i) => i,
                None => t.b.ins().iconst(t.ptr, step.konst as i64),
            };
            let [params, inputs, outputs] = t.tables;
            for &piece in &pieces {
                let call =
                    t.b.ins()
                        .call(piece, &[params, inputs, outputs, t.slots, step]);
                let status = t.b.inst_results(call)[0];
                let failed = t.b.create_block();
                let ok = t.b.create_block();
                t.b.ins().brif(status, failed, &[], ok, &[]);
                t.b.switch_to_block(failed);
                t.b.ins().return_(&[status]);
                t.b.switch_to_block(ok);
            }
        });
        Ok(())
    }

    /// The values `frame`'s body captures (`captured`, where they are in
    /// the function being built), as handed to its first piece: each
    /// register through a slot, stored here.
    fn capture(&mut self, frame: &Frame, captured: &[Loc]) -> Handed {
        let k = frame.carries;
        let mut locs = ValueMap::new(frame.body, None);
        let mut regs: Vec<(cl::Value, usize, cl::Type)> = Vec::new();
        for (p, inst) in frame.body.iter() {
            let Op::Param(i) = inst.op else { continue };
            if i < k {
                continue;
            }
            let loc = captured[i - k];
            if let Loc::Reg(x) | Loc::Row(x, _) | Loc::Ptr(x, _) = loc {
                if !regs.iter().any(|&(y, _, _)| y == x) {
                    let slot = self.slot_of(x, &[]);
                    regs.push((x, slot, self.b.func.dfg.value_type(x)));
                }
            }
            locs[p] = Some(loc);
        }
        Handed {
            locs,
            regs,
            body_consts: self.body_consts,
        }
    }

    /// Builds the pieces of loop `v`'s body (`frame`; its value at scratch
    /// offset `at`), each ending after the step at which it reaches
    /// [`Translator::cut`] instructions, the first given `captured`; each
    /// is declared in the module and left in `callees_built`. Returns
    /// their ids, in order.
    fn pieces(
        &mut self,
        v: Value,
        frame: &Frame<'a>,
        at: usize,
        captured: Handed,
        in_place: &[(Value, usize)],
    ) -> Result<Vec<FuncId>, String> {
        let body = frame.body;
        let layout = &frame.plan.layout;
        let steps = &layout.steps;
        let last = last_reads(body, layout);
        let sig = piece_signature(&*self.module);
        let mut fctx = FunctionBuilderContext::new();
        let mut handed = Some(captured);
        let mut first = true;
        let mut next = 0;
        let mut ids = Vec::new();
        while let Some(h) = handed.take() {
            let id = self
                .module
                .declare_anonymous_function(&sig)
                .map_err(|e| format!("declaring a piece of a loop's body: {e}"))?;
            let name = UserFuncName::user(0, id.as_u32());
            let mut func = cl::Function::with_name_signature(name, sig.clone());
            let mut b = FunctionBuilder::new(&mut func, &mut fctx);
            let p = super::enter(&mut b);
            // The function of one example computes in f64s.
            let mut t = Translator::new(b, &mut *self.module, body, layout, &p[..4], Dtype::F64);
            t.fault_at = Some(v);
            t.in_place = in_place.to_vec();
            t.scratch_len = self.scratch_len;
            let loaded = t.take_over(h);
            let step = Ix {
                dynamic: Some(p[4]),
                konst: 0,
            };
            let dst = t.opnd_of(Loc::Scratch(at));
            if first {
                t.place_params(frame, dst, None, step);
            }
            let rows = t.stack_rows(frame, dst, step);
            while next < steps.len() {
                let s = &steps[next];
                next += 1;
                if placed(body, s) {
                    continue;
                }
                t.step(s)?;
                if next < steps.len() && t.b.func.dfg.num_insts() >= self.cut {
                    handed = t.hand_over(next, &last, &loaded, Rows::ThroughSlots);
                    break;
                }
            }
            if handed.is_none() {
                t.end_step(frame, dst, &rows);
            }
            let ok = t.b.ins().iconst(types::I64, 0);
            t.b.ins().return_(&[ok]);
            self.scratch_len = t.scratch_len;
            self.body_consts = t.body_consts;
            t.finish();
            self.callees_built.push((id, func));
            ids.push(id);
            first = false;
        }
        Ok(ids)
    }
}
