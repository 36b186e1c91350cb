//! Loops: compile time against the trip count (a loop compiles to a machine
//! loop, so it should not grow with the number of steps), and the time of
//! the gradient against the forward pass for an RNN of 1,000 steps (reverse
//! mode promises a small constant; the README reports the ratio).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use gradc::backend::compile_batched;
use gradc::ir::{Function, Role};
use gradc::shape::Tensor;

/// An RNN with a hidden state of 16 over `t` steps of 4 inputs, and a
/// squared error on a linear read-out of the last state.
fn rnn(t: usize) -> String {
    format!(
        "param W: [16, 16] = normal(0, 0.2)\n\
         param U: [16, 4] = normal(0, 0.3)\n\
         param b: [16]\n\
         param v: [16] = normal(0, 0.3)\n\
         input x: [{t}, 4]\n\
         input y\n\
         let h = loop h = zeros16 for t in 0..{t} {{ tanh(W @ h + U @ x[t] + b) }}\n\
         loss (dot(v, h) - y)^2\n"
    )
    .replace("zeros16", &format!("[{}]", vec!["0"; 16].join(", ")))
}

/// Source text to the batched gradient function.
fn compile_gradient(src: &str) -> gradc::backend::BatchedFunction {
    let c = gradc::compile(src).expect("compiles");
    let g = c.gradient().expect("differentiates");
    compile_batched(&g).expect("the JIT compiles")
}

fn compile_time(c: &mut Criterion) {
    let mut group = c.benchmark_group("loops/compile");
    for t in [10, 100, 1_000, 10_000] {
        let src = rnn(t);
        group.bench_function(format!("rnn{t}"), |b| {
            b.iter(|| compile_gradient(black_box(&src)))
        });
    }
    group.finish();
}

/// One example's forward and gradient, each as a batch of one.
fn forward_and_gradient(c: &mut Criterion) {
    let t = 1_000;
    let compiled = gradc::compile(&rnn(t)).expect("compiles");
    let mut forward: Function = compiled.ir.clone();
    forward.outputs.retain(|o| o.role != Role::Output);
    let gradient = compiled.gradient().expect("differentiates");
    let params = compiled.initial_params(0);
    let x: Vec<f64> = (0..t * 4)
        .map(|i| ((i * 7919) % 200) as f64 / 100.0 - 1.0)
        .collect();
    let y = [0.5];
    let mut group = c.benchmark_group("loops/rnn1000");
    for (kind, f) in [("forward", &forward), ("gradient", &gradient)] {
        let jit = compile_batched(f).expect("the JIT compiles");
        let mut scratch = jit.scratch();
        let mut out: Vec<Vec<f64>> = (0..jit.outputs().len())
            .map(|k| vec![0.0; jit.output_shape(k, 1).size()])
            .collect();
        let p: Vec<&[f64]> = params.iter().map(|t: &Tensor| &t.data[..]).collect();
        let inputs: Vec<&[f64]> = vec![&x, &y];
        let mut o: Vec<&mut [f64]> = out.iter_mut().map(|b| &mut b[..]).collect();
        group.bench_function(kind, |b| {
            b.iter(|| {
                jit.run_batch(&mut scratch, black_box(&p), black_box(&inputs), 1, &mut o)
                    .expect("runs")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .without_plots()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = compile_time, forward_and_gradient
}
criterion_main!(benches);
