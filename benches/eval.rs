//! Evaluation: the forward program (loss and metrics) and the gradient
//! program (the same plus every parameter's gradient), as the mean over a
//! batch of 32 examples, JIT (one call per batch) against the reference
//! interpreter (one run per example, summed); on `examples/logistic.grad`,
//! `examples/mlp3.grad`, a medium 64-64-64-10 tanh MLP with cross-entropy
//! (where the weight matrices dominate), and the Rosenbrock function of
//! n = 2, 100 and 10,000 parameters (no inputs: one example). And the JIT
//! alone on one example of a sum along the last axis of a [2000, 1000]
//! input (`gmm`'s `sum(dQx, axis = 2)` at d = 20, k = 100 when no product
//! adds it up), rows added in chains side by side.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use gradc::backend::compile_batched;
use gradc::ir::{interp, Function, Role};
use gradc::shape::Tensor;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generalised Rosenbrock function of `n` parameters.
fn rosenbrock(n: usize) -> String {
    format!(
        "param x: [{n}] = uniform(-2, 2)\n\
         let a = x[0:{m}]\n\
         let b = x[1:{n}]\n\
         loss sum(100 * (b - a^2)^2 + (1 - a)^2)\n",
        m = n - 1
    )
}

/// A 64-64-64-10 tanh MLP classifier with cross-entropy: 64 features, two
/// hidden layers of 64 units, 10 classes (the random labels are 0 or 1).
const MLP64: &str = "input x: [64]
input y
param W1: [64, 64] = glorot
param b1: [64] = zeros
param W2: [64, 64] = glorot
param b2: [64] = zeros
param W3: [10, 64] = glorot
param b3: [10] = zeros
let h1 = tanh(W1 @ x + b1)
let h2 = tanh(W2 @ h1 + b2)
loss cross_entropy(W3 @ h2 + b3, y)
";

/// A program ready to evaluate: its parameters, a batch of examples both
/// as tensors (for the interpreter) and as rows (for the JIT).
struct Case {
    name: String,
    params: Vec<Tensor>,
    examples: Vec<Vec<Tensor>>,
    rows: Vec<Vec<f64>>,
    n: usize,
}

/// The forward program without outputs (what evaluation needs), and the
/// gradient program.
fn programs(src: &str) -> (gradc::Compiled, Function, Function) {
    let compiled = gradc::compile(src).expect("compiles");
    let mut forward = compiled.ir.clone();
    forward.outputs.retain(|o| o.role != Role::Output);
    let grad = compiled.gradient().expect("differentiates");
    (compiled, forward, grad)
}

fn case(name: &str, compiled: &gradc::Compiled, f: &Function, n: usize) -> Case {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let examples: Vec<Vec<Tensor>> = (0..n)
        .map(|_| {
            f.inputs
                .iter()
                .map(|s| {
                    let data = (0..s.shape.size())
                        .map(|_| {
                            // Labels 0 or 1, features in [-2, 2).
                            if s.name == "y" {
                                f64::from(rng.random_range(0..2u8))
                            } else {
                                rng.random_range(-2.0..2.0)
                            }
                        })
                        .collect();
                    Tensor::new(s.shape.clone(), data)
                })
                .collect()
        })
        .collect();
    let rows = (0..f.inputs.len())
        .map(|k| examples.iter().flat_map(|x| x[k].data.clone()).collect())
        .collect();
    Case {
        name: name.to_string(),
        params: compiled.initial_params(compiled.seed()),
        examples,
        rows,
        n,
    }
}

/// The interpreter's means: every example run, its outputs summed in order.
fn interp_means(f: &Function, case: &Case, sums: &mut [Vec<f64>]) {
    for s in sums.iter_mut() {
        s.fill(-0.0);
    }
    for x in &case.examples {
        let outs = interp::run_outputs(f, &case.params, x).expect("runs");
        for (s, (_, t)) in sums.iter_mut().zip(&outs) {
            for (a, v) in s.iter_mut().zip(&t.data) {
                *a += v;
            }
        }
    }
    for s in sums.iter_mut() {
        for a in s.iter_mut() {
            *a /= case.n as f64;
        }
    }
}

