//! The calling convention between Rust and the generated code, and the layout
//! of the scratch buffer, both fixed at compile time.
//!
//! The generated function is
//!
//! ```text
//! extern "C" fn(params: *const *const f64, inputs: *const *const f64,
//!               outputs: *const *mut f64, scratch: *mut f64) -> i64
//! ```
//!
//! - `params[k]`, `inputs[k]` point to the row-major data of the k-th
//!   parameter and input, `outputs[k]` to the buffer of the k-th entry of
//!   `Function::outputs`; each holds exactly `shape.size()` numbers (checked on
//!   the Rust side before every call). Parameters and inputs are only read.
//! - `scratch` holds [`Layout::scratch_len`] numbers: element [`ERROR_SLOT`]
//!   first, then one slot per non-scalar intermediate value. Slots of dead
//!   values are reused (see [`layout`]).
//! - The result is 0 on success. `i + 1` means that instruction `%i`, a
//!   `one_hot`, got a class that is not an integer in range; the class is then
//!   in `scratch[ERROR_SLOT]` and the outputs are unspecified.
//!
//! Scalar values live in registers, never in scratch; constants that are not
//! scalars live in read-only data objects of the JIT module.

use std::collections::HashMap;

use super::fuse;
use super::translate::UNROLL;
use crate::ir::{Function, Op, Role};

/// The signature of the generated function.
pub type EntryFn = unsafe extern "C" fn(
    params: *const *const f64,
    inputs: *const *const f64,
    outputs: *const *mut f64,
    scratch: *mut f64,
) -> i64;

/// Where a failing `one_hot` leaves its class, in the scratch buffer.
pub const ERROR_SLOT: usize = 0;

/// How the instructions run and where every value lives, decided before
/// translation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The instructions in execution order, in steps: one instruction, or a
    /// fused run of them (see [`super::fuse`]). In a batched function the
    /// steps before [`Self::body`] run once per call, the others once per
    /// example.
    pub steps: Vec<Vec<usize>>,
    /// The first step of the loop over the examples (`steps.len()` in a
    /// function of one example).
    pub body: usize,
    /// For every instruction, its offset in the scratch buffer (in f64s), if
    /// it is a computed value that is not a scalar, not a view and not
    /// internal to a run.
    pub slots: Vec<Option<usize>>,
    /// The members of fused runs that nothing outside their run reads: they
    /// only ever live in registers, one element at a time.
    pub internal: Vec<bool>,
    /// The length of the scratch buffer, in f64s.
    pub scratch_len: usize,
    /// In a batched function: the matrices `W` (instructions) fixed over the
    /// batch that a matrix-vector `W @ x` in the loop over the examples
    /// reads, each with the offset in the scratch buffer of its transpose,
    /// which the function makes once per call, before the loop. Empty in a
    /// function of one example.
    pub transposed: Vec<(usize, usize)>,
    /// In a batched function: the first step of every stage of the body
    /// (the first is [`Self::body`]). Each stage runs for all the examples
    /// of a chunk before the next one starts. Empty in a function of one
    /// example.
    pub stages: Vec<usize>,
}

impl Layout {
    /// Where the transpose of instruction `w`'s value is, if it is made.
    pub fn transposed_of(&self, w: usize) -> Option<usize> {
        self.transposed
            .iter()
            .find(|&&(v, _)| v == w)
            .map(|&(_, off)| off)
    }
}

/// Whether the value of `f`'s i-th instruction needs a scratch slot: it is
/// computed (not a parameter, input or constant) and not a scalar.
pub fn needs_slot(f: &Function, i: usize) -> bool {
    let inst = &f.insts()[i];
    let computed = !matches!(inst.op, Op::Param(_) | Op::Input(_) | Op::Const(_));
    computed && !inst.shape.is_scalar()
}

