//! A compiled program run over a batch of examples: the mean loss, metrics
//! and (for a gradient program) gradients, with every buffer allocated once.
//! The program itself is an [`Evaluator`], the one engine abstraction; this
//! adds the scratch, the gather buffers and the means.
//!
//! Three ways to run, the same numbers bit for bit:
//! - [`Mode::Batched`] (the JIT's default): the batch's rows are gathered
//!   into one buffer per input and the loop over them runs inside the
//!   machine code, one call per batch
//!   ([`crate::backend::BatchedFunction::run_batch`]);
//! - [`Mode::PerExample`]: one call of
//!   [`crate::backend::JitFunction::run_into`] per example, the sums taken
//!   here;
//! - [`Mode::Interp`]: the reference interpreter, with tensors (it
//!   allocates, being the slow path).
//!
//! A batch is cut into shards by the rule of [`super::shards`], which
//! depends on the batch's size only: each shard's sums in example order
//! from -0, the shards' sums added in shard order from -0, the total divided
//! by `n`. The shards run on the run's [`Threads`] (each with its own
//! scratch and buffers, allocated once), so a run's numbers depend only on
//! the data, the parameters and the order, never on the engine or the
//! thread count.

use rayon::prelude::*;
use std::sync::Arc;

use super::narrow::Narrow;
use crate::backend::{self, BatchOptions, Reduce, Scratch};
use crate::dtype::Dtype;

use crate::diagnostic::{Error, Source};
use crate::eval::{compile_failed, run_error, trace_non_finite, Evaluator};
pub use crate::eval::{Backend, Mode};
use crate::ir::nonfinite::Origin;
use crate::ir::{interp, Function, Op, Output, Role, RunError};
use crate::shape::Tensor;
use crate::{passes, Compiled};

use super::shards::{shard, shard_count, Threads, MAX_SHARDS};
use super::Dataset;

/// The forward program without its `output`s: the loss and the metrics.
pub fn eval_program(c: &Compiled) -> Function {
    let mut f = c.ir.clone();
    f.outputs.retain(|o| o.role != Role::Output);
    passes::simplify(&mut f);
    f
}

/// The gradient program of the loss, with the metrics but without the
/// `output`s, which training does not need: the program's one gradient
/// program ([`Compiled::gradient`]) with those outputs dropped.
pub fn train_program(c: &Compiled) -> Result<Function, Error> {
    let mut g = c
        .gradient()
        .map_err(|d| Error::in_source(&c.source, vec![d]))?;
    g.outputs.retain(|o| o.role != Role::Output);
    passes::simplify(&mut g);
    Ok(g)
}

/// The forward program with only the `output`s, and which inputs it reads.
pub fn predict_program(c: &Compiled) -> (Function, Vec<bool>) {
    let mut f = c.ir.clone();
    f.outputs.retain(|o| o.role == Role::Output);
    passes::simplify(&mut f);
    let mut needed = vec![false; f.inputs.len()];
    for inst in f.insts() {
        if let Op::Input(k) = inst.op {
            needed[k] = true;
        }
    }
    (f, needed)
}

/// Where the first NaN or infinity among the outputs `watched` of `f`
/// comes from, on the first example of `rows` of `data` that has one (the
/// one example of a program without data when `data` is `None`): the
/// examples re-run one by one in the interpreter
/// ([`crate::eval::trace_non_finite`]), with a note naming the example's
/// line of the data. Only after a run gave a non-finite result: the hot
/// loop has no checks.
pub fn trace_rows(
    f: &Function,
    source: &Arc<Source>,
    params: &[Tensor],
    data: Option<&Dataset>,
    rows: &[usize],
    watched: impl Fn(&Output) -> bool + Copy,
    headline: impl Fn(&Origin) -> String + Copy,
) -> Option<Error> {
    let Some(d) = data else {
        return trace_non_finite(f, source, params, &[], watched, headline);
    };
    rows.iter().find_map(|&r| {
        trace_non_finite(
            f,
            source,
            params,
            &d.tensors(&f.inputs, r),
            watched,
            headline,
        )
        .map(|e| {
            let (at, words) = d.example_note(r);
            e.note(Some(at), words)
        })
    })
}

