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

use std::fmt;

use crate::diagnostic::{closest, Diagnostic};
use crate::dtype::Dtype;
use crate::shape::{fmt_num, Shape};
use crate::span::Span;

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
    "rel_tol",
    "checkpoint",
    "test",
    "dtype",
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
    /// Full-batch methods (`newton`, `lbfgs`, `levenberg_marquardt`,
    /// `gauss_newton`): stop when a step changes the loss by less than this
    /// fraction of it, `|f_old - f_new| <= rel_tol * max(|f_old|, |f_new|)`
    /// (scipy's `ftol`).
    pub rel_tol: Option<f64>,
    /// Checkpointing of loops in the gradient: a loop of more steps is
    /// differentiated in segments of this many, each computed again in the
    /// reverse rather than kept (see `autodiff::checkpoint`).
    pub checkpoint: Option<usize>,
    /// A separate test set, evaluated once at the final parameters and
    /// reported beside the training data; loaded (and checked) before
    /// training starts.
    pub test: Option<DataSource>,
    /// The float type training computes in (`dtype = f32`); default f64.
    /// `--dtype` overrides it (see [`crate::runtime::Options::dtype`]).
    pub dtype: Dtype,
    /// The train block, for diagnostics; `None` for the default config.
    pub span: Option<Span>,
    /// The `optimizer` setting's value, for diagnostics.
    pub optimizer_span: Option<Span>,
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
            rel_tol: None,
            checkpoint: None,
            test: None,
            dtype: Dtype::F64,
            span: None,
            optimizer_span: None,
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

/// Where the examples come from: a CSV file, one example a row; or arrays
/// (NumPy `.npy`/`.npz`, IDX), one example an entry of the first axis.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSource {
    pub format: Format,
    /// The path as written, relative to the directory of the .grad file:
    /// the CSV or `.npz` file; empty for `npy` and `idx`, whose files are
    /// named per input in `arrays`.
    pub path: String,
    pub path_span: Span,
    /// CSV: whether the first row holds column names. `None`: the loader
    /// decides (a first row that does not parse as numbers is a header).
    /// Set to `Some(true)` when a column is mapped by name.
    pub header: Option<bool>,
    /// CSV: one entry per input, in the order the inputs are declared.
    pub columns: Vec<InputColumns>,
    /// Arrays: one entry per input, in the order the inputs are declared.
    pub arrays: Vec<InputArray>,
    /// `scale = 1/255`: multiplies every input that is not a scalar (the
    /// features, the images; a scalar label or target is read as it is).
    pub scale: Option<f64>,
    /// The whole `csv(...)` call.
    pub span: Span,
}

/// The file format of a [`DataSource`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// `csv("file.csv", x = 0..2, y = 2)`.
    Csv,
    /// `npz("file.npz", x = "x_train", y = "y_train")`: arrays of one archive.
    Npz,
    /// `npy(x = "x.npy", y = "y.npy")`: a `.npy` file per input.
    Npy,
    /// `idx(x = "train-images-idx3-ubyte", y = "train-labels-idx1-ubyte")`:
    /// an IDX file per input (gzipped or not).
    Idx,
}

impl Format {
    /// The name it is written with.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Npz => "npz",
            Format::Npy => "npy",
            Format::Idx => "idx",
        }
    }
}

/// The array one input reads: an array's name in an `.npz` archive, or a
/// file's path (relative to the .grad file) for `npy` and `idx`.
#[derive(Clone, Debug, PartialEq)]
pub struct InputArray {
    pub input: String,
    pub name: String,
    /// `x = "x_train"`, for the loader's diagnostics.
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
    /// Newton's method on the exact Hessian of the mean loss over all the
    /// training data, `(H + mu I) d = -g`, with a backtracking (Armijo) line
    /// search: the loss never increases. `mu` starts at `damping` and grows
    /// while `H + mu I` is not positive definite. Default damping 0. Full
    /// batch; see `runtime::newton`.
    Newton { damping: f64 },
    /// L-BFGS keeping the last `memory` pairs, with a strong-Wolfe line
    /// search (c1 = 1e-4, c2 = 0.9). Default memory 10. Full batch; see
    /// `runtime::lbfgs`.
    Lbfgs { memory: f64 },
    /// Levenberg-Marquardt on the `residual`'s Jacobian: `(JᵀJ + mu I) d =
    /// -Jᵀr`, `mu` starting at `damping` times the largest diagonal element
    /// of JᵀJ and updated by Nielsen's rule. Default damping 1e-3. Full
    /// batch; see `runtime::least_squares`.
    LevenbergMarquardt { damping: f64 },
    /// Gauss-Newton on the `residual`'s Jacobian, `JᵀJ d = -Jᵀr`, with a
    /// backtracking line search. Full batch; see `runtime::least_squares`.
    GaussNewton,
}

impl Default for Optimizer {
    fn default() -> Optimizer {
        Optimizer::Sgd { lr: 0.01 }
    }
}

/// Optimizer names, for hints.
const OPTIMIZERS: &[&str] = &[
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adam",
    "adamw",
    "newton",
    "lbfgs",
    "levenberg_marquardt",
    "gauss_newton",
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
            Optimizer::Newton { .. } => "newton",
            Optimizer::Lbfgs { .. } => "lbfgs",
            Optimizer::LevenbergMarquardt { .. } => "levenberg_marquardt",
            Optimizer::GaussNewton => "gauss_newton",
        }
    }

    /// Whether this is a full-batch method with a loop of its own (Newton,
    /// L-BFGS, the least-squares methods): no mini-batches, no learning rate.
    pub fn is_full_batch(&self) -> bool {
        matches!(
            self,
            Optimizer::Newton { .. }
                | Optimizer::Lbfgs { .. }
                | Optimizer::LevenbergMarquardt { .. }
                | Optimizer::GaussNewton
        )
    }

    /// Whether this method needs the program's `residual`.
    pub fn needs_residual(&self) -> bool {
        matches!(
            self,
            Optimizer::LevenbergMarquardt { .. } | Optimizer::GaussNewton
        )
    }

    /// The base learning rate (before any schedule); 1 for the full-batch
    /// methods, which have none (their line search or damping sets the step).
    pub fn lr(&self) -> f64 {
        if self.is_full_batch() {
            return 1.0;
        }
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
            Optimizer::Newton { damping } | Optimizer::LevenbergMarquardt { damping } => {
                vec![("damping", damping)]
            }
            Optimizer::Lbfgs { memory } => vec![("memory", memory)],
            Optimizer::GaussNewton => vec![],
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
            "newton" => Optimizer::Newton { damping: 0.0 },
            "lbfgs" => Optimizer::Lbfgs { memory: 10.0 },
            "levenberg_marquardt" => Optimizer::LevenbergMarquardt { damping: 1e-3 },
            "gauss_newton" => Optimizer::GaussNewton,
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
            Optimizer::Newton { .. } => Optimizer::Newton { damping: v[0] },
            Optimizer::Lbfgs { .. } => Optimizer::Lbfgs { memory: v[0] },
            Optimizer::LevenbergMarquardt { .. } => Optimizer::LevenbergMarquardt { damping: v[0] },
            Optimizer::GaussNewton => Optimizer::GaussNewton,
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

mod check;
mod data;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dtype;

pub use check::check_train;
use check::example_csv;
