//! Loops: `loop ... for t in 0..T { ... }`, comprehensions and computed
//! indices, end to end.
//!
//! - A loop computes what its hand-unrolled program computes, to the bit:
//!   outputs, loss and gradients, on the interpreter, the JIT per example and
//!   the JIT per batch (the unrolled text is built here, step by step).
//! - The gradient through a loop (1,000 steps too) and the Hessian through a
//!   loop agree with central finite differences.
//! - A 10,000-step loop runs on every engine, with the same bits.
//! - The batched JIT agrees with the interpreter on batches of examples.
//! - Bad programs (`tests/cases/errors/loops*.grad`) exit 1 from the CLI
//!   with a located error and no panic; an index out of range at run time
//!   names the `.grad` line and the data row.
//!
//! Whole programs with loops (the examples, the GradBench LSTM) and what
//! loops keep for their reverse are in `loop_programs`.

use std::fmt::Write;
use std::process::Command;

use gradc::autodiff::{self, check};
use gradc::eval::{Evaluator, Mode};
use gradc::ir::Function;
use gradc::shape::Tensor;
use rand::{Rng, RngExt, SeedableRng};
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::common::{batch_agrees, compile, each_case, files, root, temp_dir};

// ---------------------------------------------------------------------------
// Helpers

pub(crate) const MODES: [Mode; 3] = [Mode::Interp, Mode::PerExample, Mode::Batched];

/// Standard-normal parameters of `f`'s shapes, scaled by `scale`.
fn random_params(f: &Function, scale: f64, rng: &mut impl Rng) -> Vec<Tensor> {
    f.params
        .iter()
        .map(|s| {
            let data = (0..s.shape.size())
                .map(|_| scale * rng.sample::<f64, _>(StandardNormal))
                .collect();
            Tensor::new(s.shape.clone(), data)
        })
        .collect()
}

/// Seeded parameters and inputs for a program.
pub(crate) fn point(f: &Function, seed: u64) -> (Vec<Tensor>, Vec<Tensor>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let params = random_params(f, 0.5, &mut rng);
    let inputs = check::random_inputs(f, &mut rng);
    (params, inputs)
}

/// The outputs of `f` in `mode`, each with its name, as bits.
pub(crate) fn run_bits(
    f: &Function,
    mode: Mode,
    params: &[Tensor],
    inputs: &[Tensor],
) -> Vec<(String, Vec<u64>)> {
    let e = Evaluator::compile(f, mode).unwrap_or_else(|e| panic!("{mode:?}: {e:?}\n{f}"));
    let outs = e
        .outputs(params, inputs)
        .unwrap_or_else(|e| panic!("{mode:?}: {e}\n{f}"));
    f.outputs
        .iter()
        .zip(outs)
        .map(|(o, t)| (o.name.clone(), t.data.iter().map(|x| x.to_bits()).collect()))
        .collect()
}

/// The forward and the gradient program of a source.
pub(crate) fn programs(src: &str) -> [Function; 2] {
    let c = compile(src);
    let g = c
        .gradient()
        .unwrap_or_else(|d| panic!("no gradient: {}\n{src}", d.message));
    [c.ir, g]
}

/// `looped` and `unrolled` give the same outputs, loss and gradients, bit
/// for bit, in every mode (a captured value's gradient is summed in the
/// unrolled order: a reverse loop continues the running sum); and every
/// mode gives the interpreter's bits.
fn same_as_unrolled(looped: &str, unrolled: &str) {
    let a = programs(looped);
    let b = programs(unrolled);
    for seed in 0..2 {
        let (params, inputs) = point(&a[0], seed);
        for (fa, fb) in a.iter().zip(&b) {
            let reference = run_bits(fa, Mode::Interp, &params, &inputs);
            for mode in MODES {
                let got = run_bits(fa, mode, &params, &inputs);
                assert_eq!(
                    got, reference,
                    "{mode:?} differs from the interpreter\n{looped}"
                );
                let want = run_bits(fb, mode, &params, &inputs);
                let what = format!(
                    "{mode:?}: the loop and its unrolling differ\n-- loop --\n{looped}\n-- unrolled --\n{unrolled}"
                );
                assert_eq!(got, want, "{what}");
            }
        }
    }
}

/// Source text built a line at a time.
#[derive(Default)]
struct Src(String);

impl Src {
    fn line(&mut self, text: impl AsRef<str>) -> &mut Self {
        self.0.push_str(text.as_ref());
        self.0.push('\n');
        self
    }
}

