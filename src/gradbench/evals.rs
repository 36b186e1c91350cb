//! The evals gradc answers, each a program of `gradbench/` (kept in the
//! binary) and the reading of its input: the sizes it binds (`dim`s) and
//! the value of every parameter and input, by name. The eval's primal
//! function is the program's loss; its derivative, the gradient of the loss
//! in the parameters (the quantities the derivative is taken in are
//! `param`s, the others `input`s), or an `output` that the program computes
//! with `grad` and `jvp` (`kmeans`' Newton direction, `ba`'s Jacobian
//! blocks, answered in GradBench's sparse form by [`ba`], `ht`'s Jacobian,
//! `J` or, for its simple variant, `J_pose`: [`Point::answers`]), or, for
//! `saddle` and `particle`, whose
//! functions are the four combinations of forward and reverse mode of their
//! nested derivatives, an `output` per function ([`nested`]).
//!
//! The evals gradc cannot express yet answer `define` with the reason
//! ([`UNSUPPORTED`]).

use serde_json::Value;

use crate::shape::{Shape, Tensor};
use crate::types::dims::DimFlags;

mod ba;
mod ht;
mod nested;

/// An eval gradc answers.
pub struct Eval {
    /// The module's name in GradBench.
    pub name: &'static str,
    /// The .grad program.
    pub source: &'static str,
    /// The name of the function that is the loss.
    pub primal: &'static str,
    /// The name of the function that is its gradient.
    pub gradient: &'static str,
    /// The `output` the primal function answers, when it is not the loss
    /// (`ode`'s primal is the final state, its derivative that of one
    /// element).
    pub output: Option<&'static str>,
    /// The `output` the derivative function answers, when the program
    /// computes its derivative itself (`grad` and `jvp` in the language:
    /// `kmeans`' Newton direction) rather than by its gradient program.
    pub derivative: Option<&'static str>,
    /// How the outputs named by `output` and `derivative` are answered,
    /// when not as their nested arrays (`ba`'s sparse Jacobian).
    pub format: Option<Format>,
    /// Whether the gradient is answered as one flat vector, every
    /// parameter's elements row by row in the program's order (`lstm`),
    /// rather than by parameter.
    pub flat: bool,
    /// The sizes and values of an `input`.
    pub read: fn(&Value) -> Result<Point, String>,
    /// Functions answered each by the program's `output` of the same name
    /// (in the eval's `format` when it has one), the program compiled with
    /// that output only: `saddle`'s and `particle`'s `ff`, `fr`, `rf` and
    /// `rr`, whose `primal` and `gradient` are empty (no such function).
    pub functions: &'static [&'static str],
}

/// An eval's answers built from its program's outputs and its input.
pub struct Format {
    pub primal: fn(&Tensor, &Point) -> Result<Value, String>,
    pub derivative: fn(&Tensor, &Point) -> Result<Value, String>,
}

