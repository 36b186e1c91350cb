//! `gradc gradbench`'s evals whose primal function is not a scalar loss,
//! replayed from `tests/gradbench/` as in `gradbench.rs`: each primal
//! output checked against the eval's definition written here in Rust, each
//! gradient against central finite differences of that definition (the JIT
//! against the interpreter is checked there for every recorded file).

use serde_json::Value;

use crate::gradbench::{assert_close, central, evaluations, floats};

/// `ode`'s final state: GradBench's C++ reference, step for step (RK4 to
/// t = 2 in `s` steps, y_0' = x_0, y_i' = x_i y_{i-1}).
fn ode(x: &[f64], s: usize) -> Vec<f64> {
    let n = x.len();
    let f = |y: &[f64]| -> Vec<f64> {
        (0..n)
            .map(|i| if i == 0 { x[0] } else { x[i] * y[i - 1] })
            .collect()
    };
    let h = 2.0 / s as f64;
    let mut y = vec![0.0; n];
    for _ in 0..s {
        let k1 = f(&y);
        let k2 = f(&(0..n).map(|i| y[i] + h * k1[i] / 2.0).collect::<Vec<_>>());
        let k3 = f(&(0..n).map(|i| y[i] + h * k2[i] / 2.0).collect::<Vec<_>>());
        let k4 = f(&(0..n).map(|i| y[i] + h * k3[i]).collect::<Vec<_>>());
        for i in 0..n {
            y[i] += h * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]) / 6.0;
        }
    }
    y
}

#[test]
fn ode_is_cmpads_runge_kutta_solution() {
    let evals = evaluations("ode.jsonl");
    assert!(evals.len() >= 6, "{} evaluations", evals.len());
    for (function, input, output) in evals {
        let x = floats(&input["x"]);
        let s = input["s"].as_u64().unwrap() as usize;
        let got = floats(&output);
        if function == "primal" {
            assert_close(&got, &ode(&x, s), 1e-12, "primal");
        } else {
            let last = |x: &[f64]| *ode(x, s).last().unwrap();
            assert_close(&got, &central(&last, &x), 1e-6, "gradient");
        }
    }
}

/// The output's shape is the input's: a vector for a vector.
#[test]
fn odes_outputs_are_vectors_of_xs_length() {
    for (_, input, output) in evaluations("ode.jsonl") {
        let len = input["x"].as_array().unwrap().len();
        assert_eq!(output.as_array().map(Vec::len), Some(len), "{output}");
        assert!(output.as_array().unwrap().iter().all(Value::is_f64));
    }
}
