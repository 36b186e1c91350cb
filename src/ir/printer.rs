//! The canonical text form of the IR: what `gradc ir` and `gradc grad` show,
//! and what snapshot tests compare.
//!
//! ```text
//! fn params(w: [2], b: []) inputs(x: [2], y: []) {
//!   %w = param w : [2]
//!   %x = input x : [2]
//!   %2 = matmul %w, %x : []
//!   %z = add %2, %b : []
//!   %p = sigmoid %z : []
//!   return
//!     loss %4
//!     output p %p
//! }
//! ```
//!
//! A value prints as `%name` when the user named it (`%name.1`, `%name.2` when
//! names repeat), else as `%` and its instruction index. Every instruction
//! line is `%v = mnemonic args : shape`.

use std::collections::HashSet;
use std::fmt::Write;

use crate::ir::{Binary, Function, Inst, Op, Output, Reduce, Role, SliceAxis, Unary};
use crate::shape::{fmt_num, Tensor};
use crate::span::Span;

/// Constants with more elements than this are abbreviated.
const MAX_CONST_ELEMS: usize = 16;

/// The canonical text of a function.
pub fn print(f: &Function) -> String {
    render(f, &|_| None)
}

/// The canonical text with `# line N` after each instruction whose span
/// `line_of` maps to a source line (`None` leaves the line bare). The
/// comments are aligned in one column.
pub fn print_with_lines(f: &Function, line_of: impl Fn(Span) -> Option<usize>) -> String {
    render(f, &line_of)
}

/// The printed name of every value, `%` included, indexed by value: unique
/// within the function.
pub fn value_names(f: &Function) -> Vec<String> {
    // Suffixed names skip every name a user wrote, so a later `z.1` cannot
    // collide with an earlier generated one.
    let written: HashSet<&str> = f.insts.iter().filter_map(|i| i.name.as_deref()).collect();
    let mut used: HashSet<String> = HashSet::new();
    let mut names = Vec::with_capacity(f.insts.len());
    for (i, inst) in f.insts.iter().enumerate() {
        if let Some(x) = inline_const(inst) {
            names.push(fmt_num(x));
            continue;
        }
        let base = inst.name.clone().unwrap_or_else(|| i.to_string());
        let name = if used.contains(&base) {
            (1..)
                .map(|k| format!("{base}.{k}"))
                .find(|c| !used.contains(c) && !written.contains(c.as_str()))
                .expect("an unused suffix exists")
        } else {
            base
        };
        used.insert(name.clone());
        names.push(format!("%{name}"));
    }
    names
}

/// The snake_case mnemonic of an operation, as printed.
pub fn mnemonic(op: &Op) -> &'static str {
    match op {
        Op::Param(_) => "param",
        Op::Input(_) => "input",
        Op::Const(_) => "const",
        Op::Unary(u) => match u {
            Unary::Neg => "neg",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sqrt => "sqrt",
            Unary::Abs => "abs",
            Unary::Sign => "sign",
            Unary::Sin => "sin",
            Unary::Cos => "cos",
            Unary::Tanh => "tanh",
            Unary::Sigmoid => "sigmoid",
            Unary::Relu => "relu",
            Unary::Softplus => "softplus",
            Unary::Log1p => "log1p",
            Unary::Expm1 => "expm1",
            Unary::Erf => "erf",
            Unary::Floor => "floor",
            Unary::Round => "round",
        },
        Op::Binary(b) => match b {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Pow => "pow",
            Binary::Max => "max",
            Binary::Min => "min",
            Binary::Eq => "eq",
            Binary::Ne => "ne",
            Binary::Lt => "lt",
            Binary::Le => "le",
            Binary::Gt => "gt",
            Binary::Ge => "ge",
            Binary::BceLogits => "bce_logits",
        },
        Op::Select => "select",
        Op::MatMul => "matmul",
        Op::Outer => "outer",
        Op::Transpose => "transpose",
        Op::Sum => "sum",
        Op::ReduceMax => "reduce_max",
        Op::Norm => "norm",
        Op::LogSumExp => "logsumexp",
        Op::ReduceAxes(kind, _) => match kind {
            Reduce::Sum => "sum_axes",
            Reduce::Max => "max_axes",
            Reduce::Norm => "norm_axes",
            Reduce::LogSumExp => "logsumexp_axes",
        },
        Op::BroadcastAxes(..) => "broadcast_axes",
        Op::Softmax(_) => "softmax",
        Op::LogSoftmax(_) => "log_softmax",
        Op::ArgMax(_) => "argmax",
        Op::Broadcast(_) => "broadcast",
        Op::Slice(_) => "slice",
        Op::Unslice(_, _) => "unslice",
        Op::Pack => "pack",
        Op::OneHot(_) => "one_hot",
        Op::Index => "index",
        Op::IndexAdd => "index_add",
        Op::IndexSet => "index_set",
        Op::Gather => "gather",
        Op::ScatterAdd => "scatter_add",
        Op::Reshape(_) => "reshape",
        Op::Permute(_) => "permute",
        Op::Concat => "concat",
        Op::Window(w) => w.mnemonic(),
        Op::Loop(_) => "loop",
    }
}

