//! The plan of a generated function, decided before any Cranelift IR is
//! built: in which order the instructions run (in fused steps, and in a
//! batched function before or inside the loop over the examples, in
//! stages), and where every value lives in the scratch buffer.
//!
//! This module holds what a plan is (its data types and the constants the
//! planning and the translation share); its children make one:
//!
//! - [`views`]: the values that are their argument's memory at an offset.
//! - [`fuse`]: the steps, elementwise runs fused into one loop.
//! - [`recompute`]: large forward values computed again by the backward
//!   pass instead of stored (the one child that changes the function: the
//!   compiled function is made from it before the steps).
//! - [`layout`]: the scratch slots of the values, from their liveness; the
//!   layout of a function of one example.
//! - `example`: for a batched function, what each example computes
//!   (liveness, hoisting, stages, the memory budget of the stages).
//! - `buffers`: the scratch buffers a batched function adds to its layout
//!   (transposes, the rows of chunk products and of weight gradients, the
//!   values kept between stages).
//! - [`batch`]: the driver of a batched function's plan, [`batch::batch_plan`].
//!
//! Each child uses only this module and the children listed before it.
//!
//! The scratch buffer holds [`Layout::scratch_len`] numbers: element
//! [`ERROR_SLOT`] first (and [`EXAMPLE_SLOT`] in a batched function), then
//! one slot per non-scalar intermediate value, the slots of dead values
//! reused (see [`layout::schedule`]), then a batched function's buffers.
//! Nothing here knows Cranelift: the translator (`translate`) reads a plan
//! and follows it.

pub mod batch;
mod buffers;
mod example;
pub mod fuse;
pub mod layout;
pub mod products;
pub mod recompute;
pub mod views;

use crate::ir::fault;
use crate::ir::{Function, Op, Value, ValueMap};

/// Loops of at most this many iterations are unrolled; a dot product longer
/// than this is worth computing in blocks, and a matrix-vector product of a
/// batched function over the chunk.
pub const UNROLL: usize = 4;

/// The fewest products (`m * n * k`) of a matrix-matrix product that the
/// kernel ([`crate::backend::kernel`]) computes instead of the generated
/// loops: below it, packing the operands costs more than it saves.
pub const KERNEL_WORK: usize = 1 << 12;

/// The numbers of a product of short dot products ([`UNROLL`] terms or
/// fewer) that the kernel computes rather than the generated code: from
/// 2^14 (its tiles of eight lanes against the generated code's two: `ht`'s
/// skinning, [66, 4] @ [4, 544], 19% faster in the primal and in each
/// column of the Jacobian; `gmm`'s forward product at d = 2, k = 25 and 50,
/// 6 to 12%) to below 2^17, the fewest a product joins its run at, and
/// above which it leaves the cache: at d = 2, k = 100 ([200, 2] @ [2,
/// 1000]) the kernel's tiles were 5 to 11% slower.
pub const SHORT_KERNEL: std::ops::Range<usize> = 1 << 14..1 << 17;

/// Whether the translator computes `v` by one call of the kernel: a
/// product of two matrices whose dot products are loops (longer than
/// [`UNROLL`]), of [`KERNEL_WORK`] products or more, or whose numbers are
/// in [`SHORT_KERNEL`].
pub fn kernel_product(f: &Function, v: Value) -> bool {
    let inst = f.inst(v);
    if inst.op != crate::ir::Op::MatMul {
        return false;
    }
    match (f.shape(inst.args[0]).dims(), f.shape(inst.args[1]).dims()) {
        (&[m, k], &[_, n]) => {
            (k > UNROLL || SHORT_KERNEL.contains(&(m * n))) && m * n * k >= KERNEL_WORK
        }
        _ => false,
    }
}

