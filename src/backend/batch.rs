//! [`BatchedFunction`]: a function compiled with the loop over the examples
//! of a mini-batch inside the machine code, one call per batch. It returns
//! the mean over the batch of every loss, metric and gradient, and, when
//! compiled for prediction, every `output` value of every example.
//!
//! ```
//! let src = "param w: [2] = [1, 2]\ninput x: [2]\nloss dot(w, x)\n";
//! let compiled = gradc::compile(src).unwrap();
//! let jit = gradc::backend::compile_batched(&compiled.ir).unwrap();
//! // Two examples, x = (1, 0) and x = (0, 1): losses 1 and 2.
//! let xs = [1.0, 0.0, 0.0, 1.0];
//! let out = jit.run(&compiled.initial_params(0), &[&xs], 2).unwrap();
//! assert_eq!(out[0].item(), 1.5);
//! ```

use cranelift_frontend::FunctionBuilderContext;
use cranelift_module::Module;

use super::abi::{self, check_lengths, BatchEntryFn, Hidden, Scratch};
use super::jit::{check_sizes, define_entry, Code, CompileError};
use super::plan::batch::batch_plan;
use super::plan::{BatchOutput, BatchPlan, Reduce};
use super::precompute::{self, Keeping};
use super::translate::batch::translate_batched;
use crate::dtype::{convert, Dtype, Element};
use crate::ir::interp::check_slots;
use crate::ir::{verify, Function, RunError};
use crate::shape::{Shape, Tensor};

/// What a batched function computes besides the means.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOptions {
    /// Also return every `Role::Output` value, one row per example (what
    /// prediction needs). Without it those values are not computed at all.
    pub per_example_outputs: bool,
    /// The element type of the arithmetic and of every buffer (parameters,
    /// inputs, outputs): f64, or f32 (the host math functions then run in
    /// f64 on the widened argument and round back).
    pub dtype: Dtype,
    /// Return every loss, metric and gradient summed over the batch (the
    /// accumulators, `(((-0 + v0) + v1) + ...)`), not divided by `n`: what
    /// a shard of a larger batch gives, the shards' sums then added and
    /// divided by the caller ([`crate::runtime::shards`]).
    pub sums: bool,
}

/// A function compiled to machine code that runs a whole batch per call.
///
/// [`Self::run_batch`] takes `&self` and may be called from several threads
/// at once, each with its own [`Scratch`].
pub struct BatchedFunction {
    /// The machine code's entry point; valid as long as `code` is.
    entry: BatchEntryFn,
    #[expect(dead_code, reason = "held for its Drop, which frees the code")]
    code: Code,
    /// The function compiled, as its callers see it (in f64, its constant
    /// loops of at most `precompute::MAX_ELEMENTS` numbers made constants).
    f: Function,
    /// Its larger constant loops, in f64 ([`precompute::keep`]): the
    /// function the code was compiled from, which reads them as
    /// parameters after `f`'s, and their values.
    kept: Keeping,
    outputs: Vec<BatchOutput>,
    scratch_len: usize,
    dtype: Dtype,
}

/// Compiles `f` to a batched function that returns the mean of every loss,
/// metric and gradient (the `Role::Output` values are not computed).
pub fn compile_batched(f: &Function) -> Result<BatchedFunction, CompileError> {
    compile_batched_with(f, BatchOptions::default())
}

/// Compiles `f` to a batched function with the given options. In f64, its
/// loops that read no parameter and no input are computed once
/// ([`super::precompute`]): the small ones now, made constants, the others
/// at the first call, then held; an f32 function computes them itself,
/// rounding as it goes.
pub fn compile_batched_with(
    f: &Function,
    options: BatchOptions,
) -> Result<BatchedFunction, CompileError> {
    let folded = match options.dtype {
        Dtype::F64 => precompute::fold(f),
        Dtype::F32 => None,
    };
    let f = folded.as_ref().unwrap_or(f);
    let kept = match options.dtype {
        Dtype::F64 => precompute::keep(f, Hidden::Params),
        Dtype::F32 => None,
    };
    let mut code = Code::new()?;
    let module = code.module();
    let mut ctx = module.make_context();
    let kept = Keeping::new(f, kept);
    let plan = build(module, kept.compiled(f), options, &mut ctx)?;
    let ptr = define_entry(module, &mut ctx)?;
    // SAFETY: `ptr` is the finalized code of a function defined with
    // `abi::batch_signature`, which is `BatchEntryFn` under the
    // module's default call convention, that of `extern "C"` on this host.
    let entry = unsafe { std::mem::transmute::<*const u8, BatchEntryFn>(ptr) };
    Ok(BatchedFunction {
        entry,
        code,
        f: f.clone(),
        kept,
        outputs: plan.outputs,
        scratch_len: plan.layout.scratch_len,
        dtype: options.dtype,
    })
}

