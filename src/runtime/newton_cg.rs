//! Newton's method for many parameters: the Newton system `(H + mu I) d =
//! -g` solved by conjugate gradients on Hessian-vector products, never
//! forming `H` (Nocedal & Wright, Algorithm 7.1, line-search Newton-CG),
//! then the backtracking line search of `newton`.
//!
//! `H v` is the gradient of `gᵀv` with respect to the parameters: the
//! gradient program with one more parameter `v_p` per parameter `p` (the
//! direction, shaped like it), the scalar `sum_p sum(grad_p * v_p)`
//! differentiated again ([`hvp_program`]). One program, compiled once; a
//! product costs a few gradients, whatever the number of parameters.
//!
//! Conjugate gradients stop when the residual is below `min(0.5,
//! sqrt(|g|)) |g|` (superlinear convergence), after `2 n` iterations, or at
//! a direction of negative curvature: then the last iterate (steepest
//! descent if it is the first), which still descends.

use crate::autodiff::{differentiate, grad, AdError};
use crate::diagnostic::{Diagnostic, Error};
use crate::ir::{Binary, Function, Op, Role, Slot, Value};
use crate::shape::Tensor;
use crate::span::Span;
use crate::{passes, Compiled};

use super::engine::{Engine, Mode};
use super::full_batch::{Method, Point, Problem};
use super::linalg::{dot, norm};
use super::newton::descend;

/// Conjugate-gradient iterations per step, at most.
const MAX_CG: usize = 500;

/// The Hessian-vector product program of `f`'s loss: the parameters of `f`,
/// then a direction `v_NAME` per parameter; its `grad` outputs are `H v`
/// (one per parameter of `f`), then the gradient `g` (one per direction).
pub fn hvp_program(f: &Function) -> Result<Function, AdError> {
    let mut g = grad(f)?;
    passes::simplify(&mut g);
    let n = f.params.len();
    let grads: Vec<Value> = (0..n)
        .map(|p| g.output(&Role::Grad(p)).expect("a gradient per parameter"))
        .collect();
    g.outputs.retain(|o| o.role == Role::Loss);
    let span = Span::default();
    let mut total: Option<Value> = None;
    for (p, &gp) in grads.iter().enumerate() {
        let slot = f.params[p].clone();
        g.params.push(Slot {
            name: format!("v_{}", slot.name),
            shape: slot.shape,
        });
        let v = g.push(Op::Param(n + p), vec![], span);
        let prod = g.push(Op::Binary(Binary::Mul), vec![gp, v], span);
        let sum = g.push(Op::Sum, vec![prod], span);
        total = Some(match total {
            Some(t) => g.push(Op::Binary(Binary::Add), vec![t, sum], span),
            None => sum,
        });
    }
    let Some(total) = total else {
        return Err(AdError {
            message: "the program has no parameters".into(),
            span,
        });
    };
    let mut h = differentiate(&g, total)?;
    passes::simplify(&mut h);
    Ok(h)
}

pub(super) struct NewtonCg {
    hvp: Engine,
    damping: f64,
    /// The parameters, then the direction, as tensors of their shapes.
    args: Vec<Tensor>,
}

impl NewtonCg {
    pub fn new(
        c: &Compiled,
        damping: f64,
        mode: Mode,
        params: &[Tensor],
    ) -> Result<NewtonCg, Error> {
        let program = hvp_program(&c.ir).map_err(|e| {
            let d = Diagnostic::error(e.span, e.message).label(e.span, "here");
            Error::in_source(&c.source, vec![d])
        })?;
        let mut args = params.to_vec();
        args.extend(params.iter().cloned());
        Ok(NewtonCg {
            hvp: Engine::new(&program, mode)?,
            damping,
            args,
        })
    }

    /// `(H + damping I) v` at `x`, the mean over the training rows.
    fn product(
        &mut self,
        p: &mut Problem<'_, '_>,
        x: &[f64],
        v: &[f64],
    ) -> Result<Vec<f64>, Error> {
        let half = self.args.len() / 2;
        fill(&mut self.args[..half], x);
        fill(&mut self.args[half..], v);
        let all = p.run_engine(&mut self.hvp, &self.args)?;
        Ok(all[..x.len()]
            .iter()
            .zip(v)
            .map(|(h, v)| h + self.damping * v)
            .collect())
    }
}

fn fill(tensors: &mut [Tensor], x: &[f64]) {
    let mut at = 0;
    for t in tensors {
        let n = t.data.len();
        t.data.copy_from_slice(&x[at..at + n]);
        at += n;
    }
}

impl Method for NewtonCg {
    fn step(&mut self, p: &mut Problem<'_, '_>, at: &Point) -> Result<Option<Point>, Error> {
        let gnorm = norm(&at.g);
        let tol = gnorm.sqrt().min(0.5) * gnorm;
        let n = at.g.len();
        let mut z = vec![0.0; n];
        let mut r = at.g.clone();
        let mut d: Vec<f64> = r.iter().map(|v| -v).collect();
        for j in 0..(2 * n).min(MAX_CG) {
            let bd = self.product(p, &at.x, &d)?;
            let curvature = dot(&d, &bd);
            if curvature.is_nan() || curvature <= 0.0 {
                if j == 0 {
                    z = at.g.iter().map(|v| -v).collect();
                }
                break;
            }
            let rr = dot(&r, &r);
            let alpha = rr / curvature;
            for ((z, r), (d, bd)) in z.iter_mut().zip(&mut r).zip(d.iter().zip(&bd)) {
                *z += alpha * d;
                *r += alpha * bd;
            }
            let rr_new = dot(&r, &r);
            if rr_new.sqrt() < tol {
                break;
            }
            let beta = rr_new / rr;
            for (d, r) in d.iter_mut().zip(&r) {
                *d = -r + beta * *d;
            }
        }
        descend(p, at, &z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::interp;

    #[test]
    fn the_product_program_gives_h_v_and_the_gradient() {
        // f = x^2 y + y^3 at (1, 2): g = (2xy, x^2 + 3y^2) = (4, 13),
        // H = [[2y, 2x], [2x, 6y]] = [[4, 2], [2, 12]]; H (1, -1) = (2, -10).
        let c = crate::compile("param x\nparam y\nloss x^2 * y + y^3\n").unwrap();
        let h = hvp_program(&c.ir).unwrap();
        assert_eq!(h.params.len(), 4);
        let params = [1.0, 2.0, 1.0, -1.0].map(Tensor::scalar);
        let out = interp::run_outputs(&h, &params, &[]).unwrap();
        let grads: Vec<f64> = out
            .iter()
            .filter(|(o, _)| matches!(o.role, Role::Grad(_)))
            .map(|(_, t)| t.item())
            .collect();
        assert_eq!(grads, [2.0, -10.0, 4.0, 13.0]);
    }
}
