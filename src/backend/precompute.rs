//! Loops that read no parameter and no input, computed once by the JIT
//! instead of at every call.
//!
//! Index tables built by comprehensions (`det`'s subsets of columns, `gmm`'s
//! positions of a triangle) and a polynomial basis over fixed points
//! (`llsq`) are the same at every call; computed by the function, they were
//! rebuilt at every call (96% of `det`'s time). The simplifier folds every
//! other instruction of constants with the interpreter, but not loops, whose
//! cost grows with their trips; here they run as compiled code, once:
//!
//! - a loop of at most [`MAX_ELEMENTS`] numbers when its function is
//!   compiled, its value made a constant of the code ([`fold`]), so that
//!   what depends on it folds in turn;
//! - a larger one at the first call of its function ([`keep`]), whose value
//!   the function then holds and reads as a hidden input (a hidden
//!   parameter of a batched function): a copy into the code, and the
//!   passes that read it, would cost more than the loop.
//!
//! A loop whose run fails is left to the function (the first kind), which
//! reports the failure at its place as before, or fails the call with the
//! same error at the loop's place (the second). The JIT gives the
//! interpreter's bits, so the constant is what every engine would have
//! computed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::abi::Hidden;
use crate::ir::{Function, Op, Output, Role, RunError, Slot, Value, ValueMap};
use crate::shape::Tensor;

/// The most numbers a loop's value may hold to become a constant of the
/// code (512 KiB of f64). Compile time grows with a constant's size (it is
/// computed, copied into the code, and read by the passes that fold what
/// depends on it): `llsq`'s basis of 2 million numbers took 200 to 400 ms
/// to fold, more than it costs a call to compute; within this bound the
/// cost stays within a few milliseconds. A larger loop is [`keep`]'s.
pub const MAX_ELEMENTS: usize = 1 << 16;

/// `f` with its constant loops computed and replaced by constants (and what
/// then folds, folded), or `None` if it has none.
pub(super) fn fold(f: &Function) -> Option<Function> {
    let targets = constant_loops(f, |size| size <= MAX_ELEMENTS);
    if targets.is_empty() {
        return None;
    }
    let values = Arc::unwrap_or_clone(run(&loops_of(f, &targets).0).ok()?);
    let mut g = f.clone();
    let mut next = 0;
    let mut by_value = targets.iter().zip(values);
    let mut pending = by_value.next();
    g.rewrite(|out, inst| {
        let v = next;
        next += 1;
        match &mut pending {
            Some((&t, value)) if t.index() == v => {
                let value = std::mem::replace(value, Tensor::zeros(inst.shape.clone()));
                pending = by_value.next();
                Some(crate::passes::constant(out, value, inst.span))
            }
            _ => None,
        }
    });
    // What the constants make constant in turn is folded, and what computed
    // them is left dead.
    crate::passes::simplify(&mut g);
    Some(g)
}

/// `f` with its constant loops of more than [`MAX_ELEMENTS`] numbers read
/// from `hidden` slots after its own (so numbered from `f.inputs.len()` or
/// `f.params.len()`), and the [`Kept`] values that fill them; `None` if it
/// has none.
pub(super) fn keep(f: &Function, hidden: Hidden) -> Option<(Function, Kept)> {
    let targets = constant_loops(f, |size| size > MAX_ELEMENTS);
    if targets.is_empty() {
        return None;
    }
    let (loops, origin) = loops_of(f, &targets);
    let mut g = f.clone();
    let mut next = 0;
    let mut pending = targets.iter().peekable();
    g.rewrite(|out, inst| {
        let v = next;
        next += 1;
        pending.next_if(|t| t.index() == v)?;
        let slot = Slot {
            name: format!("(the constant loop %{v})"),
            shape: inst.shape.clone(),
        };
        let op = match hidden {
            Hidden::Inputs => {
                out.inputs.push(slot);
                Op::Input(out.inputs.len() - 1)
            }
            Hidden::Params => {
                out.params.push(slot);
                Op::Param(out.params.len() - 1)
            }
        };
        Some(out.push(op, Vec::new(), inst.span))
    });
    // What computed the loops' arguments is left dead.
    crate::passes::simplify(&mut g);
    let kept = Kept {
        loops,
        origin,
        values: OnceLock::new(),
    };
    Some((g, kept))
}

/// What a compiled function was compiled from, when it is not the
/// function its callers see: its constant loops read from hidden slots
/// ([`keep`]), whose values it keeps, and its forward values recomputed in
/// the backward pass ([`super::plan::recompute`]).
pub(super) struct Keeping {
    compiled: Option<Function>,
    kept: Option<Kept>,
}

impl Keeping {
    /// `f` as it is compiled, from `keep`'s result for `f` if any.
    pub(super) fn new(f: &Function, kept: Option<(Function, Kept)>) -> Keeping {
        let (g, kept) = kept.unzip();
        let recomputed = super::plan::recompute::recompute(g.as_ref().unwrap_or(f));
        Keeping {
            compiled: recomputed.or(g),
            kept,
        }
    }

    /// The function the code is compiled from: `f`, the function as its
    /// callers see it, if neither pass changed it.
    pub(super) fn compiled<'a>(&'a self, f: &'a Function) -> &'a Function {
        self.compiled.as_ref().unwrap_or(f)
    }