/// The Cranelift IR of the batched function of `f`, as the translator emits
/// it (before Cranelift's optimisations).
pub fn batch_clif_text(f: &Function, options: BatchOptions) -> Result<String, CompileError> {
    let mut code = Code::new()?;
    let module = code.module();
    let mut ctx = module.make_context();
    build(module, Keeping::new(f, None).compiled(f), options, &mut ctx)?;
    Ok(ctx.func.display().to_string())
}

/// Verifies `f`, plans its batched function and builds its CLIF into
/// `ctx`, declaring what it uses in `module`.
fn build(
    module: &mut cranelift_jit::JITModule,
    f: &Function,
    options: BatchOptions,
    ctx: &mut cranelift_codegen::Context,
) -> Result<BatchPlan, String> {
    verify::verify(f).map_err(|e| format!("invalid IR: {e}"))?;
    check_sizes(f)?;
    let plan = batch_plan(f, options.per_example_outputs);
    ctx.func.signature = abi::batch_signature(module);
    let mut fctx = FunctionBuilderContext::new();
    translate_batched(
        module,
        f,
        &plan,
        options.dtype,
        options.sums,
        &mut ctx.func,
        &mut fctx,
    )?;
    Ok(plan)
}

impl BatchedFunction {
    /// The function this was compiled from.
    pub fn function(&self) -> &Function {
        &self.f
    }

    /// The element type of the arithmetic and of the buffers.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The buffers [`Self::run_batch`] writes, in order: which entry of
    /// `Function::outputs` each holds, and how it is reduced over the batch.
    /// They come in `Function::outputs` order: every loss, metric and
    /// gradient, and (with [`BatchOptions::per_example_outputs`]) every
    /// `Role::Output`.
    pub fn outputs(&self) -> &[BatchOutput] {
        &self.outputs
    }

    /// The shape of the `k`-th buffer for a batch of `n` examples: that of
    /// the output for a mean, `[n, ...]` for a per-example output.
    pub fn output_shape(&self, k: usize, n: usize) -> Shape {
        let o = self.outputs[k];
        let shape = self.f.shape(self.f.outputs[o.index].value);
        match o.reduce {
            Reduce::Mean => shape.clone(),
            Reduce::PerExample => Shape([&[n], shape.dims()].concat()),
        }
    }

    /// A scratch buffer for [`Self::run_batch`], to be reused across calls.
    /// Its size does not depend on the batch size.
    pub fn scratch(&self) -> Scratch {
        let f = self.compiled();
        Scratch::new(
            self.scratch_len,
            f.params.len() + f.inputs.len() + self.outputs.len(),
        )
    }

    /// Runs on `n >= 1` examples at the given parameters. `inputs[k]` holds
    /// the k-th input of every example, one after the other (`n` rows of its
    /// size, row-major); `out[k]` receives the `k`-th entry of
    /// [`Self::outputs`] (see [`Self::output_shape`]). One call into the
    /// machine code; allocates nothing. Every buffer's length is checked
    /// first (a [`RunError::Misuse`] if one does not fit), and `T` must be
    /// the function's [`Self::dtype`] (a misuse otherwise). A `one_hot` with
    /// a bad class fails with the interpreter's [`RunError::Fault`], with the
    /// example of the batch it failed on; `out` is then unspecified.
    pub fn run_batch<T: Element>(
        &self,
        scratch: &mut Scratch,
        params: &[&[T]],
        inputs: &[&[T]],
        n: usize,
        out: &mut [&mut [T]],
    ) -> Result<(), RunError> {
        let f = &self.f;
        if T::DTYPE != self.dtype {
            return Err(RunError::Misuse(format!(
                "the function computes in {} but was given {} buffers",
                self.dtype,
                T::DTYPE
            )));
        }
        check_lengths("parameter", &f.params, params.iter().map(|p| p.len()))?;
        self.check_inputs(inputs, n)?;
        if out.len() != self.outputs.len() {
            return Err(RunError::Misuse(format!(
                "expected {} output buffers, got {}",
                self.outputs.len(),
                out.len()
            )));
        }
        for (k, buf) in out.iter().enumerate() {
            let o = self.outputs[k];
            let shape = f.shape(f.outputs[o.index].value);
            let want = match o.reduce {
                Reduce::Mean => Some(shape.size()),
                Reduce::PerExample => shape.size().checked_mul(n),
            };
            if want != Some(buf.len()) {
                return Err(RunError::Misuse(format!(
                    "output {} of {n} examples has shape {} but its buffer holds {} numbers",
                    f.outputs[o.index].name,
                    self.output_shape(k, n),
                    buf.len()
                )));
            }
        }
        let kept = self.kept.values()?;
        let t = scratch.bind(
            self.scratch_len,
            (params, inputs),
            (kept, Hidden::Params),
            out,
        )?;
        // SAFETY: the code was compiled from `self.compiled()` with the plan
        // that gave `self.outputs` and `self.scratch_len`, and is alive
        // (owned by `self.code`). The tables, filled by `Scratch::bind` above
        // (which checked the scratch), hold exactly one pointer per
        // parameter, input and output buffer, each to a live buffer of
        // exactly the length checked above (of elements of `T`, the
        // function's dtype, checked above too): a parameter's size (the kept
        // values after `self.f`'s parameters, held by `self`, computed by
        // the function of their shapes, in f64, as only an f64 function
        // keeps any), `n` rows of an input's
        // size, a mean's size or `n` rows of a per-example output's size.
        // With `n >= 1` examples the generated code reads and writes no
        // further than those lengths, and besides the output buffers writes
        // only the scratch buffer, which holds `scratch_len` numbers as the
        // plan requires. Parameters and inputs are only read, and the `&mut`
        // outputs cannot alias them or each other. Everything is borrowed for
        // the whole call.
        let status = unsafe { (self.entry)(t.params, t.inputs, t.outputs, t.scratch, n) };
        scratch
            .status_result(self.compiled(), status)
            .map_err(|e| e.in_example(scratch.failed_example()))
    }

