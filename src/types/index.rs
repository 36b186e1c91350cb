//! Indexing: constant positions and slices (negative ones count from the
//! end; integers or sizes, `x[D - 1]`, `x[0:D]`), and indices computed at run time on the leading axes (`x[t]`,
//! `logits[y]`, a tensor of indices `E[toks]`), proved in range from a
//! loop's steps where they can be.

use crate::diagnostic::Diagnostic;
use crate::ir::SliceAxis;
use crate::shape::Shape;
use crate::span::Span;
use crate::syntax::ast::{self, ExprKind, IndexItem, UnOp};
use crate::types::check::Checker;
use crate::types::expr::Env;
use crate::types::{TExpr, TKind};

impl Checker<'_> {
    /// `x[i, ...]`: computed indices on the leading axes (each a row, read
    /// at run time), then constant positions and slices.
    pub(super) fn index(
        &mut self,
        x: TExpr,
        items: &[IndexItem],
        span: Span,
        env: Env<'_>,
    ) -> Option<TExpr> {
        let mut x = x;
        let mut k = 0;
        while let Some(IndexItem::At(e)) = items.get(k) {
            if is_literal(e) || self.size_int(e, env).is_some() {
                break;
            }
            x = self.row(x, e, span, env)?;
            k += 1;
        }
        let items = &items[k..];
        if items.is_empty() {
            return Some(x);
        }
        if let Some(e) = items.iter().find_map(|ix| match ix {
            IndexItem::At(e) if !is_literal(e) && self.size_int(e, env).is_none() => Some(e),
            _ => None,
        }) {
            self.error(
                Diagnostic::error(
                    e.span,
                    "a computed index must come before the constant indices and slices",
                )
                .label(e.span, "computed here")
                .hint("index the leading axes first: `x[t][2]` rather than `x[2, t]` needs a transpose, `x.T[t]`"),
            );
            return None;
        }
        self.const_index_items(x, items, span, env)
    }

    /// Constant positions and slices.
    fn const_index_items(
        &mut self,
        x: TExpr,
        items: &[IndexItem],
        span: Span,
        env: Env<'_>,
    ) -> Option<TExpr> {
        let dims = x.shape.dims().to_vec();
        if items.len() > dims.len() {
            self.error(
                Diagnostic::error(
                    span,
                    format!("{} indices for a tensor of shape {}", items.len(), x.shape),
                )
                .label(x.span, format!("shape {}", x.shape)),
            );
            return None;
        }
        let mut axes = Vec::with_capacity(dims.len());
        let mut out = Vec::new();
        for (axis, &n) in dims.iter().enumerate() {
            let ax = match items.get(axis) {
                None => SliceAxis::Range(0, n),
                Some(IndexItem::At(e)) => {
                    let i = self.const_index(e, env)?;
                    SliceAxis::At(self.position(i, n, axis, e.span, false)?)
                }
                Some(IndexItem::Range { start, end, span }) => {
                    let mut bound = |e: &Option<ast::Expr>, default: usize| match e {
                        Some(e) => {
                            let i = self.const_index(e, env)?;
                            self.position(i, n, axis, e.span, true)
                        }
                        None => Some(default),
                    };
                    let (lo, hi) = (bound(start, 0)?, bound(end, n)?);
                    if lo >= hi {
                        self.error(
                            Diagnostic::error(*span, format!("empty slice {lo}:{hi}")).label(
                                *span,
                                format!("selects nothing of axis {axis}, of length {n}"),
                            ),
                        );
                        return None;
                    }
                    SliceAxis::Range(lo, hi)
                }
            };
            if let SliceAxis::Range(lo, hi) = ax {
                out.push(hi - lo);
            }
            axes.push(ax);
        }
        Some(TExpr {
            kind: TKind::Slice(Box::new(x), axes),
            shape: Shape(out),
            span,
        })
    }

    /// A position on an axis of length `n`; negative positions count from the
    /// end. A slice bound may equal `n`.
    fn position(
        &mut self,
        i: i64,
        n: usize,
        axis: usize,
        span: Span,
        bound: bool,
    ) -> Option<usize> {
        let p = if i < 0 { i + n as i64 } else { i };
        let limit = if bound { n as i64 } else { n as i64 - 1 };
        if p < 0 || p > limit {
            self.error(
                Diagnostic::error(span, format!("index {i} out of range"))
                    .label(span, format!("axis {axis} has length {n}")),
            );
            return None;
        }
        Some(p as usize)
    }

    /// `x[i]` for a computed index `i`: the row `i` of the leading axis;
    /// for a tensor of indices, the rows they name, as NumPy's fancy
    /// indexing (shape `i.shape + x.shape[1:]`).
    pub(crate) fn row(
        &mut self,
        x: TExpr,
        e: &ast::Expr,
        span: Span,
        env: Env<'_>,
    ) -> Option<TExpr> {
        let i = self.expr(e, env)?;
        let Some((n, rest)) = x
            .shape
            .dims()
            .split_first()
            .map(|(n, rest)| (*n, rest.to_vec()))
        else {
            self.error(
                Diagnostic::error(span, "a scalar cannot be indexed").label(x.span, "a scalar"),
            );
            return None;
        };
        if let Some((lo, hi)) = self.int_range(&i) {
            if lo < 0 || hi >= n as i64 {
                let takes = if lo == hi {
                    format!("is {lo}")
                } else {
                    format!("takes the values {lo} to {hi}")
                };
                self.error(
                    Diagnostic::error(e.span, "index out of range")
                        .label(e.span, format!("this index {takes}"))
                        .label(
                            x.span,
                            format!("but this axis has length {n} (0 to {})", n - 1),
                        ),
                );
                return None;
            }
        }
        let mut dims = i.shape.dims().to_vec();
        dims.extend_from_slice(&rest);
        let shape = Shape(dims);
        if self.too_large(&shape, span) {
            return None;
        }
        Some(TExpr {
            kind: TKind::Index(Box::new(x), Box::new(i)),
            shape,
            span,
        })
    }
}

/// An integer literal, possibly negated: a constant index.
fn is_literal(e: &ast::Expr) -> bool {
    match &e.kind {
        ExprKind::Number(_) => true,
        ExprKind::Unary(UnOp::Neg, inner) => matches!(inner.kind, ExprKind::Number(_)),
        _ => false,
    }
}
