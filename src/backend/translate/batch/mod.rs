//! IR -> CLIF for a batched function: the loop over the examples of a
//! mini-batch inside the generated code. This module is the driver; `means`
//! holds the accumulators and the weight gradients, `chunks` the chunk
//! products, the kept rows and the transposes.
//!
//! The function (see [`crate::backend::abi::BatchEntryFn`]) runs the instructions that
//! do not depend on the example once (the layout's steps before `body`),
//! then, for every example in order, the others with the inputs' row of
//! that example, adding every loss, metric and gradient to an accumulator and
//! copying the per-example outputs to their rows. The examples go in chunks
//! of [`CHUNK`], and the per-example instructions in stages (see
//! [`crate::backend::plan::BatchPlan`]): each stage runs for every example of the
//! chunk, in order, before the next one, the values a later stage reads kept
//! per example; the last stage adds to the accumulators. At the end each
//! accumulator is divided by `n`. An accumulator starts at -0 and adds the examples'
//! values in order, so a mean is `(((-0 + v0) + v1) + ...) / n`, the same bits
//! as that sum over the interpreter's per-example results.
//!
//! A scalar accumulator lives in a register; a tensor one in the caller's
//! output buffer. Since `-0 + x` is `x` and `x / 1` is `x`, bit for bit, the
//! buffer takes a copy of the first example's value instead of being set to
//! -0 and added to, and a batch of one example is not divided.
//!
//! Three products with a weight matrix fixed over the batch are done
//! differently, with the same arithmetic:
//!
//! - `W @ x` (or `x @ W`) where `x` is an input, or a value of an earlier
//!   stage, is computed for a chunk of examples at once, before its stage
//!   runs: the chunk's rows of `X W^T` (or `X W`), from the inputs' rows or
//!   the kept rows of `x`, by one call of the kernel
//!   ([`crate::backend::kernel`]), each element the same dot product in the
//!   same order as the example's own; the instruction copies its row (see
//!   [`crate::backend::plan::ChunkProduct`]).
//! - Another `W @ x` of an example reads `W`'s transpose, made once per call
//!   before the loop, so that pairs of rows of `W` are f64x2 loads (see
//!   `Translator::matmul`).
//! - A mean of `outer(g, x)` that nothing else reads (the gradient of a
//!   weight matrix) is one product `G^T X` over the batch: each example only
//!   copies `g` and `x` to its row of `G` and `X`, and after the last example
//!   (or every [`CHUNK`] examples) each element of the output buffer adds
//!   its products over the rows in example order, by one call of the kernel
//!   that starts from -0 on the first chunk and resumes the sums in the
//!   buffer on the others (see [`crate::backend::plan::OuterMean`]).

mod chunks;
mod means;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{self as cl, types, InstBuilder};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::Module;

use self::means::Acc;
use crate::backend::plan::{BatchPlan, CHUNK};
use crate::backend::translate::Translator;
use crate::dtype::Dtype;
use crate::ir::{Function, Op};

/// Builds the body of `func` (whose signature is
/// [`crate::backend::abi::batch_signature`]) from `f` and its plan,
/// computing in `dtype`, declaring in `module` the host functions and data
/// objects it uses; with `sums`, the accumulators are left undivided.
pub(in crate::backend) fn translate_batched(
    module: &mut dyn Module,
    f: &Function,
    plan: &BatchPlan,
    dtype: Dtype,
    sums: bool,
    func: &mut cl::Function,
    fctx: &mut FunctionBuilderContext,
) -> Result<(), String> {
    let mut b = FunctionBuilder::new(func, fctx);
    let p = super::enter(&mut b);
    let n = p[4];
    let mut t = Translator::new(b, module, f, &plan.layout, &p, dtype);
    let accs = t.before_the_examples(plan)?;
    t.chunks(plan, &accs, n)?;
    if sums {
        t.sums(&accs);
    } else {
        t.means(plan, &accs, n);
    }
    let ok = t.b.ins().iconst(types::I64, 0);
    t.b.ins().return_(&[ok]);
    t.finish();
    Ok(())
}

impl Translator<'_, '_> {
    /// What runs once per call before the examples: the steps that do not
    /// depend on the example, the transposes, and the accumulators of the
    /// means.
    fn before_the_examples(&mut self, plan: &BatchPlan) -> Result<Vec<Option<Acc>>, String> {
        let layout = &plan.layout;
        for step in &layout.steps[..layout.body] {
            self.step(step)?;
        }
        for &(w, off) in &layout.transposed {
            self.transpose_into(w, off);
        }
        Ok(plan.outputs.iter().map(|&o| self.start(o)).collect())
    }

