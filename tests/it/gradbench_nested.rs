//! `gradc gradbench`'s `saddle` and `particle`: nested derivatives in
//! gradient descents, replayed from `tests/gradbench/` as in `gradbench.rs`.
//! Each function's answer is checked against the eval's definition written
//! here in Rust with GradBench's own `while` loops (its solver, its Euler
//! integration), to the checker's tolerance and closer; the JIT against the
//! interpreter bit for bit on the same programs with fewer steps (the full
//! ones take a minute in the interpreter of a debug build); an answer whose
//! loops ran out of steps is refused.

use std::sync::Arc;

use serde_json::{json, Value};

use gradc::diagnostic::Source;
use gradc::eval::{Backend, Evaluator};
use gradc::shape::{Shape, Tensor};
use gradc::types::dims::DimOptions;
use gradc::types::CheckOptions;

use crate::common::root;
use crate::gradbench::{evaluations, floats, respond};

/// GradBench's solver (`multivariate_argmin`), its `while` loop as written:
/// the argmin of `f` (gradient `g`) from `x`, and the steps it took.
fn argmin(
    f: &dyn Fn(&[f64]) -> f64,
    g: &dyn Fn(&[f64]) -> Vec<f64>,
    x: &[f64],
) -> (Vec<f64>, usize) {
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let (mut x, mut fx, mut gx) = (x.to_vec(), f(x), g(x));
    let (mut eta, mut i, mut steps) = (1e-5, 0, 0);
    loop {
        steps += 1;
        if norm(&gx) <= 1e-5 {
            return (x, steps);
        }
        if i == 10 {
            eta *= 2.0;
            i = 0;
            continue;
        }
        let xp: Vec<f64> = x.iter().zip(&gx).map(|(a, b)| a - eta * b).collect();
        let d: Vec<f64> = x.iter().zip(&xp).map(|(a, b)| a - b).collect();
        if norm(&d) <= 1e-5 {
            return (x, steps);
        }
        let fxp = f(&xp);
        if fxp < fx {
            (gx, fx, x) = (g(&xp), fxp, xp);
            i += 1;
        } else {
            eta /= 2.0;
            i = 0;
        }
    }
}

/// `saddle`: p and q, and the most steps any descent took. The argmax's
/// gradient in q is 2 q; max over q of f(p, q) is f(p, argmax), whose
/// gradient in p is 2 p (the argmax's steps do not depend on p).
fn saddle(start: &[f64]) -> (Vec<f64>, usize) {
    let f = |p: &[f64], q: &[f64]| (p[0] * p[0] + p[1] * p[1]) - (q[0] * q[0] + q[1] * q[1]);
    let most = std::cell::Cell::new(0);
    let argmax = |p: &[f64]| {
        let (q, n) = argmin(&|q| -f(p, q), &|q| vec![2.0 * q[0], 2.0 * q[1]], start);
        most.set(most.get().max(n));
        q
    };
    let (p, n) = argmin(
        &|p| f(p, &argmax(p)),
        &|p| vec![2.0 * p[0], 2.0 * p[1]],
        start,
    );
    let q = argmax(&p);
    (vec![p[0], p[1], q[0], q[1]], most.get().max(n))
}

/// A number and its derivative in w (forward mode, for `particle`'s
/// gradient in w through the integration).
#[derive(Clone, Copy)]
struct Dual(f64, f64);

impl Dual {
    fn add(self, o: Dual) -> Dual {
        Dual(self.0 + o.0, self.1 + o.1)
    }
    fn sub(self, o: Dual) -> Dual {
        Dual(self.0 - o.0, self.1 - o.1)
    }
    fn mul(self, o: Dual) -> Dual {
        Dual(self.0 * o.0, self.1 * o.0 + self.0 * o.1)
    }
    fn div(self, o: Dual) -> Dual {
        Dual(self.0 / o.0, (self.1 * o.0 - self.0 * o.1) / (o.0 * o.0))
    }
    fn sqrt(self) -> Dual {
        let r = self.0.sqrt();
        Dual(r, self.1 / (2.0 * r))
    }
    fn c(x: f64) -> Dual {
        Dual(x, 0.0)
    }
}

/// `particle`'s cost at w (seeded with `dw`) by GradBench's integration,
/// its `while` loop as written, and the steps it took; past `limit` steps,
/// a particle that has not landed, its steps only. The force is minus the
/// gradient of the inverse distances: (c - x) / |x - c|^3 summed.
fn landing(w: Dual, limit: usize) -> (Dual, usize) {
    let dt = Dual::c(0.1);
    let charges = [
        [Dual::c(10.0), Dual::c(10.0).sub(w)],
        [Dual::c(10.0), Dual::c(0.0)],
    ];
    let (mut x, mut v) = ([Dual::c(0.0), Dual::c(8.0)], [Dual::c(0.75), Dual::c(0.0)]);
    let mut steps = 0;
    loop {
        steps += 1;
        if steps > limit {
            return (Dual::c(f64::NAN), steps);
        }
        let mut a = [Dual::c(0.0), Dual::c(0.0)];
        for c in &charges {
            let d = [x[0].sub(c[0]), x[1].sub(c[1])];
            let r = d[0].mul(d[0]).add(d[1].mul(d[1])).sqrt();
            let r3 = r.mul(r).mul(r);
            a = [
                a[0].sub(d[0].div(r3).mul(Dual::c(-1.0))),
                a[1].sub(d[1].div(r3).mul(Dual::c(-1.0))),
            ];
        }
        let xn = [x[0].add(dt.mul(v[0])), x[1].add(dt.mul(v[1]))];
        if xn[1].0 > 0.0 {
            x = xn;
            v = [v[0].add(dt.mul(a[0])), v[1].add(dt.mul(a[1]))];
        } else {
            break;
        }
    }
    let dtf = Dual::c(0.0).sub(x[1]).div(v[1]);
    let xt = x[0].add(dtf.mul(v[0]));
    (xt.mul(xt), steps)
}

