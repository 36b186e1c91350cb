//! Derivatives inside the language: `grad(of, wrt)` against central
//! differences of `of`, on every engine with the same bits; a loss holding a
//! derivative differentiated again (second order) against finite differences
//! of finite differences and against the Hessian.

use gradc::autodiff::check::{gradients, numeric_gradients, relative_error};
use gradc::eval::{Evaluator, Mode};
use gradc::shape::Tensor;

use crate::common::{compile, each_case};

const MODES: [Mode; 3] = [Mode::Interp, Mode::PerExample, Mode::Batched];

/// What a case differentiates with respect to.
#[derive(Copy, Clone, Debug)]
enum Wrt {
    Param(usize),
    Input(usize),
}

/// A program whose loss is `f` and whose first output is `grad(f, wrt)`
/// (written by the case), at its initial parameters and these inputs.
struct Case {
    src: &'static str,
    wrt: Wrt,
    inputs: Vec<Tensor>,
}

fn vector(x: &[f64]) -> Tensor {
    Tensor::new(gradc::shape::Shape::vector(x.len()), x.to_vec())
}

fn cases() -> Vec<(String, Case)> {
    let x3 = || vec![vector(&[0.3, -1.2, 0.8])];
    let case = |name: &str, src, wrt, inputs| (name.to_string(), Case { src, wrt, inputs });
    vec![
        case(
            "a parameter",
            "param w: [3] = [0.5, -1, 2]\ninput x: [3]\n\
             let f = sum(tanh(w * x)) * sum(w^2)\nloss f\noutput d = grad(f, w)\n",
            Wrt::Param(0),
            x3(),
        ),
        case(
            "an input",
            "param w: [3] = [0.5, -1, 2]\ninput x: [3]\n\
             let f = logsumexp(w * x) + sum(sin(x))^2\nloss f\noutput d = grad(f, x)\n",
            Wrt::Input(0),
            x3(),
        ),
        case(
            "a matrix through softmax",
            "param W: [2, 3] = [[0.1, -0.4, 0.9], [1.1, 0.2, -0.6]]\ninput x: [3]\n\
             let f = -log_softmax(W @ x)[1] + 0.5 * norm(W)\nloss f\noutput d = grad(f, W)\n",
            Wrt::Param(0),
            x3(),
        ),
        case(
            "a second derivative",
            "param w: [2] = [0.7, -0.3]\ninput x\n\
             let g = grad(sum(sin(w * x) * x^3), x)\nloss g\noutput d = grad(g, x)\n",
            Wrt::Input(0),
            vec![Tensor::scalar(0.9)],
        ),
        case(
            "through a loop",
            "param w: [4] = [0.5, -0.2, 0.8, 0.1]\ninput x: [4]\n\
             let f = loop s = 0 for t in 0..4 { 0.5 * s + tanh(w[t] * x[t] + s) }\n\
             loss f\noutput d = grad(f, w)\n",
            Wrt::Param(0),
            vec![vector(&[0.3, -1.2, 0.8, 2.0])],
        ),
        case(
            "inside a comprehension",
            "param w: [3] = [0.5, -1, 2]\ninput x: [2, 3]\n\
             let f = sum([sum(tanh(w * x[t]))^2 for t in 0..2])\nloss f\n\
             output d = sum([grad(sum(tanh(w * x[t]))^2, w) for t in 0..2], axis = 0)\n",
            Wrt::Param(0),
            vec![Tensor::new(
                gradc::shape::Shape::matrix(2, 3),
                vec![0.3, -1.2, 0.8, 1.5, 0.1, -0.4],
            )],
        ),
        case(
            "through a gather",
            "param E: [4, 2] = [[0.1, 0.2], [0.3, -0.4], [0.5, 0.6], [-0.7, 0.8]]\n\
             input toks: [3]\n\
             let f = sum(tanh(E[toks]) ^ 2)\nloss f\noutput d = grad(f, E)\n",
            Wrt::Param(0),
            vec![vector(&[2.0, 0.0, 2.0])],
        ),
        case(
            "of what does not depend on it",
            "param w: [2] = [0.5, -1]\ninput x: [2]\n\
             let f = sum(w^2)\nloss f\noutput d = grad(f, x)\n",
            Wrt::Input(0),
            vec![vector(&[0.3, -1.2])],
        ),
    ]
}

