//! Typing of expressions: names resolved, shapes inferred and checked, user
//! functions specialised at each call.

use crate::diagnostic::{closest, Diagnostic};
use crate::ir::broadcast;

use crate::shape::{Shape, Tensor};
use crate::span::Span;
use crate::syntax::ast::{self, BinOp, ExprKind, UnOp};
use crate::types::builtins::{self, Builtin, Fallback, Prim, Signature};
use crate::types::call::{self, Callee};
use crate::types::check::{Binding, Checker};
use crate::types::init::parse_number;
use crate::types::{TExpr, TKind};

/// Expression nodes typed in one program, counting every specialised call
/// body again; past this the program is refused rather than exhausting memory.
const BUDGET: usize = 1_000_000;

/// User-function calls nested deeper than this (each inlined inside the
/// other) are refused, so that checking cannot overflow the stack.
const MAX_CALL_DEPTH: usize = 64;

/// Calls named in the labels of an error inside nested user functions.
const MAX_TRACED_CALLS: usize = 3;

/// The rule every elementwise operation's operands follow, as NumPy's.
const BROADCAST_HINT: &str = "shapes broadcast as in NumPy: aligned at their last axes, each pair of lengths equal or one of them 1; a scalar combines with any shape";

/// What a name may refer to at one point of the program.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    /// The arguments of the user function being specialised, with their shapes.
    pub args: &'a [(String, Shape)],
    /// Only `let`s with a smaller index are defined here.
    pub lets: usize,
    /// Only user functions with a smaller index are defined here.
    pub fns: usize,
    /// The local names in scope (loops' carried values and steps, blocks'
    /// `let`s), innermost last. A user function's body sees only its own.
    pub locals: &'a [Local],
}

/// A local name in scope.
#[derive(Clone, Debug)]
pub(crate) struct Local {
    pub name: String,
    /// Its number (see [`TKind::Local`]).
    pub id: usize,
    pub shape: Shape,
}

