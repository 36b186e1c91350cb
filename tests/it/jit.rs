//! Differential tests of the Cranelift JIT against the reference interpreter:
//! every example and every `tests/cases/check` program, forward and gradient,
//! at seeded random parameters and inputs; and random small programs from a
//! proptest expression generator. Results must agree within 1e-12 relative
//! (in practice they are the same bits), and an interpreter error must be
//! the JIT's error too.
//!
//! The batched functions are held to the interpreter run on each example of
//! the batch: per-example outputs row by row, and means as the per-example
//! values summed in example order (from -0) and divided by `n`.

use std::path::PathBuf;

use gradc::autodiff::check::random_inputs;
use gradc::backend::{BatchOptions, BatchedFunction, Reduce};
use gradc::ir::{interp, Function};
use gradc::shape::Tensor;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::common::{examples, files, root, ELEMENTWISE};

/// The examples and the `tests/cases/check` programs.
fn example_and_check_files() -> Vec<PathBuf> {
    examples()
        .into_iter()
        .chain(files("tests/cases/check", "grad"))
        .map(|(_, path)| path)
        .collect()
}

/// Standard-normal parameters of `f`'s shapes.
fn random_params(f: &Function, rng: &mut impl Rng) -> Vec<Tensor> {
    f.params
        .iter()
        .map(|s| {
            let data = (0..s.shape.size())
                .map(|_| rng.sample(StandardNormal))
                .collect();
            Tensor::new(s.shape.clone(), data)
        })
        .collect()
}