    /// The function the code was compiled from: `self.f`, or `self.f` with
    /// its large constant loops read from hidden parameters.
    fn compiled(&self) -> &Function {
        self.kept.compiled(&self.f)
    }

    /// How many constant loops this function computes at its first call and
    /// then holds ([`precompute::keep`]).
    pub fn kept_loops(&self) -> usize {
        self.kept.loops()
    }

    /// Requires `n >= 1` and `n` rows of every input.
    fn check_inputs<T>(&self, inputs: &[&[T]], n: usize) -> Result<(), RunError> {
        let f = &self.f;
        let misuse = |m: String| Err(RunError::Misuse(m));
        if n == 0 {
            return misuse("a batch needs at least one example".to_string());
        }
        if inputs.len() != f.inputs.len() {
            return misuse(format!(
                "expected {} input values, got {}",
                f.inputs.len(),
                inputs.len()
            ));
        }
        for (s, x) in f.inputs.iter().zip(inputs) {
            if s.shape.size().checked_mul(n) != Some(x.len()) {
                return misuse(format!(
                    "input {} has shape {}: {n} examples need {n} x {} numbers but its buffer holds {}",
                    s.name,
                    s.shape,
                    s.shape.size(),
                    x.len()
                ));
            }
        }
        Ok(())
    }

    /// Runs on `n` examples (see [`Self::run_batch`]) and returns the
    /// buffers as tensors of [`Self::output_shape`]. Allocates them, and a
    /// scratch buffer. For an f32 function, parameters and inputs are
    /// rounded to f32 first and the results widened back.
    pub fn run(
        &self,
        params: &[Tensor],
        inputs: &[&[f64]],
        n: usize,
    ) -> Result<Vec<Tensor>, RunError> {
        check_slots("parameter", &self.f.params, params)?;
        self.check_inputs(inputs, n)?;
        match self.dtype {
            Dtype::F64 => {
                let p: Vec<&[f64]> = params.iter().map(|t| &t.data[..]).collect();
                self.run_as(&p, inputs, n)
            }
            Dtype::F32 => {
                let p: Vec<Vec<f32>> = params.iter().map(|t| convert(&t.data)).collect();
                let x: Vec<Vec<f32>> = inputs.iter().map(|x| convert(x)).collect();
                let p: Vec<&[f32]> = p.iter().map(|v| &v[..]).collect();
                let x: Vec<&[f32]> = x.iter().map(|v| &v[..]).collect();
                self.run_as(&p, &x, n)
            }
        }
    }

    /// [`Self::run`] on buffers of `T`.
    fn run_as<T: Element>(
        &self,
        params: &[&[T]],
        inputs: &[&[T]],
        n: usize,
    ) -> Result<Vec<Tensor>, RunError> {
        let mut bufs: Vec<Vec<T>> = (0..self.outputs.len())
            .map(|k| vec![T::default(); self.output_shape(k, n).size()])
            .collect();
        let mut o: Vec<&mut [T]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        self.run_batch(&mut self.scratch(), params, inputs, n, &mut o)?;
        Ok(bufs
            .into_iter()
            .enumerate()
            .map(|(k, b)| {
                let data = b.into_iter().map(T::to_f64).collect();
                Tensor::new(self.output_shape(k, n), data)
            })
            .collect())
    }
}