/// Whether a loop that starts a carried value as `v` writes `v` in its
/// place in the loop's value, instead of copying it there: `v` is a
/// `broadcast` of a constant number, or an `unslice` of one (zeros around
/// it), of more than one element. (A constant is there wherever the loop
/// runs: a number computed per example, in a batched function's stage
/// before the loop's, would not be.)
pub fn made_in_place(f: &Function, v: Value) -> bool {
    let inst = f.inst(v);
    let constant = inst
        .args
        .first()
        .is_some_and(|&a| f.shape(a).size() == 1 && matches!(f.inst(a).op, Op::Const(_)));
    matches!(inst.op, Op::Broadcast(_) | Op::Unslice(..)) && constant && !inst.shape.is_scalar()
}

/// The values that are only ever a carried value's start, made in place
/// by the loops that carry them ([`made_in_place`]): no other instruction
/// reads one, no loop captures it, and it is not an output. The step of
/// such a value writes nothing.
pub fn only_carried(f: &Function) -> ValueMap<bool> {
    let mut only = ValueMap::from_fn(f, |v| made_in_place(f, v));
    for (_, inst) in f.iter() {
        let carried = match &inst.op {
            Op::Loop(l) => l.carries,
            _ => 0,
        };
        for &a in &inst.args[carried..] {
            only[a] = false;
        }
    }
    for o in &f.outputs {
        only[o.value] = false;
    }
    only
}

/// How many examples' rows a chunk product or an [`OuterMean`] keeps before
/// it multiplies them out: a batch of more examples is done in chunks of
/// this many.
pub const CHUNK: usize = 256;

/// The most numbers the values kept per example between stages may take
/// (32 MB); a program that would keep more runs in one stage.
pub const MAX_KEPT: usize = 1 << 22;

/// Where a failing `one_hot` leaves its class, in the scratch buffer.
pub const ERROR_SLOT: usize = 0;

/// Where a failing `one_hot` of a batched function leaves the index of the
/// example, in the scratch buffer.
pub const EXAMPLE_SLOT: usize = 1;

/// Where an instruction that fails inside a loop's body leaves what failed
/// (the status names the loop of the function, see [`crate::backend::abi`]):
/// the kind of fault ([`FAULT_CLASS`] or [`FAULT_INDEX`]), the class count
/// or the axis length, and the instruction's span in the source.
pub const FAULT_KIND_SLOT: usize = 2;
pub const FAULT_LEN_SLOT: usize = 3;
pub const FAULT_LO_SLOT: usize = 4;
pub const FAULT_HI_SLOT: usize = 5;

/// The kinds of fault in [`FAULT_KIND_SLOT`].
pub const FAULT_CLASS: f64 = 1.0;
pub const FAULT_INDEX: f64 = 2.0;

/// The first slot of the scratch buffer free for values.
pub const FIRST_FREE: usize = 6;

/// Whether instruction `v` of `f` can fail at run time
/// ([`fault::can_fail_at`]).
pub fn can_fail_at(f: &Function, v: Value) -> bool {
    fault::can_fail_at(f, f.inst(v))
}

/// How the instructions run and where every value lives, decided before
/// translation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The instructions in execution order, in steps: one instruction, or a
    /// fused run of them (see [`fuse`]). In a batched function the
    /// steps before [`Self::body`] run once per call, the others once per
    /// example.
    pub steps: Vec<Vec<Value>>,
    /// The first step of the loop over the examples (`steps.len()` in a
    /// function of one example).
    pub body: usize,
    /// For every value, its offset in the scratch buffer (in f64s), if it is
    /// computed, not a scalar, not a view and not internal to a run.
    pub slots: ValueMap<Option<usize>>,
    /// The members of fused runs that nothing outside their run reads: they
    /// only ever live in registers, one element at a time.
    pub internal: ValueMap<bool>,
    /// The values only loops carry, which they make in place
    /// ([`only_carried`]): each is a step of its own that writes nothing.
    pub carried: ValueMap<bool>,
    /// The length of the scratch buffer, in f64s.
    pub scratch_len: usize,
    /// In a batched function: the matrices `W` (values) fixed over the
    /// batch that a matrix-vector `W @ x` in the loop over the examples
    /// reads, each with the offset in the scratch buffer of its transpose,
    /// which the function makes once per call, before the loop. Empty in a
    /// function of one example.
    pub transposed: Vec<(Value, usize)>,
    /// In a batched function: the first step of every stage of the body
    /// (the first is [`Self::body`]). Each stage runs for all the examples
    /// of a chunk before the next one starts. Empty in a function of one
    /// example.
    pub stages: Vec<usize>,
    /// The plan of the body of every loop instruction among the steps.
    pub bodies: Vec<(Value, BodyPlan)>,
}

