//! Training speed, the figures `benches/peers.py` compares with JAX and
//! PyTorch: one optimizer step of a compiled training program, measured the
//! way `gradc train` runs it (`runtime::engine::Engine::run` on a batch of
//! rows of data already in memory, which gathers the rows and makes one
//! call of the batched gradient, then the optimizer's update,
//! `runtime::optim::State::step`), without loading the data and without the
//! runtime's per-step checks and bookkeeping.
//!
//! - `train/logistic20`: logistic regression, 20 features, SGD, batch 32;
//! - `train/digits_mlp`: a 64-32-10 relu MLP on the 8x8 digits, Adam, batch 32;
//! - `train/mlp784`: a 784-256-10 relu MLP, SGD, batch 128 (MNIST-sized);
//! - `train/digits_mlp-f32`, `train/mlp784-f32`: the same in f32;
//! - `rosenbrock/n=...`: one value-and-gradient call of the Rosenbrock
//!   function of n = 2, 100 and 10,000 parameters (no data: the program
//!   run once, as training runs a program without inputs).
//!
//! The programs are `benches/workloads/*.grad` (their train blocks give the
//! optimizer, the batch size and the seed); the data is generated into
//! `target/bench-data/` by `workloads/data.rs`. Every case is measured per
//! thread count in [`THREADS`], on the pool's threads as `gradc train`
//! runs (the steps from inside the pool).

#[path = "workloads/data.rs"]
mod data;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use gradc::dtype::Dtype;
use gradc::runtime::engine::{train_program, Engine};
use gradc::runtime::optim::State;
use gradc::runtime::shards::Threads;
use gradc::runtime::{self, Dataset, Mode};
use gradc::shape::Tensor;
use gradc::types::train::{Batch, TrainConfig};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// mimalloc, as the binary uses (see [`gradc::Allocator`]).
#[global_allocator]
static ALLOCATOR: gradc::Allocator = gradc::Allocator;

/// The thread counts every case is measured at (0: one per core, as
/// `gradc train --threads` has it).
const THREADS: &[usize] = &[1, 0];

/// The trained workloads: a file of `benches/workloads/`.
const WORKLOADS: &[&str] = &["logistic20", "digits_mlp", "mlp784"];

/// The workloads measured in f32 too (`train/<name>-f32`): the parameters
/// rounded to f32 for each step, the rows as they are gathered.
const F32_WORKLOADS: &[&str] = &["digits_mlp", "mlp784"];

/// The generalised Rosenbrock function of `n` parameters.
fn rosenbrock_source(n: usize) -> String {
    format!(
        "param x: [{n}] = uniform(-2, 2)\n\
         let a = x[0:{m}]\n\
         let b = x[1:{n}]\n\
         loss sum(100 * (b - a^2)^2 + (1 - a)^2)\n",
        m = n - 1
    )
}

/// A training run reduced to its steps: the program compiled, its data
/// loaded, the parameters and the optimizer state, the examples in a
/// shuffled order cut into whole batches.
///
/// After as many steps as the train block's run has, the parameters and
/// the optimizer state start again from the initial ones: the time of a
/// step depends on the numbers (a logistic regression on separable data
/// drives its logits far out), so the mean over many steps should be that
/// of the real run, not of one much longer.
struct Trainer {
    engine: Engine,
    data: Dataset,
    params: Vec<Tensor>,
    state: State,
    initial: (Vec<Tensor>, State),
    lr: f64,
    order: Vec<usize>,
    batch: usize,
    next: usize,
    /// Steps since the start, and the run's number of steps.
    done: u64,
    run: u64,
}

