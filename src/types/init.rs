//! Parameter initialisers: checking the `= INIT` of a `param` declaration and
//! drawing the initial values from a seeded random number generator.
//!
//! An initialiser is a constant, never a computation:
//! - nothing: zeros;
//! - a number such as `0.5` or `-3`: every element of the declared shape (a
//!   scalar when no shape is declared) is that number;
//! - a tensor literal such as `[1, 2]` or `[[1, 2], [3, 4]]`: its own shape,
//!   which must equal the declared shape when one is given;
//! - `zeros`, `ones`, `glorot`, `he`, bare or with `()`;
//! - `normal(mean, std)` and `uniform(lo, hi)`, with two arguments or none:
//!   `normal` alone is `normal(0, 1)` and `uniform` alone is `uniform(0, 1)`,
//!   the PyTorch defaults. One positional argument is refused, because
//!   `normal(0.1)` reads as a standard deviation to some and as a mean to
//!   others; by keyword it is clear: `normal(std = 0.1)`.
//!
//! Arguments and tensor elements are number literals, possibly signed.

use std::fmt;

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use crate::diagnostic::Diagnostic;
use crate::shape::{fmt_num, Shape, Tensor};
use crate::span::Span;
use crate::syntax::ast::{Arg, Expr, ExprKind, UnOp};
use crate::types::call::{self, Callee};

/// How a parameter gets its first value.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// Every element 0 (also what no initialiser means).
    Zeros,
    /// Every element 1.
    Ones,
    /// Every element the given number.
    Fill(f64),
    /// Exactly these values; the tensor's shape is the parameter's shape.
    Literal(Tensor),
    /// Independent draws from a normal distribution.
    Normal { mean: f64, std: f64 },
    /// Independent draws from the half-open interval `[lo, hi)`.
    Uniform { lo: f64, hi: f64 },
    /// Glorot (Xavier) uniform: `uniform(-a, a)` with
    /// `a = sqrt(6 / (fan_in + fan_out))`; see [`fans`].
    Glorot,
    /// He (Kaiming) normal for ReLU layers: `normal(0, sqrt(2 / fan_in))`;
    /// see [`fans`].
    He,
}

/// The names an initialiser may have, for hints.
const INIT_NAMES: &str =
    "zeros, ones, normal(mean, std), uniform(lo, hi), glorot, he, a number, or a tensor literal such as [1, 2]";

/// `(fan_in, fan_out)` of a parameter, as PyTorch computes them for a weight
/// laid out `[out, in]` (so that `W @ x` maps `in` features to `out`): a scalar
/// has 1 and 1, a vector `[n]` has n and n, a matrix `[out, in]` has `in` and
/// `out`, and a higher-rank `[out, in, k...]` multiplies both by the product of
/// the trailing dimensions (the receptive field).
pub fn fans(shape: &Shape) -> (usize, usize) {
    match shape.dims() {
        [] => (1, 1),
        [n] => (*n, *n),
        [out, inp, rest @ ..] => {
            let field: usize = rest.iter().product();
            (inp * field, out * field)
        }
    }
}

impl Init {
    /// Draws the initial value of a parameter of `shape`. Random initialisers
    /// draw one number per element in row-major order, so a generator seeded
    /// the same way (for example `Xoshiro256PlusPlus::seed_from_u64`) gives the
    /// same tensor; the constant ones draw nothing.
    ///
    /// For a `Literal`, `shape` must be the literal's shape (which
    /// [`check_init`] guarantees).
    pub fn sample<R: Rng + ?Sized>(&self, shape: &Shape, rng: &mut R) -> Tensor {
        let n = shape.size();
        let normal = |rng: &mut R, mean: f64, std: f64| -> Tensor {
            let data = (0..n)
                .map(|_| {
                    let z: f64 = rng.sample(StandardNormal);
                    mean + std * z
                })
                .collect();
            Tensor::new(shape.clone(), data)
        };
        let uniform = |rng: &mut R, lo: f64, hi: f64| -> Tensor {
            let data = (0..n)
                .map(|_| {
                    let u: f64 = rng.random();
                    // Written so that neither term overflows for huge bounds.
                    lo * (1.0 - u) + hi * u
                })
                .collect();
            Tensor::new(shape.clone(), data)
        };
        match self {
            Init::Zeros => Tensor::zeros(shape.clone()),
            Init::Ones => Tensor::filled(shape.clone(), 1.0),
            Init::Fill(x) => Tensor::filled(shape.clone(), *x),
            Init::Literal(t) => {
                assert_eq!(&t.shape, shape, "a literal initialiser has its own shape");
                t.clone()
            }
            Init::Normal { mean, std } => normal(rng, *mean, *std),
            Init::Uniform { lo, hi } => uniform(rng, *lo, *hi),
            Init::Glorot => {
                let (fan_in, fan_out) = fans(shape);
                let a = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
                uniform(rng, -a, a)
            }
            Init::He => {
                let (fan_in, _) = fans(shape);
                normal(rng, 0.0, (2.0 / fan_in.max(1) as f64).sqrt())
            }
        }
    }
}

