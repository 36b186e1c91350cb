//! Least squares on the program's `residual`: Levenberg-Marquardt and
//! Gauss-Newton, on `A = JᵀJ / n` and `g = Jᵀr / n` (the loss is the mean
//! over the `n` examples of `0.5 * sum(r^2)`, so `g` is its gradient and `A`
//! its Gauss-Newton Hessian).
//!
//! The Jacobian: one program per residual element, the element
//! differentiated with respect to every parameter (reverse mode, compiled
//! once), run on each example; row `(example, element)` of `J` is that
//! run's gradient.
//!
//! - Levenberg-Marquardt with Nielsen's damping rule (Madsen, Nielsen &
//!   Tingleff, *Methods for non-linear least squares problems*, 2004,
//!   Algorithm 3.16): `mu` starts at `damping` times the largest diagonal
//!   element of `A`; a step `(A + mu I) h = -g` is taken if it lowers the
//!   loss (gain ratio `rho > 0`), then `mu *= max(1/3, 1 - (2 rho - 1)^3)`,
//!   else `mu *= nu; nu *= 2` and the step is solved again.
//! - Gauss-Newton: `A h = -g` (with the smallest damping that makes `A`
//!   positive definite), then a backtracking line search, as Newton's.

use crate::autodiff::differentiate;
use crate::diagnostic::{Diagnostic, Error};
use crate::ir::{Function, Op, Output, Role, SliceAxis};
use crate::span::Span;
use crate::{passes, Compiled};

use super::engine::{Engine, Mode};
use super::full_batch::{Method, Point, Problem};
use super::linalg::{dot, norm, solve_damped, Matrix};
use super::newton::{damped_direction, descend};

/// Rejected Levenberg-Marquardt steps in a row before the method gives up.
const MAX_REJECTS: usize = 60;

pub(super) struct LeastSquares {
    /// One program per residual element: its value as the "loss", its
    /// gradient as the row of the Jacobian.
    elements: Vec<Engine>,
    /// Levenberg-Marquardt's damping factor for the first step (`None`:
    /// Gauss-Newton), then `mu` and `nu` as they evolve.
    lm: Option<(f64, Option<(f64, f64)>)>,
}

/// The Jacobian programs of `c`'s residual, or an error if it has none.
fn element_programs(c: &Compiled) -> Result<Vec<Function>, Error> {
    let Some(residual) = &c.typed.residual else {
        return Err(Error::new(
            "the least-squares methods (`levenberg_marquardt`, `gauss_newton`) need a `residual r = ...` in the program; `newton` and `lbfgs` minimise any loss",
        ));
    };
    let r =
        c.ir.outputs
            .iter()
            .find(|o| o.role == Role::Output && o.name == residual.name)
            .expect("lowering makes the residual an output")
            .value;
    let shape = c.ir.shape(r).clone();
    let mut programs = Vec::with_capacity(shape.size());
    for k in 0..shape.size() {
        let mut f = c.ir.clone();
        f.outputs.clear();
        let elem = if shape.is_scalar() {
            r
        } else {
            let strides = shape.strides();
            let axes = strides
                .iter()
                .zip(shape.dims())
                .map(|(s, n)| SliceAxis::At((k / s) % n))
                .collect();
            f.push(Op::Slice(axes), vec![r], Span::default())
        };
        f.outputs.push(Output {
            role: Role::Loss,
            name: residual.name.clone(),
            value: elem,
        });
        let mut g = differentiate(&f, elem).map_err(|e| {
            let d = Diagnostic::error(e.span, e.message).label(e.span, "here");
            Error::in_source(&c.source, vec![d])
        })?;
        passes::simplify(&mut g);
        programs.push(g);
    }
    Ok(programs)
}

impl LeastSquares {
    /// Levenberg-Marquardt with this initial damping factor, or Gauss-Newton
    /// (`None`).
    pub fn new(c: &Compiled, damping: Option<f64>, mode: Mode) -> Result<LeastSquares, Error> {
        let elements = element_programs(c)?
            .iter()
            .map(|f| Engine::new(f, mode))
            .collect::<Result<_, _>>()?;
        Ok(LeastSquares {
            elements,
            lm: damping.map(|d| (d, None)),
        })
    }

    /// `A = JᵀJ / n` and `g = Jᵀr / n` at `x`.
    fn normal_equations(
        &mut self,
        p: &mut Problem<'_, '_>,
        x: &[f64],
    ) -> Result<(Matrix, Vec<f64>), Error> {
        let size = x.len();
        let mut a = Matrix::zeros(size);
        let mut g = vec![0.0; size];
        let params = p.tensors(x).to_vec();
        let run = &*p.run;
        let data = run.data.as_ref();
        // Without data, the program runs once (the row is not read).
        let rows: Vec<usize> = match data {
            Some(_) => run.train_rows.clone(),
            None => vec![0],
        };
        let n = rows.len() as f64;
        for e in &mut self.elements {
            for &row in &rows {
                e.run(&params, data, &[row])
                    .map_err(|err| err.to_error(&run.source, data))?;
                let r = e.loss();
                let jrow = e.grads().concat();
                a.add_outer(&jrow, 1.0 / n);
                for (g, j) in g.iter_mut().zip(&jrow) {
                    *g += j * r / n;
                }
            }
        }
        Ok((a, g))
    }
}

impl Method for LeastSquares {
    fn step(&mut self, p: &mut Problem<'_, '_>, at: &Point) -> Result<Option<Point>, Error> {
        let (a, g) = self.normal_equations(p, &at.x)?;
        let Some((tau, state)) = &mut self.lm else {
            let Some(d) = damped_direction(&a, &g, 0.0) else {
                return Ok(None);
            };
            return descend(p, at, &d);
        };
        let (mut mu, mut nu) = state.unwrap_or((*tau * a.max_diag().max(f64::MIN_POSITIVE), 2.0));
        let minus_g: Vec<f64> = g.iter().map(|v| -v).collect();
        for _ in 0..MAX_REJECTS {
            let Some(h) = solve_damped(&a, mu, &minus_g) else {
                mu *= nu;
                nu *= 2.0;
                continue;
            };
            if norm(&h) <= f64::EPSILON * (norm(&at.x) + f64::EPSILON) {
                *state = Some((mu, nu));
                return Ok(None);
            }
            let x: Vec<f64> = at.x.iter().zip(&h).map(|(x, h)| x + h).collect();
            let next = p.eval(&x)?;
            // The decrease the linear model predicts: hᵀ(mu h - g) / 2.
            let predicted = 0.5 * (mu * dot(&h, &h) - dot(&h, &g));
            let rho = (at.f - next.f) / predicted;
            if next.is_finite() && next.f < at.f && rho > 0.0 {
                mu *= (1.0f64 / 3.0).max(1.0 - (2.0 * rho - 1.0).powi(3));
                *state = Some((mu, 2.0));
                return Ok(Some(next));
            }
            mu *= nu;
            nu *= 2.0;
        }
        *state = Some((mu, nu));
        Ok(None)
    }
}
