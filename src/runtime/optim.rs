//! The update rules of [`Optimizer`] and the learning-rate schedules of
//! [`Schedule`], exactly as documented there (PyTorch's conventions: Adam
//! with bias correction and eps outside the square root; AdamW decays the
//! parameters by `lr * weight_decay` before the Adam step).
//!
//! The state is two buffers per parameter, allocated once; a step allocates
//! nothing.

use rayon::prelude::*;

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
        self.step_on(None, lr, params, grads);
    }

    /// [`Self::step`], a large parameter's elements in blocks on the
    /// threads of `pool` (when called from one of them): every element's
    /// update is its own, so the blocks give the same bits in any order.
    pub fn step_on(
        &mut self,
        pool: Option<&rayon::ThreadPool>,
        lr: f64,
        params: &mut [Tensor],
        grads: &[Vec<f64>],
    ) {
        self.t += 1;
        let t = self.t;
        let (mut a, mut b) = match &mut self.buffers[..] {
            [] => (None, None),
            [a] => (Some(a), None),
            [a, b, ..] => (Some(a), Some(b)),
        };
        let o = &self.optimizer;
        for (i, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let p = &mut p.data[..];
            let a = a.as_mut().map(|a| &mut a[i][..]);
            let b = b.as_mut().map(|b| &mut b[i][..]);
            match pool {
                Some(pool) if p.len() >= PARALLEL_UPDATE => pool.install(|| {
                    let pg = p
                        .par_chunks_mut(UPDATE_BLOCK)
                        .zip(g.par_chunks(UPDATE_BLOCK));
                    match (a, b) {
                        (None, _) => pg.for_each(|(p, g)| update(o, lr, t, p, g, None, None)),
                        (Some(a), None) => pg
                            .zip(a.par_chunks_mut(UPDATE_BLOCK))
                            .for_each(|((p, g), a)| update(o, lr, t, p, g, Some(a), None)),
                        (Some(a), Some(b)) => pg
                            .zip(a.par_chunks_mut(UPDATE_BLOCK))
                            .zip(b.par_chunks_mut(UPDATE_BLOCK))
                            .for_each(|(((p, g), a), b)| {
                                update(o, lr, t, p, g, Some(a), Some(b));
                            }),
                    }
                }),
                _ => update(o, lr, t, p, g, a, b),
            }
        }
    }
}

/// The fewest elements of a parameter whose update [`State::step_on`]
/// shares between threads (a block is a few microseconds of work: less is
/// not worth handing over).
const PARALLEL_UPDATE: usize = 1 << 16;

/// The elements of a block of a shared update.
const UPDATE_BLOCK: usize = 1 << 14;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::Shape;

    /// Every first-order optimizer gives the same bits with a large
    /// parameter's update shared between threads as on one thread, over
    /// several steps (the state buffers carried), with a small parameter
    /// alongside (updated on the calling thread either way).
    #[test]
    fn an_update_shared_between_threads_has_the_bits_of_one_thread() {
        let optimizers = [
            Optimizer::Sgd { lr: 0.1 },
            Optimizer::Momentum { lr: 0.1, beta: 0.9 },
            Optimizer::Nesterov { lr: 0.1, beta: 0.9 },
            Optimizer::Adagrad {
                lr: 0.1,
                eps: 1e-10,
            },
            Optimizer::RmsProp {
                lr: 0.01,
                rho: 0.99,
                eps: 1e-8,
            },
            Optimizer::AdaDelta {
                lr: 1.0,
                rho: 0.9,
                eps: 1e-6,
            },
            Optimizer::Adam {
                lr: 0.001,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            Optimizer::AdamW {
                lr: 0.001,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.01,
            },
        ];
        let sizes = [3 * PARALLEL_UPDATE + 17, 5];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        // Values of every sign and size, from a fixed sequence.
        let numbers = |n: usize, salt: u64| -> Vec<f64> {
            (0..n as u64)
                .map(|i| {
                    let h = (i ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
                    (h as f64 / (1u64 << 53) as f64 - 0.5) * 4.0
                })
                .collect()
        };
        for o in &optimizers {
            let params: Vec<Tensor> = sizes
                .iter()
                .map(|&n| Tensor::new(Shape::vector(n), numbers(n, 1)))
                .collect();
            let (mut alone, mut shared) = (params.clone(), params);
            let (mut s1, mut s2) = (State::new(o, &sizes), State::new(o, &sizes));
            for step in 0..3 {
                let grads: Vec<Vec<f64>> = sizes.iter().map(|&n| numbers(n, 7 + step)).collect();
                s1.step(0.5, &mut alone, &grads);
                pool.install(|| s2.step_on(Some(&pool), 0.5, &mut shared, &grads));
            }
            for (a, b) in alone.iter().zip(&shared) {
                let bits = |t: &Tensor| t.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert!(bits(a) == bits(b), "{o:?}");
            }
            assert_ne!(alone[0].data, numbers(sizes[0], 1), "{o:?} moved nothing");
        }
    }
}