fn bench_program(c: &mut Criterion, case: &Case, kind: &str, f: &Function) {
    let mut group = c.benchmark_group(format!("eval/{}", case.name));
    let jit = compile_batched(f).expect("the JIT compiles");
    let mut scratch = jit.scratch();
    let mut out: Vec<Vec<f64>> = (0..jit.outputs().len())
        .map(|k| vec![0.0; jit.output_shape(k, case.n).size()])
        .collect();
    // The buffers' slices are made once: a call allocates nothing.
    let p: Vec<&[f64]> = case.params.iter().map(|t| &t.data[..]).collect();
    let x: Vec<&[f64]> = case.rows.iter().map(|r| &r[..]).collect();
    let mut o: Vec<&mut [f64]> = out.iter_mut().map(|b| &mut b[..]).collect();
    group.bench_function(format!("{kind}/jit"), |b| {
        b.iter(|| {
            jit.run_batch(&mut scratch, black_box(&p), black_box(&x), case.n, &mut o)
                .expect("runs")
        })
    });
    let mut sums: Vec<Vec<f64>> = f
        .outputs
        .iter()
        .map(|o| vec![0.0; f.shape(o.value).size()])
        .collect();
    group.bench_function(format!("{kind}/interp"), |b| {
        b.iter(|| interp_means(f, black_box(case), &mut sums))
    });
    group.finish();
}

fn eval(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut sources: Vec<(String, String, usize)> = ["logistic", "mlp3"]
        .iter()
        .map(|name| {
            let src = std::fs::read_to_string(dir.join(format!("{name}.grad"))).unwrap();
            (name.to_string(), src, 32)
        })
        .collect();
    sources.push(("mlp64".to_string(), MLP64.to_string(), 32));
    for n in [2, 100, 10_000] {
        sources.push((format!("rosenbrock{n}"), rosenbrock(n), 1));
    }
    for (name, src, n) in &sources {
        let (compiled, forward, grad) = programs(src);
        let case = case(name, &compiled, &grad, *n);
        bench_program(c, &case, "forward", &forward);
        bench_program(c, &case, "gradient", &grad);
    }
}

/// The forward program of `loss dot(w, sum(X, axis = 1))`, `X` [2000,
/// 1000], as a batch of one.
fn row_sums(c: &mut Criterion) {
    let (m, n) = (2000, 1000);
    let src = format!("param w: [{m}]\ninput X: [{m}, {n}]\nloss dot(w, sum(X, axis = 1))\n");
    let (compiled, forward, _) = programs(&src);
    let jit = compile_batched(&forward).expect("the JIT compiles");
    let params = compiled.initial_params(0);
    let x: Vec<f64> = (0..m * n).map(|i| (i % 13) as f64 * 0.25 - 1.5).collect();
    let mut scratch = jit.scratch();
    let mut out: Vec<Vec<f64>> = (0..jit.outputs().len())
        .map(|k| vec![0.0; jit.output_shape(k, 1).size()])
        .collect();
    let p: Vec<&[f64]> = params.iter().map(|t: &Tensor| &t.data[..]).collect();
    let inputs: Vec<&[f64]> = vec![&x];
    let mut o: Vec<&mut [f64]> = out.iter_mut().map(|b| &mut b[..]).collect();
    c.bench_function("eval/row_sums_2000x1000/jit", |b| {
        b.iter(|| {
            jit.run_batch(&mut scratch, black_box(&p), black_box(&inputs), 1, &mut o)
                .expect("runs")
        })
    });
}

criterion_group! {
    name = benches;
    // No plots: plotters finds no font here, and the figures are in the text.
    config = Criterion::default()
        .without_plots()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = eval, row_sums
}
criterion_main!(benches);
