//! Whole programs through the front end and the reference interpreter, checked
//! against values computed by hand (the arithmetic is in the comments).
//!
//! Every program is run twice, on the IR as lowered and on the simplified IR,
//! and both must agree before the values are compared.

use std::collections::HashMap;

use gradc::ir::interp::run_outputs;
use gradc::ir::{Function, Role};
use gradc::shape::Tensor;

use crate::common::compile;

/// Compiles `src`, sets the named parameters (the others keep their initial
/// values) and every input, and returns each output's elements by name; the
/// loss is called `loss`.
fn eval(
    src: &str,
    params: &[(&str, &[f64])],
    inputs: &[(&str, &[f64])],
) -> HashMap<String, Vec<f64>> {
    let compiled = compile(src);
    let mut values = compiled.initial_params(compiled.seed());
    for (name, data) in params {
        let i = compiled
            .typed
            .params
            .iter()
            .position(|p| p.name == *name)
            .unwrap_or_else(|| panic!("no param {name}"));
        values[i] = Tensor::new(compiled.typed.params[i].shape.clone(), data.to_vec());
    }
    let given: Vec<Tensor> = compiled
        .typed
        .inputs
        .iter()
        .map(|decl| {
            let (_, data) = inputs
                .iter()
                .find(|(n, _)| *n == decl.name)
                .unwrap_or_else(|| panic!("no value for input {}", decl.name));
            Tensor::new(decl.shape.clone(), data.to_vec())
        })
        .collect();
    let raw = outputs(&compiled.raw, &values, &given);
    let opt = outputs(&compiled.ir, &values, &given);
    for (name, r) in &raw {
        let o = &opt[name];
        let same = r
            .iter()
            .zip(o)
            .all(|(a, b)| close(*a, *b) || (a.is_nan() && b.is_nan()));
        assert!(
            same && r.len() == o.len(),
            "{name}: raw IR gives {r:?}, optimised {o:?}"
        );
    }
    opt
}

fn outputs(f: &Function, params: &[Tensor], inputs: &[Tensor]) -> HashMap<String, Vec<f64>> {
    run_outputs(f, params, inputs)
        .unwrap_or_else(|e| panic!("the interpreter fails: {e}\n{f}"))
        .into_iter()
        .map(|(o, t)| {
            let name = if o.role == Role::Loss {
                "loss".to_string()
            } else {
                o.name
            };
            (name, t.data)
        })
        .collect()
}

/// Equal up to a relative error of 1e-12; an expected 0 allows 1e-15.
fn close(got: f64, want: f64) -> bool {
    got == want || (got - want).abs() <= 1e-12 * want.abs() || (want == 0.0 && got.abs() <= 1e-15)
}

fn check(out: &HashMap<String, Vec<f64>>, name: &str, want: &[f64]) {
    let got = out
        .get(name)
        .unwrap_or_else(|| panic!("no output {name} in {out:?}"));
    assert_eq!(got.len(), want.len(), "{name}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(close(*g, *w), "{name}: got {got:?}, want {want:?}");
    }
}

#[test]
fn arithmetic_precedence_and_associativity() {
    let src = "param a = 3\nparam b = -2\n\
               loss (a + b) * (a - b) / 2 ^ 2 + a ^ b\n\
               output o1 = a - b * 2\noutput o2 = -a ^ 2\noutput o3 = 2 ^ 3 ^ 2\n\
               output o4 = a - b - 1\noutput o5 = 12 / a / 2\n";
    let out = eval(src, &[], &[]);
    // (3 - 2) * (3 + 2) / 2^2 + 3^-2 = 5/4 + 1/9 = 1.3611111111111112
    check(&out, "loss", &[1.25 + 1.0 / 9.0]);
    // 3 - (-2 * 2) = 7
    check(&out, "o1", &[7.0]);
    // -(3^2) = -9: the power binds tighter than the sign
    check(&out, "o2", &[-9.0]);
    // 2^(3^2) = 2^9 = 512: right-associative
    check(&out, "o3", &[512.0]);
    // (3 - -2) - 1 = 4: left-associative
    check(&out, "o4", &[4.0]);
    // (12 / 3) / 2 = 2
    check(&out, "o5", &[2.0]);
}