/// `particle`: the w found from w0, the descent's steps and the most steps
/// an integration took.
fn particle(w0: f64) -> (f64, usize, usize) {
    let most = std::cell::Cell::new(0);
    let cost = |w: f64, dw: f64| {
        let (c, n) = landing(Dual(w, dw), usize::MAX);
        most.set(most.get().max(n));
        c
    };
    let (w, n) = argmin(&|w| cost(w[0], 0.0).0, &|w| vec![cost(w[0], 1.0).1], &[w0]);
    (w[0], n, most.get())
}

/// GradBench's checker: |x - y| / max(1, |x| + |y|) at most 1e-4.
fn within_the_checkers_tolerance(got: &[f64], want: &[f64]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(x, y)| (x - y).abs() / (x.abs() + y.abs()).max(1.0) <= 1e-4)
}

#[test]
fn the_references_take_fewer_steps_than_the_programs_loops() {
    // The programs' loops: 256 steps for each of saddle's descents; 128
    // for particle's descent and 512 for each integration.
    let (_, steps) = saddle(&[1.0, 1.0]);
    assert_eq!(steps, 170);
    let (_, descent, euler) = particle(0.0);
    assert_eq!((descent, euler), (92, 355));
}

#[test]
fn saddle_is_gradbenchs_nested_descent_in_all_four_modes() {
    let answers = evaluations("saddle.jsonl");
    assert_eq!(answers.len(), 4);
    for (function, input, output) in answers {
        let start = floats(&input["start"]);
        let (want, _) = saddle(&start);
        let got = floats(&output);
        assert!(
            within_the_checkers_tolerance(&got, &want),
            "{function}: {got:?} {want:?}"
        );
        // Closer than the checker asks: the same steps, the same arithmetic.
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs(),
                "{function}: {got:?} {want:?}"
            );
        }
    }
}

#[test]
fn particle_is_gradbenchs_nested_descent_in_all_four_modes() {
    let answers = evaluations("particle.jsonl");
    assert_eq!(answers.len(), 4);
    for (function, input, output) in answers {
        let (want, _, _) = particle(input["w"].as_f64().unwrap());
        let got = output.as_f64().unwrap();
        assert!(
            within_the_checkers_tolerance(&[got], &[want]),
            "{function}: {got} {want}"
        );
        assert!((got - want).abs() <= 1e-12, "{function}: {got} {want}");
    }
}

/// Every output of a program of `gradbench/` at one point, with sizes set.
fn outputs(file: &str, dims: &[(&str, usize)], input: Tensor, backend: Backend) -> Vec<Tensor> {
    let text = std::fs::read_to_string(root().join("gradbench").join(file)).unwrap();
    let source = Arc::new(Source::new(file.to_string(), text));
    let opts = CheckOptions {
        dims: DimOptions {
            flags: dims.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            data_dir: None,
        },
        ..CheckOptions::default()
    };
    let compiled = gradc::compile_source(&source, &opts).unwrap();
    Evaluator::new(&compiled.ir, backend)
        .unwrap()
        .outputs(&[], &[input])
        .unwrap()
}

#[test]
fn the_jit_answers_as_the_interpreter_bit_for_bit_with_fewer_steps() {
    let cases = [
        (
            "saddle.grad",
            vec![("STEPS", 24)],
            Tensor::new(Shape::vector(2), vec![1.0, 1.0]),
        ),
        (
            "particle.grad",
            vec![("STEPS", 3), ("EULER", 360)],
            Tensor::scalar(0.0),
        ),
    ];
    for (file, dims, input) in cases {
        let jit = outputs(file, &dims, input.clone(), Backend::Jit);
        let interp = outputs(file, &dims, input, Backend::Interp);
        let bits = |ts: &[Tensor]| -> Vec<u64> {
            ts.iter()
                .flat_map(|t| t.data.iter().map(|x| x.to_bits()))
                .collect()
        };
        assert_eq!(bits(&jit), bits(&interp), "{file}");
        // The loss and the four answers.
        assert_eq!(jit.len(), 5, "{file}");
    }
}

#[test]
fn an_answer_whose_loops_ran_out_of_steps_is_refused() {
    // From w = 5 the particle does not land in 512 Euler steps (GradBench's
    // loop would not stop before it lands, if ever).
    let (_, steps) = landing(Dual(5.0, 0.0), 100_000);
    assert!(steps > 512, "{steps}");
    let messages = [
        json!({"id": 0, "kind": "start", "eval": "particle"}),
        json!({"id": 1, "kind": "evaluate", "module": "particle", "function": "rf", "input": {"w": 5.0}}),
        json!({"id": 2, "kind": "evaluate", "module": "particle", "function": "objective", "input": {"w": 0.0}}),
        json!({"id": 3, "kind": "evaluate", "module": "saddle", "function": "rr", "input": {"start": [1.0]}}),
    ];
    let text: String = messages.iter().map(|m| format!("{m}\n")).collect();
    let responses = respond(&text, Backend::Jit);
    let error = |r: &Value| {
        assert_eq!(r["success"], false, "{r}");
        r["error"].as_str().unwrap().to_string()
    };
    assert!(
        error(&responses[1]).contains("did not stop by GradBench's rule"),
        "{}",
        responses[1]
    );
    let names = error(&responses[2]);
    assert!(names.contains("`ff`, `fr`, `rf`, `rr`"), "{names}");
    assert!(
        error(&responses[3]).contains("`start` has 1 elements, not 2"),
        "{}",
        responses[3]
    );
}
