//! The SSA IR: one straight-line function of tensor-valued instructions with
//! static shapes.
//!
//! Instructions live in an arena (`Function::insts`) and are named by their
//! index, a [`Value`]. Every argument of an instruction is an earlier value, so
//! the arena order is a topological order: there are no blocks and no phis,
//! `if` is the [`Op::Select`] instruction. The printer's text is the canonical
//! form that snapshot tests compare.

pub mod interp;
pub mod printer;
pub mod stats;
pub mod verify;

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::shape::{Shape, Tensor};
use crate::span::Span;

/// An SSA value: the index of the instruction that defines it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(pub u32);

impl Value {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Elementwise functions of one argument.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Unary {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    /// -1, 0 or 1.
    Sign,
    Sin,
    Cos,
    Tanh,
    /// Stable for large |x|: computed piecewise by the sign of x.
    Sigmoid,
    Relu,
    /// Stable: max(x, 0) + log1p(exp(-|x|)).
    Softplus,
}

impl Unary {
    /// Every elementwise function of one argument, for tests and tables.
    pub const ALL: [Unary; 12] = [
        Unary::Neg,
        Unary::Exp,
        Unary::Log,
        Unary::Sqrt,
        Unary::Abs,
        Unary::Sign,
        Unary::Sin,
        Unary::Cos,
        Unary::Tanh,
        Unary::Sigmoid,
        Unary::Relu,
        Unary::Softplus,
    ];
}

/// Elementwise functions of two arguments; a scalar argument broadcasts.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    /// Comparisons give 1.0 or 0.0.
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Binary cross-entropy on a logit z and a target y, stable for large |z|:
    /// max(z, 0) - z*y + log1p(exp(-|z|)).
    BceLogits,
}

impl Binary {
    /// Every elementwise function of two arguments, for tests and tables.
    pub const ALL: [Binary; 14] = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Pow,
        Binary::Max,
        Binary::Min,
        Binary::Eq,
        Binary::Ne,
        Binary::Lt,
        Binary::Le,
        Binary::Gt,
        Binary::Ge,
        Binary::BceLogits,
    ];
}

/// How one axis of a tensor is selected by [`Op::Slice`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SliceAxis {
    /// One position; the axis is removed.
    At(usize),
    /// The half-open range `lo..hi`; the axis stays, with length `hi - lo`.
    Range(usize, usize),
}

/// Constant data, compared and hashed by bit pattern so that CSE can key on it.
#[derive(Clone, Debug)]
pub struct ConstData(pub Tensor);

impl PartialEq for ConstData {
    fn eq(&self, other: &Self) -> bool {
        self.0.shape == other.0.shape
            && self.0.data.len() == other.0.data.len()
            && self
                .0
                .data
                .iter()
                .zip(&other.0.data)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

impl Eq for ConstData {}

impl Hash for ConstData {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.shape.hash(state);
        for x in &self.0.data {
            x.to_bits().hash(state);
        }
    }
}

/// One operation. Every pass, the printer, the interpreter, the autodiff and
/// the backend match on this exhaustively.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// The i-th parameter (no arguments).
    Param(usize),
    /// The i-th input of one example (no arguments).
    Input(usize),
    /// A constant tensor (no arguments).
    Const(ConstData),
    Unary(Unary),
    /// Two arguments of equal shape, or one of them a scalar.
    Binary(Binary),
    /// `(c, a, b)`: elementwise `if c != 0 then a else b`; scalars broadcast.
    Select,
    /// `[m,k]@[k,n] -> [m,n]`, `[m,k]@[k] -> [m]`, `[k]@[k,n] -> [n]`, `[k]@[k] -> []`.
    MatMul,
    /// `[m] x [n] -> [m, n]`.
    Outer,
    /// `[m, n] -> [n, m]`.
    Transpose,
    /// Sum of all elements, to a scalar.
    Sum,
    /// Largest element, to a scalar.
    ReduceMax,
    /// Euclidean norm of all elements, to a scalar.
    Norm,
    /// log(sum(exp(x))) over all elements with the maximum shifted out.
    LogSumExp,
    /// Of a vector.
    Softmax,
    /// Of a vector: x - logsumexp(x).
    LogSoftmax,
    /// A scalar repeated to the given shape.
    Broadcast(Shape),
    /// Selects one position or a range on every axis of its argument.
    Slice(Vec<SliceAxis>),
    /// The adjoint of `Slice`: places its argument into zeros of `shape` at
    /// the positions the same `Slice` would read.
    Unslice(Vec<SliceAxis>, Shape),
    /// k arguments of one shape `s`, stacked to `[k, s...]`.
    Pack,
    /// A scalar class index c to the vector `[c == 0, c == 1, ..., c == n-1]`.
    OneHot(usize),
}

/// What a result of the function means.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The per-example loss (a scalar).
    Loss,
    Metric,
    Output,
    /// The gradient of the loss with respect to the i-th parameter.
    Grad(usize),
}

/// A named value the function returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub role: Role,
    pub name: String,
    pub value: Value,
}

/// A parameter or input slot of the function.
#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    pub name: String,
    pub shape: Shape,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Inst {
    pub op: Op,
    pub args: Vec<Value>,
    pub shape: Shape,
    /// The user's name for this value (`let z = ...`), used by the printer.
    pub name: Option<String>,
    /// The source this instruction was lowered from.
    pub span: Span,
}

/// A straight-line program over parameters and the inputs of one example.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Function {
    pub params: Vec<Slot>,
    pub inputs: Vec<Slot>,
    pub insts: Vec<Inst>,
    pub outputs: Vec<Output>,
}

impl Function {
    pub fn new(params: Vec<Slot>, inputs: Vec<Slot>) -> Function {
        Function {
            params,
            inputs,
            insts: Vec::new(),
            outputs: Vec::new(),
        }
    }

    pub fn inst(&self, v: Value) -> &Inst {
        &self.insts[v.index()]
    }

    pub fn shape(&self, v: Value) -> &Shape {
        &self.insts[v.index()].shape
    }

    /// Appends an instruction; its shape is inferred from the operation and the
    /// argument shapes. Panics on ill-shaped arguments: the checker and the
    /// passes must never produce them, so that is a compiler bug.
    pub fn push(&mut self, op: Op, args: Vec<Value>, span: Span) -> Value {
        let shapes: Vec<&Shape> = args.iter().map(|&a| self.shape(a)).collect();
        let shape = match verify::result_shape(self, &op, &shapes) {
            Ok(s) => s,
            Err(e) => panic!("ill-shaped {op:?} {args:?}: {e}"),
        };
        self.insts.push(Inst {
            op,
            args,
            shape,
            name: None,
            span,
        });
        Value((self.insts.len() - 1) as u32)
    }

    /// Gives a value the user's name, unless it has one already.
    pub fn set_name(&mut self, v: Value, name: &str) {
        let inst = &mut self.insts[v.index()];
        if inst.name.is_none() {
            inst.name = Some(name.to_string());
        }
    }

    /// The value returned in the given role, if any.
    pub fn output(&self, role: &Role) -> Option<Value> {
        self.outputs
            .iter()
            .find(|o| &o.role == role)
            .map(|o| o.value)
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&printer::print(self))
    }
}
