//! Loops that read no parameter and no input, computed once when their
//! function is compiled, by the JIT, and made constants of it.
//!
//! Index tables built by comprehensions (`det`'s subsets of columns, `gmm`'s
//! positions of a triangle) and a polynomial basis over fixed points (`llsq`,
//! up to 512 points) are the same at every call; computed by the function,
//! they were rebuilt at every call (96% of `det`'s time). The simplifier folds every other
//! instruction of constants with the interpreter, but not loops, whose cost
//! grows with their trips; here they run as compiled code, once. A loop whose
//! run fails, or whose value holds more than [`MAX_ELEMENTS`] numbers, is left
//! to the function, which reports the failure at its place as before. The
//! JIT gives the interpreter's bits, so the constant is what every engine
//! would have computed.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::ir::{Function, Op, Output, Role, Value, ValueMap};
use crate::shape::Tensor;

/// The most numbers a loop's value may hold to become a constant of the
/// code (512 KiB of f64). Compile time grows with a constant's size (it is
/// computed, copied into the code, and read by the passes that fold what
/// depends on it): `llsq`'s basis of 2 million numbers took 200 to 400 ms
/// to fold, more than it costs a call to compute; within this bound the
/// cost stays within a few milliseconds.
pub const MAX_ELEMENTS: usize = 1 << 16;

/// `f` with its constant loops computed and replaced by constants (and what
/// then folds, folded), or `None` if it has none.
pub(super) fn fold(f: &Function) -> Option<Function> {
    let constant = constants(f);
    let targets: Vec<Value> = f
        .values()
        .filter(|&v| {
            constant[v] && matches!(f.inst(v).op, Op::Loop(_)) && f.shape(v).size() <= MAX_ELEMENTS
        })
        .collect();
    if targets.is_empty() {
        return None;
    }
    let values = evaluate(f, &targets)?;
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

/// The values of `targets` (constant instructions of `f`), computed by a
/// compiled function of the instructions they need; `None` if it cannot be
/// compiled or its run fails.
fn evaluate(f: &Function, targets: &[Value]) -> Option<Vec<Tensor>> {
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
    for v in f.values() {
        if needed[v] {
            let inst = f.inst(v);
            let args = inst
                .args
                .iter()
                .map(|&a| map[a].expect("an argument comes first"));
            map[v] = Some(g.push(inst.op.clone(), args.collect(), inst.span));
        }
    }
    for (k, &t) in targets.iter().enumerate() {
        g.outputs.push(Output {
            role: Role::Output,
            name: format!("loop{k}"),
            value: map[t].expect("a target is needed"),
        });
    }
    if let Some(values) = cache().lock().ok()?.get(&g) {
        return Some(values.clone());
    }
    let values = super::jit::compile_once(&g).ok()?.run(&[], &[]).ok()?;
    let mut cache = cache().lock().ok()?;
    let held: usize = cache.values().flatten().map(|t| t.data.len()).sum();
    let size: usize = values.iter().map(|t| t.data.len()).sum();
    if held + size > MAX_CACHED {
        cache.clear();
    }
    cache.insert(g, values.clone());
    Some(values)
}

/// The most numbers [`cache`] holds before it is emptied.
const MAX_CACHED: usize = 1 << 22;

/// The constant loops computed so far in this process, by the function that
/// computes them: the forward, gradient and batched functions of a program
/// share their tables, which are then computed once.
fn cache() -> &'static Mutex<HashMap<Function, Vec<Tensor>>> {
    static CACHE: OnceLock<Mutex<HashMap<Function, Vec<Tensor>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}
