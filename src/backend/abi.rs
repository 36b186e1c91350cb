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

use crate::ir::{Function, Op};

/// The signature of the generated function.
pub type EntryFn = unsafe extern "C" fn(
    params: *const *const f64,
    inputs: *const *const f64,
    outputs: *const *mut f64,
    scratch: *mut f64,
) -> i64;

/// Where a failing `one_hot` leaves its class, in the scratch buffer.
pub const ERROR_SLOT: usize = 0;

/// Where every value lives, decided before translation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// For every instruction, its offset in the scratch buffer (in f64s), if it
    /// is a computed value that is not a scalar.
    pub slots: Vec<Option<usize>>,
    /// The length of the scratch buffer, in f64s.
    pub scratch_len: usize,
}

/// Whether the value of `f`'s i-th instruction needs a scratch slot: it is
/// computed (not a parameter, input or constant) and not a scalar.
pub fn needs_slot(f: &Function, i: usize) -> bool {
    let inst = &f.insts[i];
    let computed = !matches!(inst.op, Op::Param(_) | Op::Input(_) | Op::Const(_));
    computed && !inst.shape.is_scalar()
}

/// Assigns scratch slots. The program is straight-line, so a value is live
/// from its instruction to its last use (to the end if it is an output). A
/// slot is taken before the arguments that die at that instruction give
/// theirs back, so a result never shares memory with its own arguments; freed
/// slots are reused by later values of the same size.
pub fn layout(f: &Function) -> Layout {
    let n = f.insts.len();
    let mut last_use: Vec<Option<usize>> = vec![None; n];
    for (i, inst) in f.insts.iter().enumerate() {
        for a in &inst.args {
            last_use[a.index()] = Some(i);
        }
    }
    for o in &f.outputs {
        last_use[o.value.index()] = Some(n);
    }
    let mut slots = vec![None; n];
    let mut free: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut end = ERROR_SLOT + 1;
    let release = |slots: &[Option<usize>], free: &mut HashMap<usize, Vec<usize>>, v: usize| {
        if let Some(off) = slots[v] {
            free.entry(f.insts[v].shape.size()).or_default().push(off);
        }
    };
    for i in 0..n {
        if needs_slot(f, i) {
            let size = f.insts[i].shape.size();
            let off = match free.get_mut(&size).and_then(Vec::pop) {
                Some(off) => off,
                None => {
                    end += size;
                    end - size
                }
            };
            slots[i] = Some(off);
        }
        let mut dying: Vec<usize> = f.insts[i]
            .args
            .iter()
            .map(|a| a.index())
            .filter(|&a| last_use[a] == Some(i))
            .collect();
        dying.sort_unstable();
        dying.dedup();
        for a in dying {
            release(&slots, &mut free, a);
        }
        if last_use[i].is_none() {
            release(&slots, &mut free, i);
        }
    }
    Layout {
        slots,
        scratch_len: end,
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
    use crate::ir::{Output, Role, Slot, Unary};
    use crate::shape::Shape;
    use crate::span::Span;

    #[test]
    fn slots_of_dead_values_are_reused() {
        let sp = Span::default();
        let mut f = Function::new(
            vec![],
            vec![Slot {
                name: "x".into(),
                shape: Shape::vector(3),
            }],
        );
        let x = f.push(Op::Input(0), vec![], sp);
        let a = f.push(Op::Unary(Unary::Exp), vec![x], sp);
        let b = f.push(Op::Unary(Unary::Neg), vec![a], sp);
        let c = f.push(Op::Unary(Unary::Abs), vec![b], sp);
        let s = f.push(Op::Sum, vec![c], sp);
        f.outputs.push(Output {
            role: Role::Loss,
            name: "loss".into(),
            value: s,
        });
        let l = layout(&f);
        assert_eq!(l.slots[x.index()], None);
        assert_eq!(l.slots[s.index()], None);
        // a and b overlap in time; c takes a's slot back.
        assert_eq!(l.slots[a.index()], Some(1));
        assert_eq!(l.slots[b.index()], Some(4));
        assert_eq!(l.slots[c.index()], Some(1));
        assert_eq!(l.scratch_len, 7);
    }
}