/// The layout of a function of one example: every instruction, in order,
/// and every output read at the end.
pub fn layout(f: &Function) -> Layout {
    let all: Vec<usize> = (0..f.insts().len()).collect();
    let results: Vec<usize> = f.outputs.iter().map(|o| o.value.index()).collect();
    plan(f, &all, &[], &results, ERROR_SLOT + 1)
}

/// Plans `pre` and then `body`, instructions in execution order (the body
/// may be repeated, reading what `pre` computed), with the `results` read
/// after the last step; scratch slots from offset `first` on.
///
/// The program is straight-line, so a value is live from its step to the
/// step of its last reader, a view's readers counting as its argument's
/// (to the end for a result, and for a value of `pre` that the body reads).
/// A step takes the slots of its results before the values that die there
/// give theirs back, so a result never shares memory with its arguments;
/// freed slots are reused by later values of the same size.
fn plan(
    f: &Function,
    pre: &[usize],
    body: &[Vec<usize>],
    results: &[usize],
    first: usize,
) -> Layout {
    let n = f.insts().len();
    let mut steps = fuse::steps(f, pre);
    let body_start = steps.len();
    let mut stages = Vec::new();
    for stage in body {
        stages.push(steps.len());
        steps.extend(fuse::steps(f, stage));
    }
    let end = steps.len();
    let mut step_of = vec![usize::MAX; n];
    // The instruction whose memory a value is: a view's is its argument's.
    let mut root: Vec<usize> = (0..n).collect();
    let mut view = vec![false; n];
    for (s, step) in steps.iter().enumerate() {
        for &i in step {
            step_of[i] = s;
            if fuse::view_offset(f, i).is_some() {
                view[i] = true;
                root[i] = root[f.insts()[i].args[0].index()];
            }
        }
    }
    let mut last_use: Vec<Option<usize>> = vec![None; n];
    let mut read_outside_its_step = vec![false; n];
    for (s, step) in steps.iter().enumerate() {
        for &i in step {
            for a in &f.insts()[i].args {
                let a = a.index();
                read_outside_its_step[a] |= step_of[a] != s;
                let r = root[a];
                let at = if s >= body_start && step_of[r] < body_start {
                    end
                } else {
                    s
                };
                last_use[r] = last_use[r].max(Some(at));
            }
        }
    }
    for &v in results {
        read_outside_its_step[v] = true;
        last_use[root[v]] = Some(end);
    }
    let internal: Vec<bool> = (0..n)
        .map(|i| {
            step_of[i] != usize::MAX
                && steps[step_of[i]].len() > 1
                && !read_outside_its_step[i]
                && fuse::elementwise(f, i)
        })
        .collect();
    let mut slots = vec![None; n];
    let mut free: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut len = first;
    for (s, step) in steps.iter().enumerate() {
        for &i in step {
            if needs_slot(f, i) && !view[i] && !internal[i] {
                let size = f.insts()[i].shape.size();
                let off = match free.get_mut(&size).and_then(Vec::pop) {
                    Some(off) => off,
                    None => {
                        len += size;
                        len - size
                    }
                };
                slots[i] = Some(off);
            }
        }
        let args = step.iter().flat_map(|&i| &f.insts()[i].args);
        let mut dying: Vec<usize> = args
            .map(|a| root[a.index()])
            .filter(|&r| last_use[r] == Some(s))
            .collect();
        // What nothing reads gives its slot back at once.
        dying.extend(step.iter().copied().filter(|&i| last_use[i].is_none()));
        dying.sort_unstable();
        dying.dedup();
        for v in dying {
            if let Some(off) = slots[v] {
                free.entry(f.insts()[v].shape.size()).or_default().push(off);
            }
        }
    }
    Layout {
        steps,
        body: body_start,
        slots,
        internal,
        scratch_len: len,
        transposed: Vec::new(),
        stages,
    }
}

