//! Calls that take axes: the reductions (`sum(x, axis = 1, keepdims =
//! true)`), `softmax` and `log_softmax` along an axis, `argmax` and
//! `argmin`. Axes are constant integers, negative ones counting from the
//! end as in NumPy, checked against the rank of the argument.

use crate::diagnostic::Diagnostic;
use crate::span::Span;
use crate::syntax::ast::{self, ExprKind, UnOp};
use crate::types::builtins::{Axes, Prim, Reduction};
use crate::types::check::Checker;
use crate::types::expr::Env;
use crate::types::TExpr;

/// The arguments of a call as bound to its parameters.
type Bound<'e> = [Option<&'e ast::Expr>];

impl Checker<'_> {
    /// `sum(x, axis, keepdims)` and the other reductions: without `axis`,
    /// the whole tensor (today's reduction to a scalar, or every axis kept
    /// with length 1).
    pub(crate) fn reduce_call(
        &mut self,
        r: Reduction,
        bound: &Bound<'_>,
        env: Env<'_>,
        span: Span,
    ) -> Option<TExpr> {
        let x = self.expr(bound[0].expect("a required argument"), env)?;
        let keepdims = match bound[2] {
            Some(e) => self.flag(e, "keepdims", r.name())?,
            None => false,
        };
        let axes = match bound[1] {
            Some(e) => self.axes(e, &x, r.name(), true)?,
            None => None,
        };
        let prim = match axes {
            None if !keepdims => r.whole(),
            None if x.shape.rank() > Axes::MAX_RANK => return self.too_many_axes(&x),
            None => Prim::ReduceAxes(
                r,
                Axes {
                    mask: mask(0..x.shape.rank()),
                    keepdims,
                },
            ),
            Some(list) => Prim::ReduceAxes(
                r,
                Axes {
                    mask: mask(list),
                    keepdims,
                },
            ),
        };
        self.prim(prim, vec![x], span)
    }

    /// `softmax(x, axis = -1)`, `log_softmax`.
    pub(crate) fn softmax_call(
        &mut self,
        log: bool,
        bound: &Bound<'_>,
        env: Env<'_>,
        span: Span,
    ) -> Option<TExpr> {
        let name = if log { "log_softmax" } else { "softmax" };
        let x = self.expr(bound[0].expect("a required argument"), env)?;
        let axis = match bound[1] {
            Some(e) => match self.axes(e, &x, name, false)? {
                Some(list) => list[0],
                None => return self.axis_none(e, name),
            },
            None if x.shape.is_scalar() => {
                self.error(
                    Diagnostic::error(
                        x.span,
                        format!("`{name}` needs a tensor with an axis, found a scalar"),
                    )
                    .label(x.span, "shape []")
                    .hint(format!(
                        "`{name}` normalises along an axis, the last by default"
                    )),
                );
                return None;
            }
            None => self.axis(-1, &x, span, name)?,
        };
        let prim = if log {
            Prim::LogSoftmax(axis)
        } else {
            Prim::Softmax(axis)
        };
        self.prim(prim, vec![x], span)
    }

    /// `argmax(x, axis = none)`, `argmin`: without an axis, the flat index.
    pub(crate) fn argmax_call(
        &mut self,
        min: bool,
        bound: &Bound<'_>,
        env: Env<'_>,
        span: Span,
    ) -> Option<TExpr> {
        let name = if min { "argmin" } else { "argmax" };
        let x = self.expr(bound[0].expect("a required argument"), env)?;
        let axis = match bound[1] {
            Some(e) => self.axes(e, &x, name, false)?.map(|list| list[0]),
            None => None,
        };
        let prim = if min {
            Prim::ArgMin(axis)
        } else {
            Prim::ArgMax(axis)
        };
        self.prim(prim, vec![x], span)
    }

    /// The axes `e` names of `x`, increasing: a constant integer, or (when
    /// `list`) a list of them, each once; `None` for `none`.
    fn axes(
        &mut self,
        e: &ast::Expr,
        x: &TExpr,
        name: &str,
        list: bool,
    ) -> Option<Option<Vec<usize>>> {
        let items: Vec<&ast::Expr> = match &e.kind {
            ExprKind::Name(n) if n == "none" => return Some(None),
            ExprKind::Tensor(items) if list => items.iter().collect(),
            _ => vec![e],
        };
        let mut seen: Vec<(usize, Span)> = Vec::new();
        for item in items {
            let Some(k) = int(item) else {
                let (what, hint) = if list {
                    (
                        "a constant integer or a list of them",
                        "`axis = 0`, `axis = -1` (the last), `axis = [0, 2]`: axes are fixed when the program is compiled",
                    )
                } else {
                    (
                        "one constant integer",
                        "`axis = 0`, `axis = -1` (the last): an axis is fixed when the program is compiled",
                    )
                };
                self.error(
                    Diagnostic::error(item.span, format!("the `axis` of `{name}` must be {what}"))
                        .label(item.span, "not a constant axis")
                        .hint(hint),
                );
                return None;
            };
            let a = self.axis(k, x, item.span, name)?;
            if let Some(&(_, first)) = seen.iter().find(|(b, _)| *b == a) {
                self.error(
                    Diagnostic::error(item.span, format!("axis {a} is given twice to `{name}`"))
                        .label(first, format!("axis {a}"))
                        .label(item.span, format!("axis {a} again"))
                        .hint("name each axis once; a negative axis counts from the end"),
                );
                return None;
            }
            seen.push((a, item.span));
        }
        let mut axes: Vec<usize> = seen.into_iter().map(|(a, _)| a).collect();
        axes.sort_unstable();
        Some(Some(axes))
    }

    /// Axis `k` of `x` (from the end when negative), written at `at`.
    pub(super) fn axis(&mut self, k: i64, x: &TExpr, at: Span, name: &str) -> Option<usize> {
        let rank = x.shape.rank();
        if rank > Axes::MAX_RANK {
            return self.too_many_axes(x);
        }
        let a = if k < 0 { k + rank as i64 } else { k };
        if a < 0 || a >= rank as i64 {
            let hint = match rank {
                0 => format!("a scalar has no axes: `{name}` of it needs no `axis`"),
                1 => "the one axis of a vector is 0 (or -1)".to_string(),
                _ => format!(
                    "the axes of a rank-{rank} tensor are 0 to {} (or -{rank} to -1, from the end)",
                    rank - 1
                ),
            };
            self.error(
                Diagnostic::error(
                    at,
                    format!("axis {k} is out of range for a tensor of rank {rank}"),
                )
                .label(at, format!("axis {k}"))
                .label(x.span, format!("shape {}", x.shape))
                .hint(hint),
            );
            return None;
        }
        Some(a as usize)
    }

    /// `keepdims = true` or `false`.
    fn flag(&mut self, e: &ast::Expr, param: &str, name: &str) -> Option<bool> {
        match &e.kind {
            ExprKind::Name(n) if n == "true" => Some(true),
            ExprKind::Name(n) if n == "false" => Some(false),
            _ => {
                self.error(
                    Diagnostic::error(
                        e.span,
                        format!("the `{param}` of `{name}` must be `true` or `false`"),
                    )
                    .label(e.span, "not `true` or `false`")
                    .hint(format!(
                        "`{param} = true` keeps each reduced axis, with length 1"
                    )),
                );
                None
            }
        }
    }

    fn axis_none(&mut self, e: &ast::Expr, name: &str) -> Option<TExpr> {
        self.error(
            Diagnostic::error(e.span, format!("`{name}` needs an axis"))
                .label(e.span, "no axis")
                .hint("`axis = -1`, the default, is the last axis"),
        );
        None
    }

    fn too_many_axes<T>(&mut self, x: &TExpr) -> Option<T> {
        self.error(
            Diagnostic::error(
                x.span,
                format!(
                    "a tensor of more than {} axes cannot be reduced along axes",
                    Axes::MAX_RANK
                ),
            )
            .label(x.span, format!("shape {}", x.shape)),
        );
        None
    }
}

/// An integer literal, possibly negated.
pub(super) fn int(e: &ast::Expr) -> Option<i64> {
    let (neg, lit) = match &e.kind {
        ExprKind::Unary(UnOp::Neg, inner) => (true, &inner.kind),
        other => (false, other),
    };
    match lit {
        ExprKind::Number(text) => text.parse::<i64>().ok().map(|v| if neg { -v } else { v }),
        _ => None,
    }
}

/// The bits of the listed axes.
fn mask(axes: impl IntoIterator<Item = usize>) -> u64 {
    axes.into_iter().fold(0, |m, a| m | 1 << a)
}