#[test]
fn broadcasting_a_scalar() {
    let src = "input x: [3]\ninput s\nloss sum(s * x - 1)\noutput v = s / x + s ^ 2\n";
    let out = eval(src, &[], &[("x", &[1.0, 2.0, 4.0]), ("s", &[2.0])]);
    // (2 - 1) + (4 - 1) + (8 - 1) = 11
    check(&out, "loss", &[11.0]);
    // [2/1 + 4, 2/2 + 4, 2/4 + 4]
    check(&out, "v", &[6.0, 5.0, 4.5]);
}

#[test]
fn the_four_matmul_forms_transpose_and_outer() {
    let src = "param A: [2, 2] = [[1, 2], [3, 4]]\nparam B: [2, 2] = [[0, 1], [1, 0]]\n\
               input u: [2]\ninput v: [2]\n\
               loss u @ v\noutput mm = A @ B\noutput mv = A @ u\noutput vm = v @ A\n\
               output tv = A.T @ u\noutput op = outer(u, v)\noutput d = dot(v, v)\n";
    let out = eval(src, &[], &[("u", &[1.0, -1.0]), ("v", &[2.0, 3.0])]);
    // [1, -1] . [2, 3] = 2 - 3 = -1
    check(&out, "loss", &[-1.0]);
    // [[1*0 + 2*1, 1*1 + 2*0], [3*0 + 4*1, 3*1 + 4*0]]: B swaps the columns
    check(&out, "mm", &[2.0, 1.0, 4.0, 3.0]);
    // [1 - 2, 3 - 4]
    check(&out, "mv", &[-1.0, -1.0]);
    // [2*1 + 3*3, 2*2 + 3*4]
    check(&out, "vm", &[11.0, 16.0]);
    // A.T = [[1, 3], [2, 4]]: [1 - 3, 2 - 4]
    check(&out, "tv", &[-2.0, -2.0]);
    // [[1*2, 1*3], [-1*2, -1*3]]
    check(&out, "op", &[2.0, 3.0, -2.0, -3.0]);
    // 4 + 9
    check(&out, "d", &[13.0]);
}

#[test]
fn reductions() {
    let src = "input x: [4]\nloss sum(x)\noutput mean = mean(x)\noutput max = max(x)\n\
               output min = min(x)\noutput norm = norm(x)\noutput lse = logsumexp(x)\n\
               output mm = mean([[1, 2], [3, 6]])\n";
    let out = eval(src, &[], &[("x", &[1.0, -2.0, 3.0, 0.5])]);
    // 1 - 2 + 3 + 0.5
    check(&out, "loss", &[2.5]);
    // 2.5 / 4
    check(&out, "mean", &[0.625]);
    check(&out, "max", &[3.0]);
    check(&out, "min", &[-2.0]);
    // sqrt(1 + 4 + 9 + 0.25) = sqrt(14.25)
    check(&out, "norm", &[3.774917217635375]);
    // log(e^1 + e^-2 + e^3 + e^0.5)
    check(&out, "lse", &[3.202253447679352]);
    // (1 + 2 + 3 + 6) / 4
    check(&out, "mm", &[3.0]);
}

