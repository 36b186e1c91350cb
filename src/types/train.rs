//! The `train { }` block: checking its settings and turning them into a typed
//! [`TrainConfig`] for the runtime.
//!
//! Every mistake becomes a located diagnostic, and checking goes on after one,
//! so that a block with several mistakes reports them all; the config returned
//! alongside errors holds the defaults for the settings that were wrong.
//!
//! Decisions, for the runtime to follow:
//! - `epochs` and `steps` may both be given: training stops at whichever limit
//!   comes first. When neither is given, training runs [`DEFAULT_STEPS`] steps
//!   (optimizer updates), as a program without a train block does. The stop
//!   rules `loss_tol`, `grad_tol` and `patience` only ever stop earlier.
//! - A learning-rate schedule advances once per optimizer step (one update,
//!   one batch), as optax schedules do; with `batch = full` a step is an epoch.
//! - `data` missing while the model has inputs is not an error here: a program
//!   may be checked, differentiated or evaluated without training data. The
//!   trainer asks [`TrainConfig::training_data`], which gives the diagnostic.
//! - `data` given when the model has no inputs is an error, and so are
//!   `batch`, `shuffle`, `validate` and `patience`, which need data.

use std::collections::HashMap;
use std::fmt;

use crate::diagnostic::{closest, Diagnostic};
use crate::shape::{fmt_num, Shape};
use crate::span::Span;
use crate::syntax::ast::{Ident, SArg, SValue, SValueKind, Setting};
use crate::types::init::{parse_count, parse_number};

/// Optimizer steps run when neither `epochs` nor `steps` is given.
pub const DEFAULT_STEPS: u64 = 100;

/// Every setting a train block may hold, in the order they are checked.
const KEYS: &[&str] = &[
    "data",
    "optimizer",
    "schedule",
    "batch",
    "epochs",
    "steps",
    "seed",
    "shuffle",
    "validate",
    "patience",
    "loss_tol",
    "grad_tol",
];

/// How to train: what a `train { }` block says, with the defaults filled in.
///
/// [`TrainConfig::default`] is what a program without a train block gets:
/// plain gradient descent, `sgd(lr = 0.01)`, for 100 steps, full batch, seed 0.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Where the examples come from; `None` when not given (see the module
    /// doc for when that is an error).
    pub data: Option<DataSource>,
    /// The update rule; default `sgd(lr = 0.01)`.
    pub optimizer: Optimizer,
    /// How the learning rate changes over the run; default constant.
    pub schedule: Schedule,
    /// Examples per optimizer step; default the whole training set.
    pub batch: Batch,
    /// Stop after this many passes over the training set.
    pub epochs: Option<u64>,
    /// Stop after this many optimizer steps. Set to [`DEFAULT_STEPS`] when
    /// neither this nor `epochs` is given, so at least one of the two is set.
    pub steps: Option<u64>,
    /// Seeds the initialisers, the shuffles and the validation split; default 0.
    pub seed: u64,
    /// Reshuffle the training examples before every epoch; default true.
    pub shuffle: bool,
    /// Fraction of the examples held out for validation, in (0, 1). The split
    /// is drawn once, before training, with `seed`.
    pub validate: Option<f64>,
    /// Early stopping: stop when the validation loss has not improved for this
    /// many epochs, and restore the parameters of the best epoch. Requires
    /// `validate`.
    pub patience: Option<u64>,
    /// Stop when the training loss (the mean over the last epoch) is below this.
    pub loss_tol: Option<f64>,
    /// Stop when the gradient norm (all parameters as one vector, at the last
    /// step of an epoch) is below this.
    pub grad_tol: Option<f64>,
    /// The train block, for diagnostics; `None` for the default config.
    pub span: Option<Span>,
}

impl Default for TrainConfig {
    fn default() -> TrainConfig {
        TrainConfig {
            data: None,
            optimizer: Optimizer::default(),
            schedule: Schedule::Constant,
            batch: Batch::Full,
            epochs: None,
            steps: Some(DEFAULT_STEPS),
            seed: 0,
            shuffle: true,
            validate: None,
            patience: None,
            loss_tol: None,
            grad_tol: None,
            span: None,
        }
    }
}

impl TrainConfig {
    /// The data to train on, or the diagnostic the trainer reports when the
    /// model has inputs but no `data` was given. `Ok(None)` means plain
    /// gradient descent on the parameters (the model has no inputs).
    pub fn training_data(
        &self,
        inputs: &[(String, Shape)],
    ) -> Result<Option<&DataSource>, Diagnostic> {
        match (&self.data, inputs.first()) {
            (Some(d), _) => Ok(Some(d)),
            (None, None) => Ok(None),
            (None, Some(_)) => {
                let span = self.span.unwrap_or_default();
                let d = Diagnostic::error(span, "the model has inputs but no training data").hint(
                    format!(
                        "add `data = {}` to the train block, mapping each input to its columns",
                        example_csv(inputs).trim_matches('`')
                    ),
                );
                Err(match self.span {
                    Some(s) => d.label(s, "no `data` here"),
                    None => d,
                })
            }
        }
    }
}

/// Where the examples come from: a CSV file, one example a row.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSource {
    /// The path as written, relative to the directory of the .grad file.
    pub path: String,
    pub path_span: Span,
    /// Whether the first row holds column names. `None`: the loader decides
    /// (a first row that does not parse as numbers is a header). Set to
    /// `Some(true)` when a column is mapped by name.
    pub header: Option<bool>,
    /// One entry per input, in the order the inputs are declared.
    pub columns: Vec<InputColumns>,
    /// The whole `csv(...)` call.
    pub span: Span,
}

/// The columns one input reads.
#[derive(Clone, Debug, PartialEq)]
pub struct InputColumns {
    pub input: String,
    pub columns: Columns,
    /// `x = 0..2`, for the loader's diagnostics.
    pub span: Span,
}

/// The columns of one input, as written. Their count equals the number of
/// elements of the input's shape; the input's elements are filled from them in
/// row-major order.
#[derive(Clone, Debug, PartialEq)]
pub enum Columns {
    /// `y = 2`: one column, 0-based.
    Index(usize),
    /// `x = 0..2`: columns `start, ..., end - 1`.
    Range { start: usize, end: usize },
    /// `x = [0, 3, 5]` or `x = ["a", "b"]`.
    List(Vec<Column>),
    /// `y = "label"`: the column with this name in the header.
    Name(String),
}

