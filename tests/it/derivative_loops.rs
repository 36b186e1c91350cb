//! Derivatives inside loops of values computed outside them: `grad` and
//! `jvp` in a comprehension, a `loop`, a function called in one, or a loop
//! in a loop, of a value computed from `wrt` before the loop. Each case
//! against the same derivatives written out one by one without the loop,
//! against central differences, and on every engine with the interpreter's
//! bits; a loss holding such a derivative, differentiated again and trained.

use gradc::autodiff::check::{gradients, numeric_gradients, relative_error};
use gradc::eval::{Evaluator, Mode};
use gradc::shape::Tensor;

use crate::common::{compile, each_case, same_bits_on_every_engine};

/// The parameter, and a value computed from it outside every loop.
const PRELUDE: &str = "param th: [3] = [0.5, -1.2, 0.8]\n\
    let e = [sin(th[0]) * th[1], th[2]^2]\n\
    let u = th * 2\n\
    fn f(v, k) = v[k] * th[k]\n\
    loss sum(th^2)\n";

/// `d`, the derivatives taken in a loop; `u`, the same written out without
/// it; and, when `d` is the Jacobian of `v` with respect to `th`, `v` and
/// whether `d` is laid out transposed (a `jvp` per direction).
struct Case {
    looped: &'static str,
    unrolled: &'static str,
    value: Option<(&'static str, bool)>,
}

fn cases() -> Vec<(String, Case)> {
    let case = |name: &str, looped, unrolled, value| {
        (
            name.to_string(),
            Case {
                looped,
                unrolled,
                value,
            },
        )
    };
    vec![
        case(
            "jvp in a comprehension",
            "[jvp(e, th, one_hot(k, 3)) for k in 0..3]",
            "[jvp(e, th, [1, 0, 0]), jvp(e, th, [0, 1, 0]), jvp(e, th, [0, 0, 1])]",
            Some(("e", true)),
        ),
        case(
            "grad in a comprehension",
            "[grad(e[k], th) for k in 0..2]",
            "[grad(e[0], th), grad(e[1], th)]",
            Some(("e", false)),
        ),
        case(
            "through a function",
            "[grad(f(e, k), th) for k in 0..2]",
            "[grad(f(e, 0), th), grad(f(e, 1), th)]",
            Some(("[f(e, 0), f(e, 1)]", false)),
        ),
        case(
            "jvp through a function",
            "[jvp(f(e, k) * e, th, one_hot(2 - k, 3)) for k in 0..2]",
            "[jvp(f(e, 0) * e, th, [0, 0, 1]), jvp(f(e, 1) * e, th, [0, 1, 0])]",
            None,
        ),
        case(
            "in a loop's carried sum",
            "loop s = [0, 0, 0] for k in 0..2 { s + grad(e[k], th) }",
            "grad(e[0], th) + grad(e[1], th)",
            Some(("sum(e)", false)),
        ),
        case(
            "of a carried value that does not depend on wrt",
            "{ let (s, acc) = loop (s, acc) = (1, [0, 0, 0]) for k in 0..2 \
             { (s * 2, acc + grad(s * e[k], th)) }; acc }",
            "grad(e[0], th) + grad(2 * e[1], th)",
            Some(("e[0] + 2 * e[1]", false)),
        ),
        case(
            "in a loop in a loop",
            "[[grad(e[j] * e[k], th) for j in 0..2] for k in 0..2]",
            "[[grad(e[0] * e[0], th), grad(e[1] * e[0], th)], \
             [grad(e[0] * e[1], th), grad(e[1] * e[1], th)]]",
            Some((
                "[[e[0] * e[0], e[1] * e[0]], [e[0] * e[1], e[1] * e[1]]]",
                false,
            )),
        ),
        case(
            "jvp in a loop in a loop",
            "[[jvp(e[j] * th[k], th, one_hot(k, 3)) for j in 0..2] for k in 0..3]",
            "[[jvp(e[0] * th[0], th, [1, 0, 0]), jvp(e[1] * th[0], th, [1, 0, 0])], \
             [jvp(e[0] * th[1], th, [0, 1, 0]), jvp(e[1] * th[1], th, [0, 1, 0])], \
             [jvp(e[0] * th[2], th, [0, 0, 1]), jvp(e[1] * th[2], th, [0, 0, 1])]]",
            None,
        ),
        case(
            "with respect to a carried value, in a loop in its loop",
            "loop x = th for t in 0..2 { let y = sin(x) * e[0]; \
             x - 0.1 * sum([grad(y[k]^2 * x[k], x) for k in 0..3], axis = 0) }",
            "loop x = th for t in 0..2 { let y = sin(x) * e[0]; \
             x - 0.1 * grad(sum(y^2 * x), x) }",
            None,
        ),
        case(
            "with respect to a let, of partly in the loop",
            "[grad(sum(u * e[k]) * th[k], u) for k in 0..2]",
            "[grad(sum(u * e[0]) * th[0], u), grad(sum(u * e[1]) * th[1], u)]",
            None,
        ),
        case(
            "of a loop's value with respect to what it captures",
            "grad(sum([th[k]^2 * e[0] for k in 0..3]), th)",
            "grad((th[0]^2 + th[1]^2 + th[2]^2) * e[0], th)",
            Some(("[sum(th^2) * e[0]]", false)),
        ),
        case(
            "with respect to a value of the body",
            "[{ let x = th * th[k]; grad(sum(x^2 * e[0]), x) } for k in 0..2]",
            "[{ let x = th * th[0]; grad(sum(x^2 * e[0]), x) }, \
             { let x = th * th[1]; grad(sum(x^2 * e[0]), x) }]",
            None,
        ),
    ]
}

/// The Jacobian of the output `v` with respect to `th` by central
/// differences, a row per element of `v`.
fn numeric_jacobian(e: &Evaluator, params: &[Tensor], at: usize) -> Vec<Vec<f64>> {
    const H: f64 = 1e-6;
    let value = |p: &[Tensor]| e.outputs(p, &[]).unwrap()[at].data.clone();
    let n = value(params).len();
    let mut jac = vec![vec![0.0; 3]; n];
    for j in 0..3 {
        let mut up = params.to_vec();
        up[0].data[j] += H;
        let mut down = params.to_vec();
        down[0].data[j] -= H;
        for (row, (a, b)) in jac.iter_mut().zip(value(&up).iter().zip(value(&down))) {
            row[j] = (a - b) / (2.0 * H);
        }
    }
    jac
}

#[test]
fn derivatives_in_loops_match_the_unrolled_ones_and_central_differences() {
    each_case(cases(), |name, case| {
        let value = case.value.map_or("0", |(v, _)| v);
        let c = compile(&format!(
            "{PRELUDE}output d = {}\noutput u = {}\noutput v = {value}\n",
            case.looped, case.unrolled
        ));
        let params = c.initial_params(0);
        let interp = Evaluator::compile(&c.ir, Mode::Interp).unwrap();
        let outs = interp.outputs(&params, &[]).unwrap();
        let (d, u) = (&outs[1], &outs[2]);
        assert_eq!(d.shape, u.shape, "{name}");
        assert!(d.data.iter().any(|&x| x != 0.0), "{name}: all zeros");
        for (k, (&a, &b)) in d.data.iter().zip(&u.data).enumerate() {
            assert!(
                relative_error(a, b) < 1e-12,
                "{name}: element {k}: {a} looped, {b} unrolled"
            );
        }
        if let Some((_, transposed)) = case.value {
            let jac = numeric_jacobian(&interp, &params, 3);
            let want: Vec<f64> = if transposed {
                (0..3).flat_map(|j| jac.iter().map(move |r| r[j])).collect()
            } else {
                jac.concat()
            };
            assert_eq!(d.data.len(), want.len(), "{name}");
            for (k, (&a, &n)) in d.data.iter().zip(&want).enumerate() {
                assert!(
                    relative_error(a, n) < 1e-6,
                    "{name}: element {k}: {a} against {n} by central differences"
                );
            }
        }
        same_bits_on_every_engine(&c.ir, &params, &[]);
    });
}

/// A loss holding derivatives taken in a comprehension of a value computed
/// outside it: its gradient (second order, through the recomputed values)
/// matches central differences and the loss written without the loop.
#[test]
fn a_loss_holding_derivatives_in_a_loop_has_the_gradient_of_central_differences() {
    let prelude = "param th: [3] = [0.5, -1.2, 0.8]\n\
                   let e = [sin(th[0]) * th[1], th[2]^2 * th[0]]\n";
    let looped = compile(&format!(
        "{prelude}loss sum([grad(e[k], th) for k in 0..2]^2) + \
         sum([jvp(e, th, one_hot(k, 3)) for k in 0..3])\n"
    ));
    let unrolled = compile(&format!(
        "{prelude}loss sum(grad(e[0], th)^2) + sum(grad(e[1], th)^2) + \
         sum(jvp(e, th, [1, 0, 0]) + jvp(e, th, [0, 1, 0]) + jvp(e, th, [0, 0, 1]))\n"
    ));
    let params = looped.initial_params(0);
    let numeric = numeric_gradients(&looped.ir, &params, &[]).unwrap();
    let (_, want) = gradients(&unrolled.gradient().unwrap(), &params, &[]).unwrap();
    let g = looped.gradient().unwrap();
    let (_, got) = gradients(&g, &params, &[]).unwrap();
    for k in 0..3 {
        let (a, n, w) = (got[0].data[k], numeric[0].data[k], want[0].data[k]);
        assert!(a != 0.0, "th[{k}]: zero");
        assert!(relative_error(a, n) < 1e-6, "th[{k}]: {a} against {n}");
        assert!(
            relative_error(a, w) < 1e-12,
            "th[{k}]: {a} against {w} unrolled"
        );
    }
    same_bits_on_every_engine(&g, &params, &[]);
}

/// Training drives the derivatives taken in a comprehension to their
/// targets: `grad(e[k], w)` sums to 1 for each k when `w = [0.5, 0.5]`.
#[test]
fn gradc_trains_a_loss_holding_derivatives_in_a_loop() {
    let dir = crate::common::temp_dir("derivative-loops-train");
    let file = dir.join("slopes.grad");
    std::fs::write(
        &file,
        "param w: [2] = [1, 2]\n\
         let e = [w[0]^2, w[1]^2]\n\
         loss sum([(sum(grad(e[k], w)) - 1)^2 for k in 0..2])\n\
         train {\n  optimizer = adam(lr = 0.05)\n  steps = 2000\n}\n",
    )
    .unwrap();
    let file = file.to_string_lossy().into_owned();
    let (ok, out, err) = crate::common::gradc(&["train", &file, "--json", "--quiet"]);
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let w = &summary["params"]["w"];
    for k in 0..2 {
        let x = w[k].as_f64().unwrap();
        assert!((x - 0.5).abs() < 1e-5, "w[{k}] = {x}: {out}");
    }
}

/// A derivative in a loop through a value the loop carries, which depends
/// on `wrt` through the earlier steps, is an error located at the
/// derivative and naming `wrt`, the carried value and the loop; through a
/// carried value that does not depend on it, it is taken.
#[test]
fn a_derivative_through_a_carried_value_that_depends_on_wrt_is_an_error() {
    let src = "param th: [3] = [0.5, -1.2, 0.8]\n\
               let e = [sin(th[0]) * th[1], th[2]^2]\n\
               loss sum(th^2)\n\
               output bad = loop s = 1 for k in 0..2 { s * th[0] + grad(s * e[k], th)[1] }\n";
    let Err(diags) = gradc::compile(src) else {
        panic!("compiled")
    };
    let text = gradc::diagnostic::render_all(&diags, "carried.grad", src, false);
    assert!(text.contains("carried.grad:4:"), "{text}");
    assert!(text.contains("with respect to `th` reads `s`"), "{text}");
    assert!(text.contains("`s` is carried by this loop"), "{text}");
    let (ok, _, err) = {
        let dir = crate::common::temp_dir("derivative-loops-carried");
        let file = dir.join("carried.grad");
        std::fs::write(&file, src).unwrap();
        crate::common::gradc(&["eval", &file.to_string_lossy()])
    };
    assert!(!ok && err.contains("carried.grad:4:"), "{err}");
}

/// With respect to an input, in a comprehension of a value computed from it
/// before: the batched JIT, over several examples, against the interpreter
/// on each, and the derivatives written out without the loop.
#[test]
fn derivatives_in_loops_with_respect_to_an_input_on_every_engine() {
    let prelude = "param w: [2] = [0.3, -0.7]\ninput x: [2]\n\
                   let e = [tanh(w[0] * x[0] + x[1]), x[0] * x[1] * w[1]]\nloss sum(e)\n";
    let c = compile(&format!(
        "{prelude}output d = [grad(e[k], x) for k in 0..2]\n\
         output t = [jvp(e, x, one_hot(k, 2)) for k in 0..2]\n\
         output u = [grad(e[0], x), grad(e[1], x)]\n"
    ));
    let params = c.initial_params(0);
    let examples: Vec<Vec<Tensor>> = [[0.4, -1.1], [1.3, 0.2], [-0.6, 0.9]]
        .iter()
        .map(|x| vec![Tensor::new(gradc::shape::Shape::vector(2), x.to_vec())])
        .collect();
    for inputs in &examples {
        let outs = Evaluator::compile(&c.ir, Mode::Interp)
            .unwrap()
            .outputs(&params, inputs)
            .unwrap();
        let (d, t, u) = (&outs[1], &outs[2], &outs[3]);
        assert!(d.data.iter().all(|x| *x != 0.0), "{d:?}");
        for (&a, &b) in d.data.iter().zip(&u.data) {
            assert!(relative_error(a, b) < 1e-12, "{a} looped, {b} unrolled");
        }
        // The jvp along each axis is a column of the Jacobian.
        for i in 0..2 {
            for k in 0..2 {
                let (a, b) = (t.data[k * 2 + i], d.data[i * 2 + k]);
                assert!(relative_error(a, b) < 1e-12, "{a} against {b}");
            }
        }
        same_bits_on_every_engine(&c.ir, &params, inputs);
    }
    crate::common::batch_agrees(&c.ir, &params, &examples);
}