    /// The kept values, computed by the first call ([`Kept::values`]).
    pub(super) fn values(&self) -> Result<&[Tensor], RunError> {
        self.kept.as_ref().map_or(Ok(&[]), Kept::values)
    }

    /// How many loops are kept.
    pub(super) fn loops(&self) -> usize {
        self.kept.as_ref().map_or(0, Kept::len)
    }
}

/// The values of a function's constant loops of more than [`MAX_ELEMENTS`]
/// numbers ([`keep`]), computed at its first call.
pub(super) struct Kept {
    /// The function that computes them, one output each.
    loops: Function,
    /// For each value of `loops`, the value it was copied from in the
    /// function it was taken from, where a failure is reported.
    origin: Vec<Value>,
    values: OnceLock<Result<Arc<Vec<Tensor>>, RunError>>,
}

impl Kept {
    /// How many loops there are.
    pub(super) fn len(&self) -> usize {
        self.loops.outputs.len()
    }

    /// The values, computed by the first call (calls from other threads
    /// meanwhile wait for it); the error of that run, at its place in the
    /// function the loops were taken from, if it failed.
    pub(super) fn values(&self) -> Result<&[Tensor], RunError> {
        let values = self.values.get_or_init(|| {
            run(&self.loops).map_err(|e| match e {
                RunError::Fault {
                    at,
                    span,
                    example,
                    fault,
                } => RunError::Fault {
                    at: self.origin[at.index()],
                    span,
                    example,
                    fault,
                },
                e => e,
            })
        });
        match values {
            Ok(values) => Ok(&values[..]),
            Err(e) => Err(e.clone()),
        }
    }
}

/// The loops of `f` that read no parameter and no input, whose size passes
/// `size`.
fn constant_loops(f: &Function, size: impl Fn(usize) -> bool) -> Vec<Value> {
    let constant = constants(f);
    f.values()
        .filter(|&v| constant[v] && matches!(f.inst(v).op, Op::Loop(_)) && size(f.shape(v).size()))
        .collect()
}

/// Whether each value depends on no parameter and no input.
fn constants(f: &Function) -> ValueMap<bool> {
    let mut constant = ValueMap::new(f, false);
    for v in f.values() {
        let inst = f.inst(v);
        constant[v] = !matches!(inst.op, Op::Param(_) | Op::Input(_))
            && inst.args.iter().all(|&a| constant[a]);
    }
    constant
}

/// A function of no parameter and no input that computes `targets`
/// (constant instructions of `f`), one output each, with the value of `f`
/// each of its values stands for.
fn loops_of(f: &Function, targets: &[Value]) -> (Function, Vec<Value>) {
    let mut needed = ValueMap::new(f, false);
    for &t in targets {
        needed[t] = true;
    }
    for v in f.values().rev() {
        if needed[v] {
            for &a in &f.inst(v).args {
                needed[a] = true;
            }
        }
    }
    let mut g = Function::new(Vec::new(), Vec::new());
    let mut map: ValueMap<Option<Value>> = ValueMap::new(f, None);
    let mut origin = Vec::new();
    for v in f.values() {
        if needed[v] {
            let inst = f.inst(v);
            let args = inst
                .args
                .iter()
                .map(|&a| map[a].expect("an argument comes first"));
            map[v] = Some(g.push(inst.op.clone(), args.collect(), inst.span));
            origin.push(v);
        }
    }
    for (k, &t) in targets.iter().enumerate() {
        g.outputs.push(Output {
            role: Role::Output,
            name: format!("loop{k}"),
            value: map[t].expect("a target is needed"),
        });
    }
    (g, origin)
}

/// The outputs of `g`, a function of no parameter and no input, computed
/// by a compiled function (with Cranelift's optimisations if they hold more
/// than [`MAX_ELEMENTS`] numbers: `llsq`'s basis of 2 million numbers is
/// computed in 80 ms without them, 25 ms with), or found in [`cache`].
fn run(g: &Function) -> Result<Arc<Vec<Tensor>>, RunError> {
    if let Some(values) = cache().lock().ok().and_then(|c| c.get(g).cloned()) {
        return Ok(values);
    }
    let large = g
        .outputs
        .iter()
        .any(|o| g.shape(o.value).size() > MAX_ELEMENTS);
    let jit = super::jit::compile_for_constants(g, large)
        .map_err(|e| RunError::Misuse(format!("cannot compile a constant loop: {e}")))?;
    let values = Arc::new(jit.run(&[], &[])?);
    let size: usize = values.iter().map(|t| t.data.len()).sum();
    if let Ok(mut cache) = cache().lock() {
        let held: usize = cache
            .values()
            .flat_map(|v| v.iter())
            .map(|t| t.data.len())
            .sum();
        if held + size > MAX_CACHED {
            cache.clear();
        }
        if size <= MAX_CACHED {
            cache.insert(g.clone(), values.clone());
        }
    }
    Ok(values)
}

/// The most numbers [`cache`] holds before it is emptied.
const MAX_CACHED: usize = 1 << 22;

/// The constant loops computed so far in this process, by the function that
/// computes them: the forward, gradient and batched functions of a program
/// share their tables, which are then computed once.
fn cache() -> &'static Mutex<HashMap<Function, Arc<Vec<Tensor>>>> {
    static CACHE: OnceLock<Mutex<HashMap<Function, Arc<Vec<Tensor>>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}
