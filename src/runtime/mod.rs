//! The training runtime: data, batches, optimizers, stop rules, checkpoints.
//!
//! Back-propagation computes the gradient (the gradient program of
//! [`crate::Compiled::gradient`], compiled by the [`crate::backend`]); this
//! module runs the optimizer that uses it.
//!
//! - [`data`]: a CSV file, NumPy arrays or IDX files read into one buffer
//!   per input, checked against the program's `input` declarations before
//!   training starts.
//! - [`engine`]: a compiled program (JIT or interpreter) run over a batch of
//!   examples, giving the mean loss, metrics and gradients.
//! - [`optim`]: the update rules and learning-rate schedules.
//! - `full_batch`: the loop of the full-batch methods, Newton's method
//!   (`newton`, and [`newton_cg`] for many parameters), L-BFGS (`lbfgs`)
//!   and the least-squares methods (`least_squares`), with their line
//!   searches (`line_search`) and [`linalg`].
//! - [`mod@train`]: the training loop and its stop rules.
//! - [`infer`]: trained parameters on data: evaluation and prediction.
//! - [`checkpoint`]: parameters (and optimizer state) as safetensors.
//! - [`history`]: the per-epoch log as CSV, and the loss curves as a picture.
//!
//! Nothing here prints: progress goes to an [`Observer`], results come back
//! in a [`Report`], and errors are [`Error`] values (the one error type,
//! [`crate::diagnostic::Error`]): a mistake in the program points into its
//! source ([`crate::Compiled::source`]), a bad data file at its line and
//! column with a note at the .grad mapping that reads it.
//!
//! ```
//! use gradc::runtime::{self, Options};
//! let c = gradc::compile("param x = -3\nloss x^2\ntrain { optimizer = sgd(lr = 0.1)  steps = 100 }").unwrap();
//! let cfg = c.typed.train.clone().unwrap();
//! let report = runtime::train(&c, &cfg, &Options::default(), &mut ()).unwrap();
//! assert!(report.params[0].item().abs() < 1e-6);
//! ```

pub mod checkpoint;
pub mod data;
pub mod engine;
mod full_batch;
pub mod history;
pub mod infer;
mod lbfgs;
mod least_squares;
pub mod linalg;
mod line_search;
mod narrow;
mod newton;
pub mod newton_cg;
pub mod optim;
mod setup;
pub mod shards;
pub mod train;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

pub use crate::diagnostic::Error;
use crate::dtype::Dtype;
use crate::shape::Tensor;

pub use checkpoint::Checkpoint;
pub use data::Dataset;
pub use engine::{Backend, Mode};
pub use infer::{evaluate, load_data, predict, Predictions};
pub use train::{train, train_with};

/// How to run, besides what the train block says.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The directory data paths are relative to: the .grad file's. Empty
    /// means the current directory.
    pub base_dir: PathBuf,
    /// What evaluates the programs (the JIT runs one call per batch; see
    /// [`train::train_with`] for the other modes).
    pub backend: Backend,
    /// The float type to train in, overriding the train block's `dtype`
    /// (`--dtype`); f32 needs the JIT and a first-order optimizer.
    pub dtype: Option<Dtype>,
    /// Start from these parameters (and optimizer state) instead of the
    /// initialisers: `--resume`. The step and epoch counters continue.
    pub resume: Option<Checkpoint>,
    /// Start from these parameters (in declaration order) instead of the
    /// initialisers, with a fresh optimizer and counters at 0: the REPL's
    /// `:train` from the session's current values. `resume` wins if both
    /// are given.
    pub initial: Option<Vec<Tensor>>,
    /// Set from another thread (a Ctrl-C handler) to stop at the next step;
    /// the run then ends with [`Stop::Interrupted`].
    pub stop: Option<Arc<AtomicBool>>,
    /// The threads the shards of a batch run on (by default the calling
    /// thread alone): the numbers are the same at any count
    /// ([`shards`]).
    pub threads: shards::Threads,
}

/// What the run will do, told to the observer before the first step.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The optimizer steps the limits allow (`epochs` and `steps`), counted
    /// from the start of the run (a resumed run starts past 0).
    pub steps: u64,
    /// Where the step counter starts (0, or the checkpoint's).
    pub first_step: u64,
    /// Examples per step (1 for a program without data).
    pub batch: usize,
    /// Steps per epoch (1 for a program without data).
    pub steps_per_epoch: u64,
    pub train_examples: usize,
    pub validation_examples: usize,
    /// The metrics' names, in the order of every metrics vector.
    pub metrics: Vec<String>,
    /// Whether the model reads data; without, an epoch is one step.
    pub has_data: bool,
}

/// One optimizer step, told to the observer before the parameters change.
#[derive(Debug)]
pub struct StepEvent<'a> {
    /// 1 for the first step of a run from scratch.
    pub step: u64,
    /// The epoch this step belongs to, from 1.
    pub epoch: u64,
    /// The parameters the gradient was taken at (the iterate).
    pub params: &'a [Tensor],
    /// The mean loss over the batch, at `params`.
    pub loss: f64,
    /// The norm of the gradient, all parameters as one vector.
    pub grad_norm: f64,
    /// The learning rate of this step, after the schedule.
    pub lr: f64,
}

