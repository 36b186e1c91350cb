//! Calls that give a tensor of another shape: `reshape`, `transpose(x,
//! axes)`, `stack` and `concat` along an axis, `tril`/`triu` and `diag`.
//! Shapes and axes are constants, checked here, as NumPy's.

use crate::diagnostic::Diagnostic;
use crate::span::Span;
use crate::syntax::ast::{self, ExprKind, UnOp};
use crate::types::axes::int;
use crate::types::builtins::Prim;
use crate::types::check::Checker;
use crate::types::expr::Env;
use crate::types::{TExpr, TKind};

/// The arguments of a call as bound to its parameters.
type Bound<'e> = [Option<&'e ast::Expr>];

impl Checker<'_> {
    /// `reshape(x, [a, b, ...])`: the same elements in row-major order, in
    /// the shape listed (constant integers or sizes, `[D, -1]`, at least 1,
    /// one of them maybe -1 for what the others leave), as `numpy.reshape`.
    pub(crate) fn reshape_call(
        &mut self,
        bound: &Bound<'_>,
        env: Env<'_>,
        span: Span,
    ) -> Option<TExpr> {
        let x = self.expr(bound[0].expect("a required argument"), env)?;
        let e = bound[1].expect("a required argument");
        let ExprKind::Tensor(items) = &e.kind else {
            self.error(
                Diagnostic::error(e.span, "`reshape` takes its shape as a list of integers")
                    .label(e.span, "not a list")
                    .hint("write the shape as `[2, 3]`, with at most one -1"),
            );
            return None;
        };
        let mut dims: Vec<i64> = Vec::with_capacity(items.len());
        for item in items {
            let value = match &item.kind {
                ExprKind::Number(n) => n.parse::<i64>().ok(),
                ExprKind::Unary(UnOp::Neg, inner) => match &inner.kind {
                    ExprKind::Number(n) => n.parse::<i64>().ok().map(|v| -v),
                    _ => None,
                },
                // A size (`[D, -1]`, `[2 * D]`), or another constant.
                _ => {
                    let t = self.expr(item, env)?;
                    self.const_value(&t)
                        .filter(|v| v.fract() == 0.0 && v.abs() < 1e15)
                        .map(|v| v as i64)
                }
            };
            match value {
                Some(d) if d >= 1 || d == -1 => dims.push(d),
                _ => {
                    self.error(
                        Diagnostic::error(
                            item.span,
                            "a dimension of `reshape` must be a positive integer or -1",
                        )
                        .label(item.span, "not a positive integer or -1"),
                    );
                    return None;
                }
            }
        }
        let size = x.shape.size();
        let wild: Vec<usize> = (0..dims.len()).filter(|&i| dims[i] == -1).collect();
        let known: usize = dims
            .iter()
            .filter(|&&d| d > 0)
            .map(|&d| d as usize)
            .product();
        let resolved: Option<Vec<usize>> = match wild.as_slice() {
            [] => (known == size).then(|| dims.iter().map(|&d| d as usize).collect()),
            [w] => (known > 0 && size % known == 0).then(|| {
                let mut out: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
                out[*w] = size / known;
                out
            }),
            _ => {
                self.error(
                    Diagnostic::error(e.span, "`reshape` allows one -1")
                        .label(e.span, format!("{} of them here", wild.len())),
                );
                return None;
            }
        };
        let Some(resolved) = resolved else {
            self.error(
                Diagnostic::error(
                    e.span,
                    format!(
                        "cannot reshape {} elements of shape {} into this shape",
                        size, x.shape
                    ),
                )
                .label(x.span, format!("shape {}, {size} elements", x.shape))
                .label(e.span, "a shape of another size"),
            );
            return None;
        };
        Some(TExpr {
            kind: TKind::Reshape(Box::new(x)),
            shape: crate::shape::Shape(resolved),
            span,
        })
    }

    /// `transpose(x, axes = none)`: a matrix's transpose, or the axes in the
    /// order listed (each once; negative ones count from the end), as
    /// `numpy.transpose`; without `axes`, reversed.
    pub(crate) fn transpose_call(
        &mut self,
        bound: &Bound<'_>,
        env: Env<'_>,
        span: Span,
    ) -> Option<TExpr> {
        let x = self.expr(bound[0].expect("a required argument"), env)?;
        let rank = x.shape.rank();
        let perm: Vec<usize> = match bound[1] {
            None => (0..rank).rev().collect(),
            Some(e) => {
                let items: Vec<&ast::Expr> = match &e.kind {
                    ExprKind::Name(n) if n == "none" => Vec::new(),
                    ExprKind::Tensor(items) => items.iter().collect(),
                    _ => {
                        self.error(
                            Diagnostic::error(
                                e.span,
                                "the `axes` of `transpose` must be a list of axes",
                            )
                            .label(e.span, "not a list")
                            .hint("write every axis once, in the new order: `axes = [1, 0, 2]`"),
                        );
                        return None;
                    }
                };
                if items.is_empty() {
                    (0..rank).rev().collect()
                } else {
                    let mut perm = Vec::new();
                    for item in items {
                        let Some(k) = int(item) else {
                            self.error(
                                Diagnostic::error(
                                    item.span,
                                    "an axis of `transpose` must be a constant integer",
                                )
                                .label(item.span, "not a constant axis"),
                            );
                            return None;
                        };
                        let a = self.axis(k, &x, item.span, "transpose")?;
                        if perm.contains(&a) {
                            self.error(
                                Diagnostic::error(
                                    item.span,
                                    format!("axis {a} is given twice to `transpose`"),
                                )
                                .label(item.span, format!("axis {a} again")),
                            );
                            return None;
                        }
                        perm.push(a);
                    }
                    if perm.len() != rank {
                        self.error(
                            Diagnostic::error(
                                e.span,
                                format!("`transpose` of a tensor of rank {rank} lists every axis, {rank} of them"),
                            )
                            .label(
                                e.span,
                                match perm.len() {
                                    1 => "1 axis".to_string(),
                                    n => format!("{n} axes"),
                                },
                            )
                            .label(x.span, format!("shape {}", x.shape)),
                        );
                        return None;
                    }
                    perm
                }
            }
        };
        if rank == 2 && perm == [1, 0] {
            return self.prim(Prim::Transpose, vec![x], span);
        }
        let shape = crate::shape::Shape(perm.iter().map(|&p| x.shape.dims()[p]).collect());
        Some(TExpr {
            kind: TKind::Permute(Box::new(x), perm),
            shape,
            span,
        })
    }

    /// `stack(a, b, ..., axis = 0)`: tensors of one shape along a new axis
    /// `axis` (0 to their rank); `concat(a, b, ..., axis = 0)`: tensors of
    /// one shape but along `axis`, joined along it. As NumPy; a negative
    /// axis counts from the end.
    pub(crate) fn join_call(
        &mut self,
        name: &str,
        concat: bool,
        args: &[ast::Arg],
        span: Span,
        env: Env<'_>,
    ) -> Option<TExpr> {
        let mut tensors = Vec::new();
        let mut axis: Option<(i64, Span)> = None;
        let mut ok = true;
        for a in args {
            match &a.name {
                None if axis.is_some() => {
                    self.error(
                        Diagnostic::error(a.span(), "a positional argument after a keyword one")
                            .label(a.span(), "positional")
                            .hint(format!("the tensors come first: `{name}(a, b, axis = 1)`")),
                    );
                    ok = false;
                }
                None => match self.expr(&a.value, env) {
                    Some(t) => tensors.push(t),
                    None => ok = false,
                },
                Some(n) if n.name == "axis" => {
                    match int(&a.value).or_else(|| self.size_int(&a.value, env)) {
                        Some(k) => axis = Some((k, a.value.span)),
                        None => {
                            self.error(
                                Diagnostic::error(
                                    a.value.span,
                                    format!("the `axis` of `{name}` must be a constant integer"),
                                )
                                .label(a.value.span, "not a constant axis"),
                            );
                            ok = false;
                        }
                    }
                }
                Some(n) => {
                    self.error(
                        Diagnostic::error(
                            n.span,
                            format!("`{name}` has no parameter `{}`", n.name),
                        )
                        .label(n.span, "unknown keyword")
                        .hint(format!("`{name}(a, b, ..., axis = 0)`")),
                    );
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        let Some(first) = tensors.first() else {
            self.error(
                Diagnostic::error(span, format!("`{name}` of no tensors"))
                    .label(span, "give at least one tensor"),
            );
            return None;
        };
        let rank = first.shape.rank();
        if concat && rank == 0 {
            self.error(
                Diagnostic::error(span, "`concat` joins along an axis: scalars have none")
                    .label(first.span, "a scalar")
                    .hint("`stack` puts scalars into a vector"),
            );
            return None;
        }
        // The axis: among rank + 1 places for `stack`, among the axes for
        // `concat`.
        let places = if concat { rank } else { rank + 1 };
        let (k, at) = axis.unwrap_or((0, span));
        let a = if k < 0 { k + places as i64 } else { k };
        if a < 0 || a >= places as i64 {
            self.error(
                Diagnostic::error(
                    at,
                    format!("axis {k} is out of range for `{name}` of tensors of rank {rank}"),
                )
                .label(at, format!("axis {k}"))
                .hint(format!(
                    "the axes are 0 to {} (or -{places} to -1, from the end)",
                    places.max(1) - 1
                )),
            );
            return None;
        }
        let a = a as usize;
        let fits = |t: &TExpr| {
            if concat {
                t.shape.rank() == rank
                    && (0..rank).all(|i| i == a || t.shape.dims()[i] == first.shape.dims()[i])
            } else {
                t.shape == first.shape
            }
        };
        if let Some(odd) = tensors.iter().find(|t| !fits(t)) {
            let what = if concat {
                format!("equal shapes but for axis {a}")
            } else {
                "equal shapes".to_string()
            };
            self.error(
                Diagnostic::error(span, format!("`{name}` needs tensors of {what}"))
                    .label(first.span, format!("shape {}", first.shape))
                    .label(odd.span, format!("shape {}", odd.shape)),
            );
            return None;
        }
        // Along the first axis, with the others moved out of the way and
        // back: `perm` brings axis `a` to the front, `back` undoes it.
        let to_front = |r: usize| -> Vec<usize> {
            std::iter::once(a)
                .chain((0..r).filter(|&i| i != a))
                .collect()
        };
        let permute = |t: TExpr, perm: Vec<usize>| -> TExpr {
            if perm.iter().enumerate().all(|(i, &p)| i == p) {
                return t;
            }
            let shape = crate::shape::Shape(perm.iter().map(|&p| t.shape.dims()[p]).collect());
            let span = t.span;
            TExpr {
                kind: TKind::Permute(Box::new(t), perm),
                shape,
                span,
            }
        };
        let n = tensors.len();
        let joined = if concat {
            let parts: Vec<TExpr> = tensors
                .into_iter()
                .map(|t| permute(t, to_front(rank)))
                .collect();
            let mut dims = parts[0].shape.dims().to_vec();
            dims[0] = parts.iter().map(|t| t.shape.dims()[0]).sum();
            TExpr {
                kind: TKind::Concat(parts),
                shape: crate::shape::Shape(dims),
                span,
            }
        } else {
            let mut dims = vec![n];
            dims.extend_from_slice(first.shape.dims());
            TExpr {
                kind: TKind::Pack(tensors),
                shape: crate::shape::Shape(dims),
                span,
            }
        };
        if self.too_large(&joined.shape, span) {
            return None;
        }
        // Axis 0 of the joined tensor back to place `a`.
        let r = joined.shape.rank();
        let mut back = vec![0; r];
        for (i, p) in to_front(r).into_iter().enumerate() {
            back[p] = i;
        }
        Some(permute(joined, back))
    }

    /// `tril(x, k = 0)`, `triu(x, k = 0)` of a matrix: the elements on and
    /// below (above) diagonal `k` (0 the main one, above it positive), the
    /// others exact zeros; a choice by a constant mask, so the gradient is
    /// zero where the zeros are.
    pub(crate) fn tri_call(
        &mut self,
        upper: bool,
        bound: &Bound<'_>,
        env: Env<'_>,
        span: Span,
    ) -> Option<TExpr> {
        let name = if upper { "triu" } else { "tril" };
        let x = self.expr(bound[0].expect("a required argument"), env)?;
        let k = match bound[1] {
            Some(e) => match int(e).or_else(|| self.size_int(e, env)) {
                Some(k) => k,
                None => {
                    self.error(
                        Diagnostic::error(
                            e.span,
                            format!("the `k` of `{name}` must be a constant integer"),
                        )
                        .label(e.span, "not a constant integer"),
                    );
                    return None;
                }
            },
            None => 0,
        };
        let [m, n] = x.shape.dims() else {
            self.error(
                Diagnostic::error(
                    span,
                    format!("`{name}` takes a matrix, found shape {}", x.shape),
                )
                .label(x.span, format!("shape {}", x.shape)),
            );
            return None;
        };
        let (m, n) = (*m, *n);
        let mask: Vec<f64> = (0..m * n)
            .map(|e| {
                let (i, j) = ((e / n) as i64, (e % n) as i64);
                let keep = if upper { j - i >= k } else { j - i <= k };
                f64::from(u8::from(keep))
            })
            .collect();
        Some(self.masked(x, mask, span))
    }

    /// `if mask then x else 0`, for a constant mask of `x`'s shape.
    fn masked(&mut self, x: TExpr, mask: Vec<f64>, span: Span) -> TExpr {
        let shape = x.shape.clone();
        let konst = |data: crate::shape::Tensor| TExpr {
            shape: data.shape.clone(),
            kind: TKind::Const(data),
            span,
        };
        TExpr {
            kind: TKind::If(
                Box::new(konst(crate::shape::Tensor::new(shape.clone(), mask))),
                Box::new(x),
                Box::new(konst(crate::shape::Tensor::scalar(0.0))),
            ),
            shape,
            span,
        }
    }

    /// `diag(x)`: of a vector, the square matrix with it on the diagonal
    /// (exact zeros elsewhere); of a matrix, its main diagonal, as
    /// `numpy.diag`.
    pub(crate) fn diag_call(
        &mut self,
        bound: &Bound<'_>,
        env: Env<'_>,
        span: Span,
    ) -> Option<TExpr> {
        let x = self.expr(bound[0].expect("a required argument"), env)?;
        let eye = |rows: usize, cols: usize| -> Vec<f64> {
            (0..rows * cols)
                .map(|e| f64::from(u8::from(e / cols == e % cols)))
                .collect()
        };
        match *x.shape.dims() {
            [n] => {
                // Each row of `outer(x, ones)` is x[i] repeated: the diagonal
                // keeps it.
                let ones = TExpr {
                    kind: TKind::Const(crate::shape::Tensor::new(
                        crate::shape::Shape::vector(n),
                        vec![1.0; n],
                    )),
                    shape: crate::shape::Shape::vector(n),
                    span,
                };
                let rows = self.prim(Prim::Outer, vec![x, ones], span)?;
                Some(self.masked(rows, eye(n, n), span))
            }
            [m, n] => {
                // The diagonal of the leading square, picked out by the
                // identity and summed along the rows: x[i, i] plus zeros.
                let d = m.min(n);
                let square = TExpr {
                    kind: TKind::Slice(
                        Box::new(x.clone()),
                        vec![
                            crate::ir::SliceAxis::Range(0, d),
                            crate::ir::SliceAxis::Range(0, d),
                        ],
                    ),
                    shape: crate::shape::Shape::matrix(d, d),
                    span,
                };
                let picked = self.masked(square, eye(d, d), span);
                let ones = TExpr {
                    kind: TKind::Const(crate::shape::Tensor::new(
                        crate::shape::Shape::vector(d),
                        vec![1.0; d],
                    )),
                    shape: crate::shape::Shape::vector(d),
                    span,
                };
                self.prim(Prim::MatMul, vec![picked, ones], span)
            }
            _ => {
                self.error(
                    Diagnostic::error(
                        span,
                        format!("`diag` takes a vector or a matrix, found shape {}", x.shape),
                    )
                    .label(x.span, format!("shape {}", x.shape)),
                );
                None
            }
        }
    }
}
