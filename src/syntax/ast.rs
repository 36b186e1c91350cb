//! The syntax tree: what the user wrote, with a byte span on every node.
//!
//! The parser only builds these nodes; names, shapes and literal values are
//! checked later, in `types`.

use crate::span::Span;

/// Expressions nested deeper than this become [`ExprKind::TooDeep`], so that no
/// later recursive walk (or drop) of the tree can overflow the stack.
pub const MAX_DEPTH: u32 = 200;

#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A shape annotation such as `[4, 3]` or `[2 * D, H]`; each dimension is
/// an unchecked size expression (evaluated by `types::dims`).
#[derive(Clone, Debug, PartialEq)]
pub struct ShapeAnn {
    pub dims: Vec<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub kind: ItemKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ItemKind {
    /// `param w: [2] = normal(0, 0.1)`; the initialiser defaults to zeros.
    Param {
        name: Ident,
        shape: Option<ShapeAnn>,
        init: Option<Expr>,
    },
    /// `input x: [2]`; no shape means a scalar.
    Input {
        name: Ident,
        shape: Option<ShapeAnn>,
    },
    /// `dim D` or `dim D = 64`: a size, bound before checking (from
    /// `--dim`, the data, or this default, as written).
    Dim {
        name: Ident,
        default: Option<(String, Span)>,
    },
    /// `let z = expr`
    Let { name: Ident, value: Expr },
    /// `let (a, b) = expr`: the parts of a tuple, named.
    LetTuple { names: Vec<Ident>, value: Expr },
    /// `fn f(a, b) = expr`
    Fn {
        name: Ident,
        params: Vec<Ident>,
        body: Expr,
    },
    /// `loss expr`
    Loss { value: Expr },
    /// `metric accuracy = expr`
    Metric { name: Ident, value: Expr },
    /// `output p = expr`
    Output { name: Ident, value: Expr },
    /// `residual r = expr`: the per-example residual of a least-squares fit
    Residual { name: Ident, value: Expr },
    /// `train { key = value ... }`
    Train { settings: Vec<Setting> },
    /// A region the parser skipped after a syntax error.
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// Height of the tree below this node (a leaf is 1), at most `MAX_DEPTH + 1`.
    pub depth: u32,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Plus,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    MatMul,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Pow => "^",
            BinOp::MatMul => "@",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// The literal's text, e.g. `1.5e-3`; converted and checked by the checker.
    Number(String),
    Name(String),
    /// A string literal's text, without its quotes: `einsum`'s subscripts.
    Str(String),
    /// `[a, b, c]`: elements of one shape stacked along a new first axis.
    Tensor(Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `f(a, b, name = c)`: positional arguments, then keyword ones (the
    /// parser keeps them in the order written; the checker binds them).
    Call {
        func: Ident,
        args: Vec<Arg>,
    },
    /// `x[i]`, `W[0, :]`, `x[1:3]`
    Index {
        base: Box<Expr>,
        indices: Vec<IndexItem>,
    },
    /// `W.T`
    Transpose(Box<Expr>),
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        els: Box<Expr>,
    },
    /// `loop s = 0 for t in 0..T { ... }`
    Loop(Box<LoopExpr>),
    /// `[f(t) for t in 0..T]`
    Comprehension(Box<Comprehension>),
    /// `(a, b)`: two or more values.
    Tuple(Vec<Expr>),
    /// `{ let a = ...  value }`
    Block(Box<Block>),
    /// An expression nested more than `MAX_DEPTH` levels; its children were dropped.
    TooDeep,
}

/// A name, or names in parentheses for the parts of a tuple: what a `let`
/// or a loop's carried values bind.
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    pub names: Vec<Ident>,
    /// `(a, b)` rather than `a`.
    pub tuple: bool,
    pub span: Span,
}

/// `start..end`, half-open.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeExpr {
    pub start: Expr,
    pub end: Expr,
    pub span: Span,
}

/// `loop PATTERN = INIT for VAR in RANGE BODY`: the carried values start as
/// `init` and become the body's value at each step.
#[derive(Clone, Debug, PartialEq)]
pub struct LoopExpr {
    pub pattern: Pattern,
    pub init: Expr,
    pub var: Ident,
    pub range: RangeExpr,
    pub body: Block,
}

/// `[VALUE for VAR in RANGE]`: one value per step, stacked.
#[derive(Clone, Debug, PartialEq)]
pub struct Comprehension {
    pub value: Expr,
    pub var: Ident,
    pub range: RangeExpr,
}

/// `{ let ... value }`: local names, then a value.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub lets: Vec<(Pattern, Expr)>,
    pub value: Expr,
    pub span: Span,
}

/// The expressions directly inside an expression of this kind, in order.
pub fn children(kind: &ExprKind) -> Vec<&Expr> {
    match kind {
        ExprKind::Number(_) | ExprKind::Name(_) | ExprKind::Str(_) | ExprKind::TooDeep => {
            Vec::new()
        }
        ExprKind::Tensor(es) | ExprKind::Tuple(es) => es.iter().collect(),
        ExprKind::Unary(_, x) | ExprKind::Transpose(x) => vec![x],
        ExprKind::Binary(_, a, b) => vec![a, b],
        ExprKind::Call { args, .. } => args.iter().map(|a| &a.value).collect(),
        ExprKind::Index { base, indices } => {
            let mut out = vec![&**base];
            for ix in indices {
                match ix {
                    IndexItem::At(x) => out.push(x),
                    IndexItem::Range { start, end, .. } => {
                        out.extend(start.iter().chain(end.iter()))
                    }
                }
            }
            out
        }
        ExprKind::If { cond, then, els } => vec![cond, then, els],
        ExprKind::Loop(l) => {
            let mut out = vec![&l.init, &l.range.start, &l.range.end];
            out.extend(l.body.exprs());
            out
        }
        ExprKind::Comprehension(c) => vec![&c.value, &c.range.start, &c.range.end],
        ExprKind::Block(b) => b.exprs(),
    }
}

