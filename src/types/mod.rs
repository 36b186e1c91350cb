//! Names resolved and shapes checked: the syntax tree becomes a typed program
//! in which every expression has a static shape and every name is bound.
//!
//! User functions are specialised at each call: the body is checked again
//! with the shapes of that call's arguments, so `fn f(a, b) = ...` is
//! shape-polymorphic and the typed program holds one body per call.

pub mod builtins;
mod call;
pub mod check;
mod expr;
pub mod init;
pub mod train;

use crate::ir::SliceAxis;
use crate::shape::{Shape, Tensor};
use crate::span::Span;

pub use builtins::Prim;
pub use check::{check, CheckOptions};

/// A checked program: the declarations in order, and the typed expressions.
#[derive(Clone, Debug, Default)]
pub struct Program {
    pub params: Vec<ParamDecl>,
    pub inputs: Vec<InputDecl>,
    /// `let` bindings, in source order; later ones may refer to earlier ones.
    pub lets: Vec<Named>,
    pub loss: Option<TExpr>,
    pub metrics: Vec<Named>,
    pub outputs: Vec<Named>,
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
}
