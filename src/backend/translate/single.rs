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
//! data objects.

use cranelift_codegen::ir::{self as cl, types, InstBuilder, Signature, UserFuncName};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::Module;

use super::{Ix, Loc, Opnd, Translator};
use crate::backend::abi::OUTPUTS;
use crate::backend::plan::Layout;
use crate::dtype::Dtype;
use crate::ir::{Function, Op, Value, ValueMap};

/// Builds the function of one example from `f`, in parts of `insts`
/// Cranelift instructions or more (one part if it has fewer), each handed
/// to `emit` as soon as it is built with whether more follow; the parts
/// have the signature `sig` ([`crate::backend::abi::entry_signature`]) and
/// declare in `module` the host functions and data objects they use.
/// Returns the length of the scratch buffer the parts need: the layout's,
/// and the slots of the scalars passed from one part to the next.
pub(in crate::backend) fn translate(
    module: &mut dyn Module,
    f: &Function,
    layout: &Layout,
    sig: &Signature,
    insts: usize,
    emit: &mut dyn FnMut(cl::Function, bool),
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
        let loaded = match handed.take() {
            Some(h) => t.take_over(h),
            None => Vec::new(),
        };
        t.written = t.outputs_in_place();
        while next < steps.len() {
            t.step(&steps[next])?;
            next += 1;
            if next < steps.len() && t.b.func.dfg.num_insts() >= insts {
                handed = t.hand_over(next, &last, &loaded, &mut scratch_len);
                if handed.is_some() {
                    break;
                }
            }
        }
        let more = handed.is_some();
        if !more {
            t.store_outputs();
        }
        let ok = t.b.ins().iconst(types::I64, 0);
        t.b.ins().return_(&[ok]);
        t.finish();
        emit(func, more);
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
fn last_reads(f: &Function, layout: &Layout) -> ValueMap<usize> {
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
/// the scalars among them in scratch slots (each with its type), and the
/// count of constants defined (which names data objects apart).
struct Handed {
    locs: ValueMap<Option<Loc>>,
    scalars: Vec<(Value, usize, cl::Type)>,
    body_consts: usize,
}

impl Translator<'_, '_> {
    /// Ends the current part after the steps before `next`, if every value
    /// a later step reads (`last`) lives where the next part can reach it:
    /// each scalar in its slot, the one it was `loaded` from at the part's
    /// start or a new one stored at the end of the scratch buffer
    /// (`scratch_len` grows); each output written in place found again
    /// through its pointer table. `None` (nothing emitted) if one lives
    /// elsewhere, an example's row of a batch.
    fn hand_over(
        &mut self,
        next: usize,
        last: &ValueMap<usize>,
        loaded: &[(cl::Value, usize)],
        scratch_len: &mut usize,
    ) -> Option<Handed> {
        let f = self.f;
        let mut locs = ValueMap::new(f, None);
        let mut stores = Vec::new();
        for v in f.values() {
            let Some(loc) = self.locs[v] else { continue };
            if last[v] < next {
                continue;
            }
            locs[v] = Some(match loc {
                Loc::Scratch(_) | Loc::Table(..) | Loc::Data(..) => loc,
                Loc::Reg(x) => {
                    stores.push((v, x));
                    loc
                }
                Loc::Row(ptr, off) => Loc::Table(OUTPUTS, self.output_at(ptr)?, off),
                Loc::Ptr(..) => return None,
            });
        }
        let mut scalars = Vec::with_capacity(stores.len());
        for (v, x) in stores {
            let ty = self.b.func.dfg.value_type(x);
            let slot = match loaded.iter().find(|&&(y, _)| y == x) {
                Some(&(_, slot)) => slot,
                None => {
                    let slot = *scratch_len;
                    *scratch_len += (ty.bytes() as usize).div_ceil(8);
                    let dst = self.opnd_of(Loc::Scratch(slot));
                    self.write(dst, Ix::c(0), x);
                    slot
                }
            };
            scalars.push((v, slot, ty));
        }
        Some(Handed {
            locs,
            scalars,
            body_consts: self.body_consts,
        })
    }

    /// The output written in place through `ptr`, its position among the
    /// function's outputs.
    fn output_at(&self, ptr: cl::Value) -> Option<usize> {
        let &(v, _) = (self.written.iter())
            .find(|(_, o)| matches!(*o, Opnd::Mem { ptr: p, .. } if p == ptr))?;
        self.f.outputs.iter().position(|o| o.value == v)
    }

    /// Starts a part where the one before left off: its scalars loaded
    /// from their slots at the entry. Returns each register loaded, with
    /// its slot.
    fn take_over(&mut self, h: Handed) -> Vec<(cl::Value, usize)> {
        self.locs = h.locs;
        self.body_consts = h.body_consts;
        let mut loaded = Vec::with_capacity(h.scalars.len());
        for (v, slot, ty) in h.scalars {
            let src = self.opnd_of(Loc::Scratch(slot));
            let x = self.read_as(ty, src, Ix::c(0));
            self.set_loc(v, Loc::Reg(x));
            loaded.push((x, slot));
        }
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