impl fmt::Display for Init {
    /// The initialiser as it would be written: `zeros`, `0.5`, `[1, 2]`,
    /// `normal(0, 0.1)`, `uniform(-1, 1)`, `glorot`, `he`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Init::Zeros => write!(f, "zeros"),
            Init::Ones => write!(f, "ones"),
            Init::Fill(x) => write!(f, "{}", fmt_num(*x)),
            Init::Literal(t) => write!(f, "{t}"),
            Init::Normal { mean, std } => {
                write!(f, "normal({}, {})", fmt_num(*mean), fmt_num(*std))
            }
            Init::Uniform { lo, hi } => write!(f, "uniform({}, {})", fmt_num(*lo), fmt_num(*hi)),
            Init::Glorot => write!(f, "glorot"),
            Init::He => write!(f, "he"),
        }
    }
}

/// Converts a number literal's text (possibly with a leading `-`) to f64.
/// Refuses text that is not a number and values that overflow to infinity.
pub fn parse_number(text: &str, span: Span) -> Result<f64, Diagnostic> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let well_formed = digits.starts_with(|c: char| c.is_ascii_digit())
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    match text.parse::<f64>() {
        Ok(x) if well_formed && x.is_finite() => Ok(x),
        Ok(x) if well_formed && x.is_infinite() => {
            Err(Diagnostic::error(span, "number literal too large")
                .label(span, format!("`{text}` does not fit in a 64-bit float"))
                .hint("the largest finite value is about 1.8e308"))
        }
        _ => Err(
            Diagnostic::error(span, format!("invalid number literal `{text}`"))
                .label(span, "not a number"),
        ),
    }
}

/// Converts a literal that must be a whole number (a count, an index, a seed)
/// to u64. `what` names it in messages and is used verbatim, e.g. "`epochs`"
/// gives "`epochs` must be a whole number". Text such as `1e3` is accepted
/// when its value is a whole number of at most 2^53.
pub fn parse_count(text: &str, span: Span, what: &str) -> Result<u64, Diagnostic> {
    if let Ok(n) = text.parse::<u64>() {
        return Ok(n);
    }
    let x = parse_number(text, span)?;
    if x < 0.0 {
        return Err(
            Diagnostic::error(span, format!("{what} must not be negative"))
                .label(span, format!("this is {}", fmt_num(x))),
        );
    }
    if x.fract() != 0.0 {
        return Err(
            Diagnostic::error(span, format!("{what} must be a whole number"))
                .label(span, format!("this is {}", fmt_num(x))),
        );
    }
    if x > 9_007_199_254_740_992.0 {
        return Err(Diagnostic::error(span, format!("{what} is too large"))
            .label(span, "more than 2^53 written as a decimal or exponent"));
    }
    Ok(x as u64)
}