/// Every name bound inside `e`: loops' carried values and steps, blocks'
/// `let`s, comprehensions' steps.
pub fn binders(e: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match &e.kind {
            ExprKind::Loop(l) => {
                out.extend(l.pattern.names.iter().map(|n| n.name.clone()));
                out.push(l.var.name.clone());
                out.extend(
                    l.body
                        .lets
                        .iter()
                        .flat_map(|(p, _)| p.names.iter().map(|n| n.name.clone())),
                );
            }
            ExprKind::Comprehension(c) => out.push(c.var.name.clone()),
            ExprKind::Block(b) => {
                out.extend(
                    b.lets
                        .iter()
                        .flat_map(|(p, _)| p.names.iter().map(|n| n.name.clone())),
                );
            }
            _ => {}
        }
        stack.extend(children(&e.kind));
    }
    out
}

impl Block {
    /// The `let`s' values, then the block's value.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out: Vec<&Expr> = self.lets.iter().map(|(_, e)| e).collect();
        out.push(&self.value);
        out
    }

    fn depth(&self) -> u32 {
        self.lets
            .iter()
            .map(|(_, e)| e.depth)
            .max()
            .unwrap_or(0)
            .max(self.value.depth)
    }
}

/// A call argument: `x`, or `delta = 0.5` by keyword.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

impl Arg {
    /// A positional argument.
    pub fn positional(value: Expr) -> Arg {
        Arg { name: None, value }
    }

    /// The span of the whole argument, its keyword included.
    pub fn span(&self) -> Span {
        match &self.name {
            Some(n) => n.span.to(self.value.span),
            None => self.value.span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum IndexItem {
    /// One position: the axis disappears.
    At(Expr),
    /// `a:b`, `a:`, `:b` or `:`: the axis stays.
    Range {
        start: Option<Expr>,
        end: Option<Expr>,
        span: Span,
    },
}

impl IndexItem {
    fn depth(&self) -> u32 {
        match self {
            IndexItem::At(e) => e.depth,
            IndexItem::Range { start, end, .. } => {
                let d = |e: &Option<Expr>| e.as_ref().map_or(0, |e| e.depth);
                d(start).max(d(end))
            }
        }
    }
}

impl Expr {
    /// Builds a node, computing its depth; a node too deep becomes `TooDeep`.
    pub fn new(kind: ExprKind, span: Span) -> Expr {
        let below = match &kind {
            ExprKind::Number(_) | ExprKind::Name(_) | ExprKind::Str(_) | ExprKind::TooDeep => 0,
            ExprKind::Tensor(es) => es.iter().map(|e| e.depth).max().unwrap_or(0),
            ExprKind::Unary(_, e) | ExprKind::Transpose(e) => e.depth,
            ExprKind::Binary(_, a, b) => a.depth.max(b.depth),
            ExprKind::Call { args, .. } => args.iter().map(|a| a.value.depth).max().unwrap_or(0),
            ExprKind::Index { base, indices } => indices
                .iter()
                .map(IndexItem::depth)
                .max()
                .unwrap_or(0)
                .max(base.depth),
            ExprKind::If { cond, then, els } => cond.depth.max(then.depth).max(els.depth),
            ExprKind::Loop(l) => l
                .init
                .depth
                .max(l.range.start.depth)
                .max(l.range.end.depth)
                .max(l.body.depth()),
            ExprKind::Comprehension(c) => c
                .value
                .depth
                .max(c.range.start.depth)
                .max(c.range.end.depth),
            ExprKind::Tuple(es) => es.iter().map(|e| e.depth).max().unwrap_or(0),
            ExprKind::Block(b) => b.depth(),
        };
        let too_deep = matches!(kind, ExprKind::TooDeep) || below >= MAX_DEPTH;
        if too_deep {
            Expr {
                kind: ExprKind::TooDeep,
                span,
                depth: MAX_DEPTH + 1,
            }
        } else {
            Expr {
                kind,
                span,
                depth: below + 1,
            }
        }
    }
}

/// One `key = value` line of a `train { }` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub key: Ident,
    pub value: SValue,
    pub span: Span,
}

/// A setting's value: a small language of its own (numbers, names, strings,
/// ranges, lists, and calls with positional and named arguments).
#[derive(Clone, Debug, PartialEq)]
pub struct SValue {
    pub kind: SValueKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SValueKind {
    /// The literal's text, with a leading `-` when negated.
    Number(String),
    Str(String),
    Name(String),
    /// `0..2`: half-open, as in Rust.
    Range(String, String),
    /// `1/255`: a number over a number (a data source's `scale`).
    Fraction(String, String),
    List(Vec<SValue>),
    Call {
        func: Ident,
        args: Vec<SArg>,
    },
}

/// A call argument in a setting: `"data.csv"` or `lr = 0.1`.
#[derive(Clone, Debug, PartialEq)]
pub struct SArg {
    pub name: Option<Ident>,
    pub value: SValue,
}

/// A binary operator node spanning `lo..hi` (used by the grammar's actions).
pub fn bin(op: BinOp, a: Expr, b: Expr, lo: usize, hi: usize) -> Expr {
    Expr::new(
        ExprKind::Binary(op, Box::new(a), Box::new(b)),
        Span::new(lo, hi),
    )
}
