//! Derivatives in the checker. `grad(of, wrt)`: the derivative of a scalar
//! expression with respect to a named value (a param, an input, a `let`, a
//! local name or a function's argument), shaped like that value.
//! `jvp(of, wrt, direction)`: the Jacobian of `of` (any shape) with respect
//! to the named value, times `direction` (shaped like the value), shaped
//! like `of`.

use crate::diagnostic::Diagnostic;
use crate::span::Span;
use crate::syntax::ast::{self, ExprKind};
use crate::types::builtins::Prim;
use crate::types::check::Checker;
use crate::types::expr::Env;
use crate::types::{TExpr, TKind};

type Bound<'e> = [Option<&'e ast::Expr>];

impl Checker<'_> {
    /// `grad(of, wrt)`.
    pub(crate) fn grad_call(
        &mut self,
        bound: &Bound<'_>,
        env: Env<'_>,
        span: Span,
    ) -> Option<TExpr> {
        let (of, wrt) = (bound[0]?, bound[1]?);
        let typed_of = self.expr(of, env);
        let typed_wrt = self.wrt(wrt, "grad", env);
        let (of, wrt) = (typed_of?, typed_wrt?);
        if !of.shape.is_scalar() {
            self.error(
                Diagnostic::error(of.span, "`grad` takes the derivative of a scalar")
                    .label(of.span, format!("shape {}", of.shape))
                    .hint("reduce it first (`grad(sum(v), x)`), take one element's (`grad(v[0], x)`), or a Jacobian-vector product: `jvp(v, x, direction)`"),
            );
            return None;
        }
        Some(TExpr {
            shape: wrt.shape.clone(),
            kind: TKind::Grad(Box::new(of), Box::new(wrt)),
            span,
        })
    }

    /// `jvp(of, wrt, direction)`.
    pub(crate) fn jvp_call(
        &mut self,
        bound: &Bound<'_>,
        env: Env<'_>,
        span: Span,
    ) -> Option<TExpr> {
        let (of, wrt, direction) = (bound[0]?, bound[1]?, bound[2]?);
        let typed_of = self.expr(of, env);
        let typed_wrt = self.wrt(wrt, "jvp", env);
        let typed_direction = self.expr(direction, env);
        let (of, wrt, direction) = (typed_of?, typed_wrt?, typed_direction?);
        if direction.shape != wrt.shape {
            self.error(
                Diagnostic::error(
                    direction.span,
                    "the direction of `jvp` must have the shape of what it differentiates with respect to",
                )
                .label(direction.span, format!("shape {}", direction.shape))
                .label(wrt.span, format!("shape {}", wrt.shape)),
            );
            return None;
        }
        Some(TExpr {
            shape: of.shape.clone(),
            kind: TKind::Jvp(Box::new(of), Box::new(wrt), Box::new(direction)),
            span,
        })
    }

    /// What a derivative is taken with respect to: a name, not an integer.
    fn wrt(&mut self, wrt: &ast::Expr, what: &str, env: Env<'_>) -> Option<TExpr> {
        let ExprKind::Name(name) = &wrt.kind else {
            self.error(
                Diagnostic::error(
                    wrt.span,
                    format!("`{what}` differentiates with respect to a name"),
                )
                .label(wrt.span, "not a name")
                .hint(format!(
                    "name the value first: `let z = ...`, then `{what}(..., z{})`",
                    if what == "jvp" { ", direction" } else { "" }
                )),
            );
            return None;
        };
        let typed = self.expr(wrt, env)?;
        if let Some(why) = self.integer_valued(&typed) {
            self.error(
                Diagnostic::error(wrt.span, format!("`{name}` is {why}: it has no derivative"))
                    .label(wrt.span, "an integer"),
            );
            return None;
        }
        Some(typed)
    }

    /// Why a named value is integer-valued, if it is: a loop's step, or an
    /// `argmax`/`argmin`.
    fn integer_valued(&self, t: &TExpr) -> Option<&'static str> {
        let mut t = t;
        loop {
            match &t.kind {
                TKind::Local(id) if self.ranges.contains_key(id) => return Some("a loop's step"),
                TKind::Let(i) => t = &self.prog.lets[*i].value,
                TKind::Prim(Prim::ArgMax(_) | Prim::ArgMin(_), _) => {
                    return Some("an index (`argmax` or `argmin`)")
                }
                _ => return None,
            }
        }
    }
}
