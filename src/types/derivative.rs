//! `grad(of, wrt)` in the checker: the derivative of a scalar expression
//! with respect to a named value (a param, an input, a `let`, a local name
//! or a function's argument), shaped like that value.

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
        let ExprKind::Name(name) = &wrt.kind else {
            self.error(
                Diagnostic::error(wrt.span, "`grad` differentiates with respect to a name")
                    .label(wrt.span, "not a name")
                    .hint("name the value first: `let z = ...`, then `grad(f, z)`"),
            );
            return None;
        };
        let typed_wrt = self.expr(wrt, env);
        let (of, wrt_t) = (typed_of?, typed_wrt?);
        if !of.shape.is_scalar() {
            self.error(
                Diagnostic::error(of.span, "`grad` takes the derivative of a scalar")
                    .label(of.span, format!("shape {}", of.shape))
                    .hint("reduce it first (`grad(sum(v), x)`), or take one element's: `grad(v[0], x)`"),
            );
            return None;
        }
        if let Some(why) = self.integer_valued(&wrt_t) {
            self.error(
                Diagnostic::error(wrt.span, format!("`{name}` is {why}: it has no derivative"))
                    .label(wrt.span, "an integer"),
            );
            return None;
        }
        Some(TExpr {
            shape: wrt_t.shape.clone(),
            kind: TKind::Grad(Box::new(of), Box::new(wrt_t)),
            span,
        })
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
