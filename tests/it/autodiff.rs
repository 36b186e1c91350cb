//! Reverse-mode autodiff, checked numerically: every vector-Jacobian rule
//! against central finite differences at random points, the conventions at
//! kinks, the stable primitives at |x| = 1000, the NaN-from-the-untaken-branch
//! trap, the bundled examples, second derivatives, and the cost of the
//! gradient program (the cheap-gradient principle).
//!
//! The reference for every derivative is the interpreter run on the forward
//! IR *as lowered* (`Compiled::raw`), so neither the simplifier nor the
//! autodiff is its own oracle. Both the gradient users see
//! (`Compiled::gradient`, simplified) and the unsimplified output of
//! `autodiff::grad` are checked.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use gradc::autodiff::{self, check};
use gradc::ir::verify::verify;
use gradc::ir::{Function, Role};
use gradc::shape::{Shape, Tensor};
use gradc::Compiled;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::common::{compile, each_case, examples, root};

/// Largest relative error (`check::relative_error`) accepted against finite
/// differences.
const TOL: f64 = 1e-6;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A compiled program with its two gradient programs.
struct Prog {
    c: Compiled,
    /// `Compiled::gradient`: differentiated, then simplified.
    g: Function,
    /// `autodiff::grad` of the simplified forward IR, not simplified again.
    g_raw: Function,
}

fn build(src: &str) -> Prog {
    let c = compile(src);
    let g = c
        .gradient()
        .unwrap_or_else(|d| panic!("no gradient for\n{src}\n{d:?}"));
    let g_raw = autodiff::grad(&c.ir).unwrap_or_else(|e| panic!("no gradient for\n{src}\n{e:?}"));
    if let Err(e) = verify(&g) {
        panic!("the gradient program does not verify: {e}\n{src}\n{g}");
    }
    if let Err(e) = verify(&g_raw) {
        panic!("the raw gradient program does not verify: {e}\n{src}\n{g_raw}");
    }
    Prog { c, g, g_raw }
}

thread_local! {
    static PROGS: RefCell<HashMap<String, Rc<Prog>>> = RefCell::new(HashMap::new());
}

/// `build`, once per source per thread: a property compiles its program once,
/// not once per case.
fn prog(src: &str) -> Rc<Prog> {
    PROGS.with(|m| {
        m.borrow_mut()
            .entry(src.to_string())
            .or_insert_with(|| Rc::new(build(src)))
            .clone()
    })
}

fn s(x: f64) -> Tensor {
    Tensor::scalar(x)
}

fn v(x: &[f64]) -> Tensor {
    Tensor::new(Shape::vector(x.len()), x.to_vec())
}

fn m(rows: usize, cols: usize, x: &[f64]) -> Tensor {
    Tensor::new(Shape::matrix(rows, cols), x.to_vec())
}

fn t3(dims: [usize; 3], x: &[f64]) -> Tensor {
    Tensor::new(Shape(dims.to_vec()), x.to_vec())
}

/// The largest relative error of both gradient programs of `src` against
/// central differences of its lowered forward IR, with a description of
/// the worst parameter.
fn grad_error(p: &Prog, params: &[Tensor], inputs: &[Tensor]) -> Result<(f64, String), String> {
    let mut worst = (0.0, String::new());
    for (which, g) in [("simplified", &p.g), ("unsimplified", &p.g_raw)] {
        for pc in check::check(&p.c.raw, g, params, inputs).map_err(|e| e.to_string())? {
            let e = pc.max_rel_error;
            if e.is_nan() || e > worst.0 {
                worst = (e, format!("{which} gradient: {pc:?}"));
            }
            if e.is_nan() {
                return Ok(worst);
            }
        }
    }
    Ok(worst)
}

/// The gradient of `src` at the given point matches finite differences.
fn grad_ok(src: &str, params: &[Tensor], inputs: &[Tensor]) -> Result<(), TestCaseError> {
    let p = prog(src);
    let (err, what) = grad_error(&p, params, inputs).map_err(TestCaseError::fail)?;
    prop_assert!(
        err <= TOL,
        "relative error {err:e} > {TOL:e}\n{what}\nsource:\n{src}\nparams {params:?}\ninputs {inputs:?}\ngradient program:\n{}",
        p.g
    );
    Ok(())
}

/// The loss and the gradients of the simplified gradient program of `src`.
fn loss_and_grads(src: &str, params: &[Tensor], inputs: &[Tensor]) -> (f64, Vec<Tensor>) {
    let p = prog(src);
    check::gradients(&p.g, params, inputs)
        .unwrap_or_else(|e| panic!("evaluation failed: {e}\n{src}"))
}

/// Like [`loss_and_grads`], and the unsimplified gradient program agrees on
/// the gradients within 1e-12 relative (NaN with NaN, inf with inf): the
/// simplifier may pick a more accurate formula (`exp(log_softmax x)` becomes
/// `softmax x`), never a different value.
fn exact(src: &str, params: &[Tensor], inputs: &[Tensor]) -> (f64, Vec<Tensor>) {
    let p = prog(src);
    let (l, gs) = loss_and_grads(src, params, inputs);
    let (l2, gs2) = check::gradients(&p.g_raw, params, inputs)
        .unwrap_or_else(|e| panic!("evaluation failed: {e}\n{src}"));
    let same = |a: f64, b: f64| {
        a == b || (a.is_nan() && b.is_nan()) || check::relative_error(a, b) <= 1e-12
    };
    assert!(same(l, l2), "{src}: loss {l} vs unsimplified {l2}");
    for (a, b) in gs.iter().zip(&gs2) {
        assert!(
            a.data.iter().zip(&b.data).all(|(&x, &y)| same(x, y)),
            "{src}: the simplified gradient {a} differs from the unsimplified {b}\n{}\n{}",
            p.g,
            p.g_raw
        );
    }
    (l, gs)
}

/// |a - b| <= tol * max(1, |a|, |b|).
fn close(a: f64, b: f64, tol: f64) -> bool {
    a == b || (a - b).abs() <= tol * 1f64.max(a.abs()).max(b.abs())
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.is_finite() && close(g, w, tol),
            "{what}[{k}]: got {g:e}, want {w:e} (all: {got:?} vs {want:?})"
        );
    }
}

// --- Strategies -------------------------------------------------------------

/// `n` numbers uniform in `lo..hi`.
fn uni(lo: f64, hi: f64, n: usize) -> impl Strategy<Value = Vec<f64>> {
    vec(lo..hi, n)
}

/// `n` numbers with |x| in `margin..hi`, either sign: away from a kink at 0.
fn away(margin: f64, hi: f64, n: usize) -> impl Strategy<Value = Vec<f64>> {
    vec(
        (margin..hi, any::<bool>()).prop_map(|(x, neg)| if neg { -x } else { x }),
        n,
    )
}

/// `n` numbers in `lo..hi`, pairwise at least `gap` apart: no ties.
fn distinct(lo: f64, hi: f64, n: usize, gap: f64) -> impl Strategy<Value = Vec<f64>> {
    vec(lo..hi, n).prop_filter("pairwise distinct", move |x| {
        x.iter()
            .enumerate()
            .all(|(i, a)| x[i + 1..].iter().all(|b| (a - b).abs() > gap))
    })
}

/// `n` numbers in -4..4 at least 0.05 from every integer and half-integer,
/// where `floor` or `round` jump.
fn off_steps(n: usize) -> impl Strategy<Value = Vec<f64>> {
    vec(
        (-8i32..8, 0.05..0.45f64).prop_map(|(k, f)| f64::from(k) * 0.5 + f),
        n,
    )
}

/// `n` numbers in -3..3 at least 0.01 from the bounds -1, 1, -0.5 and 0.5
/// that the clip tests use.
fn off_bounds(n: usize) -> impl Strategy<Value = Vec<f64>> {
    vec(
        (-3.0..3.0f64).prop_filter("off the bounds", |x| {
            [-1.0, -0.5, 0.5, 1.0].iter().all(|b| (x - b).abs() > 0.01)
        }),
        n,
    )
}

// ---------------------------------------------------------------------------
// Every rule against finite differences
// ---------------------------------------------------------------------------