impl Checker<'_> {
    /// Types one expression that must be a tensor; a tuple is reported.
    pub(crate) fn expr(&mut self, e: &ast::Expr, env: Env<'_>) -> Option<TExpr> {
        let typed = self.expr_any(e, env)?;
        if let Some(parts) = typed.parts() {
            self.error(
                Diagnostic::error(
                    e.span,
                    format!(
                        "a tuple of {} values where one value is expected",
                        parts.len()
                    ),
                )
                .label(e.span, "a tuple")
                .hint("name its parts: `let (a, b) = ...`"),
            );
            return None;
        }
        Some(typed)
    }

    /// Types one expression, a tensor or a tuple; on an error, reports it
    /// and returns `None`.
    pub(crate) fn expr_any(&mut self, e: &ast::Expr, env: Env<'_>) -> Option<TExpr> {
        self.budget += 1;
        if self.budget > BUDGET {
            if self.budget == BUDGET + 1 {
                self.error(
                    Diagnostic::error(e.span, "program too large once user functions are inlined")
                        .label(e.span, format!("more than {BUDGET} operations by here"))
                        .hint("a function that calls another twice doubles in size at each level"),
                );
            }
            return None;
        }
        let span = e.span;
        let typed = |kind: TKind, shape: Shape| Some(TExpr { kind, shape, span });
        match &e.kind {
            ExprKind::Number(text) => match parse_number(text, span) {
                Ok(x) => typed(TKind::Const(Tensor::scalar(x)), Shape::scalar()),
                Err(d) => {
                    self.error(d);
                    None
                }
            },
            ExprKind::Name(name) => self.name(name, span, env),
            ExprKind::Str(_) => {
                self.error(
                    Diagnostic::error(span, "a string is not a value")
                        .label(span, "a string")
                        .hint("strings are the subscripts of `einsum(\"ij,jk->ik\", a, b)` and the file names of a train block"),
                );
                None
            }
            ExprKind::Tensor(elems) => self.tensor(elems, span, env),
            ExprKind::Unary(UnOp::Plus, inner) => self.expr(inner, env),
            ExprKind::Unary(UnOp::Neg, inner) => {
                let x = self.expr(inner, env)?;
                if let TKind::Const(t) = &x.kind {
                    let data = t.data.iter().map(|v| -v).collect();
                    return typed(TKind::Const(Tensor::new(x.shape.clone(), data)), x.shape);
                }
                let shape = x.shape.clone();
                typed(TKind::Prim(Prim::Neg, vec![x]), shape)
            }
            ExprKind::Binary(op, a, b) => {
                let prim = binop_prim(*op);
                let (a, b) = (self.expr(a, env), self.expr(b, env));
                self.prim(prim, vec![a?, b?], span)
            }
            ExprKind::Transpose(inner) => {
                let x = self.expr(inner, env)?;
                self.prim(Prim::Transpose, vec![x], span)
            }
            ExprKind::If { cond, then, els } => {
                let (c, t, f) = (
                    self.expr(cond, env),
                    self.expr(then, env),
                    self.expr(els, env),
                );
                self.select(c?, t?, f?, span, "`if`")
            }
            ExprKind::Call { func, args } => self.call(func, args, span, env),
            ExprKind::Index { base, indices } => {
                let x = self.expr(base, env)?;
                self.index(x, indices, span, env)
            }
            ExprKind::Loop(l) => self.loop_expr(l, span, env),
            ExprKind::Comprehension(c) => self.comprehension(c, span, env),
            ExprKind::Tuple(es) => {
                let parts: Vec<Option<TExpr>> = es.iter().map(|x| self.expr(x, env)).collect();
                let parts: Vec<TExpr> = parts.into_iter().collect::<Option<_>>()?;
                typed(TKind::Tuple(parts), Shape::scalar())
            }
            ExprKind::Block(b) => self.block(b, env),
            ExprKind::TooDeep => {
                // The whole expression would underline pages: point at its start.
                let span = Span::new(span.lo as usize, span.lo as usize + 1);
                self.error(
                    Diagnostic::error(
                        span,
                        format!("expression nested more than {} levels deep", ast::MAX_DEPTH),
                    )
                    .hint("name intermediate results with `let`"),
                );
                None
            }
        }
    }

    fn name(&mut self, name: &str, span: Span, env: Env<'_>) -> Option<TExpr> {
        let typed = |kind: TKind, shape: &Shape| {
            Some(TExpr {
                kind,
                shape: shape.clone(),
                span,
            })
        };
        if let Some(l) = env.locals.iter().rev().find(|l| l.name == name) {
            return typed(TKind::Local(l.id), &l.shape);
        }
        if let Some(i) = env.args.iter().position(|(n, _)| n == name) {
            return typed(TKind::Arg(i), &env.args[i].1);
        }
        match self.globals.get(name).cloned() {
            Some((Binding::Param(i), _)) => typed(TKind::Param(i), &self.prog.params[i].shape),
            Some((Binding::Input(i), _)) => typed(TKind::Input(i), &self.prog.inputs[i].shape),
            Some((Binding::Let(i), _)) if i < env.lets => {
                typed(TKind::Let(i), &self.prog.lets[i].value.shape)
            }
            Some((Binding::LetPart(i, k), _)) if i < env.lets => {
                let parts = self.prog.lets[i].value.parts().unwrap_or_default();
                typed(TKind::LetPart(i, k), &parts[k])
            }
            Some((Binding::Failed, _)) => None,
            Some((Binding::Dim(v), def)) if def.lo < span.lo => typed(
                TKind::Const(crate::shape::Tensor::scalar(v as f64)),
                &Shape::scalar(),
            ),
            Some((Binding::Dim(_), def)) => {
                self.error(crate::types::check::used_before_dim(name, span, def));
                None
            }
            Some((Binding::LetPending, def)) => {
                self.error(
                    Diagnostic::error(span, format!("`{name}` is used in its own definition"))
                        .label(span, "used here")
                        .label(def, "while it is being defined here")
                        .hint("a `let` cannot refer to itself; name the earlier value differently"),
                );
                None
            }
            Some((Binding::Let(_) | Binding::LetPart(..), def)) => {
                self.error(
                    Diagnostic::error(span, format!("`{name}` is used before it is defined"))
                        .label(span, "used here")
                        .label(def, "defined later, here")
                        .hint("move the `let` above its first use"),
                );
                None
            }
            Some((Binding::Fn(_), _)) => {
                self.error(
                    Diagnostic::error(span, format!("`{name}` is a function, not a value"))
                        .label(span, "used as a value")
                        .hint(format!("call it: `{name}(...)`")),
                );
                None
            }
            None if builtins::is_builtin(name) => {
                self.error(
                    Diagnostic::error(span, format!("`{name}` is a builtin function, not a value"))
                        .label(span, "used as a value")
                        .hint(format!("call it: `{name}(...)`")),
                );
                None
            }
            None if self.later.contains_key(name) => {
                let def = self.later[name];
                self.error(
                    Diagnostic::error(span, format!("`{name}` is used before it is defined"))
                        .label(span, "used here")
                        .label(def, "defined later, here")
                        .hint("move the definition above its first use"),
                );
                None
            }
            None if self.reported.contains_key(name) => {
                if let Some(d) = self.reported_use(name, span) {
                    self.error(d);
                }
                None
            }
            None => {
                let mut d = Diagnostic::error(span, format!("unknown name `{name}`"))
                    .label(span, "not defined");
                let candidates: Vec<&str> = env
                    .args
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .chain(self.globals.keys().map(String::as_str))
                    .collect();
                if let Some(c) = closest(name, candidates) {
                    d = d.hint(format!("did you mean `{c}`?"));
                }
                self.error(d);
                None
            }
        }
    }

    /// `if c then t else f` and `where(c, t, f)`: the three parts broadcast
    /// to the result's shape.
    fn select(&mut self, c: TExpr, t: TExpr, f: TExpr, span: Span, what: &str) -> Option<TExpr> {
        let shape = [&c.shape, &t.shape, &f.shape]
            .into_iter()
            .try_fold(Shape::scalar(), |acc, s| broadcast::shapes(&acc, s));
        match shape {
            Ok(shape) => Some(TExpr {
                kind: TKind::If(Box::new(c), Box::new(t), Box::new(f)),
                shape,
                span,
            }),
            Err(conflict) => {
                self.error(
                    Diagnostic::error(
                        span,
                        format!("cannot combine the parts of this {what}: {conflict}"),
                    )
                    .label(c.span, format!("condition: {}", c.shape))
                    .label(t.span, format!("then: {}", t.shape))
                    .label(f.span, format!("else: {}", f.shape))
                    .hint(BROADCAST_HINT),
                );
                None
            }
        }
    }

    fn tensor(&mut self, elems: &[ast::Expr], span: Span, env: Env<'_>) -> Option<TExpr> {
        if elems.is_empty() {
            self.error(
                Diagnostic::error(span, "empty tensor literal")
                    .label(span, "has no elements")
                    .hint("every dimension of a shape is at least 1"),
            );
            return None;
        }
        let typed: Vec<Option<TExpr>> = elems.iter().map(|e| self.expr(e, env)).collect();
        let typed: Vec<TExpr> = typed.into_iter().collect::<Option<_>>()?;
        let first = typed[0].shape.clone();
        if let Some(odd) = typed.iter().find(|t| t.shape != first) {
            self.error(
                Diagnostic::error(
                    span,
                    "the elements of this tensor literal have different shapes",
                )
                .label(typed[0].span, format!("shape {first}"))
                .label(odd.span, format!("shape {}", odd.shape)),
            );
            return None;
        }
        let mut dims = vec![typed.len()];
        dims.extend_from_slice(first.dims());
        let shape = Shape(dims);
        if self.too_large(&shape, span) {
            return None;
        }
        let consts: Option<Vec<f64>> = typed
            .iter()
            .map(|t| match &t.kind {
                TKind::Const(c) => Some(c.data.clone()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.concat());
        let kind = match consts {
            Some(data) => TKind::Const(Tensor::new(shape.clone(), data)),
            None => TKind::Pack(typed),
        };
        Some(TExpr { kind, shape, span })
    }

    /// Applies a primitive, reporting a shape mismatch with every argument's shape.
    pub(crate) fn prim(&mut self, prim: Prim, args: Vec<TExpr>, span: Span) -> Option<TExpr> {
        let shapes: Vec<&Shape> = args.iter().map(|a| &a.shape).collect();
        match prim.shape(&shapes) {
            Ok(shape) if self.too_large(&shape, span) => None,
            Ok(shape) => Some(TExpr {
                kind: TKind::Prim(prim, args),
                shape,
                span,
            }),
            Err(msg) => {
                let mut d = Diagnostic::error(span, msg);
                // Arguments the checker supplied (huber's delta) have the call's span.
                for a in args.iter().filter(|a| a.span != span) {
                    d = d.label(a.span, format!("shape {}", a.shape));
                }
                if prim == Prim::MatMul {
                    d = d.hint("`@` multiplies [..., m, k] by [..., k, n] or [k], the leading (batch) axes broadcast; `W.T` transposes a matrix");
                } else if prim.broadcasts() {
                    d = d.hint(BROADCAST_HINT);
                }
                self.error(d);
                None
            }
        }
    }

    fn call(
        &mut self,
        func: &ast::Ident,
        args: &[ast::Arg],
        span: Span,
        env: Env<'_>,
    ) -> Option<TExpr> {
        let name = func.name.as_str();
        if let Some(field) = name.strip_prefix('.') {
            self.error(
                Diagnostic::error(func.span, format!("unknown field `.{field}`"))
                    .label(func.span, "not a field")
                    .hint("the only field is `.T`, the transpose of a matrix"),
            );
            return None;
        }
        let shadowed =
            env.args.iter().any(|(n, _)| n == name) || env.locals.iter().any(|l| l.name == name);
        match self.globals.get(name).cloned() {
            Some((Binding::Fn(i), _)) if !shadowed && i < env.fns => {
                return self.user_call(i, func, args, span, env)
            }
            Some((Binding::Fn(_), def)) if !shadowed => {
                self.error(
                    Diagnostic::error(func.span, format!("`{name}` is called before it is defined"))
                        .label(func.span, "called here")
                        .label(def, "defined here")
                        .hint("functions may call only functions defined above them, so they cannot recurse"),
                );
                return None;
            }
            Some(_) | None if shadowed || self.globals.contains_key(name) => {
                self.error(
                    Diagnostic::error(func.span, format!("`{name}` is a value, not a function"))
                        .label(func.span, "called here"),
                );
                return None;
            }
            _ => {}
        }
        let sigs = builtins::signatures(name);
        // `stack` and `concat` take any number of tensors.
        if let [Signature {
            builtin: Builtin::Join { concat },
            ..
        }] = sigs
        {
            return self.join_call(name, *concat, args, span, env);
        }
        if let [Signature {
            builtin: Builtin::Einsum,
            ..
        }] = sigs
        {
            return self.einsum_call(args, span, env);
        }
        if sigs.is_empty() {
            let mut d = Diagnostic::error(func.span, format!("unknown function `{name}`"))
                .label(func.span, "not a builtin or a user function");
            let users = self.fns.iter().map(|f| f.name.as_str());
            let candidates = builtins::names().map(|n| n as &str).chain(users);
            if let Some(c) = closest(name, candidates) {
                d = d.hint(format!("did you mean `{c}`?"));
            }
            self.error(d);
            return None;
        }
        let Some(sig) = call::choose(sigs, args) else {
            let accepts = builtins::arity_text(sigs);
            self.error(call::arity_error(name, &accepts, args.len(), span));
            return None;
        };
        let bound = match call::bind(&Callee::builtin(sig), args, span) {
            Ok(bound) => bound,
            Err(d) => {
                self.error(d);
                return None;
            }
        };
        // Every required parameter is bound.
        let arg = |i: usize| bound[i].expect("a required argument");
        match sig.builtin {
            Builtin::Where => {
                let (c, t, f) = (
                    self.expr(arg(0), env),
                    self.expr(arg(1), env),
                    self.expr(arg(2), env),
                );
                self.select(c?, t?, f?, span, "`where`")
            }
            Builtin::OneHot => {
                let classes = arg(1);
                let n = self.const_index(classes, env)?;
                if n < 1 {
                    self.error(
                        Diagnostic::error(classes.span, "`one_hot` needs at least 1 class")
                            .label(classes.span, format!("{n} classes")),
                    );
                    return None;
                }
                let c = self.expr(arg(0), env)?;
                self.prim(Prim::OneHot(n as usize), vec![c], span)
            }
            Builtin::Reduce(r) => self.reduce_call(r, &bound, env, span),
            Builtin::Softmax { log } => self.softmax_call(log, &bound, env, span),
            Builtin::ArgMax { min } => self.argmax_call(min, &bound, env, span),
            Builtin::Reshape => self.reshape_call(&bound, env, span),
            Builtin::Transpose => self.transpose_call(&bound, env, span),
            Builtin::Join { .. } => unreachable!("joined above, with any number of tensors"),
            Builtin::Einsum => unreachable!("contracted above, with any number of tensors"),
            Builtin::Tri { upper } => self.tri_call(upper, &bound, env, span),
            Builtin::Diag => self.diag_call(&bound, env, span),
            Builtin::Grad => self.grad_call(&bound, env, span),
            Builtin::Jvp => self.jvp_call(&bound, env, span),
            Builtin::Conv2d => self.conv2d_call(&bound, env, span),
            Builtin::Pool2d { avg } => self.pool2d_call(avg, &bound, env, span),
            Builtin::Prim(prim) => {
                let typed: Vec<Option<TExpr>> = bound
                    .iter()
                    .zip(sig.params)
                    .map(|(a, p)| match (a, p.default) {
                        (Some(a), _) => self.expr(a, env),
                        // An optional argument left out: its default, placed
                        // at the call.
                        (None, Some(Fallback::Number(d))) => Some(TExpr {
                            kind: TKind::Const(Tensor::scalar(d)),
                            shape: Shape::scalar(),
                            span,
                        }),
                        (None, _) => unreachable!("a primitive's defaults are numbers"),
                    })
                    .collect();
                let typed: Vec<TExpr> = typed.into_iter().collect::<Option<_>>()?;
                // Optional parameters (huber's delta, a slope, a bound) are scalars.
                let optional = sig.params.iter().zip(&typed);
                for (p, a) in optional.filter(|(p, _)| p.default.is_some()) {
                    if !a.shape.is_scalar() {
                        self.error(
                            Diagnostic::error(
                                a.span,
                                format!("the `{}` of `{name}` must be a scalar", p.name),
                            )
                            .label(a.span, format!("shape {}", a.shape))
                            .hint(format!("`{}` applies one value to every element", p.name)),
                        );
                        return None;
                    }
                }
                self.prim(prim, typed, span)
            }
        }
    }

    fn user_call(
        &mut self,
        index: usize,
        func: &ast::Ident,
        args: &[ast::Arg],
        span: Span,
        env: Env<'_>,
    ) -> Option<TExpr> {
        let def = self.fns[index].clone();
        if def.broken {
            return None;
        }
        if self.calls >= MAX_CALL_DEPTH {
            self.error(
                Diagnostic::error(
                    span,
                    format!("user functions nested more than {MAX_CALL_DEPTH} calls deep"),
                )
                .label(func.span, "this call is too deep")
                .hint("each call is inlined; flatten the chain of functions"),
            );
            return None;
        }
        let bound = match call::bind(&Callee::user(&def.name, &def.params, def.span), args, span) {
            Ok(bound) => bound,
            Err(d) => {
                self.error(d);
                return None;
            }
        };
        // A user function's parameters are all required, so all are bound.
        let typed: Vec<Option<TExpr>> = bound
            .iter()
            .map(|a| self.expr(a.expect("a required argument"), env))
            .collect();
        // (The body sees its parameters and the globals above it, not the
        // caller's locals.)
        let typed: Vec<TExpr> = typed.into_iter().collect::<Option<_>>()?;
        let frame: Vec<(String, Shape)> = def
            .params
            .iter()
            .zip(&typed)
            .map(|(p, a)| (p.clone(), a.shape.clone()))
            .collect();
        let inner = Env {
            args: &frame,
            lets: def.lets,
            fns: index,
            locals: &[],
        };
        let before = self.diags.len();
        self.calls += 1;
        let body = self.expr_any(def.body, inner);
        self.calls -= 1;
        let shapes: Vec<String> = frame.iter().map(|(n, s)| format!("{n}: {s}")).collect();
        for d in &mut self.diags[before..] {
            // The innermost calls explain an error; a whole chain would bury it.
            let traced = d
                .labels
                .iter()
                .filter(|l| l.message.starts_with("in this call"))
                .count();
            if traced >= MAX_TRACED_CALLS {
                continue;
            }
            d.labels.push(crate::diagnostic::Label {
                span: func.span,
                message: format!("in this call of `{}`, with {}", def.name, shapes.join(", ")),
            });
        }
        let body = body?;
        Some(TExpr {
            shape: body.shape.clone(),
            kind: TKind::Call {
                name: def.name.clone(),
                args: typed,
                body: Box::new(body),
            },
            span,
        })
    }

    /// An integer written as a literal, possibly negated, or with sizes
    /// (`D - 1`): indices and counts must be known when the program is
    /// compiled.
    pub(super) fn const_index(&mut self, e: &ast::Expr, env: Env<'_>) -> Option<i64> {
        let (neg, lit) = match &e.kind {
            ExprKind::Unary(UnOp::Neg, inner) => (true, &inner.kind),
            other => (false, other),
        };
        let value = match lit {
            ExprKind::Number(text) => text.parse::<i64>().ok().map(|v| if neg { -v } else { v }),
            _ => self.size_int(e, env),
        };
        match value {
            Some(v) => Some(v),
            None => {
                self.error(
                    Diagnostic::error(e.span, "expected a constant integer")
                        .label(e.span, "not an integer literal")
                        .hint("indices, slice bounds and class counts are fixed when the program is compiled: integers or sizes (`dim`)"),
                );
                None
            }
        }
    }
}

fn binop_prim(op: BinOp) -> Prim {
    match op {
        BinOp::Add => Prim::Add,
        BinOp::Sub => Prim::Sub,
        BinOp::Mul => Prim::Mul,
        BinOp::Div => Prim::Div,
        BinOp::Pow => Prim::Pow,
        BinOp::MatMul => Prim::MatMul,
        BinOp::Eq => Prim::Eq,
        BinOp::Ne => Prim::Ne,
        BinOp::Lt => Prim::Lt,
        BinOp::Le => Prim::Le,
        BinOp::Gt => Prim::Gt,
        BinOp::Ge => Prim::Ge,
    }
}
