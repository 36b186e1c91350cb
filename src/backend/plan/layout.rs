//! The scratch layout: the steps of a function in execution order, and the
//! slot of every value in the scratch buffer, slots of dead values reused.

use std::collections::HashMap;

use super::fuse;
use super::{Layout, ERROR_SLOT};
use crate::ir::{Function, Op};

/// Whether the value of `f`'s i-th instruction needs a scratch slot: it is
/// computed (not a parameter, input or constant) and not a scalar. (Every
/// other operation, a new one too, is computed: a slot is the safe answer.)
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
    schedule(f, &all, &[], &results, ERROR_SLOT + 1)
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
    pre: &[usize],
    body: &[Vec<usize>],
    results: &[usize],
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
        scratch_len,
        transposed: Vec::new(),
        stages,
    }
}

/// The steps of `pre` and of every stage of `body`, in order, with the
/// first step of the body and of every stage.
fn fused_steps(
    f: &Function,
    pre: &[usize],
    body: &[Vec<usize>],
) -> (Vec<Vec<usize>>, usize, Vec<usize>) {
    let mut steps = fuse::steps(f, pre);
    let body_start = steps.len();
    let mut stages = Vec::new();
    for stage in body {
        stages.push(steps.len());
        steps.extend(fuse::steps(f, stage));
    }
    (steps, body_start, stages)
}

/// Where each instruction runs, and whose memory its value is.
struct Memory {
    /// The step of every instruction (`usize::MAX` if it is in none).
    step_of: Vec<usize>,
    /// The instruction whose memory a value is: a view's is its argument's.
    root: Vec<usize>,
    /// Whether the instruction is a view.
    view: Vec<bool>,
}

impl Memory {
    /// The steps and roots of `f`'s instructions in `steps`.
    fn of(f: &Function, steps: &[Vec<usize>]) -> Memory {
        let n = f.insts().len();
        let mut step_of = vec![usize::MAX; n];
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
    last_use: Vec<Option<usize>>,
    /// Whether a value is read outside its step (or is a result).
    read_outside_its_step: Vec<bool>,
}

impl Uses {
    /// The uses of every value in `steps`, the body's reads of `pre`'s values
    /// and the `results` lasting to the end.
    fn of(
        f: &Function,
        steps: &[Vec<usize>],
        memory: &Memory,
        body_start: usize,
        results: &[usize],
    ) -> Uses {
        let n = f.insts().len();
        let end = steps.len();
        let (step_of, root) = (&memory.step_of, &memory.root);
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
        Uses {
            last_use,
            read_outside_its_step,
        }
    }
}

/// The members of fused runs that nothing outside their run reads.
fn internal(f: &Function, steps: &[Vec<usize>], memory: &Memory, uses: &Uses) -> Vec<bool> {
    let step_of = &memory.step_of;
    (0..f.insts().len())
        .map(|i| {
            step_of[i] != usize::MAX
                && steps[step_of[i]].len() > 1
                && !uses.read_outside_its_step[i]
                && fuse::elementwise(f, i)
        })
        .collect()
}

/// The slot of every value that needs one, in step order from `first` on,
/// and the length of the buffer: a step's results take free slots of their
/// size (or new ones), then the values that die at the step free theirs.
fn assign_slots(
    f: &Function,
    steps: &[Vec<usize>],
    memory: &Memory,
    uses: &Uses,
    internal: &[bool],
    first: usize,
) -> (Vec<Option<usize>>, usize) {
    let (root, last_use) = (&memory.root, &uses.last_use);
    let mut slots = vec![None; f.insts().len()];
    let mut free: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut len = first;
    for (s, step) in steps.iter().enumerate() {
        for &i in step {
            if needs_slot(f, i) && !memory.view[i] && !internal[i] {
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
    (slots, len)
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