/// How an output is listed after `return`: `loss`, `metric acc`, `grad w`.
pub fn role_text(f: &Function, o: &Output) -> String {
    match &o.role {
        Role::Loss if o.name.is_empty() || o.name == "loss" => "loss".to_string(),
        Role::Loss => format!("loss {}", o.name),
        Role::Metric => format!("metric {}", o.name),
        Role::Output => format!("output {}", o.name),
        Role::Grad(i) => match f.params.get(*i) {
            Some(p) => format!("grad {}", p.name),
            None => format!("grad {}", o.name),
        },
    }
}

fn render(f: &Function, line_of: &dyn Fn(Span) -> Option<usize>) -> String {
    let names = value_names(f);
    let slots = |slots: &[crate::ir::Slot]| {
        let parts: Vec<String> = slots
            .iter()
            .map(|s| format!("{}: {}", s.name, s.shape))
            .collect();
        parts.join(", ")
    };
    let mut out = format!(
        "fn params({}) inputs({}) {{\n",
        slots(&f.params),
        slots(&f.inputs)
    );

    let lines: Vec<(String, &Inst)> = f
        .insts
        .iter()
        .enumerate()
        .filter(|(_, inst)| inline_const(inst).is_none())
        .map(|(i, inst)| {
            let line = format!(
                "  {} = {} : {}",
                names[i],
                inst_text(f, inst, &names),
                inst.shape
            );
            (line, inst)
        })
        .collect();
    let width = lines
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    for (line, inst) in &lines {
        out.push_str(line);
        if let Some(n) = line_of(inst.span) {
            let pad = width - line.chars().count();
            let _ = write!(out, "{:pad$}  # line {n}", "");
        }
        out.push('\n');
        // A loop's body, nested: a function of the carried and captured
        // values and the step.
        if let Op::Loop(l) = &inst.op {
            for body_line in render(&l.body, line_of).lines() {
                let _ = writeln!(out, "    {body_line}");
            }
        }
    }

    out.push_str("  return\n");
    for o in &f.outputs {
        let value = names
            .get(o.value.index())
            .cloned()
            .unwrap_or_else(|| format!("%{}?", o.value.index()));
        let _ = writeln!(out, "    {} {value}", role_text(f, o));
    }
    out.push_str("}\n");
    out
}

/// Unnamed scalar constants print inline, as their number, where they are
/// used: `%8 = gt %z, 0` rather than a line of their own.
fn inline_const(inst: &Inst) -> Option<f64> {
    match &inst.op {
        Op::Const(c) if inst.name.is_none() && c.0.shape.is_scalar() => c.0.data.first().copied(),
        _ => None,
    }
}

