//! `dtype = f32`: the batched JIT in f32 against the f64 arithmetic, and
//! training in f32 against training in f64.
//!
//! - The JIT: for every example and `tests/cases/check` program, forward
//!   and gradient, the f32 batched function (per-example outputs and
//!   means) against the f64 one (the interpreter's bits) run on the same
//!   f32-rounded parameters and inputs: every buffer within
//!   [`JIT_ULPS`] f32 epsilons of its largest magnitude (a mean of n
//!   examples n more; a normwise bound:
//!   a sum's rounding error scales with its terms, not with its result).
//! - Training: every example and small bench workload trained in f32 and in f64
//!   as its train block says, the loss over the training data at the final
//!   parameters within [`LOSS_TOL`] relative (the README states it), or
//!   both at 0 as far as f32 resolves it.
//! - The CLI: `--dtype`, its errors, and the JSON summary's `dtype`.

use std::path::{Path, PathBuf};

use gradc::autodiff::check::random_inputs;
use gradc::backend::{compile_batched_with, BatchOptions, BatchedFunction, Reduce};
use gradc::dtype::Dtype;
use gradc::ir::{interp, Function};
use gradc::shape::Tensor;
use rand::{Rng, RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::common::{examples, files, gradc, root};

#[path = "../../benches/workloads/data.rs"]
#[allow(dead_code)]
mod bench_data;

/// How far an f32 buffer may be from the f64 one, in f32 epsilons of the
/// buffer's largest magnitude.
const JIT_ULPS: f64 = 64.0;

/// The loss after training in f32, relative to f64's.
const LOSS_TOL: f64 = 1e-4;

/// `xs` rounded to f32 and back.
fn rounded(xs: &[f64]) -> Vec<f64> {
    xs.iter().map(|&x| f64::from(x as f32)).collect()
}

/// Standard-normal parameters of `f`'s shapes, rounded to f32.
fn random_params(f: &Function, rng: &mut impl Rng) -> Vec<Tensor> {
    f.params
        .iter()
        .map(|s| {
            let data: Vec<f64> = (0..s.shape.size())
                .map(|_| rng.sample(StandardNormal))
                .collect();
            Tensor::new(s.shape.clone(), rounded(&data))
        })
        .collect()
}

/// The f64 and the f32 batched functions of `f`, with per-example outputs.
fn both(f: &Function) -> (BatchedFunction, BatchedFunction) {
    let options = |dtype| BatchOptions {
        per_example_outputs: true,
        dtype,
        ..BatchOptions::default()
    };
    let compile = |dtype| compile_batched_with(f, options(dtype)).unwrap();
    (compile(Dtype::F64), compile(Dtype::F32))
}

/// The largest magnitude of the finite numbers of `xs`, at least the
/// smallest normal f32.
fn magnitude<'a>(xs: impl IntoIterator<Item = &'a f64>) -> f64 {
    xs.into_iter()
        .filter(|x| x.is_finite())
        .fold(f64::from(f32::MIN_POSITIVE), |m, x| m.max(x.abs()))
}

/// The largest error of `got` from `want` in f32 epsilons of `scale`;
/// `None` if one is finite where the other is not.
fn ulps(want: &[f64], got: &[f64], scale: f64) -> Option<f64> {
    let mut worst: f64 = 0.0;
    for (&w, &g) in want.iter().zip(got) {
        if w.is_finite() != g.is_finite() {
            return None;
        }
        if w.is_finite() {
            worst = worst.max((w - g).abs() / (scale * Dtype::F32.epsilon()));
        }
    }
    Some(worst)
}

