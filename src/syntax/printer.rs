//! The syntax tree printed back as source, with every compound expression in
//! parentheses, so that precedence and associativity can be read off:
//! `loss -x^2` prints as `loss (-(x ^ 2))`.
//!
//! Used by `gradc ir --emit ast` and by the parser's snapshot tests. The text
//! parses back to the same tree (spans aside), except for the nodes that stand
//! for something the parser dropped: [`ExprKind::TooDeep`] and
//! [`ItemKind::Error`], which print as markers.
//!
//! Calls, tensor literals, indexing and `.T` delimit themselves and get no
//! parentheses of their own; a compound operand of a postfix operator is
//! parenthesised already, so `(-x).T` and `(-(x.T))` stay distinct.

use std::fmt::Write;

use crate::syntax::ast::{
    Block, Expr, ExprKind, IndexItem, Item, ItemKind, Pattern, Program, RangeExpr, SArg, SValue,
    SValueKind, ShapeAnn, UnOp,
};

/// The whole program, one item a line; a train block has one setting a line.
pub fn print(p: &Program) -> String {
    let mut out = String::new();
    for item in &p.items {
        item_text(&mut out, item);
        out.push('\n');
    }
    out
}

/// One expression, fully parenthesised.
pub fn print_expr(e: &Expr) -> String {
    let mut out = String::new();
    expr(&mut out, e);
    out
}

fn item_text(out: &mut String, item: &Item) {
    match &item.kind {
        ItemKind::Param { name, shape, init } => {
            let _ = write!(out, "param {}", name.name);
            if let Some(s) = shape {
                out.push_str(": ");
                shape_ann(out, s);
            }
            if let Some(e) = init {
                out.push_str(" = ");
                expr(out, e);
            }
        }
        ItemKind::Input { name, shape } => {
            let _ = write!(out, "input {}", name.name);
            if let Some(s) = shape {
                out.push_str(": ");
                shape_ann(out, s);
            }
        }
        ItemKind::Dim { name, default } => {
            let _ = write!(out, "dim {}", name.name);
            if let Some((n, _)) = default {
                let _ = write!(out, " = {n}");
            }
        }
        ItemKind::Let { name, value } => {
            let _ = write!(out, "let {} = ", name.name);
            expr(out, value);
        }
        ItemKind::LetTuple { names, value } => {
            let names: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
            let _ = write!(out, "let ({}) = ", names.join(", "));
            expr(out, value);
        }
        ItemKind::Fn { name, params, body } => {
            let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
            let _ = write!(out, "fn {}({}) = ", name.name, names.join(", "));
            expr(out, body);
        }
        ItemKind::Loss { value } => {
            out.push_str("loss ");
            expr(out, value);
        }
        ItemKind::Metric { name, value } => {
            let _ = write!(out, "metric {} = ", name.name);
            expr(out, value);
        }
        ItemKind::Output { name, value } => {
            let _ = write!(out, "output {} = ", name.name);
            expr(out, value);
        }
        ItemKind::Residual { name, value } => {
            let _ = write!(out, "residual {} = ", name.name);
            expr(out, value);
        }
        ItemKind::Train { settings } => {
            out.push_str("train {\n");
            for s in settings {
                let _ = write!(out, "  {} = ", s.key.name);
                svalue(out, &s.value);
                out.push('\n');
            }
            out.push('}');
        }
        ItemKind::Error => out.push_str("# <syntax error>"),
    }
}

fn shape_ann(out: &mut String, s: &ShapeAnn) {
    out.push('[');
    for (i, d) in s.dims.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        expr(out, d);
    }
    out.push(']');
}

fn pattern(out: &mut String, p: &Pattern) {
    let names: Vec<&str> = p.names.iter().map(|n| n.name.as_str()).collect();
    if p.tuple {
        let _ = write!(out, "({})", names.join(", "));
    } else {
        out.push_str(&names.join(", "));
    }
}

fn range(out: &mut String, r: &RangeExpr) {
    expr(out, &r.start);
    out.push_str("..");
    expr(out, &r.end);
}

fn block(out: &mut String, b: &Block) {
    out.push_str("{ ");
    for (p, e) in &b.lets {
        out.push_str("let ");
        pattern(out, p);
        out.push_str(" = ");
        expr(out, e);
        out.push_str("; ");
    }
    expr(out, &b.value);
    out.push_str(" }");
}