/// Central differences of the loss with respect to the input `i`.
fn numeric_input_gradient(e: &Evaluator, params: &[Tensor], inputs: &[Tensor], i: usize) -> Tensor {
    const H: f64 = 1e-6;
    let loss = |x: &[Tensor]| e.outputs(params, x).unwrap()[0].item();
    let mut work = inputs.to_vec();
    let mut grad = Tensor::zeros(inputs[i].shape.clone());
    for k in 0..inputs[i].data.len() {
        let x = inputs[i].data[k];
        work[i].data[k] = x + H;
        let up = loss(&work);
        work[i].data[k] = x - H;
        let down = loss(&work);
        work[i].data[k] = x;
        grad.data[k] = (up - down) / (2.0 * H);
    }
    grad
}

/// `grad(f, wrt)` is the derivative central differences of `f` give, and
/// every engine computes it with the interpreter's bits.
#[test]
fn grad_in_the_language_matches_central_differences_on_every_engine() {
    each_case(cases(), |name, case| {
        let c = compile(case.src);
        let params = c.initial_params(0);
        let interp = Evaluator::compile(&c.ir, Mode::Interp).unwrap();
        let outs = interp.outputs(&params, &case.inputs).unwrap();
        let got = &outs[1];
        let want = match case.wrt {
            Wrt::Param(p) => numeric_gradients(&c.ir, &params, &case.inputs).unwrap()[p].clone(),
            Wrt::Input(i) => numeric_input_gradient(&interp, &params, &case.inputs, i),
        };
        assert_eq!(got.shape, want.shape, "{name}");
        for (k, (&a, &n)) in got.data.iter().zip(&want.data).enumerate() {
            assert!(
                relative_error(a, n) < 1e-6,
                "{name}: element {k}: {a} against {n}"
            );
        }
        for mode in [Mode::PerExample, Mode::Batched] {
            let e = Evaluator::compile(&c.ir, mode).unwrap();
            assert_eq!(
                e.outputs(&params, &case.inputs).unwrap(),
                outs,
                "{name}: {mode:?}"
            );
        }
    });
}

/// A loss holding `grad(f, x)` (x an input) is trained: its gradient with
/// respect to the parameters, a second derivative taken by transforming the
/// derivative's instructions again, matches central differences over the
/// parameters of central differences over x of `f`.
#[test]
fn a_loss_holding_a_derivative_has_the_gradient_of_nested_differences() {
    let f = "param w: [2] = [0.7, -0.3]\nparam b = 0.2\ninput x\n\
             let f = sum(tanh(w * x + b) * w)\n";
    let c = compile(&format!("{f}loss grad(f, x)\n"));
    let plain = compile(&format!("{f}loss f\n"));
    let params = c.initial_params(0);
    let x = 0.4;
    // d f / d x by central differences, at parameters `p`.
    let df_dx = |p: &[Tensor]| {
        const H: f64 = 1e-4;
        let at = |x: f64| gradc::autodiff::check::loss(&plain.ir, p, &[Tensor::scalar(x)]).unwrap();
        (at(x + H) - at(x - H)) / (2.0 * H)
    };
    let g = c.gradient().unwrap().clone();
    for mode in MODES {
        let e = Evaluator::compile(&g, mode).unwrap();
        let (_, analytic) =
            gradc::autodiff::check::gradients_with(&e, &params, &[Tensor::scalar(x)]).unwrap();
        for (p, grad) in analytic.iter().enumerate() {
            for k in 0..grad.data.len() {
                const H: f64 = 1e-4;
                let mut up = params.clone();
                up[p].data[k] += H;
                let mut down = params.clone();
                down[p].data[k] -= H;
                let numeric = (df_dx(&up) - df_dx(&down)) / (2.0 * H);
                let a = grad.data[k];
                assert!(
                    relative_error(a, numeric) < 1e-5,
                    "{mode:?} param {p}[{k}]: {a} against {numeric}"
                );
            }
        }
    }
}

