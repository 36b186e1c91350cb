//! Unit tests of the backend, one per operation family: every operation
//! compiled and run on ordinary and special values (±0, ±inf, NaN, huge),
//! compared bit for bit with the reference interpreter. The helpers are
//! here; `ops` tests single-example functions, `batch` batched ones, and
//! `products` the batched products with a matrix fixed over the batch.

use super::workers::Split;
use super::*;
use crate::ir::{
    interp, Binary, ConstData, Fault, Function, Op, Output, Role, RunError, SliceAxis, Slot, Unary,
    Value,
};
use crate::shape::{Shape, Tensor};
use crate::span::Span;
use plan::Reduce;

const SPECIAL: [f64; 12] = [
    0.0,
    -0.0,
    1.0,
    -2.5,
    3.75,
    1e300,
    -1e300,
    1e-310,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    0.5,
];

fn slot(name: String, shape: &Shape) -> Slot {
    Slot {
        name,
        shape: shape.clone(),
    }
}

/// A function of parameters and inputs of the given shapes, with one
/// instruction for each.
fn function(params: &[Shape], inputs: &[Shape]) -> (Function, Vec<Value>, Vec<Value>) {
    let ps = params
        .iter()
        .enumerate()
        .map(|(i, s)| slot(format!("p{i}"), s));
    let xs = inputs
        .iter()
        .enumerate()
        .map(|(i, s)| slot(format!("x{i}"), s));
    let mut f = Function::new(ps.collect(), xs.collect());
    let sp = Span::default();
    let p = (0..params.len())
        .map(|i| f.push(Op::Param(i), vec![], sp))
        .collect();
    let x = (0..inputs.len())
        .map(|i| f.push(Op::Input(i), vec![], sp))
        .collect();
    (f, p, x)
}

fn push(f: &mut Function, op: Op, args: &[Value]) -> Value {
    f.push(op, args.to_vec(), Span::default())
}

fn output(f: &mut Function, v: Value) {
    let name = format!("o{}", f.outputs.len());
    f.outputs.push(Output {
        role: Role::Output,
        name,
        value: v,
    });
}

/// `n` numbers: the special values first, then a deterministic spread.
fn values(n: usize, salt: u64) -> Vec<f64> {
    let mut state = salt
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            if i < SPECIAL.len() && salt.is_multiple_of(2) {
                SPECIAL[(i + salt as usize) % SPECIAL.len()]
            } else {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 11) as f64 / (1u64 << 53) as f64) * 8.0 - 4.0
            }
        })
        .collect()
}

fn tensors(f: &Function, params: bool, salt: u64) -> Vec<Tensor> {
    let slots = if params { &f.params } else { &f.inputs };
    slots
        .iter()
        .enumerate()
        .map(|(i, s)| Tensor::new(s.shape.clone(), values(s.shape.size(), salt + 2 * i as u64)))
        .collect()
}