    /// For each chunk of at most [`CHUNK`] examples from `first` on (the
    /// caller checks n >= 1: with n = 0 the loop is skipped and the buffers
    /// are left as they are): every stage for the chunk's examples in order,
    /// then the chunk's `G^T X`.
    fn chunks(
        &mut self,
        plan: &BatchPlan,
        accs: &[Option<Acc>],
        n: cl::Value,
    ) -> Result<(), String> {
        let counter = self.b.declare_var(self.ptr);
        let zero = self.b.ins().iconst(self.ptr, 0);
        self.b.def_var(counter, zero);
        let header = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().brif(n, header, &[], exit, &[]);
        self.b.switch_to_block(header);
        let first = self.b.use_var(counter);
        let left = self.b.ins().isub(n, first);
        let chunk = self.b.ins().iconst(self.ptr, CHUNK as i64);
        let rows = self.b.ins().umin(left, chunk);
        let mut failed = None;
        for s in 0..plan.layout.stages.len() {
            for o in plan.products.iter().filter(|o| o.stage == s) {
                self.chunk_product(o, first, rows, plan);
            }
            self.for_count(rows, &mut |t, r| {
                let r = r.dynamic.expect("a loop counter");
                let example = t.b.ins().iadd(first, r);
                t.example = Some(example);
                t.example_stage(plan, s, r, accs, &mut failed);
                t.example = None;
            });
        }
        if let Some(e) = failed {
            return Err(e);
        }
        for o in &plan.outer_means {
            self.outer_mean(o, first, rows);
        }
        let next = self.b.ins().iadd_imm_s(first, CHUNK as i64);
        self.b.def_var(counter, next);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, next, n);
        self.b.ins().brif(more, header, &[], exit, &[]);
        self.b.switch_to_block(exit);
        Ok(())
    }

    /// Stage `s` for the current example, row `r` of its chunk: the inputs'
    /// rows of the example and what earlier stages kept, then the stage's
    /// steps, keeping what a later stage reads; after the last stage, every
    /// output added to its accumulator (or copied to its row). The first
    /// error of a step is left in `failed`.
    fn example_stage(
        &mut self,
        plan: &BatchPlan,
        s: usize,
        r: cl::Value,
        accs: &[Option<Acc>],
        failed: &mut Option<String>,
    ) {
        let layout = &plan.layout;
        let count = layout.stages.len();
        let from = layout.stages[s];
        let to = layout
            .stages
            .get(s + 1)
            .copied()
            .unwrap_or(layout.steps.len());
        // The inputs' rows of this example (an input is named: it is read
        // again, not kept), and what earlier stages kept.
        for step in &layout.steps[layout.body..] {
            for &v in step {
                if matches!(self.f.inst(v).op, Op::Input(_)) && s > 0 {
                    if let Err(e) = self.step(&[v]) {
                        failed.get_or_insert(e);
                    }
                }
            }
        }
        for &(v, off) in &plan.kept {
            if plan.stage[v] < s {
                self.kept_row(v, off, r);
            }
        }
        for step in &layout.steps[from..to] {
            let one = match step[..] {
                [v] => Some(v),
                _ => None,
            };
            if let Some(o) = one.and_then(|v| plan.outer_mean_of(v)) {
                self.keep_rows(o, r);
            } else if let Some(o) = one.and_then(|v| plan.product_of(v)) {
                self.product_row(o, r);
            } else if let Err(e) = self.step(step) {
                failed.get_or_insert(e);
            }
            for &v in step {
                if let Some(off) = plan.kept_of(v) {
                    self.keep_row(v, off, r);
                }
            }
        }
        if s + 1 == count {
            let example = self.example.expect("inside the loop over the examples");
            for (k, (o, acc)) in plan.outputs.iter().zip(accs).enumerate() {
                if !plan.outer_means.iter().any(|om| om.output == k) {
                    self.add(k, o, *acc, example);
                }
            }
        }
    }

    /// After the examples: every accumulator divided by `n` into its output
    /// buffer (a batch of one skips the buffers: dividing by 1 changes
    /// nothing).
    fn means(&mut self, plan: &BatchPlan, accs: &[Option<Acc>], n: cl::Value) {
        let count = self.b.ins().fcvt_from_uint(self.st, n);
        let divide = self.b.create_block();
        let done = self.b.create_block();
        let several = self.b.ins().icmp_imm_u(IntCC::NotEqual, n, 1);
        self.b.ins().brif(several, divide, &[], done, &[]);
        self.b.switch_to_block(divide);
        for (k, acc) in accs.iter().enumerate() {
            if let Some(Acc::Buffer) = acc {
                self.divide(k, plan.outputs[k], Acc::Buffer, count);
            }
        }
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
        for (k, acc) in accs.iter().enumerate() {
            if let Some(Acc::Reg(v)) = acc {
                self.divide(k, plan.outputs[k], Acc::Reg(*v), count);
            }
        }
    }

    /// After the examples, without dividing: every scalar accumulator into
    /// its output buffer (a tensor one is already there).
    fn sums(&mut self, accs: &[Option<Acc>]) {
        for (k, acc) in accs.iter().enumerate() {
            if let Some(Acc::Reg(v)) = acc {
                self.store_sum(k, *v);
            }
        }
    }
}
