//! The plan of a batched function ([`BatchPlan`]): a short driver over the
//! steps of `example` (liveness, hoisting, stages, the memory budget),
//! [`super::layout`] (the slots) and `buffers` (chunk products, transposes,
//! weight gradients, kept rows).

use super::example::{self, Split};
use super::{buffers, layout};
use super::{BatchOutput, BatchPlan, Reduce, FIRST_FREE};
use crate::ir::{Function, Role, Value, ValueMap};

/// Plans the batched function of `f`: every loss, metric and gradient as a
/// mean, and the `Role::Output` values per example if `per_example` is set
/// (else they are not computed at all).
pub fn batch_plan(f: &Function, per_example: bool) -> BatchPlan {
    let outputs = batch_outputs(f, per_example);
    let results: Vec<Value> = outputs.iter().map(|o| f.outputs[o.index].value).collect();
    let split = example::hoist(f, example::live(f, &results));
    let stage = stages(f, &split, &results);
    let body = example::by_stage(&split.body, &stage);
    let mut layout = layout::schedule(f, &split.pre, &body, &results, FIRST_FREE);
    let products = buffers::chunk_products(f, &split, &stage, &mut layout);
    buffers::transposes(f, &split, &products, &mut layout);
    let outer_means = buffers::outer_means(f, &split, &outputs, &results, &mut layout);
    let kept = buffers::kept(f, &split, &results, &stage, &outer_means, &mut layout);
    layout::plan_bodies(f, &mut layout);
    BatchPlan {
        outputs,
        layout,
        outer_means,
        products,
        kept,
        stage,
    }
}

/// The buffers of the batched function: every loss, metric and gradient as
/// a mean, and every `Role::Output` per example if `per_example` is set.
fn batch_outputs(f: &Function, per_example: bool) -> Vec<BatchOutput> {
    f.outputs
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
        .collect()
}

/// The stage of every value: [`example::stages`] if they fit (see
/// [`example::stages_fit`]), else all in one.
fn stages(f: &Function, split: &Split, results: &[Value]) -> ValueMap<usize> {
    let stage = example::stages(f, split);
    if example::stages_fit(f, split, results, &stage) {
        stage
    } else {
        ValueMap::new(f, 0)
    }
}