// ---------------------------------------------------------------------------
// Loops against their unrolled programs

const T: usize = 5;

/// The declarations shared by a looped program and its unrolling.
fn rnn_header(s: &mut Src) {
    s.line(format!("input x: [{T}, 2]"))
        .line("input y")
        .line("param W: [3, 3]")
        .line("param U: [3, 2]")
        .line("param h0: [3]")
        .line("param v: [3]");
}

#[test]
fn a_scalar_accumulation_is_its_unrolling() {
    let head = format!("input x: [{T}]\nparam w\nparam a\n");
    let mut looped = Src(head.clone());
    looped
        .line(format!(
            "let s = loop s = a for t in 0..{T} {{ s * w + x[t]^2 }}"
        ))
        .line("loss s^2")
        .line("output s = s");
    let mut unrolled = Src(head);
    unrolled.line("let s0 = a");
    for t in 0..T {
        unrolled.line(format!("let s{} = s{t} * w + x[{t}]^2", t + 1));
    }
    unrolled
        .line(format!("let s = s{T}"))
        .line("loss s^2")
        .line("output s = s");
    same_as_unrolled(&looped.0, &unrolled.0);
}

/// Carried tensors computed element by element: `u`'s new value reads the
/// old `u` first and is computed where the old one lies; `s`'s new value
/// comes before the step's last reader of the old `s` (`s * w`), so it is
/// computed beside it, not over it; `r`'s is in place in the forward
/// program, not in the gradient's, which saves the old `r` of every step
/// for `v`'s gradient. Nine elements: pairs and a last one.
#[test]
fn carries_updated_element_by_element_are_their_unrolling() {
    let head = "input x: [9]\nparam w: [9]\nparam v: [9]\nparam a: [9]\n";
    let mut looped = Src(head.into());
    looped
        .line(format!(
            "let (s, u, r) = loop (s, u, r) = (a, x, a) for t in 0..{T} {{ (u * 2 + x, s * w + u, r * v + x) }}"
        ))
        .line("loss sum(s * u * r)")
        .line("output s = s")
        .line("output u = u")
        .line("output r = r");
    let mut unrolled = Src(head.into());
    unrolled
        .line("let s0 = a")
        .line("let u0 = x")
        .line("let r0 = a");
    for t in 0..T {
        unrolled
            .line(format!("let s{} = u{t} * 2 + x", t + 1))
            .line(format!("let u{} = s{t} * w + u{t}", t + 1))
            .line(format!("let r{} = r{t} * v + x", t + 1));
    }
    unrolled
        .line(format!("loss sum(s{T} * u{T} * r{T})"))
        .line(format!("output s = s{T}"))
        .line(format!("output u = u{T}"))
        .line(format!("output r = r{T}"));
    same_as_unrolled(&looped.0, &unrolled.0);
}

/// Two carried values given the same new value (one instruction, once
/// the duplicate is merged): each carried value gets it.
#[test]
fn two_carries_with_one_new_value_are_their_unrolling() {
    let head = "input x: [9]\nparam a: [9]\n";
    let mut looped = Src(head.into());
    looped
        .line(format!(
            "let (p, q) = loop (p, q) = (a, x) for t in 0..{T} {{ (p * q + x, p * q + x) }}"
        ))
        .line("loss sum(p * q)")
        .line("output p = p")
        .line("output q = q");
    let mut unrolled = Src(head.into());
    unrolled.line("let p0 = a").line("let q0 = x");
    for t in 0..T {
        unrolled
            .line(format!("let p{} = p{t} * q{t} + x", t + 1))
            .line(format!("let q{} = p{t} * q{t} + x", t + 1));
    }
    unrolled
        .line(format!("loss sum(p{T} * q{T})"))
        .line(format!("output p = p{T}"))
        .line(format!("output q = q{T}"));
    same_as_unrolled(&looped.0, &unrolled.0);
}

#[test]
fn an_rnn_step_is_its_unrolling() {
    let mut looped = Src::default();
    rnn_header(&mut looped);
    looped
        .line(format!(
            "let h = loop h = h0 for t in 0..{T} {{ tanh(W @ h + U @ x[t]) }}"
        ))
        .line("loss (dot(v, h) - y)^2")
        .line("output h = h");
    let mut unrolled = Src::default();
    rnn_header(&mut unrolled);
    for t in 0..T {
        unrolled.line(format!("let h{} = tanh(W @ h{t} + U @ x[{t}])", t + 1));
    }
    unrolled
        .line(format!("let h = h{T}"))
        .line("loss (dot(v, h) - y)^2")
        .line("output h = h");
    same_as_unrolled(&looped.0, &unrolled.0);
}

