//! Checking a `train { }` block: the settings, the optimizer and the schedule.

use std::collections::HashMap;

use super::*;
use crate::diagnostic::closest;
use crate::syntax::ast::{Ident, SArg, SValue, SValueKind, Setting};
use crate::types::init::{parse_count, parse_number};

/// "did you mean `x`?" or the list of what exists.
pub(super) fn suggest(name: &str, candidates: &[&str], what: &str) -> String {
    match closest(name, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("{what}: {}", candidates.join(", ")),
    }
}

/// How a value reads in a "found ..." message.
pub(super) fn describe(v: &SValue) -> String {
    match &v.kind {
        SValueKind::Number(n) => format!("the number {n}"),
        SValueKind::Str(s) => format!("the string \"{s}\""),
        SValueKind::Name(n) => format!("`{n}`"),
        SValueKind::Range(a, b) => format!("the range {a}..{b}"),
        SValueKind::Fraction(a, b) => format!("the fraction {a}/{b}"),
        SValueKind::List(_) => "a list".to_string(),
        SValueKind::Call { func, .. } => format!("a call of `{}`", func.name),
    }
}

pub(super) fn wrong_kind(v: &SValue, what: &str, expected: &str) -> Diagnostic {
    Diagnostic::error(
        v.span,
        format!("{what} expects {expected}, found {}", describe(v)),
    )
    .label(v.span, format!("expected {expected}"))
}

