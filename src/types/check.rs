//! The checker's driver: declarations, name bindings and the items in order.

use std::collections::HashMap;

use crate::diagnostic::{closest, Diagnostic};
use crate::shape::Shape;
use crate::span::Span;
use crate::syntax::ast::{self, ExprKind, ItemKind};
use crate::types::builtins;
use crate::types::dims::{self, DimOptions, Sizes};
use crate::types::expr::Env;
use crate::types::init::check_init;
use crate::types::residual;
use crate::types::train::check_train;
use crate::types::{InputDecl, Named, ParamDecl, Program};

/// The most elements any tensor of a program may have (2 GiB of f64).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// What the checker demands of a program.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// A file must have a `loss`; a REPL session need not.
    pub require_loss: bool,
    /// What binds the sizes (`dim D`) besides their defaults: `--dim`, and
    /// where the data is (see [`crate::types::dims`]).
    pub dims: DimOptions,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            require_loss: true,
            dims: DimOptions::default(),
        }
    }
}

/// What a global name stands for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Binding {
    Param(usize),
    Input(usize),
    Let(usize),
    /// Part `k` of the tuple-valued `let` `i`.
    LetPart(usize, usize),
    /// A `let` whose value is being checked.
    LetPending,
    /// A definition that had errors, already reported: uses are not errors.
    Failed,
    /// A size (`dim D`), bound to its value before checking; a use before
    /// the item is an error.
    Dim(usize),
    Fn(usize),
}

/// A user function, checked again at every call.
#[derive(Clone)]
pub(crate) struct FnDef<'a> {
    pub name: String,
    pub params: Vec<String>,
    pub body: &'a ast::Expr,
    pub span: Span,
    /// The number of `let`s defined before the function: those its body sees.
    pub lets: usize,
    /// Its definition had errors, already reported: calls are not checked.
    pub broken: bool,
}

pub(crate) struct Checker<'a> {
    pub diags: Vec<Diagnostic>,
    pub prog: Program,
    /// Every global name, with the span of its definition.
    pub globals: HashMap<String, (Binding, Span)>,
    pub fns: Vec<FnDef<'a>>,
    /// Expression nodes typed so far.
    pub budget: usize,
    /// User-function calls being specialised, one inside another.
    pub calls: usize,
    /// `let`s and functions defined further down, for "used before defined".
    pub later: HashMap<String, Span>,
    /// Outputs and metrics, by name: `"output"` or `"metric"` and the span of
    /// the name. They cannot be referenced, and a use says so.
    pub reported: HashMap<String, (&'static str, Span)>,
    /// Locals numbered so far (see [`crate::types::TKind::Local`]).
    pub locals: usize,
    /// The values a local integer (a loop's step) takes, by local.
    pub ranges: HashMap<usize, (i64, i64)>,
    /// The sizes, bound before checking.
    pub sizes: Sizes,
    /// The `dim` items, by name: where each is declared.
    pub dim_items: HashMap<String, Span>,
}

