//! Derivatives inside a program: `grad(EXPR, NAME)` in the language. The
//! derivative of a scalar value with respect to an earlier value of the same
//! function, computed where the program asks for it and appended to it.
//!
//! The instructions between the two that depend on the earlier value (its
//! *slice*) become a function of their own, with that value as its only
//! parameter and every other value they read as an input. The reverse-mode
//! transformation differentiates it, and the result is inlined back: its
//! parameter and inputs are the values they stood for. The appended
//! instructions are ordinary differentiable operations, so a program holding
//! a derivative is differentiated again for training (second order), and a
//! derivative of a derivative is one more slice.

use super::{differentiate, AdError};
use crate::ir::{Function, Op, Output, Role, Slot, Value, ValueMap};
use crate::span::Span;

/// The derivative of the scalar `of` with respect to `wrt`, shaped like
/// `wrt`, computed by instructions appended to `f`. Where `of` does not
/// depend on `wrt`, zeros.
pub fn derivative(f: &mut Function, of: Value, wrt: Value, span: Span) -> Result<Value, AdError> {
    assert!(f.shape(of).is_scalar(), "a derivative of a scalar");
    let mut depends = ValueMap::new(f, false);
    depends[wrt] = true;
    for (v, inst) in f.iter().skip(wrt.index() + 1) {
        depends[v] = inst.args.iter().any(|a| depends[*a]);
    }
    if !depends[of] {
        let shape = f.shape(wrt).clone();
        return Ok(crate::passes::splat(f, 0.0, &shape, span));
    }
    // The slice, and the values it reads from outside it, in order.
    let slice: Vec<Value> = f
        .values()
        .skip(wrt.index())
        .take(of.index() + 1 - wrt.index())
        .filter(|&v| depends[v])
        .collect();
    let mut captured: Vec<Value> = Vec::new();
    let mut is_captured = ValueMap::new(f, false);
    for &v in &slice[1..] {
        for &a in &f.inst(v).args {
            if !depends[a] && !is_captured[a] {
                is_captured[a] = true;
                captured.push(a);
            }
        }
    }
    let slot = |name: &str, v: Value| Slot {
        name: name.into(),
        shape: f.shape(v).clone(),
    };
    let mut sub = Function::new(
        vec![slot("wrt", wrt)],
        captured.iter().map(|&c| slot("captured", c)).collect(),
    );
    let mut map: ValueMap<Option<Value>> = ValueMap::new(f, None);
    map[wrt] = Some(sub.push(Op::Param(0), vec![], f.inst(wrt).span));
    for (k, &c) in captured.iter().enumerate() {
        map[c] = Some(sub.push(Op::Input(k), vec![], f.inst(c).span));
    }
    // The value of `f` each instruction of `sub` stands for, in order.
    let origin: Vec<Value> = [wrt]
        .iter()
        .chain(&captured)
        .chain(&slice[1..])
        .copied()
        .collect();
    for &v in &slice[1..] {
        let inst = f.inst(v);
        let args = inst
            .args
            .iter()
            .map(|a| map[*a].expect("earlier"))
            .collect();
        let w = sub.push(inst.op.clone(), args, inst.span);
        if let Some(name) = &inst.name {
            sub.set_name(w, name);
        }
        map[v] = Some(w);
    }
    let of_sub = map[of].expect("in the slice");
    sub.outputs.push(Output {
        role: Role::Loss,
        name: String::new(),
        value: of_sub,
    });
    let g = differentiate(&sub, of_sub)?;
    // Inline the gradient program, keeping only its gradient: the forward
    // instructions it repeats are merged with the originals by CSE.
    let mut g = g;
    g.outputs.retain(|o| o.role == Role::Grad(0));
    // The adjoints' names (`dh` for `h`) could be taken for the program's
    // own names: the derivative's instructions stay unnamed.
    g.clear_backward_names();
    Ok(inline(f, &sub, &origin, &g))
}

/// Appends the gradient program `g` of `sub` to `f` and returns its
/// gradient. `g` begins with `sub`'s own instructions (but for the loops
/// that save what their reverse reads): those are the values of `f` they
/// came from (`origin`), not copies for CSE to merge again, so that a
/// derivative costs the lowering and the simplifier its reverse pass only.
fn inline(f: &mut Function, sub: &Function, origin: &[Value], g: &Function) -> Value {
    let mut map: Vec<Value> = Vec::with_capacity(g.len());
    for (v, inst) in g.iter() {
        let i = v.index();
        let same = i < sub.len() && {
            let s = sub.inst(v);
            s.op == inst.op
                && s.args == inst.args
                && inst
                    .args
                    .iter()
                    .all(|a| map[a.index()] == origin[a.index()])
        };
        let w = if same {
            origin[i]
        } else {
            match inst.op {
                Op::Param(0) => origin[0],
                Op::Input(k) => origin[1 + k],
                _ => {
                    let args = inst.args.iter().map(|a| map[a.index()]).collect();
                    f.push_copy(inst, args)
                }
            }
        };
        map.push(w);
    }
    let grad = g.output(&Role::Grad(0)).expect("the gradient");
    map[grad.index()]
}

#[cfg(test)]
mod tests {
    use crate::ir::{Op, Unary};

    /// A derivative appends its reverse pass only: the forward instructions
    /// its gradient program repeats are the program's own, not copies.
    #[test]
    fn the_forward_instructions_are_not_copied() {
        let src = "param w: [3]\noutput d = grad(sum(sin(w) * w), w)\nloss 0\n";
        let typed = crate::check(src, &Default::default()).expect("checks");
        let f = crate::lower::lower(&typed).expect("lowers");
        let count = |u: Unary| f.insts().iter().filter(|i| i.op == Op::Unary(u)).count();
        assert_eq!(count(Unary::Sin), 1, "{f}");
        assert_eq!(count(Unary::Cos), 1, "{f}");
    }
}