/// The right-hand side of an instruction line, without its shape.
fn inst_text(f: &Function, inst: &Inst, names: &[String]) -> String {
    let arg = |k: usize| -> &str {
        inst.args
            .get(k)
            .and_then(|a| names.get(a.index()))
            .map_or("%?", |s| s.as_str())
    };
    let args = || {
        let all: Vec<&str> = (0..inst.args.len()).map(arg).collect();
        all.join(", ")
    };
    let m = mnemonic(&inst.op);
    match &inst.op {
        Op::Param(i) => format!("{m} {}", slot_name(&f.params, *i)),
        Op::Input(i) => format!("{m} {}", slot_name(&f.inputs, *i)),
        Op::Const(c) => format!("{m} {}", const_text(&c.0)),
        Op::Slice(axes) => format!("{m} {}[{}]", arg(0), axes_text(axes)),
        Op::Unslice(axes, _) => format!("{m} {} into [{}]", arg(0), axes_text(axes)),
        Op::ReduceAxes(_, axes) => format!("{m} {} {axes:?}", arg(0)),
        Op::BroadcastAxes(axes, _) => format!("{m} {} {axes:?}", arg(0)),
        // The last axis, the default, is not shown.
        Op::Softmax(axis) | Op::LogSoftmax(axis)
            if inst.args.first().map(|&a| f.shape(a).rank()) == Some(*axis + 1) =>
        {
            format!("{m} {}", arg(0))
        }
        Op::Softmax(axis) | Op::LogSoftmax(axis) | Op::ArgMax(axis) => {
            format!("{m} {} axis {axis}", arg(0))
        }
        Op::Permute(perm) => format!("{m} {} {perm:?}", arg(0)),
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Select
        | Op::MatMul
        | Op::Outer
        | Op::Transpose
        | Op::Sum
        | Op::ReduceMax
        | Op::Norm
        | Op::LogSumExp
        | Op::Broadcast(_)
        | Op::Pack
        | Op::OneHot(_)
        | Op::Index
        | Op::IndexAdd
        | Op::IndexSet
        | Op::Gather
        | Op::ScatterAdd
        | Op::Reshape(_)
        | Op::Concat => format!("{m} {}", args()),
        Op::Window(w) => format!("{m} {} {}", args(), w.params_text()),
        Op::Loop(l) => {
            let (carried, captured) = inst.args.split_at(l.carries.min(inst.args.len()));
            let list = |vs: &[crate::ir::Value]| {
                let all: Vec<&str> = vs
                    .iter()
                    .map(|a| names.get(a.index()).map_or("%?", |s| s.as_str()))
                    .collect();
                all.join(", ")
            };
            format!(
                "{m} {} carry({}) capture({}){}",
                l.trips,
                list(carried),
                list(captured),
                if l.recompute { " recompute" } else { "" }
            )
        }
    }
}

fn slot_name(slots: &[crate::ir::Slot], i: usize) -> String {
    slots
        .get(i)
        .map_or_else(|| format!("#{i}"), |s| s.name.clone())
}

/// `0`, `1..3`: one entry per axis, as the user would index.
fn axes_text(axes: &[SliceAxis]) -> String {
    let parts: Vec<String> = axes
        .iter()
        .map(|ax| match ax {
            SliceAxis::At(i) => i.to_string(),
            SliceAxis::Range(lo, hi) => format!("{lo}..{hi}"),
        })
        .collect();
    parts.join(", ")
}

