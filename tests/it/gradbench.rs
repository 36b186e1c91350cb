//! `gradc gradbench`: GradBench's protocol replayed from the recorded
//! message files of `tests/gradbench/` (start, define, evaluate of each
//! supported function at small sizes, analysis, end). Each primal output is
//! checked against the eval's definition written here in Rust, each
//! gradient against central finite differences of that definition, and the
//! JIT's answers against the interpreter's, bit for bit. Malformed messages
//! get an error response, and the loop goes on.

use std::io::{Cursor, Write};
use std::process::{Command, Stdio};

use gradc::eval::Backend;
use gradc::gradbench::{serve, Settings};
use serde_json::{json, Value};

use crate::common::root;
use crate::reference::Gmm;

/// The messages of a recorded file and the tool's responses to them.
pub(crate) fn replay(file: &str, backend: Backend) -> (Vec<Value>, Vec<Value>) {
    let text = std::fs::read_to_string(root().join("tests/gradbench").join(file)).unwrap();
    let messages = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect();
    (messages, respond(&text, backend))
}

pub(crate) fn respond(text: &str, backend: Backend) -> Vec<Value> {
    let mut out = Vec::new();
    serve(
        Cursor::new(text.as_bytes()),
        &mut out,
        Settings::new(backend),
    )
    .unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every message but `end` answered with its id; `start` names the tool,
/// `define` succeeds; each evaluation succeeds and is returned with its input.
pub(crate) fn evaluations(file: &str) -> Vec<(String, Value, Value)> {
    let (messages, responses) = replay(file, Backend::Jit);
    let answered: Vec<&Value> = messages.iter().filter(|m| m["kind"] != "end").collect();
    assert_eq!(answered.len(), responses.len(), "{responses:?}");
    let mut out = Vec::new();
    for (m, r) in answered.into_iter().zip(&responses) {
        assert_eq!(m["id"], r["id"], "{r}");
        match m["kind"].as_str().unwrap() {
            "start" => assert_eq!(r["tool"], "gradc"),
            "define" => assert_eq!(r["success"], true, "{r}"),
            "evaluate" => {
                assert_eq!(r["success"], true, "{r}");
                let runs = r["timings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|t| t["name"] == "evaluate")
                    .count();
                let min_runs = m["input"]
                    .get("min_runs")
                    .map_or(1, |v| v.as_u64().unwrap());
                assert!(runs as u64 >= min_runs, "{runs} runs: {r}");
                out.push((
                    m["function"].as_str().unwrap().to_string(),
                    m["input"].clone(),
                    r["output"].clone(),
                ));
            }
            _ => {}
        }
    }
    out
}

/// The numbers of a JSON value in order (an object's by key).
pub(crate) fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        Value::Object(o) => o.values().flat_map(floats).collect(),
        v => vec![v.as_f64().unwrap()],
    }
}

/// The relative error of `got` against `want`, each element scaled by the
/// larger of its magnitude and 1.
pub(crate) fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs() / w.abs().max(1.0);
        assert!(err < tol, "{what}[{i}]: {g} against {w} ({err:e})");
    }
}

/// Central differences of `f` at `x`.
pub(crate) fn central(f: &dyn Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    let h = 1e-6;
    (0..x.len())
        .map(|i| {
            let (mut up, mut down) = (x.to_vec(), x.to_vec());
            up[i] += h;
            down[i] -= h;
            (f(&up) - f(&down)) / (2.0 * h)
        })
        .collect()
}

/// Checks an eval's file: the primal against `primal`, the gradient (in the
/// named parameters, flattened in that order) against central differences.
fn check_eval(file: &str, params: &[&str], primal: &dyn Fn(&Value) -> f64) {
    let evals = evaluations(file);
    assert!(evals.len() >= 4, "{file}: {} evaluations", evals.len());
    for (function, input, output) in evals {
        let flat: Vec<f64> = params.iter().flat_map(|p| floats(&input[*p])).collect();
        // The input with the parameters replaced by `values`, in order.
        let at = |values: &[f64]| {
            let mut input = input.clone();
            let mut rest = values;
            for p in params {
                let mut v = input[*p].clone();
                fill(&mut v, &mut rest);
                input[*p] = v;
            }
            primal(&input)
        };
        if function == "primal" || function == "objective" {
            assert_close(&[output.as_f64().unwrap()], &[at(&flat)], 1e-12, &function);
        } else {
            let got: Vec<f64> = match &output {
                Value::Object(_) => params.iter().flat_map(|p| floats(&output[*p])).collect(),
                v => floats(v),
            };
            assert_close(&got, &central(&at, &flat), 1e-6, &function);
        }
    }
}