/// One column, by index or by header name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    Index(usize),
    Name(String),
}

impl Columns {
    /// The columns one by one.
    pub fn to_list(&self) -> Vec<Column> {
        match self {
            Columns::Index(i) => vec![Column::Index(*i)],
            Columns::Range { start, end } => (*start..*end).map(Column::Index).collect(),
            Columns::List(cs) => cs.clone(),
            Columns::Name(n) => vec![Column::Name(n.clone())],
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Columns::Index(_) | Columns::Name(_) => 1,
            Columns::Range { start, end } => end - start,
            Columns::List(cs) => cs.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Column::Index(i) => write!(f, "{i}"),
            Column::Name(n) => write!(f, "\"{n}\""),
        }
    }
}

/// Examples per optimizer step.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Batch {
    /// All training examples: batch gradient descent.
    #[default]
    Full,
    /// At least 1; 1 is stochastic gradient descent, more is mini-batch. A
    /// last, smaller batch of an epoch is kept.
    Size(usize),
}

/// An update rule, with PyTorch's conventions and defaults. `g` is the
/// gradient of the mean loss over the batch, `p` a parameter, state starts at 0.
#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer {
    /// `p -= lr g`. Default lr 0.01.
    Sgd { lr: f64 },
    /// Heavy ball: `v = beta v + g; p -= lr v`. Defaults lr 0.01, beta 0.9.
    Momentum { lr: f64, beta: f64 },
    /// `v = beta v + g; p -= lr (g + beta v)`. Defaults lr 0.01, beta 0.9.
    Nesterov { lr: f64, beta: f64 },
    /// `s += g^2; p -= lr g / (sqrt(s) + eps)`. Defaults lr 0.01, eps 1e-10.
    Adagrad { lr: f64, eps: f64 },
    /// `s = rho s + (1 - rho) g^2; p -= lr g / (sqrt(s) + eps)`.
    /// Defaults lr 0.01, rho 0.99, eps 1e-8.
    RmsProp { lr: f64, rho: f64, eps: f64 },
    /// `s = rho s + (1 - rho) g^2; d = sqrt(u + eps) / sqrt(s + eps) g;
    /// u = rho u + (1 - rho) d^2; p -= lr d`. Defaults lr 1, rho 0.9, eps 1e-6.
    AdaDelta { lr: f64, rho: f64, eps: f64 },
    /// Adam with bias correction, eps outside the square root. Defaults lr
    /// 0.001, beta1 0.9, beta2 0.999, eps 1e-8.
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
    },
    /// Adam with decoupled weight decay: `p -= lr weight_decay p` before the
    /// Adam step. Defaults as Adam, weight_decay 0.01.
    AdamW {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
}

impl Default for Optimizer {
    fn default() -> Optimizer {
        Optimizer::Sgd { lr: 0.01 }
    }
}

/// Optimizer names, for hints.
const OPTIMIZERS: &[&str] = &[
    "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw",
];

impl Optimizer {
    /// The name it is written with: `sgd`, `adam`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Momentum { .. } => "momentum",
            Optimizer::Nesterov { .. } => "nesterov",
            Optimizer::Adagrad { .. } => "adagrad",
            Optimizer::RmsProp { .. } => "rmsprop",
            Optimizer::AdaDelta { .. } => "adadelta",
            Optimizer::Adam { .. } => "adam",
            Optimizer::AdamW { .. } => "adamw",
        }
    }

    /// The base learning rate (before any schedule).
    pub fn lr(&self) -> f64 {
        *self.args().first().map(|(_, v)| v).unwrap_or(&0.0)
    }

    /// Its arguments, named, in the order they are written.
    pub fn args(&self) -> Vec<(&'static str, f64)> {
        match *self {
            Optimizer::Sgd { lr } => vec![("lr", lr)],
            Optimizer::Momentum { lr, beta } | Optimizer::Nesterov { lr, beta } => {
                vec![("lr", lr), ("beta", beta)]
            }
            Optimizer::Adagrad { lr, eps } => vec![("lr", lr), ("eps", eps)],
            Optimizer::RmsProp { lr, rho, eps } | Optimizer::AdaDelta { lr, rho, eps } => {
                vec![("lr", lr), ("rho", rho), ("eps", eps)]
            }
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => vec![("lr", lr), ("beta1", beta1), ("beta2", beta2), ("eps", eps)],
            Optimizer::AdamW {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => vec![
                ("lr", lr),
                ("beta1", beta1),
                ("beta2", beta2),
                ("eps", eps),
                ("weight_decay", weight_decay),
            ],
        }
    }

    /// The defaults of the optimizer called `name`, if there is one.
    fn defaults(name: &str) -> Option<Optimizer> {
        Some(match name {
            "sgd" => Optimizer::Sgd { lr: 0.01 },
            "momentum" => Optimizer::Momentum {
                lr: 0.01,
                beta: 0.9,
            },
            "nesterov" => Optimizer::Nesterov {
                lr: 0.01,
                beta: 0.9,
            },
            "adagrad" => Optimizer::Adagrad {
                lr: 0.01,
                eps: 1e-10,
            },
            "rmsprop" => Optimizer::RmsProp {
                lr: 0.01,
                rho: 0.99,
                eps: 1e-8,
            },
            "adadelta" => Optimizer::AdaDelta {
                lr: 1.0,
                rho: 0.9,
                eps: 1e-6,
            },
            "adam" => Optimizer::Adam {
                lr: 0.001,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            "adamw" => Optimizer::AdamW {
                lr: 0.001,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.01,
            },
            _ => return None,
        })
    }

    /// The same optimizer with its arguments replaced, in `args()` order.
    fn with_args(&self, v: &[f64]) -> Optimizer {
        match self {
            Optimizer::Sgd { .. } => Optimizer::Sgd { lr: v[0] },
            Optimizer::Momentum { .. } => Optimizer::Momentum {
                lr: v[0],
                beta: v[1],
            },
            Optimizer::Nesterov { .. } => Optimizer::Nesterov {
                lr: v[0],
                beta: v[1],
            },
            Optimizer::Adagrad { .. } => Optimizer::Adagrad {
                lr: v[0],
                eps: v[1],
            },
            Optimizer::RmsProp { .. } => Optimizer::RmsProp {
                lr: v[0],
                rho: v[1],
                eps: v[2],
            },
            Optimizer::AdaDelta { .. } => Optimizer::AdaDelta {
                lr: v[0],
                rho: v[1],
                eps: v[2],
            },
            Optimizer::Adam { .. } => Optimizer::Adam {
                lr: v[0],
                beta1: v[1],
                beta2: v[2],
                eps: v[3],
            },
            Optimizer::AdamW { .. } => Optimizer::AdamW {
                lr: v[0],
                beta1: v[1],
                beta2: v[2],
                eps: v[3],
                weight_decay: v[4],
            },
        }
    }
}

/// A number for a summary line: `0.01`, `1e-8`.
fn short_num(x: f64) -> String {
    if x != 0.0 && x.abs() < 1e-4 {
        format!("{x:e}")
    } else {
        fmt_num(x)
    }
}

impl fmt::Display for Optimizer {
    /// As written, every argument named: `adam(lr = 0.001, beta1 = 0.9, ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args: Vec<String> = self
            .args()
            .iter()
            .map(|(k, v)| format!("{k} = {}", short_num(*v)))
            .collect();
        write!(f, "{}({})", self.name(), args.join(", "))
    }
}

