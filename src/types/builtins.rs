//! The builtin functions and operators: their names, arities and shape rules.

use crate::ir::verify::{broadcast, matmul};
use crate::shape::Shape;

/// A builtin operation of the source language (before lowering to IR).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Prim {
    // Operators.
    Neg,
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
    // Elementwise functions.
    Exp,
    Log,
    Sqrt,
    Abs,
    Sign,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Relu,
    Softplus,
    /// `max(a, b)`, elementwise.
    Max2,
    /// `min(a, b)`, elementwise.
    Min2,
    // Reductions to a scalar.
    Sum,
    Mean,
    /// `max(x)`.
    MaxAll,
    /// `min(x)`.
    MinAll,
    Norm,
    LogSumExp,
    // Vectors.
    Softmax,
    LogSoftmax,
    /// `one_hot(c, n)`; the class count is the constant `n`.
    OneHot(usize),
    Dot,
    Outer,
    Transpose,
    // Losses: the mean over elements where the arguments are tensors.
    Mse,
    Bce,
    BceLogits,
    CrossEntropy,
    Huber,
}

/// What a call of a builtin by name means, once its arguments are counted.
pub enum Builtin {
    /// A primitive with a fixed number of tensor arguments.
    Prim(Prim),
    /// `where(c, a, b)`: the same as `if c then a else b`.
    Where,
    /// `one_hot(c, n)`: `n` must be a constant integer.
    OneHot,
}

/// Names of the builtin functions, for hints and completion.
pub const NAMES: &[&str] = &[
    "exp",
    "log",
    "sqrt",
    "abs",
    "sign",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "relu",
    "softplus",
    "max",
    "min",
    "pow",
    "sum",
    "mean",
    "norm",
    "logsumexp",
    "softmax",
    "log_softmax",
    "one_hot",
    "dot",
    "outer",
    "transpose",
    "where",
    "mse",
    "bce",
    "bce_logits",
    "cross_entropy",
    "huber",
];

pub fn is_builtin(name: &str) -> bool {
    NAMES.contains(&name)
}

/// Resolves a builtin call by name and argument count. `Err` holds the
/// accepted arities, for the message.
pub fn lookup(name: &str, nargs: usize) -> Option<Result<Builtin, &'static str>> {
    use Prim::*;
    let unary = |p: Prim| match nargs {
        1 => Ok(Builtin::Prim(p)),
        _ => Err("1 argument"),
    };
    let binary = |p: Prim| match nargs {
        2 => Ok(Builtin::Prim(p)),
        _ => Err("2 arguments"),
    };
    Some(match name {
        "exp" => unary(Exp),
        "log" => unary(Log),
        "sqrt" => unary(Sqrt),
        "abs" => unary(Abs),
        "sign" => unary(Sign),
        "sin" => unary(Sin),
        "cos" => unary(Cos),
        "tanh" => unary(Tanh),
        "sigmoid" => unary(Sigmoid),
        "relu" => unary(Relu),
        "softplus" => unary(Softplus),
        "sum" => unary(Sum),
        "mean" => unary(Mean),
        "norm" => unary(Norm),
        "logsumexp" => unary(LogSumExp),
        "softmax" => unary(Softmax),
        "log_softmax" => unary(LogSoftmax),
        "transpose" => unary(Transpose),
        "pow" => binary(Pow),
        "dot" => binary(Dot),
        "outer" => binary(Outer),
        "mse" => binary(Mse),
        "bce" => binary(Bce),
        "bce_logits" => binary(BceLogits),
        "cross_entropy" => binary(CrossEntropy),
        "max" | "min" => match (name, nargs) {
            ("max", 1) => Ok(Builtin::Prim(MaxAll)),
            ("max", 2) => Ok(Builtin::Prim(Max2)),
            ("min", 1) => Ok(Builtin::Prim(MinAll)),
            ("min", 2) => Ok(Builtin::Prim(Min2)),
            _ => Err("1 argument (a reduction) or 2 (elementwise)"),
        },
        "huber" => match nargs {
            2 | 3 => Ok(Builtin::Prim(Huber)),
            _ => Err("2 or 3 arguments (prediction, target, delta = 1)"),
        },
        "where" => match nargs {
            3 => Ok(Builtin::Where),
            _ => Err("3 arguments (condition, then, else)"),
        },
        "one_hot" => match nargs {
            2 => Ok(Builtin::OneHot),
            _ => Err("2 arguments (class, number of classes)"),
        },
        _ => return None,
    })
}

impl Prim {
    /// How the operation reads in an error message.
    pub fn describe(self) -> String {
        match self {
            Prim::Neg => "negate".into(),
            Prim::Add => "add".into(),
            Prim::Sub => "subtract".into(),
            Prim::Mul => "multiply".into(),
            Prim::Div => "divide".into(),
            Prim::Pow => "raise".into(),
            Prim::MatMul => "matrix-multiply".into(),
            Prim::Eq | Prim::Ne | Prim::Lt | Prim::Le | Prim::Gt | Prim::Ge => "compare".into(),
            other => format!("apply `{}` to", other.name()),
        }
    }

