//! The training loop: batches, optimizer steps and stop rules.
//!
//! Decisions (beside those documented on [`TrainConfig`]):
//! - Everything random is drawn from Xoshiro256++ generators seeded from
//!   `seed`: the initialisers (stream 0), the validation split (stream 1),
//!   and the shuffle of epoch `e` (stream 2 + e), so a resumed run shuffles
//!   as the uninterrupted one would have.
//! - The validation split holds `round(validate * n)` examples, at least one,
//!   leaving at least one for training; both parts keep file order.
//! - A program without data runs one step per epoch (it is `batch = full`
//!   over one pseudo-example).
//! - A NaN or infinity in the loss or a gradient stops the run and goes back
//!   to the parameters before the last update: the last ones whose loss and
//!   gradient were finite (the update that led to the fault is undone). One
//!   in the parameters after an update undoes that update. Either way the run
//!   keeps the last good parameters.
//! - `epochs` and `steps` count the whole run: a run resumed from a
//!   checkpoint continues its counters and stops at the same limits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::diagnostic::Source;
use crate::dtype::Dtype;
use crate::ir::{nonfinite, Output, Role, RunError};
use crate::shape::{Shape, Tensor};
use crate::types::train::{Batch, TrainConfig, DEFAULT_STEPS};
use crate::Compiled;

use super::checkpoint::{Checkpoint, SavedOptimizer};
use super::data::{self, shuffle, Dataset};
use super::engine::{eval_program, trace_rows, train_program, Engine, Mode};
use super::full_batch;
use super::optim::{learning_rate, State};
use super::setup::{check_initial, check_resume, check_settings, dtype_of, split};
use super::{EpochRecord, Error, Evaluation, Observer, Options, Plan, Report, StepEvent, Stop};

/// A generator for one purpose (`stream`) of a run seeded with `seed`.
pub(super) fn stream_rng(seed: u64, stream: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The program's inputs with their shapes, in declaration order.
pub fn inputs_of(c: &Compiled) -> Vec<(String, Shape)> {
    c.typed
        .inputs
        .iter()
        .map(|d| (d.name.clone(), d.shape.clone()))
        .collect()
}

fn params_of(c: &Compiled) -> Vec<(String, Shape)> {
    c.typed
        .params
        .iter()
        .map(|d| (d.name.clone(), d.shape.clone()))
        .collect()
}

/// The first parameter with a NaN or an infinity among `values` (one slice
/// per parameter), by name.
fn non_finite<'a, 'b>(
    names: &'a [(String, Shape)],
    values: impl Iterator<Item = &'b [f64]>,
) -> Option<&'a str> {
    names
        .iter()
        .zip(values)
        // Every element tested, not the first bad one sought: the loop
        // vectorises, and finite values (the usual case) are all read anyway.
        .find(|(_, v)| v.iter().fold(false, |bad, x| bad | !x.is_finite()))
        .map(|((n, _), _)| n.as_str())
}

/// Trains the parameters of `c` as `cfg` says (the train block, with any
/// command-line overrides), telling `observer` about every step and epoch.
///
/// Errors are problems found before training starts (the configuration, the
/// data, a checkpoint that does not fit); a fault during training (a NaN) and
/// an interruption end the run normally, with the reason in
/// [`Report::stop`].
pub fn train(
    c: &Compiled,
    cfg: &TrainConfig,
    opts: &Options,
    observer: &mut dyn Observer,
) -> Result<Report, Error> {
    train_with(c, cfg, opts, opts.backend.into(), observer)
}

/// [`train`], with the programs run as `mode` says instead of
/// `opts.backend` (the JIT one example per call is the batched code's
/// reference).
pub fn train_with(
    c: &Compiled,
    cfg: &TrainConfig,
    opts: &Options,
    mode: Mode,
    observer: &mut dyn Observer,
) -> Result<Report, Error> {
    // On several threads, the whole run is on a thread of the pool, so
    // that a step's shards are shared out from inside it (rayon's `join`:
    // nothing allocated, no job queued from outside the pool).
    match opts.threads.pool() {
        Some(pool) => pool.install(|| train_here(c, cfg, opts, mode, observer)),
        None => train_here(c, cfg, opts, mode, observer),
    }
}