/// Small constants in full (`0.5`, `[1, 2]`); large ones by their first
/// elements in row-major order.
fn const_text(t: &Tensor) -> String {
    if t.data.len() <= MAX_CONST_ELEMS {
        return t.to_string();
    }
    let head: Vec<String> = t.data[..8].iter().map(|&x| fmt_num(x)).collect();
    format!("[{}, … {} more]", head.join(", "), t.data.len() - 8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{ConstData, Output, Slot, Value};
    use crate::shape::Shape;

    fn slot(name: &str, shape: Shape) -> Slot {
        Slot {
            name: name.to_string(),
            shape,
        }
    }

    /// Logistic regression on one example, as lowering would produce it.
    fn logistic() -> Function {
        let sp = Span::new(0, 1);
        let mut f = Function::new(
            vec![slot("w", Shape::vector(2)), slot("b", Shape::scalar())],
            vec![slot("x", Shape::vector(2)), slot("y", Shape::scalar())],
        );
        let w = f.push(Op::Param(0), vec![], sp);
        f.set_name(w, "w");
        let b = f.push(Op::Param(1), vec![], sp);
        f.set_name(b, "b");
        let x = f.push(Op::Input(0), vec![], sp);
        f.set_name(x, "x");
        let y = f.push(Op::Input(1), vec![], sp);
        f.set_name(y, "y");
        let d = f.push(Op::MatMul, vec![w, x], Span::new(20, 30));
        let z = f.push(Op::Binary(Binary::Add), vec![d, b], Span::new(20, 34));
        f.set_name(z, "z");
        let l = f.push(Op::Binary(Binary::BceLogits), vec![z, y], Span::new(40, 50));
        let zero = f.push(Op::Const(ConstData(Tensor::scalar(0.0))), vec![], sp);
        let gt = f.push(Op::Binary(Binary::Gt), vec![z, zero], Span::new(60, 65));
        let acc = f.push(Op::Binary(Binary::Eq), vec![gt, y], Span::new(60, 70));
        f.set_name(acc, "accuracy");
        let p = f.push(Op::Unary(Unary::Sigmoid), vec![z], Span::new(80, 90));
        f.set_name(p, "p");
        for (role, name, value) in [
            (Role::Loss, "loss", l),
            (Role::Metric, "accuracy", acc),
            (Role::Output, "p", p),
        ] {
            f.outputs.push(Output {
                role,
                name: name.to_string(),
                value,
            });
        }
        f
    }

    #[test]
    fn prints_a_whole_function() {
        let expected = "\
fn params(w: [2], b: []) inputs(x: [2], y: []) {
  %w = param w : [2]
  %b = param b : []
  %x = input x : [2]
  %y = input y : []
  %4 = matmul %w, %x : []
  %z = add %4, %b : []
  %6 = bce_logits %z, %y : []
  %8 = gt %z, 0 : []
  %accuracy = eq %8, %y : []
  %p = sigmoid %z : []
  return
    loss %6
    metric accuracy %accuracy
    output p %p
}
";
        assert_eq!(print(&logistic()), expected);
        assert_eq!(logistic().to_string(), expected);
    }

    #[test]
    fn line_comments_are_aligned() {
        let f = logistic();
        // Byte offsets of 20 and beyond are on line 2, the rest has no line.
        let text = print_with_lines(&f, |s| (s.lo >= 20).then_some(2 + s.lo as usize / 40));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "  %w = param w : [2]");
        assert_eq!(lines[5], "  %4 = matmul %w, %x : []      # line 2");
        // The scalar constant of line 8 prints inline, in `gt %z, 0`.
        assert_eq!(lines[8], "  %8 = gt %z, 0 : []           # line 3");
        assert_eq!(lines[9], "  %accuracy = eq %8, %y : []   # line 3");
        assert_eq!(lines[10], "  %p = sigmoid %z : []         # line 4");
    }

    #[test]
    fn repeated_names_get_suffixes() {
        let sp = Span::default();
        let mut f = Function::new(vec![slot("a", Shape::scalar())], vec![]);
        let a = f.push(Op::Param(0), vec![], sp);
        let z1 = f.push(Op::Unary(Unary::Exp), vec![a], sp);
        let z2 = f.push(Op::Unary(Unary::Exp), vec![z1], sp);
        let z3 = f.push(Op::Unary(Unary::Exp), vec![z2], sp);
        let z4 = f.push(Op::Unary(Unary::Exp), vec![z3], sp);
        f.set_name(z1, "z");
        f.set_name(z2, "z");
        // A written name that looks like a generated one is never reused.
        f.set_name(z3, "z.1");
        f.set_name(z4, "z");
        assert_eq!(value_names(&f), ["%0", "%z", "%z.2", "%z.1", "%z.3"]);
    }

    #[test]
    fn attributes_and_constants() {
        let sp = Span::default();
        let mut f = Function::new(vec![slot("m", Shape::matrix(3, 4))], vec![]);
        let m = f.push(Op::Param(0), vec![], sp);
        let s = f.push(
            Op::Slice(vec![SliceAxis::At(1), SliceAxis::Range(1, 3)]),
            vec![m],
            sp,
        );
        let u = f.push(
            Op::Unslice(
                vec![SliceAxis::At(1), SliceAxis::Range(1, 3)],
                Shape::matrix(3, 4),
            ),
            vec![s],
            sp,
        );
        let v = f.push(
            Op::Const(ConstData(Tensor::new(Shape::vector(2), vec![1.0, -0.5]))),
            vec![],
            sp,
        );
        let big = f.push(
            Op::Const(ConstData(Tensor::new(
                Shape::vector(20),
                (0..20).map(f64::from).collect(),
            ))),
            vec![],
            sp,
        );
        let h = f.push(Op::Pack, vec![s, v], sp);
        let c = f.push(Op::Const(ConstData(Tensor::scalar(2.0))), vec![], sp);
        let o = f.push(Op::OneHot(3), vec![c], sp);
        let bc = f.push(Op::Broadcast(Shape::matrix(2, 2)), vec![c], sp);
        f.outputs.push(Output {
            role: Role::Grad(0),
            name: "dm".to_string(),
            value: u,
        });
        let _ = (h, o, bc, big, Value(0));
        let text = print(&f);
        let expected = "\
fn params(m: [3, 4]) inputs() {
  %0 = param m : [3, 4]
  %1 = slice %0[1, 1..3] : [2]
  %2 = unslice %1 into [1, 1..3] : [3, 4]
  %3 = const [1, -0.5] : [2]
  %4 = const [0, 1, 2, 3, 4, 5, 6, 7, … 12 more] : [20]
  %5 = pack %1, %3 : [2, 2]
  %7 = one_hot 2 : [3]
  %8 = broadcast 2 : [2, 2]
  return
    grad m %2
}
";
        assert_eq!(text, expected);
    }
}