    /// The source name of a builtin function.
    pub fn name(self) -> &'static str {
        use Prim::*;
        match self {
            Neg => "-",
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Pow => "^",
            MatMul => "@",
            Eq => "==",
            Ne => "!=",
            Lt => "<",
            Le => "<=",
            Gt => ">",
            Ge => ">=",
            Exp => "exp",
            Log => "log",
            Sqrt => "sqrt",
            Abs => "abs",
            Sign => "sign",
            Sin => "sin",
            Cos => "cos",
            Tanh => "tanh",
            Sigmoid => "sigmoid",
            Relu => "relu",
            Softplus => "softplus",
            Max2 | MaxAll => "max",
            Min2 | MinAll => "min",
            Sum => "sum",
            Mean => "mean",
            Norm => "norm",
            LogSumExp => "logsumexp",
            Softmax => "softmax",
            LogSoftmax => "log_softmax",
            OneHot(_) => "one_hot",
            Dot => "dot",
            Outer => "outer",
            Transpose => "transpose",
            Mse => "mse",
            Bce => "bce",
            BceLogits => "bce_logits",
            CrossEntropy => "cross_entropy",
            Huber => "huber",
        }
    }

    /// The result shape for arguments of the given shapes, or a message that
    /// names the shapes involved.
    pub fn shape(self, args: &[&Shape]) -> Result<Shape, String> {
        use Prim::*;
        let vector = |s: &Shape| -> Result<usize, String> {
            match s.dims() {
                [n] => Ok(*n),
                _ => Err(format!("`{}` needs a vector, found shape {s}", self.name())),
            }
        };
        match self {
            Neg | Exp | Log | Sqrt | Abs | Sign | Sin | Cos | Tanh | Sigmoid | Relu | Softplus => {
                Ok(args[0].clone())
            }
            Add | Sub | Mul | Div | Pow | Eq | Ne | Lt | Le | Gt | Ge | Max2 | Min2 => {
                broadcast(args[0], args[1]).map_err(|_| {
                    format!(
                        "cannot {} shapes {} and {}",
                        self.describe(),
                        args[0],
                        args[1]
                    )
                })
            }
            MatMul => matmul(args[0], args[1]).map_err(|_| matmul_message(args[0], args[1])),
            Sum | Mean | MaxAll | MinAll | Norm | LogSumExp => Ok(Shape::scalar()),
            Softmax | LogSoftmax => vector(args[0]).map(|_| args[0].clone()),
            OneHot(n) => {
                if args[0].is_scalar() {
                    Ok(Shape::vector(n))
                } else {
                    Err(format!(
                        "`one_hot` needs a scalar class index, found shape {}",
                        args[0]
                    ))
                }
            }
            Dot => {
                let (m, n) = (vector(args[0])?, vector(args[1])?);
                if m == n {
                    Ok(Shape::scalar())
                } else {
                    Err(format!(
                        "`dot` needs vectors of one length, found {} and {}",
                        args[0], args[1]
                    ))
                }
            }
            Outer => Ok(Shape::matrix(vector(args[0])?, vector(args[1])?)),
            Transpose => match args[0].dims() {
                [m, n] => Ok(Shape::matrix(*n, *m)),
                _ => Err(format!(
                    "only a matrix can be transposed, found shape {}",
                    args[0]
                )),
            },
            Mse | Bce | BceLogits | Huber => {
                if let Some(d) = args.get(2) {
                    if !d.is_scalar() {
                        return Err(format!("huber's delta must be a scalar, found shape {d}"));
                    }
                }
                broadcast(args[0], args[1])
                    .map(|_| Shape::scalar())
                    .map_err(|_| {
                        format!(
                            "`{}` needs a prediction and a target of one shape, found {} and {}",
                            self.name(),
                            args[0],
                            args[1]
                        )
                    })
            }
            CrossEntropy => {
                vector(args[0])?;
                if args[1].is_scalar() {
                    Ok(Shape::scalar())
                } else {
                    Err(format!(
                        "`cross_entropy` takes logits and a scalar class index, found class of shape {}",
                        args[1]
                    ))
                }
            }
        }
    }
}

fn matmul_message(a: &Shape, b: &Shape) -> String {
    match (a.dims(), b.dims()) {
        ([_, k], [k2, ..]) | ([k], [k2, ..]) if a.rank() <= 2 && b.rank() <= 2 => {
            format!("cannot multiply {a} @ {b}: the inner dimensions {k} and {k2} differ")
        }
        _ => format!("cannot multiply {a} @ {b}: `@` takes vectors and matrices"),
    }
}
