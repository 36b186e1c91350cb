//! The function of one example (see [`crate::backend::abi::EntryFn`]): the
//! steps of the layout in order, each output computed straight into the
//! caller's buffer where its step writes it, the others copied there at the
//! end.
//!
//! It may be built in parts, each a function of the entry's signature that
//! runs some of the steps, the parts called one after the other (so that
//! Cranelift compiles them at once on several threads, see the backend's
//! `workers`). A part ends after the step at which it has
//! reached a number of Cranelift instructions; the scalars a later part
//! reads, which live in registers, go through slots of the scratch buffer
//! past the layout's, stored at the end of the part that made them and
//! loaded at the start of the next. Everything else lives in memory every
//! part reaches: the scratch buffer, the caller's buffers, the module's
//! data objects. A large loop's body is cut so too, into functions the
//! loop calls each step (`super::body_parts`), which hand on their values
//! the same way.

use std::collections::HashMap;

use cranelift_codegen::ir::{self as cl, types, InstBuilder, Signature, UserFuncName};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::Module;

use super::{Ix, Loc, Opnd, Translator};
use crate::backend::abi::OUTPUTS;
use crate::backend::plan::Layout;
use crate::backend::workers::Built;
use crate::dtype::Dtype;
use crate::ir::{Function, Op, Value, ValueMap};

/// Builds the function of one example from `f`, in parts of `insts`
/// Cranelift instructions or more (one part if it has fewer), each handed
/// to `emit` as soon as it is built with whether more follow, after the
/// functions it calls (a large loop's body in pieces of `insts`, see
/// `super::body_parts`); the parts have the signature `sig`
/// ([`crate::backend::abi::entry_signature`]) and declare in `module` the
/// host functions and data objects they use. Returns the length of the
/// scratch buffer the parts need: the layout's, and the slots of the
/// scalars passed from one part, or piece, to the next.
pub(in crate::backend) fn translate(
    module: &mut dyn Module,
    f: &Function,
    layout: &Layout,
    sig: &Signature,
    insts: usize,
    emit: &mut dyn FnMut(Built),
) -> Result<usize, String> {
    let last = last_reads(f, layout);
    let steps = &layout.steps;
    let mut fctx = FunctionBuilderContext::new();
    let mut scratch_len = layout.scratch_len;
    let mut handed: Option<Handed> = None;
    let mut next = 0;
    loop {
        let mut func = cl::Function::with_name_signature(UserFuncName::default(), sig.clone());
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let p = super::enter(&mut b);
        let mut t = Translator::new(b, &mut *module, f, layout, &p, Dtype::F64);
        t.cut = insts;
        t.scratch_len = scratch_len;
        let loaded = match handed.take() {
            Some(h) => t.take_over(h),
            None => Vec::new(),
        };
        t.written = t.outputs_in_place();
        while next < steps.len() {
            t.step(&steps[next])?;
            for (id, func) in t.callees_built.drain(..) {
                emit(Built::Callee(id, func));
            }
            next += 1;
            if next < steps.len() && t.b.func.dfg.num_insts() >= insts {
                handed = t.hand_over(next, &last, &loaded, Rows::AsOutputs);
                if handed.is_some() {
                    break;
                }
            }
        }
        scratch_len = t.scratch_len;
        let more = handed.is_some();
        if !more {
            t.store_outputs();
        }
        let ok = t.b.ins().iconst(types::I64, 0);
        t.b.ins().return_(&[ok]);
        t.finish();
        emit(Built::Part(func, more));
        if !more {
            return Ok(scratch_len);
        }
    }
}

/// For each value of `f`, the last step that may read it (`usize::MAX` for
/// an output, which the last part copies): a step reads its instructions'
/// arguments and their arguments, since some steps read through a value
/// they do not make themselves (a loop makes a carried value's start from
/// its argument; a run's lag reads the vector its argument slices).
pub(super) fn last_reads(f: &Function, layout: &Layout) -> ValueMap<usize> {
    let mut last = ValueMap::new(f, 0);
    for (k, step) in layout.steps.iter().enumerate() {
        for &v in step {
            for &a in &f.inst(v).args {
                last[a] = last[a].max(k);
                for &b in &f.inst(a).args {
                    last[b] = last[b].max(k);
                }
            }
        }
    }
    for o in &f.outputs {
        last[o.value] = usize::MAX;
    }
    last
}

/// What a part hands to the next: where the values later steps read live,
/// naming registers of the part before; those registers, each in a slot of
/// the scratch buffer with its type; and the count of constants defined
/// (which names data objects apart).
pub(super) struct Handed {
    pub locs: ValueMap<Option<Loc>>,
    pub regs: Vec<(cl::Value, usize, cl::Type)>,
    pub body_consts: usize,
}

/// How a part hands on a value in memory at an address in a register
/// (`Loc::Row`, `Loc::Ptr`).
#[derive(Copy, Clone, PartialEq, Eq)]
pub(super) enum Rows {
    /// As the output written in place there, found again through its
    /// pointer table (the function of one example's parts); a value at
    /// another address cannot be handed on.
    AsOutputs,
    /// The address itself, through a slot (a loop's body in pieces: its
    /// rows and views chosen when the step runs).
    ThroughSlots,
}

