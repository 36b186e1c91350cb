//! The builtin functions and operators: their names, parameters and
//! defaults (`SIGNATURES`). Their shape rules are in `prim.rs`.

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
    Log1p,
    Expm1,
    Erf,
    Floor,
    Round,
    /// The exact GELU, x Φ(x) = 0.5 x (1 + erf(x / √2)).
    Gelu,
    /// `leaky_relu(x, slope)`: x where x > 0, else slope x.
    LeakyRelu,
    /// `elu(x, alpha)`: x where x > 0, else alpha (exp(x) - 1).
    Elu,
    /// `clip(x, lo, hi)`: min(max(x, lo), hi), gradient 1 inside [lo, hi].
    Clip,
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
    /// A reduction along axes: `sum(x, axis = 1)`, `max(x, axis = [0, 2],
    /// keepdims = true)`.
    ReduceAxes(Reduction, Axes),
    /// `softmax(x, axis = k)`, the axis counted from 0.
    Softmax(usize),
    /// `log_softmax(x, axis = k)`.
    LogSoftmax(usize),
    /// `argmax(x, axis = k)`; without an axis, the flat index.
    ArgMax(Option<usize>),
    /// `argmin(x, axis = k)`; without an axis, the flat index.
    ArgMin(Option<usize>),
    // Vectors.
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
    // Sliding windows on [C, H, W] images, sizes constant.
    /// `conv2d(x, kernel, stride = 1, padding = 0)`.
    Conv2d {
        stride: usize,
        padding: usize,
    },
    /// `maxpool2d(x, k, stride = k)`.
    MaxPool2d {
        k: usize,
        stride: usize,
    },
    /// `avgpool2d(x, k, stride = k)`.
    AvgPool2d {
        k: usize,
        stride: usize,
    },
}

/// What a reduction of the source language computes over each slice.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reduction {
    Sum,
    Mean,
    Max,
    Min,
    Norm,
    LogSumExp,
}

impl Reduction {
    /// The builtin's name.
    pub fn name(self) -> &'static str {
        match self {
            Reduction::Sum => "sum",
            Reduction::Mean => "mean",
            Reduction::Max => "max",
            Reduction::Min => "min",
            Reduction::Norm => "norm",
            Reduction::LogSumExp => "logsumexp",
        }
    }

    /// The reduction of a whole tensor to a scalar, as before axes.
    pub fn whole(self) -> Prim {
        match self {
            Reduction::Sum => Prim::Sum,
            Reduction::Mean => Prim::Mean,
            Reduction::Max => Prim::MaxAll,
            Reduction::Min => Prim::MinAll,
            Reduction::Norm => Prim::Norm,
            Reduction::LogSumExp => Prim::LogSumExp,
        }
    }
}

/// The axes a reduction runs along (counted from 0, each once: a bit per
/// axis), and whether the result keeps them with length 1.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Axes {
    pub mask: u64,
    pub keepdims: bool,
}

impl Axes {
    /// The most axes a tensor may have to be reduced along some.
    pub const MAX_RANK: usize = 64;

    /// The axes in increasing order.
    pub fn list(self) -> Vec<usize> {
        (0..Self::MAX_RANK)
            .filter(|a| self.mask >> a & 1 == 1)
            .collect()
    }

    /// The result shape of reducing `s` along these axes, or a message if
    /// one is not an axis of `s`.
    pub fn shape(self, s: &Shape) -> Result<Shape, String> {
        if self.list().iter().any(|&a| a >= s.rank()) {
            return Err(format!("axes {:?} of a tensor of shape {s}", self.list()));
        }
        let dims = s.dims().iter().enumerate().filter_map(|(i, &d)| {
            match (self.mask >> i & 1 == 1, self.keepdims) {
                (false, _) => Some(d),
                (true, true) => Some(1),
                (true, false) => None,
            }
        });
        Ok(Shape(dims.collect()))
    }
}

/// What a call of a builtin by name means, once its arguments are bound.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Builtin {
    /// A primitive with a fixed number of tensor arguments.
    Prim(Prim),
    /// `where(c, a, b)`: the same as `if c then a else b`.
    Where,
    /// `one_hot(c, n)`: `n` must be a constant integer.
    OneHot,
    /// `sum(x, axis = none, keepdims = false)` and the other reductions:
    /// `axis` a constant integer or a list of them, `keepdims` `true` or
    /// `false`.
    Reduce(Reduction),
    /// `softmax(x, axis = -1)`, or with `log`, `log_softmax`.
    Softmax { log: bool },
    /// `argmax(x, axis = none)`, or with `min`, `argmin`.
    ArgMax { min: bool },
    /// `reshape(x, [a, b, ...])`: the shape a list of constant integers,
    /// one of them maybe -1.
    Reshape,
    /// `transpose(x, axes = none)`: the axes in the order listed (every axis
    /// once), or reversed.
    Transpose,
    /// `stack(a, b, ..., axis = 0)` (a new axis) or, with `concat`,
    /// `concat(a, b, ..., axis = 0)` (an existing one): any number of
    /// tensors, then `axis` by keyword.
    Join { concat: bool },
    /// `tril(x, k = 0)` (the elements on and below diagonal `k`), or with
    /// `upper`, `triu` (on and above).
    Tri { upper: bool },
    /// `diag(x)`: a vector's diagonal matrix, or a matrix's diagonal.
    Diag,
    /// `grad(of, wrt)`: the derivative of a scalar with respect to a name.
    Grad,
    /// `jvp(of, wrt, direction)`: a Jacobian-vector product.
    Jvp,
    /// `conv2d(x, kernel, stride = 1, padding = 0)`: the sizes constant
    /// integers.
    Conv2d,
    /// `maxpool2d(x, k, stride = k)`, or with `avg`, `avgpool2d`.
    Pool2d { avg: bool },
    /// `einsum("ij,jk->ik", a, b, ...)`: the subscripts, a string, then any
    /// number of tensors (see `types::einsum`).
    Einsum,
}

