//! Loops, comprehensions, blocks and tuples: local names in scope, counted
//! ranges known when the program is compiled, carried values whose shapes
//! the body keeps, and indices computed at run time (checked against the
//! range of the step where that proves them out of range).

use crate::diagnostic::Diagnostic;
use crate::shape::Shape;
use crate::span::Span;
use crate::syntax::ast::{self, Ident};
use crate::types::builtins::Prim;
use crate::types::check::Checker;
use crate::types::expr::{Env, Local};
use crate::types::{TExpr, TKind, TLoop};

/// The most steps a loop may take.
pub const MAX_TRIPS: usize = 1 << 24;

impl Checker<'_> {
    /// A fresh local named `name` of `shape`, appended to `scope`.
    fn local(&mut self, scope: &mut Vec<Local>, name: &Ident, shape: Shape) -> usize {
        let id = self.locals;
        self.locals += 1;
        scope.push(Local {
            name: name.name.clone(),
            id,
            shape,
        });
        id
    }

    /// Whether `names` can name the parts of `value` (one name for a
    /// tensor, one per part for a tuple); reported if not.
    pub(crate) fn destructure(&mut self, names: &[Ident], value: &TExpr, span: Span) -> bool {
        let parts = value.parts().map_or(1, |p| p.len());
        if parts == names.len() && (names.len() == 1) == value.parts().is_none() {
            return true;
        }
        let pattern = names[0].span.to(names[names.len() - 1].span);
        let what = match value.parts() {
            Some(p) => format!("a tuple of {} values", p.len()),
            None => "one value".to_string(),
        };
        self.error(
            Diagnostic::error(pattern, format!("{} names for {what}", names.len()))
                .label(pattern, format!("{} names", names.len()))
                .label(span, what),
        );
        false
    }

    /// `start..end`: integers known when the program is compiled, `start <=
    /// end`. Gives the start and the number of steps.
    fn range(&mut self, r: &ast::RangeExpr, env: Env<'_>) -> Option<(i64, usize)> {
        let bound = |c: &mut Self, e: &ast::Expr| -> Option<i64> {
            let t = c.expr(e, env)?;
            match c.const_value(&t) {
                Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => Some(x as i64),
                Some(x) => {
                    c.error(
                        Diagnostic::error(e.span, "a range's bound must be an integer")
                            .label(e.span, format!("this is {x}")),
                    );
                    None
                }
                None => {
                    c.error(
                        Diagnostic::error(
                            e.span,
                            "a range's bound must be known when the program is compiled",
                        )
                        .label(e.span, "computed at run time")
                        .hint("write a number, or the name of a `let` of one"),
                    );
                    None
                }
            }
        };
        let (start, end) = (bound(self, &r.start), bound(self, &r.end));
        let (start, end) = (start?, end?);
        if end < start {
            self.error(
                Diagnostic::error(r.span, format!("the range {start}..{end} runs backwards"))
                    .label(r.span, "its end is before its start")
                    .hint("ranges count up: `0..T` is 0, 1, ..., T - 1"),
            );
            return None;
        }
        let trips = (end - start) as usize;
        if trips > MAX_TRIPS {
            self.error(
                Diagnostic::error(r.span, format!("a loop of {trips} steps"))
                    .label(r.span, format!("more than {MAX_TRIPS} steps")),
            );
            return None;
        }
        Some((start, trips))
    }

    /// The value of a scalar expression made of constants, `let`s of
    /// constants and arithmetic, if it is one.
    pub(crate) fn const_value(&self, t: &TExpr) -> Option<f64> {
        if !t.shape.is_scalar() {
            return None;
        }
        match &t.kind {
            TKind::Const(c) => c.data.first().copied(),
            TKind::Let(i) => self.const_value(&self.prog.lets[*i].value),
            TKind::Prim(p, args) => {
                let v: Option<Vec<f64>> = args.iter().map(|a| self.const_value(a)).collect();
                let v = v?;
                match (p, v.as_slice()) {
                    (Prim::Neg, [a]) => Some(-a),
                    (Prim::Add, [a, b]) => Some(a + b),
                    (Prim::Sub, [a, b]) => Some(a - b),
                    (Prim::Mul, [a, b]) => Some(a * b),
                    (Prim::Div, [a, b]) => Some(a / b),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The integers an index takes, where the range of the steps proves it:
    /// constants, steps, and sums and differences of them.
    pub(super) fn int_range(&self, t: &TExpr) -> Option<(i64, i64)> {
        if let Some(x) = self.const_value(t) {
            return (x.fract() == 0.0 && x.abs() < 1e15).then_some((x as i64, x as i64));
        }
        match &t.kind {
            TKind::Local(id) => self.ranges.get(id).copied(),
            TKind::Prim(p, args) => {
                let r: Option<Vec<(i64, i64)>> = args.iter().map(|a| self.int_range(a)).collect();
                match (p, r?.as_slice()) {
                    (Prim::Neg, [(lo, hi)]) => Some((-hi, -lo)),
                    (Prim::Add, [(a, b), (c, d)]) => Some((a + c, b + d)),
                    (Prim::Sub, [(a, b), (c, d)]) => Some((a - d, b - c)),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// `{ let ... value }`.
    pub(crate) fn block(&mut self, b: &ast::Block, env: Env<'_>) -> Option<TExpr> {
        let mut scope = env.locals.to_vec();
        let mut lets = Vec::new();
        let mut ok = true;
        for (pattern, e) in &b.lets {
            let inner = Env {
                locals: &scope,
                ..env
            };
            let Some(v) = self.expr_any(e, inner) else {
                ok = false;
                continue;
            };
            if !pattern.names.iter().all(|n| self.not_a_builtin(n))
                || !self.destructure(&pattern.names, &v, e.span)
            {
                ok = false;
                continue;
            }
            let shapes = v.parts().unwrap_or_else(|| vec![v.shape.clone()]);
            let ids = pattern
                .names
                .iter()
                .zip(shapes)
                .map(|(n, s)| self.local(&mut scope, n, s))
                .collect();
            lets.push((ids, v));
        }
        if !ok {
            return None;
        }
        let inner = Env {
            locals: &scope,
            ..env
        };
        let value = self.expr_any(&b.value, inner)?;
        Some(TExpr {
            shape: value.shape.clone(),
            kind: TKind::Block(lets, Box::new(value)),
            span: b.span,
        })
    }

    /// `loop PATTERN = INIT for VAR in RANGE BODY`.
    pub(crate) fn loop_expr(
        &mut self,
        l: &ast::LoopExpr,
        span: Span,
        env: Env<'_>,
    ) -> Option<TExpr> {
        let init = self.expr_any(&l.init, env);
        let range = self.range(&l.range, env);
        let (init, (start, trips)) = (init?, range?);
        let names = &l.pattern.names;
        if !names.iter().all(|n| self.not_a_builtin(n)) || !self.not_a_builtin(&l.var) {
            return None;
        }
        if !self.destructure(names, &init, l.init.span) {
            return None;
        }
        if let Some(dup) = names
            .iter()
            .enumerate()
            .find(|(i, n)| names[..*i].iter().any(|m| m.name == n.name))
        {
            self.error(
                Diagnostic::error(dup.1.span, format!("`{}` is carried twice", dup.1.name))
                    .label(dup.1.span, "again here"),
            );
            return None;
        }
        let shapes = init.parts().unwrap_or_else(|| vec![init.shape.clone()]);
        let mut scope = env.locals.to_vec();
        let carries: Vec<usize> = names
            .iter()
            .zip(&shapes)
            .map(|(n, s)| self.local(&mut scope, n, s.clone()))
            .collect();
        let var = self.step(&mut scope, &l.var, start, trips);
        let inner = Env {
            locals: &scope,
            ..env
        };
        let body = self.block(&l.body, inner)?;
        let value_span = l.body.value.span;
        let out = body.parts().unwrap_or_else(|| vec![body.shape.clone()]);
        if out.len() != shapes.len() || body.parts().is_some() != init.parts().is_some() {
            self.error(
                Diagnostic::error(
                    value_span,
                    format!(
                        "the body gives {} value{} for {} carried",
                        out.len(),
                        if out.len() == 1 { "" } else { "s" },
                        shapes.len()
                    ),
                )
                .label(value_span, "the new carried values")
                .label(l.pattern.span, format!("{} carried", shapes.len())),
            );
            return None;
        }
        let mut ok = true;
        for ((name, before), after) in names.iter().zip(&shapes).zip(&out) {
            if before != after {
                self.error(
                    Diagnostic::error(
                        name.span,
                        format!("the body changes the shape of `{}`", name.name),
                    )
                    .label(name.span, format!("carried as {before}"))
                    .label(value_span, format!("the body gives {after}"))
                    .hint("a carried value keeps its shape from step to step"),
                );
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let shape = if shapes.len() == 1 {
            shapes[0].clone()
        } else {
            Shape::scalar()
        };
        Some(TExpr {
            kind: TKind::Loop(Box::new(TLoop {
                carries,
                names: names.iter().map(|n| n.name.clone()).collect(),
                init: Some(init),
                var,
                var_name: l.var.name.clone(),
                start,
                trips,
                body,
                stacked: false,
            })),
            shape,
            span,
        })
    }

    /// The step of a loop, a local integer whose values the range gives.
    fn step(&mut self, scope: &mut Vec<Local>, var: &Ident, start: i64, trips: usize) -> usize {
        let id = self.local(scope, var, Shape::scalar());
        if trips > 0 {
            self.ranges.insert(id, (start, start + trips as i64 - 1));
        }
        id
    }

    /// `[VALUE for VAR in RANGE]`: shape `[steps, ...]`.
    pub(crate) fn comprehension(
        &mut self,
        c: &ast::Comprehension,
        span: Span,
        env: Env<'_>,
    ) -> Option<TExpr> {
        let (start, trips) = self.range(&c.range, env)?;
        if !self.not_a_builtin(&c.var) {
            return None;
        }
        if trips == 0 {
            self.error(
                Diagnostic::error(c.range.span, "a comprehension over an empty range")
                    .label(c.range.span, "no steps")
                    .hint("every dimension of a shape is at least 1"),
            );
            return None;
        }
        let mut scope = env.locals.to_vec();
        let var = self.step(&mut scope, &c.var, start, trips);
        let inner = Env {
            locals: &scope,
            ..env
        };
        let value = self.expr(&c.value, inner)?;
        let mut dims = vec![trips];
        dims.extend_from_slice(value.shape.dims());
        let shape = Shape(dims);
        if self.too_large(&shape, span) {
            return None;
        }
        Some(TExpr {
            kind: TKind::Loop(Box::new(TLoop {
                carries: Vec::new(),
                names: Vec::new(),
                init: None,
                var,
                var_name: c.var.name.clone(),
                start,
                trips,
                body: value,
                stacked: true,
            })),
            shape,
            span,
        })
    }
}
