//! Loops in whole programs: the examples `rnn.grad` and `ode.grad` reach
//! their stated outcomes, the diagonal LSTM objective of ADBench/GradBench
//! has a correct gradient, a loop keeps for its reverse only the rows of a
//! carried state it reads, and checkpointing (`checkpoint = K`) gives the
//! gradient's bits while keeping less.

use gradc::autodiff::check;
use gradc::eval::{Evaluator, Mode};
use gradc::ir::Function;
use gradc::shape::Tensor;

use crate::common::{compile, root};
use crate::loops::{point, programs, run_bits, MODES};

// ---------------------------------------------------------------------------
// The examples, and the GradBench LSTM

/// An example trained as its train block says.
fn train_example(name: &str) -> gradc::runtime::Report {
    let src = std::fs::read_to_string(root().join("examples").join(name)).unwrap();
    let c = compile(&src);
    let cfg = c.typed.train.clone().unwrap();
    let opts = gradc::runtime::Options {
        base_dir: root().join("examples"),
        ..Default::default()
    };
    gradc::runtime::train(&c, &cfg, &opts, &mut ()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_rnn_example_predicts_the_next_value_of_a_noisy_sine() {
    // gradc train examples/rnn.grad: the noise alone gives a loss of 0.0025.
    let r = train_example("rnn.grad");
    assert!(r.train.loss < 0.006, "loss {}", r.train.loss);
    let (_, error) = r
        .train
        .metrics
        .iter()
        .find(|(n, _)| n == "abs_error")
        .unwrap();
    assert!(*error < 0.06, "mean absolute error {error}");
}

#[test]
fn the_ode_example_recovers_the_oscillators_constants() {
    // gradc train examples/ode.grad: the data were made with k = 4, c = 0.3.
    let r = train_example("ode.grad");
    let (k, c) = (r.params[0].item(), r.params[1].item());
    assert!((k - 4.0).abs() < 0.04, "k = {k}");
    assert!((c - 0.3).abs() < 0.01, "c = {c}");
}

/// The objective of the `lstm` eval of GradBench (from ADBench), written as
/// a user would, at a tiny size: l = 2 layers, b = 3, c = 4 characters. Its
/// quirks are kept: diagonal weights (elementwise products), the input gate
/// and the change read the hidden state while the forget and output gates
/// read the input, and `log(sum(exp(y)) + 2)` in place of a logsumexp.
/// `main` holds a layer's weights (row 2i: forget, input, output, change
/// gates side by side) and biases (row 2i + 1); `extra` the input weight,
/// the output weight and bias; `state` each layer's hidden and cell rows.
/// The layers are a loop that rewrites the state's rows with a
/// comprehension, since a carried tensor cannot be updated in place.
const GRADBENCH_LSTM: &str = "param main: [4, 12] = normal(0, 0.5)
param extra: [3, 3] = normal(0, 0.5)
input state: [4, 3]
input sequence: [4, 3]
let L = 2
let B = 3
let C = 4
fn lse(y) = log(sum(exp(y)) + 2)
let (final, total) = loop (s, total) = (state, 0) for t in 0..C - 1 {
  let (s2, out) = loop (s1, x) = (s, sequence[t] * extra[0]) for i in 0..L {
    let w = main[2 * i]
    let bias = main[2 * i + 1]
    let hidden = s1[2 * i]
    let cell = s1[2 * i + 1]
    let forget = sigmoid(x * w[0:3] + bias[0:3])
    let ingate = sigmoid(hidden * w[3:6] + bias[3:6])
    let outgate = sigmoid(x * w[6:9] + bias[6:9])
    let change = tanh(hidden * w[9:12] + bias[9:12])
    let cell2 = cell * forget + ingate * change
    let hidden2 = outgate * tanh(cell2)
    let rows = [if r == 2 * i then hidden2 else if r == 2 * i + 1 then cell2 else s1[r] for r in 0..2 * L]
    (rows, hidden2)
  }
  let ypred = out * extra[1] + extra[2]
  (s2, total + sum(sequence[t + 1] * (ypred - lse(ypred))))
}
loss -total / ((C - 1) * B)
";

#[test]
fn the_gradbench_lstm_objective_and_its_gradient() {
    let [f, g] = programs(GRADBENCH_LSTM);
    for seed in 0..2 {
        let (params, inputs) = point(&f, seed);
        let loss = check::loss(&f, &params, &inputs).unwrap();
        // L = 2 layers of B = 3 cells.
        let want = crate::reference::lstm(
            &params[0].data,
            &params[1].data,
            &inputs[0].data,
            &inputs[1].data,
            2,
            3,
        );
        assert!(
            check::relative_error(loss, want) <= 1e-12,
            "{loss} vs {want}"
        );
        gradient_is_right(&f, &g, &params, &inputs);
    }
}

/// The gradient program `g` of `f` agrees with central differences, and
/// every engine gives the interpreter's bits.
fn gradient_is_right(f: &Function, g: &Function, params: &[Tensor], inputs: &[Tensor]) {
    for c in check::check(f, g, params, inputs).unwrap() {
        assert!(c.max_rel_error <= 1e-6, "{c:?}");
    }
    let reference = run_bits(g, Mode::Interp, params, inputs);
    for mode in MODES {
        assert_eq!(run_bits(g, mode, params, inputs), reference, "{mode:?}");
    }
}

/// A step that reads one row of a carried matrix keeps that row for its
/// reverse, not the matrix: 8 steps keep their row of 3 and a `tanh` of
/// 3, not 8 matrices of 24; and the gradient is still central
/// differences' and the same bits on every engine.
#[test]
fn a_loop_keeps_the_rows_of_its_state_it_reads_not_the_state() {
    let src = "param w: [3]\ninput s0: [8, 3]
let (s, acc) = loop (s, acc) = (s0, 0) for t in 0..8 { (s * 1.5, acc + sum(tanh(s[t] * w))) }
loss acc + sum(s)\n";
    let [f, g] = programs(src);
    let saved = gradc::ir::stats::stats(&g).saved;
    assert!(saved <= 8 * (3 + 3) + 3, "{saved} numbers kept");
    for seed in 0..2 {
        let (params, inputs) = point(&f, seed);
        gradient_is_right(&f, &g, &params, &inputs);
    }
}

/// A loop of no steps is its initial values, and so is its gradient (the
/// fuzzer's reproducer: differentiating one failed on an empty slice).
#[test]
fn a_loop_of_no_steps_passes_the_gradient_to_its_initial_values() {
    let src =
        "param p = 2\nlet s = loop a = p * [1, 3] for t in 0..0 { a * 0.5 + t }\nloss sum(s^2)\n";
    let [_, g] = programs(src);
    let params = [Tensor::scalar(2.0)];
    for mode in MODES {
        let e = Evaluator::compile(&g, mode).unwrap();
        let outs = e.outputs(&params, &[]).unwrap();
        // loss = p^2 (1 + 9), d/dp = 20 p.
        assert_eq!(outs[0].item(), 40.0, "{mode:?}");
        assert_eq!(outs[1].item(), 40.0, "{mode:?}");
    }
}

/// The untaken side of an `if` passes an exact zero back through a loop on
/// it, as through straight-line code: the loop's reverse keeps the zero
/// masked, so an infinite derivative in it (`sqrt` at 0) gives 0, not NaN;
/// inside the body (`sqrt(a * x * t)`, computed each step) and hoisted out
/// of it (`sqrt(a * x)`, the same each step).
#[test]
fn an_untaken_loop_passes_back_an_exact_zero() {
    for body in ["s + sqrt(a * x)", "s + sqrt(a * x * t)"] {
        let src = format!(
            "param a = 1\ninput x\nloss if x > 0 then (loop s = 0 for t in 0..3 {{ {body} }}) else 0\n"
        );
        let [_, g] = programs(&src);
        let params = [Tensor::scalar(1.0)];
        for mode in MODES {
            let e = Evaluator::compile(&g, mode).unwrap();
            let outs = e.outputs(&params, &[Tensor::scalar(0.0)]).unwrap();
            assert_eq!(
                outs[1].item().to_bits(),
                0.0f64.to_bits(),
                "{mode:?}: {body}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Checkpointing

/// An RNN of `steps` steps, checkpointed every `every` if given.
fn checkpointed_rnn(steps: usize, every: Option<usize>) -> String {
    let block = every.map_or(String::new(), |k| format!("train {{ checkpoint = {k} }}\n"));
    format!(
        "param W: [4, 4] = normal(0, 0.4)\nparam U: [4, 2] = normal(0, 0.4)\n\
         param b: [4]\nparam v: [4] = normal(0, 0.4)\n\
         input x: [{steps}, 2]\ninput y\n\
         let (h, s) = loop (h, s) = ([0, 0, 0, 0], 0) for t in 0..{steps} {{\n\
           let h2 = tanh(W @ h + U @ x[t] + b)\n\
           (h2, s + sum(h2^2) * t)\n\
         }}\n\
         loss (dot(v, h) - y)^2 + 0.01 * s\n{block}"
    )
}

/// `checkpoint = K` gives the gradient's bits (the same steps in the same
/// order, the segments computed again), on every engine, with segments
/// that fill the loop and with steps left over; and the gradient keeps
/// fewer numbers (`gradc grad --stats`'s count).
#[test]
fn checkpointing_gives_the_same_gradient_bits_and_keeps_less() {
    for (steps, every) in [(24, 6), (23, 5), (7, 3), (4, 10)] {
        let [_, plain] = programs(&checkpointed_rnn(steps, None));
        let [_, ck] = programs(&checkpointed_rnn(steps, Some(every)));
        for seed in 0..2 {
            let (params, inputs) = point(&plain, seed);
            let want = run_bits(&plain, Mode::Interp, &params, &inputs);
            for mode in MODES {
                assert_eq!(
                    run_bits(&ck, mode, &params, &inputs),
                    want,
                    "{mode:?}, {steps} steps in segments of {every}"
                );
            }
        }
        let saved = |g: &Function| gradc::ir::stats::stats(g).saved;
        if steps > 2 * every {
            assert!(
                saved(&ck) < saved(&plain),
                "{} >= {}",
                saved(&ck),
                saved(&plain)
            );
        }
    }
    // A bad setting is a located error.
    let src = checkpointed_rnn(4, None) + "train { checkpoint = 0 }\n";
    assert!(gradc::compile(&src).is_err());
}