/// The elements of a gradient whose shards' sums are added together: a
/// block's means stay in the first level of cache.
const BLOCK: usize = 2048;

/// A failure on one example.
#[derive(Clone, Debug, PartialEq)]
pub struct RowError {
    /// The example (an index into the dataset), if there is data.
    pub row: Option<usize>,
    /// What failed, as one example's run reports it (no example of a batch
    /// in it: `row` names the example).
    pub error: RunError,
}

impl RowError {
    /// This failure as an [`Error`], for a program compiled from `source`
    /// run on `data`: a fault placed at its instruction in `source`
    /// ([`run_error`]), with a note naming the data file's line of the
    /// example; a misuse at that line.
    pub fn to_error(&self, source: &Arc<Source>, data: Option<&Dataset>) -> Error {
        let line = data.zip(self.row).map(|(d, r)| d.example_note(r));
        match (&self.error, line.clone().map(|(at, _)| at)) {
            (RunError::Fault { .. }, Some(at)) => {
                let words = line.map(|(_, w)| w).unwrap_or_default();
                run_error(source, &self.error).note(Some(at), words)
            }
            (RunError::Fault { .. }, None) => run_error(source, &self.error),
            (RunError::Misuse(m), Some(line)) => Error::at(
                line,
                format!("the model cannot be evaluated on this example: {m}"),
            ),
            (RunError::Misuse(m), None) => {
                Error::new(format!("the model cannot be evaluated: {m}"))
            }
        }
    }
}

/// A program ready to run on examples, with a shard's buffers per shard of
/// the largest batch so far and the means of the last batch.
pub struct Engine {
    program: Evaluator,
    threads: Threads,
    /// The floating-point operations of one example ([`crate::ir::stats`]).
    example_flops: u64,
    /// The shards' buffers, made for the first batch that needs them.
    shards: Vec<Shard>,
    /// Batched mode: per output of the function, whether the batched code
    /// writes it.
    written: Vec<bool>,
    loss: Option<usize>,
    metrics: Vec<usize>,
    grads: Vec<usize>,
    /// The outputs summed over a batch: the loss, the metrics, the
    /// gradients.
    reduced: Vec<usize>,
    /// Means over the last batch.
    loss_mean: f64,
    metric_means: Vec<f64>,
    grad_means: Vec<Vec<f64>>,
    /// The element type the batched code computes in.
    dtype: Dtype,
    /// In f32, the parameters of the current batch rounded, once for all
    /// its shards.
    rounded: Vec<Vec<f32>>,
}

/// The parameters of a call: as the optimizer holds them, and (in f32)
/// rounded once per batch.
#[derive(Clone, Copy)]
struct At<'a> {
    params: &'a [Tensor],
    rounded: &'a [Vec<f32>],
}

/// `params` rounded to f32 into `rounded`, whose buffers are reused.
fn round(rounded: &mut Vec<Vec<f32>>, params: &[Tensor]) {
    rounded.resize_with(params.len(), Vec::new);
    for (buf, p) in rounded.iter_mut().zip(params) {
        buf.clear();
        buf.extend(p.data.iter().map(|&x| x as f32));
    }
}

/// What one shard of a batch runs with: its scratch, its gathered rows,
/// the values of its last example and its sums.
struct Shard {
    /// The compiled code's scratch (`None` for the interpreter).
    scratch: Option<Scratch>,
    /// Batched mode: per input, the shard's rows, one after the other.
    gather: Vec<Vec<f64>>,
    /// One buffer per output of the program, in `Function::outputs` order:
    /// the values of the last example run (the sums of the shard, after a
    /// batched run).
    outs: Vec<Vec<f64>>,
    /// Per output of the program, the shard's sums (per-example and
    /// interpreter modes; only the reduced outputs).
    sums: Vec<Vec<f64>>,
    /// The last run's result.
    result: Result<(), RowError>,
    /// Pointer vectors kept between calls for their allocations (always
    /// empty between calls).
    param_ptrs: Vec<&'static [f64]>,
    input_ptrs: Vec<&'static [f64]>,
    out_ptrs: Vec<&'static mut [f64]>,
    /// In f32 (batched mode only): the f32 buffers the code reads and writes.
    narrow: Option<Narrow>,
}