/// How the learning rate changes. The schedule's clock is the optimizer step:
/// at step `t` (0 for the first update) the rate is `lr * factor(t)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Schedule {
    /// Always `lr`.
    #[default]
    Constant,
    /// `lr * gamma^(t / every)` (integer division). gamma defaults to 0.1.
    Step { every: u64, gamma: f64 },
    /// `lr * gamma^t`. gamma defaults to 0.95.
    Exponential { gamma: f64 },
    /// `min_lr + (lr - min_lr) (1 + cos(pi t / steps)) / 2` for `t < steps`,
    /// then `min_lr`. `steps: None` means the length of the whole run. min_lr
    /// defaults to 0.
    Cosine { steps: Option<u64>, min_lr: f64 },
}

const SCHEDULES: &[&str] = &["constant", "step", "exponential", "cosine"];

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant => write!(f, "constant"),
            Schedule::Step { every, gamma } => {
                write!(f, "step(every = {every}, gamma = {})", short_num(*gamma))
            }
            Schedule::Exponential { gamma } => {
                write!(f, "exponential(gamma = {})", short_num(*gamma))
            }
            Schedule::Cosine { steps, min_lr } => {
                write!(f, "cosine(")?;
                if let Some(s) = steps {
                    write!(f, "steps = {s}, ")?;
                }
                write!(f, "min_lr = {})", short_num(*min_lr))
            }
        }
    }
}

/// "did you mean `x`?" or the list of what exists.
fn suggest(name: &str, candidates: &[&str], what: &str) -> String {
    match closest(name, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("{what}: {}", candidates.join(", ")),
    }
}

/// How a value reads in a "found ..." message.
fn describe(v: &SValue) -> String {
    match &v.kind {
        SValueKind::Number(n) => format!("the number {n}"),
        SValueKind::Str(s) => format!("the string \"{s}\""),
        SValueKind::Name(n) => format!("`{n}`"),
        SValueKind::Range(a, b) => format!("the range {a}..{b}"),
        SValueKind::List(_) => "a list".to_string(),
        SValueKind::Call { func, .. } => format!("a call of `{}`", func.name),
    }
}