/// The gradient of `grad(f, w)[k]` with respect to `w` is row `k` of the
/// Hessian of `f`, which the Hessian path computes from the loss `f`.
#[test]
fn the_gradient_of_a_derivative_is_a_row_of_the_hessian() {
    let f = "param w: [3] = [0.5, -1, 2]\ninput x: [3]\n\
             let f = logsumexp(w * x) * sum(sin(w))\n";
    let x = vec![vector(&[0.3, -1.2, 0.8])];
    let plain = compile(&format!("{f}loss f\n"));
    let params = plain.initial_params(0);
    let hessian = gradc::autodiff::hessian(&plain.ir, &params, &x).unwrap();
    for (k, row) in hessian.iter().enumerate() {
        let c = compile(&format!("{f}loss grad(f, w)[{k}]\n"));
        let (_, grads) = gradients(&c.gradient().unwrap(), &params, &x).unwrap();
        for (j, &h) in row.iter().enumerate() {
            let a = grads[0].data[j];
            assert!(relative_error(a, h) < 1e-12, "H[{k}][{j}]: {a} against {h}");
        }
    }
}

/// A derivative in a loss trains from the command line: a penalty that
/// pulls the slope of `f` in `x` towards 1 while `f` fits `x`, whose
/// optimum (`w = [1, 0]`, loss 0) gradient descent reaches.
#[test]
fn gradc_trains_a_loss_holding_a_derivative() {
    let dir = crate::common::temp_dir("derivative-train");
    let rows: String = (1..=10)
        .map(|k| format!("{}\n", f64::from(k) / 10.0))
        .collect();
    std::fs::write(dir.join("xs.csv"), format!("x\n{rows}")).unwrap();
    let file = dir.join("slope.grad");
    std::fs::write(
        &file,
        "param w: [2] = [0.5, 0.5]\ninput x\n\
         let f = w[0] * x + w[1] * x^2\n\
         loss (grad(f, x) - 1)^2 + (f - x)^2\n\
         train {\n  data = csv(\"xs.csv\", x = 0)\n  optimizer = adam(lr = 0.05)\n  \
         batch = full\n  steps = 2000\n}\n",
    )
    .unwrap();
    let file = file.to_string_lossy().into_owned();
    let (ok, out, err) = crate::common::gradc(&["train", &file, "--json", "--quiet"]);
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let loss = summary["train"]["loss"].as_f64().unwrap();
    let w = &summary["params"]["w"];
    assert!(loss < 1e-10, "{out}");
    assert!((w[0].as_f64().unwrap() - 1.0).abs() < 1e-5, "{out}");
    assert!(w[1].as_f64().unwrap().abs() < 1e-5, "{out}");
}