/// The lines of the code of `f` that contain `what`.
fn count(f: &Function, what: &str) -> usize {
    let text = clif_text(f).unwrap();
    text.lines().filter(|l| l.contains(what)).count()
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// A function built in parts of one step each where it can be cut (see
/// [`workers`]), compiled on two threads.
const EVERY_STEP: Split = Split {
    insts: 1,
    threads: 2,
};

/// Runs `f` in the interpreter and the JIT, whole and in parts of one step
/// each, and requires the same bits.
#[track_caller]
fn agree(f: &Function, params: &[Tensor], inputs: &[Tensor]) {
    let want = interp::run_outputs(f, params, inputs).expect("the interpreter runs");
    for split in [Split::WHOLE, EVERY_STEP] {
        let jit = jit::compile_with(f, split).expect("compiles");
        let got = jit.run(params, inputs).expect("the JIT runs");
        same_outputs(f, &want, &got);
    }
}

/// Requires the JIT's outputs to be the interpreter's bits.
#[track_caller]
fn same_outputs(f: &Function, want: &[(Output, Tensor)], got: &[Tensor]) {
    assert_eq!(got.len(), want.len());
    for ((o, w), g) in want.iter().zip(got) {
        assert_eq!(w.shape, g.shape, "{}", o.name);
        for (k, (x, y)) in w.data.iter().zip(&g.data).enumerate() {
            assert!(
                same(*x, *y),
                "{}[{k}]: interpreter {x:e}, JIT {y:e}\n{f}",
                o.name
            );
        }
    }
}

/// Runs `f` on a few sets of values, the special ones among them, one
/// example at a time and as batches.
#[track_caller]
fn agree_on_values(f: &Function) {
    let mut examples = Vec::new();
    for salt in 0..4 {
        let p = tensors(f, true, 100 + salt);
        let x = tensors(f, false, 200 + salt);
        agree(f, &p, &x);
        examples.push(x);
    }
    let p = tensors(f, true, 100);
    agree_batched(f, &p, &examples);
    agree_batched(f, &p, &examples[1..2]);
}

/// `f` with every output a metric, so that a batched function returns its
/// mean.
fn as_means(f: &Function) -> Function {
    let mut g = f.clone();
    for o in &mut g.outputs {
        o.role = Role::Metric;
    }
    g
}

/// The examples' values of each input, one example after the other.
fn rows(f: &Function, examples: &[Vec<Tensor>]) -> Vec<Vec<f64>> {
    (0..f.inputs.len())
        .map(|k| {
            let rows = examples.iter().map(|x| x[k].data.iter().copied());
            rows.flatten().collect()
        })
        .collect()
}

/// What a batched function must return for `examples`, from the
/// interpreter: for each of its buffers, the per-example values one after
/// the other, or their mean, summed in example order from -0 and divided by
/// the number of examples.
fn batch_reference(
    jit: &BatchedFunction,
    params: &[Tensor],
    examples: &[Vec<Tensor>],
) -> Vec<Vec<f64>> {
    let f = jit.function();
    let per_example: Vec<Vec<(Output, Tensor)>> = examples
        .iter()
        .map(|x| interp::run_outputs(f, params, x).expect("the interpreter runs"))
        .collect();
    let n = examples.len();
    jit.outputs()
        .iter()
        .map(|o| {
            let values = per_example.iter().map(|outs| &outs[o.index].1.data);
            match o.reduce {
                Reduce::PerExample => values.flatten().copied().collect(),
                Reduce::Mean => {
                    let size = f.shape(f.outputs[o.index].value).size();
                    let mut acc = vec![-0.0; size];
                    for v in values {
                        for (a, x) in acc.iter_mut().zip(v) {
                            *a += x;
                        }
                    }
                    acc.iter().map(|a| a / n as f64).collect()
                }
            }
        })
        .collect()
}

/// Runs `f` batched over `examples` (each a set of inputs), with its outputs
/// per example and as means, and requires the interpreter's bits.
#[track_caller]
fn agree_batched(f: &Function, params: &[Tensor], examples: &[Vec<Tensor>]) {
    let rows = rows(f, examples);
    let rows: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
    let per_example = BatchOptions {
        per_example_outputs: true,
        ..BatchOptions::default()
    };
    let jits = [
        compile_batched_with(f, per_example).expect("compiles"),
        compile_batched(&as_means(f)).expect("compiles"),
    ];
    for jit in &jits {
        let want = batch_reference(jit, params, examples);
        let got = jit
            .run(params, &rows, examples.len())
            .expect("the JIT runs");
        for ((o, w), g) in jit.outputs().iter().zip(&want).zip(&got) {
            let name = &f.outputs[o.index].name;
            assert_eq!(w.len(), g.data.len(), "{name}");
            for (k, (x, y)) in w.iter().zip(&g.data).enumerate() {
                assert!(
                    same(*x, *y),
                    "{name}[{k}] ({:?}): interpreter {x:e}, JIT {y:e}\n{f}",
                    o.reduce
                );
            }
        }
    }
}

/// Runs `f` batched in f32 (four lanes a vector) over `examples`, its
/// outputs per example, and requires the interpreter's f64 values within
/// f32's rounding (64 ulps of the largest magnitude): a wrong element is
/// far off.
#[track_caller]
fn agree_f32(f: &Function, params: &[Tensor], examples: &[Vec<Tensor>]) {
    let per_example = BatchOptions {
        per_example_outputs: true,
        dtype: crate::dtype::Dtype::F32,
        ..BatchOptions::default()
    };
    let jit = compile_batched_with(f, per_example).expect("compiles");
    let want = batch_reference(&jit, params, examples);
    let rows = rows(f, examples);
    let rows: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
    let got = jit
        .run(params, &rows, examples.len())
        .expect("the JIT runs");
    for (w, g) in want.iter().zip(&got) {
        let scale = w.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        for (x, y) in w.iter().zip(&g.data) {
            let close = (x - y).abs() <= 64.0 * f64::from(f32::EPSILON) * scale;
            assert!(close, "{x} against {y}\n{f}");
        }
    }
}

fn shapes() -> Vec<Shape> {
    vec![
        Shape::scalar(),
        Shape::vector(1),
        Shape::vector(3),
        Shape::vector(12),
        Shape::matrix(2, 3),
        Shape(vec![2, 3, 4]),
    ]
}

mod axes;
mod batch;
mod blocks;
mod carries;
mod gather;
mod long_sums;
mod ops;
mod outputs;
mod parts;
mod products;
mod recompute;
mod rows;
mod shifts;
mod split;
mod spreads;
mod sums;
mod tails;
mod transposed;