/// Checks a train block. `span` is the block's; `inputs` are the model's
/// inputs with their shapes, in declaration order. Errors go to `diags`.
pub fn check_train(
    settings: &[Setting],
    span: Span,
    inputs: &[(String, Shape)],
    diags: &mut Vec<Diagnostic>,
) -> TrainConfig {
    let mut by_key: HashMap<&str, &Setting> = HashMap::new();
    for s in settings {
        let key = s.key.name.as_str();
        if !KEYS.contains(&key) {
            diags.push(unknown_key(&s.key));
        } else if let Some(first) = by_key.get(key) {
            diags.push(
                Diagnostic::error(s.key.span, format!("`{key}` is set twice"))
                    .label(first.key.span, "first set here")
                    .label(s.key.span, "set again here")
                    .hint("keep one of the two"),
            );
        } else {
            by_key.insert(key, s);
        }
    }
    let get = |k: &str| by_key.get(k).map(|s| &s.value);
    let mut c = TrainConfig {
        span: Some(span),
        steps: None,
        ..TrainConfig::default()
    };
    let mut ck = Checker { diags };

    if let Some(s) = by_key.get("data") {
        if inputs.is_empty() {
            ck.diags.push(
                Diagnostic::error(s.key.span, "`data` given but the model has no inputs")
                    .label(s.span, "nothing to read these into")
                    .hint(
                        "declare the inputs of one example with `input x: [n]`, or remove `data`",
                    ),
            );
        } else {
            c.data = ck.data(&s.value, inputs, "data");
        }
    }
    if let Some(s) = by_key.get("test") {
        if inputs.is_empty() {
            ck.diags.push(
                Diagnostic::error(s.key.span, "`test` given but the model has no inputs")
                    .label(s.span, "nothing to read these into")
                    .hint("a test set holds examples of the model's inputs: remove `test`"),
            );
        } else {
            c.test = ck.data(&s.value, inputs, "test");
        }
    }
    if let Some(v) = get("optimizer") {
        c.optimizer = ck.optimizer(v).unwrap_or_default();
        c.optimizer_span = Some(v.span);
    }
    if let Some(v) = get("schedule") {
        c.schedule = ck.schedule(v).unwrap_or_default();
    }
    if let Some(v) = get("batch") {
        c.batch = match &v.kind {
            SValueKind::Name(n) if n == "full" => Batch::Full,
            SValueKind::Number(_) => ck
                .count(v, "`batch`", 1)
                .map_or(Batch::Full, |n| Batch::Size(n as usize)),
            _ => {
                ck.diags
                    .push(wrong_kind(v, "`batch`", "a whole number or `full`"));
                Batch::Full
            }
        };
    }
    c.epochs = get("epochs").and_then(|v| ck.count(v, "`epochs`", 1));
    c.steps = get("steps").and_then(|v| ck.count(v, "`steps`", 1));
    if get("epochs").is_none() && get("steps").is_none() {
        c.steps = Some(DEFAULT_STEPS);
    }
    if let Some(v) = get("seed") {
        c.seed = ck.count(v, "`seed`", 0).unwrap_or(0);
    }
    if let Some(v) = get("dtype") {
        c.dtype = ck.dtype(v);
    }
    if let Some(v) = get("shuffle") {
        c.shuffle = ck.boolean(v, "`shuffle`").unwrap_or(true);
    }
    if let Some(v) = get("validate") {
        c.validate = ck.number(v, "`validate`").and_then(|x| {
            ck.require(
                x > 0.0 && x < 1.0,
                v,
                "`validate` must be between 0 and 1",
                "a fraction such as 0.2",
            )
            .then_some(x)
        });
    }
    c.patience = get("patience").and_then(|v| ck.count(v, "`patience`", 1));
    c.checkpoint = get("checkpoint")
        .and_then(|v| ck.count(v, "`checkpoint`", 1))
        .map(|n| n as usize);
    if let Some(v) = get("loss_tol") {
        c.loss_tol = ck.number(v, "`loss_tol`");
    }
    if let Some(v) = get("rel_tol") {
        c.rel_tol = ck.number(v, "`rel_tol`").and_then(|x| {
            ck.require(
                x > 0.0,
                v,
                "`rel_tol` must be positive",
                "a small number such as 1e-12",
            )
            .then_some(x)
        });
    }
    if let Some(v) = get("grad_tol") {
        c.grad_tol = ck.number(v, "`grad_tol`").and_then(|x| {
            ck.require(
                x > 0.0,
                v,
                "`grad_tol` must be positive",
                "a small number such as 1e-6",
            )
            .then_some(x)
        });
    }

    // Settings that need one another.
    if inputs.is_empty() {
        for key in ["batch", "shuffle", "validate", "patience"] {
            if let Some(s) = by_key.get(key) {
                ck.diags.push(
                    Diagnostic::error(
                        s.key.span,
                        format!("`{key}` needs data, but the model has no inputs"),
                    )
                    .label(s.span, "no examples to apply this to")
                    .hint("plain gradient descent on the parameters uses no data: remove this setting"),
                );
            }
        }
    }
    if c.optimizer.is_full_batch() {
        full_batch_only(&c.optimizer, &by_key, ck.diags);
    }
    if let (Some(p), None) = (by_key.get("patience"), by_key.get("validate")) {
        ck.diags.push(
            Diagnostic::error(p.key.span, "`patience` needs `validate`")
                .label(p.span, "early stopping watches the validation loss")
                .hint("hold out a validation split, e.g. `validate = 0.2`"),
        );
    }
    if let (Schedule::Cosine { min_lr, .. }, Some(v)) = (&c.schedule, get("schedule")) {
        let lr = c.optimizer.lr();
        if *min_lr > lr {
            ck.diags.push(
                Diagnostic::error(
                    v.span,
                    format!(
                        "`min_lr` ({}) is above the learning rate ({})",
                        short_num(*min_lr),
                        short_num(lr)
                    ),
                )
                .label(v.span, "the rate would rise instead of decay"),
            );
        }
    }
    c
}

