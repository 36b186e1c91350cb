//! The update rules of [`Optimizer`] and the learning-rate schedules of
//! [`Schedule`], exactly as documented there (PyTorch's conventions: Adam
//! with bias correction and eps outside the square root; AdamW decays the
//! parameters by `lr * weight_decay` before the Adam step).
//!
//! The state is two buffers per parameter, allocated once; a step allocates
//! nothing.

use crate::backend::kernel::{self, adam::AdamStep};
use crate::shape::Tensor;
use crate::types::train::{Optimizer, Schedule};

/// The learning rate at step `t` (0 for the first update) of a run of
/// `total` steps (used by `cosine` without `steps`).
pub fn learning_rate(base: f64, schedule: &Schedule, t: u64, total: u64) -> f64 {
    match *schedule {
        Schedule::Constant => base,
        Schedule::Step { every, gamma } => base * gamma.powf((t / every) as f64),
        Schedule::Exponential { gamma } => base * gamma.powf(t as f64),
        Schedule::Cosine { steps, min_lr } => {
            let n = steps.unwrap_or(total).max(1);
            if t >= n {
                min_lr
            } else {
                let c = (std::f64::consts::PI * t as f64 / n as f64).cos();
                min_lr + (base - min_lr) * (1.0 + c) / 2.0
            }
        }
    }
}

/// The optimizer with its learning rate replaced.
pub fn with_lr(o: &Optimizer, new: f64) -> Optimizer {
    let mut o = o.clone();
    match &mut o {
        Optimizer::Sgd { lr }
        | Optimizer::Momentum { lr, .. }
        | Optimizer::Nesterov { lr, .. }
        | Optimizer::Adagrad { lr, .. }
        | Optimizer::RmsProp { lr, .. }
        | Optimizer::AdaDelta { lr, .. }
        | Optimizer::Adam { lr, .. }
        | Optimizer::AdamW { lr, .. } => *lr = new,
        // No learning rate: the line search or the damping sets the step.
        Optimizer::Newton { .. }
        | Optimizer::Lbfgs { .. }
        | Optimizer::LevenbergMarquardt { .. }
        | Optimizer::GaussNewton => {}
    }
    o
}

/// The names of an optimizer's state buffers, in the order of
/// [`State::buffers`]: what a checkpoint stores.
pub fn buffer_names(o: &Optimizer) -> &'static [&'static str] {
    match o {
        Optimizer::Sgd { .. } => &[],
        Optimizer::Momentum { .. } | Optimizer::Nesterov { .. } => &["velocity"],
        Optimizer::Adagrad { .. } | Optimizer::RmsProp { .. } => &["square_avg"],
        Optimizer::AdaDelta { .. } => &["square_avg", "delta_avg"],
        Optimizer::Adam { .. } | Optimizer::AdamW { .. } => &["exp_avg", "exp_avg_sq"],
        // Their state lives in their own loops, for one run.
        Optimizer::Newton { .. }
        | Optimizer::Lbfgs { .. }
        | Optimizer::LevenbergMarquardt { .. }
        | Optimizer::GaussNewton => &[],
    }
}

/// An optimizer and its state.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    pub optimizer: Optimizer,
    /// Updates done so far (Adam's bias correction counts them from 1).
    pub t: u64,
    /// Per state buffer (see [`buffer_names`]), one vector per parameter.
    pub buffers: Vec<Vec<Vec<f64>>>,
}

impl State {
    /// Fresh state (zeros) for parameters of these sizes.
    pub fn new(optimizer: &Optimizer, sizes: &[usize]) -> State {
        let buffers = buffer_names(optimizer)
            .iter()
            .map(|_| sizes.iter().map(|&n| vec![0.0; n]).collect())
            .collect();
        State {
            optimizer: optimizer.clone(),
            t: 0,
            buffers,
        }
    }