#[test]
fn reductions_along_axes_as_numpy() {
    // T = np.arange(1, 25).reshape(2, 3, 4); x = T[0] = [[1..4], [5..8], [9..12]].
    let t: Vec<f64> = (1..=24).map(f64::from).collect();
    let src = "input T: [2, 3, 4]\n\
               output a = sum(T, axis = 0)\n\
               output b = mean(T, axis = [0, 2], keepdims = true)\n\
               output c = max(T, axis = -1)\n\
               output d = min(T, axis = [1, 2])\n\
               output e = norm(T[0], axis = 0)\n\
               output f = logsumexp(T[0] - T[0], axis = 1)\n\
               output g = argmax(T, axis = 1)\n\
               output h = argmin(-T)\n\
               output k = sum(T, keepdims = true)\n\
               loss 0\n";
    let out = eval(src, &[], &[("T", &t)]);
    // np.sum(T, axis=0)[i, j] = (4i + j + 1) + (4i + j + 13)
    let a: Vec<f64> = (0..12).map(|k| 2.0 * k as f64 + 14.0).collect();
    check(&out, "a", &a);
    // np.mean(T, axis=(0, 2), keepdims=True): rows 1..4 and 13..16, ...
    check(&out, "b", &[8.5, 12.5, 16.5]);
    check(&out, "c", &[4.0, 8.0, 12.0, 16.0, 20.0, 24.0]);
    check(&out, "d", &[1.0, 13.0]);
    // np.linalg.norm(T[0], axis=0): sqrt(1 + 25 + 81), ...
    let e: Vec<f64> = (1..=4)
        .map(|j| ((j * j + (j + 4) * (j + 4) + (j + 8) * (j + 8)) as f64).sqrt())
        .collect();
    check(&out, "e", &e);
    check(&out, "f", &[4f64.ln(); 3]);
    // np.argmax(T, axis=1): the last row of each matrix, for every column.
    check(&out, "g", &[2.0; 8]);
    check(&out, "h", &[23.0]);
    check(&out, "k", &[300.0]);
}

#[test]
fn softmax_family_at_large_inputs() {
    let src = "input z: [3]\ninput w: [2]\nloss logsumexp(z)\noutput p = softmax(z)\n\
               output lp = log_softmax(z)\noutput lse2 = logsumexp(w)\noutput p2 = softmax(w)\n\
               output lp2 = log_softmax(w)\noutput lse3 = logsumexp(-w)\n";
    let out = eval(
        src,
        &[],
        &[("z", &[1000.0, 0.0, -1000.0]), ("w", &[1000.0, 1000.0])],
    );
    // 1000 + log(1 + e^-1000 + e^-2000) = 1000 in f64; the naive form overflows
    check(&out, "loss", &[1000.0]);
    // e^-1000 underflows to 0 after the max is shifted out
    check(&out, "p", &[1.0, 0.0, 0.0]);
    // z - logsumexp(z)
    check(&out, "lp", &[0.0, -1000.0, -2000.0]);
    // 1000 + log 2
    check(&out, "lse2", &[1000.6931471805599]);
    check(&out, "p2", &[0.5, 0.5]);
    // -log 2 each
    check(
        &out,
        "lp2",
        &[-std::f64::consts::LN_2, -std::f64::consts::LN_2],
    );
    // -1000 + log 2; the naive form gives log(0) = -inf
    check(&out, "lse3", &[-999.3068528194401]);
    for v in out.values().flatten() {
        assert!(v.is_finite(), "{out:?}");
    }
}

#[test]
fn mse_and_bce() {
    let src = "input yhat: [3]\ninput y: [3]\ninput p\ninput t\nloss mse(yhat, y)\n\
               output bce = bce(p, t)\noutput bcev = bce([p, 1 - p], [t, 1 - t])\n";
    let out = eval(
        src,
        &[],
        &[
            ("yhat", &[1.0, 2.0, 3.0]),
            ("y", &[1.0, 0.0, 0.0]),
            ("p", &[0.8]),
            ("t", &[1.0]),
        ],
    );
    // (0 + 4 + 9) / 3
    check(&out, "loss", &[13.0 / 3.0]);
    // -log 0.8
    check(&out, "bce", &[0.2231435513142097]);
    // mean(-log 0.8, -log(1 - 0.2)) = -log 0.8
    check(&out, "bcev", &[0.2231435513142097]);
    let out = eval(
        src,
        &[],
        &[
            ("yhat", &[0.0; 3]),
            ("y", &[0.0; 3]),
            ("p", &[0.8]),
            ("t", &[0.0]),
        ],
    );
    check(&out, "loss", &[0.0]);
    // -log(1 - 0.8) = -log 0.2
    check(&out, "bce", &[1.6094379124341003]);
}