/// [`train_with`] on the current thread.
fn train_here(
    c: &Compiled,
    cfg: &TrainConfig,
    opts: &Options,
    mode: Mode,
    observer: &mut dyn Observer,
) -> Result<Report, Error> {
    let mut notes = Vec::new();
    let mut run = Run::new(c, cfg, opts, mode, &mut notes, observer)?;
    let (step0, epoch0) = (run.step, run.epoch);
    if opts.resume.is_some() && run.limit_reached().is_some() {
        notes.push(format!(
            "the checkpoint is already at the limit ({step0} steps, {epoch0} epochs): raise `epochs` or `steps` to train further"
        ));
    }
    observer.start(&run.plan());

    if cfg.optimizer.is_full_batch() {
        return full_batch::train(c, run, mode, observer, notes, step0);
    }
    let mut history: Vec<EpochRecord> = Vec::new();
    let mut best: Option<Best> = None;
    let stop = loop {
        if let Some(stop) = run.limit_reached() {
            break stop;
        }
        let mut sums = Sums::new(run.metric_names.len());
        let end = run.epoch(observer, &mut sums)?;
        let complete = matches!(end, EpochEnd::Complete);
        if complete {
            run.epoch += 1;
        }
        if sums.examples > 0 {
            let record = run.record(&sums, complete)?;
            observer.epoch(&record);
            history.push(record);
        }
        match end {
            EpochEnd::Fault(stop) => break stop,
            EpochEnd::Interrupted => break Stop::Interrupted,
            EpochEnd::StepLimit => continue,
            EpochEnd::Complete => {}
        }
        let last = history.last().expect("a complete epoch is recorded");
        if let Some(stop) = run.stop_rules(last, &mut best) {
            break stop;
        }
    };
    run.finish(stop, history, notes, step0)
}

/// The parameters of the epoch with the lowest validation loss so far.
struct Best {
    loss: f64,
    epoch: u64,
    params: Vec<Tensor>,
}

/// How an epoch ended.
enum EpochEnd {
    Complete,
    /// The step limit fell inside it.
    StepLimit,
    Interrupted,
    Fault(Stop),
}

/// An epoch's steps, summed.
struct Sums {
    /// Loss and metrics weighted by the examples of each step.
    loss: f64,
    metrics: Vec<f64>,
    examples: usize,
    /// Of the last step.
    grad_norm: f64,
    lr: f64,
}

impl Sums {
    fn new(metrics: usize) -> Sums {
        Sums {
            loss: 0.0,
            metrics: vec![0.0; metrics],
            examples: 0,
            grad_norm: f64::NAN,
            lr: f64::NAN,
        }
    }
}

/// A run in progress: the data, the compiled programs, the parameters and
/// the optimizer, and the counters.
pub(super) struct Run<'a> {
    pub(super) cfg: &'a TrainConfig,
    /// The program's source, which faults are placed in.
    pub(super) source: Arc<Source>,
    decls: Vec<(String, Shape)>,
    pub(super) data: Option<Dataset>,
    /// The train block's `test` set, evaluated at the end.
    test: Option<Dataset>,
    pub(super) train_rows: Vec<usize>,
    val_rows: Vec<usize>,
    /// The gradient program.
    pub(super) trainer: Engine,
    /// The forward program (loss and metrics).
    evaluator: Engine,
    metric_names: Vec<String>,
    state: State,
    pub(super) params: Vec<Tensor>,
    /// The parameters before the current update, to undo it.
    backup: Vec<Tensor>,
    /// The training rows in this epoch's order.
    order: Vec<usize>,
    batch: usize,
    steps_per_epoch: u64,
    step_limit: Option<u64>,
    /// The steps the limits allow (the length of a `cosine` schedule).
    planned: u64,
    /// The learning rate before the schedule.
    base_lr: f64,
    /// Steps and complete epochs so far (a resumed run starts past 0).
    pub(super) step: u64,
    pub(super) epoch: u64,
    first_step: u64,
    pub(super) start: Instant,
    pub(super) stop_flag: Option<&'a AtomicBool>,
    /// The float type the programs compute in.
    dtype: Dtype,
}