/// The LSTM-style cell, its gates written as block lets.
const LSTM_HEAD: &str = "input x: [4, 2]
input y: [3]
param Wi: [3, 2]
param Ui: [3, 3]
param bi: [3]
param Wc: [3, 2]
param Uc: [3, 3]
param bc: [3]
param h0: [3]
param c0: [3]
";

#[test]
fn an_lstm_style_tuple_carry_is_its_unrolling() {
    let mut looped = Src(LSTM_HEAD.into());
    looped
        .line("let (h, c) = loop (h, c) = (h0, c0) for t in 0..4 {")
        .line("  let i = sigmoid(Wi @ x[t] + Ui @ h + bi)")
        .line("  let g = tanh(Wc @ x[t] + Uc @ h + bc)")
        .line("  let c2 = c + i * g")
        .line("  (tanh(c2), c2)")
        .line("}")
        .line("loss mse(h, y) + sum(c^2)")
        .line("output c = c");
    let mut unrolled = Src(LSTM_HEAD.into());
    unrolled.line("let hh0 = h0").line("let cc0 = c0");
    for t in 0..4 {
        let n = t + 1;
        unrolled
            .line(format!("let i{n} = sigmoid(Wi @ x[{t}] + Ui @ hh{t} + bi)"))
            .line(format!("let g{n} = tanh(Wc @ x[{t}] + Uc @ hh{t} + bc)"))
            .line(format!("let cc{n} = cc{t} + i{n} * g{n}"))
            .line(format!("let hh{n} = tanh(cc{n})"));
    }
    unrolled
        .line("loss mse(hh4, y) + sum(cc4^2)")
        .line("output c = cc4");
    same_as_unrolled(&looped.0, &unrolled.0);
}

#[test]
fn a_comprehension_is_its_tensor_literal() {
    let head = format!("input x: [{T}, 2]\ninput y: [{T}, 3]\nparam W: [3, 2]\nparam b: [3]\n");
    let mut looped = Src(head.clone());
    looped
        .line(format!("let ys = [tanh(W @ x[t] + b) for t in 0..{T}]"))
        .line("loss mse(ys, y)")
        .line("output ys = ys");
    let rows: Vec<String> = (0..T).map(|t| format!("tanh(W @ x[{t}] + b)")).collect();
    let mut unrolled = Src(head);
    unrolled
        .line(format!("let ys = [{}]", rows.join(", ")))
        .line("loss mse(ys, y)")
        .line("output ys = ys");
    same_as_unrolled(&looped.0, &unrolled.0);
}

/// Nested loops and their unrolling.
fn nested_loops() -> (String, String) {
    let (outer, inner) = (3, 2);
    let head = format!("input x: [{outer}, {inner}, 3]\nparam W: [3, 3]\nparam h0: [3]\nparam a\n");
    let mut looped = Src(head.clone());
    looped
        .line(format!("let h = loop h = h0 for i in 0..{outer} {{"))
        .line(format!(
            "  let g = loop g = h for j in 0..{inner} {{ tanh(W @ g + x[i][j]) }}"
        ))
        .line("  a * g + h")
        .line("}")
        .line("loss sum(h^2)")
        .line("output h = h");
    let mut unrolled = Src(head);
    unrolled.line("let h_0 = h0");
    for i in 0..outer {
        unrolled.line(format!("let g_{i}_0 = h_{i}"));
        for j in 0..inner {
            unrolled.line(format!(
                "let g_{i}_{} = tanh(W @ g_{i}_{j} + x[{i}][{j}])",
                j + 1
            ));
        }
        unrolled.line(format!("let h_{} = a * g_{i}_{inner} + h_{i}", i + 1));
    }
    unrolled
        .line(format!("let h = h_{outer}"))
        .line("loss sum(h^2)")
        .line("output h = h");
    (looped.0, unrolled.0)
}

/// A function with a loop, called twice, and its unrolling.
fn loop_in_a_function() -> (String, String) {
    let head = "input xa: [3, 2]\ninput xb: [3, 2]\nparam W: [2, 2]\nparam h0: [2]\n";
    let mut looped = Src(head.into());
    looped
        .line("fn run(h0, x) = loop h = h0 for t in 0..3 { tanh(W @ h + x[t]) }")
        .line("loss sum(run(h0, xa)) * sum(run(2 * h0, xb))")
        .line("output r = run(h0, xa)");
    let mut unrolled = Src(head.into());
    unrolled.line("fn run(h0, x) = {").line("  let h_0 = h0");
    for t in 0..3 {
        unrolled.line(format!("  let h_{} = tanh(W @ h_{t} + x[{t}])", t + 1));
    }
    unrolled
        .line("  h_3")
        .line("}")
        .line("loss sum(run(h0, xa)) * sum(run(2 * h0, xb))")
        .line("output r = run(h0, xa)");
    (looped.0, unrolled.0)
}

