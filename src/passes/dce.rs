//! Dead code elimination: instructions no output depends on are removed, and
//! the values renumbered.

use crate::ir::Function;

pub fn run(f: &mut Function) -> bool {
    let live = live(f, f.outputs.iter().map(|o| o.value.index()));
    if live.iter().all(|&l| l) {
        return false;
    }
    super::retain(f, &live);
    true
}

/// Which instructions the `roots` (instruction indices) need: the roots
/// themselves and, transitively, their arguments.
pub fn live(f: &Function, roots: impl IntoIterator<Item = usize>) -> Vec<bool> {
    let mut live = vec![false; f.insts.len()];
    for r in roots {
        live[r] = true;
    }
    for i in (0..f.insts.len()).rev() {
        if live[i] {
            for a in &f.insts[i].args {
                live[a.index()] = true;
            }
        }
    }
    live
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, parse};
    use super::run;
    use crate::ir::{Op, Unary, Value};
    use crate::span::Span;

    #[test]
    fn removes_what_no_output_needs() {
        let mut f = parse("(add x y)");
        let dead = f.push(Op::Unary(Unary::Exp), vec![Value(0)], Span::default());
        f.set_name(dead, "dead");
        assert!(run(&mut f));
        assert_eq!(f.insts.len(), 3);
        assert!(f.insts.iter().all(|i| i.name.as_deref() != Some("dead")));
        assert!(!run(&mut f));
    }

    #[test]
    fn renumbers_and_keeps_names() {
        // `%x = param x`, `%y = param y`, `%2 = add %x, %y`; return `%y` only.
        let mut f = parse("(add x y)");
        f.outputs[0].value = Value(1);
        assert!(run(&mut f));
        assert_eq!(
            f.to_string(),
            "fn params(x: [3], y: [3]) inputs() {\n  %y = param y : [3]\n  return\n    output r %y\n}\n"
        );
        check(run, "(exp y)", "(exp y)");
    }
}