/// The plan of a loop's body: a function of its own, whose slots are in a
/// region of the scratch buffer after those of the function around it
/// (bodies of different loops share that region: they never run at the
/// same time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyPlan {
    pub layout: Layout,
    /// Where a step's new carried values are gathered before they replace
    /// the old ones (which the step may still read).
    pub next: usize,
}

impl Layout {
    /// The plan of the body of loop `v`.
    pub fn body_of(&self, v: Value) -> Option<&BodyPlan> {
        self.bodies.iter().find(|(w, _)| *w == v).map(|(_, b)| b)
    }

    /// Where the transpose of `w` is, if it is made.
    pub fn transposed_of(&self, w: Value) -> Option<usize> {
        self.transposed
            .iter()
            .find(|&&(v, _)| v == w)
            .map(|&(_, off)| off)
    }
}

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
    pub kept: Vec<(Value, usize)>,
    /// The stage of every value of the body (0 for the others).
    pub stage: ValueMap<usize>,
}

impl BatchPlan {
    /// The mean `G^T X` whose `outer` is `v`, if there is one.
    pub fn outer_mean_of(&self, v: Value) -> Option<&OuterMean> {
        self.outer_means.iter().find(|o| o.inst == v)
    }

    /// The chunk product that `v` is, if it is one.
    pub fn product_of(&self, v: Value) -> Option<&ChunkProduct> {
        self.products.iter().find(|o| o.inst == v)
    }

    /// Where the rows of `v` are kept, if they are.
    pub fn kept_of(&self, v: Value) -> Option<usize> {
        self.kept
            .iter()
            .find(|&&(k, _)| k == v)
            .map(|&(_, off)| off)
    }
}

/// A product `W @ x` in the loop over the examples where `W` (`[m, k]`) is
/// fixed over the batch and `x` is an input or a value of an earlier stage
/// (kept per example): before its stage runs for the examples of a chunk,
/// the chunk's rows of `X W^T` are computed at once into `Y` (`[CHUNK, m]`,
/// in the scratch buffer) by the kernel ([`crate::backend::kernel`]), which
/// reads `W` through its strides; the instruction then
/// copies row `r` of `Y` (the example's row in its chunk). Each element is
/// the same dot product, summed from -0 in the same order over `k`, as the
/// example's own `W @ x`. A product `x @ W` (`W` is `[k, m]`) likewise, as
/// `X W`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChunkProduct {
    /// The `matmul` instruction.
    pub inst: Value,
    /// Its stage.
    pub stage: usize,
    /// The offset of `Y` in the scratch buffer.
    pub y: usize,
}

/// A mean of `outer(g, x)` over the batch, computed as `G^T X`: every
/// example copies `g` and `x` to row `r` of `G` (`[CHUNK, m]`) and of `X`
/// (`[CHUNK, k]`), `r` counting the examples of the current chunk (an input
/// is not copied: its rows are read in the inputs' buffer); after the last
/// example of a chunk, each element of the output buffer adds
/// `G[r, i] * X[r, j]` for `r` in order (one call of the kernel, from -0 on
/// the first chunk, resuming the buffer's sums on the others). That is the
/// sum of the examples' products in example order from -0, the same bits
/// as adding each example's `outer`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OuterMean {
    /// The `outer` instruction.
    pub inst: Value,
    /// Its position in [`BatchPlan::outputs`].
    pub output: usize,
    /// The offsets of `G` and `X` in the scratch buffer (unused for an
    /// input).
    pub g: usize,
    pub x: usize,
}
