//! Dead code elimination: instructions no output depends on are removed, and
//! the values renumbered.

use crate::ir::{Function, Value, ValueMap};

pub fn run(f: &mut Function) -> bool {
    let live = live(f, f.outputs.iter().map(|o| o.value));
    if live.as_slice().iter().all(|&l| l) {
        return false;
    }
    f.retain(live.as_slice());
    true
}

/// Which values the `roots` need: the roots themselves and, transitively,
/// their arguments.
pub fn live(f: &Function, roots: impl IntoIterator<Item = Value>) -> ValueMap<bool> {
    let mut live = ValueMap::new(f, false);
    for r in roots {
        live[r] = true;
    }
    for (v, inst) in f.iter().rev() {
        if live[v] {
            for &a in &inst.args {
                live[a] = true;
            }
        }
    }
    live
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, parse};
    use super::run;
    use crate::ir::{Op, Unary};
    use crate::span::Span;

    #[test]
    fn removes_what_no_output_needs() {
        let mut f = parse("(add x y)");
        let x = f.value(0).unwrap();
        let dead = f.push(Op::Unary(Unary::Exp), vec![x], Span::default());
        f.set_name(dead, "dead");
        assert!(run(&mut f));
        assert_eq!(f.insts().len(), 3);
        assert!(f.insts().iter().all(|i| i.name.as_deref() != Some("dead")));
        assert!(!run(&mut f));
    }

    #[test]
    fn renumbers_and_keeps_names() {
        // `%x = param x`, `%y = param y`, `%2 = add %x, %y`; return `%y` only.
        let mut f = parse("(add x y)");
        f.outputs[0].value = f.value(1).unwrap();
        assert!(run(&mut f));
        assert_eq!(
            f.to_string(),
            "fn params(x: [3], y: [3]) inputs() {\n  %y = param y : [3]\n  return\n    output r %y\n}\n"
        );
        check(run, "(exp y)", "(exp y)");
    }
}
