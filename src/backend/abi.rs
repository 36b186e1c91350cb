//! The calling convention between Rust and the generated code: the
//! signatures of the entry points, the pointer tables and the scratch
//! buffer a call passes ([`Scratch`], bound by `Scratch::bind` for both
//! entry points), and what the returned status means.
//!
//! The generated function is
//!
//! ```text
//! extern "C" fn(params: *const *const f64, inputs: *const *const f64,
//!               outputs: *const *mut f64, scratch: *mut f64) -> i64
//! ```
//!
//! - `params[k]`, `inputs[k]` point to the row-major data of the k-th
//!   parameter and input (f64s; f32s for a batched function compiled for
//!   [`Dtype::F32`], whose elements in scratch are f32s too, after the f64
//!   fault slots), `outputs[k]` to the buffer of the k-th entry of
//!   `Function::outputs`; each holds exactly `shape.size()` numbers (checked on
//!   the Rust side before every call). Parameters and inputs are only read.
//! - `scratch` holds [`Layout::scratch_len`] numbers: the fault slots
//!   ([`ERROR_SLOT`] to [`super::plan::FIRST_FREE`]) first, then one slot per
//!   non-scalar intermediate value, then the regions of loop bodies (see
//!   [`super::plan`]).
//! - The result is 0 on success. `i + 1` means that instruction `%i` (the
//!   value whose [`Value::index`] is `i`) failed: a `one_hot` got a class, or
//!   an `index` or `index_add` an index, that is not an integer in range
//!   (then in `scratch[ERROR_SLOT]`), or, for a `loop`, an instruction of its
//!   body did (then the fault's kind, its class count or axis length and the
//!   failing instruction's span are in the fault slots too). The outputs are
//!   unspecified. `Scratch::status_result` decodes it into the
//!   interpreter's [`crate::ir::RunError::Fault`].
//!
//! Scalar values live in registers, never in scratch; constants that are not
//! scalars live in read-only data objects of the JIT module.
//!
//! [`Layout::scratch_len`]: super::plan::Layout::scratch_len
//! [`Value::index`]: crate::ir::Value::index

use cranelift_codegen::ir::{types, AbiParam, Signature};
use cranelift_module::Module;

use super::plan::{
    ERROR_SLOT, EXAMPLE_SLOT, FAULT_CLASS, FAULT_HI_SLOT, FAULT_INDEX, FAULT_KIND_SLOT,
    FAULT_LEN_SLOT, FAULT_LO_SLOT,
};
#[cfg(doc)]
use crate::dtype::Dtype;
use crate::dtype::Element;
use crate::ir::{Fault, Function, Op, RunError, Slot};
use crate::shape::Tensor;
use crate::span::Span;

/// The signature of the generated function.
pub type EntryFn = unsafe extern "C" fn(
    params: *const *const f64,
    inputs: *const *const f64,
    outputs: *const *mut f64,
    scratch: *mut f64,
) -> i64;

/// The signature of the generated batched function: [`EntryFn`] with the
/// number of examples `n` last. `inputs[k]` then points to `n` examples of
/// the k-th input, one after the other; `outputs[k]` to the buffer of the
/// k-th entry of [`BatchPlan::outputs`]: `shape.size()` numbers for a mean,
/// `n * shape.size()` for a per-example output. On a failing `one_hot` the
/// example's index is in `scratch[EXAMPLE_SLOT]` too.
///
/// [`BatchPlan::outputs`]: super::plan::BatchPlan::outputs
pub type BatchEntryFn = unsafe extern "C" fn(
    params: *const *const f64,
    inputs: *const *const f64,
    outputs: *const *mut f64,
    scratch: *mut f64,
    n: usize,
) -> i64;

/// The pointer tables, in the order of the entry's first three parameters.
pub(super) const PARAMS: usize = 0;
pub(super) const INPUTS: usize = 1;
pub(super) const OUTPUTS: usize = 2;