/// The settings a full-batch method (`newton`, `lbfgs`, ...) cannot take:
/// mini-batches, early stopping, and a learning-rate schedule (it has no
/// learning rate).
fn full_batch_only(o: &Optimizer, by_key: &HashMap<&str, &Setting>, diags: &mut Vec<Diagnostic>) {
    let name = o.name();
    if let Some(s) = by_key.get("batch") {
        if !matches!(&s.value.kind, SValueKind::Name(n) if n == "full") {
            diags.push(
                Diagnostic::error(
                    s.value.span,
                    format!("`{name}` is a full-batch method: it cannot train on mini-batches"),
                )
                .label(s.span, "mini-batches")
                .label(by_key["optimizer"].value.span, "a full-batch method")
                .hint(format!(
                    "each `{name}` step uses the loss over all the training data: remove `batch` (or write `batch = full`), or choose a stochastic optimizer such as `adam`"
                )),
            );
        }
    }
    if let Some(s) = by_key.get("dtype") {
        if matches!(&s.value.kind, SValueKind::Name(n) if n == "f32") {
            diags.push(
                Diagnostic::error(
                    s.value.span,
                    format!("`{name}` is a full-batch method and runs in f64"),
                )
                .label(s.span, "f32")
                .label(by_key["optimizer"].value.span, "a full-batch method")
                .hint("f32 is for the first-order optimizers: remove `dtype`, or choose one such as `adam`"),
            );
        }
    }
    if let Some(s) = by_key.get("patience") {
        diags.push(
            Diagnostic::error(s.key.span, format!("`{name}` takes no `patience`"))
                .label(s.span, "early stopping")
                .label(by_key["optimizer"].value.span, "a full-batch method")
                .hint("early stopping is for stochastic training: stop with `grad_tol`, `loss_tol` or `rel_tol` instead"),
        );
    }
    if let Some(s) = by_key.get("schedule") {
        diags.push(
            Diagnostic::error(
                s.value.span,
                format!("`{name}` has no learning rate to schedule"),
            )
            .label(s.span, "a learning-rate schedule")
            .label(by_key["optimizer"].value.span, "no learning rate")
            .hint(format!(
                "the step of `{name}` is set by its line search or damping: remove `schedule`"
            )),
        );
    }
}

pub(super) fn unknown_key(key: &Ident) -> Diagnostic {
    let name = key.name.as_str();
    let d = Diagnostic::error(key.span, format!("unknown setting `{name}`"))
        .label(key.span, "not a train setting");
    // Names from other libraries, mapped to ours.
    let alias = match name {
        "lr" | "learning_rate" | "eta" => {
            return d
                .hint("the learning rate is an optimizer argument: `optimizer = sgd(lr = ...)`")
        }
        "batch_size" | "minibatch" | "mini_batch" => Some("batch"),
        "max_steps" | "iterations" | "iters" | "max_iter" | "n_steps" => Some("steps"),
        "n_epochs" | "num_epochs" | "max_epochs" => Some("epochs"),
        "validation" | "val" | "val_split" | "validation_split" => Some("validate"),
        "early_stopping" => Some("patience"),
        "scheduler" | "lr_schedule" | "lr_scheduler" => Some("schedule"),
        "optim" | "opt" => Some("optimizer"),
        "tol" | "tolerance" => Some("loss_tol"),
        _ => None,
    };
    match alias {
        Some(a) => d.hint(format!("did you mean `{a}`?")),
        None => d.hint(suggest(name, KEYS, "the settings are")),
    }
}

/// Checks values, pushing a diagnostic for each mistake.
pub(super) struct Checker<'d> {
    pub(super) diags: &'d mut Vec<Diagnostic>,
}