fn expr(out: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::Loop(l) => {
            out.push_str("(loop ");
            pattern(out, &l.pattern);
            out.push_str(" = ");
            expr(out, &l.init);
            let _ = write!(out, " for {} in ", l.var.name);
            range(out, &l.range);
            out.push(' ');
            block(out, &l.body);
            out.push(')');
        }
        ExprKind::Comprehension(c) => {
            out.push('[');
            expr(out, &c.value);
            let _ = write!(out, " for {} in ", c.var.name);
            range(out, &c.range);
            out.push(']');
        }
        ExprKind::Tuple(es) => {
            out.push('(');
            list(out, es);
            out.push(')');
        }
        ExprKind::Block(b) => block(out, b),
        ExprKind::Number(n) => out.push_str(n),
        ExprKind::Name(n) => out.push_str(n),
        ExprKind::Str(s) => {
            let _ = write!(out, "\"{s}\"");
        }
        ExprKind::Tensor(es) => {
            out.push('[');
            list(out, es);
            out.push(']');
        }
        ExprKind::Unary(op, x) => {
            out.push('(');
            out.push(match op {
                UnOp::Neg => '-',
                UnOp::Plus => '+',
            });
            expr(out, x);
            out.push(')');
        }
        ExprKind::Binary(op, a, b) => {
            out.push('(');
            expr(out, a);
            let _ = write!(out, " {} ", op.symbol());
            expr(out, b);
            out.push(')');
        }
        ExprKind::Call { func, args } => match func.name.strip_prefix('.') {
            // The parser turns a field `x.f` other than `.T` into a call of `.f`.
            Some(field) if args.len() == 1 => {
                expr(out, &args[0].value);
                let _ = write!(out, ".{field}");
            }
            _ => {
                let _ = write!(out, "{}(", func.name);
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    if let Some(n) = &a.name {
                        let _ = write!(out, "{} = ", n.name);
                    }
                    expr(out, &a.value);
                }
                out.push(')');
            }
        },
        ExprKind::Index { base, indices } => {
            expr(out, base);
            out.push('[');
            for (i, ix) in indices.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match ix {
                    IndexItem::At(x) => expr(out, x),
                    IndexItem::Range { start, end, .. } => {
                        if let Some(s) = start {
                            expr(out, s);
                        }
                        out.push(':');
                        if let Some(x) = end {
                            expr(out, x);
                        }
                    }
                }
            }
            out.push(']');
        }
        ExprKind::Transpose(x) => {
            expr(out, x);
            out.push_str(".T");
        }
        ExprKind::If { cond, then, els } => {
            out.push_str("(if ");
            expr(out, cond);
            out.push_str(" then ");
            expr(out, then);
            out.push_str(" else ");
            expr(out, els);
            out.push(')');
        }
        ExprKind::TooDeep => out.push_str("<too deep>"),
    }
}

fn list(out: &mut String, es: &[Expr]) {
    for (i, e) in es.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        expr(out, e);
    }
}

fn svalue(out: &mut String, v: &SValue) {
    match &v.kind {
        SValueKind::Number(n) => out.push_str(n),
        SValueKind::Str(s) => {
            let _ = write!(out, "\"{s}\"");
        }
        SValueKind::Name(n) => out.push_str(n),
        SValueKind::Range(a, b) => {
            let _ = write!(out, "{a}..{b}");
        }
        SValueKind::Fraction(a, b) => {
            let _ = write!(out, "{a}/{b}");
        }
        SValueKind::List(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                svalue(out, x);
            }
            out.push(']');
        }
        SValueKind::Call { func, args } => {
            let _ = write!(out, "{}(", func.name);
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                sarg(out, a);
            }
            out.push(')');
        }
    }
}

