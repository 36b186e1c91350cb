//! The gradient check: reverse-mode gradients against central differences
//! of the loss, at a point and at random perturbations of it. `gradc check`
//! and the REPL's `:check` both call [`check_gradients`], so they check the
//! same points and print the same table.

use std::fmt;
use std::sync::Arc;

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::autodiff::check::{check_with, ParamCheck};
use crate::diagnostic::{Error, Source};
use crate::eval::{compile_failed, run_error, Backend, Evaluator};
use crate::ir::Function;
use crate::shape::Tensor;

/// The largest relative error accepted, by default.
pub const TOLERANCE: f64 = 1e-5;

/// Random perturbations checked besides the point itself, by default.
pub const PERTURBATIONS: usize = 3;

/// Seed of the perturbations.
const SEED: u64 = 0x9e37;

/// How to check.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct CheckSettings {
    /// The largest relative error accepted.
    pub tol: f64,
    /// Random perturbations of the parameters to check besides the point.
    pub perturbations: usize,
    pub backend: Backend,
}

impl Default for CheckSettings {
    fn default() -> CheckSettings {
        CheckSettings {
            tol: TOLERANCE,
            perturbations: PERTURBATIONS,
            backend: Backend::default(),
        }
    }
}

/// The outcome: the worst comparison of every parameter over the points.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    /// One per parameter, in declaration order: the largest relative error
    /// over every element at every point, and where it was.
    pub params: Vec<ParamCheck>,
    /// The points checked.
    pub points: usize,
    pub tol: f64,
}

impl CheckReport {
    /// Whether every error is within the tolerance (a NaN is not).
    pub fn ok(&self) -> bool {
        self.params.iter().all(|p| p.max_rel_error <= self.tol)
    }

    /// The error to report when the check fails.
    pub fn failure(&self) -> Option<Error> {
        (!self.ok()).then(|| {
            Error::new(format!(
                "gradients differ from central differences by more than {:e}",
                self.tol
            ))
        })
    }
}

impl fmt::Display for CheckReport {
    /// A table of the largest relative error per parameter, each `ok` or
    /// `FAIL`, and a last line when all agree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .params
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        writeln!(f, "{:width$}  {:>14}", "param", "max rel error")?;
        for r in &self.params {
            let pass = r.max_rel_error <= self.tol;
            writeln!(
                f,
                "{:width$}  {:>14.3e}  {}",
                r.name,
                r.max_rel_error,
                if pass { "ok" } else { "FAIL" }
            )?;
        }
        if self.ok() {
            writeln!(
                f,
                "gradients agree with central differences at {} point{} (tolerance {:e})",
                self.points,
                if self.points == 1 { "" } else { "s" },
                self.tol
            )?;
        }
        Ok(())
    }
}

/// The points checked: `params` itself, then `perturbations` random
/// perturbations of it (each element moved by 0.1 max(|x|, 1) times a
/// standard normal number, from a generator with a fixed seed).
pub fn points(params: &[Tensor], perturbations: usize) -> Vec<Vec<Tensor>> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let mut out = vec![params.to_vec()];
    for _ in 0..perturbations {
        let mut point = params.to_vec();
        for t in &mut point {
            for x in &mut t.data {
                let z: f64 = StandardNormal.sample(&mut rng);
                *x += 0.1 * z * x.abs().max(1.0);
            }
        }
        out.push(point);
    }
    out
}

/// Compares the gradient program `g` of `f` with central differences of
/// `f`'s loss at every one of [`points`], with `inputs` fixed; a fault of
/// either is placed in `source`, which both were compiled from.
pub fn check_gradients(
    f: &Function,
    g: &Function,
    source: &Arc<Source>,
    params: &[Tensor],
    inputs: &[Tensor],
    settings: &CheckSettings,
) -> Result<CheckReport, Error> {
    let fe = Evaluator::new(f, settings.backend).map_err(compile_failed)?;
    let ge = Evaluator::new(g, settings.backend).map_err(compile_failed)?;
    let points = points(params, settings.perturbations);
    let mut worst: Vec<ParamCheck> = Vec::new();
    for point in &points {
        let results = check_with(&fe, &ge, point, inputs).map_err(|e| run_error(source, &e))?;
        if worst.is_empty() {
            worst = results;
            continue;
        }
        for (w, r) in worst.iter_mut().zip(results) {
            if r.max_rel_error > w.max_rel_error || r.max_rel_error.is_nan() {
                *w = r;
            }
        }
    }
    Ok(CheckReport {
        params: worst,
        points: points.len(),
        tol: settings.tol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_point_comes_first_then_seeded_perturbations() {
        let p = vec![Tensor::new(
            crate::shape::Shape::vector(2),
            vec![1.0, -20.0],
        )];
        let a = points(&p, 3);
        assert_eq!(a.len(), 4);
        assert_eq!(a[0], p);
        assert_ne!(a[1], a[2]);
        assert_eq!(a, points(&p, 3));
        assert_eq!(points(&p, 1)[1], a[1]);
    }

    #[test]
    fn a_wrong_gradient_fails_and_the_table_says_so() {
        let c = crate::compile("param x = 2\nloss x^2\n").unwrap();
        let mut g = c.gradient().unwrap();
        let settings = CheckSettings::default();
        let ok =
            check_gradients(&c.ir, &g, &c.source, &c.initial_params(0), &[], &settings).unwrap();
        assert!(ok.ok() && ok.failure().is_none(), "{ok}");
        assert!(
            ok.to_string().contains("at 4 points (tolerance 1e-5)"),
            "{ok}"
        );
        // The loss as its own gradient: x^2 against 2x.
        let loss = g.outputs[0].value;
        let k = g.outputs.len() - 1;
        g.outputs[k].value = loss;
        let bad =
            check_gradients(&c.ir, &g, &c.source, &c.initial_params(0), &[], &settings).unwrap();
        assert!(!bad.ok() && bad.to_string().contains("FAIL"), "{bad}");
        assert!(bad
            .failure()
            .unwrap()
            .to_string()
            .contains("more than 1e-5"));
    }
}
