//! IR -> CLIF for a batched function: the loop over the examples of a
//! mini-batch inside the generated code.
//!
//! The function (see [`super::abi::BatchEntryFn`]) runs the instructions that
//! do not depend on the example once (the layout's steps before `body`),
//! then, for every example in order, the others with the inputs' row of
//! that example, adding every loss, metric and gradient to an accumulator and
//! copying the per-example outputs to their rows. At the end each accumulator
//! is divided by `n`. An accumulator starts at -0 and adds the examples'
//! values in order, so a mean is `(((-0 + v0) + v1) + ...) / n`, the same bits
//! as that sum over the interpreter's per-example results.
//!
//! A scalar accumulator lives in a register; a tensor one in the caller's
//! output buffer. Since `-0 + x` is `x` and `x / 1` is `x`, bit for bit, the
//! buffer takes a copy of the first example's value instead of being set to
//! -0 and added to, and a batch of one example is not divided.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{self as cl, types, AbiParam, InstBuilder, Signature};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_module::Module;

use super::abi::{BatchOutput, BatchPlan, Reduce};
use super::translate::{Ix, Loc, Opnd, Translator, OUTPUTS};
use crate::ir::Function;

/// The signature of the generated batched function (see
/// [`super::abi::BatchEntryFn`]).
pub fn batch_signature(module: &dyn Module) -> Signature {
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    for _ in 0..5 {
        sig.params.push(AbiParam::new(ptr));
    }
    sig.returns.push(AbiParam::new(types::I64));
    sig
}

/// Builds the body of `func` (whose signature is [`batch_signature`]) from
/// `f` and its plan, declaring in `module` the host functions and data
/// objects it uses.
pub fn translate_batched(
    module: &mut dyn Module,
    f: &Function,
    plan: &BatchPlan,
    func: &mut cl::Function,
    fctx: &mut FunctionBuilderContext,
) -> Result<(), String> {
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let p = b.block_params(entry).to_vec();
    let n = p[4];
    let mut t = Translator::new(b, module, f, &plan.layout, &p);
    let layout = &plan.layout;
    for step in &layout.steps[..layout.body] {
        t.step(step)?;
    }
    let accs: Vec<Option<Acc>> = plan.outputs.iter().map(|&o| t.start(o)).collect();

    // for example in 0..n (the caller checks n >= 1: with n = 0 the loop is
    // skipped and the buffers are left as they are).
    let counter = t.b.declare_var(t.ptr);
    let zero = t.b.ins().iconst(t.ptr, 0);
    t.b.def_var(counter, zero);
    let header = t.b.create_block();
    let exit = t.b.create_block();
    t.b.ins().brif(n, header, &[], exit, &[]);
    t.b.switch_to_block(header);
    let example = t.b.use_var(counter);
    t.example = Some(example);
    for step in &layout.steps[layout.body..] {
        t.step(step)?;
    }
    for (k, (o, acc)) in plan.outputs.iter().zip(&accs).enumerate() {
        t.add(k, o, *acc, example);
    }
    t.example = None;
    let next = t.b.ins().iadd_imm_s(example, 1);
    t.b.def_var(counter, next);
    let more = t.b.ins().icmp(IntCC::UnsignedLessThan, next, n);
    t.b.ins().brif(more, header, &[], exit, &[]);

    t.b.switch_to_block(exit);
    let count = t.b.ins().fcvt_from_uint(types::F64, n);
    // Dividing by 1 changes nothing: a batch of one skips the buffers.
    let divide = t.b.create_block();
    let done = t.b.create_block();
    let several = t.b.ins().icmp_imm_u(IntCC::NotEqual, n, 1);
    t.b.ins().brif(several, divide, &[], done, &[]);
    t.b.switch_to_block(divide);
    for (k, acc) in accs.iter().enumerate() {
        if let Some(Acc::Buffer) = acc {
            t.divide(k, plan.outputs[k], Acc::Buffer, count);
        }
    }
    t.b.ins().jump(done, &[]);
    t.b.switch_to_block(done);
    for (k, acc) in accs.iter().enumerate() {
        if let Some(Acc::Reg(v)) = acc {
            t.divide(k, plan.outputs[k], Acc::Reg(*v), count);
        }
    }
    let ok = t.b.ins().iconst(types::I64, 0);
    t.b.ins().return_(&[ok]);
    t.finish();
    Ok(())
}