/// The Cranelift signature of [`EntryFn`].
pub fn entry_signature(module: &dyn Module) -> Signature {
    pointers_to_status(module, 4)
}

/// The Cranelift signature of [`BatchEntryFn`].
pub fn batch_signature(module: &dyn Module) -> Signature {
    pointers_to_status(module, 5)
}

/// The Cranelift signature of a piece of a loop's body that a part of the
/// function of one example calls each step (the backend's
/// `translate::body_parts`): [`EntryFn`]'s, with the step last.
pub(super) fn piece_signature(module: &dyn Module) -> Signature {
    pointers_to_status(module, 5)
}

/// `extern "C" fn(ptr, ..., ptr) -> i64` with `n` pointer arguments: the
/// shape of every generated entry point.
fn pointers_to_status(module: &dyn Module, n: usize) -> Signature {
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    for _ in 0..n {
        sig.params.push(AbiParam::new(ptr));
    }
    sig.returns.push(AbiParam::new(types::I64));
    sig
}

/// Where a compiled function reads the values of its large constant loops
/// ([`super::precompute::keep`]): hidden inputs (a function of one example)
/// or hidden parameters (a batched function, whose inputs are the examples'
/// rows), after its own.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Hidden {
    Inputs,
    Params,
}

/// The memory one call needs besides parameters, inputs and outputs: the
/// scratch buffer and the three pointer tables. Made by
/// [`super::JitFunction::scratch`] and reused across calls, so that a call
/// allocates nothing.
#[derive(Clone, Debug)]
pub struct Scratch {
    data: Vec<f64>,
    /// The pointer tables, `params ++ inputs ++ outputs`, as exposed addresses
    /// (so that a `Scratch` is `Send`); filled before every call.
    ptrs: Vec<usize>,
}

/// The pointer arguments of a call into the generated code, from
/// [`Scratch::bind`]: valid while the buffers bound and the scratch stay
/// borrowed.
pub(super) struct Tables {
    pub(super) params: *const *const f64,
    pub(super) inputs: *const *const f64,
    pub(super) outputs: *const *mut f64,
    pub(super) scratch: *mut f64,
}

impl Scratch {
    /// A scratch buffer of `scratch_len` numbers and tables of `ptr_count`
    /// pointers.
    pub(super) fn new(scratch_len: usize, ptr_count: usize) -> Scratch {
        Scratch {
            data: vec![0.0; scratch_len],
            ptrs: vec![0; ptr_count],
        }
    }

    /// Fills the pointer tables with the buffers' addresses, after checking
    /// that this scratch was made for a function of `scratch_len` numbers
    /// and these many buffers, and returns the call's pointer arguments.
    /// The buffers hold elements of `T` (the tables are only addresses);
    /// `kept`, the values of a function's large constant loops
    /// ([`super::precompute::keep`]), are its parameters after `params`
    /// or its inputs after `inputs`, as their [`Hidden`] says.
    pub(super) fn bind<T: Element>(
        &mut self,
        scratch_len: usize,
        (params, inputs): (&[&[T]], &[&[T]]),
        (kept, hidden): (&[Tensor], Hidden),
        outputs: &mut [&mut [T]],
    ) -> Result<Tables, RunError> {
        let np = params.len()
            + if hidden == Hidden::Params {
                kept.len()
            } else {
                0
            };
        let ni = params.len() + inputs.len() + kept.len() - np;
        if self.data.len() != scratch_len || self.ptrs.len() != np + ni + outputs.len() {
            return Err(RunError::Misuse(
                "the scratch buffer was made for another function".to_string(),
            ));
        }
        let kept = kept.iter().map(|t| t.data.as_ptr().expose_provenance());
        let (before, after) = match hidden {
            Hidden::Params => (Some(kept), None),
            Hidden::Inputs => (None, Some(kept)),
        };
        let reads = params.iter().map(|p| p.as_ptr().expose_provenance());
        let reads = reads.chain(before.into_iter().flatten());
        let reads = reads.chain(inputs.iter().map(|p| p.as_ptr().expose_provenance()));
        let reads = reads.chain(after.into_iter().flatten());
        for (slot, p) in self.ptrs.iter_mut().zip(reads) {
            *slot = p;
        }
        for (slot, o) in self.ptrs[np + ni..].iter_mut().zip(outputs.iter_mut()) {
            *slot = o.as_mut_ptr().expose_provenance();
        }
        Ok(Tables {
            params: self.ptrs.as_ptr() as *const *const f64,
            inputs: self.ptrs[np..].as_ptr() as *const *const f64,
            outputs: self.ptrs[np + ni..].as_ptr() as *const *mut f64,
            scratch: self.data.as_mut_ptr(),
        })
    }