#[test]
fn bce_logits_is_stable() {
    let src = "input z\ninput y\nloss bce_logits(z, y)\n";
    let cases: [(f64, f64, f64); 6] = [
        // log(1 + e^0) = log 2
        (0.0, 1.0, std::f64::consts::LN_2),
        // log(1 + e^-2)
        (2.0, 1.0, 0.1269280110429725),
        // max(z, 0) - z y + log1p(e^-|z|): 1000 - 0 + 0
        (1000.0, 0.0, 1000.0),
        // 0 + 1000 + 0
        (-1000.0, 1.0, 1000.0),
        // a confident right answer costs nothing, without overflow
        (1000.0, 1.0, 0.0),
        (-1000.0, 0.0, 0.0),
    ];
    for (z, y, want) in cases {
        let out = eval(src, &[], &[("z", &[z]), ("y", &[y])]);
        check(&out, "loss", &[want]);
    }
}

#[test]
fn cross_entropy_of_logits_and_a_class() {
    let src = "input z: [3]\ninput c\nloss cross_entropy(z, c)\n";
    // logsumexp([1, 2, 3]) = log(e + e^2 + e^3) = 3.40760596444438; minus z[c]
    let out = eval(src, &[], &[("z", &[1.0, 2.0, 3.0]), ("c", &[2.0])]);
    check(&out, "loss", &[0.40760596444438013]);
    let out = eval(src, &[], &[("z", &[1.0, 2.0, 3.0]), ("c", &[0.0])]);
    check(&out, "loss", &[2.40760596444438]);
    // At large logits: logsumexp([1000, -1000, 0]) = 1000, so the loss is
    // 1000 - z[c], finite.
    let out = eval(src, &[], &[("z", &[1000.0, -1000.0, 0.0]), ("c", &[1.0])]);
    check(&out, "loss", &[2000.0]);
    let out = eval(src, &[], &[("z", &[1000.0, -1000.0, 0.0]), ("c", &[0.0])]);
    check(&out, "loss", &[0.0]);
}

#[test]
fn huber_on_both_sides_of_delta() {
    let src = "input r\ninput v: [2]\nloss huber(r, 0)\noutput h2 = huber(r, 0, 2)\n\
               output hv = huber(v, [0, 0])\n";
    // delta 1: |r| = 0.5 <= 1: 0.5 r^2 = 0.125; delta 2: 0.5 * 0.25 = 0.125
    let out = eval(src, &[], &[("r", &[0.5]), ("v", &[0.5, 3.0])]);
    check(&out, "loss", &[0.125]);
    check(&out, "h2", &[0.125]);
    // mean(0.125, 1 * (3 - 0.5)) = (0.125 + 2.5) / 2
    check(&out, "hv", &[1.3125]);
    // delta 1: |r| = 3 > 1: 1 * (3 - 0.5) = 2.5; delta 2: 2 * (3 - 1) = 4
    let out = eval(src, &[], &[("r", &[-3.0]), ("v", &[0.0, 0.0])]);
    check(&out, "loss", &[2.5]);
    check(&out, "h2", &[4.0]);
    check(&out, "hv", &[0.0]);
    // At |r| = delta = 2 both pieces give 2: 0.5 * 4 and 2 * (2 - 1).
    let out = eval(src, &[], &[("r", &[2.0]), ("v", &[0.0, 0.0])]);
    check(&out, "h2", &[2.0]);
    // delta 1 at r = 2: 1 * (2 - 0.5)
    check(&out, "loss", &[1.5]);
}

#[test]
fn if_and_where_select_elementwise() {
    let src = "input x: [3]\ninput s\nloss sum(where(x > 0, x, 0))\n\
               output sq = if x >= 0 then x ^ 2 else -x\n\
               output flip = if s > 0 then x else -x\n\
               output safe = where(x > 0, log(x), 0)\n";
    let out = eval(src, &[], &[("x", &[-1.0, 0.0, 2.0]), ("s", &[-1.0])]);
    // only 2 is positive
    check(&out, "loss", &[2.0]);
    // [-(-1), 0^2, 2^2]
    check(&out, "sq", &[1.0, 0.0, 4.0]);
    // s <= 0: -x
    check(&out, "flip", &[1.0, 0.0, -2.0]);
    // log(-1) = NaN and log(0) = -inf are not taken: [0, 0, log 2]
    check(&out, "safe", &[0.0, 0.0, std::f64::consts::LN_2]);
}