/// The allocation of an emptied vector, for elements of another lifetime
/// (or type of the same layout). Nothing is carried over, since the vector
/// is emptied first; the standard library collects in place here, so the
/// memory is reused and nothing is allocated.
pub(super) fn recycle<A, B>(mut v: Vec<A>) -> Vec<B> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
}

impl Engine {
    /// Compiles `f` to run as `mode` says, on the calling thread (in
    /// batched mode, a program with `output`s computes them per example:
    /// prediction).
    pub fn new(f: &Function, mode: Mode) -> Result<Engine, Error> {
        Engine::with(f, mode, Dtype::F64, Threads::default())
    }

    /// [`Self::new`], computing in `dtype`, the shards of a batch on
    /// `threads`. f32 runs only in batched mode (the interpreter and the
    /// per-example JIT compute in f64), an error otherwise.
    pub fn with(f: &Function, mode: Mode, dtype: Dtype, threads: Threads) -> Result<Engine, Error> {
        if dtype != Dtype::F64 && mode != Mode::Batched {
            return Err(Error::new(format!(
                "`dtype = {dtype}` runs on the JIT only: the interpreter computes in f64"
            ))
            .hint("drop `--backend interp`, or use `--dtype f64`"));
        }
        let program = match mode {
            Mode::Batched => {
                let options = BatchOptions {
                    per_example_outputs: f.outputs.iter().any(|o| o.role == Role::Output),
                    dtype,
                    sums: true,
                };
                let b = backend::compile_batched_with(f, options).map_err(compile_failed)?;
                Evaluator::Batched(Box::new(b))
            }
            mode => Evaluator::compile(f, mode).map_err(compile_failed)?,
        };
        let mut written = vec![false; f.outputs.len()];
        if let Evaluator::Batched(b) = &program {
            let mut last = None;
            for o in b.outputs() {
                // The buffers come in output order; the pointer table in
                // `call_batched` relies on it.
                if last.is_some_and(|l| l >= o.index) {
                    return Err(Error::new(
                        "cannot compile the program: the batched function's buffers are out of order",
                    ));
                }
                last = Some(o.index);
                written[o.index] = true;
                debug_assert!(f.outputs[o.index].role == Role::Output || o.reduce == Reduce::Mean);
            }
        }
        let find = |role: &Role| f.outputs.iter().position(|o| &o.role == role);
        let metrics: Vec<usize> = (0..f.outputs.len())
            .filter(|&i| f.outputs[i].role == Role::Metric)
            .collect();
        let grads: Vec<usize> = (0..f.params.len())
            .map_while(|p| find(&Role::Grad(p)))
            .collect();
        let has_grads = !f.params.is_empty() && grads.len() == f.params.len();
        let (grads, grad_means) = if has_grads {
            let means = f.params.iter().map(|s| vec![0.0; s.shape.size()]).collect();
            (grads, means)
        } else {
            (Vec::new(), Vec::new())
        };
        let loss = find(&Role::Loss);
        let reduced = loss.iter().chain(&metrics).chain(&grads).copied().collect();
        let mut engine = Engine {
            threads,
            example_flops: crate::ir::stats::stats(f).flops,
            written,
            program,
            loss,
            metric_means: vec![0.0; metrics.len()],
            metrics,
            grads,
            reduced,
            grad_means,
            loss_mean: 0.0,
            shards: Vec::new(),
            dtype,
            rounded: Vec::new(),
        };
        engine.grow(1);
        Ok(engine)
    }

    /// At least `k` shards' buffers.
    fn grow(&mut self, k: usize) {
        while self.shards.len() < k.min(MAX_SHARDS) {
            let f = self.program.function();
            let outs: Vec<Vec<f64>> = f
                .outputs
                .iter()
                .map(|o| vec![0.0; f.shape(o.value).size()])
                .collect();
            let sums = match self.program {
                Evaluator::Batched(_) => Vec::new(),
                _ => outs.clone(),
            };
            self.shards.push(Shard {
                scratch: self.program.scratch(),
                gather: f.inputs.iter().map(|_| Vec::new()).collect(),
                outs,
                sums,
                result: Ok(()),
                param_ptrs: Vec::new(),
                input_ptrs: Vec::new(),
                out_ptrs: Vec::new(),
                narrow: (self.dtype == Dtype::F32).then(Narrow::default),
            });
        }
    }