#[test]
fn nested_loops_are_their_unrolling() {
    let (looped, unrolled) = nested_loops();
    same_as_unrolled(&looped, &unrolled);
}

#[test]
fn a_loop_in_a_function_body_is_its_unrolling() {
    let (looped, unrolled) = loop_in_a_function();
    same_as_unrolled(&looped, &unrolled);
}

// ---------------------------------------------------------------------------
// Gradients and Hessians against finite differences

/// The largest relative error of the gradient of `src` against central
/// differences, on the interpreter, at a seeded point.
fn gradient_error(src: &str, seed: u64) -> f64 {
    let [f, g] = programs(src);
    let (params, inputs) = point(&f, seed);
    check::check(&f, &g, &params, &inputs)
        .unwrap_or_else(|e| panic!("{e}\n{src}"))
        .iter()
        .map(|c| c.max_rel_error)
        .fold(0.0, |a, e| if e.is_nan() { e } else { a.max(e) })
}

#[test]
fn gradients_through_loops_match_finite_differences() {
    let (nested, in_fn) = (nested_loops().0, loop_in_a_function().0);
    let lstm = format!(
        "{LSTM_HEAD}let (h, c) = loop (h, c) = (h0, c0) for t in 0..4 {{
  let i = sigmoid(Wi @ x[t] + Ui @ h + bi); let g = tanh(Wc @ x[t] + Uc @ h + bc)
  (tanh(c + i * g), c + i * g)
}}
loss mse(h, y) + sum(c^2)
"
    );
    let rnn = "input x: [6, 2]\ninput y\nparam W: [3, 3]\nparam U: [3, 2]\nparam v: [3]
let h = loop h = [0, 0, 0] for t in 0..6 { tanh(W @ h + U @ x[t]) }
loss (dot(v, h) - y)^2\n";
    let comprehension = "input x: [4, 2]\nparam W: [3, 2]\nparam b: [3]
let ys = [softmax(W @ x[t] + b) * t for t in 0..4]\nloss sum(ys * ys.T.T)\n";
    let indices = "input x: [5]\nparam w: [5]
let s = loop s = 0 for t in 1..5 { s + w[t] * x[t - 1] + w[t - 1] * s }
loss s^2\n";
    let sources = [
        ("rnn", rnn.to_string()),
        ("lstm", lstm),
        ("comprehension", comprehension.to_string()),
        ("indices", indices.to_string()),
        ("nested", nested),
        ("in a fn", in_fn),
    ];
    each_case(sources.map(|(n, s)| (n.to_string(), s)), |name, src| {
        for seed in 0..2 {
            let err = gradient_error(&src, seed);
            assert!(err <= 1e-6, "{name}: relative error {err:e}\n{src}");
        }
    });
}

#[test]
fn a_thousand_step_loop_has_the_finite_difference_gradient() {
    let src = "input x: [1000]\nparam W: [2, 2]\nparam u: [2]\nparam v: [2]
let h = loop h = [0, 0] for t in 0..1000 { tanh(W @ h + u * x[t]) }
loss (dot(v, h) - 1)^2\n";
    for seed in 0..2 {
        let err = gradient_error(src, seed);
        assert!(err <= 1e-6, "relative error {err:e}");
    }
}

