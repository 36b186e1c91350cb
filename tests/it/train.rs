//! The training runtime: every example reaches its expected outcome; every
//! optimizer follows a hand-computed update sequence; schedules, batch modes
//! and stop rules; faults, interruption, checkpoints and resumption; data
//! errors located before training; the three ways of running agree bit for
//! bit; the hot loop allocates nothing; and the `gradc` binary end to end.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gradc::diagnostic::Location;
use gradc::runtime::engine::{train_program, Engine};
use gradc::runtime::optim::{learning_rate, with_lr, State};
use gradc::runtime::shards::Threads;
use gradc::runtime::{
    self, checkpoint, Error, Mode, Observer, Options, Plan, Report, StepEvent, Stop,
};
use gradc::shape::Tensor;
use gradc::types::train::{Batch, Optimizer, Schedule, TrainConfig};
use gradc::Compiled;

use crate::common::{compile, gradc, root, temp_dir};

// ---------------------------------------------------------------------------
// Helpers

/// An example, its train block, and the options to run it from its folder.
fn example(name: &str) -> (Compiled, TrainConfig, Options) {
    let path = root().join("examples").join(name);
    let src = std::fs::read_to_string(&path).unwrap();
    let c = compile(&src);
    let cfg = c.typed.train.clone().unwrap_or_default();
    let opts = Options {
        base_dir: root().join("examples"),
        ..Options::default()
    };
    (c, cfg, opts)
}

fn train(c: &Compiled, cfg: &TrainConfig, opts: &Options) -> Report {
    runtime::train(c, cfg, opts, &mut ()).unwrap_or_else(|e| panic!("{e}"))
}

fn metric(r: &Report, name: &str) -> f64 {
    r.train
        .metrics
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
        .1
}

/// Records every step's iterate (the parameters the gradient was taken at),
/// loss and learning rate.
#[derive(Default)]
struct Recorder {
    plan: Option<Plan>,
    iterates: Vec<Vec<Tensor>>,
    losses: Vec<f64>,
    lrs: Vec<f64>,
    epochs: Vec<runtime::EpochRecord>,
    /// Set this flag at the given step.
    stop_at: Option<(u64, Arc<AtomicBool>)>,
}

