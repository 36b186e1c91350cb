//! The function of one example (see [`crate::backend::abi::EntryFn`]): the
//! steps of the layout in order, each output computed straight into the
//! caller's buffer where its step writes it, the others copied there at the
//! end.

use cranelift_codegen::ir::{self as cl, types, InstBuilder};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::Module;

use super::{Loc, Opnd, Translator};
use crate::backend::abi::OUTPUTS;
use crate::backend::plan::Layout;
use crate::dtype::Dtype;
use crate::ir::{Function, Op, Value};

/// Builds the body of `func` (whose signature is
/// [`crate::backend::abi::entry_signature`]) from `f`, declaring in
/// `module` the host functions and data objects it uses.
pub(in crate::backend) fn translate(
    module: &mut dyn Module,
    f: &Function,
    layout: &Layout,
    func: &mut cl::Function,
    fctx: &mut FunctionBuilderContext,
) -> Result<(), String> {
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let p = b.block_params(entry).to_vec();
    let mut t = Translator::new(b, module, f, layout, &p, Dtype::F64);
    t.written = t.outputs_in_place();
    for step in &layout.steps {
        t.step(step)?;
    }
    t.store_outputs();
    let ok = t.b.ins().iconst(types::I64, 0);
    t.b.ins().return_(&[ok]);
    t.finish();
    Ok(())
}

impl Translator<'_, '_> {
    /// The outputs a step writes (each a value of its own, with a scratch
    /// slot, not a loop's, whose carried values are updated in their
    /// slots) that are no other output: each with the caller's buffer of
    /// its output, where its step writes it instead of its slot (`lse`'s
    /// gradient, 10 MB at n = 1,280,000, was written and then copied).
    fn outputs_in_place(&mut self) -> Vec<(Value, Opnd)> {
        let f = self.f;
        let mut written = Vec::new();
        for (k, o) in f.outputs.iter().enumerate() {
            let v = o.value;
            let once = f.outputs.iter().filter(|p| p.value == v).count() == 1;
            let own = self.layout.slots[v].is_some() && !matches!(f.inst(v).op, Op::Loop(_));
            if once && own {
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
            let dst = self.opnd_of(Loc::Table(OUTPUTS, k, 0));
            let src = self.operand(o.value);
            let n = f.shape(o.value).size();
            self.copy(src, dst, 0, n);
        }
    }
}