    /// One update of every parameter with the learning rate `lr` (the
    /// schedule already applied) and the mean gradients `grads`.
    pub fn step(&mut self, lr: f64, params: &mut [Tensor], grads: &[Vec<f64>]) {
        self.t += 1;
        let t = self.t;
        let (mut a, mut b) = match &mut self.buffers[..] {
            [] => (None, None),
            [a] => (Some(a), None),
            [a, b, ..] => (Some(a), Some(b)),
        };
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = &mut p.data[..];
            let a = a.as_mut().map(|a| &mut a[i][..]);
            let b = b.as_mut().map(|b| &mut b[i][..]);
            update(&self.optimizer, lr, t, p, g, a, b);
        }
    }
}

/// One optimizer update of one parameter `p` with gradient `g`; `a` and `b`
/// are its state buffers (as many as [`buffer_names`] has).
fn update(
    o: &Optimizer,
    lr: f64,
    t: u64,
    p: &mut [f64],
    g: &[f64],
    a: Option<&mut [f64]>,
    b: Option<&mut [f64]>,
) {
    const BUF: &str = "the state has a buffer per parameter";
    match *o {
        Optimizer::Sgd { .. } => {
            for (p, g) in p.iter_mut().zip(g) {
                *p -= lr * g;
            }
        }
        Optimizer::Momentum { beta, .. } => {
            let v = a.expect(BUF);
            for ((p, g), v) in p.iter_mut().zip(g).zip(v) {
                *v = beta * *v + g;
                *p -= lr * *v;
            }
        }
        Optimizer::Nesterov { beta, .. } => {
            let v = a.expect(BUF);
            for ((p, g), v) in p.iter_mut().zip(g).zip(v) {
                *v = beta * *v + g;
                *p -= lr * (g + beta * *v);
            }
        }
        Optimizer::Adagrad { eps, .. } => {
            let s = a.expect(BUF);
            for ((p, g), s) in p.iter_mut().zip(g).zip(s) {
                *s += g * g;
                *p -= lr * g / (s.sqrt() + eps);
            }
        }
        Optimizer::RmsProp { rho, eps, .. } => {
            let s = a.expect(BUF);
            for ((p, g), s) in p.iter_mut().zip(g).zip(s) {
                *s = rho * *s + (1.0 - rho) * g * g;
                *p -= lr * g / (s.sqrt() + eps);
            }
        }
        Optimizer::AdaDelta { rho, eps, .. } => {
            let s = a.expect(BUF);
            let u = b.expect(BUF);
            for (((p, g), s), u) in p.iter_mut().zip(g).zip(s).zip(u) {
                *s = rho * *s + (1.0 - rho) * g * g;
                let d = (*u + eps).sqrt() / (*s + eps).sqrt() * g;
                *u = rho * *u + (1.0 - rho) * d * d;
                *p -= lr * d;
            }
        }
        Optimizer::Adam {
            beta1, beta2, eps, ..
        } => adam(
            lr,
            t,
            [beta1, beta2, eps, 0.0],
            p,
            g,
            a.expect(BUF),
            b.expect(BUF),
        ),
        Optimizer::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
            ..
        } => adam(
            lr,
            t,
            [beta1, beta2, eps, weight_decay],
            p,
            g,
            a.expect(BUF),
            b.expect(BUF),
        ),
        // The full-batch methods run their own loops (`runtime::newton`,
        // `lbfgs`, `least_squares`), never this update.
        Optimizer::Newton { .. }
        | Optimizer::Lbfgs { .. }
        | Optimizer::LevenbergMarquardt { .. }
        | Optimizer::GaussNewton => {}
    }
}

/// Adam's update (AdamW's with a `weight_decay`, applied to each element
/// before its Adam step, in the same loop); `m` and `v` are the first and
/// second moment estimates. The loop is the kernel's
/// ([`crate::backend::kernel::adam`]), compiled for the CPU's widest
/// vectors with the same bits on every path.
fn adam(
    lr: f64,
    t: u64,
    [beta1, beta2, eps, weight_decay]: [f64; 4],
    p: &mut [f64],
    g: &[f64],
    m: &mut [f64],
    v: &mut [f64],
) {
    let step = AdamStep {
        beta1,
        beta2,
        eps,
        weight_decay,
        lr,
        c1: 1.0 - beta1.powf(t as f64),
        c2: 1.0 - beta2.powf(t as f64),
    };
    kernel::adam::adam(&step, p, g, m, v);
}
