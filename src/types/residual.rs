//! The `residual NAME = EXPR` item: the per-example residual of a
//! least-squares fit. A program has a `residual` or a `loss`, not both: the
//! loss of a residual is `0.5 * sum(r^2)` per example (lowering adds it),
//! which is what the least-squares optimizers (`levenberg_marquardt`,
//! `gauss_newton`) minimise through the residual's Jacobian, so a second
//! objective beside it would be ambiguous (scipy's `least_squares` and Ceres
//! likewise take the residuals as the whole problem).

use crate::diagnostic::Diagnostic;
use crate::span::Span;
use crate::types::train::TrainConfig;

/// The error for a least-squares optimizer (`levenberg_marquardt`,
/// `gauss_newton`) in a program without a `residual` (whose span is
/// `residual`).
pub(crate) fn needed(cfg: &TrainConfig, residual: Option<Span>) -> Option<Diagnostic> {
    if residual.is_some() || !cfg.optimizer.needs_residual() {
        return None;
    }
    let span = cfg.optimizer_span.or(cfg.span)?;
    let name = cfg.optimizer.name();
    Some(
        Diagnostic::error(span, format!("`{name}` needs a `residual`"))
            .label(span, "a least-squares method")
            .hint(format!(
                "`{name}` fits a residual through its Jacobian: declare it, e.g. `residual r = model(x) - y` in place of the `loss` (or choose `newton` or `lbfgs`, which minimise any loss)"
            )),
    )
}

/// The error for an item at `span` (a `residual` if `is_residual`, else a
/// `loss`) after a `residual` at `residual` or a `loss` at `loss`; `None`
/// when neither came before.
pub(crate) fn conflict(
    residual: Option<Span>,
    loss: Option<Span>,
    span: Span,
    is_residual: bool,
) -> Option<Diagnostic> {
    let what = if is_residual { "residual" } else { "loss" };
    Some(match (residual, loss) {
        (Some(first), _) if is_residual => Diagnostic::error(span, "a second `residual`")
            .label(span, "another residual here")
            .label(first, "the residual is defined here")
            .hint("a program has one per-example residual; stack the parts into one: `residual r = [r1, r2]`"),
        (Some(first), _) | (None, Some(first)) => Diagnostic::error(
            span,
            "a `loss` and a `residual`: a program has one or the other",
        )
        .label(span, format!("this {what}"))
        .label(
            first,
            if is_residual { "the loss is defined here" } else { "the residual is defined here" },
        )
        .hint("the loss of a `residual r = ...` is half the mean squared residual, `0.5 * sum(r^2)` per example: remove the `loss` (or write the residual as a `let` and keep the loss)"),
        (None, None) => return None,
    })
}