    /// The program this runs.
    pub fn function(&self) -> &Function {
        self.program.function()
    }

    /// The threads the shards of a batch run on.
    pub fn threads(&self) -> &Threads {
        &self.threads
    }

    /// The metrics' names, in the order of [`Self::metrics`].
    pub fn metric_names(&self) -> Vec<String> {
        self.metrics
            .iter()
            .map(|&i| self.program.function().outputs[i].name.clone())
            .collect()
    }

    /// The mean loss over the last batch (0 if the program has none).
    pub fn loss(&self) -> f64 {
        self.loss_mean
    }

    /// The mean of every metric over the last batch.
    pub fn metrics(&self) -> &[f64] {
        &self.metric_means
    }

    /// The mean gradient of every parameter over the last batch (empty for a
    /// program without gradients).
    pub fn grads(&self) -> &[Vec<f64>] {
        &self.grad_means
    }

    /// The k-th output of the example [`Self::example`] ran last.
    pub fn output(&self, k: usize) -> &[f64] {
        &self.shards[0].outs[k]
    }

    /// Runs every example of `rows` (or, without data, the program once) and
    /// sets the means, the shards of the batch on the engine's threads.
    /// Allocates nothing on the JIT once the shards' buffers are made (the
    /// batched mode's gather buffers grow to the largest shard once). On a
    /// failure, the first example in batch order that fails.
    pub fn run(
        &mut self,
        params: &[Tensor],
        data: Option<&Dataset>,
        rows: &[usize],
    ) -> Result<(), RowError> {
        let n = match data {
            Some(_) => rows.len(),
            None => 1,
        };
        if n == 0 {
            self.loss_mean = 0.0;
            self.metric_means.fill(0.0);
            for g in &mut self.grad_means {
                g.fill(0.0);
            }
            return Ok(());
        }
        let k = shard_count(n);
        self.grow(k);
        if self.dtype == Dtype::F32 {
            round(&mut self.rounded, params);
        }
        let at = At {
            params,
            rounded: &self.rounded,
        };
        let (program, written, reduced) = (&self.program, &self.written[..], &self.reduced[..]);
        let work = |(i, s): (usize, &mut Shard)| {
            let rows = match data {
                Some(_) => &rows[shard(n, k, i)],
                None => &[],
            };
            s.result = s.run(program, written, reduced, at, data, rows);
        };
        let shards = &mut self.shards[..k];
        let parallel = k > 1 && self.example_flops * (n / k) as u64 >= self.threads.min_flops();
        match self.threads.pool() {
            Some(pool) if parallel => {
                pool.install(|| shards.par_iter_mut().enumerate().for_each(work))
            }
            _ => shards.iter_mut().enumerate().for_each(work),
        }
        for s in shards.iter_mut() {
            std::mem::replace(&mut s.result, Ok(()))?;
        }
        self.combine(k, n);
        Ok(())
    }

    /// The means from the sums of the first `k` shards of a batch of `n`:
    /// added in shard order from -0, divided by `n`. The gradients go in
    /// blocks of elements (on the engine's threads, for large ones), each
    /// element's sums in shard order all the same.
    fn combine(&mut self, k: usize, n: usize) {
        let batched = matches!(self.program, Evaluator::Batched(_));
        let shards = &self.shards[..k];
        let sums = |s| Shard::sums(s, batched);
        let scale = n as f64;
        // Dividing by a power of two is multiplying by its inverse, which
        // is exact: the same real number, so the same rounded one (the
        // divisions, a few cycles each, were a twentieth of a small
        // model's step).
        let inverse = n.is_power_of_two().then(|| 1.0 / scale);
        let mean = |j: usize| shards.iter().fold(-0.0, |a, s| a + sums(s)[j][0]) / scale;
        if let Some(l) = self.loss {
            self.loss_mean = mean(l);
        }
        for (m, &j) in self.metric_means.iter_mut().zip(&self.metrics) {
            *m = mean(j);
        }
        for (g, &j) in self.grad_means.iter_mut().zip(&self.grads) {
            // One pass per shard: the first adds its sums to -0, the last
            // divides too (the same operations as filling with -0, adding
            // each shard and dividing, in fewer passes over the block).
            let block = |(b, out): (usize, &mut [f64])| {
                let from = b * BLOCK;
                let last = shards.len() - 1;
                for (i, s) in shards.iter().enumerate() {
                    let xs = &sums(s)[j][from..];
                    let pairs = out.iter_mut().zip(xs);
                    match (i == 0, i == last, inverse) {
                        (true, false, _) => pairs.for_each(|(a, x)| *a = -0.0 + x),
                        (false, false, _) => pairs.for_each(|(a, x)| *a += x),
                        (true, true, Some(r)) => pairs.for_each(|(a, x)| *a = (-0.0 + x) * r),
                        (true, true, None) => pairs.for_each(|(a, x)| *a = (-0.0 + x) / scale),
                        (false, true, Some(r)) => pairs.for_each(|(a, x)| *a = (*a + x) * r),
                        (false, true, None) => pairs.for_each(|(a, x)| *a = (*a + x) / scale),
                    }
                }
            };
            match self.threads.pool() {
                Some(pool) if k > 1 && g.len() >= 4 * BLOCK => pool.install(|| {
                    g.par_chunks_mut(BLOCK).enumerate().for_each(block);
                }),
                _ => g.chunks_mut(BLOCK).enumerate().for_each(block),
            }
        }
    }