/// `v`'s numbers replaced, in order, by the first of `rest`.
pub(crate) fn fill(v: &mut Value, rest: &mut &[f64]) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|x| fill(x, rest)),
        v => {
            *v = json!(rest[0]);
            *rest = &rest[1..];
        }
    }
}

#[test]
fn hello_squares_and_doubles() {
    let evals = evaluations("hello.jsonl");
    assert_eq!(evals.len(), 4);
    for (function, input, output) in evals {
        let x = input.as_f64().unwrap();
        let want = if function == "square" { x * x } else { 2.0 * x };
        assert_eq!(output.as_f64().unwrap(), want, "{function}({x})");
    }
}

#[test]
fn lse_is_the_log_of_the_sum_of_exponentials() {
    check_eval("lse.jsonl", &["x"], &|input| {
        floats(&input["x"])
            .iter()
            .map(|x| x.exp())
            .sum::<f64>()
            .ln()
    });
}

/// At one of GradBench's larger sizes (200,000 numbers in [0, 1)), `lse`'s
/// gradient is the softmax to 1e-13 of its largest element: the derivative
/// through the maximum, zero, is not the rounding of the sum of 200,000
/// terms (it was 2e-9 of it).
#[test]
fn lses_gradient_at_a_large_size_is_the_softmax() {
    let n = 200_000;
    let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % n) as f64 / n as f64).collect();
    let message = serde_json::json!({"id": 2, "kind": "evaluate", "module": "lse",
        "function": "gradient", "input": {"x": x, "min_runs": 1, "min_seconds": 0}});
    let text = format!(
        "{{\"id\": 0, \"kind\": \"start\", \"eval\": \"lse\"}}\n\
         {{\"id\": 1, \"kind\": \"define\", \"module\": \"lse\"}}\n{message}\n"
    );
    let responses = respond(&text, Backend::Jit);
    let got = floats(&responses[2]["output"]);
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    let want: Vec<f64> = e.iter().map(|v| v / s).collect();
    let largest = want.iter().copied().fold(0.0, f64::max);
    let error = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max);
    assert!(error <= 1e-13 * largest, "{error:e} against {largest:e}");
}

#[test]
fn llsq_is_cmpads_least_squares_objective() {
    check_eval("llsq.jsonl", &["x"], &|input| {
        let x = floats(&input["x"]);
        let n = input["n"].as_u64().unwrap() as usize;
        (0..n)
            .map(|i| {
                let t = -1.0 + 2.0 * i as f64 / (n - 1) as f64;
                let s = if t > 0.0 {
                    1.0
                } else if t < 0.0 {
                    -1.0
                } else {
                    0.0
                };
                let fit: f64 = x
                    .iter()
                    .enumerate()
                    .map(|(j, xj)| xj * t.powi(j as i32))
                    .sum();
                0.5 * (s - fit).powi(2)
            })
            .sum()
    });
}

#[test]
fn gmm_is_gradbenchs_log_posterior() {
    check_eval("gmm.jsonl", &["alpha", "mu", "q", "l"], &gmm_objective);
}

/// GradBench's gmm objective of a message's input, by the reference.
fn gmm_objective(input: &Value) -> f64 {
    let rows = |name: &str| -> Vec<Vec<f64>> {
        input[name].as_array().unwrap().iter().map(floats).collect()
    };
    Gmm {
        alpha: &floats(&input["alpha"]),
        mu: &rows("mu"),
        q: &rows("q"),
        l: &rows("l"),
        x: &rows("x"),
        gamma: input["gamma"].as_f64().unwrap(),
        m: input["m"].as_f64().unwrap(),
    }
    .log_posterior()
}

/// Recorded files whose programs take a minute in the interpreter of a
/// debug build (hundreds of thousands of loop steps): `gradbench_evals.rs`
/// compares the JIT with the interpreter on their programs with fewer steps.
const SLOW_IN_THE_INTERPRETER: &[&str] = &["particle.jsonl", "saddle.jsonl"];

