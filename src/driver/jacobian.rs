//! Jacobians of the outputs and Hessian-vector products of the loss, with
//! respect to the parameters, at a point: `gradc grad --jacobian` and
//! `gradc grad --hvp`.
//!
//! A Jacobian of `m` rows (the output's elements) and `n` columns (every
//! parameter element) takes `min(m, n)` programs: one reverse-mode gradient
//! per row when `m <= n`, else one forward-mode tangent per column. A
//! Hessian-vector product is forward mode over the reverse-mode gradient
//! program: the tangents of the gradients along the direction, one program,
//! without forming the Hessian.

use std::sync::Arc;

use crate::autodiff::{differentiate, forward};
use crate::diagnostic::{Diagnostic, Error, Source};
use crate::driver::hessian::labels;
use crate::eval::{compile_failed, run_error, Backend, Evaluator};
use crate::ir::{ConstData, Function, Op, Output, Role, SliceAxis, Value};
use crate::shape::{Shape, Tensor};
use crate::span::Span;

/// Jacobians with more entries than this are refused: they are for reading.
pub const MAX_JACOBIAN: usize = 10_000;

/// How a Jacobian was computed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One reverse-mode gradient per row.
    Reverse,
    /// One forward-mode tangent per column.
    Forward,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Reverse => "reverse",
            Mode::Forward => "forward",
        }
    }
}

/// The Jacobian of one output: a row per element of the output (row-major),
/// a column per parameter element (declaration order).
#[derive(Clone, Debug, PartialEq)]
pub struct Jacobian {
    pub output: String,
    pub shape: Shape,
    pub mode: Mode,
    /// The parameter elements, one per column (`w[1]`, `b`).
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

/// Where the programs run: the point, the engine, and the source that
/// errors are placed in.
struct At<'a> {
    source: &'a Arc<Source>,
    params: &'a [Tensor],
    inputs: &'a [Tensor],
    backend: Backend,
}

/// The Jacobian of every `output` of `f` (compiled from `source`) with
/// respect to the parameters, at a point.
pub fn jacobians(
    f: &Function,
    source: &Arc<Source>,
    params: &[Tensor],
    inputs: &[Tensor],
    backend: Backend,
) -> Result<Vec<Jacobian>, Error> {
    let outputs: Vec<&Output> = f
        .outputs
        .iter()
        .filter(|o| o.role == Role::Output)
        .collect();
    if outputs.is_empty() {
        return Err(Error::new(
            "the program has no `output` to take the Jacobian of (declare one: `output y = ...`)",
        ));
    }
    let at = At {
        source,
        params,
        inputs,
        backend,
    };
    let columns = labels(f);
    let n = columns.len();
    let mut out = Vec::new();
    for o in outputs {
        let shape = f.shape(o.value).clone();
        let m = shape.size();
        if m * n > MAX_JACOBIAN {
            return Err(Error::new(format!(
                "the Jacobian of `{}` ({m} x {n}) is too large to show (at most {MAX_JACOBIAN} entries)",
                o.name
            )));
        }
        let (mode, rows) = if m <= n {
            (Mode::Reverse, reverse_rows(f, o.value, &at)?)
        } else {
            (Mode::Forward, forward_rows(f, o.value, &at)?)
        };
        out.push(Jacobian {
            output: o.name.clone(),
            shape,
            mode,
            columns: columns.clone(),
            rows,
        });
    }
    Ok(out)
}

/// Element `k` of `v` (row-major), as a scalar value of `f`.
fn element(f: &mut Function, v: Value, k: usize) -> Value {
    let shape = f.shape(v).clone();
    if shape.is_scalar() {
        return v;
    }
    let axes = shape
        .strides()
        .iter()
        .zip(shape.dims())
        .map(|(s, n)| SliceAxis::At((k / s) % n))
        .collect();
    f.push(Op::Slice(axes), vec![v], Span::default())
}

/// Runs a program whose outputs are all wanted, flattened into one row.
fn run_flat(g: &Function, at: &At) -> Result<Vec<f64>, Error> {
    let mut g = g.clone();
    crate::passes::simplify(&mut g);
    let e = Evaluator::new(&g, at.backend).map_err(compile_failed)?;
    let outs = e
        .outputs(at.params, at.inputs)
        .map_err(|e| run_error(at.source, &e))?;
    Ok(outs.into_iter().flat_map(|t| t.data).collect())
}

/// A gradient per element of `of`: the rows.
fn reverse_rows(f: &Function, of: Value, at: &At) -> Result<Vec<Vec<f64>>, Error> {
    let m = f.shape(of).size();
    let mut rows = Vec::with_capacity(m);
    for k in 0..m {
        let mut h = f.clone();
        h.outputs.clear();
        let e = element(&mut h, of, k);
        let mut g = differentiate(&h, e).map_err(|e| {
            let d = Diagnostic::error(e.span, e.message).label(e.span, "here");
            Error::in_source(at.source, vec![d])
        })?;
        g.outputs.retain(|o| matches!(o.role, Role::Grad(_)));
        rows.push(run_flat(&g, at)?);
    }
    Ok(rows)
}