/// One epoch of the run (the last one may be partial, when the step limit
/// falls inside it).
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// From 1.
    pub epoch: u64,
    /// Steps done so far in the run.
    pub step: u64,
    /// The mean loss over the epoch's examples, each taken at the
    /// parameters of its step.
    pub loss: f64,
    /// The metrics, averaged the same way.
    pub metrics: Vec<f64>,
    /// The validation loss and metrics at the end of the epoch.
    pub validation: Option<(f64, Vec<f64>)>,
    /// The gradient norm at the last step of the epoch.
    pub grad_norm: f64,
    /// The learning rate of the last step.
    pub lr: f64,
    /// Whether the whole training set was seen.
    pub complete: bool,
    /// Since the start of training.
    pub elapsed: Duration,
}

/// Receives progress while training runs. Every method has a default that
/// does nothing, and `()` is an observer that ignores everything. It is
/// `Send`: a run on several threads runs on a thread of its pool.
pub trait Observer: Send {
    fn start(&mut self, _plan: &Plan) {}
    fn step(&mut self, _event: &StepEvent<'_>) {}
    fn epoch(&mut self, _record: &EpochRecord) {}
    /// Data loading's progress (before `start`), about every 64 KiB to a
    /// few MiB of a file, and once at the end of each file.
    fn loading(&mut self, _progress: &data::Loading<'_>) {}
}

impl Observer for () {}

/// Why the run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// `steps` reached.
    Steps,
    /// `epochs` reached.
    Epochs,
    /// The epoch's training loss fell below `loss_tol`.
    LossTol,
    /// The gradient norm fell below `grad_tol`.
    GradTol,
    /// A step of a full-batch method changed the loss by less than
    /// `rel_tol` of it.
    RelTol,
    /// A full-batch method found no step that lowers the loss (a minimum,
    /// to the precision of the arithmetic, or a direction that does not
    /// descend).
    NoProgress,
    /// No improvement of the validation loss for `patience` epochs; the
    /// parameters are those of `best_epoch`.
    EarlyStop { best_epoch: u64 },
    /// The stop flag was set (Ctrl-C). The parameters are those after the
    /// last complete step.
    Interrupted,
    /// A NaN or an infinity in the loss, a gradient, or the parameters after
    /// an update, at this step. The parameters are the last ones with a finite loss and gradient.
    Fault {
        step: u64,
        message: String,
        /// For a NaN in the loss or a gradient: where it came from, found by
        /// re-running the step's examples in the interpreter (see
        /// [`crate::ir::nonfinite`]), as an error placed in the source with
        /// the example's line of the data; `None` if it could not be found
        /// (an overflow of the batch's sum, or the update's fault).
        origin: Option<Box<Error>>,
    },
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Steps => write!(f, "step limit reached"),
            Stop::Epochs => write!(f, "epoch limit reached"),
            Stop::LossTol => write!(f, "training loss below loss_tol"),
            Stop::GradTol => write!(f, "gradient norm below grad_tol"),
            Stop::RelTol => write!(f, "relative change of the loss below rel_tol"),
            Stop::NoProgress => write!(f, "no step lowers the loss further"),
            Stop::EarlyStop { best_epoch } => write!(
                f,
                "early stopping: no better validation loss since epoch {best_epoch}, whose parameters were restored"
            ),
            Stop::Interrupted => write!(f, "interrupted"),
            Stop::Fault { step, message, .. } => write!(f, "step {step}: {message}"),
        }
    }
}

/// The loss and metrics of parameters on a set of examples (means).
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub metrics: Vec<(String, f64)>,
    /// Examples evaluated (1 for a program without data).
    pub examples: usize,
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct Report {
    /// The final parameters: the last ones with a finite loss and gradient, or the best epoch's after
    /// early stopping.
    pub params: Vec<Tensor>,
    /// The optimizer's state and counters, for a checkpoint to resume from.
    pub checkpoint: Checkpoint,
    /// Optimizer steps done in this run.
    pub steps: u64,
    /// The step counter at the end (counting a resumed run's earlier steps).
    pub last_step: u64,
    /// Complete epochs at the end (counting a resumed run's earlier ones).
    pub epochs: u64,
    pub stop: Stop,
    pub history: Vec<EpochRecord>,
    /// The loss and metrics at the final parameters, over the training set.
    pub train: Evaluation,
    /// The same over the validation split, if any.
    pub validation: Option<Evaluation>,
    /// The same over the train block's `test` set, if any.
    pub test: Option<Evaluation>,
    /// The metrics' names.
    pub metrics: Vec<String>,
    /// Training time: data loading and compilation excluded.
    pub wall: Duration,
    /// Things the user should know that did not stop the run.
    pub notes: Vec<String>,
    /// The full-batch methods (`newton`, `lbfgs`, ...): the norm of the
    /// gradient of the loss over the training data at the final parameters.
    pub grad_norm: Option<f64>,
    /// The float type the run computed in.
    pub dtype: Dtype,
}