impl Trainer {
    fn new(name: &str, dtype: Dtype, threads: &Threads) -> Trainer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/workloads");
        let path = dir.join(format!("{name}.grad"));
        let src = std::fs::read_to_string(&path).expect("reads the workload");
        let c = gradc::compile(&src).expect("the workload compiles");
        let cfg: TrainConfig = c
            .typed
            .train
            .clone()
            .expect("the workload has a train block");
        let f = train_program(&c).expect("differentiates");
        let needed = vec![true; f.inputs.len()];
        let data = runtime::load_data(&c, None, &dir, &needed, &mut |_| {})
            .expect("loads the data")
            .expect("the workload has data");
        let Batch::Size(batch) = cfg.batch else {
            panic!("the workload's batch is a number");
        };
        let params = c.initial_params(cfg.seed);
        let sizes: Vec<usize> = params.iter().map(|t| t.data.len()).collect();
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
        runtime::data::shuffle(&mut order, &mut rng);
        let state = State::new(&cfg.optimizer, &sizes);
        let run = cfg.epochs.expect("the workload's train block sets epochs")
            * data.len().div_ceil(batch) as u64;
        Trainer {
            engine: Engine::with(&f, Mode::Batched, dtype, threads.clone())
                .expect("the JIT compiles"),
            initial: (params.clone(), state.clone()),
            state,
            done: 0,
            run,
            params,
            lr: cfg.optimizer.lr(),
            data,
            order,
            batch,
            next: 0,
        }
    }

    /// One optimizer step on the next batch (from the first again after
    /// the last whole one).
    fn step(&mut self) {
        if self.done == self.run {
            self.restart();
        }
        self.done += 1;
        if self.next + self.batch > self.order.len() {
            self.next = 0;
        }
        let rows = &self.order[self.next..self.next + self.batch];
        self.next += self.batch;
        self.engine
            .run(&self.params, Some(&self.data), black_box(rows))
            .expect("runs");
        let pool = self.engine.threads().pool();
        self.state
            .step_on(pool, self.lr, &mut self.params, self.engine.grads());
    }

    /// Back to the initial parameters and optimizer state, and the first
    /// batch.
    fn restart(&mut self) {
        for (p, q) in self.params.iter_mut().zip(&self.initial.0) {
            p.data.copy_from_slice(&q.data);
        }
        self.state.clone_from(&self.initial.1);
        self.done = 0;
        self.next = 0;
    }
}

/// Runs `f` on a thread of the pool (as a training run is), or here.
fn on(threads: &Threads, f: impl FnOnce() + Send) {
    match threads.pool() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

fn train(c: &mut Criterion) {
    let real = data::generate();
    if !real {
        eprintln!("note: examples/data has no digits files; random 8x8 images stand in");
    }
    let mut group = c.benchmark_group("train");
    let f32s = F32_WORKLOADS.iter().map(|w| (*w, Dtype::F32));
    for (name, dtype) in WORKLOADS.iter().map(|w| (*w, Dtype::F64)).chain(f32s) {
        let id = match dtype {
            Dtype::F64 => name.to_string(),
            Dtype::F32 => format!("{name}-f32"),
        };
        for &threads in THREADS {
            let pool = Threads::new(threads).expect("starts the threads");
            let mut trainer = Trainer::new(name, dtype, &pool);
            let id = BenchmarkId::new(&id, format!("threads={threads}"));
            group.bench_function(id, |b| on(&pool, || b.iter(|| trainer.step())));
        }
    }
    group.finish();
}

fn rosenbrock(c: &mut Criterion) {
    let mut group = c.benchmark_group("rosenbrock");
    for n in [2, 100, 10_000] {
        let compiled = gradc::compile(&rosenbrock_source(n)).expect("compiles");
        let f = train_program(&compiled).expect("differentiates");
        let params = compiled.initial_params(compiled.seed());
        for &threads in THREADS {
            let pool = Threads::new(threads).expect("starts the threads");
            let mut engine = Engine::with(&f, Mode::Batched, Dtype::F64, pool.clone())
                .expect("the JIT compiles");
            group.bench_function(
                BenchmarkId::new(format!("n={n}"), format!("threads={threads}")),
                |b| {
                    on(&pool, || {
                        b.iter(|| engine.run(black_box(&params), None, &[]).expect("runs"))
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // No plots: plotters finds no font here, and the figures are in the text.
    config = Criterion::default()
        .without_plots()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = train, rosenbrock
}
criterion_main!(benches);