/// A tangent of `of` per parameter element, seeded with that element's
/// unit vector: the columns, transposed into rows.
fn forward_rows(f: &Function, of: Value, at: &At) -> Result<Vec<Vec<f64>>, Error> {
    let m = f.shape(of).size();
    let mut columns = Vec::new();
    for (p, slot) in f.params.iter().enumerate() {
        for k in 0..slot.shape.size() {
            let mut unit = Tensor::zeros(slot.shape.clone());
            unit.data[k] = 1.0;
            let column = tangent_program(f, &[(p, unit)], &[of])
                .map(|g| run_flat(&g, at))
                .transpose()?
                .unwrap_or_else(|| vec![0.0; m]);
            columns.push(column);
        }
    }
    Ok((0..m)
        .map(|i| columns.iter().map(|c| c[i]).collect())
        .collect())
}

/// `f` returning the tangents of `of` along the directions of the
/// parameters given (the others fixed); `None` when none of those
/// parameters is read.
fn tangent_program(f: &Function, directions: &[(usize, Tensor)], of: &[Value]) -> Option<Function> {
    let mut g = f.clone();
    let mut seeds = Vec::new();
    for (p, d) in directions {
        let Some((v, _)) = f.iter().find(|(_, inst)| inst.op == Op::Param(*p)) else {
            continue;
        };
        let d = g.push(Op::Const(ConstData(d.clone())), vec![], Span::default());
        seeds.push((v, d));
    }
    if seeds.is_empty() {
        return None;
    }
    let tangents = forward::jvp_many(&mut g, &seeds, of, Span::default());
    g.outputs = tangents
        .into_iter()
        .map(|value| Output {
            role: Role::Output,
            name: String::new(),
            value,
        })
        .collect();
    Some(g)
}

/// The Hessian of the loss times `direction` (one tensor per parameter),
/// by forward mode over the gradient program `g`: one tensor per parameter.
pub fn hvp(
    g: &Function,
    source: &Arc<Source>,
    params: &[Tensor],
    inputs: &[Tensor],
    direction: &[Tensor],
    backend: Backend,
) -> Result<Vec<Tensor>, Error> {
    let grads: Vec<Value> = (0..g.params.len())
        .map(|p| g.output(&Role::Grad(p)).expect("a gradient per parameter"))
        .collect();
    let directions: Vec<(usize, Tensor)> = direction.iter().cloned().enumerate().collect();
    let at = At {
        source,
        params,
        inputs,
        backend,
    };
    let flat = match tangent_program(g, &directions, &grads) {
        Some(h) => run_flat(&h, &at)?,
        None => vec![0.0; g.params.iter().map(|s| s.shape.size()).sum()],
    };
    let mut at = 0;
    Ok(g.params
        .iter()
        .map(|s| {
            let n = s.shape.size();
            at += n;
            Tensor::new(s.shape.clone(), flat[at - n..at].to_vec())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both modes give the Jacobian computed by hand, and choose by shape.
    #[test]
    fn jacobians_by_rows_and_by_columns() {
        // y = [a * b, a + 2 b, a^2] of a and b: 3 rows, 2 columns: forward.
        let src = "param a = 3\nparam b = 5\nloss a\noutput y = [a * b, a + 2 * b, a^2]\noutput s = a * b^2\n";
        let c = crate::compile(src).unwrap();
        let p = c.initial_params(0);
        for backend in [Backend::Interp, Backend::Jit] {
            let j = jacobians(&c.ir, &c.source, &p, &[], backend).unwrap();
            assert_eq!(j[0].mode, Mode::Forward);
            assert_eq!(j[0].rows, [[5.0, 3.0], [1.0, 2.0], [6.0, 0.0]]);
            // A scalar output: one row, by reverse mode.
            assert_eq!(j[1].mode, Mode::Reverse);
            assert_eq!(j[1].rows, [[25.0, 30.0]]);
            assert_eq!(j[0].columns, ["a", "b"]);
        }
    }

    #[test]
    fn hessian_vector_products_by_forward_over_reverse() {
        // loss = a^2 b + b^3: H = [[2b, 2a], [2a, 6b]] at (3, 5).
        let c = crate::compile("param a = 3\nparam b = 5\nloss a^2 * b + b^3\n").unwrap();
        let g = c.gradient().unwrap();
        let p = c.initial_params(0);
        let v = [Tensor::scalar(1.0), Tensor::scalar(-2.0)];
        let hv = hvp(&g, &c.source, &p, &[], &v, Backend::Jit).unwrap();
        assert_eq!(hv[0].item(), 10.0 * 1.0 + 6.0 * -2.0);
        assert_eq!(hv[1].item(), 6.0 * 1.0 + 30.0 * -2.0);
    }

    #[test]
    fn no_output_and_too_large_are_explained() {
        let c = crate::compile("param a\nloss a^2\n").unwrap();
        let e = jacobians(
            &c.ir,
            &c.source,
            &[Tensor::scalar(0.0)],
            &[],
            Backend::Interp,
        );
        assert!(e.unwrap_err().to_string().contains("no `output`"));
        let c =
            crate::compile("param w: [200]\nloss sum(w)\noutput y = w[0:100] * sum(w)\n").unwrap();
        let e = jacobians(&c.ir, &c.source, &c.initial_params(0), &[], Backend::Interp);
        assert!(e.unwrap_err().to_string().contains("too large"));
    }
}