impl Checker<'_> {
    pub(crate) fn error(&mut self, d: Diagnostic) {
        if !self.diags.contains(&d) {
            self.diags.push(d);
        }
    }

    /// Binds a global name, unless it is taken; then reports both places.
    fn bind(&mut self, name: &ast::Ident, b: Binding) -> bool {
        if !self.not_a_builtin(name) {
            return false;
        }
        if let Some((_, first)) = self.globals.get(&name.name) {
            let first = *first;
            self.error(
                Diagnostic::error(name.span, format!("`{}` is defined twice", name.name))
                    .label(name.span, "defined again here")
                    .label(first, "first defined here"),
            );
            return false;
        }
        self.globals.insert(name.name.clone(), (b, name.span));
        true
    }

    /// Whether `name` may be defined: a builtin's name may not (reported).
    pub(crate) fn not_a_builtin(&mut self, name: &ast::Ident) -> bool {
        if builtins::is_builtin(&name.name) {
            self.error(
                Diagnostic::error(
                    name.span,
                    format!("`{}` is the name of a builtin function", name.name),
                )
                .label(name.span, "cannot be redefined")
                .hint("choose another name"),
            );
            return false;
        }
        true
    }

    /// The error for a use of `name` that names an output or a metric, which
    /// other definitions cannot refer to; `None` if it names neither.
    pub(crate) fn reported_use(&self, name: &str, span: Span) -> Option<Diagnostic> {
        let &(kind, def) = self.reported.get(name)?;
        Some(
            Diagnostic::error(
                span,
                format!(
                    "`{name}` is {} {kind}, and {kind}s cannot be used in other definitions",
                    article(kind)
                ),
            )
            .label(span, "used here")
            .label(
                def,
                format!("`{name}` is defined here as {} {kind}", article(kind)),
            )
            .hint(format!(
                "define it with `let {name} = ...` and write `{kind} {name} = {name}`"
            )),
        )
    }

    fn shape_ann(&mut self, ann: &ast::ShapeAnn) -> Option<Shape> {
        let mut dims = Vec::new();
        for e in &ann.dims {
            match dims::eval_size(e, &mut |n, span| self.size_of(n, span)) {
                Ok(n) => dims.push(n),
                Err(d) => {
                    self.error(d);
                    return None;
                }
            }
        }
        let shape = Shape(dims);
        if self.too_large(&shape, ann.span) {
            return None;
        }
        Some(shape)
    }

    /// The value of the size `name` used in a shape at `span`: a `dim`
    /// above it, or an error.
    fn size_of(&self, name: &str, span: Span) -> Result<usize, Diagnostic> {
        match self.globals.get(name) {
            Some(&(Binding::Dim(v), def)) if def.lo < span.lo => Ok(v),
            Some(&(Binding::Dim(_), def)) => Err(used_before_dim(name, span, def)),
            Some(&(_, def)) => Err(not_a_size(name, span, def)),
            None if self.dim_items.contains_key(name) => {
                Err(used_before_dim(name, span, self.dim_items[name]))
            }
            None if self.later.contains_key(name) => Err(not_a_size(name, span, self.later[name])),
            None => {
                let mut d = Diagnostic::error(span, format!("unknown size `{name}`"))
                    .label(span, "not declared with `dim`");
                let sizes = self
                    .globals
                    .iter()
                    .filter_map(|(n, (b, _))| matches!(b, Binding::Dim(_)).then_some(n.as_str()));
                d = match closest(name, sizes) {
                    Some(c) => d.hint(format!("did you mean `{c}`?")),
                    None => d.hint(format!("declare it above its first use: `dim {name}`")),
                };
                Err(d)
            }
        }
    }

    /// The value of `e` if it is an integer written with integers and sizes
    /// (`D - 1`, `2 * H`), without reporting anything: a local or an
    /// argument of the same name hides a size.
    pub(crate) fn size_int(&self, e: &ast::Expr, env: Env<'_>) -> Option<i64> {
        let mut lookup = |n: &str, span: Span| {
            let hidden =
                env.locals.iter().any(|l| l.name == n) || env.args.iter().any(|(a, _)| a == n);
            if hidden {
                return Err(Diagnostic::error(span, "a local name"));
            }
            self.size_of(n, span)
        };
        dims::eval_int(e, &mut lookup).ok()
    }

    /// Refuses shapes of more than [`MAX_ELEMENTS`] elements (reported).
    pub(crate) fn too_large(&mut self, shape: &Shape, span: Span) -> bool {
        let size = shape
            .dims()
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if size.is_some_and(|n| n <= MAX_ELEMENTS) {
            return false;
        }
        self.error(
            Diagnostic::error(span, format!("shape {shape} is too large"))
                .label(span, format!("more than {MAX_ELEMENTS} elements"))
                .hint("gradc holds every tensor in memory; use smaller dimensions"),
        );
        true
    }

    fn env(&self) -> Env<'static> {
        Env {
            args: &[],
            lets: self.prog.lets.len(),
            fns: self.fns.len(),
            locals: &[],
        }
    }
}