#[test]
fn the_hessian_through_a_loop_is_the_derivative_of_the_gradient() {
    let src = "input x: [4]\nparam W: [2, 2]\nparam v: [2]
let h = loop h = [0.5, -0.5] for t in 0..4 { tanh(W @ h + x[t]) }
loss dot(v, h)^2 + sum(h^4)\n";
    let [f, g] = programs(src);
    let (params, inputs) = point(&f, 3);
    let hessian = autodiff::hessian(&f, &params, &inputs).unwrap();
    let n: usize = params.iter().map(|p| p.data.len()).sum();
    assert_eq!((hessian.len(), hessian[0].len()), (n, n));
    // Central differences of the gradient program, one element at a time.
    let flat_gradient = |ps: &[Tensor]| -> Vec<f64> {
        let (_, grads) = check::gradients(&g, ps, &inputs).unwrap();
        grads.into_iter().flat_map(|t| t.data).collect()
    };
    let mut row = 0;
    for p in 0..params.len() {
        for k in 0..params[p].data.len() {
            let mut up = params.clone();
            up[p].data[k] += check::EPS;
            let mut down = params.clone();
            down[p].data[k] -= check::EPS;
            let (a, b) = (flat_gradient(&up), flat_gradient(&down));
            for col in 0..n {
                let numeric = (a[col] - b[col]) / (2.0 * check::EPS);
                let err = check::relative_error(hessian[row][col], numeric);
                assert!(
                    err <= 1e-6,
                    "H[{row}][{col}] = {}, finite differences {numeric}",
                    hessian[row][col]
                );
            }
            row += 1;
        }
    }
    // Symmetric, as a Hessian is.
    for (i, row) in hessian.iter().enumerate() {
        for (j, h) in row.iter().enumerate().take(i) {
            assert!(check::relative_error(*h, hessian[j][i]) <= 1e-12);
        }
    }
}

// ---------------------------------------------------------------------------
// Long loops and batches

#[test]
fn a_ten_thousand_step_loop_runs_on_every_engine_with_the_same_bits() {
    // Euler's method for dy/dt = -k y from y = 1 to t = 1: close to exp(-k).
    let src = "param k = 0.7
let y = loop y = 1 for t in 0..10000 { y - 0.0001 * k * y }
loss (y - 0.5)^2
output y = y\n";
    let c = compile(src);
    let params = c.initial_params(0);
    let [f, g] = programs(src);
    for prog in [&f, &g] {
        let reference = run_bits(prog, Mode::Interp, &params, &[]);
        for mode in MODES {
            assert_eq!(run_bits(prog, mode, &params, &[]), reference, "{mode:?}");
        }
    }
    let y = f64::from_bits(run_bits(&f, Mode::Batched, &params, &[])[1].1[0]);
    assert!((y - (-0.7f64).exp()).abs() < 1e-4, "y = {y}");
    // d loss / dk = 2 (y - 0.5) dy/dk, and dy/dk = -t y at t = 1.
    let (_, grads) = check::gradients(&g, &params, &[]).unwrap();
    let want = 2.0 * (y - 0.5) * -y;
    assert!(
        (grads[0].item() - want).abs() < 1e-3,
        "{} vs {want}",
        grads[0]
    );
}

/// Loop programs whose batched JIT functions are checked against the
/// interpreter on each example of a batch.
const BATCHED: [&str; 3] = [
    "input x: [5, 2]\ninput y\nparam W: [3, 3] = normal(0, 0.5)\nparam U: [3, 2] = normal(0, 0.5)
param v: [3] = normal(0, 0.5)
let h = loop h = [0, 0, 0] for t in 0..5 { tanh(W @ h + U @ x[t]) }
loss (dot(v, h) - y)^2\nmetric hy = dot(v, h) * y\noutput h = h\n",
    "input x: [4, 3]\ninput y: [4]\nparam W: [2, 3] = normal(0, 0.5)\nparam b: [2]
let ys = [dot(W @ x[t] + b, b) for t in 0..4]
loss mse(ys, y)\noutput ys = ys\n",
    "input x: [6]\nparam a = 0.3\nparam b = -0.2
let (s, m) = loop (s, m) = (0, x[0]) for t in 1..6 { (a * s + x[t] * x[t - 1], max(m, b * x[t])) }
loss s^2 + m\noutput m = m\n",
];

#[test]
fn batched_loops_agree_with_the_interpreter_bit_for_bit() {
    for src in BATCHED {
        let [f, g] = programs(src);
        for prog in [&f, &g] {
            let (params, _) = point(prog, 5);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
            for n in [1, 3, 8] {
                let examples: Vec<Vec<Tensor>> = (0..n)
                    .map(|_| check::random_inputs(prog, &mut rng))
                    .collect();
                batch_agrees(prog, &params, &examples);
            }
        }
    }
}