/// Expressions of `w: [2, 3]` (with the inputs `x: [3]`, `toks: [2]` (1, 0)
/// and `c` (1)) and their shapes: every operation of the IR, forward mode
/// against reverse mode.
const JVP_CASES: &[(&str, &str)] = &[
    ("exp(w) + log(w) + sqrt(w) + abs(w - 1) + sin(w) * cos(w)", "[2, 3]"),
    ("tanh(w) + sigmoid(w) + relu(w - 1) + softplus(w) + sign(w - 1) * w", "[2, 3]"),
    ("log1p(w) + expm1(w) + erf(w) + floor(w) * w + round(w) * w", "[2, 3]"),
    ("gelu(w) + leaky_relu(w - 1, 0.1) + elu(w - 1) + clip(w, 0.5, 1.5)", "[2, 3]"),
    ("w * w[0, 1] / (1 + w) - w ^ 1.5 + pow(1.5, w) + w ^ w", "[2, 3]"),
    ("max(w, w[1, 0]) + min(w, 1.1) + where(w > 1, w ^ 2, -w)", "[2, 3]"),
    ("w @ x + w[0, 0:2] * sum(w)", "[2]"),
    ("x @ w.T + w @ w[1]", "[2]"),
    ("w.T @ w + outer(w[0], w[1])", "[3, 3]"),
    ("dot(w[0], x) * max(w) + norm(w) + logsumexp(w)", "[]"),
    ("sum(w, axis = 0) + max(w, axis = 0) + norm(w, axis = 0) + logsumexp(w, axis = 0)", "[3]"),
    ("mean(w, axis = 1, keepdims = true) * min(w, axis = 1, keepdims = true)", "[2, 1]"),
    ("softmax(w) + log_softmax(w, axis = 0)", "[2, 3]"),
    ("reshape(w, [3, 2]) + transpose(w, axes = [1, 0]) ^ 2", "[3, 2]"),
    ("concat(w, w * 2, axis = 0) + stack(w[0], w[1], w[0], w[1])", "[4, 3]"),
    ("tril(w.T @ w) + diag(w[0]) + diag(diag(w.T @ w))", "[3, 3]"),
    ("w[toks] * w", "[2, 3]"),
    ("w[c] * w[toks][1]", "[3]"),
    // A matrix of indices, repeated ones among them: a gather, and in the
    // gradient a scatter-add, in forward mode.
    ("w[[toks, [1, 1]]][1] * w[0]", "[2, 3]"),
    ("grad(sum(w[[toks, [1, 1]]]^3), w)", "[2, 3]"),
    ("[w[0, 1], w[1, 2] * w[0, 0], sum(w[1])]", "[3]"),
    ("mse(w[0], x) + bce(sigmoid(w[1]), [0, 1, 1]) + bce_logits(w[0, 0], 1)", "[]"),
    ("cross_entropy(w[0], c) + huber(w[1], x, 0.7) - log_softmax(w[1])[c]", "[]"),
    ("dot(one_hot(c, 3), w[0]) + w[1][argmax(w[0])]", "[]"),
    ("conv2d(reshape(w, [1, 2, 3]), reshape(w[0:2, 0:2], [1, 1, 2, 2]), padding = 1)", "[1, 3, 4]"),
    ("maxpool2d(reshape(w, [1, 2, 3]), 2, stride = 1) * avgpool2d(reshape(w^2, [1, 2, 3]), 2, stride = 1)", "[1, 1, 2]"),
    // The gradients' operations (the transposed convolution, the kernel's
    // product, the pooling adjoints) in forward mode.
    ("grad(sum(conv2d(reshape(w, [1, 2, 3]), reshape(w[0:2, 0:2], [1, 1, 2, 2]), padding = 1)^2), w)", "[2, 3]"),
    ("grad(sum(maxpool2d(reshape(w^3, [1, 2, 3]), 2, stride = 1)) + sum(avgpool2d(reshape(w^3, [1, 2, 3]), 2)), w)", "[2, 3]"),
    ("loop s = w[0] for t in 0..3 { tanh(s * x[t] + w[1]) }", "[3]"),
    // Broadcasting, a product of stacks (a loop of products), einsum.
    ("reshape(w, [2, 1, 3]) * w @ transpose(stack(w, w), axes = [0, 2, 1])", "[2, 2, 2]"),
    ("einsum(\"ij,kj->ik\", w, exp(w)) + reshape(x[0:2], [2, 1])", "[2, 2]"),
    ("[w[1] * w[t][0] + x[t] for t in 0..2]", "[2, 3]"),
    ("{ let (p, q) = loop (a, b) = (w[0], 1) for t in 0..2 { (a * b + w[1], b * sum(a)) }; p * q }", "[3]"),
];

/// The source of a case: `y` and both sides of `u . (J v) = (J^T u) . v`.
fn jvp_source(expr: &str, shape: &str) -> String {
    format!(
        "param w: [2, 3]\ninput v: [2, 3]\ninput u: {shape}\ninput x: [3]\ninput toks: [2]\ninput c\n\
         let y = {expr}\nloss sum(y)\n\
         output forward = sum(u * jvp(y, w, v))\n\
         output reverse = sum(grad(sum(u * y), w) * v)\n\
         output along = jvp(y, w, v)\n"
    )
}