/// An input read: the sizes, and a value for every parameter and input of
/// the program by name.
pub struct Point {
    pub dims: DimFlags,
    pub values: Vec<(&'static str, Tensor)>,
    /// The `output` the derivative function answers at this input, when
    /// not the eval's `derivative`: `ht`'s simple variant, whose Jacobian
    /// has no `us` columns, answered by `J_pose`, the program compiled
    /// without them.
    pub answers: Option<&'static str>,
}

/// The evals gradc answers, in GradBench's order.
pub const EVALS: &[Eval] = &[
    Eval {
        name: "hello",
        source: include_str!("../../gradbench/hello.grad"),
        primal: "square",
        gradient: "double",
        output: None,
        derivative: None,
        format: None,
        flat: false,
        read: read_hello,
        functions: &[],
    },
    Eval {
        name: "lse",
        source: include_str!("../../gradbench/lse.grad"),
        primal: "primal",
        gradient: "gradient",
        output: None,
        derivative: None,
        format: None,
        flat: false,
        read: read_lse,
        functions: &[],
    },
    Eval {
        name: "llsq",
        source: include_str!("../../gradbench/llsq.grad"),
        primal: "primal",
        gradient: "gradient",
        output: None,
        derivative: None,
        format: None,
        flat: false,
        read: read_llsq,
        functions: &[],
    },
    Eval {
        name: "gmm",
        source: include_str!("../../gradbench/gmm.grad"),
        primal: "objective",
        gradient: "jacobian",
        output: None,
        derivative: None,
        format: None,
        flat: false,
        read: read_gmm,
        functions: &[],
    },
    Eval {
        name: "ode",
        source: include_str!("../../gradbench/ode.grad"),
        primal: "primal",
        gradient: "gradient",
        output: Some("y"),
        derivative: None,
        format: None,
        flat: false,
        read: read_ode,
        functions: &[],
    },
    Eval {
        name: "lstm",
        source: include_str!("../../gradbench/lstm.grad"),
        primal: "objective",
        gradient: "jacobian",
        output: None,
        derivative: None,
        format: None,
        flat: true,
        read: read_lstm,
        functions: &[],
    },
    Eval {
        name: "det",
        source: include_str!("../../gradbench/det.grad"),
        primal: "primal",
        gradient: "gradient",
        output: None,
        derivative: None,
        format: None,
        flat: true,
        read: read_det,
        functions: &[],
    },
    Eval {
        name: "kmeans",
        source: include_str!("../../gradbench/kmeans.grad"),
        primal: "cost",
        gradient: "dir",
        output: None,
        derivative: Some("dir"),
        format: None,
        flat: false,
        read: read_kmeans,
        functions: &[],
    },
    Eval {
        name: "ba",
        source: include_str!("../../gradbench/ba.grad"),
        primal: "objective",
        gradient: "jacobian",
        output: Some("err"),
        derivative: Some("jac"),
        format: Some(Format {
            primal: ba::objective,
            derivative: ba::jacobian,
        }),
        flat: false,
        read: ba::read,
        functions: &[],
    },
    Eval {
        name: "ht",
        source: include_str!("../../gradbench/ht.grad"),
        primal: "objective",
        gradient: "jacobian",
        output: Some("e"),
        derivative: Some("J"),
        format: None,
        flat: false,
        read: ht::read,
        functions: &[],
    },
    Eval {
        name: "saddle",
        source: include_str!("../../gradbench/saddle.grad"),
        primal: "",
        gradient: "",
        output: None,
        derivative: None,
        format: Some(Format {
            primal: nested::converged,
            derivative: nested::converged,
        }),
        flat: false,
        read: nested::read_saddle,
        functions: nested::MODES,
    },
    Eval {
        name: "particle",
        source: include_str!("../../gradbench/particle.grad"),
        primal: "",
        gradient: "",
        output: None,
        derivative: None,
        format: Some(Format {
            primal: nested::converged,
            derivative: nested::converged,
        }),
        flat: false,
        read: nested::read_particle,
        functions: nested::MODES,
    },
];

/// GradBench's other evals, and why gradc does not answer them yet.
pub const UNSUPPORTED: &[(&str, &str)] = &[];

/// The eval of a module, or why there is none.
pub fn find(module: &str) -> Result<&'static Eval, String> {
    if let Some(eval) = EVALS.iter().find(|e| e.name == module) {
        return Ok(eval);
    }
    match UNSUPPORTED.iter().find(|(name, _)| *name == module) {
        Some((_, reason)) => Err(reason.to_string()),
        None => Err(format!("gradc does not know the module `{module}`")),
    }
}

/// `hello`: the input is x itself.
fn read_hello(input: &Value) -> Result<Point, String> {
    let x = input
        .as_f64()
        .ok_or_else(|| format!("`hello`'s input must be a number, not {input}"))?;
    Ok(Point {
        answers: None,
        dims: Vec::new(),
        values: vec![("x", Tensor::scalar(x))],
    })
}