/// Checks a parameter's initialiser and gives the parameter's shape: the
/// declared one, or the literal's own when no shape is declared (a scalar when
/// neither gives one). `name_span` is the parameter's name, for labels.
pub fn check_init(
    expr: Option<&Expr>,
    declared: Option<&Shape>,
    name_span: Span,
) -> Result<(Init, Shape), Diagnostic> {
    let declared_or_scalar = || declared.cloned().unwrap_or_else(Shape::scalar);
    let Some(expr) = expr else {
        return Ok((Init::Zeros, declared_or_scalar()));
    };
    match &expr.kind {
        ExprKind::Number(_) | ExprKind::Unary(..) => {
            let x = constant(expr)?;
            Ok((Init::Fill(x), declared_or_scalar()))
        }
        ExprKind::Tensor(_) => {
            let t = literal(expr)?;
            if let Some(d) = declared {
                if *d != t.shape {
                    return Err(Diagnostic::error(
                        expr.span,
                        format!(
                            "initialiser has shape {} but the parameter is declared {d}",
                            t.shape
                        ),
                    )
                    .label(expr.span, format!("shape {}", t.shape))
                    .label(name_span, format!("declared {d}")));
                }
            }
            let shape = t.shape.clone();
            Ok((Init::Literal(t), shape))
        }
        ExprKind::Name(name) => Ok((named(name, &[], expr.span)?, declared_or_scalar())),
        ExprKind::Call { func, args } => Ok((
            named_call(&func.name, args, func.span)?,
            declared_or_scalar(),
        )),
        _ => Err(
            Diagnostic::error(expr.span, "an initialiser must be a constant")
                .label(expr.span, "computed values cannot initialise a parameter")
                .hint(format!("initialisers: {INIT_NAMES}")),
        ),
    }
}

/// The parameters of the initialisers that take arguments, with their
/// defaults (PyTorch's).
fn init_params(name: &str) -> Option<[(&'static str, &'static str); 2]> {
    match name {
        "normal" => Some([("mean", "0"), ("std", "1")]),
        "uniform" => Some([("lo", "0"), ("hi", "1")]),
        _ => None,
    }
}

/// A named initialiser's call, with keyword arguments bound: `normal(std =
/// 0.1)` is `normal(0, 0.1)`. Without keywords the arguments are taken as
/// written, so that `normal(0.1)` stays an arity error.
fn named_call(name: &str, args: &[Arg], name_span: Span) -> Result<Init, Diagnostic> {
    if args.iter().all(|a| a.name.is_none()) {
        let values: Vec<Expr> = args.iter().map(|a| a.value.clone()).collect();
        return named(name, &values, name_span);
    }
    let fixed = matches!(name, "zeros" | "ones" | "glorot" | "he");
    let params = match init_params(name) {
        Some(p) => p.to_vec(),
        None if fixed => Vec::new(),
        None => return named(name, &[], name_span),
    };
    let names: Vec<&str> = params.iter().map(|(n, _)| *n).collect();
    let shown: Vec<String> = params.iter().map(|(n, d)| format!("{n} = {d}")).collect();
    let callee = Callee {
        name,
        params: names,
        required: 0,
        accepts: format!("{} arguments ({})", params.len(), shown.join(", ")),
        shown: format!("{name}({})", shown.join(", ")),
        def: None,
    };
    let all = name_span.to(args.last().map_or(name_span, |a| a.value.span));
    let bound = call::bind(&callee, args, all)?;
    let values: Vec<Expr> = bound
        .iter()
        .zip(&params)
        .map(|(b, (_, d))| match b {
            Some(e) => (*e).clone(),
            None => Expr::new(ExprKind::Number(d.to_string()), name_span),
        })
        .collect();
    named(name, &values, name_span)
}

