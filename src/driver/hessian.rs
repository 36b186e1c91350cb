//! Hessians of a loss over every parameter element, with one size limit for
//! `gradc grad --hessian` and the REPL's `:hessian`.

use std::sync::Arc;

use crate::autodiff::hessian_row;
use crate::diagnostic::{Diagnostic, Error, Source};
use crate::eval::{compile_failed, run_error, Backend, Evaluator};
use crate::ir::Function;
use crate::shape::Tensor;

/// Hessians over more parameter elements than this are refused. Every row
/// is a program of its own, compiled and run (so the cost grows with the
/// square of the size), and the matrix is for reading: at 100 rows of 100
/// numbers it is already more than a screen. The CLI and the REPL had 400
/// and 100; the smaller keeps both quick.
pub const MAX_HESSIAN: usize = 100;

/// The Hessian: rows and columns are every element of every parameter, in
/// declaration order.
#[derive(Clone, Debug, PartialEq)]
pub struct Hessian {
    /// One per row: `w` for a scalar, `w[1]` or `W[0, 2]` for an element.
    pub labels: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

/// The label of every parameter element of `f`, in declaration order.
pub fn labels(f: &Function) -> Vec<String> {
    let mut labels = Vec::new();
    for p in &f.params {
        if p.shape.is_scalar() {
            labels.push(p.name.clone());
            continue;
        }
        let strides = p.shape.strides();
        for k in 0..p.shape.size() {
            let ix: Vec<String> = strides
                .iter()
                .zip(p.shape.dims())
                .map(|(st, n)| ((k / st) % n).to_string())
                .collect();
            labels.push(format!("{}[{}]", p.name, ix.join(", ")));
        }
    }
    labels
}

/// The Hessian of `f`'s loss (`f` compiled from `source`) at a point, on
/// `backend`; refused above [`MAX_HESSIAN`] parameter elements.
pub fn hessian(
    f: &Function,
    source: &Arc<Source>,
    params: &[Tensor],
    inputs: &[Tensor],
    backend: Backend,
) -> Result<Hessian, Error> {
    let labels = labels(f);
    if labels.len() > MAX_HESSIAN {
        return Err(Error::new(format!(
            "the Hessian over {} param elements is too large to show (at most {MAX_HESSIAN})",
            labels.len()
        )));
    }
    let program = crate::autodiff::hessian_rows(f).map_err(|e| {
        let d = Diagnostic::error(e.span, e.message).label(e.span, "here");
        Error::in_source(source, vec![d])
    })?;
    let mut rows = Vec::with_capacity(program.len());
    for row in &program {
        let row = Evaluator::new(row, backend).map_err(compile_failed)?;
        rows.push(hessian_row(&row, params, inputs).map_err(|e| run_error(source, &e))?);
    }
    Ok(Hessian { labels, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_the_limit() {
        let c = crate::compile("param a\nparam W: [2, 2]\nloss a * sum(W)\n").unwrap();
        assert_eq!(
            labels(&c.ir),
            ["a", "W[0, 0]", "W[0, 1]", "W[1, 0]", "W[1, 1]"]
        );
        let h = hessian(&c.ir, &c.source, &c.initial_params(0), &[], Backend::Interp).unwrap();
        assert_eq!(h.rows[0], [0.0, 1.0, 1.0, 1.0, 1.0]);
        let big = crate::compile("param w: [101]\nloss sum(w^2)\n").unwrap();
        let e = hessian(
            &big.ir,
            &big.source,
            &big.initial_params(0),
            &[],
            Backend::Interp,
        )
        .unwrap_err();
        assert!(e.to_string().contains("at most 100"), "{e}");
    }
}