fn wrong_kind(v: &SValue, what: &str, expected: &str) -> Diagnostic {
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
            c.data = ck.data(&s.value, inputs);
        }
    }
    if let Some(v) = get("optimizer") {
        c.optimizer = ck.optimizer(v).unwrap_or_default();
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
    if let Some(v) = get("loss_tol") {
        c.loss_tol = ck.number(v, "`loss_tol`");
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

fn unknown_key(key: &Ident) -> Diagnostic {
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
struct Checker<'d> {
    diags: &'d mut Vec<Diagnostic>,
}

impl Checker<'_> {
    /// Pushes `message` at `v` unless `ok`; returns `ok`.
    fn require(&mut self, ok: bool, v: &SValue, message: &str, expected: &str) -> bool {
        if !ok {
            self.diags.push(
                Diagnostic::error(v.span, message)
                    .label(v.span, format!("this is {}", value_text(v)))
                    .hint(format!("write {expected}")),
            );
        }
        ok
    }

    fn number(&mut self, v: &SValue, what: &str) -> Option<f64> {
        match &v.kind {
            SValueKind::Number(n) => parse_number(n, v.span).map_err(|d| self.diags.push(d)).ok(),
            _ => {
                self.diags.push(wrong_kind(v, what, "a number"));
                None
            }
        }
    }

    /// A whole number of at least `min`.
    fn count(&mut self, v: &SValue, what: &str, min: u64) -> Option<u64> {
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

    fn boolean(&mut self, v: &SValue, what: &str) -> Option<bool> {
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
    fn bind<'a>(
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
    fn optimizer(&mut self, v: &SValue) -> Option<Optimizer> {
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
    fn schedule(&mut self, v: &SValue) -> Option<Schedule> {
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

    /// `csv("file.csv", x = 0..2, y = 2, header = true)`.
    fn data(&mut self, v: &SValue, inputs: &[(String, Shape)]) -> Option<DataSource> {
        let example = example_csv(inputs);
        let SValueKind::Call { func, args } = &v.kind else {
            self.diags
                .push(wrong_kind(v, "`data`", "a data source").hint(format!("write {example}")));
            return None;
        };
        if func.name != "csv" {
            self.diags.push(
                Diagnostic::error(func.span, format!("unknown data source `{}`", func.name))
                    .label(func.span, "not a data source")
                    .hint(format!("the only data source is csv: {example}")),
            );
            return None;
        }
        let (path, path_span) = self.csv_path(v, func, args, &example)?;
        if path.is_empty() {
            self.diags.push(
                Diagnostic::error(path_span, "empty file path").label(path_span, "no file named"),
            );
        }
        let input_names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
        let mut header: Option<(bool, Span)> = None;
        let mut mapped: HashMap<&str, InputColumns> = HashMap::new();
        // Inputs named in the call, mapped or not, so that a bad mapping is
        // not also reported as a missing one.
        let mut named_inputs: Vec<&str> = Vec::new();
        for a in &args[1..] {
            let Some(name) = &a.name else {
                self.diags.push(
                    Diagnostic::error(a.value.span, "unexpected unnamed argument to `csv`")
                        .label(a.value.span, "which input reads these columns?")
                        .hint(format!("map each input to its columns by name: {example}")),
                );
                continue;
            };
            let arg_span = name.span.to(a.value.span);
            let is_bool = matches!(&a.value.kind, SValueKind::Name(_));
            if name.name == "header" && (is_bool || !input_names.contains(&"header")) {
                if let Some((_, first)) = header {
                    self.diags.push(
                        Diagnostic::error(name.span, "`header` is given twice")
                            .label(first, "first given here")
                            .label(name.span, "given again here"),
                    );
                } else if let Some(b) = self.boolean(&a.value, "`header`") {
                    header = Some((b, name.span));
                }
                continue;
            }
            if !input_names.contains(&name.name.as_str()) {
                let mut candidates = input_names.clone();
                candidates.push("header");
                self.diags.push(
                    Diagnostic::error(name.span, format!("`{}` is not an input", name.name))
                        .label(name.span, "no input of this name")
                        .hint(match closest(&name.name, candidates.iter().copied()) {
                            Some(c) => format!("did you mean `{c}`?"),
                            None => format!(
                                "the inputs are {}; the one option is `header = true|false`",
                                input_names.join(", ")
                            ),
                        }),
                );
                continue;
            }
            named_inputs.push(name.name.as_str());
            if let Some(first) = mapped.get(name.name.as_str()) {
                self.diags.push(
                    Diagnostic::error(name.span, format!("`{}` is mapped twice", name.name))
                        .label(first.span, "first mapped here")
                        .label(arg_span, "mapped again here"),
                );
                continue;
            }
            let idx = input_names
                .iter()
                .position(|n| *n == name.name)
                .unwrap_or(0);
            if let Some(ic) = self.input_columns(name, &a.value, &inputs[idx].1) {
                mapped.insert(input_names[idx], ic);
            }
        }

        let mut columns = Vec::new();
        for (n, _) in inputs {
            match mapped.remove(n.as_str()) {
                Some(c) => columns.push(c),
                None if named_inputs.contains(&n.as_str()) => {}
                None => self.diags.push(
                    Diagnostic::error(v.span, format!("input `{n}` is not mapped to a column"))
                        .label(func.span, format!("no `{n} = ...` here"))
                        .hint(format!("add `{n} = <column>`, e.g. `{n} = 0`")),
                ),
            }
        }
        self.overlaps(&columns);

        let named = columns
            .iter()
            .flat_map(|c| c.columns.to_list())
            .any(|c| matches!(c, Column::Name(_)));
        let header = match header {
            Some((false, span)) if named => {
                self.diags.push(
                    Diagnostic::error(span, "columns are mapped by name but `header = false`")
                        .label(span, "no header row to find the names in")
                        .hint("set `header = true`, or map the columns by index"),
                );
                Some(false)
            }
            Some((b, _)) => Some(b),
            None if named => Some(true),
            None => None,
        };
        Some(DataSource {
            path,
            path_span,
            header,
            columns,
            span: v.span,
        })
    }

    /// The path, the first argument of `csv`.
    fn csv_path(
        &mut self,
        v: &SValue,
        func: &Ident,
        args: &[SArg],
        example: &str,
    ) -> Option<(String, Span)> {
        match args.first() {
            Some(SArg { name: None, value }) => match &value.kind {
                SValueKind::Str(p) => Some((p.clone(), value.span)),
                _ => {
                    self.diags.push(
                        wrong_kind(value, "the path", "a string").hint(format!("write {example}")),
                    );
                    None
                }
            },
            _ => {
                self.diags.push(
                    Diagnostic::error(v.span, "`csv` needs a file path first")
                        .label(func.span, "no path")
                        .hint(format!("write {example}")),
                );
                None
            }
        }
    }

    /// `x = 0..2` for an input of `shape`: as many columns as it has elements.
    fn input_columns(&mut self, name: &Ident, v: &SValue, shape: &Shape) -> Option<InputColumns> {
        let columns = self.columns(v)?;
        if columns.len() != shape.size() {
            let what = if shape.is_scalar() {
                "a scalar".to_string()
            } else {
                format!("shape {shape}")
            };
            self.diags.push(
                Diagnostic::error(
                    v.span,
                    format!(
                        "input `{}` has {} but {} mapped to it",
                        name.name,
                        plural(shape.size(), "value"),
                        plural_verb(columns.len())
                    ),
                )
                .label(v.span, plural(columns.len(), "column"))
                .hint(format!(
                    "`{}` is declared with {what}: map {}",
                    name.name,
                    plural(shape.size(), "column")
                )),
            );
            return None;
        }
        Some(InputColumns {
            input: name.name.clone(),
            columns,
            span: name.span.to(v.span),
        })
    }

    /// One input's columns: `2`, `0..2`, `[0, 3]`, `"label"`.
    fn columns(&mut self, v: &SValue) -> Option<Columns> {
        const EXPECTED: &str =
            "columns: an index `2`, a range `0..2`, a list `[0, 3]` or a name `\"label\"`";
        match &v.kind {
            SValueKind::Number(n) => Some(Columns::Index(self.index(n, v.span)?)),
            SValueKind::Str(s) => Some(Columns::Name(s.clone())),
            SValueKind::Range(a, b) => {
                let start = self.index(a, v.span);
                let end = self.index(b, v.span);
                let (start, end) = (start?, end?);
                if end <= start {
                    self.diags.push(
                        Diagnostic::error(v.span, format!("empty column range `{a}..{b}`"))
                            .label(v.span, "no columns")
                            .hint(format!(
                                "a range `a..b` holds columns a to b - 1, e.g. `{start}..{}`",
                                start + 1
                            )),
                    );
                    return None;
                }
                Some(Columns::Range { start, end })
            }
            SValueKind::List(items) => {
                if items.is_empty() {
                    self.diags.push(
                        Diagnostic::error(v.span, "empty column list").label(v.span, "no columns"),
                    );
                    return None;
                }
                let mut cs = Vec::new();
                for item in items {
                    match &item.kind {
                        SValueKind::Number(n) => cs.push(Column::Index(self.index(n, item.span)?)),
                        SValueKind::Str(s) => cs.push(Column::Name(s.clone())),
                        _ => {
                            self.diags
                                .push(wrong_kind(item, "a column", "an index or a name"));
                            return None;
                        }
                    }
                }
                Some(Columns::List(cs))
            }
            SValueKind::Name(n) => {
                self.diags
                    .push(wrong_kind(v, "an input mapping", "columns").hint(format!(
                        "column names are strings: write \"{n}\"; {EXPECTED}"
                    )));
                None
            }
            SValueKind::Call { .. } => {
                self.diags
                    .push(wrong_kind(v, "an input mapping", "columns").hint(EXPECTED));
                None
            }
        }
    }

    fn index(&mut self, text: &str, span: Span) -> Option<usize> {
        let n = parse_count(text, span, "a column index")
            .map_err(|d| self.diags.push(d))
            .ok()?;
        match usize::try_from(n) {
            Ok(n) if n < usize::MAX => Some(n),
            _ => {
                self.diags.push(
                    Diagnostic::error(span, "a column index is too large").label(span, "too large"),
                );
                None
            }
        }
    }

    /// A column read by two inputs is almost always a mistake (the label
    /// among the features, say).
    fn overlaps(&mut self, columns: &[InputColumns]) {
        let mut owner: HashMap<Column, &InputColumns> = HashMap::new();
        for ic in columns {
            for col in ic.columns.to_list() {
                match owner.get(&col) {
                    Some(first) if first.input != ic.input => {
                        self.diags.push(
                            Diagnostic::error(
                                ic.span,
                                format!(
                                    "column {col} is read by both `{}` and `{}`",
                                    first.input, ic.input
                                ),
                            )
                            .label(first.span, format!("`{}` reads column {col}", first.input))
                            .label(ic.span, format!("`{}` reads it too", ic.input))
                            .hint("each column can feed one input"),
                        );
                        break;
                    }
                    Some(_) => {
                        self.diags.push(
                            Diagnostic::error(
                                ic.span,
                                format!("column {col} is listed twice for `{}`", ic.input),
                            )
                            .label(ic.span, "repeated column"),
                        );
                        break;
                    }
                    None => {
                        owner.insert(col, ic);
                    }
                }
            }
        }
    }
}

/// The function and arguments of `name` or `name(args)`; other values are
/// not given by this helper (the caller reports them).
fn callee(v: &SValue) -> Option<(Ident, &[SArg])> {
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
fn value_text(v: &SValue) -> String {
    match &v.kind {
        SValueKind::Number(n) => n.clone(),
        _ => describe(v),
    }
}

fn named_list(params: &[&str]) -> String {
    params
        .iter()
        .map(|p| format!("`{p} = ...`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn plural_verb(n: usize) -> String {
    if n == 1 {
        "1 column is".to_string()
    } else {
        format!("{n} columns are")
    }
}

/// `csv("data.csv", x = 0..2, y = 2)` for the model's own inputs.
fn example_csv(inputs: &[(String, Shape)]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::ast::ItemKind;
    use crate::syntax::parser::parse;

    /// Checks the train block of `src` against the program's own inputs; a
    /// program without a train block is checked as an empty one.
    fn run(src: &str) -> (TrainConfig, Vec<Diagnostic>) {
        let program = parse(src).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        let mut inputs = Vec::new();
        let mut block = (Vec::new(), Span::default());
        for item in &program.items {
            match &item.kind {
                ItemKind::Input { name, shape } => {
                    let dims = shape.as_ref().map_or(Vec::new(), |s| {
                        s.dims.iter().map(|(d, _)| d.parse().unwrap()).collect()
                    });
                    inputs.push((name.name.clone(), Shape(dims)));
                }
                ItemKind::Train { settings } => block = (settings.clone(), item.span),
                _ => {}
            }
        }
        let mut diags = Vec::new();
        let config = check_train(&block.0, block.1, &inputs, &mut diags);
        (config, diags)
    }

    fn ok(src: &str) -> TrainConfig {
        let (c, diags) = run(src);
        assert!(diags.is_empty(), "{src}: {diags:#?}");
        c
    }

    /// The only diagnostic, and the source text under its span.
    fn err(src: &str) -> (Diagnostic, String) {
        let (_, diags) = run(src);
        assert_eq!(diags.len(), 1, "{src}: {diags:#?}");
        let d = diags.into_iter().next().unwrap();
        let text = src[d.span.range()].to_string();
        (d, text)
    }

    const XY: &str = "input x: [2]\ninput y\n";

    fn with_xy(block: &str) -> String {
        format!("{XY}train {{ {block} }}")
    }

    #[test]
    fn the_design_example() {
        let c = ok(&with_xy(
            r#"data = csv("data/blobs.csv", x = 0..2, y = 2)
               optimizer = sgd(lr = 0.1)
               batch = 32
               epochs = 20
               seed = 7"#,
        ));
        let data = c.data.unwrap();
        assert_eq!(data.path, "data/blobs.csv");
        assert_eq!(data.header, None);
        assert_eq!(data.columns.len(), 2);
        assert_eq!(data.columns[0].input, "x");
        assert_eq!(data.columns[0].columns, Columns::Range { start: 0, end: 2 });
        assert_eq!(data.columns[1].columns, Columns::Index(2));
        assert_eq!(c.optimizer, Optimizer::Sgd { lr: 0.1 });
        assert_eq!(c.batch, Batch::Size(32));
        assert_eq!(c.epochs, Some(20));
        assert_eq!(c.steps, None);
        assert_eq!(c.seed, 7);
        assert!(c.shuffle);
        assert_eq!(c.schedule, Schedule::Constant);
    }

    #[test]
    fn defaults() {
        let d = TrainConfig::default();
        assert_eq!(d.optimizer, Optimizer::Sgd { lr: 0.01 });
        assert_eq!(d.steps, Some(100));
        assert_eq!(d.epochs, None);
        assert_eq!(d.batch, Batch::Full);
        assert_eq!(d.span, None);
        // An empty block is the default, located.
        let c = ok("param x = 1\nloss x^2\ntrain { }");
        assert_eq!(
            TrainConfig {
                span: None,
                ..c.clone()
            },
            d
        );
        assert!(c.span.is_some());
    }

    #[test]
    fn plain_gradient_descent() {
        let c = ok("param x = -3\nloss x^2\ntrain { optimizer = sgd(lr = 1.0)  steps = 4 }");
        assert_eq!(c.optimizer, Optimizer::Sgd { lr: 1.0 });
        assert_eq!(c.steps, Some(4));
        assert_eq!(c.data, None);
        assert_eq!(c.training_data(&[]), Ok(None));
    }

    #[test]
    fn epochs_and_steps_together() {
        let c = ok(&with_xy(
            r#"data = csv("d.csv", x = 0..2, y = 2) epochs = 3 steps = 50"#,
        ));
        assert_eq!((c.epochs, c.steps), (Some(3), Some(50)));
    }

    #[test]
    fn optimizers_and_their_defaults() {
        let opt = |s: &str| ok(&format!("train {{ optimizer = {s} }}")).optimizer;
        assert_eq!(
            opt("adam"),
            Optimizer::Adam {
                lr: 0.001,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8
            }
        );
        assert_eq!(
            opt("adam(0.01, beta2 = 0.99)"),
            Optimizer::Adam {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.99,
                eps: 1e-8
            }
        );
        assert_eq!(
            opt("momentum(0.1)"),
            Optimizer::Momentum { lr: 0.1, beta: 0.9 }
        );
        assert_eq!(
            opt("nesterov(lr = 0.1, beta = 0.5)"),
            Optimizer::Nesterov { lr: 0.1, beta: 0.5 }
        );
        assert_eq!(
            opt("adagrad()"),
            Optimizer::Adagrad {
                lr: 0.01,
                eps: 1e-10
            }
        );
        assert_eq!(
            opt("rmsprop"),
            Optimizer::RmsProp {
                lr: 0.01,
                rho: 0.99,
                eps: 1e-8
            }
        );
        assert_eq!(
            opt("adadelta"),
            Optimizer::AdaDelta {
                lr: 1.0,
                rho: 0.9,
                eps: 1e-6
            }
        );
        assert_eq!(
            opt("adamw(weight_decay = 0)"),
            Optimizer::AdamW {
                lr: 0.001,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0
            }
        );
        assert_eq!(
            opt("adamw").to_string(),
            "adamw(lr = 0.001, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01)"
        );
        assert_eq!(opt("sgd").lr(), 0.01);
    }

    #[test]
    fn schedules() {
        let sched = |s: &str| ok(&format!("train {{ schedule = {s} }}")).schedule;
        assert_eq!(sched("constant"), Schedule::Constant);
        assert_eq!(
            sched("step(every = 10)"),
            Schedule::Step {
                every: 10,
                gamma: 0.1
            }
        );
        assert_eq!(
            sched("step(5, gamma = 0.5)"),
            Schedule::Step {
                every: 5,
                gamma: 0.5
            }
        );
        assert_eq!(sched("exponential"), Schedule::Exponential { gamma: 0.95 });
        assert_eq!(
            sched("cosine"),
            Schedule::Cosine {
                steps: None,
                min_lr: 0.0
            }
        );
        assert_eq!(
            sched("cosine(steps = 1000, min_lr = 1e-5)").to_string(),
            "cosine(steps = 1000, min_lr = 1e-5)"
        );
    }

    #[test]
    fn other_settings() {
        let c = ok(&with_xy(
            r#"data = csv("d.csv", x = [0, 3], y = "label", header = true)
               batch = full shuffle = false validate = 0.25 patience = 5
               loss_tol = 1e-6 grad_tol = 1e-8 seed = 0"#,
        ));
        assert_eq!(c.batch, Batch::Full);
        assert!(!c.shuffle);
        assert_eq!(c.validate, Some(0.25));
        assert_eq!(c.patience, Some(5));
        assert_eq!(c.loss_tol, Some(1e-6));
        assert_eq!(c.grad_tol, Some(1e-8));
        let data = c.data.unwrap();
        assert_eq!(data.header, Some(true));
        assert_eq!(
            data.columns[0].columns,
            Columns::List(vec![Column::Index(0), Column::Index(3)])
        );
        assert_eq!(data.columns[1].columns, Columns::Name("label".into()));
    }

    #[test]
    fn column_names_imply_a_header() {
        let c = ok(&with_xy(r#"data = csv("d.csv", x = ["a", "b"], y = "c")"#));
        assert_eq!(c.data.unwrap().header, Some(true));
        let c = ok(&with_xy(
            r#"data = csv("d.csv", x = 0..2, y = 2, header = false)"#,
        ));
        assert_eq!(c.data.unwrap().header, Some(false));
    }

    #[test]
    fn unknown_setting_suggests_the_closest() {
        let src = "train { epoch = 3 }";
        let (d, at) = err(src);
        assert_eq!(d.message, "unknown setting `epoch`");
        assert_eq!(at, "epoch");
        assert_eq!(d.hint.as_deref(), Some("did you mean `epochs`?"));
        let (d, _) = err("train { batch_size = 3 }");
        assert_eq!(d.hint.as_deref(), Some("did you mean `batch`?"));
        let (d, _) = err("train { lr = 0.1 }");
        assert!(d.hint.unwrap().contains("optimizer = sgd(lr"));
        let (d, _) = err("train { zzz = 1 }");
        assert!(d
            .hint
            .unwrap()
            .starts_with("the settings are: data, optimizer"));
    }

    #[test]
    fn duplicate_setting() {
        let src = "train { steps = 3 steps = 4 }";
        let (d, at) = err(src);
        assert_eq!(d.message, "`steps` is set twice");
        assert_eq!(at, "steps");
        assert_eq!(d.span.lo, 18);
        assert_eq!(d.labels[0].span.lo, 8);
        // The first one counts.
        assert_eq!(run(src).0.steps, Some(3));
    }

    #[test]
    fn wrong_kinds() {
        let (d, at) = err(r#"train { steps = "10" }"#);
        assert_eq!(
            d.message,
            "`steps` expects a whole number, found the string \"10\""
        );
        assert_eq!(at, "\"10\"");
        let (d, _) = err("train { optimizer = 0.1 }");
        assert_eq!(
            d.message,
            "`optimizer` expects an optimizer, found the number 0.1"
        );
        let (d, at) = err(&with_xy(
            r#"data = csv("d.csv", x = 0..2, y = 2) batch = all"#,
        ));
        assert_eq!(
            d.message,
            "`batch` expects a whole number or `full`, found `all`"
        );
        assert_eq!(at, "all");
        let (d, _) = err(&with_xy(
            r#"data = csv("d.csv", x = 0..2, y = 2) shuffle = 1"#,
        ));
        assert_eq!(
            d.message,
            "`shuffle` expects `true` or `false`, found the number 1"
        );
    }

    #[test]
    fn unknown_optimizer_and_schedule() {
        let src = "train { optimizer = adamm(lr = 0.1) }";
        let (d, at) = err(src);
        assert_eq!(d.message, "unknown optimizer `adamm`");
        assert_eq!(at, "adamm");
        assert_eq!(d.hint.as_deref(), Some("did you mean `adam`?"));
        let (d, _) = err("train { optimizer = lbfgs }");
        assert_eq!(d.message, "unknown optimizer `lbfgs`");
        assert!(d.hint.unwrap().starts_with("the optimizers are: sgd"));
        let (d, at) = err("train { schedule = cosin }");
        assert_eq!(d.message, "unknown schedule `cosin`");
        assert_eq!(at, "cosin");
        assert_eq!(d.hint.as_deref(), Some("did you mean `cosine`?"));
    }

    #[test]
    fn bad_arguments() {
        let (d, at) = err("train { optimizer = adam(lr = 0.1, beta = 0.5) }");
        assert_eq!(d.message, "`adam` has no argument `beta`");
        assert_eq!(at, "beta");
        assert_eq!(d.hint.as_deref(), Some("did you mean `beta1`?"));
        let (d, at) = err("train { optimizer = sgd(0.1, lr = 0.2) }");
        assert_eq!(d.message, "`lr` is given twice");
        assert_eq!(at, "lr");
        let (d, at) = err("train { optimizer = momentum(0.1, 0.9) }");
        assert_eq!(d.message, "unexpected unnamed argument to `momentum`");
        assert_eq!(at, "0.9");
        assert_eq!(
            d.hint.as_deref(),
            Some("only `lr` can be given without a name; name the others: `beta = ...`")
        );
        let (d, at) = err("train { schedule = step(gamma = 0.5) }");
        assert_eq!(d.message, "`step` needs `every`");
        assert_eq!(at, "step(gamma = 0.5)");
    }

    #[test]
    fn out_of_range_numbers() {
        let (d, at) = err("train { optimizer = sgd(lr = 0) }");
        assert_eq!(d.message, "the learning rate must be positive");
        assert_eq!(at, "0");
        assert_eq!(d.labels[0].message, "this is 0");
        let (d, at) = err("train { optimizer = sgd(lr = -0.1) }");
        assert_eq!(d.message, "the learning rate must be positive");
        assert_eq!(at, "-0.1");
        let (d, _) = err("train { optimizer = adam(beta2 = 1) }");
        assert_eq!(d.message, "`beta2` must be at least 0 and below 1");
        let (d, _) = err("train { optimizer = adam(eps = 0) }");
        assert_eq!(d.message, "`eps` must be positive");
        let (d, _) = err("train { optimizer = adamw(weight_decay = -1) }");
        assert_eq!(d.message, "`weight_decay` must not be negative");
        let (d, at) = err(&with_xy(
            r#"data = csv("d.csv", x = 0..2, y = 2) validate = 1"#,
        ));
        assert_eq!(d.message, "`validate` must be between 0 and 1");
        assert_eq!(at, "1");
        let (d, _) = err(&with_xy(
            r#"data = csv("d.csv", x = 0..2, y = 2) batch = 0"#,
        ));
        assert_eq!(d.message, "`batch` must be at least 1");
        let (d, at) = err("train { epochs = 2.5 }");
        assert_eq!(d.message, "`epochs` must be a whole number");
        assert_eq!(at, "2.5");
        let (d, _) = err("train { steps = -3 }");
        assert_eq!(d.message, "`steps` must not be negative");
        let (d, _) = err("train { steps = 0 }");
        assert_eq!(d.message, "`steps` must be at least 1");
        let (d, _) = err("train { grad_tol = 0 }");
        assert_eq!(d.message, "`grad_tol` must be positive");
        let (d, _) = err("train { schedule = exponential(gamma = 0) }");
        assert_eq!(d.message, "`gamma` must be positive");
        let (d, _) = err("train { optimizer = sgd(lr = 1e999) }");
        assert_eq!(d.message, "number literal too large");
    }

    #[test]
    fn min_lr_above_lr() {
        let (d, at) = err("train { optimizer = sgd(lr = 0.01) schedule = cosine(min_lr = 0.1) }");
        assert_eq!(
            d.message,
            "`min_lr` (0.1) is above the learning rate (0.01)"
        );
        assert_eq!(at, "cosine(min_lr = 0.1)");
    }

    #[test]
    fn data_maps_unknown_input() {
        let src = with_xy(r#"data = csv("d.csv", x = 0..2, y = 2, z = 3)"#);
        let (d, at) = err(&src);
        assert_eq!(d.message, "`z` is not an input");
        assert_eq!(at, "z");
        assert_eq!(
            d.hint.as_deref(),
            Some("the inputs are x, y; the one option is `header = true|false`")
        );
        let (d, _) = err(&with_xy(
            r#"data = csv("d.csv", xx = 0..2, y = 2, x = 0..2)"#,
        ));
        assert_eq!(d.hint.as_deref(), Some("did you mean `x`?"));
    }

    #[test]
    fn data_leaves_an_input_unmapped() {
        let src = with_xy(r#"data = csv("d.csv", x = 0..2)"#);
        let (d, at) = err(&src);
        assert_eq!(d.message, "input `y` is not mapped to a column");
        assert_eq!(at, r#"csv("d.csv", x = 0..2)"#);
        assert_eq!(d.hint.as_deref(), Some("add `y = <column>`, e.g. `y = 0`"));
    }

    #[test]
    fn data_column_counts_match_the_shapes() {
        let src = with_xy(r#"data = csv("d.csv", x = 0..3, y = 3)"#);
        let (d, at) = err(&src);
        assert_eq!(
            d.message,
            "input `x` has 2 values but 3 columns are mapped to it"
        );
        assert_eq!(at, "0..3");
        let (d, _) = err(&with_xy(r#"data = csv("d.csv", x = "a", y = 2)"#));
        assert_eq!(
            d.message,
            "input `x` has 2 values but 1 column is mapped to it"
        );
    }

    #[test]
    fn data_columns_are_checked() {
        let (d, at) = err(&with_xy(r#"data = csv("d.csv", x = 2..2, y = 2)"#));
        assert_eq!(d.message, "empty column range `2..2`");
        assert_eq!(at, "2..2");
        let (d, at) = err(&with_xy(r#"data = csv("d.csv", x = 0..2, y = 1)"#));
        assert_eq!(d.message, "column 1 is read by both `x` and `y`");
        assert_eq!(at, "y = 1");
        let (d, _) = err(&with_xy(r#"data = csv("d.csv", x = [1, 1], y = 2)"#));
        assert_eq!(d.message, "column 1 is listed twice for `x`");
        let (d, _) = err(&with_xy(r#"data = csv("d.csv", x = 0..2, y = 1.5)"#));
        assert_eq!(d.message, "a column index must be a whole number");
        let (d, _) = err(&with_xy(r#"data = csv("d.csv", x = 0..2, y = label)"#));
        assert_eq!(d.message, "an input mapping expects columns, found `label`");
        assert!(d
            .hint
            .unwrap()
            .starts_with("column names are strings: write \"label\""));
        let (d, _) = err(&with_xy(
            r#"data = csv("d.csv", x = 0..2, y = 2, x = 3..5)"#,
        ));
        assert_eq!(d.message, "`x` is mapped twice");
    }

    #[test]
    fn data_call_is_checked() {
        let (d, at) = err(&with_xy(r#"data = csv(x = 0..2, y = 2)"#));
        assert_eq!(d.message, "`csv` needs a file path first");
        assert_eq!(at, "csv(x = 0..2, y = 2)");
        assert_eq!(
            d.hint.as_deref(),
            Some(r#"write `csv("data.csv", x = 0..2, y = 2)`"#)
        );
        let (d, at) = err(&with_xy(r#"data = json("d.json")"#));
        assert_eq!(d.message, "unknown data source `json`");
        assert_eq!(at, "json");
        let (d, _) = err(&with_xy(r#"data = "d.csv""#));
        assert_eq!(
            d.message,
            "`data` expects a data source, found the string \"d.csv\""
        );
        let (d, _) = err(&with_xy(r#"data = csv("d.csv", 0..2, y = 2, x = 0..2)"#));
        assert_eq!(d.message, "unexpected unnamed argument to `csv`");
        let (d, at) = err(&with_xy(
            r#"data = csv("d.csv", x = ["a", "b"], y = "c", header = false)"#,
        ));
        assert_eq!(d.message, "columns are mapped by name but `header = false`");
        assert_eq!(at, "header");
        let (d, _) = err(&with_xy(
            r#"data = csv("d.csv", x = 0..2, y = 2, header = yes)"#,
        ));
        assert_eq!(d.message, "`header` expects `true` or `false`, found `yes`");
    }

    #[test]
    fn an_input_may_be_called_header() {
        let c = ok(r#"input header
                      train { data = csv("d.csv", header = 0, header = false) }"#);
        let data = c.data.unwrap();
        assert_eq!(data.header, Some(false));
        assert_eq!(data.columns[0].columns, Columns::Index(0));
    }

    #[test]
    fn data_without_inputs() {
        let src = r#"param x = 1
loss x^2
train { data = csv("d.csv") }"#;
        let (d, at) = err(src);
        assert_eq!(d.message, "`data` given but the model has no inputs");
        assert_eq!(at, "data");
        let (_, diags) = run("param x = 1\nloss x^2\ntrain { batch = 4 validate = 0.2 }");
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`batch` needs data, but the model has no inputs",
                "`validate` needs data, but the model has no inputs"
            ]
        );
    }

    #[test]
    fn missing_data_is_for_the_trainer() {
        let src = format!("{XY}train {{ epochs = 3 }}");
        let c = ok(&src);
        let inputs = [
            ("x".to_string(), Shape::vector(2)),
            ("y".to_string(), Shape::scalar()),
        ];
        let d = c.training_data(&inputs).unwrap_err();
        assert_eq!(d.message, "the model has inputs but no training data");
        assert_eq!(&src[d.span.range()], "train { epochs = 3 }");
        assert_eq!(
            d.hint.as_deref(),
            Some(
                r#"add `data = csv("data.csv", x = 0..2, y = 2)` to the train block, mapping each input to its columns"#
            )
        );
    }

    #[test]
    fn patience_needs_validate() {
        let (d, at) = err(&with_xy(
            r#"data = csv("d.csv", x = 0..2, y = 2) patience = 3"#,
        ));
        assert_eq!(d.message, "`patience` needs `validate`");
        assert_eq!(at, "patience");
    }

    #[test]
    fn several_mistakes_are_all_reported() {
        let (c, diags) = run("train { epochs = 0 optimizer = sgd(lr = -1) seeed = 3 }");
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unknown setting `seeed`",
                "the learning rate must be positive",
                "`epochs` must be at least 1",
            ]
        );
        assert_eq!(c.optimizer, Optimizer::default());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("optimiser", KEYS, "settings"),
            "did you mean `optimizer`?"
        );
        assert_eq!(
            suggest("shufle", KEYS, "settings"),
            "did you mean `shuffle`?"
        );
        assert_eq!(
            suggest("xyz", &["a", "b"], "the letters are"),
            "the letters are: a, b"
        );
    }
}