/// `zeros`, `normal(0, 0.1)`, ...: a named initialiser with its arguments.
fn named(name: &str, args: &[Expr], name_span: Span) -> Result<Init, Diagnostic> {
    let all = match args {
        [] => name_span,
        [.., last] => name_span.to(last.span),
    };
    let arity = |expected: &str, example: &str| {
        Diagnostic::error(
            all,
            format!("`{name}` takes {expected}, but {} given", given(args.len())),
        )
        .label(all, "wrong number of arguments")
        .hint(example.to_string())
    };
    match name {
        "zeros" | "ones" | "glorot" | "he" => {
            if !args.is_empty() {
                return Err(arity("no arguments", &format!("write `{name}`")));
            }
            Ok(match name {
                "zeros" => Init::Zeros,
                "ones" => Init::Ones,
                "glorot" => Init::Glorot,
                _ => Init::He,
            })
        }
        "normal" => match args {
            [] => Ok(Init::Normal {
                mean: 0.0,
                std: 1.0,
            }),
            [mean, std] => {
                let (mean_v, std_v) = (constant(mean)?, constant(std)?);
                if std_v < 0.0 {
                    return Err(Diagnostic::error(
                        std.span,
                        "standard deviation must not be negative",
                    )
                    .label(std.span, format!("this is {}", fmt_num(std_v))));
                }
                Ok(Init::Normal {
                    mean: mean_v,
                    std: std_v,
                })
            }
            _ => Err(arity(
                "a mean and a standard deviation",
                "write `normal(0, 0.1)` for mean 0 and standard deviation 0.1",
            )),
        },
        "uniform" => match args {
            [] => Ok(Init::Uniform { lo: 0.0, hi: 1.0 }),
            [lo, hi] => {
                let (lo_v, hi_v) = (constant(lo)?, constant(hi)?);
                if lo_v > hi_v {
                    let both = lo.span.to(hi.span);
                    return Err(Diagnostic::error(
                        both,
                        "the lower bound of `uniform` is above the upper bound",
                    )
                    .label(lo.span, format!("lower bound {}", fmt_num(lo_v)))
                    .label(hi.span, format!("upper bound {}", fmt_num(hi_v)))
                    .hint(format!(
                        "write `uniform({}, {})`",
                        fmt_num(hi_v),
                        fmt_num(lo_v)
                    )));
                }
                Ok(Init::Uniform { lo: lo_v, hi: hi_v })
            }
            _ => Err(arity(
                "a lower and an upper bound",
                "write `uniform(-0.1, 0.1)` for values between -0.1 and 0.1",
            )),
        },
        _ => Err(
            Diagnostic::error(name_span, format!("unknown initialiser `{name}`"))
                .label(name_span, "not an initialiser")
                .hint(format!("initialisers: {INIT_NAMES}")),
        ),
    }
}

fn given(n: usize) -> String {
    match n {
        0 => "none were".to_string(),
        1 => "1 was".to_string(),
        n => format!("{n} were"),
    }
}

/// A number literal, possibly with signs in front: `3`, `-0.5`, `+2`.
fn constant(e: &Expr) -> Result<f64, Diagnostic> {
    match &e.kind {
        ExprKind::Number(text) => parse_number(text, e.span),
        ExprKind::Unary(UnOp::Neg, inner) => Ok(-constant(inner)?),
        ExprKind::Unary(UnOp::Plus, inner) => constant(inner),
        _ => Err(
            Diagnostic::error(e.span, "expected a number in an initialiser")
                .label(e.span, "not a number literal")
                .hint("initialisers are constants: write the value itself"),
        ),
    }
}

/// A tensor literal of number literals, with every element of one shape.
fn literal(e: &Expr) -> Result<Tensor, Diagnostic> {
    let ExprKind::Tensor(elems) = &e.kind else {
        return Ok(Tensor::scalar(constant(e)?));
    };
    if elems.is_empty() {
        return Err(Diagnostic::error(e.span, "empty tensor literal")
            .label(e.span, "no elements")
            .hint("a parameter with no elements has nothing to train"));
    }
    let mut first: Option<Tensor> = None;
    let mut data = Vec::new();
    for (i, elem) in elems.iter().enumerate() {
        let t = literal(elem)?;
        if let Some(f) = &first {
            if f.shape != t.shape {
                return Err(Diagnostic::error(elem.span, "ragged tensor literal")
                    .label(
                        elem.span,
                        format!("element {} has shape {}", i + 1, t.shape),
                    )
                    .label(elems[0].span, format!("element 1 has shape {}", f.shape))
                    .hint("every element of a tensor literal must have the same shape"));
            }
        }
        data.extend_from_slice(&t.data);
        if first.is_none() {
            first = Some(t);
        }
    }
    let inner = first.map(|t| t.shape).unwrap_or_default();
    let mut dims = vec![elems.len()];
    dims.extend_from_slice(inner.dims());
    Ok(Tensor::new(Shape(dims), data))
}

#[cfg(test)]
mod tests;
