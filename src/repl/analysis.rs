//! What a session computes about a scalar: its gradient program and value,
//! its Hessian, the gradient check; and the IR and machine code of an
//! expression or of the whole session.

use std::rc::Rc;
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Source};
use crate::driver::{self, CheckReport, CheckSettings, Hessian};
use crate::ir::{Function, Role};
use crate::repl::error::{at, compile, locate, relocate, Error};
use crate::repl::session::Session;
use crate::repl::source::{Assembled, Origin};
use crate::shape::Tensor;
use crate::span::Span;

/// What `:grad` shows.
#[derive(Clone, Debug)]
pub struct GradReport {
    /// The gradient program, as `gradc grad` prints it.
    pub program: String,
    pub value: f64,
    /// Every param's gradient, in declaration order.
    pub grads: Vec<(String, Tensor)>,
}

/// The scalar a command differentiates: the program returning it as its
/// loss, and the assembled source it was compiled from.
struct Scalar {
    f: Function,
    /// The source of the assembled program, which `f`'s spans point into.
    source: Arc<Source>,
    assembled: Assembled,
    origin: Rc<Origin>,
}

impl Session {
    /// The gradient program of a scalar (the expression, or the session's
    /// loss when `base` is `None`) and its value at the current point.
    pub fn grad(&self, origin: Rc<Origin>, base: Option<usize>) -> Result<GradReport, Error> {
        let s = self.scalar(origin, base, ":grad")?;
        let g = s.gradient()?;
        let values = self.run(&g, &s.source, &s.assembled)?;
        let mut value = f64::NAN;
        let mut grads = Vec::new();
        for (o, t) in g.outputs.iter().zip(values) {
            match o.role {
                Role::Loss => value = t.item(),
                Role::Grad(i) => grads.push((g.params[i].name.clone(), t)),
                Role::Metric | Role::Output => {}
            }
        }
        Ok(GradReport {
            program: g.to_string(),
            value,
            grads,
        })
    }

    /// The Hessian of a scalar over every param element, on the session's
    /// backend (as `gradc grad --hessian`, with its size limit).
    pub fn hessian(&self, origin: Rc<Origin>, base: Option<usize>) -> Result<Hessian, Error> {
        let s = self.scalar(origin, base, ":hessian")?;
        if s.f.params.is_empty() {
            return Err(Error::new(
                "the session has no params to differentiate with respect to",
            ));
        }
        let (params, inputs) = self.point(&s.f);
        s.gradient()?;
        driver::hessian(&s.f, &s.source, &params, &inputs, self.backend()).map_err(|e| s.locate(e))
    }

    /// Reverse-mode gradients against central differences, at the current
    /// point and at random perturbations of the params, on the session's
    /// backend: the points `gradc check` checks.
    pub fn check(&self, origin: Rc<Origin>, base: Option<usize>) -> Result<CheckReport, Error> {
        let s = self.scalar(origin, base, ":check")?;
        if s.f.params.is_empty() {
            return Err(Error::new(
                "the session has no params to check gradients for",
            ));
        }
        let g = s.gradient()?;
        let (params, inputs) = self.point(&s.f);
        let settings = CheckSettings {
            backend: self.backend(),
            ..CheckSettings::default()
        };
        driver::check_gradients(&s.f, &g, &s.source, &params, &inputs, &settings)
            .map_err(|e| s.locate(e))
    }

    /// The simplified IR of the expression, or of the whole session.
    pub fn ir(&self, origin: Rc<Origin>, base: Option<usize>) -> Result<Function, Error> {
        match base {
            Some(base) => Ok(self.compile_expr(&origin, base)?.0.ir),
            None => {
                let assembled = Assembled::new(&self.entries, true);
                let c = compile(&assembled, &self.dim_options(), &origin, |_| String::new())?;
                Ok(c.ir)
            }
        }
    }

    /// The Cranelift IR of what [`Session::ir`] gives.
    pub fn clif(&self, origin: Rc<Origin>, base: Option<usize>) -> Result<String, Error> {
        let f = self.ir(origin, base)?;
        crate::backend::clif_text(&f).map_err(crate::eval::compile_failed)
    }

    /// The scalar of `:grad`, `:hessian` and `:check`: the expression (which
    /// must be a scalar) or the session's loss.
    fn scalar(&self, origin: Rc<Origin>, base: Option<usize>, what: &str) -> Result<Scalar, Error> {
        match base {
            Some(base) => {
                let (c, assembled) = self.compile_expr(&origin, base)?;
                let source = c.source.clone();
                let mut f = c.ir;
                let value = f.outputs.last().expect("the expression's output").value;
                let shape = f.shape(value).clone();
                if !shape.is_scalar() {
                    let text = &origin.text()[base..];
                    let span = Span::new(base, base + text.trim_end().len());
                    let d = Diagnostic::error(
                        span,
                        format!("{what} needs a scalar, but this has shape {shape}"),
                    )
                    .label(span, format!("shape {shape}"))
                    .hint("reduce it to one number, e.g. with `sum(...)`, `mean(...)` or `norm(...)`, or take one element");
                    return Err(at(vec![d], &origin, 0));
                }
                let out = f.outputs.last_mut().expect("the expression's output");
                out.role = Role::Loss;
                out.name = "loss".to_string();
                Ok(Scalar {
                    f,
                    source,
                    assembled,
                    origin,
                })
            }
            None => {
                let assembled = Assembled::new(&self.entries, true);
                let c = compile(&assembled, &self.dim_options(), &origin, |_| String::new())?;
                let source = c.source.clone();
                let mut f = c.ir;
                if f.output(&Role::Loss).is_none() {
                    return Err(Error::new(format!(
                        "the session has no `loss`: define one (`loss EXPR`), or give a scalar: `{what} EXPR`"
                    )));
                }
                f.outputs.retain(|o| o.role == Role::Loss);
                crate::passes::simplify(&mut f);
                Ok(Scalar {
                    f,
                    source,
                    assembled,
                    origin,
                })
            }
        }
    }
}

impl Scalar {
    /// An error on this scalar's program, placed in the text the user wrote.
    fn locate(&self, e: Error) -> Error {
        relocate(&self.assembled, &self.source, e)
    }

    /// The gradient program of the scalar with respect to every param.
    fn gradient(&self) -> Result<Function, Error> {
        crate::gradient_program(&self.f).map_err(|d| {
            locate(&self.assembled, vec![d], &self.origin, |k| {
                format!("in `{}`", k.describe())
            })
        })
    }
}