impl<'a> Run<'a> {
    /// Loads the data (and the test set), splits it, compiles the
    /// programs, starts the parameters and the optimizer, and runs every
    /// example through the model once, so that a bad one is reported
    /// before training.
    fn new(
        c: &Compiled,
        cfg: &'a TrainConfig,
        opts: &'a Options,
        mode: Mode,
        notes: &mut Vec<String>,
        observer: &mut dyn Observer,
    ) -> Result<Run<'a>, Error> {
        let inputs = inputs_of(c);
        let decls = params_of(c);
        let program = |d| Error::in_source(&c.source, vec![d]);
        let source = cfg.training_data(&inputs).map_err(program)?;
        check_settings(cfg, source.is_some())?;
        let needed = vec![true; inputs.len()];
        let mut load = |s| {
            let req = data::Request {
                dir: &opts.base_dir,
                source: s,
                inputs: &inputs,
                needed: &needed,
                program: &c.source,
            };
            data::load(&req, &mut |l| observer.loading(l))
        };
        let data = source.map(&mut load).transpose()?;
        let test = cfg.test.as_ref().map(&mut load).transpose()?;
        let n = data.as_ref().map_or(1, Dataset::len);
        let (train_rows, val_rows) = split(n, cfg, data.as_ref())?;

        let sizes: Vec<usize> = decls.iter().map(|(_, s)| s.size()).collect();
        let mut state = State::new(&cfg.optimizer, &sizes);
        let (params, step, epoch) = match &opts.resume {
            Some(ck) => {
                check_resume(ck, &decls)?;
                match &ck.optimizer {
                    Some(saved) if saved.restore(&mut state) => {}
                    Some(saved) => notes.push(format!(
                        "the checkpoint's optimizer state ({}) does not fit {}: it starts afresh",
                        saved.name,
                        cfg.optimizer.name()
                    )),
                    None => {
                        notes.push("the checkpoint has no optimizer state: it starts afresh".into())
                    }
                }
                (ck.params.clone(), ck.step, ck.epoch)
            }
            None => match &opts.initial {
                Some(params) => {
                    check_initial(params, &decls)?;
                    (params.clone(), 0, 0)
                }
                None => (c.initial_params(cfg.seed), 0, 0),
            },
        };

        let dtype = dtype_of(cfg, opts)?;
        let threads = opts.threads.clone();
        let trainer = Engine::with(&train_program(c)?, mode, dtype, threads.clone())?;
        let mut evaluator = Engine::with(&eval_program(c), mode, dtype, threads)?;
        let all_rows: Vec<usize> = (0..n).collect();
        evaluator
            .run(&params, data.as_ref(), &all_rows)
            .map_err(|e| e.to_error(&c.source, data.as_ref()))?;
        if let Some(t) = &test {
            let rows: Vec<usize> = (0..t.len()).collect();
            evaluator
                .run(&params, Some(t), &rows)
                .map_err(|e| e.to_error(&c.source, Some(t)))?;
        }