impl Checker<'_> {
    /// Pushes `message` at `v` unless `ok`; returns `ok`.
    pub(super) fn require(&mut self, ok: bool, v: &SValue, message: &str, expected: &str) -> bool {
        if !ok {
            self.diags.push(
                Diagnostic::error(v.span, message)
                    .label(v.span, format!("this is {}", value_text(v)))
                    .hint(format!("write {expected}")),
            );
        }
        ok
    }

    pub(super) fn number(&mut self, v: &SValue, what: &str) -> Option<f64> {
        match &v.kind {
            SValueKind::Number(n) => parse_number(n, v.span).map_err(|d| self.diags.push(d)).ok(),
            _ => {
                self.diags.push(wrong_kind(v, what, "a number"));
                None
            }
        }
    }

    /// A whole number of at least `min`.
    pub(super) fn count(&mut self, v: &SValue, what: &str, min: u64) -> Option<u64> {
        let SValueKind::Number(n) = &v.kind else {
            self.diags.push(wrong_kind(v, what, "a whole number"));
            return None;
        };
        let n = parse_count(n, v.span, what)
            .map_err(|d| self.diags.push(d))
            .ok()?;
        if n < min {
            self.diags.push(
                Diagnostic::error(v.span, format!("{what} must be at least {min}"))
                    .label(v.span, format!("this is {n}")),
            );
            return None;
        }
        Some(n)
    }

    /// `dtype = f64` or `f32`; anything else is an error, and f64.
    pub(super) fn dtype(&mut self, v: &SValue) -> Dtype {
        let names = Dtype::ALL.map(Dtype::name);
        match &v.kind {
            SValueKind::Name(n) => Dtype::parse(n).unwrap_or_else(|| {
                let mut d = Diagnostic::error(v.span, format!("unknown dtype `{n}`"))
                    .label(v.span, "expected `f64` or `f32`");
                d = match closest(n, names) {
                    Some(c) => d.hint(format!("did you mean `{c}`?")),
                    None => d.hint("`f64` (the default) or `f32` (faster, less precise)"),
                };
                self.diags.push(d);
                Dtype::F64
            }),
            _ => {
                self.diags.push(wrong_kind(v, "`dtype`", "`f64` or `f32`"));
                Dtype::F64
            }
        }
    }

    pub(super) fn boolean(&mut self, v: &SValue, what: &str) -> Option<bool> {
        match &v.kind {
            SValueKind::Name(n) if n == "true" => Some(true),
            SValueKind::Name(n) if n == "false" => Some(false),
            _ => {
                self.diags.push(wrong_kind(v, what, "`true` or `false`"));
                None
            }
        }
    }

    /// Binds a call's arguments to `params`: the first `positional` of them may
    /// be given without a name, in order; the others must be named.
    pub(super) fn bind<'a>(
        &mut self,
        func: &Ident,
        args: &'a [SArg],
        params: &[&str],
        positional: usize,
    ) -> Vec<Option<&'a SValue>> {
        let mut bound: Vec<Option<(&'a SValue, Span)>> = vec![None; params.len()];
        let mut next = 0;
        for a in args {
            let (i, span) = match &a.name {
                None if next < positional.min(params.len()) => {
                    next += 1;
                    (next - 1, a.value.span)
                }
                None => {
                    let hint = match positional {
                        _ if params.is_empty() => format!("`{}` takes no arguments", func.name),
                        0 => format!("name it: `{}` takes {}", func.name, named_list(params)),
                        _ => format!(
                            "only `{}` can be given without a name; name the others: {}",
                            params[..positional].join("`, `"),
                            named_list(&params[positional..])
                        ),
                    };
                    self.diags.push(
                        Diagnostic::error(
                            a.value.span,
                            format!("unexpected unnamed argument to `{}`", func.name),
                        )
                        .label(a.value.span, "needs a name")
                        .hint(hint),
                    );
                    continue;
                }
                Some(name) => match params.iter().position(|p| *p == name.name) {
                    Some(i) => (i, name.span),
                    None => {
                        let hint = match closest(&name.name, params.iter().copied()) {
                            Some(c) => format!("did you mean `{c}`?"),
                            None if params.is_empty() => {
                                format!("`{}` takes no arguments", func.name)
                            }
                            None => format!("`{}` takes {}", func.name, named_list(params)),
                        };
                        self.diags.push(
                            Diagnostic::error(
                                name.span,
                                format!("`{}` has no argument `{}`", func.name, name.name),
                            )
                            .label(name.span, "unknown argument")
                            .hint(hint),
                        );
                        continue;
                    }
                },
            };
            match bound[i] {
                Some((_, first)) => self.diags.push(
                    Diagnostic::error(span, format!("`{}` is given twice", params[i]))
                        .label(first, "first given here")
                        .label(span, "given again here"),
                ),
                None => bound[i] = Some((&a.value, span)),
            }
        }
        bound.into_iter().map(|b| b.map(|(v, _)| v)).collect()
    }

    /// `sgd(lr = 0.1)`, `adam`, ...
    pub(super) fn optimizer(&mut self, v: &SValue) -> Option<Optimizer> {
        let Some((func, args)) = callee(v) else {
            self.diags.push(
                wrong_kind(v, "`optimizer`", "an optimizer")
                    .hint("write e.g. `sgd(lr = 0.1)` or `adam`"),
            );
            return None;
        };
        let Some(defaults) = Optimizer::defaults(&func.name) else {
            self.diags.push(
                Diagnostic::error(func.span, format!("unknown optimizer `{}`", func.name))
                    .label(func.span, "not an optimizer")
                    .hint(suggest(&func.name, OPTIMIZERS, "the optimizers are")),
            );
            return None;
        };
        let names: Vec<&str> = defaults.args().iter().map(|(k, _)| *k).collect();
        let mut values: Vec<f64> = defaults.args().iter().map(|(_, v)| *v).collect();
        let bound = self.bind(&func, args, &names, 1);
        let mut ok = true;
        for (i, b) in bound.iter().enumerate() {
            let Some(arg) = b else { continue };
            let what = format!("`{}`", names[i]);
            let Some(x) = self.number(arg, &what) else {
                ok = false;
                continue;
            };
            ok &= match names[i] {
                "lr" => self.require(
                    x > 0.0,
                    arg,
                    "the learning rate must be positive",
                    "a positive number such as 0.01",
                ),
                "beta" | "beta1" | "beta2" | "rho" => self.require(
                    (0.0..1.0).contains(&x),
                    arg,
                    &format!("{what} must be at least 0 and below 1"),
                    "a number such as 0.9",
                ),
                "memory" => self.require(
                    x >= 1.0 && x.fract() == 0.0 && x <= 1e6,
                    arg,
                    "`memory` must be a whole number of at least 1",
                    "a number of pairs such as 10",
                ),
                "eps" => self.require(
                    x > 0.0,
                    arg,
                    "`eps` must be positive",
                    "a small number such as 1e-8",
                ),
                _ => self.require(
                    x >= 0.0,
                    arg,
                    &format!("{what} must not be negative"),
                    "0 or a small number such as 0.01",
                ),
            };
            values[i] = x;
        }
        ok.then(|| defaults.with_args(&values))
    }

    /// `constant`, `step(every = 10)`, `exponential(gamma = 0.9)`, `cosine`.
    pub(super) fn schedule(&mut self, v: &SValue) -> Option<Schedule> {
        let Some((func, args)) = callee(v) else {
            self.diags.push(
                wrong_kind(v, "`schedule`", "a schedule")
                    .hint("write e.g. `step(every = 100, gamma = 0.1)` or `cosine`"),
            );
            return None;
        };
        let params: &[&str] = match func.name.as_str() {
            "constant" => &[],
            "step" => &["every", "gamma"],
            "exponential" => &["gamma"],
            "cosine" => &["steps", "min_lr"],
            other => {
                self.diags.push(
                    Diagnostic::error(func.span, format!("unknown schedule `{other}`"))
                        .label(func.span, "not a schedule")
                        .hint(suggest(other, SCHEDULES, "the schedules are")),
                );
                return None;
            }
        };
        let bound = self.bind(&func, args, params, params.len().min(1));
        let gamma = |ck: &mut Self, b: Option<&SValue>, default: f64| -> Option<f64> {
            let Some(b) = b else { return Some(default) };
            let x = ck.number(b, "`gamma`")?;
            ck.require(
                x > 0.0,
                b,
                "`gamma` must be positive",
                "a factor such as 0.5",
            )
            .then_some(x)
        };
        match func.name.as_str() {
            "constant" => Some(Schedule::Constant),
            "step" => {
                let every = match bound[0] {
                    Some(b) => self.count(b, "`every`", 1),
                    None => {
                        let span = v.span;
                        self.diags.push(
                            Diagnostic::error(span, "`step` needs `every`")
                                .label(span, "how many steps between decays?")
                                .hint("write `step(every = 100, gamma = 0.1)`"),
                        );
                        None
                    }
                };
                let gamma = gamma(self, bound[1], 0.1);
                Some(Schedule::Step {
                    every: every?,
                    gamma: gamma?,
                })
            }
            "exponential" => Some(Schedule::Exponential {
                gamma: gamma(self, bound[0], 0.95)?,
            }),
            _ => {
                let steps = match bound[0] {
                    Some(b) => Some(self.count(b, "`steps`", 1)?),
                    None => None,
                };
                let min_lr = match bound[1] {
                    Some(b) => {
                        let x = self.number(b, "`min_lr`")?;
                        if !self.require(
                            x >= 0.0,
                            b,
                            "`min_lr` must not be negative",
                            "0 or a small rate",
                        ) {
                            return None;
                        }
                        x
                    }
                    None => 0.0,
                };
                Some(Schedule::Cosine { steps, min_lr })
            }
        }
    }
}