/// Equal bits, both NaN, or within 1e-12 relative.
fn close(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
        || (a.is_nan() && b.is_nan())
        || a == b
        || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// Runs `f` in both engines; `Err` describes the first disagreement.
/// Counts the elements that agree only within the tolerance, not bit for bit.
fn compare(
    f: &Function,
    params: &[Tensor],
    inputs: &[Tensor],
    inexact: &mut usize,
) -> Result<(), String> {
    let jit = gradc::backend::compile(f).map_err(|e| format!("JIT compile: {e}"))?;
    let want = interp::run_outputs(f, params, inputs);
    let got = jit.run(params, inputs);
    match (want, got) {
        (Err(w), Err(g)) if w == g => Ok(()),
        (Err(w), g) => Err(format!("interpreter error {w:?}, JIT {g:?}")),
        (Ok(_), Err(g)) => Err(format!("JIT error {g:?}, the interpreter ran")),
        (Ok(want), Ok(got)) => {
            if want.len() != got.len() {
                return Err(format!("{} outputs, JIT {}", want.len(), got.len()));
            }
            for ((o, w), g) in want.iter().zip(&got) {
                if w.shape != g.shape {
                    return Err(format!("{}: shape {} vs JIT {}", o.name, w.shape, g.shape));
                }
                for (k, (&x, &y)) in w.data.iter().zip(&g.data).enumerate() {
                    if !close(x, y) {
                        return Err(format!("{}[{k}]: interpreter {x:e}, JIT {y:e}", o.name));
                    }
                    if x.to_bits() != y.to_bits() && !(x.is_nan() && y.is_nan()) {
                        *inexact += 1;
                    }
                }
            }
            Ok(())
        }
    }
}

/// Compares every number of `got` with `want`; counts those that agree only
/// within the tolerance.
fn compare_numbers(
    name: &str,
    want: &[f64],
    got: &[f64],
    inexact: &mut usize,
) -> Result<(), String> {
    if want.len() != got.len() {
        return Err(format!("{name}: {} numbers, JIT {}", want.len(), got.len()));
    }
    for (k, (&x, &y)) in want.iter().zip(got).enumerate() {
        if !close(x, y) {
            return Err(format!("{name}[{k}]: interpreter {x:e}, JIT {y:e}"));
        }
        if x.to_bits() != y.to_bits() && !(x.is_nan() && y.is_nan()) {
            *inexact += 1;
        }
    }
    Ok(())
}

/// The batched functions of `f`: means only, and means with per-example
/// outputs.
fn batched(f: &Function) -> Result<[BatchedFunction; 2], String> {
    let per_example = BatchOptions {
        per_example_outputs: true,
        ..Default::default()
    };
    Ok([
        gradc::backend::compile_batched(f).map_err(|e| format!("JIT compile: {e}"))?,
        gradc::backend::compile_batched_with(f, per_example)
            .map_err(|e| format!("JIT compile: {e}"))?,
    ])
}

/// The interpreter's outputs for each example, or its first error, placed
/// in its example: what every batched JIT of `f` must give.
type Interpreted = Result<Vec<Vec<(gradc::ir::Output, Tensor)>>, gradc::ir::RunError>;

fn interpret(f: &Function, params: &[Tensor], examples: &[Vec<Tensor>]) -> Interpreted {
    examples
        .iter()
        .enumerate()
        .map(|(b, x)| interp::run_outputs(f, params, x).map_err(|w| w.in_example(Some(b))))
        .collect()
}

/// Runs `jit` on `examples` as one batch against the interpreter's
/// outputs for each example; `Err` describes the first disagreement.
fn compare_batch(
    jit: &BatchedFunction,
    params: &[Tensor],
    examples: &[Vec<Tensor>],
    interpreted: &Interpreted,
    inexact: &mut usize,
) -> Result<(), String> {
    let f = jit.function();
    let n = examples.len();
    let rows: Vec<Vec<f64>> = (0..f.inputs.len())
        .map(|k| examples.iter().flat_map(|x| x[k].data.clone()).collect())
        .collect();
    let rows: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
    let got = jit.run(params, &rows, n);
    let per_example = match interpreted {
        Ok(outs) => outs,
        Err(w) => {
            return match got {
                Err(g) if &g == w => Ok(()),
                g => Err(format!("interpreter error {w:?}, JIT {:?}", g.map(|_| ()))),
            };
        }
    };
    let got = got.map_err(|g| format!("JIT error {g:?}, the interpreter ran"))?;
    for (o, g) in jit.outputs().iter().zip(&got) {
        let out = &f.outputs[o.index];
        let values = per_example.iter().map(|outs| &outs[o.index].1.data);
        let want: Vec<f64> = match o.reduce {
            Reduce::PerExample => values.flatten().copied().collect(),
            Reduce::Mean => {
                let mut acc = vec![-0.0; f.shape(out.value).size()];
                for v in values {
                    for (a, x) in acc.iter_mut().zip(v) {
                        *a += x;
                    }
                }
                acc.iter().map(|a| a / n as f64).collect()
            }
        };
        let name = format!("{} ({:?}, n = {n})", out.name, o.reduce);
        compare_numbers(&name, &want, &g.data, inexact)?;
    }
    Ok(())
}

/// `n` sets of random inputs of `f`.
fn random_examples(f: &Function, n: usize, rng: &mut impl Rng) -> Vec<Vec<Tensor>> {
    (0..n).map(|_| random_inputs(f, rng)).collect()
}

/// The forward and gradient programs of a source, if it compiles.
fn programs(src: &str) -> Option<(gradc::Compiled, Vec<(&'static str, Function)>)> {
    let compiled = gradc::compile(src).ok()?;
    let mut fs = vec![("forward", compiled.ir.clone())];
    if let Ok(g) = compiled.gradient() {
        fs.push(("gradient", g));
    }
    Some((compiled, fs))
}

#[test]
fn examples_and_check_cases_agree_with_the_interpreter() {
    let files = example_and_check_files();
    assert!(!files.is_empty());
    let (mut programs_run, mut inexact) = (0, 0);
    let mut failures = Vec::new();
    for path in &files {
        let src = std::fs::read_to_string(path).unwrap();
        let Some((compiled, fs)) = programs(&src) else {
            continue;
        };
        for (kind, f) in &fs {
            programs_run += 1;
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
            let mut sets = vec![(
                compiled.initial_params(compiled.seed()),
                random_inputs(f, &mut rng),
            )];
            for _ in 0..3 {
                sets.push((random_params(f, &mut rng), random_inputs(f, &mut rng)));
            }
            for (params, inputs) in &sets {
                if let Err(e) = compare(f, params, inputs, &mut inexact) {
                    failures.push(format!("{} ({kind}): {e}", path.display()));
                    break;
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(programs_run >= 2 * 7, "only {programs_run} programs ran");
    eprintln!("{programs_run} programs agree; {inexact} elements not bit-identical");
}

#[test]
fn batches_of_examples_and_check_cases_agree_with_the_interpreter() {
    let files = example_and_check_files();
    let (mut batches, mut inexact) = (0, 0);
    let mut failures = Vec::new();
    for path in &files {
        let src = std::fs::read_to_string(path).unwrap();
        let Some((compiled, fs)) = programs(&src) else {
            continue;
        };
        'program: for (kind, f) in &fs {
            let jits = match batched(f) {
                Ok(jits) => jits,
                Err(e) => {
                    failures.push(format!("{} ({kind}): {e}", path.display()));
                    continue;
                }
            };
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
            let param_sets = [
                compiled.initial_params(compiled.seed()),
                random_params(f, &mut rng),
            ];
            // A loop is one instruction to the batch plan: its programs
            // cross one chunk boundary, the rest every size that matters
            // (the interpreter runs loops slowly, and every example).
            let looped = f
                .insts()
                .iter()
                .any(|i| matches!(i.op, gradc::ir::Op::Loop(_)));
            let sizes: &[usize] = if looped {
                &[1, 7, 257]
            } else {
                &[1, 7, 32, 256, 257, 600]
            };
            for &n in sizes {
                for params in &param_sets {
                    let examples = random_examples(f, n, &mut rng);
                    // (Both JITs against one run of the interpreter.)
                    let interpreted = interpret(f, params, &examples);
                    for jit in &jits {
                        batches += 1;
                        if let Err(e) =
                            compare_batch(jit, params, &examples, &interpreted, &mut inexact)
                        {
                            failures.push(format!("{} ({kind}): {e}", path.display()));
                            continue 'program;
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(batches >= 2 * 7 * 6, "only {batches} batches ran");
    eprintln!("{batches} batches agree; {inexact} elements not bit-identical");
}

/// Models whose weight matrices are large enough for the batched code's
/// matrix paths (`W @ x` of an input as one `X W^T` per chunk of examples,
/// `W @ h` through `W`'s transpose, the weight gradients as one `G^T X` over
/// the batch), on batches of more examples than one chunk of those products.
#[test]
fn a_wide_mlp_on_large_batches_agrees_with_the_interpreter() {
    let narrow = "input x: [12]\ninput y\n\
               param W1: [9, 12] = glorot\nparam b1: [9] = zeros\n\
               param W2: [10, 9] = glorot\n\
               let h = tanh(W1 @ x + b1)\n\
               let z = W2 @ h\n\
               loss cross_entropy(z, y)\n\
               metric accuracy = z[0] > z[1]\n\
               output p = softmax(z)\n";
    let wide = "input x: [37]\ninput y\n\
               param W1: [33, 37] = glorot\nparam b1: [33] = zeros\n\
               param W2: [16, 33] = glorot\n\
               param W3: [10, 16] = glorot\n\
               let h = tanh(W1 @ x + b1)\n\
               let h2 = tanh(W2 @ h)\n\
               let z = W3 @ h2 + W3 @ x[0:16]\n\
               loss cross_entropy(z, y)\n\
               metric accuracy = z[0] > z[1]\n\
               output p = softmax(z)\n";
    let mut inexact = 0;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    for src in [narrow, wide] {
        let (compiled, fs) = programs(src).expect("compiles");
        assert_eq!(fs.len(), 2);
        for (kind, f) in &fs {
            let jits = batched(f).unwrap();
            let params = [
                compiled.initial_params(compiled.seed()),
                random_params(f, &mut rng),
            ];
            for n in [1, 7, 255, 256, 257, 600] {
                for p in &params {
                    let examples = random_examples(f, n, &mut rng);
                    let interpreted = interpret(f, p, &examples);
                    for jit in &jits {
                        compare_batch(jit, p, &examples, &interpreted, &mut inexact)
                            .unwrap_or_else(|e| panic!("{kind}, n = {n}: {e}"));
                    }
                }
            }
        }
    }
    assert_eq!(inexact, 0, "elements not bit-identical");
}

#[test]
fn a_batch_with_a_wrong_length_is_an_error() {
    let path = root().join("examples/mlp3.grad");
    let src = std::fs::read_to_string(path).unwrap();
    let compiled = gradc::compile(&src).unwrap();
    let g = compiled.gradient().unwrap();
    let jit = gradc::backend::compile_batched(&g).unwrap();
    let params = compiled.initial_params(1);
    let p: Vec<&[f64]> = params.iter().map(|t| &t.data[..]).collect();
    let (x, y) = (vec![0.5; 3 * 32], vec![1.0; 32]);
    let mut bufs: Vec<Vec<f64>> = (0..jit.outputs().len())
        .map(|k| vec![0.0; jit.output_shape(k, 32).size()])
        .collect();
    let mut scratch = jit.scratch();
    let mut run = |p: &[&[f64]], inputs: &[&[f64]], n: usize, bufs: &mut [Vec<f64>]| {
        let mut out: Vec<&mut [f64]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        jit.run_batch(&mut scratch, p, inputs, n, &mut out)
    };
    assert_eq!(run(&p, &[&x, &y], 32, &mut bufs), Ok(()));
    assert_eq!(run(&p, &[&x[..3 * 31], &y[..31]], 31, &mut bufs), Ok(()));
    let err = run(&p, &[&x, &y], 31, &mut bufs).unwrap_err().to_string();
    assert!(err.starts_with("input x has shape [3]"), "{err}");
    assert!(run(&p, &[&x[1..], &y], 32, &mut bufs).is_err());
    assert!(run(&p, &[&x, &y[1..]], 32, &mut bufs).is_err());
    assert!(run(&p, &[&x, &y], 33, &mut bufs).is_err());
    assert!(run(&p, &[&x, &y], 0, &mut bufs).is_err());
    assert!(run(&p, &[&x], 32, &mut bufs).is_err());
    assert!(run(&p[1..], &[&x, &y], 32, &mut bufs).is_err());
    let mut short = p.clone();
    short[0] = &params[0].data[1..];
    assert!(run(&short, &[&x, &y], 32, &mut bufs).is_err());
    let mut fewer = bufs[1..].to_vec();
    assert!(run(&p, &[&x, &y], 32, &mut fewer).is_err());
    let mut longer = bufs.clone();
    longer.last_mut().unwrap().push(0.0);
    assert!(run(&p, &[&x, &y], 32, &mut longer).is_err());
}

/// The shapes the generator works with: `[]`, `[3]`, `[2, 3]`.
#[derive(Copy, Clone, Debug)]
enum Sh {
    S,
    V,
    M,
}

const HEADER: &str =
    "param a: [3]\nparam b: [2, 3]\nparam s\ninput x: [3]\ninput y\ninput N: [2, 3]\n";

fn leaf(sh: Sh) -> BoxedStrategy<String> {
    let names: &'static [&'static str] = match sh {
        Sh::S => &["s", "y", "1.5", "-2", "0", "0.25"],
        Sh::V => &["a", "x", "[1, -2, 0.5]"],
        Sh::M => &["b", "N", "[[1, 2, 3], [0, -1, 0.5]]"],
    };
    proptest::sample::select(names)
        .prop_map(str::to_string)
        .boxed()
}

/// Expressions of shape `sh`, nested at most `depth` deep.
fn expr(sh: Sh, depth: u32) -> BoxedStrategy<String> {
    if depth == 0 {
        return leaf(sh);
    }
    let d = depth - 1;
    let unary = proptest::sample::select(
        ELEMENTWISE
            .iter()
            .copied()
            .chain(["-"])
            .collect::<Vec<&'static str>>(),
    );
    let binop =
        proptest::sample::select(&["+", "-", "*", "/", "^", "==", "!=", "<", "<=", ">", ">="]);
    let call2 = proptest::sample::select(&["max", "min", "pow"]);
    let mut options = vec![
        leaf(sh),
        (unary, expr(sh, d))
            .prop_map(|(f, e)| format!("{f}({e})"))
            .boxed(),
        (expr(sh, d), binop.clone(), expr(sh, d))
            .prop_map(|(a, op, b)| format!("({a} {op} {b})"))
            .boxed(),
        (expr(sh, d), binop, expr(Sh::S, d))
            .prop_map(|(a, op, b)| format!("({a} {op} {b})"))
            .boxed(),
        (call2, expr(sh, d), expr(sh, d))
            .prop_map(|(f, a, b)| format!("{f}({a}, {b})"))
            .boxed(),
        (expr(sh, d), expr(sh, d), expr(sh, d))
            .prop_map(|(c, a, b)| format!("(if {c} then {a} else {b})"))
            .boxed(),
    ];
    match sh {
        Sh::S => {
            let red = proptest::sample::select(&["sum", "mean", "max", "min", "norm", "logsumexp"]);
            options.push(
                (red.clone(), expr(Sh::V, d))
                    .prop_map(|(r, e)| format!("{r}({e})"))
                    .boxed(),
            );
            options.push(
                (red, expr(Sh::M, d))
                    .prop_map(|(r, e)| format!("{r}({e})"))
                    .boxed(),
            );
            options.push(
                (expr(Sh::V, d), expr(Sh::V, d))
                    .prop_map(|(u, v)| format!("dot({u}, {v})"))
                    .boxed(),
            );
            options.push(
                (expr(Sh::V, d), 0..3usize)
                    .prop_map(|(v, i)| format!("({v})[{i}]"))
                    .boxed(),
            );
            options.push(
                (expr(Sh::M, d), 0..2usize, 0..3usize)
                    .prop_map(|(m, i, j)| format!("({m})[{i}, {j}]"))
                    .boxed(),
            );
            options.push(
                (expr(Sh::V, d), expr(Sh::V, d))
                    .prop_map(|(u, v)| format!("mse({u}, {v})"))
                    .boxed(),
            );
            options.push(
                (expr(Sh::S, d), expr(Sh::S, d))
                    .prop_map(|(u, v)| format!("bce_logits({u}, {v})"))
                    .boxed(),
            );
            options.push(
                (expr(Sh::V, d), expr(Sh::V, d))
                    .prop_map(|(u, v)| format!("huber({u}, {v})"))
                    .boxed(),
            );
        }
        Sh::V => {
            let f = proptest::sample::select(&["softmax", "log_softmax"]);
            options.push(
                (f, expr(Sh::V, d))
                    .prop_map(|(f, e)| format!("{f}({e})"))
                    .boxed(),
            );
            options.push(
                (expr(Sh::M, d), 0..2usize)
                    .prop_map(|(m, i)| format!("({m})[{i}, :]"))
                    .boxed(),
            );
            options.push(
                (expr(Sh::S, d), expr(Sh::S, d), expr(Sh::M, d))
                    .prop_map(|(p, q, m)| format!("([{p}, {q}] @ {m})"))
                    .boxed(),
            );
            options.push(
                (expr(Sh::S, d), expr(Sh::S, d), expr(Sh::S, d))
                    .prop_map(|(p, q, r)| format!("[{p}, {q}, {r}]"))
                    .boxed(),
            );
            options.push(
                (expr(Sh::M, d), expr(Sh::V, d))
                    .prop_map(|(m, v)| format!("(({m}).T @ ({m} @ {v}))"))
                    .boxed(),
            );
            options.push(expr(Sh::V, d).prop_map(|v| format!("({v})[0:3]")).boxed());
        }
        Sh::M => {
            options.push(
                (expr(Sh::S, d), expr(Sh::S, d), expr(Sh::V, d))
                    .prop_map(|(p, q, v)| format!("outer([{p}, {q}], {v})"))
                    .boxed(),
            );
            options.push(
                (expr(Sh::V, d), expr(Sh::V, d))
                    .prop_map(|(u, v)| format!("[{u}, {v}]"))
                    .boxed(),
            );
            options.push(expr(Sh::M, d).prop_map(|m| format!("(({m}).T).T")).boxed());
            options.push(
                (expr(Sh::M, d), expr(Sh::M, d))
                    .prop_map(|(m, n)| format!("({m} @ ({n}).T @ {m})"))
                    .boxed(),
            );
        }
    }
    proptest::strategy::Union::new(options).boxed()
}

fn program() -> impl Strategy<Value = String> {
    (
        expr(Sh::S, 3),
        expr(Sh::V, 2),
        expr(Sh::M, 2),
        expr(Sh::S, 2),
    )
        .prop_map(|(l, v, m, k)| {
            format!(
                "{HEADER}let k = {k}\nloss {l} + k\noutput v = {v}\noutput m = {m}\nmetric k = k\n"
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_programs_agree_with_the_interpreter(src in program(), seed in any::<u64>()) {
        let Some((_, fs)) = programs(&src) else {
            return Err(TestCaseError::reject("does not compile"));
        };
        let mut inexact = 0;
        for (kind, f) in &fs {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            let params = random_params(f, &mut rng);
            let inputs = random_inputs(f, &mut rng);
            if let Err(e) = compare(f, &params, &inputs, &mut inexact) {
                return Err(TestCaseError::fail(format!("{kind}: {e}\n{src}\n{f}")));
            }
            let n = 1 + (seed % 9) as usize;
            let examples = random_examples(f, n, &mut rng);
            let jits = batched(f).map_err(TestCaseError::fail)?;
            let interpreted = interpret(f, &params, &examples);
            for jit in &jits {
                if let Err(e) = compare_batch(jit, &params, &examples, &interpreted, &mut inexact) {
                    return Err(TestCaseError::fail(format!("{kind} batch: {e}\n{src}\n{f}")));
                }
            }
        }
    }
}

#[test]
fn most_generated_programs_compile() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = program();
    let mut ok = 0;
    let mut errors = Vec::new();
    for _ in 0..50 {
        let src = strategy.new_tree(&mut runner).unwrap().current();
        match gradc::compile(&src) {
            Ok(_) => ok += 1,
            Err(d) => errors.push(format!("{}\n{src}", d[0].message)),
        }
    }
    assert!(
        ok >= 45,
        "{ok}/50 compile; first failures:\n{}",
        errors.join("\n")
    );
}
