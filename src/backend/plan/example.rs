//! What each example of a batched function computes: the instructions the
//! written outputs need (liveness), those that do not depend on the example
//! (hoisted out of the loop over the examples), and the stages of the
//! others, if what a stage keeps per example fits the memory budget.
//!
//! What depends on the example by itself is decided by exhaustive matches
//! ([`per_example`], [`crate::ir::fault::can_fail`]). Elsewhere an operation is named
//! only where that one operation matters (`input`, `matmul`): any other
//! operation, a new one too, is an ordinary computation of its arguments,
//! which is always correct.

use super::{can_fail_at, CHUNK, MAX_KEPT, UNROLL};
use crate::ir::fault::safe_rows;
use crate::ir::{Function, Op, Value, ValueMap};
use crate::passes::dce;

/// The instructions of a batched function, split by whether they depend on
/// the example.
pub(super) struct Split {
    /// The instructions that run (see [`live`]).
    pub live: ValueMap<bool>,
    /// Whether a value depends on the example.
    pub varies: ValueMap<bool>,
    /// The live instructions that do not depend on the example, in order:
    /// they run once per call.
    pub pre: Vec<Value>,
    /// The others, in order: they run once per example.
    pub body: Vec<Value>,
}

/// The instructions that run: what the `results` need, and every
/// instruction that [`can_fail_at`] with what it needs, so that a bad class
/// fails the example at the same instruction as in the interpreter.
pub(super) fn live(f: &Function, results: &[Value]) -> ValueMap<bool> {
    let failing = f.values().filter(|&v| can_fail_at(f, v));
    dce::live(f, results.iter().copied().chain(failing))
}

/// Whether `op` depends on the example by itself, not only through its
/// arguments: an input, and a `one_hot`, which can fail and so must fail
/// per example (a gather at constant indices in range cannot, and does
/// not). Every operation is listed, so that a new one is decided
/// here.
fn per_example(op: &Op) -> bool {
    match op {
        Op::Input(_)
        | Op::OneHot(_)
        | Op::Index
        | Op::IndexAdd
        | Op::IndexSet
        | Op::Gather
        | Op::ScatterAdd
        | Op::Loop(_) => true,
        Op::Param(_)
        | Op::Const(_)
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Select
        | Op::MatMul
        | Op::Outer
        | Op::Transpose
        | Op::Sum
        | Op::ReduceMax
        | Op::Norm
        | Op::LogSumExp
        | Op::ReduceAxes(..)
        | Op::BroadcastAxes(..)
        | Op::Softmax(_)
        | Op::LogSoftmax(_)
        | Op::ArgMax(_)
        | Op::Window(_)
        | Op::Broadcast(_)
        | Op::Slice(_)
        | Op::Unslice(..)
        | Op::Reshape(_)
        | Op::Permute(_)
        | Op::Concat
        | Op::Pack => false,
    }
}

/// Splits the `live` instructions by whether they depend on the example:
/// what does by itself ([`per_example`]), and whatever reads a value that
/// does.
pub(super) fn hoist(f: &Function, live: ValueMap<bool>) -> Split {
    let mut varies = ValueMap::new(f, false);
    let (mut pre, mut body) = (Vec::new(), Vec::new());
    for (v, inst) in f.iter().filter(|&(v, _)| live[v]) {
        let own = per_example(&inst.op) && !safe_rows(f, inst);
        varies[v] = own || inst.args.iter().any(|&a| varies[a]);
        if varies[v] {
            body.push(v);
        } else {
            pre.push(v);
        }
    }
    Split {
        live,
        varies,
        pre,
        body,
    }
}

/// If `v` is a product worth computing for a chunk of examples at once,
/// its vector: `W @ x` or `x @ W` of a matrix `W` fixed over the
/// batch, with two rows or more and a loop over each (longer than
/// [`UNROLL`]). (Only a `matmul` is a product: the safe answer for any
/// other operation.)
pub(super) fn chunk_vector(f: &Function, varies: &ValueMap<bool>, v: Value) -> Option<Value> {
    let inst = f.inst(v);
    if !matches!(inst.op, Op::MatMul) {
        return None;
    }
    let (a, b) = (inst.args[0], inst.args[1]);
    match (f.shape(a).dims(), f.shape(b).dims()) {
        ([m, k], [_]) if *m >= 2 && *k > UNROLL && !varies[a] => Some(b),
        ([k], [_, m]) if *m >= 2 && *k > UNROLL && !varies[b] => Some(a),
        _ => None,
    }
}

/// The stage of every value of the body (0 for the others): a chunk
/// product of a vector computed per example (not an input) starts a stage
/// after its vector's, so that it is computed for the chunk at once; every
/// other instruction runs in the latest stage of its arguments. (An input is
/// named: it is read again in any stage.)
pub(super) fn stages(f: &Function, split: &Split) -> ValueMap<usize> {
    let mut stage = ValueMap::new(f, 0);
    for &v in &split.body {
        stage[v] = match chunk_vector(f, &split.varies, v) {
            Some(x) if !matches!(f.inst(x).op, Op::Input(_)) => stage[x] + 1,
            _ => f.inst(v).args.iter().map(|&a| stage[a]).max().unwrap_or(0),
        };
    }
    stage
}

/// The values a later stage (or the end of the example) reads, to be kept
/// per example of the chunk. Inputs are read again instead (an input is
/// named; any other operation is kept, which is always correct).
pub(super) fn crossing(
    f: &Function,
    split: &Split,
    results: &[Value],
    stage: &ValueMap<usize>,
) -> ValueMap<bool> {
    let (body, varies) = (&split.body, &split.varies);
    let last = body.iter().map(|&v| stage[v]).max().unwrap_or(0);
    let mut crosses = ValueMap::new(f, false);
    for &v in body {
        for &a in &f.inst(v).args {
            crosses[a] |= varies[a] && stage[a] < stage[v];
        }
    }
    for &v in results {
        crosses[v] |= varies[v] && stage[v] < last;
    }
    for &v in body {
        crosses[v] &= !matches!(f.inst(v).op, Op::Input(_));
    }
    crosses
}

/// Whether the body may run in these stages: what they keep per example
/// for a chunk fits in [`MAX_KEPT`] numbers, and every instruction that
/// [`can_fail_at`] is in the first stage, so that the first example to fail is
/// the interpreter's.
pub(super) fn stages_fit(
    f: &Function,
    split: &Split,
    results: &[Value],
    stage: &ValueMap<usize>,
) -> bool {
    let body = &split.body;
    let crosses = crossing(f, split, results, stage);
    let kept_size: usize = body
        .iter()
        .filter(|&&v| crosses[v])
        .map(|&v| f.shape(v).size())
        .sum();
    kept_size.saturating_mul(CHUNK) <= MAX_KEPT
        && body.iter().all(|&v| !can_fail_at(f, v) || stage[v] == 0)
}

/// The instructions of the body, stage by stage, each in order (one empty
/// stage for an empty body).
pub(super) fn by_stage(body: &[Value], stage: &ValueMap<usize>) -> Vec<Vec<Value>> {
    let count = body.iter().map(|&v| stage[v] + 1).max().unwrap_or(1);
    let mut stages = vec![Vec::new(); count];
    for &v in body {
        stages[stage[v]].push(v);
    }
    stages
}