/// The signature of the generated batched function: [`EntryFn`] with the
/// number of examples `n` last. `inputs[k]` then points to `n` examples of
/// the k-th input, one after the other; `outputs[k]` to the buffer of the
/// k-th entry of [`BatchPlan::outputs`]: `shape.size()` numbers for a mean,
/// `n * shape.size()` for a per-example output. On a failing `one_hot` the
/// example's index is in `scratch[EXAMPLE_SLOT]` too.
pub type BatchEntryFn = unsafe extern "C" fn(
    params: *const *const f64,
    inputs: *const *const f64,
    outputs: *const *mut f64,
    scratch: *mut f64,
    n: usize,
) -> i64;

/// Where a failing `one_hot` of a batched function leaves the index of the
/// example, in the scratch buffer.
pub const EXAMPLE_SLOT: usize = 1;

/// How a batched function returns an output of the IR function.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// The mean over the examples, summed in example order from -0 and then
    /// divided by `n` (losses, metrics and gradients).
    Mean,
    /// One value per example, `n` rows of the output's size (`Role::Output`
    /// values, when asked for).
    PerExample,
}

/// One buffer a batched function writes: the `index`-th entry of
/// `Function::outputs`, reduced by `reduce`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BatchOutput {
    pub index: usize,
    pub reduce: Reduce,
}

/// The plan of a batched function: the outputs it writes, and its layout,
/// whose steps before `body` do not depend on the example.
///
/// Instructions that no written output needs are in no step. A `one_hot`
/// always runs per example, so that a bad class fails the example at the
/// same instruction as in the interpreter.
///
/// The per-example instructions are in stages: a product `W @ x` or `x @ W`
/// of a matrix fixed over the batch and a vector `x` computed per example
/// is one stage after `x`'s, so that it can be computed for a chunk of
/// examples at once (see [`ChunkProduct`]); every other instruction is in
/// the latest stage of its arguments. There are stages only if every
/// `one_hot` is in the first, so that the first example to fail is the
/// interpreter's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchPlan {
    pub outputs: Vec<BatchOutput>,
    pub layout: Layout,
    /// The means whose value is an `outer(g, x)` computed per example that
    /// nothing else reads (a weight's gradient): computed over the batch as
    /// one product `G^T X` (see [`OuterMean`]).
    pub outer_means: Vec<OuterMean>,
    /// The products `W @ x` of a matrix fixed over the batch with a vector
    /// of the example (an input, or a value of an earlier stage): computed
    /// for a chunk of examples at once (see [`ChunkProduct`]).
    pub products: Vec<ChunkProduct>,
    /// The values of the body that a later stage (or the end of the
    /// example) reads, each with the offset in the scratch buffer of its
    /// `[CHUNK, size]` rows: every example of a chunk writes its row after
    /// the value's step.
    pub kept: Vec<(usize, usize)>,
    /// The stage of every instruction of the body (0 for the others).
    pub stage: Vec<usize>,
}

/// A product `W @ x` in the loop over the examples where `W` (`[m, k]`) is
/// fixed over the batch and `x` is an input or a value of an earlier stage
/// (kept per example): before its stage runs for the examples of a chunk,
/// the chunk's rows of `X W^T` are computed at once into `Y` (`[CHUNK, m]`,
/// in the scratch buffer), reading `W`'s transpose; the instruction then
/// copies row `r` of `Y` (the example's row in its chunk). Each element is
/// the same dot product, summed from -0 in the same order over `k`, as the
/// example's own `W @ x`. A product `x @ W` (`W` is `[k, m]`) likewise, as
/// `X W`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChunkProduct {
    /// The `matmul` instruction.
    pub inst: usize,
    /// Its stage.
    pub stage: usize,
    /// The offset of `Y` in the scratch buffer.
    pub y: usize,
}

/// The most numbers the values kept per example between stages may take
/// (32 MB); a program that would keep more runs in one stage.
pub const MAX_KEPT: usize = 1 << 22;

