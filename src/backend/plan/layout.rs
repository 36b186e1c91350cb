//! The scratch layout: the steps of a function in execution order, and the
//! slot of every value in the scratch buffer, slots of dead values reused.

use std::collections::HashMap;

use super::{fuse, views};
use super::{BodyPlan, Layout, FIRST_FREE};
use crate::ir::{Function, Op, Value, ValueMap};

/// Whether `v` needs a scratch slot: it is computed (not a parameter, input
/// or constant) and not a scalar. (Every other operation, a new one too, is
/// computed: a slot is the safe answer.)
pub fn needs_slot(f: &Function, v: Value) -> bool {
    let inst = f.inst(v);
    let computed = !matches!(inst.op, Op::Param(_) | Op::Input(_) | Op::Const(_));
    computed && !inst.shape.is_scalar()
}

/// The layout of a function of one example: every instruction, in order,
/// and every output read at the end.
pub fn layout(f: &Function) -> Layout {
    let mut layout = layout_from(f, FIRST_FREE);
    plan_bodies(f, &mut layout);
    layout
}

/// The layout of `f` with its slots from offset `first` on.
fn layout_from(f: &Function, first: usize) -> Layout {
    let all: Vec<Value> = f.values().collect();
    let results: Vec<Value> = f.outputs.iter().map(|o| o.value).collect();
    schedule(f, &all, &[], &results, first)
}

