//! The elementwise functions of the IR ([`Unary`], [`Binary`]) and the
//! reductions along axes ([`Reduce`]): their names and lists.

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
    /// log(1 + x), accurate for small |x|.
    Log1p,
    /// exp(x) - 1, accurate for small |x|.
    Expm1,
    /// The error function.
    Erf,
    /// The largest integer not above x; no gradient.
    Floor,
    /// The nearest integer, ties to even (as PyTorch and NumPy); no gradient.
    Round,
}

impl Unary {
    /// Every elementwise function of one argument, for tests and tables.
    pub const ALL: [Unary; 17] = [
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
        Unary::Log1p,
        Unary::Expm1,
        Unary::Erf,
        Unary::Floor,
        Unary::Round,
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

/// What a reduction along axes ([`Op::ReduceAxes`](super::Op::ReduceAxes)) computes over each
/// slice: the arithmetic of the whole-tensor reduction of the same name.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reduce {
    /// As [`Op::Sum`](super::Op::Sum).
    Sum,
    /// As [`Op::ReduceMax`](super::Op::ReduceMax).
    Max,
    /// As [`Op::Norm`](super::Op::Norm).
    Norm,
    /// As [`Op::LogSumExp`](super::Op::LogSumExp).
    LogSumExp,
}
