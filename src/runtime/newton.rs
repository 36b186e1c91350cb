//! Newton's method on the exact Hessian of the mean loss over the training
//! data: `(H + mu I) d = -g`, then a backtracking (Armijo) line search from
//! the full step, so the loss never increases.
//!
//! The Hessian is one second-derivative program per parameter element
//! ([`crate::autodiff::hessian_rows`]), each compiled once and run over the
//! training rows (its mean gradient is that row of the mean loss's
//! Hessian); the rows are symmetrised. `mu` starts at the `damping` of
//! `newton(damping = ...)` every step and grows (Nocedal & Wright,
//! Algorithm 3.3: doubled, from `1e-3` of the largest diagonal element)
//! while `H + mu I` is not positive definite, so a saddle or a concave
//! region still gives a descent direction.

use crate::diagnostic::{Diagnostic, Error};
use crate::Compiled;

use super::engine::{Engine, Mode};
use super::full_batch::{Method, Point, Problem};
use super::linalg::{dot, solve_damped, Matrix};
use super::line_search::backtracking;

/// Parameter elements above which `newton` works on Hessian-vector products
/// ([`super::newton_cg`]) instead of the Hessian: each row is a program of
/// its own, compiled once and run every step.
pub const MAX_NEWTON: usize = 200;

/// Tries of a larger damping before a step gives up.
const MAX_DAMPINGS: usize = 100;

pub(super) struct Newton {
    rows: Vec<Engine>,
    damping: f64,
}

impl Newton {
    pub fn new(c: &Compiled, damping: f64, mode: Mode) -> Result<Newton, Error> {
        let programs = crate::autodiff::hessian_rows(&c.ir).map_err(|e| {
            let d = Diagnostic::error(e.span, e.message).label(e.span, "here");
            Error::in_source(&c.source, vec![d])
        })?;
        let rows = programs
            .iter()
            .map(|f| Engine::new(f, mode))
            .collect::<Result<_, _>>()?;
        Ok(Newton { rows, damping })
    }

    /// The Hessian of the mean loss at `x`, symmetrised.
    fn hessian(&mut self, p: &mut Problem<'_, '_>, x: &[f64]) -> Result<Matrix, Error> {
        let mut rows = Vec::with_capacity(self.rows.len());
        for e in &mut self.rows {
            rows.push(p.mean_grads(e, x)?);
        }
        let mut h = Matrix::from_rows(&rows);
        let n = h.n;
        for i in 0..n {
            for j in 0..i {
                let m = 0.5 * (h.at(i, j) + h.at(j, i));
                h.data[i * n + j] = m;
                h.data[j * n + i] = m;
            }
        }
        Ok(h)
    }
}

/// The solution of `(a + mu I) d = -g` for the smallest `mu` of `start`,
/// then doubling from `1e-3` of the largest diagonal element (or 1e-8),
/// that makes `a + mu I` positive definite.
pub(super) fn damped_direction(a: &Matrix, g: &[f64], start: f64) -> Option<Vec<f64>> {
    let minus_g: Vec<f64> = g.iter().map(|v| -v).collect();
    let mut mu = start;
    for _ in 0..MAX_DAMPINGS {
        if let Some(d) = solve_damped(a, mu, &minus_g) {
            return Some(d);
        }
        mu = (2.0 * mu).max(1e-3 * a.max_diag()).max(1e-8);
    }
    None
}

impl Method for Newton {
    fn step(&mut self, p: &mut Problem<'_, '_>, at: &Point) -> Result<Option<Point>, Error> {
        let h = self.hessian(p, &at.x)?;
        let Some(d) = damped_direction(&h, &at.g, self.damping) else {
            return Ok(None);
        };
        descend(p, at, &d)
    }
}

/// A backtracking line search along `d` from `at`: the next point, or
/// `None` when no step lowers the loss.
pub(super) fn descend(
    p: &mut Problem<'_, '_>,
    at: &Point,
    d: &[f64],
) -> Result<Option<Point>, Error> {
    let slope = dot(&at.g, d);
    let trial =
        |alpha: f64| -> Vec<f64> { at.x.iter().zip(d).map(|(x, d)| x + alpha * d).collect() };
    let mut last: Option<Point> = None;
    let found = backtracking(at.f, slope, |alpha| {
        let pt = p.eval(&trial(alpha))?;
        let f = if pt.is_finite() { pt.f } else { f64::INFINITY };
        last = Some(pt);
        Ok::<_, Error>(f)
    })?;
    // The accepted step is the last one evaluated.
    Ok(found.and(last))
}