/// Checks a parsed program: every name bound, every shape known and consistent.
/// Returns every error found, not only the first.
pub fn check(program: &ast::Program, opts: &CheckOptions) -> Result<Program, Vec<Diagnostic>> {
    let sizes = dims::resolve(program, &opts.dims)?;
    let mut c = Checker {
        diags: Vec::new(),
        prog: Program::default(),
        globals: HashMap::new(),
        fns: Vec::new(),
        budget: 0,
        calls: 0,
        later: HashMap::new(),
        reported: HashMap::new(),
        locals: 0,
        ranges: HashMap::new(),
        sizes,
        dim_items: HashMap::new(),
    };
    for item in &program.items {
        match &item.kind {
            ItemKind::Let { name, .. } | ItemKind::Fn { name, .. } => {
                c.later.entry(name.name.clone()).or_insert(name.span);
            }
            ItemKind::LetTuple { names, .. } => {
                for name in names {
                    c.later.entry(name.name.clone()).or_insert(name.span);
                }
            }
            ItemKind::Dim { name, .. } => {
                c.dim_items.entry(name.name.clone()).or_insert(name.span);
            }
            ItemKind::Output { name, .. } => {
                c.reported
                    .entry(name.name.clone())
                    .or_insert(("output", name.span));
            }
            ItemKind::Metric { name, .. } => {
                c.reported
                    .entry(name.name.clone())
                    .or_insert(("metric", name.span));
            }
            ItemKind::Residual { name, .. } => {
                c.reported
                    .entry(name.name.clone())
                    .or_insert(("residual", name.span));
            }
            _ => {}
        }
    }
    declarations(&mut c, program);
    let mut loss_span = None;
    let mut residual_span = None;
    let mut train_span = None;
    let mut metric_names: HashMap<String, Span> = HashMap::new();
    for item in &program.items {
        match &item.kind {
            ItemKind::Param { .. }
            | ItemKind::Input { .. }
            | ItemKind::Dim { .. }
            | ItemKind::Error => {}
            ItemKind::Let { name, value } => {
                let bound = c.bind(name, Binding::LetPending);
                let env = c.env();
                let typed = c.expr(value, env);
                if bound {
                    let binding = match typed {
                        Some(v) => {
                            c.prog.lets.push(Named {
                                name: name.name.clone(),
                                value: v,
                                span: item.span,
                                parts: Vec::new(),
                            });
                            Binding::Let(c.prog.lets.len() - 1)
                        }
                        None => Binding::Failed,
                    };
                    c.globals.insert(name.name.clone(), (binding, name.span));
                }
            }
            ItemKind::LetTuple { names, value } => {
                let bound: Vec<bool> = names
                    .iter()
                    .map(|n| c.bind(n, Binding::LetPending))
                    .collect();
                let env = c.env();
                let typed = c.expr_any(value, env);
                let typed = typed.and_then(|v| c.destructure(names, &v, value.span).then_some(v));
                let i = c.prog.lets.len();
                if let Some(v) = typed {
                    c.prog.lets.push(Named {
                        name: names
                            .iter()
                            .map(|n| n.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        value: v,
                        span: item.span,
                        parts: names.iter().map(|n| n.name.clone()).collect(),
                    });
                }
                for (k, (n, ok)) in names.iter().zip(bound).enumerate() {
                    if ok {
                        let b = if c.prog.lets.len() > i {
                            Binding::LetPart(i, k)
                        } else {
                            Binding::Failed
                        };
                        c.globals.insert(n.name.clone(), (b, n.span));
                    }
                }
            }
            ItemKind::Fn { name, params, body } => function(&mut c, name, params, body, item.span),
            ItemKind::Residual { name, value } => {
                if let Some(d) = residual::conflict(residual_span, loss_span, item.span, true) {
                    c.error(d);
                    continue;
                }
                residual_span = Some(item.span);
                // The residual is an output of the program too (`eval`
                // shows it): its name is taken among the outputs.
                if let Some(first) = metric_names.insert(format!("output {}", name.name), name.span)
                {
                    c.error(
                        Diagnostic::error(name.span, format!("`{}` is defined twice", name.name))
                            .label(name.span, "defined again here")
                            .label(first, "first defined here"),
                    );
                }
                let env = c.env();
                if let Some(v) = c.expr(value, env) {
                    c.prog.residual = Some(Named {
                        name: name.name.clone(),
                        value: v,
                        span: item.span,
                        parts: Vec::new(),
                    });
                }
            }
            ItemKind::Loss { value } => {
                if let Some(d) = residual::conflict(residual_span, None, item.span, false) {
                    c.error(d);
                    continue;
                }
                if let Some(first) = loss_span {
                    c.error(
                        Diagnostic::error(item.span, "a second `loss`")
                            .label(item.span, "another loss here")
                            .label(first, "the loss is defined here")
                            .hint(
                                "a program has one per-example loss; add the terms: `loss a + b`",
                            ),
                    );
                    continue;
                }
                loss_span = Some(item.span);
                let env = c.env();
                if let Some(v) = c.expr(value, env) {
                    if !v.shape.is_scalar() {
                        c.error(
                            Diagnostic::error(
                                value.span,
                                format!("the loss must be a scalar, found shape {}", v.shape),
                            )
                            .label(value.span, format!("shape {}", v.shape))
                            .hint("reduce it to one number, with `sum(...)` or `mean(...)`"),
                        );
                    } else {
                        c.prog.loss = Some(v);
                    }
                }
            }
            ItemKind::Metric { name, value } | ItemKind::Output { name, value } => {
                let is_metric = matches!(item.kind, ItemKind::Metric { .. });
                let key = format!(
                    "{}{}",
                    if is_metric { "metric " } else { "output " },
                    name.name
                );
                if let Some(first) = metric_names.insert(key, name.span) {
                    c.error(
                        Diagnostic::error(name.span, format!("`{}` is defined twice", name.name))
                            .label(name.span, "defined again here")
                            .label(first, "first defined here"),
                    );
                    continue;
                }
                let env = c.env();
                let Some(v) = c.expr(value, env) else {
                    continue;
                };
                if is_metric && !v.shape.is_scalar() {
                    c.error(
                        Diagnostic::error(
                            value.span,
                            format!("a metric must be a scalar, found shape {}", v.shape),
                        )
                        .label(value.span, format!("shape {}", v.shape))
                        .hint(
                            "metrics are averaged over the examples; use `output` for other values",
                        ),
                    );
                    continue;
                }
                let named = Named {
                    name: name.name.clone(),
                    value: v,
                    span: item.span,
                    parts: Vec::new(),
                };
                if is_metric {
                    c.prog.metrics.push(named);
                } else {
                    c.prog.outputs.push(named);
                }
            }
            ItemKind::Train { settings } => {
                if let Some(first) = train_span {
                    c.error(
                        Diagnostic::error(item.span, "a second `train` block")
                            .label(item.span, "another train block")
                            .label(first, "the first one")
                            .hint("put every setting in one block"),
                    );
                    continue;
                }
                train_span = Some(item.span);
                let inputs: Vec<(String, Shape)> = c
                    .prog
                    .inputs
                    .iter()
                    .map(|i| (i.name.clone(), i.shape.clone()))
                    .collect();
                let cfg = check_train(settings, item.span, &inputs, &mut c.diags);
                c.prog.train = Some(cfg);
            }
        }
    }
    if let Some(d) = c
        .prog
        .train
        .as_ref()
        .and_then(|t| residual::needed(t, residual_span))
    {
        c.error(d);
    }
    if opts.require_loss && loss_span.is_none() && residual_span.is_none() && c.diags.is_empty() {
        let end = program.items.last().map_or(0, |i| i.span.hi as usize);
        c.error(
            Diagnostic::error(Span::new(end, end), "the program has no `loss`")
                .hint("add the per-example loss that training minimises, e.g. `loss mse(yhat, y)`"),
        );
    }
    if c.diags.is_empty() {
        Ok(c.prog)
    } else {
        Err(c.diags)
    }
}

/// Parameters and inputs are declarations: bound before any expression is
/// checked, so every expression may use them.
fn declarations(c: &mut Checker<'_>, program: &ast::Program) {
    for item in &program.items {
        match &item.kind {
            ItemKind::Dim { name, .. } => {
                if let Some(&v) = c.sizes.get(&name.name) {
                    if c.bind(name, Binding::Dim(v)) {
                        c.prog.sizes.push((name.name.clone(), v));
                    }
                }
            }
            ItemKind::Param { name, shape, init } => {
                let declared = match shape {
                    Some(ann) => match c.shape_ann(ann) {
                        Some(s) => Some(s),
                        None => {
                            c.bind(name, Binding::Failed);
                            continue;
                        }
                    },
                    None => None,
                };
                match check_init(init.as_ref(), declared.as_ref(), name.span) {
                    Ok((init, shape)) => {
                        let i = c.prog.params.len();
                        if c.bind(name, Binding::Param(i)) {
                            c.prog.params.push(ParamDecl {
                                name: name.name.clone(),
                                shape,
                                init,
                                span: item.span,
                            });
                        }
                    }
                    Err(d) => {
                        c.error(d);
                        c.bind(name, Binding::Failed);
                    }
                }
            }
            ItemKind::Input { name, shape } => {
                let shape = match shape {
                    Some(ann) => match c.shape_ann(ann) {
                        Some(s) => s,
                        None => {
                            c.bind(name, Binding::Failed);
                            continue;
                        }
                    },
                    None => Shape::scalar(),
                };
                let i = c.prog.inputs.len();
                if c.bind(name, Binding::Input(i)) {
                    c.prog.inputs.push(InputDecl {
                        name: name.name.clone(),
                        shape,
                        span: item.span,
                    });
                }
            }
            _ => {}
        }
    }
}

/// Registers a user function after checking the names its body uses; shapes
/// are checked at each call.
fn function<'a>(
    c: &mut Checker<'a>,
    name: &ast::Ident,
    params: &[ast::Ident],
    body: &'a ast::Expr,
    span: Span,
) {
    let mut ok = true;
    for (i, p) in params.iter().enumerate() {
        if params[..i].iter().any(|q| q.name == p.name) {
            c.error(
                Diagnostic::error(p.span, format!("parameter `{}` appears twice", p.name))
                    .label(p.span, "again here"),
            );
            ok = false;
        }
    }
    let names: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
    let before = c.diags.len();
    resolve_names(c, body, &names);
    ok &= c.diags.len() == before;
    let index = c.fns.len();
    if c.bind(name, Binding::Fn(index)) {
        let lets = c.prog.lets.len();
        c.fns.push(FnDef {
            name: name.name.clone(),
            params: names,
            body,
            span,
            lets,
            broken: !ok,
        });
    }
}

