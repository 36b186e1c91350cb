//! The loop of the full-batch methods (`newton`, `lbfgs`,
//! `levenberg_marquardt`, `gauss_newton`): every step sees the loss and the
//! gradient over all the training data, and takes a step that lowers the
//! loss, or the run ends.
//!
//! Decisions:
//! - A step is an epoch (the whole training set), as `batch = full` is.
//! - The stop rules are tested at the current point before each step, in
//!   this order: `grad_tol` (the gradient norm below it), `loss_tol` (the
//!   loss below it), then the `steps`/`epochs` limits; after a step,
//!   `rel_tol` (the loss changed by less than that fraction of it). A method
//!   that finds no step lowering the loss stops with [`Stop::NoProgress`].
//! - Points whose loss or gradient is not finite are never accepted: the
//!   line searches and the damping treat them as too far. A non-finite loss
//!   or gradient at the starting point is a fault, as in the first-order
//!   loop.
//! - The history has a record per step: the loss and gradient norm at the
//!   point the step started from.

use std::sync::atomic::Ordering;

use crate::shape::Tensor;
use crate::types::train::{Batch, Optimizer, Schedule, TrainConfig};
use crate::Compiled;

use super::engine::{Engine, Mode};
use super::linalg::norm;
use super::train::Run;
use super::{lbfgs, least_squares, newton, newton_cg};
use super::{EpochRecord, Error, Observer, Report, StepEvent, Stop};

/// A point with its loss and gradient over the training data (all the
/// parameters as one vector, in declaration order).
#[derive(Clone, Debug)]
pub(super) struct Point {
    pub x: Vec<f64>,
    pub f: f64,
    pub g: Vec<f64>,
    /// The metrics' means there.
    pub metrics: Vec<f64>,
}

impl Point {
    pub fn is_finite(&self) -> bool {
        self.f.is_finite() && self.g.iter().all(|v| v.is_finite())
    }
}

/// The loss and gradient over the training rows at any parameters: what
/// the methods call.
pub(super) struct Problem<'r, 'a> {
    pub run: &'r mut Run<'a>,
    /// Parameter tensors to evaluate at (shapes of the program's).
    scratch: Vec<Tensor>,
}

impl<'r, 'a> Problem<'r, 'a> {
    pub fn new(run: &'r mut Run<'a>) -> Self {
        let scratch = run.params.clone();
        Problem { run, scratch }
    }

    /// The parameters as tensors, at `x`.
    pub fn tensors(&mut self, x: &[f64]) -> &[Tensor] {
        unflatten(x, &mut self.scratch);
        &self.scratch
    }

    /// The mean loss and gradient over the training rows at `x`.
    pub fn eval(&mut self, x: &[f64]) -> Result<Point, Error> {
        unflatten(x, &mut self.scratch);
        let run = &mut *self.run;
        let data = run.data.as_ref();
        run.trainer
            .run(&self.scratch, data, &run.train_rows)
            .map_err(|e| e.to_error(&run.source, data))?;
        Ok(Point {
            x: x.to_vec(),
            f: run.trainer.loss(),
            g: run.trainer.grads().concat(),
            metrics: run.trainer.metrics().to_vec(),
        })
    }

    /// The mean of `engine`'s gradients over the training rows at `params`
    /// (all of the engine's parameters), flattened.
    pub fn run_engine(
        &mut self,
        engine: &mut Engine,
        params: &[Tensor],
    ) -> Result<Vec<f64>, Error> {
        let run = &*self.run;
        let data = run.data.as_ref();
        engine
            .run(params, data, &run.train_rows)
            .map_err(|e| e.to_error(&run.source, data))?;
        Ok(engine.grads().concat())
    }

    /// The mean of `engine`'s gradients over the training rows at `x`,
    /// flattened (a Hessian row program gives that row).
    pub fn mean_grads(&mut self, engine: &mut Engine, x: &[f64]) -> Result<Vec<f64>, Error> {
        unflatten(x, &mut self.scratch);
        let run = &*self.run;
        let data = run.data.as_ref();
        engine
            .run(&self.scratch, data, &run.train_rows)
            .map_err(|e| e.to_error(&run.source, data))?;
        Ok(engine.grads().concat())
    }
}

fn flatten(params: &[Tensor]) -> Vec<f64> {
    params.iter().flat_map(|t| t.data.iter().copied()).collect()
}

fn unflatten(x: &[f64], params: &mut [Tensor]) {
    let mut at = 0;
    for t in params {
        let n = t.data.len();
        t.data.copy_from_slice(&x[at..at + n]);
        at += n;
    }
}

/// One of the methods: from a point, the next one (with a lower loss), or
/// `None` when it finds none.
pub(super) trait Method {
    fn step(&mut self, p: &mut Problem<'_, '_>, at: &Point) -> Result<Option<Point>, Error>;
}