#[test]
fn the_f32_jit_is_the_f64_arithmetic_within_f32_rounding() {
    let files: Vec<_> = examples()
        .into_iter()
        .chain(files("tests/cases/check", "grad"))
        .collect();
    let (mut batches, mut worst) = (0, (0.0, String::new()));
    let mut failures = Vec::new();
    for (name, path) in &files {
        let src = std::fs::read_to_string(path).unwrap();
        let Ok(compiled) = gradc::compile(&src) else {
            continue;
        };
        let mut programs = vec![("forward", compiled.ir.clone())];
        programs.extend(compiled.gradient().ok().map(|g| ("gradient", g)));
        for (kind, f) in &programs {
            let (f64s, f32s) = both(f);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
            let initial: Vec<Tensor> = compiled
                .initial_params(compiled.seed())
                .iter()
                .map(|t| Tensor::new(t.shape.clone(), rounded(&t.data)))
                .collect();
            for params in [initial, random_params(f, &mut rng)] {
                for n in [1, 7, 257] {
                    let examples: Vec<Vec<Tensor>> = (0..n)
                        .map(|_| {
                            let x = random_inputs(f, &mut rng);
                            x.iter()
                                .map(|t| Tensor::new(t.shape.clone(), rounded(&t.data)))
                                .collect()
                        })
                        .collect();
                    let rows: Vec<Vec<f64>> = (0..f.inputs.len())
                        .map(|k| examples.iter().flat_map(|x| x[k].data.clone()).collect())
                        .collect();
                    let rows: Vec<&[f64]> = rows.iter().map(|r| &r[..]).collect();
                    batches += 1;
                    let (want, got) =
                        match (f64s.run(&params, &rows, n), f32s.run(&params, &rows, n)) {
                            (Ok(w), Ok(g)) => (w, g),
                            (Err(w), Err(g)) => {
                                assert_eq!(w, g, "{name} ({kind}): the same fault");
                                continue;
                            }
                            (w, g) => {
                                failures.push(format!(
                                    "{name} ({kind}): f64 {:?}, f32 {:?}",
                                    w.err(),
                                    g.err()
                                ));
                                continue;
                            }
                        };
                    // The examples' own values: a mean's rounding errors
                    // scale with its terms, not with the mean.
                    let each: Vec<_> = examples
                        .iter()
                        .map(|x| interp::run_outputs(f, &params, x).unwrap())
                        .collect();
                    for ((o, w), g) in f64s.outputs().iter().zip(&want).zip(&got) {
                        let scale = magnitude(each.iter().flat_map(|outs| &outs[o.index].1.data));
                        let out = format!(
                            "{name} ({kind}) {} ({:?}, n = {n})",
                            f.outputs[o.index].name, o.reduce
                        );
                        // A mean over n examples adds up to n more roundings.
                        let bound = match o.reduce {
                            Reduce::PerExample => JIT_ULPS,
                            Reduce::Mean => JIT_ULPS + n as f64,
                        };
                        match ulps(&w.data, &g.data, scale) {
                            Some(e) if e <= bound => {
                                if e > worst.0 {
                                    worst = (e, out);
                                }
                            }
                            e => failures.push(format!(
                                "{out}: {e:?} epsilons\n  f64 {:?}\n  f32 {:?}",
                                &w.data[..w.data.len().min(8)],
                                &g.data[..g.data.len().min(8)]
                            )),
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(batches >= 2 * 7 * 6, "only {batches} batches ran");
    eprintln!(
        "{batches} batches within {JIT_ULPS} epsilons; the worst {:.1}: {}",
        worst.0, worst.1
    );
}

/// The program at `path` trained as its train block says, in `dtype`.
fn train(path: &Path, dtype: Dtype) -> Result<gradc::runtime::Report, String> {
    let src = std::fs::read_to_string(path).unwrap();
    let c = gradc::compile(&src).map_err(|e| format!("{e:?}"))?;
    let cfg = c.typed.train.clone().unwrap_or_default();
    let opts = gradc::runtime::Options {
        base_dir: path.parent().unwrap().to_path_buf(),
        dtype: Some(dtype),
        ..Default::default()
    };
    gradc::runtime::train(&c, &cfg, &opts, &mut ()).map_err(|e| e.to_string())
}

/// Every example (but the full-batch methods', which stay f64) and the
/// small training workloads of the benches: the loss over the training data after
/// training in f32 within [`LOSS_TOL`] of f64's, relative.
#[test]
fn every_example_and_workload_trains_in_f32_to_the_f64_loss() {
    bench_data::generate();
    let mut files: Vec<PathBuf> = examples().into_iter().map(|(_, path)| path).collect();
    // Not `mlp784`: its 80 steps of 784 x 256 products take minutes in a
    // debug build (the benches run it in f32, optimised).
    for w in ["logistic20", "digits_mlp"] {
        files.push(root().join(format!("benches/workloads/{w}.grad")));
    }
    let mut failures = Vec::new();
    let mut trained = 0;
    for path in &files {
        let file = path
            .strip_prefix(root())
            .unwrap_or(path)
            .display()
            .to_string();
        let f64s = train(path, Dtype::F64).unwrap_or_else(|e| panic!("{file}: {e}"));
        let f32s = match train(path, Dtype::F32) {
            Ok(r) => r,
            Err(e) if e.contains("is a full-batch method and runs in f64") => continue,
            Err(e) => {
                failures.push(format!("{file}: {e}"));
                continue;
            }
        };
        trained += 1;
        assert_eq!((f64s.dtype, f32s.dtype), (Dtype::F64, Dtype::F32));
        let (a, b) = (f64s.train.loss, f32s.train.loss);
        let rel = (a - b).abs() / a.abs().max(f64::MIN_POSITIVE);
        // A loss trained to its minimum of 0 (Rosenbrock's) ends at f32's
        // resolution: both below epsilon times the first epoch's loss.
        let floor = f64s.history[0].loss.abs() * Dtype::F32.epsilon();
        let at_zero = a.abs() <= floor && b.abs() <= floor;
        eprintln!("{file}: f64 {a:e}, f32 {b:e}, relative {rel:.1e}");
        if !(rel <= LOSS_TOL || at_zero) {
            failures.push(format!(
                "{file}: f64 loss {a:e}, f32 {b:e} ({rel:.1e} relative)"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(trained >= 10, "only {trained} programs trained in f32");
}

#[test]
fn the_dtype_flag_overrides_the_block_and_the_summary_says_it() {
    let json = |args: &[&str]| {
        let (ok, out, err) = gradc(args);
        assert!(ok, "{args:?}: {err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let base = ["train", "examples/logistic.grad", "-q", "--json"];
    let f64s = json(&base);
    let f32s = json(&[&base[..], &["--dtype", "f32"]].concat());
    assert_eq!(f64s["dtype"], "f64");
    assert_eq!(f32s["dtype"], "f32");
    let loss = |v: &serde_json::Value| v["train"]["loss"].as_f64().unwrap();
    let (a, b) = (loss(&f64s), loss(&f32s));
    assert_ne!(a, b, "the f32 run rounds differently");
    assert!((a - b).abs() <= LOSS_TOL * a, "{a} vs {b}");
    // The text summary says f32 (and nothing for the default).
    let (ok, out, _) = gradc(&["train", "examples/logistic.grad", "-q", "--dtype", "f32"]);
    assert!(
        ok && out.lines().next().unwrap().contains(", in f32: "),
        "{out}"
    );
    let (ok, out, _) = gradc(&["train", "examples/logistic.grad", "-q"]);
    assert!(ok && !out.contains("f32"), "{out}");
}

#[test]
fn a_block_with_dtype_f32_trains_in_f32_unless_the_flag_says_f64() {
    let dir = crate::common::temp_dir("f32_block");
    let src = std::fs::read_to_string(root().join("examples/logistic.grad")).unwrap();
    let src = src.replace("train {", "train {\n  dtype = f32");
    assert!(src.contains("dtype = f32"));
    let file = dir.join("logistic.grad");
    std::fs::write(&file, src).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::copy(
        root().join("examples/data/blobs.csv"),
        dir.join("data/blobs.csv"),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let run = |extra: &[&str]| {
        let (ok, out, err) = gradc(&[&["train", file, "-q", "--json"], extra].concat());
        assert!(ok, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["dtype"].clone()
    };
    assert_eq!(run(&[]), "f32");
    assert_eq!(run(&["--dtype", "f64"]), "f64");
}

#[test]
fn f32_on_the_interpreter_or_a_full_batch_method_is_a_clear_error() {
    let (ok, _, err) = gradc(&[
        "train",
        "examples/logistic.grad",
        "--dtype",
        "f32",
        "--backend",
        "interp",
    ]);
    assert!(!ok);
    assert!(err.contains("`dtype = f32` runs on the JIT only"), "{err}");
    let (ok, _, err) = gradc(&["train", "examples/curve_fit.grad", "--dtype", "f32"]);
    assert!(!ok);
    assert!(
        err.contains("is a full-batch method and runs in f64"),
        "{err}"
    );
    let (ok, _, err) = gradc(&["train", "examples/logistic.grad", "--dtype", "f16"]);
    assert!(!ok);
    assert!(err.contains("possible values: f64, f32"), "{err}");
}

#[test]
fn eval_and_predict_run_the_data_in_f32() {
    let dir = crate::common::temp_dir("f32_eval");
    let weights = dir.join("w.safetensors");
    let weights = weights.to_str().unwrap();
    let (ok, _, err) = gradc(&["train", "examples/logistic.grad", "-q", "--save", weights]);
    assert!(ok, "{err}");
    let eval = |dtype: &str| {
        let args = [
            "eval",
            "examples/logistic.grad",
            "--weights",
            weights,
            "--json",
            "--dtype",
            dtype,
        ];
        let (ok, out, err) = gradc(&args);
        assert!(ok, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["loss"]
            .as_f64()
            .unwrap()
    };
    let (a, b) = (eval("f64"), eval("f32"));
    assert_ne!(a, b);
    assert!((a - b).abs() <= 1e-6 * a, "{a} vs {b}");
    // The shards' f32 sums are added in f64 (the shard rule), so the mean
    // is not one f32 widened: it keeps digits beyond f32's.
    assert_ne!(f64::from(b as f32), b);
    let predict = |dtype: &str| {
        let args = [
            "predict",
            "examples/logistic.grad",
            "--weights",
            weights,
            "--data",
            "--dtype",
            dtype,
        ];
        let (ok, out, err) = gradc(&args);
        assert!(ok, "{err}");
        out.lines()
            .skip(1)
            .map(|l| l.parse::<f64>().unwrap())
            .collect::<Vec<f64>>()
    };
    let (p, q) = (predict("f64"), predict("f32"));
    assert_eq!(p.len(), q.len());
    for (x, y) in p.iter().zip(&q) {
        assert!((x - y).abs() <= 1e-6, "{x} vs {y}");
        assert_eq!(f64::from(*y as f32), *y);
    }
}

/// A model of width `s`: products, elementwise runs, reductions, softmax,
/// argmax and a class index, so that the f32 code's four-lane loops meet
/// every remainder (`s` mod 4) on each path.
fn of_width(s: usize) -> String {
    format!(
        "input x: [{s}]\ninput c\n\
         param W: [{s}, {s}] = normal(0, 1)\nparam V: [3, {s}, {s}] = normal(0, 1)\nparam b: [{s}] = normal(0, 1)\n\
         let h = tanh(W @ x + b) * 2 - x / 3\n\
         let g = relu(V[0] @ h) + outer(h, x)[0] + sum(V, axis = 0)[0]\n\
         let p = softmax(g + one_hot(c, {s}))\n\
         loss sum(p * log(p + 1)) + max(h) + norm(g) + logsumexp(h)\n\
         metric best = argmax(g) == c\n\
         output p = p\n"
    )
}

#[test]
fn every_width_agrees_and_a_bad_class_is_the_same_fault() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    for s in 1..=9 {
        let src = of_width(s);
        let c = gradc::compile(&src).unwrap_or_else(|e| panic!("{src}\n{e:?}"));
        for (kind, f) in [
            ("forward", c.ir.clone()),
            ("gradient", c.gradient().unwrap()),
        ] {
            let (f64s, f32s) = both(&f);
            let params = random_params(&f, &mut rng);
            let n = 5;
            let x: Vec<f64> = (0..n * s).map(|_| rng.sample(StandardNormal)).collect();
            let x = rounded(&x);
            let mut classes: Vec<f64> = (0..n).map(|k| (k % s) as f64).collect();
            let rows = [&x[..], &classes[..]];
            let (want, got) = (
                f64s.run(&params, &rows, n).unwrap(),
                f32s.run(&params, &rows, n).unwrap(),
            );
            for ((o, w), g) in f64s.outputs().iter().zip(&want).zip(&got) {
                let name = &f.outputs[o.index].name;
                let scale = magnitude(&w.data).max(1.0);
                let e = ulps(&w.data, &g.data, scale);
                assert!(
                    e.is_some_and(|e| e <= JIT_ULPS),
                    "width {s} ({kind}) {name}: {e:?}\n{:?}\n{:?}",
                    w.data,
                    g.data
                );
            }
            // The fourth example's class is out of range: the same fault
            // (instruction, class and example) from both.
            classes[3] = s as f64 + 0.5;
            let rows = [&x[..], &classes[..]];
            let (w, g) = (f64s.run(&params, &rows, n), f32s.run(&params, &rows, n));
            assert!(w.is_err(), "width {s} ({kind})");
            assert_eq!(w.unwrap_err(), g.unwrap_err(), "width {s} ({kind})");
        }
    }
}