fn jvp_inputs(v: &[f64], u: Vec<f64>, shape: &gradc::shape::Shape) -> Vec<Tensor> {
    vec![
        Tensor::new(gradc::shape::Shape::matrix(2, 3), v.to_vec()),
        Tensor::new(shape.clone(), u),
        vector(&[0.3, -1.2, 0.8]),
        vector(&[1.0, 0.0]),
        Tensor::scalar(1.0),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 16,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    /// `jvp` (forward mode, its own transformation) and `grad` (reverse
    /// mode) give the same bilinear form `u . J v` for every operation.
    #[test]
    fn jvp_agrees_with_reverse_mode_for_every_operation(
        w in proptest::collection::vec(0.3f64..2.0, 6),
        v in proptest::collection::vec(-1.0f64..1.0, 6),
        u in proptest::collection::vec(-1.0f64..1.0, 9),
    ) {
        for (expr, shape) in JVP_CASES {
            let c = compile(&jvp_source(expr, shape));
            let y_shape = c.ir.inputs[1].shape.clone();
            let u = u.iter().cycle().take(y_shape.size()).copied().collect();
            let params = vec![Tensor::new(gradc::shape::Shape::matrix(2, 3), w.clone())];
            let e = Evaluator::compile(&c.ir, Mode::Interp).unwrap();
            let outs = e.outputs(&params, &jvp_inputs(&v, u, &y_shape)).unwrap();
            let (fwd, rev) = (outs[1].item(), outs[2].item());
            proptest::prop_assert!(
                relative_error(fwd, rev) < 1e-10,
                "{expr}: forward {fwd} against reverse {rev} at w = {w:?}, v = {v:?}"
            );
        }
    }
}

/// `jvp` is the directional derivative central differences give, and every
/// engine computes it with the interpreter's bits.
#[test]
fn jvp_matches_central_differences_along_the_direction_on_every_engine() {
    let w = [0.55, 1.23, 0.81, 1.67, 0.42, 1.13];
    let v = [0.3, -0.7, 0.2, 0.9, -0.4, 0.6];
    each_case(
        JVP_CASES.iter().map(|(e, s)| (e.to_string(), *s)),
        |expr, shape| {
            let c = compile(&jvp_source(expr, shape));
            let y_shape = c.ir.inputs[1].shape.clone();
            let inputs = jvp_inputs(&v, vec![0.0; y_shape.size()], &y_shape);
            let interp = Evaluator::compile(&c.ir, Mode::Interp).unwrap();
            let at = |h: f64| {
                let p: Vec<f64> = w.iter().zip(&v).map(|(a, b)| a + h * b).collect();
                let p = vec![Tensor::new(gradc::shape::Shape::matrix(2, 3), p)];
                interp.outputs(&p, &inputs).unwrap()
            };
            const H: f64 = 1e-6;
            let (here, up, down) = (at(0.0), at(H), at(-H));
            // `y` is the loss's sum; `along` its tangent, elementwise.
            let along = &here[3];
            let numeric = (up[0].item() - down[0].item()) / (2.0 * H);
            let total: f64 = along.data.iter().sum();
            assert!(
                relative_error(total, numeric) < 1e-6,
                "{expr}: {total} against {numeric}"
            );
            let p = vec![Tensor::new(gradc::shape::Shape::matrix(2, 3), w.to_vec())];
            for mode in [Mode::PerExample, Mode::Batched] {
                let e = Evaluator::compile(&c.ir, mode).unwrap();
                assert_eq!(
                    e.outputs(&p, &inputs).unwrap(),
                    here.clone(),
                    "{expr}: {mode:?}"
                );
            }
        },
    );
}

/// Forward over reverse: `jvp(grad(f, w), w, v)` is the Hessian times `v`,
/// without forming the Hessian; checked against the full Hessian.
#[test]
fn hessian_vector_products_match_the_full_hessian() {
    let f = "param w: [3] = [0.5, -1, 2]\ninput x: [3]\n\
             let f = logsumexp(w * x) * sum(sin(w)) + (loop s = 0 for t in 0..3 { tanh(s + w[t] * x[t]) })\n";
    let x = vector(&[0.3, -1.2, 0.8]);
    let v = vector(&[0.7, 0.1, -0.4]);
    let plain = compile(&format!("{f}loss f\n"));
    let params = plain.initial_params(0);
    let hessian = gradc::autodiff::hessian(&plain.ir, &params, std::slice::from_ref(&x)).unwrap();
    let c = compile(&format!(
        "{f}input v: [3]\nloss f\noutput hv = jvp(grad(f, w), w, v)\n"
    ));
    for mode in MODES {
        let e = Evaluator::compile(&c.ir, mode).unwrap();
        let hv = &e.outputs(&params, &[x.clone(), v.clone()]).unwrap()[1];
        for (i, row) in hessian.iter().enumerate() {
            let want: f64 = row.iter().zip(&v.data).map(|(h, v)| h * v).sum();
            assert!(
                relative_error(hv.data[i], want) < 1e-12,
                "{mode:?} (Hv)[{i}]: {} against {want}",
                hv.data[i]
            );
        }
    }
}

/// A loss holding a `jvp` is trained: its gradient (reverse mode over the
/// tangents) against central differences of the loss.
#[test]
fn a_loss_holding_a_jvp_has_the_gradient_of_central_differences() {
    let c = compile(
        "param w: [3] = [0.5, -1, 2]\nparam b = 0.3\ninput x: [3]\n\
         let y = tanh(w * x + b)\n\
         loss sum(jvp(y, x, [1, 0.5, -1])^2) + sum(y)\n",
    );
    let params = c.initial_params(0);
    let x = [vector(&[0.3, -1.2, 0.8])];
    let g = c.gradient().unwrap();
    let (_, analytic) = gradients(&g, &params, &x).unwrap();
    let numeric = numeric_gradients(&c.ir, &params, &x).unwrap();
    for (a, n) in analytic.iter().zip(&numeric) {
        for (&a, &n) in a.data.iter().zip(&n.data) {
            assert!(relative_error(a, n) < 1e-6, "{a} against {n}");
        }
    }
}

/// `gradc grad --jacobian`: a wide output by reverse mode, a tall one by
/// forward mode, both the central differences of the outputs; `--hvp` the
/// Hessian (from `--hessian`) times the direction.
#[test]
fn gradc_grad_prints_jacobians_and_hessian_vector_products() {
    let src = "param a = 0.7\nparam w: [2] = [1.1, -0.4]\ninput x\n\
               output wide = sin(a * w[0]) * x + w[1]^2\n\
               output tall = [a * x, sum(w) * a, w[0] * w[1] * x, tanh(a + w[1]), exp(w[0] * a)]\n\
               loss a^2 * sum(w^3) * x + tanh(a * w[0])\n";
    let dir = crate::common::temp_dir("derivative-jacobian");
    let file = dir.join("j.grad");
    std::fs::write(&file, src).unwrap();
    let file = file.to_string_lossy().into_owned();
    let run = |extra: &[&str]| {
        let mut args = vec!["grad", file.as_str(), "--input", "x=1.5", "--json"];
        args.extend_from_slice(extra);
        let (ok, out, err) = crate::common::gradc(&args);
        assert!(ok, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let j = run(&["--jacobian"]);
    let c = compile(src);
    let params = c.initial_params(0);
    let x = [Tensor::scalar(1.5)];
    let interp = Evaluator::compile(&c.ir, Mode::Interp).unwrap();
    let flat = |p: &[Tensor]| -> Vec<Vec<f64>> {
        let outs = interp.outputs(p, &x).unwrap();
        outs[1..].iter().map(|t| t.data.clone()).collect()
    };
    for (o, (name, mode)) in [("wide", "reverse"), ("tall", "forward")]
        .into_iter()
        .enumerate()
    {
        let jo = &j["jacobians"][o];
        assert_eq!(jo["output"], name);
        assert_eq!(jo["mode"], mode, "{name}");
        let rows = jo["rows"].as_array().unwrap();
        // Column by column: the parameter elements a, w[0], w[1].
        for (col, (p, k)) in [(0, 0), (1, 0), (1, 1)].into_iter().enumerate() {
            const H: f64 = 1e-6;
            let (mut up, mut down) = (params.clone(), params.clone());
            up[p].data[k] += H;
            down[p].data[k] -= H;
            let (up, down) = (flat(&up), flat(&down));
            for (r, row) in rows.iter().enumerate() {
                let numeric = (up[o][r] - down[o][r]) / (2.0 * H);
                let got = row[col].as_f64().unwrap();
                assert!(
                    relative_error(got, numeric) < 1e-6,
                    "{name}[{r}] by column {col}: {got} against {numeric}"
                );
            }
        }
    }
    let h = run(&["--hessian"]);
    let hv = run(&["--hvp", "a=0.5", "--hvp", "w=-1,2"]);
    let v = [0.5, -1.0, 2.0];
    let got: Vec<f64> = std::iter::once(hv["hvp"]["a"].as_f64().unwrap())
        .chain(
            hv["hvp"]["w"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap()),
        )
        .collect();
    for (i, row) in h["hessian"].as_array().unwrap().iter().enumerate() {
        let want: f64 = row
            .as_array()
            .unwrap()
            .iter()
            .zip(&v)
            .map(|(h, v)| h.as_f64().unwrap() * v)
            .sum();
        assert!(
            relative_error(got[i], want) < 1e-12,
            "(Hv)[{i}]: {} against {want}",
            got[i]
        );
    }
}

/// `examples/pinn.grad`: the network's second derivative, taken with
/// `grad` inside the loss, is trained to the differential equation; the
/// network then matches the exact solution sin(pi x), at the collocation
/// points and between them.
#[test]
fn the_pinn_example_solves_its_differential_equation() {
    let root = crate::common::root();
    let src = std::fs::read_to_string(root.join("examples/pinn.grad")).unwrap();
    let c = compile(&src);
    let cfg = c.typed.train.clone().unwrap();
    let opts = gradc::runtime::Options {
        base_dir: root.join("examples"),
        ..Default::default()
    };
    let r = gradc::runtime::train(&c, &cfg, &opts, &mut ()).unwrap_or_else(|e| panic!("{e}"));
    let (_, error) = r.train.metrics.iter().find(|(n, _)| n == "error").unwrap();
    assert!(*error < 3e-4, "mean |u - sin(pi x)| {error}");
    let e = Evaluator::compile(&c.ir, Mode::Batched).unwrap();
    for k in 0..32 {
        let x = (f64::from(k) + 0.5) / 32.0;
        let outs = e.outputs(&r.params, &[Tensor::scalar(x)]).unwrap();
        let u = outs.last().unwrap().item();
        let exact = (std::f64::consts::PI * x).sin();
        assert!(
            (u - exact).abs() < 1e-3,
            "u({x}) = {u}, sin(pi x) = {exact}"
        );
    }
}

/// The outputs of `c`'s program (no parameters) at `inputs` on every
/// engine, in the order of [`MODES`].
fn outputs_of_every_engine(c: &gradc::Compiled, inputs: &[Tensor]) -> Vec<Vec<Tensor>> {
    MODES
        .iter()
        .map(|&mode| {
            Evaluator::compile(&c.ir, mode)
                .unwrap()
                .outputs(&[], inputs)
                .unwrap()
        })
        .collect()
}

const SADDLE: &str = "\
# min over x of max over y of a convex-concave f, each by gradient steps: the
# inner argmax is differentiated through (nested derivatives), by each
# combination of forward (`jvp`) and reverse (`grad`) mode.
input s: [2]
let a = [1, -2]
let b = [0.5, 3]
fn f(x, y) = sum((x - a)^2) - sum((y - b)^2) + dot(x, y)
fn rgrad_y(x, y) = grad(f(x, y), y)
fn fgrad_y(x, y) = [jvp(f(x, y), y, [1, 0]), jvp(f(x, y), y, [0, 1])]
fn argmax_r(x) = loop y = s for k in 0..40 { y + 0.25 * rgrad_y(x, y) }
fn argmax_f(x) = loop y = s for k in 0..40 { y + 0.25 * fgrad_y(x, y) }
let x_rr = loop x = s for k in 0..60 { x - 0.2 * grad(f(x, argmax_r(x)), x) }
let x_rf = loop x = s for k in 0..60 { x - 0.2 * grad(f(x, argmax_f(x)), x) }
let x_fr = loop x = s for k in 0..60 { x - 0.2 * [jvp(f(x, argmax_r(x)), x, [1, 0]), jvp(f(x, argmax_r(x)), x, [0, 1])] }
let x_ff = loop x = s for k in 0..60 { x - 0.2 * [jvp(f(x, argmax_f(x)), x, [1, 0]), jvp(f(x, argmax_f(x)), x, [0, 1])] }
loss sum(x_rr^2)
output rr = concat(x_rr, argmax_r(x_rr))
output rf = concat(x_rf, argmax_f(x_rf))
output fr = concat(x_fr, argmax_r(x_fr))
output ff = concat(x_ff, argmax_f(x_ff))
";

/// A saddle point, min over x of max over y of a convex-concave f, as
/// GradBench's `saddle` asks: both by gradient steps, the inner argmax
/// differentiated through (nested derivatives), with each of the four
/// combinations of forward mode (`jvp`) and reverse mode (`grad`). The
/// solution is known: x = 0.8 a - 0.4 b, y = b + x / 2.
#[test]
fn a_saddle_point_by_nested_derivatives_in_all_four_modes() {
    let c = compile(SADDLE);
    let want = [0.6, -2.8, 0.8, 1.6];
    let results = outputs_of_every_engine(&c, &[vector(&[1.0, 1.0])]);
    for (mode, outs) in MODES.iter().zip(&results) {
        for (variant, o) in ["rr", "rf", "fr", "ff"].iter().zip(&outs[1..]) {
            for (got, want) in o.data.iter().zip(want) {
                assert!(
                    (got - want).abs() < 1e-9,
                    "{mode:?} {variant}: {:?}",
                    o.data
                );
            }
        }
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]), "engines differ");
}

/// The same saddle point with an inner argmax that carries its gradient,
/// the first one taken before its loop: the outer `grad` then goes through
/// a loop whose starting value holds a derivative (this used to panic
/// while the outer gradient was built).
#[test]
fn a_derivative_through_a_loop_started_from_a_derivative() {
    let src = SADDLE.replace(
        "loss sum(x_rr^2)",
        "fn argmax_c(x) = {
  let (y, g) = loop (y, g) = (s, rgrad_y(x, s)) for k in 0..40 {
    let next = y + 0.25 * g
    (next, rgrad_y(x, next))
  }
  y
}
let x_c = loop x = s for k in 0..60 { x - 0.2 * grad(f(x, argmax_c(x)), x) }
output c = concat(x_c, argmax_c(x_c))
loss sum(x_rr^2)",
    );
    let results = outputs_of_every_engine(&compile(&src), &[vector(&[1.0, 1.0])]);
    for (mode, outs) in MODES.iter().zip(&results) {
        let (c, rr) = (&outs[1], &outs[2]);
        for (got, want) in c.data.iter().zip([0.6, -2.8, 0.8, 1.6]) {
            assert!((got - want).abs() < 1e-9, "{mode:?}: {:?}", c.data);
        }
        // The same iterates as the argmax that does not carry its gradient.
        for (got, want) in c.data.iter().zip(&rr.data) {
            assert!(
                (got - want).abs() < 1e-12,
                "{mode:?}: {:?} {:?}",
                c.data,
                rr.data
            );
        }
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]), "engines differ");
}