/// How many examples' rows an [`OuterMean`] keeps before it multiplies them
/// out: a batch of more examples is done in chunks of this many.
pub const CHUNK: usize = 256;

/// A mean of `outer(g, x)` over the batch, computed as `G^T X`: every
/// example copies `g` and `x` to row `r` of `G` (`[CHUNK, m]`) and of `X`
/// (`[CHUNK, k]`), `r` counting the examples of the current chunk; after the
/// last example of a chunk, each element of the output buffer (set to -0 at
/// the start) adds `G[r, i] * X[r, j]` for `r` in order. That is the sum of
/// the examples' products in example order from -0, the same bits as
/// adding each example's `outer`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OuterMean {
    /// The `outer` instruction.
    pub inst: usize,
    /// Its position in [`BatchPlan::outputs`].
    pub output: usize,
    /// The offsets of `G` and `X` in the scratch buffer.
    pub g: usize,
    pub x: usize,
}

/// Plans the batched function of `f`: every loss, metric and gradient as a
/// mean, and the `Role::Output` values per example if `per_example` is set
/// (else they are not computed at all).
pub fn batch_plan(f: &Function, per_example: bool) -> BatchPlan {
    let outputs: Vec<BatchOutput> = f
        .outputs
        .iter()
        .enumerate()
        .filter_map(|(index, o)| {
            let reduce = match o.role {
                Role::Loss | Role::Metric | Role::Grad(_) => Reduce::Mean,
                Role::Output if per_example => Reduce::PerExample,
                Role::Output => return None,
            };
            Some(BatchOutput { index, reduce })
        })
        .collect();
    let results: Vec<usize> = outputs
        .iter()
        .map(|o| f.outputs[o.index].value.index())
        .collect();
    let n = f.insts().len();
    let mut live = vec![false; n];
    for &v in &results {
        live[v] = true;
    }
    for i in (0..n).rev() {
        live[i] |= matches!(f.insts()[i].op, Op::OneHot(_));
        if live[i] {
            for a in &f.insts()[i].args {
                live[a.index()] = true;
            }
        }
    }
    let mut varies = vec![false; n];
    let (mut pre, mut body) = (Vec::new(), Vec::new());
    for i in (0..n).filter(|&i| live[i]) {
        let inst = &f.insts()[i];
        varies[i] = matches!(inst.op, Op::Input(_) | Op::OneHot(_))
            || inst.args.iter().any(|a| varies[a.index()]);
        if varies[i] {
            body.push(i);
        } else {
            pre.push(i);
        }
    }
    // The stages: a product `W @ x` of a vector `x` computed per example
    // starts a stage after `x`'s, so that it is computed for the chunk at
    // once; every other instruction runs in the latest stage of its
    // arguments. Only if every `one_hot` is in the first stage, so that the
    // first example to fail is the interpreter's.
    // (A product `x @ W`, `x` a vector, likewise.)
    let vector_of = |i: usize| {
        let inst = &f.insts()[i];
        if !matches!(inst.op, Op::MatMul) {
            return None;
        }
        let (a, b) = (inst.args[0].index(), inst.args[1].index());
        match (f.insts()[a].shape.dims(), f.insts()[b].shape.dims()) {
            ([m, k], [_]) if *m >= 2 && *k > UNROLL && !varies[a] => Some(b),
            ([k], [_, m]) if *m >= 2 && *k > UNROLL && !varies[b] => Some(a),
            _ => None,
        }
    };
    let mut stage = vec![0usize; n];
    for &i in &body {
        let inst = &f.insts()[i];
        stage[i] = match vector_of(i) {
            Some(x) if !matches!(f.insts()[x].op, Op::Input(_)) => stage[x] + 1,
            _ => inst
                .args
                .iter()
                .map(|a| stage[a.index()])
                .max()
                .unwrap_or(0),
        };
    }
    // The values a later stage (or the end of the example) reads, kept per
    // example of the chunk. Inputs are read again instead.
    let crossing = |stage: &[usize]| {
        let last = body.iter().map(|&i| stage[i]).max().unwrap_or(0);
        let mut crosses = vec![false; n];
        for &i in &body {
            for a in &f.insts()[i].args {
                let a = a.index();
                crosses[a] |= varies[a] && stage[a] < stage[i];
            }
        }
        for &v in &results {
            crosses[v] |= varies[v] && stage[v] < last;
        }
        for &i in &body {
            crosses[i] &= !matches!(f.insts()[i].op, Op::Input(_));
        }
        crosses
    };
    let kept_size: usize = {
        let crosses = crossing(&stage);
        body.iter()
            .filter(|&&i| crosses[i])
            .map(|&i| f.insts()[i].shape.size())
            .sum()
    };
    let staged = kept_size.saturating_mul(CHUNK) <= MAX_KEPT
        && body
            .iter()
            .all(|&i| !matches!(f.insts()[i].op, Op::OneHot(_)) || stage[i] == 0);
    if !staged {
        for &i in &body {
            stage[i] = 0;
        }
    }
    let count = body.iter().map(|&i| stage[i] + 1).max().unwrap_or(1);
    let mut stages = vec![Vec::new(); count];
    for &i in &body {
        stages[stage[i]].push(i);
    }
    let mut layout = plan(f, &pre, &stages, &results, EXAMPLE_SLOT + 1);
    // `W @ x` per example, `W` fixed: its transpose, after everything else
    // (a slot of its own, never reused).
    for &i in &body {
        let inst = &f.insts()[i];
        if !matches!(inst.op, Op::MatMul) {
            continue;
        }
        let (w, x) = (inst.args[0].index(), inst.args[1].index());
        let (ws, xs) = (&f.insts()[w].shape, &f.insts()[x].shape);
        // Worth it with two rows or more, and a loop over each.
        let worth = match (ws.dims(), xs.dims()) {
            ([m, k], [_]) => *m >= 2 && *k > UNROLL,
            _ => false,
        };
        if worth && !varies[w] && layout.transposed_of(w).is_none() {
            layout.transposed.push((w, layout.scratch_len));
            layout.scratch_len += ws.size();
        }
    }
    let mut read = vec![false; n];
    for i in (0..n).filter(|&i| live[i]) {
        for a in &f.insts()[i].args {
            read[a.index()] = true;
        }
    }
    let outer_means: Vec<OuterMean> = results
        .iter()
        .enumerate()
        .filter(|&(k, &v)| {
            outputs[k].reduce == Reduce::Mean
                && matches!(f.insts()[v].op, Op::Outer)
                && varies[v]
                && !read[v]
                && results.iter().filter(|&&r| r == v).count() == 1
        })
        .map(|(k, &v)| {
            let args = &f.insts()[v].args;
            let (m, n) = (f.shape(args[0]).size(), f.shape(args[1]).size());
            let g = layout.scratch_len;
            layout.scratch_len += CHUNK * (m + n);
            OuterMean {
                inst: v,
                output: k,
                g,
                x: g + CHUNK * m,
            }
        })
        .collect();
    // The products computed a chunk at a time: `x` an input (in the first
    // stage), or computed in an earlier stage.
    let mut products = Vec::new();
    for &i in &body {
        let Some(x) = vector_of(i) else {
            continue;
        };
        let w = f.insts()[i].args[0].index();
        let input = matches!(f.insts()[x].op, Op::Input(_));
        // `W @ x` reads `W`'s transpose.
        let ready = w == x || layout.transposed_of(w).is_some();
        if (input || stage[x] < stage[i]) && ready {
            let y = layout.scratch_len;
            layout.scratch_len += CHUNK * f.insts()[i].shape.size();
            products.push(ChunkProduct {
                inst: i,
                stage: stage[i],
                y,
            });
        }
    }
    let crosses = crossing(&stage);
    let kept: Vec<(usize, usize)> = body
        .iter()
        .filter(|&&i| crosses[i])
        // (A mean `G^T X` keeps its rows of `G` and `X` instead.)
        .filter(|&&i| !outer_means.iter().any(|o| o.inst == i))
        .map(|&i| {
            let off = layout.scratch_len;
            layout.scratch_len += CHUNK * f.insts()[i].shape.size();
            (i, off)
        })
        .collect();
    BatchPlan {
        outputs,
        layout,
        outer_means,
        products,
        kept,
        stage,
    }
}