impl Observer for Recorder {
    fn start(&mut self, plan: &Plan) {
        self.plan = Some(plan.clone());
    }
    fn step(&mut self, e: &StepEvent<'_>) {
        self.iterates.push(e.params.to_vec());
        self.losses.push(e.loss);
        self.lrs.push(e.lr);
        if let Some((at, flag)) = &self.stop_at {
            if e.step == *at {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }
    fn epoch(&mut self, r: &runtime::EpochRecord) {
        self.epochs.push(r.clone());
    }
}

/// A scalar parameter's iterates, then its final value.
fn scalar_path(rec: &Recorder, report: &Report) -> Vec<f64> {
    let mut xs: Vec<f64> = rec.iterates.iter().map(|p| p[0].item()).collect();
    xs.push(report.params[0].item());
    xs
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        let tol = 1e-12 * w.abs().max(1.0);
        assert!((g - w).abs() <= tol, "{what}: got {got:?}, want {want:?}");
    }
}

// ---------------------------------------------------------------------------
// The examples

#[test]
fn quadratic_with_lr_1_oscillates() {
    let (c, cfg, opts) = example("quadratic.grad");
    let mut rec = Recorder::default();
    let r = runtime::train(&c, &cfg, &opts, &mut rec).unwrap();
    // x <- x - 1.0 * 2x = -x: the step overshoots to the mirror point.
    assert_eq!(scalar_path(&rec, &r), [-3.0, 3.0, -3.0, 3.0, -3.0]);
    assert_eq!(rec.losses, [9.0; 4]);
    assert_eq!((r.steps, &r.stop), (4, &Stop::Steps));
}

#[test]
fn quadratic_with_lr_0_1_converges() {
    let (c, mut cfg, opts) = example("quadratic.grad");
    cfg.optimizer = Optimizer::Sgd { lr: 0.1 };
    cfg.steps = Some(100);
    let r = train(&c, &cfg, &opts);
    // x_k = -3 * 0.8^k: 6e-10 after 100 steps.
    let x = r.params[0].item();
    assert!(x.abs() < 1e-6, "{x}");
    assert!(r.train.loss < 1e-12, "{}", r.train.loss);
}

#[test]
fn rosenbrock_with_adam_reaches_the_minimum() {
    let (c, cfg, opts) = example("rosenbrock.grad");
    let r = train(&c, &cfg, &opts);
    let p = &r.params[0].data;
    assert!(
        (p[0] - 1.0).abs() < 1e-3 && (p[1] - 1.0).abs() < 1e-3,
        "{p:?}"
    );
}

#[test]
fn linear_regression_recovers_the_coefficients() {
    let (c, cfg, opts) = example("linear.grad");
    let r = train(&c, &cfg, &opts);
    let (w, b) = (&r.params[0].data, r.params[1].item());
    for (got, want) in [(w[0], 2.0), (w[1], -3.0), (b, 0.5)] {
        assert!((got - want).abs() < 0.05, "w = {w:?}, b = {b}");
    }
}

#[test]
fn logistic_regression_stochastic_mini_batch_and_full_batch() {
    let (c, cfg, opts) = example("logistic.grad");
    // gradc train examples/logistic.grad --batch 1 / --batch 32 / --batch full --epochs 100
    for (batch, epochs, steps_per_epoch) in [
        (Batch::Size(1), 20, 200),
        (Batch::Size(32), 20, 7),
        (Batch::Full, 100, 1),
    ] {
        let cfg = TrainConfig {
            batch,
            epochs: Some(epochs),
            ..cfg.clone()
        };
        let mut rec = Recorder::default();
        let r = runtime::train(&c, &cfg, &opts, &mut rec).unwrap();
        let acc = metric(&r, "accuracy");
        assert!(acc > 0.9, "{batch:?}: accuracy {acc}");
        // 200 examples: batches of 32 are 6 full ones and one of 8.
        assert_eq!(rec.plan.unwrap().steps_per_epoch, steps_per_epoch);
        assert_eq!(r.steps, epochs * steps_per_epoch);
    }
}

#[test]
fn three_layer_network_on_moons() {
    let (c, cfg, opts) = example("mlp3.grad");
    let r = train(&c, &cfg, &opts);
    let acc = metric(&r, "accuracy");
    assert!(acc > 0.95, "accuracy {acc}");
}

#[test]
fn softmax_regression_on_iris() {
    let (c, cfg, opts) = example("iris.grad");
    let r = train(&c, &cfg, &opts);
    let acc = metric(&r, "accuracy");
    assert!(acc > 0.95, "accuracy {acc}");
}

#[test]
fn mlp_with_adam_stops_early_at_its_best_epoch() {
    let (c, cfg, opts) = example("mlp.grad");
    let mut rec = Recorder::default();
    let r = runtime::train(&c, &cfg, &opts, &mut rec).unwrap();
    let Stop::EarlyStop { best_epoch } = r.stop else {
        panic!("expected early stopping, got {:?}", r.stop)
    };
    // The restored parameters are those of the epoch with the lowest
    // validation loss, and no later epoch beat it for `patience` epochs.
    let val = |e: &runtime::EpochRecord| e.validation.as_ref().unwrap().0;
    let best = rec.epochs.iter().map(val).fold(f64::INFINITY, f64::min);
    assert_eq!(val(&rec.epochs[best_epoch as usize - 1]), best);
    assert_eq!(r.validation.as_ref().unwrap().loss, best);
    assert_eq!(r.epochs, best_epoch + cfg.patience.unwrap());
    // 150 examples, 30 held out.
    assert_eq!(r.train.examples, 120);
    assert_eq!(r.validation.as_ref().unwrap().examples, 30);
    let acc = r.validation.as_ref().unwrap().metrics[0].1;
    assert!(acc > 0.9, "validation accuracy {acc}");
    assert!(metric(&r, "accuracy") > 0.95);
}

#[test]
fn same_seed_same_bits_other_seed_other_numbers() {
    let (c, cfg, opts) = example("mlp.grad");
    let cfg = TrainConfig {
        epochs: Some(5),
        ..cfg
    };
    let a = train(&c, &cfg, &opts);
    let b = train(&c, &cfg, &opts);
    let bits = |r: &Report| -> Vec<u64> {
        r.params
            .iter()
            .flat_map(|p| p.data.iter().map(|x| x.to_bits()))
            .collect()
    };
    assert_eq!(bits(&a), bits(&b));
    let other = train(&c, &TrainConfig { seed: 6, ..cfg }, &opts);
    assert_ne!(bits(&a), bits(&other));
}

#[test]
fn batched_per_example_and_interpreter_agree_bit_for_bit() {
    let (c, cfg, opts) = example("logistic.grad");
    let cfg = TrainConfig {
        epochs: Some(3),
        validate: Some(0.25),
        ..cfg
    };
    let runs: Vec<Report> = [Mode::Batched, Mode::PerExample, Mode::Interp]
        .into_iter()
        .map(|m| runtime::train_with(&c, &cfg, &opts, m, &mut ()).unwrap())
        .collect();
    for r in &runs[1..] {
        assert_eq!(r.params, runs[0].params);
        assert_eq!(r.history.len(), runs[0].history.len());
        for (x, y) in r.history.iter().zip(&runs[0].history) {
            assert_eq!(x.loss.to_bits(), y.loss.to_bits());
            assert_eq!(x.validation, y.validation);
        }
    }
}

// ---------------------------------------------------------------------------
// Optimizers: f(x) = x^2 from x = 1, so g = 2x; three steps each.

/// The iterates x0..x3 of `optimizer` on x^2 from 1, through the trainer.
fn iterates(optimizer: &str) -> Vec<f64> {
    let src = format!("param x = 1\nloss x^2\ntrain {{ optimizer = {optimizer}  steps = 3 }}\n");
    let c = compile(&src);
    let cfg = c.typed.train.clone().unwrap();
    let mut rec = Recorder::default();
    let r = runtime::train(&c, &cfg, &Options::default(), &mut rec).unwrap();
    scalar_path(&rec, &r)
}

#[test]
fn sgd_steps() {
    // x1 = 1 - 0.1 * 2 = 0.8; x2 = 0.8 - 0.1 * 1.6 = 0.64; x3 = 0.64 - 0.128.
    assert_close(&iterates("sgd(lr = 0.1)"), &[1.0, 0.8, 0.64, 0.512], "sgd");
}

#[test]
fn momentum_steps() {
    // v1 = 2, x1 = 1 - 0.2 = 0.8
    // v2 = 0.9 * 2 + 1.6 = 3.4, x2 = 0.8 - 0.34 = 0.46
    // v3 = 0.9 * 3.4 + 0.92 = 3.98, x3 = 0.46 - 0.398 = 0.062
    let want = [1.0, 0.8, 0.46, 0.062];
    assert_close(
        &iterates("momentum(lr = 0.1, beta = 0.9)"),
        &want,
        "momentum",
    );
}

#[test]
fn nesterov_steps() {
    // v1 = 2, x1 = 1 - 0.1 (2 + 0.9 * 2) = 0.62
    // g = 1.24, v2 = 1.8 + 1.24 = 3.04, x2 = 0.62 - 0.1 (1.24 + 2.736) = 0.2224
    // g = 0.4448, v3 = 2.736 + 0.4448 = 3.1808,
    // x3 = 0.2224 - 0.1 (0.4448 + 2.86272) = -0.108352
    let want = [1.0, 0.62, 0.2224, -0.108352];
    assert_close(&iterates("nesterov(lr = 0.1)"), &want, "nesterov");
}

#[test]
fn adagrad_steps() {
    // s1 = 4, x1 = 1 - 0.1 * 2 / (2 + 1e-10) = 0.900000000005
    // g = 1.80000000001, s2 = 7.240000000036, sqrt = 2.6907248094214316,
    // x2 = 0.900000000005 - 0.1 * 1.80000000001 / 2.6907248095 = 0.8331035268450359
    // g = 1.6662070536900717, s3 = 10.016245945802549, sqrt = 3.1648453273110437,
    // x3 = 0.7804561813568098
    let want = [1.0, 0.900000000005, 0.8331035268450359, 0.7804561813568098];
    assert_close(&iterates("adagrad(lr = 0.1)"), &want, "adagrad");
}

#[test]
fn rmsprop_steps() {
    // s1 = 0.01 * 4 = 0.04, x1 = 1 - 0.01 * 2 / (0.2 + 1e-8) = 0.900000005
    // g = 1.80000001, s2 = 0.99 * 0.04 + 0.01 g^2 = 0.07200000036,
    // x2 = 0.900000005 - 0.01 g / (0.26832815797 + 1e-8) = 0.8329179679700331
    // g = 1.6658359359400663, s3 = 0.09903009401109315, x3 = 0.7799822732436351
    let want = [
        1.0,
        0.9000000049999998,
        0.8329179679700331,
        0.7799822732436351,
    ];
    assert_close(&iterates("rmsprop(lr = 0.01)"), &want, "rmsprop");
}

#[test]
fn adadelta_steps() {
    // s1 = 0.1 * 4 = 0.4, d1 = sqrt(0 + 1e-6) / sqrt(0.4 + 1e-6) * 2
    //    = 0.003162273707328716, u1 = 0.1 d1^2 = 9.999975e-7, x1 = 1 - d1
    // g = 1.9936754525853426, s2 = 0.7574741810241372, d2 = 0.0032395522143656495
    // g = 1.9871963481566113, s3 = 1.0766216955344208, d3 = 0.003289128420247597
    let want = [
        1.0,
        0.9968377262926713,
        0.9935981740783056,
        0.990309045658058,
    ];
    assert_close(&iterates("adadelta"), &want, "adadelta");
}

#[test]
fn adam_steps() {
    // t = 1: m = 0.2, v = 0.004, m^ = 2, v^ = 4, x1 = 1 - 0.1 * 2 / (2 + 1e-8) = 0.9000000005
    // t = 2: g = 1.800000001, m = 0.3600000001, v = 0.0072360000036,
    //        m^ = 1.8947368426315794, v^ = 3.6198099067534253, x2 = 0.8004122286917928
    // t = 3: g = 1.6008244573835855, m^ = 1.786282087927523, v^ = 3.2670669602558866,
    //        x3 = 0.7015862729460303
    let want = [1.0, 0.9000000005, 0.8004122286917928, 0.7015862729460303];
    assert_close(&iterates("adam(lr = 0.1)"), &want, "adam");
}

#[test]
fn adamw_steps() {
    // As Adam, after x <- x - 0.1 * 0.01 * x at every step:
    // x1 = 0.999 - 0.1 * 2 / (2 + 1e-8) = 0.8990000005, ...
    let want = [1.0, 0.8990000005, 0.7985190271685215, 0.6989111831582322];
    assert_close(&iterates("adamw(lr = 0.1)"), &want, "adamw");
}

#[test]
fn optimizer_state_updates_every_parameter_element() {
    // Two elements with different gradients stay independent.
    let mut params = vec![Tensor::new(gradc::shape::Shape::vector(2), vec![1.0, -1.0])];
    let mut s = State::new(&Optimizer::Momentum { lr: 0.1, beta: 0.9 }, &[2]);
    s.step(0.1, &mut params, &[vec![2.0, -4.0]]);
    s.step(0.1, &mut params, &[vec![2.0, -4.0]]);
    // v = 2, then 3.8; x = 1 - 0.2 - 0.38. v = -4, then -7.6; x = -1 + 0.4 + 0.76.
    assert_close(&params[0].data, &[0.42, 0.16], "momentum");
    assert_eq!(s.t, 2);
}

// ---------------------------------------------------------------------------
// Schedules and stop rules

#[test]
fn schedules_per_step() {
    let lr = |s: &Schedule, t| learning_rate(0.1, s, t, 10);
    let step = Schedule::Step {
        every: 2,
        gamma: 0.5,
    };
    assert_close(
        &(0..5).map(|t| lr(&step, t)).collect::<Vec<_>>(),
        &[0.1, 0.1, 0.05, 0.05, 0.025],
        "step",
    );
    let exp = Schedule::Exponential { gamma: 0.9 };
    assert_close(&[lr(&exp, 0), lr(&exp, 2)], &[0.1, 0.081], "exponential");
    // cos(pi t / 10): half way at t = 5, min_lr from t = 10 (the run's length).
    let cos = Schedule::Cosine {
        steps: None,
        min_lr: 0.01,
    };
    assert_close(
        &[lr(&cos, 0), lr(&cos, 5), lr(&cos, 10), lr(&cos, 12)],
        &[0.1, 0.055, 0.01, 0.01],
        "cosine",
    );
    assert_eq!(lr(&Schedule::Constant, 7), 0.1);
}

#[test]
fn the_schedule_advances_once_per_step() {
    let src = "param x = 1\nloss x^2\ntrain { optimizer = sgd(lr = 0.1)  schedule = step(every = 2, gamma = 0.5)  steps = 5 }";
    let c = compile(src);
    let mut rec = Recorder::default();
    runtime::train(
        &c,
        c.typed.train.as_ref().unwrap(),
        &Options::default(),
        &mut rec,
    )
    .unwrap();
    assert_close(&rec.lrs, &[0.1, 0.1, 0.05, 0.05, 0.025], "lr per step");
}

#[test]
fn loss_and_gradient_tolerances_stop_early() {
    let c = compile("param x = -3\nloss x^2\n");
    let cfg = TrainConfig {
        optimizer: Optimizer::Sgd { lr: 0.1 },
        steps: Some(1000),
        loss_tol: Some(1e-4),
        ..TrainConfig::default()
    };
    let r = train(&c, &cfg, &Options::default());
    // The loss at step k is 9 * 0.64^(k - 1): below 1e-4 first at k = 27.
    assert_eq!((r.steps, &r.stop), (27, &Stop::LossTol));
    let cfg = TrainConfig {
        loss_tol: None,
        grad_tol: Some(1e-3),
        ..cfg
    };
    let r = train(&c, &cfg, &Options::default());
    // |g| = 6 * 0.8^(k - 1) < 1e-3 first at k = 40.
    assert_eq!((r.steps, &r.stop), (40, &Stop::GradTol));
}

#[test]
fn a_step_limit_inside_an_epoch_keeps_a_partial_epoch() {
    let (c, cfg, opts) = example("logistic.grad");
    let cfg = TrainConfig {
        epochs: Some(20),
        steps: Some(10),
        ..cfg
    };
    let r = train(&c, &cfg, &opts);
    // 7 steps an epoch: one full epoch, then 3 steps of the second.
    assert_eq!((r.steps, r.epochs, &r.stop), (10, 1, &Stop::Steps));
    assert_eq!(r.history.len(), 2);
    assert!(r.history[0].complete && !r.history[1].complete);
    assert_eq!(r.history[1].step, 10);
}

#[test]
fn without_shuffle_the_order_is_the_file_order() {
    let (c, cfg, opts) = example("linear.grad");
    let cfg = TrainConfig {
        batch: Batch::Size(50),
        epochs: Some(2),
        shuffle: false,
        ..cfg
    };
    let a = train(&c, &cfg, &opts);
    let b = train(&c, &TrainConfig { seed: 99, ..cfg }, &opts);
    // The seed only shuffles here (the initialisers are zeros).
    assert_eq!(a.params, b.params);
}

// ---------------------------------------------------------------------------
// Faults and interruption

fn run_src(src: &str) -> (Recorder, Report) {
    let c = compile(src);
    let mut rec = Recorder::default();
    let cfg = c.typed.train.clone().unwrap_or_default();
    let r = runtime::train(&c, &cfg, &Options::default(), &mut rec).unwrap();
    (rec, r)
}

#[test]
fn a_nan_loss_stops_with_the_last_good_parameters() {
    // x1 = 1 - 2 * (1 / 1) = -1, where log is NaN: the run goes back to
    // x0 = 1, the last point with a finite loss and gradient.
    let (_, r) = run_src("param x = 1\nloss log(x)\ntrain { optimizer = sgd(lr = 2)  steps = 10 }");
    let Stop::Fault {
        step,
        message,
        origin,
    } = &r.stop
    else {
        panic!("{:?}", r.stop)
    };
    assert_eq!(*step, 2);
    assert!(message.contains("loss is NaN"), "{message}");
    // Where the NaN comes from, at the parameters of step 2 (x = -1).
    let text = origin.as_ref().expect("an origin").render(false);
    assert!(
        text.starts_with("<source>:2:6: error: training stopped at step 2: the loss is NaN\n"),
        "{text}"
    );
    assert!(
        text.contains("`log` gives NaN here, in the forward pass"),
        "{text}"
    );
    assert!(text.contains("the operands of `log`: x = -1"), "{text}");
    assert_eq!(r.params[0].item(), 1.0);
    assert_eq!(r.steps, 1);
}

#[test]
fn an_infinite_gradient_names_the_parameter() {
    let (_, r) = run_src("param a = 1\nparam x = 0\nloss a^2 + sqrt(x)\ntrain { steps = 5 }");
    let Stop::Fault {
        step,
        message,
        origin,
    } = &r.stop
    else {
        panic!("{:?}", r.stop)
    };
    assert_eq!(*step, 1);
    assert!(message.contains("`x`"), "{message}");
    let text = origin.as_ref().expect("an origin").render(false);
    assert!(text.starts_with("<source>:3:12: error:"), "{text}");
    assert!(
        text.contains("the chain-rule step through `sqrt`")
            && text.contains("in the backward pass")
            && text.contains("on the way to the gradient of `x`"),
        "{text}"
    );
    assert_eq!((r.params[0].item(), r.params[1].item()), (1.0, 0.0));
}

#[test]
fn an_overflowing_update_is_undone() {
    let (_, r) =
        run_src("param x = 1\nloss 1e300 * x\ntrain { optimizer = sgd(lr = 1e10)  steps = 5 }");
    // The update's fault, not the program's: nothing to trace.
    let Stop::Fault {
        step,
        message,
        origin: None,
    } = &r.stop
    else {
        panic!("{:?}", r.stop)
    };
    assert_eq!(*step, 1);
    assert!(
        message.contains("`x`") && message.contains("undone"),
        "{message}"
    );
    assert_eq!(r.params[0].item(), 1.0);
}

#[test]
fn the_stop_flag_ends_the_run_after_the_current_step() {
    let (c, cfg, mut opts) = example("logistic.grad");
    let flag = Arc::new(AtomicBool::new(false));
    opts.stop = Some(flag.clone());
    let mut rec = Recorder {
        stop_at: Some((3, flag)),
        ..Recorder::default()
    };
    let r = runtime::train(&c, &cfg, &opts, &mut rec).unwrap();
    assert_eq!((r.steps, &r.stop), (3, &Stop::Interrupted));
    assert_eq!(r.checkpoint.step, 3);
}

// ---------------------------------------------------------------------------
// Checkpoints

#[test]
fn resuming_continues_the_run_bit_for_bit() {
    let (c, cfg, opts) = example("mlp3.grad");
    let full = TrainConfig {
        epochs: Some(6),
        ..cfg.clone()
    };
    let straight = train(&c, &full, &opts);

    let dir = temp_dir("resume");
    let path = dir.join("half.safetensors");
    let half = train(
        &c,
        &TrainConfig {
            epochs: Some(3),
            ..cfg
        },
        &opts,
    );
    checkpoint::save(&path, &half.checkpoint).unwrap();
    let decls: Vec<_> = c
        .typed
        .params
        .iter()
        .map(|p| (p.name.clone(), p.shape.clone()))
        .collect();
    let ck = checkpoint::load(&path, &decls).unwrap();
    assert_eq!(ck, half.checkpoint);
    let resumed = train(
        &c,
        &full,
        &Options {
            resume: Some(ck),
            ..opts
        },
    );
    assert!(resumed.notes.is_empty(), "{:?}", resumed.notes);
    assert_eq!(resumed.steps, straight.steps - half.steps);
    assert_eq!(resumed.params, straight.params);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn initial_parameters_start_a_fresh_run() {
    // Momentum from x = 2 (not the initialiser's 1), its velocity at 0: the
    // same iterates as a program whose initialiser is 2.
    let src =
        "param x = 1\nloss x^2\ntrain { optimizer = momentum(lr = 0.1, beta = 0.9)  steps = 3 }";
    let c = compile(src);
    let cfg = c.typed.train.clone().unwrap();
    let opts = Options {
        initial: Some(vec![Tensor::scalar(2.0)]),
        ..Options::default()
    };
    let mut rec = Recorder::default();
    let r = runtime::train(&c, &cfg, &opts, &mut rec).unwrap();
    let from_two = compile(&src.replace("param x = 1", "param x = 2"));
    let mut want = Recorder::default();
    let w = runtime::train(&from_two, &cfg, &Options::default(), &mut want).unwrap();
    assert_eq!(scalar_path(&rec, &r), scalar_path(&want, &w));
    assert_eq!(rec.iterates[0][0].item(), 2.0);
    assert_eq!((r.steps, r.checkpoint.step, r.checkpoint.epoch), (3, 3, 3));
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    // Values that do not fit the program are refused.
    let opts = Options {
        initial: Some(vec![Tensor::zeros(gradc::shape::Shape::vector(2))]),
        ..Options::default()
    };
    let e = runtime::train(&c, &cfg, &opts, &mut ()).unwrap_err();
    assert!(e.to_string().contains("initial parameters"), "{e}");
}

#[test]
fn a_checkpoint_of_another_program_is_refused() {
    let dir = temp_dir("mismatch");
    let path = dir.join("q.safetensors");
    let (c, cfg, opts) = example("quadratic.grad");
    checkpoint::save(&path, &train(&c, &cfg, &opts).checkpoint).unwrap();
    let (other, _, _) = example("logistic.grad");
    let decls: Vec<_> = other
        .typed
        .params
        .iter()
        .map(|p| (p.name.clone(), p.shape.clone()))
        .collect();
    let e = checkpoint::load(&path, &decls).unwrap_err().to_string();
    assert!(e.contains("`x`") && e.contains("does not declare"), "{e}");
    // Same name, another shape.
    let e = checkpoint::load(&path, &[("x".into(), gradc::shape::Shape::vector(2))])
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape []") && e.contains("[2]"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------------------
// Data

const BINARY: &str =
    "input x: [2]\ninput y\nparam w: [2]\nparam b\nloss bce_logits(dot(w, x) + b, y)\n";

fn data_error(src: &str) -> Error {
    let c = compile(src);
    let cfg = c.typed.train.clone().unwrap();
    let opts = Options {
        base_dir: root().join("tests/cases/data"),
        ..Options::default()
    };
    match runtime::train(&c, &cfg, &opts, &mut ()) {
        Ok(_) => panic!("trained on bad data"),
        Err(e) => e,
    }
}

/// Where in a data file the error is, and its message.
fn located(e: &Error) -> (String, &str) {
    match e.location() {
        Some(l @ Location::File { .. }) => (l.to_string(), e.message()),
        _ => panic!("not a data error: {e:?}"),
    }
}

#[test]
fn a_bad_cell_is_located_before_training() {
    let e = data_error(&format!(
        "{BINARY}train {{ data = csv(\"bad_cell.csv\", x = 0..2, y = 2) }}"
    ));
    let (loc, msg) = located(&e);
    assert!(loc.ends_with("bad_cell.csv:3:6"), "{loc}");
    assert!(msg.contains("`abc`") && msg.contains("input `x`"), "{msg}");
    let n = &e.reports[0].notes[0];
    assert!(matches!(n.location, Some(Location::Span { .. })), "{n:?}");
    assert!(n.message.contains("columns 0, 1"), "{}", n.message);
}

#[test]
fn a_short_row_is_located() {
    let e = data_error(&format!(
        "{BINARY}train {{ data = csv(\"short_row.csv\", x = 0..2, y = 2) }}"
    ));
    let (loc, msg) = located(&e);
    assert!(loc.ends_with("short_row.csv:3"), "{loc}");
    assert!(
        msg.contains("2 columns") && msg.contains("column 2"),
        "{msg}"
    );
}

#[test]
fn a_row_with_a_field_too_many_is_located() {
    let dir = std::env::temp_dir().join(format!("gradc-extra-field-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let opts = Options {
        base_dir: dir.clone(),
        ..Options::default()
    };
    let src = "input x\ninput y\nparam w\nloss (w * x - y)^2\n";
    // With a header (named columns), and without one (the first row counts).
    for (mapping, text, against) in [
        (
            "x = \"x\", y = \"y\"",
            "x,y\n1,2\n2,4,999\n3,6\n",
            "the header has 2",
        ),
        (
            "x = 0, y = 1",
            "1,2\n2,4,999\n3,6\n",
            "the first row (line 1) has 2",
        ),
    ] {
        std::fs::write(dir.join("d.csv"), text).unwrap();
        let c = compile(&format!(
            "{src}train {{ data = csv(\"d.csv\", {mapping}) }}"
        ));
        let cfg = c.typed.train.clone().unwrap();
        let e = runtime::train(&c, &cfg, &opts, &mut ()).unwrap_err();
        let (loc, msg) = located(&e);
        let line = if against.contains("header") { 3 } else { 2 };
        assert!(loc.ends_with(&format!("d.csv:{line}")), "{loc}");
        assert!(msg.contains("3 fields") && msg.contains(against), "{msg}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_empty_file_is_an_error_whatever_the_mapping() {
    let dir = std::env::temp_dir().join(format!("gradc-empty-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let opts = Options {
        base_dir: dir.clone(),
        ..Options::default()
    };
    let src = "input x\ninput y\nparam w\nloss (w * x - y)^2\n";
    for mapping in ["x = \"x\", y = \"y\"", "x = 0, y = 1"] {
        for text in ["", "\n", "   \n", "\r\n"] {
            std::fs::write(dir.join("d.csv"), text).unwrap();
            let c = compile(&format!(
                "{src}train {{ data = csv(\"d.csv\", {mapping}) }}"
            ));
            let cfg = c.typed.train.clone().unwrap();
            let e = runtime::train(&c, &cfg, &opts, &mut ()).unwrap_err();
            let (loc, msg) = located(&e);
            assert!(loc.ends_with("d.csv"), "{mapping} {text:?}: {loc}");
            assert_eq!(msg, "no examples: the file is empty", "{mapping} {text:?}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_file_points_at_its_path() {
    let e = data_error(&format!(
        "{BINARY}train {{ data = csv(\"nowhere.csv\", x = 0..2, y = 2) }}"
    ));
    let (loc, msg) = located(&e);
    assert!(loc.ends_with("nowhere.csv"), "{loc}");
    assert!(msg.contains("no such file"), "{msg}");
}

#[test]
fn a_class_out_of_range_is_found_before_training() {
    let c = compile(
        "input x: [4]\ninput c\nparam W: [3, 4]\nloss cross_entropy(W @ x, c)\n\
         train { data = csv(\"classes.csv\", x = 0..4, c = 4) }",
    );
    let opts = Options {
        base_dir: root().join("tests/cases/data"),
        ..Options::default()
    };
    // At the call in the program; the example's line of the file in a note.
    for mode in [Mode::Batched, Mode::PerExample, Mode::Interp] {
        let cfg = c.typed.train.as_ref().unwrap();
        let e = runtime::train_with(&c, cfg, &opts, mode, &mut ()).unwrap_err();
        let text = e.render(false);
        assert!(
            text.starts_with("<source>:4:6: error: class index 3 is out of range for 3 classes"),
            "{text}"
        );
        assert!(
            text.contains("classes.csv:4: in the example on this line"),
            "{text}"
        );
    }
}

#[test]
fn unknown_column_names_are_suggested() {
    let e = data_error(&format!(
        "{BINARY}train {{ data = csv(\"named.csv\", x = [\"first\", \"secnd\"], y = \"label\") }}"
    ));
    let (_, msg) = located(&e);
    assert!(msg.contains("`secnd`") && msg.contains("`second`"), "{msg}");
}

#[test]
fn headers_are_detected_and_names_read() {
    let opts = Options {
        base_dir: root().join("tests/cases/data"),
        ..Options::default()
    };
    for data in [
        "csv(\"no_header.csv\", x = 0..2, y = 2)",
        "csv(\"named.csv\", x = [\"first\", \"second\"], y = \"label\")",
    ] {
        let c = compile(&format!("{BINARY}train {{ data = {data}  steps = 1 }}"));
        let r = train(&c, c.typed.train.as_ref().unwrap(), &opts);
        let n = if data.contains("named") { 2 } else { 3 };
        assert_eq!(r.train.examples, n, "{data}");
    }
}

#[test]
fn a_model_with_inputs_needs_data() {
    let c = compile(BINARY);
    match runtime::train(&c, &TrainConfig::default(), &Options::default(), &mut ()) {
        Err(e) if matches!(e.location(), Some(Location::Span { .. })) => {
            assert!(e.message().contains("no training data"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The hot loop allocates nothing

/// The system allocator, counting allocations per thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a const-initialised thread-local without a destructor, which
// does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

#[test]
fn a_training_step_allocates_nothing() {
    let (c, cfg, _) = example("mlp.grad");
    let data = runtime::load_data(
        &c,
        None,
        &root().join("examples"),
        &[true, true],
        &mut |_| {},
    )
    .unwrap()
    .unwrap();
    let mut params = c.initial_params(cfg.seed);
    let sizes: Vec<usize> = params.iter().map(|p| p.data.len()).collect();
    let mut state = State::new(&cfg.optimizer, &sizes);
    let g = train_program(&c).unwrap();
    use gradc::dtype::Dtype;
    for (mode, dtype) in [
        (Mode::Batched, Dtype::F64),
        (Mode::PerExample, Dtype::F64),
        (Mode::Batched, Dtype::F32),
    ] {
        let mut e = Engine::with(&g, mode, dtype, Threads::default()).unwrap();
        let rows: Vec<usize> = (0..16).collect();
        e.run(&params, Some(&data), &rows).unwrap();
        let before = allocations();
        for start in [16, 32, 48] {
            let rows = &[start, start + 3, start + 9, start + 1][..];
            e.run(&params, Some(&data), rows).unwrap();
            state.step(0.01, &mut params, e.grads());
        }
        assert_eq!(allocations() - before, 0, "{mode:?} {dtype}");
    }
}

/// At 2 and 3 threads too, with batches of several shards (the first
/// batch of a size makes the shards' buffers), the steps run on the pool as
/// a training run's are: nothing is allocated on its threads, more steps
/// than a block of rayon's queue of jobs holds (63).
#[test]
fn a_training_step_on_several_threads_allocates_nothing() {
    let (c, cfg, _) = example("mlp.grad");
    let data = runtime::load_data(
        &c,
        None,
        &root().join("examples"),
        &[true, true],
        &mut |_| {},
    )
    .unwrap()
    .unwrap();
    let g = train_program(&c).unwrap();
    for threads in [2, 3] {
        for mode in [Mode::Batched, Mode::PerExample] {
            let mut params = c.initial_params(cfg.seed);
            let sizes: Vec<usize> = params.iter().map(|p| p.data.len()).collect();
            let mut state = State::new(&cfg.optimizer, &sizes);
            let t = Threads::new(threads).unwrap().eager();
            let mut e = Engine::with(&g, mode, gradc::dtype::Dtype::F64, t.clone()).unwrap();
            let rows: Vec<usize> = (0..100).map(|i| (i * 7) % 150).collect();
            let pool = t.pool().expect("a pool of several threads");
            pool.install(|| e.run(&params, Some(&data), &rows).unwrap());
            let workers = || pool.broadcast(|_| allocations()).iter().sum::<u64>();
            let before = workers();
            pool.install(|| {
                for step in 0..130 {
                    let start = step % 30;
                    e.run(&params, Some(&data), &rows[start..start + 64])
                        .unwrap();
                    state.step(0.01, &mut params, e.grads());
                }
            });
            assert_eq!(workers() - before, 0, "{mode:?}, {threads} threads");
        }
    }
}

#[test]
fn the_training_loop_allocates_per_epoch_not_per_step() {
    let (c, cfg, opts) = example("logistic.grad");
    let run = |epochs| {
        let cfg = TrainConfig {
            batch: Batch::Size(1),
            epochs: Some(epochs),
            ..cfg.clone()
        };
        let before = allocations();
        train(&c, &cfg, &opts);
        allocations() - before
    };
    // 200 steps an epoch; an epoch's record costs a few allocations. The
    // first run builds the gradient program, which `c` then keeps.
    run(1);
    let (one, three) = (run(1), run(3));
    assert!(three - one < 20, "{one} then {three} allocations");
}

// ---------------------------------------------------------------------------
// The binary

#[test]
fn gradc_train_prints_the_iterates_of_a_short_run() {
    let (ok, out, err) = gradc(&["train", "examples/quadratic.grad"]);
    assert!(ok, "{err}");
    let xs: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("step "))
        .filter_map(|l| l.split("x = ").nth(1))
        .collect();
    assert_eq!(xs, ["-3", "3", "-3", "3"], "{out}");
    assert!(
        out.contains("trained 4 steps") && out.contains("x = -3"),
        "{out}"
    );
}

#[test]
fn gradc_train_save_eval_predict() {
    let dir = temp_dir("cli");
    let w = dir.join("w.safetensors");
    let (w, log, plot) = (
        w.to_str().unwrap(),
        dir.join("log.csv"),
        dir.join("loss.png"),
    );
    let (ok, out, err) = gradc(&[
        "train",
        "examples/logistic.grad",
        "--batch",
        "full",
        "--epochs",
        "100",
        "--lr",
        "0.5",
        "--save",
        w,
        "--log",
        log.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("trained 100 steps (100 epochs, full batch of 200)"),
        "{out}"
    );
    assert!(out.contains("weights saved to"), "{out}");
    let history = std::fs::read_to_string(&log).unwrap();
    assert!(history.starts_with("epoch,step,loss,accuracy,grad_norm,lr,seconds\n"));
    assert_eq!(history.lines().count(), 101);
    assert!(std::fs::read(&plot).unwrap().starts_with(b"\x89PNG"));

    let (ok, out, err) = gradc(&["eval", "examples/logistic.grad", "--weights", w, "--data"]);
    assert!(ok, "{err}");
    let acc: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("metric accuracy = "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(acc > 0.9 && out.contains("examples 200"), "{out}");

    // Prediction needs only the columns the outputs read: x, not the label.
    let features = dir.join("features.csv");
    std::fs::write(&features, "x1,x2\n-2,-2\n2,2\n").unwrap();
    let (ok, out, err) = gradc(&[
        "predict",
        "examples/logistic.grad",
        "--weights",
        w,
        "--data",
        features.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "p");
    let p: Vec<f64> = lines[1..].iter().map(|l| l.parse().unwrap()).collect();
    assert!(p.len() == 2 && p[0] < 0.1 && p[1] > 0.9, "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn gradc_eval_with_weights_and_no_data_uses_the_train_blocks_data() {
    // As `gradc predict` does: not the zero inputs of before.
    let dir = temp_dir("evaldefault");
    let w = dir.join("w.safetensors");
    let w = w.to_str().unwrap();
    let (ok, _, err) = gradc(&["train", "examples/logistic.grad", "--save", w, "--quiet"]);
    assert!(ok, "{err}");
    let (ok, default, err) = gradc(&["eval", "examples/logistic.grad", "--weights", w]);
    assert!(ok, "{err}");
    assert_eq!(err, "", "no note when the train block has data");
    let (ok, named, err) = gradc(&[
        "eval",
        "examples/logistic.grad",
        "--weights",
        w,
        "--data",
        "examples/data/blobs.csv",
    ]);
    assert!(ok, "{err}");
    assert_eq!(default, named);
    assert!(default.contains("examples 200"), "{default}");
    let acc: f64 = default
        .lines()
        .find_map(|l| l.strip_prefix("metric accuracy = "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(acc > 0.9, "{default}");
    let json = |args: &[&str]| {
        let (ok, out, err) = gradc(args);
        assert!(ok, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let base = ["eval", "examples/logistic.grad", "--json", "--weights", w];
    assert_eq!(
        json(&base),
        json(&[&base[..], &["--data", "examples/data/blobs.csv"]].concat())
    );

    // --input still asks for one point.
    let (ok, out, err) = gradc(&[
        "eval",
        "examples/logistic.grad",
        "--weights",
        w,
        "--input",
        "x=2,2",
        "--input",
        "y=1",
    ]);
    assert!(
        ok && out.contains("output p = ") && !out.contains("examples"),
        "{out}{err}"
    );

    // A program with inputs but no data in its train block: one point, and
    // a note saying so.
    let (ok, _, err) = gradc(&["train", "examples/quadratic.grad", "--save", w, "--quiet"]);
    assert!(ok, "{err}");
    let program = dir.join("nodata.grad");
    std::fs::write(&program, "param x = 0\ninput y\nloss (x - y)^2\n").unwrap();
    let (ok, out, err) = gradc(&["eval", program.to_str().unwrap(), "--weights", w]);
    assert!(ok, "{err}");
    assert_eq!(out, "loss 9\n");
    assert!(
        err.contains(
            "note: the train block names no data and --data gives none: evaluating at one point"
        ),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn gradc_train_summary_labels_its_loss() {
    let (ok, out, err) = gradc(&["train", "examples/logistic.grad", "--quiet"]);
    assert!(ok, "{err}");
    let line = out.lines().nth(1).unwrap_or_default();
    assert!(
        line.starts_with("training data (200 examples) at the final parameters: loss "),
        "{out}"
    );
    let (ok, out, err) = gradc(&[
        "train",
        "examples/logistic.grad",
        "--validate",
        "0.2",
        "--quiet",
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[1].starts_with("training data (160 examples) at the final parameters:  loss ")
            && lines[2].starts_with("validation data (40 examples) at the final parameters: loss "),
        "{out}"
    );
    let (ok, out, err) = gradc(&["train", "examples/quadratic.grad", "--quiet"]);
    assert!(ok, "{err}");
    assert!(
        out.lines().any(|l| l == "at the final parameters: loss 9"),
        "{out}"
    );
}

#[test]
fn gradc_train_reports_bad_data_with_its_location() {
    let dir = temp_dir("badcli");
    let bad = root().join("tests/cases/data/bad_cell.csv");
    let (ok, _, err) = gradc(&[
        "train",
        "examples/logistic.grad",
        "--data",
        bad.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("bad_cell.csv:3:6: error: `abc` is not a finite number"),
        "{err}"
    );
    assert!(err.contains("note: examples/logistic.grad:"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `gradc train examples/linear.grad` with `option path`: it fails at once,
/// before compiling or training, with the message, and exit code 1.
fn refused_before_training(option: &str, path: &str, message: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_gradc"))
        .args(["train", "examples/linear.grad", option, path])
        .current_dir(root())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(stderr, format!("error: {option}: {message}\n"), "{stdout}");
    assert_eq!(stdout, "", "no training output");
}

#[test]
fn gradc_train_refuses_a_save_path_in_a_missing_directory_before_training() {
    refused_before_training(
        "--save",
        "/no/such/dir/w.safetensors",
        "cannot write `/no/such/dir/w.safetensors`: the directory `/no/such/dir` does not exist",
    );
    refused_before_training(
        "--save",
        "examples",
        "cannot write `examples`: it is a directory",
    );
}

#[test]
fn gradc_train_refuses_a_log_path_in_a_missing_directory_before_training() {
    refused_before_training(
        "--log",
        "/no/such/dir/history.csv",
        "cannot write `/no/such/dir/history.csv`: the directory `/no/such/dir` does not exist",
    );
    refused_before_training(
        "--log",
        "README.md/history.csv",
        "cannot write `README.md/history.csv`: `README.md` is not a directory",
    );
}

#[test]
fn gradc_train_refuses_a_plot_path_in_a_missing_directory_before_training() {
    refused_before_training(
        "--plot",
        "/no/such/dir/loss.svg",
        "cannot write `/no/such/dir/loss.svg`: the directory `/no/such/dir` does not exist",
    );
    let jpg = temp_dir("plotjpg").join("loss.jpg");
    refused_before_training(
        "--plot",
        jpg.to_str().unwrap(),
        &format!(
            "cannot plot to `{}`: the file name must end in .svg or .png",
            jpg.display()
        ),
    );
    std::fs::remove_dir_all(jpg.parent().unwrap()).unwrap();
}

#[test]
fn gradc_train_prints_its_summary_when_the_plot_cannot_be_written_at_the_end() {
    use std::io::{BufRead, BufReader};
    // The directory is there at the start and removed during the run, which
    // is then interrupted: the summary and the parameters still come first.
    let dir = temp_dir("plotgone");
    let plot = dir.join("loss.png");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gradc"))
        .args(["train", "examples/linear.grad", "--epochs", "100000000"])
        .arg("--plot")
        .arg(&plot)
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.starts_with("epoch 1/"), "{first}");
    std::fs::remove_dir_all(&dir).unwrap();
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{rest}");
    assert!(
        stdout.starts_with("trained ")
            && stdout.contains("interrupted")
            && stdout.contains("w = ["),
        "{stdout}"
    );
    assert!(
        rest.contains(&format!(
            "error: --plot: cannot write `{}`: no such file\n",
            plot.display()
        )),
        "{rest}"
    );
    assert!(
        rest.contains("error: training interrupted after step"),
        "{rest}"
    );
    assert!(!rest.contains("Error("), "no Debug of an error: {rest}");
}

#[test]
fn gradc_eval_places_a_bad_class_in_the_program() {
    // The class indexes the log-probabilities: `-log_softmax(logits)[species]`.
    let at = "examples/iris.grad:10:7: error: index";
    let (ok, _, err) = gradc(&["eval", "examples/iris.grad", "--input", "species=7"]);
    assert!(
        !ok && err.contains(&format!("{at} 7 is out of range")),
        "{err}"
    );
    let data = "tests/cases/data/classes.csv";
    let (ok, _, err) = gradc(&["eval", "examples/iris.grad", "--data", data]);
    assert!(
        !ok && err.contains(&format!("{at} 3 is out of range")),
        "{err}"
    );
    assert!(
        err.contains(&format!("note: {data}:4: in the example")),
        "{err}"
    );
}

#[test]
fn lr_override_changes_the_optimizer() {
    assert_eq!(
        with_lr(
            &Optimizer::Adam {
                lr: 0.001,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8
            },
            0.1
        )
        .lr(),
        0.1
    );
}

#[test]
fn history_as_csv_and_loss_curves_as_svg() {
    let (c, cfg, opts) = example("mlp.grad");
    let r = train(
        &c,
        &TrainConfig {
            epochs: Some(3),
            ..cfg
        },
        &opts,
    );
    let text = runtime::history::csv(&r.history, &r.metrics);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,step,loss,accuracy,val_loss,val_accuracy,grad_norm,lr,seconds"
    );
    assert_eq!(lines.len(), 4);
    assert!(lines[3].starts_with("3,24,"), "{}", lines[3]);

    let dir = temp_dir("plot");
    let svg = dir.join("loss.svg");
    runtime::history::plot(&svg, &r.history, "epoch").unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.starts_with("<svg") && text.contains("validation"),
        "{text}"
    );
    let e = runtime::history::plot(&dir.join("loss.jpg"), &r.history, "epoch").unwrap_err();
    assert!(e.to_string().contains(".svg or .png"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------------------
// Keyword arguments

/// `examples/linear.grad` with its loss replaced, trained on its data.
fn linear_with_loss(loss: &str) -> (Recorder, Report) {
    let (c, cfg, opts) = example("linear.grad");
    let src = std::fs::read_to_string(root().join("examples/linear.grad"))
        .unwrap()
        .replace("loss mse(yhat, y)", &format!("loss {loss}"));
    let c2 = compile(&src);
    assert_ne!(
        c2.ir.to_string(),
        c.ir.to_string(),
        "the loss was not replaced"
    );
    let mut cfg = cfg;
    cfg.epochs = Some(5);
    cfg.batch = Batch::Size(16);
    let mut rec = Recorder::default();
    let r = runtime::train(&c2, &cfg, &opts, &mut rec).unwrap_or_else(|e| panic!("{e}"));
    (rec, r)
}

#[test]
fn huber_delta_by_keyword_trains_as_by_position() {
    let (rec_kw, kw) = linear_with_loss("huber(yhat, y, delta = 0.5)");
    let (rec_pos, pos) = linear_with_loss("huber(yhat, y, 0.5)");
    let bits = |r: &Report| -> Vec<u64> {
        r.params
            .iter()
            .flat_map(|p| p.data.iter().map(|v| v.to_bits()))
            .collect()
    };
    assert_eq!(rec_kw.losses.len(), rec_pos.losses.len());
    for (a, b) in rec_kw.losses.iter().zip(&rec_pos.losses) {
        assert_eq!(a.to_bits(), b.to_bits(), "losses differ");
    }
    assert_eq!(bits(&kw), bits(&pos));
    assert_eq!(kw.train.loss.to_bits(), pos.train.loss.to_bits());
    // The keyword is not ignored: the default delta (1) trains differently.
    let (rec_default, default) = linear_with_loss("huber(yhat, y)");
    assert_ne!(rec_default.losses, rec_kw.losses);
    assert_ne!(bits(&default), bits(&kw));
}