/// `loss dot(r, f(x))` for an elementwise `f`, with random weights `r` so
/// every element's cotangent differs.
fn unary_src(f: &str) -> String {
    format!("param x: [3]\ninput r: [3]\nloss dot(r, {f}(x))\n")
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn unary_neg(x in uni(-3.0, 3.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok("param x: [3]\ninput r: [3]\nloss dot(r, -x)\n", &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_exp(x in uni(-3.0, 3.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("exp"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_log(x in uni(0.2, 5.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("log"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_sqrt(x in uni(0.2, 5.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("sqrt"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_abs(x in away(0.01, 3.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("abs"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_sign_is_flat(x in away(0.01, 3.0, 3), r in uni(-2.0, 2.0, 3)) {
        // d/dx (sign(x) * x) = sign(x): only the product passes a cotangent.
        grad_ok("param x: [3]\ninput r: [3]\nloss dot(r, sign(x) * x)\n", &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_sin(x in uni(-4.0, 4.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("sin"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_cos(x in uni(-4.0, 4.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("cos"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_tanh(x in uni(-3.0, 3.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("tanh"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_sigmoid(x in uni(-8.0, 8.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("sigmoid"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_relu(x in away(0.01, 3.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("relu"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_softplus(x in uni(-8.0, 8.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("softplus"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_log1p(x in uni(-0.8, 5.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("log1p"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_expm1(x in uni(-4.0, 4.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("expm1"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_erf(x in uni(-3.0, 3.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("erf"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn unary_floor_and_round_are_flat(x in off_steps(3), r in uni(-2.0, 2.0, 3)) {
        // Only the products pass a cotangent: d/dx (floor(x) x) = floor(x).
        let src = "param x: [3]\ninput r: [3]\nloss dot(r, floor(x) * x) + dot(r * r, round(x) * x)\n";
        grad_ok(src, &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn gelu(x in uni(-5.0, 5.0, 3), r in uni(-2.0, 2.0, 3)) {
        grad_ok(&unary_src("gelu"), &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn leaky_relu_and_its_slope(x in away(0.01, 3.0, 3), k in uni(0.0, 0.5, 1), r in uni(-2.0, 2.0, 3)) {
        let src = "param x: [3]\nparam k\ninput r: [3]\nloss dot(r, leaky_relu(x, slope = k)) + dot(r, leaky_relu(x))\n";
        grad_ok(src, &[v(&x), s(k[0])], &[v(&r)])?;
    }

    #[test]
    fn elu_and_its_alpha(x in away(0.01, 3.0, 3), a in uni(0.5, 2.0, 1), r in uni(-2.0, 2.0, 3)) {
        let src = "param x: [3]\nparam a\ninput r: [3]\nloss dot(r, elu(x, alpha = a)) + dot(r, elu(x))\n";
        grad_ok(src, &[v(&x), s(a[0])], &[v(&r)])?;
    }

    #[test]
    fn clip_and_its_bounds(x in off_bounds(4), r in uni(-2.0, 2.0, 4)) {
        let src = "param x: [4]\nparam lo\nparam hi\ninput r: [4]\n\
                   loss dot(r, clip(x, lo, hi)) + dot(r, clip(x, hi = 0.5)) + dot(r * r, clip(x, lo = -0.5))\n";
        grad_ok(src, &[v(&x), s(-1.0), s(1.0)], &[v(&r)])?;
    }

    #[test]
    fn unary_on_a_matrix(x in uni(-2.0, 2.0, 6), r in uni(-2.0, 2.0, 6)) {
        let src = "param X: [2, 3]\ninput R: [2, 3]\nloss sum(R * tanh(X) + R * R * exp(X) * sin(X))\n";
        grad_ok(src, &[m(2, 3, &x)], &[m(2, 3, &r)])?;
    }

    #[test]
    fn unary_chain(x in uni(-2.0, 2.0, 1)) {
        let src = "param x\nloss sigmoid(sin(exp(tanh(x)))) * softplus(cos(x))\n";
        grad_ok(src, &[s(x[0])], &[])?;
    }

    // --- + - * / ---

    #[test]
    fn binary_add_sub(x in uni(-3.0, 3.0, 3), y in uni(-3.0, 3.0, 3), r in uni(-2.0, 2.0, 3)) {
        let src = "param x: [3]\nparam y: [3]\ninput r: [3]\nloss dot(r, x + y) + dot(r * r, x - y) + sum(y - x * x)\n";
        grad_ok(src, &[v(&x), v(&y)], &[v(&r)])?;
    }

    #[test]
    fn binary_mul(x in uni(-3.0, 3.0, 3), y in uni(-3.0, 3.0, 3), r in uni(-2.0, 2.0, 3)) {
        let src = "param x: [3]\nparam y: [3]\ninput r: [3]\nloss dot(r, x * y) + dot(r, x * x * x)\n";
        grad_ok(src, &[v(&x), v(&y)], &[v(&r)])?;
    }

    #[test]
    fn binary_div(x in uni(-3.0, 3.0, 3), y in away(0.3, 3.0, 3), r in uni(-2.0, 2.0, 3)) {
        let src = "param x: [3]\nparam y: [3]\ninput r: [3]\nloss dot(r, x / y) + sum(1 / y) + sum(y / 2)\n";
        grad_ok(src, &[v(&x), v(&y)], &[v(&r)])?;
    }

    #[test]
    fn binary_scalar_broadcasts(a in away(0.3, 2.0, 1), x in uni(-2.0, 2.0, 3), r in uni(-2.0, 2.0, 3)) {
        // A scalar parameter meets a vector on either side of every operator:
        // its cotangent is summed back down.
        let src = "param a\nparam x: [3]\ninput r: [3]\n\
                   loss dot(r, a * x + x / a - a + (a - x) * a + a / (x * x + 1))\n";
        grad_ok(src, &[s(a[0]), v(&x)], &[v(&r)])?;
    }

    // --- powers ---

    #[test]
    fn pow_constant_exponents(x in uni(-2.0, 2.0, 3), r in uni(-2.0, 2.0, 3)) {
        let src = "param x: [3]\ninput r: [3]\nloss dot(r, x^2) + dot(r, x^3) + sum(pow(x, 4)) - sum(x^1) + sum(x^0)\n";
        grad_ok(src, &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn pow_fractional_and_negative_exponents(x in uni(0.3, 3.0, 3), r in uni(-2.0, 2.0, 3)) {
        let src = "param x: [3]\ninput r: [3]\nloss dot(r, x^0.5) + dot(r, x^-1.5) + dot(r, x^2.7)\n";
        grad_ok(src, &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn pow_parameter_exponent(x in uni(0.3, 3.0, 3), p in uni(-2.0, 2.0, 1), q in uni(-2.0, 2.0, 3), r in uni(-2.0, 2.0, 3)) {
        // Parameter exponents: scalar (broadcast) and elementwise, and a
        // constant base.
        let src = "param x: [3]\nparam p\nparam q: [3]\ninput r: [3]\n\
                   loss dot(r, x^p) + dot(r, x^q) + dot(r, 2^q) + dot(r, pow(1.5, p) * q)\n";
        grad_ok(src, &[v(&x), s(p[0]), v(&q)], &[v(&r)])?;
    }

    #[test]
    fn pow_right_associative(x in uni(0.5, 1.5, 1), y in uni(0.5, 1.5, 1)) {
        let src = "param x\nparam y\nloss x^y^2 - -x^2\n";
        grad_ok(src, &[s(x[0]), s(y[0])], &[])?;
    }

    // --- max and min, elementwise ---

    #[test]
    fn max_min_elementwise(x in uni(-2.0, 2.0, 3), d in away(0.01, 2.0, 3), r in uni(-2.0, 2.0, 3)) {
        let y: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + b).collect();
        let src = "param x: [3]\nparam y: [3]\ninput r: [3]\nloss dot(r, max(x, y)) + dot(r * r, min(x, y)) + sum(max(y, x) * min(y, x))\n";
        grad_ok(src, &[v(&x), v(&y)], &[v(&r)])?;
    }

    #[test]
    fn max_min_with_scalars(x in away(0.01, 2.0, 3), a in uni(-0.005, 0.005, 1), r in uni(-2.0, 2.0, 3)) {
        // x is at least 0.005 away from a, which is near 0.
        let src = "param x: [3]\nparam a\ninput r: [3]\nloss dot(r, max(x, a)) + dot(r, min(a, x)) + dot(r, max(x, 0.003)) + dot(r, min(-0.003, x))\n";
        grad_ok(src, &[v(&x), s(a[0])], &[v(&r)])?;
    }

    // --- the four forms of @, transpose, outer, dot ---

    #[test]
    fn matmul_matrix_matrix(a in uni(-2.0, 2.0, 6), b in uni(-2.0, 2.0, 12), r in uni(-2.0, 2.0, 8)) {
        let src = "param A: [2, 3]\nparam B: [3, 4]\ninput R: [2, 4]\nloss sum(R * (A @ B))\n";
        grad_ok(src, &[m(2, 3, &a), m(3, 4, &b)], &[m(2, 4, &r)])?;
    }

    #[test]
    fn matmul_matrix_vector(a in uni(-2.0, 2.0, 12), x in uni(-2.0, 2.0, 4), r in uni(-2.0, 2.0, 3)) {
        let src = "param A: [3, 4]\nparam x: [4]\ninput r: [3]\nloss dot(r, A @ x)\n";
        grad_ok(src, &[m(3, 4, &a), v(&x)], &[v(&r)])?;
    }

    #[test]
    fn matmul_vector_matrix(x in uni(-2.0, 2.0, 3), b in uni(-2.0, 2.0, 6), r in uni(-2.0, 2.0, 2)) {
        let src = "param x: [3]\nparam B: [3, 2]\ninput r: [2]\nloss dot(r, x @ B)\n";
        grad_ok(src, &[v(&x), m(3, 2, &b)], &[v(&r)])?;
    }

    #[test]
    fn matmul_vector_vector(x in uni(-2.0, 2.0, 4), y in uni(-2.0, 2.0, 4)) {
        let src = "param x: [4]\nparam y: [4]\nloss (x @ y) * (x @ x) + dot(y, y) * dot(x, y)\n";
        grad_ok(src, &[v(&x), v(&y)], &[])?;
    }

    #[test]
    fn matmul_transposed(a in uni(-2.0, 2.0, 6), b in uni(-2.0, 2.0, 12), c in uni(-2.0, 2.0, 8), r in uni(-2.0, 2.0, 8)) {
        // A.T @ B, B.T @ C, and transpose() as a function, with both
        // operands parameters.
        let src = "param A: [3, 2]\nparam B: [3, 4]\nparam C: [2, 4]\ninput R: [2, 4]\n\
                   loss sum(R * (A.T @ B)) + sum(R.T * (B.T @ A)) + sum((C @ transpose(B) @ A).T * (C @ R.T)) + sum(C.T.T * R)\n";
        grad_ok(src, &[m(3, 2, &a), m(3, 4, &b), m(2, 4, &c)], &[m(2, 4, &r)])?;
    }

    #[test]
    fn matmul_transposed_vector_forms(a in uni(-2.0, 2.0, 6), x in uni(-2.0, 2.0, 3), r in uni(-2.0, 2.0, 2)) {
        let src = "param A: [3, 2]\nparam x: [3]\ninput r: [2]\nloss dot(r, A.T @ x) + dot(x, A @ r) + dot(r, x @ A)\n";
        grad_ok(src, &[m(3, 2, &a), v(&x)], &[v(&r)])?;
    }

    #[test]
    fn outer_product(x in uni(-2.0, 2.0, 3), y in uni(-2.0, 2.0, 2), r in uni(-2.0, 2.0, 6)) {
        let src = "param x: [3]\nparam y: [2]\ninput R: [3, 2]\nloss sum(R * outer(x, y)) + sum(outer(y, y) * outer(y, y))\n";
        grad_ok(src, &[v(&x), v(&y)], &[m(3, 2, &r)])?;
    }

    // --- reductions ---

    #[test]
    fn reduce_sum_mean(x in uni(-2.0, 2.0, 3), w in uni(-2.0, 2.0, 6), r in uni(-2.0, 2.0, 6)) {
        let src = "param x: [3]\nparam W: [2, 3]\ninput R: [2, 3]\n\
                   loss sum(exp(x)) * sum(x) + mean(W * R) + mean(x)^2 + sum(W @ x) * mean(W)\n";
        grad_ok(src, &[v(&x), m(2, 3, &w)], &[m(2, 3, &r)])?;
    }

    #[test]
    fn reduce_norm(x in uni(-2.0, 2.0, 3), w in uni(-2.0, 2.0, 6)) {
        prop_assume!(x.iter().map(|a| a * a).sum::<f64>() > 0.01);
        let src = "param x: [3]\nparam W: [2, 3]\nloss norm(x) + norm(W) * norm(x)^2 + norm(W @ x)\n";
        grad_ok(src, &[v(&x), m(2, 3, &w)], &[])?;
    }

    #[test]
    fn reduce_max_min(x in distinct(-2.0, 2.0, 4, 1e-3), w in distinct(-2.0, 2.0, 6, 1e-3), r in uni(-2.0, 2.0, 4)) {
        let src = "param x: [4]\nparam W: [2, 3]\ninput r: [4]\n\
                   loss max(x) + 2 * min(x) + max(W) * min(W) + max(x * r) - min(exp(x))\n";
        // The products x * r must not tie either.
        let xr: Vec<f64> = x.iter().zip(&r).map(|(a, b)| a * b).collect();
        prop_assume!(xr.iter().enumerate().all(|(i, a)| xr[i + 1..].iter().all(|b| (a - b).abs() > 1e-3)));
        grad_ok(src, &[v(&x), m(2, 3, &w)], &[v(&r)])?;
    }

    #[test]
    fn reduce_logsumexp(x in uni(-5.0, 5.0, 4), w in uni(-3.0, 3.0, 6)) {
        let src = "param x: [4]\nparam W: [2, 3]\nloss logsumexp(x) + logsumexp(W) * logsumexp(2 * x)\n";
        grad_ok(src, &[v(&x), m(2, 3, &w)], &[])?;
    }

    #[test]
    fn softmax_vjp(x in uni(-5.0, 5.0, 4), r in uni(-2.0, 2.0, 4)) {
        let src = "param x: [4]\ninput r: [4]\nloss dot(r, softmax(x)) + dot(softmax(x), softmax(x))\n";
        grad_ok(src, &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn log_softmax_vjp(x in uni(-5.0, 5.0, 4), r in uni(-2.0, 2.0, 4)) {
        let src = "param x: [4]\ninput r: [4]\nloss dot(r, log_softmax(x)) + sum(log_softmax(x * r)^2)\n";
        grad_ok(src, &[v(&x)], &[v(&r)])?;
    }

    // --- along axes ---

    #[test]
    fn sum_mean_along_axes(t in uni(-2.0, 2.0, 24), r in uni(-2.0, 2.0, 8)) {
        let src = "param T: [2, 3, 4]\ninput R: [2, 4]\n\
                   loss sum(R * sum(T, axis = 1)) + sum(mean(T, axis = [0, 2])^2) \
                   + sum(sum(T, axis = -1, keepdims = true)^2) + sum(mean(T^2, axis = [2, 0, 1]))\n";
        grad_ok(src, &[t3([2, 3, 4], &t)], &[m(2, 4, &r)])?;
    }

    #[test]
    fn max_min_along_axes(t in distinct(-2.0, 2.0, 24, 1e-3), r in uni(-2.0, 2.0, 6)) {
        let src = "param T: [2, 3, 4]\ninput R: [2, 3]\n\
                   loss sum(R * max(T, axis = 2)) + sum(min(T, axis = [0, 1])^2) \
                   + sum(max(T, axis = 0, keepdims = true)^2)\n";
        grad_ok(src, &[t3([2, 3, 4], &t)], &[m(2, 3, &r)])?;
    }

    #[test]
    fn norm_logsumexp_along_axes(t in uni(-2.0, 2.0, 24), r in uni(-2.0, 2.0, 3)) {
        prop_assume!(t.iter().map(|a| a * a).sum::<f64>() > 0.1);
        let src = "param T: [2, 3, 4]\ninput r: [3]\n\
                   loss dot(r, norm(T, axis = [0, 2])) + sum(logsumexp(T, axis = 1)^2) \
                   + sum(logsumexp(2 * T, axis = -1, keepdims = true)^2)\n";
        grad_ok(src, &[t3([2, 3, 4], &t)], &[v(&r)])?;
    }

    #[test]
    fn softmax_log_softmax_along_an_axis(t in uni(-3.0, 3.0, 24), r in uni(-2.0, 2.0, 24)) {
        let src = "param T: [2, 3, 4]\ninput R: [2, 3, 4]\n\
                   loss sum(R * softmax(T, axis = 1)) + sum(R * log_softmax(T, axis = 0)) \
                   + sum(softmax(T)^2) + sum(log_softmax(T * R, axis = -2)^2)\n";
        grad_ok(src, &[t3([2, 3, 4], &t)], &[t3([2, 3, 4], &r)])?;
    }

    // --- indexing and slices ---

    #[test]
    fn index_vector(x in uni(-2.0, 2.0, 5), r in uni(-2.0, 2.0, 2)) {
        let src = "param x: [5]\ninput r: [2]\n\
                   loss x[1] * x[-1] + dot(r, x[1:3]) + sum(x[2:] * x[:-2]) + sum(x[:2]^2) + x[0] * sum(x[:])\n";
        grad_ok(src, &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn index_matrix_rows_columns(w in uni(-2.0, 2.0, 12), r in uni(-2.0, 2.0, 4)) {
        let src = "param W: [3, 4]\ninput r: [4]\n\
                   loss dot(r, W[1, :]) + dot(r, W[2]) * W[0, 1] + sum(W[:, 2] * W[:, -1]) + sum(W[1:, :-1] * W[:2, 1:]) + W[-1, -4]^2\n";
        grad_ok(src, &[m(3, 4, &w)], &[v(&r)])?;
    }

    #[test]
    fn index_rank3(t in uni(-2.0, 2.0, 24)) {
        let src = "param T: [2, 3, 4]\nloss sum(T[1] * T[0]) + sum(T[0, 2]^3) + sum(T[:, 1:, -1] * T[:, :2, 0]) + T[1, 2, 3] * sum(T)\n";
        grad_ok(src, &[t3([2, 3, 4], &t)], &[])?;
    }

    // --- tensor literals of parameters ---

    #[test]
    fn tensor_literal_of_scalars(a in uni(-2.0, 2.0, 1), b in uni(-2.0, 2.0, 1), r in uni(-2.0, 2.0, 3)) {
        let src = "param a\nparam b\ninput r: [3]\nloss dot(r, [a, b, a * b]) + sum([[a, b], [b, 1]] @ [sin(a), b]) + sum([a, 2])^2\n";
        grad_ok(src, &[s(a[0]), s(b[0])], &[v(&r)])?;
    }

    #[test]
    fn tensor_literal_of_vectors(x in uni(-2.0, 2.0, 3), y in uni(-2.0, 2.0, 3), r in uni(-2.0, 2.0, 6)) {
        let src = "param x: [3]\nparam y: [3]\ninput R: [2, 3]\nloss sum(R * [x, y * x]) + sum([x, y, x + 1] @ y)\n";
        grad_ok(src, &[v(&x), v(&y)], &[m(2, 3, &r)])?;
    }

    // --- if and where ---

    #[test]
    fn where_on_parameters(x in away(0.01, 2.0, 3), r in uni(-2.0, 2.0, 3)) {
        let src = "param x: [3]\ninput r: [3]\nloss dot(r, where(x > 0, x^2, sin(x))) + sum(if x < 0 then exp(x) else 2 * x)\n";
        grad_ok(src, &[v(&x)], &[v(&r)])?;
    }

    #[test]
    fn if_on_scalars(a in uni(-2.0, 2.0, 1), d in away(0.01, 2.0, 1)) {
        let b = a[0] + d[0];
        let src = "param a\nparam b\nloss if a > b then a * b else a - b^2\n";
        grad_ok(src, &[s(a[0]), s(b)], &[])?;
    }

    #[test]
    fn where_on_inputs_and_scalar_branches(x in uni(-2.0, 2.0, 3), a in uni(-2.0, 2.0, 1), c in uni(-1.0, 1.0, 3), r in uni(-2.0, 2.0, 3)) {
        // The condition is data; one branch is a scalar parameter, broadcast.
        let src = "param x: [3]\nparam a\ninput c: [3]\ninput r: [3]\n\
                   loss dot(r, where(c > 0, x, -2 * x)) + dot(r, where(c > 0, a, x)) + sum(if c[0] > 0 then x * a else a)\n";
        grad_ok(src, &[v(&x), s(a[0])], &[v(&c), v(&r)])?;
    }

    // --- losses ---

    #[test]
    fn loss_mse(p in uni(-2.0, 2.0, 3), t in uni(-2.0, 2.0, 3), a in uni(-2.0, 2.0, 1), b in uni(-2.0, 2.0, 1)) {
        let src = "param p: [3]\nparam t: [3]\nparam a\nparam b\nloss mse(p, t) + mse(a, b) + mse(p, a)\n";
        grad_ok(src, &[v(&p), v(&t), s(a[0]), s(b[0])], &[])?;
    }

    #[test]
    fn loss_bce(p in uni(0.05, 0.95, 3), y in uni(0.0, 1.0, 3), z in uni(-4.0, 4.0, 1)) {
        let src = "param p: [3]\nparam y: [3]\nparam z\ninput t\nloss bce(p, y) + bce(sigmoid(z), t)\n";
        grad_ok(src, &[v(&p), v(&y), s(z[0])], &[s(y[0])])?;
    }

    #[test]
    fn loss_bce_logits(z in uni(-6.0, 6.0, 3), y in uni(0.0, 1.0, 3), t in uni(0.0, 1.0, 1)) {
        let src = "param z: [3]\nparam y: [3]\ninput t\nloss bce_logits(z, y) + bce_logits(z[0], t) + bce_logits(z, t)\n";
        grad_ok(src, &[v(&z), v(&y)], &[s(t[0])])?;
        // A scalar target parameter against vector logits: its cotangent
        // -z is summed.
        grad_ok("param z: [3]\nparam t\nloss bce_logits(z, t)\n", &[v(&z), s(t[0])], &[])?;
    }

    #[test]
    fn loss_cross_entropy(z in uni(-4.0, 4.0, 4), class in 0usize..4) {
        let src = "param z: [4]\ninput c\nloss cross_entropy(z, c) + cross_entropy(2 * z, 3 - c)\n";
        grad_ok(src, &[v(&z)], &[s(class as f64)])?;
    }

    #[test]
    fn loss_huber_both_sides(p in uni(-3.0, 3.0, 4), raw in vec(0.0f64..1.0, 4), delta in uni(0.5, 2.0, 1)) {
        // Residuals on both sides of delta and of -delta, 0.05 away from the
        // switch: r in (-delta + .05, delta - .05) or |r| in (delta + .05, 3).
        let d = delta[0];
        let r: Vec<f64> = raw
            .iter()
            .enumerate()
            .map(|(k, u)| {
                let mag = if k % 2 == 0 { u * (d - 0.05) } else { d + 0.05 + u * 2.0 };
                if k < 2 { mag } else { -mag }
            })
            .collect();
        let t: Vec<f64> = p.iter().zip(&r).map(|(a, b)| a - b).collect();
        let src = "param p: [4]\nparam t: [4]\nparam d\nloss huber(p, t, d)\n";
        grad_ok(src, &[v(&p), v(&t), s(d)], &[])?;
        // The default delta, 1: the residuals against 1 instead.
        let r1: Vec<f64> = raw
            .iter()
            .enumerate()
            .map(|(k, u)| {
                let mag = if k % 2 == 0 { u * 0.95 } else { 1.05 + u * 2.0 };
                if k < 2 { mag } else { -mag }
            })
            .collect();
        let t1: Vec<f64> = p.iter().zip(&r1).map(|(a, b)| a - b).collect();
        grad_ok("param p: [4]\ninput t: [4]\nloss huber(p, t) + huber(p[0], t[0])\n", &[v(&p)], &[v(&t1)])?;
    }

    // --- user functions ---

    #[test]
    fn user_functions(x in uni(-2.0, 2.0, 3), a in uni(-2.0, 2.0, 1)) {
        let src = "param x: [3]\nparam a\n\
                   fn f(u, w) = u * sin(w) + w^2\n\
                   fn g(u) = f(u, u) * 2 + f(u, a)\n\
                   fn dense(W, b, h) = tanh(W @ h + b)\n\
                   loss sum(g(x)) + g(a) + f(a, 3) + sum(dense(outer(x, x), x, x))\n";
        grad_ok(src, &[v(&x), s(a[0])], &[])?;
    }

    // --- whole models ---

    #[test]
    fn three_layer_network(w1 in uni(-1.0, 1.0, 12), b1 in uni(-0.5, 0.5, 4), w2 in uni(-1.0, 1.0, 16), b2 in uni(-0.5, 0.5, 4), w3 in uni(-1.0, 1.0, 4), b3 in uni(-0.5, 0.5, 1), x in uni(-2.0, 2.0, 3), y in 0usize..2) {
        let src = "input x: [3]\ninput y\n\
                   param W1: [4, 3]\nparam b1: [4]\nparam W2: [4, 4]\nparam b2: [4]\nparam W3: [1, 4]\nparam b3: [1]\n\
                   let a1 = relu(W1 @ x + b1)\nlet a2 = relu(W2 @ a1 + b2)\n\
                   let yhat = sigmoid(W3 @ a2 + b3)[0]\nloss bce(yhat, y)\n";
        // Stay away from the relu kinks.
        let pre1: Vec<f64> = (0..4).map(|i| (0..3).map(|j| w1[i * 3 + j] * x[j]).sum::<f64>() + b1[i]).collect();
        prop_assume!(pre1.iter().all(|z| z.abs() > 1e-3));
        let a1: Vec<f64> = pre1.iter().map(|z| z.max(0.0)).collect();
        let pre2: Vec<f64> = (0..4).map(|i| (0..4).map(|j| w2[i * 4 + j] * a1[j]).sum::<f64>() + b2[i]).collect();
        prop_assume!(pre2.iter().all(|z| z.abs() > 1e-3));
        grad_ok(
            src,
            &[m(4, 3, &w1), v(&b1), m(4, 4, &w2), v(&b2), m(1, 4, &w3), v(&b3)],
            &[v(&x), s(y as f64)],
        )?;
    }

    #[test]
    fn softmax_regression(w in uni(-1.0, 1.0, 12), b in uni(-1.0, 1.0, 3), x in uni(-2.0, 2.0, 4), class in 0usize..3) {
        let src = "input x: [4]\ninput c\nparam W: [3, 4]\nparam b: [3]\n\
                   let logits = W @ x + b\nloss cross_entropy(logits, c) + 0.01 * norm(W)^2\n\
                   metric acc = dot(one_hot(c, 3), logits) == max(logits)\noutput p = softmax(logits)\n";
        grad_ok(src, &[m(3, 4, &w), v(&b)], &[v(&x), s(class as f64)])?;
    }
}

// ---------------------------------------------------------------------------
// Kinks: the conventions, exactly
// ---------------------------------------------------------------------------

#[test]
fn relu_at_zero_is_zero() {
    let (l, g) = exact("param x\nloss relu(x)\n", &[s(0.0)], &[]);
    assert_eq!((l, g[0].data[0]), (0.0, 0.0));
    let (_, g) = exact(
        "param x: [3]\nloss sum(relu(x))\n",
        &[v(&[-1.0, 0.0, 2.0])],
        &[],
    );
    assert_eq!(g[0].data, vec![0.0, 0.0, 1.0]);
}

#[test]
fn abs_at_zero_is_zero() {
    let (l, g) = exact("param x\nloss abs(x)\n", &[s(0.0)], &[]);
    assert_eq!((l, g[0].data[0]), (0.0, 0.0));
    let (_, g) = exact(
        "param x: [3]\nloss sum(abs(x))\n",
        &[v(&[-1.0, 0.0, 2.0])],
        &[],
    );
    assert_eq!(g[0].data, vec![-1.0, 0.0, 1.0]);
}

#[test]
fn elementwise_max_min_split_a_tie() {
    for f in ["max", "min"] {
        let src = format!("param a\nparam b\nloss {f}(a, b)\n");
        let (l, g) = exact(&src, &[s(1.5), s(1.5)], &[]);
        assert_eq!(l, 1.5);
        assert_eq!((g[0].data[0], g[1].data[0]), (0.5, 0.5), "{f}");
        // Away from the tie the winner takes all.
        let (_, g) = exact(&src, &[s(1.0), s(2.0)], &[]);
        let want = if f == "max" { (0.0, 1.0) } else { (1.0, 0.0) };
        assert_eq!((g[0].data[0], g[1].data[0]), want, "{f}");
    }
    // Elementwise, with a constant side: max(x, 0) at 0 gives half, unlike
    // relu.
    let (_, g) = exact(
        "param x: [3]\nloss sum(max(x, 0)) + sum(min(x, 1))\n",
        &[v(&[0.0, 1.0, -2.0])],
        &[],
    );
    assert_eq!(g[0].data, vec![0.5 + 1.0, 1.0 + 0.5, 0.0 + 1.0]);
    // A vector against a scalar parameter: the scalar's share is summed.
    let (_, g) = exact(
        "param x: [3]\nparam a\nloss sum(max(x, a))\n",
        &[v(&[2.0, 2.0, 1.0]), s(2.0)],
        &[],
    );
    assert_eq!(g[0].data, vec![0.5, 0.5, 0.0]);
    assert_eq!(g[1].data[0], 0.5 + 0.5 + 1.0);
}

#[test]
fn max_min_reductions_split_ties_evenly() {
    let (l, g) = exact(
        "param x: [4]\nloss max(x)\n",
        &[v(&[1.0, 3.0, 3.0, 2.0])],
        &[],
    );
    assert_eq!(l, 3.0);
    assert_eq!(g[0].data, vec![0.0, 0.5, 0.5, 0.0]);
    let (l, g) = exact(
        "param x: [4]\nloss min(x)\n",
        &[v(&[2.0, -1.0, 5.0, -1.0])],
        &[],
    );
    assert_eq!(l, -1.0);
    assert_eq!(g[0].data, vec![0.0, 0.5, 0.0, 0.5]);
    // Three tied, in a matrix, with a cotangent other than 1.
    let (_, g) = exact(
        "param W: [2, 3]\nloss 3 * max(W)\n",
        &[m(2, 3, &[7.0, 0.0, 7.0, 7.0, -1.0, 6.0])],
        &[],
    );
    assert_eq!(g[0].data, vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    // No tie: all to the maximum.
    let (_, g) = exact("param x: [3]\nloss max(x)\n", &[v(&[1.0, 3.0, 2.0])], &[]);
    assert_eq!(g[0].data, vec![0.0, 1.0, 0.0]);
}

#[test]
fn max_along_axes_splits_ties_evenly_per_slice() {
    // Column 0 ties three ways, column 1 has one maximum.
    let (l, g) = exact(
        "param W: [3, 2]\nloss sum(max(W, axis = 0) * [1, 10])\n",
        &[m(3, 2, &[2.0, 1.0, 2.0, 5.0, 2.0, 0.0])],
        &[],
    );
    assert_eq!(l, 52.0);
    assert_eq!(
        g[0].data,
        vec![1.0 / 3.0, 0.0, 1.0 / 3.0, 10.0, 1.0 / 3.0, 0.0]
    );
    let (_, g) = exact(
        "param W: [2, 2]\nloss sum(min(W, axis = 1))\n",
        &[m(2, 2, &[-1.0, -1.0, 4.0, 3.0])],
        &[],
    );
    assert_eq!(g[0].data, vec![0.5, 0.5, 0.0, 1.0]);
    // The norm of a zero slice has gradient 0, the other slice x / norm.
    let (_, g) = exact(
        "param W: [2, 2]\nloss sum(norm(W, axis = 1))\n",
        &[m(2, 2, &[0.0, 0.0, 3.0, 4.0])],
        &[],
    );
    assert_close("d norm", &g[0].data, &[0.0, 0.0, 0.6, 0.8], 1e-15);
}

#[test]
fn argmax_passes_no_gradient() {
    // argmax is integer-valued: the loss through it is flat in W, and the
    // gradient program has no rule to run through it.
    let (l, g) = exact(
        "param W: [2, 3]\nloss sum(argmax(W, axis = 1)) + argmin(W) + sum(W)\n",
        &[m(2, 3, &[1.0, 5.0, 5.0, 0.0, -2.0, 3.0])],
        &[],
    );
    assert_eq!(l, 1.0 + 2.0 + 4.0 + 12.0);
    assert_eq!(g[0].data, vec![1.0; 6]);
}

#[test]
fn norm_at_zero_is_zero() {
    let (l, g) = exact("param x: [3]\nloss norm(x)\n", &[v(&[0.0; 3])], &[]);
    assert_eq!(l, 0.0);
    assert_eq!(g[0].data, vec![0.0; 3]);
    let (_, g) = exact(
        "param W: [2, 2]\nloss 2 * norm(W)\n",
        &[m(2, 2, &[0.0; 4])],
        &[],
    );
    assert_eq!(g[0].data, vec![0.0; 4]);
    // Elsewhere: x / |x|.
    let (l, g) = exact("param x: [2]\nloss norm(x)\n", &[v(&[3.0, -4.0])], &[]);
    assert_eq!(l, 5.0);
    assert_close("d norm", &g[0].data, &[0.6, -0.8], 1e-15);
}

#[test]
fn sqrt_at_zero_is_plus_infinity() {
    let (l, g) = exact("param x\nloss sqrt(x)\n", &[s(0.0)], &[]);
    assert_eq!(l, 0.0);
    assert_eq!(g[0].data[0], f64::INFINITY);
    let (_, g) = exact("param x: [2]\nloss sum(sqrt(x))\n", &[v(&[0.0, 4.0])], &[]);
    assert_eq!(g[0].data, vec![f64::INFINITY, 0.25]);
}

#[test]
fn floor_and_round_have_zero_gradient() {
    // At their jumps too: 0, never NaN.
    let x = [-1.5, -1.0, -0.5, -0.0, 0.0, 0.5, 2.5, 3.7];
    for f in ["floor", "round"] {
        let (_, g) = exact(&format!("param x: [8]\nloss sum({f}(x))\n"), &[v(&x)], &[]);
        assert_eq!(g[0].data, vec![0.0; 8], "{f}");
    }
    // The value passes through the other factor only.
    let (l, g) = exact("param x\nloss round(x) * x + floor(x)\n", &[s(2.5)], &[]);
    assert_eq!((l, g[0].data[0]), (2.0 * 2.5 + 2.0, 2.0));
}

#[test]
fn leaky_relu_and_elu_at_zero_take_the_negative_side() {
    // As PyTorch: leaky_relu'(0) = slope, elu'(0) = alpha.
    let (l, g) = exact("param x\nloss leaky_relu(x, slope = 0.2)\n", &[s(0.0)], &[]);
    assert_eq!((l, g[0].data[0]), (0.0, 0.2));
    let (_, g) = exact("param x\nloss leaky_relu(x)\n", &[s(0.0)], &[]);
    assert_eq!(g[0].data[0], 0.01);
    let (_, g) = exact("param x\nloss elu(x, alpha = 1.5)\n", &[s(0.0)], &[]);
    assert_eq!(g[0].data[0], 1.5);
    let (l, g) = exact(
        "param x: [3]\nloss sum(elu(x))\n",
        &[v(&[-1.0, 0.0, 2.0])],
        &[],
    );
    assert_close("elu", &[l], &[(-1f64).exp_m1() + 2.0], 1e-15);
    assert_close("d elu", &g[0].data, &[(-1f64).exp(), 1.0, 1.0], 1e-15);
}

#[test]
fn clip_passes_the_gradient_inside_its_bounds_only() {
    // 1 inside [lo, hi], bounds included (as PyTorch's clamp), 0 outside;
    // each bound gets the cotangent of the elements clipped to it.
    let (l, g) = exact(
        "param x: [5]\nparam lo\nparam hi\nloss sum(clip(x, lo, hi))\n",
        &[v(&[-2.0, -1.0, 0.0, 1.0, 2.0]), s(-1.0), s(1.0)],
        &[],
    );
    assert_eq!(l, -1.0 - 1.0 + 0.0 + 1.0 + 1.0);
    assert_eq!(g[0].data, vec![0.0, 1.0, 1.0, 1.0, 0.0]);
    assert_eq!((g[1].data[0], g[2].data[0]), (1.0, 1.0));
    // One bound by keyword; the other is infinite.
    let (l, g) = exact(
        "param x: [3]\nloss sum(clip(x, hi = 1))\n",
        &[v(&[-1e300, 0.5, 3.0])],
        &[],
    );
    assert_eq!(l, -1e300 + 0.5 + 1.0);
    assert_eq!(g[0].data, vec![1.0, 1.0, 0.0]);
    // lo above hi: hi wins, as min(max(x, lo), hi).
    let (l, g) = exact("param x\nloss clip(x, 2, 1)\n", &[s(0.0)], &[]);
    assert_eq!((l, g[0].data[0]), (1.0, 0.0));
}

// ---------------------------------------------------------------------------
// Stable primitives at |x| = 1000
// ---------------------------------------------------------------------------

/// The relative accuracy of a softmax computed as exp(x - logsumexp(x)) at
/// |x| ~ 1000: the subtraction is exact but logsumexp(x) itself is rounded
/// to an ulp of 1000 (1.1e-13), which exp turns into a relative error.
const SHIFTED: f64 = 1e-12;

/// 1 / (1 + e^-1): the larger softmax weight of two logits 1 apart.
fn sigma1() -> f64 {
    1.0 / (1.0 + (-1f64).exp())
}

#[test]
fn sigmoid_at_1000() {
    let src = "param x\nloss sigmoid(x)\n";
    // sigmoid(1000) rounds to 1, and its slope, e^-1000, to 0.
    assert_eq!(exact(src, &[s(1000.0)], &[]), (1.0, vec![s(0.0)]));
    // sigmoid(-1000) = e^-1000, below the smallest subnormal: 0.
    assert_eq!(exact(src, &[s(-1000.0)], &[]), (0.0, vec![s(0.0)]));
    // Moderate values stay exact: sigmoid(-30) = e^-30 / (1 + e^-30).
    let (l, g) = exact(src, &[s(-30.0)], &[]);
    let e = (-30f64).exp();
    assert_close(
        "sigmoid(-30)",
        &[l, g[0].data[0]],
        &[e / (1.0 + e), e / (1.0 + e).powi(2)],
        1e-14,
    );
    assert!(l > 0.0, "sigmoid(-30) underflowed: {l}");
}

#[test]
fn softplus_at_1000() {
    let src = "param x\nloss softplus(x)\n";
    // softplus(1000) = 1000 + log1p(e^-1000) = 1000; slope sigmoid(1000) = 1.
    assert_eq!(exact(src, &[s(1000.0)], &[]), (1000.0, vec![s(1.0)]));
    // softplus(-1000) = log1p(e^-1000) = 0; slope 0.
    assert_eq!(exact(src, &[s(-1000.0)], &[]), (0.0, vec![s(0.0)]));
    let (l, g) = exact(src, &[s(-40.0)], &[]);
    let e = (-40f64).exp();
    assert_close("softplus(-40)", &[l, g[0].data[0]], &[e, e], 1e-14);
    assert!(l > 0.0);
}

#[test]
fn logsumexp_at_1000() {
    let src = "param x: [3]\nloss logsumexp(x)\n";
    let (l, g) = exact(src, &[v(&[1000.0, 999.0, -1000.0])], &[]);
    // 1000 + ln(1 + e^-1 + e^-2000); the gradient is the softmax.
    let want = 1000.0 + (1.0 + (-1f64).exp()).ln();
    assert_close("logsumexp", &[l], &[want], 1e-15);
    assert_close(
        "d logsumexp",
        &g[0].data,
        &[sigma1(), 1.0 - sigma1(), 0.0],
        SHIFTED,
    );
    let (l, g) = exact(src, &[v(&[-1000.0, -1000.0, -1000.0])], &[]);
    assert_close("logsumexp(-1000 x3)", &[l], &[-1000.0 + 3f64.ln()], 1e-15);
    assert_close("d", &g[0].data, &[1.0 / 3.0; 3], SHIFTED);
}

#[test]
fn softmax_at_1000() {
    // Loss dot(r, softmax(x)) with r = [1, -1, 2]: with p = softmax(x)
    // = [s, 1 - s, 0] (s = sigma(1)), the loss is 2s - 1 and the gradient
    // p * (r - <r, p>) = [2s(1-s), -2s(1-s), 0].
    let src = "param x: [3]\ninput r: [3]\nloss dot(r, softmax(x))\n";
    let sg = sigma1();
    for shift in [1000.0, -1000.0] {
        let x = [shift, shift - 1.0, shift - 2000.0];
        let (l, g) = exact(src, &[v(&x)], &[v(&[1.0, -1.0, 2.0])]);
        assert_close("softmax loss", &[l], &[2.0 * sg - 1.0], 1e-14);
        let d = 2.0 * sg * (1.0 - sg);
        assert_close("d softmax", &g[0].data, &[d, -d, 0.0], 1e-14);
    }
}

#[test]
fn along_axes_at_1000() {
    // Each row shifted by ±1000: logsumexp per row, its gradient a softmax.
    let src = "param W: [2, 2]\nloss sum(logsumexp(W, axis = 1) * [1, 2])\n";
    let (l, g) = exact(src, &[m(2, 2, &[1000.0, 1000.0, -1000.0, -1000.0])], &[]);
    assert_close(
        "logsumexp loss",
        &[l],
        &[1000.0 + 2.0 * (-1000.0) + 3.0 * 2f64.ln()],
        1e-14,
    );
    // (1000 + ln 2 rounds to a multiple of 2^-43, so exp(x - y) is 0.5 to
    // about 1e-13.)
    assert_close("d logsumexp", &g[0].data, &[0.5, 0.5, 1.0, 1.0], 1e-12);
    // softmax along the first axis of columns 1000 apart: one-hot columns.
    let src = "param W: [2, 2]\ninput R: [2, 2]\nloss sum(R * softmax(W, axis = 0))\n";
    let (l, g) = exact(
        src,
        &[m(2, 2, &[1000.0, -1000.0, -1000.0, 1000.0])],
        &[m(2, 2, &[1.0, 2.0, 3.0, 4.0])],
    );
    assert_eq!(l, 5.0);
    assert_eq!(g[0].data, vec![0.0; 4]);
}

#[test]
fn log_softmax_at_1000() {
    // log_softmax([1000, 0, -1000]) = [0, -1000, -2000] (the correction
    // ln(1 + e^-1000 + e^-2000) rounds away); with r = [1, 2, 3] the loss
    // is -8000 and the gradient r - softmax(x) sum(r) = [1 - 6, 2, 3].
    let src = "param x: [3]\ninput r: [3]\nloss dot(r, log_softmax(x))\n";
    let (l, g) = exact(src, &[v(&[1000.0, 0.0, -1000.0])], &[v(&[1.0, 2.0, 3.0])]);
    assert_eq!(l, -8000.0);
    assert_eq!(g[0].data, vec![-5.0, 2.0, 3.0]);
    // Two large logits 1 apart.
    let (l, g) = exact(
        src,
        &[v(&[-1000.0, -999.0, -3000.0])],
        &[v(&[1.0, 0.0, 0.0])],
    );
    assert_close("log_softmax", &[l], &[-(1.0 + 1f64.exp()).ln()], 1e-13);
    assert_close(
        "d log_softmax",
        &g[0].data,
        &[1.0 - (1.0 - sg_of(1.0)), -sg_of(1.0), 0.0],
        SHIFTED,
    );
}

/// sigma(t) = 1 / (1 + e^-t).
fn sg_of(t: f64) -> f64 {
    1.0 / (1.0 + (-t).exp())
}

#[test]
fn bce_logits_at_1000() {
    let src = "param z\ninput y\nloss bce_logits(z, y)\n";
    // (z, y) -> loss max(z,0) - z y + log1p(e^-|z|), gradient sigmoid(z) - y.
    let cases = [
        (1000.0, 0.0, 1000.0, 1.0),
        (1000.0, 1.0, 0.0, 0.0),
        (-1000.0, 0.0, 0.0, 0.0),
        (-1000.0, 1.0, 1000.0, -1.0),
        (1000.0, 0.25, 750.0, 0.75),
    ];
    for (z, y, loss, grad) in cases {
        let (l, g) = exact(src, &[s(z)], &[s(y)]);
        assert_eq!((l, g[0].data[0]), (loss, grad), "bce_logits({z}, {y})");
    }
    // With the target a parameter too: d/dy = -z.
    let (l, g) = exact(
        "param z\nparam y\nloss bce_logits(z, y)\n",
        &[s(-1000.0), s(0.5)],
        &[],
    );
    assert_eq!((l, g[0].data[0], g[1].data[0]), (500.0, -0.5, 1000.0));
}

#[test]
fn cross_entropy_at_1000() {
    let src = "param z: [3]\ninput c\nloss cross_entropy(z, c)\n";
    let z = [1000.0, -1000.0, 0.0];
    // Class 1: -log_softmax(z)[1] = 1000 + 1000; gradient softmax(z) -
    // one_hot(1) = [1, -1, 0] (e^-1000 and e^-2000 round to 0).
    let (l, g) = exact(src, &[v(&z)], &[s(1.0)]);
    assert_eq!(l, 2000.0);
    assert_eq!(g[0].data, vec![1.0, -1.0, 0.0]);
    // Class 0: the loss is ln(1 + e^-1000 + e^-2000) = 0, the gradient 0.
    let (l, g) = exact(src, &[v(&z)], &[s(0.0)]);
    assert_eq!(l, 0.0);
    assert_eq!(g[0].data, vec![0.0, 0.0, 0.0]);
    // All logits large and close: [1000, 1001, 1000].
    let (l, g) = exact(src, &[v(&[1000.0, 1001.0, 1000.0])], &[s(2.0)]);
    let e = 1f64.exp();
    // The loss is 1001 + ln(1 + 2/e) - 1000 = ln(2 + e).
    assert_close("ce", &[l], &[(2.0 + e).ln()], 1e-13);
    let p = [1.0 / (2.0 + e), e / (2.0 + e), 1.0 / (2.0 + e)];
    assert_close("d ce", &g[0].data, &[p[0], p[1], p[2] - 1.0], SHIFTED);
}

#[test]
fn gelu_elu_and_erf_at_1000() {
    // No NaN: erf saturates to ±1, its derivative underflows to 0, and the
    // untaken expm1(1000) = inf of elu is masked.
    let (l, g) = exact(
        "param x: [2]\nloss sum(gelu(x))\n",
        &[v(&[1000.0, -1000.0])],
        &[],
    );
    assert_eq!(l, 1000.0);
    assert_eq!(g[0].data, vec![1.0, 0.0]);
    let (l, g) = exact(
        "param x: [2]\nloss sum(elu(x))\n",
        &[v(&[1000.0, -1000.0])],
        &[],
    );
    assert_eq!(l, 1000.0 - 1.0);
    assert_eq!(g[0].data, vec![1.0, 0.0]);
    let (l, g) = exact(
        "param x: [2]\nloss sum(erf(x)) + sum(log1p(x * x))\n",
        &[v(&[1000.0, -1000.0])],
        &[],
    );
    assert_close("erf + log1p", &[l], &[2.0 * 1e6f64.ln_1p()], 1e-15);
    assert_close(
        "d",
        &g[0].data,
        &[2e3 / (1.0 + 1e6), -2e3 / (1.0 + 1e6)],
        1e-15,
    );
}

// ---------------------------------------------------------------------------
// The NaN-from-the-untaken-branch trap
// ---------------------------------------------------------------------------

/// The loss and every gradient element are finite, and equal `want`.
fn trap(src: &str, params: &[Tensor], inputs: &[Tensor], loss: f64, want: &[&[f64]]) {
    let (l, g) = exact(src, params, inputs);
    assert_eq!(l, loss, "loss of\n{src}");
    for (k, (got, w)) in g.iter().zip(want).enumerate() {
        assert!(
            got.data.iter().all(|x| x.is_finite()),
            "a NaN or inf from the untaken branch leaks into gradient {k} of\n{src}\n{got}\n{}",
            prog(src).g
        );
        assert_eq!(&got.data[..], *w, "gradient {k} of\n{src}");
    }
}

#[test]
fn untaken_log_branch() {
    let src = "param x\nloss if x > 0 then log(x) else 0\n";
    trap(src, &[s(-1.0)], &[], 0.0, &[&[0.0]]);
    trap(src, &[s(0.0)], &[], 0.0, &[&[0.0]]);
    // The branch taken still differentiates.
    trap(src, &[s(2.0)], &[], 2f64.ln(), &[&[0.5]]);
}

#[test]
fn untaken_sqrt_in_where() {
    let src = "param x\nloss where(x > 0, sqrt(x), 0)\n";
    trap(src, &[s(0.0)], &[], 0.0, &[&[0.0]]);
    trap(src, &[s(4.0)], &[], 2.0, &[&[0.25]]);
}

#[test]
fn untaken_reciprocal() {
    let src = "param x\nloss if x != 0 then 1 / x else 0\n";
    trap(src, &[s(0.0)], &[], 0.0, &[&[0.0]]);
    trap(src, &[s(2.0)], &[], 0.5, &[&[-0.25]]);
}

#[test]
fn untaken_branch_in_vectors_and_chains() {
    // Elementwise, with more work after and before the select.
    let src = "param x: [3]\nloss 2 * sum(where(x > 0, log(x) * x, 0)) + sum(x)\n";
    trap(src, &[v(&[-1.0, 0.0, 1.0])], &[], 0.0, &[&[1.0, 1.0, 3.0]]);
    // log and sqrt of the same value, several steps deep in the branch.
    let src = "param x\nlet l = log(x)\nloss if x > 0 then exp(sqrt(x) + l^2) else x\n";
    trap(src, &[s(0.0)], &[], 0.0, &[&[1.0]]);
    trap(src, &[s(-2.0)], &[], -2.0, &[&[1.0]]);
    // Division by a parameter that is zero, in both operands.
    let src = "param x\nparam y\nloss if y == 0 then x else x / y + y / x\n";
    trap(src, &[s(0.0), s(0.0)], &[], 0.0, &[&[1.0], &[0.0]]);
    // Power with a parameter exponent at a negative base.
    let src = "param x\nparam p\nloss if x > 0 then x^p else p\n";
    trap(src, &[s(-1.0), s(0.5)], &[], 0.5, &[&[0.0], &[1.0]]);
    // Nested ifs.
    let src = "param x\nloss if x > 1 then log(x - 1) else if x > 0 then sqrt(x) else 0\n";
    trap(src, &[s(1.0)], &[], 1.0, &[&[0.5]]);
    trap(src, &[s(0.0)], &[], 0.0, &[&[0.0]]);
}

// ---------------------------------------------------------------------------
// The examples
// ---------------------------------------------------------------------------

/// A small seeded generator (xorshift64*), uniform in [0, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        bits as f64 / (1u64 << 53) as f64
    }
}

/// Random inputs of the declared shapes, class indices in range, drawn by
/// the library's own generator (as `gradc check` does) from a seed of `rng`.
fn random_inputs(f: &Function, rng: &mut Rng) -> Vec<Tensor> {
    use rand::SeedableRng;
    let mut r = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(rng.next().to_bits());
    check::random_inputs(f, &mut r)
}

#[test]
fn examples_pass_the_gradient_check() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let examples = examples();
    assert!(examples.len() >= 7, "examples missing: {examples:?}");
    each_case(examples, |name, path| {
        let src = std::fs::read_to_string(&path).unwrap();
        let p = build(&src);
        let params = p.c.initial_params(p.c.seed());
        for trial in 0..3 {
            let inputs = random_inputs(&p.c.ir, &mut rng);
            let (err, what) = grad_error(&p, &params, &inputs)
                .unwrap_or_else(|e| panic!("{name}: evaluation failed: {e}"));
            assert!(
                err < 1e-5,
                "{name} (trial {trial}): relative error {err:e}\n{what}\ninputs {inputs:?}"
            );
        }
    });
}

// ---------------------------------------------------------------------------
// Second derivatives
// ---------------------------------------------------------------------------

fn hessian(src: &str, params: &[Tensor], inputs: &[Tensor]) -> Vec<Vec<f64>> {
    let c = compile(src);
    autodiff::hessian(&c.ir, params, inputs).unwrap_or_else(|e| panic!("hessian: {e}\n{src}"))
}

fn assert_matrix(what: &str, got: &[Vec<f64>], want: &[Vec<f64>], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: rows");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_close(&format!("{what} row {i}"), g, w, tol);
    }
}

#[allow(clippy::needless_range_loop)] // H[i][j] against H[j][i] reads best with indices
fn assert_symmetric(what: &str, h: &[Vec<f64>], tol: f64) {
    for i in 0..h.len() {
        for j in 0..i {
            assert!(
                close(h[i][j], h[j][i], tol),
                "{what}: H[{i}][{j}] = {} but H[{j}][{i}] = {}",
                h[i][j],
                h[j][i]
            );
        }
    }
}

#[test]
fn hessian_of_a_polynomial() {
    // f = x^2 y + y^3: H = [[2y, 2x], [2x, 6y]].
    let src = "param x\nparam y\nloss x^2 * y + y^3\n";
    for (x, y) in [(1.0, 2.0), (-0.5, 3.0), (0.0, -1.0), (2.5, 0.0)] {
        let h = hessian(src, &[s(x), s(y)], &[]);
        let want = vec![vec![2.0 * y, 2.0 * x], vec![2.0 * x, 6.0 * y]];
        assert_matrix(&format!("H at ({x}, {y})"), &h, &want, 1e-14);
        assert_symmetric("H", &h, 0.0);
    }
}

#[test]
fn hessian_of_rosenbrock() {
    // f = (1 - x)^2 + 100 (y - x^2)^2:
    // H = [[2 - 400 (y - x^2) + 800 x^2, -400 x], [-400 x, 200]];
    // at (-1.2, 1): [[1330, 480], [480, 200]].
    let want = vec![vec![1330.0, 480.0], vec![480.0, 200.0]];
    let src = "param x\nparam y\nloss (1 - x)^2 + 100 * (y - x^2)^2\n";
    let h = hessian(src, &[s(-1.2), s(1.0)], &[]);
    assert_matrix("Rosenbrock H", &h, &want, 1e-12);
    assert_symmetric("Rosenbrock H", &h, 1e-14);
    // The bundled example, one vector parameter, through a user function.
    let src = std::fs::read_to_string(root().join("examples/rosenbrock.grad")).unwrap();
    let c = compile(&src);
    let h = hessian(&src, &c.initial_params(c.seed()), &[]);
    assert_matrix("examples/rosenbrock.grad H", &h, &want, 1e-12);
}

/// The Hessian of `src` against central differences of its gradient.
fn hessian_vs_differences(
    src: &str,
    params: &[Tensor],
    inputs: &[Tensor],
) -> Result<(), TestCaseError> {
    let h = hessian(src, params, inputs);
    let p = prog(src);
    let n: usize = params.iter().map(|t| t.data.len()).sum();
    prop_assert_eq!(h.len(), n);
    let flat = |ps: &[Tensor]| -> Vec<f64> {
        let (_, g) = check::gradients(&p.g, ps, inputs).unwrap();
        g.into_iter().flat_map(|t| t.data).collect()
    };
    let mut row = 0;
    let mut work = params.to_vec();
    for (pi, t) in params.iter().enumerate() {
        for k in 0..t.data.len() {
            let x = t.data[k];
            work[pi].data[k] = x + check::EPS;
            let up = flat(&work);
            work[pi].data[k] = x - check::EPS;
            let down = flat(&work);
            work[pi].data[k] = x;
            for j in 0..n {
                let numeric = (up[j] - down[j]) / (2.0 * check::EPS);
                let err = check::relative_error(h[row][j], numeric);
                prop_assert!(
                    err <= 1e-6,
                    "H[{row}][{j}] = {} but differences give {numeric} (error {err:e})\n{src}",
                    h[row][j]
                );
            }
            row += 1;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..cfg() })]

    #[test]
    fn hessian_matches_differences_of_the_gradient(x in uni(0.3, 2.0, 3), a in uni(-1.5, 1.5, 1), r in uni(-1.0, 1.0, 3)) {
        // Many rules differentiated twice: the unary functions, products
        // and quotients, powers, matmul, and the reductions.
        let src = "param x: [3]\nparam a\ninput r: [3]\n\
                   loss sum(exp(a * x) * sin(x)) + dot(r, log(x) / (1 + x)) + tanh(a)^3 + sigmoid(a * x[0]) * softplus(x[1])\n\
                   + sqrt(x[2]) * x^a @ r + logsumexp(x * a) + dot(r, softmax(x)) + norm(x) * a + sum(outer(x, r) @ x) + mse(x, r) + cross_entropy(a * x, 1)\n";
        hessian_vs_differences(src, &[v(&x), s(a[0])], &[v(&r)])?;
    }

    #[test]
    fn hessian_of_the_later_elementwise_functions(x in uni(0.3, 2.0, 3), a in uni(-1.5, 1.5, 1), r in uni(-1.0, 1.0, 3)) {
        // Both sides of the kinks of leaky_relu and clip (a random point
        // within the differences' step of one is improbable); a trainable
        // slope, alpha and bound.
        let src = "param x: [3]\nparam a\ninput r: [3]\n\
                   loss dot(r, log1p(x * a * a) + expm1(a * x) + erf(a * x) + gelu(a * x))\n\
                   + dot(r, leaky_relu(x - 1, slope = a) + elu(x - 3, alpha = a) * x + clip(x * a, 0.25 * a - 5, 2.5) * x)\n";
        hessian_vs_differences(src, &[v(&x), s(a[0])], &[v(&r)])?;
    }
}

#[test]
fn hessian_through_if_and_where() {
    // Each side of the select differentiates twice; the other side's
    // second derivative does not leak in.
    let src = "param x: [2]\nloss sum(where(x > 0, x^3, sin(x))) + (if x[0] > 0 then log(x[0]) else x[1]^4)\n";
    let h = hessian(src, &[v(&[2.0, -1.0])], &[]);
    // d2/dx0^2: 6 x0 - 1/x0^2; d2/dx1^2: -sin(x1); no cross terms.
    assert_matrix(
        "H",
        &h,
        &[vec![12.0 - 0.25, 0.0], vec![0.0, 1f64.sin()]],
        1e-14,
    );
    let h = hessian(src, &[v(&[-0.5, 1.5])], &[]);
    // x0 <= 0: -sin(x0) and the x1^4 branch: 12 x1^2 + 6 x1.
    assert_matrix(
        "H",
        &h,
        &[vec![0.5f64.sin(), 0.0], vec![0.0, 12.0 * 2.25 + 9.0]],
        1e-14,
    );
}

#[test]
fn trivial_losses() {
    assert_eq!(
        exact("param x\nloss x\n", &[s(5.0)], &[]),
        (5.0, vec![s(1.0)])
    );
    assert_eq!(
        exact("param x\nloss 3\n", &[s(5.0)], &[]),
        (3.0, vec![s(0.0)])
    );
    assert_eq!(
        exact("param x: [2]\nloss x[1]\n", &[v(&[4.0, 5.0])], &[]),
        (5.0, vec![v(&[0.0, 1.0])])
    );
    assert_eq!(
        exact(
            "param x: [2]\nloss sum(x) - sum(x)\n",
            &[v(&[4.0, 5.0])],
            &[]
        ),
        (0.0, vec![v(&[0.0, 0.0])])
    );
}

#[test]
fn hessian_of_a_network_is_symmetric() {
    let src = "input x: [3]\ninput c\nparam W1: [4, 3]\nparam b1: [4]\nparam W2: [3, 4]\n\
               loss cross_entropy(W2 @ tanh(W1 @ x + b1), c)\n";
    let mut rng = Rng(42);
    let mut draw = |n: usize| (0..n).map(|_| rng.next() * 2.0 - 1.0).collect::<Vec<_>>();
    let params = [m(4, 3, &draw(12)), v(&draw(4)), m(3, 4, &draw(12))];
    let inputs = [v(&draw(3)), s(2.0)];
    let h = hessian(src, &params, &inputs);
    assert_eq!(h.len(), 28);
    assert_symmetric("network H", &h, 1e-12);
    hessian_vs_differences(src, &params, &inputs).unwrap();
}

/// f'(x) = 4x^3 - 6x + 1 by bisection on [lo, hi], where it changes sign.
fn bisect(lo: f64, hi: f64) -> f64 {
    let d = |x: f64| 4.0 * x.powi(3) - 6.0 * x + 1.0;
    let (mut lo, mut hi) = (lo, hi);
    assert!(d(lo).signum() != d(hi).signum());
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if d(mid).signum() == d(lo).signum() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[test]
fn newton_converges_with_the_exact_second_derivative() {
    // f(x) = x^4 - 3x^2 + x: f' = 4x^3 - 6x + 1 has three roots, near
    // -1.30, 0.17 and 1.13; f'' = 12x^2 - 6.
    let src = "param x\nloss x^4 - 3 * x^2 + x\n";
    let c = compile(src);
    let g = c.gradient().unwrap();
    let rows = autodiff::hessian_rows(&c.ir).unwrap();
    assert_eq!(rows.len(), 1);
    for (start, root) in [(2.0, bisect(1.0, 1.5)), (-2.0, bisect(-1.5, -1.0))] {
        let mut x = start;
        let mut steps = 0;
        loop {
            let (_, d1) = check::gradients(&g, &[s(x)], &[]).unwrap();
            let d1 = d1[0].item();
            assert!(
                close(d1, 4.0 * x.powi(3) - 6.0 * x + 1.0, 1e-14),
                "f'({x}) = {d1}"
            );
            if d1.abs() < 1e-10 {
                break;
            }
            let (_, d2) = check::gradients(&rows[0], &[s(x)], &[]).unwrap();
            let d2 = d2[0].item();
            assert!(close(d2, 12.0 * x * x - 6.0, 1e-14), "f''({x}) = {d2}");
            x -= d1 / d2;
            steps += 1;
            assert!(
                steps < 10,
                "Newton from {start} has not converged after {steps} steps: x = {x}"
            );
        }
        assert!(
            (x - root).abs() < 1e-12,
            "Newton from {start} converged to {x}, not {root}"
        );
    }
}

// ---------------------------------------------------------------------------
// The cheap-gradient principle
// ---------------------------------------------------------------------------

/// Floating-point operations of one run of `f`, as `gradc grad --stats`
/// counts them.
fn flops(f: &Function) -> u64 {
    gradc::ir::stats::stats(f).flops
}

#[test]
fn flop_counter_counts_by_hand() {
    // 2*3*4 (W @ x) + 3 (add) + 3 (tanh) + 3 (sum) = 33.
    let c = compile("param W: [3, 4]\nparam b: [3]\ninput x: [4]\nloss sum(tanh(W @ x + b))\n");
    assert_eq!(flops(&c.ir), 33);
}

#[test]
fn gradients_of_the_examples_are_cheap() {
    each_case(examples(), |name, path| {
        let c = compile(&std::fs::read_to_string(&path).unwrap());
        let g = c.gradient().unwrap();
        let (fw, bw) = (flops(&c.ir), flops(&g));
        assert!(
            bw <= 4 * fw,
            "{name}: the gradient program costs {bw} flops, more than 4x the forward {fw}\n{g}"
        );
    });
}

/// L tanh layers of width 8 and a squared-error loss.
fn chain_src(layers: usize) -> String {
    let mut src = String::from("input x: [8]\ninput y: [8]\n");
    for l in 1..=layers {
        src += &format!("param W{l}: [8, 8] = normal(0, 0.3)\nparam b{l}: [8] = normal(0, 0.1)\n");
    }
    src += "let h0 = x\n";
    for l in 1..=layers {
        src += &format!("let h{l} = tanh(W{l} @ h{} + b{l})\n", l - 1);
    }
    src += &format!("loss mse(h{layers}, y)\n");
    src
}

#[test]
fn gradient_of_a_deep_chain_is_cheap_and_linear() {
    let mut fw = vec![0; 65];
    let mut bw = vec![0; 65];
    let mut insts = vec![0; 65];
    for l in 1..=64 {
        let c = compile(&chain_src(l));
        let g = c.gradient().unwrap();
        fw[l] = flops(&c.ir);
        bw[l] = flops(&g);
        insts[l] = g.len();
        assert!(
            bw[l] <= 4 * fw[l],
            "{l} layers: the gradient costs {} flops, the forward {}",
            bw[l],
            fw[l]
        );
        if l == 3 {
            let p = build(&chain_src(l));
            let mut rng = Rng(3);
            let inputs = random_inputs(&p.c.ir, &mut rng);
            let (err, what) = grad_error(&p, &p.c.initial_params(0), &inputs).unwrap();
            assert!(err < 1e-6, "{what}");
        }
    }
    // Linear in depth: each layer adds the same number of instructions and
    // flops (after the first, whose input needs no cotangent), so doubling
    // the depth doubles the cost, up to the constant part.
    let step = insts[3] - insts[2];
    let flop_step = bw[3] - bw[2];
    for l in 3..=64 {
        assert_eq!(
            insts[l] - insts[l - 1],
            step,
            "instructions added by layer {l}"
        );
        assert_eq!(bw[l] - bw[l - 1], flop_step, "flops added by layer {l}");
    }
    for l in [8, 16, 32] {
        let ratio = bw[2 * l] as f64 / bw[l] as f64;
        assert!(
            (1.9..=2.1).contains(&ratio),
            "flops({})/flops({l}) = {ratio}",
            2 * l
        );
    }
}

// ---------------------------------------------------------------------------
// The shape of the gradient program
// ---------------------------------------------------------------------------

#[test]
fn gradient_program_returns_the_forward_outputs_then_one_gradient_per_parameter() {
    let src = "input x: [2]\ninput c\nparam W: [3, 2] = normal(0, 1)\nparam unused: [2, 2] = ones\nparam b = 1\n\
               let z = W @ x + b\nloss cross_entropy(z, c)\nmetric top = max(z)\noutput p = softmax(z)\n";
    let c = compile(src);
    let g = c.gradient().unwrap();
    let roles: Vec<Role> = g.outputs.iter().map(|o| o.role.clone()).collect();
    assert_eq!(
        roles,
        vec![
            Role::Loss,
            Role::Metric,
            Role::Output,
            Role::Grad(0),
            Role::Grad(1),
            Role::Grad(2)
        ]
    );
    let params = c.initial_params(1);
    let inputs = [v(&[0.5, -1.0]), s(2.0)];
    let forward = gradc::ir::interp::run_outputs(&c.ir, &params, &inputs).unwrap();
    let backward = gradc::ir::interp::run_outputs(&g, &params, &inputs).unwrap();
    for ((fo, ft), (bo, bt)) in forward.iter().zip(&backward) {
        assert_eq!((&fo.role, &fo.name, ft), (&bo.role, &bo.name, bt));
    }
    // A parameter the loss does not read gets a zero gradient of its shape.
    let unused = &backward[4].1;
    assert_eq!(unused, &Tensor::zeros(Shape::matrix(2, 2)));
    // The bias: d/db of cross_entropy(z, c) = sum(softmax(z) - one_hot(c)) = 0.
    assert!(backward[5].1.item().abs() < 1e-15);
}

#[test]
fn a_loss_without_parameters_has_zero_gradients() {
    let (l, g) = exact(
        "param w: [2]\ninput x\nloss x^2\n",
        &[v(&[1.0, 2.0])],
        &[s(3.0)],
    );
    assert_eq!((l, &g[0].data[..]), (9.0, &[0.0, 0.0][..]));
}

#[test]
fn a_class_index_that_depends_on_a_parameter_is_an_error() {
    let src = "param z: [3]\nparam c = 1\nloss cross_entropy(z, c)\n";
    let d = compile(src).gradient().unwrap_err();
    assert!(d.message.contains("class"), "{}", d.message);
    let span = &src[d.span.range()];
    assert!(!span.is_empty(), "the error points at nothing: {d:?}");
}

// ---------------------------------------------------------------------------
// Found bugs: these tests fail until the rule is fixed (see the comments)
// ---------------------------------------------------------------------------

// A masked cotangent from the untaken side of an `if` meets the forward
// values of that side in the contractions too: an infinite operand there
// must not turn the zero into NaN. `dot` (the vector-vector form of `@`)
// multiplies through `Ad::scale`.
#[test]
fn untaken_branch_nan_does_not_leak_through_dot() {
    // x[0] = 0: the else branch is taken; log(x) = [-inf, 0] in the other.
    let src = "param w: [2]\nparam x: [2]\nloss if x[0] > 0 then dot(w, log(x)) else 0\n";
    trap(
        src,
        &[v(&[1.0, 1.0]), v(&[0.0, 1.0])],
        &[],
        0.0,
        &[&[0.0, 0.0], &[0.0, 0.0]],
    );
}

// The other contractions (`outer`, and `matmul` in every form) contract a
// masked cotangent with the finite parts of their operands,
// `finite(x) = select(x - x == 0, x, 0)`.
#[test]
fn untaken_branch_nan_does_not_leak_through_matrix_vector() {
    let src = "param W: [2, 2]\nparam x: [2]\nloss if x[0] > 0 then sum(W @ log(x)) else 0\n";
    trap(
        src,
        &[m(2, 2, &[1.0, 2.0, 3.0, 4.0]), v(&[0.0, 1.0])],
        &[],
        0.0,
        &[&[0.0; 4], &[0.0, 0.0]],
    );
}

#[test]
fn untaken_branch_nan_does_not_leak_through_outer() {
    let src = "param w: [2]\nparam x: [2]\nloss if x[0] > 0 then sum(outer(w, log(x))) else 0\n";
    trap(
        src,
        &[v(&[1.0, 1.0]), v(&[0.0, 1.0])],
        &[],
        0.0,
        &[&[0.0, 0.0], &[0.0, 0.0]],
    );
}

// `norm`: d = q * x with q = select(y == 0, 0, g / y); at x infinite in the
// untaken branch q = 0, and the guarded product keeps it 0.
#[test]
fn untaken_branch_nan_does_not_leak_through_norm() {
    let src = "param x: [2]\nloss if x[0] > 0 then norm(log(x)) else 0\n";
    trap(src, &[v(&[0.0, 1.0])], &[], 0.0, &[&[0.0, 0.0]]);
}

// x^p at x = 0 with a parameter exponent p > 0 is identically 0 near p, so
// d/dp = 0, not y * log(x) = 0 * -inf = NaN: the rule takes 0 where the
// base is 0, as PyTorch does.
#[test]
fn pow_parameter_exponent_at_zero_base_is_zero() {
    let (l, g) = exact("param x\nparam p\nloss x^p\n", &[s(0.0), s(2.0)], &[]);
    assert_eq!(l, 0.0);
    assert_eq!(g[0].data[0], 0.0, "d/dx 0^2");
    assert_eq!(g[1].data[0], 0.0, "d/dp 0^p at p = 2 is 0, not NaN");
}