/// What an optional parameter defaults to.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Fallback {
    /// A number: a scalar argument.
    Number(f64),
    /// A word, for a setting fixed when the program is compiled (`axis =
    /// none`, `keepdims = false`).
    Word(&'static str),
}

/// A parameter of a builtin: its name (it may be passed by keyword) and, for
/// an optional one, the constant it defaults to. An optional parameter is a
/// scalar (the checker says so at the argument).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Param {
    pub name: &'static str,
    pub default: Option<Fallback>,
}

/// One way of calling a builtin: its parameters in order, the optional ones
/// last, and what a call means.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Signature {
    pub name: &'static str,
    pub params: &'static [Param],
    pub builtin: Builtin,
}

impl Signature {
    /// How many arguments must be given.
    pub fn required(&self) -> usize {
        self.params.iter().filter(|p| p.default.is_none()).count()
    }

    /// The parameter list as written in the documentation:
    /// `prediction, target, delta = 1`.
    pub fn params_text(&self) -> String {
        let shown: Vec<String> = self
            .params
            .iter()
            .map(|p| match p.default {
                Some(Fallback::Number(d)) => format!("{} = {}", p.name, crate::shape::fmt_num(d)),
                Some(Fallback::Word(w)) => format!("{} = {w}", p.name),
                None => p.name.to_string(),
            })
            .collect();
        shown.join(", ")
    }
}

const fn req(name: &'static str) -> Param {
    Param {
        name,
        default: None,
    }
}

const fn opt(name: &'static str, default: f64) -> Param {
    Param {
        name,
        default: Some(Fallback::Number(default)),
    }
}

const fn word(name: &'static str, default: &'static str) -> Param {
    Param {
        name,
        default: Some(Fallback::Word(default)),
    }
}

const fn reduce(name: &'static str, r: Reduction) -> Signature {
    Signature {
        name,
        params: REDUCE,
        builtin: Builtin::Reduce(r),
    }
}

const fn sig(name: &'static str, params: &'static [Param], prim: Prim) -> Signature {
    Signature {
        name,
        params,
        builtin: Builtin::Prim(prim),
    }
}

const X: &[Param] = &[req("x")];
const AB: &[Param] = &[req("a"), req("b")];
const PRED: &[Param] = &[req("prediction"), req("target")];
const REDUCE: &[Param] = &[req("x"), word("axis", "none"), word("keepdims", "false")];
const SOFTMAX: &[Param] = &[req("x"), opt("axis", -1.0)];
const ARGMAX: &[Param] = &[req("x"), word("axis", "none")];
const POOL: &[Param] = &[req("x"), req("k"), word("stride", "k")];