/// Reports names in a function body that are neither its parameters, nor
/// defined above, nor builtins: so that errors in a function that is never
/// called are still found.
fn resolve_names(c: &mut Checker<'_>, e: &ast::Expr, params: &[String]) {
    // The names bound inside the body (loops, blocks) count as its own;
    // their scopes are checked at each call.
    let mut own = params.to_vec();
    own.extend(ast::binders(e));
    let params = &own[..];
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match &e.kind {
            ExprKind::Name(n) => {
                // (`true`, `false` and `none` are words of keyword
                // arguments, `keepdims = true`: checked at each call.)
                let word = matches!(n.as_str(), "true" | "false" | "none");
                if !word
                    && !params.contains(n)
                    && !c.globals.contains_key(n)
                    && !builtins::is_builtin(n)
                {
                    if let Some(d) = c.reported_use(n, e.span) {
                        c.error(d);
                        continue;
                    }
                    let mut d = Diagnostic::error(e.span, format!("unknown name `{n}`"))
                        .label(e.span, "not defined");
                    let candidates = params
                        .iter()
                        .map(String::as_str)
                        .chain(c.globals.keys().map(String::as_str));
                    if let Some(close) = crate::diagnostic::closest(n, candidates) {
                        d = d.hint(format!("did you mean `{close}`?"));
                    }
                    c.error(d);
                }
            }
            other => stack.extend(ast::children(other)),
        }
    }
}

/// A name that is not a size, used in a shape.
fn not_a_size(name: &str, span: Span, def: Span) -> Diagnostic {
    Diagnostic::error(span, format!("`{name}` is not a size"))
        .label(span, "used as a size")
        .label(def, "defined here, not with `dim`")
        .hint(format!(
            "shapes use sizes: declare one with `dim {name} = ...`"
        ))
}

/// A size used above its `dim` item.
pub(crate) fn used_before_dim(name: &str, span: Span, def: Span) -> Diagnostic {
    Diagnostic::error(
        span,
        format!("the size `{name}` is used before its `dim` item"),
    )
    .label(span, "used here")
    .label(def, "declared later, here")
    .hint(format!("move `dim {name}` above its first use"))
}

/// "an output", "a metric".
fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}