fn sarg(out: &mut String, a: &SArg) {
    if let Some(n) = &a.name {
        let _ = write!(out, "{} = ", n.name);
    }
    svalue(out, &a.value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parser::{parse, parse_expr};

    fn expr_text(src: &str) -> String {
        print_expr(&parse_expr(src).unwrap_or_else(|e| panic!("{src}: {e:?}")))
    }

    fn program_text(src: &str) -> String {
        print(&parse(src).unwrap_or_else(|e| panic!("{src}: {e:?}")))
    }

    #[test]
    fn the_examples_of_the_brief() {
        assert_eq!(program_text("loss -x^2"), "loss (-(x ^ 2))\n");
        assert_eq!(
            program_text("let z = dot(w, x) + b"),
            "let z = (dot(w, x) + b)\n"
        );
    }

    #[test]
    fn precedence() {
        let cases = [
            ("a + b * c", "(a + (b * c))"),
            ("a * b + c", "((a * b) + c)"),
            ("a - b - c", "((a - b) - c)"),
            ("a / b / c", "((a / b) / c)"),
            ("a ^ b ^ c", "(a ^ (b ^ c))"),
            ("-a ^ b", "(-(a ^ b))"),
            ("a ^ -b", "(a ^ (-b))"),
            ("-a * b", "((-a) * b)"),
            ("--a", "(-(-a))"),
            ("+a", "(+a)"),
            ("W @ x + b", "((W @ x) + b)"),
            ("A @ B @ x", "((A @ B) @ x)"),
            ("a * b @ c", "((a * b) @ c)"),
            ("a + b > c * d", "((a + b) > (c * d))"),
            ("a == b", "(a == b)"),
            ("-W.T", "(-W.T)"),
            ("(-W).T", "(-W).T"),
            ("x[0] ^ 2", "(x[0] ^ 2)"),
            ("(a + b)[1:]", "(a + b)[1:]"),
            ("W[0, :]", "W[0, :]"),
            ("x[-1]", "x[(-1)]"),
            ("x[:-1]", "x[:(-1)]"),
            ("x[1:3]", "x[1:3]"),
            ("x[:]", "x[:]"),
            ("W.T.T", "W.T.T"),
            ("x.y", "x.y"),
            ("f(a + 1, [1, 2])", "f((a + 1), [1, 2])"),
            ("[[1, 2], [3, 4]]", "[[1, 2], [3, 4]]"),
            ("if a > 0 then a else -a", "(if (a > 0) then a else (-a))"),
            (
                "if a then if b then 1 else 2 else 3",
                "(if a then (if b then 1 else 2) else 3)",
            ),
            ("1 + (if c then 2 else 3)", "(1 + (if c then 2 else 3))"),
            ("1.5e-3 * x", "(1.5e-3 * x)"),
        ];
        for (src, want) in cases {
            assert_eq!(expr_text(src), want, "printing {src}");
        }
    }

    #[test]
    fn items_and_train_settings() {
        let src = "input x: [2]\ninput y\nparam w: [2] = normal(0, 0.1)\nparam b\n\
                   fn f(a, c) = a * c\nlet z = f(w, x) + b\nloss bce_logits(sum(z), y)\n\
                   metric acc = (z > 0) == y; output p = sigmoid(z)\n\
                   train { data = csv(\"d.csv\", x = 0..2, y = 2, header = true) \
                   optimizer = adam(lr = 1e-3, beta1 = 0.9) batch = full, \
                   seed = 7; shuffle = false columns = [0, \"a\"] lr = -1 }\n";
        let want = "input x: [2]\ninput y\nparam w: [2] = normal(0, 0.1)\nparam b\n\
                    fn f(a, c) = (a * c)\nlet z = (f(w, x) + b)\nloss bce_logits(sum(z), y)\n\
                    metric acc = ((z > 0) == y)\noutput p = sigmoid(z)\n\
                    train {\n  data = csv(\"d.csv\", x = 0..2, y = 2, header = true)\n  \
                    optimizer = adam(lr = 1e-3, beta1 = 0.9)\n  batch = full\n  seed = 7\n  \
                    shuffle = false\n  columns = [0, \"a\"]\n  lr = -1\n}\n";
        assert_eq!(program_text(src), want);
    }

    #[test]
    fn dim_items_and_sizes_print_as_written() {
        let src = "dim D\ndim H = 64\ninput x: [D]\nparam W: [H, 2*D + 1] = zeros\n\
                   loss sum(W) / D + concat(x, x, dim = 0)[0]\n";
        let want = "dim D\ndim H = 64\ninput x: [D]\nparam W: [H, ((2 * D) + 1)] = zeros\n\
                    loss ((sum(W) / D) + concat(x, x, dim = 0)[0])\n";
        assert_eq!(program_text(src), want);
        assert_eq!(program_text(want), want);
    }

    #[test]
    fn empty_program_prints_nothing() {
        assert_eq!(program_text(""), "");
        assert_eq!(program_text("# only a comment\n"), "");
    }

    #[test]
    fn printed_text_parses_back_to_the_same_text() {
        let sources = [
            "param x = -3\nloss x^2\n",
            "param W: [2, 2] = [[1, -2], [3, 4]]\ninput v: [2]\nloss sum(W.T @ v)[0:1] ^ -2\n",
            "input x: [3]\nlet s = x[-1:] + x[:1]\nloss if s[0] > 0 then -s[0] else s[0] ^ 2 ^ 0.5\n",
            "param p = 1\nloss p\ntrain { optimizer = sgd(0.1) schedule = cosine seed = 3 }\n",
        ];
        for src in sources {
            let once = program_text(src);
            let twice = program_text(&once);
            assert_eq!(once, twice, "from {src}");
        }
    }

    #[test]
    fn too_deep_prints_a_marker() {
        let src = format!("loss {}x", "-".repeat(500));
        assert_eq!(program_text(&src), "loss <too deep>\n");
    }
}