/// Plans the body of every loop among the steps of `layout`, and of the
/// loops inside those: each in the region of the scratch buffer after the
/// slots of `layout` (which grows to hold the largest), followed by the
/// buffer of its new carried values.
pub fn plan_bodies(f: &Function, layout: &mut Layout) {
    let base = layout.scratch_len;
    let mut end = base;
    let loops: Vec<Value> = layout
        .steps
        .iter()
        .flatten()
        .copied()
        .filter(|&v| matches!(f.inst(v).op, Op::Loop(_)))
        .collect();
    for v in loops {
        let Op::Loop(l) = &f.inst(v).op else {
            continue;
        };
        let mut body = layout_from(&l.body, base);
        plan_bodies(&l.body, &mut body);
        let next = body.scratch_len;
        let carried: usize = l.body.params[..l.carries]
            .iter()
            .map(|s| s.shape.size())
            .sum();
        end = end.max(next + carried);
        layout.bodies.push((v, BodyPlan { layout: body, next }));
    }
    layout.scratch_len = end;
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
pub fn schedule(
    f: &Function,
    pre: &[Value],
    body: &[Vec<Value>],
    results: &[Value],
    first: usize,
) -> Layout {
    let (steps, body_start, stages) = fused_steps(f, pre, body);
    let memory = Memory::of(f, &steps);
    let uses = Uses::of(f, &steps, &memory, body_start, results);
    let internal = internal(f, &steps, &memory, &uses);
    let (slots, scratch_len) = assign_slots(f, &steps, &memory, &uses, &internal, first);
    Layout {
        steps,
        body: body_start,
        slots,
        internal,
        carried: super::only_carried(f),
        scratch_len,
        transposed: Vec::new(),
        stages,
        bodies: Vec::new(),
    }
}

/// The steps of `pre` and of every stage of `body`, in order, with the
/// first step of the body and of every stage.
fn fused_steps(
    f: &Function,
    pre: &[Value],
    body: &[Vec<Value>],
) -> (Vec<Vec<Value>>, usize, Vec<usize>) {
    let mut steps = fuse::steps(f, pre);
    let body_start = steps.len();
    let mut stages = Vec::new();
    for stage in body {
        stages.push(steps.len());
        steps.extend(fuse::steps(f, stage));
    }
    (steps, body_start, stages)
}

/// Where each value is computed, and whose memory it is.
struct Memory {
    /// The step of every value, if it is in one.
    step_of: ValueMap<Option<usize>>,
    /// The value whose memory a value is: a view's is its argument's.
    root: ValueMap<Value>,
    /// Whether the value is a view.
    view: ValueMap<bool>,
}

impl Memory {
    /// The steps and roots of `f`'s values in `steps`.
    fn of(f: &Function, steps: &[Vec<Value>]) -> Memory {
        let mut step_of = ValueMap::new(f, None);
        let mut root = ValueMap::from_fn(f, |v| v);
        let mut view = ValueMap::new(f, false);
        for (s, step) in steps.iter().enumerate() {
            for &v in step {
                step_of[v] = Some(s);
                if views::is_view(f, v) {
                    view[v] = true;
                    root[v] = root[f.inst(v).args[0]];
                }
            }
        }
        Memory {
            step_of,
            root,
            view,
        }
    }
}

/// Who reads each value, and until when.
struct Uses {
    /// The last step that reads the memory of a root (`steps.len()`: the
    /// end), if any does.
    last_use: ValueMap<Option<usize>>,
    /// Whether a value is read outside its step (or is a result).
    read_outside_its_step: ValueMap<bool>,
}

impl Uses {
    /// The uses of every value in `steps`, the body's reads of `pre`'s values
    /// and the `results` lasting to the end.
    fn of(
        f: &Function,
        steps: &[Vec<Value>],
        memory: &Memory,
        body_start: usize,
        results: &[Value],
    ) -> Uses {
        let end = steps.len();
        let (step_of, root) = (&memory.step_of, &memory.root);
        let mut last_use = ValueMap::new(f, None);
        let mut read_outside_its_step = ValueMap::new(f, false);
        for (s, step) in steps.iter().enumerate() {
            for &v in step {
                for &a in &f.inst(v).args {
                    read_outside_its_step[a] |= step_of[a] != Some(s);
                    let r = root[a];
                    let in_pre = step_of[r].is_some_and(|t| t < body_start);
                    let at = if s >= body_start && in_pre { end } else { s };
                    last_use[r] = last_use[r].max(Some(at));
                }
            }
        }
        for &v in results {
            read_outside_its_step[v] = true;
            last_use[root[v]] = Some(end);
        }
        Uses {
            last_use,
            read_outside_its_step,
        }
    }
}

/// The numbers of `v`'s slot: its size, but for a product joined to the
/// run of `step`, one block of its columns (see [`super::products::product_block`]).
fn slot_size(f: &Function, v: Value, step: &[Value]) -> usize {
    let shape = f.shape(v);
    let joined = step.len() > 1 && super::products::summed_product(f, step).is_none();
    match (shape.dims(), joined && f.inst(v).op == Op::MatMul) {
        (&[m, n], true) => m * super::products::product_block(m, n),
        _ => shape.size(),
    }
}

/// The members of fused runs that nothing outside their run reads.
fn internal(f: &Function, steps: &[Vec<Value>], memory: &Memory, uses: &Uses) -> ValueMap<bool> {
    ValueMap::from_fn(f, |v| {
        memory.step_of[v].is_some_and(|s| steps[s].len() > 1)
            && !uses.read_outside_its_step[v]
            && (fuse::per_element(f, v) || fuse::lead(f, v).is_some())
    })
}

/// The slot of every value that needs one, in step order from `first` on,
/// and the length of the buffer: a step's results take free slots of their
/// size (or new ones), then the values that die at the step free theirs.
fn assign_slots(
    f: &Function,
    steps: &[Vec<Value>],
    memory: &Memory,
    uses: &Uses,
    internal: &ValueMap<bool>,
    first: usize,
) -> (ValueMap<Option<usize>>, usize) {
    let (root, last_use) = (&memory.root, &uses.last_use);
    let mut slots = ValueMap::new(f, None);
    // The size of each slot taken, under which it is given back.
    let mut sizes = ValueMap::new(f, 0);
    let mut free: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut len = first;
    for (s, step) in steps.iter().enumerate() {
        for &v in step {
            if needs_slot(f, v) && !memory.view[v] && !internal[v] {
                let size = slot_size(f, v, step);
                sizes[v] = size;
                let off = match free.get_mut(&size).and_then(Vec::pop) {
                    Some(off) => off,
                    None => {
                        len += size;
                        len - size
                    }
                };
                slots[v] = Some(off);
            }
        }
        let args = step.iter().flat_map(|&v| &f.inst(v).args);
        let mut dying: Vec<Value> = args
            .map(|&a| root[a])
            .filter(|&r| last_use[r] == Some(s))
            .collect();
        // What nothing reads gives its slot back at once.
        dying.extend(step.iter().copied().filter(|&v| last_use[v].is_none()));
        dying.sort_unstable();
        dying.dedup();
        for v in dying {
            if let Some(off) = slots[v] {
                free.entry(sizes[v]).or_default().push(off);
            }
        }
    }
    (slots, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Output, Role, SliceAxis, Slot, Unary};
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
        let (f, v) = chain(
            3,
            vec![Op::Softmax(0), Op::Softmax(0), Op::Softmax(0), Op::Sum],
        );
        let l = layout(&f);
        assert_eq!(l.slots[v[0]], None);
        assert_eq!(l.slots[v[4]], None);
        // The first two softmaxes overlap in time; the third takes the
        // first's slot back.
        let first = FIRST_FREE;
        assert_eq!(l.slots[v[1]], Some(first));
        assert_eq!(l.slots[v[2]], Some(first + 3));
        assert_eq!(l.slots[v[3]], Some(first));
        assert_eq!(l.scratch_len, first + 6);
    }

    #[test]
    fn a_view_keeps_its_argument_alive() {
        let whole = Op::Slice(vec![SliceAxis::Range(0, 4)]);
        let ops = vec![Op::Softmax(0), whole, Op::Softmax(0), Op::Sum];
        let (f, v) = chain(4, ops);
        let l = layout(&f);
        assert_eq!(l.steps.len(), 5);
        assert_eq!(l.slots[v[1]], Some(FIRST_FREE));
        assert_eq!(l.slots[v[2]], None);
        assert_eq!(l.slots[v[3]], Some(FIRST_FREE + 4));
    }

    #[test]
    fn fused_runs_store_only_what_is_read_outside() {
        let (f, v) = chain(
            4,
            vec![Op::Unary(Unary::Exp), Op::Unary(Unary::Neg), Op::Sum],
        );
        let l = layout(&f);
        assert_eq!(l.steps, [vec![v[0]], vec![v[1], v[2], v[3]]]);
        assert!(l.internal[v[1]] && l.internal[v[2]]);
        assert_eq!(l.scratch_len, FIRST_FREE);
    }
}
