//! The scratch buffers a batched function needs besides its values' slots,
//! each appended to the layout in this order (slots of their own, never
//! reused): the rows `Y` of the chunk products, the transposes of the
//! matrices that the other `W @ x` read, the rows `G` and `X` of the weight
//! gradients computed as `G^T X`, and the rows of the values kept between
//! stages.
//!
//! Operations are named here only where that one operation matters
//! (`input`, `matmul`, `outer`); any other operation, a new one too, gets no
//! buffer, which is always correct.

use super::example::{chunk_vector, crossing, Split};
use super::{BatchOutput, ChunkProduct, Layout, OuterMean, Reduce, CHUNK, UNROLL};
use crate::backend::kernel;
use crate::ir::{Function, Op, Value, ValueMap};

/// Takes `size` numbers at the end of the scratch buffer.
fn take(layout: &mut Layout, size: usize) -> usize {
    let off = layout.scratch_len;
    layout.scratch_len += size;
    off
}

/// `W @ x` per example, `W` fixed over the batch, with two rows or more and
/// a loop over each: `W`'s transpose, made once per call, before the loop.
/// For a chunk product, only a small `W`'s (at most
/// [`kernel::DIRECT_MAX_B`] elements): the kernel then reads `W^T`'s rows
/// in place instead of packing `W` through its strides at every chunk
/// (a large `W` is packed anyway, and its transpose would only add a
/// copy). (Only a `matmul` is looked at: no buffer is the safe answer for
/// any other operation.)
pub(super) fn transposes(
    f: &Function,
    split: &Split,
    products: &[ChunkProduct],
    layout: &mut Layout,
) {
    for &v in &split.body {
        let inst = f.inst(v);
        if !matches!(inst.op, Op::MatMul) {
            continue;
        }
        let chunked = products.iter().any(|o| o.inst == v);
        let (w, x) = (inst.args[0], inst.args[1]);
        let (ws, xs) = (f.shape(w), f.shape(x));
        // Worth it with two rows or more, and a loop over each.
        let worth = match (ws.dims(), xs.dims()) {
            ([_, _], [_]) if chunked => ws.size() <= kernel::DIRECT_MAX_B,
            ([m, k], [_]) => *m >= 2 && *k > UNROLL,
            _ => false,
        };
        if worth && !split.varies[w] && layout.transposed_of(w).is_none() {
            let off = take(layout, ws.size());
            layout.transposed.push((w, off));
        }
    }
}

/// The means of an `outer(g, x)` computed per example that nothing else
/// reads and no other output is (a weight's gradient), each with its rows
/// `G` and `X` (none for an input, whose rows are in the inputs' buffer). (Only an `outer` is looked at: a mean added to example by
/// example is the safe answer for any other operation.)
pub(super) fn outer_means(
    f: &Function,
    split: &Split,
    outputs: &[BatchOutput],
    results: &[Value],
    layout: &mut Layout,
) -> Vec<OuterMean> {
    let mut read = ValueMap::new(f, false);
    for (_, inst) in f.iter().filter(|&(v, _)| split.live[v]) {
        for &a in &inst.args {
            read[a] = true;
        }
    }
    results
        .iter()
        .enumerate()
        .filter(|&(k, &v)| {
            outputs[k].reduce == Reduce::Mean
                && matches!(f.inst(v).op, Op::Outer)
                && split.varies[v]
                && !read[v]
                && results.iter().filter(|&&r| r == v).count() == 1
        })
        .map(|(k, &v)| {
            let args = &f.inst(v).args;
            // An input's rows are read in the inputs' buffer.
            let mut rows = |a: Value| match f.inst(a).op {
                Op::Input(_) => layout.scratch_len,
                _ => take(layout, CHUNK * f.shape(a).size()),
            };
            let (g, x) = (rows(args[0]), rows(args[1]));
            OuterMean {
                inst: v,
                output: k,
                g,
                x,
            }
        })
        .collect()
}

/// The products computed a chunk at a time, each with its rows `Y`: `x` an
/// input (in the first stage), or computed in an earlier stage. (An input
/// is named: it is read in place.)
pub(super) fn chunk_products(
    f: &Function,
    split: &Split,
    stage: &ValueMap<usize>,
    layout: &mut Layout,
) -> Vec<ChunkProduct> {
    let mut products = Vec::new();
    for &v in &split.body {
        let Some(x) = chunk_vector(f, &split.varies, v) else {
            continue;
        };
        let input = matches!(f.inst(x).op, Op::Input(_));
        if input || stage[x] < stage[v] {
            let y = take(layout, CHUNK * f.shape(v).size());
            products.push(ChunkProduct {
                inst: v,
                stage: stage[v],
                y,
            });
        }
    }
    products
}

/// The values a later stage (or the end of the example) reads, each with
/// its rows; a mean `G^T X` keeps its rows of `G` and `X` instead.
pub(super) fn kept(
    f: &Function,
    split: &Split,
    results: &[Value],
    stage: &ValueMap<usize>,
    outer_means: &[OuterMean],
    layout: &mut Layout,
) -> Vec<(Value, usize)> {
    let crosses = crossing(f, split, results, stage);
    split
        .body
        .iter()
        .filter(|&&v| crosses[v])
        .filter(|&&v| !outer_means.iter().any(|o| o.inst == v))
        .map(|&v| (v, take(layout, CHUNK * f.shape(v).size())))
        .collect()
}