    /// `Ok` for status 0; else the fault of the failing `one_hot` (status
    /// `i + 1` for instruction `%i`), whose class the generated code left in
    /// `scratch[ERROR_SLOT]`: the interpreter's [`RunError::Fault`].
    pub(super) fn status_result(&self, f: &Function, status: i64) -> Result<(), RunError> {
        if status == 0 {
            return Ok(());
        }
        let class = self.data[ERROR_SLOT];
        let at = usize::try_from(status - 1)
            .ok()
            .and_then(|index| f.value(index));
        let fault = at.and_then(|v| {
            let inst = f.inst(v);
            match &inst.op {
                Op::OneHot(classes) => Fault::one_hot(class, *classes).map(|x| (v, inst.span, x)),
                Op::Index | Op::IndexAdd | Op::IndexSet | Op::Gather | Op::ScatterAdd => {
                    let len = f.shape(inst.args[0]).dims()[0];
                    Fault::index(class, len).map(|x| (v, inst.span, x))
                }
                // A failure inside the body: what failed is in the fault
                // slots.
                Op::Loop(_) => {
                    let [kind, len, lo, hi] = [
                        FAULT_KIND_SLOT,
                        FAULT_LEN_SLOT,
                        FAULT_LO_SLOT,
                        FAULT_HI_SLOT,
                    ]
                    .map(|s| self.data[s]);
                    let span = Span::new(lo as usize, hi as usize);
                    let fault = if kind == FAULT_CLASS {
                        Fault::one_hot(class, len as usize)
                    } else if kind == FAULT_INDEX {
                        Fault::index(class, len as usize)
                    } else {
                        None
                    };
                    fault.map(|x| (v, span, x))
                }
                _ => None,
            }
        });
        match fault {
            Some((v, span, fault)) => Err(RunError::fault(v, span, fault)),
            // The code and the function disagree: a bug, reported rather
            // than trusted.
            None => Err(RunError::Misuse(format!(
                "the compiled code failed with status {status}, which names no failing `one_hot`"
            ))),
        }
    }

    /// The example a failing `one_hot` of a batched function was in.
    pub(super) fn failed_example(&self) -> Option<usize> {
        let k = self.data[EXAMPLE_SLOT];
        (k >= 0.0 && k.fract() == 0.0 && k < usize::MAX as f64).then_some(k as usize)
    }
}

/// Checks that there is one buffer per slot, each of its slot's size.
pub(super) fn check_lengths(
    kind: &str,
    slots: &[Slot],
    given: impl ExactSizeIterator<Item = usize>,
) -> Result<(), RunError> {
    if slots.len() != given.len() {
        return Err(RunError::Misuse(format!(
            "expected {} {kind} values, got {}",
            slots.len(),
            given.len()
        )));
    }
    for (s, len) in slots.iter().zip(given) {
        if len != s.shape.size() {
            return Err(RunError::Misuse(format!(
                "{kind} {} has shape {} ({} numbers) but its buffer holds {len}",
                s.name,
                s.shape,
                s.shape.size()
            )));
        }
    }
    Ok(())
}