#[test]
fn comparisons_give_one_or_zero() {
    let src = "input a\ninput b\ninput v: [3]\nloss a < b\noutput all = [a == b, a != b, a < b, a <= b, a > b, a >= b]\n\
               output ge = v >= 1\n";
    let out = eval(
        src,
        &[],
        &[("a", &[2.0]), ("b", &[3.0]), ("v", &[0.0, 1.0, 2.0])],
    );
    check(&out, "loss", &[1.0]);
    check(&out, "all", &[0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
    check(&out, "ge", &[0.0, 1.0, 1.0]);
}

#[test]
fn indexing_and_slicing() {
    let src = "input x: [5]\ninput W: [2, 3]\nloss x[-1]\noutput a = x[1:3]\noutput b = x[-2:]\n\
               output c = x[:-3]\noutput d = x[:]\noutput e = W[:, 1]\noutput f = W[-1, :2]\n\
               output g = W.T[2]\noutput h = W[1:, 1:]\noutput i = W[0]\noutput j = W[1, -3]\n";
    let x = [10.0, 11.0, 12.0, 13.0, 14.0];
    let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let out = eval(src, &[], &[("x", &x), ("W", &w)]);
    check(&out, "loss", &[14.0]);
    check(&out, "a", &[11.0, 12.0]);
    check(&out, "b", &[13.0, 14.0]);
    check(&out, "c", &[10.0, 11.0]);
    check(&out, "d", &x);
    // W = [[1, 2, 3], [4, 5, 6]]
    check(&out, "e", &[2.0, 5.0]);
    check(&out, "f", &[4.0, 5.0]);
    // W.T = [[1, 4], [2, 5], [3, 6]]
    check(&out, "g", &[3.0, 6.0]);
    check(&out, "h", &[5.0, 6.0]);
    check(&out, "i", &[1.0, 2.0, 3.0]);
    check(&out, "j", &[4.0]);
}

#[test]
fn user_functions_at_two_shapes() {
    let src = "input x: [2]\ninput s\nfn sq(a) = a * a\nfn affine(a, k) = k * a + 1\n\
               fn both(a) = affine(sq(a), 2)\n\
               loss sum(sq(x)) + sq(s)\noutput v = both(x)\noutput t = both(s)\n";
    let out = eval(src, &[], &[("x", &[1.0, 2.0]), ("s", &[3.0])]);
    // (1 + 4) + 9
    check(&out, "loss", &[14.0]);
    // 2 x^2 + 1
    check(&out, "v", &[3.0, 9.0]);
    check(&out, "t", &[19.0]);
}

#[test]
fn stable_primitives_at_extremes() {
    let src = "input x: [5]\ninput big: [2]\ninput tiny: [2]\nloss norm(big)\n\
               output sig = sigmoid(x)\noutput sp = softplus(x)\noutput th = tanh(x)\n\
               output small = norm(tiny)\n";
    let x = [1000.0, -1000.0, 0.0, -40.0, 40.0];
    let out = eval(
        src,
        &[],
        &[
            ("x", &x),
            ("big", &[1e200, 1e200]),
            ("tiny", &[1e-200, 1e-200]),
        ],
    );
    // sqrt(2) * 1e200: squaring 1e200 would overflow
    check(&out, "loss", &[1.414213562373095e200]);
    // sqrt(2) * 1e-200: squaring 1e-200 would underflow to 0
    check(&out, "small", &[1.414213562373095e-200]);
    // sigmoid(-40) = e^-40 / (1 + e^-40) = 4.248354255291589e-18, kept to full
    // relative precision; 1 - sigmoid(40) would round to 0.
    check(&out, "sig", &[1.0, 0.0, 0.5, 4.248354255291589e-18, 1.0]);
    // softplus: max(x, 0) + log1p(e^-|x|); at -40 that is log1p(e^-40) ~ e^-40
    check(
        &out,
        "sp",
        &[
            1000.0,
            0.0,
            std::f64::consts::LN_2,
            4.248354255291589e-18,
            40.0,
        ],
    );
    check(&out, "th", &[1.0, -1.0, 0.0, -1.0, 1.0]);
}

#[test]
fn elementwise_builtins() {
    let src = "input x: [2]\nloss exp(0) + log(1) + sqrt(4) + abs(-3) + sin(0) + cos(0)\n\
               output sign = [sign(-2), sign(0), sign(5)]\noutput relu = relu([-1, 0, 2])\n\
               output mx = max(x, [1, 1])\noutput mn = min(x, 0)\noutput pw = pow(x, 2)\n\
               output ex = exp(x)\noutput lg = log(abs(x))\n";
    let out = eval(src, &[], &[("x", &[-2.0, 3.0])]);
    // 1 + 0 + 2 + 3 + 0 + 1
    check(&out, "loss", &[7.0]);
    check(&out, "sign", &[-1.0, 0.0, 1.0]);
    check(&out, "relu", &[0.0, 0.0, 2.0]);
    check(&out, "mx", &[1.0, 3.0]);
    check(&out, "mn", &[-2.0, 0.0]);
    check(&out, "pw", &[4.0, 9.0]);
    // e^-2, e^3
    check(&out, "ex", &[0.1353352832366127, 20.085536923187668]);
    // log 2, log 3
    check(&out, "lg", &[std::f64::consts::LN_2, 1.0986122886681098]);
}

#[test]
fn one_hot_and_tensor_literals() {
    let src =
        "input c\ninput z: [3]\ninput s\nloss dot(one_hot(c, 3), z)\noutput oh = one_hot(c, 3)\n\
               output packed = [s, 2 * s, 3]\noutput grid = [[s, 0], [0, -s]]\n";
    let out = eval(
        src,
        &[],
        &[("c", &[1.0]), ("z", &[5.0, 7.0, 9.0]), ("s", &[1.5])],
    );
    // picks z[1]
    check(&out, "loss", &[7.0]);
    check(&out, "oh", &[0.0, 1.0, 0.0]);
    check(&out, "packed", &[1.5, 3.0, 3.0]);
    check(&out, "grid", &[1.5, 0.0, 0.0, -1.5]);
}

#[test]
fn logistic_regression_forward() {
    let src = "input x: [2]\ninput y\nparam w: [2] = normal(0, 0.1)\nparam b = 0\n\
               let z = dot(w, x) + b\nloss bce_logits(z, y)\nmetric accuracy = (z > 0) == y\n\
               output p = sigmoid(z)\n";
    let out = eval(
        src,
        &[("w", &[1.0, -1.0]), ("b", &[0.5])],
        &[("x", &[2.0, 1.0]), ("y", &[1.0])],
    );
    // z = 2 - 1 + 0.5 = 1.5; loss = log(1 + e^-1.5)
    check(&out, "loss", &[0.2014132779827524]);
    check(&out, "accuracy", &[1.0]);
    // 1 / (1 + e^-1.5)
    check(&out, "p", &[0.8175744761936437]);
}

#[test]
fn three_layer_network_forward() {
    // W1 = I (2x2), b1 = [0, -1]; a1 = relu(x + b1)
    // W2 = [[1, 1]], b2 = [0]; yhat = sigmoid(W2 @ a1 + b2)[0]
    let src =
        "input x: [2]\ninput y\nparam W1: [2, 2] = [[1, 0], [0, 1]]\nparam b1: [2] = [0, -1]\n\
               param W2: [1, 2] = [[1, 1]]\nparam b2: [1] = zeros\n\
               let a1 = relu(W1 @ x + b1)\nlet yhat = sigmoid(W2 @ a1 + b2)[0]\n\
               loss bce(yhat, y)\noutput a1 = a1\noutput yhat = yhat\n";
    let out = eval(src, &[], &[("x", &[1.5, 0.5]), ("y", &[1.0])]);
    // x + b1 = [1.5, -0.5]; relu: [1.5, 0]
    check(&out, "a1", &[1.5, 0.0]);
    // sigmoid(1.5)
    check(&out, "yhat", &[0.8175744761936437]);
    // -log sigmoid(1.5) = log(1 + e^-1.5)
    let loss = out["loss"][0];
    assert!((loss - 0.2014132779827524).abs() < 1e-15, "{loss}");
}
