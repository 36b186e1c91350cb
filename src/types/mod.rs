//! Names resolved and shapes checked: the syntax tree becomes a typed program
//! in which every expression has a static shape and every name is bound.
//!
//! User functions are specialised at each call: the body is checked again
//! with the shapes of that call's arguments, so `fn f(a, b) = ...` is
//! shape-polymorphic and the typed program holds one body per call.

mod axes;
pub mod builtins;
mod call;
pub mod check;
mod derivative;
pub mod dims;
mod einsum;
mod expr;
mod index;
pub mod init;
mod loops;
mod prim;
mod residual;
mod shapes;
pub mod train;
mod window;

use crate::ir::SliceAxis;
use crate::shape::{Shape, Tensor};
use crate::span::Span;

pub use builtins::Prim;
pub use check::{check, CheckOptions};

/// A checked program: the declarations in order, and the typed expressions.
#[derive(Clone, Debug, Default)]
pub struct Program {
    /// The sizes (`dim D`) and the values they were bound to, in order.
    pub sizes: Vec<(String, usize)>,
    pub params: Vec<ParamDecl>,
    pub inputs: Vec<InputDecl>,
    /// `let` bindings, in source order; later ones may refer to earlier ones.
    pub lets: Vec<Named>,
    pub loss: Option<TExpr>,
    pub metrics: Vec<Named>,
    pub outputs: Vec<Named>,
    /// `residual r = expr`: the per-example residual of a least-squares fit
    /// (scalar or any shape). A program with one has no `loss` item: its
    /// loss is `0.5 * sum(r^2)` per example (half the mean squared residual
    /// over the examples), added by lowering.
    pub residual: Option<Named>,
    pub train: Option<train::TrainConfig>,
}

#[derive(Clone, Debug)]
pub struct ParamDecl {
    pub name: String,
    pub shape: Shape,
    pub init: init::Init,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct InputDecl {
    pub name: String,
    pub shape: Shape,
    pub span: Span,
}

/// A named expression: a `let`, a metric or an output.
#[derive(Clone, Debug)]
pub struct Named {
    pub name: String,
    pub value: TExpr,
    pub span: Span,
    /// For `let (a, b) = ...`: the names of the tuple's parts (`name` then
    /// reads `a, b`); empty otherwise.
    pub parts: Vec<String>,
}

/// A typed expression.
#[derive(Clone, Debug)]
pub struct TExpr {
    pub kind: TKind,
    pub shape: Shape,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum TKind {
    Const(Tensor),
    Param(usize),
    Input(usize),
    /// The i-th `let` of the program.
    Let(usize),
    /// The i-th argument of the innermost user-function call.
    Arg(usize),
    /// A builtin function or operator.
    Prim(Prim, Vec<TExpr>),
    /// A tensor literal with non-constant elements: `[a, b]`.
    Pack(Vec<TExpr>),
    /// Constant indexing or slicing.
    Slice(Box<TExpr>, Vec<SliceAxis>),
    /// `if c then a else b`, elementwise.
    If(Box<TExpr>, Box<TExpr>, Box<TExpr>),
    /// A call of a user function, with the body specialised to these arguments.
    Call {
        name: String,
        args: Vec<TExpr>,
        body: Box<TExpr>,
    },
    /// A local name (a loop's carried value or step, a block's `let`), by
    /// its number, unique in the program.
    Local(usize),
    /// Part `k` of the tuple-valued `let` `i` (`let (a, b) = ...`).
    LetPart(usize, usize),
    /// `x[i]` for an index computed at run time: the row `i` of the leading
    /// axis; for a tensor of indices, the rows they name, stacked in the
    /// indices' shape.
    Index(Box<TExpr>, Box<TExpr>),
    /// `(a, b)`: a tuple of tensors.
    Tuple(Vec<TExpr>),
    /// The elements of a tensor, in row-major order, in this expression's
    /// shape (`reshape`).
    Reshape(Box<TExpr>),
    /// The axes of a tensor reordered (`transpose(x, axes)`): axis `i` of
    /// the result is axis `perm[i]` of the argument.
    Permute(Box<TExpr>, Vec<usize>),
    /// Tensors joined along their first axis (`concat`).
    Concat(Vec<TExpr>),
    /// `{ let ... value }`: each `let` binds the locals listed (one, or one
    /// per part of a tuple).
    Block(Vec<(Vec<usize>, TExpr)>, Box<TExpr>),
    /// A loop or a comprehension.
    Loop(Box<TLoop>),
    /// `grad(of, wrt)`: the derivative of the scalar `of` with respect to
    /// the value `wrt` names (a param, an input, a `let`, a local), shaped
    /// like it.
    Grad(Box<TExpr>, Box<TExpr>),
    /// `jvp(of, wrt, direction)`: the Jacobian of `of` with respect to the
    /// value `wrt` names, times `direction`, by forward mode; shaped like
    /// `of`.
    Jvp(Box<TExpr>, Box<TExpr>, Box<TExpr>),
}

/// A typed loop: `loop CARRIES = INIT for VAR in START..START+TRIPS BODY`,
/// or, when `stacked`, the comprehension `[BODY for VAR in ...]` (no
/// carried values; the body's values are stacked).
#[derive(Clone, Debug)]
pub struct TLoop {
    /// The locals of the carried values, and their names.
    pub carries: Vec<usize>,
    pub names: Vec<String>,
    /// Their initial values: a tensor, or a tuple of one per carried value.
    pub init: Option<TExpr>,
    /// The local of the step, and its name.
    pub var: usize,
    pub var_name: String,
    pub start: i64,
    pub trips: usize,
    /// The new carried values (or the stacked value).
    pub body: TExpr,
    pub stacked: bool,
}

impl TExpr {
    /// The shapes of a tuple's parts, or `None` for a tensor (whose shape
    /// is `shape`; a tuple's `shape` means nothing).
    pub fn parts(&self) -> Option<Vec<Shape>> {
        match &self.kind {
            TKind::Tuple(es) => Some(es.iter().map(|e| e.shape.clone()).collect()),
            TKind::Loop(l) if !l.stacked && l.carries.len() > 1 => {
                l.init.as_ref().and_then(TExpr::parts)
            }
            TKind::Call { body, .. } => body.parts(),
            TKind::Block(_, value) => value.parts(),
            _ => None,
        }
    }
}
