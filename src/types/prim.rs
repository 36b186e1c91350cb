//! The shape rule, name and description of every primitive operation of
//! the source language ([`Prim`]).

use super::builtins::Prim;
use crate::ir::{broadcast, matmul};
use crate::shape::Shape;

impl Prim {
    /// Whether the operation's tensor operands are elementwise, so that
    /// they broadcast as in NumPy (the lowering makes that explicit).
    pub fn broadcasts(self) -> bool {
        use Prim::*;
        let arithmetic = [Add, Sub, Mul, Div, Pow, Max2, Min2];
        let comparisons = [Eq, Ne, Lt, Le, Gt, Ge];
        let losses = [Mse, Bce, BceLogits, Huber];
        [&arithmetic[..], &comparisons, &losses]
            .concat()
            .contains(&self)
    }

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
            Log1p => "log1p",
            Expm1 => "expm1",
            Erf => "erf",
            Floor => "floor",
            Round => "round",
            Gelu => "gelu",
            LeakyRelu => "leaky_relu",
            Elu => "elu",
            Clip => "clip",
            Max2 | MaxAll => "max",
            Min2 | MinAll => "min",
            Sum => "sum",
            Mean => "mean",
            Norm => "norm",
            LogSumExp => "logsumexp",
            ReduceAxes(r, _) => r.name(),
            Softmax(_) => "softmax",
            LogSoftmax(_) => "log_softmax",
            ArgMax(_) => "argmax",
            ArgMin(_) => "argmin",
            OneHot(_) => "one_hot",
            Dot => "dot",
            Outer => "outer",
            Transpose => "transpose",
            Mse => "mse",
            Bce => "bce",
            BceLogits => "bce_logits",
            CrossEntropy => "cross_entropy",
            Huber => "huber",
            Conv2d { .. } => "conv2d",
            MaxPool2d { .. } => "maxpool2d",
            AvgPool2d { .. } => "avgpool2d",
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
            Neg | Exp | Log | Sqrt | Abs | Sign | Sin | Cos | Tanh | Sigmoid | Relu | Softplus
            | Log1p | Expm1 | Erf | Floor | Round | Gelu => Ok(args[0].clone()),
            LeakyRelu | Elu | Clip => {
                // The extra arguments (slope, alpha, bounds) are scalars.
                if let Some(s) = args[1..].iter().find(|s| !s.is_scalar()) {
                    return Err(format!(
                        "`{}` needs scalar {}, found shape {s}",
                        self.name(),
                        match self {
                            LeakyRelu => "slope",
                            Elu => "alpha",
                            _ => "bounds",
                        }
                    ));
                }
                Ok(args[0].clone())
            }
            Add | Sub | Mul | Div | Pow | Eq | Ne | Lt | Le | Gt | Ge | Max2 | Min2 => {
                broadcast::shapes(args[0], args[1]).map_err(|c| {
                    format!(
                        "cannot {} shapes {} and {}: {c}",
                        self.describe(),
                        args[0],
                        args[1]
                    )
                })
            }
            MatMul => {
                matmul::shape(args[0], args[1]).map_err(|m| matmul_message(args[0], args[1], m))
            }
            Sum | Mean | MaxAll | MinAll | Norm | LogSumExp => Ok(Shape::scalar()),
            ReduceAxes(_, axes) => axes.shape(args[0]),
            Softmax(axis) | LogSoftmax(axis) | ArgMax(Some(axis)) | ArgMin(Some(axis)) => {
                if axis >= args[0].rank() {
                    return Err(format!(
                        "`{}` along axis {axis} of a tensor of shape {}",
                        self.name(),
                        args[0]
                    ));
                }
                match self {
                    ArgMax(_) | ArgMin(_) => Ok(Shape(crate::ir::axes::kept(args[0], &[axis]))),
                    _ => Ok(args[0].clone()),
                }
            }
            ArgMax(None) | ArgMin(None) => Ok(Shape::scalar()),
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
                broadcast::shapes(args[0], args[1])
                    .map(|_| Shape::scalar())
                    .map_err(|c| {
                        format!(
                            "`{}` needs a prediction and a target whose shapes broadcast, found {} and {}: {c}",
                            self.name(),
                            args[0],
                            args[1]
                        )
                    })
            }
            Conv2d { .. } | MaxPool2d { .. } | AvgPool2d { .. } => {
                crate::types::window::window_shape(self, args)
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

fn matmul_message(a: &Shape, b: &Shape, why: matmul::Mismatch) -> String {
    match why {
        matmul::Mismatch::Scalar => {
            format!("cannot multiply {a} @ {b}: `@` takes vectors, matrices and stacks of matrices, not scalars")
        }
        matmul::Mismatch::Inner(k, k2) => {
            format!("cannot multiply {a} @ {b}: the inner dimensions {k} and {k2} differ")
        }
        matmul::Mismatch::Batch(ba, bb, c) => {
            let (x, y) = c.lengths;
            format!(
                "cannot multiply {a} @ {b}: the batch axes {ba} and {bb} do not broadcast, with lengths {x} and {y} on their axis -{}",
                c.from_end
            )
        }
    }
}