/// `lse`: `x`, of length N.
fn read_lse(input: &Value) -> Result<Point, String> {
    let x = vector(input, "x")?;
    Ok(Point {
        answers: None,
        dims: vec![("N".into(), nonempty(x.len(), "x")?)],
        values: vec![("x", Tensor::new(Shape::vector(x.len()), x))],
    })
}

/// `llsq`: `x` of length M, and `n` points.
fn read_llsq(input: &Value) -> Result<Point, String> {
    let x = vector(input, "x")?;
    let n = count(input, "n")?;
    if n < 2 {
        return Err(format!(
            "`n` must be 2 at least (t_i divides by n - 1), not {n}"
        ));
    }
    Ok(Point {
        answers: None,
        dims: vec![("N".into(), n), ("M".into(), nonempty(x.len(), "x")?)],
        values: vec![("x", Tensor::new(Shape::vector(x.len()), x))],
    })
}

/// `gmm`: `n` points `x` in `d` dimensions, `k` components (`alpha`, `mu`,
/// `q`, `l`), the Wishart prior's `gamma` and `m`.
fn read_gmm(input: &Value) -> Result<Point, String> {
    let (d, k, n) = (count(input, "d")?, count(input, "k")?, count(input, "n")?);
    if d < 2 {
        return Err(format!("`d` must be 2 at least, not {d}"));
    }
    let gamma = number(input, "gamma")?;
    let m = number(input, "m")?;
    let values = vec![
        ("x", matrix(input, "x", n, d)?),
        ("gamma", Tensor::scalar(gamma)),
        ("m", Tensor::scalar(m)),
        (
            "alpha",
            Tensor::new(
                Shape::vector(k),
                sized(vector(input, "alpha")?, k, "alpha")?,
            ),
        ),
        ("mu", matrix(input, "mu", k, d)?),
        ("q", matrix(input, "q", k, d)?),
        ("l", matrix(input, "l", k, d * (d - 1) / 2)?),
    ];
    Ok(Point {
        answers: None,
        dims: vec![("N".into(), n), ("D".into(), d), ("K".into(), k)],
        values,
    })
}

/// `ode`: `x` of length N (2 at least: y_i' reads y_{i-1}) and `s` steps.
fn read_ode(input: &Value) -> Result<Point, String> {
    let x = vector(input, "x")?;
    if x.len() < 2 {
        return Err(format!(
            "`x` must have 2 elements at least, not {}",
            x.len()
        ));
    }
    Ok(Point {
        answers: None,
        dims: vec![("N".into(), x.len()), ("S".into(), count(input, "s")?)],
        values: vec![("x", Tensor::new(Shape::vector(x.len()), x))],
    })
}

/// `lstm`: `main_params` (2 rows a layer, of 4 B numbers), `extra_params`
/// (3 rows of B), `state` (2 rows a layer, of B) and `sequence` (C rows of
/// B, 2 at least: each character but the first is predicted).
fn read_lstm(input: &Value) -> Result<Point, String> {
    let (rows, cols) = outer(input, "main_params")?;
    if rows % 2 != 0 || cols % 4 != 0 {
        return Err(format!(
            "`main_params` must have 2 rows a layer of 4 numbers a cell, not {rows} rows of {cols}"
        ));
    }
    let (l, b) = (rows / 2, cols / 4);
    let (c, _) = outer(input, "sequence")?;
    if c < 2 {
        return Err(format!("`sequence` must have 2 rows at least, not {c}"));
    }
    Ok(Point {
        answers: None,
        dims: vec![("L".into(), l), ("B".into(), b), ("C".into(), c)],
        values: vec![
            ("main", matrix(input, "main_params", 2 * l, 4 * b)?),
            ("extra", matrix(input, "extra_params", 3, b)?),
            ("state", matrix(input, "state", 2 * l, b)?),
            ("sequence", matrix(input, "sequence", c, b)?),
        ],
    })
}

/// The largest `ell` of `det`: its program keeps a determinant for each of
/// the 2^ell subsets of the columns.
pub const DET_MAX_ELL: usize = 16;