/// The function and arguments of `name` or `name(args)`; other values are
/// not given by this helper (the caller reports them).
pub(super) fn callee(v: &SValue) -> Option<(Ident, &[SArg])> {
    match &v.kind {
        SValueKind::Name(n) => Some((
            Ident {
                name: n.clone(),
                span: v.span,
            },
            &[],
        )),
        SValueKind::Call { func, args } => Some((func.clone(), args)),
        _ => None,
    }
}

/// The value as the user wrote it, for labels.
pub(super) fn value_text(v: &SValue) -> String {
    match &v.kind {
        SValueKind::Number(n) => n.clone(),
        _ => describe(v),
    }
}

pub(super) fn named_list(params: &[&str]) -> String {
    params
        .iter()
        .map(|p| format!("`{p} = ...`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

pub(super) fn plural_verb(n: usize) -> String {
    if n == 1 {
        "1 column is".to_string()
    } else {
        format!("{n} columns are")
    }
}

/// `npz("data.npz", x = "x", y = "y")` for the model's own inputs.
pub(super) fn example_arrays(inputs: &[(String, Shape)]) -> String {
    example_source(inputs, Format::Npz)
}

/// An array source of `format` for the model's own inputs.
pub(super) fn example_source(inputs: &[(String, Shape)], format: Format) -> String {
    let maps: Vec<String> = inputs
        .iter()
        .map(|(n, _)| match format {
            Format::Npy => format!("{n} = \"{n}.npy\""),
            Format::Idx => format!("{n} = \"{n}-idx-ubyte\""),
            _ => format!("{n} = \"{n}\""),
        })
        .collect();
    match format {
        Format::Npz => format!("`npz(\"data.npz\", {})`", maps.join(", ")),
        _ => format!("`{}({})`", format.name(), maps.join(", ")),
    }
}

/// `csv("data.csv", x = 0..2, y = 2)` for the model's own inputs.
pub(super) fn example_csv(inputs: &[(String, Shape)]) -> String {
    let mut next = 0;
    let maps: Vec<String> = inputs
        .iter()
        .map(|(n, s)| {
            let k = s.size();
            let m = if k == 1 {
                format!("{n} = {next}")
            } else {
                format!("{n} = {next}..{}", next + k)
            };
            next += k;
            m
        })
        .collect();
    format!("`csv(\"data.csv\", {})`", maps.join(", "))
}