impl Translator<'_, '_> {
    /// Ends the current part after the steps before `next`, if every value
    /// a later step reads (`last`) lives where the next part can reach it:
    /// each register it lives in, or at, in its slot, the one it was
    /// `loaded` from at the part's start or a new one stored at the end of
    /// the scratch buffer (`scratch_len` grows); each row as `rows` says.
    /// `None` (nothing emitted) if a value cannot be handed on (an
    /// example's row of a batch, or another row with `Rows::AsOutputs`).
    pub(super) fn hand_over(
        &mut self,
        next: usize,
        last: &ValueMap<usize>,
        loaded: &[(cl::Value, usize)],
        rows: Rows,
    ) -> Option<Handed> {
        let f = self.f;
        let mut locs = ValueMap::new(f, None);
        let mut regs: Vec<cl::Value> = Vec::new();
        let mut keep = |x: cl::Value| {
            if !regs.contains(&x) {
                regs.push(x);
            }
        };
        for v in f.values() {
            let Some(loc) = self.locs[v] else { continue };
            if last[v] < next {
                continue;
            }
            locs[v] = Some(match (loc, rows) {
                (Loc::Scratch(_) | Loc::Table(..) | Loc::Data(..), _) => loc,
                (Loc::Reg(x), _) => {
                    keep(x);
                    loc
                }
                (Loc::Row(ptr, off), Rows::AsOutputs) => {
                    Loc::Table(OUTPUTS, self.output_at(ptr)?, off)
                }
                (Loc::Ptr(..), Rows::AsOutputs) => return None,
                (Loc::Row(ptr, _) | Loc::Ptr(ptr, _), Rows::ThroughSlots) => {
                    keep(ptr);
                    loc
                }
            });
        }
        let regs = regs
            .into_iter()
            .map(|x| (x, self.slot_of(x, loaded), self.b.func.dfg.value_type(x)))
            .collect();
        Some(Handed {
            locs,
            regs,
            body_consts: self.body_consts,
        })
    }

    /// The slot of register `x` for the next part: the one it was `loaded`
    /// from, or a new one past the scratch buffer's end, stored now.
    pub(super) fn slot_of(&mut self, x: cl::Value, loaded: &[(cl::Value, usize)]) -> usize {
        if let Some(&(_, slot)) = loaded.iter().find(|&&(y, _)| y == x) {
            return slot;
        }
        let ty = self.b.func.dfg.value_type(x);
        let slot = self.scratch_len;
        self.scratch_len += (ty.bytes() as usize).div_ceil(8);
        let dst = self.opnd_of(Loc::Scratch(slot));
        self.write(dst, Ix::c(0), x);
        slot
    }

    /// The output written in place through `ptr`, its position among the
    /// function's outputs.
    fn output_at(&self, ptr: cl::Value) -> Option<usize> {
        let &(v, _) = (self.written.iter())
            .find(|(_, o)| matches!(*o, Opnd::Mem { ptr: p, .. } if p == ptr))?;
        self.f.outputs.iter().position(|o| o.value == v)
    }

    /// Starts a part where the one before left off: the registers it
    /// handed on loaded from their slots at the entry. Returns each
    /// register loaded, with its slot.
    pub(super) fn take_over(&mut self, h: Handed) -> Vec<(cl::Value, usize)> {
        let mut here = HashMap::with_capacity(h.regs.len());
        let mut loaded = Vec::with_capacity(h.regs.len());
        for (x, slot, ty) in h.regs {
            let src = self.opnd_of(Loc::Scratch(slot));
            let y = self.read_as(ty, src, Ix::c(0));
            here.insert(x, y);
            loaded.push((y, slot));
        }
        self.locs = h.locs;
        for v in self.f.values() {
            self.locs[v] = self.locs[v].map(|loc| match loc {
                Loc::Reg(x) => Loc::Reg(here[&x]),
                Loc::Row(p, off) => Loc::Row(here[&p], off),
                Loc::Ptr(p, off) => Loc::Ptr(here[&p], off),
                _ => loc,
            });
        }
        self.body_consts = h.body_consts;
        loaded
    }

    /// The outputs a step writes (each a value of its own, with a scratch
    /// slot, not a loop's, whose carried values are updated in their
    /// slots) that are no other output and are not computed yet: each with
    /// the caller's buffer of its output, where its step writes it instead
    /// of its slot (`lse`'s gradient, 10 MB at n = 1,280,000, was written
    /// and then copied).
    fn outputs_in_place(&mut self) -> Vec<(Value, Opnd)> {
        let f = self.f;
        let mut written = Vec::new();
        for (k, o) in f.outputs.iter().enumerate() {
            let v = o.value;
            let once = f.outputs.iter().filter(|p| p.value == v).count() == 1;
            let own = self.layout.slots[v].is_some() && !matches!(f.inst(v).op, Op::Loop(_));
            if once && own && self.locs[v].is_none() {
                let dst = self.opnd_of(Loc::Table(OUTPUTS, k, 0));
                written.push((v, dst));
            }
        }
        written
    }

    /// Copies every output not computed in place into the caller's buffer.
    fn store_outputs(&mut self) {
        let f = self.f;
        for (k, o) in f.outputs.iter().enumerate() {
            if self.written.iter().any(|&(w, _)| w == o.value) {
                continue;
            }
            if let Some(Loc::Table(OUTPUTS, j, 0)) = self.locs[o.value] {
                if j == k {
                    // Written in place by an earlier part.
                    continue;
                }
            }
            let dst = self.opnd_of(Loc::Table(OUTPUTS, k, 0));
            let src = self.operand(o.value);
            let n = f.shape(o.value).size();
            self.copy(src, dst, 0, n);
        }
    }
}