        let batch = match (cfg.batch, &data) {
            (_, None) => 1,
            (Batch::Full, Some(_)) => train_rows.len(),
            (Batch::Size(b), Some(_)) => b.min(train_rows.len()).max(1),
        };
        let steps_per_epoch = train_rows.len().div_ceil(batch) as u64;
        let step_limit = match (cfg.steps, cfg.epochs) {
            (None, None) => Some(DEFAULT_STEPS),
            (s, _) => s,
        };
        let planned = match (step_limit, cfg.epochs) {
            (Some(s), Some(e)) => s.min(e.saturating_mul(steps_per_epoch)),
            (Some(s), None) => s,
            (None, Some(e)) => e.saturating_mul(steps_per_epoch),
            (None, None) => DEFAULT_STEPS,
        };
        Ok(Run {
            cfg,
            source: c.source.clone(),
            decls,
            metric_names: evaluator.metric_names(),
            order: train_rows.clone(),
            backup: params.clone(),
            data,
            test,
            train_rows,
            val_rows,
            trainer,
            evaluator,
            state,
            params,
            batch,
            steps_per_epoch,
            step_limit,
            planned,
            base_lr: cfg.optimizer.lr(),
            step,
            epoch,
            first_step: step,
            start: Instant::now(),
            stop_flag: opts.stop.as_deref(),
            dtype,
        })
    }

    fn plan(&self) -> Plan {
        Plan {
            steps: self.planned,
            first_step: self.first_step,
            batch: self.batch,
            steps_per_epoch: self.steps_per_epoch,
            train_examples: if self.data.is_some() {
                self.train_rows.len()
            } else {
                0
            },
            validation_examples: self.val_rows.len(),
            metrics: self.metric_names.clone(),
            has_data: self.data.is_some(),
        }
    }

    /// `epochs` or `steps`, if reached.
    pub(super) fn limit_reached(&self) -> Option<Stop> {
        if self.cfg.epochs.is_some_and(|e| self.epoch >= e) {
            Some(Stop::Epochs)
        } else if self.step_limit.is_some_and(|s| self.step >= s) {
            Some(Stop::Steps)
        } else {
            None
        }
    }

    /// One pass over the training rows, in batches (one step without data).
    fn epoch(&mut self, observer: &mut dyn Observer, sums: &mut Sums) -> Result<EpochEnd, Error> {
        if self.data.is_some() && self.cfg.shuffle {
            self.order.copy_from_slice(&self.train_rows);
            shuffle(
                &mut self.order,
                &mut stream_rng(self.cfg.seed, 2 + self.epoch),
            );
        }
        let len = self.order.len();
        for lo in (0..len).step_by(self.batch) {
            if self.stop_flag.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Ok(EpochEnd::Interrupted);
            }
            if self.step_limit.is_some_and(|s| self.step >= s) {
                return Ok(EpochEnd::StepLimit);
            }
            if let Some(fault) = self.step(lo..len.min(lo + self.batch), observer, sums)? {
                return Ok(EpochEnd::Fault(fault));
            }
        }
        Ok(EpochEnd::Complete)
    }

    /// One optimizer step on the training rows `order[range]`; a fault
    /// (a NaN or an infinity) leaves the parameters as they were.
    fn step(
        &mut self,
        range: std::ops::Range<usize>,
        observer: &mut dyn Observer,
        sums: &mut Sums,
    ) -> Result<Option<Stop>, Error> {
        let rows = &self.order[range];
        let data = self.data.as_ref();
        let step = self.step + 1;
        let fault = |message: String, origin: Option<Box<Error>>| {
            Ok(Some(Stop::Fault {
                step,
                message,
                origin,
            }))
        };
        if let Err(e) = self.trainer.run(&self.params, data, rows) {
            // A fault of the model at these parameters (an index computed
            // from a parameter out of range): a stop like a NaN's, which
            // keeps the last good parameters; a misuse is an error.
            if !matches!(e.error, RunError::Fault { .. }) {
                return Err(e.to_error(&self.source, data));
            }
            let origin = e.to_error(&self.source, data);
            for (p, b) in self.params.iter_mut().zip(&self.backup) {
                p.data.copy_from_slice(&b.data);
            }
            return fault(e.error.to_string(), Some(Box::new(origin)));
        }
        let (loss, grads) = (self.trainer.loss(), self.trainer.grads());
        let norm = grads
            .iter()
            .flat_map(|g| g.iter())
            .map(|x| x * x)
            .sum::<f64>()
            .sqrt();
        // A NaN or an infinity in a gradient makes the norm one: only then
        // (or when the sum overflows) are the gradients searched.
        let bad = if !loss.is_finite() {
            Some(format!("the loss is {loss}"))
        } else if !norm.is_finite() {
            non_finite(&self.decls, grads.iter().map(|g| &g[..]))
                .map(|name| format!("the gradient of `{name}` is not finite"))
        } else {
            None
        };
        if let Some(message) = bad {
            // The checked re-run, at the parameters of the step.
            let origin = self.origin_of_fault(rows, step, &message);
            // The current parameters are finite but already bad: go back to
            // those before the last update, whose loss and gradient were
            // finite (the backup holds the initial ones before any update).
            for (p, b) in self.params.iter_mut().zip(&self.backup) {
                p.data.copy_from_slice(&b.data);
            }
            return fault(message, origin);
        }
        let lr = learning_rate(self.base_lr, &self.cfg.schedule, self.step, self.planned);
        observer.step(&StepEvent {
            step,
            epoch: self.epoch + 1,
            params: &self.params,
            loss,
            grad_norm: norm,
            lr,
        });
        for (b, p) in self.backup.iter_mut().zip(&self.params) {
            b.data.copy_from_slice(&p.data);
        }
        let pool = self.trainer.threads().pool();
        self.state.step_on(pool, lr, &mut self.params, grads);
        if let Some(name) = non_finite(&self.decls, self.params.iter().map(|p| &p.data[..])) {
            for (p, b) in self.params.iter_mut().zip(&self.backup) {
                p.data.copy_from_slice(&b.data);
            }
            return fault(
                format!(
                    "the update made `{name}` non-finite (is the learning rate, {lr}, too large?); the update was undone"
                ),
                None,
            );
        }
        self.step = step;
        let k = if data.is_some() { rows.len() } else { 1 };
        sums.loss += loss * k as f64;
        for (s, m) in sums.metrics.iter_mut().zip(self.trainer.metrics()) {
            *s += m * k as f64;
        }
        sums.examples += k;
        sums.grad_norm = norm;
        sums.lr = lr;
        Ok(None)
    }

    /// Where the NaN or infinity of step `step` on the training rows `rows`
    /// comes from: the step's examples re-run one by one in the interpreter
    /// on the gradient program, the first with a non-finite loss or
    /// gradient traced to its origin ([`nonfinite::trace`]), as an error
    /// headed `training stopped at step N: MESSAGE` with the example's line
    /// of the data. Only after a fault: the hot loop has no checks.
    fn origin_of_fault(&self, rows: &[usize], step: u64, message: &str) -> Option<Box<Error>> {
        let watched = |o: &Output| matches!(o.role, Role::Loss | Role::Grad(_));
        let headline =
            |_: &nonfinite::Origin| format!("training stopped at step {step}: {message}");
        let f = self.trainer.function();
        let data = self.data.as_ref();
        trace_rows(f, &self.source, &self.params, data, rows, watched, headline).map(Box::new)
    }

    /// The record of the epoch just run, with the validation loss and
    /// metrics at the current parameters.
    fn record(&mut self, sums: &Sums, complete: bool) -> Result<EpochRecord, Error> {
        let validation = if self.val_rows.is_empty() {
            None
        } else {
            let data = self.data.as_ref();
            self.evaluator
                .run(&self.params, data, &self.val_rows)
                .map_err(|e| e.to_error(&self.source, data))?;
            Some((self.evaluator.loss(), self.evaluator.metrics().to_vec()))
        };
        let n = sums.examples as f64;
        Ok(EpochRecord {
            epoch: if complete { self.epoch } else { self.epoch + 1 },
            step: self.step,
            loss: sums.loss / n,
            metrics: sums.metrics.iter().map(|m| m / n).collect(),
            validation,
            grad_norm: sums.grad_norm,
            lr: sums.lr,
            complete,
            elapsed: self.start.elapsed(),
        })
    }

    /// `loss_tol`, `grad_tol` and early stopping, after a complete epoch.
    fn stop_rules(&mut self, last: &EpochRecord, best: &mut Option<Best>) -> Option<Stop> {
        let cfg = self.cfg;
        if cfg.loss_tol.is_some_and(|tol| last.loss < tol) {
            return Some(Stop::LossTol);
        }
        if cfg.grad_tol.is_some_and(|tol| last.grad_norm < tol) {
            return Some(Stop::GradTol);
        }
        let (Some(patience), Some((loss, _))) = (cfg.patience, &last.validation) else {
            return None;
        };
        match best {
            Some(b) if *loss < b.loss => {
                b.loss = *loss;
                b.epoch = self.epoch;
                b.params.clone_from(&self.params);
            }
            // Not better (or NaN).
            Some(b) => {
                if self.epoch - b.epoch >= patience {
                    self.params.clone_from(&b.params);
                    return Some(Stop::EarlyStop {
                        best_epoch: b.epoch,
                    });
                }
            }
            None => {
                *best = Some(Best {
                    loss: *loss,
                    epoch: self.epoch,
                    params: self.params.clone(),
                })
            }
        }
        None
    }

    /// The report: the loss and metrics at the final parameters over the
    /// training and validation rows, and a checkpoint to resume from.
    pub(super) fn finish(
        mut self,
        stop: Stop,
        history: Vec<EpochRecord>,
        mut notes: Vec<String>,
        step0: u64,
    ) -> Result<Report, Error> {
        let wall = self.start.elapsed();
        let train = self.final_evaluation(&self.train_rows.clone(), &stop, &mut notes)?;
        let validation = if self.val_rows.is_empty() {
            None
        } else {
            Some(self.final_evaluation(&self.val_rows.clone(), &stop, &mut notes)?)
        };
        let test = match self.test.take() {
            Some(t) => {
                let rows: Vec<usize> = (0..t.len()).collect();
                let data = self.data.replace(t);
                let e = self.final_evaluation(&rows, &stop, &mut notes);
                self.data = data;
                Some(e?)
            }
            None => None,
        };
        let checkpoint = Checkpoint {
            params: self.params.clone(),
            names: self.decls.iter().map(|(n, _)| n.clone()).collect(),
            step: self.step,
            epoch: self.epoch,
            optimizer: Some(SavedOptimizer::from_state(&self.state)),
        };
        Ok(Report {
            params: self.params,
            checkpoint,
            steps: self.step - step0,
            last_step: self.step,
            epochs: self.epoch,
            stop,
            history,
            train,
            validation,
            test,
            metrics: self.metric_names,
            wall,
            notes,
            grad_norm: None,
            dtype: self.dtype,
        })
    }

    /// [`evaluation`](Self::evaluation) after the run; after a fault, one
    /// that fails again is a note and NaNs, so that the report (and the
    /// parameters) are not lost.
    fn final_evaluation(
        &mut self,
        rows: &[usize],
        stop: &Stop,
        notes: &mut Vec<String>,
    ) -> Result<Evaluation, Error> {
        match self.evaluation(rows) {
            Err(e) if matches!(stop, Stop::Fault { .. }) => {
                notes.push(format!(
                    "the loss and metrics at the final parameters cannot be evaluated: {}",
                    e.render(false).lines().next().unwrap_or_default()
                ));
                Ok(Evaluation {
                    loss: f64::NAN,
                    metrics: self
                        .metric_names
                        .iter()
                        .map(|m| (m.clone(), f64::NAN))
                        .collect(),
                    examples: rows.len(),
                })
            }
            result => result,
        }
    }

    fn evaluation(&mut self, rows: &[usize]) -> Result<Evaluation, Error> {
        let data = self.data.as_ref();
        self.evaluator
            .run(&self.params, data, rows)
            .map_err(|e| e.to_error(&self.source, data))?;
        Ok(Evaluation {
            loss: self.evaluator.loss(),
            metrics: self
                .metric_names
                .iter()
                .cloned()
                .zip(self.evaluator.metrics().iter().copied())
                .collect(),
            examples: if data.is_some() { rows.len() } else { 1 },
        })
    }
}