#[test]
fn training_through_a_loop_gives_the_same_bits_on_every_engine() {
    let dir = temp_dir("loops-train");
    let mut csv = String::new();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    for _ in 0..20 {
        let row: Vec<String> = (0..6)
            .map(|_| format!("{:.3}", rng.sample::<f64, _>(StandardNormal)))
            .collect();
        let _ = writeln!(csv, "{}", row.join(","));
    }
    std::fs::write(dir.join("seq.csv"), csv).unwrap();
    let src = "input x: [5]\ninput y\nparam w: [2] = normal(0, 0.5)\nparam b = 0
let h = loop h = 0 for t in 0..5 { tanh(w[0] * h + w[1] * x[t] + b) }
loss (h - y)^2
train { data = csv(\"seq.csv\", x = 0..5, y = 5)  optimizer = adam(lr = 0.05)  batch = 8  epochs = 3 }\n";
    let c = compile(src);
    let cfg = c.typed.train.clone().unwrap();
    let opts = gradc::runtime::Options {
        base_dir: dir,
        ..Default::default()
    };
    let runs: Vec<_> = [
        gradc::runtime::Mode::Batched,
        gradc::runtime::Mode::PerExample,
        gradc::runtime::Mode::Interp,
    ]
    .into_iter()
    .map(|m| gradc::runtime::train_with(&c, &cfg, &opts, m, &mut ()).unwrap())
    .collect();
    for r in &runs[1..] {
        assert_eq!(r.params, runs[0].params);
        for (x, y) in r.history.iter().zip(&runs[0].history) {
            assert_eq!(x.loss.to_bits(), y.loss.to_bits());
        }
    }
}

/// A tensor literal of constants in a loop's body (a data object of the
/// generated code, named apart from the function's own, and once per step
/// of a short loop, which is unrolled): every engine, per example, per
/// batch and with per-example outputs, gives the interpreter's bits.
const CONSTANT_IN_A_BODY: &str = "input x: [4]
let ys = [x[t] * [1, -1] for t in 0..4]
loss sum(ys)
output ys = ys
";

#[test]
fn a_constant_tensor_in_a_loop_body_runs_on_the_jit() {
    let [f, g] = programs(CONSTANT_IN_A_BODY);
    for prog in [&f, &g] {
        let (params, inputs) = point(prog, 0);
        let reference = run_bits(prog, Mode::Interp, &params, &inputs);
        for mode in [Mode::PerExample, Mode::Batched] {
            assert_eq!(
                run_bits(prog, mode, &params, &inputs),
                reference,
                "{mode:?}"
            );
        }
    }
}

#[test]
fn a_constant_tensor_in_a_loop_body_runs_batched() {
    let [f, g] = programs(CONSTANT_IN_A_BODY);
    for prog in [&f, &g] {
        let (params, inputs) = point(prog, 0);
        batch_agrees(prog, &params, &[inputs.clone(), inputs]);
    }
}

// ---------------------------------------------------------------------------
// Errors from the command line

/// `gradc ARGS` in the crate root: exit code, stderr.
fn gradc_code(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gradc"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_loops_exit_1_with_a_located_error() {
    let cases = files("tests/cases/errors", "grad")
        .into_iter()
        .filter(|(name, _)| name.starts_with("loops"));
    each_case(cases, |name, path| {
        let path = path
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for command in ["check", "eval", "grad"] {
            let (code, err) = gradc_code(&[command, &path]);
            assert_eq!(code, 1, "{name}: gradc {command} exits {code}\n{err}");
            assert!(!err.contains("panicked"), "{name}: {err}");
            assert!(
                err.contains(&format!("{path}:")) && err.contains(": error: "),
                "{name}: no located error from gradc {command}:\n{err}"
            );
        }
    });
}

#[test]
fn an_index_out_of_range_at_run_time_names_the_line_and_the_data_row() {
    let dir = temp_dir("loops-index");
    let file = dir.join("index.grad");
    std::fs::write(
        &file,
        "input x: [3]\ninput k\nparam w = 1
let s = loop s = 0 for t in 0..2 { s + w * x[k + t] }
loss s
train { data = csv(\"index.csv\", x = 0..3, k = 3)  batch = 2  epochs = 1  shuffle = false }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("index.csv"),
        "1,2,3,0\n1,2,3,1\n4,5,6,7\n1,1,1,0\n",
    )
    .unwrap();
    let file = file.to_string_lossy().into_owned();
    let at_line_4 = "index.grad:4:44: error: index 7 is out of range for an axis of length 3";
    for backend in ["jit", "interp"] {
        let (code, err) = gradc_code(&["eval", &file, "--input", "k=7", "--backend", backend]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(at_line_4), "{backend}: {err}");
        let (code, err) = gradc_code(&["train", &file, "--backend", backend]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(at_line_4), "{backend}: {err}");
        assert!(
            err.contains("index.csv:3: in the example on this line"),
            "{backend}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}