/// `det`: `A`, `ell` x `ell` numbers row by row.
fn read_det(input: &Value) -> Result<Point, String> {
    let ell = count(input, "ell")?;
    if ell > DET_MAX_ELL {
        return Err(format!(
            "`ell` is {ell}: gradc's det keeps 2^ell minors, and answers ell up to {DET_MAX_ELL}"
        ));
    }
    let a = sized(vector(input, "A")?, ell * ell, "A")?;
    Ok(Point {
        answers: None,
        dims: vec![("L".into(), ell), ("P".into(), 1 << ell)],
        values: vec![("A", Tensor::new(Shape::matrix(ell, ell), a))],
    })
}

/// `kmeans`: `points`, N rows of D numbers, and `centroids`, K rows of D.
fn read_kmeans(input: &Value) -> Result<Point, String> {
    let (n, d) = outer(input, "points")?;
    let (k, _) = outer(input, "centroids")?;
    Ok(Point {
        answers: None,
        dims: vec![("N".into(), n), ("K".into(), k), ("D".into(), d)],
        values: vec![
            ("points", matrix(input, "points", n, d)?),
            ("C", matrix(input, "centroids", k, d)?),
        ],
    })
}

/// The number of rows of an array of rows, and the length of its first.
fn outer(input: &Value, name: &str) -> Result<(usize, usize), String> {
    let rows = input
        .get(name)
        .ok_or_else(|| format!("the input has no `{name}`"))?
        .as_array()
        .ok_or_else(|| format!("`{name}` must be an array of rows"))?;
    let first = rows
        .first()
        .ok_or_else(|| format!("`{name}` is empty"))?
        .as_array()
        .ok_or_else(|| format!("`{name}[0]` must be an array of numbers"))?;
    Ok((rows.len(), nonempty(first.len(), &format!("{name}[0]"))?))
}

fn number(input: &Value, name: &str) -> Result<f64, String> {
    match input.get(name) {
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("`{name}` must be a number, not {v}")),
        None => Err(format!("the input has no `{name}`")),
    }
}

fn count(input: &Value, name: &str) -> Result<usize, String> {
    match input.get(name) {
        Some(v) => v
            .as_u64()
            .filter(|&n| n >= 1)
            .map(|n| n as usize)
            .ok_or_else(|| format!("`{name}` must be a positive integer, not {v}")),
        None => Err(format!("the input has no `{name}`")),
    }
}

fn numbers(v: &Value, name: &str) -> Result<Vec<f64>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("`{name}` must be an array of numbers"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_f64()
                .ok_or_else(|| format!("`{name}[{i}]` must be a number, not {x}"))
        })
        .collect()
}

fn vector(input: &Value, name: &str) -> Result<Vec<f64>, String> {
    numbers(
        input
            .get(name)
            .ok_or_else(|| format!("the input has no `{name}`"))?,
        name,
    )
}

/// An array of `rows` rows of `cols` numbers each, row-major.
fn matrix(input: &Value, name: &str, rows: usize, cols: usize) -> Result<Tensor, String> {
    let v = input
        .get(name)
        .ok_or_else(|| format!("the input has no `{name}`"))?;
    let items = v
        .as_array()
        .ok_or_else(|| format!("`{name}` must be an array of rows"))?;
    let items = sized(items.clone(), rows, name)?;
    let mut data = Vec::with_capacity(rows * cols);
    for (i, row) in items.iter().enumerate() {
        let row_name = format!("{name}[{i}]");
        data.extend(sized(numbers(row, &row_name)?, cols, &row_name)?);
    }
    Ok(Tensor::new(Shape::matrix(rows, cols), data))
}

fn sized<T>(v: Vec<T>, len: usize, name: &str) -> Result<Vec<T>, String> {
    if v.len() == len {
        Ok(v)
    } else {
        Err(format!("`{name}` has {} elements, not {len}", v.len()))
    }
}

fn nonempty(len: usize, name: &str) -> Result<usize, String> {
    if len == 0 {
        Err(format!("`{name}` is empty"))
    } else {
        Ok(len)
    }
}