    /// Runs one example (`row` of `data`, or none without data), leaving its
    /// outputs in [`Self::output`].
    pub fn example(
        &mut self,
        params: &[Tensor],
        data: Option<&Dataset>,
        row: Option<usize>,
    ) -> Result<(), RowError> {
        if self.dtype == Dtype::F32 {
            round(&mut self.rounded, params);
        }
        let at = At {
            params,
            rounded: &self.rounded,
        };
        self.shards[0].example(&self.program, &self.written, at, data, row)
    }
}

impl Shard {
    /// Where the shard's sums are: in the batched code's output buffers,
    /// or in `sums`.
    fn sums(&self, batched: bool) -> &[Vec<f64>] {
        if batched {
            &self.outs
        } else {
            &self.sums
        }
    }

    /// The shard's sums over `rows` (one example without data) of the
    /// `reduced` outputs: in the batched code's output buffers, or in
    /// `sums`.
    fn run(
        &mut self,
        program: &Evaluator,
        written: &[bool],
        reduced: &[usize],
        at: At<'_>,
        data: Option<&Dataset>,
        rows: &[usize],
    ) -> Result<(), RowError> {
        if let Evaluator::Batched(_) = program {
            return self.run_batched(program, written, at, data, rows);
        }
        for &k in reduced {
            self.sums[k].fill(-0.0);
        }
        let n = if data.is_some() { rows.len() } else { 1 };
        for i in 0..n {
            let row = data.and(rows.get(i).copied());
            self.example(program, written, at, data, row)?;
            for &k in reduced {
                for (a, b) in self.sums[k].iter_mut().zip(&self.outs[k]) {
                    *a += b;
                }
            }
        }
        Ok(())
    }

    /// One call of the batched function over `rows`; on a failure, the rows
    /// are run one by one to find the example that fails.
    fn run_batched(
        &mut self,
        program: &Evaluator,
        written: &[bool],
        at: At<'_>,
        data: Option<&Dataset>,
        rows: &[usize],
    ) -> Result<(), RowError> {
        let result = self.call_batched(program, written, at, data, rows);
        if let Err(error) = result {
            // The first example in batch order that fails alone, as the
            // other modes find it (the batched code may meet a later one
            // first, in an earlier stage).
            if let Some(d) = data {
                for &r in rows {
                    if let Err(e) = self.call_batched(program, written, at, Some(d), &[r]) {
                        return Err(RowError {
                            row: Some(r),
                            error: e.in_example(None),
                        });
                    }
                }
            }
            return Err(RowError {
                row: None,
                error: error.in_example(None),
            });
        }
        Ok(())
    }