/// A derivative with respect to a function's argument is the partial
/// derivative in that argument, also when another argument is the same
/// value (both `s` here) or computed from it (`2 s`): d/dq of sum(p^2) -
/// 3 sum(q^2) + p.q is p - 6 q.
#[test]
fn a_derivative_in_an_argument_is_partial_when_another_argument_is_the_same_value() {
    let c = compile(
        "input s: [2]
fn f(p, q) = sum(p^2) - 3 * sum(q^2) + dot(p, q)
fn rgrad(p, q) = grad(f(p, q), q)
fn fgrad(p, q) = jvp(f(p, q), q, [1, 0])
output r = rgrad(s, s)
output j = fgrad(s, s)
output r2 = rgrad(2 * s, s)
loss 0
",
    );
    for mode in MODES {
        let outs = Evaluator::compile(&c.ir, mode)
            .unwrap()
            .outputs(&[], &[vector(&[1.0, 2.0])])
            .unwrap();
        assert_eq!(outs[1].data, vec![-5.0, -10.0], "{mode:?}");
        assert_eq!(outs[2].data, vec![-5.0], "{mode:?}");
        // With p = 2 s computed from q's value: still -6 q + p, not the
        // total derivative of f(2 s, s).
        assert_eq!(outs[3].data, vec![-4.0, -8.0], "{mode:?}");
    }
}