/// The memory one call needs besides parameters, inputs and outputs: the
/// scratch buffer and the three pointer tables. Made by
/// [`super::JitFunction::scratch`] and reused across calls, so that a call
/// allocates nothing.
#[derive(Clone, Debug)]
pub struct Scratch {
    pub(super) data: Vec<f64>,
    /// The pointer tables, `params ++ inputs ++ outputs`, as exposed addresses
    /// (so that a `Scratch` is `Send`); filled before every call.
    pub(super) ptrs: Vec<usize>,
}

impl Scratch {
    pub(super) fn new(scratch_len: usize, ptr_count: usize) -> Scratch {
        Scratch {
            data: vec![0.0; scratch_len],
            ptrs: vec![0; ptr_count],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Output, Role, SliceAxis, Slot, Unary, Value};
    use crate::shape::Shape;
    use crate::span::Span;

    /// `x: [n]` input, then `ops` in a chain, each applied to the previous
    /// value; the last one is the loss.
    fn chain(n: usize, ops: Vec<Op>) -> (Function, Vec<Value>) {
        let sp = Span::default();
        let mut f = Function::new(
            vec![],
            vec![Slot {
                name: "x".into(),
                shape: Shape::vector(n),
            }],
        );
        let mut values = vec![f.push(Op::Input(0), vec![], sp)];
        for op in ops {
            let v = f.push(op, vec![*values.last().unwrap()], sp);
            values.push(v);
        }
        f.outputs.push(Output {
            role: Role::Loss,
            name: "loss".into(),
            value: *values.last().unwrap(),
        });
        (f, values)
    }

    #[test]
    fn slots_of_dead_values_are_reused() {
        let (f, v) = chain(3, vec![Op::Softmax, Op::Softmax, Op::Softmax, Op::Sum]);
        let l = layout(&f);
        assert_eq!(l.slots[v[0].index()], None);
        assert_eq!(l.slots[v[4].index()], None);
        // The first two softmaxes overlap in time; the third takes the
        // first's slot back.
        assert_eq!(l.slots[v[1].index()], Some(1));
        assert_eq!(l.slots[v[2].index()], Some(4));
        assert_eq!(l.slots[v[3].index()], Some(1));
        assert_eq!(l.scratch_len, 7);
    }

    #[test]
    fn a_view_keeps_its_argument_alive() {
        let whole = Op::Slice(vec![SliceAxis::Range(0, 4)]);
        let ops = vec![Op::Softmax, whole, Op::Softmax, Op::Sum];
        let (f, v) = chain(4, ops);
        let l = layout(&f);
        assert_eq!(l.steps.len(), 5);
        assert_eq!(l.slots[v[1].index()], Some(1));
        assert_eq!(l.slots[v[2].index()], None);
        assert_eq!(l.slots[v[3].index()], Some(5));
    }

    #[test]
    fn fused_runs_store_only_what_is_read_outside() {
        let (f, v) = chain(
            4,
            vec![Op::Unary(Unary::Exp), Op::Unary(Unary::Neg), Op::Sum],
        );
        let l = layout(&f);
        assert_eq!(l.steps, [vec![0], vec![1, 2, 3]]);
        assert!(l.internal[v[1].index()] && l.internal[v[2].index()]);
        assert_eq!(l.scratch_len, 1);
    }
}