/// The method of `o`, compiled for `c` (a Hessian or Jacobian program) in
/// `mode`, for parameters of the shapes of `params`: Newton's method on the
/// exact Hessian up to [`newton::MAX_NEWTON`] parameter elements, on
/// Hessian-vector products beyond.
fn method(
    c: &Compiled,
    o: &Optimizer,
    mode: Mode,
    params: &[Tensor],
) -> Result<Box<dyn Method>, Error> {
    let size: usize = params.iter().map(|t| t.data.len()).sum();
    Ok(match *o {
        Optimizer::Newton { damping } if size > newton::MAX_NEWTON => {
            Box::new(newton_cg::NewtonCg::new(c, damping, mode, params)?)
        }
        Optimizer::Newton { damping } => Box::new(newton::Newton::new(c, damping, mode)?),
        Optimizer::Lbfgs { memory } => Box::new(lbfgs::Lbfgs::new(memory as usize)),
        Optimizer::LevenbergMarquardt { damping } => {
            Box::new(least_squares::LeastSquares::new(c, Some(damping), mode)?)
        }
        Optimizer::GaussNewton => Box::new(least_squares::LeastSquares::new(c, None, mode)?),
        _ => unreachable!("called for the full-batch methods only"),
    })
}

/// The settings a full-batch method cannot take (the train block's checker
/// catches these in the source; command-line overrides come here).
pub(super) fn check_settings(cfg: &TrainConfig) -> Result<(), Error> {
    let o = &cfg.optimizer;
    if !o.is_full_batch() {
        return Ok(());
    }
    let name = o.name();
    if matches!(cfg.batch, Batch::Size(_)) {
        return Err(Error::new(format!(
            "`{name}` is a full-batch method: it cannot train on mini-batches (remove `batch`, or write `batch = full`)"
        )));
    }
    if cfg.patience.is_some() {
        return Err(Error::new(format!(
            "`{name}` takes no `patience`: early stopping is for stochastic training"
        )));
    }
    if cfg.schedule != Schedule::Constant {
        return Err(Error::new(format!(
            "`{name}` has no learning rate to schedule: remove the schedule"
        )));
    }
    Ok(())
}

/// Runs the full-batch method of the run's config until a stop rule
/// holds, and reports (with the gradient norm at the final parameters).
pub(super) fn train(
    c: &Compiled,
    mut run: Run<'_>,
    mode: Mode,
    observer: &mut dyn Observer,
    notes: Vec<String>,
    step0: u64,
) -> Result<Report, Error> {
    let mut history = Vec::new();
    let (stop, norm) = steps(c, &mut run, mode, observer, &mut history)?;
    let mut report = run.finish(stop, history, notes, step0)?;
    report.grad_norm = Some(norm);
    Ok(report)
}

/// The steps of [`train`]: the run's parameters are left at the last point.
fn steps(
    c: &Compiled,
    run: &mut Run<'_>,
    mode: Mode,
    observer: &mut dyn Observer,
    history: &mut Vec<EpochRecord>,
) -> Result<(Stop, f64), Error> {
    let cfg = run.cfg;
    let x0 = flatten(&run.params);
    let mut m = method(c, &cfg.optimizer, mode, &run.params)?;
    let mut p = Problem::new(run);
    let mut at = p.eval(&x0)?;
    if !at.is_finite() {
        let message = if at.f.is_finite() {
            "the gradient is not finite at the starting point".to_string()
        } else {
            format!("the loss is {} at the starting point", at.f)
        };
        let step = p.run.step + 1;
        return Ok((
            Stop::Fault {
                step,
                message,
                origin: None,
            },
            f64::NAN,
        ));
    }
    let stop = loop {
        let grad_norm = norm(&at.g);
        let run = &mut *p.run;
        if cfg.grad_tol.is_some_and(|tol| grad_norm < tol) {
            break Stop::GradTol;
        }
        if cfg.loss_tol.is_some_and(|tol| at.f < tol) {
            break Stop::LossTol;
        }
        if let Some(stop) = run.limit_reached() {
            break stop;
        }
        if run.stop_flag.is_some_and(|s| s.load(Ordering::Relaxed)) {
            break Stop::Interrupted;
        }
        observer.step(&StepEvent {
            step: run.step + 1,
            epoch: run.epoch + 1,
            params: &run.params,
            loss: at.f,
            grad_norm,
            lr: 1.0,
        });
        let Some(next) = m.step(&mut p, &at)? else {
            break Stop::NoProgress;
        };
        let run = &mut *p.run;
        run.step += 1;
        run.epoch += 1;
        let record = EpochRecord {
            epoch: run.epoch,
            step: run.step,
            loss: at.f,
            metrics: at.metrics.clone(),
            validation: None,
            grad_norm,
            lr: 1.0,
            complete: true,
            elapsed: run.start.elapsed(),
        };
        observer.epoch(&record);
        history.push(record);
        let small = cfg
            .rel_tol
            .is_some_and(|tol| (at.f - next.f).abs() <= tol * at.f.abs().max(next.f.abs()));
        unflatten(&next.x, &mut run.params);
        at = next;
        if small {
            break Stop::RelTol;
        }
    };
    Ok((stop, norm(&at.g)))
}