    fn call_batched(
        &mut self,
        program: &Evaluator,
        written: &[bool],
        at: At<'_>,
        data: Option<&Dataset>,
        rows: &[usize],
    ) -> Result<(), RunError> {
        let (Evaluator::Batched(f), Some(scratch)) = (program, &mut self.scratch) else {
            unreachable!("called in batched mode only");
        };
        let gather = &mut self.gather;
        let mut os: Vec<&mut [f64]> = recycle(std::mem::take(&mut self.out_ptrs));
        os.extend(
            self.outs
                .iter_mut()
                .zip(written.iter())
                .filter(|(_, w)| **w)
                .map(|(o, _)| &mut o[..]),
        );
        if let Some(narrow) = &mut self.narrow {
            let result = narrow.call(f, scratch, at.rounded, data, rows, &mut os);
            self.out_ptrs = recycle(os);
            return result;
        }
        let n = if data.is_some() { rows.len() } else { 1 };
        // Consecutive rows (an evaluation over the whole data) are read in
        // place: no copy of the data set.
        let in_place =
            data.filter(|_| !rows.is_empty() && rows.windows(2).all(|w| w[1] == w[0] + 1));
        if let Some(d) = in_place {
            // Room for a gathered batch of this size all the same, so that
            // a later one allocates nothing (untouched, it is not resident).
            for (k, buf) in gather.iter_mut().enumerate() {
                buf.clear();
                buf.reserve(n * d.sizes[k]);
            }
        }
        if let Some(d) = data.filter(|_| in_place.is_none()) {
            for (k, buf) in gather.iter_mut().enumerate() {
                buf.clear();
                for &r in rows {
                    buf.extend_from_slice(d.example(k, r));
                }
            }
        }
        let mut ps: Vec<&[f64]> = recycle(std::mem::take(&mut self.param_ptrs));
        let mut ins: Vec<&[f64]> = recycle(std::mem::take(&mut self.input_ptrs));
        ps.extend(at.params.iter().map(|p| &p.data[..]));
        match in_place {
            Some(d) => ins.extend((0..gather.len()).map(|k| {
                let size = d.sizes[k];
                &d.inputs[k][rows[0] * size..(rows[0] + n) * size]
            })),
            None => ins.extend(gather.iter().map(|g| &g[..])),
        }
        let result = f.run_batch(scratch, &ps, &ins, n, &mut os);
        self.param_ptrs = recycle(ps);
        self.input_ptrs = recycle(ins);
        self.out_ptrs = recycle(os);
        result
    }

    /// Runs one example (`row` of `data`, or none without data), leaving its
    /// outputs in `outs`.
    fn example(
        &mut self,
        program: &Evaluator,
        written: &[bool],
        at: At<'_>,
        data: Option<&Dataset>,
        row: Option<usize>,
    ) -> Result<(), RowError> {
        let fail = |error: RunError| RowError {
            row,
            error: error.in_example(None),
        };
        match (program, &mut self.scratch) {
            (Evaluator::Batched(_), _) => {
                let rows = [row.unwrap_or(0)];
                self.call_batched(program, written, at, data, &rows)
                    .map_err(fail)
            }
            (Evaluator::Jit(jit), scratch) => {
                let scratch = scratch.as_mut().expect("compiled code has a scratch");
                let mut ps: Vec<&[f64]> = recycle(std::mem::take(&mut self.param_ptrs));
                let mut ins: Vec<&[f64]> = recycle(std::mem::take(&mut self.input_ptrs));
                let mut os: Vec<&mut [f64]> = recycle(std::mem::take(&mut self.out_ptrs));
                ps.extend(at.params.iter().map(|p| &p.data[..]));
                if let (Some(d), Some(r)) = (data, row) {
                    ins.extend((0..d.inputs.len()).map(|k| d.example(k, r)));
                }
                os.extend(self.outs.iter_mut().map(|o| &mut o[..]));
                let result = jit.run_into(scratch, &ps, &ins, &mut os);
                self.param_ptrs = recycle(ps);
                self.input_ptrs = recycle(ins);
                self.out_ptrs = recycle(os);
                result.map_err(fail)
            }
            (Evaluator::Interp(f), _) => {
                let inputs: Vec<Tensor> = match (data, row) {
                    (Some(d), Some(r)) => d.tensors(&f.inputs, r),
                    _ => Vec::new(),
                };
                let values = interp::run(f, at.params, &inputs).map_err(fail)?;
                for (buf, o) in self.outs.iter_mut().zip(&f.outputs) {
                    buf.copy_from_slice(&values[o.value.index()].data);
                }
                Ok(())
            }
        }
    }
}
