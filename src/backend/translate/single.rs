//! The function of one example (see [`crate::backend::abi::EntryFn`]): the
//! steps of the layout in order, then every output copied to the caller's
//! buffer.

use cranelift_codegen::ir::{self as cl, types, InstBuilder};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::Module;

use super::{Loc, Translator};
use crate::backend::abi::OUTPUTS;
use crate::backend::plan::Layout;
use crate::dtype::Dtype;
use crate::ir::Function;

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
    /// Copies every output into the caller's buffer.
    fn store_outputs(&mut self) {
        let f = self.f;
        for (k, o) in f.outputs.iter().enumerate() {
            let dst = self.opnd_of(Loc::Table(OUTPUTS, k, 0));
            let src = self.operand(o.value);
            let n = f.shape(o.value).size();
            self.copy(src, dst, 0, n);
        }
    }
}