/// The accumulator of a mean.
#[derive(Copy, Clone, Debug)]
enum Acc {
    /// A scalar, in a variable.
    Reg(Variable),
    /// A tensor, in the output buffer.
    Buffer,
}

impl Translator<'_, '_> {
    /// The size of the value of output `o`.
    fn size_of(&self, o: BatchOutput) -> usize {
        self.f.shape(self.f.outputs[o.index].value).size()
    }

    /// The accumulator of output `o`, if it is a mean: a register set to -0,
    /// or the output buffer, which the first example sets.
    fn start(&mut self, o: BatchOutput) -> Option<Acc> {
        match o.reduce {
            Reduce::PerExample => None,
            Reduce::Mean if self.f.shape(self.f.outputs[o.index].value).is_scalar() => {
                Some(Acc::Reg(self.var(-0.0)))
            }
            Reduce::Mean => Some(Acc::Buffer),
        }
    }

    /// Adds the current example's value of the `k`-th output to its
    /// accumulator, or copies it to its row.
    fn add(&mut self, k: usize, o: &BatchOutput, acc: Option<Acc>, example: cl::Value) {
        let size = self.size_of(*o);
        let src = self.operand(self.f.outputs[o.index].value);
        match acc {
            Some(Acc::Reg(v)) => {
                let x = self.read(src, Ix::c(0));
                let a = self.b.use_var(v);
                let s = self.b.ins().fadd(a, x);
                self.b.def_var(v, s);
            }
            Some(Acc::Buffer) => {
                let dst = self.opnd_of(Loc::Table(OUTPUTS, k, 0));
                let first = self.b.create_block();
                let later = self.b.create_block();
                let next = self.b.create_block();
                self.b.ins().brif(example, later, &[], first, &[]);
                self.b.switch_to_block(first);
                self.copy(src, dst, 0, size);
                self.b.ins().jump(next, &[]);
                self.b.switch_to_block(later);
                self.pairwise(dst, src, size, &mut |t, a, x| t.b.ins().fadd(a, x));
                self.b.ins().jump(next, &[]);
                self.b.switch_to_block(next);
            }
            None => {
                let base = self.table_entry(OUTPUTS, k);
                let bytes = self.b.ins().imul_imm_s(example, (size * 8) as i64);
                let row = self.b.ins().iadd(base, bytes);
                let dst = Opnd::Mem {
                    ptr: row,
                    off: 0,
                    readonly: false,
                };
                self.copy(src, dst, 0, size);
            }
        }
    }

    /// Divides the `k`-th accumulator by the number of examples and leaves
    /// the mean in the output buffer.
    fn divide(&mut self, k: usize, o: BatchOutput, acc: Acc, count: cl::Value) {
        let dst = self.opnd_of(Loc::Table(OUTPUTS, k, 0));
        match acc {
            Acc::Reg(v) => {
                let a = self.b.use_var(v);
                let mean = self.b.ins().fdiv(a, count);
                self.write(dst, Ix::c(0), mean);
            }
            Acc::Buffer => {
                let count = Opnd::Reg(count);
                let size = self.size_of(o);
                self.pairwise(dst, count, size, &mut |t, a, c| t.b.ins().fdiv(a, c));
            }
        }
    }

    /// `dst[j] = op(dst[j], src[j])` for `j` in `0..n`, two at a time (a
    /// register `src` stands for every element).
    fn pairwise(
        &mut self,
        dst: Opnd,
        src: Opnd,
        n: usize,
        op: &mut dyn FnMut(&mut Self, cl::Value, cl::Value) -> cl::Value,
    ) {
        let wide = match src {
            Opnd::Reg(x) if n >= 2 => Opnd::Reg(self.b.ins().splat(types::F64X2, x)),
            other => other,
        };
        self.for_each_step(n - n % 2, 2, &mut |t, ix| {
            let a = t.read_as(types::F64X2, dst, ix);
            let x = t.read_as(types::F64X2, wide, ix);
            let y = op(t, a, x);
            t.write(dst, ix, y);
        });
        if n % 2 == 1 {
            let ix = Ix::c(n - 1);
            let a = self.read(dst, ix);
            let x = self.read(src, ix);
            let y = op(self, a, x);
            self.write(dst, ix, y);
        }
    }
}