#[test]
fn the_jit_answers_as_the_interpreter_bit_for_bit() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("tests/gradbench"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".jsonl") && !SLOW_IN_THE_INTERPRETER.contains(&f.as_str()))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    for file in &files {
        let file = file.as_str();
        let (_, jit) = replay(file, Backend::Jit);
        let (_, interp) = replay(file, Backend::Interp);
        assert_eq!(jit.len(), interp.len(), "{file}");
        for (j, i) in jit.iter().zip(&interp) {
            assert_eq!(j.get("output"), i.get("output"), "{file}");
            if let Some(output) = j.get("output") {
                let bits = |v: &Value| floats(v).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                let object = |v: &Value| match v {
                    Value::Object(o) => o.values().flat_map(floats).map(f64::to_bits).collect(),
                    v => bits(v),
                };
                assert_eq!(object(output), object(&i["output"]), "{file}");
            }
        }
    }
}

#[test]
fn a_program_is_compiled_once_per_set_of_sizes() {
    let compiles = |r: &Value| {
        r["timings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["name"] == "compile")
            .count()
    };
    let message = |id: usize, function: &str, x: &[f64]| {
        json!({"id": id, "kind": "evaluate", "module": "lse", "function": function,
               "input": {"x": x, "min_runs": 1, "min_seconds": 0}})
        .to_string()
    };
    let text = [
        message(0, "primal", &[1.0, 2.0]),
        message(1, "primal", &[3.0, -1.0]),
        message(2, "gradient", &[3.0, -1.0]),
        message(3, "primal", &[1.0, 2.0, 3.0]),
        message(4, "primal", &[0.0, 0.0]),
    ]
    .join("\n");
    let responses = respond(&text, Backend::Jit);
    let counts: Vec<usize> = responses.iter().map(compiles).collect();
    assert_eq!(counts, [1, 0, 1, 1, 0], "{responses:?}");
}

#[test]
fn min_runs_and_min_seconds_are_honoured() {
    let text = [
        json!({"id": 0, "kind": "evaluate", "module": "lse", "function": "primal",
               "input": {"x": [1.0, 2.0], "min_runs": 7, "min_seconds": 0}}),
        json!({"id": 1, "kind": "evaluate", "module": "lse", "function": "primal",
               "input": {"x": [1.0, 2.0], "min_runs": 1, "min_seconds": 0.02}}),
    ]
    .map(|m| m.to_string())
    .join("\n");
    let responses = respond(&text, Backend::Jit);
    let runs = |r: &Value| -> Vec<u64> {
        r["timings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["name"] == "evaluate")
            .map(|t| t["nanoseconds"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(runs(&responses[0]).len(), 7);
    let total: u64 = runs(&responses[1]).iter().sum();
    assert!(
        total >= 20_000_000,
        "{total} ns in {} runs",
        runs(&responses[1]).len()
    );
}

#[test]
fn an_unknown_module_is_refused_with_its_name() {
    let (messages, responses) = replay("unsupported.jsonl", Backend::Jit);
    assert_eq!(messages.len(), responses.len());
    for (m, r) in messages.iter().zip(&responses).skip(1) {
        assert_eq!(r["id"], m["id"]);
        assert_eq!(r["success"], false, "{r}");
        let module = m["module"].as_str().unwrap();
        assert!(r["error"].as_str().unwrap().contains(module), "{r}");
    }
}

#[test]
fn a_malformed_message_gets_an_error_response_and_the_loop_goes_on() {
    let (messages, responses) = replay("malformed.jsonl", Backend::Jit);
    assert_eq!(messages.len(), responses.len(), "{responses:?}");
    let (last, errors) = responses.split_last().unwrap();
    for (m, r) in messages.iter().zip(errors) {
        assert_eq!(r["success"], false, "{m} got {r}");
        assert!(!r["error"].as_str().unwrap().is_empty(), "{r}");
        if m.get("id").is_some() {
            assert_eq!(r["id"], m["id"]);
        }
    }
    // After them all, a good message is answered.
    assert_eq!(last["success"], true, "{last}");
    assert_eq!(last["output"].as_f64().unwrap(), 2f64.ln());
}

#[test]
fn the_command_serves_the_protocol_on_stdin_and_stdout() {
    let text = std::fs::read_to_string(root().join("tests/gradbench/hello.jsonl")).unwrap();
    let lines: Vec<Value> = command(&[], &text).iter().map(without_timings).collect();
    let want: Vec<Value> = respond(&text, Backend::Jit)
        .iter()
        .map(without_timings)
        .collect();
    assert_eq!(lines, want);
    let outputs: Vec<f64> = lines.iter().filter_map(|l| l["output"].as_f64()).collect();
    assert_eq!(outputs, [1.0, 2.0, 6.25, -5.0]);
}

fn without_timings(v: &Value) -> Value {
    let mut v = v.clone();
    if let Value::Object(o) = &mut v {
        o.remove("timings");
    }
    v
}

/// `hello`'s square of 1e-160, its gradient, and the gradient at a
/// subnormal, on `gradc gradbench` with `args`.
fn hello_tiny(args: &[&str]) -> Vec<f64> {
    let text = [
        json!({"id": 0, "kind": "start", "eval": "hello"}),
        json!({"id": 1, "kind": "define", "module": "hello"}),
        json!({"id": 2, "kind": "evaluate", "module": "hello", "function": "square", "input": 1e-160}),
        json!({"id": 3, "kind": "evaluate", "module": "hello", "function": "double", "input": 1e-160}),
        json!({"id": 4, "kind": "evaluate", "module": "hello", "function": "double", "input": 1e-310}),
    ]
    .iter()
    .map(|m| format!("{m}\n"))
    .collect::<String>();
    command(args, &text)
        .iter()
        .filter_map(|r| r["output"].as_f64())
        .collect()
}

/// The responses of `gradc gradbench` with `args` to the messages of
/// `text`, which it answers and exits 0.
fn command(args: &[&str], text: &str) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gradc"))
        .arg("gradbench")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// IEEE arithmetic by default: the square of 1e-160 is the subnormal
/// 1e-320, and twice 1e-310 is 2e-310. With `--flush-subnormals`, a
/// subnormal result is 0, and a subnormal input reads as 0; the normal
/// gradient is the same. The interpreter, run on the same thread, flushes
/// alike.
#[test]
fn flush_subnormals_makes_them_zeros_while_the_programs_run() {
    assert_eq!(hello_tiny(&[]), [1e-320, 2e-160, 2e-310]);
    assert_eq!(
        hello_tiny(&["--backend", "interp"]),
        [1e-320, 2e-160, 2e-310]
    );
    if gradc::backend::subnormals::FlushSubnormals::SUPPORTED {
        for backend in ["jit", "interp"] {
            let got = hello_tiny(&["--flush-subnormals", "--backend", backend]);
            assert_eq!(got, [0.0, 2e-160, 0.0], "{backend}");
        }
    }
}

/// `kmeans`' cost and direction at K = 100, N = 1000, D = 64, whose
/// product of the centroids by the points (6.4 million multiply-adds) the
/// kernel splits over `--threads`: the answers are the same bits at every
/// count.
#[test]
fn a_product_split_over_threads_gives_the_same_answers() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut rows = |r: usize, c: usize| -> Vec<Vec<f64>> {
        (0..r)
            .map(|_| {
                (0..c)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state >> 11) as f64 / (1u64 << 53) as f64
                    })
                    .collect()
            })
            .collect()
    };
    // Each centroid a point, so that every one is nearest to a point and
    // has a direction.
    let points = rows(1000, 64);
    let input =
        json!({"points": points, "centroids": points[..100], "min_runs": 1, "min_seconds": 0});
    let text = [
        json!({"id": 0, "kind": "start", "eval": "kmeans"}),
        json!({"id": 1, "kind": "define", "module": "kmeans"}),
        json!({"id": 2, "kind": "evaluate", "module": "kmeans", "function": "cost", "input": input}),
        json!({"id": 3, "kind": "evaluate", "module": "kmeans", "function": "dir", "input": input}),
    ]
    .iter()
    .map(|m| format!("{m}\n"))
    .collect::<String>();
    let answers = |threads: &str| -> Vec<u64> {
        let responses = command(&["--threads", threads], &text);
        assert_eq!(responses.len(), 4, "{responses:?}");
        responses[2..]
            .iter()
            .flat_map(|r| floats(&r["output"]))
            .map(f64::to_bits)
            .collect()
    };
    let one = answers("1");
    assert_eq!(one.len(), 1 + 100 * 64);
    for threads in ["2", "3", "0"] {
        assert!(answers(threads) == one, "--threads {threads}");
    }
}