/// Every builtin function: the one table of names, parameters, defaults and
/// meanings. A name with several entries (`max(x, axis = none, keepdims =
/// false)`, `max(a, b)`) is chosen by the arguments given (see
/// `call::choose`); entries of one name are adjacent.
pub const SIGNATURES: &[Signature] = &[
    sig("exp", X, Prim::Exp),
    sig("log", X, Prim::Log),
    sig("sqrt", X, Prim::Sqrt),
    sig("abs", X, Prim::Abs),
    sig("sign", X, Prim::Sign),
    sig("sin", X, Prim::Sin),
    sig("cos", X, Prim::Cos),
    sig("tanh", X, Prim::Tanh),
    sig("sigmoid", X, Prim::Sigmoid),
    sig("relu", X, Prim::Relu),
    sig("softplus", X, Prim::Softplus),
    sig("log1p", X, Prim::Log1p),
    sig("expm1", X, Prim::Expm1),
    sig("erf", X, Prim::Erf),
    sig("gelu", X, Prim::Gelu),
    sig(
        "leaky_relu",
        &[req("x"), opt("slope", 0.01)],
        Prim::LeakyRelu,
    ),
    sig("elu", &[req("x"), opt("alpha", 1.0)], Prim::Elu),
    sig(
        "clip",
        &[
            req("x"),
            opt("lo", f64::NEG_INFINITY),
            opt("hi", f64::INFINITY),
        ],
        Prim::Clip,
    ),
    sig("floor", X, Prim::Floor),
    sig("round", X, Prim::Round),
    reduce("max", Reduction::Max),
    sig("max", AB, Prim::Max2),
    reduce("min", Reduction::Min),
    sig("min", AB, Prim::Min2),
    sig("pow", &[req("base"), req("exponent")], Prim::Pow),
    reduce("sum", Reduction::Sum),
    reduce("mean", Reduction::Mean),
    reduce("norm", Reduction::Norm),
    reduce("logsumexp", Reduction::LogSumExp),
    Signature {
        name: "softmax",
        params: SOFTMAX,
        builtin: Builtin::Softmax { log: false },
    },
    Signature {
        name: "log_softmax",
        params: SOFTMAX,
        builtin: Builtin::Softmax { log: true },
    },
    Signature {
        name: "argmax",
        params: ARGMAX,
        builtin: Builtin::ArgMax { min: false },
    },
    Signature {
        name: "argmin",
        params: ARGMAX,
        builtin: Builtin::ArgMax { min: true },
    },
    Signature {
        name: "one_hot",
        params: &[req("class"), req("classes")],
        builtin: Builtin::OneHot,
    },
    sig("dot", AB, Prim::Dot),
    sig("outer", AB, Prim::Outer),
    Signature {
        name: "transpose",
        params: &[req("x"), word("axes", "none")],
        builtin: Builtin::Transpose,
    },
    Signature {
        name: "stack",
        params: &[req("tensors"), opt("axis", 0.0)],
        builtin: Builtin::Join { concat: false },
    },
    Signature {
        name: "concat",
        params: &[req("tensors"), opt("axis", 0.0)],
        builtin: Builtin::Join { concat: true },
    },
    Signature {
        name: "einsum",
        params: &[req("subscripts"), req("operands")],
        builtin: Builtin::Einsum,
    },
    Signature {
        name: "tril",
        params: &[req("x"), opt("k", 0.0)],
        builtin: Builtin::Tri { upper: false },
    },
    Signature {
        name: "triu",
        params: &[req("x"), opt("k", 0.0)],
        builtin: Builtin::Tri { upper: true },
    },
    Signature {
        name: "diag",
        params: X,
        builtin: Builtin::Diag,
    },
    Signature {
        name: "conv2d",
        params: &[
            req("x"),
            req("kernel"),
            opt("stride", 1.0),
            opt("padding", 0.0),
        ],
        builtin: Builtin::Conv2d,
    },
    Signature {
        name: "maxpool2d",
        params: POOL,
        builtin: Builtin::Pool2d { avg: false },
    },
    Signature {
        name: "avgpool2d",
        params: POOL,
        builtin: Builtin::Pool2d { avg: true },
    },
    Signature {
        name: "reshape",
        params: &[req("x"), req("shape")],
        builtin: Builtin::Reshape,
    },
    Signature {
        name: "grad",
        params: &[req("of"), req("wrt")],
        builtin: Builtin::Grad,
    },
    Signature {
        name: "jvp",
        params: &[req("of"), req("wrt"), req("direction")],
        builtin: Builtin::Jvp,
    },
    Signature {
        name: "where",
        params: &[req("condition"), req("if_true"), req("if_false")],
        builtin: Builtin::Where,
    },
    sig("mse", PRED, Prim::Mse),
    sig("bce", PRED, Prim::Bce),
    sig(
        "bce_logits",
        &[req("logit"), req("target")],
        Prim::BceLogits,
    ),
    sig(
        "cross_entropy",
        &[req("logits"), req("class")],
        Prim::CrossEntropy,
    ),
    sig(
        "huber",
        &[req("prediction"), req("target"), opt("delta", 1.0)],
        Prim::Huber,
    ),
];

/// Names of the builtin functions, in the table's order, each once: for
/// hints and completion.
pub fn names() -> impl Iterator<Item = &'static str> {
    SIGNATURES
        .iter()
        .enumerate()
        .filter(|(i, s)| *i == 0 || SIGNATURES[i - 1].name != s.name)
        .map(|(_, s)| s.name)
}

pub fn is_builtin(name: &str) -> bool {
    SIGNATURES.iter().any(|s| s.name == name)
}

/// The ways of calling the builtin `name` (empty when there is none).
pub fn signatures(name: &str) -> &'static [Signature] {
    let Some(first) = SIGNATURES.iter().position(|s| s.name == name) else {
        return &[];
    };
    let n = SIGNATURES[first..]
        .iter()
        .take_while(|s| s.name == name)
        .count();
    &SIGNATURES[first..first + n]
}

/// What a builtin accepts, for an arity error: `1 argument (x) or 2
/// arguments (a, b)`, `2 or 3 arguments (prediction, target, delta = 1)`.
pub fn arity_text(sigs: &[Signature]) -> String {
    let one = |s: &Signature| {
        let (lo, hi) = (s.required(), s.params.len());
        let count = if lo == hi {
            format!("{hi} argument{}", if hi == 1 { "" } else { "s" })
        } else if hi == lo + 1 {
            format!("{lo} or {hi} arguments")
        } else {
            format!("{lo} to {hi} arguments")
        };
        format!("{count} ({})", s.params_text())
    };
    let all: Vec<String> = sigs.iter().map(one).collect();
    all.join(" or ")
}
